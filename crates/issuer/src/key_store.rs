//! The issuer's signing keys in its store (I-110): every replica on one
//! database signs and verifies with the same keys. [`load`] runs at start
//! (importing the key files of an issuer from before I-110, or creating the
//! first key), [`reload`] every [`crate::service::KEY_MAINTENANCE_INTERVAL`]
//! (a key published by another replica is published here too before it
//! signs, I-90), and [`rotate`] applies a rotation planned by
//! [`KeyRing::plan_rotation`] with [`Store::apply_key_change`], so replicas
//! rotating at the same time add one key. The private keys pass through
//! here in plaintext; the store seals them at rest (I-112).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::keys::{KeyError, KeyRing, LegacyKeyFiles, Rotation, RotationPolicy, SigningAlgorithm};
use crate::service::KEY_MAINTENANCE_INTERVAL;
use crate::store::{KeyChange, KeyChangeOutcome, Store, StoredSigningKey};

/// Runs blocking key work (PEM parsing, key generation) off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyError::Generation(format!("key task: {e}")))?
}

/// The ring as stored, as of `now`, under `policy`. Keys due for
/// retirement (their `retires_at` passed, or beyond
/// [`crate::keys::MAX_PREVIOUS_KEYS`]) are retired in the store first:
/// private key deleted, public record kept (I-90). A store without a live
/// key is [`KeyError::NoStoredKey`].
pub async fn reload(
    store: &dyn Store,
    policy: RotationPolicy,
    now: u64,
) -> Result<KeyRing, KeyError> {
    reload_after(store, None, policy, now).await
}

/// [`reload`] reusing the parsed keys of `previous`, the ring it replaces
/// ([`KeyRing::from_stored_after`]).
pub async fn reload_after(
    store: &dyn Store,
    previous: Option<&KeyRing>,
    policy: RotationPolicy,
    now: u64,
) -> Result<KeyRing, KeyError> {
    let records = store.signing_keys().await?;
    let known = previous.cloned();
    let (ring, retire) =
        blocking(move || KeyRing::from_stored_after(&records, policy, now, known.as_ref())).await?;
    if retire.is_empty() {
        return Ok(ring);
    }
    let kids: Vec<String> = retire.iter().map(|(kid, _)| kid.clone()).collect();
    store
        .apply_key_change(KeyChange {
            retire,
            ..KeyChange::default()
        })
        .await?;
    tracing::info!(retired = ?kids, "retired signing keys (I-70, I-90): removed from the JWK Set, private keys deleted from the store");
    let records = store.signing_keys().await?;
    let (ring, _) =
        blocking(move || KeyRing::from_stored_after(&records, policy, now, Some(&ring))).await?;
    Ok(ring)
}

/// The keys at start (I-110), as of `now`: with `legacy_dir` (the data
/// directory), key files of an issuer from before I-110 are imported into
/// the store and deleted (see [`import_legacy`]); then, when the store holds
/// no live key, one key of `alg` is created, inserted only if no replica
/// inserted one meanwhile (`insert_unless_pending_after`), so replicas
/// starting together on an empty database share one key. When keys exist,
/// `alg` is not used (a warning is logged if the signing key differs).
pub async fn load(
    store: &dyn Store,
    legacy_dir: Option<&Path>,
    alg: SigningAlgorithm,
    policy: RotationPolicy,
    now: u64,
) -> Result<KeyRing, KeyError> {
    if let Some(dir) = legacy_dir {
        import_legacy(store, dir).await?;
    }
    let has_live = store
        .signing_keys()
        .await?
        .iter()
        .any(|k| k.private_key_pem.is_some());
    if !has_live {
        let key = blocking(move || KeyRing::generate_stored(alg, now)).await?;
        let kid = key.kid.clone();
        let outcome = store
            .apply_key_change(KeyChange {
                insert: Some(key),
                // Any live key counts as "pending after 0": only the first
                // replica's insert is written.
                insert_unless_pending_after: Some(0),
                ..KeyChange::default()
            })
            .await?;
        match outcome {
            KeyChangeOutcome::Applied => {
                tracing::info!(kid = %kid, alg = %alg, "generated a signing key (stored, I-110)")
            }
            KeyChangeOutcome::PendingExists => {
                tracing::info!("another replica created the first signing key: using it (I-110)")
            }
        }
    }
    let ring = reload(store, policy, now).await?;
    if ring.current_alg() != alg {
        tracing::warn!(
            kid = %ring.current_kid(),
            key_alg = %ring.current_alg(),
            configured_alg = %alg,
            "the signing key is not of the configured algorithm; it is used anyway"
        );
    }
    Ok(ring)
}

/// Imports the key files of `<data_dir>/signing-keys/` (format 1, with the
/// public records of `signing-keys-retired/`) into the store, one insert
/// per key, then deletes both directories, so no plaintext private key
/// stays on disk (I-110). Only when the store holds no live key, or only
/// keys from these files (an import interrupted by a crash is resumed);
/// when it holds other keys the files are not imported and left in place,
/// with a warning (I-121). Returns how many keys were imported.
pub async fn import_legacy(store: &dyn Store, data_dir: &Path) -> Result<usize, KeyError> {
    let dir: PathBuf = data_dir.to_owned();
    let Some(legacy) = blocking(move || LegacyKeyFiles::read(&dir)).await? else {
        return Ok(0);
    };
    let stored = store.signing_keys().await?;
    let legacy_kids: HashSet<&str> = legacy.keys.iter().map(|k| k.kid.as_str()).collect();
    let foreign: Vec<&str> = stored
        .iter()
        .filter(|k| k.private_key_pem.is_some() && !legacy_kids.contains(k.kid.as_str()))
        .map(|k| k.kid.as_str())
        .collect();
    if !foreign.is_empty() {
        tracing::warn!(
            target: "security",
            event = "legacy_signing_keys_ignored",
            dir = %data_dir.join(crate::keys::KEY_DIR).display(),
            stored = ?foreign,
            "the store already holds other signing keys: the key files of this data directory are NOT imported (I-121); delete them once they are no longer needed"
        );
        return Ok(0);
    }
    let known: HashSet<&str> = stored.iter().map(|k| k.kid.as_str()).collect();
    let new: Vec<StoredSigningKey> = legacy
        .retired
        .iter()
        .chain(legacy.keys.iter())
        .filter(|k| !known.contains(k.kid.as_str()))
        .cloned()
        .collect();
    let imported = new.iter().filter(|k| k.private_key_pem.is_some()).count();
    for key in new {
        store
            .apply_key_change(KeyChange {
                insert: Some(key),
                ..KeyChange::default()
            })
            .await?;
    }
    blocking(move || legacy.remove()).await?;
    tracing::warn!(
        target: "security",
        event = "legacy_signing_keys_imported",
        keys = imported,
        dir = %data_dir.join(crate::keys::KEY_DIR).display(),
        "imported the signing key files into the store and deleted them (I-110)"
    );
    Ok(imported)
}

/// Publish-then-sign rotation (I-90) of `ring` as of `now`: plans it
/// ([`KeyRing::plan_rotation`]), hands the planned ring to `publish` (the
/// issuer serves it at once, so the new key is in its JWK Set for the whole
/// delay however long the store takes to commit; a key that then loses the
/// race below is published but never signs), applies the change to the
/// store, and returns the ring reloaded from the store. When another
/// replica's key is already pending (`PendingExists`, or seen in `ring`),
/// nothing is added and that key is returned (`already_pending`). The
/// publish delay is extended by `extra_delay` or [`replica_delay`],
/// whichever is greater (I-120). A ring that is not stored
/// ([`KeyRing::generate`]) is rotated in memory only.
pub async fn rotate(
    store: &dyn Store,
    ring: &KeyRing,
    alg: SigningAlgorithm,
    now: u64,
    extra_delay: u64,
    publish: &(dyn Fn(&KeyRing) + Send + Sync),
) -> Result<(KeyRing, Rotation), KeyError> {
    let policy = ring.policy();
    let extra_delay = extra_delay.max(replica_delay(store, ring));
    let mut ring = ring.clone();
    // A second attempt sees the other replica's pending key and adds none.
    for _ in 0..2 {
        let current = ring.clone();
        let plan = blocking(move || current.plan_rotation(alg, now, extra_delay)).await?;
        let Some(change) = plan.change.filter(|_| ring.is_stored()) else {
            return Ok((plan.ring, plan.rotation));
        };
        publish(&plan.ring);
        match store.apply_key_change(change).await? {
            KeyChangeOutcome::Applied => {
                let fresh = reload_after(store, Some(&plan.ring), policy, now).await?;
                return Ok((fresh, plan.rotation));
            }
            KeyChangeOutcome::PendingExists => {
                tracing::info!("another replica published a key meanwhile: no key added (I-110)");
                ring = reload_after(store, Some(&ring), policy, now).await?;
                publish(&ring);
            }
        }
    }
    Err(KeyError::Generation(
        "key rotation: the stored keys changed during the rotation; try again".to_owned(),
    ))
}

/// What a rotation of `ring` adds to the publish delay (I-120): when the
/// store is shared by several server processes (it has a change feed,
/// [`Store::changes`]: PostgreSQL), [`KEY_MAINTENANCE_INTERVAL`], since the
/// other replicas publish a new key at their next reload, up to that much
/// later, and must still publish it for the whole delay before it signs.
/// 0 for an in-memory ring, a publish delay of 0 (the key signs at once,
/// I-90), or a store of one server process (SQLite; `ajwt keys rotate`, the
/// other process there, asks for the interval itself).
pub fn replica_delay(store: &dyn Store, ring: &KeyRing) -> u64 {
    if ring.is_stored() && ring.policy().publish_delay > 0 && store.changes().is_some() {
        KEY_MAINTENANCE_INTERVAL
    } else {
        0
    }
}
