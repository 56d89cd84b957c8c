//! Retries with backoff: only on network errors, `5xx` and `429`, honouring
//! `Retry-After` (RFC 9110 §10.2.3, delay-seconds form); never on other
//! `4xx`, which a retry cannot fix.

use std::time::Duration;

use crate::error::ClientError;

/// How many times and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (default 3).
    pub max_attempts: u32,
    /// Delay before the first retry, doubled for each further one
    /// (default 200 ms).
    pub base_delay: Duration,
    /// Upper bound of any delay, `Retry-After` included (default 10 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based) after a response with
    /// `retry_after` seconds, if any.
    pub fn delay(&self, retry: u32, retry_after: Option<u64>) -> Duration {
        let backoff = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        retry_after
            .map_or(backoff, Duration::from_secs)
            .min(self.max_delay)
    }
}

/// Whether a status is worth retrying.
pub fn is_retryable(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sends the request `make` builds (called again for each attempt, so that
/// each attempt gets a fresh DPoP proof), retrying per `policy`. The last
/// response is returned whatever its status.
pub(crate) async fn send_with_retry<F>(
    policy: &RetryPolicy,
    mut make: F,
) -> Result<reqwest::Response, ClientError>
where
    F: FnMut() -> Result<reqwest::RequestBuilder, ClientError>,
{
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let outcome = make()?.send().await;
        let delay = match outcome {
            Ok(response) if attempt < attempts && is_retryable(response.status().as_u16()) => {
                tracing::debug!(status = response.status().as_u16(), attempt, "retrying");
                policy.delay(attempt, retry_after(&response))
            }
            Ok(response) => return Ok(response),
            Err(e) if attempt < attempts => {
                tracing::debug!(error = %without_url(&e), attempt, "network error, retrying");
                policy.delay(attempt, None)
            }
            Err(e) => return Err(ClientError::Network(without_url(&e))),
        };
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// A reqwest error's text without the URL (it may carry a query string).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.without_url_ref();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        if self.is_timeout() {
            "timed out".to_owned()
        } else if self.is_connect() {
            "connection failed".to_owned()
        } else if self.is_request() {
            "request failed".to_owned()
        } else {
            "HTTP error".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_honour_retry_after_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None), Duration::from_millis(200));
        assert_eq!(p.delay(2, None), Duration::from_millis(400));
        assert_eq!(p.delay(1, Some(3)), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some(3600)), Duration::from_secs(10));
        assert!(is_retryable(503) && is_retryable(429) && is_retryable(500));
        assert!(!is_retryable(400) && !is_retryable(401) && !is_retryable(403));
    }
}
