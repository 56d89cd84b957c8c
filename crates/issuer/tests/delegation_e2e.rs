//! The §6.6 three-agent delegation scenario end to end over HTTP: supervisor
//! → planner → patcher through the approval gate, every claim of every token
//! checked and every signature verified with the independent `jsonwebtoken`
//! crate fed the issuer's JWKS; then the bypass attempts (skipping the gate,
//! tampered, foreign and wrong parent tokens) are refused.
//!
//! The workflow is §6.3.3's with `step_1_analyze_manifest` assigned to
//! `supervisor-agent`: as printed, §6.3.3 assigns it to
//! `vulnerability-analyzer` while §6.6.3 has the supervisor run it
//! (spec/interpretation.md I-21).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use common::*;
use serde_json::{json, Value};

const WF: &str = "auto-patch-workflow-v1";
const S: &str = "supervisor-agent";
const P: &str = "patch-planner";
const V: &str = "vulnerability-patcher-v1";

struct Scenario {
    h: Harness,
    admin: String,
    /// Token-endpoint client (`generate:intent-token` only), as a shim would use.
    shim: String,
    s: TestAgent,
    p: TestAgent,
    v: TestAgent,
    reg: std::collections::HashMap<String, String>,
}

async fn setup() -> Scenario {
    let h = Harness::new().await;
    let admin = h.client_token(&h.admin.clone(), Some(REGISTER)).await;
    let shim = h.token_with_scopes(&[GENERATE]).await;

    // Each agent with its own key, of different kinds and formats.
    let s = TestAgent::with_prompt(S, "You orchestrate vulnerability patching.");
    let mut p = TestAgent::with_prompt(P, "You plan dependency patches.");
    p.key = p256_key();
    let v = TestAgent::with_prompt(V, "You apply security patches to dependencies.");
    let mut reg = std::collections::HashMap::new();
    for (agent, pem) in [(&s, false), (&p, true), (&v, true)] {
        let mut body = agent.registration_body();
        if pem {
            body["public_key"] = json!(agent.key.pem);
        }
        body["allowed_scopes"] = json!(["manifest:read", "repo:write", "vulnerability:read"]);
        let r = h.register_agent_raw(&admin, &body).await;
        r.expect(
            200,
            json!({
                "agent_id": agent.id,
                "registration_id": format!("reg_{}_{}", agent.id, h.now()),
                "checksum": agent.checksum,
                "version": 1,
            }),
        );
        reg.insert(
            agent.id.clone(),
            r.json["registration_id"].as_str().unwrap().to_owned(),
        );
    }
    let r = h
        .register_workflow(&admin, &auto_patch_workflow(WF, S))
        .await;
    r.expect(200, json!({"status": "registered", "workflow_id": WF}));
    Scenario {
        h,
        admin,
        shim,
        s,
        p,
        v,
        reg,
    }
}

fn with_parent(mut request: Value, parent: &str) -> Value {
    request["parent_token"] = json!(parent);
    request
}

fn token_of(r: &Resp) -> String {
    r.json["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {r:?}"))
        .to_owned()
}

/// Runs steps 1, 2 and 4 of §6.6.3; returns the three tokens.
async fn run(sc: &Scenario) -> (String, String, String) {
    let h = &sc.h;

    // §6.6.3 step 1: the supervisor requests step 1 with an empty chain.
    let r = h
        .intent(
            &sc.shim,
            &sc.s.step_request(
                WF,
                STEP1,
                &[],
                &[],
                &["manifest:read", "repo:write", "vulnerability:read"],
            ),
        )
        .await;
    check_intent_response(
        h,
        &r,
        &ExpectedIntent {
            agent: &sc.s,
            registration_id: &sc.reg[S],
            aud: json!(API_AUD),
            scope: "manifest:read repo:write vulnerability:read",
            workflow: Some((WF, STEP1)),
            full_chain: &[S],
            steps: &[STEP1],
        },
    )
    .await;
    let supervisor = token_of(&r);

    // Step 4: the planner requests step 2, chain [supervisor], with the
    // supervisor's token as the delegation assertion (I-19).
    h.advance(2);
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.p.step_request(
                    WF,
                    STEP2,
                    &[S],
                    &[STEP1],
                    &["repo:write", "vulnerability:read"],
                ),
                &supervisor,
            ),
        )
        .await;
    check_intent_response(
        h,
        &r,
        &ExpectedIntent {
            agent: &sc.p,
            registration_id: &sc.reg[P],
            aud: json!(API_AUD),
            scope: "repo:write vulnerability:read",
            workflow: Some((WF, STEP2)),
            full_chain: &[S, P],
            steps: &[STEP1, STEP2],
        },
    )
    .await;
    let planner = token_of(&r);

    // Step 7: the patcher requests step 4, chain [supervisor, planner],
    // through the approval gate, with the planner's token.
    h.advance(3);
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(WF, STEP4, &[S, P], &[STEP1, STEP2, STEP3], &["repo:write"]),
                &planner,
            ),
        )
        .await;
    let claims = check_intent_response(
        h,
        &r,
        &ExpectedIntent {
            agent: &sc.v,
            registration_id: &sc.reg[V],
            aud: json!(API_AUD),
            scope: "repo:write",
            workflow: Some((WF, STEP4)),
            full_chain: &[S, P, V],
            steps: &[STEP1, STEP2, STEP3, STEP4],
        },
    )
    .await;
    // §6.6.3 step 10, real values (I-17): SHA-256 of the full chain and of
    // the full step ids, as known answers.
    assert_eq!(claims["intent"]["delegation_chain"], "2f0b6b1132b4c1f7");
    assert_eq!(
        claims["intent"]["step_sequence_hash"],
        seq_hash(&[STEP1, STEP2, STEP3, STEP4])
    );
    (supervisor, planner, token_of(&r))
}

#[tokio::test]
async fn s6_6_three_agent_delegation_end_to_end() {
    let sc = setup().await;
    let (supervisor, planner, patcher) = run(&sc).await;

    // Three distinct tokens, each bound to its own agent's key.
    let claims: Vec<Value> = [&supervisor, &planner, &patcher]
        .iter()
        .map(|t| decode_unverified(t).1)
        .collect();
    let jtis: std::collections::HashSet<&str> =
        claims.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), 3);
    let kids: std::collections::HashSet<&str> = claims
        .iter()
        .map(|c| c["cnf"]["jwk"]["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 3);
    assert_eq!(claims[1]["cnf"]["jwk"]["kty"], "EC");
    assert_eq!(claims[2]["cnf"]["jwk"]["kty"], "OKP");
    // Issued at the times the clock said.
    let iats: Vec<i64> = claims.iter().map(|c| c["iat"].as_i64().unwrap()).collect();
    assert_eq!(iats[1] - iats[0], 2);
    assert_eq!(iats[2] - iats[1], 3);
    // The hashes chain: each child's inputs extend its parent's.
    assert_eq!(claims[0]["intent"]["delegation_chain"], seq_hash(&[S]));
    assert_eq!(claims[1]["intent"]["delegation_chain"], seq_hash(&[S, P]));
    assert_eq!(
        claims[0]["intent"]["step_sequence_hash"],
        seq_hash(&[STEP1])
    );
    assert_eq!(
        claims[1]["intent"]["step_sequence_hash"],
        seq_hash(&[STEP1, STEP2])
    );
}

#[tokio::test]
async fn s6_6_3_patcher_skipping_the_approval_gate_is_refused() {
    let sc = setup().await;
    let (_, planner, _) = run(&sc).await;
    let h = &sc.h;
    let denied =
        "Agent not authorized for workflow step. Required prerequisite steps not completed.";

    // Omitting the gate from completed_steps, with a genuine parent token.
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(WF, STEP4, &[S, P], &[STEP1, STEP2], &["repo:write"]),
                &planner,
            ),
        )
        .await;
    r.expect_step_denied(denied, &[STEP3]);
    // Jumping straight from the supervisor.
    let r = h
        .intent(
            &sc.shim,
            &sc.v
                .step_request(WF, STEP4, &[S], &[STEP1], &["repo:write"]),
        )
        .await;
    r.expect_step_denied(denied, &[STEP2, STEP3]);
    // Claiming the later verification step instead of the gate.
    let r = h
        .intent(
            &sc.shim,
            &sc.v
                .step_request(WF, STEP4, &[S, P], &[STEP1, STEP2, STEP5], &["repo:write"]),
        )
        .await;
    r.expect_step_denied(
        "Agent not authorized for workflow step. Invalid completed_steps: step 'step_5_verify_patch' comes after the requested step.",
        &[],
    );
    // The planner trying to apply the patch itself.
    let r = h
        .intent(
            &sc.shim,
            &sc.p
                .step_request(WF, STEP4, &[S], &[STEP1, STEP2, STEP3], &["repo:write"]),
        )
        .await;
    r.expect_step_denied(
        "Agent not authorized for workflow step. Step 'step_4_apply_patch' is assigned to agent 'vulnerability-patcher-v1'.",
        &[],
    );
}

#[tokio::test]
async fn s9_3_2_tampered_foreign_and_wrong_parent_tokens_are_refused() {
    let sc = setup().await;
    let (supervisor, planner, _) = run(&sc).await;
    let h = &sc.h;
    let patch_request = || {
        sc.v.step_request(WF, STEP4, &[S, P], &[STEP1, STEP2, STEP3], &["repo:write"])
    };

    // Tampered: the planner's token with a widened scope.
    let tampered = tamper_payload(&planner, |c| {
        c["scope"] = json!("repo:write vulnerability:read admin:all")
    });
    let r = h
        .intent(&sc.shim, &with_parent(patch_request(), &tampered))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: signature verification failed",
    );
    let r = h
        .intent(
            &sc.shim,
            &with_parent(patch_request(), &tamper_signature(&planner)),
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: signature verification failed",
    );

    // Foreign: the same claims signed by another issuer's key.
    let foreign_keys = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
    let (_, claims) = decode_unverified(&planner);
    let foreign = foreign_keys
        .sign("JWT", claims.as_object().unwrap())
        .unwrap();
    let r = h
        .intent(&sc.shim, &with_parent(patch_request(), &foreign))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        &format!(
            "Invalid parent_token: unknown key id '{}'",
            foreign_keys.current_kid()
        ),
    );

    // Wrong parent: the supervisor's genuine token, but the planner delegates.
    let r = h
        .intent(&sc.shim, &with_parent(patch_request(), &supervisor))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: executed_by 'supervisor-agent' is not the delegating agent 'patch-planner'",
    );

    // A client access token is not a delegation assertion.
    let r = h
        .intent(&sc.shim, &with_parent(patch_request(), &sc.admin))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: wrong token type: expected 'JWT', found 'at+jwt'",
    );

    // The planner's token does not attest a history that differs from its own.
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(WF, STEP4, &[S, P], &[STEP2, STEP3], &["repo:write"]),
                &planner,
            ),
        )
        .await;
    assert_eq!(r.status, 403, "the workflow check comes first: {r:?}");

    // A parent token without a parent in the chain.
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(WF, STEP4, &[], &[STEP1, STEP2, STEP3], &["repo:write"]),
                &planner,
            ),
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: the delegation chain has no parent agent",
    );

    // A genuine planner token, but from another workflow.
    let r = h
        .register_workflow(&sc.admin, &auto_patch_workflow("other-workflow", S))
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .intent(
            &sc.shim,
            &sc.p
                .step_request("other-workflow", STEP2, &[S], &[STEP1], &["repo:write"]),
        )
        .await;
    let other_workflow_token = token_of(&r);
    let r = h
        .intent(
            &sc.shim,
            &with_parent(patch_request(), &other_workflow_token),
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: workflow_id 'other-workflow' does not match the request's workflow_id 'auto-patch-workflow-v1'",
    );

    // Scope escalation beyond the parent's scopes (I-19).
    let r = h
        .intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(
                    WF,
                    STEP4,
                    &[S, P],
                    &[STEP1, STEP2, STEP3],
                    &["repo:write", "manifest:read"],
                ),
                &planner,
            ),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Scopes not held by the parent agent: manifest:read",
    );

    // An expired parent token (intent tokens live 300 s).
    h.advance(301);
    let r = h
        .intent(&sc.shim, &with_parent(patch_request(), &planner))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parent_token: expired or issued by another issuer",
    );
    // Without parent_token the (self-asserted) chain is still accepted.
    let r = h.intent(&sc.shim, &patch_request()).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn i16_chain_spelled_with_the_requester_gives_the_same_token_claims() {
    let sc = setup().await;
    let (_, planner, patcher) = run(&sc).await;
    let r =
        sc.h.intent(
            &sc.shim,
            &with_parent(
                sc.v.step_request(
                    WF,
                    STEP4,
                    &[S, P, V],
                    &[STEP1, STEP2, STEP3],
                    &["repo:write"],
                ),
                &planner,
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let (_, a) = decode_unverified(&patcher);
    let (_, b) = decode_unverified(&token_of(&r));
    assert_eq!(a["intent"], b["intent"]);
    assert_eq!(a["agent_proof"], b["agent_proof"]);
}
