//! The connection pool of a PostgreSQL replica is bounded and a request
//! waits a bounded time for a connection (I-118). PostgreSQL only.

use std::time::{Duration, Instant};

use ajwt_issuer::config::DatabaseUrl;
use ajwt_issuer::store::postgres::{PgPoolBounds, PgStore};
use ajwt_issuer::store::{Store, StoreError};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i118_pool_is_bounded_and_acquire_times_out() {
    let Some(db) = ajwt_test_kit::fresh_postgres_database("i118_pool_bounds")
        .await
        .unwrap()
    else {
        return;
    };
    let store = PgStore::connect_with(
        &DatabaseUrl::new(db.url()),
        PgPoolBounds {
            // The change feed's listener holds one: one left for requests.
            max_connections: 2,
            acquire_timeout: Duration::from_millis(300),
        },
    )
    .await
    .unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!(s.pool_max, 2);
    assert!(s.pool_connections <= 2);

    // Another session blocks every read of the audit log.
    let mut other = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        .execute(&mut other)
        .await
        .unwrap();
    let blocked = {
        let store = store.clone();
        tokio::spawn(async move { store.audit_last(1).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The only free connection is waiting on the lock: the next request
    // fails after the acquire timeout instead of queueing without bound.
    let started = Instant::now();
    let e = store.ping().await.unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert!(blocked.await.unwrap().unwrap().is_empty());
    store.ping().await.unwrap();
    other.close().await.unwrap();
    store.close().await;
}
