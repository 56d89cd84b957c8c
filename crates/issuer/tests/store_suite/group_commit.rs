//! Group commit (issue 15, I-155): many concurrent writers (registrations,
//! token records, audit appends) each get their own outcome, a failing
//! write fails only its caller, and every acknowledged write is durable:
//! visible to another process on the database, and after a reopen.

use std::collections::HashSet;
use std::sync::Arc;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::store::{NewRegistration, Store, StoreError};

use crate::audit_chain::{entry, verify_chain};
use crate::tokens::token;

/// A registration of `agent` with a checksum unique to `key`.
pub fn registration_keyed(agent: &str, key: &str) -> NewRegistration {
    NewRegistration {
        agent_id: agent.to_owned(),
        checksum: AgentChecksum::digest(key.as_bytes()),
        checksum_profile: Profile::Jcs,
        public_jwk: None,
        jwk_thumbprint: None,
        allowed_scopes: Some(vec!["read".into()]),
        app_id: None,
        spec_json: format!("{{\"key\":\"{key}\"}}"),
        registered_at_ms: 1_700_000_000_000,
        may_reactivate_revoked: false,
    }
}

/// What one concurrent writer did.
#[derive(Debug)]
enum Outcome {
    Registered(String),
    Duplicate(String),
    Revoked,
    Token(i64, u64),
    Audit(u64),
}

/// Runs `n` concurrent writers over `stores` (round robin): fresh
/// registrations, registrations re-using one taken checksum (each must get
/// `DuplicateChecksum`), registrations of a revoked agent (each
/// `AgentRevoked`), token records and audit appends. Returns the outcomes.
async fn mixed_writers(stores: &[Arc<dyn Store>], n: usize) -> Vec<Outcome> {
    let first = &stores[0];
    let taken = first
        .register_agent(registration_keyed("holder", "taken"))
        .await
        .unwrap();
    first
        .register_agent(registration_keyed("gone", "gone-1"))
        .await
        .unwrap();
    assert_eq!(first.revoke_agent("gone").await.unwrap(), 1);
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = stores[i % stores.len()].clone();
        let reg = taken.registration_id.clone();
        tasks.push(tokio::spawn(async move {
            match i % 5 {
                0 => {
                    let r = s
                        .register_agent(registration_keyed(&format!("g-{i}"), &format!("k-{i}")))
                        .await
                        .unwrap();
                    Outcome::Registered(r.registration_id)
                }
                1 => {
                    // A duplicate checksum: fails alone inside its group.
                    match s
                        .register_agent(registration_keyed(&format!("d-{i}"), "taken"))
                        .await
                    {
                        Err(StoreError::DuplicateChecksum { existing_agent_id }) => {
                            Outcome::Duplicate(existing_agent_id)
                        }
                        other => panic!("writer {i}: {other:?}"),
                    }
                }
                2 => match s
                    .register_agent(registration_keyed("gone", &format!("r-{i}")))
                    .await
                {
                    Err(StoreError::AgentRevoked { .. }) => Outcome::Revoked,
                    other => panic!("writer {i}: {other:?}"),
                },
                3 => {
                    let at = s
                        .record_token(
                            token(&format!("jti-{i}"), "holder", &reg, 1_800_000_000),
                            64,
                            i as u64 * 7919,
                        )
                        .await
                        .unwrap();
                    Outcome::Token(at.list_id, at.idx)
                }
                _ => Outcome::Audit(s.append_audit(entry(i)).await.unwrap().seq),
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

/// Checks the outcomes of [`mixed_writers`] against what `reader` (another
/// process, or the reopened database) sees.
async fn check_durable(reader: &Arc<dyn Store>, outcomes: &[Outcome], n: usize) {
    let mut seqs = HashSet::new();
    let mut positions = HashSet::new();
    let mut registered = 0;
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Outcome::Registered(reg_id) => {
                registered += 1;
                let latest = reader
                    .latest_registration(&format!("g-{i}"))
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged registration g-{i} lost"));
                assert_eq!(&latest.registration_id, reg_id);
                assert_eq!(latest.version, 1);
            }
            Outcome::Duplicate(holder) => {
                assert_eq!(holder, "holder");
                assert!(reader
                    .latest_registration(&format!("d-{i}"))
                    .await
                    .unwrap()
                    .is_none());
            }
            Outcome::Revoked => {}
            Outcome::Token(list_id, idx) => {
                let rec = reader
                    .token_record(&format!("jti-{i}"))
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged token jti-{i} lost"));
                assert_eq!((rec.status.list_id, rec.status.idx), (*list_id, *idx));
                assert!(positions.insert((*list_id, *idx)), "index given twice");
            }
            Outcome::Audit(seq) => assert!(seqs.insert(*seq), "seq {seq} given twice"),
        }
    }
    assert_eq!(registered, n.div_ceil(5));
    // The revoked agent kept its one registration.
    assert_eq!(reader.registrations("gone").await.unwrap().len(), 1);
    // One unbroken chain holds every acknowledged append.
    let head = verify_chain(reader).await;
    assert!(head >= seqs.len() as u64);
    // Every used status is accounted for: 64-status lists, no index lost.
    let stats = reader.stats().await.unwrap();
    assert_eq!(stats.statuses_used, positions.len() as u64);
}

/// I-155: 300 concurrent writers through two stores (two processes on one
/// database): every caller gets its own outcome (the 60 duplicate-checksum
/// and 60 revoked-agent refusals fail only themselves, their group's other
/// writes commit), and every acknowledged write is visible to the other
/// store, with unique status indices and one audit chain.
pub async fn i155_concurrent_writers_each_get_their_outcome(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let n = 300;
    let outcomes = mixed_writers(&[a.clone(), b.clone()], n).await;
    check_durable(&b, &outcomes, n).await;
    check_durable(&a, &outcomes, n).await;
}

/// I-155 durability: the same writers on one SQLite file, then the store is
/// closed and the file reopened: every acknowledged write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i155_sqlite_acknowledged_group_writes_survive_reopen() {
    use ajwt_issuer::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ajwt.sqlite3");
    let n = 400;
    let outcomes = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let outcomes = mixed_writers(std::slice::from_ref(&store), n).await;
        store.close().await;
        outcomes
    };
    let reopened: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    check_durable(&reopened, &outcomes, n).await;
    reopened.close().await;
}

/// I-155: a caller that gives up (its future dropped) while its write is
/// queued neither loses the other callers' writes nor breaks the store.
pub async fn i155_cancelled_callers_do_not_lose_other_writes(store: Arc<dyn Store>) {
    let mut kept = Vec::new();
    for i in 0..120usize {
        let s = store.clone();
        let task = tokio::spawn(async move {
            s.register_agent(registration_keyed(&format!("c-{i}"), &format!("c-{i}")))
                .await
        });
        if i % 3 == 0 {
            task.abort();
        } else {
            kept.push((i, task));
        }
    }
    for (i, task) in kept {
        let r = task.await.unwrap().unwrap();
        let latest = store
            .latest_registration(&format!("c-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.registration_id, r.registration_id);
    }
    // The store still takes writes.
    store
        .register_agent(registration_keyed("after", "after"))
        .await
        .unwrap();
}

/// I-155, I-159: among concurrent token records, those re-using a recorded
/// `jti` fail alone (nothing written, their index given back); the others
/// of their group are recorded with distinct indices.
pub async fn i159_duplicate_jti_fails_only_its_caller(store: Arc<dyn Store>) {
    let reg = store
        .register_agent(registration_keyed("tok", "tok"))
        .await
        .unwrap()
        .registration_id;
    store
        .record_token(token("dup", "tok", &reg, 1_800_000_000), 64, 1)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60usize {
        let s = store.clone();
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let jti = if i % 4 == 0 {
                "dup".to_owned()
            } else {
                format!("t-{i}")
            };
            (
                i,
                s.record_token(token(&jti, "tok", &reg, 1_800_000_000), 64, i as u64 * 31)
                    .await,
            )
        }));
    }
    let mut indices = HashSet::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        if i % 4 == 0 {
            assert!(matches!(r, Err(StoreError::Backend(_))), "{i}: {r:?}");
        } else {
            let at = r.unwrap();
            assert!(indices.insert((at.list_id, at.idx)), "index given twice");
            let rec = store
                .token_record(&format!("t-{i}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((rec.status.list_id, rec.status.idx), (at.list_id, at.idx));
        }
    }
    assert_eq!(indices.len(), 45);
    // 1 + 45 statuses used: the refused ones gave theirs back.
    assert_eq!(store.stats().await.unwrap().statuses_used, 46);
}

/// I-188: a `jti` repeated by concurrent callers (so, often, within one
/// write group) is recorded once: exactly one caller gets an index, the
/// others fail alone and give theirs back; the distinct tokens of the same
/// groups are recorded with distinct indices.
pub async fn i188_jti_repeated_within_a_group_is_recorded_once(store: Arc<dyn Store>) {
    let reg = store
        .register_agent(registration_keyed("twin", "twin"))
        .await
        .unwrap()
        .registration_id;
    let mut tasks = Vec::new();
    for i in 0..48usize {
        let s = store.clone();
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            // The first caller (most likely a group of its own) is not a
            // twin, so the twins tend to meet in the next group.
            let jti = if i % 2 == 1 {
                "twin".to_owned()
            } else {
                format!("solo-{i}")
            };
            let r = s
                .record_token(token(&jti, "twin", &reg, 1_800_000_000), 64, i as u64 * 7)
                .await;
            (jti, r)
        }));
    }
    let mut twin_ok = Vec::new();
    let mut indices = HashSet::new();
    for t in tasks {
        let (jti, r) = t.await.unwrap();
        match (jti.as_str(), r) {
            ("twin", Ok(at)) => twin_ok.push(at),
            ("twin", Err(StoreError::Backend(_))) => {}
            (jti, r) => {
                let at = r.unwrap_or_else(|e| panic!("{jti}: {e}"));
                assert!(indices.insert((at.list_id, at.idx)), "index given twice");
            }
        }
    }
    assert_eq!(twin_ok.len(), 1, "the repeated jti recorded once");
    let rec = store.token_record("twin").await.unwrap().unwrap();
    assert_eq!(
        (rec.status.list_id, rec.status.idx),
        (twin_ok[0].list_id, twin_ok[0].idx)
    );
    assert!(indices.insert((rec.status.list_id, rec.status.idx)));
    // 24 distinct + 1 twin: the 23 refused twins gave their indices back.
    assert_eq!(store.stats().await.unwrap().statuses_used, 25);
}

/// I-188: tokens written together keep their chain links (a link repeated
/// in one chain stored once) and move their registration's activity to the
/// earliest and latest `iat` of the group, as one-by-one writes did.
pub async fn i188_group_keeps_links_and_activity(store: Arc<dyn Store>) {
    use ajwt_issuer::store::ChainLink;
    let reg = store
        .register_agent(registration_keyed("worker", "worker"))
        .await
        .unwrap()
        .registration_id;
    let boss = store
        .register_agent(registration_keyed("boss", "boss"))
        .await
        .unwrap()
        .registration_id;
    let mut tasks = Vec::new();
    for i in 0..30i64 {
        let s = store.clone();
        let (reg, boss) = (reg.clone(), boss.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = token(&format!("w-{i}"), "worker", &reg, 1_800_000_000);
            // iat 1_700_000_000 + ((37 i + 15) mod 30): a permutation of
            // +0..=+29 where the first caller (most likely a group of its
            // own) is +15, the earliest (+0) i = 15 and the latest (+29)
            // i = 2, so both extremes are decided inside later groups.
            t.iat = 1_700_000_000 + (i * 37 + 15) % 30;
            let link = ChainLink {
                agent_id: "boss".into(),
                registration_id: Some(boss.clone()),
            };
            t.chain = vec![link.clone(), link];
            s.record_token(t, 16, i as u64).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let activity = store.registration_activity("worker").await.unwrap();
    let a = activity
        .iter()
        .find(|a| a.registration_id == reg)
        .expect("activity of the worker's registration");
    assert_eq!(a.first_token_at_ms, Some(1_700_000_000_000));
    assert_eq!(a.last_token_at_ms, Some(1_700_000_029_000));
    // Every token's chain contains the boss: revoking it reaches all 30.
    assert_eq!(
        store
            .revoke_agent_tokens("boss", 1_700_000_100_000)
            .await
            .unwrap(),
        30
    );
    let rec = store.token_record("w-7").await.unwrap().unwrap();
    assert!(rec.revoked);
}

/// I-189, PostgreSQL only (a SQLite store reserves indices in memory as the
/// only writer of its file, I-160): two replicas taking turns, each token
/// its own group through the reservation path, so the bitmap a replica
/// cached from its own last group is stale whenever the other one
/// allocated in between. Every index distinct, every status counted once,
/// across list boundaries (lists of 16, 40 tokens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_i189_alternating_replicas_allocate_distinct_indices() {
    let Some((a, b, _guard)) = crate::backends::postgres_pair("i189_alternating_replicas").await
    else {
        return;
    };
    let mut seen = HashSet::new();
    for i in 0..40usize {
        let s = if i % 3 == 0 { &b } else { &a };
        let jti = format!("alt-{i}");
        let r = s
            .reserve_token(
                token(&jti, "alt", "reg_alt_1", 1_800_000_000),
                16,
                i as u64 * 13,
            )
            .await
            .unwrap_or_else(|e| panic!("{jti}: {e}"));
        let at = r.index();
        s.finish_token(r, None).await.unwrap();
        assert!(
            seen.insert((at.list_id, at.idx)),
            "{jti}: index given twice"
        );
    }
    let stats = a.stats().await.unwrap();
    assert_eq!(stats.statuses_used, 40);
    assert_eq!(stats.status_lists, 3);
    a.close().await;
    b.close().await;
}
