//! A caching [`Store`] wrapper (§4.7.3 "Cache agent registry lookups").
//!
//! [`CachedStore`] delegates every call to an inner store and keeps two
//! bounded in-memory maps: the LATEST registration of recently seen agents
//! (§4.7.1), and workflows (immutable once registered, §4.7.2). A successful
//! (or indeterminate) `register_agent` or `revoke_agent` invalidates the
//! agent's entry, and a
//! generation counter keeps a lookup that raced with that registration from
//! re-inserting the registration it replaced. Only hits are cached: unknown
//! agent or workflow ids always reach the inner store, so probing with random
//! ids cannot evict real entries. Entries also expire after a TTL, which
//! bounds staleness when another process writes to the same database.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

use super::{AgentRecord, ClientRecord, NewRegistration, Store, StoreError};
use super::{
    NewTokenRecord, RegistrationActivity, RevokedRegistration, StatusIndex, StoredStatusList,
    TokenRecord,
};

/// Default bound of each cache map, in entries.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Default bound of each cache map, in (estimated) bytes of cached values
/// (issue 12 defect 7, I-75). One value may take at most an eighth of it;
/// a larger one is served but not cached.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Default lifetime of a cached agent registration.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Default lifetime of a cached workflow: workflows are immutable, the
/// lifetime only bounds how long an unused one stays in memory.
pub const DEFAULT_WORKFLOW_TTL: Duration = Duration::from_secs(600);

/// An estimate of the heap bytes a cached value holds (strings and
/// containers), for the byte bound.
trait Weight {
    fn weight(&self) -> usize;
}

/// Fixed overhead counted per string or container (allocation, pointers).
const OVERHEAD: usize = 32;

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> usize {
    items.into_iter().map(|s| s.len() + OVERHEAD).sum()
}

impl Weight for AgentRecord {
    fn weight(&self) -> usize {
        let jwk = self.public_jwk.as_ref().map_or(0, |m| {
            serde_json::to_vec(m).map_or(0, |v| v.len()) + OVERHEAD * m.len()
        });
        256 + self.agent_id.len()
            + self.registration_id.len()
            + self.jwk_thumbprint.as_ref().map_or(0, String::len)
            + self.app_id.as_ref().map_or(0, String::len)
            + self.allowed_scopes.as_ref().map_or(0, strings)
            + jwk
    }
}

impl Weight for Workflow {
    fn weight(&self) -> usize {
        let steps: usize = self
            .steps
            .iter()
            .map(|s| {
                64 + s.step_id.len()
                    + s.agent_id.as_ref().map_or(0, String::len)
                    + s.scopes.as_ref().map_or(0, strings)
            })
            .sum();
        OVERHEAD + self.workflow_id.len() + steps
    }
}

struct Entry<T> {
    value: Arc<T>,
    inserted: Instant,
    weight: usize,
    /// Identifies this insertion in [`Map::order`].
    stamp: u64,
}

/// A map bounded in entries and bytes, plus the generation of the last
/// invalidation. Eviction is first-in first-out in O(1) amortized (I-156):
/// `order` lists insertions oldest first; a position whose key was removed
/// or re-inserted since (another stamp) is skipped when reached, and the
/// list is compacted when stale positions outnumber live entries.
struct Map<T> {
    entries: HashMap<String, Entry<T>>,
    order: VecDeque<(String, u64)>,
    next_stamp: u64,
    generation: u64,
    bytes: usize,
}

/// The bounds of one map.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    capacity: usize,
    max_bytes: usize,
    ttl: Option<Duration>,
}

impl<T: Weight> Map<T> {
    fn new() -> Self {
        Map {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            generation: 0,
            bytes: 0,
        }
    }

    /// The cached value, shared (no copy), unless expired.
    fn get(&self, key: &str, ttl: Option<Duration>) -> Option<Arc<T>> {
        let entry = self.entries.get(key)?;
        match ttl {
            Some(ttl) if entry.inserted.elapsed() >= ttl => None,
            _ => Some(entry.value.clone()),
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.weight;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Removes the oldest insertion still cached; `false` when none is left.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, stamp)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|e| e.stamp == stamp) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// Whether the oldest insertion still cached has expired.
    fn oldest_expired(&mut self, ttl: Duration) -> bool {
        while let Some((key, stamp)) = self.order.front() {
            match self.entries.get(key) {
                Some(e) if e.stamp == *stamp => return e.inserted.elapsed() >= ttl,
                _ => {
                    self.order.pop_front();
                }
            }
        }
        false
    }

    /// Inserts; first drops expired entries (the oldest ones) and then the
    /// oldest ones until both bounds hold, in O(1) amortized. A value over
    /// an eighth of the byte bound is not cached.
    fn insert(&mut self, key: &str, value: Arc<T>, b: Bounds) {
        let weight = value.weight();
        if b.capacity == 0 || weight > b.max_bytes / 8 {
            self.remove(key);
            return;
        }
        self.remove(key);
        if let Some(ttl) = b.ttl {
            while self.oldest_expired(ttl) {
                self.evict_oldest();
            }
        }
        while self.entries.len() >= b.capacity || self.bytes + weight > b.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.bytes += weight;
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                inserted: Instant::now(),
                weight,
                stamp,
            },
        );
        self.order.push_back((key.to_owned(), stamp));
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(k, s)| entries.get(k).is_some_and(|e| e.stamp == *s));
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // The maps are only a cache; a panic elsewhere while holding the lock
    // cannot leave them logically inconsistent, so poisoning is ignored.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// A [`Store`] that caches `latest_registration` and `workflow` results of
/// an inner store (§4.7.3).
pub struct CachedStore<S: Store> {
    inner: S,
    agents: RwLock<Map<AgentRecord>>,
    workflows: RwLock<Map<Workflow>>,
    capacity: usize,
    max_bytes: usize,
    agent_ttl: Option<Duration>,
    workflow_ttl: Option<Duration>,
    /// Changes made through other replicas (I-111), drained before a hit.
    feed: Option<std::sync::Mutex<tokio::sync::broadcast::Receiver<super::StoreChange>>>,
}

impl<S: Store> std::fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("agents", &read(&self.agents).entries.len())
            .field("workflows", &read(&self.workflows).entries.len())
            .field("agent_bytes", &read(&self.agents).bytes)
            .field("workflow_bytes", &read(&self.workflows).bytes)
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("agent_ttl", &self.agent_ttl)
            .finish_non_exhaustive()
    }
}

impl<S: Store> CachedStore<S> {
    /// Wraps `inner` with [`DEFAULT_CAPACITY`] entries per map and agent
    /// entries expiring after [`DEFAULT_TTL`].
    pub fn new(inner: S) -> Self {
        Self::with_limits(inner, DEFAULT_CAPACITY, Some(DEFAULT_TTL))
    }

    /// Wraps `inner` with `capacity` entries per map (0 disables caching) and
    /// an optional lifetime of agent entries (`None`: only invalidation by
    /// `register_agent` through this wrapper; right only if no other process
    /// writes the registry). Workflows are immutable and never expire.
    pub fn with_limits(inner: S, capacity: usize, agent_ttl: Option<Duration>) -> Self {
        let feed = inner.changes().map(std::sync::Mutex::new);
        CachedStore {
            inner,
            agents: RwLock::new(Map::new()),
            workflows: RwLock::new(Map::new()),
            capacity,
            max_bytes: DEFAULT_MAX_BYTES,
            agent_ttl,
            workflow_ttl: Some(DEFAULT_WORKFLOW_TTL),
            feed,
        }
    }

    /// The same with each map bounded to `max_bytes` estimated bytes and
    /// workflows expiring after `workflow_ttl` (I-75).
    pub fn with_byte_limit(mut self, max_bytes: usize, workflow_ttl: Option<Duration>) -> Self {
        self.max_bytes = max_bytes;
        self.workflow_ttl = workflow_ttl;
        self
    }

    /// Estimated bytes held by the cached agents and workflows.
    pub fn cached_bytes(&self) -> (usize, usize) {
        (read(&self.agents).bytes, read(&self.workflows).bytes)
    }

    fn agent_bounds(&self) -> Bounds {
        Bounds {
            capacity: self.capacity,
            max_bytes: self.max_bytes,
            ttl: self.agent_ttl,
        }
    }

    fn workflow_bounds(&self) -> Bounds {
        Bounds {
            capacity: self.capacity,
            max_bytes: self.max_bytes,
            ttl: self.workflow_ttl,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Drops every cached entry (e.g. after an administrative change made
    /// outside this wrapper).
    pub fn clear(&self) {
        let mut agents = write(&self.agents);
        agents.clear();
        agents.generation = agents.generation.wrapping_add(1);
        write(&self.workflows).clear();
    }

    fn invalidate_agent(&self, agent_id: &str) {
        let mut agents = write(&self.agents);
        agents.remove(agent_id);
        agents.generation = agents.generation.wrapping_add(1);
    }

    /// Caches a lookup result unless an invalidation happened since
    /// `generation` was read (the result may predate that registration).
    fn remember_agent(&self, generation: u64, record: &AgentRecord) {
        let mut agents = write(&self.agents);
        if agents.generation == generation {
            let bounds = self.agent_bounds();
            agents.insert(&record.agent_id, Arc::new(record.clone()), bounds);
        }
    }
}

// ---- issue 14: invalidation by the change feed of the store (I-111) ----
impl<S: Store> CachedStore<S> {
    /// Applies, without waiting, the changes other replicas made since the
    /// last call: an agent's entry is dropped when it changed, every entry
    /// when notifications were lost (`All`, or this cache fell behind the
    /// feed: `Lagged`).
    fn drain_changes(&self) {
        use tokio::sync::broadcast::error::TryRecvError;
        let Some(feed) = &self.feed else {
            return;
        };
        let mut feed = feed.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match feed.try_recv() {
                Ok(super::StoreChange::Agent(id)) => self.invalidate_agent(&id),
                Ok(super::StoreChange::All) | Err(TryRecvError::Lagged(_)) => self.clear(),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
    }
}

#[async_trait]
impl<S: Store> Store for CachedStore<S> {
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
        let agent_id = new.agent_id.clone();
        let result = self.inner.register_agent(new).await;
        match &result {
            // Nothing was written.
            Err(StoreError::DuplicateChecksum { .. } | StoreError::AgentRevoked { .. }) => {}
            // Success, or a backend failure that may have committed anyway.
            _ => self.invalidate_agent(&agent_id),
        }
        result
    }

    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        self.drain_changes();
        let generation = {
            let agents = read(&self.agents);
            if let Some(hit) = agents.get(agent_id, self.agent_ttl) {
                return Ok(Some((*hit).clone()));
            }
            agents.generation
        };
        let found = self.inner.latest_registration(agent_id).await?;
        if let Some(record) = &found {
            if record.agent_id == agent_id {
                self.remember_agent(generation, record);
            }
        }
        Ok(found)
    }

    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        let result = self.inner.revoke_agent(agent_id).await;
        // Invalidate even on a backend error: the update may have committed.
        self.invalidate_agent(agent_id);
        result
    }

    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        self.inner.registrations(agent_id).await
    }

    /// Not cached on insert: a workflow is cached when it is first used
    /// (registering many workflows no one uses costs no memory, I-75).
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        self.inner.insert_workflow(workflow).await
    }

    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
        if let Some(hit) = read(&self.workflows).get(workflow_id, self.workflow_ttl) {
            return Ok(Some(hit));
        }
        let found = self.inner.workflow(workflow_id).await?;
        if let Some(w) = &found {
            let bounds = self.workflow_bounds();
            write(&self.workflows).insert(workflow_id, w.clone(), bounds);
        }
        Ok(found)
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

    // ---- token records, status lists, lifecycle (issue 13): not cached,
    // except that revoking a registration invalidates its agent.

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
        let result = self.inner.revoke_registration(registration_id, at_ms).await;
        match &result {
            Ok(Some(r)) => self.invalidate_agent(&r.agent_id),
            Ok(None) => {}
            // The update may have committed for an agent we cannot name.
            Err(_) => self.clear(),
        }
        result
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

    async fn registration_specification(
        &self,
        registration_id: &str,
    ) -> Result<Option<super::StoredSpecification>, StoreError> {
        self.inner.registration_specification(registration_id).await
    }

    // The audit trail is not cached.
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

    // ---- scale-out (issue 14): forwarded ----------------------------------
    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        self.inner.insert_first_client(client).await
    }
    async fn signing_keys(&self) -> Result<Vec<super::StoredSigningKey>, StoreError> {
        self.inner.signing_keys().await
    }
    async fn apply_key_change(
        &self,
        change: super::KeyChange,
    ) -> Result<super::KeyChangeOutcome, StoreError> {
        self.inner.apply_key_change(change).await
    }
    async fn sealed_heads(
        &self,
        kind: super::SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        self.inner.sealed_heads(kind, max_heads).await
    }
    async fn sealed_values(
        &self,
        kind: super::SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.sealed_values(kind, after, limit).await
    }
    async fn replace_sealed_value(
        &self,
        kind: super::SealedKind,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ajwt_checksum::{AgentChecksum, Profile};
    use ajwt_protocol::registration::WorkflowStep;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    impl Weight for u32 {
        fn weight(&self) -> usize {
            100
        }
    }

    /// I-156: a full map drops its OLDEST insertion (first in, first out);
    /// a re-inserted or removed key's old position is skipped; the
    /// insertion queue stays bounded (compacted) under churn.
    #[test]
    fn i156_eviction_is_first_in_first_out_and_bounded() {
        let b = Bounds {
            capacity: 3,
            max_bytes: 1 << 20,
            ttl: None,
        };
        let mut m: Map<u32> = Map::new();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            m.insert(k, Arc::new(i as u32), b);
        }
        m.insert("a", Arc::new(10), b); // a is now the newest
        m.remove("b");
        m.insert("d", Arc::new(3), b); // room: b was removed
        m.insert("e", Arc::new(4), b); // drops c, the oldest live one
        let keys = |m: &Map<u32>| {
            let mut k: Vec<_> = m.entries.keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&m), ["a", "d", "e"]);
        assert_eq!(m.get("a", None).as_deref(), Some(&10));
        m.insert("f", Arc::new(5), b); // drops a (re-inserted before d)
        assert_eq!(keys(&m), ["d", "e", "f"]);
        assert_eq!(m.bytes, 300);
        for i in 0..10_000u32 {
            let k = format!("k{}", i % 5);
            m.insert(&k, Arc::new(i), b);
            if i % 3 == 0 {
                m.remove(&k);
            }
            assert!(m.entries.len() <= 3);
            assert!(m.order.len() <= 2 * 3 + 64 + 1, "{}", m.order.len());
        }
        // Byte bound: each value weighs 100.
        let small = Bounds {
            capacity: 100,
            max_bytes: 1000,
            ttl: None,
        };
        let mut m: Map<u32> = Map::new();
        for i in 10..25u32 {
            m.insert(&format!("x{i}"), Arc::new(i), small);
        }
        let want: Vec<String> = (15..25).map(|i| format!("x{i}")).collect();
        assert_eq!(keys(&m), want);
        assert_eq!(m.bytes, 1000);
    }

    /// Counts the lookups that reach the wrapped store.
    struct Counting {
        inner: SqliteStore,
        latest: AtomicUsize,
        workflows: AtomicUsize,
    }

    #[async_trait]
    impl Store for Counting {
        async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
            self.inner.register_agent(new).await
        }
        async fn latest_registration(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
            self.latest.fetch_add(1, Ordering::SeqCst);
            self.inner.latest_registration(id).await
        }
        async fn revoke_agent(&self, id: &str) -> Result<u64, StoreError> {
            self.inner.revoke_agent(id).await
        }
        async fn registrations(&self, id: &str) -> Result<Vec<AgentRecord>, StoreError> {
            self.inner.registrations(id).await
        }
        async fn insert_workflow(&self, w: &Workflow) -> Result<(), StoreError> {
            self.inner.insert_workflow(w).await
        }
        async fn workflow(&self, id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
            self.workflows.fetch_add(1, Ordering::SeqCst);
            self.inner.workflow(id).await
        }
        async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
            self.inner.insert_client(c).await
        }
        async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
            self.inner.client(id).await
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
        async fn append_audit(
            &self,
            e: crate::audit::AuditEntry,
        ) -> Result<crate::audit::AuditRecord, StoreError> {
            self.inner.append_audit(e).await
        }
        async fn audit_records(
            &self,
            after: u64,
            limit: u32,
        ) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
            self.inner.audit_records(after, limit).await
        }
        async fn audit_last(&self, n: u32) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
            self.inner.audit_last(n).await
        }
        async fn append_audit_checkpoint(
            &self,
            c: &crate::audit::AuditCheckpoint,
        ) -> Result<(), StoreError> {
            self.inner.append_audit_checkpoint(c).await
        }
        async fn latest_audit_checkpoint(
            &self,
        ) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError> {
            self.inner.latest_audit_checkpoint().await
        }
    }

    async fn counting() -> Counting {
        Counting {
            inner: SqliteStore::open_in_memory().await.unwrap(),
            latest: AtomicUsize::new(0),
            workflows: AtomicUsize::new(0),
        }
    }

    fn reg(agent_id: &str, n: u8) -> NewRegistration {
        NewRegistration {
            agent_id: agent_id.to_owned(),
            checksum: AgentChecksum::digest(&[n]),
            checksum_profile: Profile::Jcs,
            public_jwk: None,
            jwk_thumbprint: None,
            allowed_scopes: None,
            app_id: None,
            spec_json: "{}".into(),
            registered_at_ms: 1_735_680_000_000,
            may_reactivate_revoked: false,
        }
    }

    fn lookups(s: &CachedStore<Counting>) -> usize {
        s.inner().latest.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn s4_7_3_latest_registration_is_cached() {
        let s = CachedStore::new(counting().await);
        s.register_agent(reg("a1", 1)).await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                s.latest_registration("a1").await.unwrap().unwrap().version,
                1
            );
        }
        assert_eq!(lookups(&s), 1);
        // Unknown agents are not cached (every probe reaches the store).
        assert_eq!(s.latest_registration("nobody").await.unwrap(), None);
        assert_eq!(s.latest_registration("nobody").await.unwrap(), None);
        assert_eq!(lookups(&s), 3);
    }

    #[tokio::test]
    async fn s5_4_4_reregistration_invalidates_the_cache() {
        let s = CachedStore::new(counting().await);
        s.register_agent(reg("a1", 1)).await.unwrap();
        s.register_agent(reg("other", 9)).await.unwrap();
        assert_eq!(
            s.latest_registration("a1").await.unwrap().unwrap().version,
            1
        );
        assert_eq!(
            s.latest_registration("other")
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        let v2 = s.register_agent(reg("a1", 2)).await.unwrap();
        // No stale entry: the very next lookup sees v2.
        assert_eq!(s.latest_registration("a1").await.unwrap().unwrap(), v2);
        // A refused registration leaves the (still correct) entry alone.
        let e = s.register_agent(reg("a1", 9)).await.unwrap_err();
        assert!(matches!(e, StoreError::DuplicateChecksum { .. }));
        let before = lookups(&s);
        assert_eq!(s.latest_registration("a1").await.unwrap().unwrap(), v2);
        assert_eq!(lookups(&s), before);
        assert_eq!(s.registrations("a1").await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn s5_6_1_revocation_invalidates_the_cache() {
        let s = CachedStore::new(counting().await);
        s.register_agent(reg("a1", 1)).await.unwrap();
        s.register_agent(reg("other", 9)).await.unwrap();
        assert!(!s.latest_registration("a1").await.unwrap().unwrap().revoked);
        assert!(
            !s.latest_registration("other")
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        assert_eq!(s.revoke_agent("a1").await.unwrap(), 1);
        // No stale entry: the very next lookup sees the revocation.
        assert!(s.latest_registration("a1").await.unwrap().unwrap().revoked);
        assert!(
            !s.latest_registration("other")
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        // Idempotent; an unknown agent changes nothing.
        assert_eq!(s.revoke_agent("a1").await.unwrap(), 1);
        assert_eq!(s.revoke_agent("nobody").await.unwrap(), 0);
        assert!(s.latest_registration("a1").await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn s5_4_4_lookup_racing_a_registration_is_not_cached() {
        let s = CachedStore::new(counting().await);
        let v1 = s.register_agent(reg("a1", 1)).await.unwrap();
        // A lookup read the generation and then the (old) v1 row...
        let generation = read(&s.agents).generation;
        // ...meanwhile v2 was registered...
        let v2 = s.register_agent(reg("a1", 2)).await.unwrap();
        // ...and the lookup finishes last: its v1 must not be cached.
        s.remember_agent(generation, &v1);
        assert_eq!(s.latest_registration("a1").await.unwrap().unwrap(), v2);
    }

    #[tokio::test]
    async fn s4_7_3_cache_is_bounded_and_expires() {
        let s = CachedStore::with_limits(counting().await, 2, None);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            s.register_agent(reg(id, i as u8)).await.unwrap();
            s.latest_registration(id).await.unwrap().unwrap();
        }
        assert_eq!(read(&s.agents).entries.len(), 2);

        let s = CachedStore::with_limits(counting().await, 10, Some(Duration::ZERO));
        s.register_agent(reg("a", 1)).await.unwrap();
        s.latest_registration("a").await.unwrap().unwrap();
        s.latest_registration("a").await.unwrap().unwrap();
        assert_eq!(lookups(&s), 2, "expired entries are not served");

        let s = CachedStore::with_limits(counting().await, 0, None);
        s.register_agent(reg("a", 1)).await.unwrap();
        s.latest_registration("a").await.unwrap().unwrap();
        assert!(read(&s.agents).entries.is_empty());
    }

    #[tokio::test]
    async fn s4_7_2_workflows_are_cached() {
        let s = CachedStore::new(counting().await);
        let w = Workflow {
            workflow_id: "wf".into(),
            steps: vec![WorkflowStep {
                step_id: "s1".into(),
                required: true,
                requires_approval: false,
                approval_gate: false,
                agent_id: Some("a1".into()),
                scopes: Some(vec!["repo:read".into()]),
            }],
        };
        assert_eq!(s.workflow("wf").await.unwrap(), None);
        s.insert_workflow(&w).await.unwrap();
        // Cached on first use, not on insert (I-75), then shared.
        let first = s.workflow("wf").await.unwrap().unwrap();
        let second = s.workflow("wf").await.unwrap().unwrap();
        assert_eq!(*first, w);
        assert!(Arc::ptr_eq(&first, &second), "one shared copy");
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), 2);
        assert_eq!(
            s.insert_workflow(&w).await.unwrap_err(),
            StoreError::WorkflowExists("wf".into())
        );
        s.clear();
        assert_eq!(*s.workflow("wf").await.unwrap().unwrap(), w);
        assert_eq!(*s.workflow("wf").await.unwrap().unwrap(), w);
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), 3);
        s.ping().await.unwrap();
        assert_eq!(s.client_count().await.unwrap(), 0);
        s.close().await;
    }

    fn big_workflow(id: &str, steps: usize) -> Workflow {
        Workflow {
            workflow_id: id.into(),
            steps: (0..steps)
                .map(|i| WorkflowStep {
                    step_id: format!("step_{i}"),
                    required: false,
                    requires_approval: false,
                    approval_gate: false,
                    agent_id: Some(format!("agent-{i}")),
                    scopes: Some((0..8).map(|j| format!("scope:{i}:{j}")).collect()),
                })
                .collect(),
        }
    }

    /// Issue 12 defect 7 (I-75): the workflow cache is bounded in bytes as
    /// well as entries, a value over an eighth of the bound is served but not
    /// cached, and entries expire.
    #[tokio::test]
    async fn i75_workflow_cache_is_bounded_by_bytes_and_expires() {
        let max_bytes = 64 * 1024;
        let s = CachedStore::new(counting().await).with_byte_limit(max_bytes, None);
        for i in 0..40 {
            s.insert_workflow(&big_workflow(&format!("wf-{i}"), 15))
                .await
                .unwrap();
        }
        let one = big_workflow("x", 15).weight();
        assert!(one < max_bytes / 8 && 40 * one > max_bytes, "{one}");
        for i in 0..40 {
            s.workflow(&format!("wf-{i}")).await.unwrap().unwrap();
            let (_, bytes) = s.cached_bytes();
            assert!(bytes <= max_bytes, "{bytes} > {max_bytes}");
        }
        // Over an eighth of the bound: served every time, never cached.
        s.insert_workflow(&big_workflow("huge", 200)).await.unwrap();
        assert!(big_workflow("huge", 200).weight() > max_bytes / 8);
        let before = s.inner().workflows.load(Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(s.workflow("huge").await.unwrap().unwrap().steps.len(), 200);
        }
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), before + 3);

        // A zero lifetime: every lookup reaches the store.
        let s = CachedStore::new(counting().await).with_byte_limit(max_bytes, Some(Duration::ZERO));
        s.insert_workflow(&big_workflow("wf", 2)).await.unwrap();
        for _ in 0..3 {
            s.workflow("wf").await.unwrap().unwrap();
        }
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), 3);
    }
}
