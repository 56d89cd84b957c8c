//! Where the issuer's keys come from (§6.5.3 step 2): a static JWK Set, or the
//! issuer's `jwks_uri` (RFC 8414), cached and refreshed on an unknown `kid` at
//! most once per interval, with at most one fetch in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ajwt_jose::{JwkSet, PublicKey};
use async_trait::async_trait;
use tokio::sync::{Mutex, RwLock};

/// Fetches a document over HTTP(S); replaceable in tests.
#[async_trait]
pub trait Fetcher: Send + Sync + 'static {
    /// GET `url`, returning the body (at most `max_len` bytes).
    async fn get(&self, url: &str, max_len: usize) -> Result<Vec<u8>, String>;
}

/// [`Fetcher`] over reqwest.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// A fetcher with a 10 s timeout.
    pub fn new() -> Result<HttpFetcher, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpFetcher { client })
    }
}

#[async_trait]
impl Fetcher for HttpFetcher {
    async fn get(&self, url: &str, max_len: usize) -> Result<Vec<u8>, String> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > max_len {
                return Err(format!("GET {url}: body larger than {max_len} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Largest JWKS or metadata document accepted.
pub const MAX_DOCUMENT: usize = 256 * 1024;

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
    last_fetch: Mutex<Option<(Instant, Option<String>)>>,
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
            })),
        }
    }

    /// Discovers `jwks_uri` from the issuer's RFC 8414 metadata
    /// (`<issuer>/.well-known/oauth-authorization-server`), checking that the
    /// metadata's `issuer` is `issuer`.
    pub async fn discover(
        issuer: &str,
        fetcher: Arc<dyn Fetcher>,
        min_refresh: Duration,
    ) -> Result<KeySource, String> {
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            issuer.trim_end_matches('/')
        );
        let body = fetcher.get(&url, MAX_DOCUMENT).await?;
        let meta = ajwt_checksum::json::parse_strict(&body)
            .map_err(|e| format!("{url}: {e}"))?
            .to_serde_json();
        if meta.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(format!(
                "{url}: metadata issuer does not match {issuer:?} (RFC 8414 §3.3)"
            ));
        }
        let jwks_uri = meta
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{url}: no jwks_uri"))?
            .to_owned();
        Ok(KeySource::remote(jwks_uri, fetcher, min_refresh))
    }

    /// The key for `kid` (or the only key when `kid` is `None`), refreshing a
    /// remote set when the `kid` is unknown and the last fetch is old enough.
    pub async fn key(&self, kid: Option<&str>) -> Result<Option<PublicKey>, String> {
        match &self.inner {
            Inner::Static(set) => Ok(pick(set, kid)),
            Inner::Remote(r) => {
                let found = pick(&r.current.read().await.clone(), kid);
                if found.is_some() {
                    return Ok(found);
                }
                let mut last = r.last_fetch.lock().await;
                // Another task may have refreshed while we waited for the lock.
                let found = pick(&r.current.read().await.clone(), kid);
                if found.is_some() {
                    return Ok(found);
                }
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
                let fetched = match r.fetcher.get(&r.jwks_uri, MAX_DOCUMENT).await {
                    Ok(body) => JwkSet::parse(&body).map_err(|e| format!("{}: {e}", r.jwks_uri)),
                    Err(e) => Err(e),
                };
                *last = Some((Instant::now(), fetched.as_ref().err().cloned()));
                let (set, skipped) = fetched?;
                for reason in skipped {
                    tracing::warn!(jwks_uri = %r.jwks_uri, %reason, "skipped an unusable key");
                }
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
