//! The issuer's router against arbitrary requests (issue 12 "Fuzzing and
//! properties"; §9.4.3): any method, path, headers and body, sent through
//! `tower::ServiceExt::oneshot`, gets a response below 500 whose body, when
//! there is one, is an RFC 6749 §5.2-shaped JSON error or a JSON document;
//! nothing panics. Requests mix known endpoints, real credentials and
//! well-formed bodies with arbitrary bytes, so they reach deep handlers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use proptest::prelude::*;

const PATHS: [&str; 12] = [
    "/intent/token",
    "/intent/register/agent",
    "/register/agent",
    "/intent/register/workflow",
    "/intent/register/client",
    "/intent/admin/revoke-agent",
    "/intent/admin/rotate-keys",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/readyz",
    "/nope",
];
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"];
const TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-8",
    "",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "\\PC{0,200}".prop_map(String::into_bytes),
        Just(br#"{"grant_type":"agent_checksum","agent_id":"a1","computed_checksum":"sha256:00","requested_scopes":["x"],"audience":"a"}"#.to_vec()),
        Just(b"grant_type=client_credentials".to_vec()),
        Just(b"grant_type=password&username=a".to_vec()),
        Just(br#"{"workflow_id":"w","steps":{"s":{"required":true}}}"#.to_vec()),
        Just(br#"{"agent_id":"x","prompt":"p","tools":[]}"#.to_vec()),
        (0usize..120).prop_map(|n| format!("{{\"requested_scopes\":{}}}", "[".repeat(n)).into_bytes()),
    ]
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Admin,
    Basic,
    Junk(String),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        Just(Auth::Admin),
        Just(Auth::Basic),
        "\\PC{0,80}".prop_map(Auth::Junk),
    ]
}

#[test]
fn s9_4_3_router_answers_arbitrary_requests_without_5xx() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(Harness::new());
    let admin = rt.block_on(h.admin_token());
    let basic = common::basic(&h.admin);
    let config = ProptestConfig {
        cases: 384,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        method in prop::sample::select(METHODS.to_vec()),
        path in prop::sample::select(PATHS.to_vec()),
        suffix in prop_oneof![Just(String::new()), "[a-z/%?=&.]{0,12}"],
        content_type in prop::sample::select(TYPES.to_vec()),
        authorization in auth(),
        dpop in proptest::option::of("\\PC{0,60}"),
        body in body(),
    )| {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{path}{suffix}"));
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let authorization = match &authorization {
            Auth::None => None,
            Auth::Admin => Some(format!("Bearer {admin}")),
            Auth::Basic => Some(basic.clone()),
            Auth::Junk(s) => Some(s.clone()),
        };
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        if let Some(d) = dpop {
            request = request.header("dpop", d);
        }
        // Header values the HTTP library itself refuses are not requests.
        let Ok(request) = request.body(Body::from(body)) else {
            return Ok(());
        };
        let r = rt.block_on(h.send(request));
        prop_assert!(r.status < 500, "{} {}", r.status, String::from_utf8_lossy(&r.bytes));
        if r.status >= 400 && !r.bytes.is_empty() {
            prop_assert!(r.json["error"].is_string(), "{} {}", r.status, String::from_utf8_lossy(&r.bytes));
        }
    });
}
