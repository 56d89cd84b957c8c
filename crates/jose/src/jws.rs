//! Compact JWS (RFC 7515 §7.1) parsing and verification, RFC 8725 style:
//! everything this crate does not verify is refused while parsing, before
//! any key is looked at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::key::PublicKey;
use crate::{Alg, JoseError};

/// A compact JWS split and decoded, header parsed strictly (duplicate
/// members refused), not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactJws {
    /// The protected header (shared with the parsed-header cache).
    pub header: Arc<Map<String, Value>>,
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

/// A protected header that parsed and passed every check of
/// [`CompactJws::parse`].
struct ParsedHeader {
    header: Arc<Map<String, Value>>,
    alg: Alg,
    kid: Option<String>,
    typ: Option<String>,
}

/// Most parsed headers kept ([`cached_header`]); the cache is emptied when full.
const MAX_CACHED_HEADERS: usize = 1024;

/// Longest encoded header kept (a DPoP proof header with an RSA-4096 `jwk`
/// is about 1 KB): bounds the cache at about 4 MB.
const MAX_CACHED_HEADER_LEN: usize = 2048;

fn header_cache() -> &'static Mutex<HashMap<String, Arc<ParsedHeader>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<ParsedHeader>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The parsed form of an encoded header seen before (issue 15, I-184). The
/// tokens of one issuer key, and the proofs of one agent, repeat the same
/// header bytes; parsing is a pure function of those bytes, so a hit decides
/// exactly as a parse would. Only headers that passed every check are kept.
fn cached_header(header_b64: &str) -> Option<Arc<ParsedHeader>> {
    if header_b64.len() > MAX_CACHED_HEADER_LEN {
        return None;
    }
    header_cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(header_b64)
        .cloned()
}

fn remember_header(header_b64: &str, parsed: &Arc<ParsedHeader>) {
    if header_b64.len() > MAX_CACHED_HEADER_LEN {
        return;
    }
    let mut cache = header_cache()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= MAX_CACHED_HEADERS {
        cache.clear();
    }
    cache.insert(header_b64.to_owned(), parsed.clone());
}

/// The checks of [`CompactJws::parse`] that read the decoded header.
fn parse_header(header_bytes: &[u8]) -> Result<ParsedHeader, JoseError> {
    let header = match ajwt_json::parse_strict_serde(header_bytes) {
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
    Ok(ParsedHeader {
        header: Arc::new(header),
        alg,
        kid,
        typ,
    })
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
        let cached = cached_header(header_b64);
        // Decoded in the order an uncached parse would (header, payload,
        // signature), so that a cache hit reports the same first error.
        let header_bytes = match cached {
            Some(_) => Vec::new(),
            None => decode_part(header_b64, "header")?,
        };
        let payload = decode_part(payload_b64, "payload")?;
        let signature = decode_part(signature_b64, "signature")?;
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let parsed = Arc::new(parse_header(&header_bytes)?);
                remember_header(header_b64, &parsed);
                parsed
            }
        };
        let ParsedHeader {
            header,
            alg,
            kid,
            typ,
        } = &*parsed;
        let (header, alg, kid, typ) = (header.clone(), *alg, kid.clone(), typ.clone());
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// The two tests share the process-wide cache: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// I-184: a header served from the cache decides exactly as a fresh
    /// parse: same fields, and the same first error for a bad payload or
    /// signature part behind a good (cached) header.
    #[test]
    fn i184_cached_header_decides_as_a_fresh_parse() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let header = b64(r#"{"alg":"ES256","typ":"i184+jwt","kid":"k-i184"}"#);
        let good = format!("{header}.{}.{}", b64("{}"), b64("sig"));
        let first = CompactJws::parse(&good, 4096).unwrap();
        assert!(cached_header(&header).is_some(), "a good header is kept");
        let second = CompactJws::parse(&good, 4096).unwrap();
        assert_eq!(first, second);
        assert_eq!(second.alg, Alg::Es256);
        assert_eq!(second.kid.as_deref(), Some("k-i184"));
        assert_eq!(second.typ.as_deref(), Some("i184+jwt"));
        for bad in [
            format!("{header}.{}=.{}", b64("{}"), b64("sig")),
            format!("{header}.{}.a", b64("{}")),
            format!("{header}.{}.{}=", b64("{}"), b64("sig")),
        ] {
            let hit = CompactJws::parse(&bad, 4096).unwrap_err().to_string();
            header_cache().lock().unwrap().remove(&header);
            let miss = CompactJws::parse(&bad, 4096).unwrap_err().to_string();
            assert_eq!(hit, miss, "{bad}");
            CompactJws::parse(&good, 4096).unwrap();
        }
    }

    /// I-184: a header that fails a check is never kept (each occurrence is
    /// parsed and refused again), and the cache stays bounded.
    #[test]
    fn i184_refused_headers_are_not_kept_and_the_cache_is_bounded() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        for refused in [
            r#"{"alg":"none","typ":"i184"}"#,
            r#"{"alg":"HS256","typ":"i184"}"#,
            r#"{"alg":"ES256","alg":"ES256","typ":"i184"}"#,
            r#"{"alg":"ES256","crit":["b64"],"typ":"i184"}"#,
        ] {
            let header = b64(refused);
            let token = format!("{header}.{}.{}", b64("{}"), b64("sig"));
            for _ in 0..2 {
                assert!(CompactJws::parse(&token, 4096).is_err(), "{refused}");
            }
            assert!(cached_header(&header).is_none(), "{refused}");
        }
        let long_kid = "k".repeat(MAX_CACHED_HEADER_LEN);
        let header = b64(&format!(r#"{{"alg":"ES256","kid":"{long_kid}"}}"#));
        CompactJws::parse(&format!("{header}.e30.c2ln"), 16 * 1024).unwrap();
        assert!(cached_header(&header).is_none(), "longer than the bound");
        for i in 0..MAX_CACHED_HEADERS + 10 {
            let header = b64(&format!(r#"{{"alg":"ES256","kid":"bound-{i}"}}"#));
            CompactJws::parse(&format!("{header}.e30.c2ln"), 4096).unwrap();
            assert!(header_cache().lock().unwrap().len() <= MAX_CACHED_HEADERS);
        }
        // Leave room, so that other tests' parses do not empty it meanwhile.
        header_cache().lock().unwrap().clear();
    }
}
