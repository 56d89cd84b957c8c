//! agent_checksum grant: errors of §4.5 and precedence of §4.3.1.

use super::*;

#[tokio::test]
async fn s4_5_2_unsupported_grant_type() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    for grant in [
        "client_credentials",
        "password",
        "Agent_Checksum",
        "urn:ietf:params:oauth:grant-type:agent-checksum",
    ] {
        let mut req = agent.request(&["x"]);
        req["grant_type"] = json!(grant);
        let r = h.intent(&admin, &req).await;
        // client_credentials is served, but only form-encoded (I-15); a grant
        // the endpoint never serves names both grants (I-53).
        let description = if grant == "client_credentials" {
            "Grant type must be 'agent_checksum'"
        } else {
            BOTH_GRANTS
        };
        r.expect_error(400, "unsupported_grant_type", description);
    }
    // The URN and the short name both work (§4.1).
    let mut req = agent.request(&["x"]);
    req["grant_type"] = json!("urn:ietf:params:oauth:grant-type:agent_checksum");
    assert_eq!(h.intent(&admin, &req).await.status, 200);
}

#[tokio::test]
async fn s4_5_6_invalid_request_descriptions() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let base = agent.request(&["repo:read"]);
    let without = |name: &str| {
        let mut r = base.clone();
        obj_mut(&mut r).remove(name);
        r
    };
    let with = |name: &str, v: Value| {
        let mut r = base.clone();
        r[name] = v;
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            without("grant_type"),
            "Missing required parameter: grant_type",
        ),
        (without("agent_id"), "Missing required parameter: agent_id"),
        (
            without("computed_checksum"),
            "Missing required parameter: computed_checksum",
        ),
        (
            without("requested_scopes"),
            "Missing required parameter: requested_scopes",
        ),
        (without("audience"), "Missing required parameter: audience"),
        (
            with("computed_checksum", json!("")),
            "Missing required parameter: computed_checksum",
        ),
        (
            with("requested_scopes", json!([])),
            "Missing required parameter: requested_scopes",
        ),
        (
            with("computed_checksum", json!("md5:abc")),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with(
                "computed_checksum",
                json!(agent.checksum.trim_start_matches("sha256:")),
            ),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with("computed_checksum", json!(agent.checksum.to_uppercase())),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with("workflow_enabled", json!(true)),
            "workflow_enabled=true but workflow_id/workflow_step missing",
        ),
        (
            with("grant_type", json!(5)),
            "Invalid parameter: grant_type",
        ),
        (
            with("agent_id", json!("a|b")),
            "Invalid parameter: agent_id",
        ),
        (
            with("requested_scopes", json!("repo:read")),
            "Invalid parameter: requested_scopes",
        ),
        (with("audience", json!(7)), "Invalid parameter: audience"),
        (
            with("workflow_enabled", json!("yes")),
            "Invalid parameter: workflow_enabled",
        ),
        (
            with("delegation_context", json!([])),
            "Invalid parameter: delegation_context",
        ),
        (
            with("delegation_context", json!({"chain": "supervisor"})),
            "Invalid parameter: delegation_context.chain",
        ),
        (
            with("parent_token", json!(1)),
            "Invalid parameter: parent_token",
        ),
    ];
    for (req, description) in cases {
        let r = h.intent(&admin, &req).await;
        r.expect_error(400, "invalid_request", description);
    }
    for raw in [
        "{not json",
        "[]",
        "null",
        r#"{"grant_type":"agent_checksum","grant_type":"agent_checksum"}"#,
    ] {
        let r = h
            .post(
                "/intent/token",
                Some(&bearer(&admin)),
                Some("application/json"),
                raw,
            )
            .await;
        r.expect_error(400, "invalid_request", "Invalid JSON format");
    }
    let r = h
        .intent(&admin, &with("requested_scopes", json!(["ok", "not ok"])))
        .await;
    r.expect_error(400, "invalid_scope", "Malformed scope: 'not ok'");
}

#[tokio::test]
async fn s4_3_1_validation_order() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    let ghost = TestAgent::new("ghost-agent");

    // 1. Wrong grant type beats an unknown agent.
    let mut req = ghost.request(&["x"]);
    req["grant_type"] = json!("password");
    h.intent(&admin, &req)
        .await
        .expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    // Wrong grant type beats every missing parameter.
    h.intent(&admin, &json!({"grant_type": "password"}))
        .await
        .expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    // Decoding comes before the registry: unknown agent + bad checksum format.
    let mut req = ghost.request(&["x"]);
    req["computed_checksum"] = json!("sha256:1234");
    h.intent(&admin, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid checksum format (must be 'sha256:<hex>')",
    );
    // 2. Unknown agent beats workflow and delegation errors.
    let req = ghost.step_request("no-such-workflow", STEP4, &["nobody"], &[], &["x"]);
    h.intent(&admin, &req).await.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
    // 3. Checksum mismatch beats workflow and delegation errors.
    let mut req = v.step_request("no-such-workflow", STEP4, &["nobody"], &[], &["x"]);
    req["computed_checksum"] = json!(s.checksum);
    h.intent(&admin, &req).await.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    // 4. Workflow errors beat delegation errors.
    let req = v.step_request("wf", STEP4, &["nobody"], &[STEP1, STEP2], &["x"]);
    h.intent(&admin, &req)
        .await
        .expect_step_denied(PREREQS, &[STEP3]);
    // Then delegation beats scope binding.
    let mut req = p.step_request("wf", STEP2, &["nobody"], &[STEP1], &["x"]);
    req["parent_token"] = json!("x.y.z");
    h.intent(&admin, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid delegation chain: agent 'nobody' is not registered",
    );
}

#[tokio::test]
async fn s4_5_3_and_s4_5_4_unknown_agent_and_checksum_mismatch() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    r.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
    // RFC 9110 §11.6.1: every 401 carries a challenge (I-32).
    assert_eq!(
        r.header("www-authenticate"),
        Some("AgentChecksum error=\"unknown_agent\"")
    );
    h.register(&admin, &agent).await;
    let mut req = agent.request(&["x"]);
    req["computed_checksum"] = json!(format!("sha256:{}", "0".repeat(64)));
    let r = h.intent(&admin, &req).await;
    r.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("AgentChecksum error=\"agent_checksum_mismatch\"")
    );
    // A modified configuration (the point of §4.5.4).
    let mut modified = agent.spec.clone();
    modified["configuration"]["temperature"] = json!(0.7);
    req["computed_checksum"] = json!(checksum_of(&modified, Profile::Jcs));
    let r = h.intent(&admin, &req).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");
}

#[tokio::test]
async fn s4_5_5_workflow_step_unauthorized_and_approval_gate_bypass() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    let scopes = ["repo:write"];

    // Skipping the approval gate.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2], &scopes),
        )
        .await;
    r.expect_step_denied(PREREQS, &[STEP3]);
    // Skipping everything.
    let r = h
        .intent(&admin, &v.step_request("wf", STEP4, &[], &[], &scopes))
        .await;
    r.expect_step_denied(PREREQS, &[STEP1, STEP2, STEP3]);
    // Claiming a later step as completed.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3, STEP5], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step '{STEP5}' comes after the requested step."
        ),
        &[],
    );
    // Claiming the requested step itself.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3, STEP4], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Invalid completed_steps: step '{STEP4}' is the requested step."),
        &[],
    );
    // An out-of-order history.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP2, STEP1, STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step '{STEP1}' is listed after step '{STEP2}', which comes later in the workflow."
        ),
        &[],
    );
    // An unknown step in the history.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, "step_x", STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step 'step_x' is not defined in the workflow."
        ),
        &[],
    );
    // A step assigned to another agent: the planner tries the patch step.
    let r = h
        .intent(
            &admin,
            &p.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step '{STEP4}' is assigned to agent 'vulnerability-patcher-v1'."),
        &[],
    );
    // The unassigned approval gate step follows the same prerequisite rule.
    let r = h
        .intent(&admin, &s.step_request("wf", STEP3, &[], &[STEP1], &scopes))
        .await;
    r.expect_step_denied(PREREQS, &[STEP2]);
    // Unknown step, unknown workflow.
    let r = h
        .intent(&admin, &v.step_request("wf", "step_9", &[], &[], &scopes))
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step 'step_9' is not defined in the workflow."),
        &[],
    );
    let r = h
        .intent(
            &admin,
            &v.step_request("no-such-workflow", STEP4, &[], &[], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Workflow 'no-such-workflow' is not registered."),
        &[],
    );
    // With workflow_enabled=false nothing of this is checked (§4.3.1 step 4).
    let mut req = v.step_request("no-such-workflow", STEP4, &[], &[], &scopes);
    req["workflow_enabled"] = json!(false);
    assert_eq!(h.intent(&admin, &req).await.status, 200);
    // The legitimate request passes.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3], &scopes),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn s4_3_3_step_4_optional_gate_must_still_be_completed() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("gated-agent");
    h.register(&admin, &agent).await;
    let wf = json!({
        "workflow_id": "wf-optional-gate",
        "steps": {
            "prepare": {"required": true},
            "optional_gate": {"required": false, "approval_gate": true},
            "act": {"requires_approval": true, "agent_id": "gated-agent"}
        }
    });
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let r = h
        .intent(
            &admin,
            &agent.step_request("wf-optional-gate", "act", &[], &["prepare"], &["x"]),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step requires approval and approval gate 'optional_gate' is not completed."),
        &["optional_gate"],
    );
    let r = h
        .intent(
            &admin,
            &agent.step_request(
                "wf-optional-gate",
                "act",
                &[],
                &["prepare", "optional_gate"],
                &["x"],
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn i21_draft_6_3_3_workflow_refuses_the_6_6_3_supervisor() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, _, _) = scenario(&h, &admin).await;
    let draft: Value = serde_json::from_str(
        r#"{
         "workflow_id": "auto-patch-workflow-v1",
         "steps": {
           "step_1_analyze_manifest": {"required": true, "requires_approval": false, "agent_id": "vulnerability-analyzer"},
           "step_2_create_patch_plan": {"required": true, "requires_approval": false, "agent_id": "patch-planner"},
           "step_3_approval_gate": {"required": true, "requires_approval": false, "approval_gate": true},
           "step_4_apply_patch": {"required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
           "step_5_verify_patch": {"required": true, "requires_approval": false, "agent_id": "patch-verifier"}
         }
       }"#,
    )
    .unwrap();
    let r = h.register_workflow(&admin, &draft).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "auto-patch-workflow-v1"}),
    );
    let r = h
        .intent(
            &admin,
            &s.step_request("auto-patch-workflow-v1", STEP1, &[], &[], &["repo:read"]),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step '{STEP1}' is assigned to agent 'vulnerability-analyzer'."),
        &[],
    );
}

#[tokio::test]
async fn s4_3_4_delegation_chain_errors() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let cases: Vec<(&TestAgent, Vec<&str>, String)> = vec![
        (
            &v,
            vec!["supervisor-agent", "unregistered-agent"],
            "Invalid delegation chain: agent 'unregistered-agent' is not registered".into(),
        ),
        (
            &v,
            vec!["supervisor-agent", "vulnerability-patcher-v1", "patch-planner"],
            "Invalid delegation chain: agent 'vulnerability-patcher-v1' appears before the end of the chain".into(),
        ),
        (
            &v,
            vec!["supervisor-agent", "patch-planner", "supervisor-agent"],
            "Invalid delegation chain: agent 'supervisor-agent' appears more than once".into(),
        ),
        (
            &s,
            vec!["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"],
            "Invalid delegation chain: depth 9 exceeds the maximum of 8".into(),
        ),
    ];
    for (agent, chain, description) in cases {
        let mut req = agent.request(&["x"]);
        req["delegation_context"] = json!({"chain": chain, "completed_steps": []});
        let r = h.intent(&admin, &req).await;
        r.expect_error(400, "invalid_request", &description);
    }
    // Exactly the maximum depth is accepted.
    let mut req = p.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent"]});
    assert_eq!(h.intent(&admin, &req).await.status, 200);
    let small = Harness::with_config(IssuerConfig {
        max_delegation_depth: 2,
        ..test_config()
    })
    .await;
    let admin2 = small.admin_token().await;
    let (_, p2, v2) = scenario(&small, &admin2).await;
    let mut req = p2.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent"]});
    assert_eq!(small.intent(&admin2, &req).await.status, 200);
    let mut req = v2.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent", "patch-planner"]});
    small.intent(&admin2, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid delegation chain: depth 3 exceeds the maximum of 2",
    );
}

#[tokio::test]
async fn a3_scope_binding_at_registration_and_step() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("scoped-agent");
    let mut body = agent.registration_body();
    body["allowed_scopes"] = json!(["repo:read", "repo:write"]);
    assert_eq!(h.register_agent_raw(&admin, &body).await.status, 200);

    let r = h
        .intent(
            &admin,
            &agent.request(&["repo:read", "admin:all", "repo:write", "x"]),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Requested scopes not allowed: admin:all x",
    );
    let r = h
        .intent(
            &admin,
            &agent.request(&["repo:write", "repo:read", "repo:write"]),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["scope"], "repo:write repo:read",
        "request order, each once"
    );

    let wf = json!({
        "workflow_id": "wf-scoped",
        "steps": [{"step_id": "read_only", "agent_id": "scoped-agent", "scopes": ["repo:read"]}]
    });
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let r = h
        .intent(
            &admin,
            &agent.step_request(
                "wf-scoped",
                "read_only",
                &[],
                &[],
                &["repo:read", "repo:write"],
            ),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Requested scopes not allowed: repo:write",
    );
    let r = h
        .intent(
            &admin,
            &agent.step_request("wf-scoped", "read_only", &[], &[], &["repo:read"]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["scope"], "repo:read");
}

#[tokio::test]
async fn s4_4_successful_response_and_every_claim() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let reg = h
        .store
        .latest_registration("vulnerability-patcher-v1")
        .await
        .unwrap()
        .unwrap();

    // Without a workflow, audience as a string.
    let r = h
        .intent(&admin, &v.request(&["repo:write", "vulnerability:read"]))
        .await;
    let first = check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v,
            registration_id: &reg.registration_id,
            aud: json!(API_AUD),
            scope: "repo:write vulnerability:read",
            workflow: None,
            full_chain: &["vulnerability-patcher-v1"],
            steps: &[],
        },
    )
    .await;
    // Empty completed_steps hash to SHA-256("")[..16].
    assert_eq!(first["intent"]["step_sequence_hash"], "e3b0c44298fc1c14");

    // Same request again: a different jti.
    let r = h
        .intent(&admin, &v.request(&["repo:write", "vulnerability:read"]))
        .await;
    let (_, second) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_ne!(first["jti"], second["jti"], "jti unique");

    // With a workflow, delegation and an array audience.
    let wf = auto_patch_workflow("auto-patch-workflow-v1", "supervisor-agent");
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    h.advance(7);
    let mut req = v.step_request(
        "auto-patch-workflow-v1",
        STEP4,
        &["supervisor-agent", "patch-planner"],
        &[STEP1, STEP2, STEP3],
        &["repo:write"],
    );
    req["audience"] = json!(["https://api.github.com", "https://registry.npmjs.org"]);
    let r = h.intent(&admin, &req).await;
    let claims = check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v,
            registration_id: &reg.registration_id,
            aud: json!(["https://api.github.com", "https://registry.npmjs.org"]),
            scope: "repo:write",
            workflow: Some(("auto-patch-workflow-v1", STEP4)),
            full_chain: &[
                "supervisor-agent",
                "patch-planner",
                "vulnerability-patcher-v1",
            ],
            steps: &[STEP1, STEP2, STEP3, STEP4],
        },
    )
    .await;
    // Known answer (independent of the hash code above and of the issuer).
    assert_eq!(claims["intent"]["delegation_chain"], "2f0b6b1132b4c1f7");

    // I-16: the chain may already end with the requester; same claims.
    let mut req2 = req.clone();
    req2["delegation_context"]["chain"] = json!([
        "supervisor-agent",
        "patch-planner",
        "vulnerability-patcher-v1"
    ]);
    let r = h.intent(&admin, &req2).await;
    let (_, claims2) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(claims2["intent"], claims["intent"]);
}

#[tokio::test]
async fn s9_2_1_intent_token_lifetime_follows_configuration() {
    let h = Harness::with_config(IssuerConfig {
        intent_token_lifetime: 60,
        ..test_config()
    })
    .await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("short-lived");
    let reg = h.register(&admin, &agent).await;
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.json["expires_in"], 60);
    check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &agent,
            registration_id: reg["registration_id"].as_str().unwrap(),
            aud: json!(API_AUD),
            scope: "repo:read",
            workflow: None,
            full_chain: &["short-lived"],
            steps: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn intent_tokens_verify_with_every_signing_algorithm() {
    for alg in SigningAlgorithm::ALL {
        let h = Harness::with_alg(test_config(), alg).await;
        let jwks = h.jwks().await;
        assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
        assert_eq!(jwks["keys"][0]["use"], "sig");
        let admin = h.admin_token().await;
        verify_independently(&admin, &jwks, ISSUER, &[CLIENT_AUD]);
        let agent = TestAgent::new("alg-agent");
        let reg = h.register(&admin, &agent).await;
        let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
        check_intent_response(
            &h,
            &r,
            &ExpectedIntent {
                agent: &agent,
                registration_id: reg["registration_id"].as_str().unwrap(),
                aud: json!(API_AUD),
                scope: "repo:read",
                workflow: None,
                full_chain: &["alg-agent"],
                steps: &[],
            },
        )
        .await;
    }
}

#[tokio::test]
async fn s4_2_1_form_encoded_agent_checksum_request_works_like_json() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let wf = auto_patch_workflow("wf", "supervisor-agent");
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let reg = h.store.latest_registration(&v.id).await.unwrap().unwrap();
    let ctx = json!({"chain": ["supervisor-agent", "patch-planner"], "completed_steps": [STEP1, STEP2, STEP3]})
        .to_string();
    let form = |grant: &'static str, completed: &str| -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", grant.into()),
            ("agent_id", v.id.clone()),
            ("computed_checksum", v.checksum.clone()),
            ("workflow_id", "wf".into()),
            ("workflow_step", STEP4.into()),
            ("workflow_enabled", "true".into()),
            ("requested_scopes", "repo:write vulnerability:read".into()),
            ("audience", API_AUD.into()),
            ("delegation_context", completed.to_owned()),
        ]
    };
    for grant in [
        "agent_checksum",
        "urn:ietf:params:oauth:grant-type:agent_checksum",
    ] {
        let pairs = form(grant, &ctx);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = h
            .post_form("/intent/token", Some(&bearer(&admin)), &pairs)
            .await;
        check_intent_response(
            &h,
            &r,
            &ExpectedIntent {
                agent: &v,
                registration_id: &reg.registration_id,
                aud: json!(API_AUD),
                scope: "repo:write vulnerability:read",
                workflow: Some(("wf", STEP4)),
                full_chain: &[
                    "supervisor-agent",
                    "patch-planner",
                    "vulnerability-patcher-v1",
                ],
                steps: &[STEP1, STEP2, STEP3, STEP4],
            },
        )
        .await;
    }
    // Errors are the same as for JSON.
    let skip = json!({"chain": [], "completed_steps": [STEP1, STEP2]}).to_string();
    let pairs = form("agent_checksum", &skip);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.post_form("/intent/token", Some(&bearer(&admin)), &pairs)
        .await
        .expect_step_denied(PREREQS, &[STEP3]);
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[("grant_type", "password"), ("agent_id", "ghost")],
        )
        .await;
    r.expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[("grant_type", "agent_checksum"), ("agent_id", "ghost")],
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: computed_checksum",
    );
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[
                ("grant_type", "agent_checksum"),
                ("agent_id", "ghost"),
                ("agent_id", "ghost2"),
            ],
        )
        .await;
    r.expect_error(400, "invalid_request", "Duplicate parameter: agent_id");
    let pairs = form("agent_checksum", "{not json");
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h
        .post_form("/intent/token", Some(&bearer(&admin)), &pairs)
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parameter: delegation_context",
    );
}
