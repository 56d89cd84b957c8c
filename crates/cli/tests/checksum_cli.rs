//! End-to-end tests of `ajwt checksum`, running the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ajwt_checksum::{compute_json, Profile};

const AJWT: &str = env!("CARGO_BIN_EXE_ajwt");

/// A spec with every component present, so the two profiles differ.
const SPEC: &str = r#"{
  "agent_id": "echo-v1",
  "prompt": "  Echo the input.\r\n\r\n  Nothing else.  ",
  "tools": [
    {"name": "echo", "description": "Echo text", "parameters": {"type": "object"}},
    {"name": "append", "description": "Append text", "parameters": {}}
  ],
  "configuration": {"model_name": "m", "temperature": 0.5, "max_tokens": 100}
}"#;

/// A file under the system temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ajwt-cli-test-{}-{n}.json", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ajwt(args: &[&str]) -> Output {
    Command::new(AJWT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ajwt_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(AJWT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).unwrap()
}

fn assert_success(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    assert!(o.stderr.is_empty(), "stderr: {}", stderr(o));
}

/// Exit 2, nothing on stdout, exactly `expected` + newline on stderr.
fn assert_bad_input(o: &Output, expected: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    assert!(o.stdout.is_empty(), "stdout: {:?}", stdout(o));
    assert_eq!(stderr(o), format!("{expected}\n"));
}

/// Exit 2, nothing on stdout, one `error: ` line on stderr (message not pinned).
fn assert_bad_input_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    assert!(o.stdout.is_empty(), "stdout: {:?}", stdout(o));
    let err = stderr(o);
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(err.ends_with('\n'), "stderr: {err:?}");
    assert_eq!(err.matches('\n').count(), 1, "stderr: {err:?}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    err.to_owned()
}

fn expected_checksum(spec: &[u8], profile: Profile) -> String {
    compute_json(spec, profile).unwrap().checksum.to_string()
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn prints_one_digest_line_equal_to_library() {
    let f = TempFile::new(SPEC.as_bytes());
    let o = ajwt(&["checksum", f.path()]);
    assert_success(&o);
    let out = stdout(&o);
    let line = out.strip_suffix('\n').expect("newline-terminated");
    assert!(!line.contains('\n'));
    let hex = line.strip_prefix("sha256:").expect("sha256: prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(line, expected_checksum(SPEC.as_bytes(), Profile::Jcs));
}

#[test]
fn explicit_jcs_profile_is_the_default() {
    let f = TempFile::new(SPEC.as_bytes());
    let default = ajwt(&["checksum", f.path()]);
    let explicit = ajwt(&["checksum", "--profile", "jcs", f.path()]);
    assert_success(&explicit);
    assert_eq!(default.stdout, explicit.stdout);
}

#[test]
fn dash_reads_stdin() {
    let o = ajwt_stdin(&["checksum", "-"], SPEC.as_bytes());
    assert_success(&o);
    assert_eq!(
        stdout(&o),
        format!("{}\n", expected_checksum(SPEC.as_bytes(), Profile::Jcs))
    );
}

#[test]
fn python_ref_profile_differs_from_jcs() {
    let f = TempFile::new(SPEC.as_bytes());
    let jcs = ajwt(&["checksum", "--profile", "jcs", f.path()]);
    let py = ajwt(&["checksum", "--profile", "python-ref", f.path()]);
    assert_success(&jcs);
    assert_success(&py);
    assert_ne!(jcs.stdout, py.stdout);
    assert_eq!(
        stdout(&py),
        format!(
            "{}\n",
            expected_checksum(SPEC.as_bytes(), Profile::PythonRef)
        )
    );
}

#[test]
fn canonical_prints_exact_bytes_and_newline() {
    for profile in [Profile::Jcs, Profile::PythonRef] {
        let o = ajwt_stdin(
            &[
                "checksum",
                "--canonical",
                "--profile",
                profile.as_str(),
                "-",
            ],
            SPEC.as_bytes(),
        );
        assert_success(&o);
        let mut expected = compute_json(SPEC.as_bytes(), profile).unwrap().canonical;
        expected.push(b'\n');
        assert_eq!(o.stdout, expected, "profile {profile}");
    }
}

#[test]
fn canonical_writes_raw_non_ascii_bytes() {
    let spec = r#"{"agent_id": "u-v1", "prompt": "Grüße \u00e9 😀", "tools": []}"#;
    let o = ajwt_stdin(&["checksum", "--canonical", "-"], spec.as_bytes());
    assert_success(&o);
    assert_eq!(
        stdout(&o),
        "{\"agent_id\":\"u-v1\",\"configuration\":{},\"prompt_template\":\"Grüße é 😀\",\"tools\":[]}\n"
    );
}

#[test]
fn json_output_shape_order_and_values() {
    for profile in [Profile::Jcs, Profile::PythonRef] {
        let o = ajwt_stdin(
            &["checksum", "--json", "--profile", profile.as_str(), "-"],
            SPEC.as_bytes(),
        );
        assert_success(&o);
        let out = stdout(&o);
        let line = out.strip_suffix('\n').expect("newline-terminated");
        assert!(!line.contains('\n'));
        let c = compute_json(SPEC.as_bytes(), profile).unwrap();
        let canonical = String::from_utf8(c.canonical).unwrap();
        // Exact text, which pins the member order.
        let expected = format!(
            r#"{{"agent_id":{},"profile":{},"checksum":{},"canonical":{}}}"#,
            serde_json::Value::from("echo-v1"),
            serde_json::Value::from(profile.as_str()),
            serde_json::Value::from(c.checksum.to_string()),
            serde_json::Value::from(canonical.clone()),
        );
        assert_eq!(line, expected);
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 4);
        assert_eq!(obj["canonical"], canonical.as_str());
    }
}

/// The §5.2.2 example agent specification (prompt reflowed to one line).
#[test]
fn draft_5_2_2_example_matches_cpython_jcs() {
    // Computed independently with CPython 3.11.7 and the `jcs` 0.2.1 package
    // (RFC 8785), every integer converted to float, the draft's normalize_prompt
    // verbatim, components {agent_id, prompt_template, tools sorted by name
    // [{name, description, parameters}], configuration} (§5.3.1), by running
    //   python3 crates/cli/tests/data/jcs_reference.py crates/cli/tests/data/draft_5_2_2.json
    const CPYTHON_JCS: &str =
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d";
    let o = ajwt(&["checksum", "--json", &data("draft_5_2_2.json")]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_str(stdout(&o)).unwrap();
    assert_eq!(v["agent_id"], "vulnerability-patcher-v1");
    assert_eq!(v["profile"], "jcs");
    assert_eq!(v["checksum"], CPYTHON_JCS);

    let plain = ajwt(&["checksum", &data("draft_5_2_2.json")]);
    assert_success(&plain);
    assert_eq!(stdout(&plain), format!("{CPYTHON_JCS}\n"));
}

#[test]
fn duplicate_tool_name_is_one_error_line() {
    let spec = r#"{"agent_id": "dup-v1", "prompt": "p", "tools": [
        {"name": "a", "description": "", "parameters": {}},
        {"name": "search", "description": "", "parameters": {}},
        {"name": "search", "description": "", "parameters": {}}
    ]}"#;
    let f = TempFile::new(spec.as_bytes());
    for extra in [None, Some("--json"), Some("--canonical")] {
        let mut args = vec!["checksum"];
        args.extend(extra);
        args.push(f.path());
        assert_bad_input(
            &ajwt(&args),
            r#"error: tools[2].name: duplicate tool name "search""#,
        );
    }
}

#[test]
fn invalid_json_is_one_error_line() {
    let o = ajwt_stdin(&["checksum", "-"], b"{\"agent_id\": ");
    let err = assert_bad_input_line(&o);
    assert!(err.starts_with("error: invalid JSON"), "stderr: {err}");
}

#[test]
fn non_utf8_file_is_one_error_line() {
    let f = TempFile::new(b"{\"agent_id\": \"x\xff\", \"prompt\": \"p\", \"tools\": []}");
    let err = assert_bad_input_line(&ajwt(&["checksum", f.path()]));
    assert!(err.contains("UTF-8"), "stderr: {err}");
}

#[test]
fn missing_file_is_one_error_line() {
    let path = std::env::temp_dir().join(format!(
        "ajwt-cli-test-{}-does-not-exist.json",
        std::process::id()
    ));
    let path = path.to_str().unwrap();
    let o = ajwt(&["checksum", path]);
    let err = assert_bad_input_line(&o);
    let prefix = format!("error: cannot read {path}: ");
    assert!(err.starts_with(&prefix), "stderr: {err}");
}

#[test]
fn directory_is_one_error_line() {
    let dir = std::env::temp_dir();
    let err = assert_bad_input_line(&ajwt(&["checksum", dir.to_str().unwrap()]));
    assert!(err.starts_with("error: cannot read "), "stderr: {err}");
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let f = TempFile::new(SPEC.as_bytes());
    let o = ajwt(&["checksum", "--profile", "sha512", f.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).starts_with("error: "), "stderr: {}", stderr(&o));
}

#[test]
fn canonical_with_json_is_a_usage_error() {
    let f = TempFile::new(SPEC.as_bytes());
    let o = ajwt(&["checksum", "--canonical", "--json", f.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).starts_with("error: "), "stderr: {}", stderr(&o));
}

#[test]
fn missing_file_argument_is_a_usage_error() {
    let o = ajwt(&["checksum"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn closed_stdout_pipe_does_not_panic() {
    let f = TempFile::new(SPEC.as_bytes());
    for extra in [None, Some("--json"), Some("--canonical")] {
        let mut cmd = Command::new(AJWT);
        cmd.arg("checksum");
        cmd.args(extra);
        cmd.arg(f.path());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the child writes (or after: both must be quiet).
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "status {:?}",
            o.status
        );
        assert!(o.stderr.is_empty(), "stderr: {}", stderr(&o));
    }
}

#[test]
fn help_describes_options_and_cites_the_draft() {
    let top = ajwt(&["--help"]);
    assert_success(&top);
    assert!(stdout(&top).contains("checksum"));
    assert!(stdout(&top).contains("draft-goswami-agentic-jwt-00"));

    let sub = ajwt(&["checksum", "--help"]);
    assert_success(&sub);
    let text = stdout(&sub);
    for needle in [
        "--profile",
        "--canonical",
        "--json",
        "jcs",
        "python-ref",
        "§5.3.1",
        "§5.3.2",
        "FILE",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
