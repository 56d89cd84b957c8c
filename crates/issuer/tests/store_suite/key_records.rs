//! Signing-key changes across two stores (I-110) and sealed values (§9.1.4, I-112) on every backend.

use std::sync::Arc;

use ajwt_issuer::store::{
    KeyChange, KeyChangeOutcome, SealedKind, Store, StoredSigningKey, MAX_RETIRED_KEY_RECORDS,
};

use crate::registry::registration;

pub fn key(kid: &str, created_at: u64, activates_at: u64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        alg: "ES256".into(),
        created_at,
        activates_at,
        retires_at: None,
        retired_at: None,
        private_key_pem: Some(format!("sealed:{kid}")),
    }
}

fn insert(k: StoredSigningKey, unless_pending_after: Option<u64>) -> KeyChange {
    KeyChange {
        insert: Some(k),
        insert_unless_pending_after: unless_pending_after,
        ..KeyChange::default()
    }
}

/// I-110: a key change is applied as a whole; a rotation while a key is
/// pending writes nothing (`PendingExists`); a retired key keeps no
/// private key; at most MAX_RETIRED_KEY_RECORDS retired records stay.
pub async fn i110_signing_keys_change_atomically(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let out = store
        .apply_key_change(insert(key("k1", 100, 100), None))
        .await;
    assert_eq!(out.unwrap(), KeyChangeOutcome::Applied);
    let rotate = KeyChange {
        set_retires_at: vec![("k1".into(), 400)],
        ..insert(key("k2", 200, 300), Some(200))
    };
    assert_eq!(
        store.apply_key_change(rotate).await.unwrap(),
        KeyChangeOutcome::Applied
    );
    // k2 is pending (activates 300 > 210): nothing of this change is written.
    let again = KeyChange {
        set_retires_at: vec![("k1".into(), 999)],
        ..insert(key("k3", 210, 310), Some(210))
    };
    assert_eq!(
        store.apply_key_change(again).await.unwrap(),
        KeyChangeOutcome::PendingExists
    );
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(keys[0].retires_at, Some(400));
    let retire = KeyChange {
        retire: vec![("k1".into(), 500)],
        ..KeyChange::default()
    };
    store.apply_key_change(retire).await.unwrap();
    let k1 = store.signing_keys().await.unwrap().remove(0);
    assert_eq!((k1.retired_at, k1.private_key_pem), (Some(500), None));

    for i in 0..20u64 {
        let kid = format!("old-{i:02}");
        store
            .apply_key_change(KeyChange {
                insert: Some(key(&kid, 1_000 + i, 1_000 + i)),
                retire: vec![(kid.clone(), 2_000 + i)],
                ..KeyChange::default()
            })
            .await
            .unwrap();
    }
    let keys = store.signing_keys().await.unwrap();
    let retired = keys.iter().filter(|k| k.retired_at.is_some()).count();
    assert_eq!(retired, MAX_RETIRED_KEY_RECORDS);
    assert!(keys.iter().any(|k| k.kid == "k2" && k.retired_at.is_none()));
    // The newest retired records are kept.
    assert!(keys.iter().any(|k| k.kid == "old-19"));
}

/// I-110: rotations racing on two replicas add exactly one key.
pub async fn i110_concurrent_rotations_one_pending_exists(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.apply_key_change(insert(key("base", 10, 10), None))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..4u64 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.apply_key_change(insert(key(&format!("next-{i}"), 100, 200), Some(100)))
                .await
                .unwrap()
        }));
    }
    let mut applied = 0;
    for t in tasks {
        if t.await.unwrap() == KeyChangeOutcome::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(b.signing_keys().await.unwrap().len(), 2);
}

/// I-112: sealed values are paged in id order and replaced only when
/// unchanged (compare-and-swap), for specifications and private keys.
pub async fn i112_sealed_values_page_and_compare_and_swap(store: Arc<dyn Store>) {
    let mut checksums = Vec::new();
    for n in 80..85u8 {
        let r = store
            .register_agent(registration(&format!("z{n}"), n))
            .await
            .unwrap();
        checksums.push(r.checksum.to_string());
    }
    checksums.sort();
    let first = store
        .sealed_values(SealedKind::Specification, "", 3)
        .await
        .unwrap();
    let rest = store
        .sealed_values(SealedKind::Specification, &first[2].0, 3)
        .await
        .unwrap();
    let ids: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(ids, checksums);
    let (id, old) = first[0].clone();
    assert!(store
        .replace_sealed_value(SealedKind::Specification, &id, &old, "sealed-new")
        .await
        .unwrap());
    assert!(!store
        .replace_sealed_value(SealedKind::Specification, &id, &old, "sealed-other")
        .await
        .unwrap());
    let again = store
        .sealed_values(SealedKind::Specification, "", 1)
        .await
        .unwrap();
    assert_eq!(again[0], (id, "sealed-new".to_owned()));

    store
        .apply_key_change(insert(key("kb", 1, 1), None))
        .await
        .unwrap();
    store
        .apply_key_change(insert(key("ka", 2, 2), None))
        .await
        .unwrap();
    store
        .apply_key_change(KeyChange {
            insert: Some(key("kc", 3, 3)),
            retire: vec![("kc".into(), 4)],
            ..KeyChange::default()
        })
        .await
        .unwrap();
    let keys = store
        .sealed_values(SealedKind::SigningKey, "", 10)
        .await
        .unwrap();
    // Retired keys have no private key left to re-seal.
    assert_eq!(
        keys,
        vec![
            ("ka".to_owned(), "sealed:ka".to_owned()),
            ("kb".to_owned(), "sealed:kb".to_owned())
        ]
    );
    assert!(store
        .replace_sealed_value(SealedKind::SigningKey, "ka", "sealed:ka", "resealed")
        .await
        .unwrap());
    assert!(!store
        .replace_sealed_value(SealedKind::SigningKey, "ka", "sealed:ka", "x")
        .await
        .unwrap());
}
