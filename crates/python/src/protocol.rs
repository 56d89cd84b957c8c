//! The issuer's request rules from Python (I-171): the `agent_checksum`
//! token request decoder (§4.2.1, §4.3.1, §4.5.2, §4.5.6) and the workflow
//! step authorization (§4.3.3 steps 2–4, §4.5.5, §6.6.4) of `ajwt-protocol`,
//! the functions `ajwt serve` itself runs. An agent or orchestrator can check
//! a request or a step before sending it; the conformance adapter over the
//! package runs the token-request and workflow vectors through them.

use ajwt_protocol::error::OAuthError;
use ajwt_protocol::registration::decode_workflow_registration;
use ajwt_protocol::wire::decode_token_request as decode;
use ajwt_protocol::workflow::authorize_step as authorize;
use pyo3::prelude::*;
use serde_json::Value;

use crate::errors::ProtocolError;
use crate::pyjson;

/// The JSON text of `obj` (dict, str or bytes) or a TypeError.
fn body_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    pyjson::document_bytes(obj)?.ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!("{what} must be a dict, str or bytes"))
    })
}

/// A [`ProtocolError`] with the issuer's answer: `.error` (OAuth code),
/// `.status`, `.description`, and for a refused workflow step `.reason`
/// and `.missing_steps`.
fn protocol_error(py: Python<'_>, e: &OAuthError) -> PyErr {
    let err =
        PyErr::new::<ProtocolError, _>(format!("{} {}: {}", e.status(), e.code(), e.description()));
    let set = || -> PyResult<()> {
        let v = err.value(py);
        v.setattr("error", e.code())?;
        v.setattr("status", e.status())?;
        v.setattr("description", e.description())?;
        if let OAuthError::WorkflowStepUnauthorized {
            reason,
            missing_steps,
        } = e
        {
            v.setattr("reason", reason.reason_name())?;
            v.setattr("missing_steps", missing_steps.clone())?;
        }
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(x) => x,
    }
}

/// decode_token_request(body) -> dict
///
/// Decodes an `agent_checksum` token request body (§4.2.1; JSON as dict,
/// str or bytes, read strictly) exactly as `ajwt serve` does: the ten
/// members grant_type, agent_id, computed_checksum, workflow_id,
/// workflow_step, workflow_enabled, requested_scopes, audience,
/// delegation_context {chain, completed_steps}, parent_token (absent
/// optionals as None). Raises ProtocolError (`.error` "invalid_request",
/// `.status` 400, `.description`) as the issuer answers (§4.5.6).
#[pyfunction]
fn decode_token_request<'py>(body: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = body.py();
    let bytes = body_of(body, "body")?;
    let request = decode(&bytes).map_err(|e| protocol_error(py, &e))?;
    let mut decoded = serde_json::to_value(&request)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    if let Some(obj) = decoded.as_object_mut() {
        for k in ["workflow_id", "workflow_step", "parent_token"] {
            obj.entry(k).or_insert(Value::Null);
        }
    }
    pyjson::to_py(py, &decoded)
}

/// authorize_step(workflow, agent_id, workflow_step, completed_steps) -> None
///
/// Whether `agent_id` may execute `workflow_step` after `completed_steps`
/// (the request's delegation_context.completed_steps) in `workflow` (a
/// §6.3.3 / §4.7.2 workflow registration body as dict, str or bytes): the
/// issuer's rule (§4.3.3 steps 2–4, §4.5.5, §6.6.4). Returns None when
/// authorized; raises ProtocolError otherwise (`.error`
/// "workflow_step_unauthorized", `.status` 403, `.reason`,
/// `.missing_steps`; or the registration's own 400 when the workflow body is
/// refused).
#[pyfunction]
fn authorize_step(
    workflow: &Bound<'_, PyAny>,
    agent_id: &str,
    workflow_step: &str,
    completed_steps: Vec<String>,
) -> PyResult<()> {
    let py = workflow.py();
    let bytes = body_of(workflow, "workflow")?;
    let workflow = decode_workflow_registration(&bytes).map_err(|e| protocol_error(py, &e))?;
    authorize(&workflow, agent_id, workflow_step, &completed_steps)
        .map_err(|e| protocol_error(py, &e))
}

/// Adds this part's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_token_request, m)?)?;
    m.add_function(wrap_pyfunction!(authorize_step, m)?)?;
    Ok(())
}
