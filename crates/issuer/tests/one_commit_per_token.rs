//! One durable write per issued intent token on the SQLite store (issue 15,
//! I-160): the status list index (§9.3.2, I-83) is reserved in memory
//! before signing, and the token record and its `TokenIssued` audit entry
//! (§9.1.4, I-101) are written by ONE group commit. Oracles: the database
//! file read with plain SQL (bitmaps, token rows, audit rows), the token's
//! own `status` claim, and a SHA-256 recomputation of the audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use ajwt_issuer::audit::{AuditEntry, ChainVerifier};
use ajwt_issuer::keys::SigningAlgorithm;
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{NewTokenRecord, Store};
use common::*;

/// An issuer over a SQLite file in `dir`, and the store (to count commits).
async fn file_harness(dir: &Path, list_size: u32) -> (Harness, SqliteStore) {
    let sqlite = SqliteStore::open(&dir.join("ajwt.sqlite3")).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(sqlite.clone()));
    let mut config = test_config();
    config.tokens.status_list_size = list_size;
    config.rate_limits.client = 0;
    config.rate_limits.agent = 0;
    let h = Harness::with_store(config, store, SigningAlgorithm::Es256).await;
    (h, sqlite)
}

fn new_token(jti: &str) -> NewTokenRecord {
    NewTokenRecord {
        jti: jti.to_owned(),
        agent_id: "agent-a".into(),
        registration_id: "reg_agent-a_1".into(),
        client_id: "client".into(),
        iat: 1_700_000_000,
        exp: 4_000_000_000,
        chain: vec![],
        ancestors: vec![],
    }
}

fn issued_entry(jti: &str) -> AuditEntry {
    AuditEntry {
        time_ms: 1_700_000_000_000,
        event: "token_issued".into(),
        client_id: Some("client".into()),
        agent_id: Some("agent-a".into()),
        registration_id: None,
        jti: Some(jti.to_owned()),
        error_code: None,
        intent_hash: None,
        detail: serde_json::Map::new(),
    }
}

/// The `status` claim of a token: (list id from the URI, index).
fn status_of(token: &str) -> (i64, u64) {
    let (_, claims) = decode_unverified(token);
    let reference = &claims["status"]["status_list"];
    let uri = reference["uri"].as_str().unwrap();
    let list_id = uri.rsplit('/').next().unwrap().parse().unwrap();
    (list_id, reference["idx"].as_u64().unwrap())
}

/// What the database file holds, read with plain SQL: per list its size
/// and set bits, the token rows (jti -> (list, idx)) and the audit rows.
struct OnDisk {
    lists: BTreeMap<i64, (i64, HashSet<u64>, i64)>,
    tokens: HashMap<String, (i64, u64)>,
    audit: Vec<(i64, String, Option<String>, String, String)>,
}

async fn on_disk(db: &Path) -> OnDisk {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut lists = BTreeMap::new();
    for (list_id, size, bitmap, used) in sqlx::query_as::<_, (i64, i64, Vec<u8>, i64)>(
        "SELECT list_id, size, allocated, used FROM status_lists",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        let bits: HashSet<u64> = (0..size as u64)
            .filter(|i| bitmap[(*i / 8) as usize] >> (i % 8) & 1 == 1)
            .collect();
        lists.insert(list_id, (size, bits, used));
    }
    let tokens =
        sqlx::query_as::<_, (String, i64, i64)>("SELECT jti, list_id, idx FROM intent_tokens")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(jti, l, i)| (jti, (l, i as u64)))
            .collect();
    let audit = sqlx::query_as::<_, (i64, String, Option<String>, String, String)>(
        "SELECT seq, event, jti, prev_hash, record_hash FROM audit_log ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    OnDisk {
        lists,
        tokens,
        audit,
    }
}

/// Every list's stored bits are exactly the indices of its token rows, and
/// its `used` count is their number: no index used twice, none lost.
fn bits_match_rows(disk: &OnDisk) {
    let mut by_list: BTreeMap<i64, HashSet<u64>> = BTreeMap::new();
    for (jti, (list, idx)) in &disk.tokens {
        assert!(
            by_list.entry(*list).or_default().insert(*idx),
            "{jti}: index {list}/{idx} used twice"
        );
    }
    for (list, (size, bits, used)) in &disk.lists {
        let rows = by_list.remove(list).unwrap_or_default();
        assert_eq!(bits, &rows, "list {list}: bitmap vs token rows");
        assert_eq!(*used as usize, rows.len(), "list {list}: used");
        assert!(rows.iter().all(|i| *i < *size as u64));
    }
    assert!(by_list.is_empty(), "tokens in unknown lists: {by_list:?}");
}

/// The audit chain recomputed independently: each `prev_hash` is the
/// previous `record_hash` and seqs are 1..n; plus the crate's verifier
/// (`ajwt audit verify`) over the same records.
async fn chain_intact(h: &Harness, disk: &OnDisk) {
    let mut prev = ajwt_issuer::audit::GENESIS_HASH.to_owned();
    for (n, (seq, _, _, prev_hash, record_hash)) in disk.audit.iter().enumerate() {
        assert_eq!(*seq as usize, n + 1);
        assert_eq!(prev_hash, &prev, "seq {seq}: chain broken");
        prev = record_hash.clone();
    }
    let records = h.store.audit_records(0, 100_000).await.unwrap();
    let mut v = ChainVerifier::new();
    for r in &records {
        v.push(r);
    }
    let report = v.finish();
    assert!(report.intact(), "{report:?}");
}

/// I-160: over the real router, one `agent_checksum` grant costs exactly
/// one group commit (token record + `TokenIssued` entry), and the token's
/// record, status claim and audit entry agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i160_one_grant_is_one_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (h, sqlite) = file_harness(dir.path(), 64).await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("one-commit");
    h.register(&admin, &agent).await;
    // The first grant also prunes (its own transaction, at most once a
    // minute, not a group commit): measure from the second.
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut tokens = Vec::new();
    for i in 0..5u64 {
        let before = sqlite.write_groups_committed();
        let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            sqlite.write_groups_committed() - before,
            1,
            "grant {i}: one group commit"
        );
        tokens.push(r.json["access_token"].as_str().unwrap().to_owned());
    }
    let disk = on_disk(&dir.path().join("ajwt.sqlite3")).await;
    for token in &tokens {
        let (_, claims) = decode_unverified(token);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(disk.tokens.get(jti), Some(&status_of(token)), "{jti}");
        let issued: Vec<_> = disk
            .audit
            .iter()
            .filter(|a| a.2.as_deref() == Some(jti))
            .collect();
        assert_eq!(issued.len(), 1, "{jti}: one audit entry");
        assert_eq!(issued[0].1, "token_issued");
    }
    bits_match_rows(&disk);
    chain_intact(&h, &disk).await;
}

/// I-160, I-83: 300 grants in flight at once over 8-status lists (many
/// roll-overs): every token gets its own index, each has its record and
/// one `TokenIssued` entry, and after a reopen every list's bits are
/// exactly its token rows; the chain is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i160_concurrent_grants_never_share_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let (h, sqlite) = file_harness(dir.path(), 8).await;
    let admin = h.admin_token().await;
    let agents: Vec<TestAgent> = (0..4)
        .map(|i| TestAgent::new(&format!("conc-{i}")))
        .collect();
    for a in &agents {
        h.register(&admin, a).await;
    }
    let h = Arc::new(h);
    let before = sqlite.write_groups_committed();
    let mut tasks = Vec::new();
    for i in 0..300usize {
        let h = h.clone();
        let admin = admin.clone();
        let body = agents[i % agents.len()].request(&["repo:read"]);
        tasks.push(tokio::spawn(async move {
            let r = h.intent(&admin, &body).await;
            assert_eq!(r.status, 200, "{r:?}");
            r.json["access_token"].as_str().unwrap().to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    let commits = sqlite.write_groups_committed() - before;
    assert!(commits <= 300, "at most one commit per grant: {commits}");
    let mut positions = HashSet::new();
    for t in &tokens {
        assert!(positions.insert(status_of(t)), "index given twice");
    }
    let lists: HashSet<i64> = positions.iter().map(|p| p.0).collect();
    assert!(lists.len() >= 300 / 8, "roll-over: {} lists", lists.len());
    assert!(positions.iter().all(|p| p.1 < 8));
    h.store.close().await;
    drop(sqlite);

    let disk = on_disk(&db).await;
    bits_match_rows(&disk);
    for t in &tokens {
        let (_, claims) = decode_unverified(t);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(disk.tokens.get(jti), Some(&status_of(t)), "{jti} lost");
        assert_eq!(
            disk.audit
                .iter()
                .filter(|a| a.2.as_deref() == Some(jti) && a.1 == "token_issued")
                .count(),
            1,
            "{jti}: one TokenIssued entry"
        );
    }
    // Reopened, the store allocates after what is stored.
    let (h2, _) = file_harness(dir.path(), 8).await;
    let r = h2.intent(&admin, &agents[0].request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!positions.contains(&status_of(r.json["access_token"].as_str().unwrap())));
    let disk = on_disk(&db).await;
    bits_match_rows(&disk);
    chain_intact(&h2, &disk).await;
}

/// I-160: a reservation is written only by `finish_token`; dropped (failed
/// signing) or abandoned by a cancelled caller, its index is given back
/// and nothing of it is stored; a full list rolls over to a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i160_dropped_or_cancelled_reservation_releases_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    // Fill one list of 8: 5 finished, 2 dropped, 1 held by a task that is
    // cancelled before finishing.
    let mut kept = Vec::new();
    let mut dropped = HashSet::new();
    for i in 0..7u64 {
        let r = store
            .reserve_token(new_token(&format!("t{i}")), 8, i * 7919)
            .await
            .unwrap();
        assert!(
            store
                .token_record(&format!("t{i}"))
                .await
                .unwrap()
                .is_none(),
            "nothing is written at reservation"
        );
        kept.push(r);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let s = store.clone();
    let task = tokio::spawn(async move {
        let r = s.reserve_token(new_token("cancelled"), 8, 3).await.unwrap();
        tx.send(r.index()).unwrap();
        std::future::pending::<()>().await;
        drop(r);
    });
    dropped.insert(rx.await.unwrap());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // Signing failed for two of them: their reservations are dropped.
    for r in [kept.remove(4), kept.remove(1)] {
        dropped.insert(r.index());
        drop(r);
    }
    let list = kept[0].index().list_id;
    let mut finished = HashSet::new();
    for r in kept {
        finished.insert(r.index());
        let jti = r.jti().to_owned();
        let entry = issued_entry(&jti);
        let rec = store.finish_token(r, Some(entry)).await.unwrap().unwrap();
        assert_eq!(rec.jti.as_deref(), Some(jti.as_str()));
    }
    assert_eq!(dropped.len(), 3);
    assert!(dropped.iter().all(|d| d.list_id == list));
    // The 3 given-back indices are the only free ones of the list.
    let mut again = HashSet::new();
    for i in 0..3u64 {
        let r = store
            .reserve_token(new_token(&format!("u{i}")), 8, i)
            .await
            .unwrap();
        again.insert(r.index());
        store.finish_token(r, None).await.unwrap();
    }
    assert_eq!(again, dropped);
    // The list is full: the next token opens a new list.
    let r = store.reserve_token(new_token("v"), 8, 0).await.unwrap();
    assert!(r.index().list_id > list);
    store.finish_token(r, None).await.unwrap();
    assert!(store.token_record("cancelled").await.unwrap().is_none());
    store.close().await;
    let disk = on_disk(&db).await;
    bits_match_rows(&disk);
    assert_eq!(disk.tokens.len(), 5 + 3 + 1);
    assert_eq!(disk.lists.len(), 2);
    assert!(disk
        .tokens
        .keys()
        .all(|j| j != "t1" && j != "t4" && j != "cancelled"));
}

/// I-160 across a restart: indices reserved but never written are free
/// again after the process is gone (nothing of them exists on disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i160_unwritten_reservations_are_free_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let held = {
        let store = SqliteStore::open(&db).await.unwrap();
        let a = store.reserve_token(new_token("a"), 8, 0).await.unwrap();
        store.finish_token(a, None).await.unwrap();
        // Reserved, never finished: simulate the crash by leaking them.
        let mut held = HashSet::new();
        for i in 0..7u64 {
            let r = store
                .reserve_token(new_token(&format!("h{i}")), 8, i)
                .await
                .unwrap();
            held.insert(r.index());
            std::mem::forget(r);
        }
        store.close().await;
        held
    };
    let store = SqliteStore::open(&db).await.unwrap();
    let mut again = HashSet::new();
    for i in 0..7u64 {
        let r = store
            .reserve_token(new_token(&format!("n{i}")), 8, i)
            .await
            .unwrap();
        again.insert(r.index());
        store.finish_token(r, None).await.unwrap();
    }
    assert_eq!(again, held, "the same list's 7 free indices");
    store.close().await;
    bits_match_rows(&on_disk(&db).await);
}
