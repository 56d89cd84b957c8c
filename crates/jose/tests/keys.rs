//! RFC 7638 thumbprints, `PublicKey::from_jwk` acceptance rules (§9.4.1 key
//! types, RFC 7517/7518/8037 members) and `JwkSet::parse` key by key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{jwk_thumbprint, Alg, CompactJws, JoseError, JwkSet, PublicKey};
use common::{b64, key, obj, unb64, wycheproof_roca_jwk};
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{EdDSA, ES256, ES256K, ES384};
use openssl::bn::BigNum;
use openssl::rsa::Rsa;
use serde_json::{json, Map, Value};

/// RFC 7638 §3.1: the example RSA key.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

/// RFC 9449 §4.1 (Figure 3) example proof key; §6.1 uses its thumbprint.
const RFC9449_X: &str = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs";
const RFC9449_Y: &str = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA";
/// Computed independently (python3 hashlib + base64 over
/// `{"crv":"P-256","kty":"EC","x":...,"y":...}`) and equal to the `jkt`
/// quoted from RFC 9449 §6.1 by independent implementations. (The value
/// "…uiGQA4I" in the task brief is a typo for "…uiguA4I".)
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

fn refused(jwk: Value) -> JoseError {
    match PublicKey::from_jwk(&obj(jwk.clone())) {
        Ok(k) => panic!("accepted {jwk}: {k:?}"),
        Err(e) => e,
    }
}

fn rsa_jwk(rsa: &Rsa<openssl::pkey::Private>) -> Value {
    json!({"kty": "RSA", "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())})
}

fn with(base: &Map<String, Value>, name: &str, value: Value) -> Value {
    let mut m = base.clone();
    m.insert(name.to_owned(), value);
    Value::Object(m)
}

#[test]
fn rfc7638_s3_1_rsa_thumbprint() {
    let jwk = obj(
        json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}),
    );
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    let key = PublicKey::from_jwk(&jwk).unwrap();
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(key.kid(), Some("2011-04-29"));
    assert_eq!(
        key.jwk(),
        &jwk,
        "public members + kid/alg are kept as given"
    );
    assert!(key.supports(Alg::Rs256));
    assert!(!key.supports(Alg::Ps256), "the JWK alg pins RS256");
}

#[test]
fn rfc9449_s6_1_ec_thumbprint() {
    // Member order and extra members do not matter (RFC 7638 §3.2, §3.3).
    let jwk = obj(
        json!({"y": RFC9449_Y, "x": RFC9449_X, "kty": "EC", "crv": "P-256", "kid": "k", "use": "sig"}),
    );
    assert_eq!(jwk_thumbprint(&jwk).unwrap(), RFC9449_JKT);
    let key = PublicKey::from_jwk(&jwk).unwrap();
    assert_eq!(key.thumbprint(), RFC9449_JKT);
    assert!(key.supports(Alg::Es256));
    for alg in [Alg::EdDsa, Alg::Rs256, Alg::Ps256] {
        assert!(!key.supports(alg));
    }
}

#[test]
fn rfc7638_s3_2_members_per_kty_and_errors() {
    let okp = obj(
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
    );
    // RFC 8037 Appendix A.3: the thumbprint of the RFC 8037 A.2 key.
    assert_eq!(
        jwk_thumbprint(&okp).unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let oct = obj(json!({"kty": "oct", "k": "AAAA"}));
    assert_eq!(
        jwk_thumbprint(&oct).unwrap(),
        b64(sha2::Sha256::digest(br#"{"k":"AAAA","kty":"oct"}"#))
    );
    assert!(matches!(
        jwk_thumbprint(&obj(json!({"kty": "EC", "crv": "P-256", "x": RFC9449_X}))),
        Err(JoseError::InvalidKey(m)) if m.contains("\"y\" is missing")
    ));
    assert!(matches!(
        jwk_thumbprint(&obj(json!({"kty": "RSA", "n": 5, "e": "AQAB"}))),
        Err(JoseError::InvalidKey(m)) if m.contains("must be a string")
    ));
    assert!(matches!(
        jwk_thumbprint(&obj(json!({"kty": "RSA-PSS"}))),
        Err(JoseError::UnsupportedKey(_))
    ));
    assert!(matches!(
        jwk_thumbprint(&obj(json!({}))),
        Err(JoseError::InvalidKey(_))
    ));
}

use sha2::Digest as _;

#[test]
fn s9_4_1_accepts_generated_keys_and_keeps_only_public_members() {
    for alg in Alg::ALL {
        let k = key(alg);
        let jwk = k.public_jwk();
        let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
        names.sort_unstable();
        match alg {
            Alg::Es256 => assert_eq!(names, ["crv", "kty", "x", "y"]),
            Alg::EdDsa | Alg::Ed25519 => assert_eq!(names, ["crv", "kty", "x"]),
            Alg::Rs256 | Alg::Ps256 => assert_eq!(names, ["e", "kty", "n"]),
        }
        let mut extended = jwk.clone();
        extended.insert("x5u".to_owned(), json!("https://example.com/x"));
        extended.insert("kid".to_owned(), json!("kid-1"));
        extended.insert("key_ops".to_owned(), json!(["verify"]));
        let public = PublicKey::from_jwk(&extended).unwrap();
        let mut expected = jwk.clone();
        expected.insert("kid".to_owned(), json!("kid-1"));
        assert_eq!(
            public.jwk(),
            &expected,
            "x5u and key_ops are not carried over"
        );
        assert_eq!(public.thumbprint(), k.thumbprint());
        let debug = format!("{public:?}");
        for member in ["x", "y", "n"] {
            if let Some(Value::String(v)) = jwk.get(member) {
                assert!(!debug.contains(v.as_str()), "{debug}");
            }
        }
    }
}

#[test]
fn s9_4_1_rsa_1024_e3_e1_refused() {
    let small = Rsa::generate(1024).unwrap();
    assert!(matches!(
        refused(rsa_jwk(&small)),
        JoseError::UnsupportedKey(m) if m.contains("RSA modulus is 1024 bits")
    ));
    let e3 = Rsa::generate_with_e(2048, &BigNum::from_u32(3).unwrap()).unwrap();
    assert!(matches!(
        refused(rsa_jwk(&e3)),
        JoseError::UnsupportedKey(m) if m.contains("must be 65537, found 3")
    ));
    // e = 1 (josekit would accept it: the "signature" is the padded digest).
    let good = obj(rsa_jwk(&Rsa::generate(2048).unwrap()));
    assert!(matches!(
        refused(with(&good, "e", json!("AQ"))),
        JoseError::UnsupportedKey(m) if m.contains("must be 65537, found 1")
    ));
    assert!(matches!(
        refused(with(&good, "e", json!("AAEAAQ"))),
        JoseError::InvalidKey(m) if m.contains("leading zero")
    ));
    let mut n = unb64(good["n"].as_str().unwrap());
    *n.last_mut().unwrap() &= 0xfe;
    assert!(matches!(
        refused(with(&good, "n", json!(b64(&n)))),
        JoseError::InvalidKey(m) if m.contains("even")
    ));
    let mut n = unb64(good["n"].as_str().unwrap());
    n.insert(0, 0);
    assert!(matches!(
        refused(with(&good, "n", json!(b64(&n)))),
        JoseError::InvalidKey(m) if m.contains("leading zero")
    ));
    assert!(PublicKey::from_jwk(&good).is_ok());
}

#[test]
fn roca_fingerprint_refused() {
    // Wycheproof json_web_key_test.json tcId 7: a key with the ROCA
    // vulnerability (CVE-2017-15361).
    let jwk = wycheproof_roca_jwk();
    assert!(matches!(
        refused(jwk),
        JoseError::UnsupportedKey(m) if m.contains("ROCA")
    ));
    // Ordinary keys pass (false positives have probability about 2^-167).
    for _ in 0..4 {
        let rsa = Rsa::generate(2048).unwrap();
        PublicKey::from_jwk(&obj(rsa_jwk(&rsa))).unwrap();
    }
}

#[test]
fn rfc7517_private_members_and_oct_keys_refused() {
    let base = key(Alg::Es256).public_jwk();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert_eq!(
            refused(with(&base, member, json!("AAAA"))),
            JoseError::PrivateKeyMaterial(member.to_owned())
        );
    }
    let private = ES256.generate_key_pair().unwrap().to_jwk_private_key();
    let private: &Map<String, Value> = private.as_ref();
    assert_eq!(
        refused(Value::Object(private.clone())),
        JoseError::PrivateKeyMaterial("d".to_owned())
    );
    assert!(matches!(
        refused(json!({"kty": "oct", "k": "c2VjcmV0"})),
        JoseError::UnsupportedKey(m) if m.contains("symmetric")
    ));
}

#[test]
fn s9_4_1_other_key_types_and_curves_refused() {
    for (jwk, needle) in [
        (
            ES384.generate_key_pair().unwrap().to_jwk_public_key(),
            "\"P-384\"",
        ),
        (
            ES256K.generate_key_pair().unwrap().to_jwk_public_key(),
            "\"secp256k1\"",
        ),
        (
            EdDSA
                .generate_key_pair(EdCurve::Ed448)
                .unwrap()
                .to_jwk_public_key(),
            "\"Ed448\"",
        ),
    ] {
        let map: &Map<String, Value> = jwk.as_ref();
        let mut map = map.clone();
        map.remove("alg");
        assert!(matches!(
            refused(Value::Object(map)),
            JoseError::UnsupportedKey(m) if m.contains(needle)
        ));
    }
    assert!(matches!(
        refused(json!({"kty": "OKP", "crv": "X25519", "x": b64([9u8; 32])})),
        JoseError::UnsupportedKey(m) if m.contains("X25519")
    ));
    assert!(matches!(
        refused(json!({"kty": "RSA-PSS", "n": "AQAB", "e": "AQAB"})),
        JoseError::UnsupportedKey(m) if m.contains("RSA-PSS")
    ));
    assert!(matches!(
        refused(json!({"n": "AQAB"})),
        JoseError::InvalidKey(_)
    ));
    assert!(matches!(
        refused(json!({"kty": 1})),
        JoseError::InvalidKey(_)
    ));
}

#[test]
fn rfc7517_s4_use_key_ops_alg_kid_honoured() {
    let base = key(Alg::Es256).public_jwk();
    assert!(matches!(
        refused(with(&base, "use", json!("enc"))),
        JoseError::UnsupportedKey(m) if m.contains("\"use\"")
    ));
    assert!(matches!(
        refused(with(&base, "key_ops", json!(["encrypt"]))),
        JoseError::UnsupportedKey(m) if m.contains("key_ops")
    ));
    assert_eq!(
        refused(with(&base, "alg", json!("EdDSA"))),
        JoseError::KeyAlgMismatch {
            alg: "EdDSA".into(),
            kty: "EC".into()
        }
    );
    assert_eq!(
        refused(with(&base, "alg", json!("HS256"))),
        JoseError::UnsupportedAlgorithm("HS256".into())
    );
    assert_eq!(
        refused(with(&base, "alg", json!("none"))),
        JoseError::UnsupportedAlgorithm("none".into())
    );
    assert!(matches!(
        refused(with(&base, "alg", json!(7))),
        JoseError::InvalidKey(_)
    ));
    assert!(matches!(
        refused(with(&base, "kid", json!(7))),
        JoseError::InvalidKey(_)
    ));
    let ok = PublicKey::from_jwk(&obj(with(&base, "use", json!("sig")))).unwrap();
    assert_eq!(ok.jwk()["use"], "sig");

    let rsa = key(Alg::Rs256).public_jwk();
    let pinned = PublicKey::from_jwk(&obj(with(&rsa, "alg", json!("PS256")))).unwrap();
    assert!(pinned.supports(Alg::Ps256) && !pinned.supports(Alg::Rs256));
    let open = PublicKey::from_jwk(&rsa).unwrap();
    assert!(open.supports(Alg::Ps256) && open.supports(Alg::Rs256));
    assert!(!open.supports(Alg::Es256) && !open.supports(Alg::EdDsa));
    assert_eq!(
        refused(with(&rsa, "alg", json!("RS384"))),
        JoseError::UnsupportedAlgorithm("RS384".into())
    );
}

#[test]
fn rfc7518_s6_2_p256_point_checks() {
    let base = key(Alg::Es256).public_jwk();
    let x = unb64(base["x"].as_str().unwrap());
    let y = unb64(base["y"].as_str().unwrap());
    let mut y2 = y.clone();
    y2[31] ^= 1;
    assert!(matches!(
        refused(with(&base, "y", json!(b64(&y2)))),
        JoseError::InvalidKey(m) if m.contains("not a point on P-256")
    ));
    assert!(matches!(
        refused(with(&base, "x", json!(b64(&x[1..])))),
        JoseError::InvalidKey(m) if m.contains("32 bytes")
    ));
    let padded = format!("{}=", base["x"].as_str().unwrap());
    assert!(matches!(
        refused(with(&base, "x", json!(padded))),
        JoseError::InvalidKey(m) if m.contains("base64url")
    ));
    // x = p: an unreduced coordinate.
    let p = hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    assert!(matches!(
        refused(with(&base, "x", json!(b64(&p)))),
        JoseError::InvalidKey(m) if m.contains("reduced")
    ));
    assert!(matches!(
        refused(with(&base, "crv", json!("P-521"))),
        JoseError::UnsupportedKey(_)
    ));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rfc8032_s5_1_3_ed25519_point_checks() {
    let okp = |x: &[u8]| json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)});
    for small in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ] {
        assert!(matches!(
            refused(okp(&hex(small))),
            JoseError::InvalidKey(m) if m.contains("small-order") || m.contains("non-canonical")
        ));
    }
    // y = p (non-canonical encoding of y = 0).
    assert!(matches!(
        refused(okp(&hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))),
        JoseError::InvalidKey(m) if m.contains("non-canonical")
    ));
    assert!(matches!(
        refused(okp(&hex("0200000000000000000000000000000000000000000000000000000000000000"))),
        JoseError::InvalidKey(m) if m.contains("not the encoding of a curve point")
    ));
    assert!(matches!(
        refused(okp(&[1u8; 31])),
        JoseError::InvalidKey(m) if m.contains("32 bytes")
    ));
    // RFC 8032 §7.1 TEST 1 public key is accepted.
    PublicKey::from_jwk(&obj(okp(&hex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ))))
    .unwrap();
}

fn signature_of(alg: Alg) -> (String, Vec<u8>) {
    let token = key(alg).sign_jws("JWT", &obj(json!({"sub": "x"}))).unwrap();
    let jws = CompactJws::parse(&token, 10_000).unwrap();
    (jws.signing_input().to_owned(), jws.signature().to_vec())
}

#[test]
fn rfc7518_s3_4_signature_lengths_and_alg_binding() {
    for alg in Alg::ALL {
        let public = key(alg).public_key();
        let (input, sig) = signature_of(alg);
        public.verify(alg, input.as_bytes(), &sig).unwrap();
        let mut longer = sig.clone();
        longer.insert(0, 0);
        assert_eq!(
            public.verify(alg, input.as_bytes(), &longer),
            Err(JoseError::BadSignature)
        );
        assert_eq!(
            public.verify(alg, input.as_bytes(), &sig[..sig.len() - 1]),
            Err(JoseError::BadSignature)
        );
        assert_eq!(
            public.verify(alg, b"other input", &sig),
            Err(JoseError::BadSignature)
        );
        let other = if matches!(alg, Alg::EdDsa | Alg::Ed25519) {
            Alg::Es256
        } else {
            Alg::EdDsa
        };
        assert_eq!(
            public.verify(other, input.as_bytes(), &sig),
            Err(JoseError::KeyAlgMismatch {
                alg: other.as_str().into(),
                kty: public.kty().into()
            })
        );
    }
    // ES256 must be R || S (64 bytes), never the DER encoding OpenSSL emits.
    let (input, sig) = signature_of(Alg::Es256);
    let r = BigNum::from_slice(&sig[..32]).unwrap();
    let s = BigNum::from_slice(&sig[32..]).unwrap();
    let der = openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .unwrap()
        .to_der()
        .unwrap();
    assert_eq!(
        key(Alg::Es256)
            .public_key()
            .verify(Alg::Es256, input.as_bytes(), &der),
        Err(JoseError::BadSignature)
    );
}

#[test]
fn rfc7517_s5_one_bad_key_does_not_fail_the_set() {
    let ec = key(Alg::Es256).public_jwk();
    let ed = key(Alg::EdDsa).public_jwk();
    let small = rsa_jwk(&Rsa::generate(1024).unwrap());
    let set = json!({"keys": [
        with(&ec, "kid", json!("ec")),
        with(&obj(small), "kid", json!("small-rsa")),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        with(&with(&ec, "d", json!("AAAA")).as_object().unwrap().clone(), "kid", json!("private")),
        "not an object",
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
        with(&ed, "kid", json!("ed")),
    ]});
    let mut text = serde_json::to_string(&set).unwrap();
    // A key with a duplicate member, spliced in as raw text.
    text = text.replacen(
        "\"keys\":[",
        "\"keys\":[{\"kty\":\"OKP\",\"kty\":\"EC\",\"kid\":\"dup\"},",
        1,
    );
    let (parsed, skipped) = JwkSet::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.len(), 2, "{skipped:?}");
    assert!(!parsed.is_empty());
    assert_eq!(parsed.find("ec").unwrap().kty(), "EC");
    assert_eq!(parsed.find("ed").unwrap().kty(), "OKP");
    assert!(parsed.find("small-rsa").is_none());
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    for (reason, needle) in skipped.iter().zip([
        "duplicate key \"kty\"",
        "1024 bits",
        "symmetric",
        "private key material",
        "not a JSON object",
        "P-384",
    ]) {
        assert!(
            reason.contains(needle),
            "{reason:?} should mention {needle:?}"
        );
    }
}

#[test]
fn rfc7517_s5_set_level_errors_and_duplicate_kids() {
    for bad in [
        &b"[]"[..],
        b"",
        b"null",
        b"{}",
        b"{\"keys\": {}}",
        b"{\"keys\": [], \"keys\": []}",
        b"{\"keys\": [",
        b"[[]]",
    ] {
        assert!(
            matches!(JwkSet::parse(bad), Err(JoseError::InvalidJwkSet(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let (empty, skipped) = JwkSet::parse(br#"{"keys": [], "other": 1}"#).unwrap();
    assert!(empty.is_empty() && skipped.is_empty());

    let a = with(&key(Alg::Es256).public_jwk(), "kid", json!("same"));
    let b = with(&key(Alg::EdDsa).public_jwk(), "kid", json!("same"));
    let c = with(&key(Alg::Rs256).public_jwk(), "kid", json!("unique"));
    let doc = serde_json::to_vec(&json!({"keys": [a, b, c]})).unwrap();
    let (set, skipped) = JwkSet::parse(&doc).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.find("same").is_none());
    assert!(set.find("unique").is_some());
    assert_eq!(skipped.len(), 2);
    assert!(skipped.iter().all(|s| s.contains("more than one key")));

    // from_keys keeps what it is given, and find refuses an ambiguous kid.
    let keys: Vec<PublicKey> = [
        a_key("x", Alg::Es256),
        a_key("x", Alg::EdDsa),
        a_key("y", Alg::Es256),
    ]
    .into();
    let set = JwkSet::from_keys(keys);
    assert_eq!(set.len(), 3);
    assert!(set.find("x").is_none());
    assert_eq!(set.find("y").unwrap().kid(), Some("y"));
    assert_eq!(set.keys()[2].kid(), Some("y"));
}

fn a_key(kid: &str, alg: Alg) -> PublicKey {
    PublicKey::from_jwk(&obj(with(&key(alg).public_jwk(), "kid", json!(kid)))).unwrap()
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn jwk_set_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = JwkSet::parse(&bytes);
        }

        #[test]
        fn from_jwk_never_panics(
            kty in prop_oneof![Just("EC".to_owned()), Just("OKP".to_owned()), Just("RSA".to_owned()), Just("oct".to_owned()), "[A-Z]{0,3}"],
            crv in prop_oneof![Just("P-256".to_owned()), Just("Ed25519".to_owned()), "[a-zA-Z0-9-]{0,8}"],
            x in proptest::collection::vec(any::<u8>(), 0..40),
            y in proptest::collection::vec(any::<u8>(), 0..40),
            e in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let jwk = obj(json!({"kty": kty, "crv": crv, "x": b64(&x), "y": b64(&y), "n": b64(&x), "e": b64(&e)}));
            if let Ok(key) = PublicKey::from_jwk(&jwk) {
                for alg in Alg::ALL {
                    prop_assert!(key.verify(alg, b"input", &[0u8; 64]).is_err());
                }
            }
        }
    }
}

/// A PKCS#8 RSA key whose private members do not match its public key (found
/// by the `keys` fuzz target: a corrupted CRT parameter). josekit and OpenSSL
/// load it and sign; nothing verifies what it signs. CPython's `cryptography`
/// refuses it too ("Invalid private key"). `from_pkcs8_pem` runs a pairwise
/// consistency check and refuses it, for every algorithm it could be loaded under.
#[test]
fn rfc7517_inconsistent_private_key_is_refused_at_load() {
    let pem = include_bytes!("data/rsa-inconsistent-private-key.pem");
    for alg in [Alg::Rs256, Alg::Ps256] {
        match ajwt_jose::SigningKey::from_pkcs8_pem(pem, alg) {
            Err(JoseError::InvalidKey(m)) => assert!(m.contains("do not verify"), "{m}"),
            Err(other) => panic!("{alg}: refused for another reason: {other}"),
            Ok(_) => panic!("{alg}: an inconsistent key was loaded"),
        }
    }
    // A consistent key of each type still loads.
    for alg in Alg::ALL {
        let key = ajwt_jose::SigningKey::generate(alg).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        ajwt_jose::SigningKey::from_pkcs8_pem(pem.as_bytes(), alg).unwrap();
    }
}

/// A 153-byte PKCS#8 PEM whose DER declares an absurd length (found by the
/// `keys` fuzz target): josekit's DER reader asked for a 4 EiB buffer, which
/// aborts the process. OpenSSL reads the document first now, so it is an
/// ordinary `InvalidKey` for every algorithm.
#[test]
fn rfc7517_pkcs8_with_a_huge_der_length_is_refused_without_allocating() {
    let pem = include_bytes!("data/pkcs8-huge-der-length.pem");
    for alg in Alg::ALL {
        match ajwt_jose::SigningKey::from_pkcs8_pem(pem, alg) {
            Err(JoseError::InvalidKey(_)) => {}
            Err(other) => panic!("{alg}: refused for another reason: {other}"),
            Ok(_) => panic!("{alg}: accepted"),
        }
    }
}
