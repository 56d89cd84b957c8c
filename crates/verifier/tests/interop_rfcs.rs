//! What real OAuth/JOSE clients hit at a resource server (issue 11): the
//! RFC 9864 fully-specified `Ed25519` algorithm (I-48), RFC 9449 §7.2 under
//! the `optional` policy and the `required` policy's challenges (I-49),
//! RFC 8414 §3.1 discovery for issuers with a path (I-50), and rotating
//! server nonces (RFC 9449 §8–§9, I-51). Challenges are read back with an
//! independent parse (`ajwt_protocol::challenge::parse`) rather than by
//! string prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::time::Duration;

use ajwt_jose::{Alg, DpopKey};
use ajwt_protocol::challenge::{parse, Challenge};
use ajwt_verifier::{
    HttpFetcher, Intent, IntentLayer, KeySource, PopPolicy, RotatingNonces, Verifier,
    VerifierConfig, VerifyError,
};
use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// The parsed `WWW-Authenticate` challenges of the production error path.
fn challenges(v: &Verifier, req: &Req, e: &VerifyError) -> (u16, Vec<Challenge>) {
    let response = req.with_parts(|p| ajwt_verifier::axum_layer::error_response(v, p, e));
    let header = response
        .headers()
        .get("www-authenticate")
        .expect("a challenge")
        .to_str()
        .unwrap()
        .to_owned();
    (response.status().as_u16(), parse(&header).unwrap())
}

/// The names RFC 9449 §7.1 `algs` must list: every algorithm of ajwt-jose's
/// table, written out here (not read from the code under test).
const EVERY_ALG: [&str; 5] = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"];

// ---------------------------------------------------------------------------
// I-48: RFC 9864 Ed25519
// ---------------------------------------------------------------------------

/// A proof exactly as oauth4webapi makes it for an Ed25519 key: header
/// `{"alg":"Ed25519","typ":"dpop+jwt","jwk":{OKP}}`, signed by an
/// independent implementation (jsonwebtoken's EdDSA primitive).
fn oauth4webapi_style_proof(key: &RawKey, token: &str, iat: i64) -> String {
    // oauth4webapi puts only the required members in the header jwk.
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": key.public_jwk["x"]});
    key.proof_with(
        json!({"alg": "Ed25519", "jwk": jwk}),
        proof_claims(token, iat),
    )
}

#[tokio::test]
async fn rfc9864_ed25519_dpop_proof_is_accepted() {
    let h = TestIssuer::new().await;
    let raw = RawKey::ed25519();
    let agent = h.register_key(AGENT, raw.dpop_key()).await;
    let token = h.token(&agent).await;
    let v = verifier(&h, PopPolicy::Required);
    let proof = oauth4webapi_style_proof(&raw, &token, h.now());
    let (header, _) = decode_unverified(&proof);
    assert_eq!(header["alg"], "Ed25519");
    let ok = verify(&v, &Req::dpop(&token, &proof), &route())
        .await
        .expect("Ed25519 proof");
    assert_eq!(ok.dpop_jkt, Some(jkt(&agent.key)));
    // The polymorphic name, same key, still works.
    let eddsa = raw.proof_with(json!({"alg": "EdDSA"}), proof_claims(&token, h.now()));
    assert_eq!(decode_unverified(&eddsa).0["alg"], "EdDSA");
    verify(&v, &Req::dpop(&token, &eddsa), &route())
        .await
        .expect("EdDSA proof");
    // Our own signer under the fully-specified name (the client shim's path).
    let ours = DpopKey::from_pkcs8_pem(raw.pem.as_bytes(), Alg::Ed25519).unwrap();
    assert_eq!(ours.alg(), Alg::Ed25519);
    let p = post_proof(&ours, &token, h.now());
    assert_eq!(decode_unverified(&p).0["alg"], "Ed25519");
    verify(&v, &Req::dpop(&token, &p), &route())
        .await
        .expect("ajwt-jose Ed25519 proof");
    // "Ed25519" names Ed25519 only: on a P-256 jwk it is refused.
    let ec = RawKey::es256();
    let forged = ec.sign_raw(
        &json!({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": ec.public_jwk}),
        &proof_claims(&token, h.now()),
    );
    let e = refused(verify(&v, &Req::dpop(&token, &forged), &route()).await);
    assert!(matches!(e, VerifyError::InvalidDpopProof(_)), "{e:?}");
}

#[tokio::test]
async fn rfc9864_ed25519_signed_intent_tokens_are_accepted() {
    // An issuer signing with the fully-specified name (what `--signing-alg
    // Ed25519` produces): the same claims re-signed by an independent signer.
    let (h, _, token) = setup().await;
    let issuer_key = RawKey::ed25519();
    let claims = claims_of(&token);
    let signed = issuer_key.sign_raw(
        &json!({"alg": "Ed25519", "kid": "ed-1", "typ": "JWT"}),
        &claims,
    );
    let with_alg = |alg: Option<&str>| {
        let mut jwk = issuer_key.jwks_entry("ed-1");
        match alg {
            Some(a) => jwk["alg"] = json!(a),
            None => {
                jwk.as_object_mut().unwrap().remove("alg");
            }
        }
        parse_jwks(&json!({"keys": [jwk]}))
    };
    for alg in [Some("Ed25519"), None] {
        let v = verifier_with_keys(&h, PopPolicy::Disabled, with_alg(alg));
        verify(&v, &Req::bearer(&signed), &route())
            .await
            .unwrap_or_else(|e| panic!("JWK alg {alg:?}: {e:?}"));
    }
    // A JWK that says "EdDSA" is bound to that name (RFC 7517 §4.4).
    let v = verifier_with_keys(&h, PopPolicy::Disabled, with_alg(Some("EdDSA")));
    let e = refused(verify(&v, &Req::bearer(&signed), &route()).await);
    assert!(
        matches!(e, VerifyError::KeyAlgorithmMismatch { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn rfc9449_s7_1_algs_lists_ed25519() {
    let (h, _, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let req = Req::dpop_without_proof(&token);
    let e = refused(verify(&v, &req, &route()).await);
    let (status, c) = challenges(&v, &req, &e);
    assert_eq!(status, 401);
    assert_eq!(c.len(), 1);
    assert!(c[0].is_scheme("DPoP"));
    assert_eq!(c[0].algs_list(), EVERY_ALG);
    assert_eq!(
        v.config().algorithms,
        Alg::ALL.to_vec(),
        "the allow-list is ajwt-jose's table"
    );
}

// ---------------------------------------------------------------------------
// I-49: RFC 9449 §7.2 under `optional`; `required` always challenges DPoP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rfc9449_s7_2_dpop_bound_token_as_bearer_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Optional);
    // Every intent token is cnf-bound (§4.4.2): as a bearer token it is refused.
    assert!(claims_of(&token)["cnf"].is_object());
    let req = Req::bearer(&token);
    let e = refused(verify(&v, &req, &route()).await);
    assert_eq!(e, VerifyError::BoundTokenAsBearer);
    assert_eq!((e.status(), e.code()), (401, Some("invalid_token")));
    let (status, c) = challenges(&v, &req, &e);
    assert_eq!(status, 401);
    assert_eq!(c.len(), 1);
    assert!(c[0].is_scheme("DPoP"), "{c:?}");
    assert_eq!(c[0].error_code(), Some("invalid_token"));
    assert_eq!(c[0].algs_list(), EVERY_ALG);
    // The same token presented properly is accepted under `optional`.
    verify(&v, &presented(&h, &agent, &token), &route())
        .await
        .expect("DPoP presentation");
}

#[tokio::test]
async fn rfc9449_s7_1_required_policy_challenges_with_dpop_whatever_the_scheme() {
    let (h, _, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let none = Req {
        authorization: vec![],
        ..Req::bearer(&token)
    };
    let expired_bearer = Req::bearer(&tamper_signature(&token));
    let cases: Vec<(Req, u16, Option<&str>)> = vec![
        (none, 401, None),
        (expired_bearer, 401, Some("invalid_token")),
        (Req::bearer(&token), 401, Some("invalid_dpop_proof")),
    ];
    for (req, status, code) in cases {
        let e = refused(verify(&v, &req, &route()).await);
        let (got, c) = challenges(&v, &req, &e);
        assert_eq!(got, status, "{e:?}");
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].is_scheme("DPoP"), "{e:?}: {c:?}");
        assert_eq!(c[0].error_code(), code, "{e:?}");
        assert_eq!(c[0].algs_list(), EVERY_ALG);
    }
    // Scope refusal through Bearer: 403 insufficient_scope, still a DPoP challenge.
    let e = VerifyError::InsufficientScope("repo:admin".into());
    let (status, c) = challenges(&v, &Req::bearer(&token), &e);
    assert_eq!(status, 403);
    assert!(c[0].is_scheme("DPoP"));
    assert_eq!(c[0].get("scope"), Some("repo:admin"));
}

#[tokio::test]
async fn rfc9449_s7_1_optional_policy_without_credentials_offers_both_schemes() {
    let (h, _, token) = setup().await;
    let v = verifier(&h, PopPolicy::Optional);
    let req = Req {
        authorization: vec![],
        ..Req::bearer(&token)
    };
    let e = refused(verify(&v, &req, &route()).await);
    assert_eq!(e, VerifyError::MissingToken);
    let (status, c) = challenges(&v, &req, &e);
    assert_eq!(status, 401);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].is_scheme("DPoP") && c[1].is_scheme("Bearer"));
    assert_eq!(c[0].algs_list(), EVERY_ALG);
    assert!(c.iter().all(|c| c.error_code().is_none()), "RFC 6750 §3.1");
    // A bad token sent as Bearer gets the Bearer challenge its client understands.
    let req = Req::bearer(&tamper_signature(&token));
    let e = refused(verify(&v, &req, &route()).await);
    let (_, c) = challenges(&v, &req, &e);
    assert_eq!(c.len(), 1);
    assert!(c[0].is_scheme("Bearer"));
    assert_eq!(c[0].error_code(), Some("invalid_token"));
    assert!(c[0].get("algs").is_none());
}

// ---------------------------------------------------------------------------
// I-50: RFC 8414 §3.1 discovery for an issuer with a path
// ---------------------------------------------------------------------------

/// A metadata server on a loopback port serving only `path` (and the JWKS).
async fn metadata_server(issuer_path: &str, served_path: &'static str, jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}{issuer_path}");
    let meta = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")});
    let jwks_path = format!("{issuer_path}/jwks.json");
    let app = Router::new()
        .route(served_path, get(move || async move { Json(meta) }))
        .route(&jwks_path, get(move || async move { Json(jwks) }));
    tokio::spawn(axum::serve(listener, app).into_future());
    issuer
}

#[tokio::test]
async fn rfc8414_s3_1_path_issuer_discovered_with_the_inserted_form() {
    let (h, _, token) = setup().await;
    for served in [
        "/.well-known/oauth-authorization-server/tenant1",
        "/tenant1/.well-known/oauth-authorization-server",
    ] {
        let issuer = metadata_server("/tenant1", served, h.issuer.jwks()).await;
        let keys = KeySource::discover(
            &issuer,
            Arc::new(HttpFetcher::new().unwrap()),
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|e| panic!("discovery with only {served}: {e}"));
        // The keys are the issuer's: the token verifies (PoP off; iss is ISSUER).
        let mut config = VerifierConfig::new(ISSUER, API);
        config.pop = PopPolicy::Disabled;
        let v = Verifier::new(config, keys).with_clock(Arc::new(VerifierClock(h.clock.clone())));
        verify(&v, &Req::bearer(&token), &route())
            .await
            .unwrap_or_else(|e| panic!("keys from {served}: {e:?}"));
    }
}

#[tokio::test]
async fn rfc8414_s3_3_metadata_issuer_must_match_exactly() {
    let h = TestIssuer::new().await;
    let issuer = metadata_server(
        "/tenant1",
        "/.well-known/oauth-authorization-server/tenant1",
        h.issuer.jwks(),
    )
    .await;
    // Same server, configured with a trailing slash: not the same identifier.
    let e = KeySource::discover(
        &format!("{issuer}/"),
        Arc::new(HttpFetcher::new().unwrap()),
        Duration::from_secs(60),
    )
    .await
    .err()
    .expect("issuer mismatch");
    assert!(
        matches!(e, ajwt_verifier::DiscoveryError::IssuerMismatch { .. }),
        "{e:?}"
    );
    // Neither form served: a typed "unreachable" error naming both URLs.
    let e = KeySource::discover(
        &issuer.replace("tenant1", "tenant2"),
        Arc::new(HttpFetcher::new().unwrap()),
        Duration::from_secs(60),
    )
    .await
    .err()
    .expect("nothing served");
    let text = e.to_string();
    assert!(
        text.contains("/.well-known/oauth-authorization-server/tenant2")
            && text.contains("/tenant2/.well-known/oauth-authorization-server"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// I-51: rotating DPoP nonces through the axum layer
// ---------------------------------------------------------------------------

async fn ok_handler(Intent(intent): Intent) -> Json<Value> {
    Json(json!({"sub": intent.claims.sub}))
}

fn nonce_app(v: Arc<Verifier>) -> Router {
    Router::new().route(
        "/patches",
        post(ok_handler).route_layer(IntentLayer::new(v, API, route())),
    )
}

/// `(status, DPoP-Nonce, error)` of `POST /patches` with a fresh proof carrying `nonce`.
async fn call(
    app: &Router,
    h: &TestIssuer,
    agent: &Agent,
    token: &str,
    nonce: Option<&str>,
) -> (u16, Option<String>, Option<String>) {
    let p = proof(&agent.key, "POST", URL, Some(token), nonce, h.now());
    let req = Request::post("/patches")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", p)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| parse(v.to_str().unwrap()).unwrap());
    let error = challenge.and_then(|c| c[0].error_code().map(str::to_owned));
    (status, nonce, error)
}

#[tokio::test]
async fn rfc9449_s9_nonce_rotation_never_costs_an_active_client_a_failure() {
    let (h, agent, token) = setup().await;
    // Paused from here on (the issuer's SQLite setup ran on real time).
    tokio::time::pause();
    let nonces =
        Arc::new(RotatingNonces::new(Duration::from_secs(300), Duration::from_secs(60)).unwrap());
    let v = Arc::new(verifier(&h, PopPolicy::Required).with_nonces(nonces));
    let app = nonce_app(v);

    // First contact: 401 use_dpop_nonce with the nonce (RFC 9449 §9).
    let (status, n1, error) = call(&app, &h, &agent, &token, None).await;
    assert_eq!((status, error.as_deref()), (401, Some("use_dpop_nonce")));
    let n1 = n1.expect("DPoP-Nonce on use_dpop_nonce");
    // A guessed nonce is no better than none.
    let (status, _, error) = call(&app, &h, &agent, &token, Some("guess")).await;
    assert_eq!((status, error.as_deref()), (401, Some("use_dpop_nonce")));
    // With it: 200, and the success carries the nonce to use next.
    let (status, next, _) = call(&app, &h, &agent, &token, Some(&n1)).await;
    assert_eq!((status, next.as_deref()), (200, Some(n1.as_str())));

    // The nonce rotates after its lifetime; the client still holds n1 and
    // succeeds (grace), and the success hands it the new nonce.
    tokio::time::advance(Duration::from_secs(300)).await;
    let (status, n2, _) = call(&app, &h, &agent, &token, Some(&n1)).await;
    assert_eq!(status, 200, "the previous nonce is accepted after rotation");
    let n2 = n2.expect("DPoP-Nonce on success");
    assert_ne!(n2, n1, "a fresh nonce after rotation");
    let (status, _, _) = call(&app, &h, &agent, &token, Some(&n2)).await;
    assert_eq!(status, 200);

    // After the grace period the old nonce is refused, with the current one.
    tokio::time::advance(Duration::from_secs(60)).await;
    let (status, current, error) = call(&app, &h, &agent, &token, Some(&n1)).await;
    assert_eq!((status, error.as_deref()), (401, Some("use_dpop_nonce")));
    assert_eq!(current.as_deref(), Some(n2.as_str()));
}
