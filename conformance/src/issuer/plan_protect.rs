//! Plan section: discovery (RFC 8414 metadata, JWKS), token endpoint
//! protection (§4.2.3) and registration protection (§9.1.3, §9.3).

use serde_json::{json, Value};

use super::checks::{self, ensure, Out, T};
use super::client::{self, Resp};
use super::{jwt, test, Ctx, Row};
use crate::issuer::agents::{Agent, KeyKind};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-3.1-metadata", "3.1", "MAY", &[],
     "RFC 8414 metadata names this issuer, the token endpoint and the JWK Set"),
    ("ISS-4.4.2-jwks", "4.4.2", "REQUIRED", &["R-4.3.1-5"],
     "The JWK Set is served as JSON with public signing keys, each with a kid"),
    ("ISS-4.2.3-no-credentials", "4.2.3", "MUST", &["R-4.2.3-1"],
     "A token request without Authorization is 401 with a challenge"),
    ("ISS-4.2.3-malformed-bearer", "4.2.3", "MUST", &["R-4.2.3-1", "R-4.2.3-2"],
     "A bearer value that is not a JWT is 401 invalid_token"),
    ("ISS-4.2.3-tampered-signature", "4.2.3", "MUST", &["R-4.2.3-2"],
     "A client token with one signature bit flipped is 401 invalid_token"),
    ("ISS-4.2.3-alg-none", "4.2.3", "MUST", &["R-4.2.3-2"],
     "A client token rewritten to alg none without signature is 401 invalid_token"),
    ("ISS-4.2.3-foreign-key", "4.2.3", "MUST", &["R-4.2.3-2"],
     "A client token's claims re-signed with a key the issuer never published are 401 invalid_token"),
    ("ISS-4.2.3-insufficient-scope", "4.2.3", "MUST", &["R-4.2.3-2"],
     "A client token without generate:intent-token is refused (403 insufficient_scope)"),
    ("ISS-4.2.3-intent-token-not-client-token", "4.2.3", "MUST", &["R-4.2.3-2"],
     "An intent token presented as the client token is 401 invalid_token"),
    ("ISS-4.2.3-protection-before-decoding", "4.2.3", "MUST", &["R-4.2.3-1"],
     "Without credentials an unreadable body or a malformed agent_checksum request is 401, not a 400 that reveals decoding (a grant type the endpoint does not support at all may be 400 unsupported_grant_type first, RFC 6749 §5.2, I-53)"),
    ("ISS-4.2.3-client-authentication-failure", "4.2.3", "MUST", &["R-4.2.3-2"],
     "client_credentials with a wrong secret is 401 invalid_client (RFC 6749 §5.2)"),
    ("ISS-9.1.3-agent-registration-no-token", "9.1.3", "MUST", &["R-9.1.3-1"],
     "Agent registration without a bearer token is 401 and registers nothing"),
    ("ISS-9.1.3-agent-registration-bad-token", "9.1.3", "MUST", &["R-9.1.3-1"],
     "Agent registration with a tampered bearer token is 401 invalid_token"),
    ("ISS-9.1.3-agent-registration-insufficient-scope", "9.1.3", "MUST", &["R-9.1.3-1"],
     "Agent registration with a token lacking the registration scope is refused"),
    ("ISS-9.3-workflow-registration-no-token", "9.3", "MUST", &["R-9.3-1"],
     "Workflow registration without a bearer token is 401"),
    ("ISS-9.3-workflow-registration-insufficient-scope", "9.3", "SHOULD", &["R-9.3-2"],
     "Workflow registration with a token lacking the registration scope is refused"),
];

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    test!(ctx, "ISS-3.1-metadata", metadata(ctx));
    test!(ctx, "ISS-4.4.2-jwks", jwks(ctx));
    test!(ctx, "ISS-4.2.3-no-credentials", no_credentials(ctx));
    test!(
        ctx,
        "ISS-4.2.3-malformed-bearer",
        with_bearer(ctx, BadBearer::Malformed)
    );
    test!(
        ctx,
        "ISS-4.2.3-tampered-signature",
        with_bearer(ctx, BadBearer::Tampered)
    );
    test!(
        ctx,
        "ISS-4.2.3-alg-none",
        with_bearer(ctx, BadBearer::AlgNone)
    );
    test!(
        ctx,
        "ISS-4.2.3-foreign-key",
        with_bearer(ctx, BadBearer::Foreign)
    );
    test!(ctx, "ISS-4.2.3-insufficient-scope", insufficient_scope(ctx));
    test!(
        ctx,
        "ISS-4.2.3-intent-token-not-client-token",
        intent_as_client(ctx)
    );
    test!(
        ctx,
        "ISS-4.2.3-protection-before-decoding",
        before_decoding(ctx)
    );
    test!(
        ctx,
        "ISS-4.2.3-client-authentication-failure",
        client_auth_failure(ctx)
    );
    test!(
        ctx,
        "ISS-9.1.3-agent-registration-no-token",
        registration_no_token(ctx)
    );
    test!(
        ctx,
        "ISS-9.1.3-agent-registration-bad-token",
        registration_bad_token(ctx)
    );
    test!(
        ctx,
        "ISS-9.1.3-agent-registration-insufficient-scope",
        registration_scope(ctx)
    );
    test!(
        ctx,
        "ISS-9.3-workflow-registration-no-token",
        workflow_no_token(ctx)
    );
    test!(
        ctx,
        "ISS-9.3-workflow-registration-insufficient-scope",
        workflow_scope(ctx)
    );
}

async fn metadata(ctx: &mut Ctx) -> T {
    let Some(meta) = ctx.ep.metadata.clone() else {
        return super::skip(format!(
            "no RFC 8414 metadata: {}",
            ctx.ep.metadata_problem.clone().unwrap_or_default()
        ));
    };
    let base = ctx.http.base().to_owned();
    let issuer = meta.get("issuer").and_then(Value::as_str).unwrap_or("");
    ensure(issuer.trim_end_matches('/') == base, || {
        format!("metadata issuer is '{issuer}', expected the base URL '{base}' (RFC 8414 §3.3)")
    })?;
    for m in ["token_endpoint", "jwks_uri"] {
        ensure(meta.get(m).is_some_and(Value::is_string), || {
            format!("metadata lacks the string member '{m}'")
        })?;
    }
    Ok(())
}

async fn jwks(ctx: &mut Ctx) -> T {
    let set = ctx.jwks().await?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ensure(!keys.is_empty(), || "the JWK Set has no keys".into())?;
    for (i, k) in keys.iter().enumerate() {
        let kid = k.get("kid").and_then(Value::as_str);
        ensure(kid.is_some_and(|s| !s.is_empty()), || {
            format!("keys[{i}] has no kid")
        })?;
        let Some(map) = k.as_object() else {
            return Err(format!("keys[{i}] is not an object").into());
        };
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            ensure(!map.contains_key(private), || {
                format!("keys[{i}] publishes the private member '{private}'")
            })?;
        }
        josekit::jwk::Jwk::from_map(map.clone())
            .map_err(|e| format!("keys[{i}] is not a usable JWK: {e}"))?;
    }
    Ok(())
}

async fn post_token(ctx: &mut Ctx, authorization: Option<&str>, body: &Value) -> Result<Resp, Out> {
    let url = ctx.ep.token.clone();
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let r = ctx
        .http
        .post_raw(&url, authorization, Some("application/json"), bytes)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    ctx.remember_token_response("protection test", &r);
    Ok(r)
}

async fn no_credentials(ctx: &mut Ctx) -> T {
    let main = ctx.main_agent().await?;
    let body = main.agent.request(&ctx.audience.clone(), &["repo:read"]);
    let r = post_token(ctx, None, &body).await?;
    checks::unauthorized(&r)
}

#[derive(Clone, Copy)]
enum BadBearer {
    Malformed,
    Tampered,
    AlgNone,
    Foreign,
}

fn bad_bearer(admin: &str, kind: BadBearer) -> Result<String, Out> {
    Ok(match kind {
        BadBearer::Malformed => "not-a-jwt".to_owned(),
        BadBearer::Tampered => jwt::tamper_signature(admin),
        BadBearer::AlgNone => jwt::alg_none(admin).map_err(|e| {
            Out::Skip(format!(
                "the client token is not a JWS, cannot forge one: {e}"
            ))
        })?,
        BadBearer::Foreign => jwt::resign_with_foreign_key(admin).map_err(|e| {
            Out::Skip(format!(
                "the client token is not a JWS, cannot forge one: {e}"
            ))
        })?,
    })
}

async fn with_bearer(ctx: &mut Ctx, kind: BadBearer) -> T {
    let main = ctx.main_agent().await?;
    let token = bad_bearer(&ctx.admin, kind)?;
    let body = main.agent.request(&ctx.audience.clone(), &["repo:read"]);
    let r = post_token(ctx, Some(&format!("Bearer {token}")), &body).await?;
    checks::error(&r, 401, "invalid_token")?;
    checks::unauthorized(&r)
}

async fn insufficient_scope(ctx: &mut Ctx) -> T {
    let main = ctx.main_agent().await?;
    let token = ctx.scoped_token("register:intent").await?;
    let body = main.agent.request(&ctx.audience.clone(), &["repo:read"]);
    let r = post_token(ctx, Some(&format!("Bearer {token}")), &body).await?;
    checks::scope_refused(&r)
}

async fn intent_as_client(ctx: &mut Ctx) -> T {
    let main = ctx.main_agent().await?;
    let body = main.agent.request(&ctx.audience.clone(), &["repo:read"]);
    let r = ctx
        .token_request("intent token for confusion test", &body)
        .await?;
    let Some(intent) = r.str_member("access_token").map(str::to_owned) else {
        return super::skip(format!("no intent token obtained: {}", r.summary()));
    };
    let r = post_token(ctx, Some(&format!("Bearer {intent}")), &body).await?;
    checks::error_any(&r, &[(401, "invalid_token"), (403, "insufficient_scope")])
}

async fn before_decoding(ctx: &mut Ctx) -> T {
    let url = ctx.ep.token.clone();
    let cases: [(&str, &[u8]); 2] = [
        ("unreadable JSON", b"{not json"),
        (
            "malformed agent_checksum request",
            br#"{"grant_type":"agent_checksum","agent_id":42}"#,
        ),
    ];
    for (label, body) in cases {
        let r = ctx
            .http
            .post_raw(&url, None, Some("application/json"), body.to_vec())
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        ctx.remember_token_response(label, &r);
        checks::unauthorized(&r).map_err(|e| match e {
            Out::Fail(s) => Out::Fail(format!("{label} without credentials: {s}")),
            o => o,
        })?;
    }
    Ok(())
}

async fn client_auth_failure(ctx: &mut Ctx) -> T {
    let url = ctx.ep.token.clone();
    let wrong = format!("{}-wrong", ctx.client_secret);
    let r = ctx
        .http
        .post_form(
            &url,
            Some(&client::basic(&ctx.client_id, &wrong)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    ctx.remember_token_response("client_credentials with a wrong secret", &r);
    checks::error(&r, 401, "invalid_client")?;
    ensure(r.header("www-authenticate").is_some(), || {
        "401 invalid_client without a WWW-Authenticate challenge (RFC 6749 §5.2)".into()
    })
}

async fn post_registration(
    ctx: &mut Ctx,
    url: &str,
    authorization: Option<&str>,
    body: &Value,
) -> Result<Resp, Out> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let r = ctx
        .http
        .post_raw(url, authorization, Some("application/json"), bytes)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    Ok(r)
}

/// The agent must still be unknown at the token endpoint.
async fn still_unknown(ctx: &mut Ctx, agent: &Agent) -> T {
    let body = agent.request(&ctx.audience.clone(), &["repo:read"]);
    let r = ctx.token_request("unregistered agent", &body).await?;
    ensure(r.status != 200, || {
        format!(
            "the refused registration registered agent '{}' anyway: a token request succeeded",
            agent.id
        )
    })
}

async fn registration_no_token(ctx: &mut Ctx) -> T {
    let agent = Agent::new(&ctx.name("unauthorized-reg"), KeyKind::Ed25519)?;
    let reg_body = ctx.reg_body(&agent);
    let url = ctx.ep.agent_registration.clone();
    let r = post_registration(ctx, &url, None, &reg_body).await?;
    checks::unauthorized(&r)?;
    still_unknown(ctx, &agent).await
}

async fn registration_bad_token(ctx: &mut Ctx) -> T {
    let agent = Agent::new(&ctx.name("tampered-reg"), KeyKind::Ed25519)?;
    let url = ctx.ep.agent_registration.clone();
    let reg_body = ctx.reg_body(&agent);
    let auth = format!("Bearer {}", jwt::tamper_signature(&ctx.admin));
    let r = post_registration(ctx, &url, Some(&auth), &reg_body).await?;
    checks::error(&r, 401, "invalid_token")?;
    still_unknown(ctx, &agent).await
}

async fn registration_scope(ctx: &mut Ctx) -> T {
    let token = ctx.scoped_token("generate:intent-token").await?;
    let agent = Agent::new(&ctx.name("scopeless-reg"), KeyKind::Ed25519)?;
    let url = ctx.ep.agent_registration.clone();
    let reg_body = ctx.reg_body(&agent);
    let auth = format!("Bearer {token}");
    let r = post_registration(ctx, &url, Some(&auth), &reg_body).await?;
    checks::scope_refused(&r)?;
    still_unknown(ctx, &agent).await
}

fn small_workflow(id: &str) -> Value {
    json!({"workflow_id": id, "steps": {"only_step": {"required": true}}})
}

async fn workflow_no_token(ctx: &mut Ctx) -> T {
    let url = ctx.ep.workflow_registration.clone();
    let body = small_workflow(&ctx.name("wf-unauthorized"));
    let r = post_registration(ctx, &url, None, &body).await?;
    checks::unauthorized(&r)
}

async fn workflow_scope(ctx: &mut Ctx) -> T {
    let token = ctx.scoped_token("generate:intent-token").await?;
    let url = ctx.ep.workflow_registration.clone();
    let body = small_workflow(&ctx.name("wf-scopeless"));
    let r = post_registration(ctx, &url, Some(&format!("Bearer {token}")), &body).await?;
    checks::scope_refused(&r)
}
