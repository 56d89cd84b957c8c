//! RFC 7520 (JOSE cookbook, ietf-jose/cookbook 13692b68bfc1, public domain;
//! copied with provenance under conformance/vectors/external/jose-cookbook)
//! through the JWS layer: the RS256 example verifies, everything we do not
//! support is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{Alg, CompactJws, JoseError, JwkSet, PublicKey};
use common::{obj, read_json};
use serde_json::Value;

const MAX: usize = 1 << 16;

fn example(name: &str) -> Value {
    read_json(&format!("jose-cookbook/jws/{name}"))
}

fn public_only(key: &Value) -> serde_json::Map<String, Value> {
    let mut key = obj(key.clone());
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        key.remove(member);
    }
    key
}

#[test]
fn rfc7520_s4_1_rs256_verifies() {
    let ex = example("4_1.rsa_v15_signature.json");
    let compact = ex["output"]["compact"].as_str().unwrap();
    let jws = CompactJws::parse(compact, MAX).unwrap();
    assert_eq!(jws.alg, Alg::Rs256);
    assert_eq!(jws.kid.as_deref(), Some("bilbo.baggins@hobbiton.example"));
    assert_eq!(
        jws.signing_input(),
        ex["signing"]["sig-input"].as_str().unwrap()
    );
    assert_eq!(
        String::from_utf8(jws.payload.clone()).unwrap(),
        ex["input"]["payload"].as_str().unwrap()
    );
    // The example key has its private members: refused as a verification key.
    assert_eq!(
        PublicKey::from_jwk(ex["input"]["key"].as_object().unwrap()).unwrap_err(),
        JoseError::PrivateKeyMaterial("d".into())
    );
    let key = PublicKey::from_jwk(&public_only(&ex["input"]["key"])).unwrap();
    jws.verify_with(&key, &Alg::ALL).unwrap();
    // §3.3's public key is the same key.
    let published = read_json("jose-cookbook/jwk/3_3.rsa_public_key.json");
    let published = PublicKey::from_jwk(published.as_object().unwrap()).unwrap();
    assert_eq!(published.thumbprint(), key.thumbprint());
    jws.verify_with(&published, &[Alg::Rs256]).unwrap();
    assert_eq!(
        jws.verify_with(&published, &[Alg::Ps256, Alg::Es256]),
        Err(JoseError::AlgorithmNotAllowed("RS256".into()))
    );
    // Its JSON serializations are refused.
    for form in ["json", "json_flat"] {
        let text = ex["output"][form].to_string();
        assert_eq!(
            CompactJws::parse(&text, MAX),
            Err(JoseError::JsonSerializationNotSupported)
        );
    }
}

#[test]
fn rfc7520_unsupported_examples_refused() {
    for (name, alg) in [
        ("4_2.rsa-pss_signature.json", "PS384"),
        ("4_3.ecdsa_signature.json", "ES512"),
        ("4_4.hmac-sha2_integrity_protection.json", "HS256"),
        ("4_5.signature_with_detached_content.json", "HS256"),
    ] {
        let ex = example(name);
        let compact = ex["output"]["compact"].as_str().unwrap();
        assert_eq!(
            CompactJws::parse(compact, MAX),
            Err(JoseError::UnsupportedAlgorithm(alg.into())),
            "{name}"
        );
    }
    // The ES512 key (P-521, §3.1) and the HMAC key are not usable keys.
    let ec = read_json("jose-cookbook/jwk/3_1.ec_public_key.json");
    assert!(matches!(
        PublicKey::from_jwk(ec.as_object().unwrap()),
        Err(JoseError::UnsupportedKey(m)) if m.contains("P-521")
    ));
    let hmac = example("4_4.hmac-sha2_integrity_protection.json");
    assert!(matches!(
        PublicKey::from_jwk(hmac["input"]["key"].as_object().unwrap()),
        Err(JoseError::UnsupportedKey(m)) if m.contains("symmetric")
    ));
    // All three published in one set: only the RSA key is usable.
    let set = serde_json::json!({"keys": [
        ec,
        read_json("jose-cookbook/jwk/3_3.rsa_public_key.json"),
        hmac["input"]["key"].clone(),
    ]});
    let (set, skipped) = JwkSet::parse(&serde_json::to_vec(&set).unwrap()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(skipped.len(), 2);
    assert_eq!(set.keys()[0].kty(), "RSA");
}
