//! The issuer client: configuration, client credentials (RFC 6749 §4.4,
//! §4.2.3), the `agent_checksum` grant (§4.2) and the registration helper
//! for CI/CD pipelines (§5.4, §5.4.4 note, §6.3).

use std::time::Duration;

use ajwt_checksum::AgentChecksum;
use ajwt_protocol::registration::AgentRegistrationResponse;
use ajwt_protocol::wire::{TokenRequest, TokenResponse};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::cache::{jwt_exp, unix_now, REFRESH_MARGIN_SECS};
use crate::error::{ClientError, Origin};
use crate::identity::AgentIdentity;
use crate::retry::{send_with_retry, RetryPolicy};

/// Environment variable naming the issuer base URL.
pub const ENV_ISSUER: &str = "AJWT_ISSUER";
/// Environment variable holding the client id.
pub const ENV_CLIENT_ID: &str = "AJWT_CLIENT_ID";
/// Environment variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "AJWT_CLIENT_SECRET";

/// Where the issuer is and the OAuth client the agent runtime authenticates
/// as. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Issuer base URL, e.g. `http://127.0.0.1:8080` (no trailing slash needed).
    pub issuer: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl ClientConfig {
    /// A configuration from code.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// A configuration from `AJWT_ISSUER`, `AJWT_CLIENT_ID` and
    /// `AJWT_CLIENT_SECRET`; each must be set and non-empty.
    pub fn from_env() -> Result<ClientConfig, ClientError> {
        ClientConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] over any variable lookup.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ClientConfig, ClientError> {
        let get = |name: &str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ClientError::Config(format!("{name} is not set")))
        };
        Ok(ClientConfig::new(
            get(ENV_ISSUER)?,
            get(ENV_CLIENT_ID)?,
            get(ENV_CLIENT_SECRET)?,
        ))
    }
}

/// Outcome of [`IssuerClient::register_agent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRegistration {
    /// A new registration (version 1, or a new version for a changed
    /// specification, §5.4.4).
    Registered(AgentRegistrationResponse),
    /// The issuer already holds this agent with this checksum
    /// (`duplicate_agent` naming the same agent): nothing changed. The
    /// issuer refuses checksums of every version, so this is also the answer
    /// when an older version's specification is presented again.
    Unchanged {
        /// The agent.
        agent_id: String,
        /// Its checksum.
        checksum: AgentChecksum,
    },
}

/// Outcome of [`IssuerClient::register_workflow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowRegistration {
    /// Registered now.
    Registered(String),
    /// A workflow with this id already exists. Workflows are immutable
    /// (§6.3); the stored definition is not compared with this one.
    AlreadyExists(String),
}

struct ClientToken {
    token: String,
    exp: i64,
}

/// A client of the issuer's HTTP API. The client token is obtained with
/// `client_credentials` (HTTP Basic), cached and refreshed
/// [`REFRESH_MARGIN_SECS`] before it expires. Neither the secret nor any
/// token is ever logged.
pub struct IssuerClient {
    http: reqwest::Client,
    config: ClientConfig,
    retry: RetryPolicy,
    client_token: Mutex<Option<ClientToken>>,
    metadata: std::sync::OnceLock<IssuerMetadata>,
}

/// What the shim reads from the issuer's RFC 8414 metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerMetadata {
    /// `issuer`, equal to the configured issuer (RFC 8414 §3.3).
    pub issuer: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `jwks_uri`, when given.
    pub jwks_uri: Option<String>,
    /// The URL the document was read from.
    pub metadata_url: String,
}

/// The RFC 8414 metadata URLs of `issuer` in the order they are tried: the
/// well-known suffix inserted before the issuer's path (§3.1), then, for an
/// issuer with a path, appended to it (the form older deployments serve).
/// The one rule, `ajwt_protocol::metadata::authorization_server_metadata_urls`.
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, ClientError> {
    ajwt_protocol::metadata::authorization_server_metadata_urls(issuer).map_err(|why| {
        ClientError::Config(format!(
            "issuer {issuer:?} is not an http(s) URL without query or fragment (RFC 8414 §2): {why}"
        ))
    })
}

impl std::fmt::Debug for IssuerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerClient")
            .field("config", &self.config)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// An HTTP client with the shim's timeouts.
pub(crate) fn http_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))
}

impl IssuerClient {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<IssuerClient, ClientError> {
        Ok(IssuerClient {
            http: http_client()?,
            config,
            retry: RetryPolicy::default(),
            client_token: Mutex::new(None),
            metadata: std::sync::OnceLock::new(),
        })
    }

    /// A client configured from the environment ([`ClientConfig::from_env`]).
    pub fn from_env() -> Result<IssuerClient, ClientError> {
        IssuerClient::new(ClientConfig::from_env()?)
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> IssuerClient {
        self.retry = retry;
        self
    }

    /// The issuer base URL.
    pub fn issuer_url(&self) -> &str {
        &self.config.issuer
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer)
    }

    /// The token endpoint: the discovered `token_endpoint` after
    /// [`IssuerClient::discover`], else `<issuer>/intent/token`.
    fn token_url(&self) -> String {
        match self.metadata.get() {
            Some(m) => m.token_endpoint.clone(),
            None => self.url("/intent/token"),
        }
    }

    /// Reads the issuer's RFC 8414 metadata (I-50): the inserted well-known
    /// URL first, the appended one as fallback ([`metadata_urls`]); the
    /// document's `issuer` must equal the configured issuer exactly (§3.3).
    /// Afterwards token requests go to the discovered `token_endpoint`.
    pub async fn discover(&self) -> Result<IssuerMetadata, ClientError> {
        if let Some(m) = self.metadata.get() {
            return Ok(m.clone());
        }
        let mut failures = Vec::new();
        for url in metadata_urls(&self.config.issuer)? {
            let response = match send_with_retry(&self.retry, || Ok(self.http.get(&url))).await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                failures.push(format!("{url}: HTTP {status}"));
                continue;
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| ClientError::Network(crate::retry::without_url(&e)))?;
            let meta: Value = serde_json::from_slice(&body)
                .map_err(|e| ClientError::Discovery(format!("{url}: not JSON: {e}")))?;
            let str_member = |name: &str| meta.get(name).and_then(Value::as_str).map(str::to_owned);
            let issuer = str_member("issuer");
            if issuer.as_deref() != Some(self.config.issuer.as_str()) {
                return Err(ClientError::Discovery(format!(
                    "{url}: metadata issuer {issuer:?} is not {:?} (RFC 8414 §3.3)",
                    self.config.issuer
                )));
            }
            let token_endpoint = str_member("token_endpoint")
                .ok_or_else(|| ClientError::Discovery(format!("{url}: no token_endpoint")))?;
            let m = IssuerMetadata {
                issuer: self.config.issuer.clone(),
                token_endpoint,
                jwks_uri: str_member("jwks_uri"),
                metadata_url: url,
            };
            let _ = self.metadata.set(m.clone());
            return Ok(m);
        }
        Err(ClientError::Discovery(failures.join("; ")))
    }

    /// A client token (RFC 9068) for this client with all its scopes, from
    /// the cache while it has more than [`REFRESH_MARGIN_SECS`] left.
    pub async fn client_token(&self) -> Result<String, ClientError> {
        let mut slot = self.client_token.lock().await;
        if let Some(t) = slot.as_ref() {
            if unix_now() < t.exp - REFRESH_MARGIN_SECS {
                return Ok(t.token.clone());
            }
        }
        let response = send_with_retry(&self.retry, || {
            Ok(self
                .http
                .post(self.token_url())
                .header(
                    reqwest::header::AUTHORIZATION,
                    basic_authorization(&self.config.client_id, &self.config.client_secret),
                )
                .form(&[("grant_type", "client_credentials")]))
        })
        .await?;
        let token: TokenResponse = read_success(response).await?;
        let exp = token
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| unix_now() + s)
            .or_else(|| jwt_exp(&token.access_token))
            .unwrap_or(0);
        tracing::debug!(client_id = %self.config.client_id, "client token obtained");
        *slot = Some(ClientToken {
            token: token.access_token.clone(),
            exp,
        });
        Ok(token.access_token)
    }

    /// Drops the cached client token (the next call obtains a new one).
    pub async fn forget_client_token(&self) {
        *self.client_token.lock().await = None;
    }

    /// POSTs JSON with the client token; a `401` (token revoked or expired
    /// early) gets one retry with a fresh client token.
    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut refreshed = false;
        loop {
            let bearer = self.client_token().await?;
            let response = send_with_retry(&self.retry, || {
                Ok(self
                    .http
                    .post(&url)
                    .bearer_auth(&bearer)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone()))
            })
            .await?;
            if response.status().as_u16() == 401 && !refreshed {
                refreshed = true;
                self.forget_client_token().await;
                continue;
            }
            return read_success(response).await;
        }
    }

    /// The `agent_checksum` grant (§4.2): an intent token, or the issuer's
    /// refusal as [`ClientError::Rejected`].
    pub async fn token(&self, request: &TokenRequest) -> Result<TokenResponse, ClientError> {
        self.post_json(self.token_url(), request).await
    }

    /// Registers `identity` (§5.4, §6.2.3) with its public key and, when
    /// given, the scopes it may ever hold. Idempotent: when the issuer
    /// already has this agent with this checksum (`duplicate_agent` naming
    /// it) the result is [`AgentRegistration::Unchanged`]; a changed
    /// specification is re-registered as a new version (§5.4.4). Needs a
    /// client allowed `register:intent`.
    pub async fn register_agent(
        &self,
        identity: &AgentIdentity,
        allowed_scopes: Option<&[String]>,
    ) -> Result<AgentRegistration, ClientError> {
        let body = identity.registration_body(allowed_scopes)?;
        let agent_id = identity.agent_id();
        match self
            .post_json::<AgentRegistrationResponse>(self.url("/intent/register/agent"), &body)
            .await
        {
            Ok(r) => {
                tracing::info!(agent_id = %r.agent_id, version = r.version, "agent registered");
                Ok(AgentRegistration::Registered(r))
            }
            Err(ClientError::Rejected {
                error,
                existing_agent_id: Some(existing),
                ..
            }) if error == "duplicate_agent" && existing == agent_id => {
                tracing::info!(agent_id = %agent_id, "agent already registered, unchanged");
                Ok(AgentRegistration::Unchanged {
                    agent_id,
                    checksum: identity.checksum()?,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Registers a workflow definition (§6.3.3 JSON). Idempotent: an
    /// existing id gives [`WorkflowRegistration::AlreadyExists`]. Needs a
    /// client allowed `register:intent`.
    pub async fn register_workflow(
        &self,
        workflow: &Value,
    ) -> Result<WorkflowRegistration, ClientError> {
        let id = workflow
            .get("workflow_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match self
            .post_json::<ajwt_protocol::registration::WorkflowRegistrationResponse>(
                self.url("/intent/register/workflow"),
                workflow,
            )
            .await
        {
            Ok(r) => Ok(WorkflowRegistration::Registered(r.workflow_id)),
            Err(ClientError::Rejected {
                error, description, ..
            }) if error == "invalid_request"
                && description
                    .as_deref()
                    .is_some_and(|d| d.contains("already exists")) =>
            {
                Ok(WorkflowRegistration::AlreadyExists(id))
            }
            Err(e) => Err(e),
        }
    }
}

/// A 2xx JSON body, or the issuer's refusal.
async fn read_success<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| ClientError::Network(crate::retry::without_url(&e)))?;
    if !(200..300).contains(&status) {
        return Err(ClientError::rejected(Origin::Issuer, status, &body));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Protocol(format!("unexpected issuer response: {e}")))
}

/// The `Authorization` value of `client_secret_basic` (RFC 6749 §2.3.1):
/// the client id and secret are each encoded with the
/// `application/x-www-form-urlencoded` algorithm (RFC 6749 Appendix B)
/// BEFORE they are joined by `:` and base64-encoded, so that a secret
/// holding `:`, `+`, `%` or non-ASCII characters reaches the server intact.
/// (reqwest's `basic_auth` skips the form encoding.)
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    use base64::Engine as _;
    // RFC 6749 Appendix B: the WHATWG `application/x-www-form-urlencoded`
    // byte serializer (space as `+`, `*-._` and alphanumerics kept).
    let form = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let joined = format!("{}:{}", form(client_id), form(client_secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_from_the_environment() {
        let vars = |name: &str| match name {
            ENV_ISSUER => Some("http://idp.example/".to_owned()),
            ENV_CLIENT_ID => Some("c1".to_owned()),
            ENV_CLIENT_SECRET => Some("s3cret".to_owned()),
            _ => None,
        };
        let c = ClientConfig::from_lookup(vars).unwrap();
        assert_eq!(c, ClientConfig::new("http://idp.example", "c1", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"), "secret redacted");
        let e = ClientConfig::from_lookup(|n| (n != ENV_CLIENT_SECRET).then(|| "x".to_owned()))
            .unwrap_err();
        assert_eq!(
            e,
            ClientError::Config("AJWT_CLIENT_SECRET is not set".into())
        );
    }
}
