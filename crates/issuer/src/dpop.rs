//! DPoP proofs at the token endpoint (RFC 9449 §4–§5, I-55): the proof is
//! checked by `ajwt_jose::verify_dpop_proof` (RFC 9449 §4.3 steps 1–11,
//! `htm` POST, `htu` the token endpoint), its `jti` must not have been seen
//! within the proof window (§11.1), and the caller then compares the proof
//! key with the key the token will be bound to (§5).

use ajwt_jose::{verify_dpop_proof, Alg, DpopCheck, JtiCache, VerifiedProof};
use ajwt_protocol::OAuthError;

/// Oldest proof accepted, seconds (RFC 9449 §11.1 "relatively short").
pub const PROOF_MAX_AGE: i64 = 60;
/// Clock skew tolerated both ways, seconds.
pub const PROOF_LEEWAY: i64 = 5;
/// Largest proof accepted, bytes.
pub const PROOF_MAX_LEN: usize = 8 * 1024;
/// Live `jti`s remembered at most (bounded memory).
pub const REPLAY_CAPACITY: usize = 100_000;

/// The `jti`s seen within the proof window: ajwt-jose's bounded set (one
/// implementation with the verifier's cache, I-35), sized [`REPLAY_CAPACITY`].
#[derive(Debug)]
pub struct ReplayCache(JtiCache);

impl ReplayCache {
    /// A cache of at most `capacity` live entries.
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache(JtiCache::new(capacity))
    }

    /// Records `jti` until `expires_at`; false when it is already recorded or
    /// the cache is full of live entries.
    pub fn check_and_insert(&self, jti: &str, now: i64, expires_at: i64) -> bool {
        self.0.check_and_insert(jti, now, expires_at)
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(REPLAY_CAPACITY)
    }
}

/// The single `DPoP` header value of a request, if any; several headers or a
/// value that is not visible ASCII are `invalid_dpop_proof` (RFC 9449 §4.3
/// step 1).
pub fn proof_header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::InvalidDpopProof(
            "More than one DPoP header (RFC 9449 Section 4.3)".into(),
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| OAuthError::InvalidDpopProof("The DPoP header is not ASCII".into()))
}

/// Verifies a token-request proof for `token_endpoint` at `now` and records
/// its `jti` in `replay`.
pub fn verify_token_request_proof(
    proof: &str,
    token_endpoint: &str,
    now: i64,
    replay: &ReplayCache,
) -> Result<VerifiedProof, OAuthError> {
    let verified = check_token_request_proof(proof, token_endpoint, now)?;
    if !replay.check_and_insert(&verified.jti, now, replay_window_end(&verified)) {
        return Err(replayed());
    }
    Ok(verified)
}

/// The scope of DPoP proof `jti`s in the shared one-time values
/// ([`crate::store::Store::remember_once`], I-113).
pub const REPLAY_SCOPE: &str = "dpop_token_endpoint";

/// Until when (Unix seconds) a proof's `jti` must be remembered: the end of
/// the window in which the proof is accepted.
pub fn replay_window_end(proof: &VerifiedProof) -> i64 {
    proof
        .iat
        .saturating_add(PROOF_MAX_AGE)
        .saturating_add(PROOF_LEEWAY)
}

/// The refusal of a replayed proof (RFC 9449 §11.1).
pub fn replayed() -> OAuthError {
    OAuthError::InvalidDpopProof(
        "The DPoP proof jti was already used (replay, RFC 9449 Section 11.1)".into(),
    )
}

/// RFC 9449 §4.3 steps 1–11 for a token-request proof, without the replay
/// check (the caller records the `jti`, in this process or shared).
pub fn check_token_request_proof(
    proof: &str,
    token_endpoint: &str,
    now: i64,
) -> Result<VerifiedProof, OAuthError> {
    let check = DpopCheck {
        method: "POST",
        url: token_endpoint,
        access_token: None,
        expected_jkt: None,
        now,
        max_age: PROOF_MAX_AGE,
        leeway: PROOF_LEEWAY,
        nonce: None,
        allowed: &Alg::ALL,
        max_len: PROOF_MAX_LEN,
    };
    verify_dpop_proof(proof, &check)
        .map_err(|e| OAuthError::InvalidDpopProof(format!("{e} (RFC 9449 Section 4.3)")))
}

/// RFC 9449 §5: the proof key must be the key the intent token is bound to
/// (the agent's registered key, `cnf.jwk`). Constant-time comparison.
pub fn require_registered_key(
    proof: &VerifiedProof,
    registered_jkt: &str,
) -> Result<(), OAuthError> {
    use subtle::ConstantTimeEq as _;
    if bool::from(proof.jkt.as_bytes().ct_eq(registered_jkt.as_bytes())) {
        Ok(())
    } else {
        Err(OAuthError::InvalidDpopProof(
            "The DPoP proof key is not the agent's registered key (RFC 9449 Section 5)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_11_1_replay_cache_is_bounded_and_forgets_expired_entries() {
        let cache = ReplayCache::new(2);
        assert!(cache.check_and_insert("a", 0, 10));
        assert!(!cache.check_and_insert("a", 1, 10), "replay");
        assert!(cache.check_and_insert("b", 1, 10));
        assert!(!cache.check_and_insert("c", 2, 10), "full of live entries");
        assert!(
            cache.check_and_insert("c", 11, 20),
            "expired entries pruned"
        );
        assert!(cache.check_and_insert("a", 11, 20));
    }
}
