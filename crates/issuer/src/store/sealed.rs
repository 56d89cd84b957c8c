//! Encryption at rest of the store's secrets (§9.1.4 "encrypted at rest",
//! I-112). [`SealedStore`] wraps the backend store (below the cache and the
//! audit decorators) and seals, with the key-encryption key ring
//! ([`crate::kek`]), what it writes of:
//!
//! - agent specifications (`NewRegistration::spec_json`, the prompt, tools
//!   and configuration), bound to the registration's checksum;
//! - private signing keys (`StoredSigningKey::private_key_pem`), bound to
//!   the key's `kid`;
//!
//! and opens them where they are read (`registration_specification`,
//! `signing_keys`). A value sealed under an unknown KEK, tampered with or
//! copied from another row is a [`StoreError::Backend`] naming the row,
//! never returned. `sealed_values` and `replace_sealed_value` pass the
//! stored (sealed) text through, for [`reseal`].
//!
//! The ring follows its KEK file: before sealing (at most every
//! [`RELOAD_INTERVAL`]) and when a value names a KEK it does not hold, the
//! file is checked and, when replaced, re-read; keys it held stay usable
//! for opening (I-126). So `ajwt kek rotate` run beside a running server
//! (or replicas sharing the file) takes effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

use super::{AgentRecord, ClientRecord, NewRegistration, Store, StoreError};
use super::{
    KeyChange, KeyChangeOutcome, NewTokenRecord, RegistrationActivity, RevokedRegistration,
    SealedKind, StatusIndex, StoredSigningKey, StoredSpecification, StoredStatusList, TokenRecord,
};
use crate::kek::{kind_label, Kek, KekRing, SealError, SealState, MAX_KEKS};

/// Least time between two checks of the KEK file before sealing.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// A value sealed under an unknown KEK checks the file at once (one
/// `stat`; only a replaced file is read again).
const FORCED_RELOAD_INTERVAL: Duration = Duration::ZERO;

/// Values read per page by [`reseal`].
pub const RESEAL_PAGE: u32 = 200;

/// Identity of a file version: replaced files (atomic rename) differ.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The KEK file a ring was read from, and when it was last checked.
#[derive(Debug)]
struct Watch {
    path: PathBuf,
    stamp: Option<Stamp>,
    checked: Instant,
}

/// A [`Store`] that seals specifications and private keys (I-112).
pub struct SealedStore {
    inner: Arc<dyn Store>,
    ring: RwLock<Arc<KekRing>>,
    watch: Option<Mutex<Watch>>,
}

impl std::fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore")
            .field("kek_ids", &self.ring().ids())
            .finish_non_exhaustive()
    }
}

fn sealing_failed(kind: SealedKind, id: &str, e: &SealError) -> StoreError {
    StoreError::Backend(format!("sealed {} {id}: {e}", kind_label(kind)))
}

impl SealedStore {
    /// Wraps `inner` with a fixed ring (tests, tools).
    pub fn new(inner: Arc<dyn Store>, ring: KekRing) -> SealedStore {
        SealedStore {
            inner,
            ring: RwLock::new(Arc::new(ring)),
            watch: None,
        }
    }

    /// Wraps `inner` with the ring read from the KEK file `path`, and
    /// follows that file when it is replaced.
    pub fn following(inner: Arc<dyn Store>, ring: KekRing, path: &Path) -> SealedStore {
        SealedStore {
            inner,
            ring: RwLock::new(Arc::new(ring)),
            watch: Some(Mutex::new(Watch {
                path: path.to_owned(),
                stamp: stamp(path),
                checked: Instant::now(),
            })),
        }
    }

    /// The ring in use.
    pub fn ring(&self) -> Arc<KekRing> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Re-reads the KEK file if it was replaced since the last check and
    /// the last check is older than `interval`. `true` when the ring changed.
    fn reload(&self, interval: Duration) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        let mut w = watch.lock().unwrap_or_else(PoisonError::into_inner);
        if w.checked.elapsed() < interval {
            return false;
        }
        w.checked = Instant::now();
        let now = stamp(&w.path);
        if now == w.stamp {
            return false;
        }
        match KekRing::load(&w.path) {
            Ok(file) => {
                w.stamp = now;
                let old = self.ring();
                // Keys the file dropped stay usable for opening (I-126).
                let mut previous: Vec<Kek> = file.previous().cloned().collect();
                for k in std::iter::once(old.current()).chain(old.previous()) {
                    if previous.len() + 1 >= 2 * MAX_KEKS {
                        break;
                    }
                    if k.id() != file.current().id() && previous.iter().all(|p| p.id() != k.id()) {
                        previous.push(k.clone());
                    }
                }
                let ring = KekRing::new(file.current().clone(), previous);
                tracing::info!(
                    file = %w.path.display(),
                    current_kek = ring.current().id(),
                    "key-encryption key file changed: re-read (I-126)"
                );
                *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "key-encryption key file changed but cannot be read: keeping the keys in use");
                false
            }
        }
    }

    /// Seals under the current KEK (checking the file first).
    fn seal(&self, kind: SealedKind, id: &str, text: &str) -> Result<String, StoreError> {
        self.reload(RELOAD_INTERVAL);
        self.ring()
            .seal(kind, id, text)
            .map_err(|e| sealing_failed(kind, id, &e))
    }

    /// Opens a stored value; on an unknown KEK, re-reads the file once.
    fn open(&self, kind: SealedKind, id: &str, value: &str) -> Result<String, StoreError> {
        let first = self.ring().open(kind, id, value);
        let opened = match first {
            Err(SealError::UnknownKek { .. }) if self.reload(FORCED_RELOAD_INTERVAL) => {
                self.ring().open(kind, id, value)
            }
            other => other,
        };
        match opened {
            Ok(o) => {
                if o.state == SealState::Plaintext {
                    tracing::warn!(
                        kind = kind_label(kind),
                        id,
                        "a stored value is not sealed (written before encryption at rest, I-128); it is sealed at the next start"
                    );
                }
                Ok(o.text)
            }
            Err(e) => {
                tracing::error!(kind = kind_label(kind), id, error = %e, "a sealed value cannot be opened (§9.1.4)");
                Err(sealing_failed(kind, id, &e))
            }
        }
    }

    /// Seals legacy plaintext values and, with `rewrap`, rewraps values
    /// sealed under previous KEKs, under the current KEK ([`reseal`]).
    pub async fn reseal(&self, rewrap: bool) -> Result<ResealReport, StoreError> {
        reseal(&*self.inner, &self.ring(), rewrap).await
    }
}

/// Failure to start encryption at rest ([`open`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The KEK file cannot be read or created.
    #[error(transparent)]
    Kek(#[from] crate::kek::KekError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored values are sealed under a KEK the file does not hold (a
    /// replica started without the deployment's `--kek-file`?).
    #[error("{count} stored value(s), e.g. {kind} {id}, are sealed under key-encryption key {kek_id}, which is not in {path}: start with the KEK file they were sealed under (--kek-file, AJWT_KEK_FILE; §9.1.4, I-126)")]
    MissingKek {
        /// The KEK file in use.
        path: String,
        /// The KEK the first such value names.
        kek_id: String,
        /// Its kind.
        kind: &'static str,
        /// Its id.
        id: String,
        /// How many values.
        count: usize,
    },
}

/// Starts encryption at rest over the backend `inner` (I-112): reads the
/// KEK file `kek_file`, or `<data_dir>/kek.key` (created, 0600, when
/// missing), seals the legacy plaintext values (I-128), and refuses to
/// start when stored values are sealed under a KEK the file lacks.
pub async fn open(
    inner: Arc<dyn Store>,
    kek_file: Option<&Path>,
    data_dir: &Path,
) -> Result<SealedStore, StartError> {
    let path = crate::kek::kek_path(kek_file, data_dir);
    let (ring, created) = KekRing::load_or_create(&path)?;
    if created {
        tracing::warn!(
            file = %path.display(),
            kek = ring.current().id(),
            "created a new key-encryption key (§9.1.4, I-112): back it up apart from the database; replicas must all be given this same file (--kek-file)"
        );
    }
    let store = SealedStore::following(inner, ring, &path);
    let report = start_check(&**store.inner(), &store.ring()).await?;
    let mut missing = report.unknown_kek();
    if let Some((kind, id, e)) = missing.next() {
        let kek_id = match e {
            SealError::UnknownKek { kek_id } => kek_id.clone(),
            _ => String::new(),
        };
        return Err(StartError::MissingKek {
            path: path.display().to_string(),
            kek_id,
            kind: kind_label(*kind),
            id: id.clone(),
            count: 1 + missing.count(),
        });
    }
    for (kind, id, e) in &report.failed {
        tracing::error!(kind = kind_label(*kind), id = %id, error = %e, "a stored sealed value cannot be opened (§9.1.4)");
    }
    if report.sealed_plaintext > 0 || report.previous > 0 {
        tracing::info!(
            sealed_plaintext = report.sealed_plaintext,
            under_previous_kek = report.previous,
            kek = store.ring().current().id(),
            "encryption at rest: sealed the values stored in plaintext (I-128)"
        );
    }
    Ok(store)
}

/// Most distinct heads [`start_check`] accepts from
/// [`Store::sealed_heads`] before it pages through the values instead.
const MAX_START_HEADS: u32 = 64;

/// The start-up check (I-128, I-126) in bounded time and memory (issue 15,
/// I-158): when the backend counts its specifications per envelope head
/// and every head names a KEK of `ring`, the counts are the report (no
/// value is read; signing keys, a handful, are still paged). Otherwise
/// (legacy plaintext to seal, an unknown or malformed envelope, a backend
/// without the count) it is [`reseal`] without rewrapping, which reads
/// every value page by page and reports them one by one.
pub async fn start_check(store: &dyn Store, ring: &KekRing) -> Result<ResealReport, StoreError> {
    let heads = store
        .sealed_heads(SealedKind::Specification, MAX_START_HEADS)
        .await?;
    let Some(heads) = heads else {
        return reseal(store, ring, false).await;
    };
    let mut current = 0u64;
    let mut previous = 0u64;
    for (head, count) in &heads {
        match crate::kek::envelope_head_kek_id(head) {
            Some(k) if k == ring.current().id() => current += count,
            Some(k) if ring.previous().any(|p| p.id() == k) => previous += count,
            _ => return reseal(store, ring, false).await,
        }
    }
    let mut report = reseal_kinds(store, ring, false, &[SealedKind::SigningKey]).await?;
    report.current += current;
    report.previous += previous;
    Ok(report)
}

/// What [`reseal`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Values already sealed under the current KEK.
    pub current: u64,
    /// Legacy plaintext values now sealed.
    pub sealed_plaintext: u64,
    /// Values moved from a previous KEK to the current one.
    pub rewrapped: u64,
    /// Values left under a previous KEK (`rewrap` false).
    pub previous: u64,
    /// Values that changed between read and write (another writer won).
    pub changed_meanwhile: u64,
    /// Values that cannot be opened: kind, id and why (never the value).
    pub failed: Vec<(SealedKind, String, SealError)>,
}

impl ResealReport {
    /// Values under a KEK this ring does not hold.
    pub fn unknown_kek(&self) -> impl Iterator<Item = &(SealedKind, String, SealError)> {
        self.failed
            .iter()
            .filter(|(_, _, e)| matches!(e, SealError::UnknownKek { .. }))
    }
}

/// Walks every sealed value of `store` (the backend, below any sealing
/// decorator) page by page and writes, with compare-and-swap, legacy
/// plaintext sealed under `ring`'s current KEK (I-128) and, when `rewrap`,
/// values sealed under a previous KEK rewrapped under it (I-126). A value
/// that changed meanwhile is left as the other writer left it. Values
/// already under the current KEK (or, without `rewrap`, a previous one) are
/// counted by their envelope's KEK id, not decrypted: a tampered one is
/// found when it is read.
pub async fn reseal(
    store: &dyn Store,
    ring: &KekRing,
    rewrap: bool,
) -> Result<ResealReport, StoreError> {
    reseal_kinds(
        store,
        ring,
        rewrap,
        &[SealedKind::Specification, SealedKind::SigningKey],
    )
    .await
}

/// [`reseal`] over the values of `kinds` only.
async fn reseal_kinds(
    store: &dyn Store,
    ring: &KekRing,
    rewrap: bool,
    kinds: &[SealedKind],
) -> Result<ResealReport, StoreError> {
    let mut report = ResealReport::default();
    for &kind in kinds {
        let mut after = String::new();
        loop {
            let page = store.sealed_values(kind, &after, RESEAL_PAGE).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = last.clone();
            let full = page.len() == RESEAL_PAGE as usize;
            for (id, value) in page {
                // Classified by the envelope's KEK id, without decrypting:
                // a start reads every value (I-128).
                match crate::kek::sealed_kek_id(&value) {
                    Some(k) if k == ring.current().id() => {
                        report.current += 1;
                        continue;
                    }
                    Some(k) if !rewrap && ring.previous().any(|p| p.id() == k) => {
                        report.previous += 1;
                        continue;
                    }
                    _ => {}
                }
                let opened = match ring.open(kind, &id, &value) {
                    Ok(o) => o,
                    Err(e) => {
                        report.failed.push((kind, id, e));
                        continue;
                    }
                };
                let counter = match opened.state {
                    SealState::Current => {
                        report.current += 1;
                        continue;
                    }
                    SealState::Previous(_) if !rewrap => {
                        report.previous += 1;
                        continue;
                    }
                    SealState::Previous(_) => &mut report.rewrapped,
                    SealState::Plaintext => &mut report.sealed_plaintext,
                };
                let new = ring
                    .seal(kind, &id, &opened.text)
                    .map_err(|e| sealing_failed(kind, &id, &e))?;
                if store.replace_sealed_value(kind, &id, &value, &new).await? {
                    *counter += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(report)
}

#[async_trait]
impl Store for SealedStore {
    async fn register_agent(&self, mut new: NewRegistration) -> Result<AgentRecord, StoreError> {
        let id = new.checksum.to_string();
        new.spec_json = self.seal(SealedKind::Specification, &id, &new.spec_json)?;
        self.inner.register_agent(new).await
    }

    async fn registration_specification(
        &self,
        registration_id: &str,
    ) -> Result<Option<StoredSpecification>, StoreError> {
        let Some(stored) = self
            .inner
            .registration_specification(registration_id)
            .await?
        else {
            return Ok(None);
        };
        let spec_json = self.open(
            SealedKind::Specification,
            &stored.checksum.to_string(),
            &stored.spec_json,
        )?;
        Ok(Some(StoredSpecification {
            checksum: stored.checksum,
            spec_json,
        }))
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let mut keys = self.inner.signing_keys().await?;
        for k in &mut keys {
            if let Some(pem) = &k.private_key_pem {
                k.private_key_pem = Some(self.open(SealedKind::SigningKey, &k.kid, pem)?);
            }
        }
        Ok(keys)
    }

    async fn apply_key_change(
        &self,
        mut change: KeyChange,
    ) -> Result<KeyChangeOutcome, StoreError> {
        if let Some(key) = &mut change.insert {
            if let Some(pem) = &key.private_key_pem {
                key.private_key_pem = Some(self.seal(SealedKind::SigningKey, &key.kid, pem)?);
            }
        }
        self.inner.apply_key_change(change).await
    }

    // ---- everything else: forwarded ----------------------------------------

    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        self.inner.latest_registration(agent_id).await
    }
    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        self.inner.revoke_agent(agent_id).await
    }
    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        self.inner.registrations(agent_id).await
    }
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        self.inner.insert_workflow(workflow).await
    }
    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
        self.inner.workflow(workflow_id).await
    }
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.inner.insert_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.inner.client(client_id).await
    }
    async fn client_count(&self) -> Result<u64, StoreError> {
        self.inner.client_count().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    async fn record_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        self.inner.record_token(token, list_size, random).await
    }
    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token_record(jti).await
    }
    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<crate::store::TokenReservation, StoreError> {
        self.inner.reserve_token(token, list_size, random).await
    }
    async fn finish_token(
        &self,
        reservation: crate::store::TokenReservation,
        audit: Option<crate::audit::AuditEntry>,
    ) -> Result<Option<crate::audit::AuditRecord>, StoreError> {
        self.inner.finish_token(reservation, audit).await
    }
    async fn revoke_token(&self, jti: &str, at_ms: i64) -> Result<u64, StoreError> {
        self.inner.revoke_token(jti, at_ms).await
    }
    async fn revoke_agent_tokens(&self, agent_id: &str, at_ms: i64) -> Result<u64, StoreError> {
        self.inner.revoke_agent_tokens(agent_id, at_ms).await
    }
    async fn revoke_registration(
        &self,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<Option<RevokedRegistration>, StoreError> {
        self.inner.revoke_registration(registration_id, at_ms).await
    }
    async fn status_list(&self, list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        self.inner.status_list(list_id).await
    }
    async fn prune_tokens(&self, before: i64) -> Result<u64, StoreError> {
        self.inner.prune_tokens(before).await
    }
    async fn record_checksum_mismatch(
        &self,
        agent_id: &str,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .record_checksum_mismatch(agent_id, registration_id, at_ms)
            .await
    }
    async fn registration_activity(
        &self,
        agent_id: &str,
    ) -> Result<Vec<RegistrationActivity>, StoreError> {
        self.inner.registration_activity(agent_id).await
    }
    async fn append_audit(
        &self,
        entry: crate::audit::AuditEntry,
    ) -> Result<crate::audit::AuditRecord, StoreError> {
        self.inner.append_audit(entry).await
    }
    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        self.inner.audit_records(after_seq, limit).await
    }
    async fn audit_last(&self, n: u32) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        self.inner.audit_last(n).await
    }
    async fn append_audit_checkpoint(
        &self,
        checkpoint: &crate::audit::AuditCheckpoint,
    ) -> Result<(), StoreError> {
        self.inner.append_audit_checkpoint(checkpoint).await
    }
    async fn latest_audit_checkpoint(
        &self,
    ) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError> {
        self.inner.latest_audit_checkpoint().await
    }
    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        self.inner.insert_first_client(client).await
    }
    async fn sealed_heads(
        &self,
        kind: SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        self.inner.sealed_heads(kind, max_heads).await
    }
    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.sealed_values(kind, after, limit).await
    }
    async fn replace_sealed_value(
        &self,
        kind: SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.inner.replace_sealed_value(kind, id, old, new).await
    }
    async fn rate_limit_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        self.inner
            .rate_limit_take(key, burst, interval_ms, now_ms)
            .await
    }
    async fn rate_limit_block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.inner.rate_limit_block(key, until_ms).await
    }
    async fn rate_limit_blocked_until(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.rate_limit_blocked_until(keys, now_ms).await
    }
    async fn remember_once(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner.remember_once(scope, value, expires_ms).await
    }
    async fn prune_shared_state(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.prune_shared_state(now_ms).await
    }
    async fn stats(&self) -> Result<super::StoreStats, StoreError> {
        self.inner.stats().await
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<super::StoreChange>> {
        self.inner.changes()
    }
}

// ---- KEK rotation (I-126) ---------------------------------------------------

/// Most rewrap passes of one rotation (values sealed under the old KEK by a
/// server that had not yet seen the new file are caught by the next pass).
const MAX_REWRAP_PASSES: usize = 3;

/// What [`rotate_kek`] should do.
#[derive(Debug, Default)]
pub struct Rotation {
    /// The new KEK: `None` generates one; a KEK the file already holds as a
    /// previous one becomes current again.
    pub new_kek: Option<Kek>,
    /// No new KEK: only rewrap values sealed under previous KEKs.
    pub rewrap_only: bool,
    /// Keep the previous KEKs in the file afterwards (replicas with their
    /// own copies of the file, I-126).
    pub keep_previous: bool,
    /// Time given to servers following the file to see the new KEK before
    /// the rewrap starts (at least [`RELOAD_INTERVAL`] while servers run).
    pub wait: Duration,
}

/// What [`rotate_kek`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The current KEK afterwards.
    pub kek_id: String,
    /// The KEK that was current before.
    pub previous_kek_id: String,
    /// Totals over the rewrap passes.
    pub reseal: ResealReport,
    /// KEK ids removed from the file (empty when kept).
    pub dropped: Vec<String>,
}

/// A rotation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The KEK file.
    #[error(transparent)]
    Kek(#[from] crate::kek::KekError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file would hold too many KEKs.
    #[error("the key-encryption key file already holds {MAX_KEKS} keys: finish the previous rotation first (ajwt kek rotate --rewrap-only)")]
    TooManyKeks,
}

/// Rotates the KEK of the file `path` over the backend `store` (I-126):
/// 1. writes the file with the new KEK first and the old ones after it
///    (servers following the file seal under the new one from their next
///    check, and open both);
/// 2. waits `wait`;
/// 3. rewraps every value not sealed under the new KEK (compare-and-swap,
///    page by page; up to [`MAX_REWRAP_PASSES`] passes until one changes
///    nothing);
/// 4. unless `keep_previous` or some value could not be opened, rewrites
///    the file with the new KEK alone.
///
/// A crash at any point leaves every value readable with the file as it
/// is then (the file always holds every KEK some value may be sealed under).
pub async fn rotate_kek(
    store: &dyn Store,
    path: &Path,
    rotation: Rotation,
) -> Result<RotationReport, RotationError> {
    let old = KekRing::load(path)?;
    let previous_kek_id = old.current().id().to_owned();
    let ring = if rotation.rewrap_only {
        old
    } else {
        let new = rotation.new_kek.unwrap_or_else(Kek::generate);
        let others: Vec<Kek> = std::iter::once(old.current())
            .chain(old.previous())
            .filter(|k| k.id() != new.id())
            .cloned()
            .collect();
        if others.len() + 1 > MAX_KEKS {
            return Err(RotationError::TooManyKeks);
        }
        let ring = KekRing::new(new, others);
        ring.write(path)?;
        tracing::info!(file = %path.display(), new_kek = ring.current().id(), "key-encryption key file: new KEK first (I-126)");
        ring
    };
    if !rotation.wait.is_zero() {
        tokio::time::sleep(rotation.wait).await;
    }
    let mut total = ResealReport::default();
    let mut stable = false;
    for _ in 0..MAX_REWRAP_PASSES {
        let r = reseal(store, &ring, true).await?;
        let moved = r.rewrapped + r.sealed_plaintext + r.changed_meanwhile;
        total.current = r.current;
        total.sealed_plaintext += r.sealed_plaintext;
        total.rewrapped += r.rewrapped;
        total.changed_meanwhile += r.changed_meanwhile;
        total.failed = r.failed;
        if moved == 0 {
            stable = true;
            break;
        }
    }
    let mut dropped = Vec::new();
    if !rotation.keep_previous && stable && total.failed.is_empty() {
        dropped = ring.previous().map(|k| k.id().to_owned()).collect();
        if !dropped.is_empty() {
            KekRing::new(ring.current().clone(), Vec::new()).write(path)?;
        }
    }
    Ok(RotationReport {
        kek_id: ring.current().id().to_owned(),
        previous_kek_id,
        reseal: total,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn key(kid: &str, pem: Option<&str>) -> StoredSigningKey {
        StoredSigningKey {
            kid: kid.to_owned(),
            alg: "ES256".to_owned(),
            created_at: 1,
            activates_at: 1,
            retires_at: None,
            retired_at: None,
            private_key_pem: pem.map(str::to_owned),
        }
    }

    /// The real SQLite store (in memory) below the decorator.
    async fn backend() -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open_in_memory().await.unwrap())
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n";

    /// §9.1.4: a private key inserted through the decorator is stored
    /// sealed under its kid and read back as PEM; retired keys (no private
    /// key) pass through.
    #[tokio::test]
    async fn i112_private_signing_keys_are_sealed_under_their_kid() {
        let b = backend().await;
        let ring = KekRing::new(Kek::generate(), Vec::new());
        let s = SealedStore::new(b.clone(), ring.clone());
        for k in [key("k1", Some(PEM)), key("k0", None)] {
            let change = KeyChange {
                insert: Some(k),
                ..KeyChange::default()
            };
            assert_eq!(
                s.apply_key_change(change).await.unwrap(),
                KeyChangeOutcome::Applied
            );
        }
        let by_kid = |keys: &[StoredSigningKey], kid: &str| {
            keys.iter().find(|k| k.kid == kid).cloned().unwrap()
        };
        let raw = b.signing_keys().await.unwrap();
        let sealed = by_kid(&raw, "k1").private_key_pem.unwrap();
        assert!(crate::kek::is_sealed(&sealed));
        assert!(!sealed.contains("PRIVATE KEY"));
        assert_eq!(by_kid(&raw, "k0").private_key_pem, None);
        let read = s.signing_keys().await.unwrap();
        assert_eq!(by_kid(&read, "k1").private_key_pem.as_deref(), Some(PEM));
        assert_eq!(by_kid(&read, "k0"), key("k0", None));
        // The sealed key moved to another kid is refused.
        let moved = KeyChange {
            insert: Some(key("k2", Some(&sealed))),
            ..KeyChange::default()
        };
        b.apply_key_change(moved).await.unwrap();
        let err = s.signing_keys().await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("signing-key k2") && !m.contains("MIGH")),
            "{err}"
        );
    }

    /// I-126: a store following a KEK file re-reads it when replaced:
    /// it seals under the new first key and keeps opening the old ones.
    #[tokio::test]
    async fn i126_following_store_switches_to_the_new_kek_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.key");
        let (old, _) = KekRing::load_or_create(&path).unwrap();
        let b = backend().await;
        let s = SealedStore::following(b.clone(), old.clone(), &path);
        let insert = |kid: &str| KeyChange {
            insert: Some(key(kid, Some(PEM))),
            ..KeyChange::default()
        };
        s.apply_key_change(insert("k1")).await.unwrap();
        let new = KekRing::new(Kek::generate(), Vec::new());
        new.write(&path).unwrap();
        // The next seal after RELOAD_INTERVAL uses the file's new key.
        s.watch.as_ref().unwrap().lock().unwrap().checked -= RELOAD_INTERVAL;
        s.apply_key_change(insert("k2")).await.unwrap();
        let raw = b.signing_keys().await.unwrap();
        let id = |i: usize| {
            crate::kek::sealed_kek_id(raw[i].private_key_pem.as_deref().unwrap())
                .unwrap()
                .to_owned()
        };
        assert_eq!(id(0), old.current().id());
        assert_eq!(id(1), new.current().id());
        // Both open: the key the file dropped stays in memory.
        let read = s.signing_keys().await.unwrap();
        assert!(read
            .iter()
            .all(|k| k.private_key_pem.as_deref() == Some(PEM)));
        assert_eq!(
            s.ring().ids(),
            vec![new.current().id().to_owned(), old.current().id().to_owned()]
        );
        // Rewrap-only rotation moves k1 under the new key.
        let r = rotate_kek(
            &*b,
            &path,
            Rotation {
                rewrap_only: true,
                ..Rotation::default()
            },
        )
        .await;
        // The file no longer holds the old key: k1 cannot be opened by
        // the tool, it is reported and left as it is.
        let r = r.unwrap();
        assert_eq!(r.reseal.failed.len(), 1);
        assert!(r.dropped.is_empty());
        // The running store rewraps it (it holds both).
        let rep = s.reseal(true).await.unwrap();
        assert_eq!((rep.rewrapped, rep.current), (1, 1));
    }
}
