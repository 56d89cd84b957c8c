//! Seeding many agents for benchmarks (issue 15, I-157), through the real
//! stack: [`Issuer::register_agent`] recomputes each checksum, parses the
//! key, seals the specification (§9.1.4, I-112), writes the registration
//! and its audit entry (I-100) exactly as `POST /intent/register/agent`
//! does. Speed comes from concurrency: [`seed_agents`] keeps `concurrency`
//! registrations in flight, which the SQLite group commit (I-155) turns
//! into large transactions, one fsync per group.
//!
//! ```no_run
//! # async fn demo(issuer: std::sync::Arc<ajwt_issuer::Issuer>, jwk: serde_json::Map<String, serde_json::Value>) {
//! use ajwt_issuer::store::seed::{seed_agents, SeedPlan};
//! let report = seed_agents(&issuer, &SeedPlan::new("bench-agent-", 1_000_000, jwk))
//!     .await
//!     .expect("seeded");
//! println!("{} agents in {:?}", report.registered, report.elapsed);
//! # }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::service::ApiError;
use crate::Issuer;

use super::JsonMap;

/// Registrations kept in flight by default: enough for groups of a few
/// hundred writes on two cores.
pub const DEFAULT_SEED_CONCURRENCY: usize = 256;

/// What to seed: agents `<prefix><i>` for `i` in `start..start + count`.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Agent id prefix.
    pub prefix: String,
    /// First index.
    pub start: u64,
    /// How many agents.
    pub count: u64,
    /// The public key (JWK) every seeded agent registers; the benchmark
    /// holds its private key.
    pub public_jwk: JsonMap,
    /// Registrations in flight.
    pub concurrency: usize,
}

impl SeedPlan {
    /// `count` agents `<prefix>0 ..`, all with `public_jwk`, with
    /// [`DEFAULT_SEED_CONCURRENCY`].
    pub fn new(prefix: &str, count: u64, public_jwk: JsonMap) -> SeedPlan {
        SeedPlan {
            prefix: prefix.to_owned(),
            start: 0,
            count,
            public_jwk,
            concurrency: DEFAULT_SEED_CONCURRENCY,
        }
    }
}

/// What [`seed_agents`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Agents registered.
    pub registered: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The specification (§5.2.1) of seeded agent `agent_id`: a prompt naming
/// it (so every checksum differs), two tools and a configuration, the shape
/// of a typical registration (about 600 bytes canonical).
pub fn seed_specification(agent_id: &str) -> serde_json::Value {
    serde_json::json!({
        "agent_id": agent_id,
        "prompt": format!("You are {agent_id}, a careful dependency-update agent. Read manifests, propose patches, never push."),
        "tools": [
            {
                "name": "read_manifest",
                "description": "Read package manifest file",
                "parameters": {
                    "type": "object",
                    "properties": {"file_path": {"type": "string"}},
                    "required": ["file_path"]
                }
            },
            {
                "name": "create_patch",
                "description": "Create patch for vulnerable package",
                "parameters": {"type": "object", "properties": {"package": {"type": "string"}}}
            }
        ],
        "configuration": {"model_name": "bench-model", "temperature": 0.0, "max_tokens": 4096}
    })
}

/// The registration body (`POST /intent/register/agent`) of seeded agent
/// `agent_id`: [`seed_specification`] plus `public_key`.
pub fn seed_registration_body(agent_id: &str, public_jwk: &JsonMap) -> Vec<u8> {
    let mut body = seed_specification(agent_id);
    if let Some(obj) = body.as_object_mut() {
        obj.insert(
            "public_key".to_owned(),
            serde_json::Value::Object(public_jwk.clone()),
        );
    }
    body.to_string().into_bytes()
}

/// Registers the agents of `plan` through `issuer` (see the module
/// documentation), `plan.concurrency` at a time. Stops at the first
/// failure (e.g. `duplicate_agent` when the agents already exist) and
/// returns it; the agents registered before it stay registered.
pub async fn seed_agents(issuer: &Arc<Issuer>, plan: &SeedPlan) -> Result<SeedReport, ApiError> {
    let started = Instant::now();
    let end = plan.start.saturating_add(plan.count);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(plan.start));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let issuer = issuer.clone();
        let next = next.clone();
        let prefix = plan.prefix.clone();
        let jwk = plan.public_jwk.clone();
        workers.spawn(async move {
            let mut done = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return Ok::<u64, ApiError>(done);
                }
                let body = seed_registration_body(&format!("{prefix}{i}"), &jwk);
                issuer.register_agent(&body).await?;
                done += 1;
            }
        });
    }
    let mut registered = 0u64;
    let mut failure = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(n)) => registered += n,
            Ok(Err(e)) => {
                // Stop handing out work; the other workers finish theirs.
                next.store(end, std::sync::atomic::Ordering::Relaxed);
                failure.get_or_insert(e);
            }
            Err(e) => {
                next.store(end, std::sync::atomic::Ordering::Relaxed);
                failure.get_or_insert(ApiError::from(super::StoreError::Backend(format!(
                    "seed worker: {e}"
                ))));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(SeedReport {
            registered,
            elapsed: started.elapsed(),
        }),
    }
}
