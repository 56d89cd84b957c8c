//! The tamper-evident audit trail (§9.1.1 "Log all checksum mismatch events
//! for security monitoring", §9.1.4 "Log all registry access for audit
//! trails", §9.4.1 intent hash; I-100..I-104).
//!
//! The issuer appends one [`AuditRecord`] per security-relevant event
//! ([`AuditEvent`]: registrations, token issuance and refusals, revocations,
//! key changes) to one hash chain in its store: record `seq` holds
//! `prev_hash`, the `record_hash` of record `seq - 1` ([`GENESIS_HASH`] for
//! record 1), and its own `record_hash`: the lowercase hex SHA-256 of the RFC
//! 8785 (JCS, `serde_jcs`) form of the record without `record_hash`. The
//! store assigns `seq` and `prev_hash` under its write lock, so concurrent
//! appends form one chain.
//!
//! [`ChainVerifier`] reads a chain in `seq` order with bounded memory and
//! names what was done to it ([`Tamper`]): a record modified in place, a
//! record rewritten with a recomputed hash, records deleted, a record
//! inserted, records reordered. `ajwt audit verify` runs it. Records carry no
//! secrets and no tokens: ids, the `jti`, error codes and hashes (the prompt
//! only inside the agent checksum, §9.4.2).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `typ` of a signed checkpoint of the chain's head (I-104).
pub const TYP_AUDIT_CHECKPOINT: &str = "audit-checkpoint+jwt";

/// A signed checkpoint of the chain's head (I-104).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// The head's `seq`.
    pub seq: u64,
    /// The head's `record_hash`.
    pub record_hash: String,
    /// When it was signed, Unix milliseconds.
    pub signed_at_ms: i64,
    /// The JWS (`typ` [`TYP_AUDIT_CHECKPOINT`]) over
    /// `{iss, seq, record_hash, iat}`, signed with the issuer key.
    pub jws: String,
}

/// `prev_hash` of record 1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. The issuer turns each event into one [`AuditEntry`]
/// ([`AuditEvent::into_entry`]); `Issuer::audit` appends it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// An agent registration or re-registration was stored (§5.4.2, §5.4.4).
    AgentRegistered {
        /// The agent.
        agent_id: String,
        /// Its new registration id.
        registration_id: String,
        /// Its new version.
        version: u32,
        /// The registered checksum (`sha256:…`): the prompt, tools and
        /// configuration only by hash.
        checksum: String,
    },
    /// A workflow was registered (§6.3).
    WorkflowRegistered {
        /// The workflow.
        workflow_id: String,
    },
    /// An OAuth client of the issuer was created (never its secret).
    ClientRegistered {
        /// The new client.
        client_id: String,
        /// Its allowed scopes.
        scopes: Vec<String>,
    },
    /// An intent token was issued (§4.4).
    TokenIssued {
        /// `sub`.
        agent_id: String,
        /// `agent_proof.registration_id`.
        registration_id: String,
        /// `jti`.
        jti: String,
        /// [`intent_hash`] of the issued claims (§9.4.1, I-101).
        intent_hash: String,
        /// `exp`.
        exp: i64,
        /// `scope`.
        scope: String,
    },
    /// A token request of an authenticated client was refused (§4.5);
    /// checksum mismatches (§9.1.1) carry the presented checksum.
    TokenRefused {
        /// The agent the request named.
        agent_id: String,
        /// The OAuth error code sent (`agent_checksum_mismatch`, …).
        error_code: String,
        /// The presented `computed_checksum`.
        presented_checksum: Option<String>,
    },
    /// An administrator revoked an agent (§5.6.1 REVOKED).
    AgentRevoked {
        /// The agent.
        agent_id: String,
        /// How many registrations it has, all revoked.
        registrations: u64,
    },
    /// One registration of an agent was revoked.
    RegistrationRevoked {
        /// The agent.
        agent_id: String,
        /// The revoked registration.
        registration_id: String,
    },
    /// An issued token was revoked (RFC 7009, or with its agent/registration).
    TokenRevoked {
        /// The token's `jti` (never the token).
        jti: String,
        /// Its agent, when known.
        agent_id: Option<String>,
        /// Its registration, when known.
        registration_id: Option<String>,
    },
    /// The signing key was rotated (operator hook).
    KeyRotated {
        /// The new signing key.
        kid: String,
        /// The key that signed until now.
        previous_kid: String,
        /// The new key's algorithm.
        alg: String,
    },
    /// A signing key changed state (published, current, retiring, retired).
    KeyStateChanged {
        /// The key.
        kid: String,
        /// Its new state.
        state: String,
    },
}

impl AuditEvent {
    /// The `event` column of this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::AgentRegistered { .. } => "agent_registered",
            AuditEvent::WorkflowRegistered { .. } => "workflow_registered",
            AuditEvent::ClientRegistered { .. } => "client_registered",
            AuditEvent::TokenIssued { .. } => "token_issued",
            AuditEvent::TokenRefused { .. } => "token_refused",
            AuditEvent::AgentRevoked { .. } => "agent_revoked",
            AuditEvent::RegistrationRevoked { .. } => "registration_revoked",
            AuditEvent::TokenRevoked { .. } => "token_revoked",
            AuditEvent::KeyRotated { .. } => "key_rotated",
            AuditEvent::KeyStateChanged { .. } => "key_state_changed",
        }
    }

    /// The entry to append: caused by client `actor` (`None`: the issuer
    /// itself) at `time_ms` (Unix milliseconds).
    pub fn into_entry(self, actor: Option<&str>, time_ms: i64) -> AuditEntry {
        let mut e = AuditEntry {
            time_ms,
            event: self.kind().to_owned(),
            client_id: actor.map(str::to_owned),
            agent_id: None,
            registration_id: None,
            jti: None,
            error_code: None,
            intent_hash: None,
            detail: Map::new(),
        };
        match self {
            AuditEvent::AgentRegistered {
                agent_id,
                registration_id,
                version,
                checksum,
            } => {
                e.agent_id = Some(agent_id);
                e.registration_id = Some(registration_id);
                e.detail.insert("version".into(), version.into());
                e.detail.insert("checksum".into(), checksum.into());
            }
            AuditEvent::WorkflowRegistered { workflow_id } => {
                e.detail.insert("workflow_id".into(), workflow_id.into());
            }
            AuditEvent::ClientRegistered { client_id, scopes } => {
                e.detail
                    .insert("registered_client_id".into(), client_id.into());
                e.detail.insert("scopes".into(), scopes.into());
            }
            AuditEvent::TokenIssued {
                agent_id,
                registration_id,
                jti,
                intent_hash,
                exp,
                scope,
            } => {
                e.agent_id = Some(agent_id);
                e.registration_id = Some(registration_id);
                e.jti = Some(jti);
                e.intent_hash = Some(intent_hash);
                e.detail.insert("exp".into(), exp.into());
                e.detail.insert("scope".into(), scope.into());
            }
            AuditEvent::TokenRefused {
                agent_id,
                error_code,
                presented_checksum,
            } => {
                e.agent_id = Some(agent_id);
                e.error_code = Some(error_code);
                if let Some(c) = presented_checksum {
                    e.detail.insert("presented_checksum".into(), c.into());
                }
            }
            AuditEvent::AgentRevoked {
                agent_id,
                registrations,
            } => {
                e.agent_id = Some(agent_id);
                e.detail
                    .insert("registrations".into(), registrations.into());
            }
            AuditEvent::RegistrationRevoked {
                agent_id,
                registration_id,
            } => {
                e.agent_id = Some(agent_id);
                e.registration_id = Some(registration_id);
            }
            AuditEvent::TokenRevoked {
                jti,
                agent_id,
                registration_id,
            } => {
                e.jti = Some(jti);
                e.agent_id = agent_id;
                e.registration_id = registration_id;
            }
            AuditEvent::KeyRotated {
                kid,
                previous_kid,
                alg,
            } => {
                e.detail.insert("kid".into(), kid.into());
                e.detail.insert("previous_kid".into(), previous_kid.into());
                e.detail.insert("alg".into(), alg.into());
            }
            AuditEvent::KeyStateChanged { kid, state } => {
                e.detail.insert("kid".into(), kid.into());
                e.detail.insert("state".into(), state.into());
            }
        }
        e
    }
}

/// A record to append: every column but `seq`, `prev_hash` and
/// `record_hash`, which the store assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub time_ms: i64,
    /// Event kind ([`AuditEvent::kind`]).
    pub event: String,
    /// The client that caused it (`None`: the issuer itself).
    pub client_id: Option<String>,
    /// The agent concerned.
    pub agent_id: Option<String>,
    /// The registration concerned.
    pub registration_id: Option<String>,
    /// The token concerned (its `jti`).
    pub jti: Option<String>,
    /// The OAuth error code of a refusal.
    pub error_code: Option<String>,
    /// The intent hash of an issued token (I-101).
    pub intent_hash: Option<String>,
    /// Further fields of the kind.
    pub detail: Map<String, Value>,
}

/// One stored record of the chain (`ajwt audit tail --json` prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// Event kind.
    pub event: String,
    /// Acting client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    /// Token `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// OAuth error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Intent hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_hash: Option<String>,
    /// Further fields.
    pub detail: Map<String, Value>,
    /// `record_hash` of record `seq - 1`.
    pub prev_hash: String,
    /// SHA-256 (hex) of the JCS form of the other fields.
    pub record_hash: String,
}

/// The hashed view of a record: every field but `record_hash`.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    time_ms: i64,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    intent_hash: Option<&'a str>,
    detail: &'a Map<String, Value>,
    prev_hash: &'a str,
}

/// A value that has no JCS form (e.g. a float outside I-JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot canonicalize (RFC 8785): {0}")]
pub struct CanonicalError(String);

/// Lowercase hex SHA-256 of the JCS (RFC 8785) form of `value`.
///
/// Values without floats (every audit record and intent token this issuer
/// writes) take a direct writer ([`jcs_into`], I-147): serde_jcs builds and
/// sorts UTF-16 copies of every key and allocates per fragment, which made the
/// two hashes of an issuance (intent hash, record hash) cost as much as the
/// token's ES256 signature. A value with a float, whose ECMAScript number form
/// the direct writer does not produce, goes to serde_jcs as before.
pub fn jcs_sha256<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    let tree = serde_json::to_value(value).map_err(|e| CanonicalError(e.to_string()))?;
    let mut bytes = Vec::with_capacity(1024);
    if jcs_into(&tree, &mut bytes).is_none() {
        bytes = serde_jcs::to_vec(&tree).map_err(|e| CanonicalError(e.to_string()))?;
    }
    Ok(sha256_hex(&bytes))
}

/// Appends the RFC 8785 form of `v` to `out`; `None` (with `out` partly
/// written) when `v` holds a float. Members are sorted by their UTF-16 code
/// units (§3.2.3); strings are escaped as serde_json escapes them, which is
/// the §3.2.2.2 set (`"`, `\\`, controls as `\b \t \n \f \r` or `\u00xx`
/// lowercase); integers up to 2^53 in magnitude are written in decimal
/// (§3.2.2.3); `None` too for larger integers.
fn jcs_into(v: &Value, out: &mut Vec<u8>) -> Option<()> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Integers a double holds exactly print as themselves (§3.2.2.3);
            // beyond 2^53 the double's rounding applies: serde_jcs.
            const EXACT: i64 = 1 << 53;
            match n.as_i64() {
                Some(i) if (-EXACT..=EXACT).contains(&i) => {
                    out.extend_from_slice(i.to_string().as_bytes())
                }
                _ => return None,
            }
        }
        Value::String(s) => serde_json::to_writer(&mut *out, s).ok()?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                jcs_into(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => jcs_object_into(map, out)?,
    }
    Some(())
}

/// [`jcs_into`] of an object given as its map.
fn jcs_object_into(map: &Map<String, Value>, out: &mut Vec<u8>) -> Option<()> {
    let mut members: Vec<(&str, Member<'_>)> = map
        .iter()
        .map(|(k, v)| (k.as_str(), Member::Value(v)))
        .collect();
    jcs_members_into(&mut members, out)
}

/// A member value the direct writer takes without building a
/// [`serde_json::Value`] first (I-186: the audit record hash borrows the
/// record's fields).
enum Member<'a> {
    Value(&'a Value),
    Object(&'a Map<String, Value>),
    Str(&'a str),
    Int(i128),
}

/// Appends the RFC 8785 object of `members`: sorted by the UTF-16 code
/// units of their names (§3.2.3), written as [`jcs_into`] writes values.
/// `None` as [`jcs_into`] (a float, or an integer beyond 2^53).
fn jcs_members_into(members: &mut [(&str, Member<'_>)], out: &mut Vec<u8>) -> Option<()> {
    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (k, item)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).ok()?;
        out.push(b':');
        match item {
            Member::Value(v) => jcs_into(v, out)?,
            Member::Object(map) => jcs_object_into(map, out)?,
            Member::Str(s) => serde_json::to_writer(&mut *out, s).ok()?,
            Member::Int(n) => {
                const EXACT: i128 = 1 << 53;
                if !(-EXACT..=EXACT).contains(n) {
                    return None;
                }
                out.extend_from_slice(n.to_string().as_bytes());
            }
        }
    }
    out.push(b'}');
    Some(())
}

/// Lowercase hex of the SHA-256 of `bytes` (64 characters).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    if hex::encode_to_slice(digest, &mut hex).is_err() {
        return hex::encode(digest);
    }
    String::from_utf8_lossy(&hex).into_owned()
}

/// The intent hash of an issued token (§9.4.1 "computed over the canonical
/// JSON representation of the intent token", I-101): lowercase hex SHA-256
/// of the JCS form of its claims (the JWS payload).
pub fn intent_hash(claims: &Map<String, Value>) -> Result<String, CanonicalError> {
    Ok(sha256_hex(&jcs_object_bytes(claims)?))
}

/// The RFC 8785 (JCS) form of the object `claims`: the direct writer
/// ([`jcs_into`], I-147), or serde_jcs for a value holding a float. An
/// intent token's payload is these bytes (I-180), so its intent hash is the
/// SHA-256 of the payload as signed.
pub fn jcs_object_bytes(claims: &Map<String, Value>) -> Result<Vec<u8>, CanonicalError> {
    let mut bytes = Vec::with_capacity(1024);
    if jcs_object_into(claims, &mut bytes).is_none() {
        bytes = serde_jcs::to_vec(claims).map_err(|e| CanonicalError(e.to_string()))?;
    }
    Ok(bytes)
}

impl AuditRecord {
    /// The record `entry` becomes at `seq` after a record whose hash is
    /// `prev_hash`, with its `record_hash` computed.
    pub fn chain(
        entry: AuditEntry,
        seq: u64,
        prev_hash: String,
    ) -> Result<AuditRecord, CanonicalError> {
        let mut record = AuditRecord {
            seq,
            time_ms: entry.time_ms,
            event: entry.event,
            client_id: entry.client_id,
            agent_id: entry.agent_id,
            registration_id: entry.registration_id,
            jti: entry.jti,
            error_code: entry.error_code,
            intent_hash: entry.intent_hash,
            detail: entry.detail,
            prev_hash,
            record_hash: String::new(),
        };
        record.record_hash = record.compute_hash()?;
        Ok(record)
    }

    /// The hash this record's fields give (equal to `record_hash` unless
    /// the record was altered).
    pub fn compute_hash(&self) -> Result<String, CanonicalError> {
        self.compute_hash_at(self.seq)
    }

    /// The hash the record's fields would give at position `seq`.
    fn compute_hash_at(&self, seq: u64) -> Result<String, CanonicalError> {
        // I-186: the record's fields, borrowed, through the direct writer;
        // a record the direct writer cannot write (a float in `detail`)
        // goes the general way below, to serde_jcs.
        let mut members: Vec<(&str, Member<'_>)> = Vec::with_capacity(11);
        members.push(("seq", Member::Int(i128::from(seq))));
        members.push(("time_ms", Member::Int(i128::from(self.time_ms))));
        members.push(("event", Member::Str(&self.event)));
        for (name, field) in [
            ("client_id", &self.client_id),
            ("agent_id", &self.agent_id),
            ("registration_id", &self.registration_id),
            ("jti", &self.jti),
            ("error_code", &self.error_code),
            ("intent_hash", &self.intent_hash),
        ] {
            if let Some(v) = field {
                members.push((name, Member::Str(v)));
            }
        }
        members.push(("detail", Member::Object(&self.detail)));
        members.push(("prev_hash", Member::Str(&self.prev_hash)));
        let mut bytes = Vec::with_capacity(512);
        if jcs_members_into(&mut members, &mut bytes).is_some() {
            return Ok(sha256_hex(&bytes));
        }
        jcs_sha256(&Hashed {
            seq,
            time_ms: self.time_ms,
            event: &self.event,
            client_id: self.client_id.as_deref(),
            agent_id: self.agent_id.as_deref(),
            registration_id: self.registration_id.as_deref(),
            jti: self.jti.as_deref(),
            error_code: self.error_code.as_deref(),
            intent_hash: self.intent_hash.as_deref(),
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        })
    }

    /// Whether the stored hash matches the fields at `seq` (constant time:
    /// the hashes are not secret, but this is the one comparison).
    fn hashes_to(&self, seq: u64) -> bool {
        use subtle::ConstantTimeEq;
        self.compute_hash_at(seq)
            .is_ok_and(|h| bool::from(h.as_bytes().ct_eq(self.record_hash.as_bytes())))
    }
}

/// What was done to a chain, as [`ChainVerifier`] finds it. Positions are
/// the stored `seq` values; "original" numbers are the `seq` a record was
/// appended with (its hash covers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The record's fields no longer give its hash: edited in place.
    Modified {
        /// Where it is.
        position: u64,
    },
    /// The record at `next` does not link to the record at `position`:
    /// that record was rewritten with a recomputed hash, or the one at
    /// `next` was inserted with a hash of its own.
    Rewritten {
        /// The record that no longer matches its successor's `prev_hash`.
        position: u64,
        /// Its successor.
        next: u64,
    },
    /// Records that were appended are missing.
    Deleted {
        /// First missing original number.
        first: u64,
        /// Last missing original number.
        last: u64,
    },
    /// A record that is not part of the chain: it neither matches its hash
    /// at any plausible position nor links to its predecessor, or it
    /// duplicates a number and no record links to it.
    Inserted {
        /// Where it is.
        position: u64,
    },
    /// Original record `original` is at `position`, after records appended
    /// later than it.
    Reordered {
        /// The number it was appended with.
        original: u64,
        /// Where it is now.
        position: u64,
    },
    /// The chain ends before an expected head (a signed checkpoint, or one
    /// given by the operator): its last records were removed.
    Truncated {
        /// The last record present (0: none).
        last: u64,
        /// The expected head.
        expected: u64,
    },
    /// The record appended with an expected head's number is not the one
    /// expected: the chain up to it was rewritten.
    HeadMismatch {
        /// The expected head's position.
        seq: u64,
    },
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::Modified { position } => write!(
                f,
                "record {position}: modified (its fields do not match its record_hash)"
            ),
            Tamper::Rewritten { position, next } => write!(
                f,
                "record {position}: rewritten (record {next} does not link to it: record {position} was modified and its hash recomputed, or record {next} was inserted)"
            ),
            Tamper::Deleted { first, last } if first == last => {
                write!(f, "record {first}: deleted (missing from the chain)")
            }
            Tamper::Deleted { first, last } => {
                write!(f, "records {first}-{last}: deleted (missing from the chain)")
            }
            Tamper::Inserted { position } => write!(
                f,
                "record {position}: inserted (not part of the chain: no record links to it)"
            ),
            Tamper::Reordered { original, position } => write!(
                f,
                "record {original}: reordered (found at position {position}, after records appended later)"
            ),
            Tamper::Truncated { last, expected } => {
                let first = last.saturating_add(1);
                if first == *expected {
                    write!(f, "record {expected}: deleted")?;
                } else {
                    write!(f, "records {first}-{expected}: deleted")?;
                }
                write!(
                    f,
                    " (the log ends at record {last}, before the signed head {expected}: truncated)"
                )
            }
            Tamper::HeadMismatch { seq } => write!(
                f,
                "record {seq}: rewritten (it is not the expected head: the chain up to it was recomputed)"
            ),
        }
    }
}

/// How many identified records [`ChainVerifier`] remembers for link checks.
const WINDOW: usize = 4096;
/// At most this many findings are kept (the count goes on).
const MAX_FINDINGS: usize = 1000;
/// At most this many ranges of missing records are tracked.
const MAX_MISSING_RANGES: usize = 10_000;

/// A record seen, by its original number.
#[derive(Debug, Clone)]
struct Seen {
    position: u64,
    hash: String,
    linked: bool,
}

/// Streams a chain in stored `seq` order ([`ChainVerifier::push`]) with
/// memory bounded by [`WINDOW`] records, then reports ([`ChainVerifier::finish`]).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    records: u64,
    /// Highest original number identified so far.
    max_original: u64,
    /// Original numbers identified, with the records that carry them.
    window: HashMap<u64, Vec<Seen>>,
    /// The window by `record_hash`.
    by_hash: HashMap<String, u64>,
    order: VecDeque<u64>,
    /// Missing original numbers, as ranges `first -> last`.
    missing: BTreeMap<u64, u64>,
    findings: Vec<Tamper>,
    dropped_findings: u64,
    head: Option<(u64, String)>,
    /// An expected head and whether it was seen (`Some(matched)`).
    expected_head: Option<(u64, String, Option<bool>)>,
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records read.
    pub records: u64,
    /// The last record's `seq` and `record_hash`.
    pub head: Option<(u64, String)>,
    /// What was found, in order; empty when the chain is intact.
    pub findings: Vec<Tamper>,
    /// Findings beyond [`MAX_FINDINGS`], counted only.
    pub more_findings: u64,
}

impl ChainReport {
    /// No finding.
    pub fn intact(&self) -> bool {
        self.findings.is_empty() && self.more_findings == 0
    }
}

impl ChainVerifier {
    /// An empty verifier.
    pub fn new() -> ChainVerifier {
        ChainVerifier::default()
    }

    /// Also check that the record appended as number `seq` has `record_hash`
    /// (a head kept elsewhere, e.g. a signed checkpoint, I-104): a chain
    /// ending before it is [`Tamper::Truncated`], another record there is
    /// [`Tamper::HeadMismatch`].
    pub fn expect_head(&mut self, seq: u64, record_hash: &str) {
        self.expected_head = Some((seq, record_hash.to_owned(), None));
    }

    fn report(&mut self, t: Tamper) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(t);
        } else {
            self.dropped_findings += 1;
        }
    }

    /// The original number of `r` at position `s`: its own `seq` when the
    /// hash matches, else the number after the record its `prev_hash`
    /// names, the next expected number, or a neighbour of `s`.
    fn identify(&self, r: &AuditRecord) -> Option<u64> {
        let s = r.seq;
        if r.hashes_to(s) {
            return Some(s);
        }
        let mut candidates = Vec::with_capacity(8);
        if r.prev_hash == GENESIS_HASH {
            candidates.push(1);
        }
        if let Some(t) = self.by_hash.get(&r.prev_hash) {
            candidates.push(t.saturating_add(1));
        }
        candidates.push(self.max_original.saturating_add(1));
        if let Some((first, _)) = self.missing.iter().next() {
            candidates.push(*first);
        }
        for d in 1..=2 {
            candidates.push(s.saturating_add(d));
            if s > d {
                candidates.push(s - d);
            }
        }
        candidates
            .into_iter()
            .find(|t| *t != s && *t >= 1 && r.hashes_to(*t))
    }

    fn add_missing(&mut self, first: u64, last: u64) {
        if self.missing.len() < MAX_MISSING_RANGES {
            self.missing.insert(first, last);
        }
    }

    /// Removes `t` from the missing ranges; whether it was missing.
    fn take_missing(&mut self, t: u64) -> bool {
        let Some((&first, &last)) = self.missing.range(..=t).next_back() else {
            return false;
        };
        if t > last {
            return false;
        }
        self.missing.remove(&first);
        if first < t {
            self.missing.insert(first, t - 1);
        }
        if t < last {
            self.missing.insert(t + 1, last);
        }
        true
    }

    fn remember(&mut self, t: u64, seen: Seen) {
        self.by_hash.insert(seen.hash.clone(), t);
        let entry = self.window.entry(t).or_default();
        if entry.is_empty() {
            self.order.push_back(t);
        }
        entry.push(seen);
        while self.order.len() > WINDOW {
            if let Some(old) = self.order.pop_front() {
                if let Some(list) = self.window.remove(&old) {
                    for s in &list {
                        if self.by_hash.get(&s.hash) == Some(&old) {
                            self.by_hash.remove(&s.hash);
                        }
                    }
                    self.settle_duplicates(list);
                }
            }
        }
    }

    /// Of several records with one original number, those no successor
    /// linked to are insertions (when none linked, all but the first).
    fn settle_duplicates(&mut self, list: Vec<Seen>) {
        if list.len() < 2 {
            return;
        }
        let any_linked = list.iter().any(|s| s.linked);
        for (i, s) in list.iter().enumerate() {
            let inserted = if any_linked { !s.linked } else { i > 0 };
            if inserted {
                self.report(Tamper::Inserted {
                    position: s.position,
                });
            }
        }
    }

    /// Reads the next record (stored `seq` order).
    pub fn push(&mut self, r: &AuditRecord) {
        self.records += 1;
        self.head = Some((r.seq, r.record_hash.clone()));
        let (t, check_link) = match self.identify(r) {
            Some(t) => (t, true),
            None => {
                // Not identifiable: modified in place when it still links to
                // its predecessor (it then keeps its place), else not part
                // of the chain.
                let links = if r.seq == 1 {
                    r.prev_hash == GENESIS_HASH
                } else {
                    self.window
                        .get(&r.seq.saturating_sub(1))
                        .is_some_and(|v| v.iter().any(|x| x.hash == r.prev_hash))
                };
                if !links {
                    self.report(Tamper::Inserted { position: r.seq });
                    return;
                }
                self.report(Tamper::Modified { position: r.seq });
                (r.seq, false)
            }
        };
        // The expected head, by the number it was appended with.
        if let Some((seq, hash, seen)) = &mut self.expected_head {
            if *seq == t {
                *seen = Some(check_link && *hash == r.record_hash);
            }
        }
        // Order.
        if t > self.max_original.saturating_add(1) {
            self.add_missing(self.max_original + 1, t - 1);
        } else if t <= self.max_original && self.take_missing(t) {
            self.report(Tamper::Reordered {
                original: t,
                position: r.seq,
            });
        }
        self.max_original = self.max_original.max(t);
        // Link to the predecessor.
        if !check_link {
            if let Some(p) = self
                .window
                .get_mut(&t.saturating_sub(1))
                .and_then(|v| v.iter_mut().find(|x| x.hash == r.prev_hash))
            {
                p.linked = true;
            }
        } else if t == 1 {
            if r.prev_hash != GENESIS_HASH {
                self.report(Tamper::Inserted { position: r.seq });
            }
        } else if let Some(preds) = self.window.get_mut(&(t - 1)) {
            match preds.iter_mut().find(|x| x.hash == r.prev_hash) {
                Some(p) => p.linked = true,
                None => {
                    let position = preds.last().map_or(t - 1, |p| p.position);
                    self.report(Tamper::Rewritten {
                        position,
                        next: r.seq,
                    });
                }
            }
        }
        self.remember(
            t,
            Seen {
                position: r.seq,
                hash: r.record_hash.clone(),
                linked: false,
            },
        );
    }

    /// The report: missing records not found later are deletions.
    pub fn finish(mut self) -> ChainReport {
        let lists: Vec<Vec<Seen>> = self.window.drain().map(|(_, v)| v).collect();
        for list in lists {
            self.settle_duplicates(list);
        }
        let missing: Vec<(u64, u64)> = self.missing.iter().map(|(a, b)| (*a, *b)).collect();
        for (first, last) in missing {
            self.report(Tamper::Deleted { first, last });
        }
        match self.expected_head.take() {
            Some((seq, _, Some(false))) => self.report(Tamper::HeadMismatch { seq }),
            // Never seen: truncated when the chain ends before it (else it
            // is among the deleted records reported above).
            Some((expected, _, None)) if self.max_original < expected => {
                self.report(Tamper::Truncated {
                    last: self.max_original,
                    expected,
                });
            }
            _ => {}
        }
        ChainReport {
            records: self.records,
            head: self.head,
            findings: self.findings,
            more_findings: self.dropped_findings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[a-z_]{0,6}",
            // Controls, quotes, non-ASCII, BMP above the surrogates and
            // astral characters: the UTF-16 order differs from UTF-8's there.
            proptest::collection::vec(
                prop_oneof![
                    Just('\u{0}'),
                    Just('\u{1f}'),
                    Just('"'),
                    Just('\\'),
                    Just('\u{7f}'),
                    Just('é'),
                    Just('\u{20ac}'),
                    Just('\u{fb33}'),
                    Just('\u{ffff}'),
                    Just('\u{1f600}'),
                    Just('\u{10000}'),
                    Just('a'),
                ],
                0..5
            )
            .prop_map(|c| c.into_iter().collect::<String>()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            (0i64..1_000_000_000_000_000).prop_map(Value::from),
            key.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// I-147: the direct JCS writer gives serde_jcs's bytes (the
        /// oracle) for every float-free value.
        #[test]
        fn i147_direct_jcs_matches_serde_jcs(v in json_value()) {
            let mut ours = Vec::new();
            if jcs_into(&v, &mut ours).is_some() {
                prop_assert_eq!(ours, serde_jcs::to_vec(&v).unwrap());
            }
            // Whichever path, the hash is serde_jcs's.
            prop_assert_eq!(
                jcs_sha256(&v).unwrap(),
                hex::encode(Sha256::digest(serde_jcs::to_vec(&v).unwrap()))
            );
        }
    }

    fn record_oracle_hash(r: &AuditRecord) -> String {
        // The i100 definition, computed by serde_jcs (the oracle): the
        // record's JSON without `record_hash`.
        let mut value = serde_json::to_value(r).unwrap();
        value.as_object_mut().unwrap().remove("record_hash");
        hex::encode(Sha256::digest(serde_jcs::to_vec(&value).unwrap()))
    }

    proptest! {
        /// I-186: the record hash, written from the borrowed fields, is
        /// serde_jcs's hash of the record without `record_hash`, for any
        /// strings (controls, non-ASCII, astral), any present/absent
        /// optional fields, any float-free detail and any seq / time
        /// (beyond 2^53 the general path takes over).
        #[test]
        fn i186_borrowed_record_hash_matches_serde_jcs(
            seq in prop_oneof![1u64..1_000_000, any::<u64>()],
            time_ms in prop_oneof![-1_000i64..4_000_000_000_000, any::<i64>()],
            event in any::<String>(),
            opts in proptest::collection::vec(proptest::option::of(any::<String>()), 6),
            detail in proptest::collection::btree_map(any::<String>(), json_value(), 0..4),
            prev_hash in any::<String>(),
        ) {
            let entry = AuditEntry {
                time_ms,
                event,
                client_id: opts[0].clone(),
                agent_id: opts[1].clone(),
                registration_id: opts[2].clone(),
                jti: opts[3].clone(),
                error_code: opts[4].clone(),
                intent_hash: opts[5].clone(),
                detail: detail.into_iter().collect(),
            };
            let r = AuditRecord::chain(entry, seq, prev_hash).unwrap();
            prop_assert_eq!(&r.record_hash, &record_oracle_hash(&r));
        }
    }

    /// I-186: a float in `detail` (no direct form) still hashes as serde_jcs
    /// writes it.
    #[test]
    fn i186_record_with_float_detail_falls_back_to_serde_jcs() {
        let entry = AuditEntry {
            time_ms: 1,
            event: "token_issued".into(),
            client_id: None,
            agent_id: Some("a".into()),
            registration_id: None,
            jti: None,
            error_code: None,
            intent_hash: None,
            detail: serde_json::json!({"ratio": 0.1, "n": [1e300]})
                .as_object()
                .unwrap()
                .clone(),
        };
        let r = AuditRecord::chain(entry, 7, GENESIS_HASH.to_owned()).unwrap();
        assert_eq!(r.record_hash, record_oracle_hash(&r));
    }

    /// RFC 8785 §3.2.3's sorting example, and a float falls back to serde_jcs.
    #[test]
    fn i147_rfc8785_s3_2_3_member_order_and_float_fallback() {
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let mut ours = Vec::new();
        jcs_into(&v, &mut ours).unwrap();
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(String::from_utf8(ours).unwrap(), expected);
        let float = serde_json::json!({"a": 1.5});
        assert!(jcs_into(&float, &mut Vec::new()).is_none());
        assert_eq!(
            jcs_sha256(&float).unwrap(),
            hex::encode(Sha256::digest(serde_jcs::to_vec(&float).unwrap()))
        );
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let r = AuditRecord::chain(
                    AuditEvent::TokenRefused {
                        agent_id: format!("agent-{seq}"),
                        error_code: "agent_checksum_mismatch".into(),
                        presented_checksum: None,
                    }
                    .into_entry(Some("client"), 1_000 + seq as i64),
                    seq,
                    prev.clone(),
                )
                .unwrap();
                prev = r.record_hash.clone();
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Vec<Tamper> {
        let mut v = ChainVerifier::new();
        for r in records {
            v.push(r);
        }
        v.finish().findings
    }

    #[test]
    fn i100_record_hash_is_sha256_of_jcs_without_record_hash() {
        let r = &chain(1)[0];
        let mut value = serde_json::to_value(r).unwrap();
        value.as_object_mut().unwrap().remove("record_hash");
        let jcs = serde_jcs::to_vec(&value).unwrap();
        assert_eq!(r.record_hash, hex::encode(Sha256::digest(&jcs)));
        assert_eq!(r.prev_hash, GENESIS_HASH);
    }

    #[test]
    fn i102_intact_chain_has_no_findings() {
        let mut v = ChainVerifier::new();
        for r in &chain(10) {
            v.push(r);
        }
        let report = v.finish();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.records, 10);
        assert_eq!(report.head.unwrap().0, 10);
    }

    #[test]
    fn i102_modified_record_is_named() {
        let mut c = chain(6);
        c[2].error_code = Some("invalid_request".into());
        assert_eq!(verify(&c), [Tamper::Modified { position: 3 }]);
    }

    #[test]
    fn i102_rewritten_record_is_named() {
        let mut c = chain(6);
        c[2].agent_id = Some("someone-else".into());
        c[2].record_hash = c[2].compute_hash().unwrap();
        assert_eq!(
            verify(&c),
            [Tamper::Rewritten {
                position: 3,
                next: 4
            }]
        );
    }

    #[test]
    fn i102_deleted_records_are_named() {
        let mut c = chain(8);
        c.remove(3);
        c.remove(3);
        assert_eq!(verify(&c), [Tamper::Deleted { first: 4, last: 5 }]);
        // Deleted and the rest renumbered to hide the gap.
        let mut c = chain(6);
        c.remove(1);
        for (i, r) in c.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert_eq!(verify(&c), [Tamper::Deleted { first: 2, last: 2 }]);
        // The first records.
        let c = chain(4);
        assert_eq!(verify(&c[2..]), [Tamper::Deleted { first: 1, last: 2 }]);
    }

    #[test]
    fn i102_reordered_records_are_named() {
        let mut c = chain(6);
        c.swap(2, 3);
        c[2].seq = 3;
        c[3].seq = 4;
        assert_eq!(
            verify(&c),
            [Tamper::Reordered {
                original: 3,
                position: 4
            }]
        );
    }

    #[test]
    fn i102_copied_record_and_long_chains() {
        // A copy of record 2 appended as record 7.
        let mut c = chain(6);
        let mut copy = c[1].clone();
        copy.seq = 7;
        c.push(copy);
        assert_eq!(verify(&c), [Tamper::Inserted { position: 7 }]);
        // A chain longer than the window: one deletion far in, found once.
        let mut c = chain(WINDOW as u64 + 500);
        c.remove(WINDOW + 100);
        assert_eq!(
            verify(&c),
            [Tamper::Deleted {
                first: WINDOW as u64 + 101,
                last: WINDOW as u64 + 101
            }]
        );
    }

    #[test]
    fn i104_truncation_before_an_expected_head_is_named() {
        let c = chain(6);
        let head = c[5].record_hash.clone();
        let run = |records: &[AuditRecord], seq: u64, hash: &str| {
            let mut v = ChainVerifier::new();
            v.expect_head(seq, hash);
            for r in records {
                v.push(r);
            }
            v.finish().findings
        };
        assert_eq!(run(&c, 6, &head), []);
        assert_eq!(
            run(&c[..4], 6, &head),
            [Tamper::Truncated {
                last: 4,
                expected: 6
            }]
        );
        assert_eq!(run(&c, 5, &head), [Tamper::HeadMismatch { seq: 5 }]);
        // Records appended after the checkpoint are fine.
        assert_eq!(run(&c, 3, &c[2].record_hash), []);
    }

    #[test]
    fn i102_inserted_records_are_named() {
        // A forged record with a correct hash and link, the rest shifted.
        let c = chain(5);
        let forged = AuditRecord::chain(
            AuditEvent::AgentRevoked {
                agent_id: "x".into(),
                registrations: 1,
            }
            .into_entry(None, 0),
            3,
            c[1].record_hash.clone(),
        )
        .unwrap();
        let mut tampered = c[..2].to_vec();
        tampered.push(forged);
        for r in &c[2..] {
            let mut r = r.clone();
            r.seq += 1;
            tampered.push(r);
        }
        assert_eq!(verify(&tampered), [Tamper::Inserted { position: 3 }]);
        // Appended with garbage hashes.
        let mut c = chain(3);
        let mut junk = c[1].clone();
        junk.seq = 4;
        junk.record_hash = "00".repeat(32);
        c.push(junk);
        assert_eq!(verify(&c), [Tamper::Inserted { position: 4 }]);
    }
}
