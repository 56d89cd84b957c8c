//! One durable write per issued token (issue 15, I-160) under SIGKILL: a
//! real `ajwt serve` (SQLite, 64-status lists so that lists roll over) is
//! killed in the middle of a load of concurrent `agent_checksum` grants,
//! three times on one data directory. After each kill, read with plain SQL:
//! every token the server handed out has its record at the index of its
//! `status` claim and its one `token_issued` audit entry; every list's
//! stored bits are exactly its token rows (no index used twice, across
//! restarts too); `PRAGMA integrity_check` is `ok`; and `ajwt audit verify`
//! finds the chain intact (§9.1.4, §9.3.2, I-83, I-101).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ajwt_test_kit::{jwt_payload, register_example_agent, ServeProcess};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A handed-out token: `jti`, status list id, index.
type Acked = (String, i64, u64);

async fn grants(base: String, admin: String, body: Value, acked: mpsc::UnboundedSender<Acked>) {
    let http = reqwest::Client::new();
    loop {
        let sent = http
            .post(format!("{base}/intent/token"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await;
        let Ok(r) = sent else { return };
        let status = r.status().as_u16();
        let Ok(text) = r.text().await else { return };
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let claims = jwt_payload(v["access_token"].as_str().unwrap()).unwrap();
        let reference = &claims["status"]["status_list"];
        let uri = reference["uri"].as_str().unwrap();
        let list_id: i64 = uri.rsplit('/').next().unwrap().parse().unwrap();
        let ack = (
            claims["jti"].as_str().unwrap().to_owned(),
            list_id,
            reference["idx"].as_u64().unwrap(),
        );
        if acked.send(ack).is_err() {
            return;
        }
    }
}

struct Disk {
    integrity: String,
    /// list -> (size, set bits, used)
    lists: BTreeMap<i64, (i64, HashSet<u64>, i64)>,
    /// jti -> (list, idx)
    tokens: HashMap<String, (i64, u64)>,
    /// jtis of `token_issued` entries, with multiplicity.
    issued: HashMap<String, usize>,
}

async fn read_disk(db: &Path) -> Disk {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut lists = BTreeMap::new();
    let rows = sqlx::query_as::<_, (i64, i64, Vec<u8>, i64)>(
        "SELECT list_id, size, allocated, used FROM status_lists",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (list_id, size, bitmap, used) in rows {
        let bits = (0..size as u64)
            .filter(|i| bitmap[(*i / 8) as usize] >> (i % 8) & 1 == 1)
            .collect();
        lists.insert(list_id, (size, bits, used));
    }
    let tokens =
        sqlx::query_as::<_, (String, i64, i64)>("SELECT jti, list_id, idx FROM intent_tokens")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(j, l, i)| (j, (l, i as u64)))
            .collect();
    let mut issued = HashMap::new();
    for jti in sqlx::query_scalar::<_, String>(
        "SELECT jti FROM audit_log WHERE event = 'token_issued' AND jti IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    {
        *issued.entry(jti).or_insert(0) += 1;
    }
    pool.close().await;
    Disk {
        integrity,
        lists,
        tokens,
        issued,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i160_sigkill_mid_load_keeps_every_handed_out_token_and_its_entry() {
    let ajwt = Path::new(env!("CARGO_BIN_EXE_ajwt"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("ajwt.sqlite3");
    let flags = [
        "--status-list-size",
        "64",
        "--rate-limit-client",
        "0",
        "--rate-limit-agent",
        "0",
    ];
    let mut all_acked: Vec<Acked> = Vec::new();
    let mut body = None;
    for (round, kill_after) in [(0u32, 150usize), (1, 90), (2, 230)] {
        let serve = ServeProcess::spawn_with(ajwt, &data, &flags, Stdio::null())
            .await
            .unwrap();
        let admin = serve.admin_token().await.unwrap();
        if body.is_none() {
            let agent = register_example_agent(&serve.base_url, &admin, "crash-grants")
                .await
                .unwrap();
            body = Some(json!({
                "grant_type": "agent_checksum",
                "agent_id": agent.id,
                "computed_checksum": agent.checksum,
                "requested_scopes": ["repo:read"],
                "audience": "https://api.example.com",
            }));
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut load = Vec::new();
        for _ in 0..16 {
            load.push(tokio::spawn(grants(
                serve.base_url.clone(),
                admin.clone(),
                body.clone().unwrap(),
                tx.clone(),
            )));
        }
        drop(tx);
        // Kill once `kill_after` tokens were handed out (mid-load: 16
        // requests are in flight), whatever the machine's speed.
        let mut this_round = 0;
        while this_round < kill_after {
            let ack = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .expect("grants stalled")
                .expect("load ended");
            all_acked.push(ack);
            this_round += 1;
        }
        let mut serve = serve;
        serve.child.0.kill().unwrap(); // SIGKILL
        serve.child.0.wait().unwrap();
        for l in load {
            l.await.unwrap();
        }
        while let Ok(ack) = rx.try_recv() {
            all_acked.push(ack);
            this_round += 1;
        }
        assert!(this_round > 0, "round {round}: nothing handed out");

        let disk = read_disk(&db).await;
        assert_eq!(disk.integrity, "ok", "round {round}");
        for (jti, list, idx) in &all_acked {
            assert_eq!(
                disk.tokens.get(jti),
                Some(&(*list, *idx)),
                "round {round}: handed-out token {jti} lost or moved"
            );
            assert_eq!(
                disk.issued.get(jti),
                Some(&1),
                "round {round}: {jti} without its one token_issued entry"
            );
        }
        // Every stored record has its entry (one write), and the bits of
        // each list are exactly its rows.
        for jti in disk.tokens.keys() {
            assert_eq!(disk.issued.get(jti), Some(&1), "record {jti} without entry");
        }
        let mut rows: BTreeMap<i64, HashSet<u64>> = BTreeMap::new();
        for (jti, (list, idx)) in &disk.tokens {
            assert!(
                rows.entry(*list).or_default().insert(*idx),
                "{jti}: {list}/{idx} used twice"
            );
        }
        for (list, (size, bits, used)) in &disk.lists {
            let r = rows.remove(list).unwrap_or_default();
            assert_eq!(bits, &r, "round {round}: list {list} bits vs rows");
            assert_eq!(*used as usize, r.len());
            assert_eq!(*size, 64);
        }
        assert!(rows.is_empty(), "rows in unknown lists");
        let out = std::process::Command::new(ajwt)
            .args(["audit", "verify", "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let positions: HashSet<(i64, u64)> = all_acked.iter().map(|a| (a.1, a.2)).collect();
    assert_eq!(
        positions.len(),
        all_acked.len(),
        "an index handed out twice"
    );
    eprintln!(
        "measured: 3 SIGKILLs, {} tokens handed out, {} lists, none lost",
        all_acked.len(),
        positions.iter().map(|p| p.0).collect::<HashSet<_>>().len()
    );
}
