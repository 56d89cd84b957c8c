//! Proof-of-possession attacks (§9.2.2, threat T2 of §9.5–§9.6, RFC 9449
//! §4.3): a VALID intent token from the real issuer, presented with a missing,
//! stolen, replayed, misdirected, stale or malformed DPoP proof. The central
//! one is T2: a sibling agent of the same process steals the token and tries
//! to use it with its own registered key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_jose::Alg;
use ajwt_verifier::{NonceSource, PopPolicy, Requirements, Scheme, Verifier, VerifyError};
use common::*;
use serde_json::json;

/// Expects `InvalidDpopProof` whose description mentions `reason`, with the
/// `401 invalid_dpop_proof` DPoP challenge.
#[track_caller]
fn assert_invalid_proof(v: &Verifier, req: &Req, e: &VerifyError, reason: &str) {
    match e {
        VerifyError::InvalidDpopProof(m) => {
            assert!(
                m.contains(reason),
                "description {m:?} does not mention {reason:?}"
            )
        }
        other => panic!("expected InvalidDpopProof({reason:?}), got {other:?}"),
    }
    assert_refusal(v, req, e, &INVALID_DPOP_PROOF);
}

const KEY_MISMATCH: &str = "is not the key the token is bound to";

// ---------------------------------------------------------------------------
// Presentation (RFC 9449 §7)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_proof_is_refused_when_pop_is_required() {
    let (h, _, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let req = Req::dpop_without_proof(&token);
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::DpopRequired(_)), "{e:?}");
    assert_refusal(&v, &req, &e, &INVALID_DPOP_PROOF);
    // Under `optional`, the DPoP scheme still needs its proof.
    let v = verifier(&h, PopPolicy::Optional);
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::DpopRequired(_)), "{e:?}");
}

#[tokio::test]
async fn bearer_presentation_of_a_bound_token_is_refused_when_pop_is_required() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let req = Req::bearer(&token);
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::DpopRequired(_)), "{e:?}");
    // The refusal asks for DPoP although the client used Bearer.
    assert_refusal(&v, &req, &e, &INVALID_DPOP_PROOF);
    // Bearer with a valid proof alongside: still not a DPoP presentation.
    let req = Req::bearer(&token).with_proof(&post_proof(&agent.key, &token, h.now()));
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::DpopRequired(_)), "{e:?}");
    // Under `optional`, a Bearer presentation carrying a proof is refused (RFC 9449 §7.2).
    let v = verifier(&h, PopPolicy::Optional);
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::InvalidDpopProof(_)), "{e:?}");
}

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let good = post_proof(&agent.key, &token, h.now());
    let other = post_proof(&agent.key, &token, h.now());
    for dpop in [vec![good.clone(), other], vec![good.clone(), good.clone()]] {
        let req = Req {
            dpop,
            ..Req::dpop_without_proof(&token)
        };
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "more than one DPoP header");
    }
    // The single proof is still fresh: it was not consumed by the refused requests.
    verify(&v, &Req::dpop(&token, &good), &route())
        .await
        .expect("single proof");
}

// ---------------------------------------------------------------------------
// Threat T2: a token stolen by another agent of the same process
// ---------------------------------------------------------------------------

#[tokio::test]
async fn t2_token_stolen_by_sibling_agent_is_refused() {
    for (victim_alg, thief_alg) in [
        (Alg::Es256, Alg::Es256),
        (Alg::Es256, Alg::EdDsa),
        (Alg::EdDsa, Alg::EdDsa),
        (Alg::EdDsa, Alg::Es256),
    ] {
        let h = TestIssuer::new().await;
        let victim = h.register(AGENT, victim_alg).await;
        let sibling = h.register(SIBLING, thief_alg).await;
        let token = h.token(&victim).await;
        let v = verifier(&h, PopPolicy::Required);

        // The sibling presents the stolen token with a perfectly formed proof
        // signed by ITS OWN registered key (right method, URL, ath, fresh iat).
        let req = Req::dpop(&token, &post_proof(&sibling.key, &token, h.now()));
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, KEY_MISMATCH);
        assert!(
            e.to_string().contains(&jkt(&sibling.key)) && e.to_string().contains(&jkt(&victim.key)),
            "{e}"
        );

        // ... or with no proof, as a bearer token.
        let req = Req::bearer(&token);
        let e = refused(verify(&v, &req, &route()).await);
        assert!(matches!(e, VerifyError::DpopRequired(_)), "{e:?}");

        // ... or copies the victim's PUBLIC jwk into the header and signs with its own key.
        let thief = if thief_alg == Alg::Es256 {
            RawKey::es256()
        } else {
            RawKey::ed25519()
        };
        let mut header =
            json!({"typ": "dpop+jwt", "alg": thief.alg_name(), "jwk": public_jwk(&victim.key)});
        if thief_alg != victim_alg {
            // With a header alg that fits the victim's key type.
            header["alg"] = json!(victim_alg.as_str());
        }
        let forged = thief.sign_raw(&header, &proof_claims(&token, h.now()));
        let req = Req::dpop(&token, &forged);
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "signature does not verify");

        // Control: the victim's own proof passes, and the sibling's own token
        // with its own proof passes too.
        let ok = verify(&v, &presented(&h, &victim, &token), &route())
            .await
            .expect("the victim's own presentation");
        assert_eq!(ok.dpop_jkt.as_deref(), Some(jkt(&victim.key).as_str()));
        let own = h.token_for(&sibling, &["repo:read"], API, None).await;
        verify(
            &v,
            &presented(&h, &sibling, &own),
            &Requirements::scopes(["repo:read"]),
        )
        .await
        .expect("the sibling's own token");
    }
}

#[tokio::test]
async fn t2_stolen_token_with_a_proof_stolen_for_another_request_is_refused() {
    // The sibling also captured a proof the victim made for another request:
    // it is bound to another method/URL (or already used) and cannot be re-aimed.
    let (h, victim, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let captured = proof(
        &victim.key,
        "GET",
        "https://api.example.com/status",
        Some(&token),
        None,
        h.now(),
    );
    let req = Req::dpop(&token, &captured);
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "htm");
}

// ---------------------------------------------------------------------------
// Proof checks (RFC 9449 §4.3 steps 1–12, §11.1)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn replayed_proof_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let req = presented(&h, &agent, &token);
    verify(&v, &req, &route()).await.expect("first use");
    let e = refused(verify(&v, &req, &route()).await);
    assert_eq!(e, VerifyError::DpopReplay);
    assert_refusal(&v, &req, &e, &INVALID_DPOP_PROOF);
    // Still refused later within the window; a fresh proof is fine.
    h.clock.set(h.now() + 59);
    let e = refused(verify(&v, &req, &route()).await);
    assert_eq!(e, VerifyError::DpopReplay);
    verify(&v, &presented(&h, &agent, &token), &route())
        .await
        .expect("fresh proof");
}

#[tokio::test]
async fn replayed_proof_is_refused_under_concurrency() {
    let (h, agent, token) = setup().await;
    let v = Arc::new(verifier(&h, PopPolicy::Required));
    let req = presented(&h, &agent, &token);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (v, req) = (v.clone(), req.clone());
        tasks.push(tokio::spawn(
            async move { verify(&v, &req, &route()).await },
        ));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert_eq!(e, VerifyError::DpopReplay),
        }
    }
    assert_eq!(
        accepted, 1,
        "exactly one of 32 concurrent uses of one proof"
    );
}

#[tokio::test]
async fn proof_for_another_method_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    for htm in ["GET", "PUT", "DELETE", "post"] {
        let req = Req::dpop(
            &token,
            &proof(&agent.key, htm, URL, Some(&token), None, h.now()),
        );
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "htm");
    }
}

#[tokio::test]
async fn proof_for_another_url_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    for htu in [
        "https://api.example.com/patches/other",
        "https://api.example.com/admin",
        "https://evil.example.com/patches",
        "http://api.example.com/patches",
        "https://api.example.com:8443/patches",
    ] {
        let req = Req::dpop(
            &token,
            &proof(&agent.key, "POST", htu, Some(&token), None, h.now()),
        );
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "htu");
    }
    // RFC 9449 §4.3 step 9: query and fragment are ignored, and equivalent
    // spellings of the same URL are the same URL.
    for htu in [
        "https://api.example.com/patches?dry_run=1",
        "https://API.example.com:443/patches",
    ] {
        let claims = json!({"jti": fresh_jti(), "htm": "POST", "htu": htu, "iat": h.now(), "ath": ath(&token)});
        let signed = agent
            .key
            .sign_compact(
                json!({"typ": "dpop+jwt", "jwk": public_jwk(&agent.key)})
                    .as_object()
                    .unwrap(),
                &serde_json::to_vec(&claims).unwrap(),
            )
            .unwrap();
        verify(&v, &Req::dpop(&token, &signed), &route())
            .await
            .unwrap_or_else(|e| panic!("htu {htu}: {e:?}"));
    }
}

#[tokio::test]
async fn stale_proof_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let now = h.now();
    // dpop_window (60 s) plus the leeway (30 s) is the oldest accepted.
    let oldest = now - v.config().dpop_window - v.config().leeway.min(v.config().dpop_window);
    verify(
        &v,
        &Req::dpop(&token, &post_proof(&agent.key, &token, oldest)),
        &route(),
    )
    .await
    .expect("oldest accepted proof");
    for iat in [oldest - 1, now - 3600] {
        let req = Req::dpop(&token, &post_proof(&agent.key, &token, iat));
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "too old");
    }
}

#[tokio::test]
async fn proof_from_the_future_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let now = h.now();
    let latest = now + v.config().leeway.min(v.config().dpop_window);
    verify(
        &v,
        &Req::dpop(&token, &post_proof(&agent.key, &token, latest)),
        &route(),
    )
    .await
    .expect("latest accepted proof");
    for iat in [latest + 1, now + 3600] {
        let req = Req::dpop(&token, &post_proof(&agent.key, &token, iat));
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, "in the future");
    }
}

#[tokio::test]
async fn proof_with_wrong_ath_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    // A proof made for another token of the same agent.
    let other_token = h.token(&agent).await;
    let req = Req::dpop(&token, &post_proof(&agent.key, &other_token, h.now()));
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "ath");
    // A proof without ath.
    let req = Req::dpop(&token, &proof(&agent.key, "POST", URL, None, None, h.now()));
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "ath");
}

#[tokio::test]
async fn proof_with_a_private_key_in_its_jwk_is_refused() {
    let h = TestIssuer::new().await;
    for raw in [RawKey::es256(), RawKey::ed25519()] {
        let agent = h
            .register_key(
                &format!("agent-{}", raw.alg_name().to_lowercase()),
                raw.dpop_key(),
            )
            .await;
        let token = h.token_for(&agent, &["repo:write"], API, None).await;
        let v = verifier(&h, PopPolicy::Required);
        // The right key, signature valid, but the header jwk carries `d`.
        let forged = raw.proof_with(
            json!({"jwk": raw.private_jwk}),
            proof_claims(&token, h.now()),
        );
        let req = Req::dpop(&token, &forged);
        let e = refused(verify(&v, &req, &Requirements::scopes(["repo:write"])).await);
        assert_invalid_proof(&v, &req, &e, "private key material");
        // Control: the same proof with the public jwk passes.
        let good = raw.proof_with(json!({}), proof_claims(&token, h.now()));
        verify(
            &v,
            &Req::dpop(&token, &good),
            &Requirements::scopes(["repo:write"]),
        )
        .await
        .expect("control");
    }
}

#[tokio::test]
async fn proof_with_a_symmetric_or_unsigned_alg_is_refused() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required);
    let header = json!({"typ": "dpop+jwt", "jwk": public_jwk(&agent.key)});
    let claims = proof_claims(&token, h.now());
    // alg none, empty signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    let forged = format!("{}.{}.", b64_json(&none), b64_json(&claims));
    let req = Req::dpop(&token, &forged);
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "none");
    // HS256 keyed with the public JWK.
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let input = format!("{}.{}", b64_json(&hs), b64_json(&claims));
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(
            &serde_json::to_vec(&public_jwk(&agent.key)).unwrap(),
        ),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let req = Req::dpop(&token, &format!("{input}.{sig}"));
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "HS256");
}

#[tokio::test]
async fn proof_with_wrong_typ_or_without_jwk_is_refused() {
    let h = TestIssuer::new().await;
    let raw = RawKey::es256();
    let agent = h.register_key(AGENT, raw.dpop_key()).await;
    let token = h.token(&agent).await;
    let v = verifier(&h, PopPolicy::Required);
    for (typ, reason) in [
        (json!("JWT"), "typ"),
        (json!("at+jwt"), "typ"),
        (json!(null), "typ"),
    ] {
        let mut header = json!({"alg": "ES256", "jwk": raw.public_jwk});
        if !typ.is_null() {
            header["typ"] = typ;
        }
        let req = Req::dpop(
            &token,
            &raw.sign_raw(&header, &proof_claims(&token, h.now())),
        );
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, reason);
    }
    let req = Req::dpop(
        &token,
        &raw.sign_raw(
            &json!({"typ": "dpop+jwt", "alg": "ES256"}),
            &proof_claims(&token, h.now()),
        ),
    );
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, "jwk");
    // The token itself presented as its own proof.
    let req = Req::dpop(&token, &token);
    let e = refused(verify(&v, &req, &route()).await);
    assert!(matches!(e, VerifyError::InvalidDpopProof(_)), "{e:?}");
}

#[tokio::test]
async fn proof_with_missing_claims_is_refused() {
    let h = TestIssuer::new().await;
    let raw = RawKey::es256();
    let agent = h.register_key(AGENT, raw.dpop_key()).await;
    let token = h.token(&agent).await;
    let v = verifier(&h, PopPolicy::Required);
    for claim in ["jti", "htm", "htu", "iat"] {
        let mut claims = proof_claims(&token, h.now());
        claims.as_object_mut().unwrap().remove(claim);
        let req = Req::dpop(&token, &raw.proof_with(json!({}), claims));
        let e = refused(verify(&v, &req, &route()).await);
        assert_invalid_proof(&v, &req, &e, claim);
    }
}

#[tokio::test]
async fn proof_bound_through_cnf_jkt_is_checked_too() {
    // Tokens carrying cnf.jkt (RFC 9449 §6.1) instead of cnf.jwk.
    let (h, agent, token) = setup().await;
    let sibling = h.register(SIBLING, Alg::Es256).await;
    let v = verifier(&h, PopPolicy::Required);
    let mut claims = claims_of(&token);
    claims["cnf"] = json!({"jkt": jkt(&agent.key)});
    let bound = h.sign("JWT", &claims);
    let ok = verify(&v, &presented(&h, &agent, &bound), &route())
        .await
        .expect("owner");
    assert_eq!(ok.dpop_jkt, Some(jkt(&agent.key)));
    let req = presented(&h, &sibling, &bound);
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, KEY_MISMATCH);
}

// ---------------------------------------------------------------------------
// Server nonces (RFC 9449 §8)
// ---------------------------------------------------------------------------

struct Nonces(&'static str);

impl NonceSource for Nonces {
    fn current(&self) -> String {
        self.0.to_owned()
    }
    fn is_valid(&self, nonce: &str) -> bool {
        nonce == self.0
    }
}

#[tokio::test]
async fn nonce_is_required_then_accepted() {
    let (h, agent, token) = setup().await;
    let v = verifier(&h, PopPolicy::Required).with_nonces(Arc::new(Nonces("server-nonce-1")));
    assert_eq!(v.current_nonce().as_deref(), Some("server-nonce-1"));
    // No nonce, then a wrong one: use_dpop_nonce with the nonce to use.
    for nonce in [None, Some("stale-nonce")] {
        let req = Req::dpop(
            &token,
            &proof(&agent.key, "POST", URL, Some(&token), nonce, h.now()),
        );
        let e = refused(verify(&v, &req, &route()).await);
        assert_eq!(e, VerifyError::UseDpopNonce("server-nonce-1".into()));
        assert_refusal(
            &v,
            &req,
            &e,
            &Refusal {
                status: 401,
                code: Some("use_dpop_nonce"),
                scheme: Scheme::DPoP,
            },
        );
        let response = req.with_parts(|p| ajwt_verifier::axum_layer::error_response(&v, p, &e));
        assert_eq!(
            response
                .headers()
                .get("dpop-nonce")
                .map(|v| v.to_str().unwrap()),
            Some("server-nonce-1")
        );
    }
    // The nonce does not excuse anything else: a sibling's proof with the nonce is refused.
    let sibling = h.register(SIBLING, Alg::Es256).await;
    let req = Req::dpop(
        &token,
        &proof(
            &sibling.key,
            "POST",
            URL,
            Some(&token),
            Some("server-nonce-1"),
            h.now(),
        ),
    );
    let e = refused(verify(&v, &req, &route()).await);
    assert_invalid_proof(&v, &req, &e, KEY_MISMATCH);
    // Retry with the server's nonce: accepted, once.
    let req = Req::dpop(
        &token,
        &proof(
            &agent.key,
            "POST",
            URL,
            Some(&token),
            Some("server-nonce-1"),
            h.now(),
        ),
    );
    let ok = verify(&v, &req, &route())
        .await
        .expect("proof with the nonce");
    assert_eq!(ok.dpop_jkt, Some(jkt(&agent.key)));
    assert_eq!(
        refused(verify(&v, &req, &route()).await),
        VerifyError::DpopReplay
    );
}
