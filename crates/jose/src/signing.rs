//! Private signature keys ([`SigningKey`]): generated, or loaded from an
//! unencrypted PKCS#8 PEM, for every algorithm of the one algorithm table
//! ([`Alg::ALL`], [`Alg::for_key_type`]). The issuer signs its tokens with
//! them, agents sign their DPoP proofs with them ([`crate::DpopKey`] is the
//! same type). Signatures are made by josekit (OpenSSL underneath).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{EdDSA, JwsSigner, ES256, PS256, RS256};
use serde_json::{Map, Value};

use crate::key::PublicKey;
use crate::{Alg, JoseError};

/// Modulus size of generated RSA keys.
const RSA_BITS: u32 = 2048;

/// A private signature key of one of the algorithms of [`Alg::ALL`]
/// (draft §9.4.1 key types: P-256, Ed25519, RSA of at least 2048 bits with
/// e = 65537): the issuer's token-signing keys and the agents' DPoP keys
/// alike. It signs compact JWS (RFC 7515 §7.1) under a given protected
/// header, makes DPoP proofs ([`SigningKey::proof`], RFC 9449 §4.2), and
/// gives its public JWK and RFC 7638 thumbprint. `Debug` shows the
/// algorithm and thumbprint only, never the private key.
#[derive(Clone)]
pub struct SigningKey {
    alg: Alg,
    /// PKCS#8 PEM of the private key.
    pem: String,
    signer: Box<dyn JwsSigner>,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("thumbprint", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

pub(crate) fn signing_error(e: impl fmt::Display) -> JoseError {
    JoseError::Signing(e.to_string())
}

/// The public members of a josekit JWK (`kty` and `crv`/`x`/`y` or `n`/`e`).
fn public_core(jwk: &Jwk) -> Map<String, Value> {
    let map: &Map<String, Value> = jwk.as_ref();
    ["kty", "crv", "x", "y", "n", "e"]
        .iter()
        .filter_map(|name| map.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect()
}

impl SigningKey {
    /// A fresh key for `alg` (P-256, Ed25519, or 2048-bit RSA with e = 65537).
    pub fn generate(alg: Alg) -> Result<SigningKey, JoseError> {
        let pem = match alg {
            Alg::Es256 => ES256.generate_key_pair().map(|k| k.to_pem_private_key()),
            Alg::EdDsa | Alg::Ed25519 => EdDSA
                .generate_key_pair(EdCurve::Ed25519)
                .map(|k| k.to_pem_private_key()),
            Alg::Rs256 | Alg::Ps256 => RS256
                .generate_key_pair(RSA_BITS)
                .map(|k| k.to_pem_private_key()),
        }
        .map_err(signing_error)?;
        SigningKey::from_pkcs8_pem(&pem, alg)
    }

    /// Loads an unencrypted PKCS#8 PEM private key (`-----BEGIN PRIVATE
    /// KEY-----`) for `alg`: P-256 for ES256, Ed25519 for EdDSA, an
    /// rsaEncryption key for RS256 and PS256. Its public half must pass
    /// [`PublicKey::from_jwk`] (so RSA keys need >= 2048 bits and e = 65537).
    pub fn from_pkcs8_pem(pem: &[u8], alg: Alg) -> Result<SigningKey, JoseError> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| JoseError::InvalidKey("the PEM is not UTF-8".to_owned()))?;
        if !text.trim_start().starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(JoseError::InvalidKey(
                "expected an unencrypted PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)"
                    .to_owned(),
            ));
        }
        // OpenSSL reads the document first and josekit only ever sees
        // OpenSSL's re-encoding: josekit's DER reader trusts length fields
        // (the `keys` fuzz target made it request a 4 EiB allocation, an
        // abort, from a 153-byte PEM).
        let canonical = openssl::pkey::PKey::private_key_from_pem(pem)
            .and_then(|key| key.private_key_to_pem_pkcs8())
            .map_err(|e| JoseError::InvalidKey(format!("not a PKCS#8 private key: {e}")))?;
        let pem = canonical.as_slice();
        let invalid = |e: josekit::JoseError| {
            JoseError::InvalidKey(format!("not a usable {alg} private key: {e}"))
        };
        let (public, normalized, signer): (Jwk, Vec<u8>, Box<dyn JwsSigner>) = match alg {
            Alg::Es256 => {
                let pair = ES256.key_pair_from_pem(pem).map_err(invalid)?;
                let signer = ES256.signer_from_pem(pem).map_err(invalid)?;
                (
                    pair.to_jwk_public_key(),
                    pair.to_pem_private_key(),
                    Box::new(signer),
                )
            }
            Alg::EdDsa | Alg::Ed25519 => {
                let pair = EdDSA.key_pair_from_pem(pem).map_err(invalid)?;
                if pair.curve() != EdCurve::Ed25519 {
                    return Err(JoseError::UnsupportedKey(
                        "EdDSA keys must be Ed25519".to_owned(),
                    ));
                }
                let signer = EdDSA.signer_from_pem(pem).map_err(invalid)?;
                (
                    pair.to_jwk_public_key(),
                    pair.to_pem_private_key(),
                    Box::new(signer),
                )
            }
            Alg::Rs256 => {
                let pair = RS256.key_pair_from_pem(pem).map_err(invalid)?;
                let signer = RS256.signer_from_pem(pem).map_err(invalid)?;
                (
                    pair.to_jwk_public_key(),
                    pair.to_pem_private_key(),
                    Box::new(signer),
                )
            }
            Alg::Ps256 => {
                let pair = RS256.key_pair_from_pem(pem).map_err(invalid)?;
                // josekit reads only RSA-PSS keys from PEM for PS256; its DER
                // reader also takes an rsaEncryption PKCS#8 key.
                let signer = PS256
                    .signer_from_der(pair.to_der_private_key())
                    .map_err(invalid)?;
                (
                    pair.to_jwk_public_key(),
                    pair.to_pem_private_key(),
                    Box::new(signer),
                )
            }
        };
        let public = PublicKey::from_jwk(&public_core(&public))?;
        if !public.supports(alg) {
            return Err(JoseError::KeyAlgMismatch {
                alg: alg.as_str().to_owned(),
                kty: public.kty().to_owned(),
            });
        }
        let pem = String::from_utf8(normalized)
            .map_err(|_| JoseError::Signing("the PEM is not UTF-8".to_owned()))?;
        let key = SigningKey {
            alg,
            pem,
            signer,
            public,
        };
        key.check_pairwise()?;
        Ok(key)
    }

    /// Pairwise consistency: a signature by the private key verifies with
    /// the public key read from the same PKCS#8 document. The `keys` fuzz
    /// target found RSA keys whose private members no longer match (a
    /// corrupted CRT parameter): josekit and OpenSSL load them and sign, and
    /// nobody can verify what they sign. Refused at load instead.
    fn check_pairwise(&self) -> Result<(), JoseError> {
        let header = format!(r#"{{"alg":"{}"}}"#, self.alg.as_str());
        let token = self.sign_raw(header.as_bytes(), b"pairwise consistency")?;
        let consistent = crate::CompactJws::parse(&token, token.len())
            .and_then(|jws| jws.verify_with(&self.public, &[self.alg]))
            .is_ok();
        if consistent {
            Ok(())
        } else {
            Err(JoseError::InvalidKey(format!(
                "not a usable {} private key: its signatures do not verify with its public key",
                self.alg
            )))
        }
    }

    /// The private key as unencrypted PKCS#8 PEM (keep it secret).
    pub fn to_pkcs8_pem(&self) -> Result<String, JoseError> {
        Ok(self.pem.clone())
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public JWK: public members only (for `cnf.jwk` and the proof header).
    pub fn public_jwk(&self) -> Map<String, Value> {
        self.public.jwk().clone()
    }

    /// The public key, as a verifier sees it.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The RFC 7638 thumbprint of the public key (`cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint().to_owned()
    }

    /// Signs arbitrary compact JWS with header {typ, alg} — for tests/clients
    /// that need it.
    pub fn sign_jws(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, JoseError> {
        let mut header = Map::new();
        header.insert("typ".to_owned(), Value::String(typ.to_owned()));
        header.insert(
            "alg".to_owned(),
            Value::String(self.alg.as_str().to_owned()),
        );
        let payload = serde_json::to_vec(claims).map_err(signing_error)?;
        self.sign_compact(&header, &payload)
    }

    /// Signs `payload` under exactly this protected `header` (an `alg` is
    /// added when absent; one that is present is kept, even if it does not
    /// describe this key — tests use that to build hostile tokens).
    pub fn sign_compact(
        &self,
        header: &Map<String, Value>,
        payload: &[u8],
    ) -> Result<String, JoseError> {
        let mut header = header.clone();
        header
            .entry("alg")
            .or_insert_with(|| Value::String(self.alg.as_str().to_owned()));
        let header = serde_json::to_vec(&header).map_err(signing_error)?;
        self.sign_raw(&header, payload)
    }

    /// Compact JWS whose protected header is exactly the bytes `header`
    /// (not checked: tests use it to build duplicate-member or non-object
    /// headers) over `payload`, signed with this key's algorithm.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, JoseError> {
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let signature = self.signer.sign(out.as_bytes()).map_err(signing_error)?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }
}
