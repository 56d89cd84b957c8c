//! Group commit of the SQLite store's hot writes (issue 15, I-155):
//! registrations (§5.4.2 step 5), intent-token records with their status
//! list index (§9.3.2, I-83) and audit appends (§9.1.4, I-100) share ONE
//! queue. Whoever finds the queue non-empty writes up to [`MAX_GROUP`]
//! queued writes in one `BEGIN IMMEDIATE` transaction, so a group costs one
//! WAL fsync (`synchronous=FULL` stays) however many callers it serves; a
//! token record and an audit entry queued together share that fsync.
//!
//! Guarantees:
//! - No caller is answered before the COMMIT of its group returned: an
//!   acknowledged write is durable.
//! - A write that is refused (a revoked agent, I-69) or whose first
//!   write statement violates a constraint (a duplicate checksum, §5.4.2
//!   step 3; a duplicate `jti`) fails alone: it changed nothing (SQLite
//!   rolls a failed statement back, and every later statement of a write
//!   runs only after its first succeeded), only its caller gets the error
//!   and the others of the group commit. No savepoint is needed, so a
//!   write costs only its own statements.
//! - Any other failure (BEGIN, a later statement of a write, COMMIT, I/O)
//!   fails the whole group: it is rolled back and exactly its callers get
//!   the same backend error.
//! - The group is written by a spawned task that holds the commit lock, so
//!   a cancelled caller neither loses the other callers' writes nor leaves
//!   half a group; its own write is committed (or not) with its group.
//! - Bounded: at most [`MAX_QUEUED`] writes wait (further callers wait for
//!   a slot) and a group holds at most [`MAX_GROUP`] writes.
//!
//! An issued token is ONE write (I-160): its status list index was
//! reserved in memory before signing ([`Allocator`]), and the group writes
//! the record at that index together with its `TokenIssued` audit entry.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::Arc;

use ajwt_protocol::registration::registration_id;
use sqlx::sqlite::SqlitePool;
use sqlx::SqliteConnection;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{AgentRecord, NewRegistration, NewTokenRecord, StatusIndex, StoreError};
use crate::audit::{AuditEntry, AuditRecord};

/// Most writes in one group (one transaction, one fsync).
pub const MAX_GROUP: usize = 512;

/// Most writes waiting for a group; further callers wait for a slot.
pub const MAX_QUEUED: usize = 8192;

fn backend(context: impl Display, e: impl Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

/// A registration ready to be written (JSON columns encoded by the caller).
#[derive(Debug)]
pub(super) struct RegistrationWrite {
    pub new: NewRegistration,
    pub checksum: String,
    pub public_jwk: Option<String>,
    pub allowed_scopes: Option<String>,
}

/// One queued write.
#[derive(Debug)]
pub(super) enum Write {
    Register(Box<RegistrationWrite>),
    /// A token record with its reserved index and, in the same
    /// transaction, its `TokenIssued` audit entry (I-160).
    Token {
        pending: Box<PendingToken>,
        audit: Option<Box<AuditEntry>>,
    },
    /// A token record whose index is chosen inside the group
    /// ([`super::Store::record_token`]).
    Record {
        token: Box<NewTokenRecord>,
        list_size: u32,
        random: u64,
    },
    Audit(Box<AuditEntry>),
}

/// What a write produced.
#[derive(Debug)]
pub(super) enum Written {
    Register(Box<AgentRecord>),
    Token(Option<Box<AuditRecord>>),
    Record(StatusIndex),
    Audit(Box<AuditRecord>),
}

/// The group-commit state: queued writes, the slots bounding them and the
/// lock held while a group is written.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    /// The queue and its groups ([`Batcher`], shared with the PostgreSQL
    /// store's token batches).
    batcher: Batcher<Write, Written>,
    /// Groups committed so far (tests count the commits of an issuance).
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// Status list allocation, kept in memory (I-160).
    alloc: Arc<Allocator>,
    /// Whether token/audit groups take the fast path (I-181); off only in
    /// tests comparing the two paths.
    careful_only: Arc<std::sync::atomic::AtomicBool>,
    /// Groups committed by the fast path (I-181).
    fast_commits: Arc<std::sync::atomic::AtomicU64>,
}

impl GroupCommit {
    /// Sets the most writes per group, clamped to `1..=MAX_GROUP`.
    pub(super) fn set_max_group(&self, n: usize) {
        self.batcher.set_max_group(n);
    }

    /// How many groups were committed by this store so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many of them the fast path committed (I-181).
    pub(super) fn fast_commits(&self) -> u64 {
        self.fast_commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the fast path of token/audit groups off (`false`) or on.
    pub(super) fn set_fast(&self, on: bool) {
        self.careful_only
            .store(!on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reserves a status list index for `token` (phase 1 of I-160): nothing
    /// is written; the returned [`PendingToken`] holds the index until it is
    /// written by [`Write::Token`] or dropped.
    pub(super) async fn reserve(
        &self,
        pool: &SqlitePool,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<PendingToken, StoreError> {
        let hold = self
            .alloc
            .reserve(pool, list_size, random, token.iat.saturating_mul(1000))
            .await?;
        Ok(PendingToken { token, hold })
    }

    /// Reads the stored status lists into memory (once).
    pub(super) async fn load_lists(&self, pool: &SqlitePool) -> Result<(), StoreError> {
        self.alloc.load(pool).await
    }

    /// Queues `write` and returns once the group holding it committed (or
    /// failed). See the module documentation.
    pub(super) async fn submit(
        &self,
        pool: &SqlitePool,
        write: Write,
    ) -> Result<Written, StoreError> {
        let (pool, commits, alloc) = (
            pool.clone(),
            Arc::clone(&self.commits),
            Arc::clone(&self.alloc),
        );
        let (careful_only, fast_commits) = (
            Arc::clone(&self.careful_only),
            Arc::clone(&self.fast_commits),
        );
        self.batcher
            .submit(write, move |writes| {
                let (pool, commits, alloc) =
                    (pool.clone(), Arc::clone(&commits), Arc::clone(&alloc));
                let fast = !careful_only.load(std::sync::atomic::Ordering::Relaxed);
                let fast_commits = Arc::clone(&fast_commits);
                async move {
                    let (results, was_fast) = write_group(&pool, &alloc, writes, fast).await?;
                    commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if was_fast {
                        fast_commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(results)
                }
            })
            .await
    }
}

/// A status list as read (or created) in the current group: indices are
/// marked in the bitmap and the row is written once per group (not once
/// per token).
struct GroupList {
    allocated: Vec<u8>,
    used: i64,
    dirty: bool,
}

/// The audit chain's head during a group.
struct AuditHead {
    seq: u64,
    prev_hash: String,
}

/// Per-group state shared by the writes of one transaction.
#[derive(Default)]
struct GroupState {
    lists: std::collections::BTreeMap<i64, GroupList>,
    audit: Option<AuditHead>,
    /// Reserved indices written by this group: committed in memory once
    /// the COMMIT returned (released if the group fails: dropped).
    written: Vec<IndexHold>,
}

/// Writes `writes` in one transaction (by the fast path when `fast` and
/// the group is eligible; the results say whether it was). `Err`: the
/// whole group failed (nothing of it committed, or the commit failed).
async fn write_group(
    pool: &SqlitePool,
    alloc: &Arc<Allocator>,
    writes: Vec<Write>,
    fast: bool,
) -> Result<(Vec<WriteResult>, bool), StoreError> {
    if fast && fast::eligible(&writes) {
        match fast::write(pool, &writes).await {
            Ok(records) => return Ok((fast::settle(writes, records), true)),
            // Rolled back: the group is written again statement by
            // statement below, which refuses a write alone or fails the
            // group exactly as before (I-181).
            Err(e) => {
                tracing::debug!(error = %e, "fast write group rolled back; writing it statement by statement")
            }
        }
    }
    // Dropping `tx` on an early return rolls the group back.
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| backend("cannot begin a write group", e))?;
    let mut state = GroupState::default();
    let results = write_all(&mut tx, alloc, &mut state, writes).await?;
    tx.commit()
        .await
        .map_err(|e| backend("cannot commit a write group", e))?;
    // Durable: the indices of this group are used for good (I-160).
    for hold in state.written.drain(..) {
        hold.commit();
    }
    Ok((results, false))
}

/// The write statements of a group, shared by the fast path (I-181), which
/// runs them as one multi-statement query, and the statement-by-statement
/// path. Anonymous `?` placeholders: a multi-statement query binds its
/// arguments in order across its statements.
const SQL_CREATE_LIST: &str = "INSERT INTO status_lists (list_id, size, allocated, used, \
     created_at_ms) VALUES (?, ?, ?, 0, ?)";
/// See [`SQL_CREATE_LIST`]: a list's bitmap and count, once per group.
const SQL_UPDATE_LIST: &str = "UPDATE status_lists SET allocated = ?, used = ? WHERE list_id = ?";
/// See [`SQL_CREATE_LIST`]: a token record at its index.
const SQL_INSERT_TOKEN: &str = "INSERT INTO intent_tokens (jti, agent_id, registration_id, \
     client_id, iat, exp, list_id, idx) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
/// See [`SQL_CREATE_LIST`]: one row of [`NewTokenRecord::links`].
const SQL_INSERT_LINK: &str =
    "INSERT OR IGNORE INTO intent_token_links (jti, kind, value) VALUES (?, ?, ?)";
/// See [`SQL_CREATE_LIST`]: the registration's earliest and latest token
/// (the token's `iat` in ms, bound twice).
const SQL_UPSERT_ACTIVITY: &str = "INSERT INTO registration_activity (registration_id, agent_id, \
     first_token_at_ms, last_token_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (registration_id) DO \
     UPDATE SET first_token_at_ms = MIN(COALESCE(first_token_at_ms, \
     excluded.first_token_at_ms), excluded.first_token_at_ms), \
     last_token_at_ms = MAX(COALESCE(last_token_at_ms, 0), excluded.last_token_at_ms)";
/// See [`SQL_CREATE_LIST`]: one chained audit record.
const SQL_INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, time_ms, event, client_id, agent_id, \
     registration_id, jti, error_code, intent_hash, detail, prev_hash, record_hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The audit chain's head: its last `seq` and `record_hash`.
const SQL_AUDIT_HEAD: &str = "SELECT seq, record_hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// The outcome of one write inside a group: `Err` is that write's own
/// refusal (it changed nothing).
type WriteResult = Result<Written, StoreError>;

/// The fast path of the hot groups (issue 15, I-181): a group of intent
/// token records and audit appends only, written in four round trips to
/// the connection's thread whatever its size (BEGIN; one read of the audit
/// head and the group's status lists; every write statement of the group
/// as ONE multi-statement query; COMMIT) instead of one round trip per
/// statement. sqlx runs each SQLite connection on its own thread, so every
/// round trip is two context switches; at a steady 1,000 tokens/s they
/// were most of the server's CPU per token.
///
/// The path is optimistic: any failure (a duplicate `jti`, an index
/// already stored by another writer of the file, I/O) rolls the whole
/// transaction back and the group is written again by the
/// statement-by-statement path, which decides what is refused alone and
/// what fails the group. The statements, their order and the in-memory
/// bookkeeping are the same; `fast_and_careful_paths_store_the_same_rows`
/// pins that.
mod fast {
    use std::collections::BTreeMap;

    use sqlx::pool::PoolConnection;
    use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
    use sqlx::{Arguments as _, Row as _, Sqlite};

    use super::{GroupList, PendingToken, Write, WriteResult, Written};
    use super::{
        SQL_AUDIT_HEAD, SQL_CREATE_LIST, SQL_INSERT_AUDIT, SQL_INSERT_LINK, SQL_INSERT_TOKEN,
        SQL_UPDATE_LIST, SQL_UPSERT_ACTIVITY,
    };
    use crate::audit::{AuditEntry, AuditRecord};
    use crate::store::StoreError;

    /// Most writes of a group the fast path takes (I-181). Larger groups
    /// (concurrency well above the disk's commit rate) already share one
    /// round trip among many writes, and a fast group of dozens of tokens
    /// took the server's peak RSS from 45 to 180–210 MB in one benchmark
    /// run (concurrency 64) for no throughput gain (8,380 against 8,323
    /// grants/s with this limit, peak RSS 49 MB): they are written
    /// statement by statement.
    pub(super) const MAX_FAST_GROUP: usize = 8;

    /// A group the fast path may write: at most [`MAX_FAST_GROUP`] token
    /// records and audit appends.
    pub(super) fn eligible(writes: &[Write]) -> bool {
        writes.len() <= MAX_FAST_GROUP
            && writes
                .iter()
                .all(|w| matches!(w, Write::Token { .. } | Write::Audit(_)))
    }

    /// Why the fast path gave up (the careful path runs next).
    #[derive(Debug, thiserror::Error)]
    pub(super) enum Fallback {
        #[error("{0}")]
        Sql(#[from] sqlx::Error),
        #[error("argument: {0}")]
        Arg(String),
        #[error("{0}")]
        State(String),
    }

    /// Statements and their `?` arguments, in order, run as one query.
    struct Batch<'q> {
        sql: String,
        args: SqliteArguments<'q>,
    }

    impl<'q> Batch<'q> {
        fn push(&mut self, sql: &str) {
            self.sql.push_str(sql);
            self.sql.push_str(";\n");
        }

        fn arg<T>(&mut self, v: T) -> Result<(), Fallback>
        where
            T: 'q + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        {
            self.args.add(v).map_err(|e| Fallback::Arg(e.to_string()))
        }
    }

    /// The audit records of the group's writes, in order (`None` for a
    /// token written without an entry).
    pub(super) type Records = Vec<Option<AuditRecord>>;

    /// A pooled connection inside a transaction this module began with SQL
    /// of its own (sqlx does not know of it): dropped before
    /// [`Conn::done`] (an error, or the task dropped at shutdown), the
    /// connection is closed rather than returned to the pool, so the open
    /// transaction ends with it and no other user ever sees it.
    struct Conn(Option<PoolConnection<Sqlite>>);

    impl Conn {
        fn get(&mut self) -> Result<&mut SqliteConnection, Fallback> {
            self.0
                .as_deref_mut()
                .ok_or_else(|| Fallback::State("connection gone".into()))
        }

        /// The transaction ended: the connection goes back to the pool.
        fn done(mut self) {
            drop(self.0.take());
        }
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            if let Some(conn) = self.0.as_mut() {
                conn.close_on_drop();
            }
        }
    }

    /// Writes the group in one transaction, or rolls it back.
    pub(super) async fn write(pool: &SqlitePool, writes: &[Write]) -> Result<Records, Fallback> {
        let mut conn = Conn(Some(pool.acquire().await?));
        match write_in(conn.get()?, writes).await {
            Ok(records) => {
                conn.done();
                Ok(records)
            }
            Err(e) => {
                // The transaction may be open (a statement of the batch
                // failed): rolled back here, or ended by closing the
                // connection if even that fails.
                if sqlx::query("ROLLBACK").execute(conn.get()?).await.is_ok() {
                    conn.done();
                }
                Err(e)
            }
        }
    }

    /// BEGIN and the reads (one round trip), then every statement and the
    /// COMMIT (one round trip).
    async fn write_in(conn: &mut SqliteConnection, writes: &[Write]) -> Result<Records, Fallback> {
        // One read: the audit chain's head (2 columns) and the stored row
        // of every status list the group's indices were reserved in
        // (4 columns), under the write lock.
        let mut list_ids: Vec<i64> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Token { pending, .. } => Some(pending.hold.list_id),
                _ => None,
            })
            .collect();
        list_ids.sort_unstable();
        list_ids.dedup();
        let mut read = format!("BEGIN IMMEDIATE;\n{SQL_AUDIT_HEAD}");
        let mut read_args = SqliteArguments::default();
        for id in &list_ids {
            read.push_str(
                ";\nSELECT list_id, size, allocated, used FROM status_lists WHERE list_id = ?",
            );
            read_args
                .add(*id)
                .map_err(|e| Fallback::Arg(e.to_string()))?;
        }
        let rows: Vec<SqliteRow> = sqlx::query_with(&read, read_args)
            .fetch_all(&mut *conn)
            .await?;
        let (mut seq, mut prev_hash) = (1u64, crate::audit::GENESIS_HASH.to_owned());
        let mut lists: BTreeMap<i64, GroupList> = BTreeMap::new();
        let mut stored_sizes: BTreeMap<i64, i64> = BTreeMap::new();
        for row in &rows {
            if row.len() == 2 {
                let last: i64 = row.try_get(0)?;
                seq = u64::try_from(last)
                    .map_err(|e| Fallback::State(format!("audit head seq: {e}")))?
                    .saturating_add(1);
                prev_hash = row.try_get(1)?;
            } else {
                let id: i64 = row.try_get(0)?;
                stored_sizes.insert(id, row.try_get(1)?);
                let list = GroupList {
                    allocated: row.try_get(2)?,
                    used: row.try_get(3)?,
                    dirty: false,
                };
                lists.insert(id, list);
            }
        }
        let mut batch = Batch {
            sql: String::new(),
            args: SqliteArguments::default(),
        };
        for w in writes {
            let Write::Token { pending, .. } = w else {
                continue;
            };
            let hold = &pending.hold;
            match (stored_sizes.get(&hold.list_id), lists.get(&hold.list_id)) {
                // Stored: its size checked and its bitmap taken in memory
                // (as `group_list` does).
                (Some(size), Some(list)) => {
                    if *size != i64::from(hold.size) {
                        return Err(Fallback::State(format!(
                            "status list {}: size {size} stored, {} reserved",
                            hold.list_id, hold.size
                        )));
                    }
                    hold.alloc.merge(hold.list_id, &list.allocated);
                }
                // Created by an earlier token of this group.
                (None, Some(_)) => {}
                // Reserved in memory, not stored yet: created first.
                (_, None) => {
                    let allocated = vec![0u8; (hold.size as usize).div_ceil(8)];
                    batch.push(SQL_CREATE_LIST);
                    batch.arg(hold.list_id)?;
                    batch.arg(i64::from(hold.size))?;
                    batch.arg(allocated.clone())?;
                    batch.arg(hold.created_at_ms)?;
                    let list = GroupList {
                        allocated,
                        used: 0,
                        dirty: false,
                    };
                    lists.insert(hold.list_id, list);
                }
            }
        }
        let mut records: Records = Vec::with_capacity(writes.len());
        for w in writes {
            match w {
                Write::Token { pending, audit } => {
                    token(&mut batch, &mut lists, pending)?;
                    records.push(match audit {
                        Some(entry) => Some(append(&mut batch, &mut seq, &mut prev_hash, entry)?),
                        None => None,
                    });
                }
                Write::Audit(entry) => {
                    records.push(Some(append(&mut batch, &mut seq, &mut prev_hash, entry)?));
                }
                _ => return Err(Fallback::State("not a fast-path write".into())),
            }
        }
        for (id, list) in lists.iter().filter(|(_, l)| l.dirty) {
            batch.push(SQL_UPDATE_LIST);
            batch.arg(list.allocated.clone())?;
            batch.arg(list.used)?;
            batch.arg(*id)?;
        }
        batch.sql.push_str("COMMIT");
        let Batch { sql, args } = batch;
        sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        Ok(records)
    }

    /// The record's statements (as `insert_token`), its index marked.
    fn token<'q>(
        batch: &mut Batch<'q>,
        lists: &mut BTreeMap<i64, GroupList>,
        pending: &'q PendingToken,
    ) -> Result<(), Fallback> {
        let PendingToken { token, hold } = pending;
        let list = lists
            .get_mut(&hold.list_id)
            .ok_or_else(|| Fallback::State(format!("status list {}: not read", hold.list_id)))?;
        if crate::status::is_allocated(&list.allocated, hold.idx) {
            return Err(Fallback::State(format!(
                "status list {} index {} is already used",
                hold.list_id, hold.idx
            )));
        }
        if !crate::status::allocate(&mut list.allocated, hold.idx) {
            return Err(Fallback::State(format!(
                "status list {} has no index {}",
                hold.list_id, hold.idx
            )));
        }
        list.used += 1;
        list.dirty = true;
        batch.push(SQL_INSERT_TOKEN);
        batch.arg(token.jti.as_str())?;
        batch.arg(token.agent_id.as_str())?;
        batch.arg(token.registration_id.as_str())?;
        batch.arg(token.client_id.as_str())?;
        batch.arg(token.iat)?;
        batch.arg(token.exp)?;
        batch.arg(hold.list_id)?;
        batch.arg(i64::from(hold.idx))?;
        for (kind, value) in token.links() {
            batch.push(SQL_INSERT_LINK);
            batch.arg(token.jti.as_str())?;
            batch.arg(kind)?;
            batch.arg(value)?;
        }
        let at_ms = token.iat.saturating_mul(1000);
        batch.push(SQL_UPSERT_ACTIVITY);
        batch.arg(token.registration_id.as_str())?;
        batch.arg(token.agent_id.as_str())?;
        batch.arg(at_ms)?;
        batch.arg(at_ms)?;
        Ok(())
    }

    /// The audit record after the head (as `audit`), the head advanced.
    fn append(
        batch: &mut Batch<'_>,
        seq: &mut u64,
        prev_hash: &mut String,
        entry: &AuditEntry,
    ) -> Result<AuditRecord, Fallback> {
        let detail = serde_json::to_string(&entry.detail)
            .map_err(|e| Fallback::State(format!("audit detail: {e}")))?;
        let record = AuditRecord::chain(entry.clone(), *seq, prev_hash.clone())
            .map_err(|e| Fallback::State(format!("audit record: {e}")))?;
        let seq_i64 =
            i64::try_from(record.seq).map_err(|e| Fallback::State(format!("audit seq: {e}")))?;
        batch.push(SQL_INSERT_AUDIT);
        batch.arg(seq_i64)?;
        batch.arg(record.time_ms)?;
        batch.arg(record.event.clone())?;
        batch.arg(record.client_id.clone())?;
        batch.arg(record.agent_id.clone())?;
        batch.arg(record.registration_id.clone())?;
        batch.arg(record.jti.clone())?;
        batch.arg(record.error_code.clone())?;
        batch.arg(record.intent_hash.clone())?;
        batch.arg(detail)?;
        batch.arg(record.prev_hash.clone())?;
        batch.arg(record.record_hash.clone())?;
        *seq = record.seq.saturating_add(1);
        prev_hash.clone_from(&record.record_hash);
        Ok(record)
    }

    /// After the COMMIT: every reserved index is used for good and each
    /// caller gets its result.
    pub(super) fn settle(writes: Vec<Write>, records: Records) -> Vec<WriteResult> {
        writes
            .into_iter()
            .zip(records)
            .map(|(w, record)| match (w, record) {
                (Write::Token { pending, .. }, record) => {
                    let PendingToken { hold, .. } = *pending;
                    hold.commit();
                    Ok(Written::Token(record.map(Box::new)))
                }
                (Write::Audit(_), Some(record)) => Ok(Written::Audit(Box::new(record))),
                _ => Err(StoreError::Backend("write group: fast path result".into())),
            })
            .collect()
    }
}

async fn write_all(
    conn: &mut SqliteConnection,
    alloc: &Arc<Allocator>,
    state: &mut GroupState,
    writes: Vec<Write>,
) -> Result<Vec<WriteResult>, StoreError> {
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let result = match write {
            Write::Register(r) => register(conn, *r)
                .await?
                .map(|a| Written::Register(a.into())),
            Write::Token { pending, audit } => {
                let PendingToken { token, hold } = *pending;
                match reserved_token(conn, state, &token, hold).await? {
                    // The token's audit entry only if its record was written.
                    Ok(()) => {
                        let record = match audit {
                            Some(entry) => Some(Box::new(self::audit(conn, state, *entry).await?)),
                            None => None,
                        };
                        Ok(Written::Token(record))
                    }
                    Err(e) => Err(e),
                }
            }
            Write::Record {
                token,
                list_size,
                random,
            } => allocated_token(conn, alloc, state, &token, list_size, random)
                .await?
                .map(Written::Record),
            Write::Audit(entry) => Ok(Written::Audit(audit(conn, state, *entry).await?.into())),
        };
        results.push(result);
    }
    flush_lists(conn, state).await?;
    Ok(results)
}

/// Whether `e` is a constraint violation (SQLite rolled the statement
/// back; the transaction goes on).
fn is_constraint(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        matches!(
            d.kind(),
            sqlx::error::ErrorKind::UniqueViolation
                | sqlx::error::ErrorKind::CheckViolation
                | sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::ForeignKeyViolation
        )
    })
}

// ---- registrations (§5.4.2 steps 3-5, §5.4.4, I-69, I-70) -----------------

async fn checksum_owner(
    conn: &mut SqliteConnection,
    checksum: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar::<_, String>("SELECT agent_id FROM agent_registrations WHERE checksum = ?1")
        .bind(checksum)
        .fetch_optional(conn)
        .await
        .map_err(|e| backend("checksum lookup failed", e))
}

/// `Ok(Err(_))`: refused, nothing written; `Err`: the group fails.
async fn register(
    conn: &mut SqliteConnection,
    w: RegistrationWrite,
) -> Result<Result<AgentRecord, StoreError>, StoreError> {
    let RegistrationWrite {
        new,
        checksum,
        public_jwk,
        allowed_scopes,
    } = w;
    let second = new.registered_at_ms.div_euclid(1000);
    // One statement: the checksum's holder, the latest version and its
    // revocation, and the agent's registrations in this second.
    let (holder, previous_version, previous_revoked, same_second) =
        sqlx::query_as::<_, (Option<String>, Option<i64>, Option<i64>, i64)>(
            "SELECT (SELECT agent_id FROM agent_registrations WHERE checksum = ?3), \
             (SELECT version FROM agent_registrations WHERE agent_id = ?1 \
              ORDER BY version DESC LIMIT 1), \
             (SELECT revoked FROM agent_registrations WHERE agent_id = ?1 \
              ORDER BY version DESC LIMIT 1), \
             (SELECT COUNT(*) FROM agent_registrations WHERE agent_id = ?1 AND reg_second = ?2)",
        )
        .bind(&new.agent_id)
        .bind(second)
        .bind(&checksum)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| backend(format_args!("previous registration of {}", new.agent_id), e))?;

    // §5.6.1: a REVOKED agent stays revoked unless an administrator
    // re-registers it (I-69); checked under the write lock.
    if previous_revoked.is_some_and(|r| r != 0) && !new.may_reactivate_revoked {
        return Ok(Err(StoreError::AgentRevoked {
            agent_id: new.agent_id,
        }));
    }
    // §5.4.2 step 3: a checksum exists once across all agents and versions
    // (including the writes earlier in this group).
    if let Some(existing_agent_id) = holder {
        return Ok(Err(StoreError::DuplicateChecksum { existing_agent_id }));
    }
    let inserted = insert_registration(
        conn,
        new,
        &checksum,
        public_jwk,
        allowed_scopes,
        previous_version,
        same_second,
    )
    .await;
    match inserted {
        Ok(record) => Ok(Ok(record)),
        Err(Fail::Write(e)) => Ok(Err(e)),
        Err(Fail::Group(e)) => Err(e),
    }
}

/// A failure of one write: its own (nothing written) or the group's.
enum Fail {
    Write(StoreError),
    Group(StoreError),
}

async fn insert_registration(
    conn: &mut SqliteConnection,
    new: NewRegistration,
    checksum: &str,
    public_jwk: Option<String>,
    allowed_scopes: Option<String>,
    previous_version: Option<i64>,
    same_second: i64,
) -> Result<AgentRecord, Fail> {
    let second = new.registered_at_ms.div_euclid(1000);
    // §5.4.2 step 4 with the real registration second (I-70).
    let (version, same_second) = match previous_version {
        None => (1, 0),
        Some(v) => {
            let next = v.checked_add(1).ok_or_else(|| {
                Fail::Write(StoreError::Backend(format!(
                    "agent_registrations of {}: version overflows",
                    new.agent_id
                )))
            })?;
            (next, same_second)
        }
    };
    let version_u32 = u32::try_from(version).map_err(|e| {
        Fail::Write(backend(
            format_args!("agent {}: version {version}", new.agent_id),
            e,
        ))
    })?;
    let second_u64 = u64::try_from(second).map_err(|e| {
        Fail::Write(backend(
            format_args!("agent {}: registration second {second}", new.agent_id),
            e,
        ))
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
        Fail::Write(StoreError::Backend(format!(
            "agent {}: too many registrations in second {second}",
            new.agent_id
        )))
    })?;
    let reg_id = registration_id(&new.agent_id, timestamp);
    let inserted = sqlx::query(
        "INSERT INTO agent_registrations (agent_id, version, registration_id, reg_second, \
         checksum, checksum_profile, public_jwk, jwk_thumbprint, allowed_scopes, app_id, \
         spec_json, registered_at_ms, spec_head) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, substr(?11, 1, 32))",
    )
    .bind(&new.agent_id)
    .bind(version)
    .bind(&reg_id)
    .bind(second)
    .bind(checksum)
    .bind(new.checksum_profile.as_str())
    .bind(&public_jwk)
    .bind(&new.jwk_thumbprint)
    .bind(&allowed_scopes)
    .bind(&new.app_id)
    .bind(&new.spec_json)
    .bind(new.registered_at_ms)
    .execute(&mut *conn)
    .await;
    if let Err(e) = inserted {
        let failure = backend(format_args!("cannot store registration {reg_id}"), &e);
        if !is_constraint(&e) {
            return Err(Fail::Group(failure));
        }
        // The statement was rolled back alone. The pre-check above holds
        // the write lock, so this is a backstop: map the UNIQUE(checksum)
        // violation like the pre-check would.
        let checksum_conflict = e
            .as_database_error()
            .is_some_and(|d| d.message().contains("agent_registrations.checksum"));
        if checksum_conflict {
            if let Some(existing_agent_id) =
                checksum_owner(conn, checksum).await.map_err(Fail::Group)?
            {
                return Err(Fail::Write(StoreError::DuplicateChecksum {
                    existing_agent_id,
                }));
            }
        }
        return Err(Fail::Write(failure));
    }
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

// ---- token records and status lists (§9.3.2, I-83) ------------------------

/// Writes the bitmap and count of every list the group changed.
async fn flush_lists(
    conn: &mut SqliteConnection,
    state: &mut GroupState,
) -> Result<(), StoreError> {
    for (list_id, list) in state.lists.iter_mut().filter(|(_, l)| l.dirty) {
        sqlx::query(SQL_UPDATE_LIST)
            .bind(&list.allocated)
            .bind(list.used)
            .bind(list_id)
            .execute(&mut *conn)
            .await
            .map_err(|e| backend(format_args!("status list {list_id}: allocate"), e))?;
        list.dirty = false;
    }
    Ok(())
}

/// The stored row of the list `hold` reserved in, read once per group;
/// a list reserved in memory but not stored yet is inserted (empty) here,
/// in the group of its first token (I-160).
async fn group_list<'s>(
    conn: &mut SqliteConnection,
    state: &'s mut GroupState,
    hold: &IndexHold,
) -> Result<&'s mut GroupList, StoreError> {
    use std::collections::btree_map::Entry;
    let list_id = hold.list_id;
    let fail =
        |what: &str, e: &dyn Display| backend(format_args!("status list {list_id}: {what}"), e);
    match state.lists.entry(list_id) {
        Entry::Occupied(o) => Ok(o.into_mut()),
        Entry::Vacant(v) => {
            let row = sqlx::query_as::<_, (i64, Vec<u8>, i64)>(
                "SELECT size, allocated, used FROM status_lists WHERE list_id = ?1",
            )
            .bind(list_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| fail("read", &e))?;
            let list = match row {
                Some((size, allocated, used)) => {
                    if size != i64::from(hold.size) {
                        return Err(fail(
                            "size",
                            &format_args!("{size} stored, {} reserved", hold.size),
                        ));
                    }
                    // What another writer of the file stored (none when
                    // this store is the only one) is taken in memory too.
                    hold.alloc.merge(list_id, &allocated);
                    GroupList {
                        allocated,
                        used,
                        dirty: false,
                    }
                }
                None => {
                    let allocated = vec![0u8; (hold.size as usize).div_ceil(8)];
                    sqlx::query(SQL_CREATE_LIST)
                        .bind(list_id)
                        .bind(i64::from(hold.size))
                        .bind(&allocated)
                        .bind(hold.created_at_ms)
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| fail("create", &e))?;
                    GroupList {
                        allocated,
                        used: 0,
                        dirty: false,
                    }
                }
            };
            Ok(v.insert(list))
        }
    }
}

/// Writes a token record at its reserved index (I-160). `Ok(Err(_))`:
/// refused (a duplicate `jti`, or the index is already taken on disk),
/// nothing written; `Err`: the group fails. The hold goes to
/// `state.written` when the record was written, and is dropped (the index
/// given back) when it was refused.
async fn reserved_token(
    conn: &mut SqliteConnection,
    state: &mut GroupState,
    token: &NewTokenRecord,
    hold: IndexHold,
) -> Result<Result<(), StoreError>, StoreError> {
    let jti = &token.jti;
    let (list_id, idx) = (hold.list_id, hold.idx);
    let list = group_list(conn, state, &hold).await?;
    if crate::status::is_allocated(&list.allocated, idx) {
        // Another writer of the file used it: never twice (I-83). The
        // index stays taken in memory too.
        hold.commit();
        return Ok(Err(StoreError::Backend(format!(
            "token {jti}: status list {list_id} index {idx} is already used"
        ))));
    }
    if !crate::status::allocate(&mut list.allocated, idx) {
        return Ok(Err(StoreError::Backend(format!(
            "token {jti}: status list {list_id} has no index {idx}"
        ))));
    }
    list.used += 1;
    list.dirty = true;
    match insert_token(conn, token, list_id, idx).await {
        Ok(()) => {
            state.written.push(hold);
            Ok(Ok(()))
        }
        Err(Fail::Group(e)) => Err(e),
        Err(Fail::Write(e)) => {
            // Nothing was written: the index is free again, on disk (this
            // group) and in memory (`hold` dropped).
            if let Some(list) = state.lists.get_mut(&list_id) {
                if let Some(b) = list.allocated.get_mut((idx / 8) as usize) {
                    *b &= !(1u8 << (idx % 8));
                }
                list.used -= 1;
            }
            Ok(Err(e))
        }
    }
}

/// The record's first statement may fail alone (a constraint: nothing
/// written); a later one fails the group.
async fn insert_token(
    conn: &mut SqliteConnection,
    token: &NewTokenRecord,
    list_id: i64,
    idx: u32,
) -> Result<(), Fail> {
    let jti = &token.jti;
    let fail = |what: &str, e: &dyn Display| backend(format_args!("token {jti}: {what}"), e);
    let group = |what: &'static str| move |e: sqlx::Error| Fail::Group(fail(what, &e));
    sqlx::query(SQL_INSERT_TOKEN)
        .bind(&token.jti)
        .bind(&token.agent_id)
        .bind(&token.registration_id)
        .bind(&token.client_id)
        .bind(token.iat)
        .bind(token.exp)
        .bind(list_id)
        .bind(i64::from(idx))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if is_constraint(&e) {
                Fail::Write(fail("insert", &e))
            } else {
                Fail::Group(fail("insert", &e))
            }
        })?;
    for (kind, value) in token.links() {
        sqlx::query(SQL_INSERT_LINK)
            .bind(&token.jti)
            .bind(kind)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(group("insert link"))?;
    }
    let at_ms = token.iat.saturating_mul(1000);
    sqlx::query(SQL_UPSERT_ACTIVITY)
        .bind(&token.registration_id)
        .bind(&token.agent_id)
        .bind(at_ms)
        .bind(at_ms)
        .execute(&mut *conn)
        .await
        .map_err(group("registration activity"))?;
    Ok(())
}

// ---- the audit chain (§9.1.4, I-100) ---------------------------------------

/// Appends `entry` after the chain's head (read once per group, under the
/// write lock, so the chain stays one chain even with other writers on the
/// file); the head advances only when the insert succeeded.
async fn audit(
    conn: &mut SqliteConnection,
    state: &mut GroupState,
    entry: AuditEntry,
) -> Result<AuditRecord, StoreError> {
    if state.audit.is_none() {
        let head = sqlx::query_as::<_, (i64, String)>(SQL_AUDIT_HEAD)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| backend("audit head", e))?;
        state.audit = Some(match head {
            None => AuditHead {
                seq: 1,
                prev_hash: crate::audit::GENESIS_HASH.to_owned(),
            },
            Some((last, hash)) => AuditHead {
                seq: u64::try_from(last)
                    .map_err(|e| backend("audit head seq", e))?
                    .saturating_add(1),
                prev_hash: hash,
            },
        });
    }
    let head = state
        .audit
        .as_mut()
        .ok_or_else(|| StoreError::Backend("audit head".into()))?;
    let detail = serde_json::to_string(&entry.detail).map_err(|e| backend("audit detail", e))?;
    let record = AuditRecord::chain(entry, head.seq, head.prev_hash.clone())
        .map_err(|e| backend("audit record", e))?;
    let seq_i64 = i64::try_from(record.seq).map_err(|e| backend("audit seq", e))?;
    sqlx::query(SQL_INSERT_AUDIT)
        .bind(seq_i64)
        .bind(record.time_ms)
        .bind(&record.event)
        .bind(&record.client_id)
        .bind(&record.agent_id)
        .bind(&record.registration_id)
        .bind(&record.jti)
        .bind(&record.error_code)
        .bind(&record.intent_hash)
        .bind(&detail)
        .bind(&record.prev_hash)
        .bind(&record.record_hash)
        .execute(&mut *conn)
        .await
        .map_err(|e| backend(format_args!("cannot append audit record {}", record.seq), e))?;
    head.seq = record.seq.saturating_add(1);
    head.prev_hash = record.record_hash.clone();
    Ok(record)
}

/// [`super::Store::record_token`]: reserves an index inside the group
/// (the list's stored bitmap merged into memory first, so an index another
/// writer of the file stored is skipped) and writes the record there.
async fn allocated_token(
    conn: &mut SqliteConnection,
    alloc: &Arc<Allocator>,
    state: &mut GroupState,
    token: &NewTokenRecord,
    list_size: u32,
    random: u64,
) -> Result<Result<StatusIndex, StoreError>, StoreError> {
    // Each attempt that finds its index taken merged that list first; a
    // further one can only meet another list (a new one another writer
    // created meanwhile).
    for _ in 0..4 {
        let hold = alloc.reserve_loaded(list_size, random, token.iat.saturating_mul(1000))?;
        let list = group_list(conn, state, &hold).await?;
        if crate::status::is_allocated(&list.allocated, hold.idx) {
            hold.commit();
            continue;
        }
        let index = hold.index();
        return Ok(reserved_token(conn, state, token, hold)
            .await?
            .map(|()| index));
    }
    Ok(Err(StoreError::Backend(format!(
        "token {}: no free status list index",
        token.jti
    ))))
}

// ---- status list indices reserved in memory (issue 15, I-160) -------------

/// A token record waiting to be written, with the index reserved for it
/// (phase 1 of I-160; [`super::TokenReservation`] carries it).
#[derive(Debug)]
pub(crate) struct PendingToken {
    token: NewTokenRecord,
    hold: IndexHold,
}

impl PendingToken {
    /// The reserved status list position.
    pub(super) fn index(&self) -> StatusIndex {
        self.hold.index()
    }

    /// The token's `jti`.
    pub(super) fn jti(&self) -> &str {
        &self.token.jti
    }
}

/// One reserved index. Dropped without [`IndexHold::commit`] (signing
/// failed, the caller was cancelled, the write was refused or its group
/// failed), it gives the index back.
#[derive(Debug)]
struct IndexHold {
    alloc: Arc<Allocator>,
    list_id: i64,
    idx: u32,
    /// The list's size and creation time (to create its row).
    size: u32,
    created_at_ms: i64,
    armed: bool,
}

impl IndexHold {
    fn index(&self) -> StatusIndex {
        StatusIndex {
            list_id: self.list_id,
            idx: u64::from(self.idx),
        }
    }

    /// The index is used for good (its record is durable).
    fn commit(mut self) {
        self.armed = false;
        self.alloc.settle(self.list_id, self.idx, false);
    }
}

impl Drop for IndexHold {
    fn drop(&mut self) {
        if self.armed {
            self.alloc.settle(self.list_id, self.idx, true);
        }
    }
}

/// A status list as the allocator sees it: its stored indices and the
/// reserved ones.
#[derive(Debug)]
struct MemList {
    size: u32,
    created_at_ms: i64,
    /// Used (stored) or reserved indices.
    taken: Vec<u8>,
    /// Number of bits set in `taken`.
    used: u32,
    /// Reserved, not yet stored.
    pending: u32,
}

#[derive(Debug, Default)]
struct Allocations {
    /// Every list with a free or a reserved index, by id; a full list
    /// without reservations is forgotten (it is full on disk).
    lists: std::collections::BTreeMap<i64, MemList>,
    /// The id of the next new list.
    next_id: i64,
}

/// The SQLite store's status list allocation in memory (I-160): the store
/// is the only writer of its file, so the stored lists are read once (the
/// lists with a free index and the highest id ever given) and every
/// reservation, write and release after that is reflected here. The group
/// writer still checks each index against the stored bitmap under the
/// write lock, so an index is never stored twice even if that assumption
/// were broken.
#[derive(Debug, Default)]
pub(super) struct Allocator {
    state: std::sync::Mutex<Allocations>,
    loaded: tokio::sync::OnceCell<()>,
}

impl Allocator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Allocations> {
        // Every update below leaves the state consistent before it can
        // panic (it does not), so a poisoned lock is still valid.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the lists with a free index and the next list id, once.
    async fn load(&self, pool: &SqlitePool) -> Result<(), StoreError> {
        self.loaded
            .get_or_try_init(|| async {
                let rows = sqlx::query_as::<_, (i64, i64, Vec<u8>, i64)>(
                    "SELECT list_id, size, allocated, created_at_ms FROM status_lists \
                     WHERE used < size ORDER BY list_id",
                )
                .fetch_all(pool)
                .await
                .map_err(|e| backend("status lists", e))?;
                // AUTOINCREMENT: the highest id ever given, pruned or not.
                let last = sqlx::query_scalar::<_, i64>(
                    "SELECT MAX(COALESCE((SELECT MAX(list_id) FROM status_lists), 0), \
                     COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'status_lists'), 0))",
                )
                .fetch_one(pool)
                .await
                .map_err(|e| backend("status list ids", e))?;
                let mut lists = std::collections::BTreeMap::new();
                for (list_id, size, taken, created_at_ms) in rows {
                    let fail = |e: &dyn Display| backend(format_args!("status list {list_id}"), e);
                    let size = u32::try_from(size).map_err(|e| fail(&e))?;
                    let bytes = (size as usize).div_ceil(8);
                    if taken.len() != bytes {
                        return Err(fail(&format_args!(
                            "bitmap of {} bytes for {size} statuses",
                            taken.len()
                        )));
                    }
                    let used = (0..size)
                        .filter(|i| crate::status::is_allocated(&taken, *i))
                        .count();
                    let used = u32::try_from(used).map_err(|e| fail(&e))?;
                    lists.insert(
                        list_id,
                        MemList {
                            size,
                            created_at_ms,
                            taken,
                            used,
                            pending: 0,
                        },
                    );
                }
                let mut state = self.lock();
                state.lists = lists;
                state.next_id = last.saturating_add(1);
                Ok(())
            })
            .await
            .map(drop)
    }

    /// Reserves a uniformly random free index (I-83) of the first list
    /// with one, or of a new list of `list_size` statuses.
    async fn reserve(
        self: &Arc<Self>,
        pool: &SqlitePool,
        list_size: u32,
        random: u64,
        now_ms: i64,
    ) -> Result<IndexHold, StoreError> {
        if list_size == 0 {
            return Err(StoreError::Backend("status list size: 0".into()));
        }
        self.load(pool).await?;
        self.reserve_loaded(list_size, random, now_ms)
    }

    /// [`Allocator::reserve`] once the lists are loaded.
    fn reserve_loaded(
        self: &Arc<Self>,
        list_size: u32,
        random: u64,
        now_ms: i64,
    ) -> Result<IndexHold, StoreError> {
        if list_size == 0 || self.loaded.get().is_none() {
            return Err(StoreError::Backend("status lists not loaded".into()));
        }
        let mut state = self.lock();
        let open = state
            .lists
            .iter()
            .find(|(_, l)| l.used < l.size)
            .map(|(id, _)| *id);
        let list_id = match open {
            Some(id) => id,
            None => {
                let id = state.next_id;
                state.next_id = id.saturating_add(1);
                state.lists.insert(
                    id,
                    MemList {
                        size: list_size,
                        created_at_ms: now_ms,
                        taken: vec![0u8; (list_size as usize).div_ceil(8)],
                        used: 0,
                        pending: 0,
                    },
                );
                id
            }
        };
        let list = state
            .lists
            .get_mut(&list_id)
            .ok_or_else(|| StoreError::Backend(format!("status list {list_id}: gone")))?;
        let free = u64::from(list.size - list.used);
        let idx = crate::status::nth_free(&list.taken, list.size, random % free.max(1))
            .filter(|i| crate::status::allocate(&mut list.taken, *i))
            .ok_or_else(|| StoreError::Backend(format!("status list {list_id}: full")))?;
        list.used += 1;
        list.pending += 1;
        Ok(IndexHold {
            alloc: Arc::clone(self),
            list_id,
            idx,
            size: list.size,
            created_at_ms: list.created_at_ms,
            armed: true,
        })
    }

    /// Takes in memory every index `stored` (a list's stored bitmap) marks.
    fn merge(&self, list_id: i64, stored: &[u8]) {
        let mut state = self.lock();
        if let Some(list) = state.lists.get_mut(&list_id) {
            let mut changed = false;
            for (m, d) in list.taken.iter_mut().zip(stored) {
                changed |= *d & !*m != 0;
                *m |= *d;
            }
            // Recounted only when another writer's index was taken (this
            // runs once per group; a count over the whole list is 65,536
            // bit tests at the default size, I-181).
            if changed {
                let used = (0..list.size)
                    .filter(|i| crate::status::is_allocated(&list.taken, *i))
                    .count();
                list.used = u32::try_from(used).unwrap_or(list.size);
            }
        }
        if list_id >= state.next_id {
            state.next_id = list_id.saturating_add(1);
        }
    }

    /// Ends a reservation: the index is given back (`release`) or used for
    /// good; a list left full without reservations is forgotten.
    fn settle(&self, list_id: i64, idx: u32, release: bool) {
        let mut state = self.lock();
        let Some(list) = state.lists.get_mut(&list_id) else {
            return;
        };
        list.pending = list.pending.saturating_sub(1);
        if release {
            if let Some(b) = list.taken.get_mut((idx / 8) as usize) {
                if *b & (1u8 << (idx % 8)) != 0 {
                    *b &= !(1u8 << (idx % 8));
                    list.used = list.used.saturating_sub(1);
                }
            }
        } else if list.used >= list.size && list.pending == 0 {
            state.lists.remove(&list_id);
        }
    }
}

// ---- the batcher: every group of GroupCommit, and the PostgreSQL store's token records (I-159)

/// An item waiting for its batch, its caller's reply and its queue slot.
type Queued<I, O> = (
    I,
    oneshot::Sender<Result<O, StoreError>>,
    OwnedSemaphorePermit,
);

/// Group commit of one kind of write: as [`GroupCommit`], with the batch
/// written by a function given at each call (all calls give the same).
pub(super) struct Batcher<I, O> {
    pending: std::sync::Mutex<VecDeque<Queued<I, O>>>,
    slots: Arc<Semaphore>,
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Most items per batch ([`MAX_GROUP`]; 1 turns grouping off).
    max_group: std::sync::atomic::AtomicUsize,
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<I, O> Default for Batcher<I, O> {
    fn default() -> Self {
        Batcher {
            pending: std::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(MAX_QUEUED)),
            lock: Arc::default(),
            max_group: std::sync::atomic::AtomicUsize::new(MAX_GROUP),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued<I, O>>> {
        // The queue is valid whatever a panicking holder did.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the most items per batch, clamped to `1..=MAX_GROUP`.
    pub(super) fn set_max_group(&self, n: usize) {
        self.max_group
            .store(n.clamp(1, MAX_GROUP), std::sync::atomic::Ordering::Relaxed);
    }

    /// Queues `item`; the caller that takes the batch runs `write` on up
    /// to [`MAX_GROUP`] items in a spawned task (a cancelled caller loses
    /// nothing of the others). `write` returns one result per item, in
    /// order, or `Err` for the whole batch. Answered only after `write`
    /// returned (i.e. after its commit).
    pub(super) async fn submit<F, Fut>(&self, item: I, write: F) -> Result<O, StoreError>
    where
        F: Fn(Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<Result<O, StoreError>>, StoreError>>
            + Send
            + 'static,
    {
        use tokio::sync::oneshot::error::TryRecvError;
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| backend("write queue", e))?;
        let (tx, mut rx) = oneshot::channel();
        self.queue().push_back((item, tx, permit));
        loop {
            let lock = self.lock.clone().lock_owned().await;
            match rx.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Closed) => {
                    return Err(StoreError::Backend("write cancelled".into()))
                }
                Err(TryRecvError::Empty) => {}
            }
            let batch = {
                let mut queue = self.queue();
                let max = self.max_group.load(std::sync::atomic::Ordering::Relaxed);
                let n = queue.len().min(max);
                queue.drain(..n).collect::<Vec<_>>()
            };
            let write = write.clone();
            let writer = tokio::spawn(async move {
                let _lock = lock;
                let mut items = Vec::with_capacity(batch.len());
                let mut replies = Vec::with_capacity(batch.len());
                for (item, reply, permit) in batch {
                    drop(permit);
                    items.push(item);
                    replies.push(reply);
                }
                match write(items).await {
                    Ok(results) => {
                        for (result, reply) in results.into_iter().zip(replies) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            });
            writer.await.map_err(|e| backend("write batch task", e))?;
            match rx.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Closed) => {
                    return Err(StoreError::Backend("write not written".into()))
                }
                // Beyond this batch's bound: in the next one.
                Err(TryRecvError::Empty) => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn audit_write() -> Write {
        Write::Audit(Box::new(AuditEntry {
            time_ms: 1,
            event: "token_issued".into(),
            client_id: None,
            agent_id: None,
            registration_id: None,
            jti: None,
            error_code: None,
            intent_hash: None,
            detail: serde_json::Map::new(),
        }))
    }

    /// I-181: the fast path takes token and audit groups of at most
    /// `MAX_FAST_GROUP` writes; larger groups (and any registration) are
    /// written statement by statement, bounding the memory a group's
    /// multi-statement query takes.
    #[test]
    fn i181_fast_path_takes_small_token_and_audit_groups_only() {
        let small: Vec<Write> = (0..fast::MAX_FAST_GROUP).map(|_| audit_write()).collect();
        assert!(fast::eligible(&small));
        let large: Vec<Write> = (0..=fast::MAX_FAST_GROUP).map(|_| audit_write()).collect();
        assert!(!fast::eligible(&large));
        let record = Write::Record {
            token: Box::new(NewTokenRecord {
                jti: "j".into(),
                agent_id: "a".into(),
                registration_id: "r".into(),
                client_id: "c".into(),
                iat: 1,
                exp: 2,
                chain: vec![],
                ancestors: vec![],
            }),
            list_size: 8,
            random: 0,
        };
        assert!(!fast::eligible(&[audit_write(), record]));
    }
}
