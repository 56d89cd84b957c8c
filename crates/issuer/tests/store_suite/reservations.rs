//! `Store::reserve_token` / `Store::finish_token` (issue 15, I-160) on every
//! backend: the index given at reservation is the record's, the
//! `TokenIssued` entry is chained, concurrent reservations never share an
//! index. PostgreSQL records at reservation with a commit that does not
//! wait for its flush and appends (synchronously) at finish (I-189);
//! SQLite runs its one-commit override.

use std::collections::HashSet;
use std::sync::Arc;

use ajwt_issuer::store::Store;

use crate::audit_chain::{entry, verify_chain};
use crate::tokens::token;

/// I-160: 60 concurrent reserve-then-finish issuances (lists of 8): unique
/// indices, each record at its reserved index, one chain with every entry.
pub async fn i160_reserve_then_finish_records_token_and_entry(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..60usize {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let jti = format!("r-{i}");
            let r = s
                .reserve_token(
                    token(&jti, "agent-r", "reg_agent-r_1", 4_000_000_000),
                    8,
                    i as u64 * 31,
                )
                .await
                .unwrap();
            let index = r.index();
            let mut e = entry(i);
            e.event = "token_issued".into();
            e.jti = Some(jti.clone());
            let rec = s.finish_token(r, Some(e)).await.unwrap().unwrap();
            assert_eq!(rec.jti.as_deref(), Some(jti.as_str()));
            (jti, index)
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        let (jti, index) = t.await.unwrap();
        assert!(seen.insert((index.list_id, index.idx)), "index given twice");
        let rec = store.token_record(&jti).await.unwrap().unwrap();
        assert_eq!(rec.status, index);
    }
    assert!(verify_chain(&store).await >= 60);
}

/// I-160, I-189: a reservation is not durable before its finish; finished
/// without an audit entry (an embedding caller, no client), it leaves its
/// record at the reserved index.
pub async fn i189_finish_without_entry_keeps_the_record(store: Arc<dyn Store>) {
    let r = store
        .reserve_token(
            token("solo-finish", "agent-s", "reg_agent-s_1", 4_000_000_000),
            16,
            5,
        )
        .await
        .unwrap();
    let index = r.index();
    assert!(!r.is_durable(), "phase 1 alone is not durable");
    assert_eq!(store.finish_token(r, None).await.unwrap(), None);
    let rec = store.token_record("solo-finish").await.unwrap().unwrap();
    assert_eq!(rec.status, index);
    assert!(!rec.revoked);
}

/// I-189, PostgreSQL only: phase 1 commits without waiting for its flush,
/// so a finish without an audit entry must commit a logged write of its
/// own before answering. It locks the token's row: its `xmax` is 0 after
/// the reservation and set after the finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_i189_finish_without_entry_commits_a_logged_write() {
    use sqlx::Connection as _;
    let Some(db) = ajwt_test_kit::fresh_postgres_database("postgres::i189_finish_flush")
        .await
        .expect("create the test database")
    else {
        return;
    };
    let store = crate::backends::connect(db.url()).await;
    let mut raw = sqlx::PgConnection::connect(db.url()).await.unwrap();
    const XMAX: &str = "SELECT xmax::text FROM intent_tokens WHERE jti = 'flushed'";
    let r = store
        .reserve_token(
            token("flushed", "agent-f", "reg_agent-f_1", 4_000_000_000),
            16,
            1,
        )
        .await
        .unwrap();
    let before: String = sqlx::query_scalar(XMAX).fetch_one(&mut raw).await.unwrap();
    assert_eq!(before, "0");
    store.finish_token(r, None).await.unwrap();
    let after: String = sqlx::query_scalar(XMAX).fetch_one(&mut raw).await.unwrap();
    assert_ne!(after, "0", "no logged write at finish");
    raw.close().await.unwrap();
    store.close().await;
}
