//! `ajwt keys rotate` and `ajwt keys list` (I-90) against a running `ajwt
//! serve` process: the key written by the CLI is published by the server
//! (its key maintenance re-reads the directory), signs only from its
//! `activates_at`, and the key it replaces is retired once its tokens have
//! expired; `keys list` shows each state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_test_kit::{jwt_payload, ServeProcess};
use base64::Engine as _;
use serde_json::Value;

/// Settings shared by the server and the CLI: 1 s JWKS max-age and publish
/// delay; tokens (and status list tokens, 2 × ttl) live 2–3 s and a
/// replaced key 1 s more.
const SETTINGS: [&str; 12] = [
    "--status-list-ttl",
    "1",
    "--jwks-max-age",
    "1",
    "--key-publish-delay",
    "1",
    "--token-lifetime",
    "2",
    "--client-token-lifetime",
    "3",
    "--key-retire-leeway",
    "1",
];

fn ajwt() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ajwt"))
}

fn keys(sub: &str, data: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(ajwt())
        .args(["keys", sub, "--data-dir"])
        .arg(data)
        .args(SETTINGS)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn list(data: &Path) -> Vec<Value> {
    let (code, out, err) = keys("list", data, &["--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn state_of(keys: &[Value], kid: &str) -> String {
    keys.iter().find(|k| k["kid"] == kid).map_or_else(
        || "absent".to_owned(),
        |k| k["state"].as_str().unwrap().to_owned(),
    )
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let text = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i90_keys_rotate_publishes_first_then_signs_and_keys_list_shows_states() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Without a data directory there is nothing to list.
    let (code, _, err) = keys("list", &data, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no signing keys"), "{err}");

    let serve = ServeProcess::spawn_with(ajwt(), &data, &SETTINGS, Stdio::null())
        .await
        .unwrap();
    let first = serve.admin_token().await.unwrap();
    let old = kid_of(&first);
    assert!(jwt_payload(&first).is_some());
    let before = list(&data);
    assert_eq!(before.len(), 1);
    assert_eq!(state_of(&before, &old), "current");

    let (code, out, err) = keys("rotate", &data, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let new = r["kid"].as_str().unwrap().to_owned();
    assert_eq!(r["previous_kid"], old.as_str());
    assert_eq!(r["state"], "next");
    assert_eq!(r["already_pending"], false);
    let activates_at = r["activates_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Publish delay (1 s) rounded up + the server's maintenance interval (5 s).
    assert!(
        activates_at >= now + 1 + 5 && activates_at <= now + 8,
        "{activates_at} vs {now}"
    );
    let listed = list(&data);
    assert_eq!(state_of(&listed, &old), "current");
    assert_eq!(state_of(&listed, &new), "next");
    // A second rotation while one is pending adds nothing.
    let (code, out, _) = keys("rotate", &data, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("already pending"), "{out}");
    assert!(out.contains("STATE"), "{out}");

    // The running server publishes the key written by the CLI...
    let base = serve.base_url.clone();
    wait_for("new key published", Duration::from_secs(8), async || {
        jwks_kids(&base).await.contains(&new)
    })
    .await;
    // ... before it signs with it.
    let published_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        published_at < activates_at,
        "published only at {published_at}"
    );
    assert_eq!(kid_of(&serve.admin_token().await.unwrap()), old);
    // From activates_at on, tokens carry the new kid; the old key stays.
    wait_for("new key signs", Duration::from_secs(10), async || {
        kid_of(&serve.admin_token().await.unwrap()) == new
    })
    .await;
    let listed = list(&data);
    assert_eq!(state_of(&listed, &new), "current");
    assert_eq!(state_of(&listed, &old), "retiring");
    assert!(jwks_kids(&base).await.contains(&old));
    // Retired once every token of the old key has expired (3 s + 1 s).
    wait_for("old key retired", Duration::from_secs(15), async || {
        !jwks_kids(&base).await.contains(&old)
    })
    .await;
    wait_for(
        "old key listed as retired",
        Duration::from_secs(8),
        async || state_of(&list(&data), &old) == "retired",
    )
    .await;
    let (code, table, _) = keys("list", &data, &[]);
    assert_eq!(code, 0);
    assert!(
        table.contains("retired") && table.contains("current"),
        "{table}"
    );
}

/// I-121, I-124: `ajwt keys list` on a data directory of an issuer from
/// before I-110 imports its key files into the database and deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i124_keys_list_imports_legacy_key_files_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("signing-keys")).unwrap();
    // The database exists (created by an earlier `ajwt serve`), keys are files.
    let store = ajwt_issuer::store::sqlite::SqliteStore::open(&data.join("ajwt.sqlite3"))
        .await
        .unwrap();
    ajwt_issuer::store::Store::close(&store).await;
    let key = ajwt_jose::SigningKey::generate(ajwt_jose::Alg::EdDsa).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let doc = serde_json::json!({"kid": key.thumbprint(), "alg": "EdDSA", "created_at": now - 60,
                                 "private_key_pem": key.to_pkcs8_pem().unwrap()});
    std::fs::write(
        data.join("signing-keys")
            .join(format!("{}.json", key.thumbprint())),
        doc.to_string(),
    )
    .unwrap();
    let listed = list(&data);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(state_of(&listed, &key.thumbprint()), "current");
    assert_eq!(listed[0]["alg"], "EdDSA");
    assert!(!data.join("signing-keys").exists(), "key files deleted");
    // Listed again from the store alone.
    assert_eq!(list(&data), listed);
}

/// `ajwt keys rotate|list --database-url postgres://…` work on the keys a
/// PostgreSQL deployment shares (I-110, I-124); skipped without
/// `AJWT_TEST_DATABASE_URL`, except under CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i124_keys_rotate_and_list_on_a_postgres_database() {
    use ajwt_issuer::config::DatabaseUrl;
    use ajwt_issuer::store::postgres::PgStore;
    use ajwt_issuer::store::Store;
    let Some(db) = ajwt_test_kit::fresh_postgres_database("keys_cli::postgres")
        .await
        .unwrap()
    else {
        return;
    };
    // A deployment's first key, as `ajwt serve --database-url` creates it.
    let store = PgStore::connect(&DatabaseUrl::new(db.url())).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ring = ajwt_issuer::key_store::load(
        &store,
        None,
        ajwt_issuer::keys::SigningAlgorithm::Es256,
        ajwt_issuer::keys::RotationPolicy::default(),
        now,
    )
    .await
    .unwrap();
    let first = ring.current_kid().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kek = dir.path().join("kek.key");
    let kek = kek.to_str().unwrap();
    let url = ["--database-url", db.url(), "--kek-file", kek];
    let (code, out, err) = keys("rotate", &data, &[&url[..], &["--json"]].concat());
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["previous_kid"], first.as_str());
    assert_eq!(r["state"], "next");
    let new = r["kid"].as_str().unwrap().to_owned();
    // In the shared store, sealed (I-112): every replica loads it at its
    // next maintenance.
    let stored = store.signing_keys().await.unwrap();
    let record = stored.iter().find(|k| k.kid == new).unwrap();
    let sealed = record.private_key_pem.as_deref().unwrap();
    assert!(!sealed.contains("PRIVATE KEY"), "{sealed}");
    let (code, out, err) = keys("list", &data, &[&url[..], &["--json"]].concat());
    assert_eq!(code, 0, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(state_of(&listed, &first), "current");
    assert_eq!(state_of(&listed, &new), "next");
    assert!(!data.exists(), "no data directory needed");
    store.close().await;
}
