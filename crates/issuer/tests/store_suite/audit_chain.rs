//! The audit chain (§9.1.4, I-100, I-104, I-115) on every backend.

use std::sync::Arc;

use ajwt_issuer::audit::{AuditCheckpoint, AuditEntry, ChainVerifier, GENESIS_HASH};
use ajwt_issuer::store::Store;

pub fn entry(n: usize) -> AuditEntry {
    let mut detail = serde_json::Map::new();
    detail.insert("n".into(), n.into());
    AuditEntry {
        time_ms: 1_700_000_000_000 + i64::try_from(n).unwrap(),
        event: "agent_registered".into(),
        client_id: Some("c".into()),
        agent_id: Some(format!("agent-{n}")),
        registration_id: None,
        jti: None,
        error_code: None,
        intent_hash: None,
        detail,
    }
}

/// Reads the whole chain page by page and verifies it.
pub async fn verify_chain(store: &Arc<dyn Store>) -> u64 {
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.audit_records(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            verifier.push(r);
        }
    }
    let report = verifier.finish();
    assert!(report.intact(), "{:?}", report.findings);
    report.records
}

/// I-100: seq 1, 2, ...; each record links to the previous one; records
/// read back equal what was returned.
pub async fn i100_audit_chain_appends_and_reads(store: Arc<dyn Store>) {
    let mut written = Vec::new();
    for n in 0..5 {
        written.push(store.append_audit(entry(n)).await.unwrap());
    }
    assert_eq!(written[0].seq, 1);
    assert_eq!(written[0].prev_hash, GENESIS_HASH);
    for w in written.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        assert_eq!(w[1].prev_hash, w[0].record_hash);
    }
    assert_eq!(store.audit_records(0, 100).await.unwrap(), written);
    assert_eq!(store.audit_last(2).await.unwrap(), written[3..].to_vec());
    assert_eq!(verify_chain(&store).await, 5);
}

/// I-104: the latest checkpoint is returned.
pub async fn i104_audit_checkpoints(store: Arc<dyn Store>) {
    assert!(store.latest_audit_checkpoint().await.unwrap().is_none());
    for seq in [3, 9] {
        store
            .append_audit_checkpoint(&AuditCheckpoint {
                seq,
                record_hash: format!("{seq:064x}"),
                signed_at_ms: 1,
                jws: format!("jws-{seq}"),
            })
            .await
            .unwrap();
    }
    let latest = store.latest_audit_checkpoint().await.unwrap().unwrap();
    assert_eq!((latest.seq, latest.jws.as_str()), (9, "jws-9"));
}

/// I-115: 50 concurrent appends through two stores (two replicas) on one
/// database form ONE valid chain of 50 records.
pub async fn i115_concurrent_appends_from_two_stores_form_one_chain(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for n in 0..50 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.append_audit(entry(n)).await }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    assert_eq!(verify_chain(&a).await, 50);
    assert_eq!(verify_chain(&b).await, 50);
}
