//! `ajwt audit verify` and `ajwt audit tail` (§9.1.4 "Log all registry
//! access for audit trails", "backup registry with integrity verification";
//! I-100..I-104) against the data directory of a real `ajwt serve` process:
//! the trail it wrote verifies; copies of it tampered with directly in the
//! SQLite file (a record modified, deleted, inserted, reordered) are refused
//! with exit status 1 and the record named; `tail` reads it as text and JSON
//! Lines, and `--follow` prints records as the server appends them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ajwt_issuer::audit::{AuditEvent, AuditRecord};
use ajwt_test_kit::{post_json, register_example_agent, ServeProcess};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;

const AJWT: &str = env!("CARGO_BIN_EXE_ajwt");

fn ajwt(args: &[&str]) -> Output {
    Command::new(AJWT).args(args).output().unwrap()
}

fn verify(dir: &Path) -> (i32, String, String) {
    let out = ajwt(&["audit", "verify", "--data-dir", dir.to_str().unwrap()]);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Copies a data directory (database, WAL and keys) to a new temp dir.
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

/// Runs `sql` on the data directory's database with the append-only
/// triggers dropped first (an attacker with write access to the file).
async fn tamper(dir: &Path, sql: &[&str]) {
    let db: PathBuf = dir.join("ajwt.sqlite3");
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    for s in [
        "DROP TRIGGER IF EXISTS audit_log_no_update",
        "DROP TRIGGER IF EXISTS audit_log_no_delete",
    ]
    .iter()
    .chain(sql)
    {
        sqlx::query(s).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

async fn record(dir: &Path, seq: i64) -> (String, String) {
    let pool =
        SqlitePool::connect_with(SqliteConnectOptions::new().filename(dir.join("ajwt.sqlite3")))
            .await
            .unwrap();
    let r: (String, String) =
        sqlx::query_as("SELECT prev_hash, record_hash FROM audit_log WHERE seq = ?1")
            .bind(seq)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_1_4_audit_verify_names_tampered_records_and_tail_reads_the_trail() {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::spawn(Path::new(AJWT), data.path(), &[])
        .await
        .unwrap();
    let admin = server.admin_token().await.unwrap();
    let token_url = format!("{}/intent/token", server.base_url);
    let agent = register_example_agent(&server.base_url, &admin, "audit-cli-agent")
        .await
        .unwrap();
    let request = |checksum: &str| {
        json!({
            "grant_type": "agent_checksum",
            "agent_id": agent.id,
            "computed_checksum": checksum,
            "requested_scopes": ["repo:read"],
            "audience": "https://api.example.com",
        })
    };
    let (status, text, _) = post_json(&token_url, &admin, &request(&agent.checksum))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (_, _, body) = post_json(&token_url, &admin, &request(&wrong))
        .await
        .unwrap();
    assert_eq!(body.unwrap()["error"], "agent_checksum_mismatch");
    let (status, _, _) = post_json(&token_url, &admin, &request(&agent.checksum))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // 1 bootstrap client, 2 agent, 3 token, 4 mismatch, 5 token.

    // Verified while the server runs (WAL readers do not block it).
    let (code, out, err) = verify(data.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("audit trail intact: 5 records; head record 5"),
        "{out}"
    );

    // tail: text and JSON Lines, bounded by -n.
    let out = ajwt(&[
        "audit",
        "tail",
        "-n",
        "2",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("4 ") && lines[0].contains(" token_refused "),
        "{text}"
    );
    assert!(lines[0].contains("error=agent_checksum_mismatch"), "{text}");
    assert!(
        lines[1].starts_with("5 ") && lines[1].contains(" token_issued "),
        "{text}"
    );
    let out = ajwt(&[
        "audit",
        "tail",
        "--json",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let records: Vec<AuditRecord> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(records[1].event, "agent_registered");
    assert_eq!(records[1].agent_id.as_deref(), Some("audit-cli-agent"));
    assert_eq!(records[3].detail["presented_checksum"], json!(wrong));

    // tail --follow prints a record the server appends later.
    let mut follow = Command::new(AJWT)
        .args(["audit", "tail", "-f", "-n", "0", "--json", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, _, _) = post_json(&token_url, &admin, &request(&wrong))
        .await
        .unwrap();
    assert_eq!(status, 401);
    let stdout = follow.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(10), line)
        .await
        .expect("follow printed the new record")
        .unwrap();
    follow.kill().unwrap();
    follow.wait().unwrap();
    let followed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(followed["seq"], 6, "{line}");
    assert_eq!(followed["error_code"], "agent_checksum_mismatch");

    // The issuer's JWK Set, kept by the operator.
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", server.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keep = tempfile::tempdir().unwrap();
    let jwks_file = keep.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks).unwrap();

    // A graceful stop signs the head (I-104).
    server.terminate(Duration::from_secs(10)).unwrap();
    let (code, out, _) = verify(data.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("6 records; head record 6,")
            && out.contains("checkpoint at record 6 matches (signature not checked"),
        "{out}"
    );
    let dir = data.path().to_str().unwrap();
    let jwks_arg = jwks_file.to_str().unwrap();
    let out = ajwt(&["audit", "verify", "--data-dir", dir, "--jwks", jwks_arg]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("checkpoint at record 6 matches (signature verified)"),
        "{text}"
    );
    // The operator keeps the checkpoint outside the data directory.
    let stored =
        ajwt_issuer::store::sqlite::SqliteStore::open_existing(&data.path().join("ajwt.sqlite3"))
            .await
            .unwrap();
    let checkpoint = {
        use ajwt_issuer::store::Store;
        let c = stored.latest_audit_checkpoint().await.unwrap().unwrap();
        stored.close().await;
        c
    };
    // Closing the last connection checkpoints the WAL into the database file
    // and deletes it, on sqlx's worker thread after `close` returns: wait for
    // that, so the copies below never catch the file half-way.
    let wal = data.path().join("ajwt.sqlite3-wal");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL was not checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let checkpoint_file = keep.path().join("checkpoint.jws");
    std::fs::write(&checkpoint_file, &checkpoint.jws).unwrap();

    // Truncated: the last record removed.
    let copy = copy_dir(data.path());
    tamper(copy.path(), &["DELETE FROM audit_log WHERE seq = 6"]).await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "record 6: deleted (the log ends at record 5, before the signed head 6: truncated)"
    );
    // ... and the stored checkpoints too: the one kept elsewhere tells.
    tamper(copy.path(), &["DELETE FROM audit_checkpoints"]).await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 0, "{out}");
    let out = ajwt(&[
        "audit",
        "verify",
        "--data-dir",
        copy.path().to_str().unwrap(),
        "--checkpoint",
        checkpoint_file.to_str().unwrap(),
        "--jwks",
        jwks_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("record 6: deleted"),);
    // A checkpoint not signed by the issuer is refused with --jwks.
    let forged_jws = {
        let parts: Vec<&str> = checkpoint.jws.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1], "A".repeat(86))
    };
    std::fs::write(&checkpoint_file, forged_jws).unwrap();
    let out = ajwt(&[
        "audit",
        "verify",
        "--data-dir",
        dir,
        "--checkpoint",
        checkpoint_file.to_str().unwrap(),
        "--jwks",
        jwks_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: checkpoint signature invalid"),
        "{err}"
    );

    // Modified in place.
    let copy = copy_dir(data.path());
    tamper(
        copy.path(),
        &["UPDATE audit_log SET error_code = 'invalid_request' WHERE seq = 4"],
    )
    .await;
    let (code, out, err) = verify(copy.path());
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.trim(),
        "record 4: modified (its fields do not match its record_hash)"
    );
    assert!(err.starts_with("error: audit trail tampered"), "{err}");

    // Modified with the hash recomputed (the attacker knows the algorithm).
    let copy = copy_dir(data.path());
    let mut r4 = full_record(copy.path(), 4).await;
    r4.agent_id = Some("innocent".into());
    r4.record_hash = r4.compute_hash().unwrap();
    tamper(
        copy.path(),
        &[&format!(
            "UPDATE audit_log SET agent_id = 'innocent', record_hash = '{}' WHERE seq = 4",
            r4.record_hash
        )],
    )
    .await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.trim()
            .starts_with("record 4: rewritten (record 5 does not link to it"),
        "{out}"
    );

    // Deleted.
    let copy = copy_dir(data.path());
    tamper(copy.path(), &["DELETE FROM audit_log WHERE seq = 3"]).await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "record 3: deleted (missing from the chain)");

    // Deleted, and the later records renumbered to hide the gap.
    let copy = copy_dir(data.path());
    tamper(
        copy.path(),
        &[
            "DELETE FROM audit_log WHERE seq = 2",
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 2",
            "UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000",
        ],
    )
    .await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "record 2: deleted (missing from the chain)");

    // Inserted: a forged record with a correct hash and link at 3, the
    // later records moved up by one.
    let copy = copy_dir(data.path());
    let (_, hash2) = record(copy.path(), 2).await;
    let f = forged(3, &hash2);
    tamper(
        copy.path(),
        &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000",
            &insert_sql(&f),
        ],
    )
    .await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "record 3: inserted (not part of the chain: no record links to it)"
    );

    // Inserted at the end with a made-up hash.
    let copy = copy_dir(data.path());
    let mut f = forged(7, &"00".repeat(32));
    f.record_hash = "11".repeat(32);
    tamper(copy.path(), &[&insert_sql(&f)]).await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1);
    assert!(out.trim().starts_with("record 7: inserted"), "{out}");

    // Reordered: records 3 and 4 swapped.
    let copy = copy_dir(data.path());
    tamper(
        copy.path(),
        &[
            "UPDATE audit_log SET seq = 1000 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
        ],
    )
    .await;
    let (code, out, _) = verify(copy.path());
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "record 3: reordered (found at position 4, after records appended later)"
    );

    // Not an issuer data directory: exit 2.
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = verify(empty.path());
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.starts_with("error: cannot open the audit trail"),
        "{err}"
    );
}

/// Record `seq` as stored.
async fn full_record(dir: &Path, seq: u64) -> AuditRecord {
    use ajwt_issuer::store::Store;
    let store = ajwt_issuer::store::sqlite::SqliteStore::open_existing(&dir.join("ajwt.sqlite3"))
        .await
        .unwrap();
    let r = store.audit_records(seq - 1, 1).await.unwrap().remove(0);
    store.close().await;
    r
}

/// A record an attacker computes with the published algorithm.
fn forged(seq: u64, prev_hash: &str) -> AuditRecord {
    AuditRecord::chain(
        AuditEvent::AgentRevoked {
            agent_id: "innocent".into(),
            registrations: 1,
        }
        .into_entry(None, 1_000),
        seq,
        prev_hash.to_owned(),
    )
    .unwrap()
}

fn insert_sql(r: &AuditRecord) -> String {
    format!(
        "INSERT INTO audit_log (seq, time_ms, event, client_id, agent_id, registration_id, jti, \
         error_code, intent_hash, detail, prev_hash, record_hash) VALUES ({}, {}, '{}', NULL, \
         '{}', NULL, NULL, NULL, NULL, '{}', '{}', '{}')",
        r.seq,
        r.time_ms,
        r.event,
        r.agent_id.as_deref().unwrap_or(""),
        Value::Object(r.detail.clone()),
        r.prev_hash,
        r.record_hash
    )
}
