//! The embedded SQLite implementation of [`Store`] (sqlx 0.8, runtime
//! queries only). One database file holds the agent registry (§4.7.1), the
//! workflow registry (§4.7.2) and the issuer's OAuth clients; the schema lives
//! in `crates/issuer/migrations/` and is embedded at compile time. The file is
//! opened in WAL mode with `synchronous=FULL`, foreign keys on and a busy
//! timeout; `register_agent` runs in one `BEGIN IMMEDIATE` transaction so
//! concurrent registrations of one agent serialize on SQLite's write lock
//! (§5.4.2 steps 3-5, §5.4.4). Rows that fail to decode are reported as
//! [`StoreError::Backend`] naming the row, never a panic.

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

use super::group::{GroupCommit, RegistrationWrite, Write, Written};
use super::{AgentRecord, ClientRecord, JsonMap, NewRegistration, Store, StoreError};
use super::{
    ChainLink, NewTokenRecord, RegistrationActivity, RevokedRegistration, StatusIndex,
    StoredStatusList, TokenRecord, TokenReservation,
};
use crate::audit::{AuditCheckpoint, AuditEntry, AuditRecord};

/// How long a connection waits for another connection's write lock before
/// failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pool size of a file database (WAL allows concurrent readers and one writer).
const MAX_CONNECTIONS: u32 = 8;

/// `PRAGMA wal_autocheckpoint` of a file database (I-190): SQLite's default
/// is 1,000 pages, which a token group every millisecond reaches about ten
/// times a second.
const WAL_AUTOCHECKPOINT_PAGES: &str = "10000";

/// How often the background checkpointer copies the WAL into the database
/// file (I-182).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The background WAL checkpointer of a file database (issue 15, I-182).
///
/// SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages
/// (`wal_autocheckpoint`): it copies every page not yet copied into the
/// database file and fsyncs it (`synchronous=FULL`) while that group's
/// callers, and every group queued behind it, wait. A token group writes
/// about 13 pages (the token row and its five indexes, the links, the
/// activity row, the audit row, the status list row), so at 1,000 tokens/s
/// that was a multi-megabyte copy and fsync about 13 times a second, the
/// tail of the fixed-rate latency on disk. This task runs `PRAGMA
/// wal_checkpoint(PASSIVE)` on a pool connection every [`CHECKPOINT_EVERY`]:
/// PASSIVE blocks neither writers nor readers, so the copying and the
/// database file's fsync happen off the commit path. A COMMIT still
/// checkpoints inline at [`WAL_AUTOCHECKPOINT_PAGES`] (I-190: 10,000, not
/// 1,000), which bounds the WAL when the background copies never catch up
/// fully; it then finds almost every page already copied. (SQLite restarts
/// the WAL from its start at the first write after a checkpoint that
/// copied everything, whoever ran it.) Durability is unchanged: a
/// commit is durable once its WAL frames are synced. The task ends with the
/// store (its last clone dropped, or [`Store::close`]).
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    fn start(pool: SqlitePool) -> Checkpointer {
        Checkpointer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    if pool.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %e, "background WAL checkpoint failed; commits still checkpoint at 1,000 pages");
                }
            }
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The schema, embedded from `crates/issuer/migrations/` at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Columns of `agent_registrations` read into an [`AgentRecord`].
const AGENT_COLUMNS: &str = "id, agent_id, version, registration_id, checksum, checksum_profile, \
     public_jwk, jwk_thumbprint, allowed_scopes, app_id, registered_at_ms, revoked";

/// SQLite-backed [`Store`]. Cloning shares the connection pool.
///
/// Durability: the database runs in WAL mode with `synchronous=FULL`, so a
/// registration (or, later, a revocation) that was acknowledged to a client
/// survives a power loss, not only a process crash as with `NORMAL`. Writes
/// are rare (registrations, workflows, clients) and already dominated by
/// checksum computation and Argon2, so the extra fsync per commit is cheap,
/// while silently losing an acknowledged registration would break the audit
/// trail of §5.4.4 and §9.1.4.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The connection every write group runs on (I-185): one connection,
    /// never recycled, so that its page cache stays valid from one group to
    /// the next. The same pool as `pool` for in-memory and read-only stores.
    writer: SqlitePool,
    /// Group commit of registrations, token records and audit appends
    /// (I-100, I-155).
    writes: Arc<GroupCommit>,
    /// The background WAL checkpointer of a file database (I-182).
    checkpointer: Option<Arc<Checkpointer>>,
}

/// A write answered with another kind's result: a bug, reported as a
/// backend error rather than a panic.
fn unexpected(w: &Written) -> StoreError {
    StoreError::Backend(format!("write group: unexpected result {w:?}"))
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

/// Creates `path` with owner-only permissions if it does not exist, so the
/// registry is readable only by the issuer's user (§9.1.4 "only IDP can
/// read"). SQLite gives the `-wal` and `-shm` files the same permissions. An
/// empty file is a valid empty SQLite database.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(backend(format_args!("cannot create {}", path.display()), e)),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies
    /// pending migrations. The parent directory must exist.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // I-190: the COMMIT that takes the WAL past this many pages
            // checkpoints inline (copy + database fsync) while its group
            // waits; the background checkpointer does that work, so the
            // inline one is only a bound on the WAL's size (about 40 MiB).
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .optimize_on_close(true, None);
        // No ping before each use: a SQLite connection cannot be dropped by
        // a server, and the ping is one more round trip to the
        // connection's thread (I-181).
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| backend(format_args!("cannot open {}", path.display()), e))?;
        let mut store = Self::migrated(pool).await?;
        // I-185: SQLite discards a connection's page cache when it begins a
        // transaction after another connection wrote. Groups taken by
        // whichever pooled connection was idle re-read every page they
        // touched; on their own connection they find them cached.
        store.writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| backend(format_args!("cannot open {}", path.display()), e))?;
        store.checkpointer = Some(Arc::new(Checkpointer::start(store.pool.clone())));
        Ok(store)
    }

    /// A fresh private in-memory database (tests, `--ephemeral` runs). It
    /// uses exactly one connection that is never recycled, so the data lives
    /// as long as the store.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .shared_cache(false)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| backend("cannot open in-memory database", e))?;
        Self::migrated(pool).await
    }

    /// Limits write groups to `n` writes (1: every write is its own
    /// transaction and fsync, as before group commit; benchmarks compare
    /// against that). The default is [`super::group::MAX_GROUP`].
    pub fn set_write_group_limit(&self, n: usize) {
        self.writes.set_max_group(n);
    }

    /// How many write groups (transactions, each one WAL fsync) this store
    /// committed so far; tests count the commits of an issuance (I-160).
    pub fn write_groups_committed(&self) -> u64 {
        self.writes.commits()
    }

    /// How many of those groups were written by the fast path of token
    /// and audit groups (I-181).
    pub fn write_groups_fast(&self) -> u64 {
        self.writes.fast_commits()
    }

    /// Writes every group statement by statement (`false`), as before
    /// I-181, or lets token and audit groups take the fast path (`true`,
    /// the default). Tests compare the two paths.
    pub fn set_fast_write_groups(&self, on: bool) {
        self.writes.set_fast(on);
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore, StoreError> {
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(backend("migration failed", e));
        }
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
            writes: Arc::default(),
            checkpointer: None,
        })
    }
}

/// `rows` (head, count) as [`Store::sealed_heads`] returns them: `None`
/// beyond `max_heads` heads.
pub(super) fn heads(
    rows: Vec<(String, i64)>,
    max_heads: u32,
) -> Result<Option<Vec<(String, u64)>>, StoreError> {
    if rows.len() > max_heads as usize {
        return Ok(None);
    }
    rows.into_iter()
        .map(|(h, n)| {
            u64::try_from(n)
                .map(|n| (h, n))
                .map_err(|e| backend("sealed value heads: count", e))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Reads one column, naming the table, row and column on failure.
fn column<'r, T>(
    row: &'r SqliteRow,
    table: &str,
    key: &dyn Display,
    name: &str,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get::<T, _>(name)
        .map_err(|e| backend(format_args!("{table} row {key}: column {name}"), e))
}

/// Decodes an `agent_registrations` row selected with [`AGENT_COLUMNS`].
fn decode_agent(row: &SqliteRow) -> Result<AgentRecord, StoreError> {
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
    let revoked: i64 = column(row, T, key, "revoked")?;
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
        revoked: match revoked {
            0 => false,
            1 => true,
            other => return Err(bad("revoked", &format_args!("not 0 or 1: {other}"))),
        },
    })
}

/// Decodes a `clients` row.
fn decode_client(row: &SqliteRow) -> Result<ClientRecord, StoreError> {
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

fn to_json<T: serde::Serialize + ?Sized>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| backend(format_args!("cannot encode {what}"), e))
}

#[async_trait]
impl Store for SqliteStore {
    /// Group commit (I-155): the registration is written with the other
    /// writes queued at the same time, in one transaction and one fsync,
    /// each in its own savepoint; see [`super::group`].
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
        let write = Write::Register(Box::new(RegistrationWrite {
            new,
            checksum,
            public_jwk,
            allowed_scopes,
        }));
        match self.writes.submit(&self.writer, write).await? {
            Written::Register(record) => Ok(*record),
            other => Err(unexpected(&other)),
        }
    }

    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agent_registrations \
             WHERE agent_id = ?1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("latest registration of {agent_id}"), e))?;
        row.as_ref().map(decode_agent).transpose()
    }

    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        // One transaction with the agent's tokens (§5.6.1 "all tokens
        // invalidated", §9.3.2): a crash cannot leave the agent revoked and
        // its tokens valid in the status lists. SQLite counts every row the
        // WHERE clause matched, also rows already revoked: the count is the
        // agent's number of registrations and a repeat returns the same.
        let fail = |e: sqlx::Error| backend(format_args!("cannot revoke agent {agent_id}"), e);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail)?;
        let done = sqlx::query("UPDATE agent_registrations SET revoked = 1 WHERE agent_id = ?1")
            .bind(agent_id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        // The time of the revocation itself is recorded by the caller's
        // `revoke_agent_tokens` (on the issuer's clock).
        revoke_agent_tokens_only(&mut tx, agent_id, now_ms())
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        let count = done.rows_affected();
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
             WHERE agent_id = ?1 ORDER BY version ASC"
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
            "INSERT INTO workflows (workflow_id, definition, created_at_ms) VALUES (?1, ?2, ?3) \
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
        tracing::debug!(workflow_id = %workflow.workflow_id, "workflow stored");
        Ok(())
    }

    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
        let definition = sqlx::query_scalar::<_, String>(
            "SELECT definition FROM workflows WHERE workflow_id = ?1",
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
        let scopes = to_json("allowed_scopes", &client.allowed_scopes)?;
        let done = sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, allowed_scopes, created_at_ms, \
             description) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(&client.client_id)
        .bind(&client.secret_hash)
        .bind(&scopes)
        .bind(client.created_at_ms)
        .bind(&client.description)
        .execute(&self.pool)
        .await
        .map_err(|e| backend(format_args!("cannot store client {}", client.client_id), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ClientExists(client.client_id.clone()));
        }
        tracing::debug!(client_id = %client.client_id, "client stored");
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, secret_hash, allowed_scopes, created_at_ms, description \
             FROM clients WHERE client_id = ?1",
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
        u64::try_from(n).map_err(|e| backend("client count", e))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map(drop)
            .map_err(|e| backend("ping failed", e))
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    // ---- token records, status lists, lifecycle (issue 13) ---------------

    /// Group commit (I-155): see [`super::group`]; the status list bitmap
    /// is written once per group. The index is chosen inside the group,
    /// against the stored bitmap and the indices reserved in memory (I-160).
    async fn record_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        if list_size == 0 {
            return Err(backend(
                format_args!("token {}: status list size", token.jti),
                "0",
            ));
        }
        self.writes.load_lists(&self.pool).await?;
        let write = Write::Record {
            token: Box::new(token),
            list_size,
            random,
        };
        match self.writes.submit(&self.writer, write).await? {
            Written::Record(index) => Ok(index),
            other => Err(unexpected(&other)),
        }
    }

    /// Phase 1 of I-160: the index is reserved in memory (the store is the
    /// only writer of its file); nothing is written yet.
    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<TokenReservation, StoreError> {
        if list_size == 0 {
            return Err(backend(
                format_args!("token {}: status list size", token.jti),
                "0",
            ));
        }
        let pending = self
            .writes
            .reserve(&self.pool, token, list_size, random)
            .await?;
        Ok(TokenReservation::reserved(pending))
    }

    /// Phase 2 of I-160: the token record and its audit entry are ONE
    /// queued write, so an issuance waits for one group commit.
    async fn finish_token(
        &self,
        reservation: TokenReservation,
        audit: Option<AuditEntry>,
    ) -> Result<Option<AuditRecord>, StoreError> {
        let Some(pending) = reservation.into_pending() else {
            return match audit {
                Some(entry) => Ok(Some(self.append_audit(entry).await?)),
                None => Ok(None),
            };
        };
        let write = Write::Token {
            pending,
            audit: audit.map(Box::new),
        };
        match self.writes.submit(&self.writer, write).await? {
            Written::Token(record) => Ok(record.map(|r| *r)),
            other => Err(unexpected(&other)),
        }
    }

    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let fail = |what: &str, e: &dyn Display| {
            backend(format_args!("intent_tokens row jti={jti}: {what}"), e)
        };
        let row = sqlx::query_as::<_, (String, String, String, i64, i64, i64, i64, i64)>(
            "SELECT agent_id, registration_id, client_id, iat, exp, list_id, idx, revoked \
             FROM intent_tokens WHERE jti = ?1",
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
            "SELECT kind, value FROM intent_token_links WHERE jti = ?1 ORDER BY kind, value",
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
        // Registrations are kept as links of their own; a registration id
        // names its agent (`reg_<agent_id>_<ts>`), so pair them back.
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
            revoked: revoked != 0,
        }))
    }

    async fn revoke_token(&self, jti: &str, at_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE intent_tokens SET revoked = 1, revoked_at_ms = ?2 WHERE revoked = 0 AND \
             (jti = ?1 OR jti IN (SELECT jti FROM intent_token_links \
             WHERE kind = 'ancestor' AND value = ?1))",
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail)?;
        let n = revoke_agent_tokens_in(&mut tx, agent_id, at_ms)
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail)?;
        let agent_id = sqlx::query_scalar::<_, String>(
            "UPDATE agent_registrations SET revoked = 1 WHERE registration_id = ?1 \
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
            "UPDATE intent_tokens SET revoked = 1, revoked_at_ms = ?2 WHERE revoked = 0 AND \
             (registration_id = ?1 OR jti IN (SELECT jti FROM intent_token_links \
             WHERE kind = 'registration' AND value = ?1))",
        )
        .bind(registration_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "INSERT INTO registration_activity (registration_id, agent_id, revoked_at_ms) \
             VALUES (?1, ?2, ?3) ON CONFLICT (registration_id) DO UPDATE \
             SET revoked_at_ms = COALESCE(revoked_at_ms, excluded.revoked_at_ms)",
        )
        .bind(registration_id)
        .bind(&agent_id)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Some(RevokedRegistration {
            agent_id,
            tokens: done.rows_affected(),
        }))
    }

    async fn status_list(&self, list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        let fail = |e: &dyn Display| backend(format_args!("status_lists row list_id={list_id}"), e);
        let size = sqlx::query_scalar::<_, i64>("SELECT size FROM status_lists WHERE list_id = ?1")
            .bind(list_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| fail(&e))?;
        let Some(size) = size else {
            return Ok(None);
        };
        let revoked = sqlx::query_scalar::<_, i64>(
            "SELECT idx FROM intent_tokens WHERE list_id = ?1 AND revoked = 1",
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail)?;
        // Links go with their token (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM intent_tokens WHERE exp < ?1")
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
             VALUES (?1, ?2, ?3) ON CONFLICT (registration_id) DO UPDATE \
             SET last_mismatch_at_ms = excluded.last_mismatch_at_ms",
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
             revoked_at_ms FROM registration_activity WHERE agent_id = ?1",
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
    ) -> Result<Option<super::StoredSpecification>, StoreError> {
        let row = sqlx::query_as::<_, (String, String)>(
            "SELECT checksum, spec_json FROM agent_registrations WHERE registration_id = ?1",
        )
        .bind(registration_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend(format_args!("specification of {registration_id}"), e))?;
        row.map(|(checksum, spec_json)| {
            Ok(super::StoredSpecification {
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

    /// Group commit (I-100, I-155): the entry is queued with the other
    /// writes (registrations, token records) and chained in queue order
    /// after the head read under the write lock; see [`super::group`].
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        match self
            .writes
            .submit(&self.pool, Write::Audit(Box::new(entry)))
            .await?
        {
            Written::Audit(record) => Ok(*record),
            other => Err(unexpected(&other)),
        }
    }

    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?1"
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
        let seq = i64::try_from(c.seq).map_err(|e| backend("audit checkpoint seq", e))?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, record_hash, signed_at_ms, jws) \
             VALUES (?1, ?2, ?3, ?4)",
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
                seq: u64::try_from(seq).map_err(|e| backend("audit_checkpoints seq", e))?,
                record_hash,
                signed_at_ms,
                jws,
            })
        })
        .transpose()
    }

    // ---- issue 14: the first client (I-116) --------------------------------

    /// One statement under SQLite's write lock: the client is inserted only
    /// when the table is empty, so two processes on one file create one.
    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let scopes = to_json("allowed_scopes", &client.allowed_scopes)?;
        let done = sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, allowed_scopes, created_at_ms, \
             description) SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM clients)",
        )
        .bind(&client.client_id)
        .bind(&client.secret_hash)
        .bind(&scopes)
        .bind(client.created_at_ms)
        .bind(&client.description)
        .execute(&self.pool)
        .await
        .map_err(|e| backend(format_args!("cannot store client {}", client.client_id), e))?;
        Ok(done.rows_affected() == 1)
    }

    // --- signing keys (I-110): see `signing_keys_in` / `apply_key_change_in` below ---

    async fn signing_keys(&self) -> Result<Vec<super::StoredSigningKey>, StoreError> {
        signing_keys_in(&self.pool).await
    }

    async fn apply_key_change(
        &self,
        change: super::KeyChange,
    ) -> Result<super::KeyChangeOutcome, StoreError> {
        apply_key_change_in(&self.pool, change).await
    }

    // ---- encryption at rest (I-112): the sealed columns ----------------
    async fn sealed_values(
        &self,
        kind: super::SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.sealed_page(kind, after, limit).await
    }

    /// One `GROUP BY` over the covering index of `spec_head` (migration
    /// 0006): the index alone is read, not the specifications.
    async fn sealed_heads(
        &self,
        kind: super::SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        if kind != super::SealedKind::Specification {
            return Ok(None);
        }
        let rows = sqlx::query_as::<_, (Option<String>, i64)>(
            "SELECT spec_head, COUNT(*) FROM agent_registrations \
             GROUP BY spec_head LIMIT ?1",
        )
        .bind(i64::from(max_heads).saturating_add(1))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend("sealed value heads", e))?;
        let rows = rows
            .into_iter()
            .map(|(h, n)| (h.unwrap_or_default(), n))
            .collect();
        heads(rows, max_heads)
    }

    async fn replace_sealed_value(
        &self,
        kind: super::SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.replace_sealed(kind, id, old, new).await
    }

    // ---- scale-out (issue 14): shared limits and stats (I-113, I-114);
    // the bodies are in the `impl SqliteStore` block "Shared limits" below.

    async fn rate_limit_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        self.gcra_take(key, burst, interval_ms, now_ms).await
    }

    async fn rate_limit_block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.block_key(key, until_ms).await
    }

    async fn rate_limit_blocked_until(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.blocked_until(keys, now_ms).await
    }

    async fn remember_once(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        self.remember(scope, value, expires_ms, now_ms()).await
    }

    async fn prune_shared_state(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.prune_shared(now_ms).await
    }

    async fn stats(&self) -> Result<super::StoreStats, StoreError> {
        self.sizes().await
    }
}

// --- Shared limits (I-113) and stats (I-114) ---

impl SqliteStore {
    /// GCRA (the algorithm of the `governor` crate): the bucket holds
    /// `burst` cells, one coming back every `interval_ms`; `tat_ms` is the
    /// theoretical arrival time of the next cell. A cell is taken when
    /// `max(tat, now) - now <= (burst - 1) * interval`, setting `tat` to
    /// `max(tat, now) + interval`, in one upsert (atomic across processes on
    /// the file: one statement is one write transaction).
    async fn gcra_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let interval = i64::try_from(interval_ms).unwrap_or(i64::MAX).max(1);
        if burst == 0 {
            return Ok(Some(interval_ms.max(1)));
        }
        let tolerance = interval.saturating_mul(i64::from(burst) - 1);
        let taken = sqlx::query_scalar::<_, i64>(
            "INSERT INTO rate_limit_buckets (key, tat_ms) VALUES (?1, ?2 + ?3) \
             ON CONFLICT (key) DO UPDATE SET tat_ms = max(tat_ms, ?2) + ?3 \
             WHERE max(tat_ms, ?2) - ?2 <= ?4 RETURNING tat_ms",
        )
        .bind(key)
        .bind(now)
        .bind(interval)
        .bind(tolerance)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend("rate_limit_buckets take", e))?;
        if taken.is_some() {
            return Ok(None);
        }
        let tat =
            sqlx::query_scalar::<_, i64>("SELECT tat_ms FROM rate_limit_buckets WHERE key = ?1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend("rate_limit_buckets read", e))?
                .unwrap_or(now);
        let wait = tat.max(now).saturating_sub(now).saturating_sub(tolerance);
        Ok(Some(u64::try_from(wait).unwrap_or(0).max(1)))
    }

    /// Puts `key` in the penalty box until `until_ms`; a later time wins.
    async fn block_key(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rate_limit_blocks (key, until_ms) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
        )
        .bind(key)
        .bind(until_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("rate_limit_blocks write", e))?;
        Ok(())
    }

    /// The latest penalty-box time after `now` of any of `keys`: one
    /// indexed read for all keys (the keys are passed as one JSON array).
    async fn blocked_until(&self, keys: &[String], now: i64) -> Result<Option<i64>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let keys = to_json("rate limit keys", keys)?;
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT max(until_ms) FROM rate_limit_blocks \
             WHERE key IN (SELECT value FROM json_each(?1)) AND until_ms > ?2",
        )
        .bind(keys)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| backend("rate_limit_blocks read", e))
    }

    /// Records `value` in `scope` until `expires_ms` unless it is recorded
    /// and unexpired at `now` (then `false`), in one upsert.
    async fn remember(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let fresh = sqlx::query_scalar::<_, i64>(
            "INSERT INTO once_values (scope, value, expires_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (scope, value) DO UPDATE SET expires_ms = excluded.expires_ms \
             WHERE once_values.expires_ms <= ?4 RETURNING 1",
        )
        .bind(scope)
        .bind(value)
        .bind(expires_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend("once_values write", e))?;
        Ok(fresh.is_some())
    }

    /// Deletes full buckets, ended blocks and expired one-time values.
    async fn prune_shared(&self, now: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for sql in [
            "DELETE FROM rate_limit_buckets WHERE tat_ms <= ?1",
            "DELETE FROM rate_limit_blocks WHERE until_ms <= ?1",
            "DELETE FROM once_values WHERE expires_ms <= ?1",
        ] {
            deleted += sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(|e| backend("prune shared state", e))?
                .rows_affected();
        }
        Ok(deleted)
    }

    /// Registry and status-list sizes (COUNTs: called by the metrics
    /// refresh at most every few seconds, never per scrape) and the pool.
    async fn sizes(&self) -> Result<super::StoreStats, StoreError> {
        let row = sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, i64)>(
            "SELECT (SELECT COUNT(DISTINCT agent_id) FROM agent_registrations), \
             (SELECT COUNT(*) FROM agent_registrations), (SELECT COUNT(*) FROM workflows), \
             (SELECT COUNT(*) FROM clients), (SELECT COUNT(*) FROM intent_tokens), \
             (SELECT COUNT(*) FROM status_lists), (SELECT COALESCE(SUM(used), 0) FROM status_lists)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| backend("store stats", e))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(super::StoreStats {
            agents: n(row.0),
            registrations: n(row.1),
            workflows: n(row.2),
            clients: n(row.3),
            token_records: n(row.4),
            status_lists: n(row.5),
            statuses_used: n(row.6),
            pool_connections: self.pool.size(),
            pool_idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            pool_max: self.pool.options().get_max_connections(),
        })
    }
}

// --- The audit trail (I-100): group commit, reading an existing database, decoding rows ---

/// Columns of `audit_log` read into an [`AuditRecord`].
const AUDIT_COLUMNS: &str = "seq, time_ms, event, client_id, agent_id, registration_id, jti, \
     error_code, intent_hash, detail, prev_hash, record_hash";

/// Decodes an `audit_log` row. A row that does not decode (e.g. edited to
/// a wrong type) is a backend error naming it.
fn decode_audit(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
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

impl SqliteStore {
    /// Opens an EXISTING issuer database without creating it or applying
    /// migrations (`ajwt audit`: inspecting a data directory, or a copy of
    /// one, must not change it). It can be read while `ajwt serve` runs
    /// (WAL). A file that does not exist is a backend error.
    pub async fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Backend(format!(
                "{}: no such database file",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| backend(format_args!("cannot open {}", path.display()), e))?;
        let has_audit: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| backend(format_args!("cannot read {}", path.display()), e))?;
        if has_audit == 0 {
            pool.close().await;
            return Err(StoreError::Backend(format!(
                "{}: no audit_log table (not an ajwt issuer database, or one from before the audit trail)",
                path.display()
            )));
        }
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
            writes: Arc::default(),
            checkpointer: None,
        })
    }
}

// --- Encryption at rest (§9.1.4, I-112): the sealed columns ---
//
// Specification: `agent_registrations.spec_json`, id = `checksum` (unique,
// indexed). SigningKey: `signing_keys.private_key_pem`, id = `kid` (the
// table of migration 0004, `private_key_pem` NULL once retired; a database
// without that table has no stored keys).

/// Most values returned by one [`Store::sealed_values`] page.
const MAX_SEALED_PAGE: u32 = 1000;

impl SqliteStore {
    /// Whether the `signing_keys` table exists (migration 0004).
    async fn has_signing_keys_table(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'signing_keys'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| backend("sqlite_master read", e))?;
        Ok(n > 0)
    }

    async fn sealed_page(
        &self,
        kind: super::SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let limit = i64::from(limit.min(MAX_SEALED_PAGE));
        let sql = match kind {
            super::SealedKind::Specification => {
                "SELECT checksum, spec_json FROM agent_registrations \
                 WHERE checksum > ?1 ORDER BY checksum LIMIT ?2"
            }
            super::SealedKind::SigningKey => {
                if !self.has_signing_keys_table().await? {
                    return Ok(Vec::new());
                }
                "SELECT kid, private_key_pem FROM signing_keys \
                 WHERE kid > ?1 AND private_key_pem IS NOT NULL ORDER BY kid LIMIT ?2"
            }
        };
        sqlx::query_as::<_, (String, String)>(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend("sealed values read", e))
    }

    async fn replace_sealed(
        &self,
        kind: super::SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = match kind {
            super::SealedKind::Specification => {
                "UPDATE agent_registrations SET spec_json = ?3 \
                 WHERE checksum = ?1 AND spec_json = ?2"
            }
            super::SealedKind::SigningKey => {
                if !self.has_signing_keys_table().await? {
                    return Ok(false);
                }
                "UPDATE signing_keys SET private_key_pem = ?3 \
                 WHERE kid = ?1 AND private_key_pem = ?2"
            }
        };
        let done = sqlx::query(sql)
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await
            .map_err(|e| backend("sealed value write", e))?;
        Ok(done.rows_affected() == 1)
    }
}

/// Revokes, inside `tx`, every unrevoked token of `agent_id` and every token
/// whose delegation chain contains it (§9.3.2); the number revoked.
async fn revoke_agent_tokens_only(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    agent_id: &str,
    at_ms: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intent_tokens SET revoked = 1, revoked_at_ms = ?2 WHERE revoked = 0 AND \
         (agent_id = ?1 OR jti IN (SELECT jti FROM intent_token_links \
         WHERE kind = 'agent' AND value = ?1))",
    )
    .bind(agent_id)
    .bind(at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// [`revoke_agent_tokens_only`], and records when the agent's revoked
/// registrations were revoked (the lifecycle view's time, §5.6.2).
async fn revoke_agent_tokens_in(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    agent_id: &str,
    at_ms: i64,
) -> Result<u64, sqlx::Error> {
    let n = revoke_agent_tokens_only(tx, agent_id, at_ms).await?;
    sqlx::query(
        "INSERT INTO registration_activity (registration_id, agent_id, revoked_at_ms) \
         SELECT registration_id, agent_id, ?2 FROM agent_registrations \
         WHERE agent_id = ?1 AND revoked = 1 ON CONFLICT (registration_id) DO UPDATE \
         SET revoked_at_ms = COALESCE(revoked_at_ms, excluded.revoked_at_ms)",
    )
    .bind(agent_id)
    .bind(at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(n)
}

// --- Signing keys (I-110, I-90): the `signing_keys` table (migration 0004) ---

/// Columns of `signing_keys` read into a [`super::StoredSigningKey`].
const SIGNING_KEY_COLUMNS: &str =
    "kid, alg, created_at, activates_at, retires_at, retired_at, private_key_pem";

/// A time (Unix seconds) as an SQLite integer.
fn key_time(kid: &str, name: &str, t: u64) -> Result<i64, StoreError> {
    i64::try_from(t).map_err(|e| backend(format_args!("signing key {kid}: {name} {t}"), e))
}

/// Decodes a `signing_keys` row selected with [`SIGNING_KEY_COLUMNS`].
fn decode_signing_key(row: &SqliteRow) -> Result<super::StoredSigningKey, StoreError> {
    const T: &str = "signing_keys";
    let kid: String = column(row, T, &"(unknown kid)", "kid")?;
    let key = format_args!("kid={kid}");
    let key: &dyn Display = &key;
    let time = |name: &str| -> Result<u64, StoreError> {
        let t: i64 = column(row, T, key, name)?;
        u64::try_from(t).map_err(|e| backend(format_args!("{T} row {key}: column {name}"), e))
    };
    let optional_time = |name: &str| -> Result<Option<u64>, StoreError> {
        let t: Option<i64> = column(row, T, key, name)?;
        t.map(u64::try_from)
            .transpose()
            .map_err(|e| backend(format_args!("{T} row {key}: column {name}"), e))
    };
    Ok(super::StoredSigningKey {
        alg: column(row, T, key, "alg")?,
        created_at: time("created_at")?,
        activates_at: time("activates_at")?,
        retires_at: optional_time("retires_at")?,
        retired_at: optional_time("retired_at")?,
        private_key_pem: column(row, T, key, "private_key_pem")?,
        kid,
    })
}

/// Every stored signing key, oldest first (activation, creation, `kid`).
async fn signing_keys_in(pool: &SqlitePool) -> Result<Vec<super::StoredSigningKey>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys \
         ORDER BY activates_at ASC, created_at ASC, kid ASC"
    ))
    .fetch_all(pool)
    .await
    .map_err(|e| backend("signing_keys read", e))?;
    rows.iter().map(decode_signing_key).collect()
}

/// [`Store::apply_key_change`]: one `BEGIN IMMEDIATE` transaction, so the
/// pending-key check and the writes see one state and a replica rotating at
/// the same time waits for this one and then finds its key pending (I-110).
/// An `insert` whose `kid` is already stored changes nothing (the same key:
/// `kid` is its thumbprint; a retired key is never revived).
async fn apply_key_change_in(
    pool: &SqlitePool,
    change: super::KeyChange,
) -> Result<super::KeyChangeOutcome, StoreError> {
    let fail = |e: sqlx::Error| backend("cannot change signing keys", e);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
    if let Some(after) = change.insert_unless_pending_after {
        let after = key_time("(pending check)", "time", after)?;
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL AND activates_at > ?1",
        )
        .bind(after)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        if pending > 0 {
            // Dropping `tx` rolls back: nothing of the change is written.
            return Ok(super::KeyChangeOutcome::PendingExists);
        }
    }
    if let Some(key) = &change.insert {
        let optional =
            |name: &str, t: Option<u64>| t.map(|t| key_time(&key.kid, name, t)).transpose();
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, created_at, activates_at, retires_at, \
             retired_at, private_key_pem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key_time(&key.kid, "created_at", key.created_at)?)
        .bind(key_time(&key.kid, "activates_at", key.activates_at)?)
        .bind(optional("retires_at", key.retires_at)?)
        .bind(optional("retired_at", key.retired_at)?)
        .bind(&key.private_key_pem)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    for (kid, t) in &change.set_retires_at {
        sqlx::query(
            "UPDATE signing_keys SET retires_at = ?2 WHERE kid = ?1 AND retired_at IS NULL",
        )
        .bind(kid)
        .bind(key_time(kid, "retires_at", *t)?)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    for (kid, t) in &change.retire {
        sqlx::query(
            "UPDATE signing_keys SET private_key_pem = NULL, retired_at = ?2 \
             WHERE kid = ?1 AND retired_at IS NULL",
        )
        .bind(kid)
        .bind(key_time(kid, "retired_at", *t)?)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    // Bounded (I-90): the newest retired records stay, older ones go.
    let keep = i64::try_from(super::MAX_RETIRED_KEY_RECORDS).unwrap_or(i64::MAX);
    sqlx::query(
        "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND kid NOT IN \
         (SELECT kid FROM signing_keys WHERE retired_at IS NOT NULL \
          ORDER BY retired_at DESC, activates_at DESC, kid DESC LIMIT ?1)",
    )
    .bind(keep)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(super::KeyChangeOutcome::Applied)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use ajwt_protocol::registration::WorkflowStep;

    use super::*;

    fn checksum(n: u8) -> AgentChecksum {
        AgentChecksum::digest(&[n])
    }

    fn reg(agent_id: &str, n: u8, registered_at_ms: i64) -> NewRegistration {
        let mut jwk = JsonMap::new();
        jwk.insert("kty".into(), "OKP".into());
        jwk.insert("crv".into(), "Ed25519".into());
        NewRegistration {
            agent_id: agent_id.to_owned(),
            checksum: checksum(n),
            checksum_profile: Profile::Jcs,
            public_jwk: Some(jwk),
            jwk_thumbprint: Some(format!("thumb-{n}")),
            allowed_scopes: Some(vec!["repo:read".into(), "repo:write".into()]),
            app_id: Some("app".into()),
            spec_json: format!(r#"{{"agent_id":"{agent_id}","n":{n}}}"#),
            registered_at_ms,
            may_reactivate_revoked: false,
        }
    }

    fn workflow() -> Workflow {
        let step = |id: &str, gate: bool, approval: bool, scopes: Option<Vec<&str>>| WorkflowStep {
            step_id: id.into(),
            required: true,
            requires_approval: approval,
            approval_gate: gate,
            agent_id: (!gate).then(|| format!("agent-{id}")),
            scopes: scopes.map(|s| s.into_iter().map(str::to_owned).collect()),
        };
        Workflow {
            workflow_id: "auto-patch-workflow-v1".into(),
            steps: vec![
                step("z_analyze", false, false, Some(vec!["repo:read"])),
                step("a_gate", true, false, None),
                step("m_apply", false, true, Some(vec!["repo:write", "ci:run"])),
            ],
        }
    }

    fn client(id: &str) -> ClientRecord {
        ClientRecord {
            client_id: id.into(),
            secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            allowed_scopes: vec!["register:intent".into(), "generate:intent-token".into()],
            created_at_ms: 1_735_680_000_000,
            description: Some("admin".into()),
        }
    }

    #[tokio::test]
    async fn s5_4_4_versions_increment() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        assert_eq!(s.latest_registration("a1").await.unwrap(), None);
        let r1 = s
            .register_agent(reg("a1", 1, 1_735_680_000_000))
            .await
            .unwrap();
        let r2 = s
            .register_agent(reg("a1", 2, 1_735_680_100_000))
            .await
            .unwrap();
        assert_eq!((r1.version, r2.version), (1, 2));
        assert_eq!(r1.registration_id, "reg_a1_1735680000");
        assert_eq!(r2.registration_id, "reg_a1_1735680100");
        let latest = s.latest_registration("a1").await.unwrap().unwrap();
        assert_eq!(latest, r2);
        assert_eq!(latest.checksum, checksum(2));
        assert_eq!(s.registrations("a1").await.unwrap(), vec![r1, r2]);
        assert!(s.registrations("other").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn s4_7_1_record_round_trips_every_member() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let mut new = reg("a1", 1, 1_735_680_000_123);
        new.checksum_profile = Profile::PythonRef;
        let stored = s.register_agent(new.clone()).await.unwrap();
        let read = s.latest_registration("a1").await.unwrap().unwrap();
        assert_eq!(read, stored);
        assert_eq!(read.checksum_profile, Profile::PythonRef);
        assert_eq!(read.public_jwk, new.public_jwk);
        assert_eq!(read.allowed_scopes, new.allowed_scopes);
        assert_eq!(read.registered_at_ms, 1_735_680_000_123);
        assert!(!read.revoked);

        let bare = NewRegistration {
            public_jwk: None,
            jwk_thumbprint: None,
            allowed_scopes: None,
            app_id: None,
            ..reg("a2", 2, 0)
        };
        let stored = s.register_agent(bare).await.unwrap();
        assert_eq!(s.latest_registration("a2").await.unwrap().unwrap(), stored);
        assert_eq!(stored.registration_id, "reg_a2_0");
    }

    #[tokio::test]
    async fn s5_4_2_step3_duplicate_checksum_same_agent() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        s.register_agent(reg("a1", 1, 1_000)).await.unwrap();
        s.register_agent(reg("a1", 2, 2_000)).await.unwrap();
        // The v1 checksum is refused too: duplicates across all versions.
        for n in [1, 2] {
            let e = s.register_agent(reg("a1", n, 3_000)).await.unwrap_err();
            assert_eq!(
                e,
                StoreError::DuplicateChecksum {
                    existing_agent_id: "a1".into()
                }
            );
        }
        // Nothing was stored by the refused attempts.
        assert_eq!(s.registrations("a1").await.unwrap().len(), 2);
        assert_eq!(
            s.latest_registration("a1").await.unwrap().unwrap().version,
            2
        );
    }

    #[tokio::test]
    async fn s5_4_2_step3_duplicate_checksum_other_agent() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        s.register_agent(reg("first", 7, 1_000)).await.unwrap();
        let e = s.register_agent(reg("second", 7, 2_000)).await.unwrap_err();
        assert_eq!(
            e,
            StoreError::DuplicateChecksum {
                existing_agent_id: "first".into()
            }
        );
        assert_eq!(s.latest_registration("second").await.unwrap(), None);
    }

    #[tokio::test]
    async fn s5_4_2_step4_registration_ids_unique_within_one_millisecond() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let ms = 1_735_680_000_500;
        let mut ids = Vec::new();
        for n in 1..=3 {
            ids.push(
                s.register_agent(reg("a1", n, ms))
                    .await
                    .unwrap()
                    .registration_id,
            );
        }
        // I-70: the real second; later ids in that second are microsecond
        // timestamps within it.
        assert_eq!(
            ids,
            [
                "reg_a1_1735680000",
                "reg_a1_1735680000000001",
                "reg_a1_1735680000000002"
            ]
        );
        // A clock stepping backwards: the real (earlier) second.
        let r = s.register_agent(reg("a1", 4, ms - 60_000)).await.unwrap();
        assert_eq!(r.registration_id, "reg_a1_1735679940");
        // A later second is plain again.
        let r = s.register_agent(reg("a1", 6, ms + 1_000)).await.unwrap();
        assert_eq!(r.registration_id, "reg_a1_1735680001");
        // Another agent in the same second is independent.
        let other = s.register_agent(reg("a2", 5, ms)).await.unwrap();
        assert_eq!(other.registration_id, "reg_a2_1735680000");
        let listed: Vec<String> = s
            .registrations("a1")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.registration_id)
            .collect();
        assert_eq!(listed.len(), 5);
        assert_eq!(listed[..3], ids[..]);
    }

    #[tokio::test]
    async fn s5_4_2_negative_registration_time_is_refused() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let e = s.register_agent(reg("a1", 1, -1)).await.unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert_eq!(s.latest_registration("a1").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s5_4_4_concurrent_registrations_get_distinct_versions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(
            SqliteStore::open(&dir.path().join("registry.db"))
                .await
                .unwrap(),
        );
        let ms = 1_735_680_000_000;
        let tasks: Vec<_> = (1..=10u8)
            .map(|n| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.register_agent(reg("busy", n, ms)).await })
            })
            .collect();
        let mut versions = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let r = t.await.unwrap().unwrap();
            versions.push(r.version);
            assert!(ids.insert(r.registration_id));
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=10).collect::<Vec<u32>>());
        let all = s.registrations("busy").await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.version).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<u32>>()
        );
        // Ids carry the real second, the later ones as microseconds (I-70).
        for r in &all {
            let expected = if r.version == 1 {
                "reg_busy_1735680000".to_owned()
            } else {
                format!(
                    "reg_busy_{}",
                    1_735_680_000_000_000 + u64::from(r.version) - 1
                )
            };
            assert_eq!(r.registration_id, expected);
        }
        assert_eq!(
            s.latest_registration("busy")
                .await
                .unwrap()
                .unwrap()
                .version,
            10
        );
        s.close().await;
    }

    #[tokio::test]
    async fn s5_6_1_revoke_marks_every_registration_and_is_idempotent() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let r1 = s
            .register_agent(reg("a1", 1, 1_735_680_000_000))
            .await
            .unwrap();
        s.register_agent(reg("a1", 2, 1_735_680_100_000))
            .await
            .unwrap();
        s.register_agent(reg("bystander", 3, 1_735_680_000_000))
            .await
            .unwrap();
        assert_eq!(s.revoke_agent("a1").await.unwrap(), 2);
        let all = s.registrations("a1").await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|r| r.revoked), "{all:?}");
        // Only `revoked` changed.
        assert_eq!(
            all[0],
            AgentRecord {
                revoked: true,
                ..r1
            }
        );
        assert!(s.latest_registration("a1").await.unwrap().unwrap().revoked);
        assert!(
            !s.latest_registration("bystander")
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        // A repeat reports the same count; an unknown agent 0.
        assert_eq!(s.revoke_agent("a1").await.unwrap(), 2);
        assert_eq!(s.revoke_agent("nobody").await.unwrap(), 0);
        assert_eq!(s.revoke_agent("").await.unwrap(), 0);
        // Prefixes and LIKE patterns do not match.
        assert_eq!(s.revoke_agent("a").await.unwrap(), 0);
        assert_eq!(s.revoke_agent("a%").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn s5_6_1_revocation_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ajwt.sqlite3");
        {
            let s = SqliteStore::open(&path).await.unwrap();
            s.register_agent(reg("a1", 1, 1_735_680_000_000))
                .await
                .unwrap();
            assert_eq!(s.revoke_agent("a1").await.unwrap(), 1);
            s.close().await;
        }
        let s = SqliteStore::open(&path).await.unwrap();
        assert!(s.latest_registration("a1").await.unwrap().unwrap().revoked);
        s.close().await;
    }

    #[tokio::test]
    async fn s4_7_2_workflow_round_trip_and_duplicate() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let w = workflow();
        assert_eq!(s.workflow(&w.workflow_id).await.unwrap(), None);
        s.insert_workflow(&w).await.unwrap();
        let read = s.workflow(&w.workflow_id).await.unwrap().unwrap();
        assert_eq!(*read, w);
        let ids: Vec<&str> = read.steps.iter().map(|s| s.step_id.as_str()).collect();
        assert_eq!(ids, ["z_analyze", "a_gate", "m_apply"]);
        assert_eq!(
            read.steps[2].scopes.as_deref(),
            Some(&["repo:write".to_owned(), "ci:run".to_owned()][..])
        );
        assert_eq!(read.steps[1].scopes, None);

        let mut changed = w.clone();
        changed.steps.pop();
        assert_eq!(
            s.insert_workflow(&changed).await.unwrap_err(),
            StoreError::WorkflowExists(w.workflow_id.clone())
        );
        // Workflows are immutable: the original is unchanged.
        assert_eq!(*s.workflow(&w.workflow_id).await.unwrap().unwrap(), w);
    }

    #[tokio::test]
    async fn clients_insert_get_count_duplicate() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        assert_eq!(s.client_count().await.unwrap(), 0);
        assert_eq!(s.client("admin").await.unwrap(), None);
        let c = client("admin");
        s.insert_client(&c).await.unwrap();
        assert_eq!(s.client("admin").await.unwrap().unwrap(), c);
        let mut other = client("other");
        other.description = None;
        other.allowed_scopes = Vec::new();
        s.insert_client(&other).await.unwrap();
        assert_eq!(s.client("other").await.unwrap().unwrap(), other);
        assert_eq!(s.client_count().await.unwrap(), 2);
        let mut again = client("admin");
        again.secret_hash = "different".into();
        assert_eq!(
            s.insert_client(&again).await.unwrap_err(),
            StoreError::ClientExists("admin".into())
        );
        assert_eq!(s.client("admin").await.unwrap().unwrap(), c);
        assert_eq!(s.client_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn s4_7_1_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        let (r1, r2) = {
            let s = SqliteStore::open(&path).await.unwrap();
            let r1 = s.register_agent(reg("a1", 1, 1_000)).await.unwrap();
            let r2 = s.register_agent(reg("a1", 2, 1_000)).await.unwrap();
            s.insert_workflow(&workflow()).await.unwrap();
            s.insert_client(&client("admin")).await.unwrap();
            s.close().await;
            (r1, r2)
        };
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.registrations("a1").await.unwrap(), vec![r1, r2.clone()]);
        assert_eq!(s.latest_registration("a1").await.unwrap().unwrap(), r2);
        assert_eq!(
            *s.workflow("auto-patch-workflow-v1").await.unwrap().unwrap(),
            workflow()
        );
        assert_eq!(s.client_count().await.unwrap(), 1);
        // Version numbering and duplicate detection continue after reopen.
        let r3 = s.register_agent(reg("a1", 3, 1_000)).await.unwrap();
        assert_eq!(
            (r3.version, r3.registration_id.as_str()),
            (3, "reg_a1_1000002")
        );
        assert!(matches!(
            s.register_agent(reg("zz", 1, 1_000)).await,
            Err(StoreError::DuplicateChecksum { existing_agent_id }) if existing_agent_id == "a1"
        ));
        s.close().await;
    }

    /// I-185: write groups run on their own connection. With every pooled
    /// connection held by readers, a registration still commits (before,
    /// it waited for a reader to give one back), and the groups share one
    /// connection that is kept (the one whose page cache stays valid).
    #[tokio::test]
    async fn i185_write_groups_have_their_own_connection() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("issuer.db"))
            .await
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(s.pool.acquire().await.unwrap());
        }
        let done = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.register_agent(reg("agent-i185", 1, 1_000)),
        )
        .await
        .expect("a write group must not wait for the readers' connections");
        done.unwrap();
        drop(held);
        s.register_agent(reg("agent-i185", 2, 2_000)).await.unwrap();
        assert_eq!(s.writer.size(), 1, "one connection, kept");
        assert_eq!(s.writer.options().get_max_connections(), 1);
    }

    #[tokio::test]
    async fn file_store_uses_wal_and_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        let s = SqliteStore::open(&path).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(busy, 5_000);
        // I-190: on the write-group connection too (it is the one that
        // commits, so the one whose COMMIT would checkpoint inline).
        for pool in [&s.pool, &s.writer] {
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(pages, 10_000, "I-190");
        }
        s.ping().await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "§9.1.4: only the issuer can read");
        }
        s.close().await;
        assert!(s.ping().await.is_err(), "closed pool");
    }

    #[tokio::test]
    async fn s4_7_3_agent_lookups_use_an_index() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        for (sql, index) in [
            (
                "EXPLAIN QUERY PLAN SELECT * FROM agent_registrations \
                 WHERE agent_id = 'a' ORDER BY version DESC LIMIT 1",
                "agent_registrations_agent_version",
            ),
            (
                "EXPLAIN QUERY PLAN SELECT agent_id FROM agent_registrations \
                 WHERE checksum = 'x'",
                "agent_registrations_checksum",
            ),
            // I-158: the start-up census reads the expression index only.
            (
                "EXPLAIN QUERY PLAN SELECT spec_head, COUNT(*) \
                 FROM agent_registrations GROUP BY spec_head LIMIT 65",
                "COVERING INDEX agent_registrations_spec_head",
            ),
        ] {
            let plan: Vec<String> = sqlx::query(sql)
                .fetch_all(&s.pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            assert!(plan.iter().any(|d| d.contains(index)), "{plan:?}");
            assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{plan:?}");
        }
    }

    #[tokio::test]
    async fn bad_rows_are_backend_errors_naming_the_row() {
        let s = SqliteStore::open_in_memory().await.unwrap();
        let good = s.register_agent(reg("a1", 1, 1_000)).await.unwrap();
        sqlx::query(
            "INSERT INTO agent_registrations (agent_id, version, registration_id, reg_second, \
             checksum, checksum_profile, spec_json, registered_at_ms) \
             VALUES ('a1', 2, 'reg_a1_2', 2, 'md5:abc', 'jcs', '{}', 2000)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        let e = s.latest_registration("a1").await.unwrap_err();
        let StoreError::Backend(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(msg.contains("agent_registrations row id=2"), "{msg}");
        assert!(msg.contains("checksum"), "{msg}");
        assert!(s.registrations("a1").await.is_err());
        sqlx::query(
            "UPDATE agent_registrations SET checksum = ?1, checksum_profile = 'nope' WHERE id = 2",
        )
        .bind(checksum(9).to_string())
        .execute(&s.pool)
        .await
        .unwrap();
        let e = s.latest_registration("a1").await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("checksum_profile")),
            "{e:?}"
        );
        sqlx::query("DELETE FROM agent_registrations WHERE id = 2")
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(s.latest_registration("a1").await.unwrap().unwrap(), good);

        sqlx::query("INSERT INTO workflows VALUES ('w', '{\"steps\": 1}', 0), ('v', ?1, 0)")
            .bind(to_json("w", &workflow()).unwrap())
            .execute(&s.pool)
            .await
            .unwrap();
        let e = s.workflow("w").await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("workflow_id=w")),
            "{e:?}"
        );
        let e = s.workflow("v").await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("workflow_id=v")),
            "{e:?}"
        );

        sqlx::query("INSERT INTO clients VALUES ('c', 'h', 'not json', 0, NULL)")
            .execute(&s.pool)
            .await
            .unwrap();
        let e = s.client("c").await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("client_id=c")),
            "{e:?}"
        );
    }

    fn token(jti: &str, exp: i64, chain: &[&str], ancestors: &[&str]) -> NewTokenRecord {
        NewTokenRecord {
            jti: jti.into(),
            agent_id: format!("agent-{jti}"),
            registration_id: format!("reg_agent-{jti}_1"),
            client_id: "c".into(),
            iat: exp - 300,
            exp,
            chain: chain
                .iter()
                .map(|a| ChainLink {
                    agent_id: (*a).into(),
                    registration_id: Some(format!("reg_{a}_1")),
                })
                .collect(),
            ancestors: ancestors.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// I-83: every index of a list once, roll-over to a new list when full,
    /// full lists without records pruned, list ids never reused.
    #[tokio::test]
    async fn i83_status_lists_fill_roll_over_prune_and_never_reuse_ids() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let mut first = Vec::new();
        for i in 0..10u64 {
            let at = store
                .record_token(token(&format!("t{i}"), 1000, &[], &[]), 8, i * 7919)
                .await
                .unwrap();
            if at.list_id == 1 {
                first.push(at.idx);
            } else {
                assert_eq!(at.list_id, 2);
            }
        }
        first.sort_unstable();
        assert_eq!(first, (0..8).collect::<Vec<u64>>());
        assert_eq!(store.revoke_token("t3", 1).await.unwrap(), 1);
        let listed = store.status_list(1).await.unwrap().unwrap();
        assert_eq!(listed.size, 8);
        let t3 = store.token_record("t3").await.unwrap().unwrap();
        assert!(t3.revoked);
        assert_eq!(listed.revoked, vec![t3.status.idx]);
        // Pruning: all records expired; list 1 (full) goes, list 2 stays.
        assert_eq!(store.prune_tokens(1001).await.unwrap(), 10);
        assert_eq!(store.status_list(1).await.unwrap(), None);
        assert!(store.status_list(2).await.unwrap().is_some());
        for i in 10..16u64 {
            let at = store
                .record_token(token(&format!("t{i}"), 2000, &[], &[]), 8, i)
                .await
                .unwrap();
            assert_eq!(at.list_id, 2);
        }
        store.prune_tokens(3000).await.unwrap();
        assert_eq!(store.status_list(2).await.unwrap(), None);
        let at = store
            .record_token(token("t99", 4000, &[], &[]), 8, 0)
            .await
            .unwrap();
        assert_eq!(at.list_id, 3, "a pruned list's id is not reused");
    }

    /// §9.3.2, I-82 at the store: agent, registration and ancestor links.
    #[tokio::test]
    async fn s9_3_2_revocations_follow_chain_links_and_are_idempotent() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store
            .record_token(token("a", 1000, &[], &[]), 64, 1)
            .await
            .unwrap();
        store
            .record_token(token("b", 1000, &["agent-a"], &["a"]), 64, 2)
            .await
            .unwrap();
        store
            .record_token(
                token("c", 1000, &["agent-a", "agent-b"], &["a", "b"]),
                64,
                3,
            )
            .await
            .unwrap();
        store
            .record_token(token("d", 1000, &[], &[]), 64, 4)
            .await
            .unwrap();
        let rec = store.token_record("c").await.unwrap().unwrap();
        assert_eq!(rec.token.ancestors, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            rec.token.chain[1].registration_id.as_deref(),
            Some("reg_agent-b_1")
        );
        // An ancestor token: itself and its descendants.
        assert_eq!(store.revoke_token("b", 5).await.unwrap(), 2);
        assert_eq!(store.revoke_token("b", 6).await.unwrap(), 0);
        // An agent: its tokens and the chains containing it.
        assert_eq!(store.revoke_agent_tokens("agent-a", 7).await.unwrap(), 1);
        assert!(!store.token_record("d").await.unwrap().unwrap().revoked);
        // An unknown registration.
        assert_eq!(
            store.revoke_registration("reg_nobody_1", 8).await.unwrap(),
            None
        );
    }

    /// I-112, SigningKey kind: `sealed_values` and `replace_sealed_value`
    /// over `signing_keys.private_key_pem` (the table of migration 0004,
    /// created here by hand with its schema; `IF NOT EXISTS` once merged),
    /// retired keys (NULL) skipped; a database without the table has none.
    #[tokio::test]
    async fn i112_signing_key_sealed_values_on_the_signing_keys_table() {
        use crate::kek::{Kek, KekRing, SealState};
        use crate::store::SealedKind::SigningKey;
        let s = SqliteStore::open_in_memory().await.unwrap();
        if !s.has_signing_keys_table().await.unwrap() {
            assert!(s
                .sealed_values(SigningKey, "", 10)
                .await
                .unwrap()
                .is_empty());
            assert!(!s
                .replace_sealed_value(SigningKey, "k", "a", "b")
                .await
                .unwrap());
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT NOT NULL PRIMARY KEY, \
             alg TEXT NOT NULL, created_at INTEGER NOT NULL, activates_at INTEGER NOT NULL, \
             retires_at INTEGER, retired_at INTEGER, private_key_pem TEXT) STRICT",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        for (kid, pem) in [
            ("kid-b", Some("-----BEGIN PRIVATE KEY-----\nB")),
            ("kid-a", Some("-----BEGIN PRIVATE KEY-----\nA")),
            ("kid-old", None),
        ] {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, created_at, activates_at, private_key_pem) \
                 VALUES (?1, 'ES256', 1, 1, ?2)",
            )
            .bind(kid)
            .bind(pem)
            .execute(&s.pool)
            .await
            .unwrap();
        }
        let values = s.sealed_values(SigningKey, "", 10).await.unwrap();
        let ids: Vec<&str> = values.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["kid-a", "kid-b"]);
        assert_eq!(
            s.sealed_values(SigningKey, "kid-a", 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // Legacy plaintext keys are sealed under their kid (I-128).
        let ring = KekRing::new(Kek::generate(), Vec::new());
        let report = crate::store::sealed::reseal(&s, &ring, false)
            .await
            .unwrap();
        assert_eq!(report.sealed_plaintext, 2);
        for (kid, v) in s.sealed_values(SigningKey, "", 10).await.unwrap() {
            assert!(!v.contains("PRIVATE KEY"));
            let opened = ring.open(SigningKey, &kid, &v).unwrap();
            assert_eq!(opened.state, SealState::Current);
            assert!(opened.text.ends_with(&kid[4..].to_uppercase()));
        }
        assert!(!s
            .replace_sealed_value(SigningKey, "kid-a", "stale", "x")
            .await
            .unwrap());
    }
}
