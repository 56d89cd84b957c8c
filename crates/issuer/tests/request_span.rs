//! Every request runs in a `tower_http::trace::TraceLayer` span (method,
//! URI) whose response event carries the status and latency, so each log
//! line of a request can be tied to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::capture::Capture;
use common::*;

#[tokio::test]
async fn every_request_gets_a_trace_span_with_method_uri_and_status() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_list(true)
        .with_target(true)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new().await;
    capture.clear();
    assert_eq!(h.get("/healthz").await.status, 200);
    assert_eq!(h.get("/no-such-path").await.status, 404);
    let responses = capture.events("tower_http::trace::on_response");
    assert_eq!(responses.len(), 2, "{}", capture.text());
    for (event, (uri, status)) in responses
        .iter()
        .zip([("/healthz", 200), ("/no-such-path", 404)])
    {
        let span = &event["spans"][0];
        assert_eq!(span["name"], "request", "{event}");
        assert_eq!(span["method"], "GET", "{event}");
        assert_eq!(span["uri"], uri, "{event}");
        assert_eq!(event["fields"]["status"], status, "{event}");
    }
}
