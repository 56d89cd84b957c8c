//! The conformance suite's verifier mode (`ajwt conformance verifier`, mode 3)
//! against this example: the suite acts as a test issuer, starts the
//! `protected-api` binary trusting it (`--exec`), and sends it the good and
//! bad intent tokens and DPoP proofs of the verifier's negative matrix
//! (draft-goswami-agentic-jwt-00 §6.5.3, §9.2.2, RFC 9449). It must pass
//! with no failure and no warning. Two weak resource servers show that the
//! suite can fail: an axum app that accepts any Bearer token, and
//! `protected-api --pop disabled` judged as if proof-of-possession were
//! required.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use ajwt_conformance::report::{Outcome, Report, RunOptions};
use ajwt_conformance::verifier::{self, PopPolicy, VerifierArgs};

fn free_port() -> u16 {
    ajwt_test_kit::free_port().unwrap()
}

/// Arguments for `protected-api` on a free port, started by the runner.
fn args_for_protected_api(extra: &str) -> VerifierArgs {
    let port = free_port();
    let mut args = VerifierArgs::new(&format!("http://127.0.0.1:{port}/patches"));
    args.issuer_addr = format!("127.0.0.1:{}", free_port());
    args.exec = Some(format!(
        "{} --issuer {{issuer}} --addr 127.0.0.1:{port}{extra}",
        env!("CARGO_BIN_EXE_protected-api")
    ));
    args.body = r#"{"package":"lodash","target_version":"4.17.21"}"#.into();
    args
}

fn outcome(report: &Report, id: &str) -> Outcome {
    report
        .results
        .iter()
        .find(|r| r.info.id == id)
        .unwrap_or_else(|| panic!("{id} not in the report"))
        .outcome
}

fn not_passing(report: &Report) -> String {
    report.not_passing()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_api_passes_the_verifier_suite_without_failures_or_warnings() {
    let started = Instant::now();
    let args = args_for_protected_api("");
    let report = verifier::run(&args, RunOptions::default()).await.unwrap();
    eprintln!(
        "{}\nverifier suite against protected-api: {} tests in {:?}",
        report.terminal(),
        report.summary.total,
        started.elapsed()
    );
    assert_eq!(report.summary.total, verifier::catalogue().len());
    assert_eq!(report.summary.fail, 0, "{}", not_passing(&report));
    assert_eq!(report.summary.warning, 0, "{}", not_passing(&report));
    assert_eq!(report.summary.skipped, 0, "{}", not_passing(&report));
    assert_eq!(report.summary.pass, report.summary.total);
    assert!(!report.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_api_also_passes_with_an_eddsa_issuer() {
    let mut args = args_for_protected_api("");
    args.alg = verifier::SigAlg::EdDsa;
    let options = RunOptions {
        only: vec!["6.5.3".into()],
        ..RunOptions::default()
    };
    let report = verifier::run(&args, options).await.unwrap();
    assert!(report.summary.total > 10);
    assert_eq!(
        report.summary.pass,
        report.summary.total,
        "{}",
        not_passing(&report)
    );
}

/// RFC 9449 §7.2 (I-49): under `--pop optional` a `cnf`-bound intent token
/// presented as `Bearer` is refused too, so the runner's `--pop optional`
/// runs every DPoP test (none skipped) and protected-api passes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_s7_2_pop_optional_runs_and_passes_the_bearer_presentation_test() {
    let mut args = args_for_protected_api(" --pop optional");
    args.pop = verifier::PopPolicy::Optional;
    let options = RunOptions {
        only: vec!["9.2.2".into()],
        ..RunOptions::default()
    };
    let report = verifier::run(&args, options).await.unwrap();
    assert_eq!(
        outcome(&report, "VER-9.2.2-dpop-bearer-scheme"),
        Outcome::Pass,
        "{}",
        not_passing(&report)
    );
    assert_eq!(report.summary.skipped, 0, "{}", not_passing(&report));
    assert_eq!(
        report.summary.pass,
        report.summary.total,
        "{}",
        not_passing(&report)
    );
}

/// A resource server that checks nothing: any `Authorization: Bearer`
/// (or DPoP) request is "authorized".
async fn start_weak_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    async fn handler(headers: HeaderMap) -> (StatusCode, &'static str) {
        if headers.contains_key("authorization") {
            (StatusCode::OK, "{\"status\":\"patch applied\"}")
        } else {
            (StatusCode::UNAUTHORIZED, "{}")
        }
    }
    let app = axum::Router::new().route("/patches", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/patches", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_any_token_fails_the_suite() {
    let (url, task) = start_weak_server().await;
    let mut args = VerifierArgs::new(&url);
    args.issuer_addr = "127.0.0.1:0".into();
    let report = verifier::run(&args, RunOptions::default()).await.unwrap();
    task.abort();
    assert!(report.failed());
    assert_eq!(
        outcome(&report, "VER-6.5.3-valid-token-accepted"),
        Outcome::Pass
    );
    for id in [
        "VER-6.5.3-alg-none",
        "VER-6.5.3-alg-hs256-public-key-secret",
        "VER-6.5.3-unknown-kid",
        "VER-6.5.3-tampered-signature",
        "VER-6.5.3-expired",
        "VER-6.5.3-wrong-audience",
        "VER-6.5.3-insufficient-scope",
        "VER-4.4.2-missing-cnf",
        "VER-9.1.1-malformed-agent-checksum",
    ] {
        assert_eq!(outcome(&report, id), Outcome::Fail, "{id}");
    }
    // Proof-of-possession is a SHOULD of §9.2.2: warnings, failures under --strict.
    assert_eq!(
        outcome(&report, "VER-9.2.2-dpop-stolen-token-other-key"),
        Outcome::Warning
    );
    let reason = report
        .results
        .iter()
        .find(|r| r.info.id == "VER-6.5.3-alg-none")
        .unwrap()
        .reason
        .clone()
        .unwrap();
    assert!(
        reason.contains("expected 401") && reason.contains("got 200"),
        "{reason}"
    );
    assert!(report.summary.fail > 20, "{:?}", report.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_everything_fails_the_valid_token_test_and_skips_the_rest() {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/patches",
        axum::routing::post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", r#"Bearer error="invalid_token""#)],
                "{}",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/patches", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let mut args = VerifierArgs::new(&url);
    args.issuer_addr = "127.0.0.1:0".into();
    let report = verifier::run(&args, RunOptions::default()).await.unwrap();
    task.abort();
    assert!(report.failed());
    assert_eq!(
        outcome(&report, "VER-6.5.3-valid-token-accepted"),
        Outcome::Fail
    );
    assert_eq!(report.summary.fail, 1, "{}", not_passing(&report));
    assert_eq!(report.summary.skipped, report.summary.total - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_api_without_pop_fails_the_pop_tests_under_strict() {
    let mut args = args_for_protected_api(" --pop disabled");
    args.pop = PopPolicy::Required;
    let options = RunOptions {
        strict: true,
        only: vec!["9.2.2".into(), "VER-6.5.3-valid-token-accepted".into()],
        ..RunOptions::default()
    };
    let report = verifier::run(&args, options).await.unwrap();
    assert!(report.failed());
    assert_eq!(
        outcome(&report, "VER-6.5.3-valid-token-accepted"),
        Outcome::Pass
    );
    for id in [
        "VER-9.2.2-dpop-missing-proof",
        "VER-9.2.2-dpop-bearer-scheme",
        "VER-9.2.2-dpop-stolen-token-other-key",
        "VER-9.2.2-dpop-replayed-proof",
        "VER-9.2.2-dpop-wrong-htu",
    ] {
        assert_eq!(outcome(&report, id), Outcome::Fail, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_server_that_never_listens_is_a_setup_error() {
    let mut args = args_for_protected_api("");
    // Trusts an issuer that does not exist: discovery fails, the API exits.
    args.exec = Some(format!(
        "{} --issuer http://127.0.0.1:9 --addr 127.0.0.1:{}",
        env!("CARGO_BIN_EXE_protected-api"),
        free_port()
    ));
    args.wait_secs = 20;
    let err = verifier::run(&args, RunOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ajwt_conformance::Error::Setup(m) if m.contains("exited")),
        "{err}"
    );
}
