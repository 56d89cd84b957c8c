//! The requests of the benchmark and the seeding of large registries.
//!
//! Agent `i` has a deterministic specification ([`agent_spec`]), so the
//! generator computes its checksum with `ajwt-checksum` without asking the
//! server; all agents share one public JWK (a P-256 key generated per run).
//! Workflow `j` ([`workflow`]) has one step `step_1` open to any agent, so
//! the §4.3.1 request of agent `i` names workflow `i mod workflows`.

use std::path::Path;
use std::sync::Arc;

use ajwt_checksum::{compute_json, Profile};
use ajwt_issuer::store::seed::{seed_agents, seed_specification, SeedPlan};
use ajwt_issuer::{Issuer, IssuerConfig};
use serde_json::{json, Value};

use crate::load::Req;

/// `agent_id` of agent `i`.
pub fn agent_id(i: u64) -> String {
    format!("bench-agent-{i}")
}

/// The §5.2 specification of agent `i`: the store's seeding specification
/// ([`ajwt_issuer::store::seed::seed_specification`]), so the agents this
/// harness registers over HTTP and those seeded in-process are alike.
pub fn agent_spec(i: u64) -> Value {
    seed_specification(&agent_id(i))
}

/// The `sha256:<hex>` checksum (§5.3.1, `jcs` profile) of agent `i`.
pub fn agent_checksum(i: u64) -> Result<String, String> {
    let bytes = agent_spec(i).to_string();
    compute_json(bytes.as_bytes(), Profile::Jcs)
        .map(|c| c.checksum.to_string())
        .map_err(|e| format!("checksum of agent {i}: {e}"))
}

/// The §6.2 registration body of agent `i` with `public_jwk` and its
/// claimed checksum.
pub fn registration_body(i: u64, public_jwk: &Value) -> Result<Vec<u8>, String> {
    let mut body = agent_spec(i);
    body["public_key"] = public_jwk.clone();
    body["checksum"] = json!(agent_checksum(i)?);
    body["checksum_profile"] = json!("jcs");
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

/// `workflow_id` of workflow `j`.
pub fn workflow_id(j: u64) -> String {
    format!("bench-wf-{j}")
}

/// The §6.3 registration body of workflow `j`.
pub fn workflow(j: u64) -> Value {
    json!({"workflow_id": workflow_id(j), "steps": {"step_1": {"required": true}}})
}

/// The §4.3.1 `agent_checksum` request the shim sends for agent `i` at
/// `step_1` of workflow `i mod workflows` (no workflow when `workflows` is 0).
pub fn token_body(i: u64, workflows: u64) -> Result<Vec<u8>, String> {
    let mut body = json!({
        "grant_type": "agent_checksum",
        "agent_id": agent_id(i),
        "computed_checksum": agent_checksum(i)?,
        "requested_scopes": ["issues:read"],
        "audience": "https://api.example.com",
        "delegation_context": {"chain": [], "completed_steps": []},
    });
    if workflows > 0 {
        body["workflow_id"] = json!(workflow_id(i % workflows));
        body["workflow_step"] = json!("step_1");
        body["workflow_enabled"] = json!(true);
    }
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

/// The token request of agent `i` with the client token `bearer`.
pub fn token_request(i: u64, workflows: u64, bearer: &str) -> Result<Req, String> {
    Ok(Req::post(
        "/intent/token",
        "application/json",
        &format!("Bearer {bearer}"),
        token_body(i, workflows)?,
    ))
}

/// A fresh public JWK (P-256) shared by all agents of a run.
pub fn shared_public_jwk() -> Result<Value, String> {
    let key = ajwt_jose::DpopKey::generate(ajwt_jose::Alg::Es256)
        .map_err(|e| format!("key generation: {e}"))?;
    Ok(Value::Object(key.public_jwk()))
}

/// What seeding did.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// Agents registered.
    pub agents: u64,
    /// Workflows registered.
    pub workflows: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Seeds the data directory `data_dir` (no server may be running on it)
/// with agents `agents` and workflows `workflows`, through the real store
/// stack: the issuer is opened exactly as `ajwt serve` opens it
/// ([`Issuer::open`]: SQLite or `database_url`, encryption at rest, agent
/// cache, audit trail) and each agent goes through
/// [`Issuer::register_agent`] (checksum recomputed, key parsed, stored),
/// `concurrency` at a time. This is the ONE seeding function of the
/// harness: a faster store path (bulk insert) replaces its body only.
pub async fn seed(
    data_dir: &Path,
    extra: &[(String, String)],
    agents: std::ops::Range<u64>,
    workflows: std::ops::Range<u64>,
    public_jwk: &Value,
    concurrency: usize,
) -> Result<Seeded, String> {
    let started = std::time::Instant::now();
    let mut config = IssuerConfig {
        data_dir: data_dir.to_path_buf(),
        ..IssuerConfig::default()
    };
    for (k, v) in extra {
        match k.as_str() {
            "database_url" => {
                config.database_url = Some(ajwt_issuer::config::DatabaseUrl::new(v.clone()))
            }
            "kek_file" => config.kek_file = Some(v.into()),
            _ => return Err(format!("seed: unknown setting {k}")),
        }
    }
    let (issuer, _) = Issuer::open(config)
        .await
        .map_err(|e| format!("seed: cannot open {}: {e}", data_dir.display()))?;
    let issuer = Arc::new(issuer);
    for j in workflows.clone() {
        let body = serde_json::to_vec(&workflow(j)).map_err(|e| e.to_string())?;
        issuer
            .register_workflow(&body)
            .await
            .map_err(|e| format!("seed workflow {j}: {e}"))?;
    }
    let n = agents.end.saturating_sub(agents.start);
    let Value::Object(public_jwk) = public_jwk.clone() else {
        return Err("seed: the public JWK is not an object".into());
    };
    // The store's seeding path (I-157): Issuer::register_agent, many in
    // flight, which group commit (I-155) turns into large transactions.
    let plan = SeedPlan {
        start: agents.start,
        concurrency: concurrency.max(1),
        ..SeedPlan::new("bench-agent-", n, public_jwk)
    };
    seed_agents(&issuer, &plan)
        .await
        .map_err(|e| format!("seed agents {}..{}: {e}", agents.start, agents.end))?;
    issuer.store().close().await;
    Ok(Seeded {
        agents: n,
        workflows: workflows.end.saturating_sub(workflows.start),
        seconds: started.elapsed().as_secs_f64(),
    })
}
