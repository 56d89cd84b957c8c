//! Where the issuer's keys come from (§6.5.3 step 2): a static JWK Set, or the
//! issuer's `jwks_uri` (RFC 8414), cached and refreshed on an unknown `kid` at
//! most once per interval, with at most one fetch in flight. A remote set
//! whose response carried `Cache-Control: max-age` is refetched once that
//! lifetime has passed (RFC 9111 §5.2.2.1, I-91), so a key the issuer
//! publishes before signing with it (publish-then-sign rotation, I-90) is
//! known before the first token carrying it arrives.

use std::sync::Arc;
use std::time::Duration;

// tokio's Instant: the same as std's at run time, and it follows tokio's
// paused clock in tests (refresh intervals are tested without sleeping).
use tokio::time::Instant;

use ajwt_jose::{JwkSet, PublicKey};
use async_trait::async_trait;
use tokio::sync::{Mutex, RwLock};

/// Why a document could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a non-success status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is larger than the limit.
    #[error("GET {url}: body larger than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        max: usize,
    },
    /// Connection, TLS, timeout or another transport failure.
    #[error("{0}")]
    Transport(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Why the issuer's JWK Set is unavailable (a resource server answers 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// The JWKS could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document is not a usable JWK Set (RFC 7517 §5).
    #[error("{uri}: {source}")]
    Invalid {
        /// The `jwks_uri`.
        uri: String,
        /// What `ajwt-jose` refused.
        source: ajwt_jose::JoseError,
    },
}

/// Fetches a document over HTTP(S); replaceable in tests.
#[async_trait]
pub trait Fetcher: Send + Sync + 'static {
    /// GET `url`, returning the body (at most `max_len` bytes).
    async fn get(&self, url: &str, max_len: usize) -> Result<Vec<u8>, FetchError>;

    /// GET `url` like [`Fetcher::get`], with the freshness lifetime the
    /// response declares (`Cache-Control: max-age`; `None` when it declares
    /// none). The default implementation declares none.
    async fn get_with_max_age(
        &self,
        url: &str,
        max_len: usize,
    ) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        Ok((self.get(url, max_len).await?, None))
    }
}

/// The freshness lifetime of a `Cache-Control` value (RFC 9111 §5.2.2.1):
/// `max-age=N` in seconds, `Some(0)` for `no-cache`/`no-store`, `None` when
/// neither is present or the value is malformed.
pub fn cache_max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = arg
                .and_then(|a| a.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    found
}

/// [`Fetcher`] over reqwest.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// A fetcher with a 10 s timeout.
    pub fn new() -> Result<HttpFetcher, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(HttpFetcher { client })
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &str, max_len: usize) -> Result<Vec<u8>, FetchError> {
        Ok(self.get_with_max_age(url, max_len).await?.0)
    }

    async fn get_with_max_age(
        &self,
        url: &str,
        max_len: usize,
    ) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport(e.to_string());
        let mut resp = self.client.get(url).send().await.map_err(transport)?;
        if !resp.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: resp.status().as_u16(),
            });
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cache_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > max_len {
                return Err(FetchError::TooLarge {
                    url: url.to_owned(),
                    max: max_len,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// Largest JWKS or metadata document accepted.
pub const MAX_DOCUMENT: usize = 256 * 1024;

/// Shortest freshness lifetime honoured (`max-age=0` and `no-cache` mean
/// "refetch", at most once per this), I-91.
pub const MIN_JWKS_FRESHNESS: Duration = Duration::from_secs(1);

/// Longest freshness lifetime honoured, I-91.
pub const MAX_JWKS_FRESHNESS: Duration = Duration::from_secs(24 * 3600);

/// The key source of a verifier.
pub struct KeySource {
    inner: Inner,
}

enum Inner {
    Static(JwkSet),
    Remote(Box<Remote>),
}

struct Remote {
    jwks_uri: String,
    fetcher: Arc<dyn Fetcher>,
    min_refresh: Duration,
    current: RwLock<Arc<JwkSet>>,
    /// Serializes fetches (one in flight) and remembers when the last one
    /// started and, if it failed, why.
    last_fetch: Mutex<Option<(Instant, Option<KeySetError>)>>,
    /// When the cached set goes stale (its `max-age` has passed, I-91);
    /// `None`: no lifetime declared, kept until an unknown `kid`.
    fresh_until: std::sync::Mutex<Option<Instant>>,
}

impl Remote {
    fn is_stale(&self) -> bool {
        self.fresh_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| Instant::now() >= t)
    }

    fn set_fresh_until(&self, until: Option<Instant>) {
        *self
            .fresh_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }
}

impl KeySource {
    /// A fixed key set.
    pub fn from_jwks(set: JwkSet) -> KeySource {
        KeySource {
            inner: Inner::Static(set),
        }
    }

    /// Keys from `jwks_uri`, fetched lazily and refreshed on an unknown `kid`
    /// at most once per `min_refresh`.
    pub fn remote(jwks_uri: String, fetcher: Arc<dyn Fetcher>, min_refresh: Duration) -> KeySource {
        KeySource {
            inner: Inner::Remote(Box::new(Remote {
                jwks_uri,
                fetcher,
                min_refresh,
                current: RwLock::new(Arc::new(JwkSet::from_keys(Vec::new()))),
                last_fetch: Mutex::new(None),
                fresh_until: std::sync::Mutex::new(None),
            })),
        }
    }

    /// Discovers `jwks_uri` from the issuer's RFC 8414 metadata (I-50): the
    /// well-known URL with the suffix inserted before the issuer's path
    /// (`http://host/.well-known/oauth-authorization-server/tenant1`, RFC 8414
    /// §3.1) first, then the appended form
    /// (`http://host/tenant1/.well-known/oauth-authorization-server`) that
    /// older deployments serve; the metadata `issuer` must equal `issuer`
    /// exactly (RFC 8414 §3.3) or discovery fails without trying further.
    pub async fn discover(
        issuer: &str,
        fetcher: Arc<dyn Fetcher>,
        min_refresh: Duration,
    ) -> Result<KeySource, DiscoveryError> {
        let candidates = metadata_urls(issuer)?;
        let mut failures = Vec::new();
        for url in &candidates {
            let body = match fetcher.get(url, MAX_DOCUMENT).await {
                Ok(body) => body,
                Err(e) => {
                    failures.push(e.to_string());
                    continue;
                }
            };
            let meta = ajwt_checksum::json::parse_strict(&body)
                .map_err(|e| DiscoveryError::InvalidMetadata {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
                .to_serde_json();
            let found = meta.get("issuer").and_then(|v| v.as_str());
            if found != Some(issuer) {
                return Err(DiscoveryError::IssuerMismatch {
                    url: url.clone(),
                    expected: issuer.to_owned(),
                    found: found.map(str::to_owned),
                });
            }
            let jwks_uri = meta
                .get("jwks_uri")
                .and_then(|v| v.as_str())
                .ok_or_else(|| DiscoveryError::InvalidMetadata {
                    url: url.clone(),
                    reason: "no jwks_uri".into(),
                })?
                .to_owned();
            return Ok(KeySource::remote(jwks_uri, fetcher, min_refresh));
        }
        Err(DiscoveryError::Unreachable(failures.join("; ")))
    }

    /// The key for `kid` (or the only key when `kid` is `None`), refreshing a
    /// remote set when the `kid` is unknown and the last fetch is old enough,
    /// or when the set's `max-age` has passed (I-91: then a failed refetch
    /// keeps serving the stale set and is retried after the refresh
    /// interval).
    pub async fn key(&self, kid: Option<&str>) -> Result<Option<PublicKey>, KeySetError> {
        match &self.inner {
            Inner::Static(set) => Ok(pick(set, kid)),
            Inner::Remote(r) => {
                if !r.is_stale() {
                    let found = pick(&r.current.read().await.clone(), kid);
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                let mut last = r.last_fetch.lock().await;
                // Another task may have refreshed while we waited for the lock.
                let stale = r.is_stale();
                let found = pick(&r.current.read().await.clone(), kid);
                if found.is_some() && !stale {
                    return Ok(found);
                }
                if !stale {
                    if let Some((at, failure)) = &*last {
                        if at.elapsed() < r.min_refresh {
                            // Too soon to ask again. If the last attempt failed and no
                            // key set was ever loaded, the keys are unavailable (503):
                            // "unknown kid" would tell the client its token is bad.
                            return match failure {
                                Some(why) if r.current.read().await.is_empty() => Err(why.clone()),
                                _ => Ok(None),
                            };
                        }
                    }
                }
                let fetched = match r.fetcher.get_with_max_age(&r.jwks_uri, MAX_DOCUMENT).await {
                    Ok((body, max_age)) => JwkSet::parse(&body)
                        .map(|parsed| (parsed, max_age))
                        .map_err(|source| KeySetError::Invalid {
                            uri: r.jwks_uri.clone(),
                            source,
                        }),
                    Err(e) => Err(KeySetError::from(e)),
                };
                let now = Instant::now();
                *last = Some((now, fetched.as_ref().err().cloned()));
                let ((set, skipped), max_age) = match fetched {
                    Ok(x) => x,
                    Err(why) if stale && !r.current.read().await.is_empty() => {
                        // I-91: the issuer is unreachable; the stale set still
                        // serves, and the refetch is retried later.
                        tracing::warn!(jwks_uri = %r.jwks_uri, error = %why, "JWKS refetch failed; using the cached set");
                        r.set_fresh_until(Some(now + r.min_refresh.max(MIN_JWKS_FRESHNESS)));
                        return Ok(found);
                    }
                    Err(why) => return Err(why),
                };
                for reason in skipped {
                    tracing::warn!(jwks_uri = %r.jwks_uri, %reason, "skipped an unusable key");
                }
                r.set_fresh_until(
                    max_age.map(|a| now + a.clamp(MIN_JWKS_FRESHNESS, MAX_JWKS_FRESHNESS)),
                );
                let set = Arc::new(set);
                *r.current.write().await = set.clone();
                Ok(pick(&set, kid))
            }
        }
    }
}

fn pick(set: &JwkSet, kid: Option<&str>) -> Option<PublicKey> {
    match kid {
        Some(k) => set.find(k).cloned(),
        None if set.len() == 1 => set.keys().first().cloned(),
        None => None,
    }
}

/// The RFC 8414 metadata URLs of `issuer`, in the order they are tried: the
/// inserted form (§3.1), then, for an issuer with a path, the appended form.
/// The issuer must be an absolute http(s) URL without query or fragment
/// (RFC 8414 §2).
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, DiscoveryError> {
    ajwt_protocol::metadata::authorization_server_metadata_urls(issuer)
        .map_err(|why| DiscoveryError::InvalidIssuer(format!("{issuer:?}: {why}")))
}

/// Why RFC 8414 discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured issuer is not an absolute http(s) URL.
    #[error("invalid issuer identifier {0}")]
    InvalidIssuer(String),
    /// No metadata URL answered with a document.
    #[error("issuer metadata unavailable: {0}")]
    Unreachable(String),
    /// The document is not JSON metadata with a `jwks_uri`.
    #[error("{url}: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The metadata URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The metadata names another issuer (RFC 8414 §3.3).
    #[error("{url}: metadata issuer {found:?} does not match {expected:?} (RFC 8414 §3.3)")]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The metadata's `issuer`.
        found: Option<String>,
    },
}

impl From<DiscoveryError> for String {
    fn from(e: DiscoveryError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_s3_1_metadata_url_order() {
        assert_eq!(
            metadata_urls("http://host:8080/tenant1").unwrap(),
            [
                "http://host:8080/.well-known/oauth-authorization-server/tenant1",
                "http://host:8080/tenant1/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            metadata_urls("https://idp.example/a/b/").unwrap()[0],
            "https://idp.example/.well-known/oauth-authorization-server/a/b"
        );
        for plain in ["http://host", "http://host/"] {
            assert_eq!(
                metadata_urls(plain).unwrap(),
                ["http://host/.well-known/oauth-authorization-server"]
            );
        }
        for bad in [
            "host/tenant",
            "ftp://x",
            "http://",
            "http://h/p?x=1",
            "http://h#f",
        ] {
            assert!(
                matches!(metadata_urls(bad), Err(DiscoveryError::InvalidIssuer(_))),
                "{bad}"
            );
        }
    }
}
