//! Issuer mode against a path issuer (RFC 8414 §3.1; issue 11 item 5): our
//! issuer with identifier `http://<proxy>/tenant1` (it serves every endpoint
//! under `/tenant1` and both well-known forms, I-54) behind a proxy that hides
//! one of the two forms. The runner must find the metadata at the
//! inserted form `/.well-known/oauth-authorization-server/tenant1` first and
//! at the appended form `/tenant1/.well-known/oauth-authorization-server`
//! only as a fallback, then run the whole plan through the proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};

use ajwt_conformance::issuer::{self, IssuerArgs};
use ajwt_conformance::report::{Outcome, Report, RunOptions};
use ajwt_test_kit::RunningIssuer;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const TENANT: &str = "/tenant1";

/// Where the proxy serves the metadata.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// Only at the RFC 8414 §3.1 inserted form.
    Inserted,
    /// Only at the appended form.
    Appended,
    /// At both.
    Both,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    form: Form,
    /// Every well-known path asked for, in order.
    asked: Arc<Mutex<Vec<String>>>,
}

async fn forward(State(p): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let not_found = || {
        Response::builder()
            .status(404)
            .body(Body::from("not here"))
            .unwrap()
    };
    if path.contains("/.well-known/oauth-") {
        p.asked.lock().unwrap().push(path.clone());
    }
    let inserted = format!("{WELL_KNOWN}{TENANT}");
    let appended = format!("{TENANT}{WELL_KNOWN}");
    // The issuer itself has the path `/tenant1` (I-54) and serves both
    // well-known forms; the proxy hides the form the test does not want and
    // forwards every path unchanged.
    if (path == inserted && p.form == Form::Appended)
        || (path == appended && p.form == Form::Inserted)
    {
        return not_found();
    }
    let upstream_path = path.clone();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut rb = p
        .client
        .request(
            parts.method.clone(),
            format!("{}{upstream_path}{query}", p.upstream),
        )
        .body(bytes.to_vec());
    for name in ["authorization", "content-type", "dpop"] {
        if let Some(v) = parts.headers.get(name) {
            rb = rb.header(name, v.as_bytes());
        }
    }
    let up = rb.send().await.unwrap();
    let mut out = Response::builder().status(up.status().as_u16());
    for (k, v) in up.headers() {
        if k.as_str() != "content-length" && k.as_str() != "transfer-encoding" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(up.bytes().await.unwrap())).unwrap()
}

struct Running {
    issuer: String,
    client_id: String,
    client_secret: String,
    asked: Arc<Mutex<Vec<String>>>,
    _issuer: RunningIssuer,
}

/// Our issuer, identifier `http://<proxy>/tenant1`, behind the proxy.
async fn start(form: Form) -> Running {
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_id = format!("http://{}{TENANT}", proxy_listener.local_addr().unwrap());
    let running = RunningIssuer::start(|c| c.issuer = issuer_id.clone())
        .await
        .expect("issuer opens");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = Proxy {
        upstream: running.base_url.clone(),
        client: reqwest::Client::new(),
        form,
        asked: asked.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        axum::serve(proxy_listener, app).await.unwrap();
    });
    Running {
        issuer: issuer_id,
        client_id: running.admin.client_id.clone(),
        client_secret: running.admin.client_secret.clone(),
        asked,
        _issuer: running,
    }
}

async fn run_plan(r: &Running) -> Report {
    let args = IssuerArgs {
        base_url: r.issuer.clone(),
        client_id: Some(r.client_id.clone()),
        client_secret: Some(r.client_secret.clone()),
        timeout_secs: 30,
        token_audience: "https://api.conformance.example".to_owned(),
        ..IssuerArgs::default()
    };
    issuer::run(&args, RunOptions::default())
        .await
        .expect("the run starts")
}

fn problems(report: &Report) -> String {
    report
        .results
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Pass | Outcome::Skipped))
        .map(|r| {
            format!(
                "{} {} {}",
                r.outcome.label(),
                r.info.id,
                r.reason.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn metadata_note(report: &Report) -> String {
    report
        .notes
        .iter()
        .find(|n| n.starts_with("metadata:"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc8414_s3_1_path_issuer_metadata_found_at_the_inserted_form() {
    let r = start(Form::Inserted).await;
    let report = run_plan(&r).await;
    let inserted = format!("{WELL_KNOWN}{TENANT}");
    assert!(
        metadata_note(&report).contains(&inserted),
        "{}",
        metadata_note(&report)
    );
    assert_eq!(r.asked.lock().unwrap().first(), Some(&inserted));
    let (outcome, reason) = report
        .results
        .iter()
        .find(|x| x.info.id == "ISS-3.1-metadata")
        .map(|x| (x.outcome, x.reason.clone()))
        .unwrap();
    assert_eq!(outcome, Outcome::Pass, "{reason:?}");
    assert_eq!(
        report.summary.fail + report.summary.warning,
        0,
        "{}",
        problems(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc8414_s3_1_appended_form_is_the_fallback() {
    let r = start(Form::Appended).await;
    let report = run_plan(&r).await;
    let appended = format!("{TENANT}{WELL_KNOWN}");
    assert!(
        metadata_note(&report).contains(&appended),
        "{}",
        metadata_note(&report)
    );
    let asked = r.asked.lock().unwrap().clone();
    assert_eq!(
        &asked[..2],
        &[format!("{WELL_KNOWN}{TENANT}"), appended],
        "{asked:?}"
    );
    assert_eq!(
        report.summary.fail + report.summary.warning,
        0,
        "{}",
        problems(&report)
    );
}

#[tokio::test]
async fn rfc8414_s3_1_inserted_form_wins_when_both_are_served() {
    let r = start(Form::Both).await;
    let report = issuer::run(
        &IssuerArgs {
            base_url: r.issuer.clone(),
            client_id: Some(r.client_id.clone()),
            client_secret: Some(r.client_secret.clone()),
            timeout_secs: 30,
            ..IssuerArgs::default()
        },
        RunOptions {
            only: vec!["ISS-3.1-metadata".to_owned()],
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    let asked = r.asked.lock().unwrap().clone();
    assert_eq!(
        asked.iter().filter(|p| p.ends_with(WELL_KNOWN)).count(),
        0,
        "{asked:?}"
    );
    assert!(metadata_note(&report).contains(&format!("{WELL_KNOWN}{TENANT}")));
}
