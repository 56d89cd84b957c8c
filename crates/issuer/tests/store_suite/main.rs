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

/// Two SQLite stores (two pools, as two processes) on one fresh file.
pub async fn sqlite_pair() -> (
    Arc<dyn Store>,
    Arc<dyn Store>,
    Box<dyn std::any::Any + Send>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ajwt.sqlite3");
    let a = SqliteStore::open(&path).await.expect("open sqlite store");
    let b = SqliteStore::open(&path).await.expect("open sqlite store");
    (Arc::new(a), Arc::new(b), Box::new(dir))
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

/// Instantiates each listed two-store check (`async fn(Arc<dyn Store>,
/// Arc<dyn Store>)`: two processes on one database) for every backend:
/// `sqlite_pair::<name>` and `postgres_pair::<name>`.
macro_rules! store_suite_pair {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite_pair {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (a, b, _guard) = crate::sqlite_pair().await;
                    crate::$module::$name(a.clone(), b.clone()).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
        mod postgres_pair {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((a, b, _guard)) = crate::backends::postgres_pair(stringify!($name)).await else {
                        return;
                    };
                    crate::$module::$name(a.clone(), b.clone()).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
    };
}

// Topic modules (one per concern; each adds its checks to the list below).
mod limits;
mod registry;
mod reservations;
// Issue 14, the PostgreSQL work: the rest of the contract and concurrency.
mod audit_chain;
mod change_feed;
mod clients;
mod concurrency;
// Issue 15: group commit (I-155).
mod group_commit;
mod key_set;
mod keys;
mod pool;
mod sealed;
mod shared_limits;
mod stats;
mod tokens;
mod workflows;

store_suite! {
    registry::s4_7_1_registration_versions_and_latest,
    registry::s5_6_1_revocation_blocks_reregistration_unless_admin,
    registry::s5_4_2_registration_ids_unique_within_one_second,
    workflows::s4_7_2_workflows_are_immutable,
    clients::rfc6749_s2_clients_unique_and_counted,
    clients::i116_first_client_only_on_empty_store,
    tokens::s9_3_2_token_records_status_lists_and_cascade,
    tokens::s9_3_2_registration_revocation_cascades,
    tokens::i83_prune_deletes_expired_records_and_full_lists,
    audit_chain::i100_audit_chain_appends_and_reads,
    audit_chain::i104_audit_checkpoints,
    shared_limits::i113_gcra_takes_burst_then_refuses_with_wait,
    shared_limits::i113_penalty_box_latest_until_wins,
    shared_limits::i113_remember_once_refuses_replays,
    shared_limits::i113_prune_shared_state,
    stats::i114_stats_count_everything,
    key_set::i112_sealed_values_page_and_compare_and_swap,
    key_set::i110_signing_keys_change_atomically,
    keys::i110_signing_keys_insert_read_back_and_set_retires_at,
    keys::i110_retire_deletes_the_private_key_and_keeps_the_record,
    keys::i110_retired_records_are_bounded,
    keys::i110_insert_unless_pending_after_refuses_and_writes_nothing,
    keys::i110_concurrent_guarded_rotations_apply_exactly_one,
    sealed::i112_specifications_are_sealed_in_the_backend,
    sealed::i112_value_moved_to_another_row_is_refused,
    sealed::i112_replace_sealed_value_is_compare_and_swap,
    sealed::i128_legacy_plaintext_is_sealed_at_start,
    sealed::i126_kek_rotation_rewraps_every_value,
    sealed::i112_private_keys_are_sealed_in_the_backend,
    sealed::i158_start_check_counts_envelope_heads,
    limits::i113_gcra_burst_then_one_cell_per_interval,
    limits::i113_gcra_is_atomic_under_concurrency,
    limits::i113_penalty_box_latest_block_of_any_key,
    limits::rfc9449_11_1_remember_once_refuses_a_replay,
    limits::rfc9449_11_1_remember_once_is_atomic,
    limits::i113_prune_deletes_only_what_no_longer_counts,
    limits::i114_stats_count_the_registry_and_report_the_pool,
    group_commit::i155_cancelled_callers_do_not_lose_other_writes,
    group_commit::i159_duplicate_jti_fails_only_its_caller,
    group_commit::i188_jti_repeated_within_a_group_is_recorded_once,
    group_commit::i188_group_keeps_links_and_activity,
    reservations::i160_reserve_then_finish_records_token_and_entry,
    reservations::i189_finish_without_entry_keeps_the_record,
}

store_suite_pair! {
    concurrency::i115_concurrent_reregistrations_unique_gapless_versions,
    concurrency::i115_duplicate_checksum_exactly_one_winner,
    concurrency::i115_concurrent_status_list_allocation_unique,
    audit_chain::i115_concurrent_appends_from_two_stores_form_one_chain,
    clients::i116_first_client_race_creates_one,
    key_set::i110_concurrent_rotations_one_pending_exists,
    shared_limits::i113_limits_are_shared_between_stores,
    group_commit::i155_concurrent_writers_each_get_their_outcome,
}
