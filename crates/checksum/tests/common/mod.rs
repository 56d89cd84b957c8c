//! Helpers shared by the integration tests: running CPython as an independent
//! oracle, and seeded case generation.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// True when the environment demands that oracle tests run (CI sets it), so a
/// missing python3 or `jcs` package fails instead of skipping.
pub fn python_required() -> bool {
    std::env::var_os("AJWT_REQUIRE_PYTHON").is_some_and(|v| v == "1")
}

/// Runs `script` with one `python3` process, feeding `input` as JSON on stdin
/// and parsing one JSON document from stdout. `None` (after printing why) when
/// python3 or a module in `modules` is unavailable and not required.
pub fn run_python(
    script: &str,
    modules: &[&str],
    input: &serde_json::Value,
) -> Option<serde_json::Value> {
    let probe = format!(
        "import {}",
        std::iter::once("json")
            .chain(modules.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let available = Command::new("python3")
        .args(["-c", &probe])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !available {
        let msg = format!("python3 with modules {modules:?} is not available");
        if python_required() {
            panic!("{msg} but AJWT_REQUIRE_PYTHON=1");
        }
        eprintln!("SKIPPED: {msg} (pip install jcs; set AJWT_REQUIRE_PYTHON=1 to make this fatal)");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let body = serde_json::to_vec(input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().expect("python3 output");
    writer.join().unwrap().expect("write to python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("python3 printed JSON"))
}

/// The draft's §5.3.2 reference code (`normalize_prompt`,
/// `compute_agent_checksum`), verbatim: the repository's single copy,
/// prepended to every Python oracle script.
pub const PY_NORMALIZE_PROMPT: &str =
    include_str!("../../../../conformance/tools/draft_reference.py");

/// Seed for generated cases: `AJWT_SEED` (hex, 64 digits) or a fresh one.
pub fn seed() -> [u8; 32] {
    if let Ok(s) = std::env::var("AJWT_SEED") {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).expect("AJWT_SEED: 64 hex digits");
        return out;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&nanos.to_le_bytes());
    out[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    out
}

/// `n` values drawn from `strategy` with `seed`.
pub fn generate<S: Strategy>(strategy: &S, n: usize, seed: [u8; 32]) -> Vec<S::Value> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}
