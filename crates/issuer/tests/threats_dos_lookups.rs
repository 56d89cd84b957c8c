//! §9.3.2 "Limit delegation depth" before the work (issue 12 defect 5, spec
//! I-66): a chain deeper than the configured maximum, or naming an agent
//! twice, is refused without one registry lookup of its agents. Counted on
//! the audit trail (§9.1.4), which logs every registry read. One test per
//! binary (see `common::capture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn s9_3_2_i66_depth_and_duplicates_are_checked_before_any_lookup() {
    let (capture, _guard) = common::capture::Capture::install();
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("deep-chain-agent");
    h.register(&admin, &agent).await;
    let lookups = |capture: &common::capture::Capture| {
        capture
            .events("audit")
            .iter()
            .filter(|e| e["fields"]["op"] == "latest_registration")
            .count()
    };

    // 63 parents (decode accepts up to 64 entries), depth limit 8.
    let mut deep = agent.request(&["x"]);
    deep["delegation_context"] =
        json!({"chain": (0..63).map(|i| format!("parent-{i}")).collect::<Vec<_>>()});
    capture.clear();
    let r = h.intent(&admin, &deep).await;
    r.expect_error_prefix(400, "invalid_request", "Invalid delegation chain: depth 64");
    assert_eq!(
        lookups(&capture),
        1,
        "only the requesting agent is looked up"
    );

    // A repeated agent: refused the same way, before lookups.
    let mut repeated = agent.request(&["x"]);
    repeated["delegation_context"] = json!({"chain": ["parent-a", "parent-b", "parent-a"]});
    capture.clear();
    let r = h.intent(&admin, &repeated).await;
    r.expect_error_prefix(
        400,
        "invalid_request",
        "Invalid delegation chain: agent 'parent-a'",
    );
    assert_eq!(
        lookups(&capture),
        1,
        "only the requesting agent is looked up"
    );

    // A well-formed chain of unknown parents is looked up (and refused).
    let mut shallow = agent.request(&["x"]);
    shallow["delegation_context"] = json!({"chain": ["parent-a", "parent-b"]});
    capture.clear();
    let r = h.intent(&admin, &shallow).await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(lookups(&capture) >= 2, "parents are looked up");
}
