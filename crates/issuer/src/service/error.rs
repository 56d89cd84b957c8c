//! [`ApiError`]: every error of the HTTP API with its status, body and challenge.

use ajwt_protocol::error::OAuthError;
use ajwt_protocol::ErrorResponse;

use crate::store::StoreError;

/// An error of the HTTP API with its exact status, code and challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A protocol error of §4.5 (status from the code).
    #[error("{0}")]
    OAuth(OAuthError),
    /// 401 `invalid_token` (RFC 6750 §3.1): missing, malformed, expired or foreign bearer token.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// 403 `insufficient_scope` (RFC 6750 §3.1).
    #[error("insufficient_scope: {scope}")]
    InsufficientScope {
        /// The scope the endpoint requires.
        scope: String,
    },
    /// 401 `invalid_client` (RFC 6749 §5.2).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// 415 `invalid_request`: a content type the endpoint does not accept.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 413 `invalid_request`: body over the configured limit.
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 404 `invalid_request`.
    #[error("not found")]
    NotFound,
    /// 405 `invalid_request`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503 `temporarily_unavailable` (RFC 6749 §5.2): the store is unreachable.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// 500 `server_error`; the detail is logged, never sent.
    #[error("server error: {0}")]
    Internal(String),
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DuplicateChecksum { existing_agent_id } => {
                ApiError::OAuth(OAuthError::DuplicateAgent { existing_agent_id })
            }
            StoreError::WorkflowExists(id) => ApiError::OAuth(OAuthError::InvalidRequest(format!(
                "Workflow '{id}' already exists (workflows are immutable: register a new workflow_id)"
            ))),
            StoreError::ClientExists(id) => {
                ApiError::OAuth(OAuthError::InvalidRequest(format!("Client '{id}' already exists")))
            }
            StoreError::Backend(m) => ApiError::Unavailable(m),
        }
    }
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::OAuth(e) => e.status(),
            ApiError::InvalidToken(_) | ApiError::InvalidClient(_) => 401,
            ApiError::InsufficientScope { .. } => 403,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The RFC 6749 §5.2 / RFC 6750 §3.1 body.
    pub fn body(&self) -> ErrorResponse {
        let plain = |error: &str, description: String| ErrorResponse {
            error: error.to_owned(),
            error_description: Some(ajwt_protocol::error::rfc6749_description(&description)),
            error_uri: None,
            missing_steps: None,
            existing_agent_id: None,
        };
        match self {
            ApiError::OAuth(e) => e.to_response(),
            ApiError::InvalidToken(d) => plain("invalid_token", d.clone()),
            ApiError::InsufficientScope { scope } => plain(
                "insufficient_scope",
                format!("The access token does not carry the scope '{scope}'"),
            ),
            ApiError::InvalidClient(d) => plain("invalid_client", d.clone()),
            ApiError::UnsupportedMediaType(d) => plain("invalid_request", d.clone()),
            ApiError::PayloadTooLarge(n) => plain(
                "invalid_request",
                format!("Request body larger than {n} bytes"),
            ),
            ApiError::NotFound => plain("invalid_request", "No such endpoint".into()),
            ApiError::MethodNotAllowed => plain(
                "invalid_request",
                "Method not allowed on this endpoint".into(),
            ),
            ApiError::Unavailable(_) => plain(
                "temporarily_unavailable",
                "The authorization server store is unavailable; retry later".into(),
            ),
            ApiError::Internal(_) => plain("server_error", "Internal error".into()),
        }
    }

    /// The `WWW-Authenticate` challenge, when the error has one (RFC 6750 §3,
    /// RFC 6749 §5.2 for `invalid_client`).
    pub fn www_authenticate(&self) -> Option<String> {
        let quote = |s: &str| ajwt_protocol::error::rfc6749_description(s).replace('\'', "");
        match self {
            ApiError::InvalidToken(d) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quote(d)
            )),
            ApiError::InsufficientScope { scope } => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                quote(scope)
            )),
            ApiError::InvalidClient(_) => Some("Basic realm=\"ajwt\"".to_owned()),
            // §4.5.3 and §4.5.4 are 401s, and RFC 9110 §11.6.1 requires a
            // challenge on every 401: name the grant's own credential.
            ApiError::OAuth(e) if e.status() == 401 => {
                Some(format!("AgentChecksum error=\"{}\"", e.code()))
            }
            _ => None,
        }
    }
}
