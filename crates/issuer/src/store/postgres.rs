//! The PostgreSQL implementation of [`Store`] for replicas (issue 14; sqlx
//! 0.8, runtime queries only). Every replica of a deployment connects to one
//! database, which holds everything they must agree on: the agent registry
//! (§4.7.1), workflows (§4.7.2), clients, token records and status lists
//! (§9.3.2), the audit chain (§9.1.4), the signing keys (I-110) and the
//! shared rate-limit state (I-113). The schema lives in
//! `crates/issuer/migrations-postgres/` and is embedded at compile time
//! (sqlx serializes concurrent migrators with an advisory lock).
//!
//! Concurrency across replicas (I-115): writes that read-then-write take a
//! transaction-scoped advisory lock (`pg_advisory_xact_lock`) on what they
//! read — the agent for `register_agent`/`revoke_agent`, the chain for
//! `append_audit`, the key set for `apply_key_change`, status list
//! allocation for `record_token` — under READ
//! COMMITTED, so each statement after the lock sees what the previous
//! holder committed; unique indexes are the backstop (a checksum is stored
//! once, whatever races). Status list indices are allocated under a
//! global advisory lock. Registrations and revocations send a
//! `NOTIFY` inside their transaction; a listener task turns them into
//! [`StoreChange`]s for the caches of every replica (I-111).

use std::fmt::Display;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_protocol::registration::{registration_id, Workflow};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use tokio::sync::broadcast;

use super::{AgentRecord, ClientRecord, JsonMap, NewRegistration, Store, StoreError};
use super::{
    ChainLink, KeyChange, KeyChangeOutcome, NewTokenRecord, RegistrationActivity,
    RevokedRegistration, SealedKind, StatusIndex, StoreChange, StoreStats, StoredSigningKey,
    StoredSpecification, StoredStatusList, TokenRecord, TokenReservation, MAX_RETIRED_KEY_RECORDS,
};
use crate::audit::{AuditCheckpoint, AuditEntry, AuditRecord};
use crate::config::DatabaseUrl;

/// Default bound of the connection pool of one replica (I-118). The
/// change-feed listener holds one of them.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Default wait for a free pooled connection before a request fails with
/// [`StoreError::Backend`] (503) instead of queueing without bound (I-118).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for any lock (an advisory lock of I-115, a row or table
/// lock) before the statement fails with [`StoreError::Backend`] (I-118):
/// a stuck replica cannot hold the others' requests forever.
const LOCK_TIMEOUT: &str = "15s";

/// The `NOTIFY` channel of the change feed (I-111).
pub const CHANGE_CHANNEL: &str = "ajwt_store_changes";

/// Capacity of the in-process change broadcast; a cache that falls further
/// behind sees `Lagged` and clears itself.
const CHANGE_CAPACITY: usize = 1024;

/// Longest agent id sent in a notification payload (PostgreSQL allows
/// under 8000 bytes); a longer one is sent as "everything changed".
const MAX_NOTIFY_PAYLOAD: usize = 4000;

/// Wait between attempts to re-establish the listener connection.
const LISTENER_RETRY: Duration = Duration::from_secs(1);

/// First key of every advisory lock of the issuer (`'ajwt'` as an int4), so
/// they do not collide with other applications' locks on the database.
const LOCK_SPACE_AGENT: i32 = 0x616a_7774;
/// The second space: global locks, keyed by the constants below.
const LOCK_SPACE_GLOBAL: i32 = 0x616a_7775;
/// The audit chain's head.
const LOCK_AUDIT: i32 = 1;
/// Allocating a status list index.
const LOCK_STATUS_LIST: i32 = 2;
/// The signing key set.
const LOCK_KEYS: i32 = 3;

/// The schema, embedded from `crates/issuer/migrations-postgres/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// Columns of `agent_registrations` read into an [`AgentRecord`].
const AGENT_COLUMNS: &str = "id, agent_id, version, registration_id, checksum, checksum_profile, \
     public_jwk, jwk_thumbprint, allowed_scopes, app_id, registered_at_ms, revoked";

/// Bounds of the connection pool (I-118).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgPoolBounds {
    /// Most connections (the listener's included).
    pub max_connections: u32,
    /// Longest wait for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for PgPoolBounds {
    fn default() -> Self {
        PgPoolBounds {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// PostgreSQL-backed [`Store`], shared by replicas. Cloning shares the pool
/// and the change feed.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    max_connections: u32,
    /// Group commit of audit appends (I-100).
    audit: Arc<AuditCommit>,
    /// Group commit of token records (I-159).
    tokens: Arc<super::group::Batcher<TokenWrite, StatusIndex>>,
    /// The open status list as this process's last token group committed
    /// it (I-189).
    open_list: Arc<ListCache>,
    /// The change feed (I-111); `None` for a read-only inspection store.
    feed: Option<Arc<ChangeFeed>>,
}

impl std::fmt::Debug for PgStore {
    // Never the connect options: they hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .field("max_connections", &self.max_connections)
            .field("change_feed", &self.feed.is_some())
            .finish_non_exhaustive()
    }
}

/// The change feed: the broadcast sender and the listener task, stopped
/// when the last clone of the store is dropped or the store is closed.
struct ChangeFeed {
    sender: broadcast::Sender<StoreChange>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ChangeFeed {
    fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.stop();
    }
}

fn backend(context: impl Display, e: impl Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn to_json<T: serde::Serialize + ?Sized>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| backend(format_args!("cannot encode {what}"), e))
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|e| backend(what, e))
}

fn to_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|e| backend(what, e))
}

/// The unique index a database error violated, if it is a unique violation.
fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let d = e.as_database_error()?;
    d.is_unique_violation()
        .then(|| d.constraint().unwrap_or_default().to_owned())
}

/// The notification payload for a change of `agent_id`: `a:<id>`, or `*`
/// (everything) for an id too long for a payload.
fn change_payload(agent_id: &str) -> String {
    if agent_id.len() <= MAX_NOTIFY_PAYLOAD {
        format!("a:{agent_id}")
    } else {
        "*".to_owned()
    }
}

/// Decodes a notification payload (anything unknown: everything changed).
fn parse_payload(payload: &str) -> StoreChange {
    match payload.strip_prefix("a:") {
        Some(id) => StoreChange::Agent(id.to_owned()),
        None => StoreChange::All,
    }
}

/// Sends the change notification of `agent_id` inside `tx` (delivered on
/// commit, to every listener of the database).
async fn notify_agent(conn: &mut sqlx::PgConnection, agent_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGE_CHANNEL)
        .bind(change_payload(agent_id))
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the per-agent advisory lock until the end of the transaction.
async fn lock_agent(conn: &mut sqlx::PgConnection, agent_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_SPACE_AGENT)
        .bind(agent_id)
        .execute(conn)
        .await
        .map(drop)
}

/// Begins a transaction holding the global advisory lock `key` in ONE
/// round trip (I-189): `BEGIN` and the lock (with `extra` columns of the
/// same `SELECT`, e.g. a `set_config`) sent as one simple query. The
/// statements that read what the lock protects must come after it (READ
/// COMMITTED takes a snapshot per statement). sqlx checks that the
/// connection is in a transaction afterwards and rolls back on failure.
async fn begin_locked(
    pool: &PgPool,
    key: i32,
    extra: &'static str,
) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(format!(
        "BEGIN; SELECT pg_advisory_xact_lock({LOCK_SPACE_GLOBAL}, {key}){extra}"
    ))
    .await
}

/// Takes a global advisory lock until the end of the transaction.
async fn lock_global(conn: &mut sqlx::PgConnection, key: i32) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_SPACE_GLOBAL)
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}

/// Parses the URL into connect options; the error never repeats the URL
/// (it holds the password).
fn connect_options(url: &DatabaseUrl) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url.expose())
        .map(|o| {
            o.application_name("ajwt-issuer")
                .options([("lock_timeout", LOCK_TIMEOUT)])
        })
        .map_err(|e| backend(format_args!("database URL {}", url.redacted()), e))
}

impl PgStore {
    /// Connects with [`PgPoolBounds::default`], applies pending migrations
    /// and starts the change feed.
    pub async fn connect(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        Self::connect_with(url, PgPoolBounds::default()).await
    }

    /// Connects with the given pool bounds, applies pending migrations and
    /// starts the change feed (I-111).
    pub async fn connect_with(
        url: &DatabaseUrl,
        bounds: PgPoolBounds,
    ) -> Result<PgStore, StoreError> {
        let options = connect_options(url)?;
        // At least 2: the listener holds one connection for good.
        let max = bounds.max_connections.max(2);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(bounds.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| backend(format_args!("cannot connect to {}", url.redacted()), e))?;
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(backend("migration failed", e));
        }
        // LISTEN before the store is used: no change committed after
        // `connect` returns is missed (I-111).
        let listener = match start_listener(&pool).await {
            Ok(l) => l,
            Err(e) => {
                pool.close().await;
                return Err(backend("change feed: cannot LISTEN", e));
            }
        };
        let (sender, _) = broadcast::channel(CHANGE_CAPACITY);
        let task = tokio::spawn(listen(pool.clone(), listener, sender.clone()));
        tracing::info!(database = %url.redacted(), max_connections = max, "PostgreSQL store opened");
        Ok(PgStore {
            pool,
            max_connections: max,
            audit: Arc::default(),
            tokens: Arc::default(),
            open_list: Arc::default(),
            feed: Some(Arc::new(ChangeFeed {
                sender,
                task: Mutex::new(Some(task)),
            })),
        })
    }

    /// Opens an EXISTING issuer database without applying migrations or
    /// listening for changes (`ajwt audit`: inspecting must not change it).
    /// A database without the issuer's `audit_log` is a backend error.
    pub async fn open_existing(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        let options = connect_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| backend(format_args!("cannot connect to {}", url.redacted()), e))?;
        let has_audit: bool = sqlx::query_scalar("SELECT to_regclass('audit_log') IS NOT NULL")
            .fetch_one(&pool)
            .await
            .map_err(|e| backend(format_args!("cannot read {}", url.redacted()), e))?;
        if !has_audit {
            pool.close().await;
            return Err(StoreError::Backend(format!(
                "{}: no audit_log table (not an ajwt issuer database)",
                url.redacted()
            )));
        }
        Ok(PgStore {
            pool,
            max_connections: 2,
            audit: Arc::default(),
            tokens: Arc::default(),
            open_list: Arc::default(),
            feed: None,
        })
    }

    /// The registration currently holding `checksum`, if any.
    async fn checksum_owner(
        conn: &mut sqlx::PgConnection,
        checksum: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar::<_, String>(
            "SELECT agent_id FROM agent_registrations WHERE checksum = $1",
        )
        .bind(checksum)
        .fetch_optional(conn)
        .await
        .map_err(|e| backend("checksum lookup failed", e))
    }

    /// Queues one token record for the next token group (I-159); `flush`:
    /// the group's commit waits for its log flush (I-189).
    async fn submit_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
        flush: bool,
    ) -> Result<StatusIndex, StoreError> {
        if list_size == 0 {
            return Err(backend(
                format_args!("token {}: status list size", token.jti),
                "0",
            ));
        }
        let pool = self.pool.clone();
        let cache = self.open_list.clone();
        self.tokens
            .submit((token, list_size, random, flush), move |items| {
                record_tokens(pool.clone(), cache.clone(), items)
            })
            .await
    }

    async fn begin(&self, what: &str) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool
            .begin()
            .await
            .map_err(|e| backend(format_args!("cannot begin {what}"), e))
    }
}

/// The listener task of the change feed (I-111): LISTENs on
/// [`CHANGE_CHANNEL`] and forwards each notification as a [`StoreChange`].
/// Whenever its connection was lost and is re-established, notifications
/// may have been missed: it sends [`StoreChange::All`]. Ends when the pool
/// is closed.
async fn listen(pool: PgPool, first: PgListener, sender: broadcast::Sender<StoreChange>) {
    let mut current = Some(first);
    loop {
        let mut listener = match current.take() {
            Some(l) => l,
            None => {
                if pool.is_closed() {
                    return;
                }
                match start_listener(&pool).await {
                    Ok(l) => {
                        tracing::info!("change feed: listener reconnected; dropping cached state");
                        let _ = sender.send(StoreChange::All);
                        l
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed: cannot LISTEN; retrying");
                        tokio::time::sleep(LISTENER_RETRY).await;
                        continue;
                    }
                }
            }
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let _ = sender.send(parse_payload(n.payload()));
                }
                // The connection was lost and re-established (listening
                // again): anything sent in between is missed.
                Ok(None) => {
                    tracing::info!("change feed: listener reconnected; dropping cached state");
                    let _ = sender.send(StoreChange::All);
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "change feed: listener failed; reconnecting");
                    tokio::time::sleep(LISTENER_RETRY).await;
                    break;
                }
            }
        }
    }
}

/// A listener on [`CHANGE_CHANNEL`] (one pooled connection, held).
async fn start_listener(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGE_CHANNEL).await?;
    Ok(listener)
}

/// Reads one column, naming the table, row and column on failure.
fn column<'r, T>(
    row: &'r PgRow,
    table: &str,
    key: &dyn Display,
    name: &str,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get::<T, _>(name)
        .map_err(|e| backend(format_args!("{table} row {key}: column {name}"), e))
}

/// Decodes an `agent_registrations` row selected with [`AGENT_COLUMNS`].
fn decode_agent(row: &PgRow) -> Result<AgentRecord, StoreError> {
    const T: &str = "agent_registrations";
    let id: i64 = column(row, T, &"(unknown id)", "id")?;
    let key = format_args!("id={id}");
    let key: &dyn Display = &key;
    let bad =
        |name: &str, e: &dyn Display| backend(format_args!("{T} row {key}: column {name}"), e);
    let version: i64 = column(row, T, key, "version")?;
    let checksum: String = column(row, T, key, "checksum")?;
    let profile: String = column(row, T, key, "checksum_profile")?;
    let public_jwk: Option<String> = column(row, T, key, "public_jwk")?;
    let allowed_scopes: Option<String> = column(row, T, key, "allowed_scopes")?;
    Ok(AgentRecord {
        agent_id: column(row, T, key, "agent_id")?,
        registration_id: column(row, T, key, "registration_id")?,
        version: u32::try_from(version).map_err(|e| bad("version", &e))?,
        checksum: AgentChecksum::parse(&checksum).map_err(|e| bad("checksum", &e))?,
        checksum_profile: profile
            .parse::<Profile>()
            .map_err(|e| bad("checksum_profile", &e))?,
        public_jwk: public_jwk
            .map(|s| serde_json::from_str::<JsonMap>(&s))
            .transpose()
            .map_err(|e| bad("public_jwk", &e))?,
        jwk_thumbprint: column(row, T, key, "jwk_thumbprint")?,
        allowed_scopes: allowed_scopes
            .map(|s| serde_json::from_str::<Vec<String>>(&s))
            .transpose()
            .map_err(|e| bad("allowed_scopes", &e))?,
        app_id: column(row, T, key, "app_id")?,
        registered_at_ms: column(row, T, key, "registered_at_ms")?,
        revoked: column(row, T, key, "revoked")?,
    })
}

/// Decodes a `clients` row.
fn decode_client(row: &PgRow) -> Result<ClientRecord, StoreError> {
    const T: &str = "clients";
    let client_id: String = column(row, T, &"(unknown client_id)", "client_id")?;
    let key = format_args!("client_id={client_id}");
    let key: &dyn Display = &key;
    let scopes: String = column(row, T, key, "allowed_scopes")?;
    Ok(ClientRecord {
        secret_hash: column(row, T, key, "secret_hash")?,
        allowed_scopes: serde_json::from_str(&scopes)
            .map_err(|e| backend(format_args!("{T} row {key}: column allowed_scopes"), e))?,
        created_at_ms: column(row, T, key, "created_at_ms")?,
        description: column(row, T, key, "description")?,
        client_id,
    })
}

/// Inserts a client inside `conn`: `false` when the id is taken.
async fn insert_client_in(
    conn: &mut sqlx::PgConnection,
    client: &ClientRecord,
) -> Result<bool, StoreError> {
    let scopes = to_json("allowed_scopes", &client.allowed_scopes)?;
    let done = sqlx::query(
        "INSERT INTO clients (client_id, secret_hash, allowed_scopes, created_at_ms, \
         description) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO NOTHING",
    )
    .bind(&client.client_id)
    .bind(&client.secret_hash)
    .bind(&scopes)
    .bind(client.created_at_ms)
    .bind(&client.description)
    .execute(conn)
    .await
    .map_err(|e| backend(format_args!("cannot store client {}", client.client_id), e))?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl Store for PgStore {
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
        let checksum = new.checksum.to_string();
        let public_jwk = new
            .public_jwk
            .as_ref()
            .map(|j| to_json("public_jwk", j))
            .transpose()?;
        let allowed_scopes = new
            .allowed_scopes
            .as_ref()
            .map(|s| to_json("allowed_scopes", s))
            .transpose()?;
        let fail = |e: sqlx::Error| backend(format_args!("registration of {}", new.agent_id), e);

        let mut tx = self.begin("registration").await?;
        // I-115: one registration of this agent at a time, on every replica;
        // each statement below (READ COMMITTED) sees what the previous
        // holder committed, so versions are unique and gap-free.
        lock_agent(&mut tx, &new.agent_id).await.map_err(fail)?;

        let second = new.registered_at_ms.div_euclid(1000);
        let previous = sqlx::query_as::<_, (i64, bool, i64)>(
            "SELECT version, revoked, \
             (SELECT COUNT(*) FROM agent_registrations WHERE agent_id = $1 AND reg_second = $2) \
             FROM agent_registrations WHERE agent_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(&new.agent_id)
        .bind(second)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;

        // §5.6.1, I-69: a revoked agent stays revoked unless an administrator
        // re-registers it (revoke_agent takes the same lock).
        if let Some((_, true, _)) = previous {
            if !new.may_reactivate_revoked {
                return Err(StoreError::AgentRevoked {
                    agent_id: new.agent_id,
                });
            }
        }

        // §5.4.2 step 3: a checksum exists once across all agents and versions.
        if let Some(existing_agent_id) = Self::checksum_owner(&mut tx, &checksum).await? {
            return Err(StoreError::DuplicateChecksum { existing_agent_id });
        }

        // §5.4.2 step 4, I-70: as the SQLite store.
        let (version, same_second) = match previous {
            None => (1, 0),
            Some((v, _, same_second)) => {
                let next = v.checked_add(1).ok_or_else(|| {
                    StoreError::Backend(format!(
                        "agent_registrations of {}: version overflows",
                        new.agent_id
                    ))
                })?;
                (next, same_second)
            }
        };
        let version_u32 = u32::try_from(version)
            .map_err(|e| backend(format_args!("agent {}: version {version}", new.agent_id), e))?;
        let second_u64 = u64::try_from(second).map_err(|e| {
            backend(
                format_args!("agent {}: registration second {second}", new.agent_id),
                e,
            )
        })?;
        let timestamp = if same_second == 0 {
            Some(second_u64)
        } else {
            u64::try_from(same_second)
                .ok()
                .filter(|k| *k < 1_000_000)
                .and_then(|k| second_u64.checked_mul(1_000_000)?.checked_add(k))
        };
        let timestamp = timestamp.ok_or_else(|| {
            StoreError::Backend(format!(
                "agent {}: too many registrations in second {second}",
                new.agent_id
            ))
        })?;
        let reg_id = registration_id(&new.agent_id, timestamp);

        let inserted = sqlx::query(
            "INSERT INTO agent_registrations (agent_id, version, registration_id, reg_second, \
             checksum, checksum_profile, public_jwk, jwk_thumbprint, allowed_scopes, app_id, \
             spec_json, registered_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&new.agent_id)
        .bind(version)
        .bind(&reg_id)
        .bind(second)
        .bind(&checksum)
        .bind(new.checksum_profile.as_str())
        .bind(&public_jwk)
        .bind(&new.jwk_thumbprint)
        .bind(&allowed_scopes)
        .bind(&new.app_id)
        .bind(&new.spec_json)
        .bind(new.registered_at_ms)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            // Another agent registered the same checksum concurrently (a
            // different agent lock): the unique index lets exactly one win.
            // The failed statement aborted the transaction; the winner has
            // committed by now (PostgreSQL waited for it).
            if unique_violation(&e).as_deref() == Some("agent_registrations_checksum") {
                drop(tx);
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| backend("checksum lookup", e))?;
                if let Some(existing_agent_id) = Self::checksum_owner(&mut conn, &checksum).await? {
                    return Err(StoreError::DuplicateChecksum { existing_agent_id });
                }
            }
            return Err(backend(
                format_args!("cannot store registration {reg_id}"),
                e,
            ));
        }
        notify_agent(&mut tx, &new.agent_id).await.map_err(fail)?;
        tx.commit()
            .await
            .map_err(|e| backend(format_args!("cannot commit registration {reg_id}"), e))?;
        tracing::debug!(agent_id = %new.agent_id, registration_id = %reg_id, version, "agent registration stored");

        Ok(AgentRecord {
            agent_id: new.agent_id,
            registration_id: reg_id,
            version: version_u32,
            checksum: new.checksum,
            checksum_profile: new.checksum_profile,
            public_jwk: new.public_jwk,
            jwk_thumbprint: new.jwk_thumbprint,
            allowed_scopes: new.allowed_scopes,
            app_id: new.app_id,
            registered_at_ms: new.registered_at_ms,
            revoked: false,
        })
    }

    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agent_registrations \
             WHERE agent_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("latest registration of {agent_id}"), e))?;
        row.as_ref().map(decode_agent).transpose()
    }

    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        let fail = |e: sqlx::Error| backend(format_args!("cannot revoke agent {agent_id}"), e);
        let mut tx = self.begin("revocation").await?;
        // The registration lock: a concurrent registration either committed
        // before (and is revoked here) or sees the revocation.
        lock_agent(&mut tx, agent_id).await.map_err(fail)?;
        // PostgreSQL counts every matched row, also rows already revoked: the
        // count is the agent's number of registrations, a repeat the same.
        let done = sqlx::query("UPDATE agent_registrations SET revoked = TRUE WHERE agent_id = $1")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        revoke_agent_tokens_only(&mut tx, agent_id, now_ms())
            .await
            .map_err(fail)?;
        let count = done.rows_affected();
        if count > 0 {
            notify_agent(&mut tx, agent_id).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        if count > 0 {
            tracing::debug!(
                agent_id,
                registrations = count,
                "agent registrations revoked"
            );
        }
        Ok(count)
    }

    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agent_registrations \
             WHERE agent_id = $1 ORDER BY version ASC"
        ))
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(format_args!("registrations of {agent_id}"), e))?;
        rows.iter().map(decode_agent).collect()
    }

    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        let definition = to_json("workflow", workflow)?;
        let done = sqlx::query(
            "INSERT INTO workflows (workflow_id, definition, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (workflow_id) DO NOTHING",
        )
        .bind(&workflow.workflow_id)
        .bind(&definition)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            backend(
                format_args!("cannot store workflow {}", workflow.workflow_id),
                e,
            )
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::WorkflowExists(workflow.workflow_id.clone()));
        }
        Ok(())
    }

    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
        let definition = sqlx::query_scalar::<_, String>(
            "SELECT definition FROM workflows WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("workflows row workflow_id={workflow_id}"), e))?;
        let Some(definition) = definition else {
            return Ok(None);
        };
        let bad = |e: &dyn Display| {
            backend(
                format_args!("workflows row workflow_id={workflow_id}: column definition"),
                e,
            )
        };
        let workflow: Workflow = serde_json::from_str(&definition).map_err(|e| bad(&e))?;
        if workflow.workflow_id != workflow_id {
            return Err(bad(&format_args!(
                "holds workflow {}",
                workflow.workflow_id
            )));
        }
        Ok(Some(Arc::new(workflow)))
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| backend("cannot store client", e))?;
        if insert_client_in(&mut conn, client).await? {
            Ok(())
        } else {
            Err(StoreError::ClientExists(client.client_id.clone()))
        }
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, secret_hash, allowed_scopes, created_at_ms, description \
             FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("clients row client_id={client_id}"), e))?;
        row.as_ref().map(decode_client).transpose()
    }

    async fn client_count(&self) -> Result<u64, StoreError> {
        let n = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clients")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend("cannot count clients", e))?;
        to_u64("client count", n)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map(drop)
            .map_err(|e| backend("ping failed", e))
    }

    async fn close(&self) {
        if let Some(feed) = &self.feed {
            feed.stop();
        }
        self.pool.close().await;
    }

    // ---- token records, status lists, lifecycle (issue 13) ---------------

    /// Group commit (I-159): the token records queued in this process
    /// are written in one transaction under ONE acquisition of the status
    /// list's advisory lock (I-115), the bitmap updated once per batch; a
    /// duplicate `jti` fails only its caller (`ON CONFLICT DO NOTHING`, so
    /// the transaction goes on). Answered after the commit.
    async fn record_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        self.submit_token(token, list_size, random, true).await
    }

    /// Phase 1 of an issuance (I-160, I-189): the token record is written
    /// and its index allocated as by [`Store::record_token`], but the
    /// group's commit does not wait for its log flush (`synchronous_commit
    /// = off` for that transaction). Nothing is handed out yet: phase 2
    /// ([`Store::finish_token`]) commits synchronously after it, and
    /// PostgreSQL flushes its log in order, so once phase 2 is durable so
    /// is this record. A crash in between loses only a token that no one
    /// received.
    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<TokenReservation, StoreError> {
        let jti = token.jti.clone();
        let index = self.submit_token(token, list_size, random, false).await?;
        Ok(TokenReservation::committed_unflushed(jti, index))
    }

    /// Phase 2 (I-189): the audit entry is appended with a synchronous
    /// commit, which flushes the log past the phase 1 commit; without an
    /// entry, a transaction that locks the token's own row (a logged write)
    /// is committed synchronously for the same effect.
    async fn finish_token(
        &self,
        reservation: TokenReservation,
        audit: Option<AuditEntry>,
    ) -> Result<Option<AuditRecord>, StoreError> {
        if !reservation.is_durable() && !reservation.is_unflushed() {
            return Err(backend(
                format_args!("token {}", reservation.jti()),
                "its reservation was made by another store",
            ));
        }
        if let Some(entry) = audit {
            return Ok(Some(self.append_audit(entry).await?));
        }
        if reservation.is_unflushed() {
            let jti = reservation.jti();
            let mut tx = self.begin("token record flush").await?;
            let found = sqlx::query_scalar::<_, String>(
                "SELECT jti FROM intent_tokens WHERE jti = $1 FOR UPDATE",
            )
            .bind(jti)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend(format_args!("token {jti}: flush"), e))?;
            if found.is_none() {
                return Err(backend(format_args!("token {jti}"), "record missing"));
            }
            tx.commit()
                .await
                .map_err(|e| backend(format_args!("token {jti}: flush commit"), e))?;
        }
        Ok(None)
    }

    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let fail = |what: &str, e: &dyn Display| {
            backend(format_args!("intent_tokens row jti={jti}: {what}"), e)
        };
        let row = sqlx::query_as::<_, (String, String, String, i64, i64, i64, i64, bool)>(
            "SELECT agent_id, registration_id, client_id, iat, exp, list_id, idx, revoked \
             FROM intent_tokens WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| fail("select", &e))?;
        let Some((agent_id, registration_id, client_id, iat, exp, list_id, idx, revoked)) = row
        else {
            return Ok(None);
        };
        let links = sqlx::query_as::<_, (String, String)>(
            "SELECT kind, value FROM intent_token_links WHERE jti = $1 \
             ORDER BY kind COLLATE \"C\", value COLLATE \"C\"",
        )
        .bind(jti)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| fail("links", &e))?;
        let mut chain = Vec::new();
        let mut ancestors = Vec::new();
        let mut registrations = Vec::new();
        for (kind, value) in links {
            match kind.as_str() {
                "agent" => chain.push(ChainLink {
                    agent_id: value,
                    registration_id: None,
                }),
                "registration" => registrations.push(value),
                _ => ancestors.push(value),
            }
        }
        // As the SQLite store: a registration id names its agent.
        for link in &mut chain {
            let prefix = format!("reg_{}_", link.agent_id);
            link.registration_id = registrations
                .iter()
                .find(|r| {
                    r.strip_prefix(&prefix)
                        .is_some_and(|ts| ts.bytes().all(|b| b.is_ascii_digit()))
                })
                .cloned();
        }
        Ok(Some(TokenRecord {
            token: NewTokenRecord {
                jti: jti.to_owned(),
                agent_id,
                registration_id,
                client_id,
                iat,
                exp,
                chain,
                ancestors,
            },
            status: StatusIndex {
                list_id,
                idx: u64::try_from(idx).map_err(|e| fail("idx", &e))?,
            },
            revoked,
        }))
    }

    async fn revoke_token(&self, jti: &str, at_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE intent_tokens SET revoked = TRUE, revoked_at_ms = $2 WHERE NOT revoked AND \
             (jti = $1 OR jti IN (SELECT jti FROM intent_token_links \
             WHERE kind = 'ancestor' AND value = $1))",
        )
        .bind(jti)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| backend(format_args!("cannot revoke token {jti}"), e))?;
        Ok(done.rows_affected())
    }

    async fn revoke_agent_tokens(&self, agent_id: &str, at_ms: i64) -> Result<u64, StoreError> {
        let fail = |e: sqlx::Error| backend(format_args!("cannot revoke tokens of {agent_id}"), e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let n = revoke_agent_tokens_only(&mut tx, agent_id, at_ms)
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO registration_activity AS a (registration_id, agent_id, revoked_at_ms) \
             SELECT registration_id, agent_id, $2 FROM agent_registrations \
             WHERE agent_id = $1 AND revoked ON CONFLICT (registration_id) DO UPDATE \
             SET revoked_at_ms = COALESCE(a.revoked_at_ms, EXCLUDED.revoked_at_ms)",
        )
        .bind(agent_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(n)
    }

    async fn revoke_registration(
        &self,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<Option<RevokedRegistration>, StoreError> {
        let fail = |e: sqlx::Error| {
            backend(
                format_args!("cannot revoke registration {registration_id}"),
                e,
            )
        };
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let owner = sqlx::query_scalar::<_, String>(
            "SELECT agent_id FROM agent_registrations WHERE registration_id = $1",
        )
        .bind(registration_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        // The agent's registration lock (I-115): a concurrent re-registration
        // sees this revocation of its latest version, or comes after it.
        lock_agent(&mut tx, &owner).await.map_err(fail)?;
        let agent_id = sqlx::query_scalar::<_, String>(
            "UPDATE agent_registrations SET revoked = TRUE WHERE registration_id = $1 \
             RETURNING agent_id",
        )
        .bind(registration_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(agent_id) = agent_id else {
            return Ok(None);
        };
        let done = sqlx::query(
            "UPDATE intent_tokens SET revoked = TRUE, revoked_at_ms = $2 WHERE NOT revoked AND \
             (registration_id = $1 OR jti IN (SELECT jti FROM intent_token_links \
             WHERE kind = 'registration' AND value = $1))",
        )
        .bind(registration_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "INSERT INTO registration_activity AS a (registration_id, agent_id, revoked_at_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (registration_id) DO UPDATE \
             SET revoked_at_ms = COALESCE(a.revoked_at_ms, EXCLUDED.revoked_at_ms)",
        )
        .bind(registration_id)
        .bind(&agent_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        notify_agent(&mut tx, &agent_id).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Some(RevokedRegistration {
            agent_id,
            tokens: done.rows_affected(),
        }))
    }

    async fn status_list(&self, list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        let fail = |e: &dyn Display| backend(format_args!("status_lists row list_id={list_id}"), e);
        let size = sqlx::query_scalar::<_, i64>("SELECT size FROM status_lists WHERE list_id = $1")
            .bind(list_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| fail(&e))?;
        let Some(size) = size else {
            return Ok(None);
        };
        let revoked = sqlx::query_scalar::<_, i64>(
            "SELECT idx FROM intent_tokens WHERE list_id = $1 AND revoked ORDER BY idx",
        )
        .bind(list_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| fail(&e))?;
        Ok(Some(StoredStatusList {
            size: u32::try_from(size).map_err(|e| fail(&e))?,
            revoked: revoked
                .into_iter()
                .map(u64::try_from)
                .collect::<Result<_, _>>()
                .map_err(|e| fail(&e))?,
        }))
    }

    async fn prune_tokens(&self, before: i64) -> Result<u64, StoreError> {
        let fail = |e: sqlx::Error| backend("cannot prune token records", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let done = sqlx::query("DELETE FROM intent_tokens WHERE exp < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(
            "DELETE FROM status_lists WHERE used = size AND NOT EXISTS \
             (SELECT 1 FROM intent_tokens t WHERE t.list_id = status_lists.list_id)",
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(done.rows_affected())
    }

    async fn record_checksum_mismatch(
        &self,
        agent_id: &str,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registration_activity (registration_id, agent_id, last_mismatch_at_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (registration_id) DO UPDATE \
             SET last_mismatch_at_ms = EXCLUDED.last_mismatch_at_ms",
        )
        .bind(registration_id)
        .bind(agent_id)
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| backend(format_args!("mismatch of {registration_id}"), e))
    }

    async fn registration_activity(
        &self,
        agent_id: &str,
    ) -> Result<Vec<RegistrationActivity>, StoreError> {
        let rows = sqlx::query_as::<_, (String, Option<i64>, Option<i64>, Option<i64>, Option<i64>)>(
            "SELECT registration_id, first_token_at_ms, last_token_at_ms, last_mismatch_at_ms, \
             revoked_at_ms FROM registration_activity WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend(format_args!("activity of {agent_id}"), e))?;
        Ok(rows
            .into_iter()
            .map(
                |(registration_id, first, last, mismatch, revoked)| RegistrationActivity {
                    registration_id,
                    first_token_at_ms: first,
                    last_token_at_ms: last,
                    last_mismatch_at_ms: mismatch,
                    revoked_at_ms: revoked,
                },
            )
            .collect())
    }

    async fn registration_specification(
        &self,
        registration_id: &str,
    ) -> Result<Option<StoredSpecification>, StoreError> {
        let row = sqlx::query_as::<_, (String, String)>(
            "SELECT checksum, spec_json FROM agent_registrations WHERE registration_id = $1",
        )
        .bind(registration_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("specification of {registration_id}"), e))?;
        row.map(|(checksum, spec_json)| {
            Ok(StoredSpecification {
                checksum: AgentChecksum::parse(&checksum).map_err(|e| {
                    backend(
                        format_args!("agent_registrations {registration_id}: checksum"),
                        e,
                    )
                })?,
                spec_json,
            })
        })
        .transpose()
    }

    /// Group commit (I-100) as the SQLite store; each batch is written under
    /// the chain's advisory lock, so appends from every replica form one
    /// chain (I-115).
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        use tokio::sync::oneshot::error::TryRecvError;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.audit.queue().push((entry, tx));
        loop {
            let lock = self.audit.lock.clone().lock_owned().await;
            match rx.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Closed) => {
                    return Err(StoreError::Backend("audit append cancelled".into()))
                }
                Err(TryRecvError::Empty) => {}
            }
            let batch = {
                let mut queue = self.audit.queue();
                let n = queue.len().min(MAX_AUDIT_BATCH);
                queue.drain(..n).collect::<Vec<_>>()
            };
            let pool = self.pool.clone();
            let writer = tokio::spawn(async move {
                let _lock = lock;
                let (entries, senders): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match append_audit_batch(&pool, entries).await {
                    Ok(records) => {
                        for (record, sender) in records.into_iter().zip(senders) {
                            let _ = sender.send(Ok(record));
                        }
                    }
                    Err(e) => {
                        for sender in senders {
                            let _ = sender.send(Err(e.clone()));
                        }
                    }
                }
            });
            writer.await.map_err(|e| backend("audit writer task", e))?;
            match rx.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Closed) => {
                    return Err(StoreError::Backend("audit append not written".into()))
                }
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend("audit_log read", e))?;
        rows.iter().map(decode_audit).collect()
    }

    async fn audit_last(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1"
        ))
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend("audit_log read", e))?;
        let mut records = rows
            .iter()
            .map(decode_audit)
            .collect::<Result<Vec<_>, _>>()?;
        records.reverse();
        Ok(records)
    }

    async fn append_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        let seq = to_i64("audit checkpoint seq", c.seq)?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, record_hash, signed_at_ms, jws) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(seq)
        .bind(&c.record_hash)
        .bind(c.signed_at_ms)
        .bind(&c.jws)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("cannot store audit checkpoint", e))?;
        Ok(())
    }

    async fn latest_audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        let row = sqlx::query_as::<_, (i64, String, i64, String)>(
            "SELECT seq, record_hash, signed_at_ms, jws FROM audit_checkpoints \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend("audit_checkpoints read", e))?;
        row.map(|(seq, record_hash, signed_at_ms, jws)| {
            Ok(AuditCheckpoint {
                seq: to_u64("audit_checkpoints seq", seq)?,
                record_hash,
                signed_at_ms,
                jws,
            })
        })
        .transpose()
    }

    // ---- scale-out (issue 14): what replicas share ------------------------

    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let fail = |e: sqlx::Error| backend("first client", e);
        let mut tx = self.begin("first client").await?;
        // SHARE ROW EXCLUSIVE conflicts with itself and with the ROW
        // EXCLUSIVE lock of any INSERT: the count below stays true until
        // commit, so two replicas starting together create one client.
        sqlx::query("LOCK TABLE clients IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        if n > 0 {
            return Ok(false);
        }
        if !insert_client_in(&mut tx, client).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    /// Oldest first: by activation, creation, `kid` (as the SQLite store).
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = sqlx::query_as::<_, KeyRow>(
            "SELECT kid, alg, created_at, activates_at, retires_at, retired_at, private_key_pem \
             FROM signing_keys ORDER BY activates_at, created_at, kid COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend("signing_keys read", e))?;
        rows.into_iter().map(decode_key).collect()
    }

    async fn apply_key_change(&self, change: KeyChange) -> Result<KeyChangeOutcome, StoreError> {
        let fail = |e: sqlx::Error| backend("signing key change", e);
        let mut tx = self.begin("signing key change").await?;
        // I-110, I-115: one change of the key set at a time on every replica.
        lock_global(&mut tx, LOCK_KEYS).await.map_err(fail)?;
        if let Some(after) = change.insert_unless_pending_after {
            let pending: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM signing_keys \
                 WHERE retired_at IS NULL AND activates_at > $1)",
            )
            .bind(to_i64("activates_at", after)?)
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
            if pending {
                return Ok(KeyChangeOutcome::PendingExists);
            }
        }
        // As the SQLite store: a `kid` already stored changes nothing (the
        // kid is the key's thumbprint; a retired key is never revived).
        if let Some(k) = &change.insert {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, created_at, activates_at, retires_at, \
                 retired_at, private_key_pem) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (kid) DO NOTHING",
            )
            .bind(&k.kid)
            .bind(&k.alg)
            .bind(to_i64("created_at", k.created_at)?)
            .bind(to_i64("activates_at", k.activates_at)?)
            .bind(k.retires_at.map(|t| to_i64("retires_at", t)).transpose()?)
            .bind(k.retired_at.map(|t| to_i64("retired_at", t)).transpose()?)
            .bind(&k.private_key_pem)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(format_args!("cannot store signing key {}", k.kid), e))?;
        }
        for (kid, at) in &change.set_retires_at {
            sqlx::query(
                "UPDATE signing_keys SET retires_at = $2 WHERE kid = $1 AND retired_at IS NULL",
            )
            .bind(kid)
            .bind(to_i64("retires_at", *at)?)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        for (kid, at) in &change.retire {
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $2, private_key_pem = NULL \
                 WHERE kid = $1 AND retired_at IS NULL",
            )
            .bind(kid)
            .bind(to_i64("retired_at", *at)?)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        }
        // At most MAX_RETIRED_KEY_RECORDS retired records (I-90): the latest.
        sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND kid NOT IN \
             (SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL \
              ORDER BY retired_at DESC, activates_at DESC, kid COLLATE \"C\" DESC LIMIT $1)",
        )
        .bind(i64::try_from(MAX_RETIRED_KEY_RECORDS).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(KeyChangeOutcome::Applied)
    }

    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // Ids in byte order (COLLATE "C", as SQLite's BINARY), whatever the
        // database's collation: a page's `after` is the last id of the last.
        let sql = match kind {
            SealedKind::Specification => {
                "SELECT checksum, spec_json FROM agent_registrations \
                 WHERE checksum COLLATE \"C\" > $1 ORDER BY checksum COLLATE \"C\" LIMIT $2"
            }
            SealedKind::SigningKey => {
                "SELECT kid, private_key_pem FROM signing_keys \
                 WHERE private_key_pem IS NOT NULL AND kid COLLATE \"C\" > $1 \
                 ORDER BY kid COLLATE \"C\" LIMIT $2"
            }
        };
        sqlx::query_as::<_, (String, String)>(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(format_args!("sealed values ({kind:?})"), e))
    }

    /// One aggregate query, run by the server (the client reads a few
    /// rows, whatever the registry's size; I-158).
    async fn sealed_heads(
        &self,
        kind: SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        if kind != SealedKind::Specification {
            return Ok(None);
        }
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT substr(spec_json, 1, 32), COUNT(*) FROM agent_registrations \
             GROUP BY 1 LIMIT $1",
        )
        .bind(i64::from(max_heads).saturating_add(1))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend("sealed value heads", e))?;
        super::sqlite::heads(rows, max_heads)
    }

    async fn replace_sealed_value(
        &self,
        kind: SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = match kind {
            SealedKind::Specification => {
                "UPDATE agent_registrations SET spec_json = $3 \
                 WHERE checksum = $1 AND spec_json = $2"
            }
            SealedKind::SigningKey => {
                "UPDATE signing_keys SET private_key_pem = $3 \
                 WHERE kid = $1 AND private_key_pem = $2"
            }
        };
        let done = sqlx::query(sql)
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await
            .map_err(|e| backend(format_args!("replace sealed value ({kind:?}) {id}"), e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn rate_limit_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let t = gcra_interval(interval_ms);
        if burst == 0 {
            return Ok(Some(t.unsigned_abs()));
        }
        let tolerance = t.saturating_mul(i64::from(burst)).min(GCRA_MAX_MS);
        let fail = |e: sqlx::Error| backend(format_args!("rate limit {key}"), e);
        // GCRA in one statement (atomic on every replica, I-113): the new
        // theoretical arrival time max(tat, now) + T is stored only when it
        // is at most `burst` intervals ahead of now.
        let taken = sqlx::query_scalar::<_, i64>(
            "INSERT INTO rate_limit_buckets AS b (key, tat_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET tat_ms = GREATEST(b.tat_ms, $2) + $3 \
             WHERE GREATEST(b.tat_ms, $2) + $3 - $2 <= $4 \
             RETURNING tat_ms",
        )
        .bind(key)
        .bind(now_ms)
        .bind(t)
        .bind(tolerance)
        .fetch_optional(&self.pool)
        .await
        .map_err(fail)?;
        if taken.is_some() {
            return Ok(None);
        }
        // Refused: how long until a cell comes back (advisory; a concurrent
        // change only moves it).
        let tat =
            sqlx::query_scalar::<_, i64>("SELECT tat_ms FROM rate_limit_buckets WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(fail)?
                .unwrap_or(now_ms);
        let wait = tat
            .max(now_ms)
            .saturating_add(t)
            .saturating_sub(now_ms)
            .saturating_sub(tolerance);
        Ok(Some(wait.max(1).unsigned_abs()))
    }

    async fn rate_limit_block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rate_limit_blocks AS b (key, until_ms) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET until_ms = GREATEST(b.until_ms, EXCLUDED.until_ms)",
        )
        .bind(key)
        .bind(until_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| backend(format_args!("penalty box {key}"), e))
    }

    async fn rate_limit_blocked_until(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(until_ms) FROM rate_limit_blocks WHERE key = ANY($1) AND until_ms > $2",
        )
        .bind(keys)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| backend("penalty box read", e))
    }

    async fn remember_once(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        // One statement: a value is new, or its earlier record has expired
        // (then it is recorded again); a live record wins on every replica.
        let stored = sqlx::query_scalar::<_, i32>(
            "INSERT INTO once_values AS o (scope, value, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, value) DO UPDATE SET expires_ms = EXCLUDED.expires_ms \
             WHERE o.expires_ms <= $4 RETURNING 1",
        )
        .bind(scope)
        .bind(value)
        .bind(expires_ms)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("one-time value ({scope})"), e))?;
        Ok(stored.is_some())
    }

    async fn prune_shared_state(&self, now_ms: i64) -> Result<u64, StoreError> {
        let fail = |e: sqlx::Error| backend("cannot prune shared state", e);
        let mut n = 0u64;
        for sql in [
            "DELETE FROM rate_limit_buckets WHERE tat_ms <= $1",
            "DELETE FROM rate_limit_blocks WHERE until_ms <= $1",
            "DELETE FROM once_values WHERE expires_ms <= $1",
        ] {
            let done = sqlx::query(sql)
                .bind(now_ms)
                .execute(&self.pool)
                .await
                .map_err(fail)?;
            n = n.saturating_add(done.rows_affected());
        }
        Ok(n)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let (agents, registrations, workflows, clients, tokens, lists, used) =
            sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, i64)>(
                "SELECT (SELECT COUNT(DISTINCT agent_id) FROM agent_registrations), \
                 (SELECT COUNT(*) FROM agent_registrations), \
                 (SELECT COUNT(*) FROM workflows), \
                 (SELECT COUNT(*) FROM clients), \
                 (SELECT COUNT(*) FROM intent_tokens), \
                 (SELECT COUNT(*) FROM status_lists), \
                 (SELECT COALESCE(SUM(used), 0)::BIGINT FROM status_lists)",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend("stats", e))?;
        Ok(StoreStats {
            agents: to_u64("agents", agents)?,
            registrations: to_u64("registrations", registrations)?,
            workflows: to_u64("workflows", workflows)?,
            clients: to_u64("clients", clients)?,
            token_records: to_u64("token records", tokens)?,
            status_lists: to_u64("status lists", lists)?,
            statuses_used: to_u64("statuses used", used)?,
            pool_connections: self.pool.size(),
            pool_idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            pool_max: self.max_connections,
        })
    }

    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        self.feed.as_ref().map(|f| f.sender.subscribe())
    }
}

/// Largest GCRA interval or tolerance, in ms (about 35,000 years): keeps
/// the SQL arithmetic far from BIGINT overflow.
const GCRA_MAX_MS: i64 = 1 << 50;

/// The GCRA emission interval: at least 1 ms, at most [`GCRA_MAX_MS`].
fn gcra_interval(interval_ms: u64) -> i64 {
    i64::try_from(interval_ms)
        .unwrap_or(GCRA_MAX_MS)
        .clamp(1, GCRA_MAX_MS)
}

/// A `signing_keys` row.
type KeyRow = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn decode_key(row: KeyRow) -> Result<StoredSigningKey, StoreError> {
    let (kid, alg, created_at, activates_at, retires_at, retired_at, private_key_pem) = row;
    let t = |name: &str, v: i64| to_u64(&format!("signing_keys row {kid}: {name}"), v);
    Ok(StoredSigningKey {
        created_at: t("created_at", created_at)?,
        activates_at: t("activates_at", activates_at)?,
        retires_at: retires_at.map(|v| t("retires_at", v)).transpose()?,
        retired_at: retired_at.map(|v| t("retired_at", v)).transpose()?,
        kid,
        alg,
        private_key_pem,
    })
}

/// Revokes, inside `tx`, every unrevoked token of `agent_id` and every token
/// whose delegation chain contains it (§9.3.2); the number revoked.
async fn revoke_agent_tokens_only(
    conn: &mut sqlx::PgConnection,
    agent_id: &str,
    at_ms: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intent_tokens SET revoked = TRUE, revoked_at_ms = $2 WHERE NOT revoked AND \
         (agent_id = $1 OR jti IN (SELECT jti FROM intent_token_links \
         WHERE kind = 'agent' AND value = $1))",
    )
    .bind(agent_id)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

// --- The audit trail (I-100): group commit, one chain across replicas ---

/// Most entries written in one audit transaction.
const MAX_AUDIT_BATCH: usize = 256;

/// An entry waiting for its batch, and where its record goes.
type PendingAudit = (
    AuditEntry,
    tokio::sync::oneshot::Sender<Result<AuditRecord, StoreError>>,
);

/// The group-commit state of audit appends (as the SQLite store's).
#[derive(Debug, Default)]
struct AuditCommit {
    pending: std::sync::Mutex<Vec<PendingAudit>>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl AuditCommit {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<PendingAudit>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Appends `entries` in order after the chain's head in one transaction,
/// holding the chain's advisory lock: reading the head and inserting after
/// it is one step for every replica (I-115).
async fn append_audit_batch(
    pool: &PgPool,
    entries: Vec<AuditEntry>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut tx = begin_locked(pool, LOCK_AUDIT, "")
        .await
        .map_err(|e| backend("cannot begin audit append (audit lock)", e))?;
    let head = sqlx::query_as::<_, (i64, String)>(
        "SELECT seq, record_hash FROM audit_log ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| backend("audit head", e))?;
    let (mut seq, mut prev_hash) = match head {
        None => (1u64, crate::audit::GENESIS_HASH.to_owned()),
        Some((last, hash)) => (to_u64("audit head seq", last)?.saturating_add(1), hash),
    };
    // The chain is computed here, under the lock; the records then go to
    // the database in ONE statement (I-188): one round trip per group, not
    // one per record, while every replica waits for the chain's lock.
    let mut records = Vec::with_capacity(entries.len());
    let mut details = Vec::with_capacity(entries.len());
    for entry in entries {
        details.push(to_json("audit detail", &entry.detail)?);
        let record =
            AuditRecord::chain(entry, seq, prev_hash).map_err(|e| backend("audit record", e))?;
        seq = record.seq.saturating_add(1);
        prev_hash = record.record_hash.clone();
        records.push(record);
    }
    let seqs = records
        .iter()
        .map(|r| to_i64("audit seq", r.seq))
        .collect::<Result<Vec<i64>, _>>()?;
    let column = |f: fn(&AuditRecord) -> &Option<String>| -> Vec<Option<&str>> {
        records.iter().map(|r| f(r).as_deref()).collect()
    };
    let (first, last) = (
        records.first().map_or(0, |r| r.seq),
        records.last().map_or(0, |r| r.seq),
    );
    sqlx::query(
        "INSERT INTO audit_log (seq, time_ms, event, client_id, agent_id, registration_id, \
         jti, error_code, intent_hash, detail, prev_hash, record_hash) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])",
    )
    .bind(&seqs)
    .bind(records.iter().map(|r| r.time_ms).collect::<Vec<i64>>())
    .bind(
        records
            .iter()
            .map(|r| r.event.as_str())
            .collect::<Vec<&str>>(),
    )
    .bind(column(|r| &r.client_id))
    .bind(column(|r| &r.agent_id))
    .bind(column(|r| &r.registration_id))
    .bind(column(|r| &r.jti))
    .bind(column(|r| &r.error_code))
    .bind(column(|r| &r.intent_hash))
    .bind(&details)
    .bind(
        records
            .iter()
            .map(|r| r.prev_hash.as_str())
            .collect::<Vec<&str>>(),
    )
    .bind(
        records
            .iter()
            .map(|r| r.record_hash.as_str())
            .collect::<Vec<&str>>(),
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        backend(
            format_args!("cannot append audit records {first}..={last}"),
            e,
        )
    })?;
    tx.commit()
        .await
        .map_err(|e| backend("cannot commit audit records", e))?;
    Ok(records)
}

/// Columns of `audit_log` read into an [`AuditRecord`].
const AUDIT_COLUMNS: &str = "seq, time_ms, event, client_id, agent_id, registration_id, jti, \
     error_code, intent_hash, detail, prev_hash, record_hash";

/// Decodes an `audit_log` row.
fn decode_audit(row: &PgRow) -> Result<AuditRecord, StoreError> {
    const T: &str = "audit_log";
    let seq: i64 = column(row, T, &"(unknown seq)", "seq")?;
    let key = format_args!("seq={seq}");
    let key: &dyn Display = &key;
    let detail: String = column(row, T, key, "detail")?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|e| backend(format_args!("{T} row {key}: seq"), e))?,
        time_ms: column(row, T, key, "time_ms")?,
        event: column(row, T, key, "event")?,
        client_id: column(row, T, key, "client_id")?,
        agent_id: column(row, T, key, "agent_id")?,
        registration_id: column(row, T, key, "registration_id")?,
        jti: column(row, T, key, "jti")?,
        error_code: column(row, T, key, "error_code")?,
        intent_hash: column(row, T, key, "intent_hash")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| backend(format_args!("{T} row {key}: column detail"), e))?,
        prev_hash: column(row, T, key, "prev_hash")?,
        record_hash: column(row, T, key, "record_hash")?,
    })
}

/// A queued token record: the record, the list size, the random draw, and
/// whether its commit must be flushed before it is answered (`false`: the
/// phase 1 of an issuance, I-189).
type TokenWrite = (NewTokenRecord, u32, u64, bool);

/// The open status list as the last token group of this process committed
/// it (I-189), so that the next group need not read its bitmap again. The
/// bitmap only ever gains bits, one per unit of `used` (an index given back
/// is never written), so the stored bitmap is still the cached one exactly
/// when the list's `used` is unchanged; the group's first read asks for the
/// bitmap only otherwise (another replica allocated in between).
#[derive(Default)]
struct ListCache(Mutex<Option<OpenList>>);

impl ListCache {
    fn take(&self) -> Option<OpenList> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, list: Option<OpenList>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = list;
    }
}

/// The open status list during a batch.
#[derive(Clone)]
struct OpenList {
    list_id: i64,
    size: u32,
    allocated: Vec<u8>,
    used: i64,
    dirty: bool,
}

async fn flush_list(
    tx: &mut sqlx::PgConnection,
    list: &mut Option<OpenList>,
) -> Result<(), StoreError> {
    if let Some(l) = list.as_mut().filter(|l| l.dirty) {
        sqlx::query("UPDATE status_lists SET allocated = $2, used = $3 WHERE list_id = $1")
            .bind(l.list_id)
            .bind(&l.allocated)
            .bind(l.used)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(format_args!("status list {}: allocate", l.list_id), e))?;
        l.dirty = false;
    }
    Ok(())
}

/// Opens the list the next index comes from: the current one while it has
/// room, else (after writing the current one's bitmap) the first list with
/// room, else a new list of `list_size` entries.
async fn open_list(
    tx: &mut sqlx::PgConnection,
    list: &mut Option<OpenList>,
    cached: &mut Option<OpenList>,
    list_size: u32,
    created_at_ms: i64,
) -> Result<(), StoreError> {
    if list.as_ref().is_some_and(|l| l.used < i64::from(l.size)) {
        return Ok(());
    }
    flush_list(tx, list).await?;
    // The bitmap is sent only when it is not the cached one (I-189).
    let (known_id, known_used) = cached.as_ref().map_or((-1, -1), |c| (c.list_id, c.used));
    let open = sqlx::query_as::<_, (i64, i64, Option<Vec<u8>>, i64)>(
        "SELECT list_id, size, \
         CASE WHEN list_id = $1 AND used = $2 THEN NULL ELSE allocated END, used \
         FROM status_lists WHERE used < size ORDER BY list_id LIMIT 1",
    )
    .bind(known_id)
    .bind(known_used)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| backend("open status list", e))?;
    *list = Some(match open {
        Some((list_id, size, allocated, used)) => {
            let allocated = match allocated {
                Some(bytes) => bytes,
                None => cached
                    .take()
                    .filter(|c| c.list_id == list_id && c.used == used)
                    .map(|c| c.allocated)
                    .ok_or_else(|| backend(format_args!("status list {list_id}"), "cache lost"))?,
            };
            OpenList {
                list_id,
                size: u32::try_from(size)
                    .map_err(|e| backend(format_args!("status list {list_id}: size"), e))?,
                allocated,
                used,
                dirty: false,
            }
        }
        None => {
            let bytes = vec![0u8; (list_size as usize).div_ceil(8)];
            let list_id = sqlx::query_scalar::<_, i64>(
                "INSERT INTO status_lists (size, allocated, used, created_at_ms) \
                 VALUES ($1, $2, 0, $3) RETURNING list_id",
            )
            .bind(i64::from(list_size))
            .bind(&bytes)
            .bind(created_at_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| backend("new status list", e))?;
            OpenList {
                list_id,
                size: list_size,
                allocated: bytes,
                used: 0,
                dirty: false,
            }
        }
    });
    Ok(())
}

/// Writes the token records of one list segment, their links, their
/// registrations' activity and the list's bitmap and count (`list` as it
/// stands with the segment's indices drawn) in ONE statement (I-188,
/// I-189): data-modifying CTEs over arrays, so a group costs the same
/// round trips whatever its size. Returns the `jti`s actually inserted (a
/// `jti` already recorded is skipped by `ON CONFLICT DO NOTHING`, and so
/// are its links and activity; the caller gives its index back).
async fn insert_tokens(
    tx: &mut sqlx::PgConnection,
    list: &OpenList,
    segment: &[(&NewTokenRecord, u32)],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let list_id = list.list_id;
    let n = segment.len();
    let mut link_jti = Vec::new();
    let mut link_kind = Vec::new();
    let mut link_value = Vec::new();
    for (token, _) in segment {
        for (kind, value) in token.links() {
            link_jti.push(token.jti.as_str());
            link_kind.push(kind);
            link_value.push(value);
        }
    }
    let col = |f: fn(&NewTokenRecord) -> &str| -> Vec<&str> {
        segment.iter().map(|(t, _)| f(t)).collect()
    };
    let inserted: Vec<String> = sqlx::query_scalar(
        "WITH t AS ( \
           INSERT INTO intent_tokens (jti, agent_id, registration_id, client_id, iat, exp, \
             list_id, idx) \
           SELECT u.jti, u.agent_id, u.registration_id, u.client_id, u.iat, u.exp, $7, u.idx \
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
             $8::int8[]) AS u(jti, agent_id, registration_id, client_id, iat, exp, idx) \
           ON CONFLICT (jti) DO NOTHING RETURNING jti), \
         l AS ( \
           INSERT INTO intent_token_links (jti, kind, value) \
           SELECT u.jti, u.kind, u.value \
           FROM UNNEST($9::text[], $10::text[], $11::text[]) AS u(jti, kind, value) \
           WHERE u.jti IN (SELECT jti FROM t) \
           ON CONFLICT DO NOTHING), \
         a AS ( \
           INSERT INTO registration_activity AS a (registration_id, agent_id, \
             first_token_at_ms, last_token_at_ms) \
           SELECT u.registration_id, MIN(u.agent_id), MIN(u.at_ms), MAX(u.at_ms) \
           FROM UNNEST($1::text[], $2::text[], $3::text[], $12::int8[]) \
             AS u(jti, agent_id, registration_id, at_ms) \
           WHERE u.jti IN (SELECT jti FROM t) \
           GROUP BY u.registration_id \
           ON CONFLICT (registration_id) DO UPDATE \
           SET first_token_at_ms = LEAST(a.first_token_at_ms, EXCLUDED.first_token_at_ms), \
           last_token_at_ms = GREATEST(a.last_token_at_ms, EXCLUDED.last_token_at_ms)), \
         s AS ( \
           UPDATE status_lists SET allocated = $13, used = $14 WHERE list_id = $7) \
         SELECT jti FROM t",
    )
    .bind(col(|t| &t.jti))
    .bind(col(|t| &t.agent_id))
    .bind(col(|t| &t.registration_id))
    .bind(col(|t| &t.client_id))
    .bind(segment.iter().map(|(t, _)| t.iat).collect::<Vec<i64>>())
    .bind(segment.iter().map(|(t, _)| t.exp).collect::<Vec<i64>>())
    .bind(list_id)
    .bind(
        segment
            .iter()
            .map(|(_, idx)| i64::from(*idx))
            .collect::<Vec<i64>>(),
    )
    .bind(&link_jti)
    .bind(&link_kind)
    .bind(&link_value)
    .bind(
        segment
            .iter()
            .map(|(t, _)| t.iat.saturating_mul(1000))
            .collect::<Vec<i64>>(),
    )
    .bind(&list.allocated)
    .bind(list.used)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| {
        backend(
            format_args!("status list {list_id}: insert {n} token record(s)"),
            e,
        )
    })?;
    Ok(inserted.into_iter().collect())
}

/// Writes a batch of token records (I-159) in one transaction under the
/// status list lock; one result per item, or `Err` for the batch.
///
/// I-188: indices are drawn for as many items as the open list has room
/// for, and that segment is written in one statement ([`insert_tokens`],
/// the list's bitmap included since I-189); an item whose `jti` is already
/// recorded, or repeats one earlier in the batch, fails alone and gives its
/// index back (the bitmap is then written again before the commit).
async fn record_tokens(
    pool: PgPool,
    cache: Arc<ListCache>,
    items: Vec<TokenWrite>,
) -> Result<Vec<Result<StatusIndex, StoreError>>, StoreError> {
    // Taken now: a batch that fails leaves no cache behind.
    let mut cached = cache.take();
    // I-189: a group of phase 1 writes only does not wait for its flush.
    // A group with a durable write keeps the database's own setting (which
    // may be stronger than `on`, e.g. `remote_apply`).
    let flush = items.iter().any(|(_, _, _, durable)| *durable);
    let mut tx = begin_locked(
        &pool,
        LOCK_STATUS_LIST,
        if flush {
            ""
        } else {
            ", set_config('synchronous_commit', 'off', true)"
        },
    )
    .await
    .map_err(|e| backend("cannot begin token records (status list lock)", e))?;
    let duplicate =
        |jti: &str| backend(format_args!("token {jti}: insert"), "jti already recorded");
    let mut results: Vec<Option<Result<StatusIndex, StoreError>>> =
        items.iter().map(|_| None).collect();
    // A jti repeated within the batch: only its first item is written.
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut pending: Vec<usize> = Vec::with_capacity(items.len());
    for (i, (token, _, _, _)) in items.iter().enumerate() {
        if seen.insert(token.jti.as_str()) {
            pending.push(i);
        } else if let Some(slot) = results.get_mut(i) {
            *slot = Some(Err(duplicate(&token.jti)));
        }
    }
    let mut list: Option<OpenList> = None;
    let mut next = 0;
    while let Some(&first) = pending.get(next) {
        let Some((first_token, first_size, _, _)) = items.get(first) else {
            break;
        };
        open_list(
            &mut tx,
            &mut list,
            &mut cached,
            *first_size,
            first_token.iat.saturating_mul(1000),
        )
        .await?;
        let l = list
            .as_mut()
            .ok_or_else(|| backend("status list", "none open"))?;
        let list_id = l.list_id;
        // Draw an index for each item the list has room for.
        let mut segment: Vec<(usize, u32)> = Vec::new();
        while let Some(&i) = pending.get(next) {
            if l.used >= i64::from(l.size) {
                break;
            }
            let Some((token, _, random, _)) = items.get(i) else {
                break;
            };
            let free = u64::try_from(i64::from(l.size) - l.used)
                .map_err(|e| backend(format_args!("token {}: status list used", token.jti), e))?;
            let idx = crate::status::nth_free(&l.allocated, l.size, random % free.max(1))
                .filter(|x| crate::status::allocate(&mut l.allocated, *x))
                .ok_or_else(|| {
                    backend(
                        format_args!("token {}: status list bitmap", token.jti),
                        format_args!("list {list_id} full"),
                    )
                })?;
            l.used += 1;
            segment.push((i, idx));
            next += 1;
        }
        let rows: Vec<(&NewTokenRecord, u32)> = segment
            .iter()
            .filter_map(|&(i, idx)| items.get(i).map(|(t, _, _, _)| (t, idx)))
            .collect();
        // The segment's statement also writes the bitmap as if every row
        // were inserted; a `jti` found already recorded gives its index
        // back below, and the bitmap is then written again (rare).
        let inserted = insert_tokens(&mut tx, l, &rows).await?;
        l.dirty = false;
        for &(i, idx) in &segment {
            let Some((token, _, _, _)) = items.get(i) else {
                continue;
            };
            let outcome = if inserted.contains(&token.jti) {
                Ok(StatusIndex {
                    list_id,
                    idx: u64::from(idx),
                })
            } else {
                // Already recorded: nothing written, the index given back.
                if let Some(b) = l.allocated.get_mut((idx / 8) as usize) {
                    *b &= !(1u8 << (idx % 8));
                }
                l.used -= 1;
                l.dirty = true;
                Err(duplicate(&token.jti))
            };
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(outcome);
            }
        }
    }
    flush_list(&mut tx, &mut list).await?;
    tx.commit()
        .await
        .map_err(|e| backend("cannot commit token records", e))?;
    cache.put(list.filter(|l| l.used < i64::from(l.size)));
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(backend("token record", "not written"))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i111_notification_payloads_round_trip() {
        assert_eq!(
            parse_payload(&change_payload("agent-1")),
            StoreChange::Agent("agent-1".into())
        );
        // An id that does not fit a payload: everything is invalidated.
        assert_eq!(
            parse_payload(&change_payload(&"x".repeat(MAX_NOTIFY_PAYLOAD + 1))),
            StoreChange::All
        );
        assert_eq!(parse_payload("garbage"), StoreChange::All);
    }

    #[test]
    fn i118_gcra_interval_is_clamped() {
        assert_eq!(gcra_interval(0), 1);
        assert_eq!(gcra_interval(u64::MAX), GCRA_MAX_MS);
        assert_eq!(gcra_interval(250), 250);
    }

    #[tokio::test]
    async fn i117_bad_url_error_hides_the_password() {
        let url = DatabaseUrl::new("postgres://u:s3cret@127.0.0.1:notaport/db");
        let e = PgStore::connect(&url).await.unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
