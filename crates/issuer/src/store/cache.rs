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

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

use super::{AgentRecord, ClientRecord, NewRegistration, Store, StoreError};

/// Default bound of each cache map.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Default lifetime of a cached agent registration.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

struct Entry<T> {
    value: T,
    inserted: Instant,
}

/// A bounded map plus the generation of the last invalidation.
struct Map<T> {
    entries: HashMap<String, Entry<T>>,
    generation: u64,
}

impl<T: Clone> Map<T> {
    fn new() -> Self {
        Map {
            entries: HashMap::new(),
            generation: 0,
        }
    }

    fn get(&self, key: &str, ttl: Option<Duration>) -> Option<T> {
        let entry = self.entries.get(key)?;
        match ttl {
            Some(ttl) if entry.inserted.elapsed() >= ttl => None,
            _ => Some(entry.value.clone()),
        }
    }

    /// Inserts, first dropping expired entries and then an arbitrary entry
    /// if the map is full.
    fn insert(&mut self, key: &str, value: T, capacity: usize, ttl: Option<Duration>) {
        if capacity == 0 {
            return;
        }
        if !self.entries.contains_key(key) && self.entries.len() >= capacity {
            if let Some(ttl) = ttl {
                self.entries.retain(|_, e| e.inserted.elapsed() < ttl);
            }
            if self.entries.len() >= capacity {
                let victim = self.entries.keys().next().cloned();
                if let Some(victim) = victim {
                    self.entries.remove(&victim);
                }
            }
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                inserted: Instant::now(),
            },
        );
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
    agent_ttl: Option<Duration>,
}

impl<S: Store> std::fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("agents", &read(&self.agents).entries.len())
            .field("workflows", &read(&self.workflows).entries.len())
            .field("capacity", &self.capacity)
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
        CachedStore {
            inner,
            agents: RwLock::new(Map::new()),
            workflows: RwLock::new(Map::new()),
            capacity,
            agent_ttl,
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
        agents.entries.clear();
        agents.generation = agents.generation.wrapping_add(1);
        write(&self.workflows).entries.clear();
    }

    fn invalidate_agent(&self, agent_id: &str) {
        let mut agents = write(&self.agents);
        agents.entries.remove(agent_id);
        agents.generation = agents.generation.wrapping_add(1);
    }

    /// Caches a lookup result unless an invalidation happened since
    /// `generation` was read (the result may predate that registration).
    fn remember_agent(&self, generation: u64, record: &AgentRecord) {
        let mut agents = write(&self.agents);
        if agents.generation == generation {
            agents.insert(
                &record.agent_id,
                record.clone(),
                self.capacity,
                self.agent_ttl,
            );
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
        let generation = {
            let agents = read(&self.agents);
            if let Some(hit) = agents.get(agent_id, self.agent_ttl) {
                return Ok(Some(hit));
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

    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        self.inner.insert_workflow(workflow).await?;
        write(&self.workflows).insert(&workflow.workflow_id, workflow.clone(), self.capacity, None);
        Ok(())
    }

    async fn workflow(&self, workflow_id: &str) -> Result<Option<Workflow>, StoreError> {
        if let Some(hit) = read(&self.workflows).get(workflow_id, None) {
            return Ok(Some(hit));
        }
        let found = self.inner.workflow(workflow_id).await?;
        if let Some(w) = &found {
            write(&self.workflows).insert(workflow_id, w.clone(), self.capacity, None);
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ajwt_checksum::{AgentChecksum, Profile};
    use ajwt_protocol::registration::WorkflowStep;

    use super::*;
    use crate::store::sqlite::SqliteStore;

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
        async fn workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
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
        assert_eq!(s.workflow("wf").await.unwrap().unwrap(), w);
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), 1);
        assert_eq!(
            s.insert_workflow(&w).await.unwrap_err(),
            StoreError::WorkflowExists("wf".into())
        );
        s.clear();
        assert_eq!(s.workflow("wf").await.unwrap().unwrap(), w);
        assert_eq!(s.workflow("wf").await.unwrap().unwrap(), w);
        assert_eq!(s.inner().workflows.load(Ordering::SeqCst), 2);
        s.ping().await.unwrap();
        assert_eq!(s.client_count().await.unwrap(), 0);
        s.close().await;
    }
}
