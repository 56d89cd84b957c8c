//! Shared harness of the issuer's in-process HTTP integration tests: an
//! issuer over an in-memory SQLite store with a controllable clock, the axum
//! router called with `tower::ServiceExt::oneshot`, agent keys generated with
//! josekit, and an independent verifier (the `jsonwebtoken` crate fed the
//! issuer's JWKS) plus independent recomputations (RFC 7638 thumbprints,
//! §4.4.4 sequence hashes with `sha2`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

pub mod capture;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ajwt_checksum::Profile;
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{ClientCredentials, Clock, Issuer, SystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

/// Issuer identifier of the test issuer.
pub const ISSUER: &str = "https://idp.example.com";
/// Client-token audience (§4.2.3, the default).
pub const CLIENT_AUD: &str = "idp.localhost";
/// Resource-server audience used in intent-token requests.
pub const API_AUD: &str = "https://api.github.com";
/// Scopes.
pub const REGISTER: &str = "register:intent";
pub const GENERATE: &str = "generate:intent-token";

/// A clock at `start + offset` seconds; the test moves `offset`.
#[derive(Clone)]
pub struct TestClock {
    pub start: i64,
    pub offset: Arc<AtomicI64>,
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.start + self.offset.load(Ordering::SeqCst)
    }
}

/// The configuration used by most tests.
pub fn test_config() -> IssuerConfig {
    IssuerConfig {
        issuer: ISSUER.to_owned(),
        // Immediate rotation (I-90: no JWKS caching, so no publish delay);
        // tests/key_rotation.rs covers publish-then-sign.
        jwks_max_age: 0,
        key_publish_delay: 0,
        ..IssuerConfig::default()
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Bytes,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// `Cache-Control: no-store` and `Pragma: no-cache` (§4.4.1, §4.5.1, RFC 6749 §5.1).
    #[track_caller]
    pub fn assert_no_store(&self) {
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "Cache-Control of {self:?}"
        );
        assert_eq!(
            self.header("pragma"),
            Some("no-cache"),
            "Pragma of {self:?}"
        );
    }

    #[track_caller]
    pub fn assert_json(&self) {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "Content-Type {ct:?} of {self:?}"
        );
        assert!(!self.json.is_null(), "body is not JSON: {self:?}");
    }

    /// Status and the whole body equal; JSON; no-store headers.
    #[track_caller]
    pub fn expect(&self, status: u16, body: Value) {
        assert_eq!(
            (self.status, &self.json),
            (status, &body),
            "response {:?}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.assert_json();
        self.assert_no_store();
    }

    /// An RFC 6749 §5.2 error with exactly `error` and `error_description`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, error: &str, description: &str) {
        self.expect(
            status,
            json!({"error": error, "error_description": description}),
        );
    }

    /// An error whose description starts with `prefix` (used where the
    /// exact text is covered by a separate test).
    #[track_caller]
    pub fn expect_error_prefix(&self, status: u16, error: &str, prefix: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(error)),
            "response {:?}",
            String::from_utf8_lossy(&self.bytes)
        );
        let d = self.description();
        assert!(
            d.starts_with(prefix),
            "description {d:?} lacks prefix {prefix:?}"
        );
        let members: Vec<&String> = self.json.as_object().unwrap().keys().collect();
        assert_eq!(members.len(), 2, "members {members:?}");
        self.assert_json();
        self.assert_no_store();
    }

    /// A 403 `workflow_step_unauthorized` with `missing_steps` (§4.5.5).
    #[track_caller]
    pub fn expect_step_denied(&self, description: &str, missing: &[&str]) {
        self.expect(
            403,
            json!({
                "error": "workflow_step_unauthorized",
                "error_description": description,
                "missing_steps": missing,
            }),
        );
    }

    /// `invalid_token` (RFC 6750 §3.1) with its `WWW-Authenticate` challenge.
    #[track_caller]
    pub fn expect_invalid_token(&self) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (401, Some("invalid_token")),
            "response {:?}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert!(self.json["error_description"].is_string(), "{self:?}");
        let challenge = self.header("www-authenticate").expect("WWW-Authenticate");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "challenge {challenge:?}"
        );
        self.assert_json();
        self.assert_no_store();
    }

    pub fn description(&self) -> String {
        self.json["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The issuer under test and its router.
pub struct Harness {
    pub issuer: Arc<Issuer>,
    pub app: Router,
    pub config: IssuerConfig,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub clock: TestClock,
    /// Client allowed `register:intent` and `generate:intent-token`.
    pub admin: ClientCredentials,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_config(test_config()).await
    }

    pub async fn with_config(config: IssuerConfig) -> Harness {
        Harness::with_alg(config, SigningAlgorithm::Es256).await
    }

    /// An issuer whose signing key is of `alg`.
    pub async fn with_alg(config: IssuerConfig, alg: SigningAlgorithm) -> Harness {
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(
            SqliteStore::open_in_memory()
                .await
                .expect("in-memory store"),
        ));
        Harness::with_store(config, store, alg).await
    }

    /// An issuer over `store` whose first signing key is of `alg`.
    pub async fn with_store(
        config: IssuerConfig,
        store: Arc<dyn Store>,
        alg: SigningAlgorithm,
    ) -> Harness {
        let clock = TestClock {
            start: SystemClock.now(),
            offset: Arc::new(AtomicI64::new(0)),
        };
        // The keys live in the store, as `Issuer::open` keeps them (I-110).
        let keys: Arc<KeyRing> = Arc::new(
            ajwt_issuer::key_store::load(
                &*store,
                None,
                alg,
                config.rotation_policy(),
                u64::try_from(clock.now()).expect("clock"),
            )
            .await
            .expect("signing key"),
        );
        let issuer = Arc::new(Issuer::new(
            config.clone(),
            store.clone(),
            keys.clone(),
            Arc::new(clock.clone()),
        ));
        let admin = issuer
            .create_client(
                vec![REGISTER.to_owned(), GENERATE.to_owned()],
                Some("test admin".to_owned()),
            )
            .await
            .expect("admin client");
        Harness {
            app: ajwt_issuer::http::router(issuer.clone()),
            issuer,
            config,
            store,
            keys,
            clock,
            admin,
        }
    }

    /// A replica: another issuer over `store` (another connection to the
    /// same database), with the same configuration, clock and admin client,
    /// loading its keys from the store like `Issuer::open` (I-110).
    pub async fn replica(&self, store: Arc<dyn Store>) -> Harness {
        let keys: Arc<KeyRing> = Arc::new(
            ajwt_issuer::key_store::load(
                &*store,
                None,
                self.config.signing_alg,
                self.config.rotation_policy(),
                u64::try_from(self.clock.now()).expect("clock"),
            )
            .await
            .expect("signing keys"),
        );
        let issuer = Arc::new(Issuer::new(
            self.config.clone(),
            store.clone(),
            keys.clone(),
            Arc::new(self.clock.clone()),
        ));
        Harness {
            app: ajwt_issuer::http::router(issuer.clone()),
            issuer,
            config: self.config.clone(),
            store,
            keys,
            clock: self.clock.clone(),
            admin: self.admin.clone(),
        }
    }

    /// Another issuer over the same store, keys and clock, with `config`.
    pub fn sibling(&self, config: IssuerConfig) -> Harness {
        let issuer = Arc::new(Issuer::new(
            config.clone(),
            self.store.clone(),
            self.keys.clone(),
            Arc::new(self.clock.clone()),
        ));
        Harness {
            app: ajwt_issuer::http::router(issuer.clone()),
            issuer,
            config,
            store: self.store.clone(),
            keys: self.keys.clone(),
            clock: self.clock.clone(),
            admin: self.admin.clone(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.offset.fetch_add(seconds, Ordering::SeqCst);
    }

    pub async fn send(&self, request: Request<Body>) -> Resp {
        send(&self.app, request).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// POST with optional `Authorization` and `Content-Type`.
    pub async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::post(path);
        if let Some(a) = authorization {
            b = b.header("authorization", a);
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        self.send(b.body(body.into()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        self.post(
            path,
            auth.as_deref(),
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        authorization: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> Resp {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.post(
            path,
            authorization,
            Some("application/x-www-form-urlencoded"),
            body,
        )
        .await
    }

    /// `client_credentials` with HTTP Basic; `scope` as given.
    pub async fn client_credentials(&self, creds: &ClientCredentials, scope: Option<&str>) -> Resp {
        let mut pairs = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            pairs.push(("scope", s));
        }
        self.post_form("/intent/token", Some(&basic(creds)), &pairs)
            .await
    }

    /// A client access token of `creds` obtained over HTTP.
    pub async fn client_token(&self, creds: &ClientCredentials, scope: Option<&str>) -> String {
        let r = self.client_credentials(creds, scope).await;
        assert_eq!(r.status, 200, "client_credentials: {r:?}");
        r.json["access_token"].as_str().unwrap().to_owned()
    }

    /// The admin client's token (both scopes).
    pub async fn admin_token(&self) -> String {
        self.client_token(&self.admin.clone(), None).await
    }

    /// A client of its own with `scopes` and its token.
    pub async fn token_with_scopes(&self, scopes: &[&str]) -> String {
        let creds = self
            .issuer
            .create_client(scopes.iter().map(|s| (*s).to_owned()).collect(), None)
            .await
            .unwrap();
        self.client_token(&creds, None).await
    }

    pub async fn jwks(&self) -> Value {
        let r = self.get("/.well-known/jwks.json").await;
        assert_eq!(r.status, 200);
        r.json
    }

    /// POST /intent/register/agent with `token`.
    pub async fn register_agent_raw(&self, token: &str, body: &Value) -> Resp {
        self.post_json("/intent/register/agent", Some(token), body)
            .await
    }

    /// Registers `agent` (spec + public key, JCS), asserting 200, and
    /// returns the response body.
    pub async fn register(&self, token: &str, agent: &TestAgent) -> Value {
        let r = self
            .register_agent_raw(token, &agent.registration_body())
            .await;
        assert_eq!(r.status, 200, "registration of {}: {r:?}", agent.id);
        r.assert_no_store();
        r.json
    }

    pub async fn register_workflow(&self, token: &str, body: &Value) -> Resp {
        self.post_json("/intent/register/workflow", Some(token), body)
            .await
    }

    /// POST /intent/token (JSON) with `token`.
    pub async fn intent(&self, token: &str, body: &Value) -> Resp {
        self.post_json("/intent/token", Some(token), body).await
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Resp {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        bytes,
        json,
    }
}

/// `Authorization: Basic` value of RFC 6749 §2.3.1 (form-urlencoded id and secret).
pub fn basic(creds: &ClientCredentials) -> String {
    let enc = |s: &str| {
        serde_urlencoded::to_string([("v", s)])
            .unwrap()
            .trim_start_matches("v=")
            .to_owned()
    };
    format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            enc(&creds.client_id),
            enc(&creds.client_secret)
        ))
    )
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

/// An agent's key pair, public halves only.
#[derive(Debug, Clone)]
pub struct AgentKeyPair {
    pub jwk: Map<String, Value>,
    pub pem: String,
}

pub fn ed25519_key() -> AgentKeyPair {
    let pair = josekit::jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap();
    AgentKeyPair {
        jwk: pair.to_jwk_public_key().as_ref().clone(),
        pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
    }
}

pub fn p256_key() -> AgentKeyPair {
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    AgentKeyPair {
        jwk: pair.to_jwk_public_key().as_ref().clone(),
        pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
    }
}

pub fn p384_key() -> AgentKeyPair {
    let pair = josekit::jws::ES384.generate_key_pair().unwrap();
    AgentKeyPair {
        jwk: pair.to_jwk_public_key().as_ref().clone(),
        pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
    }
}

pub fn rsa_key(bits: u32) -> AgentKeyPair {
    let pair = josekit::jwk::alg::rsa::RsaKeyPair::generate(bits).unwrap();
    AgentKeyPair {
        jwk: pair.to_jwk_public_key().as_ref().clone(),
        pem: String::from_utf8(pair.to_pem_public_key()).unwrap(),
    }
}

/// RFC 7638 JWK thumbprint, computed here independently of the issuer.
pub fn thumbprint(jwk: &Map<String, Value>) -> String {
    let members: &[&str] = match jwk["kty"].as_str().unwrap() {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        other => panic!("kty {other}"),
    };
    let inner: Vec<String> = members
        .iter()
        .map(|m| format!("\"{m}\":\"{}\"", jwk[*m].as_str().unwrap()))
        .collect();
    let text = format!("{{{}}}", inner.join(","));
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

/// The public members of `jwk` plus `kid` = its thumbprint: what `cnf.jwk` must be.
pub fn expected_cnf_jwk(jwk: &Map<String, Value>) -> Value {
    let members: &[&str] = match jwk["kty"].as_str().unwrap() {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        other => panic!("kty {other}"),
    };
    let mut out = Map::new();
    for m in members {
        out.insert((*m).to_owned(), jwk[*m].clone());
    }
    out.insert("kid".to_owned(), Value::String(thumbprint(jwk)));
    Value::Object(out)
}

/// §4.4.4 truncated hash, computed here with `sha2` directly.
pub fn seq_hash(items: &[&str]) -> String {
    let digest = Sha256::digest(items.join("|").as_bytes());
    hex::encode(digest)[..16].to_owned()
}

/// An agent specification (§5.2.1) with two tools and a configuration.
pub fn agent_spec(agent_id: &str, prompt: &str) -> Value {
    json!({
        "agent_id": agent_id,
        "prompt": prompt,
        "tools": [
            {
                "name": "read_manifest",
                "description": "Read package manifest file",
                "parameters": {
                    "type": "object",
                    "properties": {"file_path": {"type": "string"}},
                    "required": ["file_path"]
                }
            },
            {
                "name": "create_patch",
                "description": "Create patch for vulnerable package",
                "parameters": {"type": "object", "properties": {"package": {"type": "string"}}}
            }
        ],
        "configuration": {"model_name": "test-model", "temperature": 0.0, "max_tokens": 4096}
    })
}

/// Checksum of a specification computed by the checksum crate (not the issuer).
pub fn checksum_of(spec: &Value, profile: Profile) -> String {
    ajwt_checksum::compute_json(&serde_json::to_vec(spec).unwrap(), profile)
        .unwrap()
        .checksum
        .to_string()
}

/// A test agent: specification, JCS checksum and key.
#[derive(Debug, Clone)]
pub struct TestAgent {
    pub id: String,
    pub spec: Value,
    pub checksum: String,
    pub key: AgentKeyPair,
}

impl TestAgent {
    pub fn new(id: &str) -> TestAgent {
        TestAgent::with_prompt(id, &format!("You are {id}, a careful security agent."))
    }

    pub fn with_prompt(id: &str, prompt: &str) -> TestAgent {
        let spec = agent_spec(id, prompt);
        TestAgent {
            id: id.to_owned(),
            checksum: checksum_of(&spec, Profile::Jcs),
            spec,
            key: ed25519_key(),
        }
    }

    /// Registration body: the spec plus `public_key` as a JWK.
    pub fn registration_body(&self) -> Value {
        let mut body = self.spec.clone();
        body["public_key"] = Value::Object(self.key.jwk.clone());
        body
    }

    /// A minimal §4.2.1 request without workflow.
    pub fn request(&self, scopes: &[&str]) -> Value {
        json!({
            "grant_type": "agent_checksum",
            "agent_id": self.id,
            "computed_checksum": self.checksum,
            "requested_scopes": scopes,
            "audience": API_AUD,
        })
    }

    /// A workflow request (§4.2.2 shape).
    pub fn step_request(
        &self,
        workflow_id: &str,
        step: &str,
        chain: &[&str],
        completed: &[&str],
        scopes: &[&str],
    ) -> Value {
        json!({
            "grant_type": "agent_checksum",
            "agent_id": self.id,
            "computed_checksum": self.checksum,
            "workflow_id": workflow_id,
            "workflow_step": step,
            "workflow_enabled": true,
            "requested_scopes": scopes,
            "audience": API_AUD,
            "delegation_context": {"chain": chain, "completed_steps": completed},
        })
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// Header and payload of a compact JWS, decoded without verification.
pub fn decode_unverified(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let part =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    (part(parts[0]), part(parts[1]))
}

/// Verifies `token` with the `jsonwebtoken` crate (not josekit, not the
/// issuer's code) against `jwks`: the key named by the header `kid`, the
/// algorithm published for it, `iss`, one of `audiences`, `exp`. Returns the
/// header and the claims.
pub fn verify_independently(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audiences: &[&str],
) -> (jsonwebtoken::Header, Value) {
    // jsonwebtoken 9 knows no RFC 9864 names: an `alg: "Ed25519"` key or
    // token is checked as the EdDSA signature it is (RFC 9864 §2.2).
    if let Some(checked) = verify_ed25519_independently(token, jwks, issuer, audiences) {
        return checked;
    }
    let mut jwks_without_ed25519 = jwks.clone();
    if let Some(keys) = jwks_without_ed25519["keys"].as_array_mut() {
        keys.retain(|k| k["alg"] != "Ed25519");
    }
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks_without_ed25519).expect("JWKS");
    let header = jsonwebtoken::decode_header(token).expect("header");
    let kid = header.kid.clone().expect("kid in header");
    let jwk = set.find(&kid).expect("kid published in the JWKS");
    let published_alg = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()["alg"]
        .as_str()
        .unwrap()
        .to_owned();
    let alg: jsonwebtoken::Algorithm = published_alg.parse().expect("alg");
    assert_eq!(header.alg, alg, "header alg is the published alg");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refused the token: {e}"));
    (data.header, data.claims)
}

/// [`verify_independently`] for a token whose header `alg` is `Ed25519`
/// (`None` for any other token): the header alg must be the published JWK
/// `alg`, the signature is checked by `jsonwebtoken::crypto::verify` as
/// EdDSA, and `iss`, `aud`, `exp` and `iat` by hand as `Validation` would.
fn verify_ed25519_independently(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audiences: &[&str],
) -> Option<(jsonwebtoken::Header, Value)> {
    let mut parts = token.split('.');
    let (h, p) = (parts.next()?, parts.next()?);
    let raw: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if raw["alg"] != "Ed25519" {
        return None;
    }
    let kid = raw["kid"].as_str().expect("kid in header");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid published in the JWKS");
    assert_eq!(jwk["alg"], "Ed25519", "header alg is the published alg");
    assert_eq!(
        (&jwk["kty"], &jwk["crv"]),
        (&json!("OKP"), &json!("Ed25519"))
    );
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(
            signature,
            input.as_bytes(),
            &key,
            jsonwebtoken::Algorithm::EdDSA
        )
        .unwrap(),
        "jsonwebtoken refused the Ed25519 signature"
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    assert_eq!(claims["iss"], issuer);
    let aud_ok = match &claims["aud"] {
        Value::String(a) => audiences.contains(&a.as_str()),
        Value::Array(a) => a.iter().any(|x| audiences.iter().any(|w| x == w)),
        _ => false,
    };
    assert!(aud_ok, "aud {} not in {audiences:?}", claims["aud"]);
    // The harness clock may be fixed: exp is checked against iat.
    assert!(
        claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap(),
        "exp after iat"
    );
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = raw["typ"].as_str().map(str::to_owned);
    Some((header, claims))
}

/// A valid token with one signature bit flipped.
pub fn tamper_signature(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[5] ^= 0x01;
    format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A token with its payload replaced (signature kept, so it no longer verifies).
pub fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (_, mut payload) = decode_unverified(token);
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    )
}

/// The §6.3.3 workflow with `step_1_analyze_manifest` assigned to `step1_agent`.
pub fn auto_patch_workflow(workflow_id: &str, step1_agent: &str) -> Value {
    json!({
        "workflow_id": workflow_id,
        "steps": {
            "step_1_analyze_manifest": {"required": true, "requires_approval": false, "agent_id": step1_agent},
            "step_2_create_patch_plan": {"required": true, "requires_approval": false, "agent_id": "patch-planner"},
            "step_3_approval_gate": {"required": true, "requires_approval": false, "approval_gate": true},
            "step_4_apply_patch": {"required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
            "step_5_verify_patch": {"required": true, "requires_approval": false, "agent_id": "patch-verifier"}
        }
    })
}

pub const STEP1: &str = "step_1_analyze_manifest";
pub const STEP2: &str = "step_2_create_patch_plan";
pub const STEP3: &str = "step_3_approval_gate";
pub const STEP4: &str = "step_4_apply_patch";
pub const STEP5: &str = "step_5_verify_patch";

// ---------------------------------------------------------------------------
// Intent-token checks
// ---------------------------------------------------------------------------

/// What an intent token must say (§4.4.2).
pub struct ExpectedIntent<'a> {
    pub agent: &'a TestAgent,
    /// `registration_id` of the agent's LATEST registration.
    pub registration_id: &'a str,
    /// `aud` exactly as requested (string or array).
    pub aud: Value,
    /// Granted scopes, space-delimited.
    pub scope: &'a str,
    /// `(workflow_id, workflow_step)` when `workflow_enabled`.
    pub workflow: Option<(&'a str, &'a str)>,
    /// The full delegation chain, requester last.
    pub full_chain: &'a [&'a str],
    /// `completed_steps` followed by the current step, if any.
    pub steps: &'a [&'a str],
}

/// Checks a §4.4.1 token response and every claim of its intent token; the
/// signature is verified with `jsonwebtoken` against the issuer's JWKS.
/// Returns the claims.
pub async fn check_intent_response(h: &Harness, r: &Resp, e: &ExpectedIntent<'_>) -> Value {
    assert_eq!(r.status, 200, "token response {r:?}");
    r.assert_json();
    r.assert_no_store();
    let token = r.json["access_token"].as_str().expect("access_token");
    assert_eq!(
        r.json,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": h.config.intent_token_lifetime,
            "scope": e.scope,
        }),
        "§4.4.1 response"
    );
    check_intent_token(h, token, e).await
}

/// Checks every claim of an intent token (§4.4.2) and its header.
pub async fn check_intent_token(h: &Harness, token: &str, e: &ExpectedIntent<'_>) -> Value {
    let jwks = h.jwks().await;
    let audiences: Vec<&str> = match &e.aud {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
        other => panic!("aud {other}"),
    };
    let (header, verified) = verify_independently(token, &jwks, &h.config.issuer, &audiences);
    assert_eq!(header.typ.as_deref(), Some("JWT"), "intent token typ");
    assert_eq!(header.kid.as_deref(), Some(h.keys.current_kid()));
    assert_eq!(
        jwks["keys"][0]["kid"].as_str(),
        Some(h.keys.current_kid()),
        "the signing key is published first"
    );
    let (raw_header, claims) = decode_unverified(token);
    assert_eq!(verified, claims);
    assert_eq!(
        raw_header,
        json!({"alg": jwks["keys"][0]["alg"], "kid": h.keys.current_kid(), "typ": "JWT"})
    );

    let jti = claims["jti"].as_str().expect("jti");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jti).expect("base64url jti").len(),
        16,
        "128-bit jti"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(iat, h.now(), "iat is the issuer's now");

    let mut intent = Map::new();
    if let Some((wf, step)) = e.workflow {
        intent.insert("workflow_id".into(), json!(wf));
        intent.insert("workflow_step".into(), json!(step));
    }
    intent.insert("executed_by".into(), json!(e.agent.id));
    intent.insert("delegation_chain".into(), json!(seq_hash(e.full_chain)));
    intent.insert("step_sequence_hash".into(), json!(seq_hash(e.steps)));
    let expected = json!({
        "iss": h.config.issuer,
        "aud": e.aud,
        "sub": e.agent.id,
        "exp": iat + h.config.intent_token_lifetime as i64,
        "iat": iat,
        "jti": jti,
        "scope": e.scope,
        "cnf": {"jwk": expected_cnf_jwk(&e.agent.key.jwk)},
        "intent": intent,
        "agent_proof": {
            "agent_checksum": e.agent.checksum,
            "registration_id": e.registration_id,
        },
    });
    // Issue 13 (I-83): every token names its Token Status List entry.
    let mut without_status = claims.clone();
    let status = without_status
        .as_object_mut()
        .unwrap()
        .remove("status")
        .expect("status claim (draft-ietf-oauth-status-list §6.1)");
    assert!(
        status["status_list"]["idx"].is_u64(),
        "status idx: {status}"
    );
    assert!(
        status["status_list"]["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/intent/status-lists/", h.config.issuer)),
        "status uri: {status}"
    );
    assert_eq!(without_status, expected, "intent token claims");
    // The validator of the protocol crate accepts the token too (I-23).
    ajwt_protocol::claims::decode_claims(&serde_json::to_vec(&claims).unwrap())
        .expect("claims valid per ajwt_protocol::claims");
    claims
}

/// The `kid`s of a JWK Set document, in order.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}
