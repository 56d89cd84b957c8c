//! Server-provided DPoP nonces with rotation (RFC 9449 §8, §9; I-51).
//!
//! [`RotatingNonces`] holds two nonces at most: the current one, handed out
//! for `lifetime`, and the one it replaced, still accepted for `grace` after
//! the rotation. A successful response carries the current nonce
//! ([`crate::axum_layer::add_nonce`]), so a client that calls at least once
//! per `grace` picks up each new nonce while its old one is still accepted
//! and never pays a failed request for a rotation. Nonces are 32 bytes from
//! the operating system's CSPRNG, base64url-encoded (43 characters of the
//! RFC 9449 §8.1 `NQCHAR` set), compared in constant time.

use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use tokio::time::Instant;

use crate::verify::NonceSource;

/// Why a nonce source could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// The operating system's random generator failed.
    #[error("no randomness for DPoP nonces: {0}")]
    Rng(String),
    /// A zero lifetime.
    #[error("the DPoP nonce lifetime must be positive")]
    ZeroLifetime,
}

struct State {
    current: String,
    /// When `current` started being handed out.
    issued: Instant,
    /// The nonce `current` replaced, and until when it is still accepted.
    previous: Option<(String, Instant)>,
}

/// Rotating server nonces: unpredictable, bounded (two live nonces), the
/// previous nonce accepted for a grace period after each rotation. Time is
/// tokio's clock, so tests can pause and advance it.
pub struct RotatingNonces {
    lifetime: Duration,
    grace: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for RotatingNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingNonces")
            .field("lifetime", &self.lifetime)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

fn fresh() -> Result<String, NonceError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| NonceError::Rng(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Default time a nonce is handed out (and then accepted for as long again).
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

impl RotatingNonces {
    /// Nonces handed out for `lifetime` each, the previous one still
    /// accepted for `grace` after a rotation.
    pub fn new(lifetime: Duration, grace: Duration) -> Result<RotatingNonces, NonceError> {
        if lifetime.is_zero() {
            return Err(NonceError::ZeroLifetime);
        }
        Ok(RotatingNonces {
            lifetime,
            grace,
            state: Mutex::new(State {
                current: fresh()?,
                issued: Instant::now(),
                previous: None,
            }),
        })
    }

    /// The state, rotated if due.
    fn rotated(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let rotation_at = state.issued + self.lifetime;
        if now >= rotation_at {
            match fresh() {
                Ok(next) => {
                    let old = std::mem::replace(&mut state.current, next);
                    let until = rotation_at + self.grace;
                    state.previous = (now < until).then_some((old, until));
                    state.issued = now;
                }
                Err(e) => tracing::error!(error = %e, "DPoP nonce not rotated"),
            }
        }
        if state
            .previous
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            state.previous = None;
        }
        state
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl NonceSource for RotatingNonces {
    fn current(&self) -> String {
        self.rotated().current.clone()
    }

    fn is_valid(&self, nonce: &str) -> bool {
        let state = self.rotated();
        let current = ct_eq(nonce, &state.current);
        let previous = state
            .previous
            .as_ref()
            .is_some_and(|(p, _)| ct_eq(nonce, p));
        current | previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rfc9449_s8_nonces_rotate_with_grace() {
        let n = RotatingNonces::new(Duration::from_secs(300), Duration::from_secs(60)).unwrap();
        let first = n.current();
        assert_eq!(first.len(), 43);
        assert!(first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(n.is_valid(&first));
        assert!(!n.is_valid("not-the-nonce"));
        assert!(!n.is_valid(""));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(n.current(), first, "not rotated before its lifetime");
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = n.current();
        assert_ne!(second, first, "rotated after its lifetime");
        assert!(
            n.is_valid(&first),
            "previous nonce accepted in the grace period"
        );
        assert!(n.is_valid(&second));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(n.is_valid(&first), "still in the grace period");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!n.is_valid(&first), "grace period over");
        assert!(n.is_valid(&second));
        // A long idle period: the old nonces are all gone, memory stays two nonces.
        tokio::time::advance(Duration::from_secs(10_000)).await;
        let third = n.current();
        assert!(!n.is_valid(&second) && !n.is_valid(&first));
        assert!(n.is_valid(&third));
    }

    #[test]
    fn zero_lifetime_is_refused() {
        assert_eq!(
            RotatingNonces::new(Duration::ZERO, Duration::ZERO).unwrap_err(),
            NonceError::ZeroLifetime
        );
    }
}
