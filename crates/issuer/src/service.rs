//! The issuance pipeline, independent of HTTP: client credentials (RFC 6749
//! §4.4, RFC 9068), the `agent_checksum` grant in the order of §4.3.1, agent
//! registration (§5.4, §6.2), workflow registration (§6.3), and the operator
//! hooks: agent revocation (§5.6.1 REVOKED) and signing-key rotation.
//! Split by concern: [`error`](ApiError), client authentication, registration,
//! the grant, the operator hooks and the data directory.

use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

use crate::config::IssuerConfig;
use crate::keys::KeyRing;
use crate::store::Store;

/// Scope that allows registering agents and workflows (§9.1.3).
pub const SCOPE_REGISTER: &str = "register:intent";
/// Scope that allows requesting intent tokens (§4.2.3).
pub const SCOPE_GENERATE: &str = "generate:intent-token";
/// Scope of the operator hooks: revoking an agent (§5.6.1 REVOKED) and
/// rotating the signing keys (`/intent/admin/*`).
pub const SCOPE_ADMIN: &str = "admin:intent";
/// Scope a client needs at the RFC 7662 introspection endpoint (I-80).
pub const SCOPE_INTROSPECT: &str = "introspect:intent";
/// `typ` of client access tokens (RFC 9068 §2.1).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// `typ` of intent tokens.
pub const TYP_INTENT_TOKEN: &str = "JWT";
/// File written on first start with the bootstrap admin credentials.
pub const ADMIN_CLIENT_FILE: &str = "admin-client.json";

/// The project's one clock (`ajwt_protocol::clock`), re-exported here for
/// existing callers.
pub use ajwt_protocol::clock::{Clock, FixedClock, SystemClock};

mod admin;
mod audit;
mod client_auth;
mod client_token_cache;
mod data_dir;
mod error;
mod grant;
mod registration;
mod tokens;

pub use admin::{RevokeAgentResponse, RotateKeysResponse, KEY_MAINTENANCE_INTERVAL};
pub use client_auth::{ClientContext, ClientCredentials};
pub use client_token_cache::MAX_CACHED_CLIENT_TOKENS;
pub use data_dir::StartupError;
pub use error::ApiError;
pub use tokens::{AgentLifecycle, RevokeRegistrationResponse, StatusListResponse};

/// The authorization server.
pub struct Issuer {
    config: IssuerConfig,
    store: Arc<dyn Store>,
    /// The current key ring; replaced as a whole by [`Issuer::rotate_keys`].
    keys: RwLock<Arc<KeyRing>>,
    /// Serializes key rotations (each builds on the ring it replaces).
    rotation: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// DPoP proof `jti`s seen at the token endpoint (RFC 9449 §11.1).
    dpop_replay: crate::dpop::ReplayCache,
    /// Rate limits (I-73).
    limits: crate::rate_limit::RateLimits,
    /// Signed status list tokens, reused until stale (issue 13).
    status_tokens: tokens::StatusTokenCache,
    /// Unix second of the last pruning of token records.
    last_prune: std::sync::atomic::AtomicI64,
    /// Prometheus metrics (I-114), this issuer's own recorder.
    metrics: crate::metrics::Metrics,
    /// Verified client access tokens, until their `exp` (I-145).
    client_tokens: client_token_cache::ClientTokenCache,
}

pub(crate) fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl Issuer {
    /// An issuer over explicit parts (tests, embedding). The store is
    /// wrapped in [`crate::store::audit::AuditedStore`] (§9.1.4 audit trail).
    pub fn new(
        config: IssuerConfig,
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Issuer {
        let policy = config.rotation_policy();
        // I-113: replicas on one database share the failure limits.
        let limits = match config.database_url {
            Some(_) => crate::rate_limit::RateLimits::shared(&config.rate_limits, store.clone()),
            None => crate::rate_limit::RateLimits::new(&config.rate_limits),
        };
        Issuer {
            limits,
            config,
            // §9.1.4: every registry access is logged on target `audit`.
            store: Arc::new(crate::store::audit::AuditedStore::new(store)),
            // I-90: the ring follows the configured rotation policy.
            keys: RwLock::new(Arc::new(keys.with_policy(policy))),
            rotation: tokio::sync::Mutex::new(()),
            clock,
            dpop_replay: crate::dpop::ReplayCache::default(),
            status_tokens: tokens::StatusTokenCache::default(),
            last_prune: std::sync::atomic::AtomicI64::new(0),
            metrics: crate::metrics::Metrics::new(),
            client_tokens: client_token_cache::ClientTokenCache::default(),
        }
    }

    /// This issuer with room for `capacity` verified client access tokens
    /// in its cache (I-145; default [`MAX_CACHED_CLIENT_TOKENS`], 0 turns
    /// the cache off).
    pub fn with_client_token_cache(mut self, capacity: usize) -> Issuer {
        self.client_tokens = client_token_cache::ClientTokenCache::new(capacity);
        self
    }

    /// How many verified client access tokens are cached (I-145).
    pub fn cached_client_tokens(&self) -> usize {
        self.client_tokens.len()
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The rate limits (I-73).
    pub fn rate_limits(&self) -> &crate::rate_limit::RateLimits {
        &self.limits
    }

    /// The store (for graceful shutdown and readiness).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current key ring (a snapshot: a later rotation does not change it).
    ///
    /// The snapshot is re-taken when a pending key's activation or a key's
    /// retirement has come (I-90), so signing switches to a published key
    /// at its `activates_at` without any other action.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        // A ring is swapped whole, so a poisoned lock still holds a valid one.
        let ring = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let now = self.now_secs();
        if !ring.is_stale(now) {
            return ring;
        }
        let fresh = Arc::new(ring.at(now));
        let mut slot = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        // A rotation may have swapped a new ring in meanwhile: keep it.
        if Arc::ptr_eq(&slot, &ring) {
            *slot = fresh.clone();
            fresh
        } else {
            slot.clone()
        }
    }

    /// The issuer's clock in Unix seconds (0 before 1970).
    pub(crate) fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now()).unwrap_or(0)
    }

    /// The signing keys' JWK Set (RFC 7517).
    pub fn jwks(&self) -> Value {
        self.key_ring().jwks()
    }

    /// RFC 8414 authorization server metadata. Every URL is under the
    /// issuer identifier, path included (RFC 8414 §3.1, I-54).
    pub fn metadata(&self) -> Value {
        let base = self.config.issuer.trim_end_matches('/');
        let dpop_algs: Vec<&str> = ajwt_jose::Alg::ALL.iter().map(|a| a.as_str()).collect();
        json!({
            "issuer": self.config.issuer,
            "token_endpoint": self.config.token_endpoint(),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "grant_types_supported": [
                "client_credentials",
                "agent_checksum",
                ajwt_protocol::wire::GRANT_TYPE_URN,
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": [SCOPE_REGISTER, SCOPE_GENERATE, SCOPE_ADMIN, SCOPE_INTROSPECT],
            // RFC 8414 §2 makes this REQUIRED and Authlib refuses `[]`;
            // `none` (OAuth 2.0 Multiple Response Type Encoding Practices
            // §4) says no response type issues anything (I-56).
            "response_types_supported": ["none"],
            // RFC 9449 §5.1: proofs accepted at the token endpoint (I-55).
            "dpop_signing_alg_values_supported": dpop_algs,
            "agent_registration_endpoint": format!("{base}/intent/register/agent"),
            "workflow_registration_endpoint": format!("{base}/intent/register/workflow"),
            "client_registration_endpoint": format!("{base}/intent/register/client"),
            "ajwt_admin_revoke_agent_endpoint": format!("{base}/intent/admin/revoke-agent"),
            "ajwt_admin_rotate_keys_endpoint": format!("{base}/intent/admin/rotate-keys"),
            "intent_token_signing_alg_values_supported": [self.key_ring().current_alg().as_str()],
            // RFC 7009 / RFC 7662 (RFC 8414 §2), issue 13.
            "revocation_endpoint": format!("{base}/intent/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint": format!("{base}/intent/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "ajwt_introspection_scope": SCOPE_INTROSPECT,
            "ajwt_status_list_endpoint": format!("{base}/intent/status-lists"),
            "ajwt_agent_lifecycle_endpoint": format!("{base}/intent/agents"),
            "ajwt_admin_revoke_registration_endpoint": format!("{base}/intent/admin/revoke-registration"),
        })
    }
}

// ---- issue 14: shared limits (I-113) and metrics (I-114) ----------------

impl Issuer {
    /// This issuer with its rate limits and DPoP replay check shared
    /// through its store (I-113), as [`Issuer::new`] chooses when
    /// `database_url` is set: for tests and embeddings running several
    /// issuers on one database.
    pub fn with_shared_limits(mut self) -> Issuer {
        self.limits =
            crate::rate_limit::RateLimits::shared(&self.config.rate_limits, self.store.clone());
        self
    }

    /// The metrics (I-114).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The Prometheus text of the metrics, after refreshing the store and
    /// key gauges when they are older than [`crate::metrics::STATS_MIN_AGE`]
    /// (one refresh at a time; others render the cached values, so a scrape
    /// loop costs no database work). A store that does not answer within
    /// [`crate::metrics::STATS_TIMEOUT`] leaves the previous values.
    pub async fn render_metrics(&self) -> String {
        // Wall-clock time (operations, not protocol): the refresh age.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(1);
        if self.metrics.claim_refresh(now_ms) {
            match tokio::time::timeout(crate::metrics::STATS_TIMEOUT, self.store.stats()).await {
                Ok(Ok(stats)) => self.metrics.set_store_stats(&stats, now_ms),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "store statistics unavailable for /metrics")
                }
                Err(_) => tracing::warn!("store statistics timed out for /metrics"),
            }
            self.metrics.set_key_states(&self.key_ring().describe());
        }
        self.metrics.render()
    }
}
