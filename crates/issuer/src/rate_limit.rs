//! Rate limits (§9.1.1 "rate limiting on checksum verification failures",
//! §9.1.4 "rate limiting on registry queries", §9.4.3 "rate limiting on token
//! endpoints"; spec I-73). Token buckets (GCRA, the `governor` crate), keyed:
//!
//! | limit | key | counts |
//! |---|---|---|
//! | `rate_limit_client` | client id | `agent_checksum` token requests |
//! | `rate_limit_agent` | agent id | `agent_checksum` token requests |
//! | `rate_limit_grant_failures` | client id, and agent id | `unknown_agent` and `agent_checksum_mismatch` refusals |
//! | `rate_limit_auth_failures` | peer address, and a known client id | failed client authentications |
//! | `rate_limit_registrations` | client id | agent, workflow and client registrations |
//!
//! Each is "so many per minute" with a burst of as many; 0 turns it off. A
//! request over a limit is refused before its work with `429` and
//! `Retry-After` (RFC 6585 §4). A failure limit counts failures only; the
//! failure that goes over it is still answered, and from then on every
//! request for that key is refused until the bucket has a cell again, so a guess cannot be tried, whether it would have
//! succeeded or not. Keys are kept only while their bucket is not full again
//! (`retain_recent` every few thousand checks), so an attacker choosing keys
//! cannot grow memory without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::service::ApiError;

/// Checks between two purges of idle keys.
const PURGE_EVERY: u64 = 4096;
/// Most keys held in the penalty box at once (keys over a failure limit).
const MAX_BLOCKED: usize = 65_536;

/// Which limit refused a request (its name in logs and the error description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// `agent_checksum` token requests per client.
    Client,
    /// `agent_checksum` token requests per agent.
    Agent,
    /// `unknown_agent` / `agent_checksum_mismatch` per client or agent.
    GrantFailures,
    /// Failed client authentications per peer or client.
    AuthFailures,
    /// Registrations per client.
    Registrations,
}

impl Limit {
    /// The configuration name of the limit.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Client => "rate_limit_client",
            Limit::Agent => "rate_limit_agent",
            Limit::GrantFailures => "rate_limit_grant_failures",
            Limit::AuthFailures => "rate_limit_auth_failures",
            Limit::Registrations => "rate_limit_registrations",
        }
    }
}

/// One keyed token bucket per minute-rate, or nothing when the rate is 0.
struct Bucket {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Bucket {
    fn per_minute(rate: u32) -> Bucket {
        Bucket {
            limiter: NonZeroU32::new(rate).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Takes one cell for `key`; `Err(wait)` when none is left.
    fn take(&self, key: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn purge(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The issuer's rate limits (see the module documentation).
pub struct RateLimits {
    client: Bucket,
    agent: Bucket,
    grant_failures: Bucket,
    auth_failures: Bucket,
    registrations: Bucket,
    /// Keys over a failure limit, with when they may try again.
    blocked: Mutex<HashMap<String, Instant>>,
    checks: AtomicU64,
}

impl RateLimits {
    /// The limits of `config`.
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            client: Bucket::per_minute(config.client),
            agent: Bucket::per_minute(config.agent),
            grant_failures: Bucket::per_minute(config.grant_failures),
            auth_failures: Bucket::per_minute(config.auth_failures),
            registrations: Bucket::per_minute(config.registrations),
            blocked: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            for b in [
                &self.client,
                &self.agent,
                &self.grant_failures,
                &self.auth_failures,
                &self.registrations,
            ] {
                b.purge();
            }
            let now = Instant::now();
            if let Ok(mut blocked) = self.blocked.lock() {
                blocked.retain(|_, until| *until > now);
            }
        }
    }

    fn refuse(limit: Limit, wait: Duration) -> ApiError {
        ApiError::RateLimited {
            limit: limit.name(),
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }

    /// Refuses when `key` is in the penalty box of `limit`.
    fn check_blocked(&self, limit: Limit, key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let until = self
            .blocked
            .lock()
            .ok()
            .and_then(|b| b.get(key).copied())
            .filter(|until| *until > now);
        match until {
            Some(until) => Err(Self::refuse(limit, until - now)),
            None => Ok(()),
        }
    }

    /// Counts a failure for `key`; over the limit, the key is refused until
    /// its bucket has a cell again.
    fn record_failure(&self, limit: Limit, bucket: &Bucket, key: String) {
        if let Err(wait) = bucket.take(&key) {
            tracing::warn!(target: "security", limit = limit.name(), key = %key, "rate limit reached: requests refused for {} s", wait.as_secs());
            if let Ok(mut blocked) = self.blocked.lock() {
                if blocked.len() >= MAX_BLOCKED {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                }
                if blocked.len() < MAX_BLOCKED {
                    blocked.insert(key, Instant::now() + wait);
                }
            }
        }
    }

    /// Before client authentication: refused while the peer or the client id
    /// has too many recent failures.
    pub fn check_auth(&self, peer: Option<IpAddr>, client_id: &str) -> Result<(), ApiError> {
        self.tick();
        if let Some(peer) = peer {
            self.check_blocked(Limit::AuthFailures, &format!("peer:{peer}"))?;
        }
        self.check_blocked(Limit::AuthFailures, &format!("client:{client_id}"))
    }

    /// A failed client authentication: counted for the peer, and for the
    /// client id when such a client exists (unknown ids are the peer's).
    pub fn auth_failed(&self, peer: Option<IpAddr>, known_client_id: Option<&str>) {
        if let Some(peer) = peer {
            self.record_failure(
                Limit::AuthFailures,
                &self.auth_failures,
                format!("peer:{peer}"),
            );
        }
        if let Some(id) = known_client_id {
            self.record_failure(
                Limit::AuthFailures,
                &self.auth_failures,
                format!("client:{id}"),
            );
        }
    }

    /// Before an `agent_checksum` grant: one request for the client and one
    /// for the agent, and neither in the failure penalty box.
    pub fn check_grant(&self, client_id: &str, agent_id: &str) -> Result<(), ApiError> {
        self.tick();
        self.check_blocked(Limit::GrantFailures, &format!("client:{client_id}"))?;
        self.check_blocked(Limit::GrantFailures, &format!("agent:{agent_id}"))?;
        self.client
            .take(client_id)
            .map_err(|w| Self::refuse(Limit::Client, w))?;
        self.agent
            .take(agent_id)
            .map_err(|w| Self::refuse(Limit::Agent, w))
    }

    /// An `unknown_agent` or `agent_checksum_mismatch` refusal.
    pub fn grant_failed(&self, client_id: &str, agent_id: &str) {
        self.record_failure(
            Limit::GrantFailures,
            &self.grant_failures,
            format!("client:{client_id}"),
        );
        self.record_failure(
            Limit::GrantFailures,
            &self.grant_failures,
            format!("agent:{agent_id}"),
        );
    }

    /// A registration (agent, workflow or client) by `client_id`.
    pub fn check_registration(&self, client_id: &str) -> Result<(), ApiError> {
        self.tick();
        self.registrations
            .take(client_id)
            .map_err(|w| Self::refuse(Limit::Registrations, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32) -> RateLimits {
        RateLimits::new(&RateLimitConfig {
            client: rate,
            agent: rate,
            grant_failures: rate,
            auth_failures: rate,
            registrations: rate,
        })
    }

    #[test]
    fn i73_buckets_are_per_key_and_zero_is_off() {
        let l = limits(3);
        for _ in 0..3 {
            l.check_registration("a").unwrap();
        }
        let e = l.check_registration("a").unwrap_err();
        assert!(
            matches!(e, ApiError::RateLimited { limit: "rate_limit_registrations", retry_after_secs } if (1..=20).contains(&retry_after_secs)),
            "{e:?}"
        );
        // Another client is unaffected.
        l.check_registration("b").unwrap();
        let off = limits(0);
        for _ in 0..1000 {
            off.check_registration("a").unwrap();
        }
    }

    #[test]
    fn i73_failures_over_the_limit_block_the_key_even_for_a_right_guess() {
        let l = limits(2);
        let peer: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..2 {
            l.check_auth(Some(peer), "c1").unwrap();
            l.auth_failed(Some(peer), Some("c1"));
        }
        // The third failure is over the limit: the peer and the client are boxed.
        l.check_auth(Some(peer), "c1").unwrap();
        l.auth_failed(Some(peer), Some("c1"));
        assert!(l.check_auth(Some(peer), "c2").is_err(), "peer boxed");
        let other: IpAddr = [192, 0, 2, 2].into();
        assert!(l.check_auth(Some(other), "c1").is_err(), "client boxed");
        l.check_auth(Some(other), "c2").unwrap();
        // Grant failures box the client and the agent, not other agents of
        // other clients.
        for _ in 0..3 {
            l.grant_failed("c1", "agent-x");
        }
        assert!(l.check_grant("c1", "agent-y").is_err());
        assert!(l.check_grant("c2", "agent-x").is_err());
        l.check_grant("c2", "agent-y").unwrap();
    }
}
