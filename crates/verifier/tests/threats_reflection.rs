//! Issue 12 defect 10 (I-71): an attacker's `kid` (or any other text the
//! verifier quotes in an error) must not be reflected unbounded into the
//! `WWW-Authenticate` challenge or the JSON error body of a protected route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_protocol::error::MAX_DESCRIPTION_BYTES;
use ajwt_verifier::{IntentLayer, PopPolicy, Requirements, Verifier};
use axum::body::Body;
use axum::http::Request;
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;

fn app(v: Arc<Verifier>) -> Router {
    Router::new().route(
        "/patches",
        post(|| async { Json(json!({"ok": true})) }).route_layer(IntentLayer::new(
            v,
            API,
            Requirements::scopes(["repo:write"]),
        )),
    )
}

/// A token of the issuer's alg whose header `kid` is `len` bytes of `k`.
fn token_with_kid(h: &TestIssuer, len: usize) -> String {
    let real = h.sign("intent+jwt", &json!({"iss": ISSUER}));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(real.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let forged = json!({"alg": header["alg"], "typ": header["typ"], "kid": "k".repeat(len)});
    let mut parts = real.splitn(2, '.');
    parts.next();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts.next().unwrap()
    )
}

async fn present(app: &Router, token: &str) -> (u16, String, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(
            Request::post("/patches")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let body = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, challenge, body)
}

#[tokio::test]
async fn i71_a_huge_kid_is_not_reflected_by_the_verifier() {
    let h = TestIssuer::new().await;
    // The default token bound (16 KiB) lets a 10 KB kid reach the kid
    // lookup; a verifier configured for large tokens lets 200 KB through.
    let default = Arc::new(verifier(&h, PopPolicy::Disabled));
    let large = Arc::new(verifier_with(&h, PopPolicy::Disabled, |c| {
        c.max_token_len = 1 << 20;
    }));
    for (v, kid_len) in [(default, 10 * 1024), (large, 200 * 1024)] {
        let token = token_with_kid(&h, kid_len);
        let (status, challenge, body) = present(&app(v), &token).await;
        eprintln!(
            "kid {kid_len} B: WWW-Authenticate {} B, body {} B",
            challenge.len(),
            body.len()
        );
        assert_eq!(status, 401);
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{}",
            &challenge[..challenge.len().min(200)]
        );
        assert!(challenge.len() < 1024, "{} bytes", challenge.len());
        assert!(body.len() < 1024, "{} bytes", body.len());
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        let d = body["error_description"].as_str().unwrap();
        assert!(d.len() <= MAX_DESCRIPTION_BYTES, "{}", d.len());
        assert!(d.starts_with("unknown key id"), "{d}");
        assert!(d.ends_with("..."), "{d}");
    }
}
