//! The axum integration end to end: a router whose `POST /patches` route is
//! protected by `IntentLayer` with declarative `Requirements`, the `Intent`
//! extractor in the handler, and the HTTP refusals (401 with `WWW-Authenticate:
//! DPoP ... algs=...`, 403 `insufficient_scope` with `scope=`, `DPoP-Nonce`),
//! driven with real issuer tokens through `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_jose::Alg;
use ajwt_verifier::{Intent, IntentLayer, NonceSource, PopPolicy, Requirements, Verifier};
use axum::body::Body;
use axum::http::{HeaderValue, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;

async fn apply_patch(Intent(intent): Intent) -> Json<Value> {
    Json(json!({
        "applied_by": intent.claims.sub,
        "workflow_step": intent.claims.intent.workflow_step,
        "registration_id": intent.claims.agent_proof.registration_id,
        "proof_key": intent.dpop_jkt,
    }))
}

/// The API: `POST /patches` needs `repo:write` at STEP1 of WF, `DELETE
/// /patches` needs `repo:admin`, `/unprotected` forgot its layer.
fn app(v: Arc<Verifier>) -> Router {
    Router::new()
        .route(
            "/patches",
            post(apply_patch).route_layer(IntentLayer::new(
                v.clone(),
                "https://api.example.com/",
                Requirements::scopes(["repo:write"]).at_steps(WF, [STEP1]),
            )),
        )
        .route(
            "/admin",
            post(apply_patch).route_layer(IntentLayer::new(
                v,
                API,
                Requirements::scopes(["repo:admin"]),
            )),
        )
        .route("/unprotected", get(apply_patch))
}

struct Resp {
    status: u16,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn post_req(path: &str, authorization: Option<String>, dpop: &[&str]) -> Request<Body> {
    let mut b = Request::post(path);
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    for p in dpop {
        b = b.header("dpop", *p);
    }
    b.body(Body::empty()).unwrap()
}

fn algs(v: &Verifier) -> String {
    format!("algs=\"{}\"", v.config().algs_param())
}

#[tokio::test]
async fn protected_route_accepts_the_agents_dpop_presentation() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let app = app(v);
    let proof = post_proof(&agent.key, &token, h.now());
    let r = send(
        &app,
        post_req("/patches", Some(format!("DPoP {token}")), &[&proof]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json,
        json!({
            "applied_by": AGENT,
            "workflow_step": STEP1,
            "registration_id": agent.registration_id,
            "proof_key": jkt(&agent.key),
        })
    );
    // The query string is not part of htu (RFC 9449 §4.3 step 9).
    let proof = post_proof(&agent.key, &token, h.now());
    let r = send(
        &app,
        post_req(
            "/patches?dry_run=1",
            Some(format!("DPoP {token}")),
            &[&proof],
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The same proof again: replay.
    let r = send(
        &app,
        post_req("/patches", Some(format!("DPoP {token}")), &[&proof]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "invalid_dpop_proof");
}

#[tokio::test]
async fn missing_token_gets_401_with_a_dpop_challenge_listing_algs() {
    let (h, _, _) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let r = send(&app(v.clone()), post_req("/patches", None, &[])).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("DPoP {}", algs(&v)).as_str())
    );
    assert!(v.config().algs_param().contains("ES256") && v.config().algs_param().contains("EdDSA"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json, json!({}));
}

#[tokio::test]
async fn invalid_token_gets_401_invalid_token_with_the_dpop_scheme() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let forged = tamper_signature(&token);
    let proof = post_proof(&agent.key, &forged, h.now());
    let r = send(
        &app(v.clone()),
        post_req("/patches", Some(format!("DPoP {forged}")), &[&proof]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        json!({"error": "invalid_token", "error_description": "invalid signature"})
    );
    let challenge = r.header("www-authenticate").unwrap();
    assert_eq!(
        challenge,
        format!(
            "DPoP error=\"invalid_token\", error_description=\"invalid signature\", {}",
            algs(&v)
        )
    );
}

#[tokio::test]
async fn token_stolen_by_a_sibling_gets_401_invalid_dpop_proof() {
    let (h, _, token) = setup().await;
    let sibling = h.register(SIBLING, Alg::Es256).await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let app = app(v.clone());
    let proof = post_proof(&sibling.key, &token, h.now());
    let r = send(
        &app,
        post_req("/patches", Some(format!("DPoP {token}")), &[&proof]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "invalid_dpop_proof");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert!(challenge.ends_with(&algs(&v)), "{challenge}");
    // As a bearer token: 401 asking for DPoP.
    let r = send(
        &app,
        post_req("/patches", Some(format!("Bearer {token}")), &[]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn missing_scope_gets_403_insufficient_scope() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let proof = proof(
        &agent.key,
        "POST",
        "https://api.example.com/admin",
        Some(&token),
        None,
        h.now(),
    );
    let r = send(
        &app(v.clone()),
        post_req("/admin", Some(format!("DPoP {token}")), &[&proof]),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["error"], "insufficient_scope");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"repo:admin\""), "{challenge}");
}

#[tokio::test]
async fn bearer_challenges_where_bearer_is_accepted() {
    // I-49 (supersedes I-35's "a bearer presentation is accepted"): under
    // `optional` a cnf-bound intent token sent as Bearer is refused
    // (RFC 9449 §7.2) with a DPoP challenge; other refusals of a Bearer
    // request use the Bearer scheme; no credentials get both schemes.
    let (h, _, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Optional));
    let app = app(v.clone());
    let r = send(
        &app,
        post_req("/patches", Some(format!("Bearer {token}")), &[]),
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    assert_eq!(r.json["error"], "invalid_token");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("DPoP error=\"invalid_token\""));
    let r = send(&app, post_req("/patches", None, &[])).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some(format!("DPoP {}, Bearer", algs(&v)).as_str()))
    );
    let r = send(
        &app,
        post_req(
            "/admin",
            Some(format!("Bearer {}", tamper_signature(&token))),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
}

struct Nonces;

impl NonceSource for Nonces {
    fn current(&self) -> String {
        "nonce-2024".into()
    }
    fn is_valid(&self, nonce: &str) -> bool {
        nonce == "nonce-2024"
    }
}

#[tokio::test]
async fn nonce_challenge_then_success() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required).with_nonces(Arc::new(Nonces)));
    let app = app(v);
    let proof1 = post_proof(&agent.key, &token, h.now());
    let r = send(
        &app,
        post_req("/patches", Some(format!("DPoP {token}")), &[&proof1]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "use_dpop_nonce");
    assert_eq!(r.header("dpop-nonce"), Some("nonce-2024"));
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("DPoP error=\"use_dpop_nonce\""));
    // The client retries with the server's nonce.
    let nonce = r.header("dpop-nonce").unwrap().to_owned();
    let proof2 = proof(&agent.key, "POST", URL, Some(&token), Some(&nonce), h.now());
    let r = send(
        &app,
        post_req("/patches", Some(format!("DPoP {token}")), &[&proof2]),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[tokio::test]
async fn intent_extractor_without_the_layer_is_a_500_never_a_pass() {
    let (h, _, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let req = Request::get("/unprotected")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = send(&app(v), req).await;
    assert_eq!(r.status, 500);
}

/// RFC 9449 §4.3 step 1: a request with more than one `DPoP` header field is
/// refused. A second field whose value is not visible ASCII (obs-text) is
/// still a second field.
#[tokio::test]
async fn a_second_non_ascii_dpop_header_is_still_a_second_header() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let proof = post_proof(&agent.key, &token, h.now());
    let mut req = post_req("/patches", Some(format!("DPoP {token}")), &[&proof]);
    req.headers_mut()
        .append("dpop", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    let r = send(&app(v), req).await;
    assert_eq!(r.status, 401, "{:?}", r.json);
    assert_eq!(r.json["error"], "invalid_dpop_proof");
}

#[tokio::test]
async fn two_dpop_headers_are_refused_over_http() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let p1 = post_proof(&agent.key, &token, h.now());
    let p2 = post_proof(&agent.key, &token, h.now());
    let r = send(
        &app(v),
        post_req("/patches", Some(format!("DPoP {token}")), &[&p1, &p2]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "invalid_dpop_proof");
}

/// RFC 9449 §4.3 step 9: `htu` is the URI the client addressed. In a router
/// nested under `/v1`, axum hands the inner router a URI without the prefix
/// (the full one is in the `OriginalUri` extension); the layer must compare
/// against `https://api.example.com/v1/patches`, not `.../patches`.
#[tokio::test]
async fn htu_is_the_full_path_when_the_router_is_nested() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let nested = Router::new().nest("/v1", app(v));
    let right = proof(
        &agent.key,
        "POST",
        "https://api.example.com/v1/patches",
        Some(&token),
        None,
        h.now(),
    );
    let r = send(
        &nested,
        post_req("/v1/patches", Some(format!("DPoP {token}")), &[&right]),
    )
    .await;
    assert_eq!(r.status, 200, "proof for the addressed URL: {:?}", r.json);
    let other = proof(&agent.key, "POST", URL, Some(&token), None, h.now());
    let r = send(
        &nested,
        post_req("/v1/patches", Some(format!("DPoP {token}")), &[&other]),
    )
    .await;
    assert_eq!(r.status, 401, "proof for another URL: {:?}", r.json);
}
