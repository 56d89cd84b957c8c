//! DPoP (RFC 9449): proofs made by `DpopKey` verify, the RFC's own example
//! proof verifies, and every §4.3 check fails on its own; `htu`
//! normalization; key loading.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{
    ath, normalize_htu, verify_dpop_proof, Alg, DpopCheck, DpopError, DpopKey, JoseError,
    VerifiedProof,
};
use common::{b64, compact, key, obj, other_key};
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{EdDSA, ES384};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NOW: i64 = 1_760_000_000;
const URL: &str = "https://api.example.com/patches";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln";

fn check<'a>(jkt: Option<&'a str>) -> DpopCheck<'a> {
    DpopCheck {
        method: "POST",
        url: URL,
        access_token: Some(TOKEN),
        expected_jkt: jkt,
        now: NOW,
        max_age: 60,
        leeway: 5,
        nonce: None,
        allowed: &Alg::ALL,
        max_len: 8192,
    }
}

fn proof(alg: Alg) -> String {
    key(alg).proof("POST", URL, Some(TOKEN), None, NOW).unwrap()
}

/// Claims of a well-formed proof for `check(..)`.
fn claims() -> Map<String, Value> {
    obj(json!({"jti": "jti-1", "htm": "POST", "htu": URL, "iat": NOW, "ath": ath(TOKEN)}))
}

fn dpop_header(k: &DpopKey) -> Map<String, Value> {
    obj(json!({"typ": "dpop+jwt", "alg": k.alg().as_str(), "jwk": k.public_jwk()}))
}

/// A proof by `key(ES256)` with these claims (raw JSON payload).
fn proof_with_payload(payload: &[u8]) -> String {
    let k = key(Alg::Es256);
    k.sign_compact(&dpop_header(k), payload).unwrap()
}

fn proof_with_claims(c: &Map<String, Value>) -> String {
    proof_with_payload(&serde_json::to_vec(c).unwrap())
}

fn refused(proof: &str, check: &DpopCheck<'_>) -> DpopError {
    match verify_dpop_proof(proof, check) {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e,
    }
}

/// RFC 9449 §4.1, Figure 3: the example proof for the token request (its
/// ES256 signature was checked independently with python `cryptography`
/// against the example key before being pinned here).
const RFC9449_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

#[test]
fn rfc9449_s4_1_example_proof_verifies() {
    let c = DpopCheck {
        method: "POST",
        url: "https://server.example.com/token",
        access_token: None,
        expected_jkt: Some(RFC9449_JKT),
        now: 1_562_262_616,
        max_age: 60,
        leeway: 0,
        nonce: None,
        allowed: &[Alg::Es256],
        max_len: 4096,
    };
    assert_eq!(
        verify_dpop_proof(RFC9449_PROOF, &c).unwrap(),
        VerifiedProof {
            jkt: RFC9449_JKT.into(),
            jti: "-BwC3ESc6acc2lTc".into(),
            iat: 1_562_262_616,
            htm: "POST".into(),
            htu: "https://server.example.com/token".into(),
        }
    );
    let get = DpopCheck { method: "GET", ..c };
    assert!(matches!(
        refused(RFC9449_PROOF, &get),
        DpopError::HtmMismatch { .. }
    ));
    let later = DpopCheck {
        now: 1_562_262_616 + 61,
        ..c
    };
    assert!(matches!(
        refused(RFC9449_PROOF, &later),
        DpopError::IatTooOld { .. }
    ));
}

#[test]
fn rfc9449_s7_1_ath_example() {
    // RFC 9449 §7.1: the access token of Figure 12 and its "ath".
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn rfc9449_s4_2_proof_made_by_dpop_key_verifies() {
    for alg in Alg::ALL {
        let k = key(alg);
        let p = k
            .proof(
                "POST",
                "HTTPS://API.Example.com:443/patches?x=1#f",
                Some(TOKEN),
                Some("n-1"),
                NOW,
            )
            .unwrap();
        let jws = ajwt_jose::CompactJws::parse(&p, 8192).unwrap();
        assert_eq!(jws.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(jws.alg, alg);
        assert_eq!(jws.header["jwk"], Value::Object(k.public_jwk()));
        let c: Value = serde_json::from_slice(&jws.payload).unwrap();
        assert_eq!(
            c["htu"], URL,
            "htu is normalized, without query and fragment"
        );
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["iat"], NOW);
        assert_eq!(c["nonce"], "n-1");
        assert_eq!(c["ath"], ath(TOKEN));
        assert_eq!(common::unb64(c["jti"].as_str().unwrap()).len(), 16);
        let thumbprint = k.thumbprint();
        let with_nonce = DpopCheck {
            nonce: Some("n-1"),
            ..check(Some(&thumbprint))
        };
        let v = verify_dpop_proof(&p, &with_nonce).unwrap();
        assert_eq!(v.jkt, thumbprint);
        assert_eq!(v.htu, URL);
        assert_eq!((v.iat, v.htm.as_str()), (NOW, "POST"));
        assert_eq!(v.jti, c["jti"]);
    }
    // Two proofs never share a jti.
    let a = verify_dpop_proof(&proof(Alg::EdDsa), &check(None)).unwrap();
    let b = verify_dpop_proof(&proof(Alg::EdDsa), &check(None)).unwrap();
    assert_ne!(a.jti, b.jti);
    // At a token endpoint: no access token, no ath.
    let p = key(Alg::EdDsa).proof("POST", URL, None, None, NOW).unwrap();
    let c = DpopCheck {
        access_token: None,
        ..check(None)
    };
    verify_dpop_proof(&p, &c).unwrap();
}

#[test]
fn rfc9449_s4_3_step2_malformed_proof() {
    assert!(matches!(
        refused("not-a-jwt", &check(None)),
        DpopError::Malformed(JoseError::Malformed(_))
    ));
    let p = proof(Alg::Es256);
    assert!(matches!(
        refused(&format!("{p}.{p}"), &check(None)),
        DpopError::Malformed(_)
    ));
    let small = DpopCheck {
        max_len: 100,
        ..check(None)
    };
    assert_eq!(
        refused(&p, &small),
        DpopError::Malformed(JoseError::TooLarge {
            len: p.len(),
            max: 100
        })
    );
    let parts: Vec<&str> = p.split('.').collect();
    let json = json!({"payload": parts[1], "protected": parts[0], "signature": parts[2]});
    assert_eq!(
        refused(&json.to_string(), &check(None)),
        DpopError::Malformed(JoseError::JsonSerializationNotSupported)
    );
}

#[test]
fn rfc9449_s4_3_step4_wrong_typ() {
    let k = key(Alg::Es256);
    for typ in [
        json!("jwt"),
        json!("at+jwt"),
        json!("application/dpop+jwt"),
        json!("DPOP+JWT"),
    ] {
        let mut header = dpop_header(k);
        header.insert("typ".into(), typ.clone());
        let p = k
            .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
            .unwrap();
        assert_eq!(
            refused(&p, &check(None)),
            DpopError::WrongType(typ.as_str().map(str::to_owned))
        );
    }
    let mut header = dpop_header(k);
    header.remove("typ");
    let p = k
        .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    assert_eq!(refused(&p, &check(None)), DpopError::WrongType(None));
}

#[test]
fn rfc9449_s4_3_step5_alg_none_hs256_and_allow_list() {
    let k = key(Alg::Es256);
    let payload = serde_json::to_vec(&claims()).unwrap();
    for alg in ["none", "HS256"] {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": k.public_jwk()}).to_string();
        let sig: &[u8] = if alg == "none" { b"" } else { &[7u8; 32] };
        assert_eq!(
            refused(&compact(&header, &payload, sig), &check(None)),
            DpopError::UnsupportedAlgorithm(alg.into())
        );
    }
    let only_eddsa = DpopCheck {
        allowed: &[Alg::EdDsa],
        ..check(None)
    };
    assert_eq!(
        refused(&proof(Alg::Es256), &only_eddsa),
        DpopError::AlgorithmNotAllowed("ES256".into())
    );
}

#[test]
fn rfc9449_s4_3_step6_jwk_missing_private_or_unusable() {
    let k = key(Alg::Es256);
    // No jwk header.
    let p = k.sign_jws("dpop+jwt", &claims()).unwrap();
    assert_eq!(refused(&p, &check(None)), DpopError::MissingJwk);
    // The jwk carries the private key ("d").
    let private = josekit::jwk::Jwk::from_bytes(k.to_pkcs8_pem().unwrap().as_bytes());
    assert!(private.is_err(), "sanity: PEM is not a JWK");
    let pair = josekit::jws::ES256
        .key_pair_from_pem(k.to_pkcs8_pem().unwrap().as_bytes())
        .unwrap();
    let private_jwk: Map<String, Value> = pair.to_jwk_private_key().as_ref().clone();
    assert!(private_jwk.contains_key("d"));
    let mut header = dpop_header(k);
    header.insert("jwk".into(), Value::Object(private_jwk));
    let p = k
        .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    assert_eq!(
        refused(&p, &check(None)),
        DpopError::PrivateKeyInJwk("d".into())
    );
    // A symmetric jwk.
    header.insert("jwk".into(), json!({"kty": "oct", "k": "c2VjcmV0"}));
    let p = k
        .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    assert_eq!(
        refused(&p, &check(None)),
        DpopError::PrivateKeyInJwk("k".into())
    );
    // Not an object; a P-384 key; an Ed448 key; a small-order Ed25519 point.
    let p384 = ES384.generate_key_pair().unwrap().to_jwk_public_key();
    let ed448 = EdDSA
        .generate_key_pair(EdCurve::Ed448)
        .unwrap()
        .to_jwk_public_key();
    for jwk in [
        json!("a string"),
        Value::Object(p384.as_ref().clone()),
        Value::Object(ed448.as_ref().clone()),
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64([0u8; 32])}),
    ] {
        header.insert("jwk".into(), jwk.clone());
        let p = k
            .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
            .unwrap();
        assert!(
            matches!(refused(&p, &check(None)), DpopError::UnusableJwk(_)),
            "{jwk}"
        );
    }
    // A jwk that does not fit the alg.
    header.insert("jwk".into(), Value::Object(key(Alg::EdDsa).public_jwk()));
    let p = k
        .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    assert_eq!(
        refused(&p, &check(None)),
        DpopError::KeyAlgMismatch {
            alg: "ES256".into(),
            kty: "OKP".into()
        }
    );
}

#[test]
fn rfc9449_s4_3_step7_bad_signature() {
    // Signed by one key, another key (of the same type) in the header.
    let k = key(Alg::Es256);
    let mut header = dpop_header(k);
    header.insert(
        "jwk".into(),
        Value::Object(other_key(Alg::Es256).public_jwk()),
    );
    let p = k
        .sign_compact(&header, &serde_json::to_vec(&claims()).unwrap())
        .unwrap();
    assert_eq!(refused(&p, &check(None)), DpopError::BadSignature);
    // Tampered payload.
    let good = proof(Alg::EdDsa);
    let (h, rest) = good.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let mut c = claims();
    c.insert("htm".into(), json!("DELETE"));
    let tampered = format!("{h}.{}.{s}", b64(serde_json::to_vec(&c).unwrap()));
    let delete = DpopCheck {
        method: "DELETE",
        ..check(None)
    };
    assert_eq!(refused(&tampered, &delete), DpopError::BadSignature);
}

#[test]
fn rfc9449_s4_3_step3_claims_parsed_strictly() {
    assert!(matches!(
        refused(&proof_with_payload(br#"{"jti":"a","jti":"b"}"#), &check(None)),
        DpopError::InvalidClaims(m) if m.contains("duplicate")
    ));
    assert!(matches!(
        refused(&proof_with_payload(b"[1]"), &check(None)),
        DpopError::InvalidClaims(m) if m.contains("array")
    ));
    assert!(matches!(
        refused(&proof_with_payload(b"not json"), &check(None)),
        DpopError::InvalidClaims(_)
    ));
    for (name, missing) in [
        ("jti", "jti"),
        ("htm", "htm"),
        ("htu", "htu"),
        ("iat", "iat"),
        ("ath", "ath"),
    ] {
        let mut c = claims();
        c.remove(name);
        assert_eq!(
            refused(&proof_with_claims(&c), &check(None)),
            DpopError::MissingClaim(missing),
            "{name}"
        );
    }
    let mut c = claims();
    c.insert("htm".into(), json!(1));
    assert!(matches!(
        refused(&proof_with_claims(&c), &check(None)),
        DpopError::InvalidClaims(_)
    ));
}

#[test]
fn rfc9449_s4_3_jti_checked() {
    for (jti, needle) in [
        (json!(""), "empty"),
        (json!("x".repeat(257)), "256"),
        (json!(12), "number"),
    ] {
        let mut c = claims();
        c.insert("jti".into(), jti);
        assert!(matches!(
            refused(&proof_with_claims(&c), &check(None)),
            DpopError::InvalidJti(m) if m.contains(needle)
        ));
    }
    let mut c = claims();
    c.insert("jti".into(), json!("é".repeat(256)));
    verify_dpop_proof(&proof_with_claims(&c), &check(None)).unwrap();
}

#[test]
fn rfc9449_s4_3_step8_htm_mismatch() {
    for method in ["GET", "post", "PUT"] {
        let c = DpopCheck {
            method,
            ..check(None)
        };
        assert_eq!(
            refused(&proof(Alg::Es256), &c),
            DpopError::HtmMismatch {
                expected: method.into(),
                found: "POST".into()
            }
        );
    }
}

#[test]
fn rfc9449_s4_3_step9_htu_mismatch() {
    for url in [
        "https://api.example.com/patches/1",
        "https://api.example.com/Patches",
        "https://other.example.com/patches",
        "http://api.example.com/patches",
        "https://api.example.com:8443/patches",
        "https://api.example.com/patches/",
    ] {
        let c = DpopCheck { url, ..check(None) };
        assert!(
            matches!(
                refused(&proof(Alg::Es256), &c),
                DpopError::HtuMismatch { .. }
            ),
            "{url}"
        );
    }
    let mut c = claims();
    c.insert("htu".into(), json!("ftp://api.example.com/patches"));
    assert!(matches!(
        refused(&proof_with_claims(&c), &check(None)),
        DpopError::InvalidHtu(JoseError::InvalidUrl(_))
    ));
    let bad_request = DpopCheck {
        url: "/patches",
        ..check(None)
    };
    assert!(matches!(
        refused(&proof(Alg::Es256), &bad_request),
        DpopError::InvalidRequestUrl(_)
    ));
}

#[test]
fn rfc9449_s4_3_step9_htu_query_and_fragment_normalized_away() {
    // The request carries a query; the proof's htu has none (§4.2).
    for url in [
        "https://api.example.com/patches?dry_run=1",
        "https://api.example.com/patches#top",
        "HTTPS://API.EXAMPLE.COM:443/patches?x",
        "https://api.example.com/%70atches",
    ] {
        let c = DpopCheck { url, ..check(None) };
        verify_dpop_proof(&proof(Alg::Es256), &c).unwrap();
    }
    // A client that left the query in its htu is normalized the same way.
    let mut c = claims();
    c.insert(
        "htu".into(),
        json!("https://api.example.com/patches?dry_run=1#frag"),
    );
    let v = verify_dpop_proof(&proof_with_claims(&c), &check(None)).unwrap();
    assert_eq!(v.htu, URL);
}

#[test]
fn rfc9449_s4_3_step11_iat_window() {
    let at = |iat: Value| {
        let mut c = claims();
        c.insert("iat".into(), iat);
        proof_with_claims(&c)
    };
    // Window: now - max_age - leeway ..= now + leeway.
    for ok in [NOW, NOW - 65, NOW + 5] {
        verify_dpop_proof(&at(json!(ok)), &check(None)).unwrap();
    }
    assert_eq!(
        refused(&at(json!(NOW - 66)), &check(None)),
        DpopError::IatTooOld {
            iat: NOW - 66,
            now: NOW
        }
    );
    assert_eq!(
        refused(&at(json!(NOW + 6)), &check(None)),
        DpopError::IatInFuture {
            iat: NOW + 6,
            now: NOW
        }
    );
    assert_eq!(
        refused(&at(json!(i64::MIN)), &check(None)),
        DpopError::IatTooOld {
            iat: i64::MIN,
            now: NOW
        }
    );
    for bad in [json!(1.5), json!("1760000000"), json!(null)] {
        assert!(matches!(
            refused(&at(bad), &check(None)),
            DpopError::InvalidIat(_)
        ));
    }
    let p = proof_with_payload(
        format!(
            r#"{{"jti":"j","htm":"POST","htu":"{URL}","iat":1760000000.0,"ath":"{}"}}"#,
            ath(TOKEN)
        )
        .as_bytes(),
    );
    assert!(matches!(refused(&p, &check(None)), DpopError::InvalidIat(m) if m.contains("integer")));
    let p = proof_with_payload(
        format!(
            r#"{{"jti":"j","htm":"POST","htu":"{URL}","iat":99999999999999999999,"ath":"{}"}}"#,
            ath(TOKEN)
        )
        .as_bytes(),
    );
    assert!(matches!(refused(&p, &check(None)), DpopError::InvalidIat(m) if m.contains("range")));
}

#[test]
fn rfc9449_s8_nonce_required_and_mismatch() {
    let k = key(Alg::EdDsa);
    let c = DpopCheck {
        nonce: Some("server-nonce-2"),
        ..check(None)
    };
    let without = k.proof("POST", URL, Some(TOKEN), None, NOW).unwrap();
    let e = refused(&without, &c);
    assert_eq!(e, DpopError::NonceRequired);
    assert!(e.is_nonce_error());
    let stale = k
        .proof("POST", URL, Some(TOKEN), Some("server-nonce-1"), NOW)
        .unwrap();
    let e = refused(&stale, &c);
    assert_eq!(e, DpopError::NonceMismatch);
    assert!(e.is_nonce_error());
    let mut claims = claims();
    claims.insert("nonce".into(), json!(2));
    let typed = proof_with_claims(&claims);
    assert_eq!(refused(&typed, &c), DpopError::NonceMismatch);
    let fresh = k
        .proof("POST", URL, Some(TOKEN), Some("server-nonce-2"), NOW)
        .unwrap();
    verify_dpop_proof(&fresh, &c).unwrap();
    // A nonce the server did not ask for is ignored.
    verify_dpop_proof(&stale, &check(None)).unwrap();
    assert!(!DpopError::BadSignature.is_nonce_error());
}

#[test]
fn rfc9449_s4_3_step12_ath_missing_or_wrong() {
    let k = key(Alg::Es256);
    let no_ath = k.proof("POST", URL, None, None, NOW).unwrap();
    assert_eq!(
        refused(&no_ath, &check(None)),
        DpopError::MissingClaim("ath")
    );
    let other_token = k
        .proof("POST", URL, Some("another.access.token"), None, NOW)
        .unwrap();
    assert_eq!(refused(&other_token, &check(None)), DpopError::AthMismatch);
}

#[test]
fn rfc9449_s4_3_step12_thumbprint_mismatch_token_bound_to_another_agent() {
    // The draft's central PoP threat (§9.2.2): agent B presents a token bound
    // to agent A's key with a proof made with its own key.
    for alg in Alg::ALL {
        let agent_a = key(alg).thumbprint();
        let agent_b = other_key(alg);
        let stolen = agent_b.proof("POST", URL, Some(TOKEN), None, NOW).unwrap();
        assert_eq!(
            refused(&stolen, &check(Some(&agent_a))),
            DpopError::JktMismatch {
                expected: agent_a.clone(),
                found: agent_b.thumbprint()
            }
        );
        verify_dpop_proof(&stolen, &check(Some(&agent_b.thumbprint()))).unwrap();
    }
}

#[test]
fn dpop_errors_have_clear_messages() {
    let k = key(Alg::Es256);
    let e = refused(&k.sign_jws("jwt", &claims()).unwrap(), &check(None));
    assert_eq!(
        e.to_string(),
        "the DPoP proof typ is \"jwt\", not \"dpop+jwt\""
    );
    assert_eq!(
        DpopError::MissingJwk.to_string(),
        "the DPoP proof has no \"jwk\" header"
    );
    assert_eq!(
        DpopError::NonceRequired.to_string(),
        "a DPoP nonce is required"
    );
}

#[test]
fn rfc9449_s4_3_htu_normalization_cases() {
    for (input, expected) in [
        ("HTTPS://Example.COM:443/a?x#y", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("https://example.com/%7e", "https://example.com/~"),
        (
            "https://example.com/%7Euser/%41%2d%5F%2e",
            "https://example.com/~user/A-_.",
        ),
        (
            "https://example.com/a%2fb%3F",
            "https://example.com/a%2Fb%3F",
        ),
        ("https://example.com", "https://example.com/"),
        ("https://example.com?q", "https://example.com/"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/%2E%2E/c", "https://example.com/c"),
        ("https://EXAMPLE.com/A", "https://example.com/A"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://127.0.0.1/x", "https://127.0.0.1/x"),
        (
            "https://example.com/caf%C3%A9",
            "https://example.com/caf%C3%A9",
        ),
    ] {
        assert_eq!(normalize_htu(input).unwrap(), expected, "{input}");
    }
    for bad in [
        "/relative",
        "ftp://example.com/a",
        "urn:x:y",
        "https://user:pw@example.com/",
        "https://user@example.com/",
        "https://example.com/a b",
        "https://exa\tmple.com/",
        "https://example.com\\a",
        "https://example.com/%zz",
        "https://example.com/%4",
        "",
        "https://",
    ] {
        assert!(
            matches!(normalize_htu(bad), Err(JoseError::InvalidUrl(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn dpop_key_pem_round_trip_and_refusals() {
    for alg in Alg::ALL {
        let k = key(alg);
        let pem = k.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = DpopKey::from_pkcs8_pem(pem.as_bytes(), alg).unwrap();
        assert_eq!(again.thumbprint(), k.thumbprint());
        assert_eq!(again.alg(), alg);
        let p = again.proof("POST", URL, Some(TOKEN), None, NOW).unwrap();
        verify_dpop_proof(&p, &check(Some(&k.thumbprint()))).unwrap();
        let debug = format!("{k:?}");
        assert!(
            debug.contains(&k.thumbprint()) && !debug.contains("PRIVATE"),
            "{debug}"
        );
    }
    // The RSA key serves RS256 and PS256 alike.
    let rsa_pem = key(Alg::Rs256).to_pkcs8_pem().unwrap();
    let ps = DpopKey::from_pkcs8_pem(rsa_pem.as_bytes(), Alg::Ps256).unwrap();
    assert_eq!(ps.thumbprint(), key(Alg::Rs256).thumbprint());
    // Wrong key type for the alg.
    let ed_pem = key(Alg::EdDsa).to_pkcs8_pem().unwrap();
    assert!(DpopKey::from_pkcs8_pem(ed_pem.as_bytes(), Alg::Es256).is_err());
    let ec_pem = key(Alg::Es256).to_pkcs8_pem().unwrap();
    assert!(DpopKey::from_pkcs8_pem(ec_pem.as_bytes(), Alg::Rs256).is_err());
    let p384 = String::from_utf8(ES384.generate_key_pair().unwrap().to_pem_private_key()).unwrap();
    assert!(DpopKey::from_pkcs8_pem(p384.as_bytes(), Alg::Es256).is_err());
    let ed448 = EdDSA
        .generate_key_pair(EdCurve::Ed448)
        .unwrap()
        .to_pem_private_key();
    assert!(DpopKey::from_pkcs8_pem(&ed448, Alg::EdDsa).is_err());
    // Small RSA and e = 3 are refused by the public-key checks.
    let small = openssl::rsa::Rsa::generate(1024).unwrap();
    let small = openssl::pkey::PKey::from_rsa(small).unwrap();
    let small_pem = small.private_key_to_pem_pkcs8().unwrap();
    assert!(DpopKey::from_pkcs8_pem(&small_pem, Alg::Rs256).is_err());
    let e3 = openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(3).unwrap())
        .unwrap();
    let e3_pem = openssl::pkey::PKey::from_rsa(e3)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    assert!(matches!(
        DpopKey::from_pkcs8_pem(&e3_pem, Alg::Rs256),
        Err(JoseError::UnsupportedKey(m)) if m.contains("65537")
    ));
    // Only unencrypted PKCS#8.
    let traditional = josekit::jws::ES256
        .generate_key_pair()
        .unwrap()
        .to_traditional_pem_private_key();
    assert!(matches!(
        DpopKey::from_pkcs8_pem(&traditional, Alg::Es256),
        Err(JoseError::InvalidKey(m)) if m.contains("PKCS#8")
    ));
    assert!(DpopKey::from_pkcs8_pem(b"garbage", Alg::Es256).is_err());
    assert!(DpopKey::from_pkcs8_pem(&[0xff, 0xfe], Alg::Es256).is_err());
}

#[test]
fn rfc9449_proof_creation_refuses_bad_htm_and_htu() {
    let k = key(Alg::EdDsa);
    for htm in ["", "GET POST", "GE\nT"] {
        assert!(matches!(
            k.proof(htm, URL, None, None, NOW),
            Err(JoseError::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        k.proof("GET", "mailto:a@example.com", None, None, NOW),
        Err(JoseError::InvalidUrl(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalize_htu_is_idempotent(
        host in "[a-zA-Z0-9]{1,10}(\\.[a-zA-Z]{2,5})?",
        port in proptest::option::of(1u16..),
        path in "(/([a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9a-fA-F]{2}){0,8}){0,4}",
        https in any::<bool>(),
    ) {
        let scheme = if https { "https" } else { "http" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{host}{port}{path}");
        if let Ok(once) = normalize_htu(&url) {
            prop_assert_eq!(normalize_htu(&once).unwrap(), once.clone());
        }
    }

    #[test]
    fn verify_dpop_proof_never_panics(s in "\\PC{0,300}") {
        let _ = verify_dpop_proof(&s, &check(None));
    }
}

/// RFC 7638 §3.2 written out by hand: the required members in
/// lexicographic order, no whitespace, SHA-256, base64url.
fn rfc7638(jwk: &Map<String, Value>) -> String {
    use sha2::Digest as _;
    let m = |k: &str| jwk[k].as_str().unwrap().to_owned();
    let text = match m("kty").as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            m("crv"),
            m("x"),
            m("y")
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv"), m("x")),
        other => panic!("kty {other}"),
    };
    b64(sha2::Sha256::digest(text.as_bytes()))
}

/// I-151: the proof key is built once per encoded header and reused; a
/// reused key decides exactly as a fresh one: the same header signed by
/// another key is still a bad signature, and the thumbprint is the header
/// key's (checked against an RFC 7638 thumbprint from josekit's JWK).
#[test]
fn i151_rfc9449_s4_3_cached_proof_key_decides_like_a_fresh_one() {
    for alg in [Alg::Es256, Alg::EdDsa] {
        let k = key(alg);
        let header = dpop_header(k);
        let payload = serde_json::to_vec(&claims()).unwrap();
        let first = k.sign_compact(&header, &payload).unwrap();
        let expected = rfc7638(&k.public_jwk());
        for _ in 0..3 {
            let v = verify_dpop_proof(&first, &check(Some(&expected))).unwrap();
            assert_eq!(v.jkt, expected);
        }
        // Same header bytes (a cache hit), signed by another key.
        let header_bytes = serde_json::to_vec(&header).unwrap();
        let forged = other_key(alg).sign_raw(&header_bytes, &payload).unwrap();
        assert_eq!(
            forged.split('.').next(),
            k.sign_raw(&header_bytes, &payload)
                .unwrap()
                .split('.')
                .next()
        );
        for _ in 0..2 {
            assert_eq!(refused(&forged, &check(None)), DpopError::BadSignature);
        }
    }
}
