//! The shim's typed error (§4.5, RFC 6749 §5.2, RFC 6750 §3.1).

use ajwt_protocol::challenge::Challenge;
use ajwt_protocol::ErrorResponse;

/// Which server refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The authorization server (token or registration endpoint).
    Issuer,
    /// A resource server (the API the agent calls).
    Resource,
}

/// Everything the shim can fail with. Server refusals keep the HTTP status,
/// the OAuth `error` code, `error_description` and, for
/// `workflow_step_unauthorized` (§4.5.5), `missing_steps`. Messages never
/// contain secrets or tokens.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A server answered with an error status.
    #[error("{origin:?} refused the request: HTTP {status} {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        /// Who refused.
        origin: Origin,
        /// HTTP status.
        status: u16,
        /// OAuth `error` code (`"http_<status>"` when the body had none).
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
        /// `missing_steps` of `workflow_step_unauthorized` (§4.5.5).
        missing_steps: Vec<String>,
        /// `existing_agent_id` of `duplicate_agent` (§5.4.2 step 3).
        existing_agent_id: Option<String>,
        /// The `WWW-Authenticate` challenges of a resource server's refusal
        /// (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1), parsed.
        challenges: Vec<Challenge>,
    },
    /// The server could not be reached (after the allowed retries).
    #[error("network error: {0}")]
    Network(String),
    /// Missing or malformed configuration (for example an unset variable).
    #[error("configuration error: {0}")]
    Config(String),
    /// The agent key could not be generated, read, written or used.
    #[error("agent key error: {0}")]
    Key(String),
    /// The agent specification could not be checksummed (§5.3).
    #[error("agent specification error: {0}")]
    Spec(String),
    /// RFC 8414 discovery failed: no metadata at either well-known URL, or
    /// metadata naming another issuer (§3.3).
    #[error("issuer discovery failed: {0}")]
    Discovery(String),
    /// A server answered 2xx with a body the shim could not read, or a
    /// request was not usable (for example a URL DPoP cannot bind).
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A refusal built from an RFC 6749 error body (or none).
    pub(crate) fn rejected(origin: Origin, status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(e) => ClientError::Rejected {
                origin,
                status,
                error: e.error,
                description: e.error_description,
                missing_steps: e.missing_steps.unwrap_or_default(),
                existing_agent_id: e.existing_agent_id,
                challenges: Vec::new(),
            },
            Err(_) => {
                // A JSON-RPC 2.0 error (MCP-style tool servers): its `data.error`
                // names the refusal, its `message` describes it.
                let rpc = serde_json::from_slice::<serde_json::Value>(body).ok();
                let rpc_error = rpc
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .filter(|e| e.is_object());
                let code = rpc_error
                    .and_then(|e| e.pointer("/data/error"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                let message = rpc_error
                    .and_then(|e| e.get("message"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                ClientError::Rejected {
                    origin,
                    status,
                    error: code.unwrap_or_else(|| format!("http_{status}")),
                    description: message,
                    missing_steps: Vec::new(),
                    existing_agent_id: None,
                    challenges: Vec::new(),
                }
            }
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The OAuth `error` code of a refusal (`agent_checksum_mismatch`,
    /// `workflow_step_unauthorized`, `invalid_token`, ...).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The `error_description` of a refusal.
    pub fn description(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { description, .. } => description.as_deref(),
            _ => None,
        }
    }

    /// The parsed `WWW-Authenticate` challenges of a refusal (empty otherwise).
    pub fn challenges(&self) -> &[Challenge] {
        match self {
            ClientError::Rejected { challenges, .. } => challenges,
            _ => &[],
        }
    }

    /// The DPoP algorithms the resource server accepts (`algs` of its
    /// `DPoP` challenge, RFC 9449 §7.1); empty when not given.
    pub fn dpop_algs(&self) -> Vec<&str> {
        ajwt_protocol::challenge::find(self.challenges(), ajwt_protocol::challenge::DPOP)
            .map(Challenge::algs_list)
            .unwrap_or_default()
    }

    /// The resource server's RFC 9728 metadata URL (`resource_metadata`, §5.1).
    pub fn resource_metadata(&self) -> Option<&str> {
        self.challenges()
            .iter()
            .find_map(Challenge::resource_metadata_url)
    }

    /// Whether the refusal asks for a (fresh) DPoP nonce (`use_dpop_nonce`,
    /// RFC 9449 §8–§9), from the body or the challenge.
    pub fn is_nonce_required(&self) -> bool {
        self.error_code() == Some("use_dpop_nonce")
            || self
                .challenges()
                .iter()
                .any(|c| c.error_code() == Some("use_dpop_nonce"))
    }

    /// The `missing_steps` of a refusal (empty otherwise).
    pub fn missing_steps(&self) -> &[String] {
        match self {
            ClientError::Rejected { missing_steps, .. } => missing_steps,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s2_refusals_from_oauth_and_json_rpc_bodies() {
        let oauth = ClientError::rejected(
            Origin::Issuer,
            403,
            br#"{"error":"workflow_step_unauthorized","error_description":"d","missing_steps":["s"]}"#,
        );
        assert_eq!(oauth.error_code(), Some("workflow_step_unauthorized"));
        assert_eq!(oauth.missing_steps(), ["s"]);
        let rpc = ClientError::rejected(
            Origin::Resource,
            403,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"step not allowed","data":{"error":"workflow_step_not_allowed"}}}"#,
        );
        assert_eq!(rpc.error_code(), Some("workflow_step_not_allowed"));
        assert_eq!(rpc.description(), Some("step not allowed"));
        let plain = ClientError::rejected(Origin::Resource, 502, b"bad gateway");
        assert_eq!(plain.error_code(), Some("http_502"));
    }
}
