//! §9.1.1 / §4.5.4: every checksum mismatch is logged as a security event
//! (target `security`) naming the agent and its registration, so monitoring
//! can alert on modified or impersonated agents; a successful request is not
//! logged as a security event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

/// A `MakeWriter` collecting formatted log lines in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn s9_1_1_checksum_mismatch_is_logged_as_security_event() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_target(true)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-log");
    h.register(&admin, &agent).await;

    // A valid request: issued, no security event.
    let ok = h.intent(&admin, &agent.request(&["x"])).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let security = |lines: &[serde_json::Value]| {
        lines
            .iter()
            .filter(|l| l["target"] == "security")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(security(&capture.lines()).is_empty());

    let mut req = agent.request(&["x"]);
    let presented = format!("sha256:{}", "ab".repeat(32));
    req["computed_checksum"] = json!(presented);
    let r = h.intent(&admin, &req).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");

    let events = security(&capture.lines());
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
    let all = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(!all.contains(&admin), "bearer token leaked into the log");
}
