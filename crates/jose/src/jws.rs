//! Compact JWS (RFC 7515 §7.1) parsing and verification, RFC 8725 style:
//! everything this crate does not verify is refused while parsing, before
//! any key is looked at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::key::PublicKey;
use crate::{Alg, JoseError};

/// A compact JWS split and decoded, header parsed strictly (duplicate
/// members refused), not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The header `alg`, one of the supported algorithms.
    pub alg: Alg,
    /// The header `kid`, if any.
    pub kid: Option<String>,
    /// The header `typ`, if any (compare with [`crate::typ_matches`]).
    pub typ: Option<String>,
    /// The decoded payload (not parsed: it is not trusted before verification).
    pub payload: Vec<u8>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Decodes one part: unpadded base64url with canonical trailing bits.
fn decode_part(part: &str, name: &str) -> Result<Vec<u8>, JoseError> {
    if part.contains('=') {
        return Err(JoseError::Malformed(format!(
            "the {name} is padded base64; base64url without padding is required (RFC 7515 §2)"
        )));
    }
    URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        JoseError::Malformed(format!(
            "the {name} is not canonical base64url (RFC 7515 §2)"
        ))
    })
}

fn header_string(header: &Map<String, Value>, name: &str) -> Result<Option<String>, JoseError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::Malformed(format!(
            "header member {name:?} must be a string"
        ))),
    }
}

impl CompactJws {
    /// Rejects by construction: len > max_len (TooLarge, checked first,
    /// before any decoding); JWS JSON serialization (input starting with
    /// '{'); JWE/nested (5 parts, or "enc" in header, or cty "JWT"); not
    /// exactly 3 parts; non-base64url or padded parts; header not a JSON
    /// object (or with a duplicate member); "crit" present; alg
    /// missing/unknown/"none"/HS*; b64=false; non-string `alg`, `kid`,
    /// `typ` or `cty`.
    pub fn parse(token: &str, max_len: usize) -> Result<CompactJws, JoseError> {
        if token.len() > max_len {
            return Err(JoseError::TooLarge {
                len: token.len(),
                max: max_len,
            });
        }
        if token.trim_start().starts_with('{') {
            return Err(JoseError::JsonSerializationNotSupported);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
            if parts.len() == 5 {
                return Err(JoseError::EncryptedNotSupported);
            }
            return Err(JoseError::Malformed(format!(
                "a compact JWS has 3 dot-separated parts, found {}",
                parts.len()
            )));
        };
        if header_b64.is_empty() {
            return Err(JoseError::Malformed("the header is empty".to_owned()));
        }
        let header_bytes = decode_part(header_b64, "header")?;
        let payload = decode_part(payload_b64, "payload")?;
        let signature = decode_part(signature_b64, "signature")?;

        let header = match ajwt_json::parse_strict_serde(&header_bytes) {
            Ok(v) => match v {
                Value::Object(map) => map,
                _ => {
                    return Err(JoseError::Malformed(
                        "the header is not a JSON object".to_owned(),
                    ))
                }
            },
            Err(ajwt_json::JsonError::DuplicateKey { key, .. }) => {
                return Err(JoseError::DuplicateHeaderMember(key))
            }
            Err(e) => return Err(JoseError::Malformed(format!("the header is not JSON: {e}"))),
        };
        if header.contains_key("enc") {
            return Err(JoseError::EncryptedNotSupported);
        }
        if let Some(cty) = header_string(&header, "cty")? {
            if cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt") {
                return Err(JoseError::NestedNotSupported);
            }
        }
        if let Some(crit) = header.get("crit") {
            return Err(JoseError::CriticalHeader(crit.to_string()));
        }
        match header.get("b64") {
            None | Some(Value::Bool(true)) => {}
            Some(other) => return Err(JoseError::UnencodedPayload(other.to_string())),
        }
        let alg = match header.get("alg") {
            None => return Err(JoseError::MissingAlgorithm),
            Some(Value::String(a)) => a.parse::<Alg>()?,
            Some(other) => return Err(JoseError::UnsupportedAlgorithm(other.to_string())),
        };
        let kid = header_string(&header, "kid")?;
        let typ = header_string(&header, "typ")?;
        let signing_input = format!("{header_b64}.{payload_b64}");
        Ok(CompactJws {
            header,
            alg,
            kid,
            typ,
            payload,
            signing_input,
            signature,
        })
    }

    /// Checks `self.alg` is in `allowed` ([`JoseError::AlgorithmNotAllowed`]),
    /// the key supports it ([`JoseError::KeyAlgMismatch`]), that a header
    /// `kid` is the key's `kid` when both are present
    /// ([`JoseError::KidMismatch`]), then the signature
    /// ([`JoseError::BadSignature`]).
    pub fn verify_with(&self, key: &PublicKey, allowed: &[Alg]) -> Result<(), JoseError> {
        if !allowed.contains(&self.alg) {
            return Err(JoseError::AlgorithmNotAllowed(self.alg.as_str().to_owned()));
        }
        if !key.supports(self.alg) {
            return Err(JoseError::KeyAlgMismatch {
                alg: self.alg.as_str().to_owned(),
                kty: key.kty().to_owned(),
            });
        }
        if let (Some(found), Some(expected)) = (self.kid.as_deref(), key.kid()) {
            if found != expected {
                return Err(JoseError::KidMismatch {
                    expected: expected.to_owned(),
                    found: found.to_owned(),
                });
            }
        }
        key.verify(self.alg, self.signing_input.as_bytes(), &self.signature)
    }

    /// `BASE64URL(header) || '.' || BASE64URL(payload)` as received.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}
