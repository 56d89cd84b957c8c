//! Encryption at rest (§9.1.4 "encrypted at rest", I-112, I-125..I-128)
//! against a real `ajwt serve` process: the raw database files hold no
//! prompt, tool description or private key; `ajwt kek rotate` re-seals
//! under a new key-encryption key while the server keeps serving the
//! specification; legacy plaintext is sealed at start; a wrong or exposed
//! KEK file stops the start with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_issuer::kek::{sealed_kek_id, KekRing};
use ajwt_test_kit::{register_example_agent, repo_json, ChildGuard, ServeProcess};
use serde_json::Value;

const AGENT: &str = "vulnerability-patcher-v1";

fn ajwt() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ajwt"))
}

/// The example agent's prompt and tool descriptions (the secrets of §9.1.4).
fn secrets() -> Vec<String> {
    let spec = repo_json("examples/agents/vulnerability-patcher-v1.json").unwrap();
    let mut out = vec![spec["prompt"].as_str().unwrap().to_owned()];
    for tool in spec["tools"].as_array().unwrap() {
        out.push(tool["description"].as_str().unwrap().to_owned());
    }
    out
}

/// The bytes of the database file and its `-wal` file.
fn raw_database(data: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(data.join("ajwt.sqlite3")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("ajwt.sqlite3-wal")) {
        bytes.extend_from_slice(&wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_no_plaintext(data: &Path) {
    let raw = raw_database(data);
    assert!(raw.len() > 4096, "database files are empty?");
    for s in secrets() {
        assert!(!contains(&raw, &s), "plaintext in the database: {s}");
    }
    assert!(!contains(&raw, "PRIVATE KEY"));
}

/// `GET /intent/agents/{id}` as the admin: the registered specification.
async fn admin_specification(serve: &ServeProcess) -> Value {
    let token = serve.admin_token().await.unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/intent/agents/{AGENT}", serve.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let spec = v["registrations"][0]["specification"].clone();
    assert!(spec.is_object(), "{v}");
    spec
}

/// The specification served is the example agent's (canonical form:
/// `prompt_template`, tools sorted by name).
fn assert_is_example(spec: &Value) {
    let expected = secrets();
    assert_eq!(spec["prompt_template"].as_str(), Some(expected[0].as_str()));
    let mut served: Vec<String> = spec["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["description"].as_str().unwrap().to_owned())
        .collect();
    let mut want = expected[1..].to_vec();
    served.sort();
    want.sort();
    assert_eq!(served, want);
}

/// `spec_json` of every registration, read with SQL.
async fn stored_specs(data: &Path) -> Vec<String> {
    let url = format!("sqlite://{}?mode=ro", data.join("ajwt.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT spec_json FROM agent_registrations")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

fn kek(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ajwt())
        .arg("kek")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `ajwt serve` on `data` that must fail to start: its stderr.
fn failed_start(data: &Path, extra: &[&str]) -> String {
    let mut child = ChildGuard::spawn(
        Command::new(ajwt())
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let status = child.wait_timeout(Duration::from_secs(30)).unwrap();
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_1_4_raw_database_holds_no_prompt_tools_or_private_key_and_rotation_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = ServeProcess::spawn_with(ajwt(), &data, &[], Stdio::null())
        .await
        .unwrap();
    // I-125: created on first start, owner-only.
    let kek_file = data.join("kek.key");
    let mode = std::fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = KekRing::load(&kek_file).unwrap().current().id().to_owned();

    let admin = serve.admin_token().await.unwrap();
    register_example_agent(&serve.base_url, &admin, AGENT)
        .await
        .unwrap();
    let spec = admin_specification(&serve).await;
    assert_is_example(&spec);

    assert_no_plaintext(&data);
    let specs = stored_specs(&data).await;
    assert_eq!(specs.len(), 1);
    assert_eq!(sealed_kek_id(&specs[0]), Some(first.as_str()));

    // I-126: rotation beside the running server.
    let (code, out, err) = kek(&[
        "rotate",
        "--data-dir",
        data.to_str().unwrap(),
        "--wait",
        "0",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let second = r["kek_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(r["previous_kek_id"], first.as_str());
    // The specification and the server's signing key (in the store, I-110).
    assert_eq!(r["rewrapped"], 2);
    assert_eq!(r["dropped"], serde_json::json!([first]));
    assert_eq!(
        KekRing::load(&kek_file).unwrap().ids(),
        vec![second.clone()]
    );
    let specs = stored_specs(&data).await;
    assert_eq!(sealed_kek_id(&specs[0]), Some(second.as_str()));

    // The running server re-reads the file and still serves it.
    let spec = admin_specification(&serve).await;
    assert_is_example(&spec);
    assert_no_plaintext(&data);

    // And after a restart with the one-line file.
    serve.terminate(Duration::from_secs(30)).unwrap();
    let serve = ServeProcess::spawn_with(ajwt(), &data, &[], Stdio::null())
        .await
        .unwrap();
    let spec = admin_specification(&serve).await;
    assert_is_example(&spec);
    assert_no_plaintext(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i128_legacy_plaintext_is_sealed_at_start_and_i125_bad_kek_files_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = ServeProcess::spawn_with(ajwt(), &data, &[], Stdio::null())
        .await
        .unwrap();
    let admin = serve.admin_token().await.unwrap();
    register_example_agent(&serve.base_url, &admin, AGENT)
        .await
        .unwrap();
    let plaintext = admin_specification(&serve).await.to_string();
    serve.terminate(Duration::from_secs(30)).unwrap();

    // A database written before encryption at rest: plaintext specification.
    {
        let url = format!("sqlite://{}", data.join("ajwt.sqlite3").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE agent_registrations SET spec_json = ?1")
            .bind(&plaintext)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    assert!(contains(&raw_database(&data), &secrets()[0]));

    // I-125: another deployment's KEK is refused, naming the KEK it lacks.
    let other = dir.path().join("other.key");
    let (code, _, err) = kek(&["generate", "--out", other.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let kek_file = data.join("kek.key");
    let ours = KekRing::load(&kek_file).unwrap().current().id().to_owned();

    // I-125: a KEK file readable by others stops the start.
    std::fs::set_permissions(&kek_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = failed_start(&data, &[]);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(err.contains(kek_file.to_str().unwrap()), "{err}");
    std::fs::set_permissions(&kek_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // I-125: a file of the wrong size stops the start, key bytes unprinted.
    let short = dir.path().join("short.key");
    std::fs::write(&short, "c2hvcnQ\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = failed_start(&data, &["--kek-file", short.to_str().unwrap()]);
    assert!(err.contains("expected 43"), "{err}");
    assert!(!err.contains("c2hvcnQ"), "{err}");

    // I-128: the next start seals the plaintext value.
    let serve = ServeProcess::spawn_with(ajwt(), &data, &[], Stdio::null())
        .await
        .unwrap();
    let specs = stored_specs(&data).await;
    assert_eq!(sealed_kek_id(&specs[0]), Some(ours.as_str()));
    let spec = admin_specification(&serve).await;
    assert_is_example(&spec);
    drop(serve);

    // I-126: a replica given another KEK file refuses to start.
    let err = failed_start(&data, &["--kek-file", other.to_str().unwrap()]);
    assert!(err.contains(&format!("key-encryption key {ours}")), "{err}");
    assert!(err.contains("not in"), "{err}");
}
