//! Verifier mode with Ed25519 under its RFC 9864 name (issue 11 item 1): the
//! runner's own josekit test issuer signs under `--alg Ed25519`, and the
//! Ed25519 agent proves possession under `EdDSA` and under `Ed25519`. The
//! resource server is an axum app protected by `ajwt-verifier`, started once
//! the runner's issuer listens; a server whose allow-list lacks `Ed25519`
//! fails exactly the tests that need it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use ajwt_conformance::report::{Outcome, Report, RunOptions};
use ajwt_conformance::verifier::{self, SigAlg, VerifierArgs};
use ajwt_jose::Alg;
use ajwt_verifier::{
    HttpFetcher, Intent, IntentLayer, KeySource, Requirements, Verifier, VerifierConfig,
};

const DPOP_EDDSA: &str = "VER-9.2.2-dpop-ed25519-key-alg-eddsa";
const DPOP_ED25519: &str = "VER-9.2.2-dpop-ed25519-key-alg-ed25519";

fn free_port() -> u16 {
    ajwt_test_kit::free_port().unwrap()
}

async fn patch(Intent(_): Intent) -> &'static str {
    "patched"
}

/// Starts, once the runner's issuer at `issuer` answers, a resource server
/// on `addr` trusting it, accepting `algorithms`.
fn spawn_resource_server(issuer: String, addr: String, algorithms: Vec<Alg>) {
    tokio::spawn(async move {
        let metadata = format!("{issuer}/.well-known/oauth-authorization-server");
        // Discovery below fails with the reason if it never answers.
        let _ = ajwt_test_kit::wait_ok(&metadata, Duration::from_secs(15)).await;
        let mut config = VerifierConfig::new(&issuer, "https://api.github.com");
        config.algorithms = algorithms;
        let keys = KeySource::discover(
            &issuer,
            Arc::new(HttpFetcher::new().unwrap()),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let verifier = Arc::new(Verifier::new(config, keys));
        let app = axum::Router::new().route(
            "/patches",
            axum::routing::post(patch).route_layer(IntentLayer::new(
                verifier,
                format!("http://{addr}"),
                Requirements::scopes(["repo:write"])
                    .at_steps("auto-patch-workflow-v1", ["step_4_apply_patch"]),
            )),
        );
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

async fn run_against(alg: SigAlg, algorithms: Vec<Alg>) -> Report {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = VerifierArgs::new(&format!("http://{addr}/patches"));
    args.issuer_addr = format!("127.0.0.1:{}", free_port());
    args.alg = alg;
    spawn_resource_server(format!("http://{}", args.issuer_addr), addr, algorithms);
    verifier::run(
        &args,
        RunOptions {
            strict: true,
            ..RunOptions::default()
        },
    )
    .await
    .expect("the run starts")
}

fn outcome(report: &Report, id: &str) -> (Outcome, String) {
    let r = report.results.iter().find(|r| r.info.id == id).unwrap();
    (r.outcome, r.reason.clone().unwrap_or_default())
}

fn not_passing(report: &Report) -> String {
    report.not_passing()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9864_test_issuer_signing_with_ed25519_passes_the_whole_matrix() {
    let report = run_against(SigAlg::Ed25519, Alg::ALL.to_vec()).await;
    assert_eq!(report.summary.total, verifier::catalogue().len());
    assert_eq!(
        report.summary.pass,
        report.summary.total,
        "{}",
        not_passing(&report)
    );
    assert_eq!(outcome(&report, DPOP_ED25519).0, Outcome::Pass);
    assert_eq!(outcome(&report, DPOP_EDDSA).0, Outcome::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9864_a_verifier_without_ed25519_fails_only_the_ed25519_proof_test() {
    let without: Vec<Alg> = Alg::ALL
        .into_iter()
        .filter(|a| *a != Alg::Ed25519)
        .collect();
    let report = run_against(SigAlg::Es256, without).await;
    let (o, reason) = outcome(&report, DPOP_ED25519);
    assert_eq!(o, Outcome::Fail, "{reason}");
    assert!(reason.contains("expected acceptance"), "{reason}");
    assert_eq!(outcome(&report, DPOP_EDDSA).0, Outcome::Pass);
    let failing: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| r.info.id.as_str())
        .collect();
    assert_eq!(failing, [DPOP_ED25519], "{}", not_passing(&report));
}
