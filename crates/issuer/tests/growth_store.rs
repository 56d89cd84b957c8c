//! Store-level growth and throughput measurements (issue 15, I-155..I-157).
//! Not tests: every function is `#[ignore]`d and only prints and writes
//! numbers (no timed assertions). Run in release:
//!
//! ```text
//! GROWTH_AGENTS=100000 cargo test --release -p ajwt-issuer --test growth_store \
//!     -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Results go to `$AJWT_BENCH_OUT/store-growth.txt` (default
//! `target/bench-results`). Baselines are measured in the same run: group
//! commit off (`set_write_group_limit(1)`: one transaction and fsync per
//! write, the behaviour before I-155) against on, and a cached agent against
//! agents spread over the whole registry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::service::ClientContext;
use ajwt_issuer::store::seed::{seed_agents, seed_specification, SeedPlan};
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{NewRegistration, NewTokenRecord, Store};
use ajwt_issuer::{Issuer, IssuerConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn out(line: &str) {
    println!("{line}");
    let dir = std::env::var("AJWT_BENCH_OUT").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/bench-results")
    });
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{dir}/store-growth.txt"))
    {
        let _ = writeln!(f, "{line}");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Peak resident set size of this process (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn registration(i: u64, tag: &str) -> NewRegistration {
    NewRegistration {
        agent_id: format!("{tag}-{i}"),
        checksum: AgentChecksum::digest(format!("{tag}-{i}").as_bytes()),
        checksum_profile: Profile::Jcs,
        public_jwk: None,
        jwk_thumbprint: None,
        allowed_scopes: Some(vec!["repo:read".into()]),
        app_id: None,
        spec_json: seed_specification(&format!("{tag}-{i}")).to_string(),
        registered_at_ms: 1_700_000_000_000,
        may_reactivate_revoked: false,
    }
}

/// `n` writes by `concurrency` tasks; returns writes per second.
async fn run_concurrent<F, Fut>(n: u64, concurrency: u64, f: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let f = f.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                f(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// I-155: registrations and token records (+ an audit append each, as an
/// issuance writes) per second on a SQLite file, group commit off vs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture in release"]
async fn growth_group_commit_throughput() {
    let concurrency = env_u64("GROWTH_CONCURRENCY", 256);
    let n_on = env_u64("GROWTH_WRITES", 20_000);
    let n_off = env_u64("GROWTH_WRITES_OFF", 2_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("ajwt.sqlite3"))
            .await
            .unwrap(),
    );
    let reg = store
        .register_agent(registration(0, "holder"))
        .await
        .unwrap()
        .registration_id;
    let mut rows = Vec::new();
    for round in 0..3u64 {
        for (label, limit, n) in [("off", 1usize, n_off), ("on", 512, n_on)] {
            store.set_write_group_limit(limit);
            let s = store.clone();
            let tag = format!("r{round}{label}");
            let regs = run_concurrent(n, concurrency, move |i| {
                let s = s.clone();
                let r = registration(i, &tag);
                async move {
                    s.register_agent(r).await.unwrap();
                }
            })
            .await;
            let s = store.clone();
            let reg = reg.clone();
            let tag = format!("t{round}{label}");
            let tokens = run_concurrent(n, concurrency, move |i| {
                let s = s.clone();
                let t = NewTokenRecord {
                    jti: format!("{tag}-{i}"),
                    agent_id: "holder-0".into(),
                    registration_id: reg.clone(),
                    client_id: "bench".into(),
                    iat: 1_700_000_000,
                    exp: 1_700_000_300,
                    chain: Vec::new(),
                    ancestors: Vec::new(),
                };
                async move {
                    s.record_token(t, 65_536, i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                        .await
                        .unwrap();
                    let entry = ajwt_issuer::audit::AuditEntry {
                        time_ms: 1_700_000_000_000,
                        event: "intent_token_issued".into(),
                        client_id: Some("bench".into()),
                        agent_id: Some("holder-0".into()),
                        registration_id: None,
                        jti: None,
                        error_code: None,
                        intent_hash: None,
                        detail: serde_json::Map::new(),
                    };
                    s.append_audit(entry).await.unwrap();
                }
            })
            .await;
            rows.push((label, regs, tokens));
        }
    }
    store.set_write_group_limit(512);
    let pick = |label: &str, col: usize| {
        median(
            rows.iter()
                .filter(|r| r.0 == label)
                .map(|r| if col == 0 { r.1 } else { r.2 })
                .collect(),
        )
    };
    out(&format!(
        "group commit, SQLite file, synchronous=FULL, {concurrency} concurrent writers, median of 3:"
    ));
    for (what, col) in [("registrations/s", 0), ("token record + audit append/s", 1)] {
        let (off, on) = (pick("off", col), pick("on", col));
        out(&format!(
            "  {what}: per-write commit {off:.0}, group commit {on:.0} ({:.1}x)",
            on / off
        ));
    }
    store.close().await;
}

fn issuer_config(dir: &std::path::Path) -> IssuerConfig {
    let mut config = IssuerConfig {
        data_dir: dir.to_owned(),
        ..IssuerConfig::default()
    };
    // The benchmark measures the store, not the per-agent limits (I-73).
    config.rate_limits.client = 1_000_000_000;
    config.rate_limits.agent = 1_000_000_000;
    config
}

fn public_jwk() -> serde_json::Map<String, serde_json::Value> {
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    pair.to_jwk_public_key().as_ref().clone()
}

/// I-156, I-157: seeds `GROWTH_AGENTS` agents through the whole issuer
/// stack, reports the rate, database bytes per agent and peak RSS, then
/// issues intent tokens (concurrency 8) for one cached agent and for agents
/// drawn over the whole registry, interleaved, and reports the ratio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture in release"]
async fn growth_seed_and_cache_miss_issuance() {
    let agents = env_u64("GROWTH_AGENTS", 100_000);
    let dir = tempfile::tempdir().unwrap();
    let (issuer, _) = Issuer::open(issuer_config(dir.path())).await.unwrap();
    let issuer = Arc::new(issuer);
    let jwk = public_jwk();
    let plan = SeedPlan::new("seed-", agents, jwk);
    let report = seed_agents(&issuer, &plan).await.unwrap();
    let db = dir.path().join("ajwt.sqlite3");
    let wal = dir.path().join("ajwt.sqlite3-wal");
    let size = std::fs::metadata(&db).map_or(0, |m| m.len())
        + std::fs::metadata(&wal).map_or(0, |m| m.len());
    out(&format!(
        "seed: {} agents through Issuer::register_agent in {:.1} s ({:.0}/s); database {:.1} MB ({:.0} B/agent incl. audit); peak RSS {:.0} MB",
        report.registered,
        report.elapsed.as_secs_f64(),
        report.registered as f64 / report.elapsed.as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / agents as f64,
        peak_rss_mb()
    ));

    // The read path alone: latest_registration through the issuer's store
    // stack (audit log decorator, cache, sealing, SQLite), one agent (a
    // cache hit) vs agents spread over the registry (misses).
    let mut hit_reads = Vec::new();
    let mut miss_reads = Vec::new();
    for round in 0..3u64 {
        for spread_mode in [false, true] {
            let store = issuer.store().clone();
            let offset = round * 20_000;
            let rate = run_concurrent(20_000, 8, move |i| {
                let store = store.clone();
                let n = if spread_mode {
                    (i + offset).wrapping_mul(2_654_435_761) % agents
                } else {
                    0
                };
                async move {
                    store
                        .latest_registration(&format!("seed-{n}"))
                        .await
                        .unwrap()
                        .unwrap();
                }
            })
            .await;
            if spread_mode {
                miss_reads.push(rate);
            } else {
                hit_reads.push(rate);
            }
        }
    }
    let (h, m) = (median(hit_reads), median(miss_reads));
    out(&format!(
        "agent lookup at {agents} agents, concurrency 8, median of 3: cached {h:.0}/s ({:.1} us), spread (misses) {m:.0}/s ({:.1} us)",
        1e6 / h,
        1e6 / m
    ));

    let client = Arc::new(ClientContext {
        client_id: "bench-client".into(),
        scopes: vec!["generate:intent-token".into()],
    });
    let per_round = env_u64("GROWTH_TOKENS", 4_000);
    let issue_concurrency = env_u64("GROWTH_ISSUE_CONCURRENCY", 64);
    let mut hit = Vec::new();
    let mut spread = Vec::new();
    for _round in 0..3 {
        for spread_mode in [false, true] {
            let issuer = issuer.clone();
            let client = client.clone();
            let offset = _round * per_round;
            let rate = run_concurrent(per_round, issue_concurrency, move |i| {
                let issuer = issuer.clone();
                let client = client.clone();
                // Spread: a different agent each time, over the whole
                // registry (far beyond the cache); cached: always agent 0.
                // Both compute the checksum, as a client does.
                let n = if spread_mode {
                    (i + offset).wrapping_mul(2_654_435_761) % agents
                } else {
                    0
                };
                let id = format!("seed-{n}");
                let spec = seed_specification(&id);
                let sum =
                    ajwt_checksum::compute_json(&serde_json::to_vec(&spec).unwrap(), Profile::Jcs)
                        .unwrap()
                        .checksum
                        .to_string();
                async move {
                    let req = serde_json::from_value(serde_json::json!({
                        "grant_type": "agent_checksum",
                        "agent_id": id,
                        "computed_checksum": sum,
                        "requested_scopes": ["repo:read"],
                        "audience": "https://api.example.com",
                    }))
                    .unwrap();
                    issuer.intent_token_for(&client, req, None).await.unwrap();
                }
            })
            .await;
            if spread_mode {
                spread.push(rate);
            } else {
                hit.push(rate);
            }
        }
    }
    let (h, s) = (median(hit), median(spread));
    out(&format!(
        "issuance at {agents} agents, concurrency {issue_concurrency}, median of 3: cached agent {h:.0}/s, spread over all agents {s:.0}/s (spread/cached time {:.2}x); peak RSS {:.0} MB",
        h / s,
        peak_rss_mb()
    ));
    issuer.store().close().await;
    let _ = Duration::ZERO;
}
