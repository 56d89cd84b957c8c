//! Agent checksums for *draft-goswami-agentic-jwt-00* (Agentic JWT).
//!
//! An agent's cryptographic identity is a SHA-256 checksum over its canonical
//! system prompt, tool list and model configuration. This crate implements the
//! agent specification model (§5.2.1–§5.2.5), the prompt normalization of
//! §5.3.2 (bit-exact with CPython), both canonicalization profiles — RFC 8785
//! JCS as §5.3.1 requires ([`Profile::Jcs`], the default) and the §5.3.2
//! reference code's `json.dumps(sort_keys=True)` ([`Profile::PythonRef`]) —,
//! the digest, and the [`AgentChecksum`] value type (`sha256:<hex>`, §4.2.1,
//! §9.1.1) with constant-time equality. Every JSON document is read strictly
//! ([`json`]): duplicate member names are refused.
//!
//! No I/O, no async. Where the draft is ambiguous, the choice made here is
//! recorded in `spec/interpretation.md` and pinned by a test.
//!
//! ```
//! use ajwt_checksum::{compute_json, Profile};
//! let spec = br#"{"agent_id": "echo-v1", "prompt": "Echo the input.", "tools": []}"#;
//! let out = compute_json(spec, Profile::Jcs).unwrap();
//! assert_eq!(
//!     out.canonical,
//!     br#"{"agent_id":"echo-v1","configuration":{},"prompt_template":"Echo the input.","tools":[]}"#
//! );
//! assert!(out.checksum.to_string().starts_with("sha256:"));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod canonical;
pub mod checksum;
pub mod emit;
pub mod error;
mod node;
pub mod normalize;
pub mod spec;

/// The strict JSON reader (interpretation I-10), now its own crate
/// `ajwt-json`; re-exported so `ajwt_checksum::json::...` keeps working.
pub use ajwt_json as json;

pub use canonical::{
    canonical_bytes, canonical_digest, jcs_canonicalize, python_dumps, Profile, UnknownProfile,
};
pub use checksum::{AgentChecksum, ChecksumFormatError};
pub use error::{ChecksumError, ErrorKind};
pub use normalize::normalize_prompt;
pub use spec::{is_valid_agent_id, AgentSpec, ChecksumLevel, Tool};

/// The result of checksumming one specification.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    /// The agent identifier of the specification.
    pub agent_id: String,
    /// The profile used.
    pub profile: Profile,
    /// The exact bytes that were hashed.
    pub canonical: Vec<u8>,
    /// `SHA-256(canonical)`.
    pub checksum: AgentChecksum,
}

/// Canonicalizes and hashes a specification.
pub fn compute(spec: &AgentSpec, profile: Profile) -> Result<Computed, ChecksumError> {
    let canonical = canonical_bytes(spec, profile)?;
    Ok(Computed {
        agent_id: spec.agent_id.clone(),
        profile,
        checksum: AgentChecksum::digest(&canonical),
        canonical,
    })
}

/// Reads a JSON agent specification strictly, then [`compute`]s it.
pub fn compute_json(input: &[u8], profile: Profile) -> Result<Computed, ChecksumError> {
    compute(&AgentSpec::from_json(input)?, profile)
}

/// The checksum only, hashed while canonicalizing (no canonical bytes in
/// memory): the fast path for callers that do not keep
/// [`Computed::canonical`] (issue 15, I-135). Same result and errors as
/// `compute(spec, profile).map(|c| c.checksum)`.
pub fn compute_checksum(
    spec: &AgentSpec,
    profile: Profile,
) -> Result<AgentChecksum, ChecksumError> {
    canonical_digest(spec, profile)
}

/// [`compute_checksum`] of a JSON agent specification read strictly; same
/// result and errors as `compute_json(input, profile).map(|c| c.checksum)`.
pub fn compute_checksum_json(
    input: &[u8],
    profile: Profile,
) -> Result<AgentChecksum, ChecksumError> {
    // I-140: the document read once without copying its strings, then the
    // same spec reader, validation and canonical writer as `compute_json`.
    let value = json::parse_strict_borrowed(input)?;
    canonical::digest_of(&spec::read_spec(value)?, profile)
}

impl AgentSpec {
    /// The checksum of this specification under `profile` ([`compute_checksum`]).
    pub fn checksum(&self, profile: Profile) -> Result<AgentChecksum, ChecksumError> {
        canonical_digest(self, profile)
    }
}
