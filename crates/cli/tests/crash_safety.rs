//! Crash safety of `ajwt serve` (issue 12 "Faults"; §9.1.4 "regularly backup
//! registry with integrity verification"; spec I-31 `synchronous=FULL`): a
//! real process is killed with SIGKILL in the middle of a stream of agent
//! registrations, re-registrations and key rotations, four times on the same
//! data directory. After each kill, every write the server acknowledged is
//! in the store with its version, the versions of each agent are 1..n
//! without gaps, SQLite's `PRAGMA integrity_check` answers `ok`, and after
//! the restart the last acknowledged signing key is in the JWK Set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_test_kit::ServeProcess;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What the server acknowledged (a 200 with its body).
#[derive(Debug)]
enum Acked {
    Registration {
        agent_id: String,
        registration_id: String,
        version: u32,
    },
    Rotation {
        kid: String,
    },
}

fn spec(agent_id: &str, edition: u32) -> Value {
    let mut spec =
        ajwt_test_kit::repo_json("examples/agents/vulnerability-patcher-v1.json").unwrap();
    spec["agent_id"] = json!(agent_id);
    spec["prompt"] = json!(format!("You are {agent_id}, edition {edition}."));
    spec["public_key"] = Value::Object(
        ajwt_jose::DpopKey::generate(ajwt_jose::Alg::Es256)
            .unwrap()
            .public_jwk(),
    );
    spec
}

/// Writes until the server stops answering; every acknowledgement is sent
/// on `acked` as soon as it arrives.
async fn stream(
    base: String,
    admin: ajwt_issuer::service::ClientCredentials,
    round: u32,
    acked: mpsc::UnboundedSender<Acked>,
) {
    let http = reqwest::Client::new();
    let endpoint = format!("{base}/intent/token");
    let Ok(mut token) = ajwt_test_kit::client_token(&endpoint, &admin).await else {
        return;
    };
    let mut editions: Vec<(String, u32)> = Vec::new();
    for i in 0.. {
        let (path, body) = if i % 7 == 6 {
            ("intent/admin/rotate-keys".to_owned(), json!({}))
        } else if i % 3 == 2 && !editions.is_empty() {
            let k = i as usize % editions.len();
            editions[k].1 += 1;
            let (id, edition) = editions[k].clone();
            ("intent/register/agent".to_owned(), spec(&id, edition))
        } else {
            let id = format!("crash-r{round}-{i}");
            editions.push((id.clone(), 1));
            ("intent/register/agent".to_owned(), spec(&id, 1))
        };
        let sent = http
            .post(format!("{base}/{path}"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let Ok(r) = sent else { return };
        let status = r.status().as_u16();
        let Ok(text) = r.text().await else { return };
        assert_eq!(status, 200, "{path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let ack = match v.get("kid") {
            Some(kid) => {
                // The ring keeps only a few previous keys (I-70): a token of
                // the new key outlives the coming rotations.
                let Ok(fresh) = ajwt_test_kit::client_token(&endpoint, &admin).await else {
                    return;
                };
                token = fresh;
                Acked::Rotation {
                    kid: kid.as_str().unwrap().to_owned(),
                }
            }
            None => Acked::Registration {
                agent_id: v["agent_id"].as_str().unwrap().to_owned(),
                registration_id: v["registration_id"].as_str().unwrap().to_owned(),
                version: u32::try_from(v["version"].as_u64().unwrap()).unwrap(),
            },
        };
        if acked.send(ack).is_err() {
            return;
        }
    }
}

async fn integrity_check(db: &Path) -> String {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let answer: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_1_4_sigkill_mid_stream_loses_no_acknowledged_write() {
    let ajwt = Path::new(env!("CARGO_BIN_EXE_ajwt"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("ajwt.sqlite3");
    let mut registrations: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    let mut last_kid: Option<String> = None;
    let mut acked_writes = 0usize;
    // Kill points spread over the stream (ms after it starts).
    for (round, kill_after_ms) in [(0u32, 700u64), (1, 1100), (2, 450), (3, 1500)] {
        let mut serve = ServeProcess::spawn_with(
            ajwt,
            &data,
            &["--rate-limit-registrations", "0"],
            Stdio::null(),
        )
        .await
        .unwrap();
        // The last key acknowledged before the previous kill signs or is kept.
        if let Some(kid) = &last_kid {
            let text = reqwest::get(format!("{}/.well-known/jwks.json", serve.base_url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let jwks: Value = serde_json::from_str(&text).unwrap();
            let kids: Vec<&str> = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|k| k["kid"].as_str())
                .collect();
            assert!(
                kids.contains(&kid.as_str()),
                "round {round}: {kid} not in {kids:?}"
            );
        }
        let admin = serve.admin().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(stream(serve.base_url.clone(), admin, round, tx));
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        serve.child.0.kill().unwrap(); // SIGKILL
        serve.child.0.wait().unwrap();
        writer.await.unwrap();
        let mut this_round = 0;
        while let Ok(ack) = rx.try_recv() {
            this_round += 1;
            match ack {
                Acked::Registration {
                    agent_id,
                    registration_id,
                    version,
                } => registrations
                    .entry(agent_id)
                    .or_default()
                    .push((version, registration_id)),
                Acked::Rotation { kid } => last_kid = Some(kid),
            }
        }
        assert!(
            this_round > 0,
            "round {round}: nothing acknowledged before the kill"
        );
        acked_writes += this_round;

        // Offline: the store as the killed process left it.
        assert_eq!(integrity_check(&db).await, "ok", "round {round}");
        let store = SqliteStore::open(&db).await.unwrap();
        for (agent_id, acked) in &registrations {
            let stored = store.registrations(agent_id).await.unwrap();
            let versions: Vec<u32> = stored.iter().map(|r| r.version).collect();
            let expected: Vec<u32> = (1..=u32::try_from(stored.len()).unwrap()).collect();
            assert_eq!(versions, expected, "{agent_id}: versions without gaps");
            for (version, registration_id) in acked {
                assert!(
                    stored
                        .iter()
                        .any(|r| r.version == *version && &r.registration_id == registration_id),
                    "round {round}: acknowledged {agent_id} v{version} {registration_id} lost: {stored:?}"
                );
            }
        }
        store.close().await;
    }
    eprintln!(
        "measured: 4 SIGKILLs, {acked_writes} acknowledged writes, {} agents, none lost",
        registrations.len()
    );
}
