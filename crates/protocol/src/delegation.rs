//! Delegation-chain validation (§4.3.4, §6.6.4, §9.3.2): the requesting agent
//! ends the chain, no agent appears twice, the depth is limited, every
//! delegating agent is registered and not revoked, and (optionally) executed a
//! completed workflow step. A parent agent's intent token, presented as a
//! delegation assertion (§2), can be checked against the request with
//! [`validate_parent_token`]. All failures are `invalid_request` (§4.5.6).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use crate::claims::IntentClaims;
use crate::error::OAuthError;
use crate::hashes::{full_chain, step_sequence_hash, truncated_sha256};
use crate::registration::Workflow;

/// The registry state of an agent, as seen by delegation checks (§4.3.4
/// "registered", §6.6.4 "registered and not revoked").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    /// Registered and usable.
    Active,
    /// Registered, but its registration was revoked (§9.3.2).
    Revoked,
    /// Not in the registry.
    Unknown,
}

/// A read-only view of the agent registry (§4.3.4). The issuer implements it
/// over its store.
pub trait AgentDirectory {
    /// The status of `agent_id`.
    fn agent_status(&self, agent_id: &str) -> AgentStatus;
}

/// A fixed directory: agents absent from the map are [`AgentStatus::Unknown`].
impl<S: BuildHasher> AgentDirectory for HashMap<String, AgentStatus, S> {
    fn agent_status(&self, agent_id: &str) -> AgentStatus {
        self.get(agent_id).copied().unwrap_or(AgentStatus::Unknown)
    }
}

/// Limits applied to delegation chains (§6.6.4 "Delegation depth is within
/// acceptable limits", §9.3.2 "Limit delegation depth").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationPolicy {
    /// Largest allowed full chain length, the requesting agent included (default 8).
    pub max_depth: usize,
    /// Require every delegating agent to have executed at least one of the
    /// request's completed workflow steps (§9.3.1 "delegation_chain is
    /// consistent with the workflow definition"; default `false`).
    pub require_step_agents: bool,
}

impl Default for DelegationPolicy {
    fn default() -> Self {
        DelegationPolicy {
            max_depth: 8,
            require_step_agents: false,
        }
    }
}

fn invalid_chain(reason: String) -> OAuthError {
    OAuthError::InvalidRequest(format!("Invalid delegation chain: {reason}"))
}

fn invalid_parent(reason: String) -> OAuthError {
    OAuthError::InvalidRequest(format!("Invalid parent_token: {reason}"))
}

/// The checks of [`validate_delegation`] that need no registry: the
/// requesting agent, if named, is last; no agent appears twice; the depth is
/// at most `policy.max_depth` (§9.3.2). An issuer runs them before it looks
/// any chain agent up, so an over-long chain costs no store lookups (I-66).
/// Returns the full chain (requesting agent appended when absent).
pub fn check_chain_shape(
    chain: &[String],
    agent_id: &str,
    policy: &DelegationPolicy,
) -> Result<Vec<String>, OAuthError> {
    if let Some(pos) = chain.iter().position(|a| a == agent_id) {
        if pos + 1 != chain.len() {
            return Err(invalid_chain(format!(
                "agent '{agent_id}' appears before the end of the chain"
            )));
        }
    }
    let full = full_chain(chain, agent_id);
    if full.len() > policy.max_depth {
        return Err(invalid_chain(format!(
            "depth {} exceeds the maximum of {}",
            full.len(),
            policy.max_depth
        )));
    }
    let mut seen = HashSet::new();
    if let Some(repeated) = full.iter().find(|a| !seen.insert(**a)) {
        return Err(invalid_chain(format!(
            "agent '{repeated}' appears more than once"
        )));
    }
    Ok(full.into_iter().map(str::to_owned).collect())
}

/// Validates `delegation_context.chain` of a request by `agent_id` (§4.3.4,
/// §6.6.4, §9.3.2) and returns the full chain (the chain with the requesting
/// agent appended unless already last, as [`crate::hashes::full_chain`]).
///
/// Checked in order, each failure `invalid_request` with description
/// `Invalid delegation chain: <reason>`: the requesting agent appears only at
/// the end (§4.3.4, §6.6.4 item 1); no agent appears twice; the full chain is
/// at most `policy.max_depth` long; every other agent of the chain is
/// registered and not revoked (the requesting agent is checked by the issuer
/// itself, §4.3.1 step 2); with `policy.require_step_agents` and a
/// `(workflow, completed_steps)`, every other agent is the `agent_id` of at
/// least one completed step.
pub fn validate_delegation(
    chain: &[String],
    agent_id: &str,
    directory: &dyn AgentDirectory,
    policy: &DelegationPolicy,
    workflow: Option<(&Workflow, &[String])>,
) -> Result<Vec<String>, OAuthError> {
    let full = check_chain_shape(chain, agent_id, policy)?;
    let delegators = full.split_last().map_or(&[][..], |(_, rest)| rest);
    for agent in delegators {
        match directory.agent_status(agent) {
            AgentStatus::Active => {}
            AgentStatus::Unknown => {
                return Err(invalid_chain(format!("agent '{agent}' is not registered")))
            }
            AgentStatus::Revoked => {
                return Err(invalid_chain(format!("agent '{agent}' is revoked")))
            }
        }
    }
    if policy.require_step_agents {
        if let Some((workflow, completed_steps)) = workflow {
            for agent in delegators {
                let executed_one = completed_steps.iter().any(|s| {
                    workflow.step(s).and_then(|step| step.agent_id.as_deref())
                        == Some(agent.as_str())
                });
                if !executed_one {
                    return Err(invalid_chain(format!(
                        "agent '{agent}' executed none of the completed steps"
                    )));
                }
            }
        }
    }
    Ok(full)
}

fn show(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("'{v}'"))
}

/// Checks a parent agent's intent token, presented as a delegation assertion
/// (§2 "Delegation Assertion", §4.3.4 "parent agents authorized the
/// delegation", §9.3.2 "Validate that each delegation was authorized"),
/// against a request by `agent_id` with `chain`, `workflow_id` and
/// `completed_steps`. The caller has verified the parent token's signature.
///
/// Each failure is `invalid_request` with description
/// `Invalid parent_token: <reason>`. The full chain must have a parent (at
/// least 2 agents); the parent token was executed by the agent just before
/// `agent_id`; it names the same workflow; its `delegation_chain` is the hash
/// of the full chain up to and including the parent; and its steps are a
/// prefix of `completed_steps`: its `workflow_step` is `completed_steps[k-1]`
/// and its `step_sequence_hash` is that of `completed_steps[..k-1]` plus that
/// step, or, with no `workflow_step`, the hash of some `completed_steps[..k]`
/// (§4.4.4).
pub fn validate_parent_token(
    parent: &IntentClaims,
    chain: &[String],
    agent_id: &str,
    workflow_id: Option<&str>,
    completed_steps: &[String],
) -> Result<(), OAuthError> {
    let full = full_chain(chain, agent_id);
    let Some((_, up_to_parent)) = full.split_last() else {
        return Err(invalid_parent(
            "the delegation chain has no parent agent".to_owned(),
        ));
    };
    let Some(parent_agent) = up_to_parent.last() else {
        return Err(invalid_parent(
            "the delegation chain has no parent agent".to_owned(),
        ));
    };
    let intent = &parent.intent;
    if intent.executed_by != *parent_agent {
        return Err(invalid_parent(format!(
            "executed_by '{}' is not the delegating agent '{parent_agent}'",
            intent.executed_by
        )));
    }
    if intent.workflow_id.as_deref() != workflow_id {
        return Err(invalid_parent(format!(
            "workflow_id {} does not match the request's workflow_id {}",
            show(intent.workflow_id.as_deref()),
            show(workflow_id)
        )));
    }
    let expected_chain = truncated_sha256(up_to_parent);
    if intent.delegation_chain != expected_chain {
        return Err(invalid_parent(format!(
            "delegation_chain '{}' is not the hash of the chain up to the parent '{}' (expected '{expected_chain}')",
            intent.delegation_chain,
            up_to_parent.join("|")
        )));
    }
    match intent.workflow_step.as_deref() {
        Some(step) => {
            let mut positions = completed_steps
                .iter()
                .enumerate()
                .filter(|(_, s)| *s == step)
                .map(|(i, _)| i)
                .peekable();
            if positions.peek().is_none() {
                return Err(invalid_parent(format!(
                    "workflow_step '{step}' is not in completed_steps"
                )));
            }
            if !positions.any(|i| {
                step_sequence_hash(&completed_steps[..i], Some(step)) == intent.step_sequence_hash
            }) {
                return Err(invalid_parent(format!(
                    "step_sequence_hash '{}' does not match completed_steps up to workflow_step '{step}'",
                    intent.step_sequence_hash
                )));
            }
        }
        None => {
            if !(0..=completed_steps.len()).any(|k| {
                step_sequence_hash(&completed_steps[..k], None) == intent.step_sequence_hash
            }) {
                return Err(invalid_parent(format!(
                    "step_sequence_hash '{}' matches no prefix of completed_steps",
                    intent.step_sequence_hash
                )));
            }
        }
    }
    Ok(())
}

/// Scope attenuation along a verified delegation (§2 "Delegation Assertion"
/// combines identity, intent binding "and scope restrictions"): a child may
/// request only scopes its parent's token carries. `invalid_scope` naming the
/// scopes the parent does not hold.
pub fn check_parent_scopes(parent: &IntentClaims, requested: &[String]) -> Result<(), OAuthError> {
    let refused: Vec<String> = crate::scope::scopes_not_held(requested, &parent.scopes())
        .into_iter()
        .map(str::to_owned)
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(OAuthError::InvalidScope {
            description: format!("Scopes not held by the parent agent: {}", refused.join(" ")),
            refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{AgentProof, Audience, Confirmation, Intent};
    use crate::hashes::delegation_chain_hash;
    use crate::registration::WorkflowStep;

    const S: &str = "supervisor-agent";
    const P: &str = "patch-planner";
    const V: &str = "vulnerability-patcher-v1";
    const WF: &str = "auto-patch-workflow-v1";
    const STEP1: &str = "step_1_analyze_manifest";
    const STEP2: &str = "step_2_create_patch_plan";
    const STEP3: &str = "step_3_approval_gate";
    const STEP4: &str = "step_4_apply_patch";

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn directory(active: &[&str]) -> HashMap<String, AgentStatus> {
        active
            .iter()
            .map(|a| ((*a).to_owned(), AgentStatus::Active))
            .collect()
    }

    fn registry() -> HashMap<String, AgentStatus> {
        directory(&[S, P, V])
    }

    fn check(chain: &[&str], agent: &str) -> Result<Vec<String>, OAuthError> {
        validate_delegation(
            &v(chain),
            agent,
            &registry(),
            &DelegationPolicy::default(),
            None,
        )
    }

    fn description(r: Result<impl std::fmt::Debug, OAuthError>) -> String {
        let e = r.unwrap_err();
        assert_eq!((e.code(), e.status()), ("invalid_request", 400));
        e.description()
    }

    /// The §6.3.3 workflow, optionally with step 1 assigned to another agent.
    fn workflow(step1_agent: &str) -> Workflow {
        let step = |id: &str, agent: Option<&str>, requires_approval, approval_gate| WorkflowStep {
            step_id: id.to_owned(),
            required: true,
            requires_approval,
            approval_gate,
            agent_id: agent.map(str::to_owned),
            scopes: None,
        };
        Workflow {
            workflow_id: WF.to_owned(),
            steps: vec![
                step(STEP1, Some(step1_agent), false, false),
                step(STEP2, Some(P), false, false),
                step(STEP3, None, false, true),
                step(STEP4, Some(V), true, false),
                step("step_5_verify_patch", Some("patch-verifier"), false, false),
            ],
        }
    }

    #[test]
    fn s6_6_3_three_agent_example_inside_and_outside() {
        assert_eq!(check(&[], S).unwrap(), v(&[S]));
        assert_eq!(check(&[S], P).unwrap(), v(&[S, P]));
        // §6.6.3: the requester outside the chain; §4.2.2 style: inside.
        assert_eq!(check(&[S, P], V).unwrap(), v(&[S, P, V]));
        assert_eq!(check(&[S, P, V], V).unwrap(), v(&[S, P, V]));
        // The requesting agent itself is not looked up (the issuer does that).
        let without_v = directory(&[S, P]);
        assert!(validate_delegation(
            &v(&[S, P]),
            V,
            &without_v,
            &DelegationPolicy::default(),
            None
        )
        .is_ok());
    }

    #[test]
    fn s4_4_4_known_answer_for_the_6_6_3_patcher_token() {
        // python3 -c 'import hashlib; print(hashlib.sha256(b"supervisor-agent|patch-planner|vulnerability-patcher-v1").hexdigest()[:16])'
        let full = check(&[S, P], V).unwrap();
        assert_eq!(truncated_sha256(&full), "2f0b6b1132b4c1f7");
        assert_eq!(delegation_chain_hash(&v(&[S, P]), V), "2f0b6b1132b4c1f7");
        // python3 -c 'import hashlib; print(hashlib.sha256(b"step_1_analyze_manifest|step_2_create_patch_plan|step_3_approval_gate|step_4_apply_patch").hexdigest()[:16])'
        assert_eq!(
            step_sequence_hash(&v(&[STEP1, STEP2, STEP3]), Some(STEP4)),
            "6cdda67fce55b907"
        );
    }

    #[test]
    fn s4_3_4_requester_must_be_last() {
        assert_eq!(
            description(check(&[S, V, P], V)),
            r#"Invalid delegation chain: agent 'vulnerability-patcher-v1' appears before the end of the chain"#
        );
        assert_eq!(
            description(check(&[V, S], V)),
            r#"Invalid delegation chain: agent 'vulnerability-patcher-v1' appears before the end of the chain"#
        );
        // Checked before repetition.
        assert_eq!(
            description(check(&[V, V], V)),
            r#"Invalid delegation chain: agent 'vulnerability-patcher-v1' appears before the end of the chain"#
        );
    }

    #[test]
    fn s9_3_cycles_are_rejected() {
        assert_eq!(
            description(check(&[S, P, S], V)),
            r#"Invalid delegation chain: agent 'supervisor-agent' appears more than once"#
        );
        assert_eq!(
            description(check(&[S, P, P, V], V)),
            r#"Invalid delegation chain: agent 'patch-planner' appears more than once"#
        );
    }

    #[test]
    fn s9_3_2_depth_limit_boundaries() {
        let agents: Vec<String> = (1..=9).map(|i| format!("agent-{i}")).collect();
        let dir: HashMap<String, AgentStatus> = agents
            .iter()
            .map(|a| (a.clone(), AgentStatus::Active))
            .collect();
        let policy = DelegationPolicy::default();
        assert_eq!(policy.max_depth, 8);
        assert!(!policy.require_step_agents);
        // 7 delegators + requester = 8: accepted, inside or outside.
        assert_eq!(
            validate_delegation(&agents[..7], "agent-8", &dir, &policy, None).unwrap(),
            agents[..8]
        );
        assert!(validate_delegation(&agents[..8], "agent-8", &dir, &policy, None).is_ok());
        // 9: rejected, inside or outside.
        let want = "Invalid delegation chain: depth 9 exceeds the maximum of 8";
        assert_eq!(
            description(validate_delegation(
                &agents[..8],
                "agent-9",
                &dir,
                &policy,
                None
            )),
            want
        );
        assert_eq!(
            description(validate_delegation(&agents, "agent-9", &dir, &policy, None)),
            want
        );
        // Depth is checked before registration.
        assert_eq!(
            description(validate_delegation(
                &agents[..8],
                "agent-9",
                &registry(),
                &policy,
                None
            )),
            want
        );
        let tight = DelegationPolicy {
            max_depth: 1,
            ..DelegationPolicy::default()
        };
        assert!(validate_delegation(&[], S, &registry(), &tight, None).is_ok());
        assert_eq!(
            description(validate_delegation(&v(&[S]), P, &registry(), &tight, None)),
            "Invalid delegation chain: depth 2 exceeds the maximum of 1"
        );
    }

    #[test]
    fn s6_6_4_unknown_and_revoked_agents() {
        let mut dir = registry();
        dir.insert(P.to_owned(), AgentStatus::Revoked);
        let policy = DelegationPolicy::default();
        assert_eq!(
            description(validate_delegation(&v(&[S, P]), V, &dir, &policy, None)),
            r#"Invalid delegation chain: agent 'patch-planner' is revoked"#
        );
        dir.remove(S);
        // The first offending agent in chain order is reported.
        assert_eq!(
            description(validate_delegation(&v(&[S, P]), V, &dir, &policy, None)),
            r#"Invalid delegation chain: agent 'supervisor-agent' is not registered"#
        );
        // A revoked or unknown requester is left to the issuer.
        let mut dir = registry();
        dir.insert(V.to_owned(), AgentStatus::Revoked);
        assert!(validate_delegation(&v(&[S, P, V]), V, &dir, &policy, None).is_ok());
    }

    #[test]
    fn s9_3_1_require_step_agents() {
        let strict = DelegationPolicy {
            require_step_agents: true,
            ..DelegationPolicy::default()
        };
        let completed = v(&[STEP1, STEP2, STEP3]);
        let wf = workflow(S);
        assert_eq!(
            validate_delegation(
                &v(&[S, P]),
                V,
                &registry(),
                &strict,
                Some((&wf, &completed))
            )
            .unwrap(),
            v(&[S, P, V])
        );
        // The §6.3.3 workflow assigns step 1 to vulnerability-analyzer, so the
        // §6.6.3 supervisor executed none of the completed steps.
        let draft_wf = workflow("vulnerability-analyzer");
        assert_eq!(
            description(validate_delegation(
                &v(&[S, P]),
                V,
                &registry(),
                &strict,
                Some((&draft_wf, &completed))
            )),
            r#"Invalid delegation chain: agent 'supervisor-agent' executed none of the completed steps"#
        );
        // A completed step of the agent must actually be in completed_steps.
        assert_eq!(
            description(validate_delegation(
                &v(&[S, P]),
                V,
                &registry(),
                &strict,
                Some((&wf, &v(&[STEP1])))
            )),
            r#"Invalid delegation chain: agent 'patch-planner' executed none of the completed steps"#
        );
        // Without the policy flag, or without a workflow, nothing is required.
        let lax = DelegationPolicy::default();
        assert!(validate_delegation(
            &v(&[S, P]),
            V,
            &registry(),
            &lax,
            Some((&draft_wf, &completed))
        )
        .is_ok());
        assert!(validate_delegation(&v(&[S, P]), V, &registry(), &strict, None).is_ok());
    }

    /// The intent token the issuer would mint for a request (§4.4.2, §4.4.4).
    fn token(
        agent: &str,
        chain: &[&str],
        workflow_step: Option<&str>,
        completed: &[&str],
    ) -> IntentClaims {
        IntentClaims {
            iss: "https://idp.example.com".into(),
            aud: Audience::One("https://api.github.com".into()),
            sub: agent.into(),
            exp: 1735690800,
            iat: 1735690500,
            jti: format!("token_{agent}"),
            scope: "repo:write".into(),
            cnf: Confirmation::from_jwk(serde_json::Map::from_iter([(
                "kty".to_owned(),
                serde_json::json!("OKP"),
            )])),
            intent: Intent {
                workflow_id: workflow_step.map(|_| WF.to_owned()),
                workflow_step: workflow_step.map(str::to_owned),
                executed_by: agent.into(),
                delegation_chain: delegation_chain_hash(&v(chain), agent),
                step_sequence_hash: step_sequence_hash(&v(completed), workflow_step),
            },
            agent_proof: AgentProof {
                agent_checksum: ajwt_checksum::AgentChecksum::digest(agent.as_bytes()),
                registration_id: format!("reg_{agent}_1735680000"),
            },
            status: None,
        }
    }

    fn supervisor_token() -> IntentClaims {
        token(S, &[], Some(STEP1), &[])
    }

    fn planner_token() -> IntentClaims {
        token(P, &[S], Some(STEP2), &[STEP1])
    }

    #[test]
    fn s2_delegation_assertion_scope_attenuation() {
        let mut parent = planner_token();
        parent.scope = "repo:write vulnerability:read".into();
        assert_eq!(check_parent_scopes(&parent, &v(&["repo:write"])), Ok(()));
        let e = check_parent_scopes(
            &parent,
            &v(&["repo:write", "repo:admin", "repo:admin", "x"]),
        )
        .unwrap_err();
        assert_eq!(
            (e.code(), e.status(), e.description()),
            (
                "invalid_scope",
                400,
                "Scopes not held by the parent agent: repo:admin x".to_owned()
            )
        );
    }

    fn patcher_request_check(parent: &IntentClaims, completed: &[&str]) -> Result<(), OAuthError> {
        validate_parent_token(parent, &v(&[S, P]), V, Some(WF), &v(completed))
    }

    #[test]
    fn s2_delegation_assertion_parent_tokens_of_the_6_6_3_chain() {
        // The minted tokens are well-formed intent tokens.
        for t in [supervisor_token(), planner_token()] {
            let payload = serde_json::to_value(&t).unwrap();
            assert_eq!(crate::claims::validate_claims(&payload).unwrap(), t);
        }
        // python3 -c 'import hashlib; print(hashlib.sha256(b"supervisor-agent|patch-planner").hexdigest()[:16])'
        assert_eq!(planner_token().intent.delegation_chain, "e0669096cb5ddd88");
        // python3 -c 'import hashlib; print(hashlib.sha256(b"step_1_analyze_manifest|step_2_create_patch_plan").hexdigest()[:16])'
        assert_eq!(
            planner_token().intent.step_sequence_hash,
            "5136ada634218210"
        );

        // Supervisor → planner (step 2 request).
        validate_parent_token(&supervisor_token(), &v(&[S]), P, Some(WF), &v(&[STEP1])).unwrap();
        // Planner → patcher (step 4 request), requester outside or inside the chain.
        patcher_request_check(&planner_token(), &[STEP1, STEP2, STEP3]).unwrap();
        validate_parent_token(
            &planner_token(),
            &v(&[S, P, V]),
            V,
            Some(WF),
            &v(&[STEP1, STEP2, STEP3]),
        )
        .unwrap();
    }

    #[test]
    fn s2_delegation_assertion_tampering_is_rejected() {
        let completed = [STEP1, STEP2, STEP3];
        let cases: Vec<(IntentClaims, &[&str], &str)> = vec![
            (
                {
                    let mut t = planner_token();
                    t.intent.executed_by = "other-agent".into();
                    t
                },
                &completed,
                r#"Invalid parent_token: executed_by 'other-agent' is not the delegating agent 'patch-planner'"#,
            ),
            (
                supervisor_token(),
                &completed,
                r#"Invalid parent_token: executed_by 'supervisor-agent' is not the delegating agent 'patch-planner'"#,
            ),
            (
                {
                    let mut t = planner_token();
                    t.intent.workflow_id = Some("other-workflow".into());
                    t
                },
                &completed,
                r#"Invalid parent_token: workflow_id 'other-workflow' does not match the request's workflow_id 'auto-patch-workflow-v1'"#,
            ),
            (
                {
                    let mut t = planner_token();
                    t.intent.workflow_id = None;
                    t
                },
                &completed,
                r#"Invalid parent_token: workflow_id none does not match the request's workflow_id 'auto-patch-workflow-v1'"#,
            ),
            (
                {
                    let mut t = planner_token();
                    t.intent.delegation_chain = delegation_chain_hash(&[], P);
                    t
                },
                &completed,
                "Invalid parent_token: delegation_chain '58e23f225c36fe86' is not the hash of the chain up to the parent 'supervisor-agent|patch-planner' (expected 'e0669096cb5ddd88')",
            ),
            (
                {
                    let mut t = planner_token();
                    t.intent.step_sequence_hash = step_sequence_hash(&[], Some(STEP2));
                    t
                },
                &completed,
                r#"Invalid parent_token: step_sequence_hash '0519038be469ff3e' does not match completed_steps up to workflow_step 'step_2_create_patch_plan'"#,
            ),
            (
                planner_token(),
                &[STEP1, STEP3],
                r#"Invalid parent_token: workflow_step 'step_2_create_patch_plan' is not in completed_steps"#,
            ),
            (
                planner_token(),
                // Reordered history: step 2 is there but its prefix differs.
                &[STEP2, STEP1, STEP3],
                r#"Invalid parent_token: step_sequence_hash '5136ada634218210' does not match completed_steps up to workflow_step 'step_2_create_patch_plan'"#,
            ),
        ];
        for (parent, completed, want) in cases {
            assert_eq!(description(patcher_request_check(&parent, completed)), want);
        }
        // No parent in the chain.
        assert_eq!(
            description(validate_parent_token(
                &supervisor_token(),
                &[],
                S,
                Some(WF),
                &[]
            )),
            "Invalid parent_token: the delegation chain has no parent agent"
        );
        assert_eq!(
            description(validate_parent_token(
                &supervisor_token(),
                &v(&[S]),
                S,
                Some(WF),
                &[]
            )),
            "Invalid parent_token: the delegation chain has no parent agent"
        );
    }

    #[test]
    fn s4_4_4_parent_without_workflow_step() {
        // Without workflows the step hash covers completed_steps alone.
        let parent = token(S, &[], None, &["a"]);
        let ok =
            |completed: &[&str]| validate_parent_token(&parent, &v(&[S]), P, None, &v(completed));
        ok(&["a"]).unwrap();
        ok(&["a", "b"]).unwrap();
        assert_eq!(
            description(ok(&["b", "a"])),
            format!(
                "Invalid parent_token: step_sequence_hash '{}' matches no prefix of completed_steps",
                parent.intent.step_sequence_hash
            )
        );
        let empty = token(S, &[], None, &[]);
        validate_parent_token(&empty, &v(&[S]), P, None, &[]).unwrap();
        assert_eq!(
            description(validate_parent_token(&empty, &v(&[S]), P, Some(WF), &[])),
            r#"Invalid parent_token: workflow_id none does not match the request's workflow_id 'auto-patch-workflow-v1'"#
        );
    }
}
