//! `Store::reserve_token` / `Store::finish_token` (issue 15, I-160) on every
//! backend: the index given at reservation is the record's, the
//! `TokenIssued` entry is chained, concurrent reservations never share an
//! index. PostgreSQL runs the default methods (record at reservation,
//! append at finish), SQLite its one-commit override.

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
