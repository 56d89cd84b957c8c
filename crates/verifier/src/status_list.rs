//! Token Status List source (draft-ietf-oauth-status-list, I-92): a
//! [`RevocationSource`] that reads a token's `status` claim
//! (`{"status_list": {"idx": N, "uri": "..."}}`), fetches the status list
//! token at `uri` — only from the issuer's own origin or an allow-list, over
//! the [`Fetcher`] (redirects off), so a token cannot make the resource server
//! call arbitrary hosts — verifies it with the issuer's JWK Set
//! (`typ: statuslist+jwt`, RFC 8725 through `ajwt-jose`: algorithm
//! allow-list, `kid`, key/algorithm match), checks `sub` = `uri` (§8.3),
//! `iss`, `iat` and `exp`, caches it for its `ttl` (bounded number of lists,
//! bounded `ttl`), and refuses a token whose status is not VALID with
//! [`VerifyError::TokenStatus`] (401 `invalid_token`, RFC 6750 §3.1).
//!
//! When the list cannot be had (fetch failure, bad token, disallowed URI,
//! index outside the list) it fails closed by default:
//! [`VerifyError::StatusUnavailable`] (503 `temporarily_unavailable`);
//! [`StatusListConfig::fail_open`] accepts the token instead (logged). A
//! cached list past its `ttl` whose refresh fails is still used until its
//! `exp` (the issuer sets `exp` = `iat` + 2 × `ttl` for exactly this, I-84).
//! A token without a `status` claim has nothing to check and passes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ajwt_jose::{typ_matches, Alg, CompactJws};
use ajwt_protocol::claims::IntentClaims;
use ajwt_protocol::clock::{Clock, SystemClock};
use ajwt_protocol::status_list::{
    StatusList, StatusListTokenClaims, STATUS_LIST_JWT_TYP, STATUS_VALID,
};
use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::VerifyError;
use crate::keys::{FetchError, Fetcher, KeySetError, KeySource, MAX_DOCUMENT};
use crate::verify::RevocationSource;

/// Longest `uri` accepted.
pub const MAX_STATUS_URI: usize = 2048;

/// Why a token's status could not be determined (I-92).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusCheckError {
    /// The `uri` is not an absolute http(s) URL of an allowed origin (no
    /// user info, no fragment, at most [`MAX_STATUS_URI`] bytes).
    #[error("status list uri not allowed: {0}")]
    UriNotAllowed(String),
    /// The status list token could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The issuer's keys could not be had.
    #[error("issuer keys: {0}")]
    Keys(KeySetError),
    /// The status list token is not a valid status list token of the issuer.
    #[error("invalid status list token from {uri}: {reason}")]
    InvalidToken {
        /// Where it came from.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The token's index is not in the list.
    #[error("status list {uri} has no index {idx} (size {size})")]
    IndexOutOfRange {
        /// The list.
        uri: String,
        /// The token's index.
        idx: u64,
        /// Statuses in the list.
        size: usize,
    },
}

/// Settings of a [`StatusListSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListConfig {
    /// The trusted issuer: status list tokens must carry it as `iss` (when
    /// they carry one) and their `uri` must be of its origin unless listed
    /// in `allowed_origins`.
    pub issuer: String,
    /// Further origins (`scheme://host[:port]`) status lists may come from.
    pub allowed_origins: Vec<String>,
    /// Accept the token when its status cannot be determined (default
    /// `false`: fail closed, 503).
    pub fail_open: bool,
    /// Status lists cached at most (default 64); the least recently fetched
    /// is dropped for a new one.
    pub max_lists: usize,
    /// Caching time for a status list token without `ttl` (default 60 s).
    pub default_ttl: Duration,
    /// Longest caching time honoured (default 1 h); the shortest is 1 s.
    pub max_ttl: Duration,
    /// Clock leeway for `iat`/`exp`, seconds (default 30).
    pub leeway: i64,
    /// Algorithms status list tokens may be signed with (default: every
    /// algorithm of `ajwt-jose`'s table).
    pub algorithms: Vec<Alg>,
}

impl StatusListConfig {
    /// Defaults for `issuer`.
    pub fn new(issuer: impl Into<String>) -> StatusListConfig {
        StatusListConfig {
            issuer: issuer.into(),
            allowed_origins: Vec::new(),
            fail_open: false,
            max_lists: 64,
            default_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
            leeway: 30,
            algorithms: Alg::ALL.to_vec(),
        }
    }
}

/// One cached status list.
struct Cached {
    list: Arc<StatusList>,
    fetched: Instant,
    /// Refetch after this (`ttl`).
    fresh_until: Instant,
    /// The token's `exp` (NumericDate): never used past it.
    exp: Option<i64>,
    /// When a failed refresh may be retried.
    retry_at: Option<Instant>,
}

/// Reads token statuses from the issuer's Token Status Lists (I-92).
pub struct StatusListSource {
    config: StatusListConfig,
    keys: Arc<KeySource>,
    fetcher: Arc<dyn Fetcher>,
    clock: Arc<dyn Clock>,
    cache: std::sync::Mutex<HashMap<String, Cached>>,
    /// One fetch at a time (status lists are few; a storm of tokens
    /// pointing at one list causes one fetch).
    fetching: Mutex<()>,
}

/// `scheme://host[:port]` of an absolute http(s) URL without user info or
/// fragment; `None` otherwise.
fn origin_of(uri: &str) -> Option<String> {
    let url = reqwest::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

impl StatusListSource {
    /// A source verifying status list tokens with `keys` (share the
    /// verifier's: [`crate::Verifier::key_source`]) and fetching them with
    /// `fetcher`.
    pub fn new(
        config: StatusListConfig,
        keys: Arc<KeySource>,
        fetcher: Arc<dyn Fetcher>,
    ) -> StatusListSource {
        StatusListSource {
            config,
            keys,
            fetcher,
            clock: Arc::new(SystemClock),
            cache: std::sync::Mutex::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    /// Uses another clock for `iat`/`exp` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> StatusListSource {
        self.clock = clock;
        self
    }

    /// The settings.
    pub fn config(&self) -> &StatusListConfig {
        &self.config
    }

    /// Whether `uri` may be fetched: an absolute http(s) URL of the issuer's
    /// origin or an allowed one (no SSRF through the `status` claim).
    pub fn uri_allowed(&self, uri: &str) -> bool {
        if uri.len() > MAX_STATUS_URI {
            return false;
        }
        let Some(origin) = origin_of(uri) else {
            return false;
        };
        origin_of(&self.config.issuer).as_deref() == Some(origin.as_str())
            || self
                .config
                .allowed_origins
                .iter()
                .any(|o| origin_of(o).as_deref() == Some(origin.as_str()))
    }

    /// The status of index `idx` in the list at `uri` (0 = VALID).
    pub async fn status(&self, uri: &str, idx: u64) -> Result<u8, StatusCheckError> {
        // A fresh cached list was fetched from this very `uri` after it was
        // allowed, and the configuration does not change: a hit skips the two
        // URL parses of `uri_allowed` (the common case of a resource server,
        // issue 15 / I-150). A miss checks the URI before anything is fetched.
        let list = match self.cached(uri, true) {
            Some(list) => list,
            None => {
                if !self.uri_allowed(uri) {
                    return Err(StatusCheckError::UriNotAllowed(
                        uri.chars().take(200).collect(),
                    ));
                }
                self.list(uri).await?
            }
        };
        list.get(idx)
            .ok_or_else(|| StatusCheckError::IndexOutOfRange {
                uri: uri.to_owned(),
                idx,
                size: list.len(),
            })
    }

    fn cached(&self, uri: &str, fresh_only: bool) -> Option<Arc<StatusList>> {
        let now = Instant::now();
        let unix = self.clock.now();
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = cache.get(uri)?;
        let unexpired = c
            .exp
            .is_none_or(|exp| unix <= exp.saturating_add(self.config.leeway));
        let usable = if fresh_only {
            now < c.fresh_until && unexpired
        } else {
            unexpired
        };
        usable.then(|| c.list.clone())
    }

    /// The list at `uri`: cached while fresh, else fetched (one fetch at a
    /// time); a failed refresh falls back to the cached list until its `exp`.
    async fn list(&self, uri: &str) -> Result<Arc<StatusList>, StatusCheckError> {
        if let Some(list) = self.cached(uri, true) {
            return Ok(list);
        }
        let _one = self.fetching.lock().await;
        if let Some(list) = self.cached(uri, true) {
            return Ok(list);
        }
        let retry_wait = {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache
                .get(uri)
                .and_then(|c| c.retry_at)
                .is_some_and(|t| Instant::now() < t)
        };
        if retry_wait {
            if let Some(list) = self.cached(uri, false) {
                return Ok(list);
            }
        }
        match self.fetch(uri).await {
            Ok((list, ttl, exp)) => {
                let list = Arc::new(list);
                let now = Instant::now();
                let mut cache = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !cache.contains_key(uri) && cache.len() >= self.config.max_lists.max(1) {
                    if let Some(oldest) = cache
                        .iter()
                        .min_by_key(|(_, c)| c.fetched)
                        .map(|(k, _)| k.clone())
                    {
                        cache.remove(&oldest);
                    }
                }
                cache.insert(
                    uri.to_owned(),
                    Cached {
                        list: list.clone(),
                        fetched: now,
                        fresh_until: now + ttl,
                        exp,
                        retry_at: None,
                    },
                );
                Ok(list)
            }
            Err(e) => {
                let stale = self.cached(uri, false);
                if let Some(c) = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_mut(uri)
                {
                    c.retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
                match stale {
                    Some(list) => {
                        tracing::warn!(%uri, error = %e, "status list refresh failed; using the cached list until its exp");
                        Ok(list)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Fetches and verifies the status list token at `uri`: the list, its
    /// caching time and its `exp`.
    async fn fetch(
        &self,
        uri: &str,
    ) -> Result<(StatusList, Duration, Option<i64>), StatusCheckError> {
        let body = self.fetcher.get(uri, MAX_DOCUMENT).await?;
        let invalid = |reason: String| StatusCheckError::InvalidToken {
            uri: uri.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(&body)
            .map_err(|_| invalid("not UTF-8".to_owned()))?
            .trim();
        let jws = CompactJws::parse(text, MAX_DOCUMENT).map_err(|e| invalid(e.to_string()))?;
        if !typ_matches(jws.typ.as_deref(), STATUS_LIST_JWT_TYP) {
            return Err(invalid(format!(
                "typ {:?} is not {STATUS_LIST_JWT_TYP} (RFC 8725 §3.11)",
                jws.typ
            )));
        }
        let kid = jws.kid.as_deref();
        let key = self
            .keys
            .key(kid)
            .await
            .map_err(StatusCheckError::Keys)?
            .ok_or_else(|| invalid(format!("no issuer key for kid {kid:?}")))?;
        jws.verify_with(&key, &self.config.algorithms)
            .map_err(|e| invalid(e.to_string()))?;
        // Strict JSON: duplicate claims refused.
        let payload = ajwt_checksum::json::parse_strict(&jws.payload)
            .map_err(|e| invalid(e.to_string()))?
            .to_serde_json();
        let claims: StatusListTokenClaims =
            serde_json::from_value(payload).map_err(|e| invalid(e.to_string()))?;
        if claims.sub != uri {
            return Err(invalid(format!(
                "sub {:?} is not the uri (draft-ietf-oauth-status-list §8.3)",
                claims.sub
            )));
        }
        if let Some(iss) = &claims.iss {
            if iss != &self.config.issuer {
                return Err(invalid(format!("iss {iss:?} is not the issuer")));
            }
        }
        let now = self.clock.now();
        let leeway = self.config.leeway;
        if claims.iat > now.saturating_add(leeway) {
            return Err(invalid("iat is in the future".to_owned()));
        }
        if let Some(exp) = claims.exp {
            if now > exp.saturating_add(leeway) {
                return Err(invalid("expired".to_owned()));
            }
        }
        let list = StatusList::decode(&claims.status_list).map_err(|e| invalid(e.to_string()))?;
        let ttl = claims
            .ttl
            .map_or(self.config.default_ttl, Duration::from_secs)
            .clamp(
                Duration::from_secs(1),
                self.config.max_ttl.max(Duration::from_secs(1)),
            );
        Ok((list, ttl, claims.exp))
    }
}

#[async_trait]
impl RevocationSource for StatusListSource {
    async fn revoked(&self, claims: &IntentClaims) -> Option<String> {
        self.check(claims).await.err().map(|e| e.to_string())
    }

    async fn check(&self, claims: &IntentClaims) -> Result<(), VerifyError> {
        let Some(status) = &claims.status else {
            return Ok(());
        };
        let reference = &status.status_list;
        match self.status(&reference.uri, reference.idx).await {
            Ok(STATUS_VALID) => Ok(()),
            Ok(value) => Err(VerifyError::TokenStatus {
                uri: reference.uri.clone(),
                idx: reference.idx,
                status: value,
            }),
            Err(e) if self.config.fail_open => {
                tracing::warn!(error = %e, "token status unavailable; accepted (status list fail-open)");
                Ok(())
            }
            Err(e) => Err(VerifyError::StatusUnavailable(e)),
        }
    }
}
