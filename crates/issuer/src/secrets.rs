//! Credentials of the issuer's OAuth clients (RFC 6749 §2.3.1): random
//! client ids and secrets from the operating system's CSPRNG, and Argon2id
//! hashing of secrets into PHC strings so the store never holds a secret
//! (§9.1.4 "Store ... with access controls"). Hashing and verification are
//! deliberately slow (tens of milliseconds): call them from
//! `tokio::task::spawn_blocking` in request handlers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

/// Upper bounds on the cost parameters accepted from a stored PHC string,
/// so a corrupted or planted hash cannot make verification allocate
/// gigabytes or spin for minutes. Far above the defaults (19 MiB, t=2, p=1).
const MAX_M_COST_KIB: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;

/// Hashing failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Argon2 refused the input (e.g. a secret longer than 2^32 - 1 bytes).
    #[error("cannot hash secret: {0}")]
    Hash(String),
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new client id: `client_` followed by 16 random bytes in lowercase hex.
pub fn generate_client_id() -> String {
    format!("client_{}", hex::encode(random_bytes::<16>()))
}

/// A new client secret: 32 random bytes (256 bits), base64url without
/// padding (43 characters).
pub fn generate_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Hashes `secret` with Argon2id (the `argon2` crate's default parameters)
/// and a random 16-byte salt; returns the PHC string
/// (`$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>`).
pub fn hash_secret(secret: &str) -> Result<String, SecretError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `secret` matches the Argon2id PHC string `phc`. The comparison
/// of the derived hash is constant-time (inside `password-hash`). A
/// malformed PHC string, another algorithm than Argon2id, or cost
/// parameters beyond sane bounds give `false`; this never panics.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    Argon2::default()
        .verify_password(secret.as_bytes(), &hash)
        .is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_verify_round_trip() {
        let secret = generate_secret();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(!phc.contains(&secret));
        assert!(verify_secret(&secret, &phc));
        assert!(!verify_secret("wrong", &phc));
        assert!(!verify_secret(&format!("{secret}x"), &phc));
        assert!(!verify_secret("", &phc));
    }

    #[test]
    fn secrets_hashes_are_salted() {
        let a = hash_secret("same secret").unwrap();
        let b = hash_secret("same secret").unwrap();
        assert_ne!(a, b);
        assert!(verify_secret("same secret", &a));
        assert!(verify_secret("same secret", &b));
    }

    #[test]
    fn secrets_malformed_phc_is_false() {
        let good = hash_secret("s").unwrap();
        let truncated = &good[..good.len() - 5];
        let argon2i = good.replacen("$argon2id$", "$argon2i$", 1);
        let huge = "$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHRzYWx0$\
                    aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        for phc in [
            "",
            "$",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$$",
            "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            truncated,
            &argon2i,
            huge,
            "$argon2id$v=19$m=19456,t=2,p=1$\u{e9}$\u{e9}",
        ] {
            assert!(!verify_secret("s", phc), "{phc:?}");
        }
    }

    #[test]
    fn secrets_generated_credentials_have_the_documented_form() {
        let id = generate_client_id();
        let hex = id.strip_prefix("client_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(generate_client_id(), id);

        let secret = generate_secret();
        assert_eq!(secret.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
        assert_ne!(generate_secret(), secret);
    }
}
