//! In-process HTTP tests of every endpoint and error path of the issuer:
//! client credentials (RFC 6749 §4.4, RFC 9068), token-endpoint and
//! registration protection (§4.2.3, §9.1.3), agent registration (§5.4, §6.2),
//! workflow registration (§6.3.3, §4.7.2), the `agent_checksum` grant with the
//! errors and precedence of §4.3.1/§4.5, the intent token (§4.4), and
//! malformed HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod agent_checksum_grant;
mod agent_registration;
mod bearer_protection;
mod client_credentials;
mod http_discovery_health;
mod workflow_registration;

use std::collections::BTreeSet;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::store::NewRegistration;
use ajwt_issuer::IssuerConfig;
use axum::body::Body;
use axum::http::Request;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Map, Value};

const MISSING_BEARER: &str = "Missing bearer token (RFC 6750)";
const NOT_BEARER: &str = "Authorization must be 'Bearer <token>'";
const MALFORMED_TOKEN: &str =
    "Token rejected: malformed token: not a compact JWS with a valid header";
const BAD_SIGNATURE: &str = "Token rejected: signature verification failed";
/// RFC 6749 §5.2 `unsupported_grant_type` for a grant never served (I-53).
const BOTH_GRANTS: &str = "Grant type must be 'client_credentials' or 'agent_checksum'";
const STEP_DENIED: &str = "Agent not authorized for workflow step.";
const PREREQS: &str =
    "Agent not authorized for workflow step. Required prerequisite steps not completed.";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().expect("object")
}

fn obj_mut(v: &mut Value) -> &mut Map<String, Value> {
    v.as_object_mut().expect("object")
}

/// Three registered agents of the §6.6 scenario.
async fn scenario(h: &Harness, admin: &str) -> (TestAgent, TestAgent, TestAgent) {
    let s = TestAgent::new("supervisor-agent");
    let p = TestAgent::new("patch-planner");
    let v = TestAgent::new("vulnerability-patcher-v1");
    for a in [&s, &p, &v] {
        h.register(admin, a).await;
    }
    (s, p, v)
}
