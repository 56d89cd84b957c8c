//! The JOSE layer shared by the Agentic JWT issuer, resource-server verifier
//! and client shim (draft-goswami-agentic-jwt-00) — the project's only JOSE
//! code: the one algorithm table ([`Alg::ALL`], [`Alg::for_key_type`],
//! interpretation I-44), private keys ([`SigningKey`], which the issuer
//! signs its tokens with and agents their DPoP proofs), RFC 7638 JWK
//! thumbprints, public keys from JWKs and PEM SubjectPublicKeyInfo
//! ([`PublicKey::from_jwk`], [`PublicKey::from_spki_pem`]) and JWK Sets
//! parsed key by key (RFC 7517), compact JWS
//! (RFC 7515) verification with an explicit algorithm allow-list and the
//! RFC 8725 rules enforced by construction (no `none`, no HMAC, no JWS JSON
//! serialization, no JWE or nested tokens, no `crit`, no unencoded payload,
//! alg/key binding), and DPoP proofs (RFC 9449), created for agents and
//! verified for resource servers: the agent-level proof of possession of the
//! key named by an intent token's `cnf` claim (draft §4.4.2, §9.2.2), with
//! the key types of §9.4.1 (Ed25519, P-256, RSA of at least 2048 bits with
//! public exponent 65537; RFC 7518 algorithm names ES256, EdDSA, RS256, PS256,
//! and RFC 9864's fully-specified `Ed25519`).
//!
//! Signatures are made by josekit and checked by OpenSSL (through the
//! `openssl` crate, keys built from the JWK members directly rather than via
//! josekit's DER round trip, which costs more than a signature check); P-256
//! points are checked by OpenSSL, Ed25519 points by curve25519-dalek. josekit 0.10.3
//! pitfalls are handled here rather than inherited: it has no thumbprint API
//! ([`jwk_thumbprint`]), a single bad key fails its whole JWK Set
//! ([`JwkSet::parse`] reads keys one by one), it ignores `typ`
//! ([`typ_matches`], [`verify_dpop_proof`]) and it accepts RSA public
//! exponent 1 and short moduli ([`PublicKey::from_jwk`] refuses them). JWE is
//! not supported at all.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

pub mod dpop;
mod jws;
mod key;
mod replay;
mod signing;
mod spki;

pub use dpop::{
    ath, normalize_htu, verify_dpop_proof, DpopCheck, DpopError, DpopKey, VerifiedProof,
};
pub use jws::CompactJws;
pub use key::{JwkSet, PublicKey};
pub use replay::JtiCache;
pub use signing::SigningKey;

/// JWK members that carry private or symmetric key material (RFC 7518
/// §6.2.2 `d`; §6.3.2 `d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`; §6.4.1 `k`;
/// RFC 8037 §2 `d`). A JWK holding any of them is never accepted where a
/// public key is expected (registration, JWK Sets, DPoP `jwk` headers).
pub const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The first member of [`PRIVATE_JWK_MEMBERS`] that `jwk` has, if any.
pub fn private_jwk_member(jwk: &Map<String, Value>) -> Option<&'static str> {
    PRIVATE_JWK_MEMBERS
        .iter()
        .copied()
        .find(|m| jwk.contains_key(*m))
}

/// The key types of draft §9.4.1, the only ones this crate accepts or
/// generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// EC on P-256 (`kty` `EC`, `crv` `P-256`, RFC 7518 §6.2).
    P256,
    /// Ed25519 (`kty` `OKP`, `crv` `Ed25519`, RFC 8037 §2).
    Ed25519,
    /// RSA with a modulus of at least 2048 bits and e = 65537 (RFC 7518 §6.3).
    Rsa,
}

impl KeyType {
    /// Every key type, in the order P-256, Ed25519, RSA.
    pub const ALL: [KeyType; 3] = [KeyType::P256, KeyType::Ed25519, KeyType::Rsa];

    /// The JWK `kty`: `"EC"`, `"OKP"` or `"RSA"`.
    pub fn kty(self) -> &'static str {
        match self {
            KeyType::P256 => "EC",
            KeyType::Ed25519 => "OKP",
            KeyType::Rsa => "RSA",
        }
    }

    /// The JWK `crv` (`"P-256"`, `"Ed25519"`), `None` for RSA.
    pub fn crv(self) -> Option<&'static str> {
        match self {
            KeyType::P256 => Some("P-256"),
            KeyType::Ed25519 => Some("Ed25519"),
            KeyType::Rsa => None,
        }
    }
}

/// The JWS algorithms this crate signs and verifies (RFC 7518 §3.1, RFC 8037
/// §3.1, RFC 9864 §2.2). Everything else (`none`, HMAC, other hashes and
/// curves: RS384, PS512, ES384, ...) is refused.
///
/// This is the project's one algorithm policy (interpretation I-44): the
/// issuer's own signing keys, agent-key registration (the JWK `alg` member),
/// JWK Sets, token verification, DPoP proofs and the client all read
/// [`Alg::ALL`] and [`Alg::for_key_type`]; nothing else lists algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4), signature R || S.
    Es256,
    /// EdDSA with Ed25519 (RFC 8037 §3.1), under the polymorphic name `EdDSA`.
    EdDsa,
    /// EdDSA with Ed25519 under its fully-specified name `Ed25519` (RFC 9864
    /// §2.2): the same signature as [`Alg::EdDsa`], but the name alone says
    /// which curve. oauth4webapi signs DPoP proofs with it.
    Ed25519,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt (RFC 7518 §3.5).
    Ps256,
}

impl Alg {
    /// Every algorithm, in the order ES256, EdDSA, Ed25519, RS256, PS256.
    pub const ALL: [Alg; 5] = [Alg::Es256, Alg::EdDsa, Alg::Ed25519, Alg::Rs256, Alg::Ps256];

    /// The JWS `alg` name: `"ES256"`, `"EdDSA"`, `"Ed25519"`, `"RS256"` or
    /// `"PS256"` (case-sensitive, RFC 7515 §4.1.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Ed25519 => "Ed25519",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }

    /// The algorithms a key of type `key_type` signs and verifies with — and
    /// so the only values its JWK `alg` member may take: P-256 → ES256;
    /// Ed25519 → EdDSA, Ed25519 (RFC 9864: the same signature under its
    /// fully-specified name); RSA → RS256, PS256.
    pub fn for_key_type(key_type: KeyType) -> &'static [Alg] {
        match key_type {
            KeyType::P256 => &[Alg::Es256],
            KeyType::Ed25519 => &[Alg::EdDsa, Alg::Ed25519],
            KeyType::Rsa => &[Alg::Rs256, Alg::Ps256],
        }
    }

    /// The key type this algorithm needs (the inverse of [`Alg::for_key_type`]).
    pub fn key_type(self) -> KeyType {
        match self {
            Alg::Es256 => KeyType::P256,
            Alg::EdDsa | Alg::Ed25519 => KeyType::Ed25519,
            Alg::Rs256 | Alg::Ps256 => KeyType::Rsa,
        }
    }

    /// The names of `algs` joined by `", "` (for messages and metadata).
    pub fn names(algs: &[Alg]) -> String {
        algs.iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = JoseError;

    /// Exact, case-sensitive names (RFC 7515 §4.1.1). `none`, the HMAC
    /// algorithms and any other name are [`JoseError::UnsupportedAlgorithm`].
    fn from_str(s: &str) -> Result<Alg, JoseError> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| JoseError::UnsupportedAlgorithm(s.to_owned()))
    }
}

/// Why a key, a JWK Set or a JWS was refused, or an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// Not a well-formed compact JWS (parts, base64url, header JSON).
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// The input is longer than the caller's limit (checked before decoding).
    #[error("token too large: {len} bytes (limit {max})")]
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// JWS JSON serialization (RFC 7515 §7.2) is not accepted.
    #[error(
        "JWS JSON serialization is not accepted; only the compact serialization (RFC 7515 §7.1)"
    )]
    JsonSerializationNotSupported,
    /// A JWE (5 parts or an `enc` header) was presented where a JWS is expected.
    #[error("encrypted tokens (JWE) are not accepted")]
    EncryptedNotSupported,
    /// A nested JWT (`cty: "JWT"`, RFC 7519 §5.2) is not accepted.
    #[error("nested JWTs (cty \"JWT\") are not accepted")]
    NestedNotSupported,
    /// The protected header names a member twice (RFC 7515 §4).
    #[error("duplicate JWS header member {0:?}")]
    DuplicateHeaderMember(String),
    /// The header has `crit`: no extension is understood (RFC 7515 §4.1.11).
    #[error("critical header extensions are not supported (crit {0})")]
    CriticalHeader(String),
    /// `b64: false` (RFC 7797 unencoded payload) is not supported.
    #[error("unencoded payloads (b64 {0}) are not supported")]
    UnencodedPayload(String),
    /// The header has no `alg`.
    #[error("the JWS header has no \"alg\"")]
    MissingAlgorithm,
    /// An `alg` this crate never accepts: `none`, HMAC, or unknown (RFC 8725 §3.1).
    #[error("algorithm {0:?} is not supported (only ES256, EdDSA, Ed25519, RS256 and PS256; never \"none\" or HMAC)")]
    UnsupportedAlgorithm(String),
    /// A supported `alg` that is not in the caller's allow-list.
    #[error("algorithm {0:?} is not allowed here")]
    AlgorithmNotAllowed(String),
    /// The key cannot be used with this algorithm (or its JWK `alg` names another).
    #[error("algorithm {alg:?} does not fit the key (kty {kty:?})")]
    KeyAlgMismatch {
        /// The algorithm.
        alg: String,
        /// The key's `kty`.
        kty: String,
    },
    /// The header `kid` names another key than the one given to verify.
    #[error("the token's kid {found:?} is not the key's kid {expected:?}")]
    KidMismatch {
        /// The key's `kid`.
        expected: String,
        /// The header's `kid`.
        found: String,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A well-formed key of a kind, size, curve, exponent or use that is not accepted.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A malformed key: missing or badly encoded members, invalid point.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A JWK carrying private or symmetric key material where a public key is expected.
    #[error("the JWK carries private key material (member {0:?}); only public keys are accepted")]
    PrivateKeyMaterial(String),
    /// Not a JWK Set document (`{"keys": [...]}`, RFC 7517 §5).
    #[error("invalid JWK Set: {0}")]
    InvalidJwkSet(String),
    /// A URL that is not an absolute http(s) URL (DPoP `htu`).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A value that cannot go into a DPoP proof (e.g. an `htm` that is not an HTTP method).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Key generation, encoding or signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// RFC 7638 JWK thumbprint: base64url (no padding) of SHA-256 over the
/// required members in lexicographic order, without whitespace (§3.2; EC:
/// `crv`, `kty`, `x`, `y`; OKP (RFC 8037 §2): `crv`, `kty`, `x`; RSA: `e`,
/// `kty`, `n`; oct: `k`, `kty`). Other members are ignored; the values must
/// be strings but are not otherwise validated (see [`PublicKey::from_jwk`]).
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, JoseError> {
    let kty = jwk_str(jwk, "kty")?;
    let names: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        "oct" => &["k", "kty"],
        other => {
            return Err(JoseError::UnsupportedKey(format!(
                "RFC 7638 defines no thumbprint for kty {other:?}"
            )))
        }
    };
    let mut json = String::from("{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let value = jwk_str(jwk, name)?;
        json.push_str(&Value::String((*name).to_owned()).to_string());
        json.push(':');
        json.push_str(&Value::String(value.to_owned()).to_string());
    }
    json.push('}');
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes())))
}

/// A required string member of a JWK.
pub(crate) fn jwk_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, JoseError> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JoseError::InvalidKey(format!(
            "JWK member {name:?} must be a string"
        ))),
        None => Err(JoseError::InvalidKey(format!(
            "JWK member {name:?} is missing"
        ))),
    }
}

/// `typ` comparison of RFC 7515 §4.1.9 / RFC 8725 §3.11: case-insensitive,
/// with the `application/` prefix optional on either side. An absent `typ`
/// never matches.
pub fn typ_matches(found: Option<&str>, expected: &str) -> bool {
    fn bare(s: &str) -> &str {
        const PREFIX: &str = "application/";
        match (s.get(..PREFIX.len()), s.get(PREFIX.len()..)) {
            (Some(p), Some(rest)) if p.eq_ignore_ascii_case(PREFIX) => rest,
            _ => s,
        }
    }
    found.is_some_and(|f| bare(f).eq_ignore_ascii_case(bare(expected)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_round_trip_and_refuse_others() {
        for alg in Alg::ALL {
            assert_eq!(alg.as_str().parse::<Alg>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for bad in [
            "none", "None", "HS256", "HS384", "HS512", "es256", "ES384", "ed25519", "Ed448", "",
        ] {
            assert_eq!(
                bad.parse::<Alg>(),
                Err(JoseError::UnsupportedAlgorithm(bad.to_owned()))
            );
        }
    }

    #[test]
    fn rfc8725_s3_11_typ_comparison() {
        assert!(typ_matches(Some("dpop+jwt"), "dpop+jwt"));
        assert!(typ_matches(Some("DPoP+JWT"), "dpop+jwt"));
        assert!(typ_matches(Some("application/at+jwt"), "at+jwt"));
        assert!(typ_matches(Some("at+jwt"), "Application/AT+JWT"));
        assert!(!typ_matches(None, "at+jwt"));
        assert!(!typ_matches(Some("jwt"), "at+jwt"));
        assert!(!typ_matches(Some("application/"), "at+jwt"));
        assert!(!typ_matches(Some("x-application/at+jwt"), "at+jwt"));
    }
}
