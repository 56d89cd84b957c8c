//! Protocol rules of *draft-goswami-agentic-jwt-00* (Agentic JWT) that need
//! neither a network nor a database, shared by the issuer, the resource-server
//! verifier, the client shim and the conformance suite.
//!
//! It implements the token request of the `agent_checksum` grant and its exact
//! `invalid_request` / `unsupported_grant_type` decoding (§4.2, §4.3.1,
//! §4.5), the token and error responses (§4.4.1, §4.5.1), the intent-token
//! claims and their validation (§4.4.2), the sequence hashes (§4.4.4), agent
//! and workflow registration types (§4.7, §5.4, §6.2, §6.3.3), workflow step
//! authorization and approval gates (§4.3.3, §4.5.5, §6.6.4, §9.3), scope
//! binding (anchor A3, §9.5) and delegation-chain validation (§4.3.4, §6.6.4,
//! §9.3.2). No I/O, no async, no signing. Where the draft is ambiguous the
//! choice is recorded in `spec/interpretation.md`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audience;
pub mod challenge;
pub mod claims;
pub mod clock;
pub mod delegation;
pub mod error;
pub mod grant;
pub mod hashes;
pub mod limits;
pub mod metadata;
pub mod registration;
pub mod scope;
pub mod status_list;
pub mod time;
pub mod wire;
pub mod workflow;

pub use error::{ErrorResponse, OAuthError, StepDenial};
