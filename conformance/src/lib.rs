//! `ajwt-conformance`: the conformance suite of *draft-goswami-agentic-jwt-00*
//! (Agentic JWT), exposed as `ajwt conformance …`. Implementers of the draft
//! in any language run it against their own code in three modes:
//!
//! * **vectors** ([`vectors`]): every file of `conformance/vectors/` (agent
//!   checksums §5.2–§5.3, sequence hashes §4.4.4, workflow step
//!   authorization §4.3.3/§4.5.5/§6.6, token request decoding §4.2.1/§4.5),
//!   run against our crates or, through a line-delimited JSON adapter
//!   protocol, against any program;
//! * **issuer** ([`issuer`]): black-box HTTP tests of an authorization server
//!   (§4, §5.4–§5.6, §6.2–§6.4, §9.1): discovery, registration, every §4.5
//!   error with its status and §4.3.1 precedence, workflow rules, delegation,
//!   the §4.4.2 claims of issued intent tokens and endpoint protection;
//! * **verifier** ([`verifier`]): the suite acts as a test issuer and sends a
//!   resource server good and bad intent tokens and DPoP proofs (§6.5.3,
//!   §9.2), expecting acceptance or the right 401/403 challenge.
//!
//! Each test carries an id, a draft section, the requirement keyword as the
//! draft writes it and the ids of `spec/requirements.json` it covers; the
//! [`report`] module turns results into pass / fail / warning / skipped and
//! writes the terminal, JSON and JUnit reports.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod issuer;
pub mod report;
pub mod vectors;
pub mod verifier;

use sha2::{Digest, Sha256};

/// The vector files, embedded so the suite runs without a checkout
/// (`--vectors-dir` reads another copy). Names are relative to
/// `conformance/vectors/`.
pub const VECTOR_FILES: &[(&str, &str)] = &[
    ("checksum.json", include_str!("../vectors/checksum.json")),
    (
        "sequence_hashes.json",
        include_str!("../vectors/sequence_hashes.json"),
    ),
    (
        "workflow_authorization.json",
        include_str!("../vectors/workflow_authorization.json"),
    ),
    (
        "token_request_decoding.json",
        include_str!("../vectors/token_request_decoding.json"),
    ),
];

/// The version of the embedded vectors: the `vectorsVersion` member their
/// files share and a digest over all of them (so two runs can tell whether
/// they used the same vectors).
pub fn vectors_version() -> String {
    vectors_version_of(VECTOR_FILES.iter().map(|(name, text)| (*name, *text)))
}

/// The version string of any set of vector files given as (name, text)
/// pairs (`--vectors-dir` copies as well as the embedded ones).
pub fn vectors_version_of<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    let mut version = String::from("unversioned");
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(s) = v.get("vectorsVersion").and_then(|s| s.as_str()) {
                version = s.to_owned();
            }
        }
    }
    let digest = hex::encode(h.finalize());
    format!("{version} (sha256:{})", digest.get(..16).unwrap_or(&digest))
}

/// A run could not start or could not go on (bad options, unreachable
/// target, unusable adapter): reported as `error: …` with exit status 2,
/// distinct from test failures (exit status 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The catalogue or the options are inconsistent.
    #[error(transparent)]
    Run(#[from] report::RunError),
    /// The target or the environment is not usable.
    #[error("{0}")]
    Setup(String),
}
