//! Publish-then-sign key rotation (I-90) survived by a verifier that
//! honours the JWKS cache lifetime (I-91): a real issuer over TCP rotates its
//! signing key several times while tokens are issued and verified
//! concurrently through `ajwt-verifier`'s remote [`KeySource`], whose
//! unknown-`kid` refresh is effectively off (one hour), so only the JWKS
//! `max-age` brings new keys in. Zero verification failures; a control run
//! that signs with the new key at once fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ajwt_jose::{Alg, CompactJws};
use ajwt_test_kit::{post_json, RunningIssuer};
use ajwt_verifier::{HttpFetcher, KeySource};
use serde_json::{json, Value};

/// Outcome counts of the workers.
#[derive(Default)]
struct Tally {
    verified: AtomicUsize,
    failures: Mutex<Vec<String>>,
    kids: Mutex<BTreeSet<String>>,
}

/// Verifies `token`'s signature with the key the source gives for its `kid`.
async fn verify(keys: &KeySource, token: &str) -> Result<String, String> {
    let jws = CompactJws::parse(token, 1 << 16).map_err(|e| e.to_string())?;
    let kid = jws.kid.clone().ok_or("no kid")?;
    let key = keys
        .key(Some(&kid))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("unknown kid {kid}"))?;
    jws.verify_with(&key, &Alg::ALL)
        .map_err(|e| e.to_string())?;
    Ok(kid)
}

/// Runs `rotations` rotations `spacing` apart on an issuer configured by
/// `edit`, with `workers` tasks issuing and verifying client tokens all the
/// while; returns the tally and the rotation responses.
async fn rotate_under_load(
    edit: impl FnOnce(&mut ajwt_issuer::IssuerConfig),
    rotations: usize,
    spacing: Duration,
    workers: usize,
) -> (RunningIssuer, Arc<Tally>, Vec<Value>) {
    let issuer = RunningIssuer::start(edit).await.unwrap();
    let jwks_uri = format!("{}/.well-known/jwks.json", issuer.base_url);
    let keys = Arc::new(KeySource::remote(
        jwks_uri,
        Arc::new(HttpFetcher::new().unwrap()),
        Duration::from_secs(3600),
    ));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (keys, tally, stop) = (keys.clone(), tally.clone(), stop.clone());
        let endpoint = issuer.token_endpoint();
        let admin = issuer.admin.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let token = ajwt_test_kit::client_token(&endpoint, &admin)
                    .await
                    .unwrap();
                match verify(&keys, &token).await {
                    Ok(kid) => {
                        tally.verified.fetch_add(1, Ordering::SeqCst);
                        tally.kids.lock().unwrap().insert(kid);
                    }
                    Err(e) => tally.failures.lock().unwrap().push(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let rotate = format!("{}/intent/admin/rotate-keys", issuer.base_url);
    let mut responses = Vec::new();
    for _ in 0..rotations {
        tokio::time::sleep(spacing).await;
        let admin = issuer.admin_token().await.unwrap();
        let (status, text, body) = post_json(&rotate, &admin, &json!({})).await.unwrap();
        assert_eq!(status, 200, "{text}");
        responses.push(body.unwrap());
    }
    // Let the last key start signing and be used.
    tokio::time::sleep(spacing).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    (issuer, tally, responses)
}

fn published(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn get_jwks(issuer: &RunningIssuer) -> (Value, String) {
    let r = reqwest::get(format!("{}/.well-known/jwks.json", issuer.base_url))
        .await
        .unwrap();
    let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
    (
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
        cache,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i90_rotations_under_load_cause_zero_verification_failures() {
    const ROTATIONS: usize = 4;
    let (issuer, tally, responses) = rotate_under_load(
        |c| {
            c.jwks_max_age = 1;
            c.key_publish_delay = 1;
            c.client_token_lifetime = 3;
            c.intent_token_lifetime = 3;
            c.key_retire_leeway = 1;
            // Status list tokens live 2 × ttl (I-84): 2 s.
            c.tokens.status_list_ttl = 1;
        },
        ROTATIONS,
        // More than the publish delay rounded up (2 s): each rotation finds
        // the previous key signing.
        Duration::from_millis(2500),
        4,
    )
    .await;
    let failures = tally.failures.lock().unwrap().clone();
    let verified = tally.verified.load(Ordering::SeqCst);
    let kids = tally.kids.lock().unwrap().clone();
    eprintln!(
        "{ROTATIONS} rotations: {verified} tokens verified, {} failures, {} signing keys seen",
        failures.len(),
        kids.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(verified > 50, "only {verified} tokens");
    // Every rotation added a key that then signed (publish delay 1 s < spacing).
    for r in &responses {
        assert_eq!(r["state"], "next", "{r}");
        assert_eq!(r["already_pending"], false, "{r}");
        assert!(
            kids.contains(r["kid"].as_str().unwrap()),
            "{r} never signed"
        );
    }
    assert_eq!(kids.len(), ROTATIONS + 1);

    // The JWKS is bounded, advertises the configured max-age, and once the
    // last replaced key's tokens have expired (3 s + 1 s leeway) it holds
    // the signing key alone; its private key is gone, a public record stays.
    let (jwks, cache) = get_jwks(&issuer).await;
    assert_eq!(cache, "public, max-age=1");
    assert!(published(&jwks).len() <= ajwt_issuer::keys::MAX_PREVIOUS_KEYS + 1);
    let last = responses.last().unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_secs(4) + Duration::from_millis(600)).await;
    let (jwks, _) = get_jwks(&issuer).await;
    assert_eq!(published(&jwks), [last]);
    // The maintenance tick (every 5 s) deletes retired keys' private keys
    // from the store; a public record of each stays (I-90, I-110).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let stored = issuer.issuer.store().signing_keys().await.unwrap();
        let live = stored
            .iter()
            .filter(|k| k.private_key_pem.is_some())
            .count();
        if live == 1 {
            let records = stored.iter().filter(|k| k.retired_at.is_some()).count();
            assert_eq!(records, ROTATIONS);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{live} private keys left"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    issuer.stop().await.unwrap();
}

/// Control: the same verifier against an issuer that signs with a new key
/// at once (publish delay 0 under a 30 s max-age, which the configuration
/// refuses; set directly here) refuses tokens: the test above has teeth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i90_control_signing_at_once_breaks_a_caching_verifier() {
    let (issuer, tally, responses) = rotate_under_load(
        |c| {
            c.jwks_max_age = 30;
            c.key_publish_delay = 0;
        },
        1,
        Duration::from_millis(1500),
        4,
    )
    .await;
    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "control: {} failures, {} verified",
        failures.len(),
        tally.verified.load(Ordering::SeqCst),
    );
    assert_eq!(responses[0]["state"], "current");
    assert!(
        failures.iter().any(|f| f.starts_with("unknown kid")),
        "{failures:?}"
    );
    assert!(ajwt_issuer::IssuerConfig {
        jwks_max_age: 1,
        key_publish_delay: 0,
        ..ajwt_issuer::IssuerConfig::default()
    }
    .validate()
    .is_err());
    issuer.stop().await.unwrap();
}
