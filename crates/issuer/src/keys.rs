//! The issuer's signing keys ([`KeyRing`]), its JWK Set, signing and
//! verification of its own compact JWS, and agent proof-of-possession keys
//! ([`parse_agent_public_key`]) — all built on `ajwt-jose`, the project's
//! only JOSE code: this module has no key parsing, signature or algorithm
//! code of its own, only the ring and the reading of legacy key files.
//!
//! The issuer signs its tokens with the current key of the ring (I-90), of any
//! algorithm of the one algorithm table ([`ajwt_jose::Alg::ALL`]: ES256,
//! EdDSA, Ed25519 (RFC 9864 §2.2, the fully-specified name: tokens then carry
//! `alg: "Ed25519"`), RS256, PS256; interpretation I-44, I-45), publishes the
//! public halves as an RFC 7517 JWK Set whose `alg` member is the exact name
//! the key signs under, and verifies its own compact JWS (RFC 7515 §7.1)
//! following RFC 8725 through [`ajwt_jose::CompactJws`]: the `alg` must be
//! one of the ring's algorithms and the algorithm of the key named by `kid`
//! (§3.1, no `none`, no HMAC, no alg/key confusion), and the `typ` is
//! checked explicitly (§3.11). Header and payload are parsed strictly:
//! duplicate member names are refused.
//!
//! Agent keys for the `cnf.jwk` claim (§4.4.2, RFC 7800; registration §6.2.3
//! step 2; proof of possession §9.2.2) come as a JWK or a PEM
//! SubjectPublicKeyInfo and are read by [`ajwt_jose::PublicKey::from_jwk`] and
//! [`ajwt_jose::PublicKey::from_spki_pem`], the very rules the verifier
//! applies (§9.4.1 key types, point and ROCA checks, and a JWK `alg` only
//! from [`ajwt_jose::Alg::for_key_type`]: an agent can no longer register a
//! key under `RS384` that no verifier accepts). Keys are identified by their
//! RFC 7638 JWK thumbprint, which is also the `kid` of the issuer's keys.
//!
//! Storage (I-110): the keys live in the issuer's store
//! ([`crate::store::Store::signing_keys`], one record per key with its
//! PKCS#8 PEM private key, sealed at rest by the store, I-112), so that every
//! replica on one database signs and verifies with the same keys. The ring
//! itself is pure: [`KeyRing::from_stored`] builds the snapshot from the
//! records, [`KeyRing::plan_rotation`] computes the [`KeyChange`] of a
//! rotation (publish-then-sign), and [`crate::key_store`] applies changes to
//! the store and reloads. A retired key loses its private key in the store;
//! its public record stays for `ajwt keys list`. [`KeyRing::generate`] makes
//! an in-memory ring (tests), rotated in memory only.
//!
//! Legacy key files (format 1, before I-110, read once by
//! [`LegacyKeyFiles`] and imported into the store, then deleted): every key
//! was one file `<data_dir>/signing-keys/<kid>.json` (directory mode 0700,
//! file mode 0600) holding
//! `{"kid": "<RFC 7638 thumbprint>", "alg": "ES256" | "EdDSA" | "Ed25519" |
//! "RS256" | "PS256", "created_at": <Unix seconds>, "private_key_pem": "<PKCS#8 PEM>"}`.
//! `alg` is the JWS name the key signs under (an Ed25519 key may say `EdDSA`
//! or `Ed25519`; files written before RFC 9864 names existed say `EdDSA` and
//! keep signing as `EdDSA`). Optional members (I-90): `"activates_at"` (when
//! the key starts signing; absent: `created_at`) and `"retires_at"` (when it
//! leaves the JWK Set; absent: derived as the successor's activation + the
//! policy's `retire_after`). Files whose name starts with `.` or does not
//! end in `.json` are ignored; public records of retired keys were kept
//! under `<data_dir>/signing-keys-retired/`.
//!
//! Order: the key with the greatest `activates_at` that has come signs
//! (ties: greater `created_at`, then `kid`); keys still to activate are
//! published (state next), older ones verify until they retire.

use std::fmt;
use std::fs;
#[cfg(test)]
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ajwt_jose::{Alg, CompactJws, JoseError, KeyType, PublicKey, SigningKey};
use ajwt_json::ObjectError;
use ajwt_protocol::registration::PublicKeyInput;
use serde_json::{Map, Value};

use crate::store::{KeyChange, StoreError, StoredSigningKey};

/// Signing algorithms offered for the issuer's own keys: every algorithm of
/// the one table of `ajwt-jose` (`"ES256"`, `"EdDSA"`, `"Ed25519"`, `"RS256"`,
/// `"PS256"`; `FromStr` takes exactly these names).
pub use ajwt_jose::Alg as SigningAlgorithm;

/// Name of the legacy key directory inside the data directory (imported
/// into the store and deleted on the first start after I-110).
pub const KEY_DIR: &str = "signing-keys";

/// How many keys besides the signing key the ring keeps (I-70): a rotation
/// beyond this retires the oldest key (dropped from the JWK Set, its file
/// deleted), and loading a key directory with more keys retires the oldest
/// extra ones. The signing key is never retired.
pub const MAX_PREVIOUS_KEYS: usize = 4;

/// Longest token [`KeyRing::verify`] decodes (the default request body limit).
const MAX_TOKEN_LEN: usize = 1 << 20;

/// Failures around keys: files, generation, signing, agent keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// Not one of the names of [`ajwt_jose::Alg::ALL`].
    #[error(
        "unknown signing algorithm {0:?} (expected one of ES256, EdDSA, Ed25519, RS256, PS256)"
    )]
    UnknownAlgorithm(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The store holds no live signing key ([`KeyRing::from_stored`]).
    #[error("the store holds no signing key")]
    NoStoredKey,
    /// A key record of the store cannot be used (I-110).
    #[error("bad signing key {kid} in the store: {reason}")]
    BadStoredKey {
        /// The record's `kid`.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed while reading or changing the keys.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn bad_stored(kid: &str, reason: impl Into<String>) -> KeyError {
    KeyError::BadStoredKey {
        kid: kid.to_owned(),
        reason: reason.into(),
    }
}

fn unsupported(reason: impl Into<String>) -> KeyError {
    KeyError::Unsupported {
        reason: reason.into(),
    }
}

fn generation(e: JoseError) -> KeyError {
    KeyError::Generation(e.to_string())
}

/// Why a compact JWS was refused by [`KeyRing::verify`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS with a strictly parsed JSON object header carrying
    /// string `alg`, `kid` and `typ`, without `crit`, `enc`, nested `cty` or
    /// `b64` (RFC 7515 §7.1, §4.1.11; RFC 8725 §3).
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
    /// RFC 7638 thumbprint of the public key.
    kid: String,
    created_at: u64,
    /// When the key starts signing (I-90; format-1 files: `created_at`).
    activates_at: u64,
    /// When the key leaves the JWK Set (I-90): stored once a successor is
    /// scheduled, otherwise derived from the successor's activation.
    retires_at: Option<u64>,
    key: SigningKey,
}

impl RingKey {
    /// A key from a PKCS#8 PEM private key of `alg` (its public half passes
    /// the same checks as any public key, [`PublicKey::from_jwk`]).
    fn from_pem(alg: Alg, pem: &[u8], created_at: u64) -> Result<RingKey, JoseError> {
        let key = SigningKey::from_pkcs8_pem(pem, alg)?;
        Ok(RingKey {
            kid: key.thumbprint(),
            created_at,
            activates_at: created_at,
            retires_at: None,
            key,
        })
    }

    /// A fresh key of `alg`.
    fn generate(alg: Alg, created_at: u64) -> Result<RingKey, KeyError> {
        let key = SigningKey::generate(alg).map_err(generation)?;
        Ok(RingKey {
            kid: key.thumbprint(),
            created_at,
            activates_at: created_at,
            retires_at: None,
            key,
        })
    }

    /// A key from its store record (live: `pem` is its private key); the
    /// `kid` must be the thumbprint of the key (I-110).
    fn from_stored(record: &StoredSigningKey, pem: &str) -> Result<RingKey, KeyError> {
        let alg: Alg = record
            .alg
            .parse()
            .map_err(|e: JoseError| bad_stored(&record.kid, format!("alg: {e}")))?;
        let mut key = RingKey::from_pem(alg, pem.as_bytes(), record.created_at).map_err(|e| {
            bad_stored(
                &record.kid,
                format!("private_key_pem is not a usable {alg} key: {e}"),
            )
        })?;
        if key.kid != record.kid {
            return Err(bad_stored(
                &record.kid,
                format!(
                    "kid is not the RFC 7638 thumbprint of the key ({})",
                    key.kid
                ),
            ));
        }
        key.activates_at = record.activates_at;
        key.retires_at = record.retires_at;
        Ok(key)
    }

    /// The store record of this key, with its private key as PKCS#8 PEM.
    fn to_stored(&self) -> Result<StoredSigningKey, KeyError> {
        Ok(StoredSigningKey {
            kid: self.kid.clone(),
            alg: self.alg().as_str().to_owned(),
            created_at: self.created_at,
            activates_at: self.activates_at,
            retires_at: self.retires_at,
            retired_at: None,
            private_key_pem: Some(self.key.to_pkcs8_pem().map_err(generation)?),
        })
    }

    fn alg(&self) -> Alg {
        self.key.alg()
    }

    /// The order in which keys take over signing: activation time, then
    /// creation time, then `kid` (deterministic).
    fn order(&self) -> (u64, u64, &str) {
        (self.activates_at, self.created_at, self.kid.as_str())
    }

    /// The published JWK: public members, `kid`, `alg` (the exact name the
    /// key signs under, so `"Ed25519"` for an Ed25519-named key: RFC 7517
    /// §4.4, and what JOSE libraries match the header `alg` against) and
    /// `use: "sig"`.
    fn public_jwk(&self) -> Map<String, Value> {
        let mut jwk = self.key.public_key().public_members();
        jwk.insert("kid".to_owned(), Value::String(self.kid.clone()));
        jwk.insert(
            "alg".to_owned(),
            Value::String(self.alg().as_str().to_owned()),
        );
        jwk.insert("use".to_owned(), Value::String("sig".to_owned()));
        jwk
    }

    fn info(&self, state: KeyState) -> KeyInfo {
        KeyInfo {
            kid: self.kid.clone(),
            alg: self.alg(),
            state,
            created_at: self.created_at,
            activates_at: self.activates_at,
            retires_at: self.retires_at,
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How many keys may wait to start signing (I-90): a rotation while a key is
/// pending returns the pending key instead of adding another.
pub const MAX_NEXT_KEYS: usize = 1;

/// How many retired-key records (public metadata only, no private key) are
/// kept for `ajwt keys list` (I-90); older records are deleted (the store's
/// bound, [`crate::store::MAX_RETIRED_KEY_RECORDS`]).
pub const MAX_RETIRED_RECORDS: usize = crate::store::MAX_RETIRED_KEY_RECORDS;

/// Legacy directory, next to [`KEY_DIR`], of the records of retired keys.
pub const RETIRED_DIR: &str = "signing-keys-retired";

/// When keys of a ring are published, used and retired (publish-then-sign
/// rotation, I-90).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Seconds between publishing a new key in the JWK Set and signing with
    /// it: at least the JWKS `max-age` the issuer advertises, so every
    /// verifier that honours it has the key before the first token with it.
    pub publish_delay: u64,
    /// Seconds a key stays published after its successor starts signing:
    /// the longest lifetime of a token it signed plus a leeway.
    pub retire_after: u64,
}

impl Default for RotationPolicy {
    /// Immediate rotation, keys kept until the bound retires them (the
    /// behaviour of in-memory rings).
    fn default() -> Self {
        RotationPolicy {
            publish_delay: 0,
            retire_after: u64::MAX,
        }
    }
}

/// Where a key is in its life (I-90).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not signing yet (`activates_at` in the future).
    Next,
    /// Published and signing.
    Current,
    /// Published, no longer signing; its tokens may still be live.
    Retiring,
    /// No longer published; its private key is deleted.
    Retired,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        })
    }
}

/// A key's public description: `ajwt keys list`, the rotation response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// The JWS algorithm it signs under.
    #[serde(serialize_with = "serialize_alg")]
    pub alg: Alg,
    /// Its state at the time asked.
    pub state: KeyState,
    /// Creation time (Unix seconds).
    pub created_at: u64,
    /// When it starts (started) signing.
    pub activates_at: u64,
    /// When it leaves (left) the JWK Set; `None` while no successor is scheduled.
    pub retires_at: Option<u64>,
}

fn serialize_alg<S: serde::Serializer>(alg: &Alg, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(alg.as_str())
}

/// What a rotation did ([`KeyRing::rotate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new key (or the key that was already pending).
    pub key: KeyInfo,
    /// The key signing when the rotation was asked for.
    pub previous_kid: String,
    /// When the key signing before the new one leaves the JWK Set.
    pub previous_retires_at: Option<u64>,
    /// `true` when a key was already pending and no key was added.
    pub already_pending: bool,
}

/// A rotation computed by [`KeyRing::plan_rotation`].
#[derive(Debug, Clone)]
pub struct PlannedRotation {
    /// The ring after the rotation (in memory).
    pub ring: KeyRing,
    /// What the rotation does.
    pub rotation: Rotation,
    /// The change of the stored key set; `None` when a key was already
    /// pending and nothing changes.
    pub change: Option<KeyChange>,
}

/// The issuer's signing keys: one signs, all published keys verify.
///
/// A ring is an immutable snapshot taken at a time (`as_of`); the key that
/// signs is the last one whose `activates_at` has come, keys whose
/// `activates_at` is still ahead are published but do not sign, and keys
/// whose `retires_at` has passed are gone (I-90). [`KeyRing::at`] re-takes
/// the snapshot later, [`KeyRing::plan_rotation`] computes a rotation, and
/// the issuer swaps rings in at run time (`Issuer::rotate_keys`), reloading
/// them from the store (I-110).
#[derive(Clone)]
pub struct KeyRing {
    current: RingKey,
    /// Older keys still published (retiring), newest first.
    older: Vec<RingKey>,
    /// Published keys not signing yet, soonest first.
    next: Vec<RingKey>,
    policy: RotationPolicy,
    /// The time (Unix seconds) this snapshot was taken at.
    as_of: u64,
    /// Built from the store ([`KeyRing::from_stored`]); `false`: in memory only.
    stored: bool,
    /// Public records of retired keys from the store, oldest first (I-90).
    retired: Vec<KeyInfo>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .keys()
            .map(|k| format!("{} ({})", k.kid, k.alg()))
            .collect();
        f.debug_struct("KeyRing")
            .field("current", &self.current.kid)
            .field("keys", &keys)
            .finish()
    }
}

impl KeyRing {
    /// The ring of the keys stored in the issuer's store (I-110) as of
    /// `now`, under `policy`: records with a private key become keys of the
    /// ring, records without one (retired) are kept for
    /// [`KeyRing::describe`]. Also returns the keys due for retirement as of
    /// `now` (their `retires_at` passed, or beyond [`MAX_PREVIOUS_KEYS`])
    /// with the time, for the caller to apply to the store
    /// ([`KeyChange::retire`]); the ring already leaves them out. A store
    /// without a live key is [`KeyError::NoStoredKey`]; a record whose
    /// private key is not a key of its `alg` or whose `kid` is not its RFC
    /// 7638 thumbprint is [`KeyError::BadStoredKey`]. Blocking (PEM parsing).
    pub fn from_stored(
        records: &[StoredSigningKey],
        policy: RotationPolicy,
        now: u64,
    ) -> Result<(KeyRing, Vec<(String, u64)>), KeyError> {
        KeyRing::from_stored_after(records, policy, now, None)
    }

    /// [`KeyRing::from_stored`] reusing the parsed keys of `previous` (the
    /// ring being reloaded) for the records of the same `kid`: the `kid` is
    /// the thumbprint of the public key, so the key is the same; only its
    /// times are taken from the record. Reloading every few seconds then
    /// parses only new keys.
    pub fn from_stored_after(
        records: &[StoredSigningKey],
        policy: RotationPolicy,
        now: u64,
        previous: Option<&KeyRing>,
    ) -> Result<(KeyRing, Vec<(String, u64)>), KeyError> {
        let mut live = Vec::new();
        let mut retired = Vec::new();
        for record in records {
            let known = previous.and_then(|p| p.keys().find(|k| k.kid == record.kid));
            match (&record.private_key_pem, known) {
                (Some(_), Some(key)) if key.alg().as_str() == record.alg => {
                    let mut key = key.clone();
                    key.created_at = record.created_at;
                    key.activates_at = record.activates_at;
                    key.retires_at = record.retires_at;
                    live.push(key);
                }
                (Some(pem), _) => live.push(RingKey::from_stored(record, pem)?),
                (None, _) => {
                    let alg: Alg = record
                        .alg
                        .parse()
                        .map_err(|e: JoseError| bad_stored(&record.kid, format!("alg: {e}")))?;
                    let retired_at = record.retired_at.unwrap_or(now);
                    retired.push(KeyInfo {
                        kid: record.kid.clone(),
                        alg,
                        state: KeyState::Retired,
                        created_at: record.created_at,
                        activates_at: record.activates_at,
                        retires_at: Some(
                            record.retires_at.map_or(retired_at, |t| t.min(retired_at)),
                        ),
                    });
                }
            }
        }
        if live.is_empty() {
            return Err(KeyError::NoStoredKey);
        }
        let (mut ring, gone) = KeyRing::arrange(live, policy, now)?;
        for key in &gone {
            let mut info = key.info(KeyState::Retired);
            info.retires_at = Some(key.retires_at.map_or(now, |t| t.min(now)));
            retired.push(info);
        }
        retired.sort_by_key(|r| (r.retires_at, r.activates_at));
        let excess = retired.len().saturating_sub(MAX_RETIRED_RECORDS);
        retired.drain(..excess);
        ring.stored = true;
        ring.retired = retired;
        let retire = gone.into_iter().map(|k| (k.kid, now)).collect();
        Ok((ring, retire))
    }

    /// Whether the ring was built from the store ([`KeyRing::from_stored`]):
    /// its changes are applied to the store ([`crate::key_store`]); a ring
    /// made by [`KeyRing::generate`] lives in memory only.
    pub fn is_stored(&self) -> bool {
        self.stored
    }

    /// The store record of every published key, with its private key
    /// (PKCS#8 PEM), oldest first: what [`KeyRing::generate`] made, for a
    /// store that should hold it (tests, embedding).
    pub fn to_stored(&self) -> Result<Vec<StoredSigningKey>, KeyError> {
        let mut keys: Vec<&RingKey> = self.keys().collect();
        keys.sort_by(|a, b| a.order().cmp(&b.order()));
        keys.into_iter().map(RingKey::to_stored).collect()
    }

    /// The store record of a fresh key of `alg` created and activated at
    /// `now` (the first key of an empty store, I-110). Blocking.
    pub fn generate_stored(alg: SigningAlgorithm, now: u64) -> Result<StoredSigningKey, KeyError> {
        RingKey::generate(alg, now)?.to_stored()
    }

    /// An in-memory ring with one fresh key (tests, benchmarks).
    pub fn generate(alg: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let now = unix_now();
        let (ring, _) = KeyRing::arrange(
            vec![RingKey::generate(alg, now)?],
            RotationPolicy::default(),
            now,
        )?;
        Ok(ring)
    }

    /// The same keys under another policy (the issuer applies its
    /// configuration to a ring it is given).
    pub fn with_policy(&self, policy: RotationPolicy) -> KeyRing {
        let mut ring = self.clone();
        ring.policy = policy;
        ring.at(self.as_of)
    }

    /// The rotation policy.
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// A new ring whose current key is a freshly generated key of `alg`
    /// ([`KeyRing::rotate`] now, ignoring the publish delay of the policy:
    /// the new key signs at once). `self` is unchanged; nothing is stored.
    /// Blocking.
    pub fn rotated(&self, alg: SigningAlgorithm) -> Result<KeyRing, KeyError> {
        let mut immediate = self.clone();
        immediate.policy.publish_delay = 0;
        let (ring, _) = immediate.rotate(alg, unix_now(), 0)?;
        Ok(ring.with_policy(self.policy))
    }

    /// [`KeyRing::plan_rotation`] applied in memory: the rotated ring and
    /// what the rotation did. Nothing is stored (a stored ring is rotated
    /// through the store by [`crate::key_store::rotate`]). `self` is
    /// unchanged. Blocking (key generation).
    pub fn rotate(
        &self,
        alg: SigningAlgorithm,
        now: u64,
        extra_delay: u64,
    ) -> Result<(KeyRing, Rotation), KeyError> {
        let plan = self.plan_rotation(alg, now, extra_delay)?;
        Ok((plan.ring, plan.rotation))
    }

    /// Plans a publish-then-sign rotation (I-90) as of `now`: a fresh key of
    /// `alg` that starts signing `publish_delay + extra_delay` seconds from
    /// now, so verifiers honouring the JWKS `max-age` fetch it before they
    /// see a token signed with it; the key signing until then gets
    /// `retires_at` = the new key's activation + `retire_after` (it stays
    /// published until every token it signed has expired). Returns the
    /// rotated ring and, for a stored ring, the [`KeyChange`] to apply: the
    /// new key (private key as PKCS#8 PEM), inserted only if no other key is
    /// pending by then (`insert_unless_pending_after = now`, I-110), the
    /// predecessor's `retires_at`, and the keys retired (by time, or early
    /// beyond [`MAX_PREVIOUS_KEYS`], I-70). When a key is already pending
    /// ([`MAX_NEXT_KEYS`]) nothing is planned and that key is returned
    /// (`already_pending`, `change` `None`). `self` is unchanged. Blocking.
    pub fn plan_rotation(
        &self,
        alg: SigningAlgorithm,
        now: u64,
        extra_delay: u64,
    ) -> Result<PlannedRotation, KeyError> {
        let (mut ring, mut retired) =
            KeyRing::arrange(self.keys().cloned().collect(), self.policy, now)?;
        ring.stored = self.stored;
        ring.retired = self.retired.clone();
        let previous_kid = ring.current.kid.clone();
        if ring.next.len() >= MAX_NEXT_KEYS {
            if let Some(pending) = ring.next.last() {
                let previous_retires_at = ring
                    .next
                    .iter()
                    .rev()
                    .nth(1)
                    .unwrap_or(&ring.current)
                    .retires_at;
                let rotation = Rotation {
                    key: pending.info(KeyState::Next),
                    previous_kid,
                    previous_retires_at,
                    already_pending: true,
                };
                return Ok(PlannedRotation {
                    ring,
                    rotation,
                    change: None,
                });
            }
        }
        let latest = ring.next.last().unwrap_or(&ring.current).clone();
        // `now` is a whole second that began up to a second ago: a delay is
        // rounded up so the key is published for at least the delay (I-90).
        let delay = ring.policy.publish_delay.saturating_add(extra_delay);
        let activates_at = now
            .saturating_add(delay)
            .saturating_add(u64::from(delay > 0))
            .max(latest.activates_at);
        let created_at = now.max(latest.created_at.saturating_add(1));
        let mut predecessor = latest;
        let previous_retires_at = activates_at.saturating_add(ring.policy.retire_after);
        predecessor.retires_at =
            (ring.policy.retire_after != u64::MAX).then_some(previous_retires_at);
        let mut key = RingKey::generate(alg, created_at)?;
        key.activates_at = activates_at;
        let info = key.info(if activates_at > now {
            KeyState::Next
        } else {
            KeyState::Current
        });
        let insert = key.to_stored()?;
        let mut keys: Vec<RingKey> = ring
            .keys()
            .filter(|k| k.kid != predecessor.kid)
            .cloned()
            .collect();
        keys.push(predecessor.clone());
        keys.push(key);
        let (mut rotated, more) = KeyRing::arrange(keys, ring.policy, now)?;
        rotated.stored = ring.stored;
        rotated.retired = ring.retired;
        retired.extend(more);
        let change = KeyChange {
            insert: Some(insert),
            insert_unless_pending_after: Some(now),
            set_retires_at: predecessor
                .retires_at
                .map(|t| (predecessor.kid.clone(), t))
                .into_iter()
                .collect(),
            retire: retired.into_iter().map(|k| (k.kid, now)).collect(),
        };
        let rotation = Rotation {
            key: info,
            previous_kid,
            previous_retires_at: predecessor.retires_at,
            already_pending: false,
        };
        Ok(PlannedRotation {
            ring: rotated,
            rotation,
            change: Some(change),
        })
    }

    /// The ring as of `now`: pending keys whose time has come sign, keys
    /// whose `retires_at` has passed are dropped (in memory; the store
    /// retires them at the next reload, [`crate::key_store::reload`]).
    pub fn at(&self, now: u64) -> KeyRing {
        let keys: Vec<RingKey> = self.keys().cloned().collect();
        match KeyRing::arrange(keys, self.policy, now) {
            Ok((mut ring, _)) => {
                ring.stored = self.stored;
                ring.retired = self.retired.clone();
                ring
            }
            // Unreachable: `keys` is never empty.
            Err(_) => self.clone(),
        }
    }

    /// The next time (Unix seconds) the snapshot changes: a pending key
    /// starts signing or a key retires.
    pub fn next_change(&self) -> Option<u64> {
        self.next
            .iter()
            .map(|k| k.activates_at)
            .chain(self.keys().filter_map(|k| k.retires_at))
            .filter(|t| *t > self.as_of)
            .min()
    }

    /// Whether the snapshot is out of date at `now` ([`KeyRing::at`] would change it).
    pub fn is_stale(&self, now: u64) -> bool {
        self.next_change().is_some_and(|t| now >= t)
    }

    /// Every key with its state as of the snapshot, in signing order
    /// (oldest first), after the records of retired keys of a stored ring.
    pub fn describe(&self) -> Vec<KeyInfo> {
        let mut out = self.retired.clone();
        out.extend(self.older.iter().rev().map(|k| k.info(KeyState::Retiring)));
        out.push(self.current.info(KeyState::Current));
        out.extend(self.next.iter().map(|k| k.info(KeyState::Next)));
        out
    }

    /// Sorts `keys` into an in-memory ring as of `now`; returns it and the
    /// keys retired (by time, or early by [`MAX_PREVIOUS_KEYS`]).
    fn arrange(
        mut keys: Vec<RingKey>,
        policy: RotationPolicy,
        now: u64,
    ) -> Result<(KeyRing, Vec<RingKey>), KeyError> {
        keys.sort_by(|a, b| a.order().cmp(&b.order()));
        keys.dedup_by(|a, b| a.kid == b.kid);
        // A key without a stored retirement time retires `retire_after`
        // after its successor starts signing (imported format-1 files, I-90).
        for i in 1..keys.len() {
            let successor = keys[i].activates_at;
            let key = &mut keys[i - 1];
            if key.retires_at.is_none() && policy.retire_after != u64::MAX {
                key.retires_at = Some(successor.saturating_add(policy.retire_after));
            }
        }
        let (mut gone, mut live): (Vec<RingKey>, Vec<RingKey>) = keys
            .into_iter()
            .partition(|k| k.retires_at.is_some_and(|t| t <= now));
        if live.is_empty() {
            // Never without a signing key: keep the last one.
            let last = gone
                .pop()
                .ok_or_else(|| KeyError::Generation("no signing key".to_owned()))?;
            live.push(last);
        }
        let (mut active, pending): (Vec<RingKey>, Vec<RingKey>) =
            live.into_iter().partition(|k| k.activates_at <= now);
        let mut next = pending;
        let current = match active.pop() {
            Some(k) => k,
            // Every key is pending (the clock went back): the soonest signs.
            None => next.remove(0),
        };
        active.reverse();
        if active.len() > MAX_PREVIOUS_KEYS {
            gone.extend(active.split_off(MAX_PREVIOUS_KEYS));
        }
        next.truncate(MAX_NEXT_KEYS + 1);
        Ok((
            KeyRing {
                current,
                older: active,
                next,
                policy,
                as_of: now,
                stored: false,
                retired: Vec::new(),
            },
            gone,
        ))
    }

    /// The `kid` of every published key: the signing key first, then the
    /// pending keys, then the older keys, newest first.
    pub fn kids(&self) -> Vec<String> {
        self.keys().map(|k| k.kid.clone()).collect()
    }

    /// Every published key: current, next, older.
    fn keys(&self) -> impl Iterator<Item = &RingKey> {
        std::iter::once(&self.current)
            .chain(self.next.iter())
            .chain(self.older.iter())
    }

    /// The `kid` of the key that signs (its RFC 7638 thumbprint).
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// The algorithm of the key that signs.
    pub fn current_alg(&self) -> SigningAlgorithm {
        self.current.alg()
    }

    /// When the signing key started signing (Unix seconds).
    pub fn current_activated_at(&self) -> u64 {
        self.current.activates_at
    }

    /// Whether a published key waits to start signing.
    pub fn has_pending(&self) -> bool {
        !self.next.is_empty()
    }

    /// RFC 7517 JWK Set of every published key (signing key first, then
    /// pending keys, then older keys): each with kty/crv/x/y/n/e as
    /// applicable, `kid`, `alg` (the name its tokens carry), `use: "sig"`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys().map(|k| Value::Object(k.public_jwk())).collect();
        let mut set = Map::new();
        set.insert("keys".to_owned(), Value::Array(keys));
        Value::Object(set)
    }
    /// Compact JWS over `claims` with protected header
    /// `{"alg", "kid", "typ": typ}` signed by the current key.
    pub fn sign(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Signing(e.to_string()))?;
        self.sign_payload(typ, &payload)
    }

    /// Compact JWS over the payload bytes `payload` (the caller serialized
    /// the claims, e.g. in their RFC 8785 form so that their hash is the
    /// payload's, I-101) with protected header `{"alg", "kid", "typ": typ}`
    /// signed by the current key. The header is written straight from its
    /// three members (no map, issue 15).
    pub fn sign_payload(&self, typ: &str, payload: &[u8]) -> Result<String, KeyError> {
        #[derive(serde::Serialize)]
        struct Header<'a> {
            alg: &'a str,
            kid: &'a str,
            typ: &'a str,
        }
        let key = &self.current;
        let header = serde_json::to_vec(&Header {
            alg: key.alg().as_str(),
            kid: &key.kid,
            typ,
        })
        .map_err(|e| KeyError::Signing(e.to_string()))?;
        key.key
            .sign_raw(&header, payload)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }

    /// Verifies a compact JWS made by this ring: [`CompactJws::parse`]
    /// (exactly 3 canonical base64url parts; header parsed strictly, no
    /// duplicate members, no `crit`/`enc`/`b64`/nested `cty`; `alg` of the
    /// one table, never `none` or HMAC); `alg` must be one of the ring's
    /// algorithms and equal the alg of the key named by `kid` (required);
    /// `typ` must equal `expected_typ` (case-insensitive, `application/<typ>`
    /// accepted, RFC 8725 §3.11); signature valid; payload a JSON object
    /// without duplicate claims. No time checks here.
    pub fn verify(
        &self,
        token: &str,
        expected_typ: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        self.verify_with_kid(token, expected_typ)
            .map(|(claims, _)| claims)
    }

    /// Whether the key `kid` is published by this snapshot (signing,
    /// pending or retiring): a token it verified still verifies.
    pub fn publishes(&self, kid: &str) -> bool {
        self.keys().any(|k| k.kid == kid)
    }

    /// [`KeyRing::verify`], also returning the `kid` of the key that
    /// verified the token (the client-token cache forgets a token when that
    /// key leaves the ring, I-145).
    pub fn verify_with_kid(
        &self,
        token: &str,
        expected_typ: &str,
    ) -> Result<(Map<String, Value>, String), VerifyError> {
        let jws = CompactJws::parse(token, MAX_TOKEN_LEN).map_err(|e| match e {
            JoseError::UnsupportedAlgorithm(alg) => VerifyError::UnsupportedAlgorithm(alg),
            _ => VerifyError::Malformed,
        })?;
        let alg = jws.alg;
        if !self.keys().any(|k| k.alg() == alg) {
            return Err(VerifyError::UnsupportedAlgorithm(alg.as_str().to_owned()));
        }
        let kid = jws.kid.as_deref().ok_or(VerifyError::Malformed)?;
        let key = self
            .keys()
            .find(|k| k.kid == kid)
            .ok_or_else(|| VerifyError::UnknownKid(kid.to_owned()))?;
        if key.alg() != alg {
            return Err(VerifyError::UnsupportedAlgorithm(alg.as_str().to_owned()));
        }
        if !ajwt_jose::typ_matches(jws.typ.as_deref(), expected_typ) {
            return Err(VerifyError::WrongType {
                expected: expected_typ.to_owned(),
                found: jws.typ.clone(),
            });
        }
        key.key
            .public_key()
            .verify(alg, jws.signing_input().as_bytes(), jws.signature())
            .map_err(|_| VerifyError::BadSignature)?;
        let claims = ajwt_json::parse_object(&jws.payload).map_err(|e| match e {
            ObjectError::NotAnObject { .. } => {
                VerifyError::BadPayload("the payload is not a JSON object".to_owned())
            }
            other => VerifyError::BadPayload(other.to_string()),
        })?;
        Ok((claims, key.kid.clone()))
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

/// Creates the key directory (0700) if needed (tests write legacy files).
#[cfg(test)]
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
    let doc = ajwt_json::parse_object(&bytes).map_err(|e| match e {
        ObjectError::NotAnObject { .. } => bad("not a JSON object".to_owned()),
        other => bad(format!("not valid JSON: {other}")),
    })?;
    if let Some(other) = doc.keys().find(|k| !KEY_FILE_MEMBERS.contains(&k.as_str())) {
        return Err(bad(format!("unknown member {other:?}")));
    }
    let string = |name: &str| match doc.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(bad(format!("member {name:?} must be a string"))),
    };
    // Any name of the one algorithm table: format-1 files written before
    // RFC 9864 names say "ES256", "EdDSA" or "RS256" and still load.
    let alg: Alg = string("alg")?
        .parse()
        .map_err(|e: JoseError| bad(e.to_string()))?;
    let stored_kid = string("kid")?;
    let pem = string("private_key_pem")?;
    let created_at = doc
        .get("created_at")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("member \"created_at\" must be a non-negative integer".to_owned()))?;
    // I-90: optional, so format-1 files keep loading (activation at
    // creation, retirement derived from the successor).
    let optional_time = |name: &str| match doc.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("member {name:?} must be a non-negative integer"))),
    };
    let activates_at = optional_time("activates_at")?;
    let retires_at = optional_time("retires_at")?;
    let mut key = RingKey::from_pem(alg, pem.as_bytes(), created_at)
        .map_err(|e| bad(format!("private_key_pem is not a usable {alg} key: {e}")))?;
    key.activates_at = activates_at.unwrap_or(created_at);
    key.retires_at = retires_at;
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

/// Members a key file may have: format 1 plus the optional rotation times
/// of I-90 (`activates_at`, `retires_at`, Unix seconds).
const KEY_FILE_MEMBERS: [&str; 6] = [
    "kid",
    "alg",
    "created_at",
    "private_key_pem",
    "activates_at",
    "retires_at",
];

/// Generates a key of `alg`, stores it as `<dir>/<kid>.json` (0600, written
/// atomically) as earlier issuers did, and returns it (tests of the import).
#[cfg(test)]
fn write_new_key(
    dir: &Path,
    alg: Alg,
    created_at: u64,
    activates_at: Option<u64>,
) -> Result<RingKey, KeyError> {
    let mut key = RingKey::generate(alg, created_at)?;
    key.activates_at = activates_at.unwrap_or(created_at);
    write_key_file(dir, &key)?;
    Ok(key)
}

/// Stores `key` as `<dir>/<kid>.json` (0600, atomically). `activates_at` is
/// written only when it differs from `created_at` and `retires_at` only when
/// set, so a key that never rotated has a format-1 file (tests of the import).
#[cfg(test)]
fn write_key_file(dir: &Path, key: &RingKey) -> Result<(), KeyError> {
    let pem = key.key.to_pkcs8_pem().map_err(generation)?;
    let mut doc = Map::new();
    doc.insert("kid".to_owned(), Value::String(key.kid.clone()));
    doc.insert(
        "alg".to_owned(),
        Value::String(key.alg().as_str().to_owned()),
    );
    doc.insert("created_at".to_owned(), Value::from(key.created_at));
    if key.activates_at != key.created_at {
        doc.insert("activates_at".to_owned(), Value::from(key.activates_at));
    }
    if let Some(t) = key.retires_at {
        doc.insert("retires_at".to_owned(), Value::from(t));
    }
    doc.insert("private_key_pem".to_owned(), Value::String(pem));
    let mut text = serde_json::to_string_pretty(&Value::Object(doc))
        .map_err(|e| KeyError::Generation(e.to_string()))?;
    text.push('\n');
    write_private_file(dir, &format!("{}.json", key.kid), text.as_bytes())
}

/// `<data_dir>/signing-keys-retired` for the key directory `dir`.
fn retired_dir(dir: &Path) -> PathBuf {
    dir.parent().unwrap_or(dir).join(RETIRED_DIR)
}

/// The records of retired keys (unreadable records are skipped: they are
/// informational only), at most [`MAX_RETIRED_RECORDS`] * 2 read.
fn read_retired_records(dir: &Path) -> Vec<KeyInfo> {
    let Ok(entries) = fs::read_dir(retired_dir(dir)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten().take(MAX_RETIRED_RECORDS * 2) {
        let Ok(bytes) = fs::read(entry.path()) else {
            continue;
        };
        let Ok(doc) = ajwt_json::parse_object(&bytes) else {
            continue;
        };
        let time = |n: &str| doc.get(n).and_then(Value::as_u64);
        let (Some(Value::String(kid)), Some(Value::String(alg))) = (doc.get("kid"), doc.get("alg"))
        else {
            continue;
        };
        let Ok(alg) = alg.parse::<Alg>() else {
            continue;
        };
        out.push(KeyInfo {
            kid: kid.clone(),
            alg,
            state: KeyState::Retired,
            created_at: time("created_at").unwrap_or(0),
            activates_at: time("activates_at").unwrap_or(0),
            retires_at: time("retires_at"),
        });
    }
    out.sort_by_key(|r| (r.retires_at, r.activates_at));
    out
}

/// The key files an issuer before I-110 kept under `<data_dir>/`
/// [`KEY_DIR`] (format 1, see the module documentation) and the public
/// records under [`RETIRED_DIR`], read for a one-time import into the store
/// ([`crate::key_store::load`]).
#[derive(Debug)]
pub struct LegacyKeyFiles {
    /// The keys, as store records with their private key, in file name order.
    pub keys: Vec<StoredSigningKey>,
    /// The public records of retired keys (no private key).
    pub retired: Vec<StoredSigningKey>,
    data_dir: PathBuf,
}

impl LegacyKeyFiles {
    /// Reads `<data_dir>/signing-keys/` (every `*.json` file not starting
    /// with `.`, checked as before: a bad file is [`KeyError::BadKeyFile`]
    /// naming it) and `<data_dir>/signing-keys-retired/`. `None` when there
    /// is no key directory. Blocking.
    pub fn read(data_dir: &Path) -> Result<Option<LegacyKeyFiles>, KeyError> {
        let dir = data_dir.join(KEY_DIR);
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(KeyError::Io {
                    path: dir,
                    source: std::io::Error::other("not a directory"),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&dir)(e)),
        }
        let keys = load_key_dir(&dir)?
            .iter()
            .map(RingKey::to_stored)
            .collect::<Result<Vec<_>, _>>()?;
        let retired = read_retired_records(&dir)
            .into_iter()
            .map(|r| StoredSigningKey {
                kid: r.kid,
                alg: r.alg.as_str().to_owned(),
                created_at: r.created_at,
                activates_at: r.activates_at,
                retires_at: r.retires_at,
                retired_at: Some(r.retires_at.unwrap_or(r.activates_at)),
                private_key_pem: None,
            })
            .collect();
        Ok(Some(LegacyKeyFiles {
            keys,
            retired,
            data_dir: data_dir.to_owned(),
        }))
    }

    /// Deletes both directories with everything in them (key files, and
    /// any temporary file a crash left), once their keys are in the store:
    /// no plaintext private key stays on disk (I-110). Blocking.
    pub fn remove(&self) -> Result<(), KeyError> {
        for name in [KEY_DIR, RETIRED_DIR] {
            let path = self.data_dir.join(name);
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        Ok(())
    }
}

/// Writes `dir/name` with mode 0600, atomically (the one implementation, `ajwt_fs`).
#[cfg(test)]
fn write_private_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), KeyError> {
    let path = dir.join(name);
    ajwt_fs::write_private(&path, bytes).map_err(io_error(&path))
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

/// Accepts a JWK ([`PublicKey::from_jwk`]) or a PEM SubjectPublicKeyInfo
/// (`-----BEGIN PUBLIC KEY-----`, [`PublicKey::from_spki_pem`]): the rules of
/// `ajwt-jose`, the same the verifier applies. Allowed (§9.4.1): Ed25519
/// (OKP), P-256 (EC), RSA with modulus >= 2048 bits and public exponent
/// exactly 65537, without the ROCA fingerprint. A JWK `alg`, when present,
/// must be an algorithm of the one table for the key's type
/// ([`ajwt_jose::Alg::for_key_type`]: ES256; EdDSA or Ed25519; RS256 or
/// PS256), so `RS384`, `PS512`, `ES384`, `none`, `HS256`, ... are refused
/// (I-44). Anything else (other curves, smaller RSA, other exponents,
/// symmetric `oct` keys, JWKs carrying private members, malformed base64url
/// or coordinates, an invalid, non-canonically encoded or small-order point,
/// a PEM that is not exactly one DER SubjectPublicKeyInfo, a JWK whose `use`
/// is not `sig` or whose `key_ops` lack `verify`) is [`KeyError::Unsupported`]
/// with the reason. The returned JWK has only the public members plus `kid`.
pub fn parse_agent_public_key(input: &PublicKeyInput) -> Result<AgentKey, KeyError> {
    let key = match input {
        PublicKeyInput::Jwk(jwk) => PublicKey::from_jwk(jwk),
        PublicKeyInput::Pem(pem) => PublicKey::from_spki_pem(pem),
    }
    .map_err(agent_key_error)?;
    let thumbprint = key.thumbprint().to_owned();
    let mut jwk = key.public_members();
    jwk.insert("kid".to_owned(), Value::String(thumbprint.clone()));
    Ok(AgentKey { jwk, thumbprint })
}

/// The registration-facing reason for a refused agent key.
fn agent_key_error(e: JoseError) -> KeyError {
    match e {
        JoseError::UnsupportedKey(reason) | JoseError::InvalidKey(reason) => unsupported(reason),
        JoseError::PrivateKeyMaterial(member) => unsupported(format!(
            "the JWK carries the private member {member:?}; register only the public key"
        )),
        JoseError::UnsupportedAlgorithm(alg) => unsupported(format!(
            "JWK \"alg\" {alg:?} is not an algorithm agent keys are verified with \
             (one of {}; §9.4.1, RFC 8725 §3.1)",
            Alg::names(&Alg::ALL)
        )),
        JoseError::KeyAlgMismatch { alg, kty } => {
            let fitting = KeyType::ALL
                .into_iter()
                .find(|t| t.kty() == kty)
                .map_or_else(String::new, |t| Alg::names(Alg::for_key_type(t)));
            unsupported(format!(
                "JWK \"alg\" {alg:?} does not fit a {kty} key (expected one of {fitting})"
            ))
        }
        other => unsupported(other.to_string()),
    }
}

/// RFC 7638 thumbprint: base64url (no padding) of SHA-256 over the required
/// members in lexicographic order, no whitespace (EC: crv,kty,x,y; OKP:
/// crv,kty,x; RSA: e,kty,n; oct: k,kty). Other members are ignored; the
/// values are not validated beyond being strings.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, KeyError> {
    // One implementation of RFC 7638 for the whole project (ajwt-jose).
    ajwt_jose::jwk_thumbprint(jwk).map_err(|e| unsupported(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use serde_json::json;
    use sha2::{Digest as _, Sha256};
    use std::sync::OnceLock;

    const TYP: &str = "intent+jwt";

    // Fixtures made with `openssl genpkey` (OpenSSL 3); their JWK members
    // and RFC 7638 thumbprints were computed with CPython's `cryptography`,
    // not with the code under test.
    const OPENSSL_ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEILE6W3CMtvlM+lYOetfmuOxloWvcJV6LkrTbn3IBqUnK\n-----END PRIVATE KEY-----\n";
    const OPENSSL_ED25519_SPKI: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3p7yqIJDV/+a3p8/N5BvD1E4kJWMiREvKp88T+pTjVI=\n-----END PUBLIC KEY-----\n";
    const OPENSSL_ED25519_X: &str = "3p7yqIJDV_-a3p8_N5BvD1E4kJWMiREvKp88T-pTjVI";
    const OPENSSL_ED25519_KID: &str = "7AdH7S_t0wxxMn79INQfxeF8mJ8eWYGZtcistgxK9mg";
    const OPENSSL_P256_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgY1pJVN4h7uDPAgbV\nSEZxVodbtAa41TpR1emUo/HCsAihRANCAASkC5sVpoehpZfOBmYEhbPRJIYbObjM\nUusv7PZR+2EtxGUjHqMmxmSOkuUijxRCCsmudEN6eISuufL8T9vfOgzP\n-----END PRIVATE KEY-----\n";
    const OPENSSL_P256_SPKI: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpAubFaaHoaWXzgZmBIWz0SSGGzm4\nzFLrL+z2UfthLcRlIx6jJsZkjpLlIo8UQgrJrnRDeniErrny/E/b3zoMzw==\n-----END PUBLIC KEY-----\n";
    const OPENSSL_P256_X: &str = "pAubFaaHoaWXzgZmBIWz0SSGGzm4zFLrL-z2UfthLcQ";
    const OPENSSL_P256_Y: &str = "ZSMeoybGZI6S5SKPFEIKya50Q3p4hK658vxP2986DM8";
    const OPENSSL_P256_KID: &str = "HPvRDHDQAMISz1BZ4zTYLb3bcufkNsVf73Q4SoHdKBY";

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

    /// One agent key per key type.
    fn agent(key_type: KeyType) -> &'static SigningKey {
        static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            [Alg::Es256, Alg::EdDsa, Alg::Rs256]
                .iter()
                .map(|a| SigningKey::generate(*a).unwrap())
                .collect()
        });
        keys.iter()
            .find(|k| k.public_key().key_type() == key_type)
            .unwrap()
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
            .key
            .sign_raw(header.as_bytes(), payload.as_bytes())
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

    fn pem_input(pem: &str) -> PublicKeyInput {
        PublicKeyInput::Pem(pem.to_owned())
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

    /// Verifies `token` with the `jsonwebtoken` crate (an independent JOSE
    /// implementation) and the JWK published for its `kid`. jsonwebtoken 9
    /// has no RFC 9864 names, so an `Ed25519` token is checked as what it is
    /// (RFC 9864 §2.2: the EdDSA signature over Ed25519): its header and JWK
    /// are checked here, its signature by `jsonwebtoken::crypto::verify` with
    /// `Algorithm::EdDSA`.
    fn verify_with_jsonwebtoken(token: &str, jwks: &Value, kid: &str) -> Map<String, Value> {
        use jsonwebtoken::{crypto, decode, Algorithm, DecodingKey, Validation};
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone();
        let header = header_of(token);
        assert_eq!(header["alg"], jwk["alg"], "header alg is the published alg");
        if jwk["alg"] == "Ed25519" {
            assert_eq!(jwk["kty"], "OKP");
            assert_eq!(jwk["crv"], "Ed25519");
            let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
            let (input, signature) = token.rsplit_once('.').unwrap();
            assert!(
                crypto::verify(signature, input.as_bytes(), &key, Algorithm::EdDSA).unwrap(),
                "jsonwebtoken refused the Ed25519 signature"
            );
            let payload = URL_SAFE_NO_PAD.decode(&split(token)[1]).unwrap();
            return serde_json::from_slice(&payload).unwrap();
        }
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(json!({"keys": [jwk.clone()]})).unwrap();
        let key = DecodingKey::from_jwk(set.find(kid).unwrap()).unwrap();
        let alg: Algorithm = jwk["alg"].as_str().unwrap().parse().unwrap();
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let data = decode::<Map<String, Value>>(token, &key, &validation).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(kid));
        assert_eq!(data.header.alg, alg);
        data.claims
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
    fn i44_signing_algorithms_are_the_one_jose_table() {
        assert_eq!(SigningAlgorithm::ALL, Alg::ALL);
        let names: Vec<&str> = SigningAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"]);
        for alg in SigningAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlgorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for bad in [
            "es256", "EDDSA", "ed25519", "rs256", "none", "HS256", "ES384", "RS384", "PS512",
            " ES256", "",
        ] {
            assert_eq!(
                bad.parse::<SigningAlgorithm>(),
                Err(JoseError::UnsupportedAlgorithm(bad.to_owned()))
            );
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
        }
        // Another ring of the same algorithm does not know the key.
        let token = ring(Alg::Es256).sign(TYP, &claims()).unwrap();
        let other = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
        assert_eq!(
            other.verify(&token, TYP),
            Err(VerifyError::UnknownKid(
                ring(Alg::Es256).current_kid().to_owned()
            ))
        );
    }

    #[test]
    fn rfc7517_jwks_members_each_alg() {
        for alg in SigningAlgorithm::ALL {
            let names = match alg.key_type() {
                KeyType::P256 => vec!["alg", "crv", "kid", "kty", "use", "x", "y"],
                KeyType::Ed25519 => vec!["alg", "crv", "kid", "kty", "use", "x"],
                KeyType::Rsa => vec!["alg", "e", "kid", "kty", "n", "use"],
            };
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
            match alg.key_type() {
                KeyType::P256 => {
                    assert_eq!(jwk["kty"], "EC");
                    assert_eq!(jwk["crv"], "P-256");
                    for c in ["x", "y"] {
                        let bytes = URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
                        assert_eq!(bytes.len(), 32, "P-256 {c}");
                    }
                }
                KeyType::Ed25519 => {
                    assert_eq!(jwk["kty"], "OKP");
                    assert_eq!(jwk["crv"], "Ed25519");
                    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
                    assert_eq!(x.len(), 32);
                }
                KeyType::Rsa => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert_eq!(jwk["e"], "AQAB");
                    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
                    assert_eq!(n.len(), 256);
                    assert_ne!(n[0], 0);
                }
            }
            // The published keys are themselves acceptable agent keys, with
            // their `alg`, and a JWK Set the verifier's parser takes whole.
            let key = parse_agent_public_key(&PublicKeyInput::Jwk(jwk.clone())).unwrap();
            assert_eq!(key.thumbprint, ring(alg).current_kid());
            let (parsed, skipped) = ajwt_jose::JwkSet::parse(set.to_string().as_bytes()).unwrap();
            assert!(skipped.is_empty(), "{skipped:?}");
            let published = parsed.find(ring(alg).current_kid()).unwrap();
            assert_eq!(published.algorithms(), [alg], "{alg}");
        }
    }

    #[test]
    fn independent_jsonwebtoken_verifies_our_tokens_with_our_jwks() {
        for alg in SigningAlgorithm::ALL {
            let ring = ring(alg);
            let token = ring.sign(TYP, &claims()).unwrap();
            let got = verify_with_jsonwebtoken(&token, &ring.jwks(), ring.current_kid());
            assert_eq!(got, claims(), "{alg}");
            assert_eq!(header_of(&token)["typ"], TYP);
            // ...and refuses a tampered payload.
            let p = split(&token);
            let forged = format!("{}.{}.{}", p[0], b64(br#"{"sub":"evil"}"#), p[2]);
            let jwks = ring.jwks();
            let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                verify_with_jsonwebtoken(&forged, &jwks, ring.current_kid())
            }));
            assert!(refused.is_err(), "{alg}: forged token accepted");
        }
    }

    #[test]
    fn rfc9864_s2_2_signing_alg_ed25519_tokens_and_jwks_carry_the_fully_specified_name() {
        let ring = KeyRing::generate("Ed25519".parse().unwrap()).unwrap();
        assert_eq!(ring.current_alg(), Alg::Ed25519);
        let token = ring.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&token)["alg"], "Ed25519");
        let jwks = ring.jwks();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["alg"], "Ed25519");
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(ring.verify(&token, TYP).unwrap(), claims());
        // Independently: jsonwebtoken checks the signature as EdDSA.
        assert_eq!(
            verify_with_jsonwebtoken(&token, &jwks, ring.current_kid()),
            claims()
        );
        // The same signature relabelled `EdDSA` is not accepted: the ring
        // only has an `Ed25519` key (RFC 8725 §3.1: alg bound to the key).
        let p = split(&token);
        let relabelled = json!({"alg": "EdDSA", "kid": ring.current_kid(), "typ": TYP});
        let forged = format!("{}.{}.{}", b64(relabelled.to_string()), p[1], p[2]);
        assert_eq!(
            ring.verify(&forged, TYP),
            Err(VerifyError::UnsupportedAlgorithm("EdDSA".to_owned()))
        );
        // A verifier honouring the JWK `alg` (ajwt-jose) takes `Ed25519` only.
        let (set, _) = ajwt_jose::JwkSet::parse(jwks.to_string().as_bytes()).unwrap();
        let key = set.find(ring.current_kid()).unwrap();
        assert!(key.supports(Alg::Ed25519));
        assert!(!key.supports(Alg::EdDsa));
        let jws = CompactJws::parse(&token, 4096).unwrap();
        assert_eq!(jws.alg, Alg::Ed25519);
        jws.verify_with(key, &Alg::ALL).unwrap();
    }

    // --- RFC 8725 / RFC 7515 refusals ------------------------------------

    #[test]
    fn rfc8725_s3_1_alg_none_and_hmac_refused() {
        let ring = ring(SigningAlgorithm::Es256);
        let token = ring.sign(TYP, &claims()).unwrap();
        let p = split(&token);
        for alg in [
            "none", "HS256", "es256", "ES384", "RS256", "EdDSA", "Ed25519", "PS256",
        ] {
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
        // alg missing, or not a string.
        let h = json!({"kid": ring.current_kid(), "typ": TYP});
        let forged = format!("{}.{}.{}", b64(h.to_string()), p[1], p[2]);
        assert_eq!(ring.verify(&forged, TYP), Err(VerifyError::Malformed));
        for (h, shown) in [
            (
                json!({"alg": null, "kid": ring.current_kid(), "typ": TYP}),
                "null",
            ),
            (
                json!({"alg": ["ES256"], "kid": ring.current_kid(), "typ": TYP}),
                "[\"ES256\"]",
            ),
        ] {
            let forged = format!("{}.{}.{}", b64(h.to_string()), p[1], p[2]);
            assert_eq!(
                ring.verify(&forged, TYP),
                Err(VerifyError::UnsupportedAlgorithm(shown.to_owned()))
            );
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
        for typ in ["JWT", "text/intent+jwt", "intent+jwt ", "application/"] {
            let token = ring.sign(typ, &claims()).unwrap();
            assert_eq!(
                ring.verify(&token, TYP),
                Err(VerifyError::WrongType {
                    expected: TYP.to_owned(),
                    found: Some(typ.to_owned())
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
        // A non-string typ is a malformed header (RFC 7515 §4.1.9).
        let h = json!({"alg": "ES256", "kid": ring.current_kid(), "typ": 5}).to_string();
        assert_eq!(
            ring.verify(&signed_raw(ring, &h, &payload), TYP),
            Err(VerifyError::Malformed)
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
            format!("{}.{}.{}.{}.{}", p[0], p[1], p[2], p[2], p[2]),
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
        }
        for bad in [
            format!("{}.{}", p[0], p[1]),
            format!("{token}."),
            format!("{}=.{}.{}", p[0], p[1], p[2]),
            format!("{}.{}.{}", "x".repeat(MAX_TOKEN_LEN), p[1], p[2]),
        ] {
            assert_eq!(ring.verify(&bad, TYP), Err(VerifyError::Malformed));
        }
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
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","b64":false}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","enc":"A128GCM"}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{TYP}","cty":"JWT"}}"#),
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

    // --- keys in the store (I-110) -----------------------------------------

    /// The ring of `records` as of `now` (the retirements due are dropped).
    fn stored(records: &[StoredSigningKey], policy: RotationPolicy, now: u64) -> KeyRing {
        KeyRing::from_stored(records, policy, now).unwrap().0
    }

    /// What an import reads from a legacy data directory, as one ring.
    fn load_legacy(data_dir: &Path) -> Result<KeyRing, KeyError> {
        let legacy = LegacyKeyFiles::read(data_dir)?.expect("a legacy key directory");
        let records: Vec<StoredSigningKey> =
            legacy.retired.into_iter().chain(legacy.keys).collect();
        Ok(stored(&records, RotationPolicy::default(), unix_now()))
    }

    #[test]
    fn i110_store_records_round_trip_same_kid_cross_verify_each_alg() {
        for alg in SigningAlgorithm::ALL {
            let first = ring(alg).clone();
            let records = first.to_stored().unwrap();
            assert_eq!(records.len(), 1);
            let record = &records[0];
            assert_eq!(record.kid, first.current_kid());
            assert_eq!(record.alg, alg.as_str());
            assert_eq!(record.retired_at, None);
            assert_eq!(record.activates_at, first.current_activated_at());
            assert!(record
                .private_key_pem
                .as_deref()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----"));
            let (second, retire) =
                KeyRing::from_stored(&records, RotationPolicy::default(), unix_now()).unwrap();
            assert!(retire.is_empty());
            assert!(second.is_stored() && !first.is_stored());
            assert_eq!(second.current_kid(), first.current_kid());
            assert_eq!(second.current_alg(), alg);
            assert_eq!(second.jwks(), first.jwks());
            let t1 = first.sign(TYP, &claims()).unwrap();
            let t2 = second.sign(TYP, &claims()).unwrap();
            assert_eq!(second.verify(&t1, TYP).unwrap(), claims());
            assert_eq!(first.verify(&t2, TYP).unwrap(), claims());
        }
    }

    #[test]
    fn i110_bad_store_records_are_named_errors() {
        let good = ring(Alg::Es256).to_stored().unwrap().remove(0);
        assert!(matches!(
            KeyRing::from_stored(&[], RotationPolicy::default(), 1),
            Err(KeyError::NoStoredKey)
        ));
        let retired_only = StoredSigningKey {
            private_key_pem: None,
            retired_at: Some(5),
            ..good.clone()
        };
        assert!(matches!(
            KeyRing::from_stored(&[retired_only], RotationPolicy::default(), 10),
            Err(KeyError::NoStoredKey)
        ));
        let cases = [
            (
                StoredSigningKey {
                    alg: "RS256".to_owned(),
                    ..good.clone()
                },
                "not a usable RS256 key",
            ),
            (
                StoredSigningKey {
                    alg: "HS256".to_owned(),
                    ..good.clone()
                },
                "alg",
            ),
            (
                StoredSigningKey {
                    kid: "abc".to_owned(),
                    ..good.clone()
                },
                "not the RFC 7638 thumbprint",
            ),
            (
                StoredSigningKey {
                    private_key_pem: Some(OPENSSL_P256_SPKI.to_owned()),
                    ..good.clone()
                },
                "PKCS#8",
            ),
        ];
        for (record, needle) in cases {
            match KeyRing::from_stored(std::slice::from_ref(&record), RotationPolicy::default(), 1)
            {
                Err(KeyError::BadStoredKey { kid, reason }) => {
                    assert_eq!(kid, record.kid);
                    assert!(reason.contains(needle), "{needle}: {reason}");
                }
                other => panic!("{needle}: {other:?}"),
            }
        }
    }

    /// Writes a format-1 key file by hand, as an earlier issuer did.
    fn write_format1(dir: &Path, kid: &str, alg: &str, created_at: u64, pem: &str) {
        let doc = json!({"kid": kid, "alg": alg, "created_at": created_at, "private_key_pem": pem});
        fs::write(
            dir.join(format!("{kid}.json")),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn i45_i110_legacy_format1_key_files_import_and_sign_under_their_alg() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        ensure_key_dir(&dir).unwrap();
        // Keys from `openssl genpkey`, stored as the issuer stored them
        // before RFC 9864 names: alg "ES256" and "EdDSA".
        write_format1(&dir, OPENSSL_P256_KID, "ES256", 100, OPENSSL_P256_PKCS8);
        write_format1(
            &dir,
            OPENSSL_ED25519_KID,
            "EdDSA",
            200,
            OPENSSL_ED25519_PKCS8,
        );
        let legacy = LegacyKeyFiles::read(tmp.path()).unwrap().unwrap();
        assert_eq!(legacy.keys.len(), 2);
        assert!(legacy.retired.is_empty());
        let p256 = legacy
            .keys
            .iter()
            .find(|k| k.kid == OPENSSL_P256_KID)
            .unwrap();
        assert_eq!(
            (p256.alg.as_str(), p256.created_at, p256.activates_at),
            ("ES256", 100, 100)
        );
        assert_eq!(p256.retires_at, None);
        let ring = load_legacy(tmp.path()).unwrap();
        assert_eq!(ring.kids(), [OPENSSL_ED25519_KID, OPENSSL_P256_KID]);
        assert_eq!(ring.current_alg(), Alg::EdDsa);
        let jwks = ring.jwks();
        assert_eq!(
            jwks["keys"][0],
            json!({"kty": "OKP", "crv": "Ed25519", "x": OPENSSL_ED25519_X,
                   "kid": OPENSSL_ED25519_KID, "alg": "EdDSA", "use": "sig"})
        );
        assert_eq!(
            jwks["keys"][1],
            json!({"kty": "EC", "crv": "P-256", "x": OPENSSL_P256_X, "y": OPENSSL_P256_Y,
                   "kid": OPENSSL_P256_KID, "alg": "ES256", "use": "sig"})
        );
        let token = ring.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&token)["alg"], "EdDSA");
        assert_eq!(
            verify_with_jsonwebtoken(&token, &jwks, OPENSSL_ED25519_KID),
            claims()
        );
        // Reading changes nothing; `remove` deletes both directories.
        assert_eq!(key_files(&dir).len(), 2);
        ensure_key_dir(&tmp.path().join(RETIRED_DIR)).unwrap();
        legacy.remove().unwrap();
        assert!(!dir.exists() && !tmp.path().join(RETIRED_DIR).exists());
        assert!(LegacyKeyFiles::read(tmp.path()).unwrap().is_none());
        legacy.remove().unwrap();

        // The same Ed25519 key file saying "Ed25519" signs under that name.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        ensure_key_dir(&dir).unwrap();
        write_format1(
            &dir,
            OPENSSL_ED25519_KID,
            "Ed25519",
            1,
            OPENSSL_ED25519_PKCS8,
        );
        let ring = load_legacy(tmp.path()).unwrap();
        assert_eq!(ring.current_alg(), Alg::Ed25519);
        let token = ring.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&token)["alg"], "Ed25519");
        assert_eq!(ring.jwks()["keys"][0]["alg"], "Ed25519");
        assert_eq!(
            verify_with_jsonwebtoken(&token, &ring.jwks(), OPENSSL_ED25519_KID),
            claims()
        );
        // An alg outside the table, or of another key type, is a bad file.
        for (alg, needle) in [("RS384", "RS384"), ("ES256", "not a usable ES256")] {
            write_format1(&dir, OPENSSL_ED25519_KID, alg, 1, OPENSSL_ED25519_PKCS8);
            match LegacyKeyFiles::read(tmp.path()) {
                Err(KeyError::BadKeyFile { reason, .. }) => {
                    assert!(reason.contains(needle), "{alg}: {reason}")
                }
                other => panic!("{alg}: {other:?}"),
            }
        }
    }

    #[test]
    fn i110_newest_stored_key_signs_and_alg_must_match_kid() {
        let es = ring(Alg::Es256).to_stored().unwrap().remove(0);
        let es = StoredSigningKey {
            created_at: 100,
            activates_at: 100,
            ..es
        };
        let old_ring = stored(std::slice::from_ref(&es), RotationPolicy::default(), 1000);
        let old_token = old_ring.sign(TYP, &claims()).unwrap();
        let rs = StoredSigningKey {
            created_at: 200,
            activates_at: 200,
            ..ring(Alg::Rs256).to_stored().unwrap().remove(0)
        };
        let ring = stored(&[es.clone(), rs.clone()], RotationPolicy::default(), 1000);
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

        // Equal activation and creation: the greater kid signs (deterministic).
        let tie = StoredSigningKey {
            created_at: 200,
            activates_at: 200,
            ..super::tests::ring(Alg::EdDsa)
                .to_stored()
                .unwrap()
                .remove(0)
        };
        let ring = stored(
            &[tie.clone(), es, rs.clone()],
            RotationPolicy::default(),
            1000,
        );
        let winner = if tie.kid > rs.kid { &tie.kid } else { &rs.kid };
        assert_eq!(ring.current_kid(), winner);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn rotated_keeps_the_old_keys_and_reloads_the_same_from_records() {
        let first = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
        let old_token = first.sign(TYP, &claims()).unwrap();
        // Twice within the same second: each new key still sorts newest.
        let second = first.rotated(SigningAlgorithm::Es256).unwrap();
        let third = second.rotated(SigningAlgorithm::Ed25519).unwrap();
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
        assert_eq!(header_of(&new_token)["alg"], "Ed25519");
        assert_eq!(
            first.verify(&new_token, TYP),
            Err(VerifyError::UnsupportedAlgorithm("Ed25519".to_owned()))
        );
        // Its records, oldest first, give the same ring back.
        let records = third.to_stored().unwrap();
        let order: Vec<&str> = records.iter().map(|r| r.kid.as_str()).collect();
        assert_eq!(
            order,
            [
                first.current_kid(),
                second.current_kid(),
                third.current_kid()
            ]
        );
        assert_eq!(records[2].alg, "Ed25519");
        let reloaded = stored(&records, RotationPolicy::default(), unix_now());
        assert_eq!(reloaded.kids(), third.kids());
        assert_eq!(reloaded.jwks(), third.jwks());
        assert_eq!(reloaded.current_alg(), Alg::Ed25519);
        assert_eq!(reloaded.verify(&new_token, TYP).unwrap(), claims());
    }

    #[test]
    fn i70_rotation_keeps_the_signing_key_and_at_most_max_previous_keys() {
        let mut ring = KeyRing::generate(SigningAlgorithm::Ed25519).unwrap();
        let mut all = vec![ring.current_kid().to_owned()];
        for _ in 0..10 {
            ring = ring.rotated(SigningAlgorithm::Ed25519).unwrap();
            all.push(ring.current_kid().to_owned());
            assert!(ring.kids().len() <= MAX_PREVIOUS_KEYS + 1);
        }
        all.reverse();
        assert_eq!(ring.kids(), all[..=MAX_PREVIOUS_KEYS]);
        // Extra stored keys (a store from before the bound, or keys added
        // by replicas) are retired on load, oldest first, and reported for
        // retirement in the store.
        let mut records = ring.to_stored().unwrap();
        let oldest: Vec<StoredSigningKey> = (1..=3u64)
            .map(|t| StoredSigningKey {
                created_at: t,
                activates_at: t,
                ..KeyRing::generate(Alg::Ed25519)
                    .unwrap()
                    .to_stored()
                    .unwrap()
                    .remove(0)
            })
            .collect();
        records.extend(oldest.iter().cloned());
        let now = unix_now();
        let (trimmed, retire) =
            KeyRing::from_stored(&records, RotationPolicy::default(), now).unwrap();
        assert_eq!(trimmed.kids(), ring.kids());
        let mut retired: Vec<&str> = retire.iter().map(|(kid, _)| kid.as_str()).collect();
        retired.sort_unstable();
        let mut expected: Vec<&str> = oldest.iter().map(|k| k.kid.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(retired, expected);
        assert!(retire.iter().all(|(_, t)| *t == now));
        let described = trimmed.describe();
        assert_eq!(described.len(), MAX_PREVIOUS_KEYS + 1 + 3);
        assert!(described[..3].iter().all(|k| k.state == KeyState::Retired));
        in_memory_ring_is_bounded(&ring);
    }

    fn in_memory_ring_is_bounded(ring: &KeyRing) {
        let mut ring = ring.clone();
        for _ in 0..(MAX_PREVIOUS_KEYS * 2) {
            let next = ring.rotated(SigningAlgorithm::Es256).unwrap();
            assert_eq!(next.kids()[1], ring.current_kid());
            ring = next;
        }
        assert_eq!(ring.kids().len(), MAX_PREVIOUS_KEYS + 1);
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
        // An in-memory ring stays in memory.
        assert!(!rotated.is_stored());
    }

    // --- publish-then-sign rotation (I-90) -------------------------------

    const POLICY: RotationPolicy = RotationPolicy {
        publish_delay: 300,
        retire_after: 3660,
    };

    fn states(ring: &KeyRing) -> Vec<(String, KeyState)> {
        ring.describe()
            .into_iter()
            .map(|k| (k.kid, k.state))
            .collect()
    }

    #[test]
    fn i90_rotation_publishes_first_signs_after_the_delay_and_retires_after_the_tokens_expire() {
        let ring = KeyRing::generate(SigningAlgorithm::Es256)
            .unwrap()
            .with_policy(POLICY);
        let t0 = ring.as_of + 10;
        let old = ring.current_kid().to_owned();
        let (rotated, r) = ring.rotate(SigningAlgorithm::EdDsa, t0, 0).unwrap();
        let new = r.key.kid.clone();
        assert_eq!(r.previous_kid, old);
        assert_eq!(r.key.state, KeyState::Next);
        // Rounded up: `t0` may have begun up to a second before the call.
        assert_eq!(r.key.activates_at, t0 + 301);
        assert_eq!(r.previous_retires_at, Some(t0 + 301 + 3660));
        assert!(!r.already_pending);
        // Published at once, but the old key still signs.
        assert_eq!(rotated.kids(), [old.clone(), new.clone()]);
        assert_eq!(rotated.current_kid(), old);
        assert_eq!(
            states(&rotated),
            [
                (old.clone(), KeyState::Current),
                (new.clone(), KeyState::Next)
            ]
        );
        assert_eq!(rotated.next_change(), Some(t0 + 301));
        assert!(!rotated.is_stale(t0 + 300));
        // A second rotation while a key is pending adds none.
        let (again, r2) = rotated.rotate(SigningAlgorithm::EdDsa, t0 + 1, 0).unwrap();
        assert!(r2.already_pending);
        assert_eq!(r2.key.kid, new);
        assert_eq!(again.kids(), rotated.kids());
        let old_token = rotated.at(t0 + 300).sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&old_token)["kid"], old.as_str());
        // At activates_at the new key signs; the old one verifies on.
        assert!(rotated.is_stale(t0 + 301));
        let active = rotated.at(t0 + 301);
        assert_eq!(active.current_kid(), new);
        assert_eq!(active.kids(), [new.clone(), old.clone()]);
        assert_eq!(
            states(&active),
            [
                (old.clone(), KeyState::Retiring),
                (new.clone(), KeyState::Current)
            ]
        );
        let new_token = active.sign(TYP, &claims()).unwrap();
        assert_eq!(header_of(&new_token)["alg"], "EdDSA");
        assert_eq!(active.verify(&old_token, TYP).unwrap(), claims());
        // The old key stays until its last token (signed at t0+300) has
        // expired plus leeway, then leaves the JWK Set.
        let last = active.at(t0 + 301 + 3659);
        assert_eq!(last.kids(), [new.clone(), old.clone()]);
        let gone = active.at(t0 + 301 + 3660);
        assert_eq!(gone.kids(), std::slice::from_ref(&new));
        assert!(matches!(
            gone.verify(&old_token, TYP),
            Err(VerifyError::UnsupportedAlgorithm(_) | VerifyError::UnknownKid(_))
        ));
        assert!(!gone.kids().contains(&old));
        assert_eq!(gone.verify(&new_token, TYP).unwrap(), claims());
        assert_eq!(gone.next_change(), None);
    }

    #[test]
    fn i90_i110_planned_rotation_records_the_times_and_retired_keys_lose_their_private_key() {
        // A legacy format-1 key (no activates_at/retires_at), imported.
        let legacy = StoredSigningKey {
            kid: OPENSSL_P256_KID.to_owned(),
            alg: "ES256".to_owned(),
            created_at: 1000,
            activates_at: 1000,
            retires_at: None,
            retired_at: None,
            private_key_pem: Some(OPENSSL_P256_PKCS8.to_owned()),
        };
        let t0 = 2000;
        let ring = stored(std::slice::from_ref(&legacy), POLICY, t0);
        assert_eq!(ring.current_kid(), OPENSSL_P256_KID);
        let plan = ring.plan_rotation(Alg::Es256, t0, 5).unwrap();
        let r = plan.rotation.clone();
        assert_eq!(
            r.key.activates_at,
            t0 + 306,
            "publish delay + extra delay, rounded up"
        );
        let change = plan.change.clone().unwrap();
        let new = change.insert.clone().unwrap();
        assert_eq!(new.kid, r.key.kid);
        assert_eq!((new.created_at, new.activates_at), (t0, t0 + 306));
        assert_eq!((new.retires_at, new.retired_at), (None, None));
        assert!(new
            .private_key_pem
            .as_deref()
            .unwrap()
            .contains("PRIVATE KEY"));
        // Inserted only if no replica's key is pending by now (I-110).
        assert_eq!(change.insert_unless_pending_after, Some(t0));
        assert_eq!(
            change.set_retires_at,
            [(OPENSSL_P256_KID.to_owned(), t0 + 306 + 3660)]
        );
        assert!(change.retire.is_empty());
        // The store after the change: every replica sees the same states.
        let mut legacy_updated = legacy.clone();
        legacy_updated.retires_at = Some(t0 + 306 + 3660);
        let records = vec![legacy_updated.clone(), new.clone()];
        let reloaded = stored(&records, POLICY, t0 + 1);
        assert_eq!(states(&reloaded), states(&plan.ring));
        assert_eq!(stored(&records, POLICY, t0 + 306).current_kid(), r.key.kid);
        // At retirement: reported for the store (private key deleted there),
        // and listed as retired.
        let end = t0 + 306 + 3660;
        let (retired, retire) = KeyRing::from_stored(&records, POLICY, end).unwrap();
        assert_eq!(retired.kids(), std::slice::from_ref(&r.key.kid));
        assert_eq!(retire, [(OPENSSL_P256_KID.to_owned(), end)]);
        let described = retired.describe();
        assert_eq!(described[0].kid, OPENSSL_P256_KID);
        assert_eq!(described[0].state, KeyState::Retired);
        assert_eq!(described[0].retires_at, Some(end));
        assert_eq!(described[1].state, KeyState::Current);
        // The record the store keeps (no private key) is listed the same way.
        let public = StoredSigningKey {
            private_key_pem: None,
            retired_at: Some(end),
            ..legacy_updated
        };
        let (after, retire) = KeyRing::from_stored(&[public, new], POLICY, end).unwrap();
        assert!(retire.is_empty());
        assert_eq!(after.describe(), described);
        // A rotation while a key is pending plans no change.
        let pending = plan.ring.plan_rotation(Alg::Es256, t0 + 1, 0).unwrap();
        assert!(pending.rotation.already_pending && pending.change.is_none());
        assert_eq!(pending.rotation.key.kid, r.key.kid);
    }

    #[test]
    fn i90_retired_records_listed_are_bounded() {
        let live = ring(Alg::Es256).to_stored().unwrap();
        let mut records: Vec<StoredSigningKey> = (0..(MAX_RETIRED_RECORDS as u64 + 4))
            .map(|i| StoredSigningKey {
                kid: format!("retired-{i:02}"),
                alg: "ES256".to_owned(),
                created_at: i,
                activates_at: i,
                retires_at: Some(i + 1),
                retired_at: Some(i + 1),
                private_key_pem: None,
            })
            .collect();
        records.extend(live);
        let ring = stored(&records, RotationPolicy::default(), unix_now());
        let described = ring.describe();
        assert_eq!(described.len(), MAX_RETIRED_RECORDS + 1);
        assert_eq!(described[0].kid, "retired-04", "the oldest records go");
    }

    #[test]
    fn persistence_bad_legacy_key_files_are_named_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(KEY_DIR);
        ensure_key_dir(&dir).unwrap();
        // Ignored: hidden files, temporary files, other extensions.
        fs::write(dir.join(".hidden.json"), "garbage").unwrap();
        fs::write(dir.join("README.txt"), "garbage").unwrap();
        let good = write_new_key(&dir, SigningAlgorithm::Es256, 1, None).unwrap();
        let good_path = dir.join(format!("{}.json", good.kid));
        assert_eq!(mode(&good_path), 0o600);
        let good_text = fs::read_to_string(&good_path).unwrap();
        assert!(load_legacy(tmp.path()).is_ok());

        let stored: Map<String, Value> = serde_json::from_str(&good_text).unwrap();
        let mut wrong_alg = stored.clone();
        wrong_alg.insert("alg".to_owned(), json!("RS256"));
        let mut bad_kid = stored.clone();
        bad_kid.insert("kid".to_owned(), json!("abc"));
        let mut extra = stored.clone();
        extra.insert("comment".to_owned(), json!("x"));
        let mut neg_time = stored.clone();
        neg_time.insert("created_at".to_owned(), json!(-1));
        let mut bad_time = stored.clone();
        bad_time.insert("activates_at".to_owned(), json!("soon"));
        let mut bad_pem = stored.clone();
        bad_pem.insert(
            "private_key_pem".to_owned(),
            json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        );
        let mut public_pem = stored.clone();
        public_pem.insert("private_key_pem".to_owned(), json!(OPENSSL_P256_SPKI));
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
                "activates.json",
                Value::Object(bad_time).to_string(),
                "activates_at",
            ),
            (
                "pem.json",
                Value::Object(bad_pem).to_string(),
                "private_key_pem",
            ),
            (
                "public.json",
                Value::Object(public_pem).to_string(),
                "PKCS#8",
            ),
        ];
        for (name, content, needle) in cases {
            let path = dir.join(name);
            fs::write(&path, content).unwrap();
            match LegacyKeyFiles::read(tmp.path()) {
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
        // A key "directory" that is a file.
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join(KEY_DIR), "x").unwrap();
        assert!(matches!(
            LegacyKeyFiles::read(other.path()),
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

    #[test]
    fn s4_4_2_agent_keys_from_openssl_pem_match_the_independent_jwk() {
        for (pem, jwk, kid) in [
            (
                OPENSSL_ED25519_SPKI,
                json!({"kty": "OKP", "crv": "Ed25519", "x": OPENSSL_ED25519_X}),
                OPENSSL_ED25519_KID,
            ),
            (
                OPENSSL_P256_SPKI,
                json!({"kty": "EC", "crv": "P-256", "x": OPENSSL_P256_X, "y": OPENSSL_P256_Y}),
                OPENSSL_P256_KID,
            ),
        ] {
            let from_pem = parse_agent_public_key(&pem_input(pem)).unwrap();
            let from_jwk = parse_agent_public_key(&jwk_input(jwk.clone())).unwrap();
            assert_eq!(from_pem, from_jwk);
            assert_eq!(from_pem.thumbprint, kid);
            let mut expected = obj(jwk);
            expected.insert("kid".to_owned(), json!(kid));
            assert_eq!(from_pem.jwk, expected);
            // CRLF line ends are fine.
            let crlf = pem.replace('\n', "\r\n");
            assert_eq!(parse_agent_public_key(&pem_input(&crlf)).unwrap(), from_pem);
        }
    }

    #[test]
    fn s9_4_1_agent_keys_each_type_jwk_and_pem_agree() {
        for (key_type, names) in [
            (KeyType::Ed25519, vec!["crv", "kid", "kty", "x"]),
            (KeyType::P256, vec!["crv", "kid", "kty", "x", "y"]),
            (KeyType::Rsa, vec!["e", "kid", "kty", "n"]),
        ] {
            let key = agent(key_type);
            let from_jwk = parse_agent_public_key(&PublicKeyInput::Jwk(key.public_jwk())).unwrap();
            let pem = key.public_key().to_spki_pem().unwrap();
            let from_pem = parse_agent_public_key(&pem_input(&pem)).unwrap();
            assert_eq!(from_jwk, from_pem);
            assert_eq!(member_names(&from_jwk.jwk), names);
            assert_eq!(from_jwk.thumbprint, key.thumbprint());
            // "use"/"kid"/"key_ops" and a fitting "alg" are fine; they are dropped.
            for alg in Alg::for_key_type(key_type) {
                let mut with_extras = key.public_jwk();
                with_extras.insert("use".to_owned(), json!("sig"));
                with_extras.insert("kid".to_owned(), json!("client-chosen"));
                with_extras.insert("key_ops".to_owned(), json!(["verify"]));
                with_extras.insert("alg".to_owned(), json!(alg.as_str()));
                let again = parse_agent_public_key(&PublicKeyInput::Jwk(with_extras)).unwrap();
                assert_eq!(again, from_jwk, "{alg}");
            }
        }
    }

    #[test]
    fn i44_registration_refuses_jwk_alg_outside_the_one_table() {
        // The verifier never accepts these, so registration must not either
        // (issue 11 defect 2). Before the fix RS384..PS512 were accepted.
        for (key_type, alg) in [
            (KeyType::Rsa, "RS384"),
            (KeyType::Rsa, "RS512"),
            (KeyType::Rsa, "PS384"),
            (KeyType::Rsa, "PS512"),
            (KeyType::P256, "ES384"),
            (KeyType::P256, "ES512"),
            (KeyType::P256, "ES256K"),
            (KeyType::Ed25519, "Ed448"),
            (KeyType::Ed25519, "none"),
            (KeyType::Rsa, "HS256"),
        ] {
            let mut jwk = agent(key_type).public_jwk();
            jwk.insert("alg".to_owned(), json!(alg));
            let reason = refused(PublicKeyInput::Jwk(jwk));
            assert!(
                reason.contains(&format!("JWK \"alg\" {alg:?} is not an algorithm")),
                "{alg}: {reason}"
            );
            assert!(
                reason.contains("ES256, EdDSA, Ed25519, RS256, PS256"),
                "{reason}"
            );
        }
        // A table algorithm of another key type does not fit.
        for (key_type, alg, fitting) in [
            (KeyType::P256, "EdDSA", "ES256"),
            (KeyType::P256, "RS256", "ES256"),
            (KeyType::Ed25519, "ES256", "EdDSA, Ed25519"),
            (KeyType::Rsa, "Ed25519", "RS256, PS256"),
        ] {
            let mut jwk = agent(key_type).public_jwk();
            jwk.insert("alg".to_owned(), json!(alg));
            assert_refused(
                PublicKeyInput::Jwk(jwk),
                &format!(
                    "does not fit a {} key (expected one of {fitting})",
                    key_type.kty()
                ),
            );
        }
        let mut jwk = agent(KeyType::Rsa).public_jwk();
        jwk.insert("alg".to_owned(), json!(256));
        assert_refused(PublicKeyInput::Jwk(jwk), "\"alg\" must be a string");
    }

    #[test]
    fn s9_4_1_rejects_other_curves_and_key_types() {
        let c48 = b64([7u8; 48]);
        assert_refused(
            jwk_input(json!({"kty": "EC", "crv": "P-384", "x": c48, "y": c48})),
            "\"P-384\" is not allowed",
        );
        assert_refused(
            jwk_input(json!({"kty": "EC", "crv": "P-256", "x": c48, "y": c48})),
            "must be 32 bytes",
        );
        assert_refused(
            jwk_input(json!({"kty": "OKP", "crv": "X25519", "x": b64([9u8; 32])})),
            "\"X25519\" is not allowed",
        );
        assert_refused(
            jwk_input(json!({"kty": "EC", "x": "AA", "y": "AA"})),
            "\"crv\" is missing",
        );
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
    fn s9_4_1_rejects_symmetric_and_private_jwks() {
        assert_refused(
            jwk_input(json!({"kty": "oct", "k": b64([1u8; 32])})),
            "\"oct\"",
        );
        assert_refused(
            jwk_input(json!({"kty": "oct", "k": b64([1u8; 32]), "alg": "HS256"})),
            "symmetric",
        );
        for member in ajwt_jose::PRIVATE_JWK_MEMBERS {
            for key_type in KeyType::ALL {
                let mut jwk = agent(key_type).public_jwk();
                jwk.insert(member.to_owned(), json!("AAAA"));
                let reason = refused(PublicKeyInput::Jwk(jwk));
                assert!(
                    reason.contains(&format!("private member \"{member}\""))
                        || (member == "k" && reason.contains("private member")),
                    "{member}: {reason}"
                );
            }
        }
    }

    #[test]
    fn s9_4_1_rejects_small_rsa_exponents_and_bad_moduli() {
        let base = agent(KeyType::Rsa).public_jwk();
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
        jwk.insert("n".to_owned(), json!(b64(&n[..128])));
        assert_refused(PublicKeyInput::Jwk(jwk), "1024 bits");
        let mut jwk = base.clone();
        jwk.insert("n".to_owned(), json!(b64(vec![0xffu8; 2049])));
        assert_refused(PublicKeyInput::Jwk(jwk), "at most 16384");
    }

    #[test]
    fn s9_4_1_rejects_malformed_coordinates_and_invalid_points() {
        let base = agent(KeyType::P256).public_jwk();
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
        assert_refused(with("y", json!(b64([0xffu8; 32]))), "not reduced modulo p");
        assert_refused(with("use", json!("enc")), "not \"sig\"");
        assert_refused(with("key_ops", json!(["encrypt"])), "key_ops");
        assert!(parse_agent_public_key(&with("alg", json!("ES256"))).is_ok());

        // Ed25519: wrong length, non-canonical, small order (the full point
        // tests live with the code, in ajwt-jose).
        let okp = |x: &[u8]| jwk_input(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}));
        assert_refused(okp(&[1u8; 31]), "must be 32 bytes");
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert_refused(okp(&p), "non-canonical");
        let mut small = [0u8; 32];
        small[0] = 1;
        assert_refused(okp(&small), "small-order");
    }

    #[test]
    fn s9_4_1_rejects_bad_pem_with_named_reasons() {
        let body: String = OPENSSL_ED25519_SPKI
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        for (pem, needle) in [
            ("garbage".to_owned(), "not a PEM public key"),
            (OPENSSL_ED25519_PKCS8.to_owned(), "private key"),
            (
                OPENSSL_ED25519_SPKI.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
                "\"RSA PUBLIC KEY\" is not accepted",
            ),
            (
                format!("-----BEGIN PUBLIC KEY-----\n{body}"),
                "must end with",
            ),
            (
                format!("{OPENSSL_ED25519_SPKI}{OPENSSL_ED25519_SPKI}"),
                "exactly one block",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".to_owned(),
                "SubjectPublicKeyInfo",
            ),
        ] {
            assert_refused(PublicKeyInput::Pem(pem), needle);
        }
    }
}
