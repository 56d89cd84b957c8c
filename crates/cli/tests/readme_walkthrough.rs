//! Runs the README's walk-through (§4.2–§4.4, §5.4, §6.3) verbatim against a
//! real `ajwt serve` process, then stops the server with SIGTERM and checks it
//! exits cleanly (graceful shutdown).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_test_kit::ServeProcess;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn walkthrough_block() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:begin -->\n```sh\n")
        .expect("walkthrough start marker");
    let body = &readme[start + "<!-- walkthrough:begin -->\n```sh\n".len()..];
    let end = body
        .find("```\n<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    body[..end].to_owned()
}

fn tools_available() -> bool {
    let missing: Vec<&str> = ["curl", "jq", "openssl", "python3", "bash"]
        .into_iter()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("AJWT_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("README walk-through needs {missing:?} (AJWT_REQUIRE_TOOLS=1)");
    }
    eprintln!("SKIPPED: README walk-through needs {missing:?}");
    false
}

#[tokio::test]
async fn readme_walkthrough_runs_verbatim_against_ajwt_serve() {
    if !tools_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::spawn_with(
        Path::new(env!("CARGO_BIN_EXE_ajwt")),
        data.path(),
        &[],
        Stdio::piped(),
    )
    .await
    .expect("server did not become healthy");
    let base_url = server.base_url.clone();

    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &walkthrough_block()])
        .current_dir(repo_root())
        .env("AJWT_URL", &base_url)
        .env("AJWT_DATA_DIR", data.path())
        .env("AJWT", env!("CARGO_BIN_EXE_ajwt"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Graceful shutdown on SIGTERM.
    let status = server
        .terminate(Duration::from_secs(15))
        .expect("server did not stop on SIGTERM");
    let mut server_log = String::new();
    server
        .take_stderr()
        .unwrap()
        .read_to_string(&mut server_log)
        .unwrap();

    assert!(
        out.status.success(),
        "walk-through failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{server_log}"
    );
    assert!(
        status.success(),
        "server exit status {status:?}\n{server_log}"
    );
    assert!(
        server_log.contains("admin-client.json"),
        "admin client path logged"
    );
    assert!(
        !server_log.contains("client_secret"),
        "the secret is never logged"
    );
    // Registration responses (§5.4.3 + version, §6.3.3).
    assert!(
        stdout.contains(r#""agent_id":"vulnerability-patcher-v1""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""version":1"#), "{stdout}");
    assert!(
        stdout.contains(r#"{"status":"registered","workflow_id":"auto-patch-workflow-v1"}"#),
        "{stdout}"
    );
    // The decoded intent token (§4.4.2). The step hash was computed independently:
    // python3 -c 'import hashlib; print(hashlib.sha256(b"step_1_analyze_manifest|step_2_create_patch_plan|step_3_approval_gate|step_4_apply_patch").hexdigest()[:16])'
    let json_start = stdout.find("{\n").expect("decoded claims printed");
    let claims: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    assert_eq!(claims["intent"]["step_sequence_hash"], "6cdda67fce55b907");
    assert_eq!(claims["intent"]["executed_by"], "vulnerability-patcher-v1");
    assert_eq!(claims["intent"]["workflow_step"], "step_4_apply_patch");
    assert_eq!(claims["scope"], "repo:write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["cnf"]["jwk"]["crv"], "Ed25519");
    assert_eq!(
        claims["agent_proof"]["agent_checksum"],
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d"
    );
    assert_eq!(claims["iss"], base_url);
}
