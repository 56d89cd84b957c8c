//! Public keys from PEM SubjectPublicKeyInfo ([`PublicKey::from_spki_pem`],
//! RFC 7468 §13, RFC 5280 §4.1.2.7; draft §9.4.1 key types) and the one
//! algorithm table (I-44). These checks used to live in the issuer's own
//! key code and moved here with it; keys are made by josekit and OpenSSL,
//! independent of the code under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ajwt_jose::{Alg, JoseError, KeyType, PublicKey, SigningKey};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::{b64, obj, wycheproof_roca_jwk};
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{EdDSA, ES256, ES256K, ES384, RS256};
use openssl::bn::BigNum;
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{json, Map, Value};

fn pem_str(pem: Vec<u8>) -> String {
    String::from_utf8(pem).unwrap()
}

/// The DER inside a PEM public key.
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let body: String = std::str::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

/// DER rewrapped as a PEM public key.
fn wrap(der: &[u8]) -> String {
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

fn refused(pem: &str) -> String {
    match PublicKey::from_spki_pem(pem) {
        Err(JoseError::UnsupportedKey(reason) | JoseError::InvalidKey(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_refused(pem: &str, needle: &str) {
    let reason = refused(pem);
    assert!(
        reason.contains(needle),
        "reason {reason:?} lacks {needle:?}"
    );
}

fn public_members(jwk: &josekit::jwk::Jwk) -> Map<String, Value> {
    let map: &Map<String, Value> = jwk.as_ref();
    map.iter()
        .filter(|(k, _)| ["kty", "crv", "x", "y", "n", "e"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The PEM and the JWK of the same josekit key give the same public key.
fn same_key(pem: Vec<u8>, jwk: &josekit::jwk::Jwk) -> PublicKey {
    let from_pem = PublicKey::from_spki_pem(&pem_str(pem)).unwrap();
    let from_jwk = PublicKey::from_jwk(&public_members(jwk)).unwrap();
    assert_eq!(from_pem, from_jwk);
    assert_eq!(from_pem.jwk(), &public_members(jwk));
    assert_eq!(from_pem.kid(), None);
    assert_eq!(from_pem.jwk_alg(), None);
    from_pem
}

#[test]
fn i44_one_algorithm_table() {
    assert_eq!(
        Alg::ALL.map(Alg::as_str),
        ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"]
    );
    assert_eq!(Alg::for_key_type(KeyType::P256), [Alg::Es256]);
    assert_eq!(
        Alg::for_key_type(KeyType::Ed25519),
        [Alg::EdDsa, Alg::Ed25519]
    );
    assert_eq!(Alg::for_key_type(KeyType::Rsa), [Alg::Rs256, Alg::Ps256]);
    // Every algorithm belongs to exactly one key type, and back.
    for alg in Alg::ALL {
        let owners: Vec<KeyType> = KeyType::ALL
            .into_iter()
            .filter(|t| Alg::for_key_type(*t).contains(&alg))
            .collect();
        assert_eq!(owners, [alg.key_type()], "{alg}");
    }
    assert_eq!(KeyType::ALL.map(KeyType::kty), ["EC", "OKP", "RSA"]);
    assert_eq!(Alg::names(&Alg::ALL), "ES256, EdDSA, Ed25519, RS256, PS256");
    // Names outside the table are refused wherever a name is read.
    for bad in [
        "RS384", "RS512", "PS384", "PS512", "ES384", "ES512", "ES256K", "Ed448",
    ] {
        assert_eq!(
            bad.parse::<Alg>(),
            Err(JoseError::UnsupportedAlgorithm(bad.to_owned()))
        );
    }
}

#[test]
fn i44_jwk_alg_values_come_from_the_table() {
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
        let key = SigningKey::generate(alg).unwrap();
        let key_type = key.public_key().key_type();
        assert_eq!(key.public_key().algorithms(), Alg::for_key_type(key_type));
        for other in Alg::ALL {
            let mut jwk = key.public_jwk();
            jwk.insert("alg".to_owned(), json!(other.as_str()));
            match PublicKey::from_jwk(&jwk) {
                Ok(k) => {
                    assert!(Alg::for_key_type(key_type).contains(&other));
                    assert_eq!(k.jwk_alg(), Some(other));
                    assert_eq!(k.algorithms(), [other]);
                }
                Err(e) => {
                    assert!(!Alg::for_key_type(key_type).contains(&other), "{other}");
                    assert!(matches!(e, JoseError::KeyAlgMismatch { .. }), "{e}");
                }
            }
        }
        for bad in ["RS384", "PS512", "ES384", "none", "HS256"] {
            let mut jwk = key.public_jwk();
            jwk.insert("alg".to_owned(), json!(bad));
            assert_eq!(
                PublicKey::from_jwk(&jwk),
                Err(JoseError::UnsupportedAlgorithm(bad.to_owned()))
            );
        }
    }
}

#[test]
fn rfc7468_s13_spki_pem_round_trip_each_key_type() {
    let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let key = same_key(ed.to_pem_public_key(), &ed.to_jwk_public_key());
    assert_eq!(key.key_type(), KeyType::Ed25519);
    let ec = ES256.generate_key_pair().unwrap();
    let key = same_key(ec.to_pem_public_key(), &ec.to_jwk_public_key());
    assert_eq!(key.key_type(), KeyType::P256);
    let rsa = RS256.generate_key_pair(2048).unwrap();
    let key = same_key(rsa.to_pem_public_key(), &rsa.to_jwk_public_key());
    assert_eq!(key.key_type(), KeyType::Rsa);
    // to_spki_pem writes what OpenSSL's reader and ours read back.
    for alg in [Alg::Es256, Alg::Ed25519, Alg::Ps256] {
        let signing = SigningKey::generate(alg).unwrap();
        let pem = signing.public_key().to_spki_pem().unwrap();
        assert!(PKey::public_key_from_pem(pem.as_bytes()).is_ok());
        let back = PublicKey::from_spki_pem(&pem).unwrap();
        assert_eq!(back.thumbprint(), signing.thumbprint());
        assert_eq!(back.public_members(), signing.public_jwk());
    }
}

#[test]
fn s9_4_1_pem_other_curves_small_rsa_and_other_key_types_refused() {
    let p384 = ES384.generate_key_pair().unwrap();
    assert_refused(
        &pem_str(p384.to_pem_public_key()),
        "\"P-384\" is not allowed",
    );
    let k1 = ES256K.generate_key_pair().unwrap();
    assert_refused(
        &pem_str(k1.to_pem_public_key()),
        "\"secp256k1\" is not allowed",
    );
    let ed448 = EdDSA.generate_key_pair(EdCurve::Ed448).unwrap();
    assert_refused(
        &pem_str(ed448.to_pem_public_key()),
        "\"Ed448\" is not allowed",
    );
    let small = RsaKeyPair::generate(1024).unwrap();
    assert_refused(&pem_str(small.to_pem_public_key()), "1024 bits");
    let e3 = Rsa::generate_with_e(2048, &BigNum::from_u32(3).unwrap()).unwrap();
    assert_refused(
        &pem_str(e3.public_key_to_pem().unwrap()),
        "must be 65537, found 3",
    );
    let x25519 = PKey::generate_x25519().unwrap();
    assert_refused(
        &pem_str(x25519.public_key_to_pem().unwrap()),
        "key agreement keys",
    );
    let dsa = PKey::from_dsa(openssl::dsa::Dsa::generate(1024).unwrap()).unwrap();
    assert_refused(
        &pem_str(dsa.public_key_to_pem().unwrap()),
        "key type \"dsaEncryption\" is not allowed",
    );
}

#[test]
fn roca_fingerprint_refused_in_pem_keys_too() {
    // Wycheproof json_web_key_test.json, group jws_rsa_roca_key
    // (CVE-2017-15361), as the SubjectPublicKeyInfo a registrant would send.
    let jwk = &wycheproof_roca_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(&n).unwrap(),
        BigNum::from_slice(&e).unwrap(),
    )
    .unwrap();
    let pem = pem_str(PKey::from_rsa(rsa).unwrap().public_key_to_pem().unwrap());
    assert_refused(&pem, "ROCA");
}

#[test]
fn rfc7468_s13_pem_envelope_and_der_faults_refused() {
    let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let good = pem_str(ed.to_pem_public_key());
    assert!(PublicKey::from_spki_pem(&good.replace('\n', "\r\n")).is_ok());
    let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
    for (pem, needle) in [
        ("garbage".to_owned(), "not a PEM public key"),
        (String::new(), "not a PEM public key"),
        (
            "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n".to_owned(),
            "not valid base64",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----".to_owned(),
            "not a valid DER SubjectPublicKeyInfo",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".to_owned(),
            "SubjectPublicKeyInfo",
        ),
        (
            format!("-----BEGIN PUBLIC KEY-----\n{body}"),
            "must end with",
        ),
        (format!("{good}{good}"), "exactly one block"),
        (format!("{good}trailing"), "must end with"),
        (pem_str(ed.to_pem_private_key()), "private key"),
        (
            good.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            "\"RSA PUBLIC KEY\" is not accepted",
        ),
        (
            good.replace("PUBLIC KEY", "CERTIFICATE"),
            "\"CERTIFICATE\" is not accepted",
        ),
        // Text OpenSSL's own PEM reader would skip must not hide a key.
        (format!("garbage\n{good}"), "not a PEM public key"),
        (
            format!("{}{good}", pem_str(ed.to_pem_private_key())),
            "private key",
        ),
        (
            pem_str(
                Rsa::generate(2048)
                    .unwrap()
                    .public_key_to_pem_pkcs1()
                    .unwrap(),
            ),
            "\"RSA PUBLIC KEY\" is not accepted",
        ),
    ] {
        assert_refused(&pem, needle);
    }
    // DER-level faults, rewrapped as PEM: OpenSSL takes trailing data and
    // non-minimal lengths, the canonical re-encoding check does not.
    let der = STANDARD.decode(&body).unwrap();
    assert_eq!(
        PublicKey::from_spki_pem(&wrap(&der)).unwrap(),
        PublicKey::from_spki_pem(&good).unwrap()
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert_refused(&wrap(&trailing), "trailing data");
    assert_refused(
        &wrap(&der[..der.len() - 1]),
        "not a valid DER SubjectPublicKeyInfo",
    );
    let mut long_form = vec![0x30, 0x81, der[1]];
    long_form.extend_from_slice(&der[2..]);
    assert_refused(&wrap(&long_form), "not the DER encoding");
    // Ed25519 with (forbidden, RFC 8410 §3) AlgorithmIdentifier parameters.
    let mut with_params = vec![
        0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00,
    ];
    with_params.extend_from_slice(&der[der.len() - 35..]);
    assert_eq!(with_params.len(), 46);
    assert_refused(&wrap(&with_params), "SubjectPublicKeyInfo");
    // RSA: rsaEncryption without its NULL parameters.
    let rsa = RS256.generate_key_pair(2048).unwrap();
    let rsa_der = pem_der(&rsa.to_pem_public_key());
    assert_eq!(rsa_der[4..8], [0x30, 0x0d, 0x06, 0x09]);
    assert_eq!(rsa_der[17..19], [0x05, 0x00]);
    let mut no_null = rsa_der[..17].to_vec();
    no_null.extend_from_slice(&rsa_der[19..]);
    no_null[3] -= 2;
    no_null[5] -= 2;
    assert_refused(&wrap(&no_null), "SubjectPublicKeyInfo");
}

#[test]
fn rfc5480_p256_pem_point_and_parameter_checks() {
    let ec = ES256.generate_key_pair().unwrap();
    let accepted = PublicKey::from_spki_pem(&pem_str(ec.to_pem_public_key())).unwrap();
    let ec_der = pem_der(&ec.to_pem_public_key());
    // 30 59 30 13 <OIDs> 03 42 00 04 || x || y
    assert_eq!(ec_der.len(), 91);
    assert_eq!(ec_der[23..27], [0x03, 0x42, 0x00, 0x04]);
    let (x, y) = (&ec_der[27..59], &ec_der[59..]);
    assert_eq!(accepted.jwk()["x"], b64(x).as_str());
    assert_eq!(accepted.jwk()["y"], b64(y).as_str());
    // Compressed point (02/03 || x).
    let mut compressed = ec_der[..27].to_vec();
    compressed[26] = 0x02 | (y[31] & 1);
    compressed.extend_from_slice(x);
    compressed[1] -= 32;
    compressed[24] -= 32;
    assert_refused(&wrap(&compressed), "compressed");
    // Hybrid point (06/07 || x || y).
    let mut hybrid = ec_der.clone();
    hybrid[26] = 0x06 | (y[31] & 1);
    assert_refused(&wrap(&hybrid), "compressed or hybrid");
    // Off the curve.
    let mut off = ec_der.clone();
    off[90] ^= 1;
    assert_refused(&wrap(&off), "not a valid DER SubjectPublicKeyInfo");
    // The point at infinity (a single 00 octet).
    let mut infinity = ec_der[..27].to_vec();
    infinity[26] = 0x00;
    infinity[1] -= 64;
    infinity[24] -= 64;
    assert!(!refused(&wrap(&infinity)).is_empty());
    // The same P-256 point with explicit domain parameters.
    let key = EcKey::public_key_from_pem(&ec.to_pem_public_key()).unwrap();
    let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
    let explicit = EcKey::from_public_key(&group, key.public_key()).unwrap();
    let explicit = PKey::from_ec_key(explicit).unwrap();
    assert_refused(
        &pem_str(explicit.public_key_to_pem().unwrap()),
        "explicit EC domain parameters",
    );
    // Re-encoded by OpenSSL from our (x, y): the very same key.
    let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    group.set_asn1_flag(Asn1Flag::NAMED_CURVE);
    let named = EcKey::from_public_key(&group, key.public_key()).unwrap();
    let named = PKey::from_ec_key(named).unwrap();
    assert_eq!(
        PublicKey::from_spki_pem(&pem_str(named.public_key_to_pem().unwrap())).unwrap(),
        accepted
    );
}

/// The JWK and PEM forms of a 32-byte Ed25519 encoding.
fn ed25519_forms(x: &[u8; 32]) -> [Result<PublicKey, JoseError>; 2] {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(x);
    [
        PublicKey::from_jwk(&obj(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}))),
        PublicKey::from_spki_pem(&wrap(&der)),
    ]
}

fn ed25519_accepted(x: &[u8; 32]) {
    for form in ed25519_forms(x) {
        let key = form.unwrap_or_else(|e| panic!("{} refused: {e}", hex::encode(x)));
        assert_eq!(key.jwk()["x"], b64(x).as_str());
    }
}

fn ed25519_refused(x: &[u8; 32], needle: &str) {
    for form in ed25519_forms(x) {
        match form {
            Err(JoseError::InvalidKey(reason)) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            other => panic!("{}: {other:?}", hex::encode(x)),
        }
    }
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn rfc8032_s5_1_3_ed25519_point_decoding_jwk_and_pem() {
    // Base point B (y = 4/5, x even, RFC 8032 §5.1) and -B (x odd).
    let mut b = hex32("5866666666666666666666666666666666666666666666666666666666666666");
    ed25519_accepted(&b);
    b[31] |= 0x80;
    ed25519_accepted(&b);
    // RFC 8032 §7.1 test vector public keys.
    for pk in [
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
    ] {
        ed25519_accepted(&hex32(pk));
    }
    // The eight small-order points (canonical, on the curve, refused).
    for pk in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    ] {
        ed25519_refused(&hex32(pk), "small-order");
    }
    // y = 1 with the sign bit set encodes x = 0 with x_0 = 1: invalid.
    let mut neg_zero = [0u8; 32];
    neg_zero[0] = 1;
    neg_zero[31] = 0x80;
    ed25519_refused(&neg_zero, "non-canonical");
    // Non-canonical y (y = p, ..., 2^255 - 1) is never accepted.
    for k in 0u8..19 {
        let mut y = [0xffu8; 32];
        y[0] = 0xed + k;
        y[31] = 0x7f;
        for sign in [0u8, 0x80] {
            let mut e = y;
            e[31] |= sign;
            match &ed25519_forms(&e)[0] {
                Err(JoseError::InvalidKey(reason)) => assert!(
                    reason.contains("non-canonical") || reason.contains("not the encoding"),
                    "{reason}"
                ),
                other => panic!("{other:?}"),
            }
            if k < 2 && sign == 0 {
                ed25519_refused(&e, "non-canonical");
            }
        }
    }
    // Not on the curve.
    ed25519_refused(
        &hex32("0200000000000000000000000000000000000000000000000000000000000000"),
        "not the encoding of a curve point",
    );
    // Every freshly generated key is accepted, and so is its negation.
    for _ in 0..16 {
        let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        let jwk = pair.to_jwk_public_key();
        let x = jwk.parameter("x").unwrap().as_str().unwrap().to_owned();
        let mut bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
        ed25519_accepted(&bytes);
        bytes[31] ^= 0x80;
        ed25519_accepted(&bytes);
    }
}
