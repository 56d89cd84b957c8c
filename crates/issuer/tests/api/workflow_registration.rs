//! Workflow registration (§6.3.3, §4.7.2).

use super::*;

#[tokio::test]
async fn s6_3_3_object_form_and_s4_7_2_array_form_register_the_same_workflow() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let object_form = auto_patch_workflow("wf-object", "supervisor-agent");
    let r = h.register_workflow(&admin, &object_form).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "wf-object"}),
    );

    let array_form = json!({
        "workflow_id": "wf-array",
        "steps": [
            {"step_id": STEP1, "required": true, "requires_approval": false, "agent_id": "supervisor-agent"},
            {"step_id": STEP2, "required": true, "requires_approval": false, "agent_id": "patch-planner"},
            {"step_id": STEP3, "required": true, "requires_approval": false, "approval_gate": true},
            {"step_id": STEP4, "required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
            {"step_id": STEP5, "required": true, "requires_approval": false, "agent_id": "patch-verifier"}
        ]
    });
    let r = h.register_workflow(&admin, &array_form).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "wf-array"}),
    );

    let a = h.store.workflow("wf-object").await.unwrap().unwrap();
    let b = h.store.workflow("wf-array").await.unwrap().unwrap();
    assert_eq!(a.steps, b.steps, "same ordered steps");

    for wf in ["wf-object", "wf-array"] {
        let r = h
            .intent(
                &admin,
                &v.step_request(wf, STEP4, &[], &[STEP1, STEP2], &["repo:write"]),
            )
            .await;
        r.expect_step_denied(PREREQS, &[STEP3]);
        let r = h
            .intent(
                &admin,
                &v.step_request(wf, STEP4, &[], &[STEP1, STEP2, STEP3], &["repo:write"]),
            )
            .await;
        assert_eq!(r.status, 200, "{wf}: {r:?}");
    }
}

#[tokio::test]
async fn s6_3_workflows_are_immutable() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, p, _) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf-fixed", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    // Same id, a definition that would let the planner skip step 1.
    let replacement = json!({"workflow_id": "wf-fixed", "steps": {STEP2: {"required": true}}});
    let r = h.register_workflow(&admin, &replacement).await;
    r.expect_error(
        400,
        "invalid_request",
        "Workflow 'wf-fixed' already exists (workflows are immutable: register a new workflow_id)",
    );
    let r = h
        .intent(&admin, &p.step_request("wf-fixed", STEP2, &[], &[], &["x"]))
        .await;
    r.expect_step_denied(PREREQS, &[STEP1]);
}

#[tokio::test]
async fn s9_3_1_invalid_workflow_definitions_name_the_step() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "Workflow must define at least one step"),
        (
            json!([{"step_id": "a"}, {"step_id": "a"}]),
            "Invalid workflow step 'a': duplicate step id",
        ),
        (
            json!({"a": {"requires_approval": true}}),
            "Invalid workflow step 'a': requires approval but no approval gate precedes it",
        ),
        (
            json!({"g": {"approval_gate": true, "agent_id": "someone"}}),
            "Invalid workflow step 'g': an approval gate cannot be assigned to an agent",
        ),
        (
            json!({"g": {"approval_gate": true}, "b": {"requires_aproval": true}}),
            "Invalid workflow step 'b': unknown member 'requires_aproval'",
        ),
        (
            json!({"b": {"required": "yes"}}),
            "Invalid workflow step 'b': required must be a boolean, found string",
        ),
        (
            json!([{"required": true}]),
            "Invalid workflow step 'steps[0]': missing step_id",
        ),
        (
            json!({"bad step": {}}),
            "Invalid workflow step 'bad step': step ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        ),
        (
            json!({"s": {"scopes": ["ok", "not ok"]}}),
            "Invalid workflow step 's': malformed scope 'not ok'",
        ),
        (
            json!("steps"),
            "Invalid parameter: steps must be an object or an array",
        ),
    ];
    for (i, (steps, description)) in cases.into_iter().enumerate() {
        let id = format!("wf-bad-{i}");
        let r = h
            .register_workflow(&admin, &json!({"workflow_id": id, "steps": steps}))
            .await;
        r.expect_error(400, "invalid_request", description);
        assert!(h.store.workflow(&id).await.unwrap().is_none());
    }
    let r = h
        .register_workflow(&admin, &json!({"steps": {"a": {}}}))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: workflow_id",
    );
    let r = h
        .register_workflow(&admin, &json!({"workflow_id": "wf-no-steps"}))
        .await;
    r.expect_error(400, "invalid_request", "Missing required parameter: steps");
    // A step given twice in the object form is a duplicate JSON member.
    let r = h
        .post(
            "/intent/register/workflow",
            Some(&bearer(&admin)),
            Some("application/json"),
            r#"{"workflow_id":"wf-dup","steps":{"a":{},"a":{"required":false}}}"#,
        )
        .await;
    r.expect_error(400, "invalid_request", "Invalid JSON format");
}
