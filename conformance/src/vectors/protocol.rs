//! The adapter protocol (conformance/adapters/PROTOCOL.md): the JSON request
//! built from each vector, and the judgement of a target's JSON response
//! against the vector's expected result. Used for the built-in target and
//! for adapters alike.

use serde_json::{json, Map, Value};

use super::Case;
use crate::report::Check;

/// Protocol id sent in the `hello` request.
pub const PROTOCOL: &str = "ajwt-vectors-adapter/1";

/// An operation of the protocol, one per vector file algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `checksum`: agent checksum of a specification (§5.2–§5.3).
    Checksum,
    /// `sequence_hash`: `delegation_chain` and `step_sequence_hash` (§4.4.4).
    SequenceHash,
    /// `authorize_step`: workflow step authorization (§4.3.3, §4.5.5, §6.6.4).
    AuthorizeStep,
    /// `decode_token_request`: token request decoding (§4.2.1, §4.5).
    DecodeTokenRequest,
}

impl Op {
    /// The `op` member of the request.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Checksum => "checksum",
            Op::SequenceHash => "sequence_hash",
            Op::AuthorizeStep => "authorize_step",
            Op::DecodeTokenRequest => "decode_token_request",
        }
    }

    /// The op evaluating a vector file's `algorithm`.
    pub fn for_algorithm(algorithm: &str) -> Option<Op> {
        match algorithm {
            "agent-checksum" => Some(Op::Checksum),
            "sequence-hash" => Some(Op::SequenceHash),
            "workflow-step-authorization" => Some(Op::AuthorizeStep),
            "token-request-decoding" => Some(Op::DecodeTokenRequest),
            _ => None,
        }
    }

    /// The op named by a request's `op` member.
    pub fn parse(op: &str) -> Option<Op> {
        [
            Op::Checksum,
            Op::SequenceHash,
            Op::AuthorizeStep,
            Op::DecodeTokenRequest,
        ]
        .into_iter()
        .find(|o| o.as_str() == op)
    }
}

fn member<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("no member {name:?}"))
}

fn string_member<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    member(v, name)?
        .as_str()
        .ok_or_else(|| format!("member {name:?} is not a string"))
}

/// The request for a vector (`id` is the catalogue id).
pub(crate) fn request(case: &Case) -> Result<Value, String> {
    let t = &case.test;
    Ok(match case.op {
        Op::Checksum => json!({
            "op": "checksum",
            "id": case.id,
            "profile": string_member(&case.group, "profile")?,
            "spec": string_member(t, "input")?,
        }),
        Op::SequenceHash => json!({
            "op": "sequence_hash",
            "id": case.id,
            "chain": member(t, "chain")?,
            "agent_id": string_member(t, "agent_id")?,
            "completed_steps": member(t, "completed_steps")?,
            "workflow_step": t.get("workflow_step").cloned().unwrap_or(Value::Null),
        }),
        Op::AuthorizeStep => {
            let r = member(t, "request")?;
            json!({
                "op": "authorize_step",
                "id": case.id,
                "workflow": string_member(t, "workflow")?,
                "agent_id": string_member(r, "agent_id")?,
                "workflow_step": string_member(r, "workflow_step")?,
                "completed_steps": member(r, "completed_steps")?,
            })
        }
        Op::DecodeTokenRequest => json!({
            "op": "decode_token_request",
            "id": case.id,
            "body": string_member(t, "body")?,
        }),
    })
}

/// `Some(message)` when the response is `{"error": "unsupported_op", …}`.
pub fn unsupported(response: &Value) -> Option<String> {
    if response.get("result").is_some() {
        return None;
    }
    if response.get("error").and_then(Value::as_str) == Some("unsupported_op") {
        return Some(
            response
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned(),
        );
    }
    None
}

/// Short JSON rendering of a value for failure reasons.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let mut t: String = s.chars().take(159).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// Judges a target's response to a vector's request.
pub fn judge(case: &Case, file: &Value, response: &Value) -> Check {
    if !response.is_object() {
        return Check::Fail(format!("response is not a JSON object: {}", show(response)));
    }
    let Some(result) = response.get("result").and_then(Value::as_str) else {
        return Check::Fail(match response.get("error") {
            Some(e) => format!(
                "target answered with a protocol error instead of a result: error {} ({})",
                show(e),
                response
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            ),
            None => format!(
                "response has no \"result\" member (\"valid\" or \"invalid\"): {}",
                show(response)
            ),
        });
    };
    if result != "valid" && result != "invalid" {
        return Check::Fail(format!(
            "response \"result\" must be \"valid\" or \"invalid\", got {result:?}"
        ));
    }
    let t = &case.test;
    let want = t.get("result").and_then(Value::as_str).unwrap_or("");
    match case.op {
        Op::Checksum => judge_checksum(case, file, want, result, response),
        Op::SequenceHash => judge_fields(
            want,
            result,
            response,
            t,
            &["delegation_chain", "step_sequence_hash"],
            &[],
            |name| match name {
                "delegation_chain" => t
                    .get("delegation_chain_input")
                    .map(|i| format!(" = SHA-256({})[..16]", show(i))),
                "step_sequence_hash" => t
                    .get("step_sequence_input")
                    .map(|i| format!(" = SHA-256({})[..16]", show(i))),
                _ => None,
            },
        ),
        Op::AuthorizeStep => judge_fields(
            want,
            result,
            response,
            t,
            &[],
            &["error", "status", "reason", "description", "missing_steps"],
            |_| None,
        ),
        Op::DecodeTokenRequest => judge_decoded(want, result, response, t),
    }
}

/// Compares the members of a response with the vector's: `valid_fields`
/// for valid vectors, `invalid_fields` for invalid ones. `hint` may add
/// context to a differing member.
fn judge_fields(
    want: &str,
    result: &str,
    response: &Value,
    t: &Value,
    valid_fields: &[&str],
    invalid_fields: &[&str],
    hint: impl Fn(&str) -> Option<String>,
) -> Check {
    if want != result {
        return Check::Fail(wrong_result(want, result, response, t, invalid_fields));
    }
    let fields = if want == "valid" {
        valid_fields
    } else {
        invalid_fields
    };
    let mut diffs = Vec::new();
    for f in fields {
        let expected = t.get(*f).unwrap_or(&Value::Null);
        match response.get(*f) {
            None => diffs.push(format!("{f}: expected {}, got nothing", show(expected))),
            Some(got) if got != expected => diffs.push(format!(
                "{f}: expected {}{}, got {}",
                show(expected),
                hint(f).unwrap_or_default(),
                show(got)
            )),
            Some(_) => {}
        }
    }
    if diffs.is_empty() {
        Check::Pass
    } else {
        Check::Fail(diffs.join("; "))
    }
}

/// The reason for a valid/invalid disagreement.
fn wrong_result(
    want: &str,
    result: &str,
    response: &Value,
    t: &Value,
    invalid_fields: &[&str],
) -> String {
    if want == "valid" {
        let mut what: Vec<String> = Vec::new();
        for f in ["error", "status", "reason", "description", "message"] {
            if let Some(v) = response.get(f) {
                what.push(format!("{f} {}", show(v)));
            }
        }
        format!(
            "expected the input to be accepted (valid), got {result}: {}",
            if what.is_empty() {
                "no details".to_owned()
            } else {
                what.join(", ")
            }
        )
    } else {
        let expected: Vec<String> = invalid_fields
            .iter()
            .filter_map(|f| t.get(*f).map(|v| format!("{f} {}", show(v))))
            .collect();
        format!(
            "expected rejection ({}), got {result}: {}",
            expected.join(", "),
            show(response)
        )
    }
}

/// `decode_token_request`: `decoded` for valid vectors (member by member),
/// `error`/`status`/`description` for invalid ones.
fn judge_decoded(want: &str, result: &str, response: &Value, t: &Value) -> Check {
    if want == "invalid" || want != result {
        return judge_fields(
            want,
            result,
            response,
            t,
            &[],
            &["error", "status", "description"],
            |_| None,
        );
    }
    let empty = Map::new();
    let expected = t
        .get("decoded")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let Some(got) = response.get("decoded").and_then(Value::as_object) else {
        return Check::Fail(format!(
            "expected a \"decoded\" object, got {}",
            show(response.get("decoded").unwrap_or(&Value::Null))
        ));
    };
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match got.get(k) {
            None => diffs.push(format!("decoded.{k}: expected {}, got nothing", show(v))),
            Some(g) if g != v => diffs.push(format!(
                "decoded.{k}: expected {}, got {}",
                show(v),
                show(g)
            )),
            Some(_) => {}
        }
    }
    for k in got.keys() {
        if !expected.contains_key(k) {
            diffs.push(format!("decoded.{k}: unexpected member"));
        }
    }
    if diffs.is_empty() {
        Check::Pass
    } else {
        Check::Fail(diffs.join("; "))
    }
}

/// Strips the optional `sha256:` prefix of a checksum (§5.3.1 allows bare
/// lowercase hex as the reference form, spec/interpretation.md I-4).
fn bare_hex(checksum: &str) -> &str {
    checksum.strip_prefix("sha256:").unwrap_or(checksum)
}

/// Where two byte strings first differ, with a little context of each.
pub fn first_difference(expected: &[u8], got: &[u8]) -> Option<String> {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .or_else(|| (expected.len() != got.len()).then(|| expected.len().min(got.len())))?;
    let window = |b: &[u8]| {
        let start = at.saturating_sub(12);
        let end = (at + 28).min(b.len());
        let piece = b.get(start..end).unwrap_or(&[]);
        format!(
            "{}{:?}{}",
            if start > 0 { "…" } else { "" },
            String::from_utf8_lossy(piece),
            if end < b.len() { "…" } else { "" }
        )
    };
    Some(format!(
        "canonical bytes first differ at byte {at} (expected {} bytes, got {}): expected {} got {}",
        expected.len(),
        got.len(),
        window(expected),
        window(got)
    ))
}

/// What our crate computes for `input` under the *other* checksum profile:
/// `(profile name, canonical, checksum)`, to recognise an implementation
/// that follows the wrong one of §5.3.1 and §5.3.2.
fn other_profile(input: &str, profile: &str) -> Option<(&'static str, Vec<u8>, String)> {
    use ajwt_checksum::{compute_json, Profile};
    let other = match profile {
        "jcs" => Profile::PythonRef,
        "python-ref" => Profile::Jcs,
        _ => return None,
    };
    let c = compute_json(input.as_bytes(), other).ok()?;
    Some((other.as_str(), c.canonical, c.checksum.to_string()))
}

/// The documented reason why a §5.3.2 implementation fails a `jcs` vector
/// (or a JCS one a `python-ref` vector).
fn profile_confusion(profile: &str) -> &'static str {
    if profile == "jcs" {
        "the target computed the §5.3.2 reference code's json.dumps(sort_keys=True) form \
         (members id/prompt/tools/config, \", \"/\": \" separators, \\uXXXX escapes, Python \
         numbers, tool signature instead of parameters) where §5.3.1 requires RFC 8785 JCS; \
         the draft's two algorithms disagree (spec/interpretation.md I-1)"
    } else {
        "the target computed §5.3.1 RFC 8785 JCS where the python-ref profile is the §5.3.2 \
         reference code's json.dumps(sort_keys=True) (spec/interpretation.md I-1)"
    }
}

fn judge_checksum(case: &Case, file: &Value, want: &str, result: &str, response: &Value) -> Check {
    let t = &case.test;
    let profile = case
        .group
        .get("profile")
        .and_then(Value::as_str)
        .unwrap_or("");
    let input = t.get("input").and_then(Value::as_str).unwrap_or("");
    let got_checksum = response.get("checksum").and_then(Value::as_str);
    let got_canonical = response.get("canonical").and_then(Value::as_str);
    // Did the target compute the other profile's answer?
    let confused = || -> Option<&'static str> {
        if result != "valid" {
            return None;
        }
        let (_, canonical, checksum) = other_profile(input, profile)?;
        let same = match (got_canonical, got_checksum) {
            (Some(c), _) => c.as_bytes() == canonical.as_slice(),
            (None, Some(s)) => bare_hex(s) == bare_hex(&checksum),
            (None, None) => false,
        };
        same.then(|| profile_confusion(profile))
    };
    if want == "invalid" {
        let kind = t.get("error").and_then(Value::as_str).unwrap_or("");
        let meaning = file
            .get("errorKinds")
            .and_then(|k| k.get(kind))
            .and_then(Value::as_str)
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        if result == "valid" {
            let mut reason = format!("[{profile}] ");
            // The documented reason first: the terminal report shortens reasons.
            if let Some(c) = confused() {
                reason.push_str(c);
                reason.push_str("; ");
            }
            if kind == "unrepresentable_number" {
                reason.push_str(
                    "RFC 8785 (§5.3.1) writes every number as an IEEE-754 double, so an integer \
                     it cannot represent exactly is refused (spec/interpretation.md I-9); ",
                );
            }
            reason.push_str(&format!(
                "expected rejection with error kind {kind}{meaning}, got valid checksum {}",
                got_checksum.unwrap_or("(none)")
            ));
            return Check::Fail(reason);
        }
        return match response.get("error").and_then(Value::as_str) {
            Some(k) if k == kind => Check::Pass,
            Some(k) => Check::Fail(format!(
                "[{profile}] expected error kind {kind}{meaning}, got {k}{}",
                response
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )),
            None => Check::Fail(format!(
                "[{profile}] expected error kind {kind}{meaning}, got a rejection without an \"error\" kind"
            )),
        };
    }
    let expected_checksum = t.get("checksum").and_then(Value::as_str).unwrap_or("");
    let expected_canonical = t.get("canonical").and_then(Value::as_str).unwrap_or("");
    if result != "valid" {
        return Check::Fail(format!(
            "[{profile}] expected {expected_checksum}, got rejection: error {} ({})",
            response
                .get("error")
                .map(show)
                .unwrap_or_else(|| "(none)".into()),
            response
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
        ));
    }
    let Some(got) = got_checksum else {
        return Check::Fail(format!(
            "[{profile}] response has no \"checksum\" member (expected {expected_checksum})"
        ));
    };
    let hex_ok = bare_hex(got).len() == 64
        && bare_hex(got)
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut problems = Vec::new();
    if !hex_ok {
        problems.push(format!(
            "checksum {got:?} is not 'sha256:' + 64 lowercase hex digits (§5.3.1) or bare lowercase hex"
        ));
    } else if bare_hex(got) != bare_hex(expected_checksum) {
        problems.push(format!("expected {expected_checksum}, got {got}"));
    }
    if let Some(c) = got_canonical {
        if let Some(d) = first_difference(expected_canonical.as_bytes(), c.as_bytes()) {
            problems.push(d);
        } else if !problems.is_empty() {
            problems.push("the canonical bytes are right, so the digest is wrong".to_owned());
        }
    }
    if problems.is_empty() {
        return Check::Pass;
    }
    Check::Fail(match confused() {
        // The documented reason first: the terminal report shortens reasons.
        Some(c) => format!("[{profile}] {c}: {}", problems.join("; ")),
        None => format!("[{profile}] {}", problems.join("; ")),
    })
}
