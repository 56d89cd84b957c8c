//! Backends other than SQLite for the store suite.

use std::sync::Arc;

use ajwt_issuer::config::DatabaseUrl;
use ajwt_issuer::store::postgres::{PgPoolBounds, PgStore};
use ajwt_issuer::store::Store;
use ajwt_test_kit::fresh_postgres_database;

/// Pool bound of a test store: the suite runs tests in parallel against one
/// server (max_connections 100 by default, 300 after `.ci/postgres.sh`).
const TEST_POOL: u32 = 6;

/// Opens a PgStore on `url` with the test pool bound.
pub async fn connect(url: &str) -> PgStore {
    PgStore::connect_with(
        &DatabaseUrl::new(url),
        PgPoolBounds {
            max_connections: TEST_POOL,
            ..PgPoolBounds::default()
        },
    )
    .await
    .expect("connect to the test database")
}

/// A store on a fresh PostgreSQL database named after the test (dropped
/// with the guard), or `None` (printed as skipped) when
/// `AJWT_TEST_DATABASE_URL` is not set; under `CI=true` a missing URL
/// panics: CI never skips these tests.
pub async fn postgres_store(test: &str) -> Option<(Arc<dyn Store>, Box<dyn std::any::Any + Send>)> {
    let db = fresh_postgres_database(&format!("postgres::{test}"))
        .await
        .expect("create the test database")?;
    let store = connect(db.url()).await;
    Some((Arc::new(store), Box::new(db)))
}

/// Two stores (two pools, two change feeds: two replicas) on one fresh
/// PostgreSQL database, or `None` as [`postgres_store`].
pub async fn postgres_pair(
    test: &str,
) -> Option<(
    Arc<dyn Store>,
    Arc<dyn Store>,
    Box<dyn std::any::Any + Send>,
)> {
    let db = fresh_postgres_database(&format!("postgres::{test}"))
        .await
        .expect("create the test database")?;
    let a = connect(db.url()).await;
    let b = connect(db.url()).await;
    Some((Arc::new(a), Arc::new(b), Box::new(db)))
}
