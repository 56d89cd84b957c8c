//! Plan section: tests that need an operator action, through the optional
//! admin hooks advertised in the RFC 8414 metadata:
//!
//! * `ajwt_admin_revoke_agent_endpoint`: `POST {"agent_id"}` → 200
//!   `{"agent_id", "revoked": true, "registrations"}`; the agent is then
//!   unknown at the token endpoint (§5.6.1 REVOKED, I-30);
//! * `ajwt_admin_rotate_keys_endpoint`: `POST {}` → 200
//!   `{"kid", "previous_kid", "alg"}` (and, for a publish-then-sign issuer,
//!   `activates_at`: the new key must be in the JWKS at once; the test waits
//!   up to 15 s for it to sign, I-90); new tokens are signed with the new
//!   key and the old key stays in the JWKS.
//!
//! Without a hook (not advertised, or 404) its tests are skipped.

use serde_json::{json, Value};

use super::agents::KeyKind;
use super::checks::{self, ensure, Out, T};
use super::client::Resp;
use super::{jwt, test, Ctx, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-5.6.1-revoked-agent-refused", "5.6.1", "MUST", &[],
     "After the admin revokes an agent, its token requests are 401 unknown_agent (admin hook)"),
    ("ISS-4.3.4-revoked-agent-in-chain", "4.3.4", "SHOULD", &["R-4.3.4-1", "R-9.3.2-4"],
     "A delegation chain naming a revoked agent is refused (admin hook)"),
    ("ISS-4.4.2-key-rotation", "4.4.2", "MUST", &["R-4.3.1-5"],
     "After key rotation tokens carry the new kid and verify; the previous key stays in the JWKS (admin hook)"),
];

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    const REVOKE: [&str; 2] = [
        "ISS-5.6.1-revoked-agent-refused",
        "ISS-4.3.4-revoked-agent-in-chain",
    ];
    if ctx.run.wants_any(&REVOKE) {
        match ctx.ep.admin_revoke.clone() {
            None => ctx.run.skip_all(
                &REVOKE,
                "admin hook not offered: the metadata has no ajwt_admin_revoke_agent_endpoint",
            ),
            Some(url) => revocation(ctx, &url).await,
        }
    }
    if ctx.run.wants("ISS-4.4.2-key-rotation") {
        match ctx.ep.admin_rotate.clone() {
            None => ctx.run.skip_all(
                &["ISS-4.4.2-key-rotation"],
                "admin hook not offered: the metadata has no ajwt_admin_rotate_keys_endpoint",
            ),
            Some(url) => test!(ctx, "ISS-4.4.2-key-rotation", rotation(ctx, &url)),
        }
    }
}

async fn admin_post(ctx: &mut Ctx, url: &str, body: &Value) -> Result<Resp, Out> {
    let token = ctx.admin.clone();
    let r = ctx
        .http
        .post_json(url, Some(&token), body)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if r.status == 404 {
        return Err(Out::Skip(format!(
            "admin hook not offered: POST {url} is 404"
        )));
    }
    Ok(r)
}

async fn revocation(ctx: &mut Ctx, url: &str) {
    const REVOKE: [&str; 2] = [
        "ISS-5.6.1-revoked-agent-refused",
        "ISS-4.3.4-revoked-agent-in-chain",
    ];
    let setup = async {
        let parent = ctx.new_agent("revoked-parent", KeyKind::Ed25519).await?;
        let child = ctx.new_agent("revoked-child", KeyKind::Ed25519).await?;
        let aud = ctx.audience.clone();
        let r = ctx
            .token_request(
                "before revocation",
                &parent.agent.request(&aud, &["repo:read"]),
            )
            .await?;
        if r.status != 200 {
            return Err(Out::Fail(format!(
                "token request before revocation failed: {}",
                r.summary()
            )));
        }
        let r = admin_post(ctx, url, &json!({"agent_id": parent.agent.id})).await?;
        ensure(
            r.status == 200 && r.json.as_ref().and_then(|j| j.get("revoked")) == Some(&json!(true)),
            || {
                format!(
                    "POST {url}: expected 200 with revoked true, got {}",
                    r.summary()
                )
            },
        )?;
        Ok((parent, child))
    };
    let (parent, child) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            // A failing hook fails the main test; the chain test is skipped.
            if let Out::Fail(_) = &e {
                ctx.run.record(REVOKE[0], checks::to_check(Err(e.clone())));
            }
            ctx.run.skip_all(&REVOKE, &super::skip_reason(&e));
            return;
        }
    };
    let aud = ctx.audience.clone();
    test!(ctx, REVOKE[0], async {
        let r = ctx
            .token_request("revoked agent", &parent.agent.request(&aud, &["repo:read"]))
            .await?;
        checks::error(&r, 401, "unknown_agent")
    });
    test!(ctx, REVOKE[1], async {
        let mut req = child.agent.request(&aud, &["repo:read"]);
        req["delegation_context"] = json!({"chain": [parent.agent.id], "completed_steps": []});
        let r = ctx.token_request("revoked parent in chain", &req).await?;
        checks::refused(&r)
    });
}

async fn rotation(ctx: &mut Ctx, url: &str) -> T {
    let main = ctx.main_agent().await?;
    let aud = ctx.audience.clone();
    let req = main.agent.request(&aud, &["repo:read"]);
    let before = ctx.token_request("before rotation", &req).await?;
    let old_token = before
        .str_member("access_token")
        .map(str::to_owned)
        .ok_or_else(|| Out::Fail(format!("token before rotation: {}", before.summary())))?;
    let (old_header, _) = jwt::decode_unverified(&old_token)?;
    let old_kid = old_header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    let r = admin_post(ctx, url, &json!({})).await?;
    let new_kid = match (r.status, r.str_member("kid")) {
        (200, Some(k)) => k.to_owned(),
        _ => return Err(format!("POST {url}: expected 200 with kid, got {}", r.summary()).into()),
    };
    ensure(new_kid != old_kid, || {
        format!("rotation returned the old kid '{old_kid}'")
    })?;
    if let Some(prev) = r.str_member("previous_kid") {
        ensure(prev == old_kid, || {
            format!("previous_kid is '{prev}', the tokens were signed with '{old_kid}'")
        })?;
    }
    // Publish-then-sign (I-90): an issuer may announce the new key
    // (`activates_at`, Unix seconds) before it signs with it. Then the key
    // must already be in the JWKS; the test waits up to 15 s for it to sign.
    if let Some(at) = r
        .json
        .as_ref()
        .and_then(|j| j.get("activates_at"))
        .and_then(Value::as_u64)
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if at > now {
            let jwks = ctx.refresh_jwks().await?;
            let published = jwks
                .get("keys")
                .and_then(Value::as_array)
                .is_some_and(|keys| keys.iter().any(|k| k.get("kid") == Some(&json!(new_kid))));
            ensure(published, || {
                format!("the new key '{new_kid}' signs from {at} but is not in the JWKS yet")
            })?;
            let wait = at - now;
            if wait > 15 {
                return Err(Out::Skip(format!(
                    "the new key is published and signs only in {wait} s (publish delay); \
                     run the issuer with a delay of at most 15 s to check its tokens"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait + 1)).await;
        }
    }
    let after = ctx.token_request("after rotation", &req).await?;
    let new_token = after
        .str_member("access_token")
        .map(str::to_owned)
        .ok_or_else(|| Out::Fail(format!("token after rotation: {}", after.summary())))?;
    let (new_header, _) = jwt::decode_unverified(&new_token)?;
    let got = new_header.get("kid").and_then(Value::as_str).unwrap_or("");
    ensure(got == new_kid, || {
        format!("token after rotation has kid '{got}', expected the new '{new_kid}'")
    })?;
    let jwks = ctx.refresh_jwks().await?;
    jwt::verify(&new_token, &jwks).map_err(|e| format!("new token: {e}"))?;
    jwt::verify(&old_token, &jwks)
        .map_err(|e| format!("token signed before rotation no longer verifies: {e}"))?;
    Ok(())
}
