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
pub mod group;
// Issue 15: seeding agents for benchmarks (I-157).
pub mod seed;
pub mod sqlite;
// Issue 14: the PostgreSQL store for replicas and backend selection.
pub mod open;
pub mod postgres;
pub use open::open_backend;
// Encryption at rest (issue 14, §9.1.4, I-112).
pub mod sealed;

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
    /// In the same transaction, the agent's tokens and every token whose
    /// delegation chain contains it are revoked (§5.6.1, §9.3.2; as
    /// [`Store::revoke_agent_tokens`]), so no crash leaves them valid.
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

    // ---- token records, status lists, lifecycle (issue 13) ---------------
    // Default bodies: a store without these is refused at use, never
    // silently (`StoreError::Backend`); both stores and both decorators
    // implement them.

    /// Records an intent token about to be issued and allocates its status
    /// list index in one transaction: a uniformly random index among the
    /// free ones of the open list (`random` picks it, I-83), a new list of
    /// `list_size` statuses when no list has a free index. Also marks the
    /// registration as having obtained a token (§5.6.1 VERIFIED).
    async fn record_token(
        &self,
        _token: NewTokenRecord,
        _list_size: u32,
        _random: u64,
    ) -> Result<StatusIndex, StoreError> {
        Err(unsupported("record_token"))
    }
    /// Phase 1 of issuing an intent token (issue 15, I-160): gives the
    /// token its status list index (§9.3.2, I-83: uniformly random among
    /// the free ones of the open list, a new list of `list_size` when none
    /// has one) before it is signed. The default records the token durably
    /// now ([`Store::record_token`]); a store may instead only reserve the
    /// index and write the record in [`Store::finish_token`] (the SQLite
    /// store, I-160). A reservation dropped without being finished (signing
    /// failed, the caller was cancelled) gives its index back.
    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<TokenReservation, StoreError> {
        let jti = token.jti.clone();
        let index = self.record_token(token, list_size, random).await?;
        Ok(TokenReservation::durable(jti, index))
    }
    /// Phase 2 of issuing an intent token (I-160), once it is signed: makes
    /// the token record durable if [`Store::reserve_token`] did not, and
    /// appends `audit` (its `TokenIssued` entry, §9.1.4, I-101) to the
    /// audit chain as [`Store::append_audit`] does. Returns only once both
    /// are durable; the token must not be handed out otherwise. The default
    /// appends `audit` (the record is already durable) and refuses a
    /// reservation it did not make.
    async fn finish_token(
        &self,
        reservation: TokenReservation,
        audit: Option<crate::audit::AuditEntry>,
    ) -> Result<Option<crate::audit::AuditRecord>, StoreError> {
        if !reservation.is_durable() {
            return Err(StoreError::Backend(format!(
                "token {}: its reservation was made by another store",
                reservation.jti()
            )));
        }
        match audit {
            Some(entry) => Ok(Some(self.append_audit(entry).await?)),
            None => Ok(None),
        }
    }
    /// The record of a token, if it is kept (not pruned).
    async fn token_record(&self, _jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        Err(unsupported("token_record"))
    }
    /// Revokes the token `jti` and every token it is an ancestor of (I-82);
    /// returns how many records changed (0: unknown or already revoked).
    async fn revoke_token(&self, _jti: &str, _at_ms: i64) -> Result<u64, StoreError> {
        Err(unsupported("revoke_token"))
    }
    /// Revokes every token of `agent_id` and every token whose delegation
    /// chain contains it (§9.3.2); returns how many records changed.
    async fn revoke_agent_tokens(&self, _agent_id: &str, _at_ms: i64) -> Result<u64, StoreError> {
        Err(unsupported("revoke_agent_tokens"))
    }
    /// Marks one registration revoked and revokes its tokens and every
    /// token whose chain contains it (§9.3.2), atomically. `None`: unknown
    /// registration; otherwise its agent and how many token records changed.
    /// Idempotent.
    async fn revoke_registration(
        &self,
        _registration_id: &str,
        _at_ms: i64,
    ) -> Result<Option<RevokedRegistration>, StoreError> {
        Err(unsupported("revoke_registration"))
    }
    /// The size of status list `list_id` and the indices whose token is
    /// revoked, or `None` for an unknown (or pruned) list.
    async fn status_list(&self, _list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        Err(unsupported("status_list"))
    }
    /// Deletes token records with `exp < before` and full lists left
    /// without records; returns how many token records were deleted.
    async fn prune_tokens(&self, _before: i64) -> Result<u64, StoreError> {
        Err(unsupported("prune_tokens"))
    }
    /// Notes that a different checksum was presented for a registration
    /// (§5.6.1 UPDATED, I-86).
    async fn record_checksum_mismatch(
        &self,
        _agent_id: &str,
        _registration_id: &str,
        _at_ms: i64,
    ) -> Result<(), StoreError> {
        Err(unsupported("record_checksum_mismatch"))
    }
    /// Token and mismatch times of every registration of `agent_id`.
    async fn registration_activity(
        &self,
        _agent_id: &str,
    ) -> Result<Vec<RegistrationActivity>, StoreError> {
        Err(unsupported("registration_activity"))
    }
    /// The registered specification (JSON text) of one registration, for
    /// an administrator (§5.6, threat T12).
    async fn registration_specification(
        &self,
        _registration_id: &str,
    ) -> Result<Option<StoredSpecification>, StoreError> {
        Err(unsupported("registration_specification"))
    }

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

    // ---- scale-out (issue 14): what replicas share ------------------------
    // Default bodies refuse (`StoreError::Backend`), never silently succeed;
    // both stores implement them and both decorators forward them.

    /// Inserts the first client, only when the store has none, atomically
    /// (bootstrap of the admin client, I-68): two replicas starting on one
    /// empty database create exactly one. `false`: a client already existed
    /// and nothing was written.
    async fn insert_first_client(&self, _client: &ClientRecord) -> Result<bool, StoreError> {
        Err(unsupported("insert_first_client"))
    }

    /// Every signing key of the issuer (I-110): live keys with their
    /// (sealed) private key, and the public records of retired keys
    /// (`private_key_pem` `None`), oldest first.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        Err(unsupported("signing_keys"))
    }
    /// Applies one change of the key set atomically (I-110): with
    /// `insert_unless_pending_after = Some(t)`, `insert` is written only when
    /// no stored live key has `activates_at > t` (so replicas racing to
    /// rotate add one key, [`KeyChangeOutcome::PendingExists`] for the
    /// others, and nothing else of the change is applied); then `retires_at`
    /// updates, then `retire` (private key deleted, `retired_at` set),
    /// keeping at most [`MAX_RETIRED_KEY_RECORDS`] retired records. An
    /// `insert` whose `kid` is already stored changes nothing (the same key;
    /// a retired key is never revived, I-122).
    async fn apply_key_change(&self, _change: KeyChange) -> Result<KeyChangeOutcome, StoreError> {
        Err(unsupported("apply_key_change"))
    }

    /// Up to `limit` sealed values of `kind` whose id is greater than
    /// `after`, in id order (re-encryption under a new key-encryption key,
    /// I-112). Ids: a specification's checksum, a signing key's `kid`.
    async fn sealed_values(
        &self,
        _kind: SealedKind,
        _after: &str,
        _limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Err(unsupported("sealed_values"))
    }
    /// How many sealed values of `kind` start with each distinct head (the
    /// first [`crate::kek::ENVELOPE_HEAD_LEN`] characters: for an envelope,
    /// `ajwt-sealed.v1.<KEK id>.`), as one aggregate query, or `None` when
    /// the store cannot count them so or there are more than `max_heads`
    /// heads (legacy plaintext; the caller then pages through
    /// [`Store::sealed_values`]). The start-up check uses it instead of
    /// reading every value (issue 15, I-158).
    async fn sealed_heads(
        &self,
        _kind: SealedKind,
        _max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        Ok(None)
    }
    /// Replaces the sealed value of `kind`/`id` by `new` if it is still
    /// `old` (compare-and-swap); `false` when it changed meanwhile.
    async fn replace_sealed_value(
        &self,
        _kind: SealedKind,
        _id: &str,
        _old: &str,
        _new: &str,
    ) -> Result<bool, StoreError> {
        Err(unsupported("replace_sealed_value"))
    }

    /// Shared rate limiting (I-113): GCRA on the bucket `key` holding
    /// `burst` cells, one cell coming back every `interval_ms`. Takes one
    /// cell as of `now_ms`: `None` when taken, `Some(wait_ms)` when the
    /// bucket is empty (nothing is taken). Atomic across replicas.
    async fn rate_limit_take(
        &self,
        _key: &str,
        _burst: u32,
        _interval_ms: u64,
        _now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        Err(unsupported("rate_limit_take"))
    }
    /// Puts `key` in the shared penalty box until `until_ms` (a later
    /// `until_ms` wins).
    async fn rate_limit_block(&self, _key: &str, _until_ms: i64) -> Result<(), StoreError> {
        Err(unsupported("rate_limit_block"))
    }
    /// The latest `until_ms` after `now_ms` of any of `keys` in the penalty
    /// box, or `None`.
    async fn rate_limit_blocked_until(
        &self,
        _keys: &[String],
        _now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        Err(unsupported("rate_limit_blocked_until"))
    }
    /// Records a one-time value (a DPoP proof `jti`, RFC 9449 §11.1) until
    /// `expires_ms`; `false` when it is already recorded and unexpired
    /// (a replay, on any replica).
    async fn remember_once(
        &self,
        _scope: &str,
        _value: &str,
        _expires_ms: i64,
    ) -> Result<bool, StoreError> {
        Err(unsupported("remember_once"))
    }
    /// Deletes rate-limit buckets that are full again, penalty-box entries
    /// and one-time values that expired by `now_ms`; returns how many rows.
    async fn prune_shared_state(&self, _now_ms: i64) -> Result<u64, StoreError> {
        Err(unsupported("prune_shared_state"))
    }

    /// Sizes for `/metrics` (I-114): registry, workflows, clients, token
    /// records, status lists and the connection pool.
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Err(unsupported("stats"))
    }

    /// A feed of changes made by other processes on the same database
    /// (I-111: PostgreSQL `LISTEN`/`NOTIFY`), for caches to invalidate.
    /// `None`: this store has no such feed (one process per database).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        None
    }
}

/// Most retired-key records (public metadata only) kept in the store (I-90).
pub const MAX_RETIRED_KEY_RECORDS: usize = 16;

/// A signing key of the issuer as stored (I-110).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// The JWS algorithm name it signs under (`ES256`, `EdDSA`, ...).
    pub alg: String,
    /// Creation time (Unix seconds).
    pub created_at: u64,
    /// When it starts signing (Unix seconds).
    pub activates_at: u64,
    /// When it leaves the JWK Set, once a successor is scheduled.
    pub retires_at: Option<u64>,
    /// When it was retired (its private key deleted); `None` while live.
    pub retired_at: Option<u64>,
    /// The PKCS#8 PEM private key (sealed, I-112, below the sealing
    /// decorator, plaintext above it); `None` once retired.
    pub private_key_pem: Option<String>,
}

/// One atomic change of the stored key set ([`Store::apply_key_change`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChange {
    /// A new key.
    pub insert: Option<StoredSigningKey>,
    /// Write `insert` (and the rest) only when no live key activates after
    /// this time (Unix seconds).
    pub insert_unless_pending_after: Option<u64>,
    /// New `retires_at` of live keys, by `kid`.
    pub set_retires_at: Vec<(String, u64)>,
    /// Keys to retire now (private key deleted), by `kid`, with the time.
    pub retire: Vec<(String, u64)>,
}

/// What [`Store::apply_key_change`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChangeOutcome {
    /// The change was applied.
    Applied,
    /// A pending key existed (`insert_unless_pending_after`): nothing was written.
    PendingExists,
}

/// Which sealed (encrypted at rest) column a value is from (§9.1.4, I-112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedKind {
    /// A registered agent specification (prompt, tools, configuration),
    /// identified by its checksum.
    Specification,
    /// A signing key's private key, identified by its `kid`.
    SigningKey,
}

/// A registered specification with the checksum it was registered under
/// ([`Store::registration_specification`]; the checksum identifies the
/// sealed value, I-112).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSpecification {
    /// The registration's checksum.
    pub checksum: AgentChecksum,
    /// The specification, JSON text (sealed below the sealing decorator).
    pub spec_json: String,
}

/// Sizes reported by [`Store::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Distinct registered agents.
    pub agents: u64,
    /// Registrations (all versions).
    pub registrations: u64,
    /// Workflows.
    pub workflows: u64,
    /// OAuth clients.
    pub clients: u64,
    /// Kept token records.
    pub token_records: u64,
    /// Status lists.
    pub status_lists: u64,
    /// Statuses allocated over all lists.
    pub statuses_used: u64,
    /// Open connections of the pool.
    pub pool_connections: u32,
    /// Idle connections of the pool.
    pub pool_idle: u32,
    /// The pool's maximum size.
    pub pool_max: u32,
}

/// A change made through another process ([`Store::changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// An agent was registered, re-registered or revoked.
    Agent(String),
    /// Anything may have changed (notifications were lost): drop every cache.
    All,
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Backend(format!("{what} is not supported by this store"))
}

/// What the issuer records about an intent token it issues (§9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenRecord {
    /// The token's `jti`.
    pub jti: String,
    /// The agent (`sub`).
    pub agent_id: String,
    /// The registration the token was issued under.
    pub registration_id: String,
    /// The client that requested it.
    pub client_id: String,
    /// `iat`.
    pub iat: i64,
    /// `exp`.
    pub exp: i64,
    /// Agents of the delegation chain with the registration each had at
    /// issuance (the token's own agent excluded), and those of the parent.
    pub chain: Vec<ChainLink>,
    /// `jti`s of the parent token and its ancestors.
    pub ancestors: Vec<String>,
}

impl NewTokenRecord {
    /// Its rows of `intent_token_links` as (kind, value): each chain agent
    /// (`agent`) with its registration (`registration`) when known, then
    /// each ancestor `jti` (`ancestor`).
    pub(crate) fn links(&self) -> Vec<(&'static str, &str)> {
        let mut links = Vec::new();
        for link in &self.chain {
            links.push(("agent", link.agent_id.as_str()));
            if let Some(reg) = &link.registration_id {
                links.push(("registration", reg.as_str()));
            }
        }
        links.extend(self.ancestors.iter().map(|a| ("ancestor", a.as_str())));
        links
    }
}

/// One agent of a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainLink {
    /// The agent.
    pub agent_id: String,
    /// Its registration at issuance, when known.
    pub registration_id: Option<String>,
}

/// A status list position (draft-ietf-oauth-status-list §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusIndex {
    /// The list.
    pub list_id: i64,
    /// The index in it.
    pub idx: u64,
}

/// An intent token's status list index, given before the token is signed
/// ([`Store::reserve_token`], I-160), and what is still to be written.
/// Hand it to [`Store::finish_token`] of the same store; dropping it instead
/// gives an index that was only reserved back (nothing of it was written).
#[derive(Debug)]
pub struct TokenReservation {
    jti: String,
    index: StatusIndex,
    /// The record still to be written, holding its reserved index (`None`:
    /// the record is already written).
    pending: Option<Box<group::PendingToken>>,
    /// The record was committed without waiting for the flush of its
    /// transaction's log (the PostgreSQL store, I-189): the store that made
    /// it must flush before the token is handed out.
    unflushed: bool,
}

impl TokenReservation {
    /// A reservation whose token record is already durable (the default
    /// [`Store::reserve_token`]).
    pub fn durable(jti: String, index: StatusIndex) -> TokenReservation {
        TokenReservation {
            jti,
            index,
            pending: None,
            unflushed: false,
        }
    }

    /// A reservation whose token record is committed but whose commit may
    /// not be flushed yet (I-189): [`Store::finish_token`] of the store
    /// that made it flushes before answering.
    pub(crate) fn committed_unflushed(jti: String, index: StatusIndex) -> TokenReservation {
        TokenReservation {
            jti,
            index,
            pending: None,
            unflushed: true,
        }
    }

    /// Whether the record's commit may still be waiting for its flush.
    pub(crate) fn is_unflushed(&self) -> bool {
        self.unflushed
    }

    /// The token's status list position (its `status` claim, §9.3.2).
    pub fn index(&self) -> StatusIndex {
        self.index
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// A reservation whose record is still to be written (I-160).
    pub(crate) fn reserved(pending: group::PendingToken) -> TokenReservation {
        TokenReservation {
            jti: pending.jti().to_owned(),
            index: pending.index(),
            pending: Some(Box::new(pending)),
            unflushed: false,
        }
    }

    /// The record still to be written, if any.
    pub(crate) fn into_pending(self) -> Option<Box<group::PendingToken>> {
        self.pending
    }

    /// Whether the token record is already durable (nothing left to write
    /// but the audit entry).
    pub fn is_durable(&self) -> bool {
        self.pending.is_none() && !self.unflushed
    }
}

/// A kept token record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// What was recorded at issuance.
    pub token: NewTokenRecord,
    /// Its status list position.
    pub status: StatusIndex,
    /// Revoked (RFC 7009, an agent or registration revocation, §9.3.2).
    pub revoked: bool,
}

/// The result of [`Store::revoke_registration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedRegistration {
    /// The registration's agent.
    pub agent_id: String,
    /// Token records newly revoked.
    pub tokens: u64,
}

/// A status list as stored: its size and its revoked indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatusList {
    /// Number of statuses.
    pub size: u32,
    /// Indices whose token is revoked.
    pub revoked: Vec<u64>,
}

/// Lifecycle times of one registration (§5.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationActivity {
    /// The registration.
    pub registration_id: String,
    /// First token issued under it, Unix ms.
    pub first_token_at_ms: Option<i64>,
    /// Latest token issued under it, Unix ms.
    pub last_token_at_ms: Option<i64>,
    /// Latest presentation of a different checksum, Unix ms.
    pub last_mismatch_at_ms: Option<i64>,
    /// When the registration was revoked, Unix ms (if recorded).
    pub revoked_at_ms: Option<i64>,
}
