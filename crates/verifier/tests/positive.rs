//! Tokens that must pass: intent tokens from the real issuer (ES256, EdDSA
//! and RS256 issuer keys; ES256 and EdDSA agent keys) with valid DPoP
//! proofs, the `optional` and `disabled` PoP policies, and a token AND a
//! proof made by an independent implementation (the `jsonwebtoken` crate,
//! keys from josekit, `ath` computed here with `sha2`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::keys::SigningAlgorithm;
use ajwt_jose::Alg;
use ajwt_protocol::claims::Audience;
use ajwt_verifier::{KeySource, PopPolicy, Requirements, Verifier, VerifierConfig};
use common::*;
use serde_json::json;

/// Checks the verified claims against the token's own payload and the agent.
fn assert_claims(intent: &ajwt_verifier::VerifiedIntent, token: &str, agent: &Agent) {
    let c = &intent.claims;
    let raw = claims_of(token);
    assert_eq!(c.iss, ISSUER);
    assert_eq!(c.aud, Audience::One(API.into()));
    assert_eq!(c.sub, agent.id);
    assert_eq!(c.jti, raw["jti"].as_str().unwrap());
    assert_eq!(c.exp, raw["exp"].as_i64().unwrap());
    assert_eq!(c.iat, raw["iat"].as_i64().unwrap());
    assert_eq!(c.scopes(), vec!["repo:read", "repo:write"]);
    assert_eq!(c.intent.workflow_id.as_deref(), Some(WF));
    assert_eq!(c.intent.workflow_step.as_deref(), Some(STEP1));
    assert_eq!(c.intent.executed_by, agent.id);
    assert_eq!(c.agent_proof.agent_checksum.to_string(), agent.checksum);
    assert_eq!(c.agent_proof.registration_id, agent.registration_id);
    assert_eq!(
        ajwt_jose::jwk_thumbprint(c.cnf.jwk.as_ref().expect("cnf.jwk")).unwrap(),
        jkt(&agent.key)
    );
}

async fn real_issuer_round_trip(issuer_alg: SigningAlgorithm, agent_alg: Alg) {
    let h = TestIssuer::with_alg(issuer_alg).await;
    let agent = h.register(AGENT, agent_alg).await;
    let token = h.token(&agent).await;
    assert_eq!(decode_unverified(&token).0["alg"], issuer_alg.as_str());
    let v = verifier(&h, PopPolicy::Required);
    let intent = verify(&v, &presented(&h, &agent, &token), &route())
        .await
        .unwrap_or_else(|e| panic!("{issuer_alg} token, {agent_alg} proof: {e:?}"));
    assert_claims(&intent, &token, &agent);
    assert_eq!(intent.dpop_jkt, Some(jkt(&agent.key)));
    // Every request gets its own proof; the same token is reusable with fresh proofs.
    for method in ["GET", "DELETE"] {
        let req = Req {
            method: method.into(),
            ..Req::dpop(
                &token,
                &proof(&agent.key, method, URL, Some(&token), None, h.now()),
            )
        };
        verify(&v, &req, &route()).await.expect(method);
    }
}

#[tokio::test]
async fn es256_issuer_token_with_valid_proof_is_accepted() {
    real_issuer_round_trip(SigningAlgorithm::Es256, Alg::Es256).await;
    real_issuer_round_trip(SigningAlgorithm::Es256, Alg::EdDsa).await;
}

#[tokio::test]
async fn eddsa_issuer_token_with_valid_proof_is_accepted() {
    real_issuer_round_trip(SigningAlgorithm::EdDsa, Alg::EdDsa).await;
    real_issuer_round_trip(SigningAlgorithm::EdDsa, Alg::Es256).await;
}

#[tokio::test]
async fn rs256_issuer_and_rsa_agent_keys_are_accepted() {
    real_issuer_round_trip(SigningAlgorithm::Rs256, Alg::Es256).await;
    real_issuer_round_trip(SigningAlgorithm::Es256, Alg::Rs256).await;
    real_issuer_round_trip(SigningAlgorithm::Es256, Alg::Ps256).await;
}

#[tokio::test]
async fn route_without_requirements_and_array_audience_are_accepted() {
    let h = TestIssuer::new().await;
    let agent = h.register(AGENT, Alg::Es256).await;
    let v = verifier(&h, PopPolicy::Required);
    let token = h.token(&agent).await;
    verify(&v, &presented(&h, &agent, &token), &Requirements::default())
        .await
        .expect("no requirements");
    // The issuer accepts an array audience; the verifier finds itself in it.
    let mut claims = claims_of(&token);
    claims["aud"] = json!(["https://other.example.com", API]);
    let multi = h.sign("JWT", &claims);
    let ok = verify(&v, &presented(&h, &agent, &multi), &route())
        .await
        .expect("array aud");
    assert!(ok.claims.aud.contains(API));
    // Several allowed steps, and scopes in any order.
    let route = Requirements::scopes(["repo:write", "repo:read"]).at_steps(WF, [STEP2, STEP1]);
    verify(&v, &presented(&h, &agent, &token), &route)
        .await
        .expect("step in the allowed list");
}

#[tokio::test]
async fn optional_policy_refuses_bound_tokens_as_bearer_and_verifies_proofs() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Optional);
    // I-49 (RFC 9449 §7.2): every intent token is cnf-bound, so a bearer
    // presentation is refused even under `optional`.
    let e = refused(verify(&v, &Req::bearer(&token), &route()).await);
    assert_eq!(e, ajwt_verifier::VerifyError::BoundTokenAsBearer);
    // A DPoP presentation is verified when present...
    let ok = verify(&v, &presented(&h, &agent, &token), &route())
        .await
        .expect("DPoP");
    assert_eq!(ok.dpop_jkt, Some(jkt(&agent.key)));
    // ... and a bad proof is not ignored.
    let sibling = h.register(SIBLING, Alg::Es256).await;
    let e = refused(verify(&v, &presented(&h, &sibling, &token), &route()).await);
    assert!(
        matches!(e, ajwt_verifier::VerifyError::InvalidDpopProof(_)),
        "{e:?}"
    );
}

#[tokio::test]
async fn disabled_policy_ignores_proofs() {
    let (h, agent, token) = setup().await;
    let sibling = h.register(SIBLING, Alg::Es256).await;
    let v = verifier(&h, PopPolicy::Disabled);
    let cases = vec![
        Req::bearer(&token),
        Req::dpop_without_proof(&token),
        Req::dpop(&token, "not a proof"),
        Req::dpop(&token, &post_proof(&sibling.key, &token, h.now())),
        Req::bearer(&token).with_proof("x").with_proof("y"),
    ];
    for req in cases {
        let ok = verify(&v, &req, &route())
            .await
            .unwrap_or_else(|e| panic!("{req:?}: {e:?}"));
        assert_claims(&ok, &token, &agent);
        assert_eq!(ok.dpop_jkt, None);
    }
    // Token checks still apply.
    let e = refused(verify(&v, &Req::bearer(&tamper_signature(&token)), &route()).await);
    assert_eq!(e, ajwt_verifier::VerifyError::BadSignature);
}

#[tokio::test]
async fn token_and_proof_from_an_independent_implementation_are_accepted() {
    // Issuer key and agent key generated by josekit; token and proof encoded
    // and signed by the `jsonwebtoken` crate; ajwt-jose is not involved.
    let h = TestIssuer::new().await;
    let issuer_key = RawKey::es256();
    let agent_key = RawKey::es256();
    let now = h.now();
    let checksum = format!("sha256:{}", "ab".repeat(32));
    let claims = json!({
        "iss": ISSUER,
        "aud": API,
        "sub": AGENT,
        "exp": now + 300,
        "iat": now,
        "jti": fresh_jti(),
        "scope": "repo:read repo:write",
        "cnf": {"jwk": agent_key.public_jwk},
        "intent": {
            "workflow_id": WF,
            "workflow_step": STEP1,
            "executed_by": AGENT,
            "delegation_chain": "0123456789abcdef",
            "step_sequence_hash": "fedcba9876543210",
        },
        "agent_proof": {"agent_checksum": checksum, "registration_id": "reg-independent-1"},
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("independent-1".into());
    header.typ = Some("JWT".into());
    let token = jsonwebtoken::encode(&header, &claims, &issuer_key.encoding).unwrap();

    let mut proof_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    proof_header.typ = Some("dpop+jwt".into());
    proof_header.jwk = Some(serde_json::from_value(json!(agent_key.public_jwk)).unwrap());
    let proof_claims = json!({
        "jti": fresh_jti(),
        "htm": "POST",
        "htu": URL,
        "iat": now,
        "ath": ath(&token),
    });
    let proof = jsonwebtoken::encode(&proof_header, &proof_claims, &agent_key.encoding).unwrap();

    let jwks = json!({"keys": [issuer_key.jwks_entry("independent-1")]});
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = PopPolicy::Required;
    let v = Verifier::new(config, KeySource::from_jwks(parse_jwks(&jwks)))
        .with_clock(Arc::new(VerifierClock(h.clock.clone())));
    let ok = verify(&v, &Req::dpop(&token, &proof), &route())
        .await
        .expect("independent token and proof");
    assert_eq!(ok.claims.sub, AGENT);
    assert_eq!(ok.claims.agent_proof.registration_id, "reg-independent-1");
    assert_eq!(
        ok.dpop_jkt.as_deref(),
        Some(
            ajwt_jose::jwk_thumbprint(&agent_key.public_jwk)
                .unwrap()
                .as_str()
        )
    );
    // And the same independent proof replayed is refused.
    let e = refused(verify(&v, &Req::dpop(&token, &proof), &route()).await);
    assert_eq!(e, ajwt_verifier::VerifyError::DpopReplay);

    // EdDSA both ways too.
    let issuer_ed = RawKey::ed25519();
    let agent_ed = RawKey::ed25519();
    let mut claims = claims;
    claims["cnf"] = json!({"jwk": agent_ed.public_jwk});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("independent-ed".into());
    let token = jsonwebtoken::encode(&header, &claims, &issuer_ed.encoding).unwrap();
    let mut proof_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    proof_header.typ = Some("dpop+jwt".into());
    proof_header.jwk = Some(serde_json::from_value(json!(agent_ed.public_jwk)).unwrap());
    let proof_claims =
        json!({"jti": fresh_jti(), "htm": "POST", "htu": URL, "iat": now, "ath": ath(&token)});
    let proof = jsonwebtoken::encode(&proof_header, &proof_claims, &agent_ed.encoding).unwrap();
    let jwks = json!({"keys": [issuer_ed.jwks_entry("independent-ed")]});
    let v = Verifier::new(
        VerifierConfig::new(ISSUER, API),
        KeySource::from_jwks(parse_jwks(&jwks)),
    )
    .with_clock(Arc::new(VerifierClock(h.clock.clone())));
    verify(&v, &Req::dpop(&token, &proof), &route())
        .await
        .expect("independent EdDSA token and proof");
}

#[tokio::test]
async fn proofs_from_our_dpop_key_verify_with_jsonwebtoken() {
    // The other direction: an independent verifier accepts our proofs.
    let (h, agent, token) = setup().await;
    let proof = post_proof(&agent.key, &token, h.now());
    let header = jsonwebtoken::decode_header(&proof).unwrap();
    assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
    let jwk = header.jwk.expect("jwk header");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(&proof, &key, &validation).unwrap();
    assert_eq!(data.claims["htm"], "POST");
    assert_eq!(data.claims["htu"], URL);
    assert_eq!(data.claims["ath"], ath(&token));
    assert_eq!(data.claims["iat"], h.now());
}
