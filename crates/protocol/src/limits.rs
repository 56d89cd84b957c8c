//! Decode-time limits on what one request may make the issuer do (§9.4.3
//! "malformed token requests designed to trigger expensive validation
//! operations"; spec I-66). Every list a request or registration carries is
//! bounded here, before any work proportional to it, so one request costs at
//! most a bounded amount of CPU, memory and store lookups whatever its size.
//! The values are generous for real agents and workflows; a request over a
//! limit is `invalid_request` (400) naming the member and the limit.

/// `requested_scopes` entries (§4.2.1), and scopes of a workflow step.
pub const MAX_SCOPES: usize = 64;
/// Bytes of one scope-token (RFC 6749 §3.3).
pub const MAX_SCOPE_LEN: usize = 256;
/// `audience` entries (§4.2.1).
pub const MAX_AUDIENCES: usize = 16;
/// Bytes of one audience value.
pub const MAX_AUDIENCE_LEN: usize = 2048;
/// `delegation_context.chain` entries: the largest delegation depth an issuer
/// can be configured with (`max_delegation_depth` is at most this).
pub const MAX_CHAIN: usize = 64;
/// `delegation_context.completed_steps` entries (a step completes once, so
/// a workflow never has more).
pub const MAX_COMPLETED_STEPS: usize = MAX_WORKFLOW_STEPS;
/// Steps of a registered workflow (§4.7.2, §6.3.3).
pub const MAX_WORKFLOW_STEPS: usize = 256;
/// `allowed_scopes` entries of an agent registration (anchor A3).
pub const MAX_ALLOWED_SCOPES: usize = 256;
/// Bytes of an issued intent token (compact JWS): what a resource server is
/// asked to accept in one header (its own limit is usually 8–16 KiB).
pub const MAX_ISSUED_TOKEN_LEN: usize = 16 * 1024;

/// Bytes of a decompressed Token Status List (draft-ietf-oauth-status-list
/// §4.1): 1 MiB, 8 388 608 one-bit statuses. The issuer's lists are far
/// smaller (`status_list_size`); a verifier refuses a larger list instead of
/// inflating it (decompression bomb bound).
pub const MAX_STATUS_LIST_BYTES: usize = 1024 * 1024;

/// The `invalid_request` description for a list over its limit.
pub fn too_many(member: &str, max: usize) -> String {
    format!("Invalid parameter: {member} has more than {max} entries")
}

/// The `invalid_request` description for a value over its size limit.
pub fn too_long(member: &str, max: usize) -> String {
    format!("Invalid parameter: {member} is longer than {max} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::{decode_agent_registration, decode_workflow_registration};
    use crate::wire::decode_token_request;
    use serde_json::json;

    fn strings(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn token_request(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut r = json!({
            "grant_type": "agent_checksum",
            "agent_id": "a1",
            "computed_checksum": format!("sha256:{}", "0".repeat(64)),
            "requested_scopes": ["x"],
            "audience": "https://api.example.com",
        });
        edit(&mut r);
        r.to_string().into_bytes()
    }

    fn description(body: &[u8]) -> Option<String> {
        decode_token_request(body).err().map(|e| e.description())
    }

    /// Each token-request list: at its limit decoded, one over refused with
    /// the member named (§4.2.1, §4.5.6, I-66).
    #[test]
    fn s4_2_1_i66_token_request_lists_are_bounded_at_decode() {
        type Set = fn(&mut serde_json::Value, Vec<String>);
        let cases: [(&str, usize, Set); 4] = [
            ("requested_scopes", MAX_SCOPES, |r, v| {
                r["requested_scopes"] = json!(v)
            }),
            ("audience", MAX_AUDIENCES, |r, v| r["audience"] = json!(v)),
            ("delegation_context.chain", MAX_CHAIN, |r, v| {
                r["delegation_context"] = json!({"chain": v})
            }),
            (
                "delegation_context.completed_steps",
                MAX_COMPLETED_STEPS,
                |r, v| r["delegation_context"] = json!({"completed_steps": v}),
            ),
        ];
        for (member, max, set) in cases {
            let at = token_request(|r| set(r, strings("a", max)));
            assert_eq!(description(&at), None, "{member} at {max}");
            let over = token_request(|r| set(r, strings("a", max + 1)));
            assert_eq!(description(&over), Some(too_many(member, max)), "{member}");
        }
        let long_scope =
            token_request(|r| r["requested_scopes"] = json!(["s".repeat(MAX_SCOPE_LEN + 1)]));
        assert_eq!(
            description(&long_scope),
            Some(too_long("requested_scopes", MAX_SCOPE_LEN))
        );
        let scope_at_limit =
            token_request(|r| r["requested_scopes"] = json!(["s".repeat(MAX_SCOPE_LEN)]));
        assert_eq!(description(&scope_at_limit), None);
        for aud in [
            json!("a".repeat(MAX_AUDIENCE_LEN + 1)),
            json!(["a".repeat(MAX_AUDIENCE_LEN + 1)]),
        ] {
            let long_aud = token_request(|r| r["audience"] = aud);
            assert_eq!(
                description(&long_aud),
                Some(too_long("audience", MAX_AUDIENCE_LEN))
            );
        }
    }

    /// Workflow steps, a step's scopes and an agent's `allowed_scopes` are
    /// bounded at registration (§6.3.3, anchor A3, I-66).
    #[test]
    fn s6_3_3_i66_registration_lists_are_bounded() {
        let workflow = |n: usize| {
            let steps: serde_json::Map<String, serde_json::Value> = (0..n)
                .map(|i| (format!("step_{i}"), json!({"required": false})))
                .collect();
            json!({"workflow_id": "wf", "steps": steps}).to_string()
        };
        assert!(decode_workflow_registration(workflow(MAX_WORKFLOW_STEPS).as_bytes()).is_ok());
        let e =
            decode_workflow_registration(workflow(MAX_WORKFLOW_STEPS + 1).as_bytes()).unwrap_err();
        assert_eq!(e.description(), too_many("steps", MAX_WORKFLOW_STEPS));

        let step_scopes = |n: usize| {
            json!({"workflow_id": "wf", "steps": [{"step_id": "s1", "scopes": strings("s", n)}]})
                .to_string()
        };
        assert!(decode_workflow_registration(step_scopes(MAX_SCOPES).as_bytes()).is_ok());
        let e = decode_workflow_registration(step_scopes(MAX_SCOPES + 1).as_bytes()).unwrap_err();
        assert!(
            e.description()
                .ends_with(&format!("has more than {MAX_SCOPES} entries")),
            "{}",
            e.description()
        );

        let agent = |n: usize| {
            json!({"agent_id": "a1", "prompt": "p", "tools": [], "allowed_scopes": strings("s", n)})
                .to_string()
        };
        assert!(decode_agent_registration(agent(MAX_ALLOWED_SCOPES).as_bytes()).is_ok());
        let e = decode_agent_registration(agent(MAX_ALLOWED_SCOPES + 1).as_bytes()).unwrap_err();
        assert_eq!(
            e.description(),
            format!("Invalid parameter: allowed_scopes has more than {MAX_ALLOWED_SCOPES} entries")
        );
    }
}
