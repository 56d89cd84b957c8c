//! One store test suite, run against every backend (issue 14): the embedded
//! SQLite store and the PostgreSQL store. Each check is an `async fn(Arc<dyn
//! Store>)` in a topic module; [`store_suite!`] instantiates it once per
//! backend, so both stores are held to the same contract (the `Store` trait's
//! documentation, §4.7.1, §4.7.2, §9.3.2, §9.1.4).
//!
//! PostgreSQL: the tests connect with `AJWT_TEST_DATABASE_URL` (a role that
//! may `CREATE DATABASE`, e.g. `postgres://ajwt:ajwt@127.0.0.1/postgres`)
//! and give each test a fresh database. Without the variable they print that
//! they were skipped and pass, except under `CI=true`, where a missing
//! database is a failure (CI never skips them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;

mod backends;

/// A fresh SQLite store in a temporary directory (a real file, as `serve`
/// uses; the directory lives as long as the returned guard).
pub async fn sqlite_store() -> (Arc<dyn Store>, Box<dyn std::any::Any + Send>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("ajwt.sqlite3"))
        .await
        .expect("open sqlite store");
    (Arc::new(store), Box::new(dir))
}

/// Instantiates each listed check for every backend: `sqlite::<name>` and
/// `postgres::<name>`.
macro_rules! store_suite {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _guard) = crate::sqlite_store().await;
                    crate::$module::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _guard)) = crate::backends::postgres_store(stringify!($name)).await else {
                        return;
                    };
                    crate::$module::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

// Topic modules (one per concern; each adds its checks to the list below).
mod limits;
mod registry;

store_suite! {
    registry::s4_7_1_registration_versions_and_latest,
    limits::i113_gcra_burst_then_one_cell_per_interval,
    limits::i113_gcra_is_atomic_under_concurrency,
    limits::i113_penalty_box_latest_block_of_any_key,
    limits::rfc9449_11_1_remember_once_refuses_a_replay,
    limits::rfc9449_11_1_remember_once_is_atomic,
    limits::i113_prune_deletes_only_what_no_longer_counts,
    limits::i114_stats_count_the_registry_and_report_the_pool,
}
