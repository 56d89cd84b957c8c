//! Shared rate limits and one-time values (I-113, I-73; RFC 9449 §11.1) on
//! every backend: the GCRA bucket of `rate_limit_take`, the penalty box
//! (`rate_limit_block`, `rate_limit_blocked_until`), `remember_once` and
//! `prune_shared_state`, as the `Store` trait documents them.

use std::sync::Arc;

use ajwt_issuer::store::Store;

const T0: i64 = 1_700_000_000_000;

/// GCRA: a burst of `burst` cells, then one cell per `interval_ms`; the
/// wait of a refusal is until the next cell; buckets are per key; a refusal
/// takes nothing.
pub async fn i113_gcra_burst_then_one_cell_per_interval(store: Arc<dyn Store>) {
    for i in 0..3 {
        assert_eq!(
            store.rate_limit_take("k", 3, 1000, T0).await.unwrap(),
            None,
            "cell {i} of the burst"
        );
    }
    assert_eq!(
        store.rate_limit_take("k", 3, 1000, T0).await.unwrap(),
        Some(1000),
        "empty: the next cell comes back in one interval"
    );
    assert_eq!(
        store.rate_limit_take("k", 3, 1000, T0 + 400).await.unwrap(),
        Some(600)
    );
    // Refusals took nothing: the cell is there at T0 + 1000, and only one.
    assert_eq!(
        store
            .rate_limit_take("k", 3, 1000, T0 + 1000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .rate_limit_take("k", 3, 1000, T0 + 1000)
            .await
            .unwrap(),
        Some(1000)
    );
    // Another key has its own bucket.
    assert_eq!(
        store.rate_limit_take("other", 3, 1000, T0).await.unwrap(),
        None
    );
    // A long pause refills the bucket to `burst`, not beyond.
    let later = T0 + 60_000;
    for _ in 0..3 {
        assert_eq!(
            store.rate_limit_take("k", 3, 1000, later).await.unwrap(),
            None
        );
    }
    assert!(store
        .rate_limit_take("k", 3, 1000, later)
        .await
        .unwrap()
        .is_some());
}

/// Concurrent takes on one key (two replicas at once) never hand out more
/// than the burst.
pub async fn i113_gcra_is_atomic_under_concurrency(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.rate_limit_take("hot", 5, 60_000, T0).await.unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap().is_none() {
            taken += 1;
        }
    }
    assert_eq!(taken, 5, "exactly the burst is taken");
}

/// The penalty box: the latest time after `now` of any key; a later block
/// wins over an earlier one, an earlier one does not shorten it.
pub async fn i113_penalty_box_latest_block_of_any_key(store: Arc<dyn Store>) {
    let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        store
            .rate_limit_blocked_until(&keys(&["a", "b"]), T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.rate_limit_blocked_until(&[], T0).await.unwrap(), None);
    store.rate_limit_block("a", T0 + 5_000).await.unwrap();
    store.rate_limit_block("b", T0 + 9_000).await.unwrap();
    store.rate_limit_block("b", T0 + 7_000).await.unwrap();
    assert_eq!(
        store
            .rate_limit_blocked_until(&keys(&["a", "b", "c"]), T0)
            .await
            .unwrap(),
        Some(T0 + 9_000)
    );
    assert_eq!(
        store
            .rate_limit_blocked_until(&keys(&["a", "c"]), T0)
            .await
            .unwrap(),
        Some(T0 + 5_000)
    );
    assert_eq!(
        store
            .rate_limit_blocked_until(&keys(&["a"]), T0 + 5_000)
            .await
            .unwrap(),
        None,
        "a block ends at its time"
    );
    assert_eq!(
        store
            .rate_limit_blocked_until(&keys(&["c"]), T0)
            .await
            .unwrap(),
        None
    );
}

/// RFC 9449 §11.1: a value is accepted once while unexpired, in its scope;
/// after it expired it may be recorded again.
pub async fn rfc9449_11_1_remember_once_refuses_a_replay(store: Arc<dyn Store>) {
    let now = now_ms();
    assert!(store
        .remember_once("dpop", "j1", now + 60_000)
        .await
        .unwrap());
    assert!(
        !store
            .remember_once("dpop", "j1", now + 60_000)
            .await
            .unwrap(),
        "replay"
    );
    assert!(
        !store
            .remember_once("dpop", "j1", now + 120_000)
            .await
            .unwrap(),
        "replay, later expiry"
    );
    assert!(
        store
            .remember_once("other", "j1", now + 60_000)
            .await
            .unwrap(),
        "scopes are apart"
    );
    assert!(store
        .remember_once("dpop", "j2", now + 60_000)
        .await
        .unwrap());
    // Expired: may be recorded again.
    assert!(store.remember_once("dpop", "old", now - 1).await.unwrap());
    assert!(store
        .remember_once("dpop", "old", now + 60_000)
        .await
        .unwrap());
    assert!(!store
        .remember_once("dpop", "old", now + 60_000)
        .await
        .unwrap());
}

/// Concurrent recordings of one value: exactly one wins.
pub async fn rfc9449_11_1_remember_once_is_atomic(store: Arc<dyn Store>) {
    let now = now_ms();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .remember_once("dpop", "same", now + 60_000)
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

/// Pruning deletes full buckets, ended blocks and expired values, and
/// nothing that still counts.
pub async fn i113_prune_deletes_only_what_no_longer_counts(store: Arc<dyn Store>) {
    let now = now_ms();
    // A bucket full again at now + 1000 (one cell taken, interval 1 s),
    // and one that stays partly empty past now + 1000.
    assert_eq!(
        store.rate_limit_take("short", 2, 1000, now).await.unwrap(),
        None
    );
    for _ in 0..2 {
        assert_eq!(
            store.rate_limit_take("long", 2, 60_000, now).await.unwrap(),
            None
        );
    }
    store.rate_limit_block("ended", now + 500).await.unwrap();
    store.rate_limit_block("live", now + 600_000).await.unwrap();
    assert!(store
        .remember_once("dpop", "gone", now + 500)
        .await
        .unwrap());
    assert!(store
        .remember_once("dpop", "kept", now + 600_000)
        .await
        .unwrap());
    let deleted = store.prune_shared_state(now + 1000).await.unwrap();
    assert_eq!(
        deleted, 3,
        "the full bucket, the ended block, the expired value"
    );
    assert_eq!(store.prune_shared_state(now + 1000).await.unwrap(), 0);
    // What is kept still counts.
    assert!(store
        .rate_limit_take("long", 2, 60_000, now + 1000)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .rate_limit_blocked_until(&["live".to_owned()], now + 1000)
            .await
            .unwrap(),
        Some(now + 600_000)
    );
    assert!(!store
        .remember_once("dpop", "kept", now + 600_000)
        .await
        .unwrap());
}

/// I-114: `stats` counts agents (distinct), registrations (all versions),
/// workflows, clients, token records and status lists, and reports the pool.
pub async fn i114_stats_count_the_registry_and_report_the_pool(store: Arc<dyn Store>) {
    use ajwt_checksum::{AgentChecksum, Profile};
    use ajwt_issuer::store::{ClientRecord, NewRegistration};
    let empty = store.stats().await.unwrap();
    assert_eq!(
        (
            empty.agents,
            empty.registrations,
            empty.workflows,
            empty.clients
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        (empty.token_records, empty.status_lists, empty.statuses_used),
        (0, 0, 0)
    );
    assert!(empty.pool_max >= 1 && empty.pool_connections <= empty.pool_max);
    assert!(empty.pool_idle <= empty.pool_connections);
    for n in 1..=2u8 {
        store
            .register_agent(NewRegistration {
                agent_id: "stats-agent".to_owned(),
                checksum: AgentChecksum::digest(&[n, 42]),
                checksum_profile: Profile::Jcs,
                public_jwk: None,
                jwk_thumbprint: None,
                allowed_scopes: None,
                app_id: None,
                spec_json: "{}".to_owned(),
                registered_at_ms: T0 + i64::from(n),
                may_reactivate_revoked: false,
            })
            .await
            .unwrap();
    }
    store
        .insert_client(&ClientRecord {
            client_id: "stats-client".to_owned(),
            secret_hash: "$sha256$00".to_owned(),
            allowed_scopes: vec!["register:intent".to_owned()],
            created_at_ms: T0,
            description: None,
        })
        .await
        .unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!((s.agents, s.registrations, s.clients), (1, 2, 1));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
