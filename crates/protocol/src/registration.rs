//! Agent registration (§5.4, §6.2) and workflow registration (§4.7.2, §6.3.3)
//! request/response types and their strict decoding.

use ajwt_checksum::json::{parse_strict, Value};
use ajwt_checksum::{is_valid_agent_id, AgentChecksum, AgentSpec, Profile};
use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::limits;
use crate::scope::is_scope_token;

/// One step of a workflow (§4.7.2), plus the `scopes` extension (anchor A3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStep {
    /// Unique step identifier (same syntax as agent ids).
    pub step_id: String,
    /// Must be completed before later steps (default `true`, see I-20).
    pub required: bool,
    /// Needs the most recent approval gate before it completed (§4.3.3 step 4).
    pub requires_approval: bool,
    /// This step is an approval gate.
    pub approval_gate: bool,
    /// The only agent allowed to execute the step (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Extension: the scopes a token for this step may carry (anchor A3).
    /// `None`: no step-level restriction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// A registered workflow: ordered steps (§4.7.2 "Ordered array").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// Unique workflow identifier.
    pub workflow_id: String,
    /// Steps in execution order.
    pub steps: Vec<WorkflowStep>,
}

impl Workflow {
    /// Position of a step.
    pub fn position(&self, step_id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.step_id == step_id)
    }

    /// A step by id.
    pub fn step(&self, step_id: &str) -> Option<&WorkflowStep> {
        self.steps.iter().find(|s| s.step_id == step_id)
    }
}

/// Response of a successful workflow registration (§6.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRegistrationResponse {
    /// Always `registered`.
    pub status: String,
    /// The workflow registered.
    pub workflow_id: String,
}

fn invalid(msg: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequest(msg.into())
}

fn bool_member(step: &str, key: &str, v: &Value) -> Result<bool, OAuthError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(invalid(format!(
            "Invalid workflow step '{step}': {key} must be a boolean, found {}",
            other.type_name()
        ))),
    }
}

fn string_list(v: &Value, what: &str, max: usize) -> Result<Vec<String>, OAuthError> {
    let Value::Array(items) = v else {
        return Err(invalid(format!("{what} must be an array of strings")));
    };
    if items.len() > max {
        return Err(invalid(format!("{what} has more than {max} entries")));
    }
    items
        .iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(format!("{what} must be an array of strings"))),
        })
        .collect()
}

/// Decodes one step definition; `id` is `Some` for the object form (§6.3.3),
/// where the member name is the step id.
fn decode_step(id: Option<&str>, v: &Value, index: usize) -> Result<WorkflowStep, OAuthError> {
    let label = id.map_or_else(|| format!("steps[{index}]"), str::to_owned);
    let Value::Object(members) = v else {
        return Err(invalid(format!(
            "Invalid workflow step '{label}': must be an object"
        )));
    };
    let mut step = WorkflowStep {
        step_id: id.unwrap_or_default().to_owned(),
        required: true,
        requires_approval: false,
        approval_gate: false,
        agent_id: None,
        scopes: None,
    };
    let mut has_id = id.is_some();
    for (key, v) in members {
        if matches!(v, Value::Null) && key != "step_id" {
            continue;
        }
        match key.as_str() {
            "step_id" if id.is_none() => match v {
                Value::String(s) => {
                    step.step_id = s.clone();
                    has_id = true;
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid workflow step '{label}': step_id must be a string"
                    )))
                }
            },
            "required" => step.required = bool_member(&label, key, v)?,
            "requires_approval" => step.requires_approval = bool_member(&label, key, v)?,
            "approval_gate" => step.approval_gate = bool_member(&label, key, v)?,
            "agent_id" => match v {
                Value::String(s) => step.agent_id = Some(s.clone()),
                _ => {
                    return Err(invalid(format!(
                        "Invalid workflow step '{label}': agent_id must be a string"
                    )))
                }
            },
            "scopes" => {
                step.scopes = Some(string_list(
                    v,
                    &format!("Invalid workflow step '{label}': scopes"),
                    limits::MAX_SCOPES,
                )?)
            }
            other => {
                return Err(invalid(format!(
                    "Invalid workflow step '{label}': unknown member '{other}'"
                )))
            }
        }
    }
    if !has_id {
        return Err(invalid(format!(
            "Invalid workflow step '{label}': missing step_id"
        )));
    }
    Ok(step)
}

/// Registration-time validation of a workflow (§9.3): non-empty; unique step
/// ids with agent-id syntax; every `requires_approval` step has an approval
/// gate before it; a gate is not assigned to an agent; agent ids and scopes
/// well-formed. Violations are `invalid_request` naming the step.
pub fn validate_workflow(w: &Workflow) -> Result<(), OAuthError> {
    if !is_valid_agent_id(&w.workflow_id) {
        return Err(invalid(format!(
            "Invalid workflow_id '{}': must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
            w.workflow_id
        )));
    }
    if w.steps.is_empty() {
        return Err(invalid("Workflow must define at least one step"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut gate_seen = false;
    for step in &w.steps {
        let id = &step.step_id;
        if !is_valid_agent_id(id) {
            return Err(invalid(format!(
                "Invalid workflow step '{id}': step ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"
            )));
        }
        if !seen.insert(id.as_str()) {
            return Err(invalid(format!(
                "Invalid workflow step '{id}': duplicate step id"
            )));
        }
        if let Some(agent) = &step.agent_id {
            if !is_valid_agent_id(agent) {
                return Err(invalid(format!(
                    "Invalid workflow step '{id}': invalid agent_id '{agent}'"
                )));
            }
            if step.approval_gate {
                return Err(invalid(format!(
                    "Invalid workflow step '{id}': an approval gate cannot be assigned to an agent"
                )));
            }
        }
        if step.requires_approval && !gate_seen {
            return Err(invalid(format!(
                "Invalid workflow step '{id}': requires approval but no approval gate precedes it"
            )));
        }
        if let Some(scopes) = &step.scopes {
            if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(invalid(format!(
                    "Invalid workflow step '{id}': malformed scope '{bad}'"
                )));
            }
        }
        gate_seen |= step.approval_gate;
    }
    Ok(())
}

/// Decodes and validates a workflow registration request (§6.3.3). `steps`
/// is an object whose member order is the step order (as in §6.3.3) or an
/// array of `{step_id, required, requires_approval, approval_gate, agent_id?,
/// scopes?}` (§4.7.2).
pub fn decode_workflow_registration(body: &[u8]) -> Result<Workflow, OAuthError> {
    let value = parse_strict(body).map_err(|_| invalid("Invalid JSON format"))?;
    let Value::Object(members) = &value else {
        return Err(invalid("Invalid JSON format"));
    };
    let mut workflow_id = None;
    let mut steps = None;
    for (key, v) in members {
        match key.as_str() {
            "workflow_id" => match v {
                Value::String(s) if !s.is_empty() => workflow_id = Some(s.clone()),
                Value::String(_) | Value::Null => {}
                _ => return Err(invalid("Invalid parameter: workflow_id must be a string")),
            },
            "steps" => {
                let count = match v {
                    Value::Object(m) => m.len(),
                    Value::Array(items) => items.len(),
                    _ => 0,
                };
                if count > limits::MAX_WORKFLOW_STEPS {
                    return Err(invalid(limits::too_many(
                        "steps",
                        limits::MAX_WORKFLOW_STEPS,
                    )));
                }
                steps = Some(match v {
                    Value::Object(m) => m
                        .iter()
                        .enumerate()
                        .map(|(i, (id, s))| decode_step(Some(id), s, i))
                        .collect::<Result<Vec<_>, _>>()?,
                    Value::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, s)| decode_step(None, s, i))
                        .collect::<Result<Vec<_>, _>>()?,
                    Value::Null => continue,
                    _ => {
                        return Err(invalid(
                            "Invalid parameter: steps must be an object or an array",
                        ))
                    }
                })
            }
            _ => {} // Unknown top-level members are ignored, as in OAuth requests.
        }
    }
    let workflow = Workflow {
        workflow_id: workflow_id.ok_or_else(|| OAuthError::missing("workflow_id"))?,
        steps: steps.ok_or_else(|| OAuthError::missing("steps"))?,
    };
    validate_workflow(&workflow)?;
    Ok(workflow)
}

/// An agent's public key for the `cnf` claim (§4.4.2, §6.2.3 step 2): a JWK
/// (RFC 7517) or a PEM `PUBLIC KEY` block as in the draft's examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PublicKeyInput {
    /// A JWK object.
    Jwk(serde_json::Map<String, serde_json::Value>),
    /// A PEM-encoded SubjectPublicKeyInfo.
    Pem(String),
}

/// An agent registration request (§5.4.1, §6.2.3): the agent specification
/// members of §5.2.1 at top level, plus the registration members
/// `public_key` (optional), `checksum` (optional: the checksum the client
/// computed, which must equal the server's, §6.2.3 step 4),
/// `checksum_profile` (`jcs` default, or `python-ref`), `app_id` (optional)
/// and `allowed_scopes` (optional: the scopes the agent may ever be granted,
/// anchor A3).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRegistrationRequest {
    /// The agent specification.
    pub spec: AgentSpec,
    /// The agent's proof-of-possession key.
    pub public_key: Option<PublicKeyInput>,
    /// The checksum the client claims.
    pub checksum: Option<AgentChecksum>,
    /// The canonicalization profile.
    pub checksum_profile: Profile,
    /// Application the agent belongs to (§5.4.2 step 5).
    pub app_id: Option<String>,
    /// Scopes the agent may be granted (`None`: no agent-level restriction).
    pub allowed_scopes: Option<Vec<String>>,
}

const REGISTRATION_MEMBERS: [&str; 5] = [
    "public_key",
    "checksum",
    "checksum_profile",
    "app_id",
    "allowed_scopes",
];

/// Decodes an agent registration request. Specification errors are
/// `invalid_request` with the checksum crate's one-line message.
pub fn decode_agent_registration(body: &[u8]) -> Result<AgentRegistrationRequest, OAuthError> {
    let value = parse_strict(body).map_err(|e| match e {
        ajwt_checksum::json::JsonError::Syntax(_) => invalid("Invalid JSON format"),
        other => invalid(format!(
            "Invalid agent specification: {}",
            ajwt_checksum::ChecksumError::from(other)
        )),
    })?;
    let Value::Object(members) = value else {
        return Err(invalid("Invalid JSON format"));
    };
    let (extra, spec_members): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(k, _)| REGISTRATION_MEMBERS.contains(&k.as_str()));
    let mut request = AgentRegistrationRequest {
        spec: AgentSpec::from_owned_value(Value::Object(spec_members))
            .map_err(|e| invalid(format!("Invalid agent specification: {e}")))?,
        public_key: None,
        checksum: None,
        checksum_profile: Profile::Jcs,
        app_id: None,
        allowed_scopes: None,
    };
    for (key, v) in extra {
        match (key.as_str(), v) {
            (_, Value::Null) => {}
            ("public_key", Value::String(pem)) => request.public_key = Some(PublicKeyInput::Pem(pem)),
            ("public_key", v @ Value::Object(_)) => match v.to_serde_json() {
                serde_json::Value::Object(map) => request.public_key = Some(PublicKeyInput::Jwk(map)),
                _ => return Err(invalid("Invalid parameter: public_key")),
            },
            ("public_key", _) => {
                return Err(invalid("Invalid parameter: public_key must be a JWK object or a PEM string"))
            }
            ("checksum", Value::String(s)) => {
                request.checksum = Some(
                    AgentChecksum::parse(&s)
                        .map_err(|_| invalid(crate::wire::INVALID_CHECKSUM_FORMAT))?,
                )
            }
            ("checksum_profile", Value::String(s)) => {
                request.checksum_profile = s.parse().map_err(|_| {
                    invalid(format!("Invalid parameter: checksum_profile '{s}' (expected 'jcs' or 'python-ref')"))
                })?
            }
            ("app_id", Value::String(s)) => request.app_id = Some(s),
            ("allowed_scopes", v @ Value::Array(_)) => {
                let scopes = string_list(
                    &v,
                    "Invalid parameter: allowed_scopes",
                    limits::MAX_ALLOWED_SCOPES,
                )?;
                if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
                    return Err(invalid(format!(
                        "Invalid parameter: allowed_scopes: malformed scope '{bad}'"
                    )));
                }
                request.allowed_scopes = Some(scopes);
            }
            ("allowed_scopes", _) => {
                return Err(invalid("Invalid parameter: allowed_scopes must be an array of strings"))
            }
            (k, _) => return Err(invalid(format!("Invalid parameter: {k} must be a string"))),
        }
    }
    Ok(request)
}

/// The registration id of §5.4.2 step 4: `"reg_" + agent_id + "_" + timestamp`.
pub fn registration_id(agent_id: &str, unix_seconds: u64) -> String {
    format!("reg_{agent_id}_{unix_seconds}")
}

/// Successful agent registration response (§5.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRegistrationResponse {
    /// The agent.
    pub agent_id: String,
    /// The new registration's id.
    pub registration_id: String,
    /// The checksum the server computed (`sha256:<hex>`, I-4).
    pub checksum: AgentChecksum,
    /// Registration version (1 for the first, +1 per re-registration, §5.4.4).
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAFT_6_3_3: &str = r#"{
         "workflow_id": "auto-patch-workflow-v1",
         "steps": {
           "step_1_analyze_manifest": {"required": true, "requires_approval": false, "agent_id": "vulnerability-analyzer"},
           "step_2_create_patch_plan": {"required": true, "requires_approval": false, "agent_id": "patch-planner"},
           "step_3_approval_gate": {"required": true, "requires_approval": false, "approval_gate": true},
           "step_4_apply_patch": {"required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
           "step_5_verify_patch": {"required": true, "requires_approval": false, "agent_id": "patch-verifier"}
         }
       }"#;

    #[test]
    fn s6_3_3_object_form_keeps_member_order() {
        let w = decode_workflow_registration(DRAFT_6_3_3.as_bytes()).unwrap();
        let ids: Vec<&str> = w.steps.iter().map(|s| s.step_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "step_1_analyze_manifest",
                "step_2_create_patch_plan",
                "step_3_approval_gate",
                "step_4_apply_patch",
                "step_5_verify_patch"
            ]
        );
        assert!(w.steps[2].approval_gate);
        assert!(w.steps[3].requires_approval);
        assert_eq!(
            w.steps[3].agent_id.as_deref(),
            Some("vulnerability-patcher-v1")
        );
    }

    #[test]
    fn s4_7_2_array_form_decodes_to_the_same_workflow() {
        let object_form = decode_workflow_registration(DRAFT_6_3_3.as_bytes()).unwrap();
        let array_form = decode_workflow_registration(
            br#"{"workflow_id": "auto-patch-workflow-v1", "steps": [
                {"step_id": "step_1_analyze_manifest", "required": true, "requires_approval": false, "approval_gate": false, "agent_id": "vulnerability-analyzer"},
                {"step_id": "step_2_create_patch_plan", "required": true, "requires_approval": false, "approval_gate": false, "agent_id": "patch-planner"},
                {"step_id": "step_3_approval_gate", "required": true, "requires_approval": false, "approval_gate": true},
                {"step_id": "step_4_apply_patch", "required": true, "requires_approval": true, "approval_gate": false, "agent_id": "vulnerability-patcher-v1"},
                {"step_id": "step_5_verify_patch", "required": true, "requires_approval": false, "approval_gate": false, "agent_id": "patch-verifier"}]}"#,
        )
        .unwrap();
        assert_eq!(object_form, array_form);
    }

    #[test]
    fn s9_3_registration_time_validation() {
        let bad: &[(&str, &str)] = &[
            (
                r#"{"workflow_id":"w","steps":{}}"#,
                "Workflow must define at least one step",
            ),
            (
                r#"{"workflow_id":"w","steps":{"a":{"requires_approval":true},"g":{"approval_gate":true}}}"#,
                r#"Invalid workflow step 'a': requires approval but no approval gate precedes it"#,
            ),
            (
                r#"{"workflow_id":"w","steps":{"g":{"approval_gate":true,"agent_id":"x"}}}"#,
                r#"Invalid workflow step 'g': an approval gate cannot be assigned to an agent"#,
            ),
            (
                r#"{"workflow_id":"w","steps":[{"step_id":"a"},{"step_id":"a"}]}"#,
                r#"Invalid workflow step 'a': duplicate step id"#,
            ),
            (
                r#"{"workflow_id":"w","steps":{"a|b":{}}}"#,
                r#"Invalid workflow step 'a|b': step ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"#,
            ),
            (
                r#"{"workflow_id":"w","steps":{"a":{"scopes":["ok","bad scope"]}}}"#,
                r#"Invalid workflow step 'a': malformed scope 'bad scope'"#,
            ),
            (
                r#"{"workflow_id":"w","steps":{"a":{"requires_aproval":true}}}"#,
                r#"Invalid workflow step 'a': unknown member 'requires_aproval'"#,
            ),
            (
                r#"{"workflow_id":"w","steps":{"a":{"required":"yes"}}}"#,
                r#"Invalid workflow step 'a': required must be a boolean, found string"#,
            ),
            (
                r#"{"steps":{"a":{}}}"#,
                "Missing required parameter: workflow_id",
            ),
            (
                r#"{"workflow_id":"w"}"#,
                "Missing required parameter: steps",
            ),
            (
                r#"{"workflow_id":"w","workflow_id":"v","steps":{"a":{}}}"#,
                "Invalid JSON format",
            ),
            ("[]", "Invalid JSON format"),
        ];
        for (body, want) in bad {
            let e = decode_workflow_registration(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.code(), e.description().as_str()),
                ("invalid_request", *want),
                "{body}"
            );
        }
    }

    #[test]
    fn s5_4_agent_registration_request() {
        let r = decode_agent_registration(
            br#"{"agent_id":"a1","prompt":"p","tools":[],"public_key":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                 "checksum_profile":"python-ref","app_id":"app","allowed_scopes":["repo:write"]}"#,
        )
        .unwrap();
        assert_eq!(r.spec.agent_id, "a1");
        assert_eq!(r.checksum_profile, Profile::PythonRef);
        assert_eq!(r.allowed_scopes, Some(vec!["repo:write".to_owned()]));
        assert!(matches!(r.public_key, Some(PublicKeyInput::Jwk(ref m)) if m["crv"] == "Ed25519"));
        let e = decode_agent_registration(
            br#"{"agent_id":"a1","prompt":"p","tools":[],"checksum":"abc"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.description(),
            "Invalid checksum format (must be 'sha256:<hex>')"
        );
        let e = decode_agent_registration(
            br#"{"agent_id":"a1","prompt":"p","tools":[{"name":"x"},{"name":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.description(),
            r#"Invalid agent specification: tools[1].name: duplicate tool name 'x'"#
        );
        assert_eq!(
            registration_id("vulnerability-patcher-v1", 1735680000),
            "reg_vulnerability-patcher-v1_1735680000"
        );
    }
}
