//! PEM SubjectPublicKeyInfo (RFC 5280 §4.1.2.7, RFC 7468 §13) to JWK public
//! members, for [`crate::PublicKey::from_spki_pem`]. The DER is parsed by
//! OpenSSL; this module checks what OpenSSL lets through: text around or
//! between PEM blocks, other PEM labels (`RSA PUBLIC KEY`, private keys),
//! explicit EC parameters, compressed or hybrid points, non-minimal DER
//! lengths and trailing data (the DER must be exactly OpenSSL's re-encoding
//! of the key). The key-type rules themselves (curve, point, RSA size and
//! exponent, ROCA) are [`crate::PublicKey::from_jwk`]'s.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use serde_json::{Map, Value};

use crate::JoseError;

/// What §9.4.1 allows, for messages.
const ALLOWED: &str = "§9.4.1 allows Ed25519, P-256, or RSA of at least 2048 bits with e = 65537";

fn unsupported(reason: impl Into<String>) -> JoseError {
    JoseError::UnsupportedKey(reason.into())
}

fn invalid(reason: impl Into<String>) -> JoseError {
    JoseError::InvalidKey(reason.into())
}

/// The DER inside a single `-----BEGIN PUBLIC KEY-----` PEM block (RFC 7468
/// §13). Only the textual envelope is checked here (so that private keys and
/// other labels get a named refusal, and nothing hides before, after or
/// beside the block; OpenSSL's PEM reader would skip such text and also
/// takes `RSA PUBLIC KEY`); the DER itself is left to OpenSSL.
fn pem_public_key_der(pem: &str) -> Result<Vec<u8>, JoseError> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let text = pem.trim();
    let Some(body) = text.strip_prefix(BEGIN) else {
        let label = text
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.split_once("-----"))
            .map(|(label, _)| label);
        return Err(unsupported(match label {
            Some(l) if l.contains("PRIVATE") => {
                format!(
                    "the PEM holds a private key ({l}); only a public key is accepted ({BEGIN})"
                )
            }
            Some(l) => {
                format!("PEM type {l:?} is not accepted; expected a SubjectPublicKeyInfo ({BEGIN})")
            }
            None => format!("not a PEM public key: expected a JWK object or {BEGIN}"),
        }));
    };
    let Some(body) = body.strip_suffix(END) else {
        return Err(invalid(format!(
            "PEM public key must end with {END} (and nothing after it)"
        )));
    };
    if body.contains('-') || body.contains(':') {
        return Err(invalid(
            "PEM public key must hold exactly one block without headers",
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|_| invalid("PEM body is not valid base64"))
}

/// The reasons of an OpenSSL error stack, for messages (no file names).
fn openssl_reasons(errors: &ErrorStack) -> String {
    let mut reasons: Vec<&str> = Vec::new();
    for reason in errors.errors().iter().filter_map(|e| e.reason()) {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        "no reason given".to_owned()
    } else {
        reasons.join("; ")
    }
}

/// Maps an OpenSSL failure while handling an already parsed key.
fn openssl_error(what: &'static str) -> impl FnOnce(ErrorStack) -> JoseError {
    move |e| invalid(format!("{what}: {}", openssl_reasons(&e)))
}

/// Public members of the JWK equivalent to a PEM SubjectPublicKeyInfo
/// (RFC 5480 EC, RFC 8410 Ed25519, RFC 3279 RSA), parsed by OpenSSL. The
/// DER must be exactly the encoding OpenSSL gives the same key.
pub(crate) fn public_members_from_spki_pem(pem: &str) -> Result<Map<String, Value>, JoseError> {
    let der = pem_public_key_der(pem)?;
    let pkey = PKey::public_key_from_der(&der).map_err(|e| {
        invalid(format!(
            "not a valid DER SubjectPublicKeyInfo holding a valid public key \
             (RFC 5280 §4.1.2.7); OpenSSL: {}",
            openssl_reasons(&e)
        ))
    })?;
    let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
    let text = |s: &str| Value::String(s.to_owned());
    let mut core = Map::new();
    let canonical: PKey<Public> = match pkey.id() {
        Id::ED25519 => {
            let x = pkey
                .raw_public_key()
                .map_err(openssl_error("invalid Ed25519 public key"))?;
            core.insert("kty".to_owned(), text("OKP"));
            core.insert("crv".to_owned(), text("Ed25519"));
            core.insert("x".to_owned(), b64(&x));
            PKey::public_key_from_raw_bytes(&x, Id::ED25519)
                .map_err(openssl_error("invalid Ed25519 public key"))?
        }
        Id::EC => {
            let ec = pkey
                .ec_key()
                .map_err(openssl_error("invalid EC public key"))?;
            let group = ec.group();
            if group.asn1_flag() != Asn1Flag::NAMED_CURVE {
                return Err(unsupported(
                    "explicit EC domain parameters are not accepted; use the named curve P-256",
                ));
            }
            match group.curve_name() {
                Some(Nid::X9_62_PRIME256V1) => {}
                Some(nid) => {
                    let name = match nid {
                        Nid::SECP384R1 => "P-384",
                        Nid::SECP521R1 => "P-521",
                        Nid::SECP256K1 => "secp256k1",
                        other => other.short_name().unwrap_or("unknown"),
                    };
                    return Err(unsupported(format!(
                        "curve {name:?} is not allowed ({ALLOWED})"
                    )));
                }
                None => {
                    return Err(unsupported(format!(
                        "EC key without a named curve is not allowed ({ALLOWED})"
                    )))
                }
            }
            ec.check_key()
                .map_err(openssl_error("invalid P-256 public key"))?;
            let mut ctx = BigNumContext::new().map_err(openssl_error("OpenSSL failure"))?;
            let mut x = BigNum::new().map_err(openssl_error("OpenSSL failure"))?;
            let mut y = BigNum::new().map_err(openssl_error("OpenSSL failure"))?;
            ec.public_key()
                .affine_coordinates(group, &mut x, &mut y, &mut ctx)
                .map_err(openssl_error("invalid P-256 public key"))?;
            let x = x
                .to_vec_padded(32)
                .map_err(openssl_error("invalid P-256 public key"))?;
            let y = y
                .to_vec_padded(32)
                .map_err(openssl_error("invalid P-256 public key"))?;
            core.insert("kty".to_owned(), text("EC"));
            core.insert("crv".to_owned(), text("P-256"));
            core.insert("x".to_owned(), b64(&x));
            core.insert("y".to_owned(), b64(&y));
            let named = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
                .map_err(openssl_error("OpenSSL failure"))?;
            let canonical = EcKey::from_public_key(&named, ec.public_key())
                .and_then(PKey::from_ec_key)
                .map_err(openssl_error("invalid P-256 public key"))?;
            // OpenSSL keeps the point form it parsed; ours is uncompressed.
            let reencoded = pkey
                .public_key_to_der()
                .map_err(openssl_error("invalid P-256 public key"))?;
            let uncompressed = canonical
                .public_key_to_der()
                .map_err(openssl_error("invalid P-256 public key"))?;
            if reencoded != uncompressed {
                return Err(invalid(
                    "compressed or hybrid EC points are not accepted; use the uncompressed form",
                ));
            }
            canonical
        }
        Id::RSA => {
            let rsa = pkey.rsa().map_err(openssl_error("invalid RSA public key"))?;
            if rsa.n().is_negative() || rsa.e().is_negative() {
                return Err(invalid(
                    "RSA modulus and exponent must be positive integers",
                ));
            }
            core.insert("kty".to_owned(), text("RSA"));
            core.insert("n".to_owned(), b64(&rsa.n().to_vec()));
            core.insert("e".to_owned(), b64(&rsa.e().to_vec()));
            let n = rsa.n().to_owned().map_err(openssl_error("OpenSSL failure"))?;
            let e = rsa.e().to_owned().map_err(openssl_error("OpenSSL failure"))?;
            Rsa::from_public_components(n, e)
                .and_then(PKey::from_rsa)
                .map_err(openssl_error("invalid RSA public key"))?
        }
        Id::ED448 => {
            return Err(unsupported(format!(
                "curve \"Ed448\" is not allowed ({ALLOWED})"
            )))
        }
        Id::X25519 | Id::X448 => {
            return Err(unsupported(format!(
                "key agreement keys (X25519/X448) cannot sign ({ALLOWED})"
            )))
        }
        Id::RSA_PSS => {
            return Err(unsupported(
                "RSASSA-PSS-restricted keys are not accepted; use an rsaEncryption SubjectPublicKeyInfo",
            ))
        }
        other => {
            let nid = Nid::from_raw(other.as_raw());
            let name = nid
                .long_name()
                .or_else(|_| nid.short_name())
                .unwrap_or("unknown");
            return Err(unsupported(format!(
                "key type {name:?} is not allowed ({ALLOWED})"
            )));
        }
    };
    let expected = canonical
        .public_key_to_der()
        .map_err(openssl_error("OpenSSL failure"))?;
    if der != expected {
        return Err(invalid(if der.starts_with(&expected) {
            "trailing data after the DER public key".to_owned()
        } else {
            "the public key is not the DER encoding of its SubjectPublicKeyInfo \
             (RFC 5280 §4.1.2.7: minimal lengths, and the AlgorithmIdentifier \
             parameters of RFC 3279 / RFC 8410)"
                .to_owned()
        }));
    }
    Ok(core)
}
