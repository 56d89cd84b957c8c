//! Publish-then-sign key rotation (I-90) through the admin hook and the
//! schedule, on the issuer's (test) clock: the new key is in the JWK Set at
//! once and signs only after the publish delay; the key it replaces stays
//! published until every token it signed has expired (longest lifetime +
//! leeway), then leaves the JWK Set. The keys live in the store (I-110):
//! replicas over one database publish a key rotated on another before it
//! signs, verify each other's tokens, and add one key when they rotate at
//! once. The concurrent run over TCP is in
//! `crates/verifier/tests/key_rotation_e2e.rs`, the CLI in
//! `crates/cli/tests/keys_cli.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::keys::SigningAlgorithm;
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use common::*;
use serde_json::json;

const ROTATE: &str = "/intent/admin/rotate-keys";

fn header_kid(token: &str) -> String {
    let (header, _) = decode_unverified(token);
    header["kid"].as_str().unwrap().to_owned()
}

/// The defaults: a 300 s JWKS max-age and publish delay; intent tokens
/// 300 s, client tokens 3600 s, leeway 60 s.
fn publish_first() -> IssuerConfig {
    IssuerConfig {
        jwks_max_age: 300,
        key_publish_delay: 300,
        ..test_config()
    }
}

#[tokio::test]
async fn i90_admin_rotation_publishes_first_signs_after_the_delay_and_retires_after_the_last_token()
{
    let h = Harness::with_config(publish_first()).await;
    let ops = h.token_with_scopes(&["admin:intent"]).await;
    let old = h.issuer.key_ring().current_kid().to_owned();
    let jwks = h.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));

    let r = h.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new = r.json["kid"].as_str().unwrap().to_owned();
    let t0 = u64::try_from(h.now()).unwrap();
    assert_eq!(r.json["previous_kid"], old.as_str());
    assert_eq!(r.json["state"], "next");
    assert_eq!(r.json["already_pending"], false);
    // The delay (300 s = max-age) rounded up to a whole second.
    assert_eq!(r.json["activates_at"], t0 + 301);
    // Longest token lifetime (client tokens, 3600 s) + leeway (60 s).
    assert_eq!(r.json["previous_retires_at"], t0 + 301 + 3660);

    // Published at once; the old key still signs.
    assert_eq!(kids(&h.jwks().await), [old.clone(), new.clone()]);
    assert_eq!(header_kid(&h.admin_token().await), old);
    // Asking again while the key is pending adds none.
    let again = h.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(again.json["kid"], new.as_str());
    assert_eq!(again.json["already_pending"], true);
    assert_eq!(kids(&h.jwks().await).len(), 2);

    h.advance(300);
    assert_eq!(header_kid(&h.admin_token().await), old, "one second early");
    h.advance(1);
    let signed_by_new = h.admin_token().await;
    assert_eq!(header_kid(&signed_by_new), new);
    assert_eq!(kids(&h.jwks().await), [new.clone(), old.clone()]);
    // Tokens of the old key are accepted on until they expire.
    let old_token = ops.clone();
    let r = h.post_json(ROTATE, Some(&old_token), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["previous_kid"], new.as_str());
    let newest = r.json["kid"].as_str().unwrap().to_owned();

    // One second before retirement the old key is published, then not.
    h.advance(3659);
    assert!(kids(&h.jwks().await).contains(&old));
    h.advance(1);
    let published = kids(&h.jwks().await);
    assert!(!published.contains(&old), "{published:?}");
    assert_eq!(published, [newest, new]);
}

#[tokio::test]
async fn i90_scheduled_rotation_starts_the_next_key_one_interval_after_the_current() {
    let h = Harness::with_config(IssuerConfig {
        key_rotation_interval: 1000,
        ..publish_first()
    })
    .await;
    let first = h.issuer.key_ring().current_kid().to_owned();
    let activated = h.issuer.key_ring().current_activated_at();
    let t0 = u64::try_from(h.now()).unwrap();
    h.issuer.maintain_keys().await.unwrap();
    assert_eq!(h.issuer.key_ring().kids().len(), 1, "not due yet");
    // Due when the interval minus the publish delay has passed.
    h.advance(i64::try_from(activated + 700 - t0).unwrap() - 1);
    h.issuer.maintain_keys().await.unwrap();
    assert_eq!(h.issuer.key_ring().kids().len(), 1);
    h.advance(1);
    h.issuer.maintain_keys().await.unwrap();
    let ring = h.issuer.key_ring();
    assert_eq!(ring.kids().len(), 2);
    assert_eq!(ring.current_kid(), first);
    assert!(ring.has_pending());
    // Running again while a key is pending adds none.
    h.issuer.maintain_keys().await.unwrap();
    assert_eq!(h.issuer.key_ring().kids().len(), 2);
    h.advance(301);
    let ring = h.issuer.key_ring();
    assert_ne!(ring.current_kid(), first);
    assert_eq!(ring.current_activated_at(), activated + 1001);
}

#[test]
fn i90_configuration_keeps_the_publish_delay_at_least_the_max_age() {
    use ajwt_issuer::config::FileConfig;
    let resolve = |toml: &str| {
        FileConfig::from_toml_str(toml)
            .unwrap()
            .resolve(FileConfig::default())
    };
    let c = resolve("").unwrap();
    assert_eq!((c.jwks_max_age, c.key_publish_delay), (300, 300));
    assert_eq!((c.key_rotation_interval, c.key_retire_leeway), (0, 60));
    // The delay follows the max-age unless set.
    let c = resolve("jwks_max_age = 60").unwrap();
    assert_eq!(c.key_publish_delay, 60);
    let policy = c.rotation_policy();
    assert_eq!(policy.publish_delay, 60);
    assert_eq!(policy.retire_after, 3600 + 60, "client tokens live longest");
    for bad in [
        "jwks_max_age = 600\nkey_publish_delay = 300",
        "key_rotation_interval = 300",
        "key_retire_leeway = 3601",
        "jwks_max_age = 86401\nkey_publish_delay = 86401",
    ] {
        assert!(resolve(bad).is_err(), "{bad}");
    }
    assert!(resolve("key_rotation_interval = 86400").is_ok());
}

/// Another connection pool to the SQLite file `path`: what a second
/// `ajwt serve` on the same database has.
async fn file_store(path: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(CachedStore::new(SqliteStore::open(path).await.unwrap()))
}

#[tokio::test]
async fn i110_replicas_share_keys_publish_before_signing_and_verify_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ajwt.sqlite3");
    let a = Harness::with_store(
        publish_first(),
        file_store(&path).await,
        SigningAlgorithm::Es256,
    )
    .await;
    let b = a.replica(file_store(&path).await).await;
    // One key, the same on both (B loaded what A created).
    let first = a.issuer.key_ring().current_kid().to_owned();
    assert_eq!(b.issuer.key_ring().kids(), std::slice::from_ref(&first));
    assert_eq!(kids(&b.jwks().await), std::slice::from_ref(&first));
    let from_b = b.admin_token().await;
    assert_eq!(
        a.issuer.key_ring().verify(&from_b, "at+jwt").unwrap()["iss"],
        a.config.issuer
    );

    // Rotate through A.
    let ops = a.token_with_scopes(&["admin:intent"]).await;
    let r = a.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new = r.json["kid"].as_str().unwrap().to_owned();
    let activates_at = r.json["activates_at"].as_u64().unwrap();
    assert_eq!(kids(&a.jwks().await), [first.clone(), new.clone()]);
    // B publishes it at its next key maintenance, before it signs anywhere
    // (one server process per SQLite file: no extra delay, I-120).
    assert_eq!(kids(&b.jwks().await), std::slice::from_ref(&first));
    b.issuer.maintain_keys().await.unwrap();
    assert_eq!(kids(&b.jwks().await), [first.clone(), new.clone()]);
    let published_at = u64::try_from(b.now()).unwrap();
    // Still the whole publish delay (jwks_max_age) before it signs (I-90).
    assert!(
        activates_at >= published_at + a.config.jwks_max_age,
        "{activates_at} vs {published_at}"
    );
    assert_eq!(header_kid(&b.admin_token().await), first);
    assert_eq!(header_kid(&a.admin_token().await), first);

    // At activation both sign with the new key and verify each other.
    a.advance(i64::try_from(activates_at).unwrap() - a.now());
    let by_a = a.admin_token().await;
    let by_b = b.admin_token().await;
    assert_eq!(header_kid(&by_a), new);
    assert_eq!(header_kid(&by_b), new);
    b.issuer.key_ring().verify(&by_a, "at+jwt").unwrap();
    a.issuer.key_ring().verify(&by_b, "at+jwt").unwrap();
    // Over HTTP too: B accepts A's token as a bearer token.
    let r = b
        .post_json(
            ROTATE,
            Some(&a.token_with_scopes(&["admin:intent"]).await),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["previous_kid"], new.as_str());
    // The old key's token from before the rotation still verifies on both.
    b.issuer.key_ring().verify(&from_b, "at+jwt").unwrap();
    a.issuer.maintain_keys().await.unwrap();
    a.issuer.key_ring().verify(&from_b, "at+jwt").unwrap();
    assert_eq!(a.issuer.key_ring().kids(), b.issuer.key_ring().kids());

    // A restart (a third connection) loads the same keys.
    let c = a.replica(file_store(&path).await).await;
    assert_eq!(c.issuer.key_ring().kids(), a.issuer.key_ring().kids());
    assert_eq!(c.issuer.key_ring().current_kid(), new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i110_replicas_rotating_at_once_add_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ajwt.sqlite3");
    let a = Harness::with_store(
        publish_first(),
        file_store(&path).await,
        SigningAlgorithm::Es256,
    )
    .await;
    let b = a.replica(file_store(&path).await).await;
    let ops = a.token_with_scopes(&["admin:intent"]).await;
    let body = json!({});
    let (ra, rb) = tokio::join!(
        a.post_json(ROTATE, Some(&ops), &body),
        b.post_json(ROTATE, Some(&ops), &body)
    );
    assert_eq!((ra.status, rb.status), (200, 200), "{ra:?} {rb:?}");
    // Exactly one added a key; the other returned it as pending.
    let pending = [&ra, &rb]
        .iter()
        .filter(|r| r.json["already_pending"] == true)
        .count();
    assert_eq!(pending, 1, "{:?} {:?}", ra.json, rb.json);
    assert_eq!(ra.json["kid"], rb.json["kid"]);
    let stored = a.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    b.issuer.maintain_keys().await.unwrap();
    a.issuer.maintain_keys().await.unwrap();
    assert_eq!(kids(&a.jwks().await), kids(&b.jwks().await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i110_replicas_starting_together_on_an_empty_database_share_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ajwt.sqlite3");
    let (s1, s2) = (file_store(&path).await, file_store(&path).await);
    let policy = test_config().rotation_policy();
    let load = |s: Arc<dyn Store>| async move {
        ajwt_issuer::key_store::load(&*s, None, SigningAlgorithm::Es256, policy, 1_700_000_000)
            .await
            .unwrap()
    };
    let (k1, k2) = tokio::join!(load(s1.clone()), load(s2.clone()));
    assert_eq!(k1.kids(), k2.kids());
    assert_eq!(k1.kids().len(), 1);
    assert_eq!(s1.signing_keys().await.unwrap().len(), 1);
}

/// Writes a format-1 key file (an issuer from before I-110) under
/// `<data_dir>/signing-keys/` and returns its kid.
fn legacy_key_file(data_dir: &std::path::Path, created_at: u64) -> String {
    let key = ajwt_jose::SigningKey::generate(ajwt_jose::Alg::Es256).unwrap();
    let dir = data_dir.join(ajwt_issuer::keys::KEY_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let doc = json!({"kid": key.thumbprint(), "alg": "ES256", "created_at": created_at,
                     "private_key_pem": key.to_pkcs8_pem().unwrap()});
    std::fs::write(
        dir.join(format!("{}.json", key.thumbprint())),
        doc.to_string(),
    )
    .unwrap();
    key.thumbprint()
}

#[tokio::test]
async fn i121_legacy_files_are_not_imported_into_a_store_with_other_keys() {
    use ajwt_issuer::key_store::import_legacy;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A store with its own key: the files stay, nothing is imported.
    let h = Harness::new().await;
    let data = tempfile::tempdir().unwrap();
    let kid = legacy_key_file(data.path(), now - 10);
    assert_eq!(import_legacy(&*h.store, data.path()).await.unwrap(), 0);
    let key_dir = data.path().join(ajwt_issuer::keys::KEY_DIR);
    assert!(key_dir.join(format!("{kid}.json")).exists());
    let stored = h.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].kid, kid);

    // An interrupted import (one of two keys stored) resumes: the other
    // key goes in, then the files are deleted.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let second = legacy_key_file(data.path(), now - 5);
    let first_record = ajwt_issuer::keys::LegacyKeyFiles::read(data.path())
        .unwrap()
        .unwrap()
        .keys
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap();
    store
        .apply_key_change(ajwt_issuer::store::KeyChange {
            insert: Some(first_record),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(import_legacy(&*store, data.path()).await.unwrap(), 1);
    assert!(!key_dir.exists());
    let mut kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    kids.sort();
    let mut expected = vec![kid, second];
    expected.sort();
    assert_eq!(kids, expected);
}

/// Two replicas on one PostgreSQL database (skipped without
/// `AJWT_TEST_DATABASE_URL`, except under CI): a key rotated on A is
/// published on B at its next key maintenance and still for the whole
/// publish delay before it signs, because the rotation adds the
/// maintenance interval on a store shared by processes (I-120); both then
/// sign with it and verify each other's tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i110_i120_postgres_replicas_publish_a_rotated_key_for_the_whole_delay() {
    use ajwt_issuer::config::DatabaseUrl;
    use ajwt_issuer::service::KEY_MAINTENANCE_INTERVAL;
    use ajwt_issuer::store::postgres::{PgPoolBounds, PgStore};
    let Some(db) = ajwt_test_kit::fresh_postgres_database("key_rotation::postgres_replicas")
        .await
        .unwrap()
    else {
        return;
    };
    let connect = || async {
        let store = PgStore::connect_with(
            &DatabaseUrl::new(db.url()),
            PgPoolBounds {
                max_connections: 4,
                ..PgPoolBounds::default()
            },
        )
        .await
        .unwrap();
        Arc::new(CachedStore::new(store)) as Arc<dyn Store>
    };
    let a = Harness::with_store(publish_first(), connect().await, SigningAlgorithm::Es256).await;
    let b = a.replica(connect().await).await;
    let first = a.issuer.key_ring().current_kid().to_owned();
    assert_eq!(b.issuer.key_ring().kids(), std::slice::from_ref(&first));

    let ops = a.token_with_scopes(&["admin:intent"]).await;
    let r = a.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new = r.json["kid"].as_str().unwrap().to_owned();
    let t0 = u64::try_from(a.now()).unwrap();
    // 300 s publish delay + the 5 s maintenance interval, rounded up.
    assert_eq!(
        r.json["activates_at"],
        t0 + 300 + KEY_MAINTENANCE_INTERVAL + 1
    );
    // B publishes it at its next maintenance, at most 5 s later...
    a.advance(i64::try_from(KEY_MAINTENANCE_INTERVAL).unwrap());
    assert_eq!(kids(&b.jwks().await), std::slice::from_ref(&first));
    b.issuer.maintain_keys().await.unwrap();
    assert_eq!(kids(&b.jwks().await), [first.clone(), new.clone()]);
    // ... still a whole max-age before the key signs.
    let activates_at = r.json["activates_at"].as_u64().unwrap();
    assert!(activates_at > u64::try_from(b.now()).unwrap() + a.config.jwks_max_age);
    a.advance(i64::try_from(activates_at).unwrap() - a.now());
    let (by_a, by_b) = (a.admin_token().await, b.admin_token().await);
    assert_eq!((header_kid(&by_a), header_kid(&by_b)), (new.clone(), new));
    b.issuer.key_ring().verify(&by_a, "at+jwt").unwrap();
    a.issuer.key_ring().verify(&by_b, "at+jwt").unwrap();
    a.store.close().await;
    b.store.close().await;
}
