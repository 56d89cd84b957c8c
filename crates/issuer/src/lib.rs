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

pub mod config;
pub mod dpop;
pub mod http;
pub mod keys;
pub mod secrets;
pub mod service;
pub mod store;

use std::future::Future;
use std::sync::Arc;

pub use config::IssuerConfig;
pub use service::Issuer;

/// Serves the API on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish and closes the store.
pub async fn serve(
    issuer: Arc<Issuer>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = http::router(issuer.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    issuer.store().close().await;
    result
}
