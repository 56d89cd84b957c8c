//! The issuance pipeline, independent of HTTP: client credentials (RFC 6749
//! §4.4, RFC 9068), the `agent_checksum` grant in the order of §4.3.1, agent
//! registration (§5.4, §6.2), workflow registration (§6.3), and the operator
//! hooks: agent revocation (§5.6.1 REVOKED) and signing-key rotation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use ajwt_checksum::compute;
use ajwt_protocol::claims::validate_claims;
use ajwt_protocol::delegation::{AgentStatus, DelegationPolicy};
use ajwt_protocol::error::OAuthError;
use ajwt_protocol::grant::{decide, GrantInputs, GrantPolicy, RegisteredAgent};
use ajwt_protocol::registration::{
    decode_agent_registration, decode_workflow_registration, AgentRegistrationResponse,
    WorkflowRegistrationResponse,
};
use ajwt_protocol::scope::{is_scope_token, join_scopes, parse_scope_string};
use ajwt_protocol::wire::{TokenRequest, TokenResponse};
use ajwt_protocol::ErrorResponse;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Map, Value};

use crate::config::IssuerConfig;
use crate::keys::{parse_agent_public_key, KeyRing};
use crate::secrets;
use crate::store::cache::CachedStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ClientRecord, NewRegistration, Store, StoreError};

/// Scope that allows registering agents and workflows (§9.1.3).
pub const SCOPE_REGISTER: &str = "register:intent";
/// Scope that allows requesting intent tokens (§4.2.3).
pub const SCOPE_GENERATE: &str = "generate:intent-token";
/// Scope of the operator hooks: revoking an agent (§5.6.1 REVOKED) and
/// rotating the signing keys (`/intent/admin/*`).
pub const SCOPE_ADMIN: &str = "admin:intent";
/// `typ` of client access tokens (RFC 9068 §2.1).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";
/// `typ` of intent tokens.
pub const TYP_INTENT_TOKEN: &str = "JWT";
/// File written on first start with the bootstrap admin credentials.
pub const ADMIN_CLIENT_FILE: &str = "admin-client.json";

/// Seconds since the Unix epoch; replaceable in tests.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

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

/// The bootstrap admin client written to `<data-dir>/admin-client.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientCredentials {
    /// Client id.
    pub client_id: String,
    /// Client secret (shown once; stored only as an Argon2id hash).
    pub client_secret: String,
}

/// A verified client access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The client.
    pub client_id: String,
    /// Its granted scopes.
    pub scopes: Vec<String>,
}

/// Failure to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// Data directory problems.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Store failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Key failure.
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
}

/// The authorization server.
pub struct Issuer {
    config: IssuerConfig,
    store: Arc<dyn Store>,
    /// The current key ring; replaced as a whole by [`Issuer::rotate_keys`].
    keys: RwLock<Arc<KeyRing>>,
    /// Serializes key rotations (each builds on the ring it replaces).
    rotation: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// DPoP proof `jti`s seen at the token endpoint (RFC 9449 §11.1).
    dpop_replay: crate::dpop::ReplayCache,
}

/// Response of `POST /intent/admin/revoke-agent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevokeAgentResponse {
    /// The revoked agent.
    pub agent_id: String,
    /// Always `true`.
    pub revoked: bool,
    /// How many registrations the agent has, all now revoked.
    pub registrations: u64,
}

/// Response of `POST /intent/admin/rotate-keys`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotateKeysResponse {
    /// `kid` of the new signing key.
    pub kid: String,
    /// `kid` of the key that signed until now (still in the JWK Set).
    pub previous_kid: String,
    /// Algorithm of the new key.
    pub alg: String,
}

/// Reads an operator-hook body: a JSON object (strict parser: duplicate
/// members refused); `empty_ok` also accepts an empty body as `{}`.
fn admin_object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    let invalid = || ApiError::from(OAuthError::InvalidRequest("Invalid JSON format".into()));
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match ajwt_checksum::json::parse_strict(body)
        .map_err(|_| invalid())?
        .to_serde_json()
    {
        Value::Object(map) => Ok(map),
        _ => Err(invalid()),
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn data_dir_error(path: &Path, reason: impl ToString) -> StartupError {
    StartupError::DataDir {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `bytes` to `path` with mode 0600 (created atomically via a temp file).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Issuer {
    /// An issuer over explicit parts (tests, embedding). The store is
    /// wrapped in [`crate::store::audit::AuditedStore`] (§9.1.4 audit trail).
    pub fn new(
        config: IssuerConfig,
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Issuer {
        Issuer {
            config,
            // §9.1.4: every registry access is logged on target `audit`.
            store: Arc::new(crate::store::audit::AuditedStore::new(store)),
            keys: RwLock::new(keys),
            rotation: tokio::sync::Mutex::new(()),
            clock,
            dpop_replay: crate::dpop::ReplayCache::default(),
        }
    }

    /// Opens the data directory: creates it (0700) if needed, opens the SQLite
    /// store (`ajwt.sqlite3`, migrations on first start) behind the agent
    /// cache, loads or generates the signing keys, and on an empty store
    /// creates the admin client and writes `admin-client.json` (0600).
    /// Returns the path of that file when it was just created.
    pub async fn open(config: IssuerConfig) -> Result<(Issuer, Option<PathBuf>), StartupError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_error(&dir, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| data_dir_error(&dir, e))?;
        }
        let store = SqliteStore::open(&dir.join("ajwt.sqlite3")).await?;
        let keys = KeyRing::load_or_generate(&dir, config.signing_alg)?;
        let issuer = Issuer::new(
            config,
            Arc::new(CachedStore::new(store)),
            Arc::new(keys),
            Arc::new(SystemClock),
        );
        let mut created = None;
        if issuer.store.client_count().await? == 0 {
            let creds = issuer
                .create_client(
                    vec![
                        SCOPE_REGISTER.to_owned(),
                        SCOPE_GENERATE.to_owned(),
                        SCOPE_ADMIN.to_owned(),
                    ],
                    Some("bootstrap admin client".to_owned()),
                )
                .await
                .map_err(|e| data_dir_error(&dir, e))?;
            let path = dir.join(ADMIN_CLIENT_FILE);
            let json = serde_json::to_vec_pretty(&creds).map_err(|e| data_dir_error(&dir, e))?;
            write_private_file(&path, &json).map_err(|e| data_dir_error(&path, e))?;
            created = Some(path);
        }
        Ok((issuer, created))
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The store (for graceful shutdown and readiness).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current key ring (a snapshot: a later rotation does not change it).
    pub fn key_ring(&self) -> Arc<KeyRing> {
        // A ring is swapped whole, so a poisoned lock still holds a valid one.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The signing keys' JWK Set (RFC 7517).
    pub fn jwks(&self) -> Value {
        self.key_ring().jwks()
    }

    /// RFC 8414 authorization server metadata. Every URL is under the
    /// issuer identifier, path included (RFC 8414 §3.1, I-54).
    pub fn metadata(&self) -> Value {
        let base = self.config.issuer.trim_end_matches('/');
        let dpop_algs: Vec<&str> = ajwt_jose::Alg::ALL.iter().map(|a| a.as_str()).collect();
        json!({
            "issuer": self.config.issuer,
            "token_endpoint": self.config.token_endpoint(),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "grant_types_supported": [
                "client_credentials",
                "agent_checksum",
                ajwt_protocol::wire::GRANT_TYPE_URN,
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": [SCOPE_REGISTER, SCOPE_GENERATE, SCOPE_ADMIN],
            // RFC 8414 §2 makes this REQUIRED and Authlib refuses `[]`;
            // `none` (OAuth 2.0 Multiple Response Type Encoding Practices
            // §4) says no response type issues anything (I-56).
            "response_types_supported": ["none"],
            // RFC 9449 §5.1: proofs accepted at the token endpoint (I-55).
            "dpop_signing_alg_values_supported": dpop_algs,
            "agent_registration_endpoint": format!("{base}/intent/register/agent"),
            "workflow_registration_endpoint": format!("{base}/intent/register/workflow"),
            "client_registration_endpoint": format!("{base}/intent/register/client"),
            "ajwt_admin_revoke_agent_endpoint": format!("{base}/intent/admin/revoke-agent"),
            "ajwt_admin_rotate_keys_endpoint": format!("{base}/intent/admin/rotate-keys"),
            "intent_token_signing_alg_values_supported": [self.key_ring().current_alg().as_str()],
        })
    }

    /// Creates an OAuth client allowed `scopes`; returns its credentials (the
    /// secret is returned once and stored only as an Argon2id hash).
    pub async fn create_client(
        &self,
        scopes: Vec<String>,
        description: Option<String>,
    ) -> Result<ClientCredentials, ApiError> {
        if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(OAuthError::InvalidScope {
                description: format!("Malformed scope: '{bad}'"),
                refused: vec![bad.clone()],
            }
            .into());
        }
        let client_id = secrets::generate_client_id();
        let client_secret = secrets::generate_secret();
        let to_hash = client_secret.clone();
        // Argon2 is deliberately slow: keep it off the async workers.
        let secret_hash = tokio::task::spawn_blocking(move || secrets::hash_secret(&to_hash))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.store
            .insert_client(&ClientRecord {
                client_id: client_id.clone(),
                secret_hash,
                allowed_scopes: scopes,
                created_at_ms: self.clock.now() * 1000,
                description,
            })
            .await?;
        Ok(ClientCredentials {
            client_id,
            client_secret,
        })
    }

    /// The `client_credentials` grant (RFC 6749 §4.4): authenticates the
    /// client (`basic` from HTTP Basic, or `client_id`/`client_secret` in
    /// `params`, never both) and issues an RFC 9068 access token with the
    /// requested scopes (all the client's scopes when `scope` is absent).
    pub async fn client_credentials(
        &self,
        params: &[(String, String)],
        basic: Option<(String, String)>,
    ) -> Result<TokenResponse, ApiError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let posted = match (param("client_id"), param("client_secret")) {
            (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidClient(
                    "client_secret_post needs both client_id and client_secret".into(),
                ))
            }
        };
        let (client_id, secret) = match (basic, posted) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "Use only one client authentication method (RFC 6749 §2.3)".into(),
                )
                .into())
            }
            (Some(b), None) | (None, Some(b)) => b,
            (None, None) => {
                return Err(ApiError::InvalidClient(
                    "Client authentication required".into(),
                ))
            }
        };
        let client = self.store.client(&client_id).await?;
        // Hash the secret even for unknown clients so that timing does not
        // reveal which client ids exist.
        let phc = client
            .as_ref()
            .map_or_else(|| dummy_phc().to_owned(), |c| c.secret_hash.clone());
        let ok = tokio::task::spawn_blocking(move || secrets::verify_secret(&secret, &phc))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let Some(client) = client.filter(|_| ok) else {
            return Err(ApiError::InvalidClient(
                "Client authentication failed".into(),
            ));
        };
        let granted = match param("scope") {
            None => client.allowed_scopes.clone(),
            Some(s) => {
                let requested = parse_scope_string(s).ok_or_else(|| {
                    ApiError::from(OAuthError::InvalidScope {
                        description: format!("Malformed scope: '{s}'"),
                        refused: vec![s.to_owned()],
                    })
                })?;
                let refused: Vec<String> = requested
                    .iter()
                    .filter(|r| !client.allowed_scopes.contains(r))
                    .cloned()
                    .collect();
                if !refused.is_empty() {
                    return Err(OAuthError::InvalidScope {
                        description: format!(
                            "Scopes not allowed for this client: {}",
                            refused.join(" ")
                        ),
                        refused,
                    }
                    .into());
                }
                requested
            }
        };
        let now = self.clock.now();
        let lifetime = self.config.client_token_lifetime;
        let scope = join_scopes(&granted);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.config.issuer));
        claims.insert("sub".into(), json!(client.client_id));
        claims.insert("aud".into(), json!(self.config.client_audience));
        claims.insert("client_id".into(), json!(client.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + lifetime as i64));
        claims.insert("jti".into(), json!(random_b64(16)));
        claims.insert("scope".into(), json!(scope));
        let token = self
            .key_ring()
            .sign(TYP_ACCESS_TOKEN, &claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: Some(lifetime),
            scope: Some(scope),
        })
    }

    /// Checks an `Authorization` header value carrying a client access token
    /// of this issuer with the client-token audience and `required_scope`
    /// (§4.2.3, §9.1.3).
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        required_scope: &str,
    ) -> Result<ClientContext, ApiError> {
        let header = authorization
            .ok_or_else(|| ApiError::InvalidToken("Missing bearer token (RFC 6750)".into()))?;
        let token = match header.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => {
                return Err(ApiError::InvalidToken(
                    "Authorization must be 'Bearer <token>'".into(),
                ))
            }
        };
        let claims = self
            .key_ring()
            .verify(token, TYP_ACCESS_TOKEN)
            .map_err(|e| ApiError::InvalidToken(format!("Token rejected: {e}")))?;
        let now = self.clock.now();
        let str_claim = |k: &str| claims.get(k).and_then(Value::as_str);
        if str_claim("iss") != Some(self.config.issuer.as_str()) {
            return Err(ApiError::InvalidToken(
                "Token issued by another issuer".into(),
            ));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.config.client_audience,
            Some(Value::Array(a)) => a
                .iter()
                .any(|x| x.as_str() == Some(&self.config.client_audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(ApiError::InvalidToken(format!(
                "Token audience is not '{}' (§4.2.3)",
                self.config.client_audience
            )));
        }
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => {}
            Some(_) => return Err(ApiError::InvalidToken("Token expired".into())),
            None => return Err(ApiError::InvalidToken("Token has no exp".into())),
        }
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now + 60)
        {
            return Err(ApiError::InvalidToken("Token issued in the future".into()));
        }
        let client_id = str_claim("client_id")
            .ok_or_else(|| ApiError::InvalidToken("Token has no client_id".into()))?
            .to_owned();
        let scopes: Vec<String> = str_claim("scope")
            .and_then(parse_scope_string)
            .unwrap_or_default();
        if !scopes.iter().any(|s| s == required_scope) {
            return Err(ApiError::InsufficientScope {
                scope: required_scope.to_owned(),
            });
        }
        Ok(ClientContext { client_id, scopes })
    }

    /// Agent registration (§5.4.2, §5.4.4, §6.2.3): recompute the checksum,
    /// check the claimed one, parse the public key (§9.4.1), refuse duplicate
    /// checksums (`duplicate_agent`), store a new version.
    pub async fn register_agent(&self, body: &[u8]) -> Result<AgentRegistrationResponse, ApiError> {
        let req = decode_agent_registration(body)?;
        let computed = compute(&req.spec, req.checksum_profile)
            .map_err(|e| OAuthError::InvalidRequest(format!("Invalid agent specification: {e}")))?;
        if let Some(claimed) = req.checksum {
            if claimed != computed.checksum {
                return Err(OAuthError::InvalidRequest(format!(
                    "Claimed checksum does not match the specification: the server computed {} with profile '{}' (§6.2.3 step 4)",
                    computed.checksum, req.checksum_profile
                ))
                .into());
            }
        }
        let key_input = req
            .public_key
            .ok_or_else(|| OAuthError::missing("public_key"))?;
        let key = parse_agent_public_key(&key_input).map_err(|e| {
            OAuthError::InvalidRequest(format!("Invalid parameter: public_key: {e}"))
        })?;
        let spec_json = String::from_utf8_lossy(&computed.canonical).into_owned();
        let record = self
            .store
            .register_agent(NewRegistration {
                agent_id: req.spec.agent_id.clone(),
                checksum: computed.checksum,
                checksum_profile: req.checksum_profile,
                public_jwk: Some(key.jwk),
                jwk_thumbprint: Some(key.thumbprint),
                allowed_scopes: req.allowed_scopes,
                app_id: req.app_id,
                spec_json,
                registered_at_ms: self.clock.now() * 1000,
            })
            .await?;
        tracing::info!(
            agent_id = %record.agent_id,
            registration_id = %record.registration_id,
            version = record.version,
            "agent registered"
        );
        Ok(AgentRegistrationResponse {
            agent_id: record.agent_id,
            registration_id: record.registration_id,
            checksum: record.checksum,
            version: record.version,
        })
    }

    /// `POST /intent/admin/revoke-agent` (operator hook, §5.6.1 REVOKED):
    /// body `{"agent_id": "<id>"}` (other members ignored). Marks every
    /// registration of the agent revoked; from then on the agent is unknown
    /// at the token endpoint and refused in delegation chains (I-30).
    /// Idempotent. An unknown agent is `400 invalid_request`.
    pub async fn revoke_agent(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RevokeAgentResponse, ApiError> {
        let request = admin_object(body, false)?;
        let agent_id = match request.get("agent_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => {
                return Err(OAuthError::InvalidRequest("Invalid parameter: agent_id".into()).into())
            }
            None => return Err(OAuthError::missing("agent_id").into()),
        };
        let registrations = self.store.revoke_agent(&agent_id).await?;
        if registrations == 0 {
            return Err(OAuthError::InvalidRequest("Unknown agent_id".into()).into());
        }
        tracing::warn!(
            target: "security",
            event = "agent_revoked",
            agent_id = %agent_id,
            registrations,
            client_id = %by.client_id,
            "agent revoked by an administrator (§5.6.1): its token requests are refused from now on"
        );
        Ok(RevokeAgentResponse {
            agent_id,
            revoked: true,
            registrations,
        })
    }

    /// `POST /intent/admin/rotate-keys` (operator hook): body `{}` or empty
    /// (members ignored). Generates a signing key of the configured
    /// algorithm, stores it like the other keys (so it stays current after a
    /// restart) and makes it the current key; the previous keys stay in the
    /// JWK Set, so tokens signed before still verify.
    pub async fn rotate_keys(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RotateKeysResponse, ApiError> {
        admin_object(body, true)?;
        let _serial = self.rotation.lock().await;
        let current = self.key_ring();
        let previous_kid = current.current_kid().to_owned();
        let alg = self.config.signing_alg;
        let rotated = tokio::task::spawn_blocking(move || current.rotated(alg))
            .await
            .map_err(|e| ApiError::Internal(format!("key rotation task: {e}")))?
            .map_err(|e| ApiError::Internal(format!("key rotation: {e}")))?;
        let kid = rotated.current_kid().to_owned();
        let alg = rotated.current_alg();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rotated);
        tracing::warn!(
            target: "security",
            event = "signing_key_rotated",
            kid = %kid,
            previous_kid = %previous_kid,
            alg = %alg,
            client_id = %by.client_id,
            "signing key rotated by an administrator; the previous key still verifies"
        );
        Ok(RotateKeysResponse {
            kid,
            previous_kid,
            alg: alg.as_str().to_owned(),
        })
    }

    /// Workflow registration (§6.3): validated by the protocol crate; an
    /// existing id is refused (workflows are immutable).
    pub async fn register_workflow(
        &self,
        body: &[u8],
    ) -> Result<WorkflowRegistrationResponse, ApiError> {
        let workflow = decode_workflow_registration(body)?;
        self.store.insert_workflow(&workflow).await?;
        tracing::info!(workflow_id = %workflow.workflow_id, steps = workflow.steps.len(), "workflow registered");
        Ok(WorkflowRegistrationResponse {
            status: "registered".into(),
            workflow_id: workflow.workflow_id,
        })
    }

    /// Verifies the `DPoP` proof of a token request (RFC 9449 §4.3: `htm`
    /// POST, `htu` the token endpoint, `iat` window) and records its `jti`
    /// (I-55).
    pub fn verify_token_request_proof(
        &self,
        proof: &str,
    ) -> Result<ajwt_jose::VerifiedProof, ApiError> {
        Ok(crate::dpop::verify_token_request_proof(
            proof,
            &self.config.token_endpoint(),
            self.clock.now(),
            &self.dpop_replay,
        )?)
    }

    /// The `agent_checksum` grant after decoding: §4.3.1 steps 2–5, then
    /// delegation (§4.3.4), scope binding (A3) and token creation (§4.4).
    pub async fn intent_token(&self, req: TokenRequest) -> Result<TokenResponse, ApiError> {
        self.intent_token_with_proof(req, None).await
    }

    /// [`Issuer::intent_token`] for a request that carried a verified DPoP
    /// proof: its key must be the agent's registered key (RFC 9449 §5), and
    /// the response's `token_type` is then `DPoP` (I-55).
    pub async fn intent_token_with_proof(
        &self,
        req: TokenRequest,
        proof: Option<&ajwt_jose::VerifiedProof>,
    ) -> Result<TokenResponse, ApiError> {
        // Look up everything the request names (the decision is pure).
        let record = self
            .store
            .latest_registration(&req.agent_id)
            .await?
            .filter(|r| !r.revoked);
        let agent = match &record {
            Some(r) => Some(RegisteredAgent {
                registration_id: r.registration_id.clone(),
                checksum: r.checksum,
                allowed_scopes: r.allowed_scopes.clone(),
                public_jwk: r
                    .public_jwk
                    .clone()
                    .ok_or_else(|| ApiError::Internal("registration without public key".into()))?,
            }),
            None => None,
        };
        // Registry reads beyond the agent only once it is known and its
        // checksum matches (§4.3.1 order; nothing else is revealed before).
        let checksum_ok = agent
            .as_ref()
            .is_some_and(|a| a.checksum == req.computed_checksum);
        let mut workflow = None;
        let mut directory = std::collections::HashMap::new();
        let mut parent = None;
        if checksum_ok {
            if let (true, Some(wf_id)) = (req.workflow_enabled, &req.workflow_id) {
                workflow = self.store.workflow(wf_id).await?;
            }
            for id in req
                .delegation_context
                .chain
                .iter()
                .filter(|a| **a != req.agent_id)
            {
                let status = match self.store.latest_registration(id).await? {
                    Some(r) if r.revoked => AgentStatus::Revoked,
                    Some(_) => AgentStatus::Active,
                    None => AgentStatus::Unknown,
                };
                directory.insert(id.clone(), status);
            }
            if let Some(token) = &req.parent_token {
                // `verify` reads the payload strictly (duplicate claims refused).
                parent = Some(
                    self.key_ring()
                        .verify(token, TYP_INTENT_TOKEN)
                        .map_err(|e| e.to_string())
                        .and_then(|payload| {
                            validate_claims(&Value::Object(payload)).map_err(|e| e.to_string())
                        }),
                );
            }
        }
        let now = self.clock.now();
        let policy = GrantPolicy {
            delegation: DelegationPolicy {
                max_depth: self.config.max_delegation_depth,
                require_step_agents: false,
            },
            issuer: &self.config.issuer,
            now,
        };
        let inputs = GrantInputs {
            request: &req,
            agent: agent.as_ref(),
            workflow: workflow.as_ref(),
            directory: &directory,
            parent: parent.as_ref().map(|p| p.as_ref().map_err(Clone::clone)),
        };
        let grant = match decide(inputs, &policy) {
            Ok(g) => g,
            Err(OAuthError::AgentChecksumMismatch) => {
                tracing::warn!(
                    target: "security",
                    event = "agent_checksum_mismatch",
                    agent_id = %req.agent_id,
                    registration_id = %record.as_ref().map_or("", |r| r.registration_id.as_str()),
                    presented = %req.computed_checksum,
                    "agent checksum mismatch (§4.5.4): possible modification or impersonation"
                );
                return Err(OAuthError::AgentChecksumMismatch.into());
            }
            Err(e) => return Err(e.into()),
        };
        // RFC 9449 §5: a proof binds the token to its key, which must be the
        // registered key the token's cnf names.
        if let Some(proof) = proof {
            let registered = match record.as_ref().and_then(|r| r.jwk_thumbprint.clone()) {
                Some(t) => t,
                None => crate::keys::jwk_thumbprint(&grant.cnf_jwk)
                    .map_err(|e| ApiError::Internal(format!("registered key: {e}")))?,
            };
            crate::dpop::require_registered_key(proof, &registered)?;
        }
        // §4.4: the token, from the typed claims.
        let lifetime = self.config.intent_token_lifetime;
        let claims = grant.claims(&self.config.issuer, now, lifetime, random_b64(16));
        let claims = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ApiError::Internal("intent claims are not an object".into())),
        };
        let token = self
            .key_ring()
            .sign(TYP_INTENT_TOKEN, &claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let scope = grant.scope();
        tracing::info!(agent_id = %grant.agent_id, registration_id = %grant.registration_id, scope = %scope, dpop = proof.is_some(), "intent token issued");
        Ok(TokenResponse {
            access_token: token,
            // §4.4.1 `Bearer`; RFC 9449 §5 `DPoP` when the client proved
            // possession at this request (I-55).
            token_type: if proof.is_some() { "DPoP" } else { "Bearer" }.into(),
            expires_in: Some(lifetime),
            scope: Some(scope),
        })
    }
}

/// An Argon2id hash of a random secret nobody knows, computed once: verified
/// against when a client id is unknown, so both paths cost the same.
fn dummy_phc() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| secrets::hash_secret(&secrets::generate_secret()).unwrap_or_default())
}
