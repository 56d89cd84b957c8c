//! The `agent_checksum` grant decision of §4.3.1 as one pure function: given
//! the decoded request, the registry entries it names and the policy,
//! [`decide`] returns the refusal or the complete typed [`Grant`] (chain
//! validated once, step and scopes bound, both §4.4.4 hashes computed once).
//! The issuer looks the entries up, calls it, signs [`Grant::claims`] and
//! records. No I/O.

use ajwt_checksum::AgentChecksum;
use serde_json::{Map, Value};

use crate::claims::{AgentProof, Audience, ClaimsError, Confirmation, Intent, IntentClaims};
use crate::delegation::{
    check_parent_scopes, validate_delegation, validate_parent_token, AgentDirectory,
    DelegationPolicy,
};
use crate::error::{OAuthError, StepDenial};
use crate::hashes::{step_sequence_hash, truncated_sha256};
use crate::registration::Workflow;
use crate::scope::join_scopes;
use crate::wire::{TokenRequest, WORKFLOW_IDS_MISSING};
use crate::workflow::{authorize_step, bind_scopes};

/// The requesting agent's LATEST, non-revoked registration (§4.7.1, I-30).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAgent {
    /// `registration_id` (§5.4.2 step 4).
    pub registration_id: String,
    /// The registered checksum (§4.3.1 step 3).
    pub checksum: AgentChecksum,
    /// Scopes the registration allows (anchor A3); `None`: no restriction.
    pub allowed_scopes: Option<Vec<String>>,
    /// The registered public key as the token's `cnf.jwk` (I-27).
    pub public_jwk: Map<String, Value>,
}

/// Everything the registry said about a request, looked up by the caller.
#[derive(Clone)]
pub struct GrantInputs<'a> {
    /// The decoded request (§4.2.1).
    pub request: &'a TokenRequest,
    /// The requesting agent's registration (`None`: unknown or revoked).
    pub agent: Option<&'a RegisteredAgent>,
    /// The workflow `request.workflow_id` names, when `workflow_enabled`
    /// (`None`: not registered, or no workflow requested).
    pub workflow: Option<&'a Workflow>,
    /// The status of every other agent of the delegation chain.
    pub directory: &'a dyn AgentDirectory,
    /// The `parent_token` (I-19), signature already verified by the caller:
    /// its claims, or why it could not be read.
    pub parent: Option<Result<&'a IntentClaims, ParentTokenError>>,
}

/// Why the caller could not read a `parent_token` (I-19); [`decide`] turns it
/// into `invalid_request` ("Invalid parent_token: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParentTokenError {
    /// The compact JWS did not verify against the issuer's keys (the
    /// caller's key ring says why).
    #[error("{0}")]
    Signature(String),
    /// The payload is not a valid intent token (§4.4.2).
    #[error(transparent)]
    Claims(#[from] ClaimsError),
}

/// The issuer's rules for the decision.
#[derive(Debug, Clone)]
pub struct GrantPolicy<'a> {
    /// Delegation limits (§9.3.2).
    pub delegation: DelegationPolicy,
    /// This issuer's identifier (a parent token must be from it, I-30).
    pub issuer: &'a str,
    /// Now, Unix seconds (a parent token must be unexpired).
    pub now: i64,
}

/// A granted `agent_checksum` request: what the intent token says (§4.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The agent (`sub`, `intent.executed_by`).
    pub agent_id: String,
    /// The registration the token is issued under.
    pub registration_id: String,
    /// The verified checksum.
    pub checksum: AgentChecksum,
    /// Granted scopes (anchor A3), request order.
    pub scopes: Vec<String>,
    /// `(workflow_id, workflow_step)`, only when validated (`workflow_enabled`, I-28).
    pub workflow: Option<(String, String)>,
    /// `aud`, as requested.
    pub audience: Audience,
    /// `intent.delegation_chain` (§4.4.4) of the full chain.
    pub delegation_chain_hash: String,
    /// `intent.step_sequence_hash` (§4.4.4).
    pub step_sequence_hash: String,
    /// `cnf.jwk`: the registered key.
    pub cnf_jwk: Map<String, Value>,
}

impl Grant {
    /// The granted scopes, space-delimited.
    pub fn scope(&self) -> String {
        join_scopes(&self.scopes)
    }

    /// The intent-token claims of this grant (§4.4.2).
    pub fn claims(&self, iss: &str, iat: i64, lifetime: u64, jti: String) -> IntentClaims {
        let (workflow_id, workflow_step) = match &self.workflow {
            Some((w, s)) => (Some(w.clone()), Some(s.clone())),
            None => (None, None),
        };
        IntentClaims {
            iss: iss.to_owned(),
            aud: self.audience.clone(),
            sub: self.agent_id.clone(),
            exp: iat.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
            iat,
            jti,
            scope: self.scope(),
            cnf: Confirmation::from_jwk(self.cnf_jwk.clone()),
            intent: Intent {
                workflow_id,
                workflow_step,
                executed_by: self.agent_id.clone(),
                delegation_chain: self.delegation_chain_hash.clone(),
                step_sequence_hash: self.step_sequence_hash.clone(),
            },
            agent_proof: AgentProof {
                agent_checksum: self.checksum,
                registration_id: self.registration_id.clone(),
            },
            status: None,
        }
    }
}

/// §4.3.1 steps 2–4, delegation (§4.3.4, I-19), scope binding (A3), in that
/// order; the first failure is the refusal.
pub fn decide(inputs: GrantInputs<'_>, policy: &GrantPolicy<'_>) -> Result<Grant, OAuthError> {
    let req = inputs.request;
    // §4.3.1 step 2: the agent exists (LATEST registration, §4.7.1).
    let agent = inputs.agent.ok_or(OAuthError::UnknownAgent)?;
    // §4.3.1 step 3: checksum comparison (constant time in AgentChecksum's Eq, §9.1.1).
    if req.computed_checksum != agent.checksum {
        return Err(OAuthError::AgentChecksumMismatch);
    }
    let completed = &req.delegation_context.completed_steps;
    // §4.3.1 step 4: workflow step authorization when enabled.
    let mut step_def = None;
    let mut workflow = None;
    if req.workflow_enabled {
        let (Some(wf_id), Some(step)) = (&req.workflow_id, &req.workflow_step) else {
            return Err(OAuthError::InvalidRequest(WORKFLOW_IDS_MISSING.into()));
        };
        let wf = inputs
            .workflow
            .ok_or_else(|| OAuthError::WorkflowStepUnauthorized {
                reason: StepDenial::UnknownWorkflow {
                    workflow_id: wf_id.clone(),
                },
                missing_steps: vec![],
            })?;
        authorize_step(wf, &req.agent_id, step, completed)?;
        step_def = wf.step(step);
        workflow = Some((wf, wf_id.clone(), step.clone()));
    }
    // §4.3.4: the delegation chain, validated once.
    let chain = &req.delegation_context.chain;
    let full = validate_delegation(
        chain,
        &req.agent_id,
        inputs.directory,
        &policy.delegation,
        workflow
            .as_ref()
            .map(|(w, _, _)| (*w, completed.as_slice())),
    )?;
    // I-19: the parent token, a verified delegation assertion.
    if let Some(parent) = inputs.parent {
        let invalid = |m: String| OAuthError::InvalidRequest(format!("Invalid parent_token: {m}"));
        let parent = parent.map_err(|e| invalid(e.to_string()))?;
        if parent.iss != policy.issuer || parent.exp <= policy.now {
            return Err(invalid("expired or issued by another issuer".into()));
        }
        validate_parent_token(
            parent,
            chain,
            &req.agent_id,
            req.workflow_id.as_deref().filter(|_| req.workflow_enabled),
            completed,
        )?;
        check_parent_scopes(parent, &req.requested_scopes)?;
    }
    // Scope binding (anchor A3).
    let scopes = bind_scopes(
        &req.requested_scopes,
        agent.allowed_scopes.as_deref(),
        step_def,
    )?;
    let step = workflow.as_ref().map(|(_, _, s)| s.as_str());
    Ok(Grant {
        agent_id: req.agent_id.clone(),
        registration_id: agent.registration_id.clone(),
        checksum: agent.checksum,
        scopes,
        step_sequence_hash: step_sequence_hash(completed, step),
        workflow: workflow.map(|(_, w, s)| (w, s)),
        audience: req.audience.clone(),
        delegation_chain_hash: truncated_sha256(&full),
        cnf_jwk: agent.public_jwk.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegation::AgentStatus;
    use std::collections::HashMap;

    const CHECKSUM: &str =
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d";

    fn request(extra: &str) -> TokenRequest {
        crate::wire::decode_token_request(
            format!(
                r#"{{"grant_type":"agent_checksum","agent_id":"patcher","computed_checksum":"{CHECKSUM}",
                "requested_scopes":["repo:write"],"audience":"https://api.example"{extra}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn agent() -> RegisteredAgent {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "OKP".into());
        RegisteredAgent {
            registration_id: "reg_patcher_1".into(),
            checksum: AgentChecksum::parse(CHECKSUM).unwrap(),
            allowed_scopes: None,
            public_jwk: jwk,
        }
    }

    fn policy() -> GrantPolicy<'static> {
        GrantPolicy {
            delegation: DelegationPolicy {
                max_depth: 8,
                require_step_agents: false,
            },
            issuer: "https://idp.example",
            now: 1000,
        }
    }

    #[test]
    fn s4_3_1_steps_in_order_and_the_typed_grant() {
        let dir: HashMap<String, AgentStatus> = HashMap::new();
        let req = request("");
        let inputs = |agent| GrantInputs {
            request: &req,
            agent,
            workflow: None,
            directory: &dir,
            parent: None,
        };
        assert_eq!(
            decide(inputs(None), &policy()),
            Err(OAuthError::UnknownAgent)
        );
        let mut other = agent();
        other.checksum = AgentChecksum::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(
            decide(inputs(Some(&other)), &policy()),
            Err(OAuthError::AgentChecksumMismatch)
        );
        let a = agent();
        let grant = decide(inputs(Some(&a)), &policy()).unwrap();
        assert_eq!(grant.scopes, ["repo:write"]);
        assert_eq!(grant.workflow, None);
        // §4.4.4: hash of the one-agent chain and of no steps (I-17 values
        // computed with CPython hashlib: sha256(b"patcher")[:16], sha256(b"")[:16]).
        assert_eq!(grant.delegation_chain_hash, "242d2f23a194483a");
        assert_eq!(grant.step_sequence_hash, "e3b0c44298fc1c14");
        let claims = grant.claims("https://idp.example", 1000, 300, "j".into());
        assert_eq!((claims.exp, claims.sub.as_str()), (1300, "patcher"));
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value["intent"].as_object().unwrap().len(),
            3,
            "no workflow members"
        );
        assert_eq!(crate::claims::validate_claims(&value).unwrap(), claims);
    }

    #[test]
    fn s4_3_3_unknown_workflow_and_parent_token_errors() {
        let dir: HashMap<String, AgentStatus> = HashMap::new();
        let a = agent();
        let req = request(r#","workflow_enabled":true,"workflow_id":"wf","workflow_step":"s1""#);
        let inputs = GrantInputs {
            request: &req,
            agent: Some(&a),
            workflow: None,
            directory: &dir,
            parent: None,
        };
        assert!(matches!(
            decide(inputs, &policy()),
            Err(OAuthError::WorkflowStepUnauthorized {
                reason: StepDenial::UnknownWorkflow { .. },
                ..
            })
        ));
        let req = request("");
        let inputs = GrantInputs {
            request: &req,
            agent: Some(&a),
            workflow: None,
            directory: &dir,
            parent: Some(Err(ParentTokenError::Signature("bad signature".into()))),
        };
        assert_eq!(
            decide(inputs, &policy()),
            Err(OAuthError::InvalidRequest(
                "Invalid parent_token: bad signature".into()
            ))
        );
    }
}
