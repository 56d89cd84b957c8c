//! The verifier's Token Status List source (draft-ietf-oauth-status-list,
//! I-92): a revoked token is refused with `TokenStatus` (401
//! `invalid_token`), lists are fetched only from the issuer's origin (no
//! SSRF), verified like any issuer token (`typ statuslist+jwt`, RFC 8725),
//! cached per `ttl`, and an unavailable list fails closed (503) unless
//! configured to fail open. Lists are served by a fake fetcher and signed
//! with the issuer's own key ring; the test over TCP against a running
//! issuer is `…::i92_running_issuer_revocation_reaches_the_verifier_within_the_ttl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ajwt_protocol::status_list::{StatusList, StatusListTokenClaims, STATUS_INVALID};
use ajwt_verifier::{
    FetchError, Fetcher, KeySource, PopPolicy, Requirements, StatusCheckError, StatusListConfig,
    StatusListSource, Verifier, VerifierConfig, VerifyError,
};
use async_trait::async_trait;
use common::*;
use serde_json::Value;

const JWKS_URI: &str = "https://idp.example.com/.well-known/jwks.json";

/// Serves fixed documents; counts fetches per URL.
#[derive(Default)]
struct Served {
    docs: Mutex<HashMap<String, Vec<u8>>>,
    calls: Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
}

impl Served {
    fn put(&self, url: &str, body: impl Into<Vec<u8>>) {
        self.docs
            .lock()
            .unwrap()
            .insert(url.to_owned(), body.into());
    }
    fn calls_to(&self, url: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == url)
            .count()
    }
    fn all_calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Fetcher for Served {
    async fn get(&self, url: &str, _max_len: usize) -> Result<Vec<u8>, FetchError> {
        self.calls.lock().unwrap().push(url.to_owned());
        if self.fail.load(Ordering::SeqCst) && url != JWKS_URI {
            return Err(FetchError::Transport(format!(
                "GET {url}: connection refused"
            )));
        }
        self.docs
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| FetchError::Status {
                url: url.to_owned(),
                status: 404,
            })
    }
}

/// The token's `status.status_list` (`uri`, `idx`).
fn reference(token: &str) -> (String, u64) {
    let claims = claims_of(token);
    let r = &claims["status"]["status_list"];
    (
        r["uri"].as_str().unwrap().to_owned(),
        r["idx"].as_u64().unwrap(),
    )
}

/// A status list token for `sub` with `revoked` set, signed by the issuer's
/// ring with `typ`, `ttl` 60 s.
fn list_token(h: &TestIssuer, revoked: &[u64], typ: &str, sub: &str) -> String {
    let mut list = StatusList::new(1, 65_536).unwrap();
    for i in revoked {
        list.set(*i, STATUS_INVALID).unwrap();
    }
    let now = h.now();
    let claims = StatusListTokenClaims {
        iss: Some(ISSUER.to_owned()),
        sub: sub.to_owned(),
        iat: now,
        exp: Some(now + 120),
        ttl: Some(60),
        status_list: list.encode(),
    };
    let Value::Object(map) = serde_json::to_value(&claims).unwrap() else {
        panic!()
    };
    h.keys.sign(typ, &map).unwrap()
}

fn verifier(h: &TestIssuer, served: Arc<Served>, config: StatusListConfig) -> Arc<Verifier> {
    let mut vc = VerifierConfig::new(ISSUER, API);
    vc.pop = PopPolicy::Disabled;
    let v = Verifier::new(
        vc,
        KeySource::remote(JWKS_URI.into(), served.clone(), Duration::from_secs(60)),
    )
    .with_clock(Arc::new(VerifierClock(h.clock.clone())));
    let source = StatusListSource::new(config, v.key_source(), served)
        .with_clock(Arc::new(VerifierClock(h.clock.clone())));
    Arc::new(v.with_revocation(Arc::new(source)))
}

async fn check(v: &Verifier, token: &str) -> Result<(), VerifyError> {
    verify(v, &Req::bearer(token), &Requirements::default())
        .await
        .map(|_| ())
}

async fn served_setup() -> (TestIssuer, String, String, u64, Arc<Served>) {
    let (h, _, token) = setup().await;
    let (uri, idx) = reference(&token);
    let served = Arc::new(Served::default());
    served.put(JWKS_URI, serde_json::to_vec(&h.issuer.jwks()).unwrap());
    (h, token, uri, idx, served)
}

#[tokio::test]
async fn i92_intent_tokens_reference_a_list_of_the_issuers_origin() {
    let (_, token, uri, _, _) = served_setup().await;
    assert!(uri.starts_with(&format!("{ISSUER}/")), "{uri}");
    assert!(claims_of(&token)["status"]["status_list"]["idx"].is_u64());
}

#[tokio::test]
async fn i92_valid_status_passes_and_a_revoked_token_is_invalid_token() {
    let (h, token, uri, idx, served) = served_setup().await;
    served.put(&uri, list_token(&h, &[idx + 1], "statuslist+jwt", &uri));
    let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
    check(&v, &token).await.unwrap();

    // Revoked: a fresh verifier (no cached list) refuses with the typed error.
    served.put(&uri, list_token(&h, &[idx], "statuslist+jwt", &uri));
    let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
    let e = check(&v, &token).await.unwrap_err();
    assert_eq!(
        e,
        VerifyError::TokenStatus {
            uri: uri.clone(),
            idx,
            status: STATUS_INVALID
        }
    );
    assert_eq!((e.status(), e.code()), (401, Some("invalid_token")));
    let challenge = e.challenge(ajwt_verifier::Scheme::Bearer, "ES256").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn i92_lists_are_cached_for_their_ttl() {
    let (h, token, uri, idx, served) = served_setup().await;
    tokio::time::pause();
    served.put(&uri, list_token(&h, &[], "statuslist+jwt", &uri));
    let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
    for _ in 0..10 {
        check(&v, &token).await.unwrap();
    }
    assert_eq!(served.calls_to(&uri), 1, "one fetch while fresh");
    // The token is revoked; within the ttl (60 s) the cached list answers...
    served.put(&uri, list_token(&h, &[idx], "statuslist+jwt", &uri));
    tokio::time::advance(Duration::from_secs(59)).await;
    check(&v, &token).await.unwrap();
    // ... after it the list is fetched again and the token refused.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(
        check(&v, &token).await,
        Err(VerifyError::TokenStatus { .. })
    ));
    assert_eq!(served.calls_to(&uri), 2);
}

#[tokio::test]
async fn i92_unavailable_list_fails_closed_503_or_open_when_configured() {
    let (h, token, uri, _, served) = served_setup().await;
    // Nothing served at the uri: 404.
    let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
    let e = check(&v, &token).await.unwrap_err();
    assert!(
        matches!(
            &e,
            VerifyError::StatusUnavailable(StatusCheckError::Fetch(_))
        ),
        "{e:?}"
    );
    assert_eq!(
        (e.status(), e.code()),
        (503, Some("temporarily_unavailable"))
    );
    assert!(e
        .challenge(ajwt_verifier::Scheme::Bearer, "ES256")
        .is_none());
    let mut open = StatusListConfig::new(ISSUER);
    open.fail_open = true;
    let v = verifier(&h, served.clone(), open);
    check(&v, &token).await.unwrap();

    // A list fetched before keeps serving past its ttl while refreshes
    // fail, until its exp (iat + 120 s here).
    tokio::time::pause();
    served.put(&uri, list_token(&h, &[], "statuslist+jwt", &uri));
    let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
    check(&v, &token).await.unwrap();
    served.fail.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(61)).await;
    h.clock.set(h.clock.now() + 61);
    check(&v, &token).await.unwrap();
    h.clock.set(h.clock.now() + 120);
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(matches!(
        check(&v, &token).await,
        Err(VerifyError::StatusUnavailable(_))
    ));
}

#[tokio::test]
async fn i92_status_list_tokens_are_verified_like_issuer_tokens() {
    let (h, token, uri, _, served) = served_setup().await;
    let attacker =
        ajwt_issuer::keys::KeyRing::generate(ajwt_issuer::keys::SigningAlgorithm::Es256).unwrap();
    let good = list_token(&h, &[], "statuslist+jwt", &uri);
    let claims = claims_of(&good);
    let Value::Object(map) = claims.clone() else {
        panic!()
    };
    let cases: Vec<(&str, String)> = vec![
        ("wrong typ", list_token(&h, &[], "JWT", &uri)),
        (
            "sub is not the uri",
            list_token(&h, &[], "statuslist+jwt", "https://idp.example.com/other"),
        ),
        (
            "foreign key",
            attacker.sign("statuslist+jwt", &map).unwrap(),
        ),
        ("garbage", "not a jwt".to_owned()),
    ];
    for (name, body) in cases {
        served.put(&uri, body);
        let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
        let e = check(&v, &token).await.unwrap_err();
        assert!(
            matches!(
                &e,
                VerifyError::StatusUnavailable(StatusCheckError::InvalidToken { .. })
            ),
            "{name}: {e:?}"
        );
    }
    // Expired and from another issuer.
    let mut expired = map.clone();
    expired.insert("exp".into(), (h.now() - 100).into());
    let mut foreign_iss = map.clone();
    foreign_iss.insert("iss".into(), "https://evil.example".into());
    for (name, m) in [("expired", expired), ("iss", foreign_iss)] {
        served.put(&uri, h.keys.sign("statuslist+jwt", &m).unwrap());
        let v = verifier(&h, served.clone(), StatusListConfig::new(ISSUER));
        let e = check(&v, &token).await.unwrap_err();
        assert!(
            matches!(
                &e,
                VerifyError::StatusUnavailable(StatusCheckError::InvalidToken { .. })
            ),
            "{name}: {e:?}"
        );
    }
}

#[tokio::test]
async fn i92_no_ssrf_lists_only_from_the_issuer_origin_or_the_allow_list() {
    let (h, _, _, _, served) = served_setup().await;
    let source = StatusListSource::new(
        StatusListConfig::new(ISSUER),
        Arc::new(KeySource::remote(
            JWKS_URI.into(),
            served.clone(),
            Duration::from_secs(60),
        )),
        served.clone(),
    );
    for uri in [
        "http://169.254.169.254/latest/meta-data",
        "https://idp.example.com.evil.example/intent/status-lists/1",
        "https://user@idp.example.com/intent/status-lists/1",
        "http://idp.example.com/intent/status-lists/1",
        "https://idp.example.com:8443/intent/status-lists/1",
        "file:///etc/passwd",
        "https://idp.example.com/intent/status-lists/1#x",
        "/intent/status-lists/1",
    ] {
        assert!(!source.uri_allowed(uri), "{uri}");
        let e = source.status(uri, 0).await.unwrap_err();
        assert!(
            matches!(e, StatusCheckError::UriNotAllowed(_)),
            "{uri}: {e:?}"
        );
    }
    let long = format!("{ISSUER}/{}", "a".repeat(3000));
    assert!(!source.uri_allowed(&long));
    assert!(source.uri_allowed("https://idp.example.com/intent/status-lists/7"));
    assert!(served.all_calls().is_empty(), "{:?}", served.all_calls());
    // An allow-listed origin is fetched.
    let mut config = StatusListConfig::new(ISSUER);
    config.allowed_origins = vec!["https://status.example.com".into()];
    let source = StatusListSource::new(
        config,
        Arc::new(KeySource::remote(
            JWKS_URI.into(),
            served.clone(),
            Duration::from_secs(60),
        )),
        served.clone(),
    );
    let other = "https://status.example.com/lists/1";
    served.put(other, list_token(&h, &[3], "statuslist+jwt", other));
    assert_eq!(source.status(other, 3).await.unwrap(), STATUS_INVALID);
    assert_eq!(source.status(other, 2).await.unwrap(), 0);
    assert!(matches!(
        source.status(other, 70_000).await,
        Err(StatusCheckError::IndexOutOfRange { .. })
    ));
}
