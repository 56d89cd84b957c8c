//! The change feed across replicas (I-111): a registration or revocation
//! made through one PostgreSQL store invalidates the agent cache of a
//! `CachedStore` over another store on the same database. PostgreSQL only
//! (`LISTEN`/`NOTIFY`); the SQLite control shows the cache would otherwise
//! stay stale.

use std::sync::Arc;
use std::time::Duration;

use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::{AgentRecord, Store, StoreChange};

use crate::registry::registration;

/// Polls `cached.latest_registration(agent)` until `ok` holds (5 s).
async fn eventually(
    cached: &CachedStore<Arc<dyn Store>>,
    agent: &str,
    ok: impl Fn(&AgentRecord) -> bool,
) -> AgentRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = cached.latest_registration(agent).await.unwrap().unwrap();
        if ok(&r) || tokio::time::Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i111_change_on_one_replica_invalidates_the_cache_of_the_other() {
    let Some((a, b, _guard)) = crate::backends::postgres_pair("i111_change_feed_invalidates").await
    else {
        return;
    };
    // No TTL: only the change feed can make this cache see a change.
    let cached = CachedStore::with_limits(b.clone(), 100, None);
    a.register_agent(registration("feed", 1)).await.unwrap();
    assert_eq!(
        cached
            .latest_registration("feed")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    // Re-registration on replica A.
    a.register_agent(registration("feed", 2)).await.unwrap();
    let seen = eventually(&cached, "feed", |r| r.version == 2).await;
    assert_eq!(
        seen.version, 2,
        "registration through A not seen through B's cache"
    );
    // Revocation of one registration on replica A.
    a.revoke_registration(&seen.registration_id, 1)
        .await
        .unwrap()
        .unwrap();
    let seen = eventually(&cached, "feed", |r| r.revoked).await;
    assert!(seen.revoked, "registration revocation through A not seen");
    // Re-activation by an administrator, then revocation of the agent.
    let mut admin = registration("feed", 3);
    admin.may_reactivate_revoked = true;
    a.register_agent(admin).await.unwrap();
    let seen = eventually(&cached, "feed", |r| r.version == 3 && !r.revoked).await;
    assert_eq!((seen.version, seen.revoked), (3, false));
    a.revoke_agent("feed").await.unwrap();
    let seen = eventually(&cached, "feed", |r| r.revoked).await;
    assert!(seen.revoked, "agent revocation through A not seen");
    a.close().await;
    b.close().await;
}

/// I-111: after the listener's connection is lost (terminated by the
/// server), the feed says `All` once it listens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i111_listener_reconnect_sends_all() {
    let Some((a, b, guard)) = crate::backends::postgres_pair("i111_listener_reconnect").await
    else {
        return;
    };
    let mut rx = b.changes().expect("PgStore has a change feed");
    // Kill every LISTENing connection of this database (both feeds).
    let admin = std::env::var("AJWT_TEST_DATABASE_URL").unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    let db = guard
        .downcast_ref::<ajwt_test_kit::FreshDatabase>()
        .unwrap()
        .name()
        .to_owned();
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&db)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(killed >= 1, "no listening connection found");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(StoreChange::All) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(
        got,
        Ok(true),
        "no StoreChange::All after the listener reconnected"
    );
    // And the feed works again afterwards.
    a.register_agent(registration("after", 9)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(StoreChange::Agent(id)) if id == "after" => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(got, Ok(true));
    a.close().await;
    b.close().await;
}

/// Control: a SQLite store has no feed; a cache without TTL over a second
/// process's store keeps serving what it cached (why I-111 exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i111_without_a_feed_the_cache_stays_stale() {
    let (a, b, _guard) = crate::sqlite_pair().await;
    assert!(b.changes().is_none());
    let cached = CachedStore::with_limits(b.clone(), 100, None);
    a.register_agent(registration("stale", 1)).await.unwrap();
    cached.latest_registration("stale").await.unwrap().unwrap();
    a.register_agent(registration("stale", 2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = cached.latest_registration("stale").await.unwrap().unwrap();
    assert_eq!(r.version, 1);
}
