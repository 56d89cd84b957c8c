//! The authorization server of *draft-goswami-agentic-jwt-00* (Agentic JWT):
//! agent registration (§5.4, §6.2), workflow registration (§6.3), the
//! `agent_checksum` grant validated in the order of §4.3.1 with the delegation
//! and scope rules of §4.3.4 and anchor A3, intent-token creation (§4.4),
//! and the OAuth plumbing around them (client credentials per RFC 6749 §4.4
//! and RFC 9068, JWKS per RFC 7517, metadata per RFC 8414), plus two operator
//! hooks under scope `admin:intent`: agent revocation (§5.6.1 REVOKED) and
//! signing-key rotation. Every protocol rule
//! comes from `ajwt-protocol`; this crate adds storage ([`store`]), keys
//! ([`keys`]), the pipeline ([`service`]) and HTTP ([`http`]). `ajwt serve`
//! runs it.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod config;
pub mod dpop;
pub mod http;
pub mod kek;
pub mod key_store;
pub mod keys;
pub mod metrics;
pub mod rate_limit;
pub mod secrets;
mod server;
pub mod service;
pub mod status;
pub mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::IssuerConfig;
pub use service::Issuer;
use service::{ClientCredentials, StartupError};

/// Serves the API on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish for up to `shutdown_grace`, drops the remaining
/// connections and closes the store. The connection limit and the header,
/// body and idle timeouts of the issuer's configuration apply (I-67).
pub async fn serve(
    issuer: Arc<Issuer>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = http::router(issuer.clone());
    let limits = server::Limits::of(issuer.config());
    let maintenance = tokio::spawn(maintain_keys(Arc::downgrade(&issuer)));
    // Signed checkpoints of the audit trail's head (I-104).
    let checkpoints = issuer
        .config()
        .audit_checkpoint_interval
        .map(|every| tokio::spawn(issuer.clone().run_audit_checkpoints(every)));
    let result = server::run(app, listener, shutdown, limits).await;
    maintenance.abort();
    if let Some(task) = checkpoints {
        task.abort();
        if let Err(e) = issuer.audit_checkpoint().await {
            tracing::warn!(error = %e, "cannot sign the audit trail head at shutdown (I-104)");
        }
    }
    issuer.store().close().await;
    result
}

/// An issuer this process started on a loopback port with a new data
/// directory: the demos' in-process issuer.
#[derive(Debug, Clone)]
pub struct LocalIssuer {
    /// Its URL, also its `iss` (`http://127.0.0.1:<port>`).
    pub url: String,
    /// The bootstrap admin client it created.
    pub admin: ClientCredentials,
}

/// Opens a new issuer (default configuration) in `data_dir`, which must not
/// hold one yet, on an ephemeral 127.0.0.1 port, and serves it on a spawned
/// task for as long as the runtime runs.
pub async fn spawn_local(data_dir: PathBuf) -> Result<LocalIssuer, StartupError> {
    let listen_error = |reason: std::io::Error| StartupError::Listen {
        addr: "127.0.0.1:0".into(),
        reason: reason.to_string(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let url = format!("http://{addr}");
    let config = IssuerConfig {
        addr,
        data_dir: data_dir.clone(),
        issuer: url.clone(),
        ..IssuerConfig::default()
    };
    let (issuer, admin_file) = Issuer::open(config).await?;
    let not_new = |reason: String| StartupError::DataDir {
        path: data_dir.display().to_string(),
        reason,
    };
    let admin_file = admin_file
        .ok_or_else(|| not_new("already holds an issuer (no new admin client)".into()))?;
    let admin = std::fs::read(&admin_file)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| not_new(format!("{}: {e}", admin_file.display())))?;
    tokio::spawn(serve(Arc::new(issuer), listener, std::future::pending()));
    Ok(LocalIssuer { url, admin })
}

/// Runs [`Issuer::maintain_keys`] every [`service::KEY_MAINTENANCE_INTERVAL`]
/// seconds while the issuer lives (I-90); failures are logged and retried.
async fn maintain_keys(issuer: std::sync::Weak<Issuer>) {
    let period = std::time::Duration::from_secs(service::KEY_MAINTENANCE_INTERVAL);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(issuer) = issuer.upgrade() else {
            return;
        };
        if let Err(e) = issuer.maintain_keys().await {
            tracing::error!(error = %e, "signing key maintenance failed; retrying");
        }
    }
}
