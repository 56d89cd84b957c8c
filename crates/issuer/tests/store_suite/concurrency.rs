//! Two processes on one database (issue 14, I-115): what replicas do at the
//! same time stays consistent. Each check gets two stores (two pools; on
//! PostgreSQL also two change feeds) on one fresh database.

use std::sync::Arc;

use ajwt_checksum::AgentChecksum;
use ajwt_issuer::store::{Store, StoreError};

use crate::registry::registration;

/// §5.4.4, I-115: 20 concurrent re-registrations of one agent through two
/// stores get versions 1..=20 without gaps or repeats and unique ids.
pub async fn i115_concurrent_reregistrations_unique_gapless_versions(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for n in 0..20u8 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut r = registration("busy", 100 + n);
            // All in one second: registration ids need the I-70 suffix.
            r.registered_at_ms = 1_700_000_000_000;
            s.register_agent(r).await.unwrap()
        }));
    }
    let mut versions = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        versions.push(r.version);
        ids.push(r.registration_id);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<u32>>());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let stored = b.registrations("busy").await.unwrap();
    assert_eq!(
        stored.iter().map(|r| r.version).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<u32>>()
    );
    assert_eq!(
        a.latest_registration("busy")
            .await
            .unwrap()
            .unwrap()
            .version,
        20
    );
}

/// §5.4.2 step 3, I-115: 12 concurrent registrations of ONE checksum (six
/// agents, two attempts each, through two stores): exactly one wins, every
/// other attempt is `DuplicateChecksum` naming the winner.
pub async fn i115_duplicate_checksum_exactly_one_winner(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..12u8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut r = registration(&format!("dup-{}", i / 2), 0);
            r.checksum = AgentChecksum::digest(b"the same specification");
            s.register_agent(r).await
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => winners.push(r.agent_id),
            Err(StoreError::DuplicateChecksum { existing_agent_id }) => {
                losers.push(existing_agent_id)
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(losers.len(), 11);
    assert!(losers.iter().all(|l| *l == winners[0]), "{losers:?}");
}

/// draft-ietf-oauth-status-list, I-115: 40 tokens recorded concurrently
/// through two stores get 40 distinct (list, index) positions in exactly
/// three lists of 16.
pub async fn i115_concurrent_status_list_allocation_unique(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let r = a.register_agent(registration("tok", 90)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let reg = r.registration_id.clone();
        tasks.push(tokio::spawn(async move {
            let t = crate::tokens::token(&format!("c{i}"), "tok", &reg, 2_000_000_000);
            s.record_token(t, 16, i.wrapping_mul(2_654_435_761))
                .await
                .unwrap()
        }));
    }
    let mut positions = Vec::new();
    for t in tasks {
        let p = t.await.unwrap();
        positions.push((p.list_id, p.idx));
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 40);
    let mut lists: Vec<i64> = positions.iter().map(|p| p.0).collect();
    lists.dedup();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(a.stats().await.map(|s| s.statuses_used).unwrap_or(40), 40);
}
