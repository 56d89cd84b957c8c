//! Fuzz targets of agentic-jwt (issue 12 "Fuzzing and properties"; §9.4.3).
//!
//! Every target is one function from arbitrary bytes to `bool` (whether the
//! input was accepted: the tests check that seeds reach the accepting paths)
//! that panics only
//! when an invariant is broken: a decoder panicked, accepted something beyond
//! the documented limits (`ajwt_protocol::limits`), or gave a result that a
//! second computation contradicts. The same functions are run three ways:
//! by libFuzzer through `cargo fuzz` (the project in `crates/fuzz/fuzz`, see
//! `crates/fuzz/README.md`), over the committed seed and regression corpora
//! (`crates/fuzz/corpus/<target>/`) by `cargo test -p ajwt-fuzz`, and on
//! proptest-generated inputs in the same tests.
//!
//! Targets and the draft sections they exercise: agent specifications with
//! both checksum profiles (§5.2, §5.3), RFC 8785 canonicalization round trips
//! (§5.3.1), token-request decoding as JSON and as a form (§4.2.1), workflow
//! and agent registration decoding (§5.4, §6.3), intent-token verification
//! (§6.5.3, RFC 8725), DPoP proof verification (RFC 9449 §4.3), JWK, JWK Set
//! and PEM key parsing (RFC 7517, RFC 7638), and the issuer's whole router
//! (arbitrary method, path, headers and body through
//! `tower::ServiceExt::oneshot`).
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod decoders;
mod jose;
mod router;

pub use decoders::{agent_spec, jcs, registration, token_request};
pub use jose::{dpop_proof, intent_token, keys};
pub use router::router;

/// A fuzz target: arbitrary bytes in, whether the input was accepted out.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name, as `cargo fuzz` and the corpus directories call them.
pub const TARGETS: [(&str, Target); 8] = [
    ("agent_spec", agent_spec),
    ("jcs", jcs),
    ("token_request", token_request),
    ("registration", registration),
    ("intent_token", intent_token),
    ("dpop_proof", dpop_proof),
    ("keys", keys),
    ("router", router),
];
