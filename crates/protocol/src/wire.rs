//! Token request and response of the `agent_checksum` grant (§4.2.1, §4.4.1)
//! and the request decoder with the draft's exact `invalid_request` and
//! `unsupported_grant_type` errors (§4.3.1, §4.5.2, §4.5.6).
//!
//! Decoding reads the body with the strict JSON reader (duplicate members are
//! refused) and checks the parameters in the order §4.2.1 lists them; the
//! first failure is reported. `grant_type` comes first, so an unsupported
//! grant type is reported before any other missing parameter (§4.3.1 step 1;
//! spec/interpretation.md I-15).

use ajwt_checksum::json::{parse_strict, Value};
use ajwt_checksum::{is_valid_agent_id, AgentChecksum};
use serde::{Deserialize, Serialize};

pub use crate::claims::Audience;
use crate::error::OAuthError;
use crate::limits;
use crate::scope::is_scope_token;

/// The short grant type name used in the draft's examples (§4.1).
pub const GRANT_TYPE: &str = "agent_checksum";
/// The grant type URN (§4.1, §8.2).
pub const GRANT_TYPE_URN: &str = "urn:ietf:params:oauth:grant-type:agent_checksum";

/// `invalid_request` description for a malformed checksum (§4.5.6).
pub const INVALID_CHECKSUM_FORMAT: &str = "Invalid checksum format (must be 'sha256:<hex>')";
/// `invalid_request` description for JSON that cannot be read (§4.5.6).
pub const INVALID_JSON: &str = "Invalid JSON format";
/// `invalid_request` description for workflow_enabled without its ids (§4.5.6).
pub const WORKFLOW_IDS_MISSING: &str =
    "workflow_enabled=true but workflow_id/workflow_step missing";

/// The grant types of RFC 6749 §4.4 the token endpoint serves beside the
/// draft's own (I-25).
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";

/// A grant the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenEndpointGrant {
    /// `client_credentials` (RFC 6749 §4.4), form-encoded, client authentication.
    ClientCredentials,
    /// `agent_checksum` or its URN (§4.1), behind a client bearer token (§4.2.3).
    AgentChecksum,
}

/// Which grant `grant_type` names, or `unsupported_grant_type` naming both
/// supported grants (RFC 6749 §5.2, I-53). Exact, case-sensitive comparison.
pub fn token_endpoint_grant(grant_type: &str) -> Result<TokenEndpointGrant, OAuthError> {
    match grant_type {
        GRANT_TYPE_CLIENT_CREDENTIALS => Ok(TokenEndpointGrant::ClientCredentials),
        GRANT_TYPE | GRANT_TYPE_URN => Ok(TokenEndpointGrant::AgentChecksum),
        _ => Err(OAuthError::UnsupportedTokenEndpointGrant),
    }
}

/// The `grant_type` of a token request body, when it can be read without
/// doubt: a JSON object (strict reader) or a form with exactly one
/// `grant_type`, whose value is a non-empty string. `None` otherwise (the
/// request then goes through client authentication and full decoding, I-15).
pub fn peek_grant_type(body: &[u8], form: bool) -> Option<String> {
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let mut grants = pairs.into_iter().filter(|(k, _)| k == "grant_type");
        let (_, first) = grants.next()?;
        return (grants.next().is_none() && !first.is_empty()).then_some(first);
    }
    match parse_strict(body).ok()? {
        Value::Object(obj) => match present(&obj, "grant_type") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Decoding options of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOptions {
    /// Accept a bare 64-lowercase-hex `computed_checksum` (the §5.3.2 code's
    /// output) as well as `sha256:<hex>`: a migration aid, off by default (I-57).
    pub accept_bare_checksum: bool,
}

/// `delegation_context` (§4.2.1): the parent agents and the completed steps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DelegationContext {
    /// Agent ids from the initiating agent down (the requester may be last).
    #[serde(default)]
    pub chain: Vec<String>,
    /// Workflow steps completed before this one.
    #[serde(default)]
    pub completed_steps: Vec<String>,
}

/// A decoded `agent_checksum` token request (§4.2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// `agent_checksum` or its URN, as sent.
    pub grant_type: String,
    /// The registered agent.
    pub agent_id: String,
    /// The checksum the agent computed (`sha256:<hex>`).
    pub computed_checksum: AgentChecksum,
    /// The workflow, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The step being executed, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_step: Option<String>,
    /// Whether the workflow must be validated (default false).
    #[serde(default)]
    pub workflow_enabled: bool,
    /// Requested scopes, each once, in request order.
    pub requested_scopes: Vec<String>,
    /// Intended audience(s).
    pub audience: Audience,
    /// Delegation context (empty when absent).
    #[serde(default)]
    pub delegation_context: DelegationContext,
    /// Extension: the parent agent's intent token, a verified delegation
    /// assertion (spec/interpretation.md I-19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_token: Option<String>,
}

/// A successful token response (§4.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The intent token (a JWT).
    pub access_token: String,
    /// `Bearer` (§4.4.1; `DPoP` when bound per RFC 9449).
    pub token_type: String,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Granted scopes, space-delimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn invalid(msg: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequest(msg.into())
}

fn invalid_param(name: &str) -> OAuthError {
    invalid(format!("Invalid parameter: {name}"))
}

/// A member that is absent, `null` or `""` is treated as omitted (RFC 6749 §3.1).
fn present<'a>(obj: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .filter(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
}

fn optional_string(obj: &[(String, Value)], name: &str) -> Result<Option<String>, OAuthError> {
    match present(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_param(name)),
    }
}

fn id_list(v: Option<&Value>, name: &str, max: usize) -> Result<Vec<String>, OAuthError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() > max => Err(invalid(limits::too_many(name, max))),
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| match x {
                Value::String(s) if is_valid_agent_id(s) => Ok(s.clone()),
                _ => Err(invalid_param(name)),
            })
            .collect(),
        Some(_) => Err(invalid_param(name)),
    }
}

/// Decodes a JSON token request body (§4.2.1) with the errors of §4.5.
pub fn decode_token_request(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    decode_token_request_with(body, &DecodeOptions::default())
}

/// [`decode_token_request`] with `options` (e.g. bare-hex checksums, I-57).
pub fn decode_token_request_with(
    body: &[u8],
    options: &DecodeOptions,
) -> Result<TokenRequest, OAuthError> {
    let value = parse_strict(body).map_err(|_| invalid(INVALID_JSON))?;
    let Value::Object(obj) = &value else {
        return Err(invalid(INVALID_JSON));
    };

    // §4.3.1 step 1: the grant type first.
    let grant_type = match present(obj, "grant_type") {
        None => return Err(OAuthError::missing("grant_type")),
        Some(Value::String(s)) if s == GRANT_TYPE || s == GRANT_TYPE_URN => s.clone(),
        Some(Value::String(_)) => return Err(OAuthError::UnsupportedGrantType),
        Some(_) => return Err(invalid_param("grant_type")),
    };

    let agent_id = match present(obj, "agent_id") {
        None => return Err(OAuthError::missing("agent_id")),
        Some(Value::String(s)) if is_valid_agent_id(s) => s.clone(),
        Some(_) => return Err(invalid_param("agent_id")),
    };

    let computed_checksum = match present(obj, "computed_checksum") {
        None => return Err(OAuthError::missing("computed_checksum")),
        Some(Value::String(s)) => {
            let parsed = if options.accept_bare_checksum {
                AgentChecksum::parse_lenient(s)
            } else {
                AgentChecksum::parse(s)
            };
            parsed.map_err(|_| invalid(INVALID_CHECKSUM_FORMAT))?
        }
        Some(_) => return Err(invalid(INVALID_CHECKSUM_FORMAT)),
    };

    let workflow_id = optional_string(obj, "workflow_id")?;
    let workflow_step = optional_string(obj, "workflow_step")?;
    let workflow_enabled = match present(obj, "workflow_enabled") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid_param("workflow_enabled")),
    };
    if workflow_enabled && (workflow_id.is_none() || workflow_step.is_none()) {
        return Err(invalid(WORKFLOW_IDS_MISSING));
    }

    let requested_scopes = match present(obj, "requested_scopes") {
        None => return Err(OAuthError::missing("requested_scopes")),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(OAuthError::missing("requested_scopes"))
        }
        Some(Value::Array(items)) => {
            // Size first (I-66), then types (every element a string), then
            // scope syntax.
            if items.len() > limits::MAX_SCOPES {
                return Err(invalid(limits::too_many(
                    "requested_scopes",
                    limits::MAX_SCOPES,
                )));
            }
            if items.iter().any(|x| !matches!(x, Value::String(_))) {
                return Err(invalid_param("requested_scopes"));
            }
            if items
                .iter()
                .any(|x| matches!(x, Value::String(s) if s.len() > limits::MAX_SCOPE_LEN))
            {
                return Err(invalid(limits::too_long(
                    "requested_scopes",
                    limits::MAX_SCOPE_LEN,
                )));
            }
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            let mut scopes: Vec<String> = Vec::with_capacity(items.len());
            for s in items.iter().filter_map(|x| match x {
                Value::String(s) => Some(s),
                _ => None,
            }) {
                if !is_scope_token(s) {
                    return Err(OAuthError::InvalidScope {
                        description: format!("Malformed scope: '{s}'"),
                        refused: vec![s.clone()],
                    });
                }
                if seen.insert(s.as_str()) {
                    scopes.push(s.clone());
                }
            }
            scopes
        }
        Some(_) => return Err(invalid_param("requested_scopes")),
    };

    let audience = match present(obj, "audience") {
        None => return Err(OAuthError::missing("audience")),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(OAuthError::missing("audience"))
        }
        Some(Value::String(s)) if s.len() > limits::MAX_AUDIENCE_LEN => {
            return Err(invalid(limits::too_long(
                "audience",
                limits::MAX_AUDIENCE_LEN,
            )))
        }
        Some(Value::String(s)) => Audience::One(s.clone()),
        Some(Value::Array(items)) if items.len() > limits::MAX_AUDIENCES => {
            return Err(invalid(limits::too_many("audience", limits::MAX_AUDIENCES)))
        }
        Some(Value::Array(items))
            if items
                .iter()
                .any(|x| matches!(x, Value::String(s) if s.len() > limits::MAX_AUDIENCE_LEN)) =>
        {
            return Err(invalid(limits::too_long(
                "audience",
                limits::MAX_AUDIENCE_LEN,
            )))
        }
        Some(Value::Array(items)) => Audience::Many(
            items
                .iter()
                .map(|x| match x {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(invalid_param("audience")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(invalid_param("audience")),
    };

    let delegation_context = match present(obj, "delegation_context") {
        None => DelegationContext::default(),
        Some(v @ Value::Object(_)) => DelegationContext {
            chain: id_list(
                v.get("chain"),
                "delegation_context.chain",
                limits::MAX_CHAIN,
            )?,
            completed_steps: id_list(
                v.get("completed_steps"),
                "delegation_context.completed_steps",
                limits::MAX_COMPLETED_STEPS,
            )?,
        },
        Some(_) => return Err(invalid_param("delegation_context")),
    };

    let parent_token = match obj
        .iter()
        .find(|(k, _)| k == "parent_token")
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err(invalid_param("parent_token")),
    };

    Ok(TokenRequest {
        grant_type,
        agent_id,
        computed_checksum,
        workflow_id,
        workflow_step,
        workflow_enabled,
        requested_scopes,
        audience,
        delegation_context,
        parent_token,
    })
}

/// Decodes a form-encoded (`application/x-www-form-urlencoded`) token request
/// for RFC 6749 clients: the same parameters as the JSON form, with
/// `requested_scopes` space-delimited (RFC 6749 §3.3), `workflow_enabled`
/// `true`/`false`, and `delegation_context` a JSON-encoded object. A parameter
/// given twice is `invalid_request` (RFC 6749 §3.2). The result is checked by
/// exactly the rules of [`decode_token_request`].
pub fn decode_token_request_form(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    decode_token_request_form_with(body, &DecodeOptions::default())
}

/// [`decode_token_request_form`] with `options` (e.g. bare-hex checksums, I-57).
pub fn decode_token_request_form_with(
    body: &[u8],
    options: &DecodeOptions,
) -> Result<TokenRequest, OAuthError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| invalid("Invalid form encoding"))?;
    let mut seen = std::collections::HashSet::new();
    let mut obj = serde_json::Map::new();
    for (key, value) in pairs {
        if !seen.insert(key.clone()) {
            return Err(invalid(format!("Duplicate parameter: {key}")));
        }
        let json = match key.as_str() {
            "workflow_enabled" => match value.as_str() {
                "true" => serde_json::Value::Bool(true),
                "false" | "" => serde_json::Value::Bool(false),
                _ => return Err(invalid_param("workflow_enabled")),
            },
            "requested_scopes" => serde_json::Value::Array(
                value
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(|s| serde_json::Value::String(s.to_owned()))
                    .collect(),
            ),
            "delegation_context" if !value.is_empty() => {
                let ctx = parse_strict(value.as_bytes())
                    .map_err(|_| invalid_param("delegation_context"))?;
                ctx.to_serde_json()
            }
            _ => serde_json::Value::String(value),
        };
        obj.insert(key, json);
    }
    let text =
        serde_json::to_vec(&serde_json::Value::Object(obj)).map_err(|_| invalid(INVALID_JSON))?;
    decode_token_request_with(&text, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKSUM: &str =
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d";

    fn body(extra: &str) -> String {
        format!(
            r#"{{"grant_type":"agent_checksum","agent_id":"vulnerability-patcher-v1","computed_checksum":"{CHECKSUM}",
                "requested_scopes":["repo:write","vulnerability:read"],"audience":"https://api.github.com"{extra}}}"#
        )
    }

    fn err(b: &str) -> (&'static str, u16, String) {
        let e = decode_token_request(b.as_bytes()).unwrap_err();
        (e.code(), e.status(), e.description())
    }

    #[test]
    fn s4_2_2_draft_example_decodes() {
        let b = format!(
            r#"{{"grant_type": "agent_checksum", "agent_id": "vulnerability-patcher-v1",
                "computed_checksum": "{CHECKSUM}", "workflow_id": "auto-patch-workflow-v1",
                "workflow_step": "step_3_patch_application", "workflow_enabled": true,
                "requested_scopes": ["repo:write", "vulnerability:read"], "audience": "https://api.github.com",
                "delegation_context": {{"chain": ["supervisor-agent", "planner-agent", "vulnerability-patcher-v1"],
                  "completed_steps": ["step_1_analyze_manifest", "step_2_create_patch_plan"]}}}}"#
        );
        let r = decode_token_request(b.as_bytes()).unwrap();
        assert_eq!(r.workflow_step.as_deref(), Some("step_3_patch_application"));
        assert!(r.workflow_enabled);
        assert_eq!(r.delegation_context.chain.len(), 3);
        assert_eq!(r.audience, Audience::One("https://api.github.com".into()));
        // Round trip through serde.
        let back: TokenRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn s4_3_1_unsupported_grant_type_precedes_missing_parameters() {
        assert_eq!(
            err(r#"{"grant_type":"client_credentials"}"#),
            (
                "unsupported_grant_type",
                400,
                "Grant type must be 'agent_checksum'".into()
            )
        );
        assert_eq!(
            err(r#"{"agent_id":"|bad|","computed_checksum":1}"#),
            (
                "invalid_request",
                400,
                "Missing required parameter: grant_type".into()
            )
        );
        assert_eq!(
            err("{not json"),
            ("invalid_request", 400, "Invalid JSON format".into())
        );
        assert_eq!(
            err(&body(r#","agent_id":"dup""#)),
            ("invalid_request", 400, "Invalid JSON format".into())
        );
    }

    #[test]
    fn s4_5_6_invalid_request_descriptions() {
        let checksum_missing =
            body("").replace(&format!(r#""computed_checksum":"{CHECKSUM}","#), "");
        assert_eq!(
            err(&checksum_missing).2,
            "Missing required parameter: computed_checksum"
        );
        let bad = body("").replace(CHECKSUM, "sha256:a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1...");
        assert_eq!(err(&bad).2, INVALID_CHECKSUM_FORMAT);
        assert_eq!(
            err(&body(r#","workflow_enabled":true,"workflow_id":"w""#)).2,
            WORKFLOW_IDS_MISSING
        );
        assert_eq!(
            err(&body("").replace(r#"["repo:write","vulnerability:read"]"#, r#"["a b"]"#)),
            ("invalid_scope", 400, r#"Malformed scope: 'a b'"#.into())
        );
        assert_eq!(
            err(&body(r#","delegation_context":{"chain":["a|b"]}"#)).2,
            "Invalid parameter: delegation_context.chain"
        );
    }

    #[test]
    fn s4_2_1_defaults_dedupe_and_urn() {
        let b = body("").replace("\"agent_checksum\"", &format!("\"{GRANT_TYPE_URN}\""));
        let b = b.replace(r#"["repo:write","vulnerability:read"]"#, r#"["a","b","a"]"#);
        let r = decode_token_request(b.as_bytes()).unwrap();
        assert_eq!(r.grant_type, GRANT_TYPE_URN);
        assert_eq!(r.requested_scopes, ["a", "b"]);
        assert!(!r.workflow_enabled);
        assert_eq!(r.delegation_context, DelegationContext::default());
        assert_eq!(r.parent_token, None);
    }

    #[test]
    fn s4_4_1_and_s4_5_1_response_round_trips() {
        let draft_4_4_1 = r#"{"access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6...",
            "token_type": "Bearer", "expires_in": 300, "scope": "repo:write vulnerability:read"}"#;
        let r: TokenResponse = serde_json::from_str(draft_4_4_1).unwrap();
        assert_eq!((r.token_type.as_str(), r.expires_in), ("Bearer", Some(300)));
        let again: TokenResponse =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);

        let draft_4_5_1 = r#"{"error": "agent_checksum_mismatch",
            "error_description": "Agent checksum mismatch - code integrity violation",
            "error_uri": "https://idp.example.com/docs/errors#checksum_mismatch"}"#;
        let e: crate::ErrorResponse = serde_json::from_str(draft_4_5_1).unwrap();
        assert_eq!(
            e.error_uri.as_deref(),
            Some("https://idp.example.com/docs/errors#checksum_mismatch")
        );
        let ours = OAuthError::AgentChecksumMismatch.to_response();
        assert_eq!(
            (ours.error, ours.error_description),
            (e.error.clone(), e.error_description.clone())
        );
        let again: crate::ErrorResponse =
            serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn s5_4_3_registration_response_uses_prefixed_checksum() {
        use crate::registration::AgentRegistrationResponse;
        let hex = "a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1a8e7d3c2b5f4e9a7c3d8f2b6e1a9c4f7";
        // The draft's §5.4.3 example uses bare hex; the wire form is prefixed (I-4).
        let bare = format!(
            r#"{{"agent_id":"a","registration_id":"reg_a_1","checksum":"{hex}","version":1}}"#
        );
        assert!(serde_json::from_str::<AgentRegistrationResponse>(&bare).is_err());
        let prefixed = bare.replace(hex, &format!("sha256:{hex}"));
        let r: AgentRegistrationResponse = serde_json::from_str(&prefixed).unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::from_str::<serde_json::Value>(&prefixed).unwrap()
        );
    }

    #[test]
    fn rfc6749_5_2_token_endpoint_grants_and_peeking() {
        assert_eq!(
            token_endpoint_grant("client_credentials"),
            Ok(TokenEndpointGrant::ClientCredentials)
        );
        assert_eq!(
            token_endpoint_grant(GRANT_TYPE_URN),
            Ok(TokenEndpointGrant::AgentChecksum)
        );
        for g in ["password", "refresh_token", "Agent_Checksum", ""] {
            assert_eq!(
                token_endpoint_grant(g),
                Err(OAuthError::UnsupportedTokenEndpointGrant)
            );
        }
        assert_eq!(
            peek_grant_type(b"grant_type=password&x=1", true).as_deref(),
            Some("password")
        );
        assert_eq!(peek_grant_type(b"grant_type=a&grant_type=b", true), None);
        assert_eq!(peek_grant_type(b"grant_type=", true), None);
        assert_eq!(
            peek_grant_type(br#"{"grant_type":"password"}"#, false).as_deref(),
            Some("password")
        );
        for body in [
            &b"{not json"[..],
            br#"{"grant_type":1}"#,
            br#"[]"#,
            br#"{"grant_type":"a","grant_type":"b"}"#,
        ] {
            assert_eq!(peek_grant_type(body, false), None);
        }
    }

    #[test]
    fn s5_3_2_bare_hex_checksum_only_with_the_option() {
        let bare = body("").replace("sha256:", "");
        assert_eq!(err(&bare).2, INVALID_CHECKSUM_FORMAT);
        let lenient = DecodeOptions {
            accept_bare_checksum: true,
        };
        let r = decode_token_request_with(bare.as_bytes(), &lenient).unwrap();
        assert_eq!(r.computed_checksum.to_string(), CHECKSUM);
        let upper = body("").replace("sha256:986dd6b0fe", "986DD6B0FE");
        assert!(decode_token_request_with(upper.as_bytes(), &lenient).is_err());
    }

    #[test]
    fn rfc6749_form_encoded_request_follows_the_same_rules() {
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Aagent_checksum&agent_id=patch-planner\
             &computed_checksum={}&requested_scopes=repo%3Aread+repo%3Awrite&audience=https%3A%2F%2Fapi.github.com\
             &workflow_enabled=true&workflow_id=w&workflow_step=step_2\
             &delegation_context=%7B%22chain%22%3A%5B%22supervisor-agent%22%5D%7D",
            CHECKSUM.replace(':', "%3A")
        );
        let r = decode_token_request_form(form.as_bytes()).unwrap();
        assert_eq!(r.requested_scopes, ["repo:read", "repo:write"]);
        assert_eq!(r.delegation_context.chain, ["supervisor-agent"]);
        assert!(r.workflow_enabled);
        assert_eq!(
            decode_token_request_form(b"grant_type=password&agent_id=a").unwrap_err(),
            OAuthError::UnsupportedGrantType
        );
        assert_eq!(
            decode_token_request_form(b"grant_type=agent_checksum&grant_type=agent_checksum")
                .unwrap_err()
                .description(),
            "Duplicate parameter: grant_type"
        );
        assert_eq!(
            decode_token_request_form(b"grant_type=agent_checksum&agent_id=a")
                .unwrap_err()
                .description(),
            "Missing required parameter: computed_checksum"
        );
    }
}
