//! Plan section: token lifecycle features an issuer may offer (issue 13),
//! each skipped with a reason when its RFC 8414 metadata does not advertise
//! it:
//!
//! * RFC 7662 introspection (`introspection_endpoint`), authenticated with
//!   the run's client credentials (HTTP Basic); a client without the
//!   issuer's introspection scope skips;
//! * RFC 7009 revocation (`revocation_endpoint`);
//! * Token Status Lists (draft-ietf-oauth-status-list): intent tokens that
//!   carry `status.status_list` are checked against the list they name.

use serde_json::Value;

use super::checks::{ensure, Out, T};
use super::client::{self, Resp};
use super::{jwt, test, Ctx, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-5.6-introspect-active", "5.6", "MAY", &[],
     "RFC 7662 §2.2: an unexpired intent token introspects as active with its sub, jti and exp (introspection advertised)"),
    ("ISS-5.6-introspect-inactive", "5.6", "MAY", &[],
     "RFC 7662 §2.2: a malformed or foreign token introspects as {\"active\": false} (introspection advertised)"),
    ("ISS-5.6.1-token-revocation", "5.6.1", "MAY", &[],
     "RFC 7009 §2.2: revocation answers 200 for a valid and for an invalid token; a revoked token then introspects inactive (revocation advertised)"),
    ("ISS-5.6.1-status-list", "5.6.1", "MAY", &[],
     "Token Status List §5, §6: a token's status.status_list names a signed statuslist+jwt whose sub is the uri and whose bit at idx is 0, and 1 after revocation (status claim present)"),
];

fn advertised(ctx: &Ctx, member: &str) -> Option<String> {
    ctx.ep
        .metadata
        .as_ref()
        .and_then(|m| m.get(member))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    let introspection = advertised(ctx, "introspection_endpoint");
    let revocation = advertised(ctx, "revocation_endpoint");
    match &introspection {
        None => ctx.run.skip_all(
            &["ISS-5.6-introspect-active", "ISS-5.6-introspect-inactive"],
            "not advertised: the metadata has no introspection_endpoint",
        ),
        Some(url) => {
            test!(
                ctx,
                "ISS-5.6-introspect-active",
                introspect_active(ctx, url)
            );
            test!(
                ctx,
                "ISS-5.6-introspect-inactive",
                introspect_inactive(ctx, url)
            );
        }
    }
    match &revocation {
        None => ctx.run.skip_all(
            &["ISS-5.6.1-token-revocation"],
            "not advertised: the metadata has no revocation_endpoint",
        ),
        Some(url) => test!(
            ctx,
            "ISS-5.6.1-token-revocation",
            revoke(ctx, url, introspection.as_deref())
        ),
    }
    test!(
        ctx,
        "ISS-5.6.1-status-list",
        status_list(ctx, revocation.as_deref())
    );
}

async fn fresh_token(ctx: &mut Ctx, label: &str) -> Result<String, Out> {
    let main = ctx.main_agent().await?;
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request(label, &main.agent.request(&aud, &["repo:read"]))
        .await?;
    r.str_member("access_token")
        .map(str::to_owned)
        .ok_or_else(|| Out::Skip(format!("prerequisite failed: no token: {}", r.summary())))
}

async fn post_token_form(ctx: &Ctx, url: &str, token: &str) -> Result<Resp, Out> {
    let auth = client::basic(&ctx.client_id, &ctx.client_secret);
    ctx.http
        .post_form(url, Some(&auth), &[("token", token)])
        .await
        .map_err(|e| Out::Fail(format!("POST {url}: {e}")))
}

async fn introspect(ctx: &Ctx, url: &str, token: &str) -> Result<Value, Out> {
    let r = post_token_form(ctx, url, token).await?;
    if r.status == 403 || r.status == 401 {
        return Err(Out::Skip(format!(
            "the run's client may not introspect (grant it the issuer's introspection scope): {}",
            r.summary()
        )));
    }
    match (r.status, &r.json) {
        (200, Some(v)) if v.get("active").is_some_and(Value::is_boolean) => Ok(v.clone()),
        _ => Err(Out::Fail(format!(
            "POST {url}: expected 200 with a boolean active, got {}",
            r.summary()
        ))),
    }
}

async fn introspect_active(ctx: &mut Ctx, url: &str) -> T {
    let token = fresh_token(ctx, "introspection").await?;
    let (_, claims) = jwt::decode_unverified(&token)?;
    let v = introspect(ctx, url, &token).await?;
    ensure(v["active"] == Value::Bool(true), || {
        format!("a fresh token introspected as {v}")
    })?;
    for member in ["sub", "jti", "exp"] {
        ensure(v.get(member) == claims.get(member), || {
            format!(
                "introspection {member} is {:?}, the token says {:?}",
                v.get(member),
                claims.get(member)
            )
        })?;
    }
    Ok(())
}

async fn introspect_inactive(ctx: &mut Ctx, url: &str) -> T {
    let token = fresh_token(ctx, "introspection of a tampered token").await?;
    for bad in ["not-a-token".to_owned(), jwt::tamper_signature(&token)] {
        let v = introspect(ctx, url, &bad).await?;
        ensure(v == serde_json::json!({"active": false}), || {
            format!("an invalid token introspected as {v}, expected {{\"active\": false}}")
        })?;
    }
    Ok(())
}

async fn revoke(ctx: &mut Ctx, url: &str, introspection: Option<&str>) -> T {
    let token = fresh_token(ctx, "revocation").await?;
    let r = post_token_form(ctx, url, "not-a-token").await?;
    ensure(r.status == 200, || {
        format!(
            "revoking an invalid token: expected 200 (RFC 7009 §2.2), got {}",
            r.summary()
        )
    })?;
    let r = post_token_form(ctx, url, &token).await?;
    ensure(r.status == 200, || {
        format!("revoking a valid token: expected 200, got {}", r.summary())
    })?;
    if let Some(i) = introspection {
        match introspect(ctx, i, &token).await {
            Ok(v) => ensure(v["active"] == Value::Bool(false), || {
                format!("a revoked token introspected as {v}")
            })?,
            Err(Out::Skip(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The status (`bits` bits at `idx`) in the status list token at `uri`,
/// after checking its signature, `typ` and `sub`.
async fn status_at(ctx: &mut Ctx, uri: &str, idx: u64) -> Result<u8, Out> {
    let r = ctx
        .http
        .get(uri)
        .await
        .map_err(|e| Out::Fail(format!("GET {uri}: {e}")))?;
    let jws = String::from_utf8(r.body.clone()).unwrap_or_default();
    ensure(r.status == 200, || format!("GET {uri}: {}", r.summary()))?;
    let jwks = ctx.jwks().await?;
    let (header, claims) = jwt::verify(jws.trim(), &jwks)
        .map_err(|e| Out::Fail(format!("status list token at {uri}: {e}")))?;
    ensure(
        header["typ"] == ajwt_protocol::status_list::STATUS_LIST_JWT_TYP,
        || {
            format!(
                "status list token typ is {}, expected statuslist+jwt",
                header["typ"]
            )
        },
    )?;
    let token: ajwt_protocol::status_list::StatusListTokenClaims =
        serde_json::from_value(claims.clone())
            .map_err(|e| Out::Fail(format!("status list token claims {claims}: {e}")))?;
    let now = ajwt_protocol::clock::Clock::now(&ajwt_protocol::clock::SystemClock);
    let reference = ajwt_protocol::status_list::StatusListReference {
        idx,
        uri: uri.to_owned(),
    };
    // TSL §8.3: sub = uri, unexpired, idx in the list (one rule set).
    ajwt_protocol::status_list::referenced_status(&token, &reference, now)
        .map_err(|e| Out::Fail(format!("status list token at {uri}: {e}")))
}

async fn status_list(ctx: &mut Ctx, revocation: Option<&str>) -> T {
    let token = fresh_token(ctx, "status list").await?;
    let (_, claims) = jwt::decode_unverified(&token)?;
    let Some(status) = claims.get("status") else {
        return Err(Out::Skip(
            "intent tokens carry no status claim (no Token Status List)".into(),
        ));
    };
    let reference: ajwt_protocol::status_list::StatusClaim = serde_json::from_value(status.clone())
        .map_err(|e| Out::Fail(format!("status claim {status}: {e}")))?;
    let uri = reference.status_list.uri;
    let idx = reference.status_list.idx;
    let before = status_at(ctx, &uri, idx).await?;
    ensure(before == 0, || {
        format!("a fresh token's status is {before}, not VALID (0)")
    })?;
    if let Some(url) = revocation {
        let r = post_token_form(ctx, url, &token).await?;
        ensure(r.status == 200, || format!("revocation: {}", r.summary()))?;
        let after = status_at(ctx, &uri, idx).await?;
        ensure(after == 1, || {
            format!("a revoked token's status is {after}, not INVALID (1)")
        })?;
    }
    Ok(())
}
