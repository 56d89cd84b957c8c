//! Issue 15 "Reporting": the harness in smoke mode (`--quick`, what
//! `BENCH_QUICK=1 crates/bench/run.sh` runs) against the `ajwt` binary of
//! this build (debug is fine: no figure is asserted, only that every
//! request succeeded, every expected row exists and the assembled Markdown
//! is well formed). Never skipped: without PostgreSQL the postgres rows
//! must say "not run: no PostgreSQL", and under `CI=true` PostgreSQL must
//! be there (`.ci/run` starts it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_ajwt-bench");

/// `ajwt` next to `ajwt-bench` in the target directory, built when missing
/// (`cargo test --workspace` has already built it).
fn ajwt_binary() -> PathBuf {
    let dir = Path::new(BENCH).parent().unwrap();
    let ajwt = dir.join("ajwt");
    if !ajwt.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "ajwt-cli", "--bin", "ajwt"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the ajwt binary");
    }
    assert!(ajwt.exists(), "{} missing", ajwt.display());
    ajwt
}

fn area(out: &Path, name: &str) -> Value {
    let bytes = std::fs::read(out.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    // The results contract of issue 15.
    assert_eq!(v["area"], name);
    for key in ["title", "date", "commit"] {
        assert!(v[key].is_string(), "{name}: {key}");
    }
    assert!(v["notes"].is_array());
    for r in v["rows"].as_array().unwrap() {
        assert!(r["measure"].is_string() && r["value"].is_string(), "{r}");
        assert!(r["ratio"].is_null() || r["ratio"].is_number(), "{r}");
        assert!(r["met"].is_null() || r["met"].is_boolean(), "{r}");
        assert!(r["target"].is_null() || r["target"].is_string(), "{r}");
    }
    v
}

fn row<'a>(area: &'a Value, measure_prefix: &str) -> &'a Value {
    area["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["measure"].as_str().unwrap().starts_with(measure_prefix))
        .unwrap_or_else(|| panic!("no row {measure_prefix:?} in {}", area["area"]))
}

/// Every errors row of a request kind says 0, met.
fn assert_zero_errors(area: &Value, label: &str) {
    let r = row(area, &format!("{label}, errors"));
    assert_eq!(r["value"], "0", "{label}: {r}");
    assert_eq!(r["met"], true, "{label}");
    for point in [
        "concurrency 8",
        "concurrency 64",
        "fixed 1,000/s",
        "server CPU",
    ] {
        row(area, &format!("{label}, {point}"));
    }
}

/// A Markdown table line: `| a | b | c | d | e | f |` (escaped pipes aside).
fn assert_table_line(line: &str) {
    let unescaped = line.replace("\\|", "");
    assert!(
        unescaped.starts_with("| ") || unescaped.starts_with("|---"),
        "{line}"
    );
    assert!(unescaped.ends_with('|'), "{line}");
    assert_eq!(unescaped.matches('|').count(), 7, "6 columns: {line}");
}

#[test]
fn i15_quick_run_every_row_present_zero_errors_markdown_well_formed() {
    let pg = std::env::var("AJWT_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("AJWT_TEST_DATABASE_URL"))
        .is_ok();
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert!(
            pg,
            "CI=true: the postgres area must run (AJWT_TEST_DATABASE_URL)"
        );
    }
    let ajwt = ajwt_binary();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let run = Command::new(BENCH)
        .args(["all", "--quick", "--ajwt"])
        .arg(&ajwt)
        .arg("--out")
        .arg(&out)
        .arg("--work")
        .arg(tmp.path().join("work"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "ajwt-bench all --quick failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let http = area(&out, "http");
    for label in [
        "ES256 agent_checksum grant",
        "EdDSA agent_checksum grant",
        "RS256 agent_checksum grant",
        "client_credentials (ES256)",
    ] {
        assert_zero_errors(&http, label);
        // Same-run baseline: the raw single-core signing rate.
        let c64 = row(&http, &format!("{label}, concurrency 64"));
        assert!(
            c64["baseline"].as_str().unwrap().starts_with("raw "),
            "{c64}"
        );
        assert!(c64["ratio"].as_f64().unwrap() > 0.0, "{c64}");
    }
    // The disk's own commit latency, the floor of the fixed-rate p99.
    let fsync = row(&http, "fsync of the data directory's disk");
    assert!(
        fsync["value"].as_str().unwrap().starts_with("p50 "),
        "{fsync}"
    );
    if Path::new("/dev/shm").is_dir() {
        assert_zero_errors(
            &http,
            "ES256 agent_checksum grant, data dir on tmpfs (fsync free)",
        );
    }

    let growth = area(&out, "growth");
    let reg = row(&growth, "registration over HTTP (§6.2)");
    assert!(reg["value"].as_str().unwrap().contains("errors 0"), "{reg}");
    for size in ["100", "300"] {
        for m in ["cached agent", "spread over all agents"] {
            let r = row(&growth, &format!("{size} agents, {m}"));
            assert!(r["value"].as_str().unwrap().contains("errors 0"), "{r}");
        }
        row(&growth, &format!("{size} agents, peak RSS"));
        row(&growth, &format!("{size} agents, database size per agent"));
    }

    let postgres = area(&out, "postgres");
    for label in [
        "ES256 agent_checksum grant, 1 replica",
        "ES256 agent_checksum grant, 2 replicas",
    ] {
        if pg {
            assert_zero_errors(&postgres, label);
        } else {
            let r = row(&postgres, &format!("{label}, concurrency 8"));
            assert!(r["value"]
                .as_str()
                .unwrap()
                .starts_with("not run: no PostgreSQL"));
        }
    }
    row(&postgres, "registration over HTTP, 1 replica");

    // A missing area script gives a placeholder row, never a failure.
    let placeholder = Command::new(BENCH)
        .args([
            "placeholder",
            "--area",
            "checksum",
            "--title",
            "Agent checksum",
        ])
        .args([
            "--reason",
            "crates/checksum/benches/run_bench.sh does not exist",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(placeholder.success());

    // The assembler: RESULTS.md and the README block between the markers.
    let readme = tmp.path().join("README.md");
    std::fs::write(
        &readme,
        "# x\n\n## Performance\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\n## Layout\n",
    )
    .unwrap();
    let results = tmp.path().join("RESULTS.md");
    let status = Command::new(BENCH)
        .args(["assemble", "--out"])
        .arg(&out)
        .arg("--results")
        .arg(&results)
        .arg("--readme")
        .arg(&readme)
        .args(["--meta", "machine=test", "--meta", "run=quick"])
        .status()
        .unwrap();
    assert!(status.success());
    let md = std::fs::read_to_string(&results).unwrap();
    assert!(md.contains("- **machine**: test"));
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("### ")).collect();
    assert_eq!(headings.len(), 4, "{headings:?}");
    // Area order of the report: checksum first, postgres last.
    assert!(headings[0].contains("`checksum`") && headings[3].contains("`postgres`"));
    let mut tables = 0;
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with('|') {
            assert_table_line(line);
            if !in_table {
                assert_eq!(
                    line,
                    "| measure | value | baseline | ratio | target | met |"
                );
                tables += 1;
            }
            in_table = true;
        } else {
            in_table = false;
        }
    }
    assert_eq!(tables, 4);
    assert!(md.contains("not run: crates/checksum/benches/run_bench.sh does not exist"));
    let new_readme = std::fs::read_to_string(&readme).unwrap();
    assert_eq!(new_readme.matches("<!-- bench:begin -->").count(), 1);
    assert_eq!(new_readme.matches("<!-- bench:end -->").count(), 1);
    assert!(!new_readme.contains("\nold\n"));
    assert!(new_readme.contains("#### ") && new_readme.ends_with("## Layout\n"));
}
