//! §9.1.4 "Log all registry access for audit trails": every read and write
//! of the agent registry, the workflow registry and the client registry is
//! one event on target `audit` naming the operation, the id and the outcome,
//! and no event carries checksums, keys or secrets. One test per binary (see
//! `common::capture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use serde_json::{json, Value};

fn ops(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            let f = &e["fields"];
            let key = ["agent_id", "workflow_id", "client_id"]
                .iter()
                .find_map(|k| f[*k].as_str())
                .unwrap_or("")
                .to_owned();
            (
                f["op"].as_str().unwrap().to_owned(),
                key,
                f["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(events: &[(String, String, String)], op: &str, key: &str, outcome: &str) -> bool {
    events
        .iter()
        .any(|(o, k, out)| o == op && k == key && out.starts_with(outcome))
}

#[tokio::test]
async fn s9_1_4_every_registry_access_is_audited() {
    let (capture, _guard) = common::capture::Capture::install();
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("audited-agent");
    let mut all: Vec<Value> = Vec::new();

    // Registration: a write of the agent registry.
    capture.clear();
    let reg = h.register(&admin, &agent).await;
    let raw = capture.events("audit");
    all.extend(raw.iter().cloned());
    let events = ops(&raw);
    assert!(
        has(&events, "register_agent", "audited-agent", "stored"),
        "{events:?}"
    );

    // A token request: the client lookup and the agent lookup are reads.
    capture.clear();
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let raw = capture.events("audit");
    all.extend(raw.iter().cloned());
    let events = ops(&raw);
    assert!(
        has(&events, "latest_registration", "audited-agent", "found"),
        "{events:?}"
    );

    // An unknown agent is a read that finds nothing: still audited.
    capture.clear();
    let stranger = TestAgent::new("never-registered");
    let r = h.intent(&admin, &stranger.request(&["x"])).await;
    assert_eq!(r.json["error"], "unknown_agent");
    let raw = capture.events("audit");
    all.extend(raw.iter().cloned());
    let events = ops(&raw);
    assert!(
        has(
            &events,
            "latest_registration",
            "never-registered",
            "not_found"
        ),
        "{events:?}"
    );

    // A duplicate registration is a refused write.
    capture.clear();
    let again = h
        .post_json(
            "/intent/register/agent",
            Some(&admin),
            &agent.registration_body(),
        )
        .await;
    assert_eq!(again.json["error"], "duplicate_agent", "{}", again.json);
    let raw = capture.events("audit");
    all.extend(raw.iter().cloned());
    let events = ops(&raw);
    assert!(
        has(&events, "register_agent", "audited-agent", "refused"),
        "{events:?}"
    );

    // Workflow registry: a write, then a read at the token endpoint.
    capture.clear();
    let wf = auto_patch_workflow("audited-wf", "audited-agent");
    let r = h
        .post_json("/intent/register/workflow", Some(&admin), &wf)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let mut req = agent.request(&["x"]);
    req["workflow_enabled"] = json!(true);
    req["workflow_id"] = json!("audited-wf");
    req["workflow_step"] = json!(STEP1);
    let _ = h.intent(&admin, &req).await;
    let raw = capture.events("audit");
    all.extend(raw.iter().cloned());
    let events = ops(&raw);
    assert!(
        has(&events, "insert_workflow", "audited-wf", "stored"),
        "{events:?}"
    );
    assert!(
        has(&events, "workflow", "audited-wf", "found"),
        "{events:?}"
    );

    // Nothing sensitive in the trail: no checksum, no key, no token.
    let text: String = all.iter().map(Value::to_string).collect();
    assert!(all.len() >= 6, "{all:?}");
    let checksum = reg["checksum"].as_str().unwrap();
    assert!(!text.contains(checksum.trim_start_matches("sha256:")));
    assert!(!text.contains(&admin));
}
