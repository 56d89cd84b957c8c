//! Persistent state of the issuer behind one trait (§4.7.1 agent registry,
//! §4.7.2 workflow registry, OAuth clients). The embedded SQLite store is
//! [`sqlite::SqliteStore`]; [`cache::CachedStore`] caches agent lookups
//! (§4.7.3) and is invalidated on re-registration and revocation. A PostgreSQL store for
//! replicas implements the same trait later.

use ajwt_checksum::{AgentChecksum, Profile};
use std::sync::Arc;

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

pub mod audit;
pub mod cache;
pub mod sqlite;

/// A JSON object (JWK members, etc.).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// What the issuer asks the store to record for a new agent registration
/// (§5.4.2 step 5, §5.4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRegistration {
    /// The agent.
    pub agent_id: String,
    /// The checksum the issuer recomputed.
    pub checksum: AgentChecksum,
    /// The profile it was computed with.
    pub checksum_profile: Profile,
    /// The agent's public key as a JWK (with `kid` = RFC 7638 thumbprint).
    pub public_jwk: Option<JsonMap>,
    /// RFC 7638 thumbprint of `public_jwk`.
    pub jwk_thumbprint: Option<String>,
    /// Scopes the agent may be granted (`None`: unrestricted).
    pub allowed_scopes: Option<Vec<String>>,
    /// Application the agent belongs to.
    pub app_id: Option<String>,
    /// The registered specification (JSON text, for audit).
    pub spec_json: String,
    /// Registration time, Unix milliseconds (§5.4.2 `registered_at`).
    pub registered_at_ms: i64,
    /// The caller holds `admin:intent`: a revoked agent (§5.6.1 REVOKED) may
    /// be re-registered, giving an active new version (I-41, I-69). When
    /// `false`, registering a revoked agent is [`StoreError::AgentRevoked`].
    pub may_reactivate_revoked: bool,
}

/// One stored registration of an agent (§4.7.1).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    /// The agent.
    pub agent_id: String,
    /// `reg_<agent_id>_<unix seconds>`, or `reg_<agent_id>_<unix
    /// microseconds>` within that second when the agent already has a
    /// registration in it; unique (§5.4.2 step 4, I-70).
    pub registration_id: String,
    /// 1 for the first registration, +1 for each re-registration (§5.4.4).
    pub version: u32,
    /// The registered checksum.
    pub checksum: AgentChecksum,
    /// The profile of the checksum.
    pub checksum_profile: Profile,
    /// The agent's public key (JWK with `kid`).
    pub public_jwk: Option<JsonMap>,
    /// RFC 7638 thumbprint of `public_jwk`.
    pub jwk_thumbprint: Option<String>,
    /// Scopes the agent may be granted.
    pub allowed_scopes: Option<Vec<String>>,
    /// Application the agent belongs to.
    pub app_id: Option<String>,
    /// Registration time, Unix milliseconds.
    pub registered_at_ms: i64,
    /// Revoked by an administrator (§5.6.1 REVOKED).
    pub revoked: bool,
}

/// A registered OAuth client (RFC 6749 §2) of the issuer itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Client identifier.
    pub client_id: String,
    /// The stored hash of the secret (`$sha256$` digest of a generated secret,
    /// or an Argon2id PHC string; I-72); the secret itself is never stored.
    pub secret_hash: String,
    /// Scopes the client may obtain (e.g. `register:intent generate:intent-token`).
    pub allowed_scopes: Vec<String>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
    /// Free text for operators.
    pub description: Option<String>,
}

/// Store failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The checksum is already registered, to this or another agent (§5.4.2 step 3).
    #[error("checksum already registered to agent {existing_agent_id}")]
    DuplicateChecksum {
        /// The agent holding the checksum.
        existing_agent_id: String,
    },
    /// Workflows are immutable: the id is taken.
    #[error("workflow {0} already exists")]
    WorkflowExists(String),
    /// The client id is taken.
    #[error("client {0} already exists")]
    ClientExists(String),
    /// The agent is revoked (§5.6.1) and the caller may not re-register it
    /// (I-69).
    #[error("agent {agent_id} is revoked")]
    AgentRevoked {
        /// The revoked agent.
        agent_id: String,
    },
    /// The backend failed (I/O, corruption, ...). Reported as 503/500 by the server.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// The issuer's persistent state. Implementations must be safe to share
/// between request handlers and make `register_agent` atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a registration atomically: refuses a checksum already stored for
    /// any agent and any version (`DuplicateChecksum`), refuses a revoked
    /// agent unless `may_reactivate_revoked` (`AgentRevoked`, checked in the
    /// same atomic step), assigns `version = previous + 1` (1 for a new
    /// agent) and a unique `registration_id`: `reg_<agent_id>_<s>` where `s`
    /// is the real registration second, or `reg_<agent_id>_<s * 10^6 + k>`
    /// for the agent's k-th further registration in second `s` (I-70).
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError>;
    /// The LATEST registration of an agent (highest version, §4.7.1, §5.4.4).
    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError>;
    /// Marks every registration of `agent_id` revoked (§5.6.1 REVOKED, an
    /// administrator action) atomically and returns how many registrations
    /// the agent has, all of them now revoked; 0 means the agent is unknown
    /// and nothing changed. Idempotent: a second call returns the same count.
    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError>;
    /// All registrations of an agent, oldest first (audit trail, §5.4.4 step 5).
    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError>;
    /// Stores a new workflow; an existing id is `WorkflowExists`.
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError>;
    /// A workflow by id.
    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError>;
    /// Stores a new client; an existing id is `ClientExists`.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// A client by id.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Number of clients (0 on first start: bootstrap the admin client).
    async fn client_count(&self) -> Result<u64, StoreError>;
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Flushes and closes (graceful shutdown).
    async fn close(&self);

    // --- The audit trail (§9.1.1, §9.1.4, §9.4.1; I-100, crate::audit) ---

    /// Appends `entry` to the one audit chain: assigns `seq` (last + 1, 1
    /// for the first), `prev_hash` (the last `record_hash`, or
    /// [`crate::audit::GENESIS_HASH`]) and `record_hash`, atomically, so
    /// that concurrent appends form one chain. Returns the stored record.
    async fn append_audit(
        &self,
        entry: crate::audit::AuditEntry,
    ) -> Result<crate::audit::AuditRecord, StoreError>;
    /// Up to `limit` audit records with `seq > after_seq`, in `seq` order
    /// (a page: readers stream the log page by page).
    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditRecord>, StoreError>;
    /// The last `n` audit records, in `seq` order.
    async fn audit_last(&self, n: u32) -> Result<Vec<crate::audit::AuditRecord>, StoreError>;
    /// Stores a signed checkpoint of the audit chain's head (I-104).
    async fn append_audit_checkpoint(
        &self,
        checkpoint: &crate::audit::AuditCheckpoint,
    ) -> Result<(), StoreError>;
    /// The latest stored checkpoint (I-104).
    async fn latest_audit_checkpoint(
        &self,
    ) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError>;
}
