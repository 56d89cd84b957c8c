//! Denial-of-service attacks against a running issuer over TCP (§9.4.3
//! "malformed token requests designed to trigger expensive validation
//! operations"; issue 12 defect 4; spec I-66). Each test performs the attack
//! with a client holding only what a real client holds (the bootstrap admin
//! token) and checks the issuer refuses it at decode time and keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_protocol::limits;
use ajwt_test_kit::RunningIssuer;
use serde_json::{json, Value};

async fn post(issuer: &RunningIssuer, token: &str, body: &Value) -> (u16, Value) {
    let (status, _, json) = ajwt_test_kit::post_json(&issuer.token_endpoint(), token, body)
        .await
        .unwrap();
    (status, json.unwrap_or(Value::Null))
}

async fn healthy(issuer: &RunningIssuer) {
    let r = reqwest::get(format!("{}/healthz", issuer.base_url))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

fn request(agent: &ajwt_test_kit::ExampleAgent, scopes: Vec<String>) -> Value {
    json!({
        "grant_type": "agent_checksum",
        "agent_id": agent.id,
        "computed_checksum": agent.checksum,
        "requested_scopes": scopes,
        "audience": "https://api.example.com",
    })
}

/// 100k distinct scopes once cost 15 s of quadratic CPU and came back in the
/// token; now the list is refused before any per-scope work.
#[tokio::test]
async fn s9_4_3_i66_hundred_thousand_scopes_are_refused_at_decode() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let agent = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "dos-scopes")
        .await
        .unwrap();

    // Short names: the attack fits the 1 MiB body limit.
    let many: Vec<String> = (0..100_000).map(|i| format!("{i:x}")).collect();
    let (status, body) = post(&issuer, &admin, &request(&agent, many)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        limits::too_many("requested_scopes", limits::MAX_SCOPES)
    );
    healthy(&issuer).await;

    // At the limit the request is served, each scope once.
    let mut at_limit: Vec<String> = (0..limits::MAX_SCOPES)
        .map(|i| format!("scope:{i}"))
        .collect();
    at_limit[1] = at_limit[0].clone();
    let (status, body) = post(&issuer, &admin, &request(&agent, at_limit)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["scope"]
        .as_str()
        .unwrap()
        .starts_with("scope:0 scope:2 "));
    issuer.stop().await.unwrap();
}

/// A scope longer than the limit, too many audiences and a chain longer than
/// any configurable depth are refused at decode time, naming the member.
#[tokio::test]
async fn s9_4_3_i66_oversized_members_name_their_limit() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let agent = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "dos-members")
        .await
        .unwrap();

    let long = "s".repeat(limits::MAX_SCOPE_LEN + 1);
    let (status, body) = post(&issuer, &admin, &request(&agent, vec![long])).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));
    assert_eq!(
        body["error_description"],
        limits::too_long("requested_scopes", limits::MAX_SCOPE_LEN)
    );

    let mut r = request(&agent, vec!["a".into()]);
    r["audience"] = json!((0..=limits::MAX_AUDIENCES)
        .map(|i| format!("https://api{i}.example.com"))
        .collect::<Vec<_>>());
    let (status, body) = post(&issuer, &admin, &r).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));
    assert_eq!(
        body["error_description"],
        limits::too_many("audience", limits::MAX_AUDIENCES)
    );

    // 60k chain entries once ran 60,000 store lookups before the depth check.
    let mut r = request(&agent, vec!["a".into()]);
    r["delegation_context"] = json!({
        "chain": (0..60_000).map(|i| format!("agent-{i}")).collect::<Vec<_>>(),
    });
    let (status, body) = post(&issuer, &admin, &r).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));
    assert_eq!(
        body["error_description"],
        limits::too_many("delegation_context.chain", limits::MAX_CHAIN)
    );
    healthy(&issuer).await;
    issuer.stop().await.unwrap();
}

/// 64 scopes of 256 bytes are each within the limits, but the token would be
/// over 16 KiB, more than resource servers accept in a header: refused, not
/// issued.
#[tokio::test]
async fn s9_4_3_i66_an_oversized_token_is_not_issued() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let agent = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "dos-token")
        .await
        .unwrap();
    let big: Vec<String> = (0..limits::MAX_SCOPES)
        .map(|i| format!("{i:03}{}", "x".repeat(limits::MAX_SCOPE_LEN - 3)))
        .collect();
    let (status, body) = post(&issuer, &admin, &request(&agent, big)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_request")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(&format!("more than {}", limits::MAX_ISSUED_TOKEN_LEN)),
        "{description}"
    );
    healthy(&issuer).await;
    issuer.stop().await.unwrap();
}
