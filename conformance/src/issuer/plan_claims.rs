//! Plan section: the §4.4.1 response and every §4.4.2 claim of an intent
//! token (signature verified with josekit against the issuer's JWKS, hashes
//! recomputed with `sha2`, `cnf.jwk` compared with the registered key), and
//! the `Cache-Control`/`Pragma` headers of every response the plan saw.

use std::collections::BTreeSet;

use serde_json::Value;

use super::agents::{compare_cnf_jwk, seq_hash};
use super::checks::{self, ensure, Out, T};
use super::client::Resp;
use super::{jwt, test, Ctx, Registered, Row};

/// Catalogue rows of this section.
pub(crate) const ROWS: &[Row] = &[
    ("ISS-4.4.1-token-response", "4.4.1", "REQUIRED", &["R-4.4.1-1", "R-4.4.1-2", "R-4.3.1-5"],
     "A valid request gets 200 JSON with access_token and token_type Bearer"),
    ("ISS-4.4.1-expires-in", "4.4.1", "RECOMMENDED", &["R-4.4.1-3"],
     "The response carries expires_in, a positive integer"),
    ("ISS-4.4.1-short-lifetime", "4.4.1", "SHOULD", &["R-4.4.1-4", "R-9.2.1-1"],
     "The intent token lives at most 10 minutes (§9.2.1: 5-10 minutes)"),
    ("ISS-4.4.1-scope", "4.4.1", "OPTIONAL", &["R-4.4.1-5", "R-4.4.1-6"],
     "The response scope, when present, is the token's scope claim"),
    ("ISS-4.4.1-cache-control", "4.4.1", "MUST", &[],
     "Every token response has Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)"),
    ("ISS-4.5.1-error-cache-control", "4.5.1", "SHOULD", &[],
     "Every token-endpoint error has Cache-Control: no-store and Pragma: no-cache (§4.5.1 example)"),
    ("ISS-5.4.3-registration-cache-control", "5.4.3", "SHOULD", &[],
     "Registration responses have Cache-Control: no-store and Pragma: no-cache"),
    ("ISS-4.4.2-signature", "4.4.2", "MUST", &["R-4.3.1-5"],
     "The intent token's signature verifies (josekit) with the JWKS key its kid names, with an allowed alg"),
    ("ISS-4.4.2-iss", "4.4.2", "REQUIRED", &["R-4.4.2-1"],
     "iss is the issuer identifier of the metadata (or the base URL)"),
    ("ISS-4.4.2-aud", "4.4.2", "REQUIRED", &["R-4.4.2-2"],
     "aud is the requested audience"),
    ("ISS-4.4.2-sub", "4.4.2", "REQUIRED", &["R-4.4.2-3"],
     "sub is the requesting agent_id"),
    ("ISS-4.4.2-iat-exp", "4.4.2", "REQUIRED", &["R-4.4.2-4", "R-4.4.2-6"],
     "iat and exp are integer timestamps, iat near now, exp after iat"),
    ("ISS-4.4.2-exp-iat-300", "4.4.2", "SHOULD", &["R-4.4.2-5", "R-9.2.1-1"],
     "exp - iat is 300 seconds"),
    ("ISS-4.4.2-jti", "4.4.2", "REQUIRED", &["R-4.4.2-7"],
     "jti is a non-empty string, different in two tokens"),
    ("ISS-4.4.2-scope", "4.4.2", "REQUIRED", &["R-4.4.2-8"],
     "scope is the space-delimited requested scopes"),
    ("ISS-4.4.2-cnf-jwk", "4.4.2", "REQUIRED", &["R-4.4.2-9", "R-9.4.1-4"],
     "cnf.jwk is the Ed25519 public key registered for the agent, without private members"),
    ("ISS-4.4.2-executed-by", "4.4.2", "REQUIRED", &["R-4.4.2-12"],
     "intent.executed_by equals sub"),
    ("ISS-4.4.2-hashes-without-delegation", "4.4.2", "REQUIRED", &["R-4.4.2-13", "R-4.4.2-14"],
     "Without delegation or workflow: delegation_chain = SHA-256(agent_id)[:16], step_sequence_hash = SHA-256('')[:16]"),
    ("ISS-4.4.2-agent-proof", "4.4.2", "REQUIRED", &["R-4.4.2-15", "R-4.4.2-16"],
     "agent_proof carries the verified checksum and the registration_id of the registration"),
];

const CLAIM_IDS: &[&str] = &[
    "ISS-4.4.1-token-response",
    "ISS-4.4.1-expires-in",
    "ISS-4.4.1-short-lifetime",
    "ISS-4.4.1-scope",
    "ISS-4.4.2-signature",
    "ISS-4.4.2-iss",
    "ISS-4.4.2-aud",
    "ISS-4.4.2-sub",
    "ISS-4.4.2-iat-exp",
    "ISS-4.4.2-exp-iat-300",
    "ISS-4.4.2-jti",
    "ISS-4.4.2-scope",
    "ISS-4.4.2-cnf-jwk",
    "ISS-4.4.2-executed-by",
    "ISS-4.4.2-hashes-without-delegation",
    "ISS-4.4.2-agent-proof",
];

const SCOPES: [&str; 2] = ["repo:read", "vulnerability:read"];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs the section.
pub(crate) async fn run(ctx: &mut Ctx) {
    if !ctx.run.wants_any(CLAIM_IDS) {
        return;
    }
    let (main, r) = match obtain(ctx).await {
        Ok(x) => x,
        Err(e) => {
            ctx.run.skip_all(CLAIM_IDS, &super::skip_reason(&e));
            return;
        }
    };
    test!(ctx, "ISS-4.4.1-token-response", async {
        checks::ok(&r, "a valid token request")?;
        let tt = r.str_member("token_type").unwrap_or("");
        ensure(tt.eq_ignore_ascii_case("bearer"), || {
            format!("token_type is '{tt}', expected 'Bearer'")
        })?;
        ensure(
            r.str_member("access_token").is_some_and(|t| !t.is_empty()),
            || format!("no access_token string: {}", r.summary()),
        )
    });
    let Some(token) = r.str_member("access_token").map(str::to_owned) else {
        let reason = format!("no intent token obtained: {}", r.summary());
        ctx.run.skip_all(CLAIM_IDS, &reason);
        return;
    };
    let claims = match jwt::decode_unverified(&token) {
        Ok((_, c)) => c,
        Err(e) => {
            ctx.run.record(
                "ISS-4.4.2-signature",
                crate::report::Check::Fail(format!("access_token is not a JWT: {e}")),
            );
            ctx.run
                .skip_all(CLAIM_IDS, &format!("access_token is not a JWT: {e}"));
            return;
        }
    };
    let int = |name: &str| claims.get(name).and_then(Value::as_i64);
    let expires_in = r.json.as_ref().and_then(|j| j.get("expires_in")).cloned();
    test!(ctx, "ISS-4.4.1-expires-in", async {
        match &expires_in {
            Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(()),
            Some(v) => Err(format!("expires_in is {v}, expected a positive integer").into()),
            None => Err("the token response has no expires_in".into()),
        }
    });
    test!(ctx, "ISS-4.4.1-short-lifetime", async {
        let lifetime = expires_in
            .as_ref()
            .and_then(Value::as_i64)
            .or_else(|| Some(int("exp")? - int("iat")?));
        match lifetime {
            Some(l) => ensure(l > 0 && l <= 600, || {
                format!("intent token lifetime is {l} s, the draft asks for 5-10 minutes (§9.2.1)")
            }),
            None => Err("neither expires_in nor exp/iat give the lifetime".into()),
        }
    });
    let scope_claim = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(str::to_owned);
    test!(ctx, "ISS-4.4.1-scope", async {
        let Some(resp_scope) = r.str_member("scope") else {
            return super::skip("the response has no scope member (OPTIONAL)");
        };
        let a: BTreeSet<&str> = resp_scope.split(' ').collect();
        let b: BTreeSet<&str> = scope_claim.as_deref().unwrap_or("").split(' ').collect();
        ensure(a == b, || {
            format!("response scope '{resp_scope}' differs from the token's scope claim {scope_claim:?}")
        })
    });
    test!(ctx, "ISS-4.4.2-signature", async {
        let jwks = ctx.jwks().await?;
        jwt::verify(&token, &jwks)?;
        Ok(())
    });
    let expected_iss = ctx.expected_iss.clone();
    let aud = ctx.audience.clone();
    let agent_id = main.agent.id.clone();
    test!(ctx, "ISS-4.4.2-iss", async {
        let got = claims.get("iss").and_then(Value::as_str);
        ensure(got == Some(expected_iss.as_str()), || {
            format!("iss is {got:?}, expected '{expected_iss}'")
        })
    });
    test!(ctx, "ISS-4.4.2-aud", async {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == aud,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(aud.as_str())),
            _ => false,
        };
        ensure(ok, || {
            format!(
                "aud is {}, expected '{aud}'",
                claims.get("aud").map_or("absent".into(), Value::to_string)
            )
        })
    });
    test!(ctx, "ISS-4.4.2-sub", async {
        let got = claims.get("sub").and_then(Value::as_str);
        ensure(got == Some(agent_id.as_str()), || {
            format!("sub is {got:?}, expected '{agent_id}'")
        })
    });
    test!(ctx, "ISS-4.4.2-iat-exp", async {
        let (Some(iat), Some(exp)) = (int("iat"), int("exp")) else {
            return Err(format!(
                "iat/exp are not integers: iat {:?}, exp {:?}",
                claims.get("iat"),
                claims.get("exp")
            )
            .into());
        };
        let skew = (iat - now()).abs();
        ensure(skew <= 120, || {
            format!("iat {iat} is {skew} s away from this machine's clock")
        })?;
        ensure(exp > iat, || format!("exp {exp} is not after iat {iat}"))
    });
    test!(ctx, "ISS-4.4.2-exp-iat-300", async {
        match (int("iat"), int("exp")) {
            (Some(iat), Some(exp)) => ensure(exp - iat == 300, || {
                format!("exp - iat is {} s, the draft says iat + 300", exp - iat)
            }),
            _ => Err("iat/exp are not integers".into()),
        }
    });
    let main2 = main.clone();
    test!(ctx, "ISS-4.4.2-jti", async {
        let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
        ensure(!jti.is_empty(), || "jti is missing or empty".into())?;
        let (_, r2) = request(ctx, &main2).await?;
        let t2 = r2
            .str_member("access_token")
            .ok_or_else(|| Out::Fail(format!("second token request: {}", r2.summary())))?;
        let (_, c2) = jwt::decode_unverified(t2)?;
        let jti2 = c2.get("jti").and_then(Value::as_str).unwrap_or("");
        ensure(jti2 != jti, || format!("two tokens share jti '{jti}'"))
    });
    test!(ctx, "ISS-4.4.2-scope", async {
        let got: BTreeSet<&str> = scope_claim
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        let want: BTreeSet<&str> = SCOPES.iter().copied().collect();
        ensure(got == want, || {
            format!(
                "scope claim is {scope_claim:?}, expected '{}'",
                SCOPES.join(" ")
            )
        })
    });
    test!(ctx, "ISS-4.4.2-cnf-jwk", async {
        let cnf = claims
            .get("cnf")
            .and_then(|c| c.get("jwk"))
            .cloned()
            .unwrap_or(Value::Null);
        compare_cnf_jwk(&cnf, &main.agent.jwk)?;
        Ok(())
    });
    let intent = claims.get("intent").cloned().unwrap_or(Value::Null);
    test!(ctx, "ISS-4.4.2-executed-by", async {
        let got = intent.get("executed_by").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        ensure(got.is_some() && got == sub, || {
            format!("intent.executed_by is {got:?}, sub is {sub:?}")
        })
    });
    test!(ctx, "ISS-4.4.2-hashes-without-delegation", async {
        let chain = seq_hash(&[agent_id.as_str()]);
        let steps = seq_hash(&[]);
        let got_chain = intent.get("delegation_chain").and_then(Value::as_str);
        let got_steps = intent.get("step_sequence_hash").and_then(Value::as_str);
        ensure(got_chain == Some(chain.as_str()), || {
            format!(
                "delegation_chain is {got_chain:?}, expected {chain} = SHA-256('{agent_id}')[:16]"
            )
        })?;
        ensure(got_steps == Some(steps.as_str()), || {
            format!("step_sequence_hash is {got_steps:?}, expected {steps} = SHA-256('')[:16] (no steps)")
        })
    });
    test!(ctx, "ISS-4.4.2-agent-proof", async {
        let proof = claims.get("agent_proof").cloned().unwrap_or(Value::Null);
        let cs = proof.get("agent_checksum").and_then(Value::as_str);
        let reg = proof.get("registration_id").and_then(Value::as_str);
        ensure(cs == Some(main.agent.checksum.as_str()), || {
            format!(
                "agent_proof.agent_checksum is {cs:?}, expected {}",
                main.agent.checksum
            )
        })?;
        ensure(reg == Some(main.registration_id.as_str()), || {
            format!(
                "agent_proof.registration_id is {reg:?}, expected '{}'",
                main.registration_id
            )
        })
    });
}

async fn request(ctx: &mut Ctx, main: &Registered) -> Result<(Registered, Resp), Out> {
    let aud = ctx.audience.clone();
    let r = ctx
        .token_request("claims", &main.agent.request(&aud, &SCOPES))
        .await?;
    Ok((main.clone(), r))
}

async fn obtain(ctx: &mut Ctx) -> Result<(Registered, Resp), Out> {
    let main = ctx.main_agent().await?;
    request(ctx, &main).await
}

fn headers_check(seen: &[(String, Resp)], what: &str) -> T {
    if seen.is_empty() {
        return super::skip(format!("no {what} was seen by the selected tests"));
    }
    let bad: Vec<String> = seen
        .iter()
        .filter_map(|(label, r)| checks::no_store(r).err().map(|e| format!("{label}: {e}")))
        .collect();
    ensure(bad.is_empty(), || {
        let n = bad.len();
        let first: Vec<&str> = bad.iter().take(3).map(String::as_str).collect();
        format!(
            "{n} of {} {what}s lack them; {}",
            seen.len(),
            first.join("; ")
        )
    })
}

/// Header tests over every response the plan saw; run last.
pub(crate) fn run_headers(ctx: &mut Ctx) {
    let tokens = std::mem::take(&mut ctx.tokens_seen);
    let errors = std::mem::take(&mut ctx.errors_seen);
    let regs = std::mem::take(&mut ctx.registrations_seen);
    if ctx.run.wants("ISS-4.4.1-cache-control") {
        let c = checks::to_check(headers_check(&tokens, "token response"));
        ctx.run.record("ISS-4.4.1-cache-control", c);
    }
    if ctx.run.wants("ISS-4.5.1-error-cache-control") {
        let c = checks::to_check(headers_check(&errors, "token-endpoint error"));
        ctx.run.record("ISS-4.5.1-error-cache-control", c);
    }
    if ctx.run.wants("ISS-5.4.3-registration-cache-control") {
        let c = checks::to_check(headers_check(&regs, "registration response"));
        ctx.run.record("ISS-5.4.3-registration-cache-control", c);
    }
}
