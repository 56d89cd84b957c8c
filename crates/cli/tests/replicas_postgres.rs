//! Two `ajwt serve` replicas on one PostgreSQL database (issue 14): every
//! replica must agree on agents, keys, revocations and limits.
//!
//! Real processes, a real PostgreSQL server (`AJWT_TEST_DATABASE_URL`, a
//! role that may create databases; `.ci/postgres.sh` starts one in CI). Each
//! test gets a fresh database. Without the variable the tests say they were
//! skipped; under `CI=true` that is a failure.
//!
//! - Register on one, obtain a token from the other, verify it with either
//!   JWKS (jsonwebtoken: a second JOSE implementation).
//! - Revoke on one (RFC 7009), see it refused through the other's
//!   introspection (RFC 7662) and status list (draft-ietf-oauth-status-list).
//! - Rotate keys on one and keep verifying across both, zero failures (I-90,
//!   I-110).
//! - Concurrent re-registrations of one agent on both replicas: unique,
//!   gap-free versions (§5.4.4), exactly one winner per duplicate checksum
//!   (§5.4.2 step 3); the audit chain verifies afterwards (§9.1.4, I-100).
//! - The failure limits are shared (I-113): N replicas do not give an
//!   attacker N budgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_issuer::service::ClientCredentials;
use ajwt_test_kit::ServeProcess;
use base64::Engine as _;
use serde_json::{json, Value};

const AJWT: &str = env!("CARGO_BIN_EXE_ajwt");
const WORKFLOW: &str = "auto-patch-workflow-v1";
const STEP1: &str = "step_1_analyze_manifest";
const STEP2: &str = "step_2_create_patch_plan";
const AUD: &str = "https://api.example.test";

/// Two replicas on one fresh database, sharing one key-encryption key and
/// one issuer identifier (as behind a load balancer).
struct Replicas {
    a: ServeProcess,
    b: ServeProcess,
    /// The issuer identifier both use (`iss`).
    issuer: String,
    admin: ClientCredentials,
    database_url: String,
    kek: std::path::PathBuf,
    _db: ajwt_test_kit::postgres::FreshDatabase,
    _dir: tempfile::TempDir,
}

impl Replicas {
    async fn start(test: &str, extra: &[&str]) -> Option<Replicas> {
        let db = ajwt_test_kit::postgres::fresh_database(test).await?;
        let dir = tempfile::tempdir().unwrap();
        let kek = dir.path().join("kek.key");
        // One key-encryption key for the deployment (I-112), created by the
        // CLI like an operator would.
        let out = Command::new(AJWT)
            .args(["kek", "generate", "--out"])
            .arg(&kek)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let issuer = "http://issuer.replicas.test".to_owned();
        let url = db.url().to_owned();
        let args = |extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = [
                "--database-url",
                &url,
                "--kek-file",
                kek.to_str().unwrap(),
                "--issuer",
                &issuer,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            v.extend(extra.iter().map(|s| (*s).to_owned()));
            v
        };
        let a_args = args(extra);
        let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
        let a = ServeProcess::spawn(Path::new(AJWT), &dir.path().join("a"), &a_args)
            .await
            .unwrap();
        let b = ServeProcess::spawn(Path::new(AJWT), &dir.path().join("b"), &a_args)
            .await
            .unwrap();
        // The first replica bootstrapped the one admin client (I-68); the
        // second found a client in the shared database and wrote none.
        let admin = a.admin().unwrap();
        assert!(
            !dir.path().join("b").join("admin-client.json").exists(),
            "the second replica must not create a second admin client"
        );
        Some(Replicas {
            a,
            b,
            issuer,
            admin,
            database_url: url,
            kek,
            _db: db,
            _dir: dir,
        })
    }

    fn both(&self) -> [&ServeProcess; 2] {
        [&self.a, &self.b]
    }

    async fn admin_token(&self, at: &ServeProcess) -> String {
        ajwt_test_kit::client_token(&format!("{}/intent/token", at.base_url), &self.admin)
            .await
            .unwrap()
    }
}

/// Verifies `token` with the JWK Set served by `at`, using jsonwebtoken (an
/// independent JOSE implementation); the error text on failure.
async fn verify_with_jwks(at: &ServeProcess, issuer: &str, token: &str) -> Result<Value, String> {
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", at.base_url))
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in the JWK Set of {}", at.base_url))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn register_workflow(base: &str, admin_token: &str) {
    let workflow =
        ajwt_test_kit::repo_json("examples/workflows/auto-patch-workflow-v1.json").unwrap();
    ajwt_test_kit::register(base, admin_token, "workflow", &workflow)
        .await
        .unwrap();
}

async fn planner_token(
    base: &str,
    admin_token: &str,
    agent: &ajwt_test_kit::ExampleAgent,
) -> Result<String, ajwt_test_kit::KitError> {
    let step = ajwt_test_kit::StepRequest {
        workflow: WORKFLOW,
        step: STEP2,
        completed: &[STEP1],
        scopes: &["repo:write"],
        audience: AUD,
    };
    ajwt_test_kit::step_intent_token(base, admin_token, agent, &step).await
}

async fn form(url: &str, creds: &ClientCredentials, body: &str) -> (u16, Value) {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.client_id, creds.client_secret));
    let r = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Whether the status list of `token` served by `at` says revoked (bit 1).
async fn status_list_says_revoked(at: &ServeProcess, token: &str) -> bool {
    let claims = ajwt_test_kit::jwt_payload(token).unwrap();
    let idx = claims["status"]["status_list"]["idx"].as_u64().unwrap();
    let uri = claims["status"]["status_list"]["uri"].as_str().unwrap();
    // The uri names the issuer identifier; fetch the same path from `at`.
    let path = uri.strip_prefix("http://issuer.replicas.test").unwrap();
    let list = reqwest::get(format!("{}{path}", at.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payload = ajwt_test_kit::jwt_payload(&list).unwrap();
    let lst = payload["status_list"]["lst"].as_str().unwrap();
    let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(lst)
        .unwrap();
    let mut bits = Vec::new();
    use std::io::Read as _;
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_end(&mut bits)
        .unwrap();
    let byte = bits[usize::try_from(idx / 8).unwrap()];
    (byte >> (idx % 8)) & 1 == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_register_on_one_replica_token_from_the_other_verified_by_both_revoked_everywhere()
{
    let Some(r) = Replicas::start("replicas_lifecycle", &[]).await else {
        return;
    };
    let admin_a = r.admin_token(&r.a).await;
    let admin_b = r.admin_token(&r.b).await;
    register_workflow(&r.a.base_url, &admin_a).await;
    let planner = ajwt_test_kit::register_example_agent(&r.a.base_url, &admin_a, "patch-planner")
        .await
        .unwrap();

    // Registered through A, issued by B.
    let token = planner_token(&r.b.base_url, &admin_b, &planner)
        .await
        .unwrap();
    for at in r.both() {
        let claims = verify_with_jwks(at, &r.issuer, &token).await.unwrap();
        assert_eq!(claims["sub"], "patch-planner");
    }

    // Revoked through A (RFC 7009) ...
    let (status, _) = form(
        &format!("{}/intent/revoke", r.a.base_url),
        &r.admin,
        &format!("token={token}"),
    )
    .await;
    assert_eq!(status, 200);
    // ... refused through B's introspection (RFC 7662) and status list.
    let introspector = r.admin.clone();
    let (status, body) = form(
        &format!("{}/intent/introspect", r.b.base_url),
        &introspector,
        &format!("token={token}"),
    )
    .await;
    assert_eq!((status, &body["active"]), (200, &json!(false)), "{body}");
    assert!(status_list_says_revoked(&r.b, &token).await);

    // Agent revocation through B reaches A's token endpoint at once (the
    // change feed invalidates A's agent cache, I-111).
    let token2 = planner_token(&r.a.base_url, &admin_a, &planner)
        .await
        .unwrap();
    let (status, body, _) = ajwt_test_kit::post_json(
        &format!("{}/intent/admin/revoke-agent", r.b.base_url),
        &admin_b,
        &json!({"agent_id": "patch-planner"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let refused = planner_token(&r.a.base_url, &admin_a, &planner).await;
    assert!(
        refused.is_err(),
        "a revoked agent got a token from the other replica"
    );
    let (_, body) = form(
        &format!("{}/intent/introspect", r.a.base_url),
        &introspector,
        &format!("token={token2}"),
    )
    .await;
    assert_eq!(body["active"], json!(false), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_key_rotated_on_one_replica_signs_and_verifies_on_both_without_a_failure() {
    // A short publish delay so the rotation completes within the test; the
    // delay still exceeds the replicas' key reload interval.
    let Some(r) = Replicas::start(
        "replicas_rotation",
        &["--jwks-max-age", "6", "--key-publish-delay", "6"],
    )
    .await
    else {
        return;
    };
    let admin_a = r.admin_token(&r.a).await;
    register_workflow(&r.a.base_url, &admin_a).await;
    let planner = ajwt_test_kit::register_example_agent(&r.a.base_url, &admin_a, "patch-planner")
        .await
        .unwrap();
    let first_kid = jsonwebtoken::decode_header(
        &planner_token(&r.a.base_url, &admin_a, &planner)
            .await
            .unwrap(),
    )
    .unwrap()
    .kid
    .unwrap();

    let (status, _, rotation) = ajwt_test_kit::post_json(
        &format!("{}/intent/admin/rotate-keys", r.a.base_url),
        &admin_a,
        &json!({}),
    )
    .await
    .unwrap();
    let rotation = rotation.unwrap_or_default();
    assert_eq!(status, 200, "{rotation}");
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, first_kid);

    // For 20 s (the whole publish-then-sign window and more), alternately
    // obtain a token from one replica (fresh client token there too) and
    // verify it with the other's JWK Set; on a loaded machine, go on past
    // 20 s until at least 40 verifications ran (at most 180 s): the count is
    // a floor on what was exercised, not a speed requirement.
    let start = tokio::time::Instant::now();
    let window_end = start + Duration::from_secs(20);
    let hard_end = start + Duration::from_secs(180);
    let (mut ok, mut failures, mut kids) = (0u32, Vec::new(), std::collections::BTreeSet::new());
    let mut i = 0usize;
    loop {
        let now = tokio::time::Instant::now();
        if now >= hard_end || (now >= window_end && ok >= 40) {
            break;
        }
        let (from, to) = if i % 2 == 0 {
            (&r.a, &r.b)
        } else {
            (&r.b, &r.a)
        };
        i += 1;
        let admin = r.admin_token(from).await;
        match planner_token(&from.base_url, &admin, &planner).await {
            Ok(token) => {
                for at in [from, to] {
                    match verify_with_jwks(at, &r.issuer, &token).await {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            failures.push(format!("{} -> {}: {e}", from.base_url, at.base_url))
                        }
                    }
                }
                kids.insert(jsonwebtoken::decode_header(&token).unwrap().kid.unwrap());
            }
            Err(e) => failures.push(format!("issuance at {}: {e}", from.base_url)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "rotation across replicas: {ok} verifications, {} failures, kids {kids:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
    assert!(
        kids.contains(&new_kid),
        "the new key never signed: {kids:?}"
    );
    assert!(kids.contains(&first_kid));
    assert!(ok >= 40, "only {ok} verifications");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_concurrent_registrations_on_both_replicas_gap_free_one_winner_audit_verifies() {
    let Some(r) = Replicas::start(
        "replicas_registration",
        &["--rate-limit-registrations", "0"],
    )
    .await
    else {
        return;
    };
    let tokens = [r.admin_token(&r.a).await, r.admin_token(&r.b).await];
    let mut base =
        ajwt_test_kit::repo_json("examples/agents/vulnerability-patcher-v1.json").unwrap();
    let key = ajwt_jose::DpopKey::generate(ajwt_jose::Alg::Es256).unwrap();
    base["public_key"] = Value::Object(key.public_jwk());

    // 24 re-registrations of one agent with distinct prompts, half on each replica, at once.
    const N: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..N {
        let url = r.both()[i % 2].base_url.clone();
        let token = tokens[i % 2].clone();
        let mut spec = base.clone();
        spec["prompt"] = json!(format!("You are the patcher, revision {i}."));
        tasks.push(tokio::spawn(async move {
            ajwt_test_kit::register(&url, &token, "agent", &spec).await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        versions.push(r["version"].as_u64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=N as u64).collect::<Vec<_>>(),
        "versions must be unique and gap-free"
    );

    // 12 registrations of one new checksum to the same new agent, on both at once: one winner.
    let mut spec = base.clone();
    spec["agent_id"] = json!("dup-agent");
    spec["prompt"] = json!("One prompt registered twelve times.");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let url = r.both()[i % 2].base_url.clone();
        let token = tokens[i % 2].clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            ajwt_test_kit::post_json(&format!("{url}/intent/register/agent"), &token, &spec)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        let error = body.and_then(|b| b["error"].as_str().map(str::to_owned));
        outcomes.push((status, error));
    }
    // §5.4.2 step 3, §5.4.3: the losers are 400 duplicate_agent.
    let winners = outcomes.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(winners, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(s, e)| *s == 200 || (*s == 400 && e.as_deref() == Some("duplicate_agent"))),
        "{outcomes:?}"
    );

    // The one audit chain verifies (I-100), read from the shared database.
    let out = Command::new(AJWT)
        .args(["audit", "verify", "--database-url", &r.database_url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The README's PostgreSQL backup: a logical dump taken while both
    // replicas run, restored into an empty database, verifies too.
    let dump = r._dir.path().join("ajwt.dump");
    let out = Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&r.database_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {out:?}");
    let restored = ajwt_test_kit::postgres::fresh_database("replicas_restore")
        .await
        .unwrap();
    let out = Command::new("pg_restore")
        .arg(format!("--dbname={}", restored.url()))
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {out:?}");
    let out = Command::new(AJWT)
        .args(["audit", "verify", "--database-url", restored.url()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify of the restored copy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_failed_client_authentications_share_one_budget_across_replicas() {
    let Some(r) = Replicas::start("replicas_limits", &["--rate-limit-auth-failures", "6"]).await
    else {
        return;
    };
    let wrong = ClientCredentials {
        client_id: r.admin.client_id.clone(),
        client_secret: "not-the-secret".to_owned(),
    };
    // Six failures, three through each replica: the shared budget is spent.
    for i in 0..6 {
        let at = r.both()[i % 2];
        let (status, body) = form(
            &format!("{}/intent/token", at.base_url),
            &wrong,
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    // The seventh failure goes over it ...
    let (status, _) = form(
        &format!("{}/intent/token", r.a.base_url),
        &wrong,
        "grant_type=client_credentials",
    )
    .await;
    assert!(status == 401 || status == 429);
    // ... and from then on both replicas refuse the client, even the right
    // secret (I-73): per-process limits would have allowed 6 more on B.
    for at in r.both() {
        let (status, body) = form(
            &format!("{}/intent/token", at.base_url),
            &r.admin,
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(status, 429, "{}: {body}", at.base_url);
    }
}

/// Runs one SQL statement on the test database's server as the admin role
/// of `AJWT_TEST_DATABASE_URL` and returns the first column of the rows.
async fn admin_sql(sql: &str) -> Vec<String> {
    use sqlx::Row as _;
    let url = std::env::var("AJWT_TEST_DATABASE_URL").unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
    let out = rows
        .iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .or_else(|_| r.try_get::<i64, _>(0).map(|v| v.to_string()))
                .or_else(|_| {
                    r.try_get::<sqlx::postgres::types::Oid, _>(0)
                        .map(|v| v.0.to_string())
                })
                .unwrap_or_default()
        })
        .collect();
    pool.close().await;
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The bytes of every file of `dir`, recursively.
fn read_tree(dir: &Path, out: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, out);
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_s9_1_4_postgres_files_hold_no_prompt_tool_or_private_key_and_the_kek_rotates_over_the_url(
) {
    let Some(r) = Replicas::start("replicas_at_rest", &[]).await else {
        return;
    };
    let admin_a = r.admin_token(&r.a).await;
    let agent = "at-rest-agent";
    // register_example_agent gives this id the prompt below and the
    // example's tools (examples/agents/vulnerability-patcher-v1.json).
    ajwt_test_kit::register_example_agent(&r.a.base_url, &admin_a, agent)
        .await
        .unwrap();
    let prompt = format!("You are {agent}, a careful security agent.");
    let example =
        ajwt_test_kit::repo_json("examples/agents/vulnerability-patcher-v1.json").unwrap();
    let tool_descriptions: Vec<String> = example["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["description"].as_str().map(str::to_owned))
        .filter(|d| d.len() >= 12)
        .collect();
    assert!(!tool_descriptions.is_empty());

    // The raw data files of the database, after a checkpoint wrote every
    // page out (the server runs on this machine; CI runs as root).
    let name = r._db.name().to_owned();
    admin_sql("CHECKPOINT").await;
    let data_dir = admin_sql("SHOW data_directory").await.remove(0);
    let oid = admin_sql(&format!(
        "SELECT oid FROM pg_database WHERE datname = '{name}'"
    ))
    .await
    .remove(0);
    let mut raw = Vec::new();
    read_tree(&Path::new(&data_dir).join("base").join(&oid), &mut raw);
    // Control: plaintext columns are there, so these are the right files.
    assert!(
        contains(&raw, agent),
        "the agent id is not in the database files"
    );
    assert!(
        contains(&raw, "ajwt-sealed.v1."),
        "no sealed envelope in the database files"
    );
    // A logical dump (uncompressed text of every row) as a second reading.
    let dump = Command::new("pg_dump")
        .args(["--data-only", "--dbname", &r.database_url])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{dump:?}");
    assert!(contains(&dump.stdout, agent));
    for (what, bytes) in [("data files", &raw), ("pg_dump", &dump.stdout)] {
        assert!(!contains(bytes, &prompt), "prompt in the {what}");
        assert!(!contains(bytes, "PRIVATE KEY"), "private key in the {what}");
        for d in &tool_descriptions {
            assert!(!contains(bytes, d), "tool description {d:?} in the {what}");
        }
    }

    // KEK rotation over the database URL while both replicas run: they
    // follow the file and keep serving the specification (I-112).
    let out = Command::new(AJWT)
        .args([
            "kek",
            "rotate",
            "--json",
            "--database-url",
            &r.database_url,
            "--kek-file",
        ])
        .arg(&r.kek)
        .arg("--data-dir")
        .arg(r._dir.path().join("a"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kek rotate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_id = report["kek_id"].as_str().unwrap().to_owned();
    assert_ne!(Some(new_id.as_str()), report["previous_kek_id"].as_str());
    let dump = Command::new("pg_dump")
        .args(["--data-only", "--dbname", &r.database_url])
        .output()
        .unwrap();
    assert!(contains(&dump.stdout, &format!("ajwt-sealed.v1.{new_id}.")));
    for at in r.both() {
        let admin = r.admin_token(at).await;
        let view: Value = reqwest::Client::new()
            .get(format!("{}/intent/agents/{agent}", at.base_url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let spec = &view["registrations"][0]["specification"];
        assert_eq!(
            spec["prompt_template"],
            json!(prompt),
            "{}: {view}",
            at.base_url
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_readyz_reflects_the_postgresql_database() {
    let Some(r) = Replicas::start("replicas_readyz", &[]).await else {
        return;
    };
    let name = r._db.name().to_owned();
    let readyz = |base: String| async move {
        reqwest::Client::new()
            .get(format!("{base}/readyz"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(readyz(r.a.base_url.clone()).await, 200);
    // The database refuses every connection (superusers too) and the
    // replicas' connections are cut.
    admin_sql(&format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    ))
    .await;
    admin_sql(&format!(
        "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = readyz(r.a.base_url.clone()).await;
        if status == 503 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz stayed {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Liveness is not readiness: the process is alive.
    let health = reqwest::get(format!("{}/healthz", r.b.base_url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    admin_sql(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while readyz(r.a.base_url.clone()).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
