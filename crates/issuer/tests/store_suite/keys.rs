//! The issuer's signing keys in the store (I-110, I-90) on every backend:
//! `signing_keys` and `apply_key_change` as the `Store` trait documents them.

use std::sync::Arc;

use ajwt_issuer::store::{
    KeyChange, KeyChangeOutcome, Store, StoredSigningKey, MAX_RETIRED_KEY_RECORDS,
};

/// A live key record (the store does not parse the PEM: above the sealing
/// decorator it is the plaintext key, below it the sealed text).
fn key(kid: &str, activates_at: u64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        created_at: activates_at.saturating_sub(1),
        activates_at,
        retires_at: None,
        retired_at: None,
        private_key_pem: Some(format!(
            "-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"
        )),
    }
}

fn insert(k: StoredSigningKey) -> KeyChange {
    KeyChange {
        insert: Some(k),
        ..KeyChange::default()
    }
}

async fn apply(store: &Arc<dyn Store>, change: KeyChange) -> KeyChangeOutcome {
    store.apply_key_change(change).await.unwrap()
}

/// I-110: inserted keys come back as written, oldest (activation) first;
/// `retires_at` updates touch the named live key only.
pub async fn i110_signing_keys_insert_read_back_and_set_retires_at(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let (k1, k2) = (key("k-b", 1_000), key("k-a", 2_000));
    assert_eq!(
        apply(&store, insert(k2.clone())).await,
        KeyChangeOutcome::Applied
    );
    assert_eq!(
        apply(&store, insert(k1.clone())).await,
        KeyChangeOutcome::Applied
    );
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [k1.clone(), k2.clone()]
    );
    let change = KeyChange {
        set_retires_at: vec![("k-b".to_owned(), 5_000)],
        ..KeyChange::default()
    };
    assert_eq!(apply(&store, change).await, KeyChangeOutcome::Applied);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys[0].retires_at, Some(5_000));
    assert_eq!(keys[1], k2);
    // Large times (u32 overflow) round-trip.
    let far = key("k-far", 10_000_000_000);
    apply(&store, insert(far.clone())).await;
    assert_eq!(store.signing_keys().await.unwrap()[2], far);
}

/// I-90, I-110: retiring a key deletes its private key and keeps its public
/// record (`retired_at` set); a retired key's `retires_at` is not changed.
pub async fn i110_retire_deletes_the_private_key_and_keeps_the_record(store: Arc<dyn Store>) {
    let old = StoredSigningKey {
        retires_at: Some(3_000),
        ..key("old", 1_000)
    };
    let new = key("new", 2_000);
    apply(&store, insert(old.clone())).await;
    apply(&store, insert(new.clone())).await;
    let change = KeyChange {
        retire: vec![("old".to_owned(), 3_001)],
        ..KeyChange::default()
    };
    assert_eq!(apply(&store, change).await, KeyChangeOutcome::Applied);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys[0],
        StoredSigningKey {
            private_key_pem: None,
            retired_at: Some(3_001),
            ..old
        }
    );
    assert_eq!(keys[1], new);
    // Retiring again, or moving a retired key's retires_at, changes nothing.
    let change = KeyChange {
        set_retires_at: vec![("old".to_owned(), 9_999)],
        retire: vec![("old".to_owned(), 4_000)],
        ..KeyChange::default()
    };
    apply(&store, change).await;
    assert_eq!(store.signing_keys().await.unwrap(), keys);
    // Re-inserting a stored kid (a resumed import) changes nothing: the
    // retired key is not revived with a private key (I-122).
    apply(&store, insert(key("old", 1_000))).await;
    assert_eq!(store.signing_keys().await.unwrap(), keys);
}

/// I-90: at most `MAX_RETIRED_KEY_RECORDS` retired records are kept, the
/// latest retired; live keys are never dropped.
pub async fn i110_retired_records_are_bounded(store: Arc<dyn Store>) {
    let n = MAX_RETIRED_KEY_RECORDS as u64 + 3;
    for i in 0..n {
        apply(&store, insert(key(&format!("k{i:02}"), 100 + i))).await;
    }
    apply(&store, insert(key("live", 10_000))).await;
    for i in 0..n {
        let change = KeyChange {
            retire: vec![(format!("k{i:02}"), 1_000 + i)],
            ..KeyChange::default()
        };
        apply(&store, change).await;
    }
    let keys = store.signing_keys().await.unwrap();
    let retired: Vec<&str> = keys
        .iter()
        .filter(|k| k.retired_at.is_some())
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(retired.len(), MAX_RETIRED_KEY_RECORDS);
    assert_eq!(retired[0], "k03", "the earliest retired went first");
    assert!(keys
        .iter()
        .any(|k| k.kid == "live" && k.private_key_pem.is_some()));
}

/// I-110: with `insert_unless_pending_after = t`, a live key activating
/// after `t` refuses the whole change (`PendingExists`, nothing written);
/// otherwise it is applied.
pub async fn i110_insert_unless_pending_after_refuses_and_writes_nothing(store: Arc<dyn Store>) {
    let current = key("current", 1_000);
    let pending = key("pending", 2_000);
    apply(&store, insert(current)).await;
    apply(&store, insert(pending)).await;
    let before = store.signing_keys().await.unwrap();
    let change = KeyChange {
        insert: Some(key("racer", 2_500)),
        insert_unless_pending_after: Some(1_500),
        set_retires_at: vec![("current".to_owned(), 7_000)],
        retire: vec![("current".to_owned(), 1_500)],
    };
    assert_eq!(
        apply(&store, change.clone()).await,
        KeyChangeOutcome::PendingExists
    );
    assert_eq!(store.signing_keys().await.unwrap(), before);
    // Once that key has activated (t >= its activation), the insert goes in.
    let change = KeyChange {
        insert_unless_pending_after: Some(2_000),
        retire: Vec::new(),
        ..change
    };
    assert_eq!(apply(&store, change).await, KeyChangeOutcome::Applied);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0].retires_at, Some(7_000));
    // A retired key does not count as pending.
    let retire = KeyChange {
        retire: vec![("racer".to_owned(), 2_100)],
        ..KeyChange::default()
    };
    apply(&store, retire).await;
    let change = KeyChange {
        insert: Some(key("after-retired", 3_000)),
        insert_unless_pending_after: Some(2_000),
        ..KeyChange::default()
    };
    assert_eq!(apply(&store, change).await, KeyChangeOutcome::Applied);
}

/// I-110: replicas rotating at once, each with the pending guard, add
/// exactly one key: one `Applied`, the others `PendingExists`.
pub async fn i110_concurrent_guarded_rotations_apply_exactly_one(store: Arc<dyn Store>) {
    apply(&store, insert(key("current", 1_000))).await;
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let change = KeyChange {
                insert: Some(key(&format!("next-{i}"), 2_000 + i)),
                insert_unless_pending_after: Some(1_500),
                set_retires_at: vec![("current".to_owned(), 9_000 + i)],
                ..KeyChange::default()
            };
            store.apply_key_change(change).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let applied = outcomes
        .iter()
        .filter(|o| **o == KeyChangeOutcome::Applied)
        .count();
    assert_eq!(applied, 1, "{outcomes:?}");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let winner = keys[1].kid.strip_prefix("next-").unwrap();
    assert_eq!(
        keys[0].retires_at,
        Some(9_000 + winner.parse::<u64>().unwrap()),
        "only the winner's retires_at was written"
    );
}
