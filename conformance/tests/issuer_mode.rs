//! Mode 2 (issuer) against OUR issuer started in-process: the whole plan
//! passes, and the mode's own behaviour (setup errors, `--only`, failing
//! tests against a deliberately broken issuer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_conformance::issuer::{self, IssuerArgs};
use ajwt_conformance::report::{Outcome, Report, RunOptions};
use ajwt_conformance::Error;
use ajwt_test_kit::RunningIssuer;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// A running issuer: its base URL, admin credentials, the issuer itself.
struct Running {
    base: String,
    client_id: String,
    client_secret: String,
    _issuer: RunningIssuer,
}

/// Starts our issuer on 127.0.0.1:0; its issuer identifier is `issuer_url`
/// when given (a proxy in front of it), else its own base URL.
async fn start_issuer_with(issuer_url: Option<String>) -> Running {
    let issuer = RunningIssuer::start(|c| {
        if let Some(url) = issuer_url {
            c.issuer = url;
        }
        // Publish-then-sign with a 2 s delay (I-90): the rotation test
        // waits for the new key to sign.
        c.jwks_max_age = 2;
        c.key_publish_delay = 2;
    })
    .await
    .expect("issuer opens");
    Running {
        base: issuer.base_url.clone(),
        client_id: issuer.admin.client_id.clone(),
        client_secret: issuer.admin.client_secret.clone(),
        _issuer: issuer,
    }
}

async fn start_issuer() -> Running {
    start_issuer_with(None).await
}

fn args(base: &str, id: &str, secret: &str) -> IssuerArgs {
    IssuerArgs {
        base_url: base.to_owned(),
        client_id: Some(id.to_owned()),
        client_secret: Some(secret.to_owned()),
        timeout_secs: 30,
        token_audience: "https://api.conformance.example".to_owned(),
        ..IssuerArgs::default()
    }
}

fn quiet(only: &[&str]) -> RunOptions {
    RunOptions {
        only: only.iter().map(|s| (*s).to_owned()).collect(),
        ..RunOptions::default()
    }
}

fn outcome(report: &Report, id: &str) -> (Outcome, String) {
    let r = report
        .results
        .iter()
        .find(|r| r.info.id == id)
        .unwrap_or_else(|| panic!("{id} not in the report"));
    (r.outcome, r.reason.clone().unwrap_or_default())
}

fn describe(report: &Report) -> String {
    report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| {
            format!(
                "{} {} {}",
                r.outcome.label(),
                r.info.id,
                r.reason.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_plan_passes_against_our_issuer() {
    let issuer = start_issuer().await;
    let started = std::time::Instant::now();
    let report = issuer::run(
        &args(&issuer.base, &issuer.client_id, &issuer.client_secret),
        RunOptions::default(),
    )
    .await
    .expect("the run starts");
    let elapsed = started.elapsed();
    eprintln!(
        "issuer mode against our issuer: {} tests, {} pass, {} fail, {} warn, {} skip in {:.1?}\n{}",
        report.summary.total,
        report.summary.pass,
        report.summary.fail,
        report.summary.warning,
        report.summary.skipped,
        elapsed,
        describe(&report)
    );
    assert_eq!(
        report.results.len(),
        issuer::catalogue().len(),
        "every test reported"
    );
    assert_eq!(report.summary.fail, 0, "failures:\n{}", describe(&report));
    assert_eq!(
        report.summary.warning,
        0,
        "warnings:\n{}",
        describe(&report)
    );
    for r in &report.results {
        if r.outcome == Outcome::Skipped {
            let reason = r.reason.clone().unwrap_or_default();
            assert!(
                reason.starts_with("admin hook not offered"),
                "{} skipped for another reason than a missing admin hook: {reason}",
                r.info.id
            );
        }
    }
    assert!(!report.failed());
}

#[tokio::test]
async fn the_plan_runs_again_against_the_same_issuer() {
    // Unique names per run: a second run finds no duplicates of the first.
    let issuer = start_issuer().await;
    let a = args(&issuer.base, &issuer.client_id, &issuer.client_secret);
    let only = ["5.4", "4.3.3", "6.3.3"];
    for round in 0..2 {
        let report = issuer::run(&a, quiet(&only)).await.unwrap();
        assert_eq!(
            report.summary.fail + report.summary.warning,
            0,
            "round {round}:\n{}",
            describe(&report)
        );
    }
}

#[tokio::test]
async fn pem_public_keys_work_too() {
    let issuer = start_issuer().await;
    let mut a = args(&issuer.base, &issuer.client_id, &issuer.client_secret);
    a.key_format = issuer::KeyFormat::Pem;
    let report = issuer::run(&a, quiet(&["5.4", "4.4.2", "9.4.1"]))
        .await
        .unwrap();
    assert_eq!(
        report.summary.fail + report.summary.warning + report.summary.skipped,
        0,
        "{}",
        describe(&report)
    );
    assert_eq!(outcome(&report, "ISS-4.4.2-cnf-jwk").0, Outcome::Pass);
}

#[tokio::test]
async fn unreachable_base_url_is_a_setup_error() {
    // A port nobody listens on: bind, read the address, close.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut a = args(&format!("http://{addr}"), "id", "secret");
    a.timeout_secs = 5;
    match issuer::run(&a, RunOptions::default()).await {
        Err(Error::Setup(m)) => assert!(m.contains("cannot reach"), "{m}"),
        other => panic!("expected Error::Setup, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_client_secret_is_a_setup_error_with_a_clear_message() {
    let issuer = start_issuer().await;
    let a = args(&issuer.base, &issuer.client_id, "not-the-secret");
    match issuer::run(&a, RunOptions::default()).await {
        Err(Error::Setup(m)) => {
            assert!(m.contains("client authentication failed"), "{m}");
            assert!(m.contains("--client-secret"), "{m}");
            assert!(m.contains("invalid_client"), "{m}");
        }
        other => panic!("expected Error::Setup, got {other:?}"),
    }
    // Missing credentials too.
    let mut a = args(&issuer.base, &issuer.client_id, "x");
    a.client_secret = None;
    assert!(matches!(
        issuer::run(&a, RunOptions::default()).await,
        Err(Error::Setup(_))
    ));
    // Not a URL.
    let a = args("localhost:1", "id", "secret");
    assert!(matches!(
        issuer::run(&a, RunOptions::default()).await,
        Err(Error::Setup(_))
    ));
}

#[tokio::test]
async fn only_4_5_runs_only_section_4_5_tests() {
    let issuer = start_issuer().await;
    let a = args(&issuer.base, &issuer.client_id, &issuer.client_secret);
    let report = issuer::run(&a, quiet(&["4.5"])).await.unwrap();
    assert!(!report.results.is_empty());
    for r in &report.results {
        assert!(
            r.info.section == "4.5" || r.info.section.starts_with("4.5."),
            "{} (§{}) is not under §4.5",
            r.info.id,
            r.info.section
        );
    }
    let expected = issuer::catalogue()
        .iter()
        .filter(|t| t.section.starts_with("4.5."))
        .count();
    assert_eq!(report.results.len(), expected);
    assert_eq!(report.summary.pass, expected, "{}", describe(&report));
}

#[test]
fn catalogue_ids_are_unique_well_formed_and_name_real_requirements() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/requirements.json"),
    )
    .unwrap();
    let reqs: Value = serde_json::from_str(&text).unwrap();
    let known: std::collections::BTreeSet<String> = reqs["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let cat = issuer::catalogue();
    assert!(cat.len() >= 40, "{} tests", cat.len());
    let mut ids = std::collections::BTreeSet::new();
    for t in &cat {
        assert!(ids.insert(t.id.clone()), "duplicate id {}", t.id);
        assert!(
            t.id.starts_with(&format!("ISS-{}-", t.section)),
            "{} does not start with ISS-{}-",
            t.id,
            t.section
        );
        for r in &t.requirements {
            assert!(known.contains(r), "{} lists unknown requirement {r}", t.id);
        }
        assert!(
            [
                "MUST",
                "MUST NOT",
                "REQUIRED",
                "SHOULD",
                "SHOULD NOT",
                "RECOMMENDED",
                "MAY",
                "OPTIONAL"
            ]
            .contains(&t.keyword.as_str()),
            "{} keyword {}",
            t.id,
            t.keyword
        );
    }
}

// ---------------------------------------------------------------------------
// A deliberately broken issuer: a proxy in front of ours that alters one
// kind of response.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Breakage {
    /// Successful token responses lose `Cache-Control` and `Pragma`.
    DropCacheControl,
    /// `401 unknown_agent` becomes `400 unknown_agent`.
    UnknownAgentAs400,
    /// Intent tokens (JSON token requests) get one signature bit flipped.
    TamperIntentSignature,
    /// The admin hooks answer 404.
    AdminHooks404,
    /// No RFC 8414 metadata (404): the plan falls back to the paths.
    NoMetadata,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    breakage: Breakage,
}

async fn forward(State(p): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let hidden = match p.breakage {
        Breakage::AdminHooks404 => parts.uri.path().contains("/admin/"),
        Breakage::NoMetadata => parts.uri.path().starts_with("/.well-known/oauth-"),
        _ => false,
    };
    if hidden {
        return Response::builder()
            .status(404)
            .body(Body::from("not here"))
            .unwrap();
    }
    let json_request = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let url = format!(
        "{}{}",
        p.upstream,
        parts.uri.path_and_query().map_or("/", |x| x.as_str())
    );
    let mut rb = p
        .client
        .request(parts.method.clone(), &url)
        .body(bytes.to_vec());
    for name in ["authorization", "content-type"] {
        if let Some(v) = parts.headers.get(name) {
            rb = rb.header(name, v.as_bytes());
        }
    }
    let up = rb.send().await.unwrap();
    let status = up.status().as_u16();
    let headers = up.headers().clone();
    let body = up.bytes().await.unwrap();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if k.as_str() != "content-length" && k.as_str() != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    let mut body = body.to_vec();
    if let (Breakage::TamperIntentSignature, true, Some(token)) =
        (p.breakage, json_request, json["access_token"].as_str())
    {
        let mut token = token.as_bytes().to_vec();
        let last = token.len() - 5;
        token[last] = if token[last] == b'A' { b'B' } else { b'A' };
        let mut edited = json.clone();
        edited["access_token"] = Value::String(String::from_utf8(token).unwrap());
        body = serde_json::to_vec(&edited).unwrap();
    }
    let mut response = out.body(Body::from(body)).unwrap();
    match p.breakage {
        Breakage::DropCacheControl => {
            if status == 200 && json.get("access_token").is_some() {
                response.headers_mut().remove("cache-control");
                response.headers_mut().remove("pragma");
            }
        }
        Breakage::TamperIntentSignature | Breakage::AdminHooks404 | Breakage::NoMetadata => {}
        Breakage::UnknownAgentAs400 => {
            if json["error"] == "unknown_agent" {
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
                    .headers_mut()
                    .insert("x-broken", HeaderValue::from_static("1"));
            }
        }
    }
    response
}

/// Our issuer behind a breaking proxy; the issuer identifier is the proxy's URL.
async fn start_broken(breakage: Breakage) -> (Running, String) {
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_base = format!("http://{}", proxy_listener.local_addr().unwrap());
    let running = start_issuer_with(Some(proxy_base.clone())).await;
    let proxy = Proxy {
        upstream: running.base.clone(),
        client: reqwest::Client::new(),
        breakage,
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        axum::serve(proxy_listener, app).await.unwrap();
    });
    (running, proxy_base)
}

#[tokio::test]
async fn dropped_cache_control_fails_the_matching_test() {
    let (issuer, proxy) = start_broken(Breakage::DropCacheControl).await;
    let a = args(&proxy, &issuer.client_id, &issuer.client_secret);
    let report = issuer::run(&a, quiet(&["4.4.1"])).await.unwrap();
    let (o, reason) = outcome(&report, "ISS-4.4.1-cache-control");
    assert_eq!(o, Outcome::Fail, "{}", describe(&report));
    assert!(reason.contains("Cache-Control is ''"), "{reason}");
    for id in [
        "ISS-4.4.1-token-response",
        "ISS-4.4.1-expires-in",
        "ISS-4.4.1-short-lifetime",
        "ISS-4.4.1-scope",
    ] {
        assert_eq!(
            outcome(&report, id).0,
            Outcome::Pass,
            "{id}: {}",
            describe(&report)
        );
    }
    assert!(report.failed());
}

#[tokio::test]
async fn wrong_status_for_unknown_agent_fails_the_matching_tests() {
    let (issuer, proxy) = start_broken(Breakage::UnknownAgentAs400).await;
    let a = args(&proxy, &issuer.client_id, &issuer.client_secret);
    let report = issuer::run(&a, quiet(&["4.5.3", "4.3.1", "4.5.2"]))
        .await
        .unwrap();
    let (o, reason) = outcome(&report, "ISS-4.5.3-unknown-agent");
    assert_eq!(o, Outcome::Fail, "{}", describe(&report));
    assert_eq!(
        reason,
        "expected 401 unknown_agent, got 400 unknown_agent: Agent ID not found in registry. Register first."
    );
    assert_eq!(
        outcome(&report, "ISS-4.3.1-precedence-agent-before-workflow").0,
        Outcome::Fail
    );
    for id in [
        "ISS-4.3.1-precedence-grant-type-before-agent",
        "ISS-4.3.1-precedence-checksum-before-workflow",
        "ISS-4.5.2-unsupported-grant-type",
    ] {
        assert_eq!(
            outcome(&report, id).0,
            Outcome::Pass,
            "{id}: {}",
            describe(&report)
        );
    }
}

#[tokio::test]
async fn tampered_intent_token_signature_fails_the_signature_test() {
    let (issuer, proxy) = start_broken(Breakage::TamperIntentSignature).await;
    let a = args(&proxy, &issuer.client_id, &issuer.client_secret);
    let report = issuer::run(&a, quiet(&["ISS-4.4.2-signature", "ISS-4.4.2-sub"]))
        .await
        .unwrap();
    let (o, reason) = outcome(&report, "ISS-4.4.2-signature");
    assert_eq!(o, Outcome::Fail, "{}", describe(&report));
    assert!(
        reason.starts_with("signature does not verify with JWKS key"),
        "{reason}"
    );
    // The claims themselves are still read (unverified) and right.
    assert_eq!(outcome(&report, "ISS-4.4.2-sub").0, Outcome::Pass);
}

#[tokio::test]
async fn admin_hooks_answering_404_are_skipped_with_the_reason() {
    let (issuer, proxy) = start_broken(Breakage::AdminHooks404).await;
    let a = args(&proxy, &issuer.client_id, &issuer.client_secret);
    let report = issuer::run(
        &a,
        quiet(&[
            "ISS-5.6.1-revoked-agent-refused",
            "ISS-4.3.4-revoked-agent-in-chain",
            "ISS-4.4.2-key-rotation",
        ]),
    )
    .await
    .unwrap();
    assert_eq!(report.summary.skipped, 3, "{}", describe(&report));
    for r in &report.results {
        let reason = r.reason.clone().unwrap_or_default();
        assert!(
            reason.starts_with("admin hook not offered: POST ") && reason.ends_with(" is 404"),
            "{}: {reason}",
            r.info.id
        );
    }
    assert!(!report.failed());
}

#[tokio::test]
async fn without_metadata_the_plan_uses_the_configured_paths() {
    let (issuer, proxy) = start_broken(Breakage::NoMetadata).await;
    let mut a = args(&proxy, &issuer.client_id, &issuer.client_secret);
    a.agent_registration_path = Some("/intent/register/agent".into());
    a.token_path = Some(format!("{proxy}/intent/token"));
    let report = issuer::run(&a, RunOptions::default()).await.unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("/intent/register/agent")),
        "{:?}",
        report.notes
    );
    assert_eq!(
        report.summary.fail + report.summary.warning,
        0,
        "{}",
        describe(&report)
    );
    for r in &report.results {
        if r.outcome == Outcome::Skipped {
            let reason = r.reason.clone().unwrap_or_default();
            assert!(
                (r.info.id == "ISS-3.1-metadata" && reason.starts_with("no RFC 8414 metadata"))
                    || reason.starts_with("admin hook not offered")
                    // Introspection and revocation are found only in the
                    // metadata (issue 13).
                    || reason.starts_with("not advertised: the metadata has no"),
                "{}: {reason}",
                r.info.id
            );
        }
    }
    assert_eq!(outcome(&report, "ISS-3.1-metadata").0, Outcome::Skipped);
}

/// Issue 13: introspection, revocation and status lists pass against our
/// issuer, which advertises them (I-80, I-81, I-83).
#[tokio::test]
async fn issue13_introspection_revocation_and_status_lists_pass_against_our_issuer() {
    let issuer = start_issuer().await;
    let a = args(&issuer.base, &issuer.client_id, &issuer.client_secret);
    let ids = [
        "ISS-5.6-introspect-active",
        "ISS-5.6-introspect-inactive",
        "ISS-5.6.1-token-revocation",
        "ISS-5.6.1-status-list",
    ];
    let report = issuer::run(&a, quiet(&ids)).await.unwrap();
    for id in ids {
        assert_eq!(
            outcome(&report, id).0,
            Outcome::Pass,
            "{}",
            describe(&report)
        );
    }
}
