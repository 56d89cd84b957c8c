//! Plan section: workflow registration (§6.3.3, §4.7.2), step authorization
//! and approval gates (§4.3.3, §4.5.5, §9.3.1), delegation chains (§4.3.4,
//! §9.3.2) and the sequence hashes of the resulting tokens (§4.4.4).

use serde_json::{json, Value};

use super::agents::{full_chain, seq_hash, Agent, KeyKind};
use super::checks::{self, ensure, Out, T};
use super::{jwt, test, Ctx, Registered, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-6.3.3-workflow-registration", "6.3.3", "MUST", &["R-4.3.3-1", "R-9.3-1"],
     "The §6.3.3 workflow (steps as an object) registers with an authorized client token"),
    ("ISS-4.7.2-workflow-registration-array-form", "4.7.2", "MAY", &[],
     "The §4.7.2 form (ordered array of steps) registers and is enforced like the object form"),
    ("ISS-4.3.3-unknown-workflow", "4.3.3", "MUST", &["R-4.3.3-1"],
     "A workflow_id that is not registered is 403 workflow_step_unauthorized"),
    ("ISS-4.3.3-unknown-step", "4.3.3", "MUST", &["R-4.3.3-2"],
     "A workflow_step not defined in the workflow is 403 workflow_step_unauthorized"),
    ("ISS-4.3.3-missing-prerequisites", "4.3.3", "MUST", &["R-4.3.3-3", "R-9.3.1-1", "R-9.3.1-4"],
     "Skipping every required prior step is 403 with all of them in missing_steps"),
    ("ISS-4.3.3-approval-gate-bypass", "4.3.3", "MUST", &["R-4.3.3-4", "R-9.3.1-2"],
     "Skipping the approval gate before a requires_approval step is 403 with the gate in missing_steps"),
    ("ISS-4.5.5-step-assigned-to-other-agent", "4.5.5", "MUST", &["R-4.3.1-4", "R-9.3.1-3"],
     "An agent requesting a step assigned to another agent is 403 workflow_step_unauthorized"),
    ("ISS-4.3.3-authorized-step", "4.3.3", "MUST", &["R-4.3.1-4", "R-4.3.1-5"],
     "The assigned agent with every prerequisite and the gate completed gets a token"),
    ("ISS-4.4.2-workflow-claims", "4.4.2", "REQUIRED", &["R-4.4.2-10", "R-4.4.2-11"],
     "intent.workflow_id and intent.workflow_step are those of the request"),
    ("ISS-4.4.4-step-sequence-hash", "4.4.4", "REQUIRED", &["R-4.4.2-14", "R-9.4.1-6"],
     "step_sequence_hash = SHA-256(completed_steps + current step, '|'-joined)[:16], recomputed"),
    ("ISS-4.4.4-delegation-chain-hash", "4.4.4", "REQUIRED", &["R-4.4.2-13", "R-9.4.1-6"],
     "delegation_chain = SHA-256(chain + requesting agent, '|'-joined)[:16], recomputed"),
    ("ISS-4.4.4-chain-with-requester", "4.4.4", "SHOULD", &["R-4.3.4-3"],
     "A chain that already ends with the requester is accepted and hashes like the parents-only chain (I-16)"),
    ("ISS-4.3.3-completed-later-step", "4.3.3", "SHOULD", &["R-9.3.1-4"],
     "completed_steps naming a step after the requested one is refused (I-18: not a possible history)"),
    ("ISS-4.3.3-completed-requested-step", "4.3.3", "SHOULD", &["R-9.3.1-4"],
     "completed_steps naming the requested step itself is refused (I-18)"),
    ("ISS-4.3.3-completed-unknown-step", "4.3.3", "SHOULD", &["R-9.3.1-4"],
     "completed_steps naming a step the workflow does not define is refused (I-18)"),
    ("ISS-4.3.3-completed-out-of-order", "4.3.3", "SHOULD", &["R-9.3.1-4"],
     "completed_steps out of workflow order is refused (I-18: the step_sequence_hash would differ)"),
    ("ISS-6.3.2-duplicate-workflow", "6.3.2", "SHOULD", &["R-9.3-1"],
     "Registering an existing workflow_id again is refused and the original definition stays enforced (I-29)"),
    ("ISS-9.3-workflow-approval-without-gate", "9.3", "SHOULD", &["R-9.3-3"],
     "A workflow with a requires_approval step and no approval gate before it is refused"),
    ("ISS-9.3-workflow-duplicate-step-ids", "9.3", "SHOULD", &["R-9.3-3"],
     "A workflow (array form) defining the same step id twice is refused"),
    ("ISS-4.3.3-optional-step-may-be-skipped", "4.3.3", "MUST", &["R-4.3.3-3"],
     "A step marked required=false may be skipped"),
    ("ISS-4.3.3-optional-gate-must-be-completed", "4.3.3", "MUST", &["R-4.3.3-4"],
     "requires_approval needs the most recent gate completed even when the gate is optional"),
    ("ISS-4.2.1-workflow-disabled", "4.2.1", "OPTIONAL", &["R-4.2.1-6"],
     "workflow_enabled=false skips workflow validation"),
    ("ISS-4.3.4-valid-chain", "4.3.4", "OPTIONAL", &["R-4.2.1-9", "R-4.3.4-1"],
     "A delegation chain of registered agents without workflow is accepted"),
    ("ISS-4.3.4-unregistered-agent-in-chain", "4.3.4", "SHOULD", &["R-4.3.4-1"],
     "A chain naming an unregistered agent is refused"),
    ("ISS-4.3.4-requester-not-last", "4.3.4", "SHOULD", &["R-4.3.4-3"],
     "A chain naming the requester before its end is refused"),
    ("ISS-4.3.4-cycle", "4.3.4", "SHOULD", &["R-4.3.4-2", "R-9.3-3"],
     "A chain naming an agent twice (a delegation cycle) is refused"),
    ("ISS-9.3.2-depth-limit", "9.3.2", "SHOULD", &["R-9.3.2-3"],
     "A chain of 17 registered agents is refused (delegation depth is limited)"),
];

const STEP1: &str = "step_1_analyze_manifest";
const STEP2: &str = "step_2_create_patch_plan";
const STEP3: &str = "step_3_approval_gate";
const STEP4: &str = "step_4_apply_patch";
const STEP5: &str = "step_5_verify_patch";

struct Scenario {
    s: Registered,
    p: Registered,
    v: Registered,
    wf: String,
}

const WF_IDS: &[&str] = &[
    "ISS-6.3.3-workflow-registration",
    "ISS-4.7.2-workflow-registration-array-form",
    "ISS-4.3.3-unknown-workflow",
    "ISS-4.3.3-unknown-step",
    "ISS-4.3.3-missing-prerequisites",
    "ISS-4.3.3-approval-gate-bypass",
    "ISS-4.5.5-step-assigned-to-other-agent",
    "ISS-4.3.3-authorized-step",
    "ISS-4.4.2-workflow-claims",
    "ISS-4.4.4-step-sequence-hash",
    "ISS-4.4.4-delegation-chain-hash",
    "ISS-4.4.4-chain-with-requester",
    "ISS-4.3.3-completed-later-step",
    "ISS-4.3.3-completed-requested-step",
    "ISS-4.3.3-completed-unknown-step",
    "ISS-4.3.3-completed-out-of-order",
    "ISS-6.3.2-duplicate-workflow",
    "ISS-9.3-workflow-approval-without-gate",
    "ISS-9.3-workflow-duplicate-step-ids",
    "ISS-4.3.3-optional-step-may-be-skipped",
    "ISS-4.3.3-optional-gate-must-be-completed",
    "ISS-4.2.1-workflow-disabled",
    "ISS-4.3.4-valid-chain",
    "ISS-4.3.4-unregistered-agent-in-chain",
    "ISS-4.3.4-requester-not-last",
    "ISS-4.3.4-cycle",
    "ISS-9.3.2-depth-limit",
];

/// The §6.3.3 workflow with the run's agents (step 1 assigned to the
/// supervisor, I-21), as an object or as a §4.7.2 array.
fn workflow(id: &str, s: &str, p: &str, v: &str, verifier: &str, array: bool) -> Value {
    let steps = [
        (
            STEP1,
            json!({"required": true, "requires_approval": false, "agent_id": s}),
        ),
        (
            STEP2,
            json!({"required": true, "requires_approval": false, "agent_id": p}),
        ),
        (
            STEP3,
            json!({"required": true, "requires_approval": false, "approval_gate": true}),
        ),
        (
            STEP4,
            json!({"required": true, "requires_approval": true, "agent_id": v}),
        ),
        (
            STEP5,
            json!({"required": true, "requires_approval": false, "agent_id": verifier}),
        ),
    ];
    if array {
        let list: Vec<Value> = steps
            .iter()
            .map(|(id, def)| {
                let mut d = def.clone();
                d["step_id"] = json!(id);
                d
            })
            .collect();
        json!({"workflow_id": id, "steps": list})
    } else {
        let mut map = serde_json::Map::new();
        for (id, def) in steps {
            map.insert(id.to_owned(), def);
        }
        json!({"workflow_id": id, "steps": map})
    }
}

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    if !ctx.run.wants_any(WF_IDS) {
        return;
    }
    let sc = match setup(ctx).await {
        Ok(sc) => sc,
        Err(e) => {
            ctx.run.skip_all(WF_IDS, &super::skip_reason(&e));
            return;
        }
    };
    let Some(sc) = sc else {
        return;
    };
    test!(
        ctx,
        "ISS-4.7.2-workflow-registration-array-form",
        array_form(ctx, &sc)
    );
    let aud = ctx.audience.clone();
    let (s, p, v) = (
        sc.s.agent.id.clone(),
        sc.p.agent.id.clone(),
        sc.v.agent.id.clone(),
    );
    let scopes = ["repo:write"];
    let wf = sc.wf.clone();

    test!(ctx, "ISS-4.3.3-unknown-workflow", async {
        let other = ctx.name("unregistered-workflow");
        let req =
            sc.v.agent
                .step_request(&aud, &other, STEP4, &[], &[STEP1, STEP2, STEP3], &scopes);
        let r = ctx.token_request("unknown workflow", &req).await?;
        checks::step_denied(&r, &[])
    });
    test!(ctx, "ISS-4.3.3-unknown-step", async {
        let req =
            sc.v.agent
                .step_request(&aud, &wf, "step_9_undefined", &[], &[], &scopes);
        let r = ctx.token_request("unknown step", &req).await?;
        checks::step_denied(&r, &[])
    });
    test!(ctx, "ISS-4.3.3-missing-prerequisites", async {
        let req = sc.v.agent.step_request(&aud, &wf, STEP4, &[], &[], &scopes);
        let r = ctx.token_request("no prerequisites", &req).await?;
        checks::step_denied(&r, &[STEP1, STEP2, STEP3])
    });
    test!(ctx, "ISS-4.3.3-approval-gate-bypass", async {
        let req =
            sc.v.agent
                .step_request(&aud, &wf, STEP4, &[], &[STEP1, STEP2], &scopes);
        let r = ctx.token_request("gate bypass", &req).await?;
        checks::step_denied(&r, &[STEP3])
    });
    test!(ctx, "ISS-4.5.5-step-assigned-to-other-agent", async {
        let req =
            sc.p.agent
                .step_request(&aud, &wf, STEP4, &[], &[STEP1, STEP2, STEP3], &scopes);
        let r = ctx.token_request("step of another agent", &req).await?;
        checks::step_denied(&r, &[])
    });

    // Histories that cannot have happened (I-18 rule 3).
    let histories: [(&str, Vec<&str>); 4] = [
        (
            "ISS-4.3.3-completed-later-step",
            vec![STEP1, STEP2, STEP3, STEP5],
        ),
        (
            "ISS-4.3.3-completed-requested-step",
            vec![STEP1, STEP2, STEP3, STEP4],
        ),
        (
            "ISS-4.3.3-completed-unknown-step",
            vec![STEP1, STEP2, STEP3, "step_x_undefined"],
        ),
        (
            "ISS-4.3.3-completed-out-of-order",
            vec![STEP2, STEP1, STEP3],
        ),
    ];
    for (id, h) in histories {
        test!(ctx, id, async {
            let req = sc.v.agent.step_request(&aud, &wf, STEP4, &[], &h, &scopes);
            let r = ctx.token_request(id, &req).await?;
            checks::step_denied(&r, &[]).map_err(|e| match e {
                Out::Fail(s) => Out::Fail(format!("completed_steps {h:?}: {s}")),
                o => o,
            })
        });
    }
    test!(ctx, "ISS-6.3.2-duplicate-workflow", async {
        // Same id, a definition that would let the planner skip step 1.
        let body = json!({"workflow_id": wf, "steps": {STEP2: {"required": true}}});
        let r = ctx.register_workflow(&body).await?;
        checks::refused(&r).map_err(|e| match e {
            Out::Fail(s) => Out::Fail(format!("re-registration of workflow '{wf}': {s}")),
            o => o,
        })?;
        let req = sc.p.agent.step_request(&aud, &wf, STEP2, &[], &[], &scopes);
        let r = ctx
            .token_request("original workflow still enforced", &req)
            .await?;
        checks::step_denied(&r, &[STEP1])
    });
    test!(ctx, "ISS-9.3-workflow-approval-without-gate", async {
        let body = json!({
            "workflow_id": ctx.name("wf-no-gate"),
            "steps": {"prepare": {"required": true}, "act": {"requires_approval": true}}
        });
        let r = ctx.register_workflow(&body).await?;
        checks::refused(&r)
    });
    test!(ctx, "ISS-9.3-workflow-duplicate-step-ids", async {
        let body = json!({
            "workflow_id": ctx.name("wf-dup-steps"),
            "steps": [{"step_id": "a", "required": true}, {"step_id": "a", "required": false}]
        });
        let r = ctx.register_workflow(&body).await?;
        checks::refused(&r)
    });

    // The legitimate §6.6.3 request: patcher, chain [supervisor, planner].
    let chain = [s.as_str(), p.as_str()];
    let completed = [STEP1, STEP2, STEP3];
    let mut claims: Option<Value> = None;
    if ctx.run.wants_any(&[
        "ISS-4.3.3-authorized-step",
        "ISS-4.4.2-workflow-claims",
        "ISS-4.4.4-step-sequence-hash",
        "ISS-4.4.4-delegation-chain-hash",
        "ISS-4.4.4-chain-with-requester",
    ]) {
        ctx.run.start_timer();
        let req =
            sc.v.agent
                .step_request(&aud, &wf, STEP4, &chain, &completed, &scopes);
        let result = verified_claims(ctx, "authorized step", &req).await;
        match result {
            Ok(c) => {
                claims = Some(c);
                ctx.run
                    .record("ISS-4.3.3-authorized-step", checks::to_check(Ok(())));
            }
            Err(e) => {
                let reason = super::skip_reason(&e);
                ctx.run
                    .record("ISS-4.3.3-authorized-step", checks::to_check(Err(e)));
                ctx.run.skip_all(
                    &[
                        "ISS-4.4.2-workflow-claims",
                        "ISS-4.4.4-step-sequence-hash",
                        "ISS-4.4.4-delegation-chain-hash",
                        "ISS-4.4.4-chain-with-requester",
                    ],
                    &reason,
                );
            }
        }
    }
    if let Some(c) = &claims {
        let intent = c.get("intent").cloned().unwrap_or(Value::Null);
        test!(ctx, "ISS-4.4.2-workflow-claims", async {
            let (got_wf, got_step) = (
                intent.get("workflow_id").and_then(Value::as_str),
                intent.get("workflow_step").and_then(Value::as_str),
            );
            ensure(
                got_wf == Some(wf.as_str()) && got_step == Some(STEP4),
                || {
                    format!(
                    "intent.workflow_id/workflow_step are {got_wf:?}/{got_step:?}, expected '{wf}'/'{STEP4}'"
                )
                },
            )
        });
        test!(ctx, "ISS-4.4.4-step-sequence-hash", async {
            let want = seq_hash(&[STEP1, STEP2, STEP3, STEP4]);
            let got = intent.get("step_sequence_hash").and_then(Value::as_str);
            ensure(got == Some(want.as_str()), || {
                format!(
                    "step_sequence_hash is {got:?}, expected {want} = SHA-256('{STEP1}|{STEP2}|{STEP3}|{STEP4}')[:16]"
                )
            })
        });
        let want_chain = seq_hash(&full_chain(&chain, &v));
        test!(ctx, "ISS-4.4.4-delegation-chain-hash", async {
            let got = intent.get("delegation_chain").and_then(Value::as_str);
            ensure(got == Some(want_chain.as_str()), || {
                format!(
                    "delegation_chain is {got:?}, expected {want_chain} = SHA-256('{s}|{p}|{v}')[:16]"
                )
            })
        });
        test!(ctx, "ISS-4.4.4-chain-with-requester", async {
            let with_v = [s.as_str(), p.as_str(), v.as_str()];
            let req =
                sc.v.agent
                    .step_request(&aud, &wf, STEP4, &with_v, &completed, &scopes);
            let c2 = verified_claims(ctx, "chain ending with requester", &req).await?;
            let got = c2
                .get("intent")
                .and_then(|i| i.get("delegation_chain"))
                .and_then(Value::as_str);
            ensure(got == Some(want_chain.as_str()), || {
                format!(
                    "chain [{s}, {p}, {v}] gives delegation_chain {got:?}, the parents-only chain gives {want_chain}"
                )
            })
        });
    }

    if ctx.run.wants_any(&[
        "ISS-4.3.3-optional-step-may-be-skipped",
        "ISS-4.3.3-optional-gate-must-be-completed",
    ]) {
        optional(ctx, &sc).await;
    }
    test!(ctx, "ISS-4.2.1-workflow-disabled", async {
        let other = ctx.name("unregistered-workflow");
        let mut req =
            sc.v.agent
                .step_request(&aud, &other, STEP4, &[], &[], &scopes);
        req["workflow_enabled"] = json!(false);
        let r = ctx.token_request("workflow disabled", &req).await?;
        ensure(r.status == 200, || {
            format!(
                "with workflow_enabled=false the workflow must not be validated; expected 200, got {}",
                r.summary()
            )
        })
    });

    // Delegation without workflow (§4.3.4).
    let delegated = |chain: &[&str]| {
        let mut req = sc.v.agent.request(&aud, &["repo:read"]);
        req["delegation_context"] = json!({"chain": chain, "completed_steps": []});
        req
    };
    test!(ctx, "ISS-4.3.4-valid-chain", async {
        let req = delegated(&[s.as_str(), p.as_str()]);
        let r = ctx.token_request("valid chain", &req).await?;
        ensure(r.status == 200, || {
            format!("expected 200, got {}", r.summary())
        })
    });
    test!(ctx, "ISS-4.3.4-unregistered-agent-in-chain", async {
        let ghost = ctx.name("unregistered-parent");
        let r = ctx
            .token_request(
                "unregistered parent",
                &delegated(&[s.as_str(), ghost.as_str()]),
            )
            .await?;
        checks::refused(&r)
    });
    test!(ctx, "ISS-4.3.4-requester-not-last", async {
        let r = ctx
            .token_request(
                "requester not last",
                &delegated(&[s.as_str(), v.as_str(), p.as_str()]),
            )
            .await?;
        checks::refused(&r)
    });
    test!(ctx, "ISS-4.3.4-cycle", async {
        let r = ctx
            .token_request("cycle", &delegated(&[s.as_str(), p.as_str(), s.as_str()]))
            .await?;
        checks::refused(&r)
    });
    test!(ctx, "ISS-9.3.2-depth-limit", depth(ctx, &sc.v));
}

/// Registers the agents and the object-form workflow. `Ok(None)` when the
/// workflow registration itself failed (recorded, the rest skipped).
async fn setup(ctx: &mut Ctx) -> Result<Option<Scenario>, Out> {
    let s = ctx.new_agent("supervisor", KeyKind::Ed25519).await?;
    let p = ctx.new_agent("planner", KeyKind::P256).await?;
    let v = ctx.new_agent("patcher", KeyKind::Ed25519).await?;
    let wf = ctx.name("auto-patch-workflow");
    let verifier = ctx.name("verifier");
    ctx.run.start_timer();
    let body = workflow(&wf, &s.agent.id, &p.agent.id, &v.agent.id, &verifier, false);
    let r = ctx.register_workflow(&body).await?;
    let check = checks::ok(&r, "the workflow registration");
    let failed = check.is_err();
    ctx.run
        .record("ISS-6.3.3-workflow-registration", checks::to_check(check));
    if failed {
        let rest: Vec<&str> = WF_IDS
            .iter()
            .copied()
            .filter(|id| *id != "ISS-6.3.3-workflow-registration")
            .collect();
        ctx.run.skip_all(
            &rest,
            &format!(
                "prerequisite failed: workflow registration: {}",
                r.summary()
            ),
        );
        return Ok(None);
    }
    Ok(Some(Scenario { s, p, v, wf }))
}

/// Requests a token and verifies it against the JWKS; returns the claims.
async fn verified_claims(ctx: &mut Ctx, label: &str, req: &Value) -> Result<Value, Out> {
    let r = ctx.token_request(label, req).await?;
    let Some(token) = r.str_member("access_token").map(str::to_owned) else {
        return Err(format!("{label}: expected 200 with a token, got {}", r.summary()).into());
    };
    let jwks = ctx.jwks().await?;
    let (_, claims) = jwt::verify(&token, &jwks)?;
    Ok(claims)
}

async fn array_form(ctx: &mut Ctx, sc: &Scenario) -> T {
    let wf = ctx.name("array-workflow");
    let verifier = ctx.name("verifier");
    let body = workflow(
        &wf,
        &sc.s.agent.id,
        &sc.p.agent.id,
        &sc.v.agent.id,
        &verifier,
        true,
    );
    let r = ctx.register_workflow(&body).await?;
    if r.status != 200 {
        return super::skip(format!(
            "the array form of §4.7.2 is not accepted: {}",
            r.summary()
        ));
    }
    let aud = ctx.audience.clone();
    let req =
        sc.v.agent
            .step_request(&aud, &wf, STEP4, &[], &[STEP1, STEP2], &["repo:write"]);
    let denied = ctx.token_request("array form gate bypass", &req).await?;
    checks::step_denied(&denied, &[STEP3])?;
    let req = sc.v.agent.step_request(
        &aud,
        &wf,
        STEP4,
        &[],
        &[STEP1, STEP2, STEP3],
        &["repo:write"],
    );
    let r = ctx.token_request("array form authorized", &req).await?;
    ensure(r.status == 200, || {
        format!(
            "authorized step of the array-form workflow: expected 200, got {}",
            r.summary()
        )
    })
}

async fn optional(ctx: &mut Ctx, sc: &Scenario) {
    const IDS: [&str; 2] = [
        "ISS-4.3.3-optional-step-may-be-skipped",
        "ISS-4.3.3-optional-gate-must-be-completed",
    ];
    let wf = ctx.name("optional-workflow");
    let body = json!({
        "workflow_id": wf,
        "steps": {
            "prepare": {"required": true},
            "optional_review": {"required": false},
            "optional_gate": {"required": false, "approval_gate": true},
            "act": {"required": true, "requires_approval": true, "agent_id": sc.v.agent.id}
        }
    });
    let r = match ctx.register_workflow(&body).await {
        Ok(r) => r,
        Err(e) => {
            ctx.run.skip_all(&IDS, &super::skip_reason(&e));
            return;
        }
    };
    if r.status != 200 {
        ctx.run.skip_all(
            &IDS,
            &format!(
                "prerequisite failed: registration of a workflow with optional steps: {}",
                r.summary()
            ),
        );
        return;
    }
    let aud = ctx.audience.clone();
    let v = sc.v.agent.clone();
    test!(ctx, IDS[0], async {
        let req = v.step_request(
            &aud,
            &wf,
            "act",
            &[],
            &["prepare", "optional_gate"],
            &["repo:write"],
        );
        let r = ctx.token_request("optional step skipped", &req).await?;
        ensure(r.status == 200, || {
            format!(
                "completed [prepare, optional_gate] skipping the optional 'optional_review': expected 200, got {}",
                r.summary()
            )
        })
    });
    test!(ctx, IDS[1], async {
        let req = v.step_request(&aud, &wf, "act", &[], &["prepare"], &["repo:write"]);
        let r = ctx.token_request("optional gate skipped", &req).await?;
        checks::step_denied(&r, &["optional_gate"])
    });
}

async fn depth(ctx: &mut Ctx, v: &Registered) -> T {
    let mut chain: Vec<String> = Vec::new();
    for i in 0..16 {
        let agent = Agent::new(&ctx.name(&format!("delegator-{i:02}")), KeyKind::Ed25519)?;
        let reg = ctx.register(&agent).await?;
        chain.push(reg.agent.id);
    }
    let refs: Vec<&str> = chain.iter().map(String::as_str).collect();
    let aud = ctx.audience.clone();
    let mut req = v.agent.request(&aud, &["repo:read"]);
    req["delegation_context"] = json!({"chain": refs, "completed_steps": []});
    let r = ctx.token_request("deep chain", &req).await?;
    if r.status == 200 {
        return Err(Out::Fail(
            "a delegation chain of 17 registered agents was accepted: no depth limit (§9.3.2)"
                .into(),
        ));
    }
    checks::refused(&r)
}
