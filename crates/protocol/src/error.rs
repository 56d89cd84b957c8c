//! OAuth 2.0 errors of the agent_checksum grant (§4.5, RFC 6749 §5.2) with
//! their exact codes, HTTP statuses and descriptions.

use serde::{Deserialize, Serialize};

/// Why a workflow step was refused (§4.3.3, §4.5.5, §6.6.4). The variant says
/// which rule failed; [`StepDenial::description`] is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepDenial {
    /// `workflow_id` is not in the workflow registry (§4.3.3 step 1).
    UnknownWorkflow {
        /// The workflow asked for.
        workflow_id: String,
    },
    /// `workflow_step` is not defined in the workflow (§4.3.3 step 2, §4.5.5).
    UnknownStep {
        /// The step asked for.
        step: String,
    },
    /// The step is assigned to another agent (§4.5.5 "Agent is not assigned to
    /// this workflow step", §6.6.4 item 4).
    AssignedToOtherAgent {
        /// The step asked for.
        step: String,
        /// The agent the workflow assigns it to.
        assigned_to: String,
    },
    /// Required steps before this one are not in `completed_steps` (§4.3.3 step 3).
    MissingPrerequisites,
    /// The step requires approval and the most recent approval gate before it is
    /// not completed, or there is no gate (§4.3.3 step 4).
    ApprovalGateNotCompleted {
        /// The gate that must be completed (`None`: the workflow has no gate before the step).
        gate: Option<String>,
    },
    /// `completed_steps` is not a possible execution history: it names an
    /// unknown step, the requested step itself, a later step, or a step twice.
    InvalidCompletedSteps {
        /// What is wrong, naming the step.
        detail: String,
    },
}

impl StepDenial {
    /// The stable name of the rule that failed, as the `reasons` of
    /// `conformance/vectors/workflow_authorization.json` spell it.
    pub fn reason_name(&self) -> &'static str {
        match self {
            StepDenial::UnknownWorkflow { .. } => "unknown_workflow",
            StepDenial::UnknownStep { .. } => "unknown_step",
            StepDenial::AssignedToOtherAgent { .. } => "assigned_to_other_agent",
            StepDenial::MissingPrerequisites => "missing_prerequisites",
            StepDenial::ApprovalGateNotCompleted { .. } => "approval_gate_not_completed",
            StepDenial::InvalidCompletedSteps { .. } => "invalid_completed_steps",
        }
    }

    /// The `error_description` for this denial.
    pub fn description(&self) -> String {
        match self {
            StepDenial::UnknownWorkflow { workflow_id } => {
                format!("Agent not authorized for workflow step. Workflow '{workflow_id}' is not registered.")
            }
            StepDenial::UnknownStep { step } => {
                format!("Agent not authorized for workflow step. Step '{step}' is not defined in the workflow.")
            }
            StepDenial::AssignedToOtherAgent { step, assigned_to } => format!(
                "Agent not authorized for workflow step. Step '{step}' is assigned to agent '{assigned_to}'."
            ),
            StepDenial::MissingPrerequisites => {
                "Agent not authorized for workflow step. Required prerequisite steps not completed."
                    .to_owned()
            }
            StepDenial::ApprovalGateNotCompleted { gate: Some(gate) } => format!(
                "Agent not authorized for workflow step. Step requires approval and approval gate '{gate}' is not completed."
            ),
            StepDenial::ApprovalGateNotCompleted { gate: None } => {
                "Agent not authorized for workflow step. Step requires approval and the workflow has no approval gate before it."
                    .to_owned()
            }
            StepDenial::InvalidCompletedSteps { detail } => {
                format!("Agent not authorized for workflow step. Invalid completed_steps: {detail}.")
            }
        }
    }
}

/// An OAuth error of the token or registration endpoints (§4.5). Each code
/// knows its HTTP status exactly (§4.5.2–§4.5.6, §5.4.3, RFC 6749 §5.2,
/// RFC 9449 §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// `invalid_request`, 400 (§4.5.6).
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `unsupported_grant_type`, 400 (§4.5.2).
    #[error("unsupported_grant_type: {}", UNSUPPORTED_GRANT_TYPE)]
    UnsupportedGrantType,
    /// `unsupported_grant_type`, 400 (RFC 6749 §5.2): a grant type the token
    /// endpoint serves under no content type, refused before any client
    /// authentication (I-53). The description names both grants.
    #[error("unsupported_grant_type: {}", UNSUPPORTED_TOKEN_ENDPOINT_GRANT)]
    UnsupportedTokenEndpointGrant,
    /// `invalid_dpop_proof`, 400 (RFC 9449 §5): the `DPoP` header of a token
    /// request is malformed, repeated, fails RFC 9449 §4.3, is replayed, or
    /// its key is not the agent's registered key (I-55).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// `duplicate_agent`, 400 (§5.4.2 step 3, §5.4.3).
    #[error("duplicate_agent: {}", DUPLICATE_AGENT)]
    DuplicateAgent {
        /// The agent already registered with the identical checksum.
        existing_agent_id: String,
    },
    /// `invalid_scope`, 400 (RFC 6749 §5.2; scope binding, anchor A3).
    #[error("invalid_scope: {description}")]
    InvalidScope {
        /// Names the refused scopes.
        description: String,
        /// The requested scopes that were refused.
        refused: Vec<String>,
    },
    /// `unknown_agent`, 401 (§4.5.3).
    #[error("unknown_agent: {}", UNKNOWN_AGENT)]
    UnknownAgent,
    /// `agent_checksum_mismatch`, 401 (§4.5.4).
    #[error("agent_checksum_mismatch: {}", CHECKSUM_MISMATCH)]
    AgentChecksumMismatch,
    /// `workflow_step_unauthorized`, 403 (§4.5.5).
    #[error("workflow_step_unauthorized: {}", reason.description())]
    WorkflowStepUnauthorized {
        /// Which rule failed.
        reason: StepDenial,
        /// Required steps not completed, in workflow order (may be empty).
        missing_steps: Vec<String>,
    },
}

/// §4.5.2 example description.
pub const UNSUPPORTED_GRANT_TYPE: &str = "Grant type must be 'agent_checksum'";
/// RFC 6749 §5.2 description of [`OAuthError::UnsupportedTokenEndpointGrant`].
pub const UNSUPPORTED_TOKEN_ENDPOINT_GRANT: &str =
    "Grant type must be 'client_credentials' or 'agent_checksum'";
/// §4.5.3 example description.
pub const UNKNOWN_AGENT: &str = "Agent ID not found in registry. Register first.";
/// §4.5.4 example description.
pub const CHECKSUM_MISMATCH: &str = "Agent checksum mismatch - code integrity violation";
/// §5.4.3 example description.
pub const DUPLICATE_AGENT: &str = "Agent with identical checksum already exists";

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::UnsupportedGrantType | OAuthError::UnsupportedTokenEndpointGrant => {
                "unsupported_grant_type"
            }
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::DuplicateAgent { .. } => "duplicate_agent",
            OAuthError::InvalidScope { .. } => "invalid_scope",
            OAuthError::UnknownAgent => "unknown_agent",
            OAuthError::AgentChecksumMismatch => "agent_checksum_mismatch",
            OAuthError::WorkflowStepUnauthorized { .. } => "workflow_step_unauthorized",
        }
    }

    /// The HTTP status (§4.5.2–§4.5.6).
    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidRequest(_)
            | OAuthError::UnsupportedGrantType
            | OAuthError::UnsupportedTokenEndpointGrant
            | OAuthError::InvalidDpopProof(_)
            | OAuthError::DuplicateAgent { .. }
            | OAuthError::InvalidScope { .. } => 400,
            OAuthError::UnknownAgent | OAuthError::AgentChecksumMismatch => 401,
            OAuthError::WorkflowStepUnauthorized { .. } => 403,
        }
    }

    /// The `error_description`, restricted to the characters RFC 6749 §5.2
    /// allows (`%x20-21 / %x23-5B / %x5D-7E`): see [`rfc6749_description`].
    pub fn description(&self) -> String {
        rfc6749_description(&self.raw_description())
    }

    fn raw_description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(d) => d.clone(),
            OAuthError::UnsupportedGrantType => UNSUPPORTED_GRANT_TYPE.to_owned(),
            OAuthError::UnsupportedTokenEndpointGrant => {
                UNSUPPORTED_TOKEN_ENDPOINT_GRANT.to_owned()
            }
            OAuthError::InvalidDpopProof(d) => d.clone(),
            OAuthError::DuplicateAgent { .. } => DUPLICATE_AGENT.to_owned(),
            OAuthError::InvalidScope { description, .. } => description.clone(),
            OAuthError::UnknownAgent => UNKNOWN_AGENT.to_owned(),
            OAuthError::AgentChecksumMismatch => CHECKSUM_MISMATCH.to_owned(),
            OAuthError::WorkflowStepUnauthorized { reason, .. } => reason.description(),
        }
    }

    /// `invalid_request` with `Missing required parameter: NAME` (§4.5.6).
    pub fn missing(name: &str) -> OAuthError {
        OAuthError::InvalidRequest(format!("Missing required parameter: {name}"))
    }

    /// The response body (§4.5.1). `error_uri` is left to the server.
    pub fn to_response(&self) -> ErrorResponse {
        let mut r = ErrorResponse {
            error: self.code().to_owned(),
            error_description: Some(self.description()),
            error_uri: None,
            missing_steps: None,
            existing_agent_id: None,
        };
        match self {
            OAuthError::WorkflowStepUnauthorized { missing_steps, .. } => {
                r.missing_steps = Some(missing_steps.clone());
            }
            OAuthError::DuplicateAgent { existing_agent_id } => {
                r.existing_agent_id = Some(existing_agent_id.clone());
            }
            _ => {}
        }
        r
    }
}

/// Makes `text` a valid RFC 6749 §5.2 `error_description`: `§` becomes
/// `Section `, double quotes become single quotes (the draft's own style,
/// §4.5.2 `'agent_checksum'`) and every other character outside `%x20-21 / %x23-5B / %x5D-7E` (a
/// backslash, control or non-ASCII character, possibly from client input)
/// becomes `?`. The result is at most [`MAX_DESCRIPTION_BYTES`] bytes: a
/// longer text (for example one quoting an attacker's 200 KB `kid`) is cut
/// and ends in `...` (I-71), and only that much of the input is read. This
/// is the one place that bounds reflected text:
/// [`crate::challenge::Challenge::error_description`] and the error bodies
/// of the issuer and the verifier go through it. Idempotent.
pub fn rfc6749_description(text: &str) -> String {
    const CUT: &str = "...";
    let mut out = String::new();
    for c in text.chars() {
        if out.len() > MAX_DESCRIPTION_BYTES {
            break;
        }
        match c {
            '§' => out.push_str("Section "),
            '"' => out.push('\''),
            ' '..='~' if c != '\\' => out.push(c),
            _ => out.push('?'),
        }
    }
    if out.len() > MAX_DESCRIPTION_BYTES {
        // ASCII only from here on, so any byte index is a char boundary.
        out.truncate(MAX_DESCRIPTION_BYTES - CUT.len());
        out.push_str(CUT);
    }
    out
}

/// Upper bound, in bytes, of an `error_description` (RFC 6749 §5.2, RFC 6750
/// §3) in a body or a `WWW-Authenticate` challenge (I-71).
pub const MAX_DESCRIPTION_BYTES: usize = 256;

/// An OAuth error response body (§4.5.1, RFC 6749 §5.2) with the extra
/// members the draft shows (§4.5.5 `missing_steps`, §5.4.3 `existing_agent_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page documenting the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
    /// `workflow_step_unauthorized`: required steps not completed (§4.5.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_steps: Option<Vec<String>>,
    /// `duplicate_agent`: the agent already holding the checksum (§5.4.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_agent_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i71_descriptions_are_bounded_at_a_char_boundary() {
        let short = rfc6749_description("unknown key id \"k\"");
        assert_eq!(short, "unknown key id 'k'");
        for text in [
            format!("unknown key id {:?}", "k".repeat(200 * 1024)),
            "é§\"".repeat(100_000),
            "x".repeat(MAX_DESCRIPTION_BYTES + 1),
        ] {
            let d = rfc6749_description(&text);
            assert_eq!(d.len(), MAX_DESCRIPTION_BYTES, "{d}");
            assert!(d.ends_with("..."), "{d}");
            assert!(d
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'));
            assert_eq!(rfc6749_description(&d), d, "idempotent");
        }
        let exact = "x".repeat(MAX_DESCRIPTION_BYTES);
        assert_eq!(rfc6749_description(&exact), exact);
        // The one challenge builder bounds the same way.
        let c = crate::challenge::Challenge::bearer().error_description("k".repeat(100_000));
        assert_eq!(
            c.get("error_description").map(str::len),
            Some(MAX_DESCRIPTION_BYTES)
        );
    }

    #[test]
    fn s4_5_codes_statuses_and_descriptions() {
        let cases: Vec<(OAuthError, &str, u16, &str)> = vec![
            (OAuthError::missing("computed_checksum"), "invalid_request", 400, "Missing required parameter: computed_checksum"),
            (OAuthError::UnsupportedGrantType, "unsupported_grant_type", 400, "Grant type must be 'agent_checksum'"),
            (OAuthError::UnsupportedTokenEndpointGrant, "unsupported_grant_type", 400, "Grant type must be 'client_credentials' or 'agent_checksum'"),
            (OAuthError::InvalidDpopProof("x".into()), "invalid_dpop_proof", 400, "x"),
            (OAuthError::DuplicateAgent { existing_agent_id: "other-agent-v1".into() }, "duplicate_agent", 400, "Agent with identical checksum already exists"),
            (OAuthError::InvalidScope { description: "x".into(), refused: vec![] }, "invalid_scope", 400, "x"),
            (OAuthError::UnknownAgent, "unknown_agent", 401, "Agent ID not found in registry. Register first."),
            (OAuthError::AgentChecksumMismatch, "agent_checksum_mismatch", 401, "Agent checksum mismatch - code integrity violation"),
            (
                OAuthError::WorkflowStepUnauthorized { reason: StepDenial::MissingPrerequisites, missing_steps: vec!["step_1_analyze_manifest".into()] },
                "workflow_step_unauthorized",
                403,
                "Agent not authorized for workflow step. Required prerequisite steps not completed.",
            ),
        ];
        for (e, code, status, desc) in cases {
            assert_eq!(
                (e.code(), e.status(), e.description().as_str()),
                (code, status, desc)
            );
            assert_eq!(e.to_response().error, code);
        }
    }

    #[test]
    fn rfc6749_5_2_descriptions_use_only_allowed_characters() {
        assert_eq!(rfc6749_description(r#"Step "a\b" é"#), "Step 'a?b' ?");
        assert_eq!(rfc6749_description("see §4.2.3"), "see Section 4.2.3");
        let e = OAuthError::InvalidRequest(
            r#"Invalid checksum format (must be "sha256:<hex>")"#.into(),
        );
        assert_eq!(
            e.description(),
            "Invalid checksum format (must be 'sha256:<hex>')"
        );
        let allowed = |c: char| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
        for s in ["\"\\\n\u{7f}é😀", "plain"] {
            assert!(rfc6749_description(s).chars().all(allowed));
        }
    }

    #[test]
    fn s4_5_1_response_json_shapes() {
        let e = OAuthError::WorkflowStepUnauthorized {
            reason: StepDenial::MissingPrerequisites,
            missing_steps: vec![
                "step_1_analyze_manifest".into(),
                "step_2_approval_gate".into(),
            ],
        };
        assert_eq!(
            serde_json::to_value(e.to_response()).unwrap(),
            serde_json::json!({
                "error": "workflow_step_unauthorized",
                "error_description": "Agent not authorized for workflow step. Required prerequisite steps not completed.",
                "missing_steps": ["step_1_analyze_manifest", "step_2_approval_gate"]
            })
        );
        let d = OAuthError::DuplicateAgent {
            existing_agent_id: "other-agent-v1".into(),
        };
        assert_eq!(
            serde_json::to_value(d.to_response()).unwrap(),
            serde_json::json!({
                "error": "duplicate_agent",
                "error_description": "Agent with identical checksum already exists",
                "existing_agent_id": "other-agent-v1"
            })
        );
        let plain = serde_json::to_value(OAuthError::UnknownAgent.to_response()).unwrap();
        assert_eq!(
            plain.as_object().unwrap().len(),
            2,
            "no null members: {plain}"
        );
    }
}
