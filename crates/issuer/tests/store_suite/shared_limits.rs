//! State shared by replicas for the limits (I-113): GCRA buckets, the
//! penalty box, one-time values, pruning, on every backend.

use std::sync::Arc;

use ajwt_issuer::store::Store;

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// I-113: a bucket of `burst` cells gives `burst` takes at once, then
/// refuses with the wait until one cell is back; after that wait one more.
pub async fn i113_gcra_takes_burst_then_refuses_with_wait(store: Arc<dyn Store>) {
    let t0 = 1_000_000_000;
    for _ in 0..3 {
        assert_eq!(store.rate_limit_take("k", 3, 1000, t0).await.unwrap(), None);
    }
    let wait = store
        .rate_limit_take("k", 3, 1000, t0)
        .await
        .unwrap()
        .expect("empty bucket refuses");
    assert!(wait > 0 && wait <= 1000, "wait {wait}");
    // Other keys are independent.
    assert_eq!(
        store.rate_limit_take("k2", 3, 1000, t0).await.unwrap(),
        None
    );
    let later = t0 + i64::try_from(wait).unwrap();
    assert_eq!(
        store.rate_limit_take("k", 3, 1000, later).await.unwrap(),
        None
    );
    assert!(store
        .rate_limit_take("k", 3, 1000, later)
        .await
        .unwrap()
        .is_some());
}

/// I-113: the later `until_ms` wins; only entries after `now_ms` count.
pub async fn i113_penalty_box_latest_until_wins(store: Arc<dyn Store>) {
    store.rate_limit_block("ip:1", 500).await.unwrap();
    store.rate_limit_block("ip:1", 300).await.unwrap();
    store.rate_limit_block("client:c", 400).await.unwrap();
    let keys = vec!["ip:1".to_owned(), "client:c".to_owned(), "ip:2".to_owned()];
    assert_eq!(
        store.rate_limit_blocked_until(&keys, 100).await.unwrap(),
        Some(500)
    );
    assert_eq!(
        store
            .rate_limit_blocked_until(&["client:c".to_owned()], 100)
            .await
            .unwrap(),
        Some(400)
    );
    assert_eq!(
        store.rate_limit_blocked_until(&keys, 500).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .rate_limit_blocked_until(&["ip:2".to_owned()], 0)
            .await
            .unwrap(),
        None
    );
}

/// RFC 9449 §11.1, I-113: a one-time value is accepted once while it is
/// remembered; scopes are separate.
pub async fn i113_remember_once_refuses_replays(store: Arc<dyn Store>) {
    let until = now_ms() + 60_000;
    assert!(store.remember_once("dpop", "jti-1", until).await.unwrap());
    assert!(!store.remember_once("dpop", "jti-1", until).await.unwrap());
    assert!(store.remember_once("other", "jti-1", until).await.unwrap());
    assert!(store.remember_once("dpop", "jti-2", until).await.unwrap());
}

/// I-113: pruning deletes full buckets, expired blocks and expired values.
pub async fn i113_prune_shared_state(store: Arc<dyn Store>) {
    assert_eq!(store.rate_limit_take("b", 2, 1000, 0).await.unwrap(), None);
    store.rate_limit_block("x", 50).await.unwrap();
    store.rate_limit_block("y", 5_000).await.unwrap();
    assert!(store.remember_once("s", "v", 10).await.unwrap());
    assert_eq!(store.prune_shared_state(2_000).await.unwrap(), 3);
    assert_eq!(store.prune_shared_state(2_000).await.unwrap(), 0);
    assert_eq!(
        store
            .rate_limit_blocked_until(&["y".to_owned()], 2_000)
            .await
            .unwrap(),
        Some(5_000)
    );
}

/// I-113: two replicas share one budget: 8 concurrent takes through two
/// stores from a bucket of 4 give exactly 4; a block or a one-time value
/// recorded through one is seen through the other.
pub async fn i113_limits_are_shared_between_stores(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let t0 = 5_000_000;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.rate_limit_take("shared", 4, 60_000, t0).await.unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap().is_none());
    }
    assert_eq!(taken, 4);
    a.rate_limit_block("ip:9", t0 + 10).await.unwrap();
    assert_eq!(
        b.rate_limit_blocked_until(&["ip:9".to_owned()], t0)
            .await
            .unwrap(),
        Some(t0 + 10)
    );
    let until = now_ms() + 60_000;
    assert!(a.remember_once("dpop", "j", until).await.unwrap());
    assert!(!b.remember_once("dpop", "j", until).await.unwrap());
}
