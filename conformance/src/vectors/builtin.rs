//! The built-in target: answers adapter-protocol requests in-process with
//! our crates (`ajwt-checksum` for §5.2–§5.3, `ajwt-protocol` for §4.2.1,
//! §4.3.3, §4.4.4, §4.5). It takes and returns exactly the JSON an adapter
//! would (conformance/adapters/PROTOCOL.md), so every built-in run also
//! exercises the protocol.

use ajwt_checksum::{compute_json, Profile};
use ajwt_protocol::error::StepDenial;
use ajwt_protocol::hashes::{delegation_chain_hash, step_sequence_hash};
use ajwt_protocol::registration::decode_workflow_registration;
use ajwt_protocol::wire::decode_token_request;
use ajwt_protocol::workflow::authorize_step;
use ajwt_protocol::OAuthError;
use serde_json::{json, Value};

use super::protocol::{Op, PROTOCOL};

/// Version of `ajwt-checksum` and `ajwt-protocol` (workspace-versioned with
/// this crate).
pub const CRATES_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The target string of a built-in run.
pub fn description() -> String {
    format!("built-in (ajwt-checksum {CRATES_VERSION}, ajwt-protocol {CRATES_VERSION})")
}

fn protocol_error(code: &str, message: impl Into<String>) -> Value {
    json!({"error": code, "message": message.into()})
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The `reason` name of a step denial (workflow_authorization.json `reasons`).
pub fn reason_name(r: &StepDenial) -> &'static str {
    r.reason_name()
}

fn oauth_invalid(e: &OAuthError) -> Value {
    let mut v = json!({
        "result": "invalid",
        "error": e.code(),
        "status": e.status(),
        "description": e.description(),
    });
    if let OAuthError::WorkflowStepUnauthorized {
        reason,
        missing_steps,
    } = e
    {
        v["reason"] = json!(reason_name(reason));
        v["missing_steps"] = json!(missing_steps);
    }
    v
}

/// Answers one request (never fails: bad requests get a protocol error
/// response, as an adapter's would).
pub fn handle(request: &Value) -> Value {
    let mut response = answer(request);
    if let (Some(id), Some(obj)) = (request.get("id"), response.as_object_mut()) {
        obj.insert("id".to_owned(), id.clone());
    }
    response
}

fn answer(request: &Value) -> Value {
    let op = request.get("op").and_then(Value::as_str).unwrap_or("");
    if op == "hello" {
        return json!({
            "protocol": PROTOCOL,
            "name": "ajwt built-in",
            "version": CRATES_VERSION,
            "ops": ["checksum", "sequence_hash", "authorize_step", "decode_token_request"],
        });
    }
    let Some(op) = Op::parse(op) else {
        return protocol_error("unsupported_op", format!("unknown op {op:?}"));
    };
    let str_of = |name: &str| request.get(name).and_then(Value::as_str);
    match op {
        // §5.3.1 (profile jcs) / §5.3.2 (profile python-ref).
        Op::Checksum => {
            let (Some(profile), Some(spec)) = (str_of("profile"), str_of("spec")) else {
                return protocol_error("bad_request", "checksum needs string profile and spec");
            };
            let profile: Profile = match profile.parse() {
                Ok(p) => p,
                Err(e) => return protocol_error("bad_request", format!("{e}")),
            };
            match compute_json(spec.as_bytes(), profile) {
                Ok(c) => match String::from_utf8(c.canonical) {
                    Ok(canonical) => json!({
                        "result": "valid",
                        "checksum": c.checksum.to_string(),
                        "canonical": canonical,
                    }),
                    Err(_) => json!({
                        "result": "valid",
                        "checksum": c.checksum.to_string(),
                    }),
                },
                Err(e) => json!({
                    "result": "invalid",
                    "error": e.kind().as_str(),
                    "message": e.to_string(),
                }),
            }
        }
        // §4.4.4.
        Op::SequenceHash => {
            let (Some(chain), Some(agent_id), Some(completed)) = (
                strings(request.get("chain")),
                str_of("agent_id"),
                strings(request.get("completed_steps")),
            ) else {
                return protocol_error(
                    "bad_request",
                    "sequence_hash needs chain, agent_id and completed_steps",
                );
            };
            json!({
                "result": "valid",
                "delegation_chain": delegation_chain_hash(&chain, agent_id),
                "step_sequence_hash": step_sequence_hash(&completed, str_of("workflow_step")),
            })
        }
        // §4.3.3 steps 2–4, §4.5.5, §6.6.4.
        Op::AuthorizeStep => {
            let (Some(workflow), Some(agent_id), Some(step), Some(completed)) = (
                str_of("workflow"),
                str_of("agent_id"),
                str_of("workflow_step"),
                strings(request.get("completed_steps")),
            ) else {
                return protocol_error(
                    "bad_request",
                    "authorize_step needs workflow, agent_id, workflow_step and completed_steps",
                );
            };
            let workflow = match decode_workflow_registration(workflow.as_bytes()) {
                Ok(w) => w,
                Err(e) => {
                    let mut v = oauth_invalid(&e);
                    v["message"] = json!(format!("workflow registration refused: {e}"));
                    return v;
                }
            };
            match authorize_step(&workflow, agent_id, step, &completed) {
                Ok(()) => json!({"result": "valid"}),
                Err(e) => oauth_invalid(&e),
            }
        }
        // §4.2.1, §4.3.1, §4.5.2, §4.5.6.
        Op::DecodeTokenRequest => {
            let Some(body) = str_of("body") else {
                return protocol_error("bad_request", "decode_token_request needs a string body");
            };
            match decode_token_request(body.as_bytes()) {
                Ok(r) => match serde_json::to_value(&r) {
                    Ok(mut decoded) => {
                        // The protocol lists every member, absent optionals as null.
                        if let Some(obj) = decoded.as_object_mut() {
                            for k in ["workflow_id", "workflow_step", "parent_token"] {
                                obj.entry(k).or_insert(Value::Null);
                            }
                        }
                        json!({"result": "valid", "decoded": decoded})
                    }
                    Err(e) => protocol_error("internal", e.to_string()),
                },
                Err(e) => oauth_invalid(&e),
            }
        }
    }
}
