//! Verified client access tokens (§4.2.3, I-145): every request to a
//! protected endpoint carries one, and its signature verification (an ES256
//! verify costs about three signs) would otherwise be paid on every request
//! of a client that reuses its token. A token that passed signature, `typ`,
//! `iss`, `aud` and `client_id` checks is remembered under the SHA-256 of its
//! compact form, with the `kid` of the key that verified it and the claims
//! the later checks need (`exp`, `iat`, `client_id`, `scope`).
//!
//! A hit is used only while the key that verified the token is still
//! published by the current ring (a retired or withdrawn key forgets its
//! tokens), and `exp`/`iat` and the scope are checked on every use exactly
//! as on a miss, so the cache never lets a token live beyond its `exp`.
//! Client access tokens cannot be revoked (RFC 7009 §2.2.1, I-81) and
//! clients cannot be deleted or disabled, so nothing else invalidates an
//! entry. The number of entries is bounded ([`MAX_CACHED_CLIENT_TOKENS`] by
//! default); the oldest insertion is evicted first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Default bound of the cache: entries are a few hundred bytes, so this
/// costs about 2 MB at most.
pub const MAX_CACHED_CLIENT_TOKENS: usize = 8192;

/// SHA-256 of a token's compact serialization: the cache key. A hit needs a
/// token with the same digest, i.e. the same token (a different token with
/// the same prefix is a different key).
pub(crate) type TokenDigest = [u8; 32];

/// Digest of `token` (the cache key).
pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// What a verified client token left for the checks of later requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedClientToken {
    /// The key that verified it: the entry is used only while the ring
    /// publishes this key.
    pub kid: String,
    /// `exp` (RFC 7519 §4.1.4), checked on every use.
    pub exp: i64,
    /// `iat`, when present, checked on every use.
    pub iat: Option<i64>,
    /// `client_id`.
    pub client_id: String,
    /// `scope`, parsed.
    pub scopes: Vec<String>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<TokenDigest, VerifiedClientToken>,
    /// Insertion order, for eviction; holds exactly the keys of `map`.
    order: VecDeque<TokenDigest>,
}

/// Bounded cache of verified client access tokens (I-145).
#[derive(Debug)]
pub(crate) struct ClientTokenCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Default for ClientTokenCache {
    fn default() -> Self {
        ClientTokenCache::new(MAX_CACHED_CLIENT_TOKENS)
    }
}

impl ClientTokenCache {
    /// A cache of at most `capacity` tokens (0: caches nothing).
    pub(crate) fn new(capacity: usize) -> ClientTokenCache {
        ClientTokenCache {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Entries are whole values: a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key` if its key is still published (`published(kid)`).
    pub(crate) fn get(
        &self,
        key: &TokenDigest,
        published: impl FnOnce(&str) -> bool,
    ) -> Option<VerifiedClientToken> {
        let inner = self.lock();
        let entry = inner.map.get(key)?;
        published(&entry.kid).then(|| entry.clone())
    }

    /// Remembers a verified token; evicts the oldest entries beyond the bound.
    pub(crate) fn insert(&self, key: TokenDigest, entry: VerifiedClientToken) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if let Some(slot) = inner.map.get_mut(&key) {
            // Re-verified (e.g. with a key published again): refresh in place.
            *slot = entry;
            return;
        }
        while inner.map.len() >= self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.map.remove(&oldest);
        }
        inner.map.insert(key, entry);
        inner.order.push_back(key);
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn entry(kid: &str) -> VerifiedClientToken {
        VerifiedClientToken {
            kid: kid.to_owned(),
            exp: 100,
            iat: Some(1),
            client_id: "c".to_owned(),
            scopes: vec!["s".to_owned()],
        }
    }

    #[test]
    fn i145_cache_is_bounded_and_evicts_the_oldest() {
        let cache = ClientTokenCache::new(3);
        for i in 0..10 {
            cache.insert(digest(&format!("t{i}")), entry("k"));
            assert!(cache.len() <= 3);
        }
        assert!(cache.get(&digest("t9"), |_| true).is_some());
        assert!(cache.get(&digest("t7"), |_| true).is_some());
        assert!(cache.get(&digest("t6"), |_| true).is_none());
        let inner = cache.lock();
        assert_eq!(inner.order.len(), inner.map.len());
    }

    #[test]
    fn i145_entry_is_used_only_while_its_key_is_published() {
        let cache = ClientTokenCache::new(3);
        cache.insert(digest("t"), entry("k1"));
        assert!(cache.get(&digest("t"), |kid| kid == "k1").is_some());
        assert!(cache.get(&digest("t"), |kid| kid == "k2").is_none());
    }

    #[test]
    fn i145_reinsert_does_not_duplicate_and_zero_capacity_caches_nothing() {
        let cache = ClientTokenCache::new(2);
        cache.insert(digest("t"), entry("k1"));
        cache.insert(digest("t"), entry("k2"));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.lock().order.len(), 1);
        assert_eq!(cache.get(&digest("t"), |_| true).unwrap().kid, "k2");
        let none = ClientTokenCache::new(0);
        none.insert(digest("t"), entry("k"));
        assert_eq!(none.len(), 0);
    }
}
