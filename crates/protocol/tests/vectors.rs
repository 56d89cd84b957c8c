//! Runs the protocol conformance vectors (conformance/vectors/*.json; expected
//! values from CPython's hashlib or from the draft's text via
//! conformance/tools/gen_protocol_vectors.py, never from this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use ajwt_protocol::error::StepDenial;
use ajwt_protocol::hashes::{delegation_chain_hash, step_sequence_hash};
use ajwt_protocol::registration::decode_workflow_registration;
use ajwt_protocol::wire::decode_token_request;
use ajwt_protocol::workflow::authorize_step;
use ajwt_protocol::OAuthError;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/vectors")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Runs `check` on every test of a vector file; checks the header, tcIds and
/// flags; fails listing every failed vector.
fn run(name: &str, algorithm: &str, mut check: impl FnMut(&Value) -> Result<(), String>) {
    let doc = load(name);
    assert_eq!(doc["algorithm"], algorithm);
    let notes = doc["notes"].as_object().unwrap();
    let mut ids = BTreeSet::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            count += 1;
            let id = t["tcId"].as_u64().unwrap();
            assert!(ids.insert(id), "{name}: duplicate tcId {id}");
            for flag in t["flags"].as_array().unwrap() {
                assert!(
                    notes.contains_key(flag.as_str().unwrap()),
                    "{name} tcId {id}: undocumented flag {flag}"
                );
            }
            if let Err(e) = check(t) {
                failures.push(format!("tcId {id} ({}): {e}", t["comment"]));
            }
        }
    }
    assert_eq!(
        count,
        doc["numberOfTests"].as_u64().unwrap() as usize,
        "{name}"
    );
    assert!(
        count >= 25,
        "{name}: the issue asks for at least 25 vectors, found {count}"
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn reason_name(r: &StepDenial) -> &'static str {
    r.reason_name()
}

#[test]
fn s4_4_4_sequence_hash_vectors() {
    run("sequence_hashes.json", "sequence-hash", |t| {
        let chain = strings(&t["chain"]);
        let completed = strings(&t["completed_steps"]);
        let got_chain = delegation_chain_hash(&chain, t["agent_id"].as_str().unwrap());
        let got_steps = step_sequence_hash(&completed, t["workflow_step"].as_str());
        if got_chain != t["delegation_chain"] || got_steps != t["step_sequence_hash"] {
            return Err(format!("got {got_chain} / {got_steps}"));
        }
        Ok(())
    });
}

#[test]
fn s4_3_3_workflow_authorization_vectors() {
    run(
        "workflow_authorization.json",
        "workflow-step-authorization",
        |t| {
            // The exact registration body: object member order is the step order.
            let body = t["workflow"].as_str().unwrap().as_bytes();
            let workflow =
                decode_workflow_registration(body).map_err(|e| format!("workflow refused: {e}"))?;
            let req = &t["request"];
            let got = authorize_step(
                &workflow,
                req["agent_id"].as_str().unwrap(),
                req["workflow_step"].as_str().unwrap(),
                &strings(&req["completed_steps"]),
            );
            match (t["result"].as_str().unwrap(), got) {
                ("valid", Ok(())) => Ok(()),
                ("invalid", Err(e @ OAuthError::WorkflowStepUnauthorized { .. })) => {
                    let OAuthError::WorkflowStepUnauthorized {
                        reason,
                        missing_steps,
                    } = &e
                    else {
                        unreachable!()
                    };
                    let want = (
                        t["error"].as_str().unwrap(),
                        t["status"].as_u64().unwrap() as u16,
                        t["reason"].as_str().unwrap(),
                        t["description"].as_str().unwrap().to_owned(),
                        strings(&t["missing_steps"]),
                    );
                    let got = (
                        e.code(),
                        e.status(),
                        reason_name(reason),
                        e.description(),
                        missing_steps.clone(),
                    );
                    if got == want {
                        Ok(())
                    } else {
                        Err(format!("want {want:?}, got {got:?}"))
                    }
                }
                (want, got) => Err(format!("want {want}, got {got:?}")),
            }
        },
    );
}

#[test]
fn s4_5_token_request_decoding_vectors() {
    run(
        "token_request_decoding.json",
        "token-request-decoding",
        |t| {
            let got = decode_token_request(t["body"].as_str().unwrap().as_bytes());
            match (t["result"].as_str().unwrap(), got) {
                ("valid", Ok(r)) => {
                    let d = &t["decoded"];
                    let mut ours = serde_json::to_value(&r).unwrap();
                    // Normalize our optional members to the vector's explicit nulls.
                    for k in ["workflow_id", "workflow_step", "parent_token"] {
                        if ours.get(k).is_none() {
                            ours[k] = Value::Null;
                        }
                    }
                    if &ours == d {
                        Ok(())
                    } else {
                        Err(format!("want {d}, got {ours}"))
                    }
                }
                ("invalid", Err(e)) => {
                    let want = (
                        t["error"].as_str().unwrap(),
                        t["status"].as_u64().unwrap() as u16,
                        t["description"].as_str().unwrap().to_owned(),
                    );
                    let got = (e.code(), e.status(), e.description());
                    if got == want {
                        Ok(())
                    } else {
                        Err(format!("want {want:?}, got {got:?}"))
                    }
                }
                (want, got) => Err(format!("want {want}, got {got:?}")),
            }
        },
    );
}
