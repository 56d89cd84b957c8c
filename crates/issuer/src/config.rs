//! Issuer configuration: defaults, the optional TOML file, validation.
//!
//! Precedence (highest first): command-line flag, `AJWT_*` environment
//! variable (both read by clap from [`FileConfig`]), TOML file (`--config`,
//! the same [`FileConfig`] read by serde), default. The three sources use the
//! same names (I-58).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::keys::SigningAlgorithm;

/// Longest intent-token lifetime accepted (§9.2.1: "SHOULD have short lifetimes").
pub const MAX_INTENT_TOKEN_LIFETIME: u64 = 3600;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(ConfigError::Invalid(format!(
                "log_format {other:?}: expected \"text\" or \"json\""
            ))),
        }
    }
}

/// Everything the issuer needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    /// Listen address (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// Data directory: SQLite store, signing keys, `admin-client.json`.
    pub data_dir: PathBuf,
    /// Issuer identifier, the `iss` of every token (default `http://<addr>`).
    pub issuer: String,
    /// `aud` of client access tokens, required at the token endpoint (§4.2.3, default `idp.localhost`).
    pub client_audience: String,
    /// Intent-token lifetime in seconds (§9.2.1, default 300, at most 3600).
    pub intent_token_lifetime: u64,
    /// Client access-token lifetime in seconds (default 3600).
    pub client_token_lifetime: u64,
    /// Algorithm of newly generated signing keys (default ES256).
    pub signing_alg: SigningAlgorithm,
    /// Longest delegation chain accepted, requester included (§9.3.2, default 8).
    pub max_delegation_depth: usize,
    /// Largest request body in bytes (§9.4.3, default 1 MiB).
    pub body_limit: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Accept a bare 64-lowercase-hex `computed_checksum` at the token
    /// endpoint (§5.3.2's form; a migration aid, I-57). Default false:
    /// §4.5.6 and §9.1.1 require `sha256:<hex>`.
    pub accept_bare_checksum: bool,
    /// Rate limits (§9.1.1, §9.1.4, §9.4.3; I-73).
    pub rate_limits: RateLimitConfig,
    /// Time a request head may take, from the connection's accept or the
    /// first byte of a later request (§9.4.3, I-67, default 10 s).
    pub header_read_timeout: Duration,
    /// Time a handler waits for the whole request body before answering
    /// 408 (§9.4.3, I-67, default 30 s).
    pub body_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request (I-67,
    /// default 60 s).
    pub idle_timeout: Duration,
    /// Open connections at most; when full, the oldest connection that is
    /// not inside a request is closed for a new one (I-67, default 512).
    pub max_connections: usize,
    /// Time in-flight requests get after a shutdown request before the
    /// remaining connections are dropped (I-67, default 10 s).
    pub shutdown_grace: Duration,
    /// `max-age` of `Cache-Control` on the JWK Set, seconds (I-90, default 300).
    pub jwks_max_age: u64,
    /// Seconds between publishing a new signing key and signing with it, at
    /// least `jwks_max_age` (I-90, default: `jwks_max_age`).
    pub key_publish_delay: u64,
    /// Automatic rotation: a new key starts signing this many seconds after
    /// the current one did; 0 turns it off (I-90, default 0).
    pub key_rotation_interval: u64,
    /// Seconds added to the longest token lifetime before a replaced key
    /// leaves the JWK Set (verifiers' clock leeway, I-90, default 60).
    pub key_retire_leeway: u64,
    /// Token records and status lists (issue 13, I-83, I-84).
    pub tokens: TokenRecordConfig,
    /// How often `serve` signs the audit chain's head with the issuer key
    /// when it moved, and once more at a graceful shutdown (I-104, default
    /// 300 s); `None`: no checkpoints.
    pub audit_checkpoint_interval: Option<Duration>,
    /// The store (issue 14): `None` for the embedded SQLite file in the
    /// data directory, or a `postgres://` URL shared by replicas.
    pub database_url: Option<DatabaseUrl>,
    /// The key-encryption key file (§9.1.4 encryption at rest, I-112);
    /// `None`: `<data_dir>/kek.key`, created (0600) on first start.
    pub kek_file: Option<PathBuf>,
    /// Serve Prometheus metrics at `GET /metrics` on the main listener
    /// (I-114, default true; firewall it or turn it off where the API is
    /// public: it shows registry sizes and error rates).
    pub metrics: bool,
}

/// A database URL; its `Debug` and `Display` hide the password, so the
/// configuration can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }
    /// The URL itself, password included (for the driver only).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                // Cannot fail for a URL that already has a password.
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(u) => u.to_string(),
            Err(_) => "(unparsable database URL)".to_owned(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Token records and Token Status Lists (draft-ietf-oauth-status-list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRecordConfig {
    /// Statuses per status list; a full list rolls over to a new one
    /// (default 65536: 8 KiB uncompressed; a multiple of 8 between 8 and
    /// 8 × `ajwt_protocol::limits::MAX_STATUS_LIST_BYTES`).
    pub status_list_size: u32,
    /// `ttl` of status list tokens and their `Cache-Control: max-age`, in
    /// seconds: the longest a resource server may keep accepting a revoked
    /// token (default 60, 1..=3600).
    pub status_list_ttl: u64,
    /// Seconds a token record is kept after its `exp` (clock skew of
    /// resource servers; default 300, at most 86400).
    pub record_leeway: u64,
}

impl Default for TokenRecordConfig {
    fn default() -> Self {
        TokenRecordConfig {
            status_list_size: 65_536,
            status_list_ttl: 60,
            record_leeway: 300,
        }
    }
}

/// Rate limits, each "so many per minute" (burst as many); 0 turns one off
/// (see [`crate::rate_limit`], I-73).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `agent_checksum` token requests per client (default 1200).
    pub client: u32,
    /// `agent_checksum` token requests per agent (default 600).
    pub agent: u32,
    /// `unknown_agent` / `agent_checksum_mismatch` refusals per client and per agent (default 60).
    pub grant_failures: u32,
    /// Failed client authentications per peer address and per client (default 30).
    pub auth_failures: u32,
    /// Registrations (agent, workflow, client) per client (default 300).
    pub registrations: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            client: 1200,
            agent: 600,
            grant_failures: 60,
            auth_failures: 30,
            registrations: 300,
        }
    }
}

impl Default for IssuerConfig {
    fn default() -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        IssuerConfig {
            addr,
            data_dir: PathBuf::from("./ajwt-data"),
            issuer: format!("http://{addr}"),
            client_audience: "idp.localhost".to_owned(),
            intent_token_lifetime: 300,
            client_token_lifetime: 3600,
            signing_alg: SigningAlgorithm::Es256,
            max_delegation_depth: 8,
            body_limit: 1024 * 1024,
            log_format: LogFormat::Text,
            accept_bare_checksum: false,
            rate_limits: RateLimitConfig::default(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
            jwks_max_age: 300,
            key_publish_delay: 300,
            key_rotation_interval: 0,
            key_retire_leeway: 60,
            tokens: TokenRecordConfig::default(),
            audit_checkpoint_interval: Some(Duration::from_secs(300)),
            database_url: None,
            kek_file: None,
            metrics: true,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The settings of `ajwt serve`, one struct for all three sources with the
/// same names (I-58): the flag `--token-lifetime`, the environment variable
/// `AJWT_TOKEN_LIFETIME` and the TOML key `token_lifetime`. Every member is
/// optional; [`FileConfig::resolve`] layers flags/environment over the file
/// over the defaults. The CLI flattens it into its arguments (clap), the
/// file is read with [`FileConfig::load`] (serde; unknown keys refused).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "AJWT_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Data directory [default: ./ajwt-data]
    #[arg(long, env = "AJWT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Issuer identifier, the iss of every token; a path (https://host/tenant1) puts every endpoint under it (RFC 8414 Section 3.1) [default: http://<addr>]
    #[arg(long, env = "AJWT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Audience of client access tokens (§4.2.3) [default: idp.localhost]
    #[arg(long, env = "AJWT_CLIENT_AUDIENCE", value_name = "AUD")]
    pub client_audience: Option<String>,
    /// Intent-token lifetime in seconds, at most 3600 (§9.2.1) [default: 300]
    #[arg(long, env = "AJWT_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub token_lifetime: Option<u64>,
    /// Deprecated TOML spelling of `token_lifetime` (accepted with a
    /// warning, I-58); not a flag or environment variable.
    #[arg(skip)]
    pub intent_token_lifetime: Option<u64>,
    /// Client access-token lifetime in seconds [default: 3600]
    #[arg(long, env = "AJWT_CLIENT_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub client_token_lifetime: Option<u64>,
    /// Algorithm of newly generated signing keys: ES256, EdDSA, Ed25519 (RFC 9864), RS256 or PS256 [default: ES256]
    #[arg(long, env = "AJWT_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// Longest delegation chain accepted, requester included (§9.3.2) [default: 8]
    #[arg(long, env = "AJWT_MAX_DELEGATION_DEPTH", value_name = "N")]
    pub max_delegation_depth: Option<usize>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "AJWT_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "AJWT_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Migration aid: accept a bare 64-hex computed_checksum (§5.3.2's output) at the token endpoint as well as sha256:<hex> (§4.5.6) [default: false]
    #[arg(
        long,
        env = "AJWT_ACCEPT_BARE_CHECKSUM",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub accept_bare_checksum: Option<bool>,
    /// agent_checksum token requests per client per minute, 0 for no limit (§9.4.3) [default: 1200]
    #[arg(long, env = "AJWT_RATE_LIMIT_CLIENT", value_name = "PER_MINUTE")]
    pub rate_limit_client: Option<u32>,
    /// agent_checksum token requests per agent per minute, 0 for no limit (§9.4.3) [default: 600]
    #[arg(long, env = "AJWT_RATE_LIMIT_AGENT", value_name = "PER_MINUTE")]
    pub rate_limit_agent: Option<u32>,
    /// unknown_agent and agent_checksum_mismatch refusals per client and per agent per minute; past it the client or agent is refused until the bucket refills (§9.1.1) [default: 60]
    #[arg(
        long,
        env = "AJWT_RATE_LIMIT_GRANT_FAILURES",
        value_name = "PER_MINUTE"
    )]
    pub rate_limit_grant_failures: Option<u32>,
    /// Failed client authentications per peer address and per client per minute; past it that peer or client is refused until the bucket refills [default: 30]
    #[arg(long, env = "AJWT_RATE_LIMIT_AUTH_FAILURES", value_name = "PER_MINUTE")]
    pub rate_limit_auth_failures: Option<u32>,
    /// Registrations (agents, workflows, clients) per client per minute (§9.1.3) [default: 300]
    #[arg(long, env = "AJWT_RATE_LIMIT_REGISTRATIONS", value_name = "PER_MINUTE")]
    pub rate_limit_registrations: Option<u32>,
    /// Seconds a request head may take, from accept or from the first byte of a later request on the connection (§9.4.3) [default: 10]
    #[arg(long, env = "AJWT_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,
    /// Seconds a request body may take before the answer is 408 and the connection closes (§9.4.3) [default: 30]
    #[arg(long, env = "AJWT_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    pub body_read_timeout: Option<u64>,
    /// Seconds a keep-alive connection may wait for its next request [default: 60]
    #[arg(long, env = "AJWT_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Open connections at most; when full, the oldest connection not inside a request is closed for the new one (keep it below `ulimit -n`) [default: 512]
    #[arg(long, env = "AJWT_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds in-flight requests get after SIGINT/SIGTERM before the remaining connections are dropped [default: 10]
    #[arg(long, env = "AJWT_SHUTDOWN_GRACE", value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
    /// Cache-Control max-age of /.well-known/jwks.json in seconds (I-90) [default: 300]
    #[arg(long, env = "AJWT_JWKS_MAX_AGE", value_name = "SECONDS")]
    pub jwks_max_age: Option<u64>,
    /// Seconds a new signing key is published in the JWKS before it signs; at least jwks_max_age (I-90) [default: jwks_max_age]
    #[arg(long, env = "AJWT_KEY_PUBLISH_DELAY", value_name = "SECONDS")]
    pub key_publish_delay: Option<u64>,
    /// Rotate the signing key automatically: a new key starts signing this many seconds after the current one did; 0 for never (I-90) [default: 0]
    #[arg(long, env = "AJWT_KEY_ROTATION_INTERVAL", value_name = "SECONDS")]
    pub key_rotation_interval: Option<u64>,
    /// Seconds added to the longest token lifetime before a replaced key leaves the JWKS (I-90) [default: 60]
    #[arg(long, env = "AJWT_KEY_RETIRE_LEEWAY", value_name = "SECONDS")]
    pub key_retire_leeway: Option<u64>,
    /// Statuses per Token Status List (a multiple of 8); a full list rolls over [default: 65536]
    #[arg(long, env = "AJWT_STATUS_LIST_SIZE", value_name = "N")]
    pub status_list_size: Option<u32>,
    /// ttl and Cache-Control max-age of status list tokens: the longest a resource server keeps accepting a revoked token [default: 60]
    #[arg(long, env = "AJWT_STATUS_LIST_TTL", value_name = "SECONDS")]
    pub status_list_ttl: Option<u64>,
    /// Seconds a token record is kept after the token expires [default: 300]
    #[arg(long, env = "AJWT_TOKEN_RECORD_LEEWAY", value_name = "SECONDS")]
    pub token_record_leeway: Option<u64>,
    /// Seconds between signed checkpoints of the audit trail's head (I-104), 0 for none [default: 300]
    #[arg(long, env = "AJWT_AUDIT_CHECKPOINT_INTERVAL", value_name = "SECONDS")]
    pub audit_checkpoint_interval: Option<u64>,
    /// PostgreSQL store shared by replicas, postgres://user:password@host/db [default: SQLite file in the data directory]
    #[arg(long, env = "AJWT_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Key-encryption key (32 random bytes) sealing prompts and private keys at rest (§9.1.4); replicas share it [default: <data_dir>/kek.key, created on first start]
    #[arg(long, env = "AJWT_KEK_FILE", value_name = "PATH")]
    pub kek_file: Option<PathBuf>,
    /// Serve Prometheus metrics at GET /metrics on the API listener (I-114); firewall /metrics or set false where the listener is public [default: true]
    #[arg(
        long,
        env = "AJWT_METRICS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub metrics: Option<bool>,
}

impl FileConfig {
    /// Reads a TOML file; unknown keys are errors (a typo must not be ignored).
    /// The deprecated key `intent_token_lifetime` is folded into
    /// `token_lifetime` (both at once is an error); see
    /// [`FileConfig::deprecations`].
    pub fn load(path: &std::path::Path) -> Result<FileConfig, ConfigError> {
        let err = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut file = FileConfig::from_toml_str(&text).map_err(|e| match e {
            ConfigError::File { reason, .. } => err(reason),
            other => other,
        })?;
        if let Some(old) = file.intent_token_lifetime {
            if file.token_lifetime.is_some() {
                return Err(err(
                    "both token_lifetime and its deprecated spelling intent_token_lifetime are set: keep token_lifetime".into(),
                ));
            }
            file.token_lifetime = Some(old);
        }
        Ok(file)
    }

    /// Parses TOML text (unknown keys refused; the deprecated alias is not
    /// folded here, see [`FileConfig::load`]).
    pub fn from_toml_str(text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: "<toml>".into(),
            reason: e.to_string().replace('\n', " "),
        })
    }

    /// Warnings about deprecated keys this file used (to be logged once
    /// logging is up).
    pub fn deprecations(&self) -> Vec<String> {
        if self.intent_token_lifetime.is_some() {
            vec!["the TOML key intent_token_lifetime is deprecated: rename it token_lifetime (the name of --token-lifetime and AJWT_TOKEN_LIFETIME)".to_owned()]
        } else {
            Vec::new()
        }
    }

    /// Applies `overrides` (flags/environment, already merged by the CLI) on
    /// top of this file's values and the defaults, then validates.
    pub fn resolve(self, overrides: FileConfig) -> Result<IssuerConfig, ConfigError> {
        let d = IssuerConfig::default();
        let seconds = |o: Option<u64>, f: Option<u64>| o.or(f).map(Duration::from_secs);
        let pick = |o: Option<String>, f: Option<String>| o.or(f);
        let addr: SocketAddr = match pick(overrides.addr, self.addr) {
            Some(a) => a
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("addr {a:?}: expected HOST:PORT")))?,
            None => d.addr,
        };
        let signing_alg = match pick(overrides.signing_alg, self.signing_alg) {
            Some(a) => a.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "signing_alg {a:?}: expected one of {}",
                    ajwt_jose::Alg::names(&ajwt_jose::Alg::ALL)
                ))
            })?,
            None => d.signing_alg,
        };
        let log_format = match pick(overrides.log_format, self.log_format) {
            Some(f) => f.parse()?,
            None => d.log_format,
        };
        let lifetime = overrides
            .token_lifetime
            .or(overrides.intent_token_lifetime)
            .or(self.token_lifetime)
            .or(self.intent_token_lifetime);
        let jwks_max_age = overrides
            .jwks_max_age
            .or(self.jwks_max_age)
            .unwrap_or(d.jwks_max_age);
        let config = IssuerConfig {
            addr,
            data_dir: overrides.data_dir.or(self.data_dir).unwrap_or(d.data_dir),
            issuer: pick(overrides.issuer, self.issuer).unwrap_or_else(|| format!("http://{addr}")),
            client_audience: pick(overrides.client_audience, self.client_audience)
                .unwrap_or(d.client_audience),
            intent_token_lifetime: lifetime.unwrap_or(d.intent_token_lifetime),
            client_token_lifetime: overrides
                .client_token_lifetime
                .or(self.client_token_lifetime)
                .unwrap_or(d.client_token_lifetime),
            signing_alg,
            max_delegation_depth: overrides
                .max_delegation_depth
                .or(self.max_delegation_depth)
                .unwrap_or(d.max_delegation_depth),
            body_limit: overrides
                .body_limit
                .or(self.body_limit)
                .unwrap_or(d.body_limit),
            log_format,
            accept_bare_checksum: overrides
                .accept_bare_checksum
                .or(self.accept_bare_checksum)
                .unwrap_or(d.accept_bare_checksum),
            rate_limits: RateLimitConfig {
                client: overrides
                    .rate_limit_client
                    .or(self.rate_limit_client)
                    .unwrap_or(d.rate_limits.client),
                agent: overrides
                    .rate_limit_agent
                    .or(self.rate_limit_agent)
                    .unwrap_or(d.rate_limits.agent),
                grant_failures: overrides
                    .rate_limit_grant_failures
                    .or(self.rate_limit_grant_failures)
                    .unwrap_or(d.rate_limits.grant_failures),
                auth_failures: overrides
                    .rate_limit_auth_failures
                    .or(self.rate_limit_auth_failures)
                    .unwrap_or(d.rate_limits.auth_failures),
                registrations: overrides
                    .rate_limit_registrations
                    .or(self.rate_limit_registrations)
                    .unwrap_or(d.rate_limits.registrations),
            },
            header_read_timeout: seconds(overrides.header_read_timeout, self.header_read_timeout)
                .unwrap_or(d.header_read_timeout),
            body_read_timeout: seconds(overrides.body_read_timeout, self.body_read_timeout)
                .unwrap_or(d.body_read_timeout),
            idle_timeout: seconds(overrides.idle_timeout, self.idle_timeout)
                .unwrap_or(d.idle_timeout),
            max_connections: overrides
                .max_connections
                .or(self.max_connections)
                .unwrap_or(d.max_connections),
            shutdown_grace: seconds(overrides.shutdown_grace, self.shutdown_grace)
                .unwrap_or(d.shutdown_grace),
            jwks_max_age,
            // I-90: by default a new key is published exactly one JWKS
            // cache lifetime before it signs.
            key_publish_delay: overrides
                .key_publish_delay
                .or(self.key_publish_delay)
                .unwrap_or(jwks_max_age),
            key_rotation_interval: overrides
                .key_rotation_interval
                .or(self.key_rotation_interval)
                .unwrap_or(d.key_rotation_interval),
            key_retire_leeway: overrides
                .key_retire_leeway
                .or(self.key_retire_leeway)
                .unwrap_or(d.key_retire_leeway),
            tokens: TokenRecordConfig {
                status_list_size: overrides
                    .status_list_size
                    .or(self.status_list_size)
                    .unwrap_or(d.tokens.status_list_size),
                status_list_ttl: overrides
                    .status_list_ttl
                    .or(self.status_list_ttl)
                    .unwrap_or(d.tokens.status_list_ttl),
                record_leeway: overrides
                    .token_record_leeway
                    .or(self.token_record_leeway)
                    .unwrap_or(d.tokens.record_leeway),
            },
            audit_checkpoint_interval: match overrides
                .audit_checkpoint_interval
                .or(self.audit_checkpoint_interval)
            {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None => d.audit_checkpoint_interval,
            },
            database_url: pick(overrides.database_url, self.database_url).map(DatabaseUrl::new),
            kek_file: overrides.kek_file.or(self.kek_file),
            metrics: overrides.metrics.or(self.metrics).unwrap_or(d.metrics),
        };
        config.validate()?;
        Ok(config)
    }
}

impl IssuerConfig {
    /// Range checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.intent_token_lifetime == 0 || self.intent_token_lifetime > MAX_INTENT_TOKEN_LIFETIME
        {
            return bad(format!(
                "token_lifetime {} s: must be between 1 and {MAX_INTENT_TOKEN_LIFETIME} (§9.2.1: intent tokens are short-lived)",
                self.intent_token_lifetime
            ));
        }
        if self.client_token_lifetime == 0 || self.client_token_lifetime > 86_400 {
            return bad(format!(
                "client_token_lifetime {} s: must be between 1 and 86400",
                self.client_token_lifetime
            ));
        }
        if self.max_delegation_depth == 0 || self.max_delegation_depth > 64 {
            return bad(format!(
                "max_delegation_depth {}: must be between 1 and 64",
                self.max_delegation_depth
            ));
        }
        if self.body_limit < 1024 || self.body_limit > 64 * 1024 * 1024 {
            return bad(format!(
                "body_limit {} bytes: must be between 1024 and 67108864",
                self.body_limit
            ));
        }
        // I-67: a zero timeout would close every connection at once; an hour
        // is far beyond any honest client and keeps slots from being held.
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(3600) {
                return bad(format!(
                    "{name} {} s: must be between 1 and 3600",
                    value.as_secs_f64()
                ));
            }
        }
        if self.shutdown_grace > Duration::from_secs(3600) {
            return bad(format!(
                "shutdown_grace {} s: must be at most 3600",
                self.shutdown_grace.as_secs_f64()
            ));
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            return bad(format!(
                "max_connections {}: must be between 1 and 1000000",
                self.max_connections
            ));
        }
        self.validate_key_rotation()?;
        let t = &self.tokens;
        let max_size = ajwt_protocol::limits::MAX_STATUS_LIST_BYTES as u64 * 8;
        if t.status_list_size < 8
            || t.status_list_size % 8 != 0
            || u64::from(t.status_list_size) > max_size
        {
            return bad(format!(
                "status_list_size {}: must be a multiple of 8 between 8 and {max_size}",
                t.status_list_size
            ));
        }
        if t.status_list_ttl == 0 || t.status_list_ttl > 3600 {
            return bad(format!(
                "status_list_ttl {} s: must be between 1 and 3600",
                t.status_list_ttl
            ));
        }
        if t.record_leeway > 86_400 {
            return bad(format!(
                "token_record_leeway {} s: must be at most 86400",
                t.record_leeway
            ));
        }
        if self.issuer.is_empty() || self.client_audience.is_empty() {
            return bad("issuer and client_audience must not be empty".into());
        }
        if let Some((_, rest)) = http_url_rest(&self.issuer) {
            // RFC 8414 §2: "a URL that uses the https scheme and has no query
            // or fragment components". The path becomes route prefixes
            // (I-54), so it is restricted to unreserved characters.
            if rest.contains(['?', '#']) {
                return bad(format!(
                    "issuer {:?}: must have no query or fragment (RFC 8414 Section 2)",
                    self.issuer
                ));
            }
            let path = self.issuer_path();
            let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
            if !path.chars().all(ok_char) || path.contains("//") {
                return bad(format!(
                    "issuer {:?}: the path may use only letters, digits, '-', '.', '_', '~' and single '/'",
                    self.issuer
                ));
            }
        }
        Ok(())
    }

    /// The path of the issuer identifier without its terminating `/`
    /// (`""` for a root issuer, `"/tenant1"` for `https://host/tenant1`):
    /// every endpoint is served under it and the metadata at
    /// `/.well-known/oauth-authorization-server` + it (RFC 8414 §3.1, I-54).
    pub fn issuer_path(&self) -> String {
        match http_url_rest(&self.issuer) {
            Some((_, rest)) => {
                let path = rest.find('/').map_or("", |i| &rest[i..]);
                let path = path.split(['?', '#']).next().unwrap_or("");
                path.trim_end_matches('/').to_owned()
            }
            None => String::new(),
        }
    }

    /// The token endpoint URL (`<issuer>/intent/token`): the `htu` DPoP
    /// proofs must name (RFC 9449 §4.3 step 9).
    pub fn token_endpoint(&self) -> String {
        format!("{}/intent/token", self.issuer.trim_end_matches('/'))
    }
}

impl IssuerConfig {
    /// I-90: the publish delay covers the JWKS cache lifetime; an automatic
    /// rotation interval leaves room for the delay and for the old key's
    /// tokens; everything at most a day (a week for the interval).
    fn validate_key_rotation(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.jwks_max_age > 86_400 {
            return bad(format!(
                "jwks_max_age {} s: must be at most 86400",
                self.jwks_max_age
            ));
        }
        if self.key_publish_delay < self.jwks_max_age || self.key_publish_delay > 86_400 {
            return bad(format!(
                "key_publish_delay {} s: must be between jwks_max_age ({} s) and 86400, so verifiers that cache the JWKS have a new key before it signs (I-90)",
                self.key_publish_delay, self.jwks_max_age
            ));
        }
        if self.key_retire_leeway > 3600 {
            return bad(format!(
                "key_retire_leeway {} s: must be at most 3600",
                self.key_retire_leeway
            ));
        }
        let interval = self.key_rotation_interval;
        if interval != 0 && (interval <= self.key_publish_delay || interval > 7 * 86_400) {
            return bad(format!(
                "key_rotation_interval {interval} s: must be 0 (off) or more than key_publish_delay ({} s) and at most 604800",
                self.key_publish_delay
            ));
        }
        Ok(())
    }

    /// The key ring's rotation policy (I-90): publish `key_publish_delay`
    /// before signing; retire a replaced key after the longest lifetime of a
    /// token it signs (intent token, client token, or status list token:
    /// `exp` = 2 × `status_list_ttl`, I-84) plus `key_retire_leeway`.
    pub fn rotation_policy(&self) -> crate::keys::RotationPolicy {
        crate::keys::RotationPolicy {
            publish_delay: self.key_publish_delay,
            retire_after: self
                .intent_token_lifetime
                .max(self.client_token_lifetime)
                .max(self.tokens.status_list_ttl.saturating_mul(2))
                .saturating_add(self.key_retire_leeway),
        }
    }
}

/// `(scheme, rest after "://")` of an `http`/`https` URL.
fn http_url_rest(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        .then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i58_deprecated_toml_key_is_an_alias_with_a_warning_and_conflicts_are_refused() {
        let dir = std::env::temp_dir().join(format!("ajwt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.toml");
        std::fs::write(
            &old,
            "intent_token_lifetime = 120\naccept_bare_checksum = true\n",
        )
        .unwrap();
        let file = FileConfig::load(&old).unwrap();
        assert_eq!(file.deprecations().len(), 1);
        let c = file.resolve(FileConfig::default()).unwrap();
        assert_eq!(c.intent_token_lifetime, 120);
        assert!(c.accept_bare_checksum);
        let both = dir.join("both.toml");
        std::fs::write(&both, "intent_token_lifetime = 120\ntoken_lifetime = 60\n").unwrap();
        assert!(
            matches!(FileConfig::load(&both), Err(ConfigError::File { reason, .. }) if reason.contains("deprecated"))
        );
        let new = dir.join("new.toml");
        std::fs::write(&new, "token_lifetime = 60\n").unwrap();
        assert!(FileConfig::load(&new).unwrap().deprecations().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn s9_2_1_defaults_and_lifetime_limit() {
        let c = FileConfig::default()
            .resolve(FileConfig::default())
            .unwrap();
        assert_eq!(c, IssuerConfig::default());
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.client_audience, "idp.localhost");
        assert_eq!(c.intent_token_lifetime, 300);
        let too_long = FileConfig {
            token_lifetime: Some(3601),
            ..FileConfig::default()
        };
        assert!(matches!(
            too_long.resolve(FileConfig::default()),
            Err(ConfigError::Invalid(m)) if m.contains("3601")
        ));
    }

    #[test]
    fn i67_connection_settings_default_resolve_and_validate() {
        let c = IssuerConfig::default();
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.body_read_timeout, Duration::from_secs(30));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, 512);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        let file = FileConfig::from_toml_str(
            "header_read_timeout = 5\nbody_read_timeout = 7\nidle_timeout = 9\nmax_connections = 100\nshutdown_grace = 0\n",
        )
        .unwrap();
        let flags = FileConfig {
            max_connections: Some(200),
            ..FileConfig::default()
        };
        let c = file.resolve(flags).unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(5));
        assert_eq!(c.body_read_timeout, Duration::from_secs(7));
        assert_eq!(c.idle_timeout, Duration::from_secs(9));
        assert_eq!(c.max_connections, 200);
        assert_eq!(c.shutdown_grace, Duration::ZERO);
        for bad in [
            "header_read_timeout = 0",
            "body_read_timeout = 3601",
            "idle_timeout = 0",
            "max_connections = 0",
            "shutdown_grace = 3601",
        ] {
            let file = FileConfig::from_toml_str(bad).unwrap();
            assert!(
                matches!(
                    file.resolve(FileConfig::default()),
                    Err(ConfigError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc8414_3_1_issuer_path() {
        let path = |issuer: &str| {
            IssuerConfig {
                issuer: issuer.into(),
                ..IssuerConfig::default()
            }
            .issuer_path()
        };
        assert_eq!(path("http://127.0.0.1:8080"), "");
        assert_eq!(path("https://idp.example.com/"), "");
        assert_eq!(path("https://idp.example.com/tenant1"), "/tenant1");
        assert_eq!(path("https://idp.example.com/a/b/"), "/a/b");
        assert_eq!(path("urn:example:issuer"), "");
    }

    #[test]
    fn flags_override_file_and_issuer_follows_addr() {
        let file: FileConfig = toml::from_str(
            "addr = \"127.0.0.1:9000\"\ntoken_lifetime = 600\nsigning_alg = \"EdDSA\"\n",
        )
        .unwrap();
        let flags = FileConfig {
            token_lifetime: Some(120),
            ..FileConfig::default()
        };
        let c = file.resolve(flags).unwrap();
        assert_eq!(c.intent_token_lifetime, 120);
        assert_eq!(c.signing_alg, SigningAlgorithm::EdDsa);
        assert_eq!(c.issuer, "http://127.0.0.1:9000");
        assert!(
            toml::from_str::<FileConfig>("adr = \"x\"").is_err(),
            "unknown keys refused"
        );
        let bad_alg = FileConfig {
            signing_alg: Some("HS256".into()),
            ..FileConfig::default()
        };
        assert!(bad_alg.resolve(FileConfig::default()).is_err());
    }

    /// Issue 13 settings (I-82, I-83, I-84): defaults, TOML/flag layering
    /// and range checks.
    #[test]
    fn i83_i84_status_list_and_record_settings() {
        let d = IssuerConfig::default().tokens;
        assert_eq!(
            (d.status_list_size, d.status_list_ttl, d.record_leeway),
            (65_536, 60, 300)
        );
        let file: FileConfig = toml::from_str(
            "status_list_size = 1024\nstatus_list_ttl = 30\ntoken_record_leeway = 0\n",
        )
        .unwrap();
        let flags = FileConfig {
            status_list_ttl: Some(10),
            ..FileConfig::default()
        };
        let t = file.resolve(flags).unwrap().tokens;
        assert_eq!(
            (t.status_list_size, t.status_list_ttl, t.record_leeway),
            (1024, 10, 0)
        );
        for (size, ttl, leeway) in [
            (0, 60, 300),
            (12, 60, 300),
            (8 * 1024 * 1024 + 8, 60, 300),
            (64, 0, 300),
            (64, 3601, 300),
            (64, 60, 86_401),
        ] {
            let c = IssuerConfig {
                tokens: TokenRecordConfig {
                    status_list_size: size,
                    status_list_ttl: ttl,
                    record_leeway: leeway,
                },
                ..IssuerConfig::default()
            };
            assert!(c.validate().is_err(), "{size} {ttl} {leeway}");
        }
    }

    #[test]
    fn database_url_password_never_reaches_debug_or_display() {
        let url = DatabaseUrl::new("postgres://ajwt:s3cr3t-pw@db.example:5432/ajwt");
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("ajwt:***@db.example"), "{shown}");
        assert_eq!(
            url.expose(),
            "postgres://ajwt:s3cr3t-pw@db.example:5432/ajwt"
        );
        let config = IssuerConfig {
            database_url: Some(url),
            ..IssuerConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn i133_metrics_is_on_by_default_and_a_toml_key_or_flag_turns_it_off() {
        assert!(IssuerConfig::default().metrics);
        let off: FileConfig = toml::from_str("metrics = false").unwrap();
        assert!(!off.resolve(FileConfig::default()).unwrap().metrics);
        let flag = FileConfig {
            metrics: Some(true),
            ..FileConfig::default()
        };
        let off: FileConfig = toml::from_str("metrics = false").unwrap();
        assert!(
            off.resolve(flag).unwrap().metrics,
            "the flag wins over the file"
        );
    }
}
