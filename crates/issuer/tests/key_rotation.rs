//! Publish-then-sign key rotation (I-90) through the admin hook and the
//! schedule, on the issuer's (test) clock: the new key is in the JWK Set at
//! once and signs only after the publish delay; the key it replaces stays
//! published until every token it signed has expired (longest lifetime +
//! leeway), then leaves the JWK Set. The concurrent run over TCP is in
//! `crates/verifier/tests/key_rotation_e2e.rs`, the CLI in
//! `crates/cli/tests/keys_cli.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

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
