//! Limits across replicas (issue 14, I-113; §9.1.1, §9.4.3, RFC 9449
//! §11.1): two issuers, each with its own connection pool on ONE SQLite
//! file (as two `ajwt serve` processes on one database), each with its own
//! router. With shared limits the checksum-mismatch / unknown-agent budget,
//! the failed-authentication budget and the DPoP `jti` replay check hold for
//! the pair; without them (the control) each process has its own budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use ajwt_issuer::config::RateLimitConfig;
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{Clock, Issuer, SystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, DpopKey};
use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::Value;

const TOKEN_URL: &str = "https://idp.example.com/intent/token";

/// Two replicas on one database file; `shared` chooses the shared limits.
struct Pair {
    a: Harness,
    b: Harness,
    _dir: tempfile::TempDir,
}

async fn replica(
    path: &std::path::Path,
    config: &IssuerConfig,
    keys: &Arc<KeyRing>,
    clock: &TestClock,
    shared: bool,
) -> (Arc<Issuer>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(SqliteStore::open(path).await.unwrap()));
    let issuer = Issuer::new(
        config.clone(),
        store.clone(),
        keys.clone(),
        Arc::new(clock.clone()),
    );
    let issuer = if shared {
        issuer.with_shared_limits()
    } else {
        issuer
    };
    (Arc::new(issuer), store)
}

async fn pair(limits: RateLimitConfig, shared: bool) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ajwt.sqlite3");
    let config = IssuerConfig {
        rate_limits: limits,
        ..test_config()
    };
    let keys = Arc::new(KeyRing::generate(SigningAlgorithm::Es256).unwrap());
    let clock = TestClock {
        start: SystemClock.now(),
        offset: Arc::new(AtomicI64::new(0)),
    };
    let (ia, sa) = replica(&path, &config, &keys, &clock, shared).await;
    let (ib, sb) = replica(&path, &config, &keys, &clock, shared).await;
    let admin = ia
        .create_client(
            vec![REGISTER.to_owned(), GENERATE.to_owned()],
            Some("test admin".to_owned()),
        )
        .await
        .unwrap();
    let harness = |issuer: Arc<Issuer>, store: Arc<dyn Store>| Harness {
        app: ajwt_issuer::http::router(issuer.clone()),
        issuer,
        config: config.clone(),
        store,
        keys: keys.clone(),
        clock: clock.clone(),
        admin: admin.clone(),
    };
    Pair {
        a: harness(ia, sa),
        b: harness(ib, sb),
        _dir: dir,
    }
}

fn limits(grant_failures: u32, auth_failures: u32) -> RateLimitConfig {
    RateLimitConfig {
        grant_failures,
        auth_failures,
        ..RateLimitConfig::default()
    }
}

#[track_caller]
fn expect_rate_limited(r: &Resp, limit: &str) {
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json["error"], "temporarily_unavailable", "{r:?}");
    assert!(r.description().contains(limit), "{r:?}");
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&after), "Retry-After {after}");
}

fn wrong_checksum(agent: &TestAgent) -> Value {
    let mut body = agent.request(&["x"]);
    body["computed_checksum"] = Value::from(format!("sha256:{}", "0".repeat(64)));
    body
}

/// §9.1.1 / I-73 across replicas: 2 + 2 checksum mismatches spread over two
/// replicas go over a limit of 3 for the deployment, so the agent (and the
/// client) are refused on BOTH replicas, even with the right checksum; the
/// control shows that per-process limits would have let them through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i113_checksum_mismatches_on_two_replicas_share_one_budget() {
    for shared in [false, true] {
        let p = pair(limits(3, 100), shared).await;
        let token = p.a.admin_token().await;
        let agent = TestAgent::new("shared-agent");
        p.a.register(&token, &agent).await;
        for h in [&p.a, &p.b, &p.a, &p.b] {
            let r = h.intent(&token, &wrong_checksum(&agent)).await;
            assert_eq!(r.json["error"], "agent_checksum_mismatch", "{r:?}");
        }
        let right = agent.request(&["x"]);
        if shared {
            for h in [&p.a, &p.b] {
                expect_rate_limited(&h.intent(&token, &right).await, "rate_limit_grant_failures");
            }
        } else {
            // Control: each process saw 2 failures, under its limit of 3.
            for h in [&p.a, &p.b] {
                let r = h.intent(&token, &right).await;
                assert_eq!(r.status, 200, "per-process budget: {r:?}");
            }
        }
    }
}

/// §9.1.1 / I-73: unknown-agent guesses count for the deployment too (an
/// attacker enumerating agent ids through several replicas).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i113_unknown_agent_guesses_on_two_replicas_box_the_client_everywhere() {
    let p = pair(limits(2, 100), true).await;
    let token = p.a.admin_token().await;
    for (i, h) in [&p.a, &p.b, &p.a].into_iter().enumerate() {
        let guess = TestAgent::new(&format!("guess-{i}"));
        let r = h.intent(&token, &guess.request(&["x"])).await;
        assert_eq!(r.json["error"], "unknown_agent", "{r:?}");
    }
    // The client is boxed on both replicas, for any agent.
    let known = TestAgent::new("known");
    p.a.register(&token, &known).await;
    for h in [&p.a, &p.b] {
        expect_rate_limited(
            &h.intent(&token, &known.request(&["x"])).await,
            "rate_limit_grant_failures",
        );
    }
}

/// RFC 6749 §2.3.1 / I-73: failed client authentications through two
/// replicas exhaust one budget; the right secret is then refused on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i113_failed_client_authentications_on_two_replicas_share_one_budget() {
    let p = pair(limits(100, 2), true).await;
    let mut wrong = p.a.admin.clone();
    wrong.client_secret = "not-the-secret".into();
    for h in [&p.a, &p.b, &p.a] {
        let r = h.client_credentials(&wrong, None).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (401, Some("invalid_client")),
            "{r:?}"
        );
    }
    for h in [&p.a, &p.b] {
        let r = h.client_credentials(&p.a.admin.clone(), None).await;
        expect_rate_limited(&r, "rate_limit_auth_failures");
    }
}

/// RFC 9449 §11.1: with shared limits, a DPoP proof accepted by one replica
/// is a replay at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_11_1_a_proof_replayed_at_another_replica_is_refused() {
    let p = pair(RateLimitConfig::default(), true).await;
    let token = p.a.admin_token().await;
    let key = DpopKey::generate(Alg::Es256).unwrap();
    let mut agent = TestAgent::new("dpop-shared");
    let mut jwk = key.public_jwk();
    jwk.remove("alg");
    agent.key = AgentKeyPair {
        jwk,
        pem: String::new(),
    };
    p.a.register(&token, &agent).await;
    let proof = key.proof("POST", TOKEN_URL, None, None, p.a.now()).unwrap();
    let send = |h: &Harness| {
        let request = Request::post("/intent/token")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("dpop", proof.as_str())
            .body(Body::from(
                serde_json::to_vec(&agent.request(&["x"])).unwrap(),
            ))
            .unwrap();
        let app = h.app.clone();
        async move { send(&app, request).await }
    };
    let first = send(&p.a).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["token_type"], "DPoP");
    let replay = send(&p.b).await;
    assert_eq!(
        (replay.status, replay.json["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{replay:?}"
    );
    assert!(replay.description().contains("replay"), "{replay:?}");
}

/// I-113: a shared limiter whose store is gone fails closed: 503 with
/// `Retry-After`, never a token or an unlimited guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i113_token_requests_fail_closed_when_the_shared_limits_are_unavailable() {
    let p = pair(limits(3, 3), true).await;
    let token = p.a.admin_token().await;
    let agent = TestAgent::new("closed");
    p.a.register(&token, &agent).await;
    p.a.store.close().await;
    let r = p.a.intent(&token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json["error"], "temporarily_unavailable");
    assert!(r.header("retry-after").is_some(), "{r:?}");
}

/// Measurement, not a check (`cargo test --release --test shared_limits --
/// --ignored --nocapture`): the cost of the shared penalty-box read, of a
/// failure's write, and of a whole `agent_checksum` token request with
/// local and with shared limits, on a SQLite file. Numbers in I-113.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn i113_measure_the_cost_of_shared_limits_on_sqlite() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.sqlite3"))
        .await
        .unwrap();
    let now = SystemClock.now() * 1000;
    for i in 0..1000 {
        store
            .rate_limit_block(&format!("client:c{i}"), now + 600_000)
            .await
            .unwrap();
    }
    let keys = vec!["client:x".to_owned(), "agent:y".to_owned()];
    let n = 5000;
    let t = Instant::now();
    for _ in 0..n {
        store.rate_limit_blocked_until(&keys, now).await.unwrap();
    }
    let read = t.elapsed() / n;
    let t = Instant::now();
    for i in 0..500 {
        store
            .rate_limit_take(&format!("k{}", i % 50), 1000, 60, now)
            .await
            .unwrap();
    }
    let write = t.elapsed() / 500;
    let mut per_request = Vec::new();
    for shared in [true, false, true, false] {
        let p = pair(limits(100_000, 100_000), shared).await;
        let token = p.a.admin_token().await;
        let agent = TestAgent::new("measured");
        p.a.register(&token, &agent).await;
        let body = agent.request(&["x"]);
        for _ in 0..50 {
            p.a.intent(&token, &body).await;
        }
        let t = Instant::now();
        for _ in 0..500 {
            assert_eq!(p.a.intent(&token, &body).await.status, 200);
        }
        per_request.push(t.elapsed() / 500);
    }
    eprintln!(
        "I-113 on SQLite (WAL, synchronous=FULL): penalty-box read {read:?}, bucket write \
         {write:?}; agent_checksum token request: shared {:?} and {:?}, local {:?} and {:?}",
        per_request[0], per_request[2], per_request[1], per_request[3]
    );
}
