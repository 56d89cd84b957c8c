//! Plan section: the token endpoint's errors (§4.5.2–§4.5.6), checksum
//! format rejection (§9.1.1) and the validation order of §4.3.1.

use serde_json::{json, Value};

use super::agents::{self, Agent, KeyKind};
use super::checks::{self, ensure, Out, T};
use super::{test, Ctx, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-4.5.2-unsupported-grant-type", "4.5.2", "MUST", &["R-4.2.1-1", "R-4.3.1-1"],
     "grant_type 'password' is 400 unsupported_grant_type"),
    ("ISS-4.5.2-grant-type-case-sensitive", "4.5.2", "MUST", &["R-4.2.1-1", "R-4.3.1-1"],
     "grant_type 'Agent_Checksum' is 400 unsupported_grant_type (exact comparison)"),
    ("ISS-4.2.1-grant-type-urn", "4.2.1", "REQUIRED", &["R-4.2.1-1"],
     "grant_type urn:ietf:params:oauth:grant-type:agent_checksum (§4.1) is accepted"),
    ("ISS-4.5.3-unknown-agent", "4.5.3", "MUST", &["R-4.3.1-2"],
     "An agent_id never registered is 401 unknown_agent"),
    ("ISS-4.5.4-checksum-mismatch", "4.5.4", "MUST", &["R-4.3.1-3", "R-5.5.2-1"],
     "A well-formed checksum that is not the registered one is 401 agent_checksum_mismatch"),
    ("ISS-4.5.4-modified-configuration", "4.5.4", "MUST", &["R-4.3.1-3", "R-5.5.2-1"],
     "The checksum of the registered specification with a changed temperature is 401 agent_checksum_mismatch"),
    ("ISS-4.5.6-missing-grant-type", "4.5.6", "REQUIRED", &["R-4.2.1-1"],
     "A request without grant_type is 400 invalid_request (or unsupported_grant_type)"),
    ("ISS-4.5.6-missing-agent-id", "4.5.6", "REQUIRED", &["R-4.2.1-2"],
     "A request without agent_id is 400 invalid_request"),
    ("ISS-4.5.6-missing-computed-checksum", "4.5.6", "REQUIRED", &["R-4.2.1-3"],
     "A request without computed_checksum is 400 invalid_request"),
    ("ISS-4.5.6-missing-requested-scopes", "4.5.6", "REQUIRED", &["R-4.2.1-7"],
     "A request without requested_scopes is 400 invalid_request"),
    ("ISS-4.5.6-missing-audience", "4.5.6", "REQUIRED", &["R-4.2.1-8"],
     "A request without audience is 400 invalid_request"),
    ("ISS-4.5.6-workflow-ids-missing", "4.5.6", "REQUIRED", &["R-4.2.1-4", "R-4.2.1-5"],
     "workflow_enabled=true without workflow_id/workflow_step is 400 invalid_request"),
    ("ISS-4.5.6-invalid-json", "4.5.6", "MUST", &[],
     "A body that is not JSON is 400 invalid_request"),
    ("ISS-4.5.6-duplicate-member", "4.5.6", "SHOULD", &[],
     "A JSON body naming grant_type twice is 400 invalid_request (I-10: parsers keeping the first or the last copy disagree)"),
    ("ISS-4.5.3-www-authenticate", "4.5.3", "SHOULD", &[],
     "401 unknown_agent and agent_checksum_mismatch carry a WWW-Authenticate challenge (RFC 9110 §11.6.1, I-32)"),
    ("ISS-9.1.1-checksum-format-bare-hex", "9.1.1", "MUST", &["R-9.1.1-4"],
     "computed_checksum as bare hex (no sha256: prefix) is 400 invalid_request"),
    ("ISS-9.1.1-checksum-format-uppercase", "9.1.1", "MUST", &["R-9.1.1-4", "R-5.3.2-4"],
     "computed_checksum with upper-case hex is 400 invalid_request"),
    ("ISS-9.1.1-checksum-format-wrong-algorithm", "9.1.1", "MUST", &["R-9.1.1-4", "R-9.4.1-3"],
     "computed_checksum 'md5:<hex>' is 400 invalid_request"),
    ("ISS-9.1.1-checksum-format-wrong-length", "9.1.1", "MUST", &["R-9.1.1-4"],
     "computed_checksum 'sha256:' with 63 hex digits is 400 invalid_request"),
    ("ISS-4.3.1-precedence-grant-type-before-agent", "4.3.1", "MUST", &["R-4.3.1-1", "R-4.3.1-2"],
     "Wrong grant_type for an unknown agent is unsupported_grant_type, not unknown_agent"),
    ("ISS-4.3.1-precedence-grant-type-before-missing-parameters", "4.3.1", "MUST", &["R-4.3.1-1"],
     "A body with only grant_type 'password' is unsupported_grant_type"),
    ("ISS-4.3.1-precedence-agent-before-workflow", "4.3.1", "MUST", &["R-4.3.1-2", "R-4.3.1-4"],
     "An unknown agent requesting an unknown workflow is unknown_agent"),
    ("ISS-4.3.1-precedence-checksum-before-workflow", "4.3.1", "MUST", &["R-4.3.1-3", "R-4.3.1-4"],
     "A wrong checksum with an unknown workflow is agent_checksum_mismatch"),
];

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    test!(
        ctx,
        "ISS-4.5.2-unsupported-grant-type",
        grant(ctx, "password")
    );
    test!(
        ctx,
        "ISS-4.5.2-grant-type-case-sensitive",
        grant(ctx, "Agent_Checksum")
    );
    test!(ctx, "ISS-4.2.1-grant-type-urn", urn(ctx));
    test!(ctx, "ISS-4.5.3-unknown-agent", unknown_agent(ctx));
    test!(ctx, "ISS-4.5.4-checksum-mismatch", mismatch(ctx));
    test!(ctx, "ISS-4.5.4-modified-configuration", modified(ctx));
    test!(ctx, "ISS-4.5.6-missing-grant-type", missing_grant(ctx));
    for (id, member) in [
        ("ISS-4.5.6-missing-agent-id", "agent_id"),
        ("ISS-4.5.6-missing-computed-checksum", "computed_checksum"),
        ("ISS-4.5.6-missing-requested-scopes", "requested_scopes"),
        ("ISS-4.5.6-missing-audience", "audience"),
    ] {
        test!(ctx, id, without(ctx, member));
    }
    test!(
        ctx,
        "ISS-4.5.6-workflow-ids-missing",
        workflow_ids_missing(ctx)
    );
    test!(ctx, "ISS-4.5.6-invalid-json", invalid_json(ctx));
    test!(ctx, "ISS-4.5.6-duplicate-member", duplicate_member(ctx));
    test!(ctx, "ISS-4.5.3-www-authenticate", challenges(ctx));
    let hex64 = "0123456789abcdef".repeat(4);
    let cases = [
        ("ISS-9.1.1-checksum-format-bare-hex", hex64.clone()),
        (
            "ISS-9.1.1-checksum-format-uppercase",
            format!("sha256:{}", hex64.to_uppercase()),
        ),
        (
            "ISS-9.1.1-checksum-format-wrong-algorithm",
            format!("md5:{}", &hex64[..32]),
        ),
        (
            "ISS-9.1.1-checksum-format-wrong-length",
            format!("sha256:{}", &hex64[..63]),
        ),
    ];
    for (id, value) in cases {
        test!(ctx, id, bad_format(ctx, &value));
    }
    test!(
        ctx,
        "ISS-4.3.1-precedence-grant-type-before-agent",
        grant_before_agent(ctx)
    );
    test!(
        ctx,
        "ISS-4.3.1-precedence-grant-type-before-missing-parameters",
        grant_only(ctx)
    );
    test!(
        ctx,
        "ISS-4.3.1-precedence-agent-before-workflow",
        agent_before_workflow(ctx)
    );
    test!(
        ctx,
        "ISS-4.3.1-precedence-checksum-before-workflow",
        checksum_before_workflow(ctx)
    );
}

async fn base_request(ctx: &mut Ctx) -> Result<(Value, Agent), Out> {
    let main = ctx.main_agent().await?;
    let aud = ctx.audience.clone();
    Ok((main.agent.request(&aud, &["repo:read"]), main.agent))
}

async fn grant(ctx: &mut Ctx, grant_type: &str) -> T {
    let (mut req, _) = base_request(ctx).await?;
    req["grant_type"] = json!(grant_type);
    let r = ctx
        .token_request(&format!("grant_type {grant_type}"), &req)
        .await?;
    checks::error(&r, 400, "unsupported_grant_type")
}

async fn urn(ctx: &mut Ctx) -> T {
    let (mut req, _) = base_request(ctx).await?;
    req["grant_type"] = json!("urn:ietf:params:oauth:grant-type:agent_checksum");
    let r = ctx.token_request("grant_type URN", &req).await?;
    ensure(
        r.status == 200 && r.str_member("access_token").is_some(),
        || format!("expected 200 with a token, got {}", r.summary()),
    )
}

fn ghost(ctx: &Ctx) -> Result<Agent, Out> {
    Ok(Agent::new(&ctx.name("never-registered"), KeyKind::Ed25519)?)
}

async fn unknown_agent(ctx: &mut Ctx) -> T {
    let g = ghost(ctx)?;
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request("unknown agent", &g.request(&aud, &["repo:read"]))
        .await?;
    checks::error(&r, 401, "unknown_agent")
}

async fn mismatch(ctx: &mut Ctx) -> T {
    let (mut req, _) = base_request(ctx).await?;
    req["computed_checksum"] = json!(format!("sha256:{}", "0".repeat(64)));
    let r = ctx.token_request("checksum mismatch", &req).await?;
    checks::error(&r, 401, "agent_checksum_mismatch")
}

async fn modified(ctx: &mut Ctx) -> T {
    let (mut req, agent) = base_request(ctx).await?;
    let mut spec = agent.spec.clone();
    spec["configuration"]["temperature"] = json!(0.7);
    req["computed_checksum"] = json!(agents::checksum_of(&spec)?);
    let r = ctx.token_request("modified configuration", &req).await?;
    checks::error(&r, 401, "agent_checksum_mismatch")
}

async fn missing_grant(ctx: &mut Ctx) -> T {
    let (mut req, _) = base_request(ctx).await?;
    if let Some(o) = req.as_object_mut() {
        o.remove("grant_type");
    }
    let r = ctx.token_request("without grant_type", &req).await?;
    checks::error_any(
        &r,
        &[(400, "invalid_request"), (400, "unsupported_grant_type")],
    )
}

async fn without(ctx: &mut Ctx, member: &str) -> T {
    let (mut req, _) = base_request(ctx).await?;
    if let Some(o) = req.as_object_mut() {
        o.remove(member);
    }
    let r = ctx
        .token_request(&format!("without {member}"), &req)
        .await?;
    checks::error(&r, 400, "invalid_request")
}

async fn workflow_ids_missing(ctx: &mut Ctx) -> T {
    let (mut req, _) = base_request(ctx).await?;
    req["workflow_enabled"] = json!(true);
    let r = ctx.token_request("workflow ids missing", &req).await?;
    checks::error(&r, 400, "invalid_request")
}

async fn invalid_json(ctx: &mut Ctx) -> T {
    let url = ctx.ep.token.clone();
    let auth = format!("Bearer {}", ctx.admin);
    let r = ctx
        .http
        .post_raw(
            &url,
            Some(&auth),
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    ctx.remember_token_response("invalid JSON", &r);
    checks::error(&r, 400, "invalid_request")
}

async fn bad_format(ctx: &mut Ctx, value: &str) -> T {
    let (mut req, _) = base_request(ctx).await?;
    req["computed_checksum"] = json!(value);
    let r = ctx
        .token_request(&format!("checksum {value}"), &req)
        .await?;
    checks::error(&r, 400, "invalid_request").map_err(|e| match e {
        Out::Fail(s) => Out::Fail(format!("computed_checksum '{value}': {s}")),
        o => o,
    })
}

async fn grant_before_agent(ctx: &mut Ctx) -> T {
    let g = ghost(ctx)?;
    let aud = ctx.audience.clone();
    let mut req = g.request(&aud, &["repo:read"]);
    req["grant_type"] = json!("password");
    let r = ctx
        .token_request("wrong grant, unknown agent", &req)
        .await?;
    checks::error(&r, 400, "unsupported_grant_type")
}

async fn grant_only(ctx: &mut Ctx) -> T {
    let r = ctx
        .token_request("grant_type only", &json!({"grant_type": "password"}))
        .await?;
    checks::error(&r, 400, "unsupported_grant_type")
}

async fn agent_before_workflow(ctx: &mut Ctx) -> T {
    let g = ghost(ctx)?;
    let aud = ctx.audience.clone();
    let wf = ctx.name("no-such-workflow");
    let req = g.step_request(&aud, &wf, "step_x", &[], &[], &["repo:read"]);
    let r = ctx
        .token_request("unknown agent, unknown workflow", &req)
        .await?;
    checks::error(&r, 401, "unknown_agent")
}

async fn checksum_before_workflow(ctx: &mut Ctx) -> T {
    let main = ctx.main_agent().await?;
    let aud = ctx.audience.clone();
    let wf = ctx.name("no-such-workflow");
    let mut req = main
        .agent
        .step_request(&aud, &wf, "step_x", &[], &[], &["repo:read"]);
    req["computed_checksum"] = json!(format!("sha256:{}", "1".repeat(64)));
    let r = ctx
        .token_request("wrong checksum, unknown workflow", &req)
        .await?;
    checks::error(&r, 401, "agent_checksum_mismatch")
}

async fn duplicate_member(ctx: &mut Ctx) -> T {
    let (req, _) = base_request(ctx).await?;
    let text = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    // Prepend a second grant_type member: `{"grant_type":"password",…}` keeps
    // the valid one last and the invalid one first, so neither a
    // keep-first nor a keep-last parser can accept it silently.
    let body = text.replacen('{', r#"{"grant_type":"password","#, 1);
    let url = ctx.ep.token.clone();
    let auth = format!("Bearer {}", ctx.admin);
    let r = ctx
        .http
        .post_raw(
            &url,
            Some(&auth),
            Some("application/json"),
            body.into_bytes(),
        )
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    ctx.remember_token_response("duplicate member", &r);
    ensure(r.status != 200, || {
        "a body naming grant_type twice ('password', then 'agent_checksum') got a token".into()
    })?;
    checks::error(&r, 400, "invalid_request")
}

async fn challenges(ctx: &mut Ctx) -> T {
    let g = ghost(ctx)?;
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request("unknown agent", &g.request(&aud, &["repo:read"]))
        .await?;
    checks::error(&r, 401, "unknown_agent")?;
    ensure(r.header("www-authenticate").is_some(), || {
        "401 unknown_agent without a WWW-Authenticate header".into()
    })?;
    let (mut req, _) = base_request(ctx).await?;
    req["computed_checksum"] = json!(format!("sha256:{}", "2".repeat(64)));
    let r = ctx.token_request("checksum mismatch", &req).await?;
    checks::error(&r, 401, "agent_checksum_mismatch")?;
    ensure(r.header("www-authenticate").is_some(), || {
        "401 agent_checksum_mismatch without a WWW-Authenticate header".into()
    })
}
