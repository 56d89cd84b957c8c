//! The in-process issuance pipeline (issue 15 "Issuance", I-147) next to the
//! raw signature of the same claims, in one run:
//!
//! - `raw_sign_ajwt_jose`: `ajwt_jose::SigningKey::sign_raw` of the issued
//!   token's header and payload bytes with the issuer's own key (base64url
//!   of both, the signature, base64url of it) — the floor.
//! - `raw_sign_josekit`: the same with josekit (`serialize_compact`), a
//!   second library, same key (from the same PKCS#8 PEM).
//! - `pipeline`: what the token endpoint does after the client token is
//!   authorized: decode the JSON request (§4.2.1) → `Issuer::intent_token_for`
//!   (grant rate-limit check, registry lookup through the cache decorator,
//!   checksum compare, workflow and delegation rules (§4.3.1, §4.3.4),
//!   claims (§4.4), token record and status index (§9.3.2), sign, metrics,
//!   audit append with the intent hash (§9.4.1)) on an in-memory SQLite store
//!   behind `CachedStore`, as `ajwt serve` runs it.
//! - `persistence`: the two store writes of one issuance alone, on the same
//!   kind of store: `record_token` and `append_audit` (H3 batches them).
//! - `client_token_hit` / `client_token_miss`: `Issuer::authorize` of the
//!   same client access token with the I-145 cache and without it.
//!
//! `cargo bench -p ajwt-issuer --bench issuance -- --noplot`; `benches/run.sh`
//! runs it and writes `issuance.json` (results contract of issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ajwt_issuer::audit::AuditEvent;
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{ClientContext, Clock, Issuer, SystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{NewTokenRecord, Store};
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example.com";
const API: &str = "https://api.example.com";
const WF: &str = "auto-patch-workflow-v1";
const STEP: &str = "step_4_apply_patch";
const AGENT: &str = "vulnerability-patcher-v1";

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Case {
    name: &'static str,
    issuer: Arc<Issuer>,
    uncached: Arc<Issuer>,
    store: Arc<dyn Store>,
    client: ClientContext,
    client_token: String,
    request: Vec<u8>,
    /// Header and payload bytes of an issued token.
    header: Vec<u8>,
    payload: Vec<u8>,
    key: SigningKey,
    josekit: Box<dyn josekit::jws::JwsSigner>,
}

async fn setup(alg: SigningAlgorithm, jose_alg: Alg, name: &'static str) -> Case {
    let now = SystemClock.now();
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(
        SqliteStore::open_in_memory().await.unwrap(),
    ));
    let stored = KeyRing::generate_stored(alg, u64::try_from(now).unwrap()).unwrap();
    let pem = stored.private_key_pem.clone().unwrap();
    let config = IssuerConfig {
        issuer: ISSUER.to_owned(),
        ..IssuerConfig::default()
    };
    let (ring, _) = KeyRing::from_stored(
        &[stored],
        config.rotation_policy(),
        u64::try_from(now).unwrap(),
    )
    .unwrap();
    let ring = Arc::new(ring);
    let clock = Arc::new(FixedClock(AtomicI64::new(now)));
    let issuer = Arc::new(Issuer::new(
        config.clone(),
        store.clone(),
        ring.clone(),
        clock.clone(),
    ));
    let uncached =
        Arc::new(Issuer::new(config, store.clone(), ring, clock).with_client_token_cache(0));
    let workflow = json!({"workflow_id": WF, "steps": {
        STEP: {"required": true, "requires_approval": false, "agent_id": AGENT}
    }});
    issuer
        .register_workflow(&serde_json::to_vec(&workflow).unwrap())
        .await
        .unwrap();
    let agent = ajwt_jose::DpopKey::generate(Alg::Es256).unwrap();
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
    let request = serde_json::to_vec(&json!({
        "grant_type": "agent_checksum",
        "agent_id": AGENT,
        "computed_checksum": reg.checksum.to_string(),
        "workflow_id": WF,
        "workflow_step": STEP,
        "workflow_enabled": true,
        "requested_scopes": ["repo:read", "repo:write"],
        "audience": API,
        "delegation_context": {"chain": [], "completed_steps": []},
    }))
    .unwrap();
    let creds = issuer
        .create_client(vec!["generate:intent-token".to_owned()], None)
        .await
        .unwrap();
    let params = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        ("client_id".to_owned(), creds.client_id.clone()),
        ("client_secret".to_owned(), creds.client_secret.clone()),
    ];
    let client_token = issuer
        .client_credentials(&params, None, None)
        .await
        .unwrap()
        .access_token;
    let client = issuer
        .authorize(
            Some(&format!("Bearer {client_token}")),
            "generate:intent-token",
        )
        .unwrap();
    let req = ajwt_protocol::wire::decode_token_request(&request).unwrap();
    let token = issuer
        .intent_token_for(&client, req, None)
        .await
        .unwrap()
        .access_token;
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let key = SigningKey::from_pkcs8_pem(pem.as_bytes(), jose_alg).unwrap();
    let josekit: Box<dyn josekit::jws::JwsSigner> = match alg {
        SigningAlgorithm::Es256 => Box::new(josekit::jws::ES256.signer_from_pem(&pem).unwrap()),
        SigningAlgorithm::EdDsa | SigningAlgorithm::Ed25519 => {
            Box::new(josekit::jws::EdDSA.signer_from_pem(&pem).unwrap())
        }
        SigningAlgorithm::Rs256 => Box::new(josekit::jws::RS256.signer_from_pem(&pem).unwrap()),
        SigningAlgorithm::Ps256 => Box::new(josekit::jws::PS256.signer_from_pem(&pem).unwrap()),
    };
    Case {
        name,
        issuer,
        uncached,
        store,
        client,
        client_token,
        request,
        header,
        payload,
        key,
        josekit,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut algs = vec![(SigningAlgorithm::Es256, Alg::Es256, "ES256")];
    if std::env::var_os("BENCH_QUICK").is_none() {
        algs.push((SigningAlgorithm::EdDsa, Alg::EdDsa, "EdDSA"));
    }
    for (alg, jose_alg, name) in algs {
        let case = rt.block_on(setup(alg, jose_alg, name));
        let mut group = c.benchmark_group(format!("issuance/{}", case.name));
        group.throughput(Throughput::Elements(1));

        group.bench_function("raw_sign_ajwt_jose", |b| {
            b.iter(|| {
                case.key
                    .sign_raw(
                        std::hint::black_box(&case.header),
                        std::hint::black_box(&case.payload),
                    )
                    .unwrap()
            })
        });
        let josekit_header = {
            let map: serde_json::Map<String, Value> = serde_json::from_slice(&case.header).unwrap();
            josekit::jws::JwsHeader::from_map(map).unwrap()
        };
        group.bench_function("raw_sign_josekit", |b| {
            b.iter(|| {
                josekit::jws::serialize_compact(
                    std::hint::black_box(&case.payload),
                    &josekit_header,
                    &*case.josekit,
                )
                .unwrap()
            })
        });
        group.bench_function("pipeline", |b| {
            b.iter(|| {
                let req =
                    ajwt_protocol::wire::decode_token_request(std::hint::black_box(&case.request))
                        .unwrap();
                rt.block_on(case.issuer.intent_token_for(&case.client, req, None))
                    .unwrap()
            })
        });
        let mut n = 0u64;
        let exp = SystemClock.now() + 600;
        group.bench_function("persistence", |b| {
            b.iter(|| {
                n += 1;
                let jti = format!("bench-{n}");
                rt.block_on(async {
                    case.store
                        .record_token(
                            NewTokenRecord {
                                jti: jti.clone(),
                                agent_id: AGENT.to_owned(),
                                registration_id: "reg".to_owned(),
                                client_id: case.client.client_id.clone(),
                                iat: exp - 600,
                                exp,
                                chain: Vec::new(),
                                ancestors: Vec::new(),
                            },
                            65_536,
                            rand_u64(n),
                        )
                        .await
                        .unwrap();
                    let entry = AuditEvent::TokenIssued {
                        agent_id: AGENT.to_owned(),
                        registration_id: "reg".to_owned(),
                        jti,
                        intent_hash: "0".repeat(64),
                        exp,
                        scope: "repo:read repo:write".to_owned(),
                    }
                    .into_entry(Some(&case.client.client_id), exp * 1000);
                    case.store.append_audit(entry).await.unwrap()
                })
            })
        });
        let header = format!("Bearer {}", case.client_token);
        group.bench_function("client_token_hit", |b| {
            b.iter(|| {
                case.issuer
                    .authorize(Some(std::hint::black_box(&header)), "generate:intent-token")
                    .unwrap()
            })
        });
        group.bench_function("client_token_miss", |b| {
            b.iter(|| {
                case.uncached
                    .authorize(Some(std::hint::black_box(&header)), "generate:intent-token")
                    .unwrap()
            })
        });
        group.finish();
    }
}

/// A well-spread pseudo-random value (the status index seed), no RNG cost.
fn rand_u64(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

criterion_group!(benches, bench);
criterion_main!(benches);
