//! The `--json` report matches its documented schema
//! (`conformance/report.schema.json`) for every outcome, and the schema is
//! strict enough to refuse a malformed report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ajwt_conformance::report::{read_expect_fail, Check, Run, RunOptions, TestInfo};
use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/report.schema.json"))
        .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn sample_report(strict: bool) -> Value {
    let catalogue = vec![
        TestInfo::new("ISS-4.5.2-a", "4.5.2", "MUST", &["R-4.5.2-1"], "passes"),
        TestInfo::new("ISS-4.5.2-b", "4.5.2", "MUST NOT", &[], "fails"),
        TestInfo::new("ISS-4.4.1-c", "4.4.1", "SHOULD", &[], "warns"),
        TestInfo::new("ISS-5.4-d", "5.4", "MAY", &[], "skipped"),
        TestInfo::new("ISS-9.3-e", "9.3", "REQUIRED", &[], "expected failure"),
        TestInfo::new("ISS-9.3-f", "9.3", "MUST", &[], "unexpected pass"),
        TestInfo::new("ISS-9.3-g", "9.3", "MUST", &[], "never reached"),
    ];
    let options = RunOptions {
        strict,
        expect_fail: read_expect_fail("ISS-9.3-e\nISS-9.3-f\n"),
        ..RunOptions::default()
    };
    let mut run = Run::new("issuer", "http://127.0.0.1:1", catalogue, options).unwrap();
    run.version("vectors", ajwt_conformance::vectors_version());
    run.note("discovered: token endpoint");
    run.record("ISS-4.5.2-a", Check::Pass);
    run.record("ISS-4.5.2-b", Check::Fail("expected 400, got 500".into()));
    run.record("ISS-4.4.1-c", Check::Fail("no Cache-Control".into()));
    run.record("ISS-5.4-d", Check::Skip("no public registration".into()));
    run.record("ISS-9.3-e", Check::Fail("known gap".into()));
    run.record("ISS-9.3-f", Check::Pass);
    let report = run.finish();
    assert!(report.failed());
    serde_json::from_str(&report.json()).unwrap()
}

#[test]
fn report_json_matches_schema_for_every_outcome() {
    let v = schema();
    for strict in [false, true] {
        let report = sample_report(strict);
        assert_eq!(errors(&v, &report), Vec::<String>::new());
        let outcomes: Vec<&str> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        let expected_should = if strict { "fail" } else { "warning" };
        assert_eq!(
            outcomes,
            [
                "pass",
                "fail",
                expected_should,
                "skipped",
                "expected-fail",
                "unexpected-pass",
                "skipped"
            ]
        );
        assert_eq!(
            report["summary"]["must_failures"], 2,
            "MUST NOT fail + XPASS"
        );
    }
}

#[test]
fn schema_refuses_malformed_reports() {
    let v = schema();
    let good = sample_report(false);
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "unknown outcome",
            Box::new(|r| r["results"][0]["outcome"] = "ok".into()),
        ),
        (
            "bad keyword",
            Box::new(|r| r["results"][0]["keyword"] = "must".into()),
        ),
        (
            "missing summary",
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("summary");
            }),
        ),
        ("bad id", Box::new(|r| r["results"][0]["id"] = "T-1".into())),
        ("extra member", Box::new(|r| r["surprise"] = 1.into())),
        ("wrong format", Box::new(|r| r["format"] = "other/1".into())),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!errors(&v, &bad).is_empty(), "{what} was accepted");
    }
}
