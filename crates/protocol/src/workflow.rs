//! Workflow step authorization and scope binding. [`authorize_step`]
//! implements the workflow step validation of §4.3.3 (steps 2–4) and the
//! per-request checks of §6.6.4 (step sequence, approval requirements, agent
//! authorization), failing with `workflow_step_unauthorized` (§4.5.5) so that
//! agents cannot skip required steps or bypass approval gates (§9.3,
//! §9.3.1). It also refuses a `completed_steps` list that cannot be an
//! execution history of the workflow. [`bind_scopes`] binds the scopes of an
//! intent token to the agent's registration and to the workflow step (anchor
//! A3, §9.3 "appropriate scope restrictions at each step"). Step 1 of §4.3.3
//! (the workflow exists) is the registry's job and is not done here.

use std::collections::{HashMap, HashSet};

use crate::error::{OAuthError, StepDenial};
use crate::registration::{Workflow, WorkflowStep};

fn deny(reason: StepDenial, missing_steps: Vec<String>) -> OAuthError {
    OAuthError::WorkflowStepUnauthorized {
        reason,
        missing_steps,
    }
}

/// Checks that `completed_steps` is a possible execution history of the
/// workflow before the step at `target`: known steps, each before the
/// requested one, each once, in workflow order. Returns the detail of the
/// first problem.
fn check_history(
    workflow: &Workflow,
    workflow_step: &str,
    target: usize,
    completed_steps: &[String],
) -> Result<(), String> {
    let mut positions: HashMap<&str, usize> = HashMap::with_capacity(workflow.steps.len());
    for (i, s) in workflow.steps.iter().enumerate() {
        positions.entry(s.step_id.as_str()).or_insert(i);
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(completed_steps.len());
    let mut previous: Option<(&str, usize)> = None;
    for x in completed_steps {
        let Some(&pos) = positions.get(x.as_str()) else {
            return Err(format!("step '{x}' is not defined in the workflow"));
        };
        if x == workflow_step {
            return Err(format!("step '{x}' is the requested step"));
        }
        if pos > target {
            return Err(format!("step '{x}' comes after the requested step"));
        }
        if !seen.insert(x.as_str()) {
            return Err(format!("step '{x}' is listed twice"));
        }
        if let Some((y, y_pos)) = previous {
            if pos < y_pos {
                return Err(format!(
                    "step '{x}' is listed after step '{y}', which comes later in the workflow"
                ));
            }
        }
        previous = Some((x.as_str(), pos));
    }
    Ok(())
}

/// Authorizes `agent_id` to execute `workflow_step` of `workflow` given the
/// client's `delegation_context.completed_steps` (§4.3.3 steps 2–4, §6.6.4
/// items 2–4). Checks, first failure wins: the step exists (§4.3.3 step 2);
/// the step is not assigned to another agent (§4.5.5, §6.6.4 item 4);
/// `completed_steps` is a possible execution history; every required step
/// before the requested one is completed (§4.3.3 step 3, `missing_steps` in
/// workflow order); if the step requires approval, the most recent approval
/// gate before it is completed (§4.3.3 step 4). Optional steps may be skipped.
///
/// # Errors
///
/// `workflow_step_unauthorized` (403, §4.5.5) whose [`StepDenial`] names the
/// rule that failed.
pub fn authorize_step(
    workflow: &Workflow,
    agent_id: &str,
    workflow_step: &str,
    completed_steps: &[String],
) -> Result<(), OAuthError> {
    let Some((target, step)) = workflow
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.step_id == workflow_step)
    else {
        return Err(deny(
            StepDenial::UnknownStep {
                step: workflow_step.to_owned(),
            },
            Vec::new(),
        ));
    };
    if let Some(assigned) = &step.agent_id {
        if assigned != agent_id {
            return Err(deny(
                StepDenial::AssignedToOtherAgent {
                    step: workflow_step.to_owned(),
                    assigned_to: assigned.clone(),
                },
                Vec::new(),
            ));
        }
    }
    check_history(workflow, workflow_step, target, completed_steps)
        .map_err(|detail| deny(StepDenial::InvalidCompletedSteps { detail }, Vec::new()))?;

    let done: HashSet<&str> = completed_steps.iter().map(String::as_str).collect();
    let (before, _) = workflow.steps.split_at(target);
    let missing: Vec<String> = before
        .iter()
        .filter(|s| s.required && !done.contains(s.step_id.as_str()))
        .map(|s| s.step_id.clone())
        .collect();
    if !missing.is_empty() {
        return Err(deny(StepDenial::MissingPrerequisites, missing));
    }

    if step.requires_approval {
        match before.iter().rev().find(|s| s.approval_gate) {
            None => {
                return Err(deny(
                    StepDenial::ApprovalGateNotCompleted { gate: None },
                    Vec::new(),
                ))
            }
            Some(gate) if !done.contains(gate.step_id.as_str()) => {
                return Err(deny(
                    StepDenial::ApprovalGateNotCompleted {
                        gate: Some(gate.step_id.clone()),
                    },
                    vec![gate.step_id.clone()],
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Binds the requested scopes (§4.2.1 `requested_scopes`) to what the agent
/// and the workflow step allow (anchor A3; threats T7/T9, §9.5–§9.7; §9.3
/// "appropriate scope restrictions at each step"). Every requested scope must
/// be in `agent_allowed` when it is `Some` (the agent registration's allowed
/// scopes) and in `step.scopes` when the step declares them. Returns the
/// granted scopes: the requested ones, each once, in request order.
///
/// # Errors
///
/// `invalid_scope` (400, RFC 6749 §5.2) listing each refused scope once, in
/// request order.
pub fn bind_scopes(
    requested: &[String],
    agent_allowed: Option<&[String]>,
    step: Option<&WorkflowStep>,
) -> Result<Vec<String>, OAuthError> {
    // Hash sets: linear in the lists whatever their sizes (I-66).
    fn set(list: Option<&[String]>) -> Option<HashSet<&str>> {
        list.map(|l| l.iter().map(String::as_str).collect())
    }
    let (agent_allowed, step_allowed) = (
        set(agent_allowed),
        set(step.and_then(|s| s.scopes.as_deref())),
    );
    let allowed_by = |list: &Option<HashSet<&str>>, scope: &String| {
        list.as_ref().is_none_or(|l| l.contains(scope.as_str()))
    };
    let mut seen = HashSet::with_capacity(requested.len());
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    for scope in requested {
        if !seen.insert(scope.as_str()) {
            continue;
        }
        if allowed_by(&agent_allowed, scope) && allowed_by(&step_allowed, scope) {
            granted.push(scope.clone());
        } else {
            refused.push(scope.clone());
        }
    }
    if refused.is_empty() {
        Ok(granted)
    } else {
        Err(OAuthError::InvalidScope {
            description: format!("Requested scopes not allowed: {}", refused.join(" ")),
            refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::{decode_workflow_registration, validate_workflow};
    use proptest::prelude::*;

    /// The workflow registration request body of §6.3.3, verbatim.
    const DRAFT_6_3_3: &str = r#"{
         "workflow_id": "auto-patch-workflow-v1",
         "steps": {
           "step_1_analyze_manifest": {
             "required": true,
             "requires_approval": false,
             "agent_id": "vulnerability-analyzer"
           },
           "step_2_create_patch_plan": {
             "required": true,
             "requires_approval": false,
             "agent_id": "patch-planner"
           },
           "step_3_approval_gate": {
             "required": true,
             "requires_approval": false,
             "approval_gate": true
           },
           "step_4_apply_patch": {
             "required": true,
             "requires_approval": true,
             "agent_id": "vulnerability-patcher-v1"
           },
           "step_5_verify_patch": {
             "required": true,
             "requires_approval": false,
             "agent_id": "patch-verifier"
           }
         }
       }"#;

    const S1: &str = "step_1_analyze_manifest";
    const S2: &str = "step_2_create_patch_plan";
    const S3: &str = "step_3_approval_gate";
    const S4: &str = "step_4_apply_patch";
    const S5: &str = "step_5_verify_patch";

    fn draft() -> Workflow {
        decode_workflow_registration(DRAFT_6_3_3.as_bytes()).unwrap()
    }

    fn wf(body: &str) -> Workflow {
        decode_workflow_registration(body.as_bytes()).unwrap()
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Splits a `workflow_step_unauthorized` error into its parts.
    fn denial(r: Result<(), OAuthError>) -> (StepDenial, Vec<String>) {
        match r {
            Err(OAuthError::WorkflowStepUnauthorized {
                reason,
                missing_steps,
            }) => (reason, missing_steps),
            other => panic!("expected workflow_step_unauthorized, got {other:?}"),
        }
    }

    fn invalid_history(detail: &str) -> (StepDenial, Vec<String>) {
        (
            StepDenial::InvalidCompletedSteps {
                detail: detail.to_owned(),
            },
            vec![],
        )
    }

    #[test]
    fn s6_3_3_happy_path_for_every_step() {
        let w = draft();
        let cases: [(&str, &str, &[&str]); 5] = [
            ("vulnerability-analyzer", S1, &[]),
            ("patch-planner", S2, &[S1]),
            ("anyone-may-pass-an-unassigned-gate", S3, &[S1, S2]),
            ("vulnerability-patcher-v1", S4, &[S1, S2, S3]),
            ("patch-verifier", S5, &[S1, S2, S3, S4]),
        ];
        for (agent, step, done) in cases {
            assert_eq!(
                authorize_step(&w, agent, step, &strings(done)),
                Ok(()),
                "{step}"
            );
        }
    }

    #[test]
    fn s6_6_3_patcher_request_for_step_4_succeeds() {
        // §6.6.3 item 7: completed_steps [step_1, step_2, step_3_approval_gate].
        assert_eq!(
            authorize_step(
                &draft(),
                "vulnerability-patcher-v1",
                S4,
                &strings(&[S1, S2, S3])
            ),
            Ok(())
        );
        // §6.6.3 item 4: the planner's request for step_2.
        assert_eq!(
            authorize_step(&draft(), "patch-planner", S2, &strings(&[S1])),
            Ok(())
        );
    }

    #[test]
    fn s6_6_3_supervisor_for_step_1_is_assigned_to_other_agent() {
        // §6.6.3 item 1 has supervisor-agent request step_1, which §6.3.3
        // assigns to vulnerability-analyzer: the draft contradicts itself.
        let r = authorize_step(&draft(), "supervisor-agent", S1, &[]);
        let e = r.clone().unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(e.code(), "workflow_step_unauthorized");
        assert_eq!(
            e.description(),
            r#"Agent not authorized for workflow step. Step 'step_1_analyze_manifest' is assigned to agent 'vulnerability-analyzer'."#
        );
        assert_eq!(
            denial(r),
            (
                StepDenial::AssignedToOtherAgent {
                    step: S1.to_owned(),
                    assigned_to: "vulnerability-analyzer".to_owned()
                },
                vec![]
            )
        );
    }

    #[test]
    fn s4_3_3_approval_gate_bypass_is_missing_prerequisite() {
        let r = authorize_step(
            &draft(),
            "vulnerability-patcher-v1",
            S4,
            &strings(&[S1, S2]),
        );
        let e = r.clone().unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.description(),
            "Agent not authorized for workflow step. Required prerequisite steps not completed."
        );
        assert_eq!(
            denial(r),
            (StepDenial::MissingPrerequisites, strings(&[S3]))
        );
    }

    #[test]
    fn s4_3_3_skipped_required_steps_listed_in_workflow_order() {
        let r = authorize_step(&draft(), "patch-verifier", S5, &strings(&[S2]));
        assert_eq!(
            denial(r),
            (StepDenial::MissingPrerequisites, strings(&[S1, S3, S4]))
        );
        let r = authorize_step(&draft(), "patch-verifier", S5, &[]);
        assert_eq!(
            denial(r),
            (StepDenial::MissingPrerequisites, strings(&[S1, S2, S3, S4]))
        );
    }

    #[test]
    fn s4_5_5_example_missing_steps_and_response_body() {
        // A workflow shaped like the one the §4.5.5 example implies.
        let w = wf(r#"{"workflow_id": "w", "steps": {
            "step_1_analyze_manifest": {"required": true},
            "step_2_approval_gate": {"required": true, "approval_gate": true},
            "step_3_apply_patch": {"required": true, "requires_approval": true, "agent_id": "p"}}}"#);
        let e = authorize_step(&w, "p", "step_3_apply_patch", &[]).unwrap_err();
        assert_eq!(
            serde_json::to_value(e.to_response()).unwrap(),
            serde_json::json!({
                "error": "workflow_step_unauthorized",
                "error_description": "Agent not authorized for workflow step. Required prerequisite steps not completed.",
                "missing_steps": ["step_1_analyze_manifest", "step_2_approval_gate"]
            })
        );
    }

    #[test]
    fn s4_3_3_optional_step_may_be_skipped() {
        let w = wf(r#"{"workflow_id": "w", "steps": {
            "a": {"required": true},
            "b": {"required": false},
            "c": {"required": true},
            "d": {"required": true}}}"#);
        assert_eq!(authorize_step(&w, "x", "c", &strings(&["a"])), Ok(()));
        assert_eq!(authorize_step(&w, "x", "d", &strings(&["a", "c"])), Ok(()));
        assert_eq!(
            authorize_step(&w, "x", "d", &strings(&["a", "b", "c"])),
            Ok(())
        );
        assert_eq!(
            denial(authorize_step(&w, "x", "d", &strings(&["b", "c"]))),
            (StepDenial::MissingPrerequisites, strings(&["a"]))
        );
    }

    #[test]
    fn s4_3_3_optional_gate_skipped_before_requires_approval_step() {
        let w = wf(r#"{"workflow_id": "w", "steps": {
            "a": {"required": true},
            "gate": {"required": false, "approval_gate": true},
            "b": {"required": true, "requires_approval": true}}}"#);
        let r = authorize_step(&w, "x", "b", &strings(&["a"]));
        let e = r.clone().unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.description(),
            r#"Agent not authorized for workflow step. Step requires approval and approval gate 'gate' is not completed."#
        );
        assert_eq!(
            denial(r),
            (
                StepDenial::ApprovalGateNotCompleted {
                    gate: Some("gate".to_owned())
                },
                strings(&["gate"])
            )
        );
        assert_eq!(
            authorize_step(&w, "x", "b", &strings(&["a", "gate"])),
            Ok(())
        );
        // Missing required steps are reported first (rule 3 before rule 4).
        assert_eq!(
            denial(authorize_step(&w, "x", "b", &[])),
            (StepDenial::MissingPrerequisites, strings(&["a"]))
        );
    }

    #[test]
    fn s4_3_3_most_recent_gate_rule_with_two_gates() {
        let w = wf(r#"{"workflow_id": "w", "steps": {
            "gate_a": {"required": false, "approval_gate": true},
            "x": {"required": true},
            "gate_b": {"required": false, "approval_gate": true},
            "y": {"required": true, "requires_approval": true},
            "z": {"required": false, "requires_approval": true}}}"#);
        // Passing the earlier gate does not count for y: gate_b is the most recent.
        assert_eq!(
            denial(authorize_step(&w, "ag", "y", &strings(&["gate_a", "x"]))),
            (
                StepDenial::ApprovalGateNotCompleted {
                    gate: Some("gate_b".to_owned())
                },
                strings(&["gate_b"])
            )
        );
        // The most recent gate alone is enough; gate_a is optional.
        assert_eq!(
            authorize_step(&w, "ag", "y", &strings(&["x", "gate_b"])),
            Ok(())
        );
        assert_eq!(
            authorize_step(&w, "ag", "y", &strings(&["gate_a", "x", "gate_b"])),
            Ok(())
        );
        // For z, gate_b is still the most recent gate before it.
        assert_eq!(
            authorize_step(&w, "ag", "z", &strings(&["x", "gate_b", "y"])),
            Ok(())
        );
        // A gate after the requested step does not count (and is not a valid history).
        let w2 = wf(r#"{"workflow_id": "w", "steps": {
            "g1": {"required": false, "approval_gate": true},
            "s": {"required": true, "requires_approval": true},
            "g2": {"required": false, "approval_gate": true}}}"#);
        assert_eq!(
            denial(authorize_step(&w2, "ag", "s", &[])),
            (
                StepDenial::ApprovalGateNotCompleted {
                    gate: Some("g1".to_owned())
                },
                strings(&["g1"])
            )
        );
    }

    #[test]
    fn s4_3_3_no_gate_before_requires_approval_step() {
        // validate_workflow (§9.3) refuses this at registration; authorize_step
        // still rejects it if handed an unvalidated workflow.
        let w = Workflow {
            workflow_id: "w".to_owned(),
            steps: vec![WorkflowStep {
                step_id: "s".to_owned(),
                required: true,
                requires_approval: true,
                approval_gate: false,
                agent_id: None,
                scopes: None,
            }],
        };
        assert!(validate_workflow(&w).is_err());
        let r = authorize_step(&w, "ag", "s", &[]);
        let e = r.clone().unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.description(),
            "Agent not authorized for workflow step. Step requires approval and the workflow has no approval gate before it."
        );
        assert_eq!(
            denial(r),
            (StepDenial::ApprovalGateNotCompleted { gate: None }, vec![])
        );
    }

    #[test]
    fn s4_5_5_unknown_step() {
        let r = authorize_step(&draft(), "patch-planner", "step_9_deploy", &[]);
        let e = r.clone().unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(e.code(), "workflow_step_unauthorized");
        assert_eq!(
            e.description(),
            r#"Agent not authorized for workflow step. Step 'step_9_deploy' is not defined in the workflow."#
        );
        assert_eq!(
            denial(r),
            (
                StepDenial::UnknownStep {
                    step: "step_9_deploy".to_owned()
                },
                vec![]
            )
        );
    }

    #[test]
    fn s4_3_3_invalid_completed_steps_each_case() {
        let w = draft();
        let p = "vulnerability-patcher-v1";
        let cases: [(&[&str], &str); 6] = [
            (
                &[S1, "step_x"],
                "step 'step_x' is not defined in the workflow",
            ),
            (
                &[S1, S4],
                r#"step 'step_4_apply_patch' is the requested step"#,
            ),
            (
                &[S1, S5],
                r#"step 'step_5_verify_patch' comes after the requested step"#,
            ),
            (
                &[S1, S2, S1],
                r#"step 'step_1_analyze_manifest' is listed twice"#,
            ),
            (
                &[S1, S1],
                r#"step 'step_1_analyze_manifest' is listed twice"#,
            ),
            (
                &[S2, S1, S3],
                r#"step 'step_1_analyze_manifest' is listed after step 'step_2_create_patch_plan', which comes later in the workflow"#,
            ),
        ];
        for (done, detail) in cases {
            let r = authorize_step(&w, p, S4, &strings(done));
            let e = r.clone().unwrap_err();
            assert_eq!(e.status(), 403);
            assert_eq!(
                e.description(),
                format!(
                    "Agent not authorized for workflow step. Invalid completed_steps: {detail}."
                )
            );
            assert_eq!(denial(r), invalid_history(detail), "{done:?}");
        }
    }

    #[test]
    fn s4_3_3_invalid_completed_steps_check_order() {
        let w = draft();
        let p = "vulnerability-patcher-v1";
        let check = |done: &[&str], detail: &str| {
            assert_eq!(
                denial(authorize_step(&w, p, S4, &strings(done))),
                invalid_history(detail),
                "{done:?}"
            );
        };
        // Elements are checked in list order: the first bad element wins.
        check(
            &[S5, "nope"],
            r#"step 'step_5_verify_patch' comes after the requested step"#,
        );
        check(
            &["nope", S5],
            r#"step 'nope' is not defined in the workflow"#,
        );
        // Requested step beats "after" and "twice" for the same element.
        check(
            &[S4, S4],
            r#"step 'step_4_apply_patch' is the requested step"#,
        );
        // "after" beats "twice".
        check(
            &[S5, S5],
            r#"step 'step_5_verify_patch' comes after the requested step"#,
        );
        // "twice" beats "out of order".
        check(
            &[S1, S3, S1],
            r#"step 'step_1_analyze_manifest' is listed twice"#,
        );
        // Unusual characters are quoted with Rust Debug escaping.
        check(&["a\"b"], r#"step 'a"b' is not defined in the workflow"#);
        // Requesting the first step: anything listed comes after it (or is it).
        assert_eq!(
            denial(authorize_step(
                &w,
                "vulnerability-analyzer",
                S1,
                &strings(&[S2])
            )),
            invalid_history(r#"step 'step_2_create_patch_plan' comes after the requested step"#)
        );
    }

    #[test]
    fn s4_3_3_rule_precedence() {
        let w = draft();
        // Unknown step beats everything.
        assert!(matches!(
            denial(authorize_step(&w, "x", "nope", &strings(&["bad"]))).0,
            StepDenial::UnknownStep { .. }
        ));
        // Wrong agent beats an invalid history.
        assert!(matches!(
            denial(authorize_step(&w, "x", S4, &strings(&["bad"]))).0,
            StepDenial::AssignedToOtherAgent { .. }
        ));
        // An invalid history beats missing prerequisites.
        assert!(matches!(
            denial(authorize_step(
                &w,
                "vulnerability-patcher-v1",
                S4,
                &strings(&[S5])
            ))
            .0,
            StepDenial::InvalidCompletedSteps { .. }
        ));
    }

    #[test]
    fn s4_5_5_every_reason_is_403_with_exact_description() {
        let cases: Vec<(StepDenial, &str)> = vec![
            (
                StepDenial::UnknownStep { step: "s".into() },
                r#"Agent not authorized for workflow step. Step 's' is not defined in the workflow."#,
            ),
            (
                StepDenial::AssignedToOtherAgent {
                    step: "s".into(),
                    assigned_to: "a".into(),
                },
                r#"Agent not authorized for workflow step. Step 's' is assigned to agent 'a'."#,
            ),
            (
                StepDenial::MissingPrerequisites,
                "Agent not authorized for workflow step. Required prerequisite steps not completed.",
            ),
            (
                StepDenial::ApprovalGateNotCompleted {
                    gate: Some("g".into()),
                },
                r#"Agent not authorized for workflow step. Step requires approval and approval gate 'g' is not completed."#,
            ),
            (
                StepDenial::ApprovalGateNotCompleted { gate: None },
                "Agent not authorized for workflow step. Step requires approval and the workflow has no approval gate before it.",
            ),
            (
                StepDenial::InvalidCompletedSteps {
                    detail: r#"step 's' is listed twice"#.into(),
                },
                r#"Agent not authorized for workflow step. Invalid completed_steps: step 's' is listed twice."#,
            ),
        ];
        for (reason, want) in cases {
            let e = deny(reason, vec![]);
            assert_eq!(
                (e.code(), e.status(), e.description().as_str()),
                ("workflow_step_unauthorized", 403, want)
            );
        }
    }

    fn step_with_scopes(scopes: Option<&[&str]>) -> WorkflowStep {
        WorkflowStep {
            step_id: "s".to_owned(),
            required: true,
            requires_approval: false,
            approval_gate: false,
            agent_id: None,
            scopes: scopes.map(strings),
        }
    }

    #[test]
    fn a3_bind_scopes_subset_is_granted() {
        let agent = strings(&["repo:read", "repo:write", "vulnerability:read"]);
        let step = step_with_scopes(Some(&["repo:write", "vulnerability:read"]));
        assert_eq!(
            bind_scopes(
                &strings(&["vulnerability:read", "repo:write"]),
                Some(&agent),
                Some(&step)
            ),
            Ok(strings(&["vulnerability:read", "repo:write"]))
        );
        assert_eq!(bind_scopes(&[], Some(&agent), Some(&step)), Ok(vec![]));
    }

    #[test]
    fn a3_bind_scopes_refusals() {
        let agent = strings(&["repo:read", "repo:write"]);
        let step = step_with_scopes(Some(&["repo:read", "deploy"]));
        // refused by the agent (deploy), by the step (repo:write), by both (admin);
        // each once, in request order.
        let e = bind_scopes(
            &strings(&[
                "repo:read",
                "admin",
                "repo:write",
                "deploy",
                "admin",
                "repo:write",
            ]),
            Some(&agent),
            Some(&step),
        )
        .unwrap_err();
        assert_eq!(
            e,
            OAuthError::InvalidScope {
                description: "Requested scopes not allowed: admin repo:write deploy".to_owned(),
                refused: strings(&["admin", "repo:write", "deploy"]),
            }
        );
        assert_eq!(
            (e.code(), e.status(), e.description().as_str()),
            (
                "invalid_scope",
                400,
                "Requested scopes not allowed: admin repo:write deploy"
            )
        );
        // Agent restriction only.
        assert_eq!(
            bind_scopes(&strings(&["deploy"]), Some(&agent), None),
            Err(OAuthError::InvalidScope {
                description: "Requested scopes not allowed: deploy".to_owned(),
                refused: strings(&["deploy"]),
            })
        );
        // Step restriction only.
        assert_eq!(
            bind_scopes(&strings(&["repo:write"]), None, Some(&step)),
            Err(OAuthError::InvalidScope {
                description: "Requested scopes not allowed: repo:write".to_owned(),
                refused: strings(&["repo:write"]),
            })
        );
        // An empty allow-list refuses everything.
        assert_eq!(
            bind_scopes(&strings(&["a"]), Some(&[]), None),
            Err(OAuthError::InvalidScope {
                description: "Requested scopes not allowed: a".to_owned(),
                refused: strings(&["a"]),
            })
        );
    }

    #[test]
    fn a3_bind_scopes_dedupes_in_request_order() {
        let agent = strings(&["a", "b", "c"]);
        assert_eq!(
            bind_scopes(&strings(&["b", "a", "b", "c", "a"]), Some(&agent), None),
            Ok(strings(&["b", "a", "c"]))
        );
    }

    #[test]
    fn a3_bind_scopes_none_means_no_restriction() {
        let req = strings(&["anything", "goes", "anything"]);
        assert_eq!(
            bind_scopes(&req, None, None),
            Ok(strings(&["anything", "goes"]))
        );
        let unrestricted_step = step_with_scopes(None);
        assert_eq!(
            bind_scopes(&req, None, Some(&unrestricted_step)),
            Ok(strings(&["anything", "goes"]))
        );
        let agent = strings(&["goes"]);
        assert_eq!(
            bind_scopes(&req, Some(&agent), Some(&unrestricted_step)),
            Err(OAuthError::InvalidScope {
                description: "Requested scopes not allowed: anything".to_owned(),
                refused: strings(&["anything"]),
            })
        );
    }

    const AGENTS: [&str; 3] = ["agent-a", "agent-b", "agent-c"];

    /// Builds a workflow that `validate_workflow` accepts from random flags:
    /// gates are never assigned to an agent and `requires_approval` is
    /// dropped when no gate precedes the step.
    fn random_workflow(flags: &[(bool, bool, bool, usize)]) -> Workflow {
        let mut gate_seen = false;
        let steps = flags
            .iter()
            .enumerate()
            .map(
                |(i, &(required, approval_gate, requires_approval, agent))| {
                    let s = WorkflowStep {
                        step_id: format!("s{i}"),
                        required,
                        requires_approval: requires_approval && gate_seen,
                        approval_gate,
                        agent_id: if approval_gate {
                            None
                        } else {
                            AGENTS.get(agent).map(|a| (*a).to_owned())
                        },
                        scopes: None,
                    };
                    gate_seen |= approval_gate;
                    s
                },
            )
            .collect();
        Workflow {
            workflow_id: "prop-workflow".to_owned(),
            steps,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn s4_3_3_prop_ok_implies_prerequisites_and_gate(
            flags in prop::collection::vec(
                (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..4),
                3..=8,
            ),
            requested in 0usize..64,
            agent in 0usize..3,
            raw in prop::collection::vec(0usize..10, 0..10),
            mask in prop::collection::vec(prop::bool::weighted(0.85), 8),
            use_mask in any::<bool>(),
        ) {
            let w = random_workflow(&flags);
            prop_assert_eq!(validate_workflow(&w), Ok(()));
            let n = w.steps.len();
            // Unknown step (index n) with probability 1/(n+1).
            let target = Some(requested % (n + 1)).filter(|&t| t < n);
            let step_id = target.map_or_else(|| "unknown-step".to_owned(), |t| format!("s{t}"));
            let agent = AGENTS[agent];
            let completed: Vec<String> = if use_mask {
                // A valid history: a subset of the steps before the target, in order.
                (0..target.unwrap_or(n))
                    .filter(|&i| mask[i])
                    .map(|i| format!("s{i}"))
                    .collect()
            } else {
                raw.iter()
                    .map(|&i| if i < n { format!("s{i}") } else { "zz".to_owned() })
                    .collect()
            };

            let result = authorize_step(&w, agent, &step_id, &completed);

            let Some(t) = target else {
                prop_assert!(result.is_err());
                return Ok(());
            };
            let step = &w.steps[t];
            let done: HashSet<&str> = completed.iter().map(String::as_str).collect();
            let missing: Vec<String> = w.steps[..t]
                .iter()
                .filter(|s| s.required && !done.contains(s.step_id.as_str()))
                .map(|s| s.step_id.clone())
                .collect();
            let gate = w.steps[..t].iter().rev().find(|s| s.approval_gate);
            let gate_ok = !step.requires_approval
                || gate.is_some_and(|g| done.contains(g.step_id.as_str()));
            let agent_ok = step.agent_id.as_deref().is_none_or(|a| a == agent);

            match &result {
                Ok(()) => {
                    prop_assert!(agent_ok);
                    prop_assert!(missing.is_empty(), "missing {:?}", missing);
                    prop_assert!(gate_ok);
                    // completed is a possible history: known, before t, strictly increasing.
                    let positions: Vec<usize> = completed
                        .iter()
                        .map(|c| w.position(c).unwrap())
                        .collect();
                    prop_assert!(positions.iter().all(|&p| p < t));
                    prop_assert!(positions.windows(2).all(|p| p[0] < p[1]));
                }
                Err(OAuthError::WorkflowStepUnauthorized { reason, missing_steps }) => {
                    match reason {
                        StepDenial::MissingPrerequisites => {
                            prop_assert_eq!(missing_steps, &missing);
                        }
                        StepDenial::ApprovalGateNotCompleted { gate: Some(g) } => {
                            prop_assert!(missing.is_empty());
                            prop_assert_eq!(missing_steps, &vec![g.clone()]);
                        }
                        _ => prop_assert!(missing_steps.is_empty()),
                    }
                    if use_mask {
                        // A valid history is only refused for a real reason.
                        prop_assert!(!(agent_ok && missing.is_empty() && gate_ok), "{:?}", reason);
                    }
                }
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
    }
}
