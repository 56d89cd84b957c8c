//! DPoP (RFC 9449): proof creation, used by the agent's client shim, and
//! proof verification (§4.3), used by resource servers to check the
//! agent-level proof of possession of the key bound to an intent token
//! (draft-goswami-agentic-jwt-00 §4.4.2 `cnf`, §9.2.2): a token stolen by
//! another agent is useless without the private key whose RFC 7638
//! thumbprint the token names.
//!
//! Replay detection on `jti` (§11.1) needs state shared across requests and
//! is left to the caller, who gets the verified `jti` and `iat`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::key::PublicKey;
use crate::signing::{signing_error, SigningKey};
use crate::{private_jwk_member, Alg, CompactJws, JoseError};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";
/// Longest `jti` accepted (bounds the caller's replay cache entries).
pub const MAX_JTI_LEN: usize = 256;

/// An agent's DPoP key: a [`SigningKey`] (the name is kept for existing callers).
pub type DpopKey = SigningKey;

impl SigningKey {
    /// A DPoP proof JWT: header {typ:"dpop+jwt", alg, jwk: public_jwk},
    /// claims {jti: 128-bit random base64url, htm, htu (normalized, no
    /// query/fragment), iat, ath (base64url SHA-256 of the ASCII access
    /// token) when given, nonce when given}.
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: i64,
    ) -> Result<String, JoseError> {
        if !is_http_token(htm) {
            return Err(JoseError::InvalidArgument(format!(
                "htm {htm:?} is not an HTTP method (RFC 9110 §9.1 token)"
            )));
        }
        let htu = normalize_htu(htu)?;
        let mut jti = [0u8; 16];
        OsRng.try_fill_bytes(&mut jti).map_err(signing_error)?;
        let mut claims = Map::new();
        claims.insert("jti".to_owned(), Value::String(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("htm".to_owned(), Value::String(htm.to_owned()));
        claims.insert("htu".to_owned(), Value::String(htu));
        claims.insert("iat".to_owned(), Value::from(iat));
        if let Some(token) = access_token {
            claims.insert("ath".to_owned(), Value::String(ath(token)));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
        }
        let mut header = Map::new();
        header.insert("typ".to_owned(), Value::String(DPOP_TYP.to_owned()));
        header.insert(
            "alg".to_owned(),
            Value::String(self.alg().as_str().to_owned()),
        );
        header.insert("jwk".to_owned(), Value::Object(self.public_jwk()));
        let payload = serde_json::to_vec(&claims).map_err(signing_error)?;
        self.sign_compact(&header, &payload)
    }
}

/// RFC 9110 §5.6.2 `token` (the syntax of a method).
fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9449 §4.3 step 9 + RFC 3986 §6.2.2/§6.2.3: scheme and host
/// lower-cased, default port removed, empty path → "/", percent-encoding
/// normalized (hex digits upper-cased, unreserved characters decoded), dot
/// segments removed, query and fragment removed. Error on non-http(s) or
/// unparsable URL, on userinfo, and on whitespace, control characters,
/// backslashes or malformed percent-encodings (which URL parsers repair in
/// different ways).
pub fn normalize_htu(url: &str) -> Result<String, JoseError> {
    if let Some(c) = url
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '\\')
    {
        return Err(JoseError::InvalidUrl(format!(
            "{url:?} contains the character {c:?}"
        )));
    }
    let parsed = Url::parse(url).map_err(|e| JoseError::InvalidUrl(format!("{url:?}: {e}")))?;
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(JoseError::InvalidUrl(format!(
            "{url:?}: scheme {scheme:?} is not http or https"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(JoseError::InvalidUrl(format!(
            "{url:?}: user information is not allowed in an HTTP target URI"
        )));
    }
    let Some(host) = parsed.host_str() else {
        return Err(JoseError::InvalidUrl(format!("{url:?}: no host")));
    };
    let mut out = format!("{scheme}://{host}");
    if let Some(port) = parsed.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = parsed.path();
    if path.is_empty() {
        out.push('/');
    } else {
        normalize_percent_encoding(path, &mut out)
            .map_err(|reason| JoseError::InvalidUrl(format!("{url:?}: {reason}")))?;
    }
    Ok(out)
}

/// RFC 3986 §6.2.2.1 and §6.2.2.2: upper-case the hex digits of every
/// percent-encoding and decode those of unreserved characters.
fn normalize_percent_encoding(path: &str, out: &mut String) -> Result<(), String> {
    let mut chars = path.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let hex = path
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("malformed percent-encoding at byte {i}"))?;
        let byte = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        chars.next();
        chars.next();
    }
    Ok(())
}

/// `ath` (RFC 9449 §4.2): base64url(SHA-256(ASCII token)), no padding.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// What a DPoP proof must match (RFC 9449 §4.3).
#[derive(Debug, Clone, Copy)]
pub struct DpopCheck<'a> {
    /// The request method (`htm` must equal it, case-sensitively).
    pub method: &'a str,
    /// The request URL (`htu` must equal it after [`normalize_htu`] of both).
    pub url: &'a str,
    /// The access token presented with the proof (`ath` must be its hash);
    /// `None` at a token endpoint.
    pub access_token: Option<&'a str>,
    /// The thumbprint the access token is bound to (`cnf.jkt`, or that of `cnf.jwk`).
    pub expected_jkt: Option<&'a str>,
    /// Current Unix time, seconds.
    pub now: i64,
    /// Oldest acceptable proof age, seconds.
    pub max_age: i64,
    /// Clock skew tolerated both ways, seconds.
    pub leeway: i64,
    /// The server nonce the proof must carry (`DPoP-Nonce`, §8), if any.
    pub nonce: Option<&'a str>,
    /// Allowed proof algorithms.
    pub allowed: &'a [Alg],
    /// Largest proof accepted, bytes.
    pub max_len: usize,
}

/// A proof that passed [`verify_dpop_proof`]; `jti` still has to be checked
/// against the caller's replay cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof key.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
    /// The proof's `htm`.
    pub htm: String,
    /// The normalized `htu`.
    pub htu: String,
}

/// Why a DPoP proof was refused: one variant per RFC 9449 §4.3 check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Step 2: not a single well-formed compact JWS.
    #[error("the DPoP proof is not a well-formed JWT: {0}")]
    Malformed(JoseError),
    /// Step 4: `typ` is not `dpop+jwt`.
    #[error("the DPoP proof typ is {}, not \"dpop+jwt\"", show(.0))]
    WrongType(Option<String>),
    /// Step 5: `alg` is `none`, symmetric or unknown.
    #[error("the DPoP proof alg {0:?} is not an asymmetric algorithm this server supports")]
    UnsupportedAlgorithm(String),
    /// Step 5: `alg` is not in the server's allow-list.
    #[error("the DPoP proof alg {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// Step 6: no `jwk` header.
    #[error("the DPoP proof has no \"jwk\" header")]
    MissingJwk,
    /// Step 6: the `jwk` header carries private key material.
    #[error("the DPoP proof \"jwk\" carries private key material (member {0:?})")]
    PrivateKeyInJwk(String),
    /// Step 6: the `jwk` header is not a usable public key.
    #[error("the DPoP proof \"jwk\" is not a usable public key: {0}")]
    UnusableJwk(JoseError),
    /// Step 6: the `jwk` cannot be used with the header `alg`.
    #[error("the DPoP proof alg {alg:?} does not fit its jwk (kty {kty:?})")]
    KeyAlgMismatch {
        /// The header `alg`.
        alg: String,
        /// The key's `kty`.
        kty: String,
    },
    /// Step 7: the signature does not verify with the `jwk`.
    #[error("the DPoP proof signature does not verify with its jwk")]
    BadSignature,
    /// Step 3: the claims are not a JSON object without duplicate members.
    #[error("the DPoP proof claims are invalid: {0}")]
    InvalidClaims(String),
    /// Step 3: a required claim is missing.
    #[error("the DPoP proof has no {0:?} claim")]
    MissingClaim(&'static str),
    /// Step 3: `jti` is not a non-empty string of at most 256 characters.
    #[error("the DPoP proof jti is invalid: {0}")]
    InvalidJti(String),
    /// Step 8: `htm` is not the request method.
    #[error("the DPoP proof htm {found:?} does not match the request method {expected:?}")]
    HtmMismatch {
        /// The request method.
        expected: String,
        /// The `htm` claim.
        found: String,
    },
    /// Step 9: `htu` is not an http(s) URL.
    #[error("the DPoP proof htu is invalid: {0}")]
    InvalidHtu(JoseError),
    /// Step 9: `htu` is not the request URL.
    #[error("the DPoP proof htu {found:?} does not match the request URL {expected:?}")]
    HtuMismatch {
        /// The normalized request URL.
        expected: String,
        /// The normalized `htu`.
        found: String,
    },
    /// The server's own request URL cannot be normalized.
    #[error("the request URL cannot be compared: {0}")]
    InvalidRequestUrl(JoseError),
    /// Step 11: `iat` is not an integer NumericDate.
    #[error("the DPoP proof iat is invalid: {0}")]
    InvalidIat(String),
    /// Step 11: the proof is older than the accepted window.
    #[error("the DPoP proof is too old (iat {iat}, now {now})")]
    IatTooOld {
        /// The `iat` claim.
        iat: i64,
        /// The server time.
        now: i64,
    },
    /// Step 11: the proof is issued in the future beyond the leeway.
    #[error("the DPoP proof is issued in the future (iat {iat}, now {now})")]
    IatInFuture {
        /// The `iat` claim.
        iat: i64,
        /// The server time.
        now: i64,
    },
    /// Step 10: the server requires a nonce and the proof has none.
    #[error("a DPoP nonce is required")]
    NonceRequired,
    /// Step 10: the proof's nonce is not the server's current nonce.
    #[error("the DPoP proof nonce is not the current server nonce")]
    NonceMismatch,
    /// Step 12: `ath` is not the hash of the presented access token.
    #[error("the DPoP proof ath does not match the access token")]
    AthMismatch,
    /// Step 12: the proof key is not the key the access token is bound to.
    #[error(
        "the DPoP proof key (thumbprint {found}) is not the key the token is bound to ({expected})"
    )]
    JktMismatch {
        /// The token's `cnf` thumbprint.
        expected: String,
        /// The proof key's thumbprint.
        found: String,
    },
}

fn show(typ: &Option<String>) -> String {
    typ.as_ref()
        .map_or_else(|| "absent".to_owned(), |t| format!("{t:?}"))
}

impl DpopError {
    /// True for the errors answered with `use_dpop_nonce` (RFC 9449 §8, §9).
    pub fn is_nonce_error(&self) -> bool {
        matches!(self, DpopError::NonceRequired | DpopError::NonceMismatch)
    }
}

/// Most DPoP proof keys cached (I-151); the cache is emptied when full.
pub const MAX_CACHED_PROOF_KEYS: usize = 1024;

/// Longest encoded proof header whose key is cached (an RSA-4096 `jwk`
/// header is about 1 KB): bounds the cache at about 2 MB.
const MAX_CACHED_PROOF_HEADER: usize = 2048;

/// The public key of a proof's `jwk` header member, built once per distinct
/// encoded protected header (I-151). An agent signs every proof with the
/// same key and the same header (`typ`, `alg`, `jwk`), so the header segment
/// identifies the key exactly; building an OpenSSL key from a JWK costs
/// 4–10 µs, as much as a tenth of the proof's signature check. Only keys
/// [`PublicKey::from_jwk`] accepted are kept; the same bytes always give the
/// same result, so a hit decides exactly as a miss would.
fn proof_key(
    header_segment: &str,
    jwk: &Map<String, Value>,
) -> Result<std::sync::Arc<PublicKey>, JoseError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<PublicKey>>>> = OnceLock::new();
    let cacheable = !header_segment.is_empty() && header_segment.len() <= MAX_CACHED_PROOF_HEADER;
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if cacheable {
        let hit = cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(header_segment)
            .cloned();
        if let Some(key) = hit {
            return Ok(key);
        }
    }
    let key = Arc::new(PublicKey::from_jwk(jwk)?);
    if cacheable {
        let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED_PROOF_KEYS {
            map.clear();
        }
        map.insert(header_segment.to_owned(), key.clone());
    }
    Ok(key)
}

/// RFC 9449 §4.3 steps 1-12 in order (everything except jti replay
/// tracking, which the caller does): single well-formed compact JWS; typ
/// exactly dpop+jwt; alg asymmetric and in `allowed`; header jwk present, a
/// PUBLIC key (private members refused), usable ([`PublicKey::from_jwk`]);
/// signature valid with that jwk; claims parsed strictly; jti (non-empty
/// string, max 256 chars), htm == method, htu normalized == normalized url,
/// iat integer with now - max_age - leeway <= iat <= now + leeway; nonce:
/// when check.nonce is Some, claim must be present and equal; ath: when
/// access_token is Some, claim must equal ath(token); when expected_jkt is
/// Some, the jwk thumbprint must equal it.
pub fn verify_dpop_proof(proof: &str, check: &DpopCheck<'_>) -> Result<VerifiedProof, DpopError> {
    use ajwt_json::BorrowedValue as J;

    let jws = CompactJws::parse(proof, check.max_len).map_err(|e| match e {
        JoseError::UnsupportedAlgorithm(alg) => DpopError::UnsupportedAlgorithm(alg),
        other => DpopError::Malformed(other),
    })?;
    if jws.typ.as_deref() != Some(DPOP_TYP) {
        return Err(DpopError::WrongType(jws.typ.clone()));
    }
    if !check.allowed.contains(&jws.alg) {
        return Err(DpopError::AlgorithmNotAllowed(jws.alg.as_str().to_owned()));
    }
    let jwk = match jws.header.get("jwk") {
        None => return Err(DpopError::MissingJwk),
        Some(Value::Object(jwk)) => jwk,
        Some(_) => {
            return Err(DpopError::UnusableJwk(JoseError::InvalidKey(
                "the jwk header is not a JSON object".to_owned(),
            )))
        }
    };
    if let Some(member) = private_jwk_member(jwk) {
        return Err(DpopError::PrivateKeyInJwk(member.to_owned()));
    }
    let header_segment = proof.split('.').next().unwrap_or("");
    let key = proof_key(header_segment, jwk).map_err(|e| match e {
        JoseError::PrivateKeyMaterial(member) => DpopError::PrivateKeyInJwk(member),
        other => DpopError::UnusableJwk(other),
    })?;
    key.verify(jws.alg, jws.signing_input().as_bytes(), jws.signature())
        .map_err(|e| match e {
            JoseError::KeyAlgMismatch { alg, kty } => DpopError::KeyAlgMismatch { alg, kty },
            _ => DpopError::BadSignature,
        })?;

    let claims = match ajwt_json::parse_strict_borrowed(&jws.payload) {
        Ok(J::Object(members)) => J::Object(members),
        Ok(other) => {
            return Err(DpopError::InvalidClaims(format!(
                "the payload is a JSON {}, not an object",
                other.type_name()
            )))
        }
        Err(e) => return Err(DpopError::InvalidClaims(e.to_string())),
    };
    let string_claim = |name: &'static str| -> Result<&str, DpopError> {
        match claims.get(name) {
            Some(J::String(s)) => Ok(s),
            Some(other) => Err(DpopError::InvalidClaims(format!(
                "{name:?} is a {}, not a string",
                other.type_name()
            ))),
            None => Err(DpopError::MissingClaim(name)),
        }
    };

    let jti = match claims.get("jti") {
        None => return Err(DpopError::MissingClaim("jti")),
        Some(J::String(s)) if s.is_empty() => {
            return Err(DpopError::InvalidJti("empty".to_owned()))
        }
        Some(J::String(s)) if s.chars().count() > MAX_JTI_LEN => {
            return Err(DpopError::InvalidJti(format!(
                "longer than {MAX_JTI_LEN} characters"
            )))
        }
        Some(J::String(s)) => s.to_string(),
        Some(other) => {
            return Err(DpopError::InvalidJti(format!(
                "a {}, not a string",
                other.type_name()
            )))
        }
    };
    let htm = string_claim("htm")?;
    if htm != check.method {
        return Err(DpopError::HtmMismatch {
            expected: check.method.to_owned(),
            found: htm.to_owned(),
        });
    }
    let htu_claim = string_claim("htu")?;
    let htu = normalize_htu(htu_claim).map_err(DpopError::InvalidHtu)?;
    // The same text normalizes to the same URI: the request URL is
    // normalized only when the proof spelled it differently.
    if htu_claim != check.url {
        let expected_htu = normalize_htu(check.url).map_err(DpopError::InvalidRequestUrl)?;
        if htu != expected_htu {
            return Err(DpopError::HtuMismatch {
                expected: expected_htu,
                found: htu,
            });
        }
    }
    let iat = match claims.get("iat") {
        None => return Err(DpopError::MissingClaim("iat")),
        Some(J::Number(n)) if ajwt_json::literal_is_integer(n) => n
            .parse::<i64>()
            .map_err(|_| DpopError::InvalidIat(format!("{n} is out of range")))?,
        Some(J::Number(n)) => {
            return Err(DpopError::InvalidIat(format!(
                "{n} is not an integer number of seconds"
            )))
        }
        Some(other) => {
            return Err(DpopError::InvalidIat(format!(
                "a {}, not a number",
                other.type_name()
            )))
        }
    };
    let oldest = check
        .now
        .saturating_sub(check.max_age)
        .saturating_sub(check.leeway);
    if iat < oldest {
        return Err(DpopError::IatTooOld {
            iat,
            now: check.now,
        });
    }
    if iat > check.now.saturating_add(check.leeway) {
        return Err(DpopError::IatInFuture {
            iat,
            now: check.now,
        });
    }
    if let Some(expected) = check.nonce {
        match claims.get("nonce") {
            None => return Err(DpopError::NonceRequired),
            Some(J::String(n)) if n == expected => {}
            Some(_) => return Err(DpopError::NonceMismatch),
        }
    }
    if let Some(token) = check.access_token {
        if string_claim("ath")? != ath(token) {
            return Err(DpopError::AthMismatch);
        }
    }
    if let Some(expected) = check.expected_jkt {
        if key.thumbprint() != expected {
            return Err(DpopError::JktMismatch {
                expected: expected.to_owned(),
                found: key.thumbprint().to_owned(),
            });
        }
    }
    Ok(VerifiedProof {
        jkt: key.thumbprint().to_owned(),
        jti,
        iat,
        htm: htm.to_owned(),
        htu,
    })
}
