//! Intent-token cache (§2 "Token Cache").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Tokens are not reused during the last 30 seconds of their lifetime, so a
/// request never reaches a resource server with a token about to expire.
pub const REFRESH_MARGIN_SECS: i64 = 30;

/// What a cached intent token was issued for. The checksum is part of the
/// key: a specification changed at runtime misses the cache, so the next
/// token request carries the new checksum and is refused by the issuer
/// (§5.5.1, T4) instead of the old token being reused silently.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The agent.
    pub agent_id: String,
    /// The live checksum (`sha256:<hex>`).
    pub checksum: String,
    /// Workflow and step, when workflow-bound.
    pub step: Option<(String, String)>,
    /// The audience.
    pub audience: String,
    /// Requested scopes, sorted and deduplicated.
    pub scopes: Vec<String>,
    /// Delegation chain the token was requested with.
    pub chain: Vec<String>,
    /// Completed steps the token was requested with (they are bound into
    /// `step_sequence_hash`, §4.4.4).
    pub completed_steps: Vec<String>,
}

impl CacheKey {
    /// A key; `scopes` are sorted and deduplicated.
    pub fn new(
        agent_id: &str,
        checksum: &str,
        step: Option<(&str, &str)>,
        audience: &str,
        scopes: &[&str],
    ) -> CacheKey {
        let mut scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        scopes.sort();
        scopes.dedup();
        CacheKey {
            agent_id: agent_id.to_owned(),
            checksum: checksum.to_owned(),
            step: step.map(|(w, s)| (w.to_owned(), s.to_owned())),
            audience: audience.to_owned(),
            scopes,
            chain: Vec::new(),
            completed_steps: Vec::new(),
        }
    }

    /// The same key for a request with this delegation context.
    pub fn with_context(mut self, chain: &[String], completed_steps: &[String]) -> CacheKey {
        self.chain = chain.to_vec();
        self.completed_steps = completed_steps.to_vec();
        self
    }
}

#[derive(Clone)]
struct Entry {
    token: String,
    exp: i64,
}

/// Intent tokens per (agent, checksum, workflow step, audience, scopes,
/// delegation context),
/// reused until [`REFRESH_MARGIN_SECS`] before `exp`. Cheap to clone; clones
/// share entries. Tokens are bound to the agent's key (`cnf`), so sharing a
/// cache between agents never lets one use another's token: keys differ by
/// `agent_id`.
#[derive(Clone, Default)]
pub struct TokenCache {
    entries: Arc<Mutex<HashMap<CacheKey, Entry>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The token for `key` if it is still usable at `now` (Unix seconds).
    pub fn get(&self, key: &CacheKey, now: i64) -> Option<String> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(e) if now < e.exp - REFRESH_MARGIN_SECS => Some(e.token.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `token`, which expires at `exp` (Unix seconds).
    pub fn insert(&self, key: CacheKey, token: String, exp: i64) {
        self.lock().insert(key, Entry { token, exp });
    }

    /// Forgets every token.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Number of entries (expired ones included until looked up).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `exp` claim of a JWT, read without verification (the client only
/// uses it to schedule refreshes).
pub fn jwt_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("exp")?.as_i64()
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_reused_until_30_seconds_before_exp() {
        let cache = TokenCache::new();
        let key = CacheKey::new(
            "a",
            "sha256:00",
            Some(("wf", "s1")),
            "aud",
            &["b", "a", "b"],
        );
        assert_eq!(key.scopes, ["a", "b"]);
        cache.insert(key.clone(), "t1".into(), 1000);
        assert_eq!(cache.get(&key, 900).as_deref(), Some("t1"));
        assert_eq!(cache.get(&key, 969).as_deref(), Some("t1"));
        assert_eq!(cache.get(&key, 970), None, "inside the refresh margin");
        assert!(cache.is_empty(), "the stale entry is dropped");
    }

    #[test]
    fn keys_separate_agents_steps_audiences_scopes_and_checksums() {
        let cache = TokenCache::new();
        let base = CacheKey::new("a", "sha256:00", Some(("wf", "s1")), "aud", &["x"]);
        cache.insert(base.clone(), "t".into(), 10_000);
        let scope_order = CacheKey::new("a", "sha256:00", Some(("wf", "s1")), "aud", &["x", "x"]);
        assert_eq!(cache.get(&scope_order, 0).as_deref(), Some("t"));
        for other in [
            CacheKey::new("b", "sha256:00", Some(("wf", "s1")), "aud", &["x"]),
            CacheKey::new("a", "sha256:01", Some(("wf", "s1")), "aud", &["x"]),
            CacheKey::new("a", "sha256:00", Some(("wf", "s2")), "aud", &["x"]),
            CacheKey::new("a", "sha256:00", None, "aud", &["x"]),
            CacheKey::new("a", "sha256:00", Some(("wf", "s1")), "aud2", &["x"]),
            CacheKey::new("a", "sha256:00", Some(("wf", "s1")), "aud", &["x", "y"]),
            base.clone().with_context(&[], &["s0".to_owned()]),
            base.clone().with_context(&["boss".to_owned()], &[]),
        ] {
            assert_eq!(cache.get(&other, 0), None, "{other:?}");
        }
    }

    #[test]
    fn exp_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1234,"sub":"a"}"#);
        assert_eq!(jwt_exp(&format!("e30.{payload}.sig")), Some(1234));
        assert_eq!(jwt_exp("garbage"), None);
    }
}
