//! The `ajwt conformance` command-line contract (issue 7, "Running it
//! unattended" and "Reports"): exit status 0 iff no MUST-level failure, 1 on
//! a failure or an unexpected pass of an `--expect-fail` test, 2 when the run
//! cannot start; `--json` valid against `conformance/report.schema.json`;
//! `--junit`; `--only`; versions printed on every run. Uses the vectors mode
//! against our crates (no network).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn ajwt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ajwt"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

fn schema_errors(report: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("conformance/report.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    v.iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

#[test]
fn vectors_builtin_passes_with_reports_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let (code, out, err) = ajwt(&[
        "conformance",
        "vectors",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Versions of the suite and the vectors, in the header of the report.
    assert!(out.starts_with("ajwt-conformance "), "{out}");
    assert!(out.contains("draft-goswami-agentic-jwt-00"), "{out}");
    assert!(out.contains("vectors: "), "{out}");
    assert!(out.contains("RESULT: PASS"), "{out}");
    // Progress lines on stderr, one per test.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(schema_errors(&report), Vec::<String>::new());
    let total = report["summary"]["total"].as_u64().unwrap();
    assert_eq!(total, 304 + 32 + 76 + 130, "every vector is a test");
    assert_eq!(report["summary"]["pass"].as_u64().unwrap(), total);
    assert_eq!(
        err.lines().filter(|l| l.starts_with('[')).count() as u64,
        total
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testcase ").count() as u64, total);
    assert!(!xml.contains("<failure"));
}

#[test]
fn only_and_quiet_select_and_silence() {
    let (code, out, err) = ajwt(&["conformance", "vectors", "--only", "4.4.4", "--quiet"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.is_empty(), "--quiet: {err}");
    assert!(out.contains("§4.4.4"), "{out}");
    assert!(!out.contains("§5.3.1"), "only §4.4.4 selected: {out}");
    let (code, _, err) = ajwt(&["conformance", "vectors", "--only", "99.9", "--quiet"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: --only 99.9 selects no test"),
        "{err}"
    );
}

#[test]
fn expect_fail_listing_a_passing_test_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("xfail.txt");
    std::fs::write(&list, "# known gaps\nVEC-sequence_hashes-1\n").unwrap();
    let (code, out, _) = ajwt(&[
        "conformance",
        "vectors",
        "--only",
        "VEC-sequence_hashes-1",
        "--quiet",
        "--expect-fail",
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("XPASS VEC-sequence_hashes-1"), "{out}");
    assert!(out.contains("RESULT: FAIL"), "{out}");

    std::fs::write(&list, "VEC-no-such-test\n").unwrap();
    let (code, _, err) = ajwt(&[
        "conformance",
        "vectors",
        "--expect-fail",
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown test ids: VEC-no-such-test"), "{err}");

    let (code, _, err) = ajwt(&[
        "conformance",
        "vectors",
        "--expect-fail",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: cannot read --expect-fail"), "{err}");
}

#[test]
fn list_json_names_every_mode() {
    let (code, out, _) = ajwt(&["conformance", "list", "--json"]);
    assert_eq!(code, 0);
    let tests: Vec<Value> = serde_json::from_str(&out).unwrap();
    for prefix in ["VEC-", "ISS-", "VER-"] {
        assert!(
            tests
                .iter()
                .any(|t| t["id"].as_str().unwrap().starts_with(prefix)),
            "no {prefix} tests listed"
        );
    }
    for t in &tests {
        assert!(t["section"].as_str().is_some_and(|s| !s.is_empty()), "{t}");
        assert!(t["keyword"].as_str().is_some(), "{t}");
    }
}
