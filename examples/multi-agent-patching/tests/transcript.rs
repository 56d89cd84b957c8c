//! Runs the `multi-agent-patching` binary (in-process issuer and API) and
//! checks its transcript: every `RESULT` line, the exit status, and the
//! narrated claims of the patcher's intent token (§4.4.4, §6.6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_test_kit::ChildGuard;
use sha2::{Digest, Sha256};

fn run() -> (i32, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_multi-agent-patching"))
        .env_remove("AJWT_CLIENT_ID")
        .env_remove("AJWT_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn multi-agent-patching");
    let mut guard = ChildGuard(child);
    let mut stdout = guard.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let status = guard
        .wait_timeout(Duration::from_secs(120))
        .expect("multi-agent-patching did not finish in 120 s");
    let out = reader.join().unwrap();
    let mut err = String::new();
    if let Some(mut e) = guard.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.is_empty(), "unexpected stderr: {err}");
    (status.code().unwrap_or(-1), out)
}

/// The output of the section whose header starts with `header`.
fn section<'a>(out: &'a str, header: &str) -> &'a str {
    let start = out
        .find(header)
        .unwrap_or_else(|| panic!("no section {header:?} in:\n{out}"));
    let rest = &out[start..];
    let end = rest[1..].find("\n== ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// The value narrated for `claim` in `text` (`      claim   value`).
fn claim<'a>(text: &'a str, claim: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(claim))
                .then(|| parts.next())
                .flatten()
        })
        .unwrap_or_else(|| panic!("claim {claim} not narrated in:\n{text}"))
}

fn chain_hash(chain: &str) -> String {
    hex::encode(Sha256::digest(chain.as_bytes()))[..16].to_owned()
}

#[test]
fn transcript_shows_the_flow_and_four_blocked_attacks() {
    let (code, out) = run();
    let results: Vec<&str> = out.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(
        results,
        [
            "RESULT legitimate-flow: OK (200 patch applied)",
            "RESULT attack-1 prompt-altered: BLOCKED agent_checksum_mismatch",
            "RESULT attack-2 approval-gate-skipped: BLOCKED workflow_step_unauthorized missing_steps=step_3_approval_gate",
            "RESULT attack-3 scope-escalation: BLOCKED invalid_scope",
            "RESULT attack-4 stolen-token-replay: BLOCKED invalid_dpop_proof (401 from the API)",
            "RESULT summary: OK (legitimate flow succeeded, 4/4 attacks blocked)",
        ],
        "transcript:\n{out}"
    );
    assert_eq!(code, 0, "transcript:\n{out}");

    // Step 1: the supervisor runs step 1 itself (I-21), undelegated.
    let s1 = section(&out, "== Step 1:");
    assert_eq!(claim(s1, "sub"), "supervisor-agent");
    assert_eq!(claim(s1, "intent.workflow_step"), "step_1_analyze_manifest");
    assert_eq!(
        claim(s1, "intent.delegation_chain"),
        chain_hash("supervisor-agent")
    );

    // Step 2: the planner, delegated by the supervisor.
    let s2 = section(&out, "== Step 2:");
    assert_eq!(claim(s2, "sub"), "patch-planner");
    assert_eq!(
        claim(s2, "intent.delegation_chain"),
        chain_hash("supervisor-agent|patch-planner")
    );

    // Step 4: the patcher's token.
    let s4 = section(&out, "== Step 4:");
    assert_eq!(claim(s4, "sub"), "vulnerability-patcher-v1");
    assert_eq!(claim(s4, "scope"), "repo:write");
    assert_eq!(claim(s4, "intent.workflow_id"), "auto-patch-workflow-v1");
    assert_eq!(claim(s4, "intent.workflow_step"), "step_4_apply_patch");
    assert_eq!(claim(s4, "intent.executed_by"), "vulnerability-patcher-v1");
    assert_eq!(
        claim(s4, "intent.delegation_chain"),
        chain_hash("supervisor-agent|patch-planner|vulnerability-patcher-v1")
    );
    assert_eq!(
        claim(s4, "intent.step_sequence_hash"),
        chain_hash(
            "step_1_analyze_manifest|step_2_create_patch_plan|step_3_approval_gate|step_4_apply_patch"
        )
    );
    assert!(claim(s4, "agent_proof.registration_id").starts_with("reg_vulnerability-patcher-v1"));
    let kid = claim(s4, "cnf.jwk.kid");
    assert!(
        s4.contains("HTTP 200 {\"status\":\"patch applied\""),
        "{s4}"
    );
    assert!(s4.contains(&format!("\"proof_key\":\"{kid}\"")), "{s4}");

    // The gate was recorded before the patcher was delegated to.
    assert!(section(&out, "== Step 3:").contains("step_3_approval_gate recorded as completed"));

    // Attack 4: the stolen token is bound to the patcher's key, not the thief's.
    let a4 = section(&out, "== Attack 4");
    assert!(a4.contains("HTTP 401 invalid_dpop_proof"), "{a4}");
    assert!(a4.contains(&format!("bound to ({kid})")), "{a4}");
    let a2 = section(&out, "== Attack 2");
    assert!(
        a2.contains("missing_steps     step_3_approval_gate"),
        "{a2}"
    );
}
