//! Public keys from JWKs (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) and JWK
//! Sets read key by key.
//!
//! Only the keys of draft-goswami-agentic-jwt-00 §9.4.1 are accepted: P-256
//! (ES256), Ed25519 (EdDSA) and RSA (RS256, PS256) with a modulus of at least
//! 2048 bits and public exponent 65537. Checks that are not left to chance:
//! the P-256 point is on the curve with reduced coordinates (OpenSSL); the
//! Ed25519 point decodes, is canonically encoded and not of small order
//! (curve25519-dalek); the RSA modulus is odd, has no leading zero octet and
//! does not carry the ROCA fingerprint (CVE-2017-15361). JWKs carrying
//! private or symmetric material are refused, as are `use` other than `sig`
//! and `key_ops` without `verify`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use curve25519_dalek::edwards::CompressedEdwardsY;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::{jwk_str, jwk_thumbprint, private_jwk_member, Alg, JoseError, KeyType};

/// Smallest RSA modulus accepted (§9.4.1, RFC 7518 §3.3).
const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted (bounds verification cost on hostile keys).
const RSA_MAX_BITS: usize = 16384;
/// The only RSA public exponent accepted.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// What §9.4.1 allows, for messages.
const ALLOWED: &str = "Ed25519, P-256, or RSA of at least 2048 bits with e = 65537";

/// The OpenSSL key of an accepted JWK.
#[derive(Clone)]
enum KeyMaterial {
    P256(EcKey<Public>),
    Ed25519(PKey<Public>),
    /// RSA, with the modulus length in bytes (the signature length).
    Rsa {
        key: PKey<Public>,
        modulus_len: usize,
    },
}

impl KeyMaterial {
    fn key_type(&self) -> KeyType {
        match self {
            KeyMaterial::P256(_) => KeyType::P256,
            KeyMaterial::Ed25519(_) => KeyType::Ed25519,
            KeyMaterial::Rsa { .. } => KeyType::Rsa,
        }
    }

    fn kty(&self) -> &'static str {
        self.key_type().kty()
    }

    /// The one algorithm table decides ([`Alg::for_key_type`]).
    fn fits(&self, alg: Alg) -> bool {
        Alg::for_key_type(self.key_type()).contains(&alg)
    }

    /// The exact signature length (RFC 7518 §3.4: 64 for ES256; RFC 8032
    /// §5.1.6: 64 for Ed25519; RFC 8017 §8.1.2/§8.2.2: k for RSA).
    fn signature_len(&self) -> usize {
        match self {
            KeyMaterial::P256(_) | KeyMaterial::Ed25519(_) => 64,
            KeyMaterial::Rsa { modulus_len, .. } => *modulus_len,
        }
    }

    /// OpenSSL's verdict on a signature of the right length for `alg`
    /// (`Ok(false)` for a key/alg mismatch, which callers rule out first).
    fn verify(&self, alg: Alg, input: &[u8], signature: &[u8]) -> Result<bool, ErrorStack> {
        match (self, alg) {
            (KeyMaterial::P256(key), Alg::Es256) => {
                // RFC 7518 §3.4: R || S, 32 bytes each, over SHA-256.
                let Some((r, s)) = signature.split_at_checked(32) else {
                    return Ok(false);
                };
                let signature = EcdsaSig::from_private_components(
                    BigNum::from_slice(r)?,
                    BigNum::from_slice(s)?,
                )?;
                signature.verify(&Sha256::digest(input), key)
            }
            (KeyMaterial::Ed25519(key), Alg::EdDsa | Alg::Ed25519) => {
                Verifier::new_without_digest(key)?.verify_oneshot(signature, input)
            }
            (KeyMaterial::Rsa { key, .. }, Alg::Rs256 | Alg::Ps256) => {
                let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
                if alg == Alg::Ps256 {
                    // RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash.
                    verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
                    verifier.set_rsa_mgf1_md(MessageDigest::sha256())?;
                    verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                } else {
                    verifier.set_rsa_padding(Padding::PKCS1)?;
                }
                verifier.update(input)?;
                verifier.verify(signature)
            }
            _ => Ok(false),
        }
    }
}

/// A verified, usable public signature key. Cloning is cheap (reference
/// counts only): a verifier hands out its keys per request (issue 15).
#[derive(Clone)]
pub struct PublicKey {
    material: KeyMaterial,
    /// Public members, then `kid`, `alg`, `use` when given.
    jwk: std::sync::Arc<Map<String, Value>>,
    kid: Option<std::sync::Arc<str>>,
    alg: Option<Alg>,
    thumbprint: std::sync::Arc<str>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.material {
            KeyMaterial::P256(_) => "EC P-256".to_owned(),
            KeyMaterial::Ed25519(_) => "OKP Ed25519".to_owned(),
            KeyMaterial::Rsa { modulus_len, .. } => format!("RSA {} bits", modulus_len * 8),
        };
        f.debug_struct("PublicKey")
            .field("kind", &kind)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

impl PartialEq for PublicKey {
    /// Same key material (thumbprint), `kid` and `alg`.
    fn eq(&self, other: &PublicKey) -> bool {
        self.thumbprint == other.thumbprint && self.kid == other.kid && self.alg == other.alg
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// EC P-256, OKP Ed25519 (point checked: on curve, canonical, not small
    /// order), RSA with modulus >= 2048 bits and e == 65537. Refuses private
    /// members (d,p,q,dp,dq,qi,oth,k), oct keys, other curves. Honors
    /// optional "alg" (must match the key type) and "use" (must be "sig"),
    /// and `key_ops` (must include "verify").
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<PublicKey, JoseError> {
        let kty = jwk_str(jwk, "kty")?;
        if kty == "oct" {
            return Err(JoseError::UnsupportedKey(
                "symmetric (kty \"oct\") keys are not accepted: signatures are verified with public keys only (RFC 8725 §3.1)"
                    .to_owned(),
            ));
        }
        if let Some(member) = private_jwk_member(jwk) {
            return Err(JoseError::PrivateKeyMaterial(member.to_owned()));
        }
        match jwk.get("use") {
            None => {}
            Some(Value::String(u)) if u == "sig" => {}
            Some(other) => {
                return Err(JoseError::UnsupportedKey(format!(
                    "JWK \"use\" is {other}, not \"sig\" (RFC 7517 §4.2)"
                )))
            }
        }
        match jwk.get("key_ops") {
            None => {}
            Some(Value::Array(ops)) if ops.iter().any(|o| o.as_str() == Some("verify")) => {}
            Some(other) => {
                return Err(JoseError::UnsupportedKey(format!(
                    "JWK \"key_ops\" {other} does not include \"verify\" (RFC 7517 §4.3)"
                )))
            }
        }
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => {
                return Err(JoseError::InvalidKey(
                    "JWK \"kid\" must be a string".to_owned(),
                ))
            }
        };
        // The name is checked against the table after the key itself, so a
        // P-384 key with `alg: "ES384"` is refused for its curve.
        let alg_name = match jwk.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(a.as_str()),
            Some(_) => {
                return Err(JoseError::InvalidKey(
                    "JWK \"alg\" must be a string".to_owned(),
                ))
            }
        };

        let (material, core) = match kty {
            "EC" => check_p256(jwk)?,
            "OKP" => check_ed25519(jwk)?,
            "RSA" => check_rsa(jwk)?,
            other => {
                return Err(JoseError::UnsupportedKey(format!(
                    "kty {other:?} is not allowed ({ALLOWED})"
                )))
            }
        };
        let alg = alg_name.map(str::parse::<Alg>).transpose()?;
        if let Some(alg) = alg {
            if !material.fits(alg) {
                return Err(JoseError::KeyAlgMismatch {
                    alg: alg.as_str().to_owned(),
                    kty: material.kty().to_owned(),
                });
            }
        }
        let thumbprint = jwk_thumbprint(&core)?;
        let mut public = core;
        if let Some(kid) = &kid {
            public.insert("kid".to_owned(), Value::String(kid.clone()));
        }
        if let Some(alg) = alg {
            public.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
        }
        if jwk.contains_key("use") {
            public.insert("use".to_owned(), Value::String("sig".to_owned()));
        }
        Ok(PublicKey {
            material,
            jwk: std::sync::Arc::new(public),
            kid: kid.map(std::sync::Arc::from),
            alg,
            thumbprint: std::sync::Arc::from(thumbprint),
        })
    }

    /// A public key from a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC
    /// KEY-----`, RFC 7468 §13; RFC 5480 EC, RFC 8410 Ed25519, RFC 3279
    /// RSA), held to exactly the rules of [`PublicKey::from_jwk`] (same key
    /// types, point checks, RSA size, exponent and ROCA checks). The PEM must
    /// be one block with nothing around it, and its DER the exact encoding of
    /// the key: named curve P-256 with an uncompressed point, no parameters
    /// for Ed25519, NULL parameters for rsaEncryption, minimal lengths, no
    /// trailing data. The result has no `kid` or `alg`.
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey, JoseError> {
        PublicKey::from_jwk(&crate::spki::public_members_from_spki_pem(pem)?)
    }

    /// The key as a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`),
    /// the form [`PublicKey::from_spki_pem`] reads.
    pub fn to_spki_pem(&self) -> Result<String, JoseError> {
        let pem = match &self.material {
            KeyMaterial::P256(key) => {
                PKey::from_ec_key(key.clone()).and_then(|k| k.public_key_to_pem())
            }
            KeyMaterial::Ed25519(key) | KeyMaterial::Rsa { key, .. } => key.public_key_to_pem(),
        }
        .map_err(|e| JoseError::Signing(format!("cannot encode the public key: {e}")))?;
        String::from_utf8(pem).map_err(|_| JoseError::Signing("the PEM is not UTF-8".to_owned()))
    }

    /// The JWK `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 thumbprint (base64url SHA-256).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public members (`kty` and `crv`/`x`/`y` or `n`/`e`), plus `kid`,
    /// `alg` and `use` when the JWK had them.
    pub fn jwk(&self) -> &Map<String, Value> {
        &self.jwk
    }

    /// The key's `kty`: `"EC"`, `"OKP"` or `"RSA"`.
    pub fn kty(&self) -> &'static str {
        self.material.kty()
    }

    /// The key's type (P-256, Ed25519 or RSA).
    pub fn key_type(&self) -> KeyType {
        self.material.key_type()
    }

    /// The JWK `alg` member the key was given with, if any.
    pub fn jwk_alg(&self) -> Option<Alg> {
        self.alg
    }

    /// The algorithms this key verifies: [`Alg::for_key_type`] of its type,
    /// narrowed to its JWK `alg` when it has one.
    pub fn algorithms(&self) -> Vec<Alg> {
        Alg::for_key_type(self.key_type())
            .iter()
            .copied()
            .filter(|a| self.supports(*a))
            .collect()
    }

    /// Only the public key members (`kty` and `crv`/`x`/`y` or `n`/`e`),
    /// without `kid`, `alg` or `use`: the members RFC 7638 hashes.
    pub fn public_members(&self) -> Map<String, Value> {
        self.jwk
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "kid" | "alg" | "use"))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// EC P-256 ↔ ES256, Ed25519 ↔ EdDSA | Ed25519, RSA ↔ RS256 | PS256
    /// ([`Alg::for_key_type`]); and equal to the JWK `alg` when present.
    pub fn supports(&self, alg: Alg) -> bool {
        self.material.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Verifies `signature` over `signing_input` with `alg`:
    /// [`JoseError::KeyAlgMismatch`] when `!supports(alg)`,
    /// [`JoseError::BadSignature`] on any failure, including a signature of
    /// the wrong length (ES256 and EdDSA: exactly 64 bytes, R || S per
    /// RFC 7518 §3.4 / RFC 8032 §5.1.6; RSA: exactly the modulus length).
    pub fn verify(
        &self,
        alg: Alg,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        if !self.supports(alg) {
            return Err(JoseError::KeyAlgMismatch {
                alg: alg.as_str().to_owned(),
                kty: self.material.kty().to_owned(),
            });
        }
        if signature.len() != self.material.signature_len() {
            return Err(JoseError::BadSignature);
        }
        match self.material.verify(alg, signing_input, signature) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(JoseError::BadSignature),
        }
    }
}

/// A member decoded from strict base64url (RFC 7515 §2: no padding, no
/// characters outside the alphabet, no non-zero trailing bits).
fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JoseError> {
    let text = jwk_str(jwk, name)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        JoseError::InvalidKey(format!(
            "JWK member {name:?} is not canonical unpadded base64url (RFC 7515 §2)"
        ))
    })
}

/// Copies the named string members into a fresh map.
fn core_of(jwk: &Map<String, Value>, names: &[&str]) -> Result<Map<String, Value>, JoseError> {
    let mut core = Map::new();
    for name in names {
        core.insert(
            (*name).to_owned(),
            Value::String(jwk_str(jwk, name)?.to_owned()),
        );
    }
    Ok(core)
}

fn openssl_invalid(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> JoseError {
    move |_| JoseError::InvalidKey(what.to_owned())
}

/// The P-256 group and its field prime, built once.
struct P256 {
    group: EcGroup,
    /// The field prime p, 32 bytes big-endian.
    p: Vec<u8>,
}

fn p256() -> Result<&'static P256, JoseError> {
    static CELL: OnceLock<P256> = OnceLock::new();
    if let Some(curve) = CELL.get() {
        return Ok(curve);
    }
    let failure = openssl_invalid("P-256 is not available in OpenSSL");
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(failure)?;
    let mut ctx = BigNumContext::new().map_err(openssl_invalid("OpenSSL failure"))?;
    let mut p = BigNum::new().map_err(openssl_invalid("OpenSSL failure"))?;
    let mut a = BigNum::new().map_err(openssl_invalid("OpenSSL failure"))?;
    let mut b = BigNum::new().map_err(openssl_invalid("OpenSSL failure"))?;
    group
        .components_gfp(&mut p, &mut a, &mut b, &mut ctx)
        .map_err(openssl_invalid("OpenSSL failure"))?;
    let p = p
        .to_vec_padded(32)
        .map_err(openssl_invalid("OpenSSL failure"))?;
    Ok(CELL.get_or_init(|| P256 { group, p }))
}

/// RFC 7518 §6.2.1: P-256 only, 32-byte coordinates, each below the field
/// prime, of a point on the curve (OpenSSL's decoding of the uncompressed
/// SEC 1 point 04 || x || y checks the curve equation; P-256 has cofactor 1,
/// so every curve point other than infinity, which this encoding cannot
/// express, generates the full group).
fn check_p256(jwk: &Map<String, Value>) -> Result<(KeyMaterial, Map<String, Value>), JoseError> {
    match jwk_str(jwk, "crv")? {
        "P-256" => {}
        other => {
            return Err(JoseError::UnsupportedKey(format!(
                "curve {other:?} is not allowed ({ALLOWED})"
            )))
        }
    }
    let x = b64_member(jwk, "x")?;
    let y = b64_member(jwk, "y")?;
    for (name, c) in [("x", &x), ("y", &y)] {
        if c.len() != 32 {
            return Err(JoseError::InvalidKey(format!(
                "P-256 {name:?} must be 32 bytes (RFC 7518 §6.2.1.2), found {}",
                c.len()
            )));
        }
    }
    let curve = p256()?;
    // Equal-length big-endian byte strings compare like the integers.
    if x >= curve.p || y >= curve.p {
        return Err(JoseError::InvalidKey(
            "P-256 coordinate not reduced modulo p".to_owned(),
        ));
    }
    let not_on_curve = "(x, y) is not a point on P-256";
    let mut encoded = Vec::with_capacity(65);
    encoded.push(0x04);
    encoded.extend_from_slice(&x);
    encoded.extend_from_slice(&y);
    let mut ctx = BigNumContext::new().map_err(openssl_invalid("OpenSSL failure"))?;
    let point = EcPoint::from_bytes(&curve.group, &encoded, &mut ctx)
        .map_err(openssl_invalid(not_on_curve))?;
    let on_curve = point
        .is_on_curve(&curve.group, &mut ctx)
        .map_err(openssl_invalid(not_on_curve))?;
    if !on_curve || point.is_infinity(&curve.group) {
        return Err(JoseError::InvalidKey(not_on_curve.to_owned()));
    }
    let key =
        EcKey::from_public_key(&curve.group, &point).map_err(openssl_invalid(not_on_curve))?;
    Ok((
        KeyMaterial::P256(key),
        core_of(jwk, &["kty", "crv", "x", "y"])?,
    ))
}

/// RFC 8037 §2: Ed25519 only; the point must decode (RFC 8032 §5.1.3), be
/// canonically encoded (y < p, no sign bit on x = 0) and not of small order.
fn check_ed25519(jwk: &Map<String, Value>) -> Result<(KeyMaterial, Map<String, Value>), JoseError> {
    match jwk_str(jwk, "crv")? {
        "Ed25519" => {}
        other => {
            return Err(JoseError::UnsupportedKey(format!(
                "curve {other:?} is not allowed ({ALLOWED})"
            )))
        }
    }
    let x = b64_member(jwk, "x")?;
    let x: [u8; 32] = x.as_slice().try_into().map_err(|_| {
        JoseError::InvalidKey(format!("Ed25519 \"x\" must be 32 bytes, found {}", x.len()))
    })?;
    let point = CompressedEdwardsY(x).decompress().ok_or_else(|| {
        JoseError::InvalidKey(
            "Ed25519 \"x\" is not the encoding of a curve point (RFC 8032 §5.1.3)".to_owned(),
        )
    })?;
    if point.compress().to_bytes() != x {
        return Err(JoseError::InvalidKey(
            "Ed25519 \"x\" is a non-canonical point encoding (RFC 8032 §5.1.2)".to_owned(),
        ));
    }
    if point.is_small_order() {
        return Err(JoseError::InvalidKey(
            "Ed25519 \"x\" is a small-order point".to_owned(),
        ));
    }
    let key = PKey::public_key_from_raw_bytes(&x, Id::ED25519)
        .map_err(openssl_invalid("OpenSSL refused the Ed25519 key"))?;
    Ok((
        KeyMaterial::Ed25519(key),
        core_of(jwk, &["kty", "crv", "x"])?,
    ))
}

/// RFC 7518 §6.3.1: minimal big-endian `n` and `e`; e = 65537; 2048 to
/// 16384 bits; odd modulus without the ROCA fingerprint.
fn check_rsa(jwk: &Map<String, Value>) -> Result<(KeyMaterial, Map<String, Value>), JoseError> {
    let n = b64_member(jwk, "n")?;
    let e = b64_member(jwk, "e")?;
    if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
        return Err(JoseError::InvalidKey(
            "RSA \"n\" and \"e\" must be non-empty without leading zero octets (RFC 7518 §6.3.1)"
                .to_owned(),
        ));
    }
    if e != RSA_EXPONENT {
        return Err(JoseError::UnsupportedKey(format!(
            "RSA public exponent must be 65537, found {} ({ALLOWED})",
            describe_uint(&e)
        )));
    }
    let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
    if bits < RSA_MIN_BITS {
        return Err(JoseError::UnsupportedKey(format!(
            "RSA modulus is {bits} bits; at least {RSA_MIN_BITS} are required ({ALLOWED})"
        )));
    }
    if bits > RSA_MAX_BITS {
        return Err(JoseError::UnsupportedKey(format!(
            "RSA modulus is {bits} bits; at most {RSA_MAX_BITS} are accepted"
        )));
    }
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err(JoseError::InvalidKey("RSA modulus is even".to_owned()));
    }
    if has_roca_fingerprint(&n) {
        return Err(JoseError::UnsupportedKey(
            "RSA modulus has the ROCA fingerprint (CVE-2017-15361): its factors can be recovered"
                .to_owned(),
        ));
    }
    let invalid = openssl_invalid("OpenSSL refused the RSA key");
    let key = Rsa::from_public_components(
        BigNum::from_slice(&n).map_err(openssl_invalid("OpenSSL refused the RSA key"))?,
        BigNum::from_slice(&e).map_err(openssl_invalid("OpenSSL refused the RSA key"))?,
    )
    .and_then(PKey::from_rsa)
    .map_err(invalid)?;
    Ok((
        KeyMaterial::Rsa {
            key,
            modulus_len: n.len(),
        },
        core_of(jwk, &["kty", "n", "e"])?,
    ))
}

/// Decimal for small integers, size otherwise.
fn describe_uint(bytes: &[u8]) -> String {
    if bytes.len() <= 8 {
        bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
            .to_string()
    } else {
        format!("a {}-byte integer", bytes.len())
    }
}

/// The ROCA test of Nemec et al., "The Return of Coppersmith's Attack"
/// (ACM CCS 2017): the primes of an affected key are `k * M + 65537^a mod M`
/// where M is a primorial, so for every small prime r dividing M, `n mod r`
/// lies in the subgroup generated by 65537 modulo r. For moduli from 1984 to
/// 4096 bits M includes the first 126 primes; the test below uses the odd
/// ones among them (3 to 701). A random modulus passes all 125 residue tests
/// with probability about 2^-167, so legitimate keys are not refused.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    roca_tables().iter().all(|(r, in_subgroup)| {
        let residue = n
            .iter()
            .fold(0u64, |acc, byte| (acc * 256 + u64::from(*byte)) % r);
        usize::try_from(residue)
            .ok()
            .and_then(|i| in_subgroup.get(i))
            .is_some_and(|member| *member)
    })
}

/// For each odd prime r among the first 126 primes: which residues modulo r
/// lie in the subgroup generated by 65537.
fn roca_tables() -> &'static [(u64, Vec<bool>)] {
    static TABLES: OnceLock<Vec<(u64, Vec<bool>)>> = OnceLock::new();
    TABLES.get_or_init(|| {
        const PRIME_COUNT: usize = 126;
        const GENERATOR: u64 = 65537;
        let mut primes: Vec<u64> = Vec::with_capacity(PRIME_COUNT);
        let mut candidate = 2u64;
        while primes.len() < PRIME_COUNT {
            if primes.iter().all(|p| candidate % p != 0) {
                primes.push(candidate);
            }
            candidate += 1;
        }
        primes
            .into_iter()
            .filter(|r| *r != 2)
            .map(|r| {
                let mut members = vec![false; usize::try_from(r).unwrap_or(0)];
                let g = GENERATOR % r;
                let mut power = 1u64;
                loop {
                    if let Some(slot) = usize::try_from(power).ok().and_then(|i| members.get_mut(i))
                    {
                        *slot = true;
                    }
                    power = power * g % r;
                    if power == 1 {
                        break;
                    }
                }
                (r, members)
            })
            .collect()
    })
}

/// A JWK Set (RFC 7517 §5) of usable public keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<PublicKey>,
}

impl JwkSet {
    /// Parses {"keys":[...]} KEY BY KEY: unusable keys are skipped with a
    /// reason (returned), never failing the whole set; a non-object or
    /// missing (or non-array, or repeated) "keys" is an error. Each key is
    /// read strictly (duplicate members make that key unusable) and must pass
    /// [`PublicKey::from_jwk`]. Keys that share a `kid` are all skipped: a
    /// `kid` naming two keys names none.
    pub fn parse(json: &[u8]) -> Result<(JwkSet, Vec<String>), JoseError> {
        #[derive(serde::Deserialize)]
        struct Document<'a> {
            #[serde(borrow)]
            keys: Vec<&'a RawValue>,
        }
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(JoseError::InvalidJwkSet(
                "the document is not a JSON object".to_owned(),
            ));
        }
        let doc: Document<'_> =
            serde_json::from_slice(json).map_err(|e| JoseError::InvalidJwkSet(e.to_string()))?;
        let mut skipped = Vec::new();
        let mut keys = Vec::new();
        for (i, raw) in doc.keys.iter().enumerate() {
            let parsed = match ajwt_json::parse_strict_str(raw.get()) {
                Ok(v) => v.to_serde_json(),
                Err(e) => {
                    skipped.push(format!("key #{i}: {e}"));
                    continue;
                }
            };
            let Value::Object(jwk) = parsed else {
                skipped.push(format!("key #{i}: not a JSON object"));
                continue;
            };
            match PublicKey::from_jwk(&jwk) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    let kid = jwk
                        .get("kid")
                        .map_or_else(|| "no kid".to_owned(), |k| format!("kid {k}"));
                    skipped.push(format!("key #{i} ({kid}): {e}"));
                }
            }
        }
        let mut kid_count: HashMap<String, usize> = HashMap::new();
        for kid in keys.iter().filter_map(PublicKey::kid) {
            *kid_count.entry(kid.to_owned()).or_default() += 1;
        }
        keys.retain(|k| match k.kid() {
            Some(kid) if kid_count.get(kid).is_some_and(|c| *c > 1) => {
                skipped.push(format!(
                    "key with kid {kid:?} (thumbprint {}): the kid names more than one key",
                    k.thumbprint()
                ));
                false
            }
            _ => true,
        });
        Ok((JwkSet { keys }, skipped))
    }

    /// A set of already checked keys.
    pub fn from_keys(keys: Vec<PublicKey>) -> JwkSet {
        JwkSet { keys }
    }

    /// The key with this `kid`, if exactly one key has it.
    pub fn find(&self, kid: &str) -> Option<&PublicKey> {
        let mut found = self.keys.iter().filter(|k| k.kid() == Some(kid));
        match (found.next(), found.next()) {
            (Some(key), None) => Some(key),
            _ => None,
        }
    }

    /// Every usable key, in document order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
