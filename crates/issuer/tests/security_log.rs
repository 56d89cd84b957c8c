//! §9.1.1 / §4.5.4: every checksum mismatch is logged as a security event
//! (target `security`) naming the agent and its registration, so monitoring
//! can alert on modified or impersonated agents; a successful request is not
//! logged as a security event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn s9_1_1_checksum_mismatch_is_logged_as_security_event() {
    let (capture, _guard) = common::capture::Capture::install();

    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-log");
    h.register(&admin, &agent).await;

    // A valid request: issued, no security event.
    let ok = h.intent(&admin, &agent.request(&["x"])).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert!(capture.events("security").is_empty());

    let mut req = agent.request(&["x"]);
    let presented = format!("sha256:{}", "ab".repeat(32));
    req["computed_checksum"] = json!(presented);
    let r = h.intent(&admin, &req).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");

    let events = capture.events("security");
    assert_eq!(events.len(), 1, "exactly one security event: {events:?}");
    let e = &events[0];
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["fields"]["event"], "agent_checksum_mismatch");
    assert_eq!(e["fields"]["agent_id"], "agent-log");
    assert_eq!(e["fields"]["presented"], presented.as_str());
    assert!(
        e["fields"]["registration_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("reg_")),
        "{e}"
    );
    // The client's bearer token is never logged.
    let all = capture.text();
    assert!(!all.contains(&admin), "bearer token leaked into the log");
}
