//! OAuth clients of the issuer (RFC 6749 §2) and the bootstrap of the
//! first one (I-68, I-116) on every backend.

use std::sync::Arc;

use ajwt_issuer::store::{ClientRecord, Store, StoreError};

pub fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        secret_hash: format!("$sha256${id}"),
        allowed_scopes: vec!["register:intent".into(), "admin:intent".into()],
        created_at_ms: 1_700_000_000_000,
        description: Some(format!("client {id}")),
    }
}

/// RFC 6749 §2: a client id is unique; clients are read back and counted.
pub async fn rfc6749_s2_clients_unique_and_counted(store: Arc<dyn Store>) {
    assert_eq!(store.client_count().await.unwrap(), 0);
    store.insert_client(&client("c1")).await.unwrap();
    assert_eq!(
        store.insert_client(&client("c1")).await.unwrap_err(),
        StoreError::ClientExists("c1".into())
    );
    store.insert_client(&client("c2")).await.unwrap();
    assert_eq!(store.client_count().await.unwrap(), 2);
    assert_eq!(store.client("c1").await.unwrap().unwrap(), client("c1"));
    assert!(store.client("c3").await.unwrap().is_none());
}

/// I-116: the first client is inserted only into an empty store.
pub async fn i116_first_client_only_on_empty_store(store: Arc<dyn Store>) {
    assert!(store.insert_first_client(&client("admin-1")).await.unwrap());
    assert!(!store.insert_first_client(&client("admin-2")).await.unwrap());
    assert_eq!(store.client_count().await.unwrap(), 1);
    assert!(store.client("admin-2").await.unwrap().is_none());
}

/// I-116: two processes bootstrapping one empty database at once create
/// exactly one first client.
pub async fn i116_first_client_race_creates_one(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.insert_first_client(&client(&format!("admin-{i}")))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(a.client_count().await.unwrap(), 1);
    assert_eq!(b.client_count().await.unwrap(), 1);
}
