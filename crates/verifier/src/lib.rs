//! Resource-server verification of *draft-goswami-agentic-jwt-00* intent
//! tokens: what an API, database gateway or MCP server links to accept them.
//! It implements the validation steps of §6.5.3 in order — token extraction,
//! issuer keys (static JWKS or RFC 8414 discovery with a rate-limited cache),
//! signature with an algorithm allow-list (RFC 8725), claims and `typ`, agent
//! proof, workflow binding, scopes (RFC 6750 §3.1) — and the draft's
//! agent-level proof-of-possession (§9.2.2) with DPoP (RFC 9449 §4.3): a token
//! stolen by another agent of the same process is useless without that
//! agent's private key. Refusals carry the exact status and
//! `WWW-Authenticate` challenge; an axum layer and extractor are included.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod axum_layer;
pub mod error;
pub mod keys;
pub mod nonce;
pub mod status_list;
pub mod verify;

pub use axum_layer::{CredentialHeaders, Intent, IntentLayer};
pub use error::{Scheme, VerifyError};
pub use keys::{
    cache_max_age, DiscoveryError, FetchError, Fetcher, HttpFetcher, KeySetError, KeySource,
    MAX_JWKS_FRESHNESS, MIN_JWKS_FRESHNESS,
};
pub use nonce::{NonceError, RotatingNonces, DEFAULT_NONCE_LIFETIME};
pub use status_list::{StatusCheckError, StatusListConfig, StatusListSource};
pub use verify::{
    Clock, FixedClock, InMemoryReplayCache, NonceSource, PopPolicy, ReplayCache, RequestParts,
    Requirements, RevocationSource, SystemClock, UnknownPopPolicy, VerifiedIntent, Verifier,
    VerifierConfig,
};
