//! Skewed clocks at the edges of the leeway (issue 12 "Faults"; RFC 7519
//! §4.1.4/§4.1.6 with a "small leeway", RFC 9449 §4.3 step 11; spec I-65).
//! The issuer and the resource server run on different clocks: a token the
//! issuer has just signed is accepted by a resource server up to `leeway`
//! seconds behind it and refused one second further; a token is accepted up
//! to `leeway` seconds after `exp` on a resource server ahead of the issuer
//! and refused from then on; a DPoP proof from an agent whose clock runs
//! ahead is accepted up to `leeway` and one whose clock runs behind up to
//! `dpop_window + leeway`. Independent oracle: the numbers are computed here
//! from the token's own `iat`/`exp` and the configured leeway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use ajwt_jose::Alg;
use ajwt_verifier::{KeySource, PopPolicy, Verifier, VerifierConfig, VerifyError};
use common::*;

fn claims(token: &str) -> serde_json::Value {
    ajwt_test_kit::jwt_payload(token).unwrap()
}

/// A verifier on its own clock, set to `at`.
fn verifier_at(h: &TestIssuer, at: i64) -> (Verifier, TestClock, VerifierConfig) {
    let clock = TestClock(Arc::new(AtomicI64::new(at)));
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = PopPolicy::Required;
    let v = Verifier::new(config.clone(), KeySource::from_jwks(h.jwk_set()))
        .with_clock(Arc::new(VerifierClock(clock.clone())));
    (v, clock, config)
}

#[tokio::test]
async fn rfc7519_s4_1_4_s4_1_6_tokens_across_skewed_clocks_at_the_leeway_edges() {
    let h = TestIssuer::new().await;
    let agent = h.register(AGENT, Alg::Es256).await;
    let token = h.token(&agent).await;
    let c = claims(&token);
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    let leeway = VerifierConfig::new(ISSUER, API).leeway;
    assert!(leeway > 0);

    // Resource server behind the issuer: iat is in its future.
    for (behind, accepted) in [(leeway, true), (leeway + 1, false)] {
        let now = iat - behind;
        let (v, _, _) = verifier_at(&h, now);
        let req = Req::dpop(&token, &post_proof(&agent.key, &token, now));
        let out = verify(&v, &req, &route()).await;
        match (accepted, out) {
            (true, Ok(_)) => {}
            (false, Err(VerifyError::IssuedInFuture)) => {}
            (_, other) => panic!("{behind} s behind: {other:?}"),
        }
    }

    // Resource server ahead of the issuer: past exp, within the leeway.
    for (after_exp, accepted) in [(leeway - 1, true), (leeway, false)] {
        let now = exp + after_exp;
        let (v, _, _) = verifier_at(&h, now);
        let req = Req::dpop(&token, &post_proof(&agent.key, &token, now));
        let out = verify(&v, &req, &route()).await;
        match (accepted, out) {
            (true, Ok(_)) => {}
            (false, Err(VerifyError::Expired)) => {}
            (_, other) => panic!("{after_exp} s after exp: {other:?}"),
        }
    }
}

#[tokio::test]
async fn rfc9449_s4_3_proofs_from_agents_with_skewed_clocks_at_the_edges() {
    let h = TestIssuer::new().await;
    let agent = h.register(AGENT, Alg::Es256).await;
    let token = h.token(&agent).await;
    let now = h.now();
    let (_, _, config) = verifier_at(&h, now);
    let (leeway, window) = (config.leeway.min(config.dpop_window), config.dpop_window);
    let cases = [
        (now + leeway, true),
        (now + leeway + 1, false),
        (now - window - leeway, true),
        (now - window - leeway - 1, false),
    ];
    for (proof_iat, accepted) in cases {
        // A fresh verifier each time: the replay cache is not what is tested.
        let (v, _, _) = verifier_at(&h, now);
        let req = Req::dpop(&token, &post_proof(&agent.key, &token, proof_iat));
        let out = verify(&v, &req, &route()).await;
        match (accepted, out) {
            (true, Ok(_)) => {}
            (false, Err(VerifyError::InvalidDpopProof(_))) => {}
            (_, other) => panic!("proof iat now{:+}: {other:?}", proof_iat - now),
        }
    }
}
