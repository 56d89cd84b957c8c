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
//! - `pipeline_no_store_writes`: the same pipeline over a store that answers
//!   the two writes of an issuance (`record_token`, `append_audit`) at once
//!   without writing (the audit record's hash chain is still computed, as
//!   the store would), everything else forwarded to the SQLite store: the
//!   CPU cost of issuance in this process, compared with the target.
//! - `persistence`: the two store writes of one issuance alone, on the same
//!   kind of store: `record_token` and `append_audit` (H3 batches them).
//! - `client_token_hit` / `client_token_miss`: `Issuer::authorize` of the
//!   same client access token with the I-145 cache and without it.
//!
//! `cargo bench -p ajwt-issuer --bench issuance -- --noplot`; `benches/run.sh`
//! runs it and writes `issuance.json` (results contract of issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

/// The allocator `ajwt serve` runs the pipeline with (I-183): the pipeline
/// is measured as the server runs it (I-186).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ajwt_issuer::audit::{AuditCheckpoint, AuditEntry, AuditEvent, AuditRecord};
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{ClientContext, Clock, Issuer, SystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{
    AgentRecord, ClientRecord, NewRegistration, NewTokenRecord, StatusIndex, Store, StoreError,
    TokenRecord,
};
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, SigningKey};
use ajwt_protocol::registration::Workflow;
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

/// The SQLite store with the two writes of an issuance answered at once
/// (no write): the pipeline's own CPU cost without the store's I/O.
struct NoWrites {
    inner: Arc<dyn Store>,
    n: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl Store for NoWrites {
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
        self.inner.register_agent(new).await
    }
    async fn latest_registration(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
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
        self.inner.close().await
    }
    async fn record_token(
        &self,
        _token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        Ok(StatusIndex {
            list_id: 1,
            idx: random % u64::from(list_size.max(1)),
        })
    }
    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token_record(jti).await
    }
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let seq = self.n.fetch_add(1, Ordering::Relaxed) + 1;
        AuditRecord::chain(entry, seq, "0".repeat(64))
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
    async fn audit_records(&self, a: u64, l: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_records(a, l).await
    }
    async fn audit_last(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_last(n).await
    }
    async fn append_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        self.inner.append_audit_checkpoint(c).await
    }
    async fn latest_audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.inner.latest_audit_checkpoint().await
    }
}

struct Case {
    name: &'static str,
    issuer: Arc<Issuer>,
    no_writes: Arc<Issuer>,
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
    let mut config = IssuerConfig {
        issuer: ISSUER.to_owned(),
        ..IssuerConfig::default()
    };
    // One client and one agent make every request here: the per-minute
    // request limits (I-73) are still checked, but never reached.
    config.rate_limits.client = 1_000_000_000;
    config.rate_limits.agent = 1_000_000_000;
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
    let uncached = Arc::new(
        Issuer::new(config.clone(), store.clone(), ring.clone(), clock.clone())
            .with_client_token_cache(0),
    );
    let no_writes = Arc::new(Issuer::new(
        config,
        Arc::new(NoWrites {
            inner: store.clone(),
            n: std::sync::atomic::AtomicU64::new(0),
        }),
        ring,
        clock,
    ));
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
        no_writes,
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
        group.bench_function("pipeline_no_store_writes", |b| {
            b.iter(|| {
                let req =
                    ajwt_protocol::wire::decode_token_request(std::hint::black_box(&case.request))
                        .unwrap();
                rt.block_on(case.no_writes.intent_token_for(&case.client, req, None))
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
