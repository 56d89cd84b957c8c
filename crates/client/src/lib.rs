//! Client shim of *draft-goswami-agentic-jwt-00* (Agentic JWT), §2 "Client
//! Shim Library": what an agent runtime links so that each protected call
//! costs one line.
//!
//! - [`AgentIdentity`]: the live agent specification (§5.2.1) and the
//!   agent's key (Ed25519 under `EdDSA` or RFC 9864 `Ed25519`, or P-256; [`load_or_generate_key`] persists it as
//!   PKCS#8 PEM with mode 0600). The checksum is recomputed from the live
//!   specification before every token request (§5.5.1), so a prompt changed
//!   at runtime (threat T4, §9.1) is refused by the issuer with
//!   `agent_checksum_mismatch` instead of being hidden by a cached value.
//! - [`IssuerClient`]: client credentials (RFC 6749 §4.4, §4.2.3) with the
//!   client token cached and refreshed before expiry, the `agent_checksum`
//!   grant (§4.2), and the registration helper for CI/CD pipelines
//!   ([`IssuerClient::register_agent`], [`IssuerClient::register_workflow`],
//!   §5.4, §5.4.4 note, §6.3), idempotent when nothing changed.
//! - [`WorkflowTracker`]: the workflow, the completed steps and the
//!   delegation chain; [`WorkflowTracker::delegate`] /
//!   [`AgentSession::delegate`] give a child agent its context, with the
//!   parent's intent token as `parent_token` (§4.3.4, §6.6).
//! - [`TokenCache`]: intent tokens per (agent, checksum, step, audience,
//!   scopes, delegation context), reused until 30 s before `exp`.
//! - [`AgentSession::send`]: the HTTP wrapper. `Authorization: DPoP <token>`
//!   plus a fresh DPoP proof per request (RFC 9449; agent-level
//!   proof-of-possession, §9.2.2), one retry on `use_dpop_nonce`, retries
//!   with backoff only on network errors, `5xx` and `429` (honouring
//!   `Retry-After`), never on other `4xx`. Refusals are
//!   [`ClientError::Rejected`] with the status, the OAuth `error`,
//!   `error_description` and `missing_steps`.
//!
//! # Configuration
//!
//! From code with [`ClientConfig::new`], or from the environment with
//! [`ClientConfig::from_env`] / [`IssuerClient::from_env`]:
//!
//! | Variable             | Meaning                                   |
//! |----------------------|-------------------------------------------|
//! | `AJWT_ISSUER`        | issuer base URL, e.g. `http://127.0.0.1:8080` |
//! | `AJWT_CLIENT_ID`     | OAuth client id (`generate:intent-token`; `register:intent` for registration) |
//! | `AJWT_CLIENT_SECRET` | its secret                                |
//!
//! Secrets and tokens are never logged nor shown by `Debug`.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), ajwt_client::ClientError> {
//! use std::sync::Arc;
//! use ajwt_client::*;
//! use ajwt_checksum::AgentSpec;
//! use ajwt_jose::Alg;
//!
//! let spec = AgentSpec::from_json(br#"{"agent_id":"vulnerability-patcher-v1",
//!     "prompt":"Apply approved patches.","tools":[]}"#)
//!     .map_err(|e| ClientError::Spec(e.to_string()))?;
//! let key = load_or_generate_key(std::path::Path::new("patcher.pem"), Alg::EdDsa)?;
//! let patcher = AgentIdentity::new(spec, key);
//! let issuer = Arc::new(IssuerClient::from_env()?);
//! issuer.register_agent(&patcher, None).await?;
//! # let context_from_parent = WorkflowTracker::new("auto-patch-workflow-v1");
//! let session = AgentSession::new(patcher, issuer, context_from_parent, "https://api.github.com")?;
//! let r = session
//!     .send(Method::POST, "https://api.github.com/patches", None,
//!           Some("step_4_apply_patch"), &["repo:write"])
//!     .await?;
//! # let _ = r;
//! # Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod error;
pub mod identity;
pub mod issuer;
pub mod retry;
pub mod session;
pub mod tracker;

pub use cache::{CacheKey, TokenCache, REFRESH_MARGIN_SECS};
pub use error::{ClientError, Origin};
pub use identity::{load_or_generate_key, AgentIdentity};
pub use issuer::{
    basic_authorization, metadata_urls, AgentRegistration, ClientConfig, IssuerClient,
    IssuerMetadata, WorkflowRegistration,
};
pub use retry::RetryPolicy;
pub use session::{AgentSession, ApiResponse, Method};
pub use tracker::WorkflowTracker;
