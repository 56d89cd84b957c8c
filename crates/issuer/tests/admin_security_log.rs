//! The operator hooks (`/intent/admin/revoke-agent`,
//! `/intent/admin/rotate-keys`) log each action as a security event (target
//! `security`, level WARN) naming the client that acted, and never log the
//! bearer token or key material. One test per binary: `set_default` is
//! per-thread and tracing caches callsite interest process-wide, so tests
//! running in parallel threads would hide events from each other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use serde_json::json;

const REVOKE: &str = "/intent/admin/revoke-agent";
const ROTATE: &str = "/intent/admin/rotate-keys";
const ADMIN: &str = "admin:intent";

async fn revoke(h: &Harness, token: &str, agent_id: &str) -> Resp {
    h.post_json(REVOKE, Some(token), &json!({"agent_id": agent_id}))
        .await
}

// ===========================================================================
// Security events (§9.1.4 "Log all registry access for audit trails")
// ===========================================================================

#[tokio::test]
async fn s9_1_4_admin_actions_are_logged_as_security_events() {
    // The test runtime is single-threaded: spawned tasks log here too.
    let (capture, _guard) = common::capture::Capture::install();

    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let creds = h
        .issuer
        .create_client(vec![ADMIN.to_owned()], Some("operator".to_owned()))
        .await
        .unwrap();
    let ops = h.client_token(&creds, None).await;
    let agent = TestAgent::new("agent-log");
    h.register(&admin, &agent).await;
    // Refused attempts are not admin actions.
    revoke(&h, &ops, "no-such-agent").await;
    revoke(&h, &admin, &agent.id).await;
    assert!(capture.events("security").is_empty());

    revoke(&h, &ops, &agent.id).await.expect(
        200,
        json!({"agent_id": "agent-log", "revoked": true, "registrations": 1}),
    );
    let r = h.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    let events = capture.events("security");
    assert_eq!(events.len(), 2, "{events:?}");
    let (revoked, rotated) = (&events[0], &events[1]);
    assert_eq!(revoked["level"], "WARN");
    assert_eq!(revoked["fields"]["event"], "agent_revoked");
    assert_eq!(revoked["fields"]["agent_id"], "agent-log");
    assert_eq!(revoked["fields"]["registrations"], 1);
    assert_eq!(revoked["fields"]["client_id"], creds.client_id.as_str());
    assert_eq!(rotated["level"], "WARN");
    assert_eq!(rotated["fields"]["event"], "signing_key_rotated");
    assert_eq!(rotated["fields"]["kid"], r.json["kid"]);
    assert_eq!(rotated["fields"]["previous_kid"], r.json["previous_kid"]);
    assert_eq!(rotated["fields"]["alg"], "ES256");
    assert_eq!(rotated["fields"]["client_id"], creds.client_id.as_str());
    // Neither the bearer token nor any private key material is logged.
    let all = capture.text();
    assert!(!all.contains(&ops), "bearer token leaked into the log");
    assert!(
        !all.contains("PRIVATE KEY"),
        "private key leaked into the log"
    );
}
