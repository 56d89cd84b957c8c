//! Runs the `mcp-demo` binary (issuer, MCP server and a shim-based agent,
//! all in-process) and checks every `RESULT` line and the exit status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_test_kit::ChildGuard;

#[test]
fn the_demo_allows_and_refuses_the_expected_calls() {
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-demo"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(child);
    // Read the pipes on threads so a full pipe cannot block the demo.
    let mut stdout = guard.0.stdout.take().unwrap();
    let mut stderr = guard.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = guard
        .wait_timeout(Duration::from_secs(120))
        .expect("mcp-demo did not finish in 120 s");
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let transcript = format!("{stdout}\n--- stderr ---\n{stderr}");

    let results: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .collect();
    let expected = [
        "initialize: OK",
        "tools/list: OK (3 tools)",
        "call read_manifest: OK",
        "call create_patch at step_2: REFUSED 403 workflow_step_not_allowed",
        "call create_patch without repo:write: REFUSED 403 insufficient_scope",
        "call create_patch at step_4: OK",
        "summary: OK (",
    ];
    assert_eq!(results.len(), expected.len(), "{transcript}");
    for (line, prefix) in results.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "expected a RESULT line starting {prefix:?}, got {line:?}\n{transcript}"
        );
    }
    assert_eq!(
        results[5], "call create_patch at step_4: OK (patch created by vulnerability-patcher-v1)",
        "{transcript}"
    );
    assert!(!stdout.contains("FAILED"), "{transcript}");
    // tools/list shows each tool's x-ajwt requirements.
    assert!(
        stdout.contains("tool create_patch         scopes [\"repo:write\"]")
            && stdout.contains("steps auto-patch-workflow-v1/step_4_apply_patch"),
        "{transcript}"
    );
    assert!(
        stdout.contains("origin            Resource"),
        "{transcript}"
    );
    assert_eq!(status.code(), Some(0), "{transcript}");
}
