//! An independent implementation, the `jsonwebtoken` crate (ring backend):
//! tokens and DPoP proofs it signs with josekit-generated keys verify with
//! our code, and our DPoP proofs verify with it given our public JWK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{ath, verify_dpop_proof, Alg, CompactJws, DpopCheck, DpopKey, PublicKey};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde_json::{json, Value};

const NOW: i64 = 1_760_000_000;
const URL: &str = "https://api.example.com/patches";
const TOKEN: &str = "intent.token.value";

/// jsonwebtoken 9 has no RFC 9864 names, so the fully-specified `Ed25519`
/// is left out of these loops ([`THEIR_ALGS`]); `EdDSA` covers the curve.
const THEIR_ALGS: [Alg; 4] = [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Ps256];

fn their_alg(alg: Alg) -> Algorithm {
    match alg {
        Alg::Es256 => Algorithm::ES256,
        Alg::EdDsa | Alg::Ed25519 => Algorithm::EdDSA,
        Alg::Rs256 => Algorithm::RS256,
        Alg::Ps256 => Algorithm::PS256,
    }
}

/// A josekit-generated key (via `DpopKey::generate`) as a jsonwebtoken
/// signing key, from its PKCS#8 PEM.
fn their_key(key: &DpopKey) -> EncodingKey {
    let pem = key.to_pkcs8_pem().unwrap();
    match key.alg() {
        Alg::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        Alg::EdDsa | Alg::Ed25519 => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        Alg::Rs256 | Alg::Ps256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    }
}

fn their_validation(alg: Alg) -> Validation {
    let mut v = Validation::new(their_alg(alg));
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    v
}

#[test]
fn jsonwebtoken_tokens_verify_with_compact_jws() {
    for alg in THEIR_ALGS {
        let key = common::key(alg);
        let mut header = Header::new(their_alg(alg));
        header.typ = Some("intent+jwt".into());
        header.kid = Some("issuer-key-1".into());
        let claims = json!({"iss": "https://idp.example.com", "sub": "agent-1", "exp": NOW + 300});
        let token = encode(&header, &claims, &their_key(key)).unwrap();

        let jws = CompactJws::parse(&token, 8192).unwrap();
        assert_eq!(jws.alg, alg);
        assert_eq!(jws.kid.as_deref(), Some("issuer-key-1"));
        assert!(ajwt_jose::typ_matches(jws.typ.as_deref(), "intent+jwt"));
        if alg == Alg::Es256 {
            assert_eq!(
                jws.signature().len(),
                64,
                "jsonwebtoken signs ES256 as R || S"
            );
        }
        let mut jwk = key.public_jwk();
        jwk.insert("kid".into(), json!("issuer-key-1"));
        let public = PublicKey::from_jwk(&jwk).unwrap();
        jws.verify_with(&public, &Alg::ALL).unwrap();
        let payload: Value = serde_json::from_slice(&jws.payload).unwrap();
        assert_eq!(payload, claims);
        assert!(jws
            .verify_with(common::other_key(alg).public_key(), &Alg::ALL)
            .is_err());
    }
}

#[test]
fn jsonwebtoken_dpop_proofs_verify_with_verify_dpop_proof() {
    for alg in THEIR_ALGS {
        let key = common::key(alg);
        let jwk: Jwk = serde_json::from_value(Value::Object(key.public_jwk())).unwrap();
        let mut header = Header::new(their_alg(alg));
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(jwk);
        let claims = json!({
            "jti": "e1c8d6c2-7a6f-4b8c-9d3e-1f2a3b4c5d6e",
            "htm": "POST",
            "htu": URL,
            "iat": NOW,
            "ath": ath(TOKEN),
        });
        let proof = encode(&header, &claims, &their_key(key)).unwrap();
        let thumbprint = key.thumbprint();
        let check = DpopCheck {
            method: "POST",
            url: URL,
            access_token: Some(TOKEN),
            expected_jkt: Some(&thumbprint),
            now: NOW,
            max_age: 60,
            leeway: 5,
            nonce: None,
            allowed: &Alg::ALL,
            max_len: 8192,
        };
        let verified = verify_dpop_proof(&proof, &check).unwrap();
        assert_eq!(verified.jkt, thumbprint);
        assert_eq!(verified.jti, "e1c8d6c2-7a6f-4b8c-9d3e-1f2a3b4c5d6e");
        // Bound to another agent: refused.
        let other = common::other_key(alg).thumbprint();
        let stolen = DpopCheck {
            expected_jkt: Some(&other),
            ..check
        };
        assert!(verify_dpop_proof(&proof, &stolen).is_err());
    }
}

#[test]
fn our_dpop_proofs_verify_with_jsonwebtoken() {
    for alg in THEIR_ALGS {
        let key = common::key(alg);
        let proof = key
            .proof(
                "GET",
                "https://API.example.com/patches?page=2",
                Some(TOKEN),
                Some("nonce-1"),
                NOW,
            )
            .unwrap();
        let header = decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, their_alg(alg));
        let jwk = header.jwk.expect("jwk header");
        assert_eq!(
            serde_json::to_value(&jwk).unwrap(),
            Value::Object(key.public_jwk()),
            "jsonwebtoken reads back exactly our public JWK"
        );
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let data = decode::<Value>(&proof, &decoding, &their_validation(alg)).unwrap();
        assert_eq!(data.claims["htm"], "GET");
        assert_eq!(data.claims["htu"], "https://api.example.com/patches");
        assert_eq!(data.claims["iat"], NOW);
        assert_eq!(data.claims["ath"], ath(TOKEN));
        assert_eq!(data.claims["nonce"], "nonce-1");
        // And with the key of another agent, jsonwebtoken refuses it too.
        let other: Jwk =
            serde_json::from_value(Value::Object(common::other_key(alg).public_jwk())).unwrap();
        assert!(decode::<Value>(
            &proof,
            &DecodingKey::from_jwk(&other).unwrap(),
            &their_validation(alg)
        )
        .is_err());
    }
}

#[test]
fn jsonwebtoken_accepts_our_signed_tokens() {
    for alg in THEIR_ALGS {
        let key = common::key(alg);
        let token = key
            .sign_jws(
                "intent+jwt",
                &common::obj(json!({"sub": "agent-1", "n": 1})),
            )
            .unwrap();
        let jwk: Jwk = serde_json::from_value(Value::Object(key.public_jwk())).unwrap();
        let data = decode::<Value>(
            &token,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &their_validation(alg),
        )
        .unwrap();
        assert_eq!(data.claims, json!({"sub": "agent-1", "n": 1}));
        assert_eq!(data.header.typ.as_deref(), Some("intent+jwt"));
    }
}
