//! `ajwt audit verify|tail --database-url` (issue 14): the audit trail of a
//! PostgreSQL deployment, written by two stores (replicas) at once, is read
//! and verified from the database; a record edited in the database is
//! named; an unsupported URL is refused without echoing its password.
//! Skipped (with a message) without `AJWT_TEST_DATABASE_URL`, never in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Output};
use std::sync::Arc;

use ajwt_issuer::audit::AuditEntry;
use ajwt_issuer::config::DatabaseUrl;
use ajwt_issuer::store::postgres::{PgPoolBounds, PgStore};
use ajwt_issuer::store::Store;
use ajwt_test_kit::fresh_postgres_database;
use sqlx::Connection;

const AJWT: &str = env!("CARGO_BIN_EXE_ajwt");

fn ajwt(args: &[&str]) -> Output {
    Command::new(AJWT)
        .args(args)
        .env_remove("AJWT_DATABASE_URL")
        .output()
        .unwrap()
}

fn entry(n: i64) -> AuditEntry {
    AuditEntry {
        time_ms: 1_700_000_000_000 + n,
        event: "agent_registered".into(),
        client_id: Some("admin".into()),
        agent_id: Some(format!("agent-{n}")),
        registration_id: None,
        jti: None,
        error_code: None,
        intent_hash: None,
        detail: serde_json::Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_1_4_audit_verify_and_tail_read_a_postgres_trail() {
    let Some(db) = fresh_postgres_database("audit_cli_postgres").await.unwrap() else {
        return;
    };
    let url = DatabaseUrl::new(db.url());
    let bounds = PgPoolBounds {
        max_connections: 4,
        ..PgPoolBounds::default()
    };
    let a: Arc<dyn Store> = Arc::new(PgStore::connect_with(&url, bounds).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::connect_with(&url, bounds).await.unwrap());
    let mut tasks = Vec::new();
    for n in 0..12 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.append_audit(entry(n)).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    a.close().await;
    b.close().await;

    let out = ajwt(&["audit", "verify", "--database-url", db.url()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("audit trail intact: 12 records"),
        "{stdout}"
    );

    let out = ajwt(&[
        "audit",
        "tail",
        "-n",
        "2",
        "--json",
        "--database-url",
        db.url(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [11, 12]
    );

    // An attacker with database access edits record 5 (triggers disabled).
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "UPDATE audit_log SET agent_id = 'someone-else' WHERE seq = 5",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let out = ajwt(&["audit", "verify", "--database-url", db.url()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("record 5"), "{stdout}");
}

/// The append-only triggers refuse an UPDATE and a DELETE of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_1_4_postgres_audit_log_is_append_only() {
    let Some(db) = fresh_postgres_database("audit_append_only").await.unwrap() else {
        return;
    };
    let store = PgStore::connect(&DatabaseUrl::new(db.url())).await.unwrap();
    store.append_audit(entry(1)).await.unwrap();
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    for sql in [
        "UPDATE audit_log SET event = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let e = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    conn.close().await.unwrap();
}

/// I-117: a URL of another scheme is refused (exit 2), password not shown.
#[test]
fn i117_audit_refuses_other_url_schemes_without_echoing_the_password() {
    let out = ajwt(&[
        "audit",
        "verify",
        "--database-url",
        "mysql://root:hunter2@127.0.0.1/ajwt",
    ]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
