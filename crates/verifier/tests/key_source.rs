//! Where the issuer's keys come from (§6.5.3 step 2): the remote key source
//! refreshes on an unknown `kid` at most once per interval with at most one
//! fetch in flight (no fetch storm from forged kids), picks up rotated keys,
//! discovers `jwks_uri` through RFC 8414 metadata (also over real HTTP from
//! the issuer's router), and a JWK Set with an unusable key still serves the
//! good ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ajwt_jose::JwkSet;
use ajwt_verifier::{
    FetchError, Fetcher, HttpFetcher, KeySource, PopPolicy, Requirements, Verifier, VerifierConfig,
    VerifyError,
};
use async_trait::async_trait;
use common::*;
use serde_json::{json, Value};

const JWKS_URI: &str = "https://idp.example.com/.well-known/jwks.json";
const METADATA_URL: &str = "https://idp.example.com/.well-known/oauth-authorization-server";

/// A fetcher serving fixed documents, counting calls and concurrent fetches.
#[derive(Default)]
struct FakeFetcher {
    docs: Mutex<HashMap<String, Vec<u8>>>,
    delay: Duration,
    fail: AtomicBool,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// The `Cache-Control: max-age` the served documents declare.
    max_age: Mutex<Option<Duration>>,
}

impl FakeFetcher {
    fn new(delay: Duration) -> Arc<FakeFetcher> {
        Arc::new(FakeFetcher {
            delay,
            ..FakeFetcher::default()
        })
    }
    fn serve(&self, url: &str, doc: &Value) {
        self.docs
            .lock()
            .unwrap()
            .insert(url.to_owned(), serde_json::to_vec(doc).unwrap());
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Fetcher for FakeFetcher {
    async fn get(&self, url: &str, max_len: usize) -> Result<Vec<u8>, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(FetchError::Transport(format!(
                "GET {url}: connection refused"
            )));
        }
        let body =
            self.docs
                .lock()
                .unwrap()
                .get(url)
                .cloned()
                .ok_or_else(|| FetchError::Status {
                    url: url.to_owned(),
                    status: 404,
                })?;
        if body.len() > max_len {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                max: max_len,
            });
        }
        Ok(body)
    }

    async fn get_with_max_age(
        &self,
        url: &str,
        max_len: usize,
    ) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let body = self.get(url, max_len).await?;
        Ok((body, *self.max_age.lock().unwrap()))
    }
}

fn remote_verifier(h: &TestIssuer, fetcher: Arc<FakeFetcher>, interval: Duration) -> Arc<Verifier> {
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = PopPolicy::Disabled;
    Arc::new(
        Verifier::new(
            config,
            KeySource::remote(JWKS_URI.into(), fetcher, interval),
        )
        .with_clock(Arc::new(VerifierClock(h.clock.clone()))),
    )
}

/// Verifies every token concurrently (bearer presentations, PoP disabled).
async fn verify_all(v: &Arc<Verifier>, tokens: Vec<String>) -> Vec<Result<(), VerifyError>> {
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let v = v.clone();
            tokio::spawn(async move {
                verify(&v, &Req::bearer(&t), &Requirements::default())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `n` tokens with the real claims, signed by an attacker key under forged kids.
fn forged_kid_tokens(claims: &Value, n: usize, tag: &str) -> Vec<String> {
    let attacker = RawKey::es256();
    (0..n)
        .map(|i| {
            attacker.sign_raw(
                &json!({"alg": "ES256", "kid": format!("forged-{tag}-{i}"), "typ": "JWT"}),
                claims,
            )
        })
        .collect()
}

#[tokio::test]
async fn remote_keys_refresh_on_unknown_kid_at_most_once_per_interval_single_flight() {
    let (h, _, token) = setup().await;
    // The store is set up on real time; from here on tokio's clock is paused
    // and auto-advances, so waiting out the interval takes no wall time.
    tokio::time::pause();
    let claims = claims_of(&token);
    let fetcher = FakeFetcher::new(Duration::from_millis(100));
    fetcher.serve(JWKS_URI, &h.issuer.jwks());
    let interval = Duration::from_millis(1500);
    let v = remote_verifier(&h, fetcher.clone(), interval);

    // Cold cache, 16 concurrent requests with the valid token: one fetch.
    let results = verify_all(&v, vec![token.clone(); 16]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fetcher.calls(), 1);

    // A storm of forged kids right after: no fetch at all (interval not elapsed).
    let results = verify_all(&v, forged_kid_tokens(&claims, 50, "a")).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r, &Err(VerifyError::UnknownKid(format!("forged-a-{i}"))));
    }
    assert_eq!(fetcher.calls(), 1, "no refresh within the interval");

    // After the interval: a second storm causes exactly one refresh.
    tokio::time::advance(interval + Duration::from_millis(100)).await;
    let results = verify_all(&v, forged_kid_tokens(&claims, 50, "b")).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(VerifyError::UnknownKid(_)))),
        "{results:?}"
    );
    assert_eq!(fetcher.calls(), 2, "one refresh per interval");
    let results = verify_all(&v, forged_kid_tokens(&claims, 20, "c")).await;
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(VerifyError::UnknownKid(_)))));
    assert_eq!(fetcher.calls(), 2);
    assert_eq!(
        fetcher.max_in_flight.load(Ordering::SeqCst),
        1,
        "never two fetches at once"
    );

    // Known kids never wait for or cause a fetch.
    let results = verify_all(&v, vec![token.clone(); 16]).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fetcher.calls(), 2);
}

#[tokio::test]
async fn remote_keys_pick_up_a_rotated_key_after_the_interval() {
    let (h, _, token) = setup().await;
    tokio::time::pause();
    let fetcher = FakeFetcher::new(Duration::from_millis(10));
    fetcher.serve(JWKS_URI, &h.issuer.jwks());
    let interval = Duration::from_millis(500);
    let v = remote_verifier(&h, fetcher.clone(), interval);
    assert!(verify_all(&v, vec![token.clone()]).await[0].is_ok());

    // The issuer rotates: a new key is published next to the old one.
    let new_key = RawKey::es256();
    let mut doc = h.issuer.jwks();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .insert(0, new_key.jwks_entry("rotated-1"));
    fetcher.serve(JWKS_URI, &doc);
    let rotated = new_key.sign_raw(
        &json!({"alg": "ES256", "kid": "rotated-1", "typ": "JWT"}),
        &claims_of(&token),
    );
    // Within the interval the new kid is unknown (the last fetch is too recent)...
    assert_eq!(
        verify_all(&v, vec![rotated.clone()]).await[0],
        Err(VerifyError::UnknownKid("rotated-1".into()))
    );
    // ... after it, the first request with the new kid refreshes and passes.
    tokio::time::advance(interval + Duration::from_millis(50)).await;
    let results = verify_all(&v, vec![rotated.clone(), rotated, token]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fetcher.calls(), 2);
}

#[tokio::test]
async fn unreachable_jwks_is_a_503_without_challenge() {
    let (h, _, token) = setup().await;
    let fetcher = FakeFetcher::new(Duration::ZERO);
    fetcher.fail.store(true, Ordering::SeqCst);
    let v = remote_verifier(&h, fetcher.clone(), Duration::from_secs(60));
    let req = Req::bearer(&token);
    let e = refused(verify(&v, &req, &Requirements::default()).await);
    assert!(
        matches!(&e, VerifyError::KeysUnavailable(m) if m.to_string().contains("connection refused")),
        "{e:?}"
    );
    assert_eq!(
        (e.status(), e.code()),
        (503, Some("temporarily_unavailable"))
    );
    let response = req.with_parts(|p| ajwt_verifier::axum_layer::error_response(&v, p, &e));
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("www-authenticate").is_none());
}

/// While the key set has never been loaded, a valid token cannot be judged:
/// the answer must stay "keys unavailable" (503), not "invalid token" (401),
/// which tells the client to throw its token away (RFC 6750 §3.1).
#[tokio::test]
async fn failed_first_fetch_keeps_answering_503_until_keys_are_loaded() {
    let (h, _, token) = setup().await;
    let fetcher = FakeFetcher::new(Duration::ZERO);
    fetcher.serve(JWKS_URI, &h.issuer.jwks());
    fetcher.fail.store(true, Ordering::SeqCst);
    let v = remote_verifier(&h, fetcher.clone(), Duration::from_secs(60));
    let e = refused(verify(&v, &Req::bearer(&token), &Requirements::default()).await);
    assert!(matches!(e, VerifyError::KeysUnavailable(_)), "{e:?}");
    // The issuer is back, but the interval has not passed.
    fetcher.fail.store(false, Ordering::SeqCst);
    let e = refused(verify(&v, &Req::bearer(&token), &Requirements::default()).await);
    assert!(matches!(e, VerifyError::KeysUnavailable(_)), "{e:?}");
}

/// A JWK Set with the issuer's key and unusable keys around it.
fn polluted_jwks(h: &TestIssuer) -> Value {
    use josekit::jwk::KeyPair as _;
    let rsa1024 = josekit::jwk::alg::rsa::RsaKeyPair::generate(1024).unwrap();
    let mut weak = rsa1024.to_jwk_public_key().as_ref().clone();
    weak.insert("kid".into(), json!("rsa-1024"));
    weak.insert("alg".into(), json!("RS256"));
    let rsa2048 = josekit::jwk::alg::rsa::RsaKeyPair::generate(2048).unwrap();
    let mut e3 = rsa2048.to_jwk_public_key().as_ref().clone();
    e3.insert("kid".into(), json!("rsa-e3"));
    e3.insert("e".into(), json!("Aw"));
    let mut private = RawKey::es256().private_jwk;
    private.insert("kid".into(), json!("private-ec"));
    let mut doc = h.issuer.jwks();
    let keys = doc["keys"].as_array_mut().unwrap();
    keys.insert(0, Value::Object(weak));
    keys.push(Value::Object(e3));
    keys.push(Value::Object(private));
    keys.push(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}));
    keys.push(json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}));
    keys.push(json!("not a key"));
    doc
}

#[tokio::test]
async fn jwks_with_a_bad_key_still_serves_the_good_keys() {
    let (h, agent, token) = setup().await;
    let doc = polluted_jwks(&h);
    let (set, skipped) =
        JwkSet::parse(&serde_json::to_vec(&doc).unwrap()).expect("the set as a whole");
    assert_eq!(set.len(), 1, "only the issuer key is usable: {skipped:?}");
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    assert!(set.find("rsa-1024").is_none() && set.find("rsa-e3").is_none());
    let v = verifier_with_keys(&h, PopPolicy::Required, set);
    verify(&v, &presented(&h, &agent, &token), &route())
        .await
        .expect("the good key still verifies");
    // A token naming a skipped key is refused as signed by an unknown key.
    for kid in ["rsa-1024", "rsa-e3", "hmac", "private-ec"] {
        let forged = RawKey::es256().sign_raw(
            &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
            &claims_of(&token),
        );
        let e = refused(verify(&v, &presented(&h, &agent, &forged), &route()).await);
        assert_eq!(e, VerifyError::UnknownKid(kid.into()));
    }
}

#[tokio::test]
async fn remote_jwks_with_a_bad_key_still_serves_the_good_keys() {
    let (h, _, token) = setup().await;
    let fetcher = FakeFetcher::new(Duration::ZERO);
    fetcher.serve(JWKS_URI, &polluted_jwks(&h));
    let v = remote_verifier(&h, fetcher, Duration::from_secs(60));
    verify(&v, &Req::bearer(&token), &Requirements::default())
        .await
        .expect("the good key is served from the fetched set");
}

#[tokio::test]
async fn discovery_through_rfc8414_metadata() {
    let (h, _, token) = setup().await;
    let fetcher = FakeFetcher::new(Duration::ZERO);
    fetcher.serve(METADATA_URL, &h.issuer.metadata());
    fetcher.serve(JWKS_URI, &h.issuer.jwks());
    let keys = KeySource::discover(ISSUER, fetcher.clone(), Duration::from_secs(60))
        .await
        .expect("discovery");
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = PopPolicy::Disabled;
    let v = Verifier::new(config, keys).with_clock(Arc::new(VerifierClock(h.clock.clone())));
    verify(&v, &Req::bearer(&token), &Requirements::default())
        .await
        .expect("verified with discovered keys");
    // Metadata of another issuer (RFC 8414 §3.3) is refused.
    let mut other = h.issuer.metadata();
    other["issuer"] = json!("https://evil.example.com");
    fetcher.serve(METADATA_URL, &other);
    let e = KeySource::discover(ISSUER, fetcher, Duration::from_secs(60))
        .await
        .err()
        .expect("mismatched metadata issuer");
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[tokio::test]
async fn discovery_over_http_from_a_running_issuer() {
    // The issuer's real router on a loopback port, reached with HttpFetcher.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store: Arc<dyn ajwt_issuer::store::Store> =
        Arc::new(ajwt_issuer::store::cache::CachedStore::new(
            ajwt_issuer::store::sqlite::SqliteStore::open_in_memory()
                .await
                .unwrap(),
        ));
    let keys = Arc::new(
        ajwt_issuer::keys::KeyRing::generate(ajwt_issuer::keys::SigningAlgorithm::EdDsa).unwrap(),
    );
    let clock = TestClock(Arc::new(std::sync::atomic::AtomicI64::new(
        ajwt_issuer::service::Clock::now(&ajwt_issuer::service::SystemClock),
    )));
    let config = ajwt_issuer::IssuerConfig {
        issuer: base.clone(),
        ..ajwt_issuer::IssuerConfig::default()
    };
    let issuer = Arc::new(ajwt_issuer::Issuer::new(
        config,
        store,
        keys,
        Arc::new(clock.clone()),
    ));
    let server = tokio::spawn(
        axum::serve(listener, ajwt_issuer::http::router(issuer.clone())).into_future(),
    );
    let key = dpop_key(ajwt_jose::Alg::EdDsa);
    let mut body = agent_spec(AGENT);
    body["public_key"] = public_jwk(&key);
    let reg = issuer
        .register_agent(&serde_json::to_vec(&body).unwrap())
        .await
        .unwrap();
    let req = json!({"grant_type": "agent_checksum", "agent_id": AGENT, "computed_checksum": reg.checksum.to_string(),
                     "requested_scopes": ["repo:write"], "audience": API});
    let token = issuer
        .intent_token(
            ajwt_protocol::wire::decode_token_request(&serde_json::to_vec(&req).unwrap()).unwrap(),
        )
        .await
        .unwrap()
        .access_token;

    let keys = KeySource::discover(
        &base,
        Arc::new(HttpFetcher::new().unwrap()),
        Duration::from_secs(60),
    )
    .await
    .expect("discovery over HTTP");
    let mut config = VerifierConfig::new(&base, API);
    config.pop = PopPolicy::Required;
    let v = Verifier::new(config, keys).with_clock(Arc::new(VerifierClock(clock.clone())));
    let proof = proof(&key, "POST", URL, Some(&token), None, clock.now());
    let ok = verify(
        &v,
        &Req::dpop(&token, &proof),
        &Requirements::scopes(["repo:write"]),
    )
    .await
    .expect("verified with keys fetched over HTTP");
    assert_eq!(ok.claims.sub, AGENT);
    server.abort();
}

/// I-91: a remote set whose response declared `max-age` is refetched once
/// that lifetime has passed, even though every `kid` is known, so a key the
/// issuer publishes before signing with it (I-90) is there before its first
/// token, whatever the unknown-kid refresh interval. A failed refetch keeps
/// the stale set serving.
#[tokio::test]
async fn i91_remote_keys_honour_the_jwks_max_age() {
    let (h, _, token) = setup().await;
    tokio::time::pause();
    let fetcher = FakeFetcher::new(Duration::from_millis(10));
    *fetcher.max_age.lock().unwrap() = Some(Duration::from_secs(300));
    fetcher.serve(JWKS_URI, &h.issuer.jwks());
    // An unknown-kid refresh interval far longer than the max-age.
    let v = remote_verifier(&h, fetcher.clone(), Duration::from_secs(3600));
    assert!(verify_all(&v, vec![token.clone()]).await[0].is_ok());
    assert_eq!(fetcher.calls(), 1);

    // The issuer publishes a new key (not signing yet).
    let new_key = RawKey::es256();
    let mut doc = h.issuer.jwks();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(new_key.jwks_entry("next-1"));
    fetcher.serve(JWKS_URI, &doc);
    // Within max-age: the cached set serves, no fetch.
    tokio::time::advance(Duration::from_secs(299)).await;
    assert!(verify_all(&v, vec![token.clone()]).await[0].is_ok());
    assert_eq!(fetcher.calls(), 1);
    // Past max-age, a request with a known kid refetches once.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(verify_all(&v, vec![token.clone(); 8])
        .await
        .iter()
        .all(Result::is_ok));
    assert_eq!(fetcher.calls(), 2);
    // The issuer starts signing with the published key: known at once,
    // although the unknown-kid interval (1 h) has not passed.
    let signed = new_key.sign_raw(
        &json!({"alg": "ES256", "kid": "next-1", "typ": "JWT"}),
        &claims_of(&token),
    );
    assert!(verify_all(&v, vec![signed.clone()]).await[0].is_ok());
    assert_eq!(fetcher.calls(), 2);

    // The issuer is unreachable when the set goes stale: still served.
    fetcher.fail.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(301)).await;
    let results = verify_all(&v, vec![signed.clone(), token.clone()]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        fetcher.calls(),
        3,
        "one failed refetch, then the retry waits"
    );

    // Cache-Control parsing (RFC 9111 §5.2.2.1).
    assert_eq!(
        ajwt_verifier::cache_max_age("public, max-age=300"),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        ajwt_verifier::cache_max_age("no-store"),
        Some(Duration::ZERO)
    );
    assert_eq!(
        ajwt_verifier::cache_max_age("max-age=\"60\""),
        Some(Duration::from_secs(60))
    );
    assert_eq!(ajwt_verifier::cache_max_age("public"), None);
    assert_eq!(ajwt_verifier::cache_max_age("max-age=-1"), None);
}
