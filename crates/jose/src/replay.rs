//! A bounded in-memory set of DPoP proof `jti`s (RFC 9449 §11.1), the one
//! implementation behind the issuer's token endpoint (I-55) and the
//! verifier's default replay cache (I-35). Entries are forgotten once their
//! window has passed; when the set is full of live entries new proofs are
//! refused rather than live entries dropped, since dropping one would reopen
//! its replay.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// `jti`s seen within their proof window, at most `capacity` live ones.
#[derive(Debug)]
pub struct JtiCache {
    capacity: usize,
    state: Mutex<JtiState>,
}

/// `jti` → expiry, and the same entries in expiry order for pruning.
type JtiState = (HashMap<String, i64>, VecDeque<(i64, String)>);

impl JtiCache {
    /// A cache of at most `capacity` live entries.
    pub fn new(capacity: usize) -> JtiCache {
        JtiCache {
            capacity,
            state: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Records `jti` (seen at `now`, forgettable after `expires_at`); false
    /// when it is already recorded, when the cache is full of live entries,
    /// or when the lock is poisoned (fail closed).
    pub fn check_and_insert(&self, jti: &str, now: i64, expires_at: i64) -> bool {
        let Ok(mut guard) = self.state.lock() else {
            return false;
        };
        let (map, order) = &mut *guard;
        while order.front().is_some_and(|(exp, _)| *exp < now) {
            if let Some((exp, old)) = order.pop_front() {
                if map.get(&old) == Some(&exp) {
                    map.remove(&old);
                }
            }
        }
        if map.contains_key(jti) || map.len() >= self.capacity {
            return false;
        }
        map.insert(jti.to_owned(), expires_at);
        order.push_back((expires_at, jti.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_s11_1_replays_refused_until_expiry_and_capacity_fails_closed() {
        let c = JtiCache::new(2);
        assert!(c.check_and_insert("a", 100, 160));
        assert!(
            !c.check_and_insert("a", 120, 180),
            "replay within the window"
        );
        assert!(c.check_and_insert("b", 120, 180));
        assert!(!c.check_and_insert("c", 130, 190), "full of live entries");
        // After a's window, a is forgotten and its place is free.
        assert!(c.check_and_insert("c", 161, 221));
        assert!(c.check_and_insert("a", 181, 241), "b expired too");
    }
}
