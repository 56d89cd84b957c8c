//! `CompactJws::parse` and `verify_with`: round trips for every algorithm
//! and every rejection (RFC 7515 §7.1, RFC 8725 §3.1, §3.11).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{Alg, CompactJws, JoseError, PublicKey};
use common::{b64, compact, key, obj, other_key};
use josekit::jws::{JwsSigner as _, HS256};
use proptest::prelude::*;
use serde_json::{json, Value};

const MAX: usize = 16 * 1024;

fn token(alg: Alg) -> String {
    key(alg)
        .sign_jws(
            "intent+jwt",
            &obj(json!({"sub": "agent-1", "scope": "repo:write"})),
        )
        .unwrap()
}

fn err(token: &str) -> JoseError {
    match CompactJws::parse(token, MAX) {
        Ok(jws) => panic!("parsed {token:?}: {jws:?}"),
        Err(e) => e,
    }
}

/// A token whose header is `header` (raw JSON), with a valid-looking rest.
fn with_header(header: &str) -> String {
    let t = token(Alg::Es256);
    let rest = t.split_once('.').unwrap().1;
    format!("{}.{rest}", b64(header))
}

#[test]
fn rfc7515_round_trip_every_alg() {
    for alg in Alg::ALL {
        let t = token(alg);
        let jws = CompactJws::parse(&t, MAX).unwrap();
        assert_eq!(jws.alg, alg);
        assert_eq!(jws.typ.as_deref(), Some("intent+jwt"));
        assert_eq!(jws.kid, None);
        assert_eq!(jws.header["alg"], alg.as_str());
        let claims: Value = serde_json::from_slice(&jws.payload).unwrap();
        assert_eq!(claims["sub"], "agent-1");
        assert_eq!(jws.signing_input(), t.rsplit_once('.').unwrap().0);
        assert_eq!(b64(jws.signature()), t.rsplit_once('.').unwrap().1);
        let public = key(alg).public_key();
        jws.verify_with(public, &Alg::ALL).unwrap();
        jws.verify_with(public, &[alg]).unwrap();
        // Another agent's key of the same type.
        assert_eq!(
            jws.verify_with(other_key(alg).public_key(), &Alg::ALL),
            Err(JoseError::BadSignature)
        );
        // Tampered payload and tampered signature.
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            b64(br#"{"sub":"agent-1","scope":"admin"}"#)
        );
        assert_eq!(
            CompactJws::parse(&forged, MAX)
                .unwrap()
                .verify_with(public, &Alg::ALL),
            Err(JoseError::BadSignature)
        );
        let mut sig_bytes = jws.signature().to_vec();
        sig_bytes[10] ^= 0x40;
        let forged = format!("{}.{}", jws.signing_input(), b64(&sig_bytes));
        assert_eq!(
            CompactJws::parse(&forged, MAX)
                .unwrap()
                .verify_with(public, &Alg::ALL),
            Err(JoseError::BadSignature)
        );
    }
}

#[test]
fn rfc7515_kid_and_typ_read_from_header() {
    let k = key(Alg::EdDsa);
    let header = obj(json!({"typ": "at+jwt", "kid": "k-1"}));
    let t = k.sign_compact(&header, b"{}").unwrap();
    let jws = CompactJws::parse(&t, MAX).unwrap();
    assert_eq!(jws.kid.as_deref(), Some("k-1"));
    assert_eq!(jws.alg, Alg::EdDsa, "alg added when absent");
    let mut jwk = k.public_jwk();
    jwk.insert("kid".into(), json!("k-1"));
    jws.verify_with(&PublicKey::from_jwk(&jwk).unwrap(), &Alg::ALL)
        .unwrap();
    jwk.insert("kid".into(), json!("k-2"));
    assert_eq!(
        jws.verify_with(&PublicKey::from_jwk(&jwk).unwrap(), &Alg::ALL),
        Err(JoseError::KidMismatch {
            expected: "k-2".into(),
            found: "k-1".into()
        })
    );
}

#[test]
fn rfc8725_too_large_checked_first() {
    let t = token(Alg::Es256);
    assert_eq!(
        CompactJws::parse(&t, t.len() - 1),
        Err(JoseError::TooLarge {
            len: t.len(),
            max: t.len() - 1
        })
    );
    assert!(CompactJws::parse(&t, t.len()).is_ok());
    // Garbage, JSON serialization, JWE: the size is refused before any look.
    for junk in [
        "{\"payload\":\"\"}".repeat(10),
        "a.b.c.d.e".repeat(10),
        "!".repeat(100),
    ] {
        assert_eq!(
            CompactJws::parse(&junk, 20),
            Err(JoseError::TooLarge {
                len: junk.len(),
                max: 20
            })
        );
    }
}

#[test]
fn rfc7515_s7_2_json_serialization_refused() {
    let t = token(Alg::Es256);
    let parts: Vec<&str> = t.split('.').collect();
    let general = json!({"payload": parts[1], "signatures": [{"protected": parts[0], "signature": parts[2]}]});
    let flattened = json!({"payload": parts[1], "protected": parts[0], "signature": parts[2]});
    for doc in [
        general.to_string(),
        flattened.to_string(),
        format!("  {flattened}"),
    ] {
        assert_eq!(err(&doc), JoseError::JsonSerializationNotSupported);
    }
}

#[test]
fn rfc7516_jwe_and_nested_refused() {
    assert_eq!(err("a.b.c.d.e"), JoseError::EncryptedNotSupported);
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64([1u8; 256]),
        b64([2u8; 12]),
        b64(b"ciphertext"),
        b64([3u8; 16])
    );
    assert_eq!(err(&jwe), JoseError::EncryptedNotSupported);
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","enc":"A128GCM"}"#)),
        JoseError::EncryptedNotSupported
    );
    for cty in ["JWT", "jwt", "application/JWT"] {
        assert_eq!(
            err(&with_header(&format!(r#"{{"alg":"ES256","cty":"{cty}"}}"#))),
            JoseError::NestedNotSupported
        );
    }
    // Another content type is fine.
    assert!(CompactJws::parse(&with_header(r#"{"alg":"ES256","cty":"json"}"#), MAX).is_ok());
}

#[test]
fn rfc7515_s7_1_part_count_and_encoding() {
    let t = token(Alg::Es256);
    let (h, rest) = t.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for (bad, needle) in [
        (String::new(), "found 1"),
        (h.to_owned(), "found 1"),
        (format!("{h}.{p}"), "found 2"),
        (format!("{t}."), "found 4"),
        (format!("{t}.x.y.z"), "found 6"),
        (format!(".{p}.{s}"), "header is empty"),
        (format!("{h}=.{p}.{s}"), "padded"),
        (format!("{h}.{p}=.{s}"), "padded"),
        (format!("{h}.{p}.{s}=="), "padded"),
        (format!("{h}.{p}.+{s}"), "base64url"),
        (format!("{h}.{p}./{s}"), "base64url"),
        (format!("{h} .{p}.{s}"), "base64url"),
        (format!("{h}.{p}.{s}?"), "base64url"),
        (format!("{h}.%{p}.{s}"), "base64url"),
        (format!("{h}.{p}.{}", &s[..s.len() - 1]), "base64url"),
    ] {
        match err(&bad) {
            JoseError::Malformed(m) => assert!(m.contains(needle), "{bad:?}: {m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Non-zero trailing bits (a non-canonical encoding of the same bytes).
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = s.chars().last().unwrap();
    let i = alphabet.find(last).unwrap();
    let flipped = alphabet.as_bytes()[i ^ 1] as char;
    let bad = format!("{h}.{p}.{}{flipped}", &s[..s.len() - 1]);
    assert!(matches!(err(&bad), JoseError::Malformed(m) if m.contains("canonical")));
}

#[test]
fn rfc7515_s4_header_must_be_a_strict_object() {
    for (header, expected) in [
        ("[\"ES256\"]", "not a JSON object"),
        ("\"ES256\"", "not a JSON object"),
        ("{\"alg\":\"ES256\"", "not JSON"),
        ("{\"alg\":\"ES256\"} x", "not JSON"),
        ("", "header is empty"),
    ] {
        match err(&with_header(header)) {
            JoseError::Malformed(m) => assert!(m.contains(expected), "{header}: {m}"),
            other => panic!("{header}: {other:?}"),
        }
    }
    let raw = format!("{}.e30.AAAA", common::b64([0xffu8, 0xfe]));
    assert!(matches!(err(&raw), JoseError::Malformed(_)));
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","alg":"none"}"#)),
        JoseError::DuplicateHeaderMember("alg".into())
    );
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","kid":"a","kid":"b"}"#)),
        JoseError::DuplicateHeaderMember("kid".into())
    );
    for (header, member) in [
        (r#"{"alg":"ES256","kid":7}"#, "kid"),
        (r#"{"alg":"ES256","typ":["JWT"]}"#, "typ"),
        (r#"{"alg":"ES256","cty":1}"#, "cty"),
    ] {
        assert!(
            matches!(err(&with_header(header)), JoseError::Malformed(m) if m.contains(member)),
            "{header}"
        );
    }
}

#[test]
fn rfc7515_s4_1_11_crit_and_rfc7797_b64_refused() {
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#)),
        JoseError::CriticalHeader("[\"exp\"]".into())
    );
    assert_eq!(
        err(&with_header(
            r#"{"alg":"ES256","crit":["b64"],"b64":false}"#
        )),
        JoseError::CriticalHeader("[\"b64\"]".into())
    );
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","b64":false}"#)),
        JoseError::UnencodedPayload("false".into())
    );
    assert_eq!(
        err(&with_header(r#"{"alg":"ES256","b64":"no"}"#)),
        JoseError::UnencodedPayload("\"no\"".into())
    );
    assert!(CompactJws::parse(&with_header(r#"{"alg":"ES256","b64":true}"#), MAX).is_ok());
}

#[test]
fn rfc8725_s3_1_alg_none_hmac_unknown_refused() {
    assert_eq!(
        err(&with_header(r#"{"typ":"JWT"}"#)),
        JoseError::MissingAlgorithm
    );
    for alg in [
        "none", "None", "NONE", "HS256", "HS384", "HS512", "ES384", "ES512", "RS384", "PS512",
        "ES256K", "Ed448", "ed25519", "es256", "",
    ] {
        assert_eq!(
            err(&with_header(&format!(r#"{{"alg":"{alg}"}}"#))),
            JoseError::UnsupportedAlgorithm(alg.into()),
            "{alg}"
        );
    }
    assert_eq!(
        err(&with_header(r#"{"alg":7}"#)),
        JoseError::UnsupportedAlgorithm("7".into())
    );
    // alg none with an empty signature (the classic attack).
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(r#"{"sub":"admin"}"#)
    );
    assert_eq!(err(&none), JoseError::UnsupportedAlgorithm("none".into()));
}

#[test]
fn rfc8725_s2_1_hs256_signed_with_public_key_bytes_refused() {
    // The key-confusion attack: HMAC over the token with the verifier's own
    // public key bytes as the secret.
    for alg in Alg::ALL {
        let public = key(alg).public_key();
        let secret = serde_json::to_vec(public.jwk()).unwrap();
        let signer = HS256.signer_from_bytes(&secret).unwrap();
        let input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"admin"}"#)
        );
        let sig = signer.sign(input.as_bytes()).unwrap();
        let forged = format!("{input}.{}", b64(sig));
        assert_eq!(
            err(&forged),
            JoseError::UnsupportedAlgorithm("HS256".into())
        );
    }
}

#[test]
fn rfc8725_s3_1_verify_with_allow_list_and_key_binding() {
    let es = CompactJws::parse(&token(Alg::Es256), MAX).unwrap();
    assert_eq!(
        es.verify_with(key(Alg::Es256).public_key(), &[Alg::EdDsa, Alg::Rs256]),
        Err(JoseError::AlgorithmNotAllowed("ES256".into()))
    );
    assert_eq!(
        es.verify_with(key(Alg::Es256).public_key(), &[]),
        Err(JoseError::AlgorithmNotAllowed("ES256".into()))
    );
    assert_eq!(
        es.verify_with(key(Alg::EdDsa).public_key(), &Alg::ALL),
        Err(JoseError::KeyAlgMismatch {
            alg: "ES256".into(),
            kty: "OKP".into()
        })
    );
    // An RSA key pinned to RS256 by its JWK "alg" refuses a PS256 token
    // signed by the same key pair.
    let ps = CompactJws::parse(&token(Alg::Ps256), MAX).unwrap();
    let mut jwk = key(Alg::Ps256).public_jwk();
    ps.verify_with(&PublicKey::from_jwk(&jwk).unwrap(), &Alg::ALL)
        .unwrap();
    jwk.insert("alg".into(), json!("RS256"));
    assert_eq!(
        ps.verify_with(&PublicKey::from_jwk(&jwk).unwrap(), &Alg::ALL),
        Err(JoseError::KeyAlgMismatch {
            alg: "PS256".into(),
            kty: "RSA".into()
        })
    );
    // RS256 and PS256 signatures are not interchangeable.
    let rs = CompactJws::parse(&token(Alg::Rs256), MAX).unwrap();
    let relabelled = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"PS256","typ":"intent+jwt"}"#),
        rs.signing_input().split_once('.').unwrap().1,
        b64(rs.signature())
    );
    assert_eq!(
        CompactJws::parse(&relabelled, MAX)
            .unwrap()
            .verify_with(key(Alg::Rs256).public_key(), &Alg::ALL),
        Err(JoseError::BadSignature)
    );
    // A valid signature with the embedded-key attack: the header's own jwk
    // is never used by verify_with.
    let attacker = other_key(Alg::Es256);
    let header = obj(json!({"alg": "ES256", "jwk": attacker.public_jwk()}));
    let t = attacker.sign_compact(&header, b"{}").unwrap();
    assert_eq!(
        CompactJws::parse(&t, MAX)
            .unwrap()
            .verify_with(key(Alg::Es256).public_key(), &Alg::ALL),
        Err(JoseError::BadSignature)
    );
}

#[test]
fn rfc7515_empty_payload_and_signature() {
    let jws = CompactJws::parse(&compact(r#"{"alg":"EdDSA"}"#, b"", b""), MAX).unwrap();
    assert!(jws.payload.is_empty() && jws.signature().is_empty());
    assert_eq!(
        jws.verify_with(key(Alg::EdDsa).public_key(), &Alg::ALL),
        Err(JoseError::BadSignature)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = CompactJws::parse(&s, 4096);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_parts(
        h in proptest::collection::vec(any::<u8>(), 0..64),
        p in proptest::collection::vec(any::<u8>(), 0..64),
        s in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let t = compact(&String::from_utf8_lossy(&h), &p, &s);
        if let Ok(jws) = CompactJws::parse(&t, 4096) {
            prop_assert!(jws.verify_with(key(Alg::Es256).public_key(), &Alg::ALL).is_err());
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_tokens(pos in 0usize..400, byte in 0u8..128) {
        let mut t = token(Alg::Es256).into_bytes();
        let i = pos % t.len();
        t[i] = byte;
        if let Ok(text) = String::from_utf8(t) {
            if let Ok(jws) = CompactJws::parse(&text, 4096) {
                let _ = jws.verify_with(key(Alg::Es256).public_key(), &Alg::ALL);
            }
        }
    }
}
