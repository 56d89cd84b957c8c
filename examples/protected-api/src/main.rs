//! A patch-application API protected by Agentic JWT (draft-goswami-agentic-jwt-00
//! §6.5): `POST /patches` requires an intent token with `repo:write`, issued
//! for step `step_4_apply_patch` of `auto-patch-workflow-v1`, presented with a
//! DPoP proof made by the agent's own key (§9.2.2). It trusts a running
//! `ajwt serve`, whose keys it discovers through RFC 8414 metadata.
//!
//! ```sh
//! cargo run -p ajwt-cli -- serve &                       # the issuer on :8080
//! cargo run -p ajwt-example-protected-api                 # this API on :8090
//! ```

use std::sync::Arc;
use std::time::Duration;

use ajwt_verifier::{
    HttpFetcher, Intent, IntentLayer, KeySource, Requirements, Verifier, VerifierConfig,
};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "protected-api",
    about = "Example resource server protected by Agentic JWT"
)]
struct Args {
    /// Listen address
    #[arg(long, env = "API_ADDR", default_value = "127.0.0.1:8090")]
    addr: std::net::SocketAddr,
    /// The trusted issuer
    #[arg(long, env = "API_ISSUER", default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This API's audience identifier (tokens must be issued for it)
    #[arg(long, env = "API_AUDIENCE", default_value = "https://api.github.com")]
    audience: String,
    /// The URL clients use to reach this API (forms the DPoP htu)
    #[arg(long, env = "API_PUBLIC_URL")]
    public_url: Option<String>,
    /// Proof-of-possession policy: required, optional or disabled
    #[arg(long, env = "API_POP", default_value = "required")]
    pop: String,
}

/// The protected operation (§6.5.3 step 9: process the request).
async fn apply_patch(Intent(intent): Intent) -> Json<serde_json::Value> {
    let c = &intent.claims;
    Json(serde_json::json!({
        "status": "patch applied",
        "applied_by": c.sub,
        "workflow_id": c.intent.workflow_id,
        "workflow_step": c.intent.workflow_step,
        "delegation_chain": c.intent.delegation_chain,
        "registration_id": c.agent_proof.registration_id,
        "proof_key": intent.dpop_jkt,
    }))
}

async fn healthz() -> &'static str {
    "ok"
}

/// The router, for tests and `main`.
fn app(verifier: Arc<Verifier>, public_url: &str) -> Router {
    let requirements = Requirements::scopes(["repo:write"])
        .at_steps("auto-patch-workflow-v1", ["step_4_apply_patch"]);
    Router::new()
        .route(
            "/patches",
            post(apply_patch).route_layer(IntentLayer::new(verifier, public_url, requirements)),
        )
        .route("/healthz", get(healthz))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let result = async {
        let mut config = VerifierConfig::new(&args.issuer, &args.audience);
        config.pop = args.pop.parse()?;
        let fetcher = Arc::new(HttpFetcher::new()?);
        let keys = KeySource::discover(&args.issuer, fetcher, Duration::from_secs(30)).await?;
        let verifier = Arc::new(Verifier::new(config, keys));
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.addr));
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        tracing::info!(addr = %args.addr, issuer = %args.issuer, "protected API listening");
        axum::serve(listener, app(verifier, &public_url))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
