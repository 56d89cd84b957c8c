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
    /// 408 `invalid_request`: the body did not arrive within the
    /// configured `body_read_timeout` (I-67).
    #[error("request body not received within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// 404 `invalid_request`.
    #[error("not found")]
    NotFound,
    /// 405 `invalid_request`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503 `temporarily_unavailable` with `Retry-After` (RFC 6749 §5.2, RFC
    /// 9110 §10.2.3): too much expensive work is already in progress.
    #[error("busy, retry after {retry_after_secs} s")]
    Busy {
        /// Seconds the client should wait.
        retry_after_secs: u64,
    },
    /// 429 `temporarily_unavailable` with `Retry-After` (RFC 6585 §4): a rate
    /// limit refused the request (I-73).
    #[error("rate limit {limit}: retry after {retry_after_secs} s")]
    RateLimited {
        /// The limit's configuration name.
        limit: &'static str,
        /// Seconds until the limit lets a request through.
        retry_after_secs: u64,
    },
    /// 503 `temporarily_unavailable` (RFC 6749 §5.2): the store is unreachable.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// 500 `server_error`; the detail is logged, never sent.
    #[error("server error: {0}")]
    Internal(String),
    /// 400 with an RFC 6749 §5.2 / RFC 7009 §2.2.1 code not covered above:
    /// `unsupported_token_type` (a token this server cannot revoke) or
    /// `unauthorized_client` (a token issued to another client, I-81).
    #[error("{error}: {description}")]
    Refused {
        /// The `error` code.
        error: &'static str,
        /// The `error_description`.
        description: String,
    },
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
            // I-69: re-registering a revoked agent needs the admin scope.
            StoreError::AgentRevoked { .. } => ApiError::InsufficientScope {
                scope: crate::service::SCOPE_ADMIN.to_owned(),
            },
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
            ApiError::RequestTimeout(_) => 408,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => 503,
            ApiError::RateLimited { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::Refused { .. } => 400,
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
            ApiError::RequestTimeout(d) => plain(
                "invalid_request",
                format!("Request body not received within {} ms", d.as_millis()),
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
            ApiError::Busy { .. } => plain(
                "temporarily_unavailable",
                "Too many requests in progress; retry later".into(),
            ),
            ApiError::RateLimited {
                limit,
                retry_after_secs,
            } => plain(
                "temporarily_unavailable",
                format!("Rate limit {limit} reached; retry after {retry_after_secs} s"),
            ),
            ApiError::Internal(_) => plain("server_error", "Internal error".into()),
            ApiError::Refused { error, description } => plain(error, description.clone()),
        }
    }

    /// Seconds for a `Retry-After` header, when the error has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Busy { retry_after_secs }
            | ApiError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge, when the error has one (RFC 6750 §3,
    /// RFC 6749 §5.2 for `invalid_client`).
    pub fn www_authenticate(&self) -> Option<String> {
        use ajwt_protocol::challenge::Challenge;
        // The text keeps to the RFC 6750 §3 set (and without `'`); the one
        // challenge builder does the quoting (RFC 9110 §11.2).
        let text = |s: &str| ajwt_protocol::error::rfc6749_description(s).replace('\'', "");
        let challenge = match self {
            ApiError::InvalidToken(d) => Challenge::bearer()
                .error("invalid_token")
                .error_description(text(d)),
            ApiError::InsufficientScope { scope } => Challenge::bearer()
                .error("insufficient_scope")
                .scope([text(scope)]),
            ApiError::InvalidClient(_) => Challenge::new("Basic").realm("ajwt"),
            // §4.5.3 and §4.5.4 are 401s, and RFC 9110 §11.6.1 requires a
            // challenge on every 401: name the grant's own credential.
            ApiError::OAuth(e) if e.status() == 401 => {
                Challenge::new("AgentChecksum").error(e.code())
            }
            _ => return None,
        };
        Some(challenge.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ajwt_protocol::challenge;

    #[test]
    fn rfc6750_s3_issuer_challenges_parse_back_with_their_parameters() {
        let e = ApiError::InvalidToken("Token audience is not 'x' (§4.2.3) \"q\" \\".into());
        let header = e.www_authenticate().unwrap();
        // Same text as before the move to the one challenge builder.
        assert_eq!(
            header,
            "Bearer error=\"invalid_token\", error_description=\"Token audience is not x (Section 4.2.3) q ?\""
        );
        let parsed = challenge::parse(&header).unwrap();
        assert_eq!(parsed[0].error_code(), Some("invalid_token"));
        let e = ApiError::InsufficientScope {
            scope: "admin:intent".into(),
        };
        assert_eq!(
            e.www_authenticate().unwrap(),
            "Bearer error=\"insufficient_scope\", scope=\"admin:intent\""
        );
        assert_eq!(
            ApiError::InvalidClient("x".into())
                .www_authenticate()
                .unwrap(),
            "Basic realm=\"ajwt\""
        );
        assert_eq!(ApiError::Internal("x".into()).www_authenticate(), None);
    }
}
