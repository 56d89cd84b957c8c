//! Assertions on responses shared by the plan sections, each returning a
//! precise reason on failure.

use serde_json::Value;

use super::client::Resp;
use crate::report::Check;

/// The outcome of one test before it is recorded: `Err(Fail)` or `Err(Skip)`.
#[derive(Debug, Clone)]
pub(crate) enum Out {
    /// The implementation does not behave as required.
    Fail(String),
    /// The test could not run.
    Skip(String),
}

impl From<String> for Out {
    fn from(s: String) -> Out {
        Out::Fail(s)
    }
}

impl From<&str> for Out {
    fn from(s: &str) -> Out {
        Out::Fail(s.to_owned())
    }
}

/// Result of a test body.
pub(crate) type T = Result<(), Out>;

/// Turns a test body's result into a [`Check`].
pub(crate) fn to_check(r: T) -> Check {
    match r {
        Ok(()) => Check::Pass,
        Err(Out::Fail(s)) => Check::Fail(s),
        Err(Out::Skip(s)) => Check::Skip(s),
    }
}

/// `Err(Fail(reason))` unless `cond`.
pub(crate) fn ensure(cond: bool, reason: impl FnOnce() -> String) -> T {
    if cond {
        Ok(())
    } else {
        Err(Out::Fail(reason()))
    }
}

/// An RFC 6749 §5.2 error response (§4.5.1): `status`, a JSON object body
/// with `error` = `code`, `error_description`/`error_uri` strings when
/// present, and a JSON content type.
pub(crate) fn error(r: &Resp, status: u16, code: &str) -> T {
    if r.status != status || r.error_code() != Some(code) {
        return Err(Out::Fail(format!(
            "expected {status} {code}, got {}",
            r.summary()
        )));
    }
    shape(r)
}

/// Like [`error`], accepting any of `allowed` `(status, code)` pairs.
pub(crate) fn error_any(r: &Resp, allowed: &[(u16, &str)]) -> T {
    if allowed
        .iter()
        .any(|(s, c)| r.status == *s && r.error_code() == Some(*c))
    {
        return shape(r);
    }
    let list: Vec<String> = allowed.iter().map(|(s, c)| format!("{s} {c}")).collect();
    Err(Out::Fail(format!(
        "expected {}, got {}",
        list.join(" or "),
        r.summary()
    )))
}

/// The RFC 6749 §5.2 body shape and JSON content type of an error.
pub(crate) fn shape(r: &Resp) -> T {
    let Some(Value::Object(body)) = &r.json else {
        return Err(Out::Fail(format!(
            "error body is not a JSON object: {}",
            r.summary()
        )));
    };
    for member in ["error_description", "error_uri"] {
        if let Some(v) = body.get(member) {
            if !v.is_string() {
                return Err(Out::Fail(format!("{member} is not a string: {v}")));
            }
        }
    }
    let ct = r.header("content-type").unwrap_or_default();
    ensure(
        ct.to_ascii_lowercase().starts_with("application/json"),
        || format!("error Content-Type is '{ct}', expected application/json (RFC 6749 §5.2)"),
    )
}

/// 403 `workflow_step_unauthorized` (§4.5.5); when `missing` is not empty,
/// `missing_steps` must list exactly those steps (in any order).
pub(crate) fn step_denied(r: &Resp, missing: &[&str]) -> T {
    let want = || {
        if missing.is_empty() {
            "403 workflow_step_unauthorized".to_owned()
        } else {
            format!("403 workflow_step_unauthorized with missing_steps {missing:?}")
        }
    };
    if r.status != 403 || r.error_code() != Some("workflow_step_unauthorized") {
        return Err(Out::Fail(format!(
            "expected {}, got {}",
            want(),
            r.summary()
        )));
    }
    shape(r)?;
    if missing.is_empty() {
        return Ok(());
    }
    let got: Option<Vec<&str>> = r
        .json
        .as_ref()
        .and_then(|j| j.get("missing_steps"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_str).collect());
    let Some(mut got) = got else {
        return Err(Out::Fail(format!(
            "expected {}, got {} without a missing_steps array of strings",
            want(),
            r.summary()
        )));
    };
    let mut expected = missing.to_vec();
    got.sort_unstable();
    expected.sort_unstable();
    ensure(got == expected, || {
        format!("expected {}, got {}", want(), r.summary())
    })
}

/// A refusal of a request the draft says SHOULD be refused but defines no
/// error code for (§4.3.4): a 400, 401 or 403 with an RFC 6749 §5.2 body.
pub(crate) fn refused(r: &Resp) -> T {
    if matches!(r.status, 400 | 401 | 403) && r.error_code().is_some() {
        return shape(r);
    }
    Err(Out::Fail(format!(
        "expected a refusal (400/401/403 with an error body), got {}",
        r.summary()
    )))
}

/// A 401 refusal of bad credentials (RFC 6750 §3.1, RFC 9110 §11.6.1):
/// status 401 with a `WWW-Authenticate` challenge; when the body is an
/// error, its code is `invalid_token` (or `invalid_client`).
pub(crate) fn unauthorized(r: &Resp) -> T {
    if r.status != 401 {
        return Err(Out::Fail(format!(
            "expected 401 invalid_token, got {}",
            r.summary()
        )));
    }
    if let Some(code) = r.error_code() {
        if code != "invalid_token" && code != "invalid_client" {
            return Err(Out::Fail(format!(
                "expected 401 invalid_token, got {}",
                r.summary()
            )));
        }
    }
    ensure(r.header("www-authenticate").is_some(), || {
        format!(
            "401 without a WWW-Authenticate challenge (RFC 9110 §11.6.1): {}",
            r.summary()
        )
    })
}

/// A refusal for a token that lacks the endpoint's scope: 403
/// `insufficient_scope` (RFC 6750 §3.1) or a 401 `invalid_token`.
pub(crate) fn scope_refused(r: &Resp) -> T {
    error_any(r, &[(403, "insufficient_scope"), (401, "invalid_token")])
}

/// A 200 JSON response.
pub(crate) fn ok(r: &Resp, what: &str) -> T {
    ensure(r.status == 200 && r.json.is_some(), || {
        format!(
            "expected 200 with a JSON body for {what}, got {}",
            r.summary()
        )
    })
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1, §4.4.1 example).
pub(crate) fn no_store(r: &Resp) -> Result<(), String> {
    let cc = r.header("cache-control").unwrap_or_default();
    let has_no_store = cc
        .split(',')
        .any(|d| d.trim().eq_ignore_ascii_case("no-store"));
    if !has_no_store {
        return Err(format!(
            "Cache-Control is '{cc}', expected no-store (status {})",
            r.status
        ));
    }
    let pragma = r.header("pragma").unwrap_or_default();
    if !pragma.eq_ignore_ascii_case("no-cache") {
        return Err(format!(
            "Pragma is '{pragma}', expected no-cache (status {})",
            r.status
        ));
    }
    Ok(())
}
