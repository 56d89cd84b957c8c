//! Verification throughput for ES256 and EdDSA intent tokens issued by the
//! real issuer, in one run: (a) raw josekit signature verification of the
//! token, (b) the full `Verifier::verify` without DPoP (policy disabled),
//! (c) the full verification with a fresh DPoP proof per request (policy
//! required, in-memory replay cache; proofs are made outside the timing with
//! `iter_batched`). (b) and (c) include the token's Token Status List check
//! against a cached, verified status list (I-92), as a resource server runs
//! it; `breakdown/*/b_without_status_list` is (b) without it.
//! Results and ratios: `benches/RESULTS.md`; `benches/run.sh` writes
//! `verification.json` (issue 15 results contract).
//!
//! `cargo bench -p ajwt-verifier --bench verify -- --warm-up-time 1 --measurement-time 3 --noplot`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{Clock as IssuerClock, Issuer, SystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{verify_dpop_proof, Alg, CompactJws, DpopCheck, DpopKey, JwkSet, PublicKey};
use ajwt_verifier::{
    FetchError, Fetcher, FixedClock, InMemoryReplayCache, KeySource, PopPolicy, RequestParts,
    Requirements, StatusListConfig, Verifier, VerifierConfig,
};
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://idp.example.com";
const API: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/patches";
const WF: &str = "auto-patch-workflow-v1";
const STEP: &str = "step_4_apply_patch";
const AGENT: &str = "vulnerability-patcher-v1";

struct FixedIssuerClock(AtomicI64);

impl IssuerClock for FixedIssuerClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One intent token from the real issuer, its agent's DPoP key, and what
/// the three measurements need.
struct Case {
    name: &'static str,
    token: String,
    now: i64,
    agent: DpopKey,
    issuer_jwk: Map<String, Value>,
    jwks: Value,
    issuer_alg: SigningAlgorithm,
    /// The status list token the intent token's `status` claim points to.
    status_list_jwt: String,
}

/// Serves the one status list token (the resource server's HTTP fetch,
/// without the network: the list is cached by the source after one fetch).
struct StaticFetcher(Vec<u8>);

#[async_trait::async_trait]
impl Fetcher for StaticFetcher {
    async fn get(&self, _url: &str, _max_len: usize) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
}

async fn issue(issuer_alg: SigningAlgorithm, agent_alg: Alg, name: &'static str) -> Case {
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(
        SqliteStore::open_in_memory().await.unwrap(),
    ));
    let keys = Arc::new(KeyRing::generate(issuer_alg).unwrap());
    let now = SystemClock.now();
    let config = IssuerConfig {
        issuer: ISSUER.to_owned(),
        ..IssuerConfig::default()
    };
    let issuer = Issuer::new(
        config,
        store,
        keys.clone(),
        Arc::new(FixedIssuerClock(AtomicI64::new(now))),
    );
    let workflow = json!({"workflow_id": WF, "steps": {
        STEP: {"required": true, "requires_approval": false, "agent_id": AGENT}
    }});
    issuer
        .register_workflow(&serde_json::to_vec(&workflow).unwrap())
        .await
        .unwrap();
    let agent = DpopKey::generate(agent_alg).unwrap();
    let registration = json!({
        "agent_id": AGENT,
        "prompt": "You apply security patches to dependency manifests.",
        "tools": [{"name": "apply_patch", "description": "Apply a patch",
                   "parameters": {"type": "object", "properties": {"patch": {"type": "string"}}}}],
        "configuration": {"model_name": "bench-model", "temperature": 0.0},
        "public_key": agent.public_jwk(),
    });
    let reg = issuer
        .register_agent(&serde_json::to_vec(&registration).unwrap())
        .await
        .unwrap();
    let request = json!({
        "grant_type": "agent_checksum",
        "agent_id": AGENT,
        "computed_checksum": reg.checksum.to_string(),
        "workflow_id": WF,
        "workflow_step": STEP,
        "workflow_enabled": true,
        "requested_scopes": ["repo:read", "repo:write"],
        "audience": API,
        "delegation_context": {"chain": [], "completed_steps": []},
    });
    let request =
        ajwt_protocol::wire::decode_token_request(&serde_json::to_vec(&request).unwrap()).unwrap();
    let token = issuer.intent_token(request).await.unwrap().access_token;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    let uri = claims["status"]["status_list"]["uri"].as_str().unwrap();
    let list_id: i64 = uri.rsplit('/').next().unwrap().parse().unwrap();
    let status_list_jwt = issuer.status_list_token(list_id).await.unwrap().jwt;
    let jwks = issuer.jwks();
    let issuer_jwk = jwks["keys"][0].as_object().unwrap().clone();
    Case {
        name,
        token,
        now,
        agent,
        issuer_jwk,
        jwks,
        issuer_alg,
        status_list_jwt,
    }
}

impl Case {
    fn verifier(&self, policy: PopPolicy) -> Verifier {
        let (set, skipped) = JwkSet::parse(&serde_json::to_vec(&self.jwks).unwrap()).unwrap();
        assert!(skipped.is_empty());
        let mut config = VerifierConfig::new(ISSUER, API);
        config.pop = policy;
        Verifier::new(config, KeySource::from_jwks(set))
            .with_clock(Arc::new(FixedClock(self.now)))
            .with_replay_cache(Arc::new(InMemoryReplayCache::new(50_000_000)))
    }

    /// [`Case::verifier`] checking the token's status list (I-92).
    fn verifier_with_status(&self, policy: PopPolicy) -> Verifier {
        self.verifier(policy).with_status_lists(
            StatusListConfig::new(ISSUER),
            Arc::new(StaticFetcher(self.status_list_jwt.clone().into_bytes())),
        )
    }

    fn josekit_verifier(&self) -> Box<dyn JwsVerifier> {
        let jwk = Jwk::from_map(self.issuer_jwk.clone()).unwrap();
        match self.issuer_alg {
            SigningAlgorithm::Es256 => {
                Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap())
            }
            SigningAlgorithm::EdDsa | SigningAlgorithm::Ed25519 => {
                Box::new(josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap())
            }
            SigningAlgorithm::Rs256 => {
                Box::new(josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap())
            }
            SigningAlgorithm::Ps256 => {
                Box::new(josekit::jws::PS256.verifier_from_jwk(&jwk).unwrap())
            }
        }
    }
}

/// Polls a future that never waits (static keys, in-memory replay cache)
/// without an executor; falls back to the runtime if it ever does.
fn run_now<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => rt.block_on(fut),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = rt.block_on(async {
        vec![
            issue(SigningAlgorithm::Es256, Alg::Es256, "ES256").await,
            issue(SigningAlgorithm::EdDsa, Alg::EdDsa, "EdDSA").await,
        ]
    });
    let route = Requirements::scopes(["repo:write"]).at_steps(WF, [STEP]);

    for case in &cases {
        let mut group = c.benchmark_group(format!("verify/{}", case.name));
        group.throughput(Throughput::Elements(1));

        // (a) raw josekit: signature (and header) of the same token.
        let jv = case.josekit_verifier();
        josekit::jws::deserialize_compact(&case.token, &*jv).expect("josekit verifies the token");
        group.bench_function("a_josekit_signature", |b| {
            b.iter(|| {
                josekit::jws::deserialize_compact(std::hint::black_box(&case.token), &*jv).unwrap()
            })
        });

        // (b) full verification, PoP disabled, bearer presentation, status
        // list checked (cached list).
        let v = case.verifier_with_status(PopPolicy::Disabled);
        let authorization = [format!("Bearer {}", case.token)];
        let authorization: Vec<&str> = authorization.iter().map(String::as_str).collect();
        let parts = RequestParts {
            method: "POST",
            url: URL,
            authorization: &authorization,
            dpop: &[],
        };
        run_now(&rt, v.verify(&parts, &route)).expect("full verification");
        group.bench_function("b_full_without_dpop", |b| {
            b.iter(|| run_now(&rt, v.verify(std::hint::black_box(&parts), &route)).unwrap())
        });

        // (c) full verification with a fresh DPoP proof per request, status
        // list checked.
        let v_no_status = case.verifier(PopPolicy::Disabled);
        let v = case.verifier_with_status(PopPolicy::Required);
        let authorization = [format!("DPoP {}", case.token)];
        let authorization: Vec<&str> = authorization.iter().map(String::as_str).collect();
        let make_proof = || {
            case.agent
                .proof("POST", URL, Some(&case.token), None, case.now)
                .unwrap()
        };
        {
            let proof = make_proof();
            let dpop = [proof.as_str()];
            let parts = RequestParts {
                method: "POST",
                url: URL,
                authorization: &authorization,
                dpop: &dpop,
            };
            let ok = run_now(&rt, v.verify(&parts, &route)).expect("verification with DPoP");
            assert!(ok.dpop_jkt.is_some());
        }
        group.bench_function("c_full_with_dpop", |b| {
            b.iter_batched(
                make_proof,
                |proof| {
                    let dpop = [proof.as_str()];
                    let parts = RequestParts {
                        method: "POST",
                        url: URL,
                        authorization: &authorization,
                        dpop: &dpop,
                    };
                    run_now(&rt, v.verify(&parts, &route)).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();

        // Where the time goes: the pieces of (b) and (c), measured alone.
        let mut group = c.benchmark_group(format!("breakdown/{}", case.name));
        group.throughput(Throughput::Elements(1));
        let set = JwkSet::parse(&serde_json::to_vec(&case.jwks).unwrap())
            .unwrap()
            .0;
        let key = set.keys()[0].clone();
        group.bench_function("b_without_status_list", |b| {
            b.iter(|| {
                run_now(
                    &rt,
                    v_no_status.verify(std::hint::black_box(&parts), &route),
                )
                .unwrap()
            })
        });
        group.bench_function("jose_parse_and_signature", |b| {
            b.iter(|| {
                let jws = CompactJws::parse(std::hint::black_box(&case.token), 16 * 1024).unwrap();
                jws.verify_with(&key, &Alg::ALL).unwrap();
                jws
            })
        });
        let payload = CompactJws::parse(&case.token, 16 * 1024).unwrap().payload;
        group.bench_function("claims_parse_and_decode", |b| {
            b.iter(|| {
                let raw = ajwt_checksum::json::parse_strict(std::hint::black_box(&payload))
                    .unwrap()
                    .to_serde_json();
                let claims = ajwt_protocol::claims::decode_claims(&payload).unwrap();
                (raw, claims)
            })
        });
        let agent_jwk = case.agent.public_jwk();
        group.bench_function("proof_jwk_to_public_key", |b| {
            b.iter(|| PublicKey::from_jwk(std::hint::black_box(&agent_jwk)).unwrap())
        });
        let jkt = case.agent.thumbprint();
        group.bench_function("verify_dpop_proof_alone", |b| {
            b.iter_batched(
                make_proof,
                |proof| {
                    let check = DpopCheck {
                        method: "POST",
                        url: URL,
                        access_token: Some(&case.token),
                        expected_jkt: Some(&jkt),
                        now: case.now,
                        max_age: 60,
                        leeway: 30,
                        nonce: None,
                        allowed: &Alg::ALL,
                        max_len: 16 * 1024,
                    };
                    verify_dpop_proof(&proof, &check).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        let proof = make_proof();
        let proof_jws = CompactJws::parse(&proof, 16 * 1024).unwrap();
        let proof_key = case.agent.public_key().clone();
        group.bench_function("proof_signature_only", |b| {
            b.iter(|| {
                proof_key
                    .verify(
                        proof_jws.alg,
                        std::hint::black_box(proof_jws.signing_input().as_bytes()),
                        proof_jws.signature(),
                    )
                    .unwrap()
            })
        });
        group.finish();

        // AJWT_BENCH_PAIRED=<dir> (set by run.sh): the paired rounds.
        if let Some(dir) = std::env::var_os("AJWT_BENCH_PAIRED") {
            paired(&rt, case, &route, &*jv, std::path::Path::new(&dir));
        }
    }
}

/// Interleaved paired rounds (issue 15: ratios against a baseline measured
/// in the same run, on a shared and noisy machine). Criterion measures each
/// function for seconds, one after the other, so load from other processes
/// that comes and goes between two functions shows up as a ratio. Here every
/// round times `PAIRED_ITERS` calls of each of (a) raw josekit, (b) full
/// verification, (b0) full without the status list and (c) full with a DPoP
/// proof back to back (in a rotating order), and each ratio is taken within
/// the round; the median over `PAIRED_ROUNDS` rounds goes to
/// `<dir>/paired_<alg>/ratios.json` for `run.sh`.
fn paired(
    rt: &tokio::runtime::Runtime,
    case: &Case,
    route: &Requirements,
    jv: &dyn JwsVerifier,
    dir: &std::path::Path,
) {
    const PAIRED_ROUNDS: usize = 41;
    const PAIRED_ITERS: usize = 150;
    let v_b = case.verifier_with_status(PopPolicy::Disabled);
    let v_b0 = case.verifier(PopPolicy::Disabled);
    let v_c = case.verifier_with_status(PopPolicy::Required);
    let bearer = [format!("Bearer {}", case.token)];
    let bearer: Vec<&str> = bearer.iter().map(String::as_str).collect();
    let dpop_auth = [format!("DPoP {}", case.token)];
    let dpop_auth: Vec<&str> = dpop_auth.iter().map(String::as_str).collect();
    let parts = RequestParts {
        method: "POST",
        url: URL,
        authorization: &bearer,
        dpop: &[],
    };
    // Warm-up of every path (the status list fetched and cached).
    run_now(rt, v_b.verify(&parts, route)).unwrap();
    run_now(rt, v_b0.verify(&parts, route)).unwrap();
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        for _ in 0..PAIRED_ITERS {
            f();
        }
        t.elapsed().as_nanos() as f64 / PAIRED_ITERS as f64
    };
    let (mut rb, mut rb0, mut rc) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..PAIRED_ROUNDS {
        // Fresh proofs (new jti each: the replay cache is live), made
        // outside the timing.
        let proofs: Vec<String> = (0..PAIRED_ITERS)
            .map(|_| {
                case.agent
                    .proof("POST", URL, Some(&case.token), None, case.now)
                    .unwrap()
            })
            .collect();
        let mut next_proof = proofs.iter();
        let mut a = || {
            josekit::jws::deserialize_compact(std::hint::black_box(&case.token), jv).unwrap();
        };
        let mut b = || {
            run_now(rt, v_b.verify(std::hint::black_box(&parts), route)).unwrap();
        };
        let mut b0 = || {
            run_now(rt, v_b0.verify(std::hint::black_box(&parts), route)).unwrap();
        };
        let mut c = || {
            let proof = next_proof.next().unwrap();
            let dpop = [proof.as_str()];
            let parts = RequestParts {
                method: "POST",
                url: URL,
                authorization: &dpop_auth,
                dpop: &dpop,
            };
            run_now(rt, v_c.verify(&parts, route)).unwrap();
        };
        let mut t = [0f64; 4];
        for k in 0..4 {
            let which = (k + round) % 4;
            t[which] = match which {
                0 => time(&mut a),
                1 => time(&mut b),
                2 => time(&mut b0),
                _ => time(&mut c),
            };
        }
        rb.push(t[1] / t[0]);
        rb0.push(t[2] / t[0]);
        rc.push(t[3] / t[0]);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let out = json!({
        "rounds": PAIRED_ROUNDS,
        "iters": PAIRED_ITERS,
        "b_over_a": median(rb),
        "b0_over_a": median(rb0),
        "c_over_a": median(rc),
    });
    let dir = dir.join(format!("paired_{}", case.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ratios.json"), out.to_string()).unwrap();
    eprintln!("paired {}: {out}", case.name);
}

criterion_group!(benches, bench);
criterion_main!(benches);
