//! Credentials of the issuer's OAuth clients (RFC 6749 §2.3.1): random
//! client ids and secrets from the operating system's CSPRNG, stored only as
//! hashes (§9.1.4 "Store ... with access controls"; spec I-72).
//!
//! Secrets this issuer generates are 256-bit uniformly random values: they
//! are stored as SHA-256 digests (`$sha256$<base64url>`) and verified in
//! constant time, in microseconds. A password hash buys nothing against a
//! 256-bit random value and let one unauthenticated request make the server
//! allocate 19 MiB (issue 12 defect 1). Argon2id stays for secrets an
//! operator chose ([`hash_secret`]) and for hashes stored by earlier versions;
//! every Argon2 computation goes through [`SlowHashes`], which bounds how
//! many run at once (the number of cores) and how many may wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Prefix of a stored SHA-256 digest of a generated secret.
pub const SHA256_PREFIX: &str = "$sha256$";

/// Stores a secret this issuer generated ([`generate_secret`], 256 random
/// bits): `$sha256$` followed by the base64url SHA-256 digest. Fast, no salt
/// needed: the input is uniformly random (I-72).
pub fn hash_generated_secret(secret: &str) -> String {
    format!(
        "{SHA256_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
    )
}

/// Whether verifying against `stored` runs Argon2 (an operator-chosen secret
/// or a hash from an earlier version): then it must go through [`SlowHashes`].
pub fn is_slow(stored: &str) -> bool {
    !stored.starts_with(SHA256_PREFIX)
}

/// Whether `secret` matches `stored`: a `$sha256$` digest compared in
/// constant time, or an Argon2id PHC string (see [`verify_secret`]).
pub fn verify_stored(secret: &str, stored: &str) -> bool {
    match stored.strip_prefix(SHA256_PREFIX) {
        Some(digest) => {
            let Ok(expected) = URL_SAFE_NO_PAD.decode(digest) else {
                return false;
            };
            let actual = Sha256::digest(secret.as_bytes());
            expected.len() == actual.len() && bool::from(expected.ct_eq(actual.as_slice()))
        }
        None => verify_secret(secret, stored),
    }
}

/// The Argon2 computations running and waiting are both bounded: at most
/// `running` at once (a permit each), at most `queue` waiting; past that the
/// caller is told to come back later (503 with `Retry-After`).
#[derive(Debug)]
pub struct SlowHashes {
    permits: std::sync::Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    /// Argon2 working memory, one buffer per running computation, reused:
    /// allocating 19 MiB per request on ever-new blocking threads left
    /// hundreds of MiB in the allocator's per-thread arenas. Shared with the
    /// blocking task, which returns its buffer before it gives its permit
    /// back (I-146).
    buffers: std::sync::Arc<std::sync::Mutex<Vec<Vec<Block>>>>,
    /// Working-memory buffers ever allocated: at most `running` (I-146).
    allocated: std::sync::Arc<AtomicUsize>,
}

/// Too many slow hashes are running and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many client authentications in progress")]
pub struct Busy;

impl SlowHashes {
    /// At most `running` at once and `queue` waiting.
    pub fn new(running: usize, queue: usize) -> SlowHashes {
        SlowHashes {
            permits: std::sync::Arc::new(Semaphore::new(running.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            buffers: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
            allocated: std::sync::Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many Argon2 working-memory buffers were ever allocated: never
    /// more than the computations allowed to run at once, whatever happens
    /// to the callers (I-146).
    pub fn buffers_allocated(&self) -> usize {
        self.allocated.load(Ordering::Acquire)
    }

    /// The process-wide limiter: as many running as cores, four times as
    /// many waiting. Argon2 is CPU- and memory-bound, so one bound for the
    /// whole process is the right one.
    pub fn global() -> &'static SlowHashes {
        static GLOBAL: OnceLock<SlowHashes> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            SlowHashes::new(cores, 4 * cores)
        })
    }

    /// A permit to run one Argon2 computation, or [`Busy`] when the queue is full.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| Busy)
    }

    /// [`verify_secret`] on a blocking thread under a permit, with a reused
    /// working-memory buffer (at most one per permit ever exists).
    ///
    /// The permit and the buffer belong to the blocking task, not to this
    /// future: a caller that gives up (client disconnect, timeout) drops the
    /// future while the hash still runs, and the permit must stay held until
    /// the computation has ended and its buffer is back in the pool, or a
    /// new request would start another computation with a new buffer, and
    /// memory would grow with the number of abandoned requests (issue 15:
    /// 10.5 GB RSS at concurrency 64 with valid secrets; I-146).
    pub async fn verify(&self, secret: String, phc: String) -> Result<bool, SlowHashError> {
        let permit = self.acquire().await?;
        let pooled = self.buffers.lock().ok().and_then(|mut b| b.pop());
        let mut blocks = match pooled {
            Some(b) => b,
            None => {
                self.allocated.fetch_add(1, Ordering::AcqRel);
                Vec::new()
            }
        };
        let pool = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let ok = verify_with_memory(&secret, &phc, &mut blocks);
            if let Ok(mut b) = pool.lock() {
                b.push(blocks);
            }
            drop(permit);
            ok
        })
        .await
        .map_err(|e| SlowHashError::Task(e.to_string()))
    }
}

/// Why a slow hash did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlowHashError {
    /// The limiter is full: retry later.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The blocking task failed.
    #[error("hashing task: {0}")]
    Task(String),
}

/// Hashes an operator-chosen `secret` with Argon2id (the `argon2` crate's default parameters)
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
    verify_with_memory(secret, phc, &mut Vec::new())
}

/// [`verify_secret`] with `blocks` as Argon2's working memory (resized to the
/// hash's memory cost and kept by the caller for reuse).
fn verify_with_memory(secret: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
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
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let block_count = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
    blocks.resize(block_count, Block::default());
    let mut out = vec![0u8; expected.len()];
    argon2
        .hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, &mut blocks[..])
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
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
    fn i72_generated_secrets_are_stored_as_sha256_and_verified_in_constant_time() {
        let secret = generate_secret();
        let stored = hash_generated_secret(&secret);
        // Independent oracle: the digest of the UTF-8 bytes, base64url.
        let expected = format!(
            "$sha256${}",
            URL_SAFE_NO_PAD.encode(<Sha256 as Digest>::digest(secret.as_bytes()))
        );
        assert_eq!(stored, expected);
        assert!(!is_slow(&stored));
        assert!(verify_stored(&secret, &stored));
        assert!(!verify_stored(&format!("{secret}x"), &stored));
        assert!(!verify_stored("", &stored));
        for bad in ["$sha256$", "$sha256$!!", "$sha256$AAAA"] {
            assert!(!verify_stored(&secret, bad), "{bad}");
        }
        // Argon2 hashes from earlier versions still verify, on the slow path.
        let legacy = hash_secret(&secret).unwrap();
        assert!(is_slow(&legacy));
        assert!(verify_stored(&secret, &legacy));
        assert!(!verify_stored("wrong", &legacy));
    }

    #[tokio::test]
    async fn i72_slow_hashes_bound_running_and_waiting() {
        let limiter = std::sync::Arc::new(SlowHashes::new(1, 2));
        let held = limiter.acquire().await.unwrap();
        // Two may wait; the third is refused at once.
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await.map(drop) })
            })
            .collect();
        while limiter.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limiter.acquire().await.err(), Some(Busy));
        drop(held);
        for w in waiters {
            assert_eq!(w.await.unwrap(), Ok(()));
        }
        assert!(limiter.acquire().await.is_ok());
    }

    /// I-146: with valid secrets and callers that give up mid-hash (client
    /// disconnects), the Argon2 working memory stays bounded by the permits:
    /// a computation keeps its permit until it ends, so no more buffers than
    /// computations allowed to run are ever allocated.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn i146_argon2_memory_is_bounded_by_the_permits_even_when_callers_give_up() {
        const RUNNING: usize = 2;
        let limiter = std::sync::Arc::new(SlowHashes::new(RUNNING, 64));
        // A real Argon2id hash of a valid secret, long enough (4 MiB, t=2)
        // that the callers below give up while it runs.
        let params = Params::new(4096, 2, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"valid secret", &salt)
            .unwrap()
            .to_string();
        let spawn = |n: usize| -> Vec<tokio::task::JoinHandle<Result<bool, SlowHashError>>> {
            (0..n)
                .map(|_| {
                    let l = limiter.clone();
                    let phc = phc.clone();
                    tokio::spawn(async move { l.verify("valid secret".to_owned(), phc).await })
                })
                .collect()
        };
        for _round in 0..2 {
            // RUNNING callers start hashing, then all give up ...
            let abandoned = spawn(RUNNING);
            while limiter.permits.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
            for t in &abandoned {
                t.abort();
            }
            // ... and new callers arrive at once (concurrency 64 in issue 15).
            for t in spawn(4 * RUNNING) {
                assert_eq!(t.await.unwrap(), Ok(true));
            }
            for t in abandoned {
                let _ = t.await;
            }
        }
        // Wait for every computation to end (they hold the permits).
        let all = limiter
            .permits
            .acquire_many(u32::try_from(RUNNING).unwrap())
            .await
            .unwrap();
        drop(all);
        assert!(
            limiter.buffers_allocated() <= RUNNING,
            "{} buffers allocated for {RUNNING} permits",
            limiter.buffers_allocated()
        );
        assert!(limiter.buffers.lock().unwrap().len() <= RUNNING);
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
