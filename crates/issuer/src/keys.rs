//! Signing keys, the JWK Set, compact JWS signing and verification, and agent
//! proof-of-possession keys.
//!
//! The issuer signs its tokens with a [`KeyRing`] of its own keys (ES256, EdDSA
//! or RS256), publishes their public halves as an RFC 7517 JWK Set, and
//! verifies its own compact JWS (RFC 7515 §7.1) following RFC 8725: the `alg`
//! must be one of the ring's algorithms and the algorithm of the key named by
//! `kid` (§3.1, no `none`, no HMAC, no alg/key confusion), and the `typ` is
//! checked explicitly (§3.11). Header and payload are parsed strictly:
//! duplicate member names are refused.
//!
//! Agent keys for the `cnf.jwk` claim (§4.4.2, RFC 7800; registration §6.2.3
//! step 2; proof of possession §9.2.2) come as a JWK or a PEM
//! SubjectPublicKeyInfo and are held to §9.4.1: Ed25519, P-256, or RSA of at
//! least 2048 bits with public exponent 65537. Keys are identified by their
//! RFC 7638 JWK thumbprint, which is also the `kid` of the issuer's keys.
//! A PEM key's DER is parsed by OpenSSL (the `openssl` crate); Ed25519 points
//! are decoded and checked for small order by `curve25519-dalek`.
//!
//! Key files (format 1): every key is one file `<data_dir>/signing-keys/<kid>.json`
//! (directory mode 0700, file mode 0600, written to a temporary file and
//! renamed) holding exactly
//! `{"kid": "<RFC 7638 thumbprint>", "alg": "ES256" | "EdDSA" | "RS256",
//! "created_at": <Unix seconds>, "private_key_pem": "<PKCS#8 PEM>"}`.
//! The key with the greatest `created_at` (ties: greatest `kid`) signs; the
//! others still verify, so a key is rotated by adding a file. Files whose
//! name starts with `.` or does not end in `.json` are ignored. At run time
//! [`KeyRing::rotated`] does exactly that (a new file, `created_at` past the
//! current key's) and returns the new ring, which the issuer swaps in
//! (`POST /intent/admin/rotate-keys`); no key file is ever deleted.
//!
//! josekit 0.10.3 pitfalls handled here (see the corpora provenance notes): it
//! has no thumbprint API ([`jwk_thumbprint`] implements RFC 7638), it does not
//! check `typ` ([`KeyRing::verify`] does), and it accepts small RSA exponents
//! (agent keys are checked by hand before josekit sees them); JWKs are never
//! parsed as a set, one bad member cannot hide the others.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ajwt_protocol::registration::PublicKeyInput;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use curve25519_dalek::edwards::CompressedEdwardsY;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::{Jwk, KeyPair as _};
use josekit::jws::{EdDSA, JwsSigner, JwsVerifier, ES256, RS256};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use serde_json::{Map, Value};

/// Name of the key directory inside the data directory.
pub const KEY_DIR: &str = "signing-keys";

/// Modulus size of generated RS256 keys.
const RSA_GENERATED_BITS: u32 = 2048;
/// Smallest RSA modulus accepted (§9.4.1).
const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted (bounds verification cost).
const RSA_MAX_BITS: usize = 16384;
/// The only RSA public exponent accepted: 65537.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// JWK members that carry private or symmetric key material.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Signing algorithms offered for the issuer's own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4).
    Es256,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), 2048-bit keys.
    Rs256,
}

impl SigningAlgorithm {
    /// Every algorithm, in the order ES256, EdDSA, RS256.
    pub const ALL: [SigningAlgorithm; 3] = [Self::Es256, Self::EdDsa, Self::Rs256];

    /// The JWS `alg` name: `"ES256"`, `"EdDSA"` or `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeyError;

    /// Exact, case-sensitive JWS names (RFC 7518 §3.1 names are case-sensitive).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            "RS256" => Ok(Self::Rs256),
            other => Err(KeyError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

/// Failures around keys: files, generation, signing, agent keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file or directory could not be read or written.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generation(String),
    /// A stored key file cannot be used.
    #[error("bad key file {}: {reason}", .path.display())]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A public key (JWK or PEM) that is not accepted (§9.4.1), or a JWK
    /// without the members its thumbprint needs.
    #[error("unsupported public key: {reason}")]
    Unsupported {
        /// Why it is refused.
        reason: String,
    },
    /// Not one of `ES256`, `EdDSA`, `RS256`.
    #[error("unknown signing algorithm {0:?} (expected \"ES256\", \"EdDSA\" or \"RS256\")")]
    UnknownAlgorithm(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn unsupported(reason: impl Into<String>) -> KeyError {
    KeyError::Unsupported {
        reason: reason.into(),
    }
}

/// Why a compact JWS was refused by [`KeyRing::verify`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not three base64url parts with a strictly parsed JSON object header
    /// carrying string `alg` and `kid` and no `crit` (RFC 7515 §7.1, §4.1.11).
    #[error("malformed token: not a compact JWS with a valid header")]
    Malformed,
    /// `alg` is not an algorithm of this issuer, or not the algorithm of the
    /// key named by `kid` (RFC 8725 §3.1).
    #[error("algorithm {0:?} is not accepted for this token")]
    UnsupportedAlgorithm(String),
    /// No key of the ring has this `kid`.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// The `typ` header is absent or not the expected one (RFC 8725 §3.11).
    #[error("wrong token type: expected {expected:?}, found {}", show_typ(.found))]
    WrongType {
        /// The type expected.
        expected: String,
        /// The `typ` found (`None`: absent).
        found: Option<String>,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The payload is not a JSON object without duplicate claims.
    #[error("invalid payload: {0}")]
    BadPayload(String),
}

fn show_typ(found: &Option<String>) -> String {
    match found {
        Some(t) => format!("{t:?}"),
        None => "no typ".to_owned(),
    }
}

/// One key of the ring.
#[derive(Clone)]
struct RingKey {
    kid: String,
    alg: SigningAlgorithm,
    created_at: u64,
    /// Public members (kty, crv, x, y / n, e) and `kid`.
    public_jwk: Map<String, Value>,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
}

impl RingKey {
    /// Builds a key from a PKCS#8 PEM private key of `alg`; the public half
    /// must itself pass the §9.4.1 checks.
    fn from_pem(alg: SigningAlgorithm, pem: &[u8], created_at: u64) -> Result<RingKey, String> {
        let jose = |e: josekit::JoseError| e.to_string();
        let (public, signer): (Jwk, Box<dyn JwsSigner>) = match alg {
            SigningAlgorithm::Es256 => {
                let pair = ES256.key_pair_from_pem(pem).map_err(jose)?;
                let signer = ES256.signer_from_pem(pem).map_err(jose)?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
            SigningAlgorithm::EdDsa => {
                let pair = EdDSA.key_pair_from_pem(pem).map_err(jose)?;
                if pair.curve() != EdCurve::Ed25519 {
                    return Err("EdDSA keys must be Ed25519".to_owned());
                }
                let signer = EdDSA.signer_from_pem(pem).map_err(jose)?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
            SigningAlgorithm::Rs256 => {
                let pair = RS256.key_pair_from_pem(pem).map_err(jose)?;
                let signer = RS256.signer_from_pem(pem).map_err(jose)?;
                (pair.to_jwk_public_key(), Box::new(signer))
            }
        };
        let core = public_members(public.as_ref()).map_err(|e| e.to_string())?;
        let expected_kty = match alg {
            SigningAlgorithm::Es256 => "EC",
            SigningAlgorithm::EdDsa => "OKP",
            SigningAlgorithm::Rs256 => "RSA",
        };
        if core.get("kty").and_then(Value::as_str) != Some(expected_kty) {
            return Err(format!("the key is not a {expected_kty} key"));
        }
        check_public_core(&core).map_err(|e| e.to_string())?;
        let kid = jwk_thumbprint(&core).map_err(|e| e.to_string())?;
        let jwk = Jwk::from_map(core.clone()).map_err(jose)?;
        let verifier: Box<dyn JwsVerifier> = match alg {
            SigningAlgorithm::Es256 => Box::new(ES256.verifier_from_jwk(&jwk).map_err(jose)?),
            SigningAlgorithm::EdDsa => Box::new(EdDSA.verifier_from_jwk(&jwk).map_err(jose)?),
            SigningAlgorithm::Rs256 => Box::new(RS256.verifier_from_jwk(&jwk).map_err(jose)?),
        };
        let mut public_jwk = core;
        public_jwk.insert("kid".to_owned(), Value::String(kid.clone()));
        Ok(RingKey {
            kid,
            alg,
            created_at,
            public_jwk,
            signer,
            verifier,
        })
    }

    /// Compact serialization of `header`.`payload` signed by this key.
    fn sign_parts(&self, header: &[u8], payload: &[u8]) -> Result<String, KeyError> {
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let signature = self
            .signer
            .sign(out.as_bytes())
            .map_err(|e| KeyError::Signing(e.to_string()))?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }
}

/// Generates a PKCS#8 PEM private key of `alg`.
fn generate_pem(alg: SigningAlgorithm) -> Result<String, KeyError> {
    let pem = match alg {
        SigningAlgorithm::Es256 => ES256.generate_key_pair().map(|k| k.to_pem_private_key()),
        SigningAlgorithm::EdDsa => EdDSA
            .generate_key_pair(EdCurve::Ed25519)
            .map(|k| k.to_pem_private_key()),
        SigningAlgorithm::Rs256 => RS256
            .generate_key_pair(RSA_GENERATED_BITS)
            .map(|k| k.to_pem_private_key()),
    }
    .map_err(|e| KeyError::Generation(e.to_string()))?;
    String::from_utf8(pem).map_err(|_| KeyError::Generation("PEM is not UTF-8".to_owned()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The issuer's signing keys: the newest signs, all verify.
///
/// A ring is an immutable snapshot; [`KeyRing::rotated`] returns a new ring,
/// and the issuer swaps it in at run time (`Issuer::rotate_keys`).
#[derive(Clone)]
pub struct KeyRing {
    current: RingKey,
    /// Older keys, newest first.
    older: Vec<RingKey>,
    /// The key directory the ring was loaded from (`None`: in memory only).
    dir: Option<PathBuf>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys()
            .map(|k| format!("{} ({})", k.kid, k.alg))
            .collect();
        f.debug_struct("KeyRing")
            .field("current", &self.current.kid)
            .field("keys", &keys)
            .finish()
    }
}

impl KeyRing {
    /// Loads every key stored under `<data_dir>/signing-keys/`, or, when there
    /// is none, generates one key of `alg` and stores it there (private key
    /// file mode 0600, directory 0700). The newest key signs; when keys exist,
    /// `alg` is not used (a warning is logged if the newest key differs).
    pub fn load_or_generate(data_dir: &Path, alg: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let dir = data_dir.join(KEY_DIR);
        ensure_key_dir(&dir)?;
        let mut keys = load_key_dir(&dir)?;
        if keys.is_empty() {
            let key = write_new_key(&dir, alg, unix_now())?;
            tracing::info!(kid = %key.kid, alg = %alg, "generated a signing key");
            keys.push(key);
        }
        let ring = KeyRing::from_keys(keys, Some(dir))?;
        if ring.current.alg != alg {
            tracing::warn!(
                kid = %ring.current.kid,
                key_alg = %ring.current.alg,
                configured_alg = %alg,
                "the newest stored signing key is not of the configured algorithm; it is used anyway"
            );
        }
        Ok(ring)
    }

    /// An in-memory ring with one fresh key (tests, benchmarks).
    pub fn generate(alg: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let pem = generate_pem(alg)?;
        let key =
            RingKey::from_pem(alg, pem.as_bytes(), unix_now()).map_err(KeyError::Generation)?;
        KeyRing::from_keys(vec![key], None)
    }

    /// A new ring whose current key is a freshly generated key of `alg` and
    /// whose older keys are every key of `self` (so tokens signed before
    /// still verify and all keys stay in the JWK Set). A ring loaded with
    /// [`KeyRing::load_or_generate`] stores the new key in its key directory
    /// first (a file like the others: mode 0600, written atomically), so it
    /// is still the current key after a restart; an in-memory ring
    /// ([`KeyRing::generate`]) is rotated in memory only. The new key's
    /// `created_at` is now, but at least one second after the current key's,
    /// so it sorts newest on reload even when rotated twice in one second.
    /// `self` is unchanged. Blocking (key generation and file I/O).
    pub fn rotated(&self, alg: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let created_at = unix_now().max(self.current.created_at.saturating_add(1));
        let key = match &self.dir {
            Some(dir) => {
                ensure_key_dir(dir)?;
                write_new_key(dir, alg, created_at)?
            }
            None => {
                let pem = generate_pem(alg)?;
                RingKey::from_pem(alg, pem.as_bytes(), created_at).map_err(KeyError::Generation)?
            }
        };
        let mut older = Vec::with_capacity(self.older.len() + 1);
        older.push(self.current.clone());
        older.extend(self.older.iter().cloned());
        Ok(KeyRing {
            current: key,
            older,
            dir: self.dir.clone(),
        })
    }

    /// The `kid` of every key, newest (the signing key) first.
    pub fn kids(&self) -> Vec<String> {
        self.keys().map(|k| k.kid.clone()).collect()
    }

    fn from_keys(mut keys: Vec<RingKey>, dir: Option<PathBuf>) -> Result<KeyRing, KeyError> {
        keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        let mut keys = keys.into_iter();
        let current = keys
            .next()
            .ok_or_else(|| KeyError::Generation("no signing key".to_owned()))?;
        Ok(KeyRing {
            current,
            older: keys.collect(),
            dir,
        })
    }

    /// Every key, newest first.
    fn keys(&self) -> impl Iterator<Item = &RingKey> {
        std::iter::once(&self.current).chain(self.older.iter())
    }

    /// The `kid` of the key that signs (its RFC 7638 thumbprint).
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// The algorithm of the key that signs.
    pub fn current_alg(&self) -> SigningAlgorithm {
        self.current.alg
    }

    /// RFC 7517 JWK Set of every public key, newest first: each with
    /// kty/crv/x/y/n/e as applicable, `kid`, `alg`, `use: "sig"`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys()
            .map(|k| {
                let mut jwk = k.public_jwk.clone();
                jwk.insert("alg".to_owned(), Value::String(k.alg.as_str().to_owned()));
                jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
                Value::Object(jwk)
            })
            .collect();
        let mut set = Map::new();
        set.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(set)
    }

    /// Compact JWS over `claims` with protected header
    /// `{"alg", "kid", "typ": typ}` signed by the current key.
    pub fn sign(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let key = &self.current;
        let mut header = Map::new();
        header.insert("alg".to_owned(), Value::String(key.alg.as_str().to_owned()));
        header.insert("kid".to_owned(), Value::String(key.kid.clone()));
        header.insert("typ".to_owned(), Value::String(typ.to_owned()));
        let header = Value::Object(header).to_string();
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Signing(e.to_string()))?;
        key.sign_parts(header.as_bytes(), &payload)
    }

    /// Verifies a compact JWS made by this ring: exactly 3 base64url parts;
    /// header parsed strictly (duplicate members refused, `crit` refused);
    /// `alg` must be one of the ring's algorithms and equal the alg of the key
    /// named by `kid` (never `none` or HMAC); `typ` must equal `expected_typ`
    /// (case-insensitive, `application/<typ>` accepted, RFC 8725 §3.11);
    /// signature valid; payload a JSON object without duplicate claims.
    /// No time checks here.
    pub fn verify(
        &self,
        token: &str,
        expected_typ: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| VerifyError::Malformed)
        };
        let header_bytes = decode(header_b64)?;
        let payload_bytes = decode(payload_b64)?;
        let signature = decode(signature_b64)?;

        let header = match ajwt_checksum::json::parse_strict(&header_bytes) {
            Ok(v) => match v.to_serde_json() {
                Value::Object(map) => map,
                _ => return Err(VerifyError::Malformed),
            },
            Err(_) => return Err(VerifyError::Malformed),
        };
        if header.contains_key("crit") {
            return Err(VerifyError::Malformed);
        }
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err(VerifyError::Malformed);
        };
        if !self.keys().any(|k| k.alg.as_str() == alg) {
            return Err(VerifyError::UnsupportedAlgorithm(alg.clone()));
        }
        let Some(Value::String(kid)) = header.get("kid") else {
            return Err(VerifyError::Malformed);
        };
        let key = self
            .keys()
            .find(|k| k.kid == *kid)
            .ok_or_else(|| VerifyError::UnknownKid(kid.clone()))?;
        if key.alg.as_str() != alg {
            return Err(VerifyError::UnsupportedAlgorithm(alg.clone()));
        }
        match header.get("typ") {
            Some(Value::String(typ)) if ajwt_jose::typ_matches(Some(typ), expected_typ) => {}
            other => {
                return Err(VerifyError::WrongType {
                    expected: expected_typ.to_owned(),
                    found: other.map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned)),
                })
            }
        }
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = token
            .get(..signing_input_len)
            .ok_or(VerifyError::Malformed)?;
        key.verifier
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| VerifyError::BadSignature)?;

        match ajwt_checksum::json::parse_strict(&payload_bytes) {
            Ok(v) => match v.to_serde_json() {
                Value::Object(claims) => Ok(claims),
                _ => Err(VerifyError::BadPayload(
                    "the payload is not a JSON object".to_owned(),
                )),
            },
            Err(e) => Err(VerifyError::BadPayload(e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------
// Key files
// ---------------------------------------------------------------------------

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates the key directory (0700) if needed.
fn ensure_key_dir(dir: &Path) -> Result<(), KeyError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the signing key directory is accessible to other users"
                );
            }
            Ok(())
        }
        Ok(_) => Err(KeyError::Io {
            path: dir.to_owned(),
            source: std::io::Error::other("not a directory"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))
        }
        Err(e) => Err(io_error(dir)(e)),
    }
}

/// Loads every `*.json` key file of `dir`, in file name order.
fn load_key_dir(dir: &Path) -> Result<Vec<RingKey>, KeyError> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        if fs::metadata(&path).map_err(io_error(&path))?.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load_key_file(p)).collect()
}

fn load_key_file(path: &Path) -> Result<RingKey, KeyError> {
    let bad = |reason: String| KeyError::BadKeyFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = fs::read(path).map_err(io_error(path))?;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "a private signing key file is accessible to other users (expected mode 0600)"
            );
        }
    }
    let doc = ajwt_checksum::json::parse_strict(&bytes)
        .map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Value::Object(doc) = doc.to_serde_json() else {
        return Err(bad("not a JSON object".to_owned()));
    };
    if let Some(other) = doc
        .keys()
        .find(|k| !["kid", "alg", "created_at", "private_key_pem"].contains(&k.as_str()))
    {
        return Err(bad(format!("unknown member {other:?}")));
    }
    let string = |name: &str| match doc.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(bad(format!("member {name:?} must be a string"))),
    };
    let alg: SigningAlgorithm = string("alg")?
        .parse()
        .map_err(|e: KeyError| bad(e.to_string()))?;
    let stored_kid = string("kid")?;
    let pem = string("private_key_pem")?;
    let created_at = doc
        .get("created_at")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("member \"created_at\" must be a non-negative integer".to_owned()))?;
    let key = RingKey::from_pem(alg, pem.as_bytes(), created_at)
        .map_err(|e| bad(format!("private_key_pem is not a usable {alg} key: {e}")))?;
    if key.kid != stored_kid {
        return Err(bad(format!(
            "kid {stored_kid:?} is not the RFC 7638 thumbprint of the key ({})",
            key.kid
        )));
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != key.kid {
        return Err(bad(format!(
            "file name does not match the key: expected {}.json",
            key.kid
        )));
    }
    Ok(key)
}

/// Generates a key of `alg`, stores it as `<dir>/<kid>.json` (0600, written
/// atomically) and returns it.
fn write_new_key(dir: &Path, alg: SigningAlgorithm, created_at: u64) -> Result<RingKey, KeyError> {
    let pem = generate_pem(alg)?;
    let key = RingKey::from_pem(alg, pem.as_bytes(), created_at).map_err(KeyError::Generation)?;
    let mut doc = Map::new();
    doc.insert("kid".to_owned(), Value::String(key.kid.clone()));
    doc.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
    doc.insert("created_at".to_owned(), Value::from(created_at));
    doc.insert("private_key_pem".to_owned(), Value::String(pem));
    let mut text = serde_json::to_string_pretty(&Value::Object(doc))
        .map_err(|e| KeyError::Generation(e.to_string()))?;
    text.push('\n');
    write_private_file(dir, &format!("{}.json", key.kid), text.as_bytes())?;
    Ok(key)
}

/// Writes `dir/name` with mode 0600 through a temporary file and a rename,
/// then syncs the directory.
fn write_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), KeyError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_error(&tmp))?;
        file.write_all(bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_error(&path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

// ---------------------------------------------------------------------------
// Agent keys
// ---------------------------------------------------------------------------

/// An agent's proof-of-possession key (§4.4.2 cnf.jwk, §6.2.3 step 2).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentKey {
    /// Public members only (kty, crv, x, y / n, e) plus `kid` = thumbprint.
    pub jwk: Map<String, Value>,
    /// RFC 7638 thumbprint (base64url SHA-256).
    pub thumbprint: String,
}

/// Accepts a JWK or a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
/// Allowed (§9.4.1): Ed25519 (OKP), P-256 (EC), RSA with modulus >= 2048
/// bits and public exponent exactly 65537. Anything else (other curves,
/// smaller RSA, other exponents, symmetric `oct` keys, JWKs carrying private
/// members, malformed base64url or coordinates, an invalid, non-canonically
/// encoded or small-order point, a PEM that is not exactly one DER
/// SubjectPublicKeyInfo, a JWK whose `use` is not `sig` or whose `alg` does
/// not fit the key) is [`KeyError::Unsupported`] with the reason. The
/// returned JWK has only the public members plus `kid`.
pub fn parse_agent_public_key(input: &PublicKeyInput) -> Result<AgentKey, KeyError> {
    let core = match input {
        PublicKeyInput::Jwk(jwk) => {
            let core = core_from_jwk(jwk)?;
            check_public_core(&core)?;
            check_jwk_alg(jwk, jwk_string(&core, "kty")?)?;
            core
        }
        PublicKeyInput::Pem(pem) => {
            let core = core_from_pem(pem)?;
            check_public_core(&core)?;
            core
        }
    };
    let thumbprint = jwk_thumbprint(&core)?;
    let mut jwk = core;
    jwk.insert("kid".to_owned(), Value::String(thumbprint.clone()));
    Ok(AgentKey { jwk, thumbprint })
}

/// RFC 7638 thumbprint: base64url (no padding) of SHA-256 over the required
/// members in lexicographic order, no whitespace (EC: crv,kty,x,y; OKP:
/// crv,kty,x; RSA: e,kty,n; oct: k,kty). Other members are ignored; the
/// values are not validated beyond being strings.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, KeyError> {
    // One implementation of RFC 7638 for the whole project (ajwt-jose).
    ajwt_jose::jwk_thumbprint(jwk).map_err(|e| unsupported(e.to_string()))
}

fn jwk_string<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, KeyError> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(unsupported(format!("JWK member {name:?} must be a string"))),
        None => Err(unsupported(format!("JWK member {name:?} is missing"))),
    }
}

/// The public members of a JWK of kind kty (`kty` plus crv/x/y, crv/x or n/e).
fn public_members(jwk: &Map<String, Value>) -> Result<Map<String, Value>, KeyError> {
    let kty = jwk_string(jwk, "kty")?;
    let names: &[&str] = match kty {
        "EC" => &["kty", "crv", "x", "y"],
        "OKP" => &["kty", "crv", "x"],
        "RSA" => &["kty", "n", "e"],
        "oct" => {
            return Err(unsupported(
                "symmetric (kty \"oct\") keys cannot prove possession; \
                 send a public key (§9.4.1: Ed25519, P-256 or RSA)",
            ))
        }
        other => {
            return Err(unsupported(format!(
                "kty {other:?} is not allowed (§9.4.1: Ed25519, P-256 or RSA)"
            )))
        }
    };
    let mut core = Map::new();
    for name in names {
        core.insert(
            (*name).to_owned(),
            Value::String(jwk_string(jwk, name)?.to_owned()),
        );
    }
    Ok(core)
}

/// Checks a client-supplied JWK (private members, `use`, `key_ops`) and
/// returns its public members.
fn core_from_jwk(jwk: &Map<String, Value>) -> Result<Map<String, Value>, KeyError> {
    let kty = jwk_string(jwk, "kty")?;
    if kty == "oct" {
        return public_members(jwk);
    }
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(unsupported(format!(
            "the JWK carries the private member {member:?}; register only the public key"
        )));
    }
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => {
            return Err(unsupported(format!(
                "JWK \"use\" must be \"sig\" for a proof-of-possession key, found {other}"
            )))
        }
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|o| o.as_str() == Some("verify")) => {}
        Some(other) => {
            return Err(unsupported(format!(
                "JWK \"key_ops\" must include \"verify\", found {other}"
            )))
        }
    }
    public_members(jwk)
}

/// A client-supplied JWK's optional `alg` must fit its (already accepted) key.
fn check_jwk_alg(jwk: &Map<String, Value>, kty: &str) -> Result<(), KeyError> {
    if let Some(alg) = jwk.get("alg") {
        let allowed: &[&str] = match kty {
            "OKP" => &["EdDSA", "Ed25519"],
            "EC" => &["ES256"],
            "RSA" => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            _ => &[],
        };
        if !alg.as_str().is_some_and(|a| allowed.contains(&a)) {
            return Err(unsupported(format!(
                "JWK \"alg\" {alg} does not fit a {kty} key (expected one of {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn b64url_member(core: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeyError> {
    let text = jwk_string(core, name)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        unsupported(format!(
            "JWK member {name:?} is not canonical unpadded base64url (RFC 7515 §2)"
        ))
    })
}

const ALLOWED: &str = "§9.4.1 allows Ed25519, P-256, or RSA of at least 2048 bits with e = 65537";

/// The §9.4.1 checks on public members (output of [`public_members`]).
fn check_public_core(core: &Map<String, Value>) -> Result<(), KeyError> {
    match jwk_string(core, "kty")? {
        "OKP" => {
            match jwk_string(core, "crv")? {
                "Ed25519" => {}
                other => {
                    return Err(unsupported(format!(
                        "curve {other:?} is not allowed ({ALLOWED})"
                    )))
                }
            }
            let x = b64url_member(core, "x")?;
            let x: [u8; 32] = x.as_slice().try_into().map_err(|_| {
                unsupported(format!("Ed25519 \"x\" must be 32 bytes, found {}", x.len()))
            })?;
            check_ed25519_public_key(&x)
        }
        "EC" => {
            match jwk_string(core, "crv")? {
                "P-256" => {}
                other => {
                    return Err(unsupported(format!(
                        "curve {other:?} is not allowed ({ALLOWED})"
                    )))
                }
            }
            for name in ["x", "y"] {
                let c = b64url_member(core, name)?;
                if c.len() != 32 {
                    return Err(unsupported(format!(
                        "P-256 {name:?} must be 32 bytes (RFC 7518 §6.2.1.2), found {}",
                        c.len()
                    )));
                }
            }
            let jwk = Jwk::from_map(core.clone()).map_err(|e| unsupported(e.to_string()))?;
            ES256
                .verifier_from_jwk(&jwk)
                .map(|_| ())
                .map_err(|_| unsupported("(x, y) is not a point on P-256"))
        }
        "RSA" => {
            let n = b64url_member(core, "n")?;
            let e = b64url_member(core, "e")?;
            if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
                return Err(unsupported(
                    "RSA \"n\" and \"e\" must be non-empty and without leading zero octets (RFC 7518 §2, §6.3.1)",
                ));
            }
            if e != RSA_EXPONENT {
                return Err(unsupported(format!(
                    "RSA public exponent must be 65537, found {} ({ALLOWED})",
                    describe_uint(&e)
                )));
            }
            let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
            if bits < RSA_MIN_BITS {
                return Err(unsupported(format!(
                    "RSA modulus is {bits} bits; at least {RSA_MIN_BITS} are required ({ALLOWED})"
                )));
            }
            if bits > RSA_MAX_BITS {
                return Err(unsupported(format!(
                    "RSA modulus is {bits} bits; at most {RSA_MAX_BITS} are accepted"
                )));
            }
            if n.last().is_none_or(|b| b & 1 == 0) {
                return Err(unsupported("RSA modulus is even"));
            }
            let jwk = Jwk::from_map(core.clone()).map_err(|e| unsupported(e.to_string()))?;
            RS256
                .verifier_from_jwk(&jwk)
                .map(|_| ())
                .map_err(|e| unsupported(format!("invalid RSA key: {e}")))
        }
        other => Err(unsupported(format!(
            "kty {other:?} is not allowed ({ALLOWED})"
        ))),
    }
}

/// Decimal for small integers, bit length otherwise.
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

/// The DER inside a single `-----BEGIN PUBLIC KEY-----` PEM block (RFC 7468
/// §13). Only the textual envelope is checked here (so that private keys and
/// other labels get a named refusal, and nothing hides before, after or
/// beside the block; OpenSSL's PEM reader would skip such text and also
/// takes `RSA PUBLIC KEY`); the DER itself is left to OpenSSL.
fn pem_public_key_der(pem: &str) -> Result<Vec<u8>, KeyError> {
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
                format!("the PEM holds a private key ({l}); register only the public key ({BEGIN})")
            }
            Some(l) => {
                format!("PEM type {l:?} is not accepted; expected a SubjectPublicKeyInfo ({BEGIN})")
            }
            None => format!("not a PEM public key: expected a JWK object or {BEGIN}"),
        }));
    };
    let Some(body) = body.strip_suffix(END) else {
        return Err(unsupported(format!(
            "PEM public key must end with {END} (and nothing after it)"
        )));
    };
    if body.contains('-') || body.contains(':') {
        return Err(unsupported(
            "PEM public key must hold exactly one block without headers",
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|_| unsupported("PEM body is not valid base64"))
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
fn openssl_error(what: &'static str) -> impl FnOnce(ErrorStack) -> KeyError {
    move |e| unsupported(format!("{what}: {}", openssl_reasons(&e)))
}

/// Public members of the JWK equivalent to a PEM SubjectPublicKeyInfo
/// (RFC 5280 §4.1.2.7; RFC 5480 EC, RFC 8410 Ed25519, RFC 3279 RSA), parsed
/// by OpenSSL. The DER must be exactly the encoding OpenSSL gives the same
/// key (named curve, uncompressed point, NULL RSA parameters, no trailing
/// data or non-minimal lengths). The §9.4.1 limits on the members are left
/// to [`check_public_core`].
fn core_from_pem(pem: &str) -> Result<Map<String, Value>, KeyError> {
    let der = pem_public_key_der(pem)?;
    let pkey = PKey::public_key_from_der(&der).map_err(|e| {
        unsupported(format!(
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
                return Err(unsupported(
                    "compressed or hybrid EC points are not accepted; use the uncompressed form",
                ));
            }
            canonical
        }
        Id::RSA => {
            let rsa = pkey.rsa().map_err(openssl_error("invalid RSA public key"))?;
            if rsa.n().is_negative() || rsa.e().is_negative() {
                return Err(unsupported(
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
        return Err(unsupported(if der.starts_with(&expected) {
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

/// A usable Ed25519 public key (§9.4.1): the canonical encoding (RFC 8032
/// §5.1.2, y < p and no "negative zero") of a curve point (§5.1.3) that is
/// not of small order. Decoding and the order check are curve25519-dalek's.
fn check_ed25519_public_key(bytes: &[u8; 32]) -> Result<(), KeyError> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or_else(|| {
        unsupported("Ed25519 \"x\" is not the encoding of a curve point (RFC 8032 §5.1.3)")
    })?;
    if point.compress().to_bytes() != *bytes {
        return Err(unsupported(
            "Ed25519 \"x\" is a non-canonical point encoding (RFC 8032 §5.1.2: y < p, \
             no sign bit on x = 0)",
        ));
    }
    if point.is_small_order() {
        return Err(unsupported("Ed25519 \"x\" is a small-order point"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use josekit::jwk::alg::rsa::RsaKeyPair;
    use josekit::jws::{ES256K, ES384};
    use serde_json::json;
    use sha2::{Digest as _, Sha256};
    use std::sync::OnceLock;

    const TYP: &str = "intent+jwt";

    fn claims() -> Map<String, Value> {
        json!({
            "iss": "https://idp.example.com",
            "sub": "agent-1",
            "exp": 1735690800,
            "scope": "repo:write",
            "intent": {"workflow_id": "wf", "steps": [1, 2.5, "x"]}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    /// One ring per algorithm, shared by the tests (RSA generation is slow).
    fn ring(alg: SigningAlgorithm) -> &'static KeyRing {
        static RINGS: OnceLock<Vec<KeyRing>> = OnceLock::new();
        let rings = RINGS.get_or_init(|| {
            SigningAlgorithm::ALL
                .iter()
                .map(|a| KeyRing::generate(*a).unwrap())
                .collect()
        });
        rings.iter().find(|r| r.current_alg() == alg).unwrap()
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn split(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn header_of(token: &str) -> Map<String, Value> {
        let h = URL_SAFE_NO_PAD.decode(&split(token)[0]).unwrap();
        serde_json::from_slice(&h).unwrap()
    }

    /// A token over raw header/payload bytes, properly signed by the current key.
    fn signed_raw(ring: &KeyRing, header: &str, payload: &str) -> String {
        ring.current
            .sign_parts(header.as_bytes(), payload.as_bytes())
            .unwrap()
    }

    fn std_header(ring: &KeyRing) -> String {
        json!({"alg": ring.current_alg().as_str(), "kid": ring.current_kid(), "typ": TYP})
            .to_string()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn jwk_input(v: Value) -> PublicKeyInput {
        PublicKeyInput::Jwk(obj(v))
    }

    fn pem_input(pem: Vec<u8>) -> PublicKeyInput {
        PublicKeyInput::Pem(String::from_utf8(pem).unwrap())
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
    fn wrap(der: &[u8]) -> PublicKeyInput {
        PublicKeyInput::Pem(format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        ))
    }

    fn josekit_jwk(jwk: &Jwk) -> Map<String, Value> {
        jwk.as_ref().clone()
    }

    fn refused(input: PublicKeyInput) -> String {
        match parse_agent_public_key(&input) {
            Err(KeyError::Unsupported { reason }) => reason,
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn assert_refused(input: PublicKeyInput, needle: &str) {
        let reason = refused(input);
        assert!(
            reason.contains(needle),
            "reason {reason:?} lacks {needle:?}"
        );
    }

    fn member_names(m: &Map<String, Value>) -> Vec<&str> {
        let mut names: Vec<&str> = m.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn key_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    // --- RFC 7638 -------------------------------------------------------

    #[test]
    fn rfc7638_s3_1_example_thumbprint() {
        let jwk = obj(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // The same key is an acceptable agent key (2048 bits, e = 65537), and
        // its kid is that thumbprint.
        let key = parse_agent_public_key(&PublicKeyInput::Jwk(jwk)).unwrap();
        assert_eq!(
            key.thumbprint,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.jwk["kid"], key.thumbprint.as_str());
        assert_eq!(member_names(&key.jwk), ["e", "kid", "kty", "n"]);
    }

    #[test]
    fn rfc7638_s3_2_required_members_only_in_lexicographic_order() {
        let jwk = obj(
            json!({"y": "Yy", "x": "Xx", "kty": "EC", "crv": "P-256", "use": "sig", "kid": "k"}),
        );
        let expected = b64(Sha256::digest(
            br#"{"crv":"P-256","kty":"EC","x":"Xx","y":"Yy"}"#,
        ));
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), expected);
        let okp = obj(json!({"x": "Xx", "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA"}));
        let expected = b64(Sha256::digest(br#"{"crv":"Ed25519","kty":"OKP","x":"Xx"}"#));
        assert_eq!(jwk_thumbprint(&okp).unwrap(), expected);
        let oct = obj(json!({"kty": "oct", "k": "Kk"}));
        let expected = b64(Sha256::digest(br#"{"k":"Kk","kty":"oct"}"#));
        assert_eq!(jwk_thumbprint(&oct).unwrap(), expected);
    }

    #[test]
    fn rfc7638_thumbprint_needs_its_members_as_strings() {
        for (jwk, needle) in [
            (
                json!({"kty": "EC", "crv": "P-256", "x": "Xx"}),
                "\"y\" is missing",
            ),
            (
                json!({"crv": "P-256", "x": "Xx", "y": "Yy"}),
                "\"kty\" is missing",
            ),
            (
                json!({"kty": "RSA", "n": "Nn", "e": 65537}),
                "\"e\" must be a string",
            ),
            (json!({"kty": "XYZ"}), "no thumbprint"),
        ] {
            match jwk_thumbprint(&obj(jwk)) {
                Err(KeyError::Unsupported { reason }) => {
                    assert!(reason.contains(needle), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    // --- algorithms, signing, JWKS --------------------------------------

    #[test]
    fn s9_4_1_signing_algorithm_names_are_exact() {
        for alg in SigningAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlgorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(SigningAlgorithm::EdDsa.as_str(), "EdDSA");
        for bad in [
            "es256", "EDDSA", "rs256", "none", "HS256", "ES384", " ES256", "",
        ] {
            assert!(matches!(
                bad.parse::<SigningAlgorithm>(),
                Err(KeyError::UnknownAlgorithm(s)) if s == bad
            ));
        }
    }

    #[test]
    fn rfc7515_sign_then_verify_round_trip_each_alg() {
        for alg in SigningAlgorithm::ALL {
            let ring = ring(alg);
            assert_eq!(ring.current_alg(), alg);
            let token = ring.sign(TYP, &claims()).unwrap();
            assert_eq!(split(&token).len(), 3);
            let header = header_of(&token);
            assert_eq!(member_names(&header), ["alg", "kid", "typ"]);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], ring.current_kid());
            assert_eq!(header["typ"], TYP);
            assert_eq!(ring.verify(&token, TYP).unwrap(), claims(), "{alg}");
            // Another ring of the same algorithm does not know the key.
            let other = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
            if alg == SigningAlgorithm::Es256 {
                assert_eq!(
                    other.verify(&token, TYP),
                    Err(VerifyError::UnknownKid(ring.current_kid().to_owned()))
                );
            }
        }
    }

    #[test]
    fn rfc7517_jwks_members_each_alg() {
        for (alg, names) in [
            (
                SigningAlgorithm::Es256,
                vec!["alg", "crv", "kid", "kty", "use", "x", "y"],
            ),
            (
                SigningAlgorithm::EdDsa,
                vec!["alg", "crv", "kid", "kty", "use", "x"],
            ),
            (
                SigningAlgorithm::Rs256,
                vec!["alg", "e", "kid", "kty", "n", "use"],
            ),
        ] {
            let set = ring(alg).jwks();
            let keys = set["keys"].as_array().unwrap();
            assert_eq!(keys.len(), 1);
            let jwk = keys[0].as_object().unwrap();
            assert_eq!(member_names(jwk), names, "{alg}");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["kid"], ring(alg).current_kid());
            assert_eq!(jwk_thumbprint(jwk).unwrap(), ring(alg).current_kid());
            assert_eq!(ring(alg).current_kid().len(), 43);
            match alg {
                SigningAlgorithm::Es256 => {
                    assert_eq!(jwk["kty"], "EC");
                    assert_eq!(jwk["crv"], "P-256");
                    for c in ["x", "y"] {
                        let bytes = URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
                        assert_eq!(bytes.len(), 32, "P-256 {c}");
                    }
                }
                SigningAlgorithm::EdDsa => {
                    assert_eq!(jwk["kty"], "OKP");
                    assert_eq!(jwk["crv"], "Ed25519");
                    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
                    assert_eq!(x.len(), 32);
                }
                SigningAlgorithm::Rs256 => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert_eq!(jwk["e"], "AQAB");
                    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
                    assert_eq!(n.len(), 256);
                    assert_ne!(n[0], 0);
                }
            }
            // The published keys are themselves acceptable agent keys.
            let mut public = jwk.clone();
            public.remove("kid");
            let key = parse_agent_public_key(&PublicKeyInput::Jwk(public)).unwrap();
            assert_eq!(key.thumbprint, ring(alg).current_kid());
        }
    }

    #[test]
    fn independent_jsonwebtoken_verifies_our_tokens_with_our_jwks() {
        use jsonwebtoken::{decode, jwk::JwkSet, Algorithm, DecodingKey, Validation};
        for (alg, theirs) in [
            (SigningAlgorithm::Es256, Algorithm::ES256),
            (SigningAlgorithm::EdDsa, Algorithm::EdDSA),
            (SigningAlgorithm::Rs256, Algorithm::RS256),
        ] {
            let ring = ring(alg);
            let token = ring.sign(TYP, &claims()).unwrap();
            let set: JwkSet = serde_json::from_value(ring.jwks()).unwrap();
            let jwk = set.find(ring.current_kid()).unwrap();
            let key = DecodingKey::from_jwk(jwk).unwrap();
            let mut validation = Validation::new(theirs);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            validation.validate_aud = false;
            let data = decode::<Value>(&token, &key, &validation).unwrap();
            assert_eq!(data.claims, Value::Object(claims()), "{alg}");
            assert_eq!(data.header.typ.as_deref(), Some(TYP));
            assert_eq!(data.header.kid.as_deref(), Some(ring.current_kid()));
            assert_eq!(data.header.alg, theirs);
            // ...and refuses a tampered payload.
            let p = split(&token);
            let forged = format!("{}.{}.{}", p[0], b64(br#"{"sub":"evil"}"#), p[2]);
            assert!(decode::<Value>(&forged, &key, &validation).is_err());
        }
    }

    // --- RFC 8725 / RFC 7515 refusals ------------------------------------

    #[test]
    fn rfc8725_s3_1_alg_none_and_hmac_refused() {
        let ring = ring(SigningAlgorithm::Es256);
        let token = ring.sign(TYP, &claims()).unwrap();
        let p = split(&token);
        for alg in ["none", "HS256", "es256", "ES384", "RS256", "EdDSA"] {
            let header =
                b64(json!({"alg": alg, "kid": ring.current_kid(), "typ": TYP}).to_string());
            for sig in ["", p[2].as_str()] {
                let forged = format!("{header}.{}.{sig}", p[1]);
                assert_eq!(
                    ring.verify(&forged, TYP),
                    Err(VerifyError::UnsupportedAlgorithm(alg.to_owned())),
                    "{alg} sig={}",
                    !sig.is_empty()
                );
            }
        }
        // HS256 signed with the public key as the HMAC secret (the classic
        // confusion attack) is refused before any signature check.
        let header =
            b64(json!({"alg": "HS256", "kid": ring.current_kid(), "typ": TYP}).to_string());
        let forged = format!("{header}.{}.{}", p[1], b64([7u8; 32]));
        assert_eq!(
            ring.verify(&forged, TYP),
            Err(VerifyError::UnsupportedAlgorithm("HS256".to_owned()))
        );
        // alg missing or not a string.
        for h in [
            json!({"kid": ring.current_kid(), "typ": TYP}),
            json!({"alg": null, "kid": ring.current_kid(), "typ": TYP}),
            json!({"alg": ["ES256"], "kid": ring.current_kid(), "typ": TYP}),
        ] {
            let forged = format!("{}.{}.{}", b64(h.to_string()), p[1], p[2]);
            assert_eq!(ring.verify(&forged, TYP), Err(VerifyError::Malformed));
        }
    }

    #[test]
    fn tamper_payload_or_signature_is_bad_signature() {
        for alg in SigningAlgorithm::ALL {
            let ring = ring(alg);
            let token = ring.sign(TYP, &claims()).unwrap();
            let p = split(&token);
            let mut changed = claims();
            changed.insert("scope".to_owned(), json!("admin"));
            let forged = format!(
                "{}.{}.{}",
                p[0],
                b64(serde_json::to_vec(&changed).unwrap()),
                p[2]
            );
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            let mut sig = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
            sig[5] ^= 1;
            let forged = format!("{}.{}.{}", p[0], p[1], b64(&sig));
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            let forged = format!("{}.{}.{}", p[0], p[1], b64(&sig[..sig.len() - 1]));
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            // A header re-encoded differently (same members) changes the
            // signing input.
            let reordered = json!({"typ": TYP, "kid": ring.current_kid(), "alg": alg.as_str()});
            let forged = format!(
                "{}.{}.{}",
                b64(serde_json::to_vec_pretty(&reordered).unwrap()),
                p[1],
                p[2]
            );
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn rfc7515_s4_1_4_unknown_or_missing_kid() {
        let ring = ring(SigningAlgorithm::EdDsa);
        let payload = serde_json::to_string(&claims()).unwrap();
        let token = signed_raw(
            ring,
            &json!({"alg": "EdDSA", "kid": "nope", "typ": TYP}).to_string(),
            &payload,
        );
        assert_eq!(
            ring.verify(&token, TYP),
            Err(VerifyError::UnknownKid("nope".to_owned()))
        );
        let token = signed_raw(
            ring,
            &json!({"alg": "EdDSA", "typ": TYP}).to_string(),
            &payload,
        );
        assert_eq!(ring.verify(&token, TYP), Err(VerifyError::Malformed));
        let token = signed_raw(
            ring,
            &json!({"alg": "EdDSA", "kid": 1, "typ": TYP}).to_string(),
            &payload,
        );
        assert_eq!(ring.verify(&token, TYP), Err(VerifyError::Malformed));
    }

    #[test]
    fn rfc8725_s3_11_typ_checked() {
        let ring = ring(SigningAlgorithm::Es256);
        let token = ring.sign(TYP, &claims()).unwrap();
        assert!(ring.verify(&token, "INTENT+JWT").is_ok());
        assert!(ring.verify(&token, "application/intent+jwt").is_ok());
        assert_eq!(
            ring.verify(&token, "at+jwt"),
            Err(VerifyError::WrongType {
                expected: "at+jwt".to_owned(),
                found: Some(TYP.to_owned())
            })
        );
        let token = ring.sign("Application/Intent+JWT", &claims()).unwrap();
        assert!(ring.verify(&token, TYP).is_ok());
        for (typ, found) in [
            ("JWT", Some("JWT")),
            ("text/intent+jwt", Some("text/intent+jwt")),
            ("intent+jwt ", Some("intent+jwt ")),
            ("application/", Some("application/")),
        ] {
            let token = ring.sign(typ, &claims()).unwrap();
            assert_eq!(
                ring.verify(&token, TYP),
                Err(VerifyError::WrongType {
                    expected: TYP.to_owned(),
                    found: found.map(str::to_owned)
                }),
                "{typ}"
            );
        }
        let payload = serde_json::to_string(&claims()).unwrap();
        let h = json!({"alg": "ES256", "kid": ring.current_kid()}).to_string();
        assert_eq!(
            ring.verify(&signed_raw(ring, &h, &payload), TYP),
            Err(VerifyError::WrongType {
                expected: TYP.to_owned(),
                found: None
            })
        );
        let h = json!({"alg": "ES256", "kid": ring.current_kid(), "typ": 5}).to_string();
        assert_eq!(
            ring.verify(&signed_raw(ring, &h, &payload), TYP),
            Err(VerifyError::WrongType {
                expected: TYP.to_owned(),
                found: Some("5".to_owned())
            })
        );
        let e = VerifyError::WrongType {
            expected: TYP.to_owned(),
            found: None,
        };
        assert_eq!(
            e.to_string(),
            "wrong token type: expected \"intent+jwt\", found no typ"
        );
    }

    #[test]
    fn rfc7515_s7_1_compact_serialization_only() {
        let ring = ring(SigningAlgorithm::Es256);
        let token = ring.sign(TYP, &claims()).unwrap();
        let p = split(&token);
        let json_serialization = json!({
            "payload": p[1], "protected": p[0], "signature": p[2]
        })
        .to_string();
        let general =
            json!({"payload": p[1], "signatures": [{"protected": p[0], "signature": p[2]}]})
                .to_string();
        for bad in [
            format!("{}.{}", p[0], p[1]),
            format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
            format!("{}.{}.{}.", p[0], p[1], p[2]),
            format!("{}..{}", p[0], p[2]),
            format!(".{}.{}", p[1], p[2]),
            format!("{}={}", token, ""),
            format!("{}=.{}.{}", p[0], p[1], p[2]),
            format!(" {token}"),
            format!("{token}\n"),
            format!("{}.+{}.{}", p[0], &p[1][1..], p[2]),
            token.replace('.', ". "),
            json_serialization,
            general,
            String::new(),
            "..".to_owned(),
        ] {
            let r = ring.verify(&bad, TYP);
            assert!(
                r == Err(VerifyError::Malformed) || r == Err(VerifyError::BadSignature),
                "{bad:?}: {r:?}"
            );
            assert!(r.is_err());
        }
        assert_eq!(
            ring.verify(&format!("{}.{}", p[0], p[1]), TYP),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            ring.verify(&split(&token)[..2].join("."), TYP),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            ring.verify(
                &json!({"payload": p[1], "protected": p[0], "signature": p[2]}).to_string(),
                TYP
            ),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            ring.verify(&format!("{token}."), TYP),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            ring.verify(&format!("{}=.{}.{}", p[0], p[1], p[2]), TYP),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn rfc7515_duplicate_header_member_and_crit_refused() {
        let ring = ring(SigningAlgorithm::Es256);
        let kid = ring.current_kid();
        let payload = serde_json::to_string(&claims()).unwrap();
        for header in [
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","alg":"none"}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","typ":"{TYP}"}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","crit":["exp"],"exp":1}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","b64":false,"crit":["b64"]}}"#),
            r#"["ES256"]"#.to_owned(),
            "null".to_owned(),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}"}} x"#),
            "\u{feff}{}".to_owned(),
        ] {
            let token = signed_raw(ring, &header, &payload);
            assert_eq!(
                ring.verify(&token, TYP),
                Err(VerifyError::Malformed),
                "{header}"
            );
        }
        // Unknown, non-critical members are ignored.
        let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","x-note":1}}"#);
        assert_eq!(
            ring.verify(&signed_raw(ring, &header, &payload), TYP)
                .unwrap(),
            claims()
        );
    }

    #[test]
    fn strict_payload_duplicate_claims_refused() {
        let ring = ring(SigningAlgorithm::EdDsa);
        let header = std_header(ring);
        for payload in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"cnf":{"jwk":{"kty":"OKP","kty":"RSA"}}}"#,
            r#"[1,2]"#,
            r#""claims""#,
            "not json",
            r#"{"sub":"a"} trailing"#,
        ] {
            let token = signed_raw(ring, &header, payload);
            assert!(
                matches!(ring.verify(&token, TYP), Err(VerifyError::BadPayload(_))),
                "{payload}"
            );
        }
        let token = signed_raw(ring, &header, r#"{"sub":"a","n":1e2}"#);
        let got = ring.verify(&token, TYP).unwrap();
        assert_eq!(got["sub"], "a");
    }

    // --- persistence ----------------------------------------------------

    #[test]
    fn persistence_same_kid_cross_verify_and_modes() {
        for alg in SigningAlgorithm::ALL {
            let tmp = tempfile::tempdir().unwrap();
            let data = tmp.path().join("data");
            let first = KeyRing::load_or_generate(&data, alg).unwrap();
            let dir = data.join(KEY_DIR);
            assert_eq!(mode(&dir), 0o700);
            let files = key_files(&dir);
            assert_eq!(files.len(), 1, "{files:?}");
            assert_eq!(files[0], dir.join(format!("{}.json", first.current_kid())));
            assert_eq!(mode(&files[0]), 0o600);
            let stored: Map<String, Value> =
                serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
            assert_eq!(
                member_names(&stored),
                ["alg", "created_at", "kid", "private_key_pem"]
            );
            assert_eq!(stored["alg"], alg.as_str());
            assert_eq!(stored["kid"], first.current_kid());
            assert!(stored["private_key_pem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----"));

            let second = KeyRing::load_or_generate(&data, alg).unwrap();
            assert_eq!(second.current_kid(), first.current_kid());
            assert_eq!(second.current_alg(), alg);
            assert_eq!(second.jwks(), first.jwks());
            assert_eq!(key_files(&dir).len(), 1);
            let t1 = first.sign(TYP, &claims()).unwrap();
            let t2 = second.sign(TYP, &claims()).unwrap();
            assert_eq!(second.verify(&t1, TYP).unwrap(), claims());
            assert_eq!(first.verify(&t2, TYP).unwrap(), claims());
        }
    }

    #[test]
    fn persistence_rotation_newest_signs_and_alg_must_match_kid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        ensure_key_dir(&dir).unwrap();
        let es = write_new_key(&dir, SigningAlgorithm::Es256, 100).unwrap();
        let old_ring = KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256).unwrap();
        assert_eq!(old_ring.current_kid(), es.kid);
        let old_token = old_ring.sign(TYP, &claims()).unwrap();

        let rs = write_new_key(&dir, SigningAlgorithm::Rs256, 200).unwrap();
        // Keys exist: the configured algorithm does not create another one.
        let ring = KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::EdDsa).unwrap();
        assert_eq!(key_files(&dir).len(), 2);
        assert_eq!(ring.current_kid(), rs.kid);
        assert_eq!(ring.current_alg(), SigningAlgorithm::Rs256);
        let jwks = ring.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [rs.kid.as_str(), es.kid.as_str()]);
        assert_eq!(ring.verify(&old_token, TYP).unwrap(), claims());
        let new_token = ring.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&new_token)["alg"], "RS256");
        assert_eq!(
            old_ring.verify(&new_token, TYP),
            Err(VerifyError::UnsupportedAlgorithm("RS256".to_owned()))
        );

        // alg/key confusion: an alg of the ring, but not the alg of the key
        // named by kid.
        let p = split(&old_token);
        for (alg, kid, sig) in [
            ("RS256", es.kid.as_str(), p[2].clone()),
            ("ES256", rs.kid.as_str(), p[2].clone()),
        ] {
            let header = b64(json!({"alg": alg, "kid": kid, "typ": TYP}).to_string());
            let forged = format!("{header}.{}.{sig}", p[1]);
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::UnsupportedAlgorithm(alg.to_owned()))
            );
        }

        // Equal created_at: the greater kid signs (deterministic).
        let tie = write_new_key(&dir, SigningAlgorithm::EdDsa, 200).unwrap();
        let ring = KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256).unwrap();
        let winner = if tie.kid > rs.kid { &tie.kid } else { &rs.kid };
        assert_eq!(ring.current_kid(), winner);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn rotated_persists_the_new_key_and_keeps_the_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        let first = KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256).unwrap();
        let old_token = first.sign(TYP, &claims()).unwrap();
        // Twice within the same second: each new key still sorts newest.
        let second = first.rotated(SigningAlgorithm::Es256).unwrap();
        let third = second.rotated(SigningAlgorithm::Es256).unwrap();
        assert_ne!(second.current_kid(), first.current_kid());
        assert_ne!(third.current_kid(), second.current_kid());
        assert_eq!(first.kids(), [first.current_kid()], "self unchanged");
        assert_eq!(
            third.kids(),
            [
                third.current_kid(),
                second.current_kid(),
                first.current_kid()
            ]
        );
        let jwks = third.jwks();
        let published: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(published, third.kids());
        // Old tokens verify; new tokens carry the new kid.
        assert_eq!(third.verify(&old_token, TYP).unwrap(), claims());
        let new_token = third.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&new_token)["kid"], third.current_kid());
        assert_eq!(
            first.verify(&new_token, TYP),
            Err(VerifyError::UnknownKid(third.current_kid().to_owned()))
        );
        // Stored like the others (0600) and current after a reload.
        let files = key_files(&dir);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        assert!(dir.join(format!("{}.json", third.current_kid())).is_file());
        let reloaded = KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256).unwrap();
        assert_eq!(reloaded.kids(), third.kids());
        assert_eq!(reloaded.jwks(), third.jwks());
        assert_eq!(reloaded.verify(&new_token, TYP).unwrap(), claims());
    }

    #[test]
    fn rotated_to_another_alg_and_in_memory() {
        let ring = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
        let old_token = ring.sign(TYP, &claims()).unwrap();
        let rotated = ring.rotated(SigningAlgorithm::EdDsa).unwrap();
        assert_eq!(rotated.current_alg(), SigningAlgorithm::EdDsa);
        assert_eq!(rotated.kids().len(), 2);
        assert_eq!(rotated.verify(&old_token, TYP).unwrap(), claims());
        let new_token = rotated.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&new_token)["alg"], "EdDSA");
        assert_eq!(rotated.verify(&new_token, TYP).unwrap(), claims());
        let jwks = rotated.jwks();
        let algs: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["alg"].as_str().unwrap())
            .collect();
        assert_eq!(algs, ["EdDSA", "ES256"]);
        // An in-memory ring writes nothing (no directory to write to).
        assert!(rotated.dir.is_none());
    }

    #[test]
    fn persistence_bad_key_files_are_named_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        ensure_key_dir(&dir).unwrap();
        // Ignored: hidden files, temporary files, other extensions.
        fs::write(dir.join(".hidden.json"), "garbage").unwrap();
        fs::write(dir.join("README.txt"), "garbage").unwrap();
        let good = write_new_key(&dir, SigningAlgorithm::Es256, 1).unwrap();
        let good_path = dir.join(format!("{}.json", good.kid));
        let good_text = fs::read_to_string(&good_path).unwrap();
        assert!(KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256).is_ok());

        let stored: Map<String, Value> = serde_json::from_str(&good_text).unwrap();
        let mut wrong_alg = stored.clone();
        wrong_alg.insert("alg".to_owned(), json!("RS256"));
        let mut bad_kid = stored.clone();
        bad_kid.insert("kid".to_owned(), json!("abc"));
        let mut extra = stored.clone();
        extra.insert("comment".to_owned(), json!("x"));
        let mut neg_time = stored.clone();
        neg_time.insert("created_at".to_owned(), json!(-1));
        let mut bad_pem = stored.clone();
        bad_pem.insert(
            "private_key_pem".to_owned(),
            json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        );
        let duplicate = good_text.replacen('{', r#"{"alg": "ES256","#, 1);
        let cases: Vec<(&str, String, &str)> = vec![
            ("corrupt.json", "{not json".to_owned(), "not valid JSON"),
            ("array.json", "[]".to_owned(), "not a JSON object"),
            ("dup.json", duplicate, "duplicate"),
            ("renamed.json", good_text.clone(), "file name"),
            (
                "alg.json",
                Value::Object(wrong_alg).to_string(),
                "not a usable RS256 key",
            ),
            (
                "kid.json",
                Value::Object(bad_kid).to_string(),
                "not the RFC 7638 thumbprint",
            ),
            (
                "extra.json",
                Value::Object(extra).to_string(),
                "unknown member",
            ),
            (
                "time.json",
                Value::Object(neg_time).to_string(),
                "created_at",
            ),
            (
                "pem.json",
                Value::Object(bad_pem).to_string(),
                "private_key_pem",
            ),
        ];
        for (name, content, needle) in cases {
            let path = dir.join(name);
            fs::write(&path, content).unwrap();
            match KeyRing::load_or_generate(tmp.path(), SigningAlgorithm::Es256) {
                Err(KeyError::BadKeyFile { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains(needle), "{name}: {reason}");
                    let shown = KeyError::BadKeyFile { path: p, reason }.to_string();
                    assert!(shown.contains(name), "{shown}");
                }
                other => panic!("{name}: {other:?}"),
            }
            fs::remove_file(&path).unwrap();
        }
        // A data "directory" that is a file.
        let file = tmp.path().join("plain");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            KeyRing::load_or_generate(&file, SigningAlgorithm::Es256),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn keyring_is_send_sync_and_debug_hides_private_keys() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyRing>();
        let ring = ring(SigningAlgorithm::Rs256);
        let shown = format!("{ring:?}");
        assert!(shown.contains(ring.current_kid()));
        assert!(!shown.contains("PRIVATE"));
        assert!(shown.len() < 200, "{shown}");
    }

    // --- agent keys (§4.4.2, §6.2.3, §9.4.1) -------------------------------

    fn check_accepted(jwk_form: &Jwk, pem_form: Vec<u8>, names: &[&str]) -> AgentKey {
        let from_jwk = parse_agent_public_key(&PublicKeyInput::Jwk(josekit_jwk(jwk_form))).unwrap();
        let from_pem = parse_agent_public_key(&pem_input(pem_form)).unwrap();
        assert_eq!(from_jwk, from_pem);
        assert_eq!(member_names(&from_jwk.jwk), names);
        assert_eq!(from_jwk.jwk["kid"], from_jwk.thumbprint.as_str());
        assert_eq!(
            jwk_thumbprint(&josekit_jwk(jwk_form)).unwrap(),
            from_jwk.thumbprint
        );
        for m in ["kty", "crv", "x", "y", "n", "e"] {
            assert_eq!(from_jwk.jwk.get(m), josekit_jwk(jwk_form).get(m), "{m}");
        }
        from_jwk
    }

    #[test]
    fn s4_4_2_agent_key_ed25519_jwk_and_pem() {
        for _ in 0..4 {
            let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
            let key = check_accepted(
                &pair.to_jwk_public_key(),
                pair.to_pem_public_key(),
                &["crv", "kid", "kty", "x"],
            );
            assert_eq!(key.jwk["crv"], "Ed25519");
            // The JWK with "use"/"alg"/"kid"/"key_ops" members is fine; they are dropped.
            let mut with_extras = josekit_jwk(&pair.to_jwk_public_key());
            with_extras.insert("use".to_owned(), json!("sig"));
            with_extras.insert("kid".to_owned(), json!("client-chosen"));
            with_extras.insert("key_ops".to_owned(), json!(["verify"]));
            let again = parse_agent_public_key(&PublicKeyInput::Jwk(with_extras)).unwrap();
            assert_eq!(again, key);
        }
    }

    #[test]
    fn s4_4_2_agent_key_p256_jwk_and_pem() {
        let pair = ES256.generate_key_pair().unwrap();
        let key = check_accepted(
            &pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
            &["crv", "kid", "kty", "x", "y"],
        );
        for c in ["x", "y"] {
            assert_eq!(
                URL_SAFE_NO_PAD
                    .decode(key.jwk[c].as_str().unwrap())
                    .unwrap()
                    .len(),
                32
            );
        }
    }

    #[test]
    fn s9_4_1_agent_key_rsa_2048_jwk_and_pem() {
        let pair = RS256.generate_key_pair(2048).unwrap();
        let key = check_accepted(
            &pair.to_jwk_public_key(),
            pair.to_pem_public_key(),
            &["e", "kid", "kty", "n"],
        );
        assert_eq!(key.jwk["e"], "AQAB");
        // The §4.4.3 example shape ("use": "sig", "alg": "RS256") is accepted.
        let mut jwk = josekit_jwk(&pair.to_jwk_public_key());
        jwk.insert("use".to_owned(), json!("sig"));
        jwk.insert("alg".to_owned(), json!("RS256"));
        assert_eq!(
            parse_agent_public_key(&PublicKeyInput::Jwk(jwk)).unwrap(),
            key
        );
    }

    #[test]
    fn s9_4_1_rejects_other_curves() {
        let p384 = ES384.generate_key_pair().unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&p384.to_jwk_public_key())),
            "\"P-384\" is not allowed",
        );
        assert_refused(
            pem_input(p384.to_pem_public_key()),
            "\"P-384\" is not allowed",
        );
        let k1 = ES256K.generate_key_pair().unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&k1.to_jwk_public_key())),
            "\"secp256k1\" is not allowed",
        );
        assert_refused(
            pem_input(k1.to_pem_public_key()),
            "\"secp256k1\" is not allowed",
        );
        let ed448 = EdDSA.generate_key_pair(EdCurve::Ed448).unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&ed448.to_jwk_public_key())),
            "\"Ed448\" is not allowed",
        );
        assert_refused(
            pem_input(ed448.to_pem_public_key()),
            "\"Ed448\" is not allowed",
        );
        assert_refused(
            jwk_input(json!({"kty": "OKP", "crv": "X25519", "x": b64([9u8; 32])})),
            "\"X25519\" is not allowed",
        );
        // An EC JWK claiming P-256 with P-384-sized coordinates.
        let mut jwk = josekit_jwk(&p384.to_jwk_public_key());
        jwk.insert("crv".to_owned(), json!("P-256"));
        assert_refused(PublicKeyInput::Jwk(jwk), "must be 32 bytes");
        assert_refused(
            jwk_input(json!({"kty": "EC", "x": "AA", "y": "AA"})),
            "\"crv\" is missing",
        );
    }

    #[test]
    fn s9_4_1_rejects_small_rsa_and_other_exponents() {
        let small = RsaKeyPair::generate(1024).unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&small.to_jwk_public_key())),
            "1024 bits",
        );
        assert_refused(pem_input(small.to_pem_public_key()), "1024 bits");
        let pair = RS256.generate_key_pair(2048).unwrap();
        let base = josekit_jwk(&pair.to_jwk_public_key());
        for (e, needle) in [
            ("Aw", "must be 65537, found 3"),
            ("AQ", "must be 65537, found 1"),
            ("AQAAAQ", "must be 65537, found 16777217"),
            ("AAEAAQ", "leading zero"),
            ("", "non-empty"),
        ] {
            let mut jwk = base.clone();
            jwk.insert("e".to_owned(), json!(e));
            assert_refused(PublicKeyInput::Jwk(jwk), needle);
        }
        let n = URL_SAFE_NO_PAD.decode(base["n"].as_str().unwrap()).unwrap();
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        let mut jwk = base.clone();
        jwk.insert("n".to_owned(), json!(b64(&padded)));
        assert_refused(PublicKeyInput::Jwk(jwk), "leading zero");
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        let mut jwk = base.clone();
        jwk.insert("n".to_owned(), json!(b64(&even)));
        assert_refused(PublicKeyInput::Jwk(jwk), "even");
        let mut jwk = base.clone();
        jwk.insert("n".to_owned(), json!(b64(vec![0xffu8; 2049])));
        assert_refused(PublicKeyInput::Jwk(jwk), "at most 16384");
    }

    #[test]
    fn s9_4_1_rejects_symmetric_and_private_jwks() {
        assert_refused(
            jwk_input(json!({"kty": "oct", "k": b64([1u8; 32])})),
            "\"oct\"",
        );
        assert_refused(
            jwk_input(json!({"kty": "oct", "k": b64([1u8; 32]), "alg": "HS256"})),
            "cannot prove possession",
        );
        let ec = ES256.generate_key_pair().unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&ec.to_jwk_key_pair())),
            "private member \"d\"",
        );
        let rsa = RS256.generate_key_pair(2048).unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&rsa.to_jwk_key_pair())),
            "private member",
        );
        let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        assert_refused(
            PublicKeyInput::Jwk(josekit_jwk(&ed.to_jwk_key_pair())),
            "private member \"d\"",
        );
        for member in PRIVATE_MEMBERS {
            let mut jwk = josekit_jwk(&ec.to_jwk_public_key());
            jwk.insert(member.to_owned(), json!("AAAA"));
            assert_refused(
                PublicKeyInput::Jwk(jwk),
                &format!("private member \"{member}\""),
            );
        }
        assert_refused(
            jwk_input(json!({"kty": "RSA-PSS", "n": "AQAB", "e": "AQAB"})),
            "kty \"RSA-PSS\" is not allowed",
        );
        assert_refused(
            jwk_input(json!({"n": "AQAB", "e": "AQAB"})),
            "\"kty\" is missing",
        );
    }

    #[test]
    fn s9_4_1_rejects_bad_pem() {
        let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        let good = String::from_utf8(ed.to_pem_public_key()).unwrap();
        assert!(parse_agent_public_key(&PublicKeyInput::Pem(good.replace('\n', "\r\n"))).is_ok());
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        for (pem, needle) in [
            ("garbage".to_owned(), "not a PEM public key"),
            ("".to_owned(), "not a PEM public key"),
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
            (
                String::from_utf8(ed.to_pem_private_key()).unwrap(),
                "private key",
            ),
            (
                good.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
                "\"RSA PUBLIC KEY\" is not accepted",
            ),
            (
                good.replace("PUBLIC KEY", "CERTIFICATE"),
                "\"CERTIFICATE\" is not accepted",
            ),
        ] {
            assert_refused(PublicKeyInput::Pem(pem.clone()), needle);
        }
        // Text OpenSSL's own PEM reader would skip must not hide a key.
        for (pem, needle) in [
            (format!("garbage\n{good}"), "not a PEM public key"),
            (
                format!(
                    "{}{good}",
                    String::from_utf8(ed.to_pem_private_key()).unwrap()
                ),
                "private key",
            ),
            (
                String::from_utf8(
                    Rsa::generate(2048)
                        .unwrap()
                        .public_key_to_pem_pkcs1()
                        .unwrap(),
                )
                .unwrap(),
                "\"RSA PUBLIC KEY\" is not accepted",
            ),
        ] {
            assert_refused(PublicKeyInput::Pem(pem), needle);
        }
        // DER-level faults, rewrapped as PEM: OpenSSL takes trailing data and
        // non-minimal lengths, the canonical re-encoding check does not.
        let der = STANDARD.decode(&body).unwrap();
        assert_eq!(
            parse_agent_public_key(&wrap(&der)).unwrap(),
            parse_agent_public_key(&PublicKeyInput::Pem(good.clone())).unwrap()
        );
        let mut trailing = der.clone();
        trailing.push(0);
        assert_refused(wrap(&trailing), "trailing data");
        assert_refused(
            wrap(&der[..der.len() - 1]),
            "not a valid DER SubjectPublicKeyInfo",
        );
        let mut long_form = vec![0x30, 0x81, der[1]];
        long_form.extend_from_slice(&der[2..]);
        assert_refused(wrap(&long_form), "not the DER encoding");
        // Ed25519 with (forbidden, RFC 8410 §3) AlgorithmIdentifier parameters.
        let mut with_params = vec![
            0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00,
        ];
        with_params.extend_from_slice(&der[der.len() - 35..]);
        assert_eq!(with_params.len(), 46);
        assert_refused(wrap(&with_params), "SubjectPublicKeyInfo");
        // RSA: rsaEncryption without its NULL parameters, small exponent.
        let rsa = RS256.generate_key_pair(2048).unwrap();
        let rsa_der = pem_der(&rsa.to_pem_public_key());
        assert_eq!(rsa_der[4..8], [0x30, 0x0d, 0x06, 0x09]);
        assert_eq!(rsa_der[17..19], [0x05, 0x00]);
        let mut no_null = rsa_der[..17].to_vec();
        no_null.extend_from_slice(&rsa_der[19..]);
        no_null[3] -= 2;
        no_null[5] -= 2;
        assert_refused(wrap(&no_null), "SubjectPublicKeyInfo");
        let e3 = Rsa::generate_with_e(2048, &BigNum::from_u32(3).unwrap()).unwrap();
        assert_refused(
            pem_input(e3.public_key_to_pem().unwrap()),
            "must be 65537, found 3",
        );
        // Neither key agreement keys nor other key types.
        let x25519 = PKey::generate_x25519().unwrap();
        assert_refused(
            pem_input(x25519.public_key_to_pem().unwrap()),
            "key agreement keys",
        );
        let dsa = PKey::from_dsa(openssl::dsa::Dsa::generate(1024).unwrap()).unwrap();
        assert_refused(
            pem_input(dsa.public_key_to_pem().unwrap()),
            "key type \"dsaEncryption\" is not allowed",
        );
    }

    #[test]
    fn rfc5480_p256_pem_point_and_parameter_checks() {
        let ec = ES256.generate_key_pair().unwrap();
        let accepted = parse_agent_public_key(&pem_input(ec.to_pem_public_key())).unwrap();
        let ec_der = pem_der(&ec.to_pem_public_key());
        // 30 59 30 13 <OIDs> 03 42 00 04 || x || y
        assert_eq!(ec_der.len(), 91);
        assert_eq!(ec_der[23..27], [0x03, 0x42, 0x00, 0x04]);
        let (x, y) = (&ec_der[27..59], &ec_der[59..]);
        assert_eq!(accepted.jwk["x"], b64(x).as_str());
        assert_eq!(accepted.jwk["y"], b64(y).as_str());
        // Compressed point (02/03 || x).
        let mut compressed = ec_der[..27].to_vec();
        compressed[26] = 0x02 | (y[31] & 1);
        compressed.extend_from_slice(x);
        compressed[1] -= 32;
        compressed[24] -= 32;
        assert_refused(wrap(&compressed), "compressed");
        // Hybrid point (06/07 || x || y).
        let mut hybrid = ec_der.clone();
        hybrid[26] = 0x06 | (y[31] & 1);
        assert_refused(wrap(&hybrid), "compressed or hybrid");
        // Off the curve.
        let mut off = ec_der.clone();
        off[90] ^= 1;
        assert_refused(wrap(&off), "not a valid DER SubjectPublicKeyInfo");
        // The point at infinity (a single 00 octet).
        let mut infinity = ec_der[..27].to_vec();
        infinity[26] = 0x00;
        infinity[1] -= 64;
        infinity[24] -= 64;
        assert!(!refused(wrap(&infinity)).is_empty());
        // The same P-256 point with explicit domain parameters.
        let key = openssl::ec::EcKey::public_key_from_pem(&ec.to_pem_public_key()).unwrap();
        let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
        let explicit = EcKey::from_public_key(&group, key.public_key()).unwrap();
        let explicit = PKey::from_ec_key(explicit).unwrap();
        assert_refused(
            pem_input(explicit.public_key_to_pem().unwrap()),
            "explicit EC domain parameters",
        );
        // Re-encoded by OpenSSL from our (x, y): the very same key.
        let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        group.set_asn1_flag(Asn1Flag::NAMED_CURVE);
        let named = EcKey::from_public_key(&group, key.public_key()).unwrap();
        let named = PKey::from_ec_key(named).unwrap();
        assert_eq!(
            parse_agent_public_key(&pem_input(named.public_key_to_pem().unwrap())).unwrap(),
            accepted
        );
    }

    #[test]
    fn s9_4_1_rejects_malformed_coordinates_and_invalid_points() {
        let ec = ES256.generate_key_pair().unwrap();
        let base = josekit_jwk(&ec.to_jwk_public_key());
        let x = URL_SAFE_NO_PAD.decode(base["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(base["y"].as_str().unwrap()).unwrap();
        let with = |name: &str, value: Value| {
            let mut jwk = base.clone();
            jwk.insert(name.to_owned(), value);
            PublicKeyInput::Jwk(jwk)
        };
        assert_refused(with("x", json!(b64(&x[1..]))), "must be 32 bytes");
        assert_refused(
            with("x", json!(format!("{}=", base["x"].as_str().unwrap()))),
            "base64url",
        );
        assert_refused(
            with("x", json!(STANDARD.encode(&x).replace('=', "") + "+/")),
            "base64url",
        );
        assert_refused(with("x", json!(12)), "\"x\" must be a string");
        let mut y2 = y.clone();
        y2[31] ^= 1;
        assert_refused(with("y", json!(b64(&y2))), "not a point on P-256");
        assert_refused(with("y", json!(b64([0xffu8; 32]))), "not a point on P-256");
        assert_refused(with("use", json!("enc")), "\"use\" must be \"sig\"");
        assert_refused(with("alg", json!("HS256")), "does not fit");
        assert_refused(with("alg", json!("none")), "does not fit");
        assert_refused(with("alg", json!("EdDSA")), "does not fit");
        assert_refused(with("key_ops", json!(["encrypt"])), "key_ops");
        assert!(parse_agent_public_key(&with("alg", json!("ES256"))).is_ok());

        // Ed25519: wrong length, non-canonical, not on the curve, small order.
        let okp = |x: &[u8]| jwk_input(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}));
        assert_refused(okp(&[1u8; 31]), "must be 32 bytes");
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert_refused(okp(&p), "non-canonical");
        assert_refused(
            okp(
                &hex::decode("0100000000000000000000000000000000000000000000000000000000000000")
                    .unwrap(),
            ),
            "small-order",
        );
    }

    /// The agent-key inputs (JWK and PEM) for a 32-byte Ed25519 encoding.
    fn ed25519_inputs(x: &[u8; 32]) -> [PublicKeyInput; 2] {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(x);
        [
            jwk_input(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)})),
            wrap(&der),
        ]
    }

    fn ed25519_accepted(x: &[u8; 32]) {
        for input in ed25519_inputs(x) {
            let key = parse_agent_public_key(&input)
                .unwrap_or_else(|e| panic!("{} refused: {e}", hex::encode(x)));
            assert_eq!(key.jwk["x"], b64(x).as_str());
        }
    }

    fn ed25519_refused(x: &[u8; 32], needle: &str) {
        for input in ed25519_inputs(x) {
            assert_refused(input, needle);
        }
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc8032_s5_1_3_ed25519_point_decoding() {
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
        // Non-canonical y (y = p, p + 1, ..., 2^255 - 1): never accepted; y = p
        // (= 0, a point) and y = p + 1 (= 1, the neutral element) are caught
        // as non-canonical rather than as small-order.
        for k in 0u8..19 {
            let mut y = [0xffu8; 32];
            y[0] = 0xed + k;
            y[31] = 0x7f;
            for sign in [0u8, 0x80] {
                let mut e = y;
                e[31] |= sign;
                let reason = refused(ed25519_inputs(&e)[0].clone());
                assert!(
                    reason.contains("non-canonical") || reason.contains("not the encoding"),
                    "{reason}"
                );
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
        // About half of all y have a point.
        let valid = (2u8..=201)
            .filter(|y| {
                let mut e = [0u8; 32];
                e[0] = *y;
                parse_agent_public_key(&ed25519_inputs(&e)[0]).is_ok()
            })
            .count();
        assert!((60..=140).contains(&valid), "{valid}");
        // Every freshly generated key is accepted, and so is its negation.
        for _ in 0..32 {
            let pair = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
            let x = josekit_jwk(&pair.to_jwk_public_key())["x"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
            ed25519_accepted(&bytes);
            bytes[31] ^= 0x80;
            ed25519_accepted(&bytes);
        }
    }
}
