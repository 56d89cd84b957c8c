//! The shim's typed error (§4.5, RFC 6749 §5.2, RFC 6750 §3.1).

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
            },
            Err(_) => ClientError::Rejected {
                origin,
                status,
                error: format!("http_{status}"),
                description: None,
                missing_steps: Vec::new(),
                existing_agent_id: None,
            },
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

    /// The `missing_steps` of a refusal (empty otherwise).
    pub fn missing_steps(&self) -> &[String] {
        match self {
            ClientError::Rejected { missing_steps, .. } => missing_steps,
            _ => &[],
        }
    }
}
