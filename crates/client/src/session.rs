//! One agent's session: intent tokens per step and the DPoP HTTP wrapper
//! (§2 "Client Shim Library", §5.5.1, §9.2.2, RFC 9449).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ajwt_protocol::challenge::{self, Challenge};
use ajwt_protocol::wire::{Audience, TokenRequest, GRANT_TYPE};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
pub use reqwest::Method;
use serde_json::Value;

use crate::cache::{jwt_exp, unix_now, CacheKey, TokenCache};
use crate::error::{ClientError, Origin};
use crate::identity::AgentIdentity;
use crate::issuer::IssuerClient;
use crate::retry::{send_with_retry, RetryPolicy};
use crate::tracker::WorkflowTracker;

/// A successful resource-server response, fully read.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status (2xx or 3xx).
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Protocol(format!("response is not JSON: {e}")))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// An agent acting in a workflow against one audience: it obtains intent
/// tokens per step (recomputing the checksum each time, §5.5.1), caches
/// them ([`TokenCache`]), and calls resource servers with
/// `Authorization: DPoP <token>` and a fresh proof per request
/// ([`AgentSession::send`]).
pub struct AgentSession {
    identity: AgentIdentity,
    issuer: Arc<IssuerClient>,
    tracker: Mutex<WorkflowTracker>,
    audience: String,
    cache: TokenCache,
    retry: RetryPolicy,
    http: reqwest::Client,
    last_token: Mutex<Option<String>>,
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession")
            .field("identity", &self.identity)
            .field("tracker", &*lock(&self.tracker))
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl AgentSession {
    /// A session of `identity` in the workflow context `tracker`, for
    /// resource servers identified by `audience`.
    pub fn new(
        identity: AgentIdentity,
        issuer: Arc<IssuerClient>,
        tracker: WorkflowTracker,
        audience: impl Into<String>,
    ) -> Result<AgentSession, ClientError> {
        Ok(AgentSession {
            identity,
            issuer,
            tracker: Mutex::new(tracker),
            audience: audience.into(),
            cache: TokenCache::new(),
            retry: RetryPolicy::default(),
            http: crate::issuer::http_client()?,
            last_token: Mutex::new(None),
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// The same session using `cache` (which may be shared with others:
    /// entries are per agent, so no agent ever gets another's token).
    pub fn with_cache(mut self, cache: TokenCache) -> AgentSession {
        self.cache = cache;
        self
    }

    /// The same session with another retry policy for resource calls.
    pub fn with_retry(mut self, retry: RetryPolicy) -> AgentSession {
        self.retry = retry;
        self
    }

    /// The agent identity.
    pub fn identity(&self) -> &AgentIdentity {
        &self.identity
    }

    /// The token cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// A copy of the workflow context.
    pub fn tracker(&self) -> WorkflowTracker {
        lock(&self.tracker).clone()
    }

    /// Records `step` as completed in this session's context.
    pub fn complete_step(&self, step: &str) {
        lock(&self.tracker).complete(step);
    }

    /// The context for a child agent (§4.3.4): this session's chain plus
    /// this agent, its completed steps, and the intent token it obtained
    /// last as `parent_token`. Obtain the token of the step being delegated
    /// from, and record that step as completed, before calling this.
    pub fn delegate(&self) -> Result<WorkflowTracker, ClientError> {
        let token = lock(&self.last_token).clone().ok_or_else(|| {
            ClientError::Protocol("delegate() needs an intent token obtained first".into())
        })?;
        Ok(lock(&self.tracker).delegate(&self.identity.agent_id(), &token))
    }

    /// An intent token for `step` of the tracked workflow (or, with `None`,
    /// a token without workflow binding) with `scopes`, from the cache or
    /// from the issuer. The checksum is recomputed from the live
    /// specification every time (§5.5.1) and is part of the cache key, so a
    /// runtime modification is presented to the issuer, which refuses it
    /// (`agent_checksum_mismatch`, §4.5.4).
    pub async fn intent_token(
        &self,
        step: Option<&str>,
        scopes: &[&str],
    ) -> Result<String, ClientError> {
        let agent_id = self.identity.agent_id();
        let checksum = self.identity.checksum()?;
        let tracker = self.tracker();
        let key = CacheKey::new(
            &agent_id,
            &checksum.to_string(),
            step.map(|s| (tracker.workflow_id(), s)),
            &self.audience,
            scopes,
        )
        .with_context(tracker.chain(), tracker.completed_steps());
        let now = unix_now();
        if let Some(token) = self.cache.get(&key, now) {
            *lock(&self.last_token) = Some(token.clone());
            return Ok(token);
        }
        let request = TokenRequest {
            grant_type: GRANT_TYPE.to_owned(),
            agent_id: agent_id.clone(),
            computed_checksum: checksum,
            workflow_id: step.map(|_| tracker.workflow_id().to_owned()),
            workflow_step: step.map(str::to_owned),
            workflow_enabled: step.is_some(),
            requested_scopes: dedup(scopes),
            audience: Audience::One(self.audience.clone()),
            delegation_context: tracker.delegation_context(),
            parent_token: tracker.parent_token().map(str::to_owned),
        };
        let response = self.issuer.token(&request).await?;
        tracing::debug!(agent_id = %agent_id, step = ?step, "intent token obtained");
        let exp = response
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| now + s)
            .or_else(|| jwt_exp(&response.access_token));
        if let Some(exp) = exp {
            self.cache.insert(key, response.access_token.clone(), exp);
        }
        *lock(&self.last_token) = Some(response.access_token.clone());
        Ok(response.access_token)
    }

    /// Calls a resource server: gets (or reuses) the intent token for
    /// `step` and `scopes`, sends `Authorization: DPoP <token>` with a fresh
    /// DPoP proof (RFC 9449 §4.2: `htm`, `htu` without query and fragment,
    /// `ath`) and `body` as JSON. A `401 use_dpop_nonce` is retried once
    /// with the `DPoP-Nonce` given (RFC 9449 §9); network errors, `5xx` and
    /// `429` are retried per the [`RetryPolicy`] (honouring `Retry-After`);
    /// any other `4xx` is returned at once as [`ClientError::Rejected`] with
    /// the server's `error` and `error_description`.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        step: Option<&str>,
        scopes: &[&str],
    ) -> Result<ApiResponse, ClientError> {
        let token = self.intent_token(step, scopes).await?;
        self.send_with_token(method, url, body, &token).await
    }

    /// [`AgentSession::send`] with a given intent token (already obtained);
    /// the proof is made with this agent's key.
    pub async fn send_with_token(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        token: &str,
    ) -> Result<ApiResponse, ClientError> {
        let origin = reqwest::Url::parse(url)
            .map_err(|e| ClientError::Protocol(format!("invalid URL: {e}")))?
            .origin()
            .ascii_serialization();
        let payload = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut nonce_retried = false;
        loop {
            let nonce = lock(&self.nonces).get(&origin).cloned();
            let response = send_with_retry(&self.retry, || {
                let proof = self
                    .identity
                    .key()
                    .proof(
                        method.as_str(),
                        url,
                        Some(token),
                        nonce.as_deref(),
                        unix_now(),
                    )
                    .map_err(|e| ClientError::Protocol(format!("DPoP proof: {e}")))?;
                let mut request = self
                    .http
                    .request(method.clone(), url)
                    .header(AUTHORIZATION, format!("DPoP {token}"))
                    .header("DPoP", proof);
                if let Some(p) = &payload {
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(p.clone());
                }
                Ok(request)
            })
            .await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let new_nonce = headers
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(n) = &new_nonce {
                lock(&self.nonces).insert(origin.clone(), n.clone());
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| ClientError::Network(crate::retry::without_url(&e)))?
                .to_vec();
            if status < 400 {
                return Ok(ApiResponse {
                    status,
                    headers,
                    body,
                });
            }
            let error = resource_error(status, &headers, &body);
            if status == 401 && error.is_nonce_required() && new_nonce.is_some() && !nonce_retried {
                nonce_retried = true;
                tracing::debug!("resource server requires a DPoP nonce, retrying once");
                continue;
            }
            return Err(error);
        }
    }
}

fn dedup(scopes: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if !out.iter().any(|o| o == s) {
            out.push((*s).to_owned());
        }
    }
    out
}

/// A resource server's refusal: the JSON body when it has `error`, else the
/// `error` and `error_description` of the `WWW-Authenticate` challenge
/// (RFC 6750 §3, RFC 9449 §7.1), with every challenge parsed by
/// [`ajwt_protocol::challenge::parse`] (an unparsable header is ignored).
fn resource_error(status: u16, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let challenges: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| challenge::parse(v).ok())
        .flatten()
        .collect();
    let mut error = ClientError::rejected(Origin::Resource, status, body);
    if let ClientError::Rejected {
        error: code,
        description,
        challenges: slot,
        ..
    } = &mut error
    {
        if *code == format!("http_{status}") {
            if let Some(c) = challenges.iter().find(|c| c.error_code().is_some()) {
                *code = c.error_code().unwrap_or_default().to_owned();
                *description = c.get("error_description").map(str::to_owned);
            }
        }
        *slot = challenges;
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_are_read() {
        let c = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 Ed25519", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource""#;
        let mut h = HeaderMap::new();
        h.insert(WWW_AUTHENTICATE, c.parse().unwrap());
        let e = resource_error(401, &h, b"");
        assert_eq!(e.error_code(), Some("use_dpop_nonce"));
        assert_eq!(
            e.description(),
            Some("Resource server requires nonce in DPoP proof")
        );
        assert!(e.is_nonce_required());
        assert_eq!(e.dpop_algs(), ["ES256", "Ed25519"]);
        assert_eq!(
            e.resource_metadata(),
            Some("https://mcp.example/.well-known/oauth-protected-resource")
        );
        // Several challenges, the Bearer one first; quoted escapes.
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            r#"Bearer realm="a \"b\"", DPoP error="invalid_token", algs="EdDSA""#
                .parse()
                .unwrap(),
        );
        let e = resource_error(401, &h, b"");
        assert_eq!(e.error_code(), Some("invalid_token"));
        assert_eq!(e.challenges()[0].get("realm"), Some(r#"a "b""#));
        assert_eq!(e.dpop_algs(), ["EdDSA"]);
        assert!(!e.is_nonce_required());
        // The body wins over the challenge; garbage challenges are ignored.
        let mut h = HeaderMap::new();
        h.insert(WWW_AUTHENTICATE, "\"garbage".parse().unwrap());
        let e = resource_error(403, &h, br#"{"error":"insufficient_scope"}"#);
        assert_eq!(
            (e.status(), e.error_code()),
            (Some(403), Some("insufficient_scope"))
        );
        assert!(e.challenges().is_empty());
    }

    #[test]
    fn scopes_are_deduplicated_in_order() {
        assert_eq!(dedup(&["b", "a", "b"]), ["b", "a"]);
    }
}
