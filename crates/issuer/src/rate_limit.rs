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
//!
//! # Shared across replicas (I-113)
//!
//! [`RateLimits::shared`] (chosen by [`crate::Issuer::new`] when
//! `database_url` is set, and by [`crate::Issuer::with_shared_limits`])
//! keeps the failure limits (`rate_limit_grant_failures`,
//! `rate_limit_auth_failures`), the penalty box and `rate_limit_registrations`
//! in the store ([`Store::rate_limit_take`], [`Store::rate_limit_block`],
//! [`Store::rate_limit_blocked_until`]), so N replicas give an attacker one
//! budget, not N. The hot path stays cheap: a token request or a client
//! authentication costs one store read (the penalty box of all its keys at
//! once); a failure costs one write per key (two when it goes over); a
//! registration one write. The per-request limits `rate_limit_client` and
//! `rate_limit_agent` stay per process (a write on every token request would
//! cost more than they protect; the deployment-wide rate is N times the
//! configured one). The in-memory limits keep counting in shared mode too,
//! so a failure the store could not record still counts in this process.
//! A store error while CHECKING (the penalty box, a registration's cell) fails
//! closed: `503` with `Retry-After`; a store error while RECORDING a failure
//! is logged (the refusal being answered stands). Expired rows are deleted
//! by [`Store::prune_shared_state`] at most every [`SHARED_PRUNE_EVERY_MS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::service::ApiError;
use crate::store::Store;

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
    /// The shared backend (I-113), `None` for one process.
    shared: Option<Shared>,
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
            shared: None,
        }
    }

    /// The limits of `config`, with the failure limits, the penalty box
    /// and the registration limit shared through `store` by every process
    /// using it (I-113).
    pub fn shared(config: &RateLimitConfig, store: Arc<dyn Store>) -> RateLimits {
        RateLimits {
            shared: Some(Shared {
                store,
                grant_failures: SharedQuota::per_minute(config.grant_failures),
                auth_failures: SharedQuota::per_minute(config.auth_failures),
                registrations: SharedQuota::per_minute(config.registrations),
                last_prune_ms: AtomicI64::new(0),
            }),
            ..RateLimits::new(config)
        }
    }

    /// The store the limits are shared through, if they are (I-113); the
    /// DPoP `jti` replay check is then shared through it too.
    pub fn shared_store(&self) -> Option<&Arc<dyn Store>> {
        self.shared.as_ref().map(|s| &s.store)
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
    /// has too many recent failures (shared: one store read for both keys).
    pub async fn check_auth(&self, peer: Option<IpAddr>, client_id: &str) -> Result<(), ApiError> {
        self.tick();
        let mut keys = Vec::with_capacity(2);
        if let Some(peer) = peer {
            keys.push(format!("peer:{peer}"));
        }
        keys.push(format!("client:{client_id}"));
        for key in &keys {
            self.check_blocked(Limit::AuthFailures, key)?;
        }
        self.check_shared_blocked(Limit::AuthFailures, &keys).await
    }

    /// A failed client authentication: counted for the peer, and for the
    /// client id when such a client exists (unknown ids are the peer's).
    pub async fn auth_failed(&self, peer: Option<IpAddr>, known_client_id: Option<&str>) {
        if let Some(peer) = peer {
            self.failure(
                Limit::AuthFailures,
                &self.auth_failures,
                format!("peer:{peer}"),
            )
            .await;
        }
        if let Some(id) = known_client_id {
            self.failure(
                Limit::AuthFailures,
                &self.auth_failures,
                format!("client:{id}"),
            )
            .await;
        }
    }

    /// Before an `agent_checksum` grant: one request for the client and one
    /// for the agent, and neither in the failure penalty box (shared: one
    /// store read for both keys).
    pub async fn check_grant(&self, client_id: &str, agent_id: &str) -> Result<(), ApiError> {
        self.tick();
        let keys = [format!("client:{client_id}"), format!("agent:{agent_id}")];
        for key in &keys {
            self.check_blocked(Limit::GrantFailures, key)?;
        }
        self.check_shared_blocked(Limit::GrantFailures, &keys)
            .await?;
        self.client
            .take(client_id)
            .map_err(|w| Self::refuse(Limit::Client, w))?;
        self.agent
            .take(agent_id)
            .map_err(|w| Self::refuse(Limit::Agent, w))
    }

    /// An `unknown_agent` or `agent_checksum_mismatch` refusal.
    pub async fn grant_failed(&self, client_id: &str, agent_id: &str) {
        self.failure(
            Limit::GrantFailures,
            &self.grant_failures,
            format!("client:{client_id}"),
        )
        .await;
        self.failure(
            Limit::GrantFailures,
            &self.grant_failures,
            format!("agent:{agent_id}"),
        )
        .await;
    }

    /// A registration (agent, workflow or client) by `client_id` (shared:
    /// one store write).
    pub async fn check_registration(&self, client_id: &str) -> Result<(), ApiError> {
        self.tick();
        let Some(shared) = &self.shared else {
            return self
                .registrations
                .take(client_id)
                .map_err(|w| Self::refuse(Limit::Registrations, w));
        };
        shared.maybe_prune();
        let key = format!("{}/client:{client_id}", Limit::Registrations.name());
        match shared.take(&shared.registrations, &key).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(Self::refuse(Limit::Registrations, wait)),
            Err(e) => Err(limiter_unavailable(e)),
        }
    }

    /// Refuses when any of `keys` is in the shared penalty box (one store
    /// read); a store error fails closed (I-113).
    async fn check_shared_blocked(&self, limit: Limit, keys: &[String]) -> Result<(), ApiError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        shared.maybe_prune();
        let now = unix_ms();
        match shared.store.rate_limit_blocked_until(keys, now).await {
            Ok(None) => Ok(()),
            Ok(Some(until)) => Err(Self::refuse(
                limit,
                Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(1)),
            )),
            Err(e) => Err(limiter_unavailable(e)),
        }
    }

    /// Counts a failure for `key` in this process and, when shared, in the
    /// store (over the limit: the key goes into the shared penalty box).
    async fn failure(&self, limit: Limit, bucket: &Bucket, key: String) {
        let Some(shared) = &self.shared else {
            self.record_failure(limit, bucket, key);
            return;
        };
        let quota = match limit {
            Limit::AuthFailures => &shared.auth_failures,
            _ => &shared.grant_failures,
        };
        let bucket_key = format!("{}/{key}", limit.name());
        let outcome = match shared.take(quota, &bucket_key).await {
            Ok(Some(wait)) => {
                tracing::warn!(target: "security", limit = limit.name(), key = %key, shared = true, "rate limit reached: requests refused on every replica for {} s", wait.as_secs());
                let until =
                    unix_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                shared.store.rate_limit_block(&key, until).await
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::error!(limit = limit.name(), key = %key, error = %e, "cannot record a failure in the shared rate limit; counted in this process only (I-113)");
        }
        // The in-process count as well: never weaker than one process.
        self.record_failure(limit, bucket, key);
    }
}

/// Pruning of the shared tables at most this often, Unix ms (I-113).
pub const SHARED_PRUNE_EVERY_MS: i64 = 60_000;

/// A shared limit: `burst` cells, one back every `interval_ms` (the quota
/// of `governor`'s `Quota::per_minute(rate)`); `None` when off.
#[derive(Debug, Clone, Copy)]
struct SharedQuota(Option<(u32, u64)>);

impl SharedQuota {
    fn per_minute(rate: u32) -> SharedQuota {
        SharedQuota((rate > 0).then(|| (rate, (60_000 / u64::from(rate)).max(1))))
    }
}

/// The shared backend (I-113).
struct Shared {
    store: Arc<dyn Store>,
    grant_failures: SharedQuota,
    auth_failures: SharedQuota,
    registrations: SharedQuota,
    last_prune_ms: AtomicI64,
}

impl Shared {
    /// Takes one cell of `key`; `Ok(Some(wait))` when none is left.
    async fn take(
        &self,
        quota: &SharedQuota,
        key: &str,
    ) -> Result<Option<Duration>, crate::store::StoreError> {
        let Some((burst, interval_ms)) = quota.0 else {
            return Ok(None);
        };
        let wait = self
            .store
            .rate_limit_take(key, burst, interval_ms, unix_ms())
            .await?;
        Ok(wait.map(Duration::from_millis))
    }

    /// Deletes expired shared rows, on a task of its own, at most every
    /// [`SHARED_PRUNE_EVERY_MS`] per process.
    fn maybe_prune(&self) {
        let now = unix_ms();
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now - last < SHARED_PRUNE_EVERY_MS
            || self
                .last_prune_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match store.prune_shared_state(now).await {
                    Ok(n) => tracing::debug!(pruned = n, "shared rate-limit state pruned"),
                    Err(e) => tracing::warn!(error = %e, "pruning shared rate-limit state failed"),
                }
            });
        }
    }
}

/// The error of a limiter that cannot reach the store: fail closed (I-113).
fn limiter_unavailable(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "shared rate limit unavailable: refusing (fail closed, I-113)");
    ApiError::Busy {
        retry_after_secs: 1,
    }
}

/// Wall-clock Unix milliseconds (the shared limits' clock; replicas agree
/// on it within their clock skew).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
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

    #[tokio::test]
    async fn i73_buckets_are_per_key_and_zero_is_off() {
        let l = limits(3);
        for _ in 0..3 {
            l.check_registration("a").await.unwrap();
        }
        let e = l.check_registration("a").await.unwrap_err();
        assert!(
            matches!(e, ApiError::RateLimited { limit: "rate_limit_registrations", retry_after_secs } if (1..=20).contains(&retry_after_secs)),
            "{e:?}"
        );
        // Another client is unaffected.
        l.check_registration("b").await.unwrap();
        let off = limits(0);
        for _ in 0..1000 {
            off.check_registration("a").await.unwrap();
        }
    }

    #[tokio::test]
    async fn i73_failures_over_the_limit_block_the_key_even_for_a_right_guess() {
        let l = limits(2);
        let peer: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..2 {
            l.check_auth(Some(peer), "c1").await.unwrap();
            l.auth_failed(Some(peer), Some("c1")).await;
        }
        // The third failure is over the limit: the peer and the client are boxed.
        l.check_auth(Some(peer), "c1").await.unwrap();
        l.auth_failed(Some(peer), Some("c1")).await;
        assert!(l.check_auth(Some(peer), "c2").await.is_err(), "peer boxed");
        let other: IpAddr = [192, 0, 2, 2].into();
        assert!(
            l.check_auth(Some(other), "c1").await.is_err(),
            "client boxed"
        );
        l.check_auth(Some(other), "c2").await.unwrap();
        // Grant failures box the client and the agent, not other agents of
        // other clients.
        for _ in 0..3 {
            l.grant_failed("c1", "agent-x").await;
        }
        assert!(l.check_grant("c1", "agent-y").await.is_err());
        assert!(l.check_grant("c2", "agent-x").await.is_err());
        l.check_grant("c2", "agent-y").await.unwrap();
    }

    async fn shared_pair(rate: u32) -> (RateLimits, RateLimits, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(
            crate::store::sqlite::SqliteStore::open_in_memory()
                .await
                .unwrap(),
        );
        let config = RateLimitConfig {
            client: rate,
            agent: rate,
            grant_failures: rate,
            auth_failures: rate,
            registrations: rate,
        };
        (
            RateLimits::shared(&config, store.clone()),
            RateLimits::shared(&config, store.clone()),
            store,
        )
    }

    #[tokio::test]
    async fn i113_shared_failures_on_one_process_box_the_key_on_another() {
        let (a, b, _store) = shared_pair(2).await;
        // Two failures through A, one through B: over the limit of 2 for
        // the deployment, though neither process saw more than 2.
        a.grant_failed("c1", "agent-x").await;
        a.grant_failed("c1", "agent-x").await;
        b.check_grant("c1", "agent-x").await.unwrap();
        b.grant_failed("c1", "agent-x").await;
        for limits in [&a, &b] {
            let e = limits.check_grant("c1", "agent-y").await.unwrap_err();
            assert!(
                matches!(e, ApiError::RateLimited { limit: "rate_limit_grant_failures", retry_after_secs } if (1..=30).contains(&retry_after_secs)),
                "{e:?}"
            );
            assert!(limits.check_grant("c2", "agent-x").await.is_err());
            limits.check_grant("c2", "agent-y").await.unwrap();
        }
        // Authentication failures: the peer is boxed on both after 3 in all.
        let peer: IpAddr = [192, 0, 2, 7].into();
        a.auth_failed(Some(peer), None).await;
        b.auth_failed(Some(peer), None).await;
        a.check_auth(Some(peer), "c9").await.unwrap();
        b.auth_failed(Some(peer), None).await;
        assert!(a.check_auth(Some(peer), "c9").await.is_err());
        assert!(b.check_auth(Some(peer), "c9").await.is_err());
    }

    #[tokio::test]
    async fn i113_shared_registration_budget_is_one_for_the_deployment() {
        let (a, b, _store) = shared_pair(3).await;
        a.check_registration("c").await.unwrap();
        b.check_registration("c").await.unwrap();
        a.check_registration("c").await.unwrap();
        let e = b.check_registration("c").await.unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::RateLimited {
                    limit: "rate_limit_registrations",
                    ..
                }
            ),
            "{e:?}"
        );
        a.check_registration("other").await.unwrap();
    }

    #[tokio::test]
    async fn i113_a_shared_limiter_without_its_store_fails_closed() {
        let (a, _b, store) = shared_pair(2).await;
        store.close().await;
        let peer: IpAddr = [192, 0, 2, 8].into();
        for e in [
            a.check_auth(Some(peer), "c").await.unwrap_err(),
            a.check_grant("c", "x").await.unwrap_err(),
            a.check_registration("c").await.unwrap_err(),
        ] {
            assert!(matches!(e, ApiError::Busy { .. }), "{e:?}");
            assert_eq!(e.status(), 503);
        }
        // Recording a failure without the store still counts in-process.
        a.grant_failed("c", "x").await;
        a.grant_failed("c", "x").await;
        a.grant_failed("c", "x").await;
        let in_process = a
            .check_blocked(Limit::GrantFailures, "client:c")
            .unwrap_err();
        assert!(matches!(in_process, ApiError::RateLimited { .. }));
    }
}
