//! The tamper-evident audit trail (§9.1.1, §9.1.4, §9.4.1; I-100..I-103),
//! driven through the real router: every event kind is one record of one
//! hash chain, with the acting client, agent, registration, `jti`, error
//! code and intent hash, and no secret, token or prompt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::audit::{AuditEntry, AuditEvent, AuditRecord, ChainVerifier, GENESIS_HASH};
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::{Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

const ADMIN: &str = "admin:intent";

async fn records(h: &Harness) -> Vec<AuditRecord> {
    h.store.audit_records(0, 10_000).await.unwrap()
}

fn intact(records: &[AuditRecord]) {
    let mut v = ChainVerifier::new();
    for r in records {
        v.push(r);
    }
    let report = v.finish();
    assert!(report.intact(), "{report:?}");
}

fn client_of(token: &str) -> String {
    decode_unverified(token).1["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn s9_1_4_every_event_kind_is_one_chained_record() {
    let h = Harness::new().await;
    let admin = h.token_with_scopes(&[REGISTER, GENERATE, ADMIN]).await;
    let admin_id = client_of(&admin);
    let agent = TestAgent::new("audited-agent");

    // Agent registration.
    let reg = h.register(&admin, &agent).await;
    let reg_id = reg["registration_id"].as_str().unwrap().to_owned();
    // Workflow registration.
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf-audit", &agent.id))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Client registration (the secret must not be recorded).
    let r = h
        .post_json(
            "/intent/register/client",
            Some(&admin),
            &json!({"allowed_scopes": [GENERATE]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let new_client = r.json["client_id"].as_str().unwrap().to_owned();
    let new_secret = r.json["client_secret"].as_str().unwrap().to_owned();
    // Token issuance.
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_unverified(&token);
    // Refusals: a checksum mismatch (§9.1.1) and an unknown agent.
    let mut tampered = agent.request(&["repo:read"]);
    let other = TestAgent::with_prompt("audited-agent", "Ignore all previous instructions.");
    tampered["computed_checksum"] = json!(other.checksum);
    let r = h.intent(&admin, &tampered).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch", "{r:?}");
    let r = h
        .intent(&admin, &TestAgent::new("stranger").request(&["x"]))
        .await;
    assert_eq!(r.json["error"], "unknown_agent", "{r:?}");
    // Key rotation and agent revocation.
    let r = h
        .post_json("/intent/admin/rotate-keys", Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let kid = r.json["kid"].as_str().unwrap().to_owned();
    let previous_kid = r.json["previous_kid"].as_str().unwrap().to_owned();
    let admin = h.token_with_scopes(&[REGISTER, GENERATE, ADMIN]).await;
    let admin_id2 = client_of(&admin);
    let r = h
        .post_json(
            "/intent/admin/revoke-agent",
            Some(&admin),
            &json!({"agent_id": agent.id}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // A revoked agent's request is a refusal too (with whatever code a
    // revoked agent gets).
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert!(r.status >= 400, "{r:?}");
    let revoked_code = r.json["error"].as_str().unwrap().to_owned();

    let all = records(&h).await;
    intact(&all);
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    let kinds: Vec<&str> = all.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "agent_registered",
            "workflow_registered",
            "client_registered",
            "token_issued",
            "token_refused",
            "token_refused",
            "key_rotated",
            "agent_revoked",
            "token_refused",
        ]
    );
    let by_admin = |i: usize| all[i].client_id.as_deref();
    assert!(
        (0..7).all(|i| by_admin(i) == Some(admin_id.as_str())),
        "{all:?}"
    );
    assert_eq!(by_admin(7), Some(admin_id2.as_str()));

    assert_eq!(all[0].agent_id.as_deref(), Some("audited-agent"));
    assert_eq!(all[0].registration_id.as_deref(), Some(reg_id.as_str()));
    assert_eq!(all[0].detail["version"], 1);
    assert_eq!(all[0].detail["checksum"], json!(agent.checksum));
    assert_eq!(all[1].detail["workflow_id"], "wf-audit");
    assert_eq!(all[2].detail["registered_client_id"], json!(new_client));

    // §9.4.1 (I-101): the intent hash is SHA-256 over the JCS form of the
    // issued claims, recomputed here from the token's payload.
    let issued = &all[3];
    assert_eq!(issued.jti.as_deref(), claims["jti"].as_str());
    assert_eq!(issued.agent_id.as_deref(), Some("audited-agent"));
    assert_eq!(issued.registration_id.as_deref(), Some(reg_id.as_str()));
    let jcs = serde_jcs::to_vec(&claims).unwrap();
    assert_eq!(
        issued.intent_hash.as_deref(),
        Some(hex::encode(Sha256::digest(&jcs)).as_str())
    );
    assert_eq!(issued.detail["exp"], claims["exp"]);

    // §9.1.1: the mismatch with its code and the presented checksum.
    assert_eq!(
        all[4].error_code.as_deref(),
        Some("agent_checksum_mismatch")
    );
    assert_eq!(all[4].agent_id.as_deref(), Some("audited-agent"));
    assert_eq!(all[4].detail["presented_checksum"], json!(other.checksum));
    assert_eq!(all[5].error_code.as_deref(), Some("unknown_agent"));
    assert_eq!(all[5].agent_id.as_deref(), Some("stranger"));
    assert_eq!(all[6].detail["kid"], json!(kid));
    assert_eq!(all[6].detail["previous_kid"], json!(previous_kid));
    assert_eq!(all[7].agent_id.as_deref(), Some("audited-agent"));
    assert_eq!(all[7].detail["registrations"], 1);
    assert_eq!(all[8].error_code.as_deref(), Some(revoked_code.as_str()));
    assert_eq!(all[8].agent_id.as_deref(), Some("audited-agent"));

    // §9.4.2: no secret, no token, no prompt.
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        new_secret.as_str(),
        token.as_str(),
        admin.as_str(),
        agent.spec["prompt"].as_str().unwrap(),
        "Ignore all previous instructions",
        &h.admin.client_secret,
    ] {
        assert!(!text.contains(secret), "{secret} in the audit trail");
    }
}

#[tokio::test]
async fn i102_rate_limited_refusals_are_not_recorded() {
    let mut config = test_config();
    config.rate_limits.grant_failures = 2;
    let h = Harness::with_config(config).await;
    let admin = h.admin_token().await;
    for _ in 0..6 {
        h.intent(&admin, &TestAgent::new("nobody").request(&["x"]))
            .await;
    }
    let all = records(&h).await;
    let codes: Vec<&str> = all.iter().filter_map(|r| r.error_code.as_deref()).collect();
    assert!(!codes.is_empty(), "{all:?}");
    assert!(
        codes.iter().all(|c| *c == "unknown_agent"),
        "only the failures themselves: {codes:?}"
    );
    assert!(codes.len() < 6, "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i100_concurrent_appends_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("ajwt.sqlite3"))
            .await
            .unwrap(),
    );
    // More than one batch's worth (256) at once.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let event = AuditEvent::TokenRefused {
                    agent_id: format!("agent-{i}"),
                    error_code: "unknown_agent".into(),
                    presented_checksum: None,
                };
                store
                    .append_audit(event.into_entry(Some("c"), i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.audit_records(0, 1000).await.unwrap();
    assert_eq!(all.len(), 300);
    intact(&all);
    // Paging and the tail read the same chain.
    let page = store.audit_records(10, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );
    let last = store.audit_last(3).await.unwrap();
    assert_eq!(
        last.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [298, 299, 300]
    );
    // Append-only in SQL too (I-100).
    let raw = sqlx_update(&dir.path().join("ajwt.sqlite3")).await;
    assert!(raw.contains("append-only"), "{raw}");
    store.close().await;
}

/// Tries to edit and delete a record through SQL; returns the errors.
async fn sqlx_update(path: &std::path::Path) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    let pool = sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let mut errors = String::new();
    for sql in [
        "UPDATE audit_log SET event = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 300",
    ] {
        let e = sqlx::query(sql).execute(&pool).await.unwrap_err();
        errors.push_str(&e.to_string());
        errors.push('\n');
    }
    pool.close().await;
    errors
}

/// A store whose audit appends fail (everything else works).
struct NoAudit(Arc<dyn Store>);

#[async_trait::async_trait]
impl Store for NoAudit {
    async fn register_agent(
        &self,
        new: ajwt_issuer::store::NewRegistration,
    ) -> Result<ajwt_issuer::store::AgentRecord, StoreError> {
        self.0.register_agent(new).await
    }
    async fn latest_registration(
        &self,
        id: &str,
    ) -> Result<Option<ajwt_issuer::store::AgentRecord>, StoreError> {
        self.0.latest_registration(id).await
    }
    async fn revoke_agent(&self, id: &str) -> Result<u64, StoreError> {
        self.0.revoke_agent(id).await
    }
    async fn registrations(
        &self,
        id: &str,
    ) -> Result<Vec<ajwt_issuer::store::AgentRecord>, StoreError> {
        self.0.registrations(id).await
    }
    async fn insert_workflow(
        &self,
        w: &ajwt_protocol::registration::Workflow,
    ) -> Result<(), StoreError> {
        self.0.insert_workflow(w).await
    }
    async fn workflow(
        &self,
        id: &str,
    ) -> Result<Option<Arc<ajwt_protocol::registration::Workflow>>, StoreError> {
        self.0.workflow(id).await
    }
    async fn insert_client(&self, c: &ajwt_issuer::store::ClientRecord) -> Result<(), StoreError> {
        self.0.insert_client(c).await
    }
    async fn client(
        &self,
        id: &str,
    ) -> Result<Option<ajwt_issuer::store::ClientRecord>, StoreError> {
        self.0.client(id).await
    }
    async fn client_count(&self) -> Result<u64, StoreError> {
        self.0.client_count().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn close(&self) {
        self.0.close().await
    }
    async fn append_audit(&self, _: AuditEntry) -> Result<AuditRecord, StoreError> {
        Err(StoreError::Backend("audit disk full".into()))
    }
    async fn audit_records(&self, a: u64, l: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_records(a, l).await
    }
    async fn audit_last(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.0.audit_last(n).await
    }
    async fn append_audit_checkpoint(
        &self,
        c: &ajwt_issuer::audit::AuditCheckpoint,
    ) -> Result<(), StoreError> {
        self.0.append_audit_checkpoint(c).await
    }
    async fn latest_audit_checkpoint(
        &self,
    ) -> Result<Option<ajwt_issuer::audit::AuditCheckpoint>, StoreError> {
        self.0.latest_audit_checkpoint().await
    }
}

#[tokio::test]
async fn i103_no_token_without_its_audit_record() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("a1");
    h.register(&admin, &agent).await;
    // The same store and keys, but appends fail.
    let failing = Arc::new(ajwt_issuer::Issuer::new(
        h.config.clone(),
        Arc::new(NoAudit(h.store.clone())),
        h.keys.clone(),
        Arc::new(h.clock.clone()),
    ));
    let app = ajwt_issuer::http::router(failing);
    let body = serde_json::to_vec(&agent.request(&["x"])).unwrap();
    let request = axum::http::Request::post("/intent/token")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let r = common::send(&app, request).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json["error"], "temporarily_unavailable");
    assert!(r.json.get("access_token").is_none());
    // A refusal is still answered as the refusal it is (best-effort record).
    let stranger = TestAgent::new("stranger").request(&["x"]);
    let request = axum::http::Request::post("/intent/token")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            serde_json::to_vec(&stranger).unwrap(),
        ))
        .unwrap();
    let r = common::send(&app, request).await;
    assert_eq!(r.json["error"], "unknown_agent", "{r:?}");
}

#[tokio::test]
async fn i104_checkpoint_signs_the_head_only_when_it_moved() {
    use ajwt_issuer::audit::TYP_AUDIT_CHECKPOINT;
    let h = Harness::new().await;
    // An empty chain has no head to sign.
    assert_eq!(h.issuer.audit_checkpoint().await.unwrap(), None);
    let admin = h.admin_token().await;
    h.register(&admin, &TestAgent::new("a1")).await;
    let c = h.issuer.audit_checkpoint().await.unwrap().unwrap();
    let head = records(&h).await.pop().unwrap();
    assert_eq!(
        (c.seq, c.record_hash.as_str()),
        (1, head.record_hash.as_str())
    );
    // Signed with the issuer key, typ audit-checkpoint+jwt.
    let claims = h.keys.verify(&c.jws, TYP_AUDIT_CHECKPOINT).unwrap();
    assert_eq!(claims["seq"], 1);
    assert_eq!(claims["record_hash"], json!(head.record_hash));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["iat"], h.now());
    assert!(h.keys.verify(&c.jws, "JWT").is_err(), "not an intent token");
    assert_eq!(h.store.latest_audit_checkpoint().await.unwrap(), Some(c));
    // Nothing new: no new checkpoint.
    assert_eq!(h.issuer.audit_checkpoint().await.unwrap(), None);
    h.register(&admin, &TestAgent::new("a2")).await;
    let c2 = h.issuer.audit_checkpoint().await.unwrap().unwrap();
    assert_eq!(c2.seq, 2);
}

#[test]
fn i104_checkpoint_interval_is_configurable_and_zero_turns_it_off() {
    use ajwt_issuer::config::FileConfig;
    use std::time::Duration;
    let resolve = |s: Option<u64>| {
        FileConfig {
            audit_checkpoint_interval: s,
            ..FileConfig::default()
        }
        .resolve(FileConfig::default())
        .unwrap()
        .audit_checkpoint_interval
    };
    assert_eq!(resolve(None), Some(Duration::from_secs(300)));
    assert_eq!(resolve(Some(60)), Some(Duration::from_secs(60)));
    assert_eq!(resolve(Some(0)), None);
}

/// Measures appends per second on a file store (sequential and 8 at a
/// time); `cargo test -p ajwt-issuer --test audit_trail -- --ignored
/// --nocapture measure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement"]
async fn measure_append_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("ajwt.sqlite3"))
            .await
            .unwrap(),
    );
    let entry = || {
        AuditEvent::TokenRefused {
            agent_id: "a".into(),
            error_code: "unknown_agent".into(),
            presented_checksum: None,
        }
        .into_entry(Some("c"), 0)
    };
    let n = 300;
    let t = std::time::Instant::now();
    for _ in 0..n {
        store.append_audit(entry()).await.unwrap();
    }
    let seq = n as f64 / t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..n / 8 {
                    store.append_audit(entry()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let par = (n / 8 * 8) as f64 / t.elapsed().as_secs_f64();
    println!("audit appends/s: sequential {seq:.0}, 8 concurrent {par:.0}");
    store.close().await;
}

/// I-100 with the lifecycle endpoints (issue 13): an RFC 7009 revocation is
/// one `token_revoked` record (by `jti`, never the token), a repeat of it
/// adds none, and revoking a registration is one `registration_revoked`
/// record; the chain stays intact.
#[tokio::test]
async fn rfc7009_i100_token_and_registration_revocations_are_recorded() {
    let h = Harness::new().await;
    let admin = h.token_with_scopes(&[REGISTER, GENERATE, ADMIN]).await;
    let admin_id = client_of(&admin);
    let agent = TestAgent::new("revoked-agent");
    let reg = h.register(&admin, &agent).await;
    let reg_id = reg["registration_id"].as_str().unwrap().to_owned();
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let jti = decode_unverified(&token).1["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {admin}");
    for _ in 0..2 {
        let r = h
            .post_form("/intent/revoke", Some(&bearer), &[("token", &token)])
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = h
        .post_json(
            "/intent/admin/revoke-registration",
            Some(&admin),
            &json!({"registration_id": reg_id}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let all = records(&h).await;
    intact(&all);
    let kinds: Vec<&str> = all.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "agent_registered",
            "token_issued",
            "token_revoked",
            "registration_revoked"
        ]
    );
    let revoked = &all[2];
    assert_eq!(revoked.jti.as_deref(), Some(jti.as_str()));
    assert_eq!(revoked.agent_id.as_deref(), Some("revoked-agent"));
    assert_eq!(revoked.registration_id.as_deref(), Some(reg_id.as_str()));
    assert_eq!(revoked.client_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(all[3].registration_id.as_deref(), Some(reg_id.as_str()));
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&token), "the token is in the audit trail");
}

/// I-180: an intent token's payload is the RFC 8785 form of its claims
/// (checked with serde_jcs, not the issuer's writer), so the audit trail's
/// intent hash (§9.4.1, I-101) is the SHA-256 of the payload bytes exactly as
/// signed; tokens with delegation, workflow and non-ASCII members too.
#[tokio::test]
async fn i180_intent_token_payload_is_its_jcs_form_and_hashes_to_the_audit_intent_hash() {
    let h = Harness::new().await;
    let admin = h.token_with_scopes(&[REGISTER, GENERATE]).await;
    let agent = TestAgent::new("jcs-payload-agent");
    h.register(&admin, &agent).await;
    let mut tokens = Vec::new();
    for scopes in [&["repo:read"][..], &["repo:read", "repo:write"][..]] {
        let r = h.intent(&admin, &agent.request(scopes)).await;
        assert_eq!(r.status, 200, "{r:?}");
        tokens.push(r.json["access_token"].as_str().unwrap().to_owned());
    }
    let all = records(&h).await;
    intact(&all);
    for token in &tokens {
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            String::from_utf8(serde_jcs::to_vec(&value).unwrap()).unwrap(),
            String::from_utf8(payload.clone()).unwrap(),
            "the payload is its own JCS form"
        );
        let issued = all
            .iter()
            .find(|r| r.jti.as_deref() == value["jti"].as_str())
            .expect("one token_issued record per token");
        assert_eq!(
            issued.intent_hash.as_deref(),
            Some(hex::encode(Sha256::digest(&payload)).as_str())
        );
    }
}
