//! A patch-application API protected by Agentic JWT (draft-goswami-agentic-jwt-00
//! §6.5): `POST /patches` requires an intent token with `repo:write`, issued
//! for step `step_4_apply_patch` of `auto-patch-workflow-v1`, presented with a
//! DPoP proof made by the agent's own key (§9.2.2). It trusts a running
//! `ajwt serve`, whose keys it discovers through RFC 8414 metadata.
//!
//! The `protected-api` binary is a thin wrapper around [`run`]; tests and
//! other programs can start the same server in-process with [`serve`] on a
//! listener of their own.
//!
//! ```sh
//! cargo run -p ajwt-cli -- serve &                       # the issuer on :8080
//! cargo run -p ajwt-example-protected-api                 # this API on :8090
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ajwt_verifier::{
    HttpFetcher, Intent, IntentLayer, KeySource, Requirements, RotatingNonces, Verifier,
    VerifierConfig,
};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;

/// Command line (flags, each also an environment variable).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "protected-api",
    about = "Example resource server protected by Agentic JWT"
)]
pub struct Args {
    /// Listen address
    #[arg(long, env = "API_ADDR", default_value = "127.0.0.1:8090")]
    pub addr: std::net::SocketAddr,
    /// The trusted issuer
    #[arg(long, env = "API_ISSUER", default_value = "http://127.0.0.1:8080")]
    pub issuer: String,
    /// This API's audience identifier (tokens must be issued for it)
    #[arg(long, env = "API_AUDIENCE", default_value = "https://api.github.com")]
    pub audience: String,
    /// The URL clients use to reach this API (forms the DPoP htu)
    #[arg(long, env = "API_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Proof-of-possession policy: required, optional or disabled
    #[arg(long, env = "API_POP", default_value = "required")]
    pub pop: String,
    /// Require server-provided DPoP nonces (RFC 9449 §8), rotated every
    /// --dpop-nonce-lifetime seconds; the previous nonce stays valid as long again
    #[arg(long, env = "API_DPOP_NONCE")]
    pub dpop_nonce: bool,
    /// Seconds a DPoP nonce is handed out before rotation (with --dpop-nonce)
    #[arg(long, env = "API_DPOP_NONCE_LIFETIME", default_value_t = 300)]
    pub dpop_nonce_lifetime: u64,
    /// Do not check tokens against the issuer's Token Status List (checked by default, I-92)
    #[arg(long, env = "API_NO_STATUS_LIST")]
    pub no_status_list: bool,
    /// Accept a token whose status list cannot be fetched or verified (default: refuse with 503, I-92)
    #[arg(long, env = "API_STATUS_LIST_FAIL_OPEN")]
    pub status_list_fail_open: bool,
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

/// The router: `POST /patches` behind [`IntentLayer`], and `/healthz`.
pub fn app(verifier: Arc<Verifier>, public_url: &str) -> Router {
    let requirements = Requirements::scopes(["repo:write"])
        .at_steps("auto-patch-workflow-v1", ["step_4_apply_patch"]);
    Router::new()
        .route(
            "/patches",
            post(apply_patch).route_layer(IntentLayer::new(verifier, public_url, requirements)),
        )
        .route("/healthz", get(healthz))
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `--pop` is not `required`, `optional` or `disabled`.
    #[error(transparent)]
    Pop(#[from] ajwt_verifier::UnknownPopPolicy),
    /// The HTTP client for key discovery could not be built.
    #[error(transparent)]
    Fetcher(#[from] ajwt_verifier::FetchError),
    /// The issuer's RFC 8414 metadata or JWKS could not be fetched.
    #[error(transparent)]
    Discovery(#[from] ajwt_verifier::DiscoveryError),
    /// `--dpop-nonce-lifetime` is not usable.
    #[error(transparent)]
    Nonce(#[from] ajwt_verifier::NonceError),
    /// Listening or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The verifier `args` describe: the issuer's keys discovered through
/// RFC 8414 metadata, the PoP policy, and rotating nonces with `--dpop-nonce`.
pub async fn verifier(args: &Args) -> Result<Arc<Verifier>, StartError> {
    let mut config = VerifierConfig::new(&args.issuer, &args.audience);
    config.pop = args.pop.parse()?;
    let fetcher = Arc::new(HttpFetcher::new()?);
    let keys = KeySource::discover(&args.issuer, fetcher.clone(), Duration::from_secs(30)).await?;
    let mut verifier = Verifier::new(config, keys);
    if !args.no_status_list {
        // I-92: revoked tokens are refused within the list's ttl.
        let mut status = ajwt_verifier::StatusListConfig::new(&args.issuer);
        status.fail_open = args.status_list_fail_open;
        verifier = verifier.with_status_lists(status, fetcher);
    }
    if args.dpop_nonce {
        let lifetime = Duration::from_secs(args.dpop_nonce_lifetime);
        let nonces = RotatingNonces::new(lifetime, lifetime)?;
        verifier = verifier.with_nonces(Arc::new(nonces));
    }
    Ok(Arc::new(verifier))
}

/// Serves the API on `listener` until `shutdown` completes. The public URL
/// defaults to `http://<listener address>`.
pub async fn serve(
    args: &Args,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let verifier = verifier(args).await?;
    let local = listener.local_addr().map_err(|source| StartError::Io {
        context: "listener address".to_owned(),
        source,
    })?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    tracing::info!(addr = %local, issuer = %args.issuer, nonces = args.dpop_nonce, "protected API listening");
    axum::serve(listener, app(verifier, &public_url))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| StartError::Io {
            context: "serving".to_owned(),
            source,
        })
}

/// Binds `args.addr` and serves until Ctrl-C (the `protected-api` binary).
pub async fn run(args: Args) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|source| StartError::Io {
            context: format!("cannot listen on {}", args.addr),
            source,
        })?;
    serve(&args, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_defaults() {
        let a = Args::try_parse_from(["protected-api"]).unwrap();
        assert_eq!(a.addr.to_string(), "127.0.0.1:8090");
        assert!(!a.dpop_nonce);
        assert_eq!(a.dpop_nonce_lifetime, 300);
        let a = Args::try_parse_from([
            "protected-api",
            "--dpop-nonce",
            "--dpop-nonce-lifetime",
            "60",
        ])
        .unwrap();
        assert!(a.dpop_nonce);
        assert_eq!(a.dpop_nonce_lifetime, 60);
    }
}
