//! The issuer's whole router (§9.4.3) through `tower::ServiceExt::oneshot`:
//! an in-memory SQLite issuer that knows the repository's example agent
//! (with the fixed agent key of `fixtures/agent-es256.pem`) and workflow,
//! and an admin client holding every scope. Rate limits are off so that the
//! fuzzer reaches the handlers instead of 429s; the issuer is rebuilt every
//! [`RESET_EVERY`] inputs so the registry it grows stays bounded.

use std::sync::{Arc, Mutex, OnceLock};

use ajwt_issuer::config::RateLimitConfig;
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{Issuer, SystemClock, SCOPE_ADMIN, SCOPE_GENERATE, SCOPE_REGISTER};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, SigningKey};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tower::ServiceExt as _;

/// Issuer identifier of the fuzzed issuer.
pub const ISSUER: &str = "https://idp.example.com";
/// Inputs between two rebuilds of the issuer.
pub const RESET_EVERY: u64 = 20_000;

/// Paths the first bytes choose from (the last choice reads a raw path
/// from the input).
pub const PATHS: [&str; 18] = [
    "/intent/token",
    "/intent/register/agent",
    "/register/agent",
    "/intent/register/workflow",
    "/intent/register/client",
    "/intent/admin/revoke-agent",
    "/intent/admin/rotate-keys",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/healthz",
    "/readyz",
    "/intent/token?x=1",
    "/intent/revoke",
    "/intent/introspect",
    "/intent/admin/revoke-registration",
    "/intent/agents/vulnerability-patcher-v1",
    "/intent/status-lists/1",
];
const METHODS: [&str; 6] = ["POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS"];
const TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "text/plain",
    "",
];

struct State {
    rt: tokio::runtime::Runtime,
    app: Router,
    admin_token: String,
    basic: String,
    agent: SigningKey,
    runs: u64,
}

fn build(rt: &tokio::runtime::Runtime) -> (Router, String, String) {
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(
            SqliteStore::open_in_memory()
                .await
                .expect("in-memory store"),
        ));
        let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256).expect("signing key"));
        let config = IssuerConfig {
            issuer: ISSUER.to_owned(),
            rate_limits: RateLimitConfig {
                client: 0,
                agent: 0,
                grant_failures: 0,
                auth_failures: 0,
                registrations: 0,
            },
            ..IssuerConfig::default()
        };
        let issuer = Arc::new(Issuer::new(config, store, keys, Arc::new(SystemClock)));
        let admin = issuer
            .create_client(
                vec![
                    SCOPE_REGISTER.to_owned(),
                    SCOPE_GENERATE.to_owned(),
                    SCOPE_ADMIN.to_owned(),
                ],
                Some("fuzz admin".to_owned()),
            )
            .await
            .expect("admin client");
        let token = issuer
            .client_credentials(
                &[("grant_type".to_owned(), "client_credentials".to_owned())],
                Some((admin.client_id.clone(), admin.client_secret.clone())),
                None,
            )
            .await
            .expect("admin token")
            .access_token;
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", admin.client_id, admin.client_secret))
        );
        let app = ajwt_issuer::http::router(issuer.clone());
        // The example agent with the fixed agent key, and the example workflow.
        let agent =
            SigningKey::from_pkcs8_pem(include_bytes!("../fixtures/agent-es256.pem"), Alg::Es256)
                .expect("agent fixture key");
        let mut spec: serde_json::Value = serde_json::from_str(include_str!(
            "../../../examples/agents/vulnerability-patcher-v1.json"
        ))
        .expect("example agent");
        spec["public_key"] = serde_json::Value::Object(agent.public_jwk());
        for (path, body) in [
            ("/intent/register/agent", spec.to_string()),
            (
                "/intent/register/workflow",
                include_str!("../../../examples/workflows/auto-patch-workflow-v1.json").to_owned(),
            ),
        ] {
            let request = Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            let r = app.clone().oneshot(request).await.expect("infallible");
            assert!(r.status().is_success(), "setup {path}: {}", r.status());
        }
        (app, token, basic)
    })
}

fn state() -> &'static Mutex<State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (app, admin_token, basic) = build(&rt);
        let agent =
            SigningKey::from_pkcs8_pem(include_bytes!("../fixtures/agent-es256.pem"), Alg::Es256)
                .expect("agent fixture key");
        Mutex::new(State {
            rt,
            app,
            admin_token,
            basic,
            agent,
            runs: 0,
        })
    })
}

/// §9.4.3: one arbitrary request. Bytes 0–4 choose the method, the path
/// (from [`PATHS`], or a raw path read from the input up to `0xFF`), the
/// credentials (none, the admin's bearer token, the admin's HTTP Basic, or
/// the input up to `0xFF` as the header), the content type, and whether a
/// valid DPoP proof of the example agent's key is attached; the rest is the
/// body. The answer is below 500 (a 503 only as the documented
/// overload answer, with `Retry-After`), and an error body is RFC 6749
/// §5.2-shaped JSON. Accepted means a 2xx answer.
pub fn router(data: &[u8]) -> bool {
    let [m, p, a, t, d, rest @ ..] = data else {
        return false;
    };
    let mut guard = state().lock().unwrap_or_else(|e| e.into_inner());
    guard.runs += 1;
    if guard.runs % RESET_EVERY == 0 {
        let (app, admin_token, basic) = build(&guard.rt);
        guard.app = app;
        guard.admin_token = admin_token;
        guard.basic = basic;
    }
    let s = &*guard;
    let mut rest = rest;
    let mut take = || -> String {
        let cut = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        rest = tail.get(1..).unwrap_or_default();
        String::from_utf8_lossy(head).into_owned()
    };
    let path = match PATHS.get(usize::from(*p) % (PATHS.len() + 1)) {
        Some(path) => (*path).to_owned(),
        None => format!("/{}", take()),
    };
    let authorization = match a % 4 {
        0 => None,
        1 => Some(format!("Bearer {}", s.admin_token)),
        2 => Some(s.basic.clone()),
        _ => Some(take()),
    };
    let method = METHODS[usize::from(*m) % METHODS.len()];
    let mut request = Request::builder().method(method).uri(path.as_str());
    let content_type = TYPES[usize::from(*t) % TYPES.len()];
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    if d % 2 == 1 {
        let url = format!("{ISSUER}{path}");
        if let Ok(proof) = s.agent.proof(method, &url, None, None, now()) {
            request = request.header("dpop", proof);
        }
    }
    // Header values or URIs the HTTP library itself refuses are not requests.
    let Ok(request) = request.body(Body::from(rest.to_vec())) else {
        return false;
    };
    let app = s.app.clone();
    let (status, retry_after, bytes) = s.rt.block_on(async move {
        let r = app.oneshot(request).await.expect("infallible");
        let status = r.status().as_u16();
        let retry_after = r.headers().contains_key("retry-after");
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 24)
            .await
            .expect("the body is readable");
        (status, retry_after, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        status < 500 || (status == 503 && retry_after),
        "{method} {path}: {status} {text}"
    );
    if status >= 400 && !bytes.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        assert!(
            json["error"].is_string(),
            "{method} {path}: {status} {text}"
        );
    }
    (200..300).contains(&status)
}

fn now() -> i64 {
    use ajwt_issuer::service::Clock as _;
    SystemClock.now()
}
