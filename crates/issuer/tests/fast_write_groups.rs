//! The fast path of token and audit write groups of the SQLite store
//! (issue 15, I-181) and its background WAL checkpointer (I-182).
//!
//! I-181 must not change what is stored: the same token records (§9.3.2),
//! delegation links (§4.3.4), registration activity, status list bitmaps
//! (I-83) and audit chain (§9.1.4, I-100) as the statement-by-statement
//! path, which stays the oracle here (it is the path every earlier test
//! pinned), and a write refused alone (a duplicate `jti`) is still refused
//! alone. Oracles: the database files read with plain SQL, compared across
//! two stores fed the same writes, one of them with the fast path off, and
//! the audit chain's hashes recomputed by `ChainVerifier`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use ajwt_issuer::audit::{AuditEntry, ChainVerifier};
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{ChainLink, NewTokenRecord, Store};

const LIST_SIZE: u32 = 64;

fn token(i: u64) -> NewTokenRecord {
    NewTokenRecord {
        jti: format!("jti-{i:04}"),
        agent_id: format!("agent-{}", i % 3),
        registration_id: format!("reg_agent-{}_1", i % 3),
        client_id: "client".into(),
        iat: 1_700_000_000 + i as i64,
        exp: 4_000_000_000,
        // Delegated tokens carry chain links and ancestors (§4.3.4).
        chain: if i % 2 == 0 {
            vec![ChainLink {
                agent_id: "orchestrator".into(),
                registration_id: Some("reg_orchestrator_1".into()),
            }]
        } else {
            vec![]
        },
        ancestors: if i % 4 == 1 {
            vec![format!("jti-parent-{i}")]
        } else {
            vec![]
        },
    }
}

fn issued(t: &NewTokenRecord) -> AuditEntry {
    let mut detail = serde_json::Map::new();
    detail.insert("n".into(), serde_json::json!(t.iat));
    AuditEntry {
        time_ms: t.iat * 1000,
        event: "token_issued".into(),
        client_id: Some(t.client_id.clone()),
        agent_id: Some(t.agent_id.clone()),
        registration_id: Some(t.registration_id.clone()),
        jti: Some(t.jti.clone()),
        error_code: None,
        intent_hash: Some(format!("sha256:{:064x}", t.iat)),
        detail,
    }
}

/// Reserves then finishes `t` with its audit entry (the two phases of an
/// issuance, I-160), with a fixed `random` so two stores pick the same
/// index.
async fn issue(store: &SqliteStore, t: NewTokenRecord, random: u64) -> Result<(), String> {
    let entry = issued(&t);
    let r = store
        .reserve_token(t, LIST_SIZE, random)
        .await
        .map_err(|e| e.to_string())?;
    store
        .finish_token(r, Some(entry))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Everything the writes of a token group touch, read with plain SQL; the
/// audit rows without the columns that depend on the order of groups
/// (`seq`, `prev_hash`, `record_hash`), keyed by `jti`.
#[derive(Debug, PartialEq)]
struct Rows {
    tokens: BTreeSet<(String, String, String, String, i64, i64)>,
    indices: BTreeMap<String, (i64, i64)>,
    links: BTreeSet<(String, String, String)>,
    activity: BTreeSet<(String, String, Option<i64>, Option<i64>)>,
    audit: BTreeMap<String, (i64, String, Option<String>, Option<String>, String)>,
    /// Per list: size, set bits, `used`.
    lists: BTreeMap<i64, (i64, BTreeSet<u32>, i64)>,
}

async fn rows(db: &Path) -> Rows {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let tokens = sqlx::query_as::<_, (String, String, String, String, i64, i64, i64, i64)>(
        "SELECT jti, agent_id, registration_id, client_id, iat, exp, list_id, idx FROM intent_tokens",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let indices = tokens.iter().map(|t| (t.0.clone(), (t.6, t.7))).collect();
    let tokens = tokens
        .into_iter()
        .map(|t| (t.0, t.1, t.2, t.3, t.4, t.5))
        .collect();
    let links = sqlx::query_as("SELECT jti, kind, value FROM intent_token_links")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let activity = sqlx::query_as(
        "SELECT registration_id, agent_id, first_token_at_ms, last_token_at_ms FROM registration_activity",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let audit = sqlx::query_as::<
        _,
        (
            Option<String>,
            i64,
            String,
            Option<String>,
            Option<String>,
            String,
        ),
    >("SELECT jti, time_ms, event, agent_id, intent_hash, detail FROM audit_log")
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(jti, t, e, a, h, d)| (jti.unwrap(), (t, e, a, h, d)))
    .collect();
    let mut lists = BTreeMap::new();
    for (id, size, bitmap, used) in sqlx::query_as::<_, (i64, i64, Vec<u8>, i64)>(
        "SELECT list_id, size, allocated, used FROM status_lists",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        let bits = (0..size as u32)
            .filter(|i| bitmap[(*i / 8) as usize] >> (i % 8) & 1 == 1)
            .collect();
        lists.insert(id, (size, bits, used));
    }
    pool.close().await;
    Rows {
        tokens,
        indices,
        links,
        activity,
        audit,
        lists,
    }
}

/// The chain of `store` recomputed from its records.
async fn chain_intact(store: &SqliteStore, n: usize) {
    let records = store.audit_records(0, 100_000).await.unwrap();
    assert_eq!(records.len(), n);
    let mut v = ChainVerifier::new();
    for r in &records {
        v.push(r);
    }
    let report = v.finish();
    assert!(report.intact(), "{report:?}");
}

/// I-181: 150 issuances (3 lists of 64, so lists are created inside
/// groups), in flight at once so that groups hold many writes, give the
/// same rows with the fast path as statement by statement; only the order
/// of the audit chain may differ, and both chains are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i181_fast_and_careful_paths_store_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (fast_db, careful_db) = (dir.path().join("fast.db"), dir.path().join("careful.db"));
    let fast = SqliteStore::open(&fast_db).await.unwrap();
    let careful = SqliteStore::open(&careful_db).await.unwrap();
    careful.set_fast_write_groups(false);
    const N: u64 = 150;
    const LONE: u64 = 5;
    for store in [&fast, &careful] {
        // Sequential reservations (the same indices in both stores), then
        // every finish in flight at once (many writes per group).
        let mut reservations = Vec::new();
        for i in 0..N {
            let t = token(i);
            let entry = issued(&t);
            let r = store
                .reserve_token(t, LIST_SIZE, i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .await
                .unwrap();
            reservations.push((r, entry));
        }
        let store = Arc::new(store.clone());
        let tasks: Vec<_> = reservations
            .into_iter()
            .map(|(r, e)| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.finish_token(r, Some(e)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Then a few alone: one-write groups, which always take the fast
        // path (groups of more than 8 writes do not).
        for i in N..N + LONE {
            issue(&store, token(i), i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .await
                .unwrap();
        }
    }
    assert!(fast.write_groups_fast() >= LONE, "the fast path was taken");
    assert!(
        fast.write_groups_committed() < N,
        "groups held several writes ({} groups)",
        fast.write_groups_committed()
    );
    assert_eq!(careful.write_groups_fast(), 0);
    chain_intact(&fast, (N + LONE) as usize).await;
    chain_intact(&careful, (N + LONE) as usize).await;
    fast.close().await;
    careful.close().await;
    let (a, b) = (rows(&fast_db).await, rows(&careful_db).await);
    assert_eq!(a.tokens.len(), (N + LONE) as usize);
    assert_eq!(a.lists.len(), 3);
    assert!(!a.links.is_empty());
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.indices, b.indices);
    assert_eq!(a.links, b.links);
    assert_eq!(a.activity, b.activity);
    assert_eq!(a.audit, b.audit);
    assert_eq!(a.lists, b.lists);
}

/// I-181: a duplicate `jti` in a group makes the fast path roll back; the
/// group is written statement by statement, where the duplicate is refused
/// alone (nothing of it stored, its index given back) and every other
/// write of the group commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i181_a_duplicate_jti_in_a_fast_group_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let store = SqliteStore::open(&db).await.unwrap();
    issue(&store, token(7), 1).await.unwrap();
    let store = Arc::new(store);
    // Eight writes in flight (at most one fast group's worth), the fifth a
    // second `jti-0007`.
    let tasks: Vec<_> = (0..8u64)
        .map(|k| {
            let store = Arc::clone(&store);
            let t = if k == 4 { token(7) } else { token(100 + k) };
            tokio::spawn(async move { issue(&store, t, 1000 + k).await })
        })
        .collect();
    let mut refused = Vec::new();
    for (k, t) in tasks.into_iter().enumerate() {
        if let Err(e) = t.await.unwrap() {
            refused.push((k, e));
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, 4);
    chain_intact(&store, 8).await;
    store.close().await;
    let r = rows(&db).await;
    assert_eq!(r.tokens.len(), 8);
    // Bits are exactly the stored indices: the refused one was given back.
    let stored: BTreeSet<u32> = r.indices.values().map(|(_, i)| *i as u32).collect();
    let bits: BTreeSet<u32> = r.lists.values().flat_map(|l| l.1.clone()).collect();
    assert_eq!(stored, bits);
    assert_eq!(r.lists.values().map(|l| l.2).sum::<i64>(), 8);
}

/// I-182: the background checkpointer copies committed WAL frames into the
/// database file without waiting for a COMMIT to reach SQLite's 1,000-page
/// autocheckpoint. Oracle: the database file copied WITHOUT its `-wal`
/// and opened alone holds only what was checkpointed; 20 token groups
/// (about 260 WAL pages) stay far below the autocheckpoint, so only the
/// background task can have put them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i182_background_checkpointer_copies_the_wal_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let store = SqliteStore::open(&db).await.unwrap();
    for i in 0..20 {
        issue(&store, token(i), i).await.unwrap();
    }
    let copy = dir.path().join("copy.sqlite3");
    let mut found = 0;
    // The checkpointer runs every 50 ms: within 2 s the rows are there.
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        std::fs::copy(&db, &copy).unwrap();
        let url = format!("sqlite://{}?mode=ro", copy.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        found = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM intent_tokens")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        pool.close().await;
        if found == 20 {
            break;
        }
    }
    assert_eq!(
        found, 20,
        "the database file alone holds every committed token"
    );
    store.close().await;
}
