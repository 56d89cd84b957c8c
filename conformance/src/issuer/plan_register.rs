//! Plan section: agent registration (§5.2.1, §5.3, §5.4, §6.2.3, §9.1.1).

use serde_json::{json, Value};

use super::agents::{Agent, KeyKind};
use super::checks::{self, ensure, Out, T};
use super::{test, Ctx, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-5.4.3-registration-response", "5.4.3", "MUST",
     &["R-5.4.2-2", "R-5.4.2-6", "R-5.3.1-1", "R-5.3.1-2", "R-5.3.1-3", "R-5.3.1-4"],
     "Registration returns 200 with agent_id, registration_id and the checksum computed independently (JCS, §5.3.1)"),
    ("ISS-5.4.2-registration-id", "5.4.2", "MUST", &["R-5.4.2-4"],
     "registration_id is reg_<agent_id>_<timestamp> and unique across registrations"),
    ("ISS-5.4.2-duplicate-checksum", "5.4.2", "MUST", &["R-5.4.2-3"],
     "Registering the same specification again is 400 duplicate_agent"),
    ("ISS-5.3.2-tool-order", "5.3.2", "MUST", &["R-5.2.1-5", "R-5.3.2-3", "R-5.3.1-2"],
     "The same specification with tools and members reordered has the same checksum: 400 duplicate_agent"),
    ("ISS-5.4.4-reregistration", "5.4.4", "MUST", &["R-5.4.2-5", "R-5.4.4-2"],
     "A changed specification under the same agent_id registers with a new registration_id and version"),
    ("ISS-5.4.4-latest-version-verified", "5.4.4", "MUST", &["R-5.4.4-3"],
     "After re-registration the old checksum is 401 agent_checksum_mismatch and the new one gets a token naming the new registration"),
    ("ISS-5.4.4-previous-checksum-refused", "5.4.4", "MUST", &["R-5.4.2-3"],
     "Re-registering an earlier version's specification is 400 duplicate_agent"),
    ("ISS-6.2.3-claimed-checksum-mismatch", "6.2.3", "MUST", &["R-5.4.2-2"],
     "A registration whose claimed checksum differs from the recomputed one is 400"),
    ("ISS-9.1.1-registration-checksum-format", "9.1.1", "MUST", &["R-9.1.1-4"],
     "A registration claiming a malformed checksum is 400 invalid_request"),
    ("ISS-5.2.1-registration-missing-agent-id", "5.2.1", "REQUIRED", &["R-5.2.1-1", "R-5.4.2-1"],
     "A specification without agent_id is 400 invalid_request"),
    ("ISS-5.2.1-registration-missing-prompt", "5.2.1", "REQUIRED", &["R-5.2.1-3", "R-5.4.2-1"],
     "A specification without prompt is 400 invalid_request"),
    ("ISS-5.2.1-registration-missing-tools", "5.2.1", "REQUIRED", &["R-5.2.1-4", "R-5.4.2-1"],
     "A specification without tools is 400 invalid_request"),
    ("ISS-9.4.1-p256-key", "9.4.1", "MUST", &["R-9.4.1-4", "R-4.4.2-9"],
     "An agent with a P-256 key registers and its tokens confirm that key in cnf.jwk"),
];

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    test!(
        ctx,
        "ISS-5.4.3-registration-response",
        registration_response(ctx)
    );
    test!(ctx, "ISS-5.4.2-registration-id", registration_id(ctx));
    test!(ctx, "ISS-5.4.2-duplicate-checksum", duplicate(ctx));
    test!(ctx, "ISS-5.3.2-tool-order", tool_order(ctx));
    if ctx.run.wants_any(&[
        "ISS-5.4.4-reregistration",
        "ISS-5.4.4-latest-version-verified",
        "ISS-5.4.4-previous-checksum-refused",
    ]) {
        updates(ctx).await;
    }
    test!(
        ctx,
        "ISS-6.2.3-claimed-checksum-mismatch",
        claimed_mismatch(ctx)
    );
    test!(
        ctx,
        "ISS-9.1.1-registration-checksum-format",
        claimed_format(ctx)
    );
    test!(
        ctx,
        "ISS-5.2.1-registration-missing-agent-id",
        missing(ctx, "agent_id")
    );
    test!(
        ctx,
        "ISS-5.2.1-registration-missing-prompt",
        missing(ctx, "prompt")
    );
    test!(
        ctx,
        "ISS-5.2.1-registration-missing-tools",
        missing(ctx, "tools")
    );
    test!(ctx, "ISS-9.4.1-p256-key", p256(ctx));
}

async fn registration_response(ctx: &mut Ctx) -> T {
    let agent = Agent::new(&ctx.name("reg-response"), KeyKind::Ed25519)?;
    let reg_body = ctx.reg_body(&agent);
    let r = ctx.register_raw("registration", &reg_body).await?;
    checks::ok(&r, "the agent registration")?;
    let got_id = r.str_member("agent_id");
    ensure(got_id == Some(agent.id.as_str()), || {
        format!("agent_id is {got_id:?}, expected '{}'", agent.id)
    })?;
    ensure(
        r.str_member("registration_id")
            .is_some_and(|s| !s.is_empty()),
        || format!("no registration_id: {}", r.summary()),
    )?;
    let checksum = r.str_member("checksum");
    ensure(checksum == Some(agent.checksum.as_str()), || {
        format!(
            "checksum is {checksum:?}, expected {} (JCS profile of §5.3.1, computed by ajwt_checksum)",
            agent.checksum
        )
    })
}

async fn registration_id(ctx: &mut Ctx) -> T {
    let a = ctx.new_agent("reg-id-a", KeyKind::Ed25519).await?;
    let v2 = a.agent.updated("A second version of the prompt.")?;
    let b = ctx.register(&v2).await?;
    for reg in [&a, &b] {
        let prefix = format!("reg_{}_", reg.agent.id);
        let rest = reg.registration_id.strip_prefix(&prefix);
        ensure(
            rest.is_some_and(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit())),
            || {
                format!(
                    "registration_id '{}' is not {prefix}<timestamp> (§5.4.2 step 4)",
                    reg.registration_id
                )
            },
        )?;
    }
    ensure(a.registration_id != b.registration_id, || {
        format!(
            "two registrations of '{}' share registration_id '{}'",
            a.agent.id, a.registration_id
        )
    })
}

fn duplicate_check(r: &super::client::Resp, holder: &str) -> T {
    checks::error(r, 400, "duplicate_agent")?;
    if let Some(existing) = r.str_member("existing_agent_id") {
        ensure(existing == holder, || {
            format!("existing_agent_id is '{existing}', expected '{holder}'")
        })?;
    }
    Ok(())
}

async fn duplicate(ctx: &mut Ctx) -> T {
    let reg = ctx.new_agent("dup", KeyKind::Ed25519).await?;
    let reg_body = ctx.reg_body(&reg.agent);
    let r = ctx
        .register_raw("duplicate registration", &reg_body)
        .await?;
    duplicate_check(&r, &reg.agent.id)
}

/// JSON text of `v` with every object's members in reverse code-point
/// order (serde_json's map is sorted, so this is written by hand): the
/// same document for JCS (§5.3.1 step 2), in another byte order.
fn reversed_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable_by(|a, b| b.cmp(a));
            let members: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let key = serde_json::to_string(k).unwrap_or_else(|_| "\"\"".into());
                    format!("{key}: {}", reversed_json(&m[k]))
                })
                .collect();
            format!("{{ {} }}", members.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(reversed_json).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

async fn tool_order(ctx: &mut Ctx) -> T {
    let reg = ctx.new_agent("tool-order", KeyKind::Ed25519).await?;
    // Tools in reverse order (§5.3.2 sorts them by name), members in
    // reverse order and other whitespace (JCS canonicalizes them).
    let mut body = ctx.reg_body(&reg.agent);
    if let Some(tools) = body.get_mut("tools").and_then(Value::as_array_mut) {
        tools.reverse();
    }
    let text = reversed_json(&body);
    let url = ctx.ep.agent_registration.clone();
    let auth = format!("Bearer {}", ctx.admin);
    let r = ctx
        .http
        .post_raw(
            &url,
            Some(&auth),
            Some("application/json"),
            text.into_bytes(),
        )
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    ctx.registrations_seen
        .push(("reordered registration".to_owned(), r.clone()));
    if r.status == 200 {
        return Err(Out::Fail(format!(
            "the reordered specification registered as a new version (checksum {:?}, first registration {}): tool order or member order changes the checksum",
            r.str_member("checksum"),
            reg.agent.checksum
        )));
    }
    duplicate_check(&r, &reg.agent.id)
}

async fn updates(ctx: &mut Ctx) {
    const IDS: [&str; 3] = [
        "ISS-5.4.4-reregistration",
        "ISS-5.4.4-latest-version-verified",
        "ISS-5.4.4-previous-checksum-refused",
    ];
    let v1 = match ctx.new_agent("updated", KeyKind::Ed25519).await {
        Ok(r) => r,
        Err(e) => {
            ctx.run.skip_all(&IDS, &super::skip_reason(&e));
            return;
        }
    };
    let v2_agent = match v1
        .agent
        .updated("Version two of the prompt, with new duties.")
    {
        Ok(a) => a,
        Err(e) => {
            ctx.run.skip_all(&IDS, &e);
            return;
        }
    };
    ctx.run.start_timer();
    let reg_body = ctx.reg_body(&v2_agent);
    let r = match ctx.register_raw("re-registration", &reg_body).await {
        Ok(r) => r,
        Err(e) => {
            ctx.run.skip_all(&IDS, &super::skip_reason(&e));
            return;
        }
    };
    let check = (|| -> T {
        checks::ok(&r, "the re-registration")?;
        let id = r.str_member("registration_id").unwrap_or("");
        ensure(!id.is_empty() && id != v1.registration_id, || {
            format!(
                "re-registration returned registration_id '{id}', expected a new one (first was '{}')",
                v1.registration_id
            )
        })?;
        if let Some(v) = r.json.as_ref().and_then(|j| j.get("version")) {
            ensure(v.as_u64() == Some(2), || {
                format!("version is {v} after one re-registration, expected 2 (§5.4.4 step 4)")
            })?;
        }
        Ok(())
    })();
    let ok = check.is_ok();
    ctx.run.record(IDS[0], checks::to_check(check));
    if !ok {
        ctx.run
            .skip_all(&IDS[1..], "prerequisite failed: the re-registration");
        return;
    }
    let v2_id = r.str_member("registration_id").unwrap_or("").to_owned();
    test!(
        ctx,
        IDS[1],
        latest_verified(ctx, &v1.agent, &v2_agent, &v2_id)
    );
    test!(ctx, IDS[2], previous_refused(ctx, &v1.agent));
}

async fn latest_verified(ctx: &mut Ctx, v1: &Agent, v2: &Agent, v2_id: &str) -> T {
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request("old checksum", &v1.request(&aud, &["repo:read"]))
        .await?;
    checks::error(&r, 401, "agent_checksum_mismatch")
        .map_err(|e| prefix(e, "token request with the version-1 checksum"))?;
    let r = ctx
        .token_request("new checksum", &v2.request(&aud, &["repo:read"]))
        .await?;
    let Some(token) = r.str_member("access_token") else {
        return Err(format!(
            "token request with the version-2 checksum: expected 200, got {}",
            r.summary()
        )
        .into());
    };
    let (_, claims) = super::jwt::decode_unverified(token)?;
    let got = claims
        .get("agent_proof")
        .and_then(|p| p.get("registration_id"))
        .and_then(Value::as_str);
    ensure(got == Some(v2_id), || {
        format!("agent_proof.registration_id is {got:?}, expected the latest '{v2_id}'")
    })
}

async fn previous_refused(ctx: &mut Ctx, v1: &Agent) -> T {
    let reg_body = ctx.reg_body(v1);
    let r = ctx.register_raw("earlier version again", &reg_body).await?;
    duplicate_check(&r, &v1.id)
}

fn prefix(e: Out, p: &str) -> Out {
    match e {
        Out::Fail(s) => Out::Fail(format!("{p}: {s}")),
        o => o,
    }
}

async fn claimed_mismatch(ctx: &mut Ctx) -> T {
    let agent = Agent::new(&ctx.name("claimed"), KeyKind::Ed25519)?;
    let other = Agent::new(&ctx.name("claimed-other"), KeyKind::Ed25519)?;
    let mut body = ctx.reg_body(&agent);
    body["checksum"] = json!(other.checksum);
    let r = ctx.register_raw("claimed checksum mismatch", &body).await?;
    ensure(r.status == 400 && r.error_code().is_some(), || {
        format!(
            "expected 400 (claimed checksum {} is not the recomputed {}), got {}",
            other.checksum,
            agent.checksum,
            r.summary()
        )
    })?;
    checks::shape(&r)
}

async fn claimed_format(ctx: &mut Ctx) -> T {
    let agent = Agent::new(&ctx.name("claimed-format"), KeyKind::Ed25519)?;
    let mut body = ctx.reg_body(&agent);
    body["checksum"] = json!("abc");
    let r = ctx
        .register_raw("malformed claimed checksum", &body)
        .await?;
    checks::error(&r, 400, "invalid_request")
}

async fn missing(ctx: &mut Ctx, member: &str) -> T {
    let agent = Agent::new(
        &ctx.name(&format!("no-{}", member.replace('_', "-"))),
        KeyKind::Ed25519,
    )?;
    let mut body = ctx.reg_body(&agent);
    if let Some(o) = body.as_object_mut() {
        o.remove(member);
    }
    let r = ctx
        .register_raw(&format!("registration without {member}"), &body)
        .await?;
    checks::error(&r, 400, "invalid_request")
}

async fn p256(ctx: &mut Ctx) -> T {
    let reg = ctx.new_agent("p256", KeyKind::P256).await?;
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request("P-256 agent", &reg.agent.request(&aud, &["repo:read"]))
        .await?;
    let Some(token) = r.str_member("access_token") else {
        return Err(format!("expected 200 with a token, got {}", r.summary()).into());
    };
    let jwks = ctx.jwks().await?;
    let (_, claims) = super::jwt::verify(token, &jwks)?;
    let cnf = claims
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .cloned()
        .unwrap_or(Value::Null);
    super::agents::compare_cnf_jwk(&cnf, &reg.agent.jwk)?;
    Ok(())
}
