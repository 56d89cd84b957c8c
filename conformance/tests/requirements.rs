//! Requirement traceability (issue 7): `spec/requirements.json` lists every
//! normative statement of the draft; this test fails when a MUST-level
//! statement (MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT) has neither a
//! covering test nor a "not testable / out of scope" reason, when a listed
//! test id does not exist (unit test, vector file or vector, conformance
//! test), or when the conformance catalogue and the JSON disagree about which
//! requirements a conformance test covers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ajwt_conformance::report::TestInfo;
use serde_json::Value;

const MUST_LEVELS: &[&str] = &["MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT"];
const ALL_LEVELS: &[&str] = &[
    "MUST",
    "MUST NOT",
    "REQUIRED",
    "SHALL",
    "SHALL NOT",
    "SHOULD",
    "SHOULD NOT",
    "RECOMMENDED",
    "NOT RECOMMENDED",
    "MAY",
    "OPTIONAL",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether `path` (relative to the repository) defines `fn name`.
fn fn_exists(root: &Path, path: &str, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(root.join(path))
        .map_err(|e| format!("file {path} cannot be read: {e}"))?;
    let needle = format!("fn {name}(");
    if text.contains(&needle) {
        Ok(())
    } else {
        Err(format!("{path} has no `fn {name}(`"))
    }
}

/// Whether a vector reference exists: `conformance/vectors/F.json` or
/// `conformance/vectors/F.json#N` (tcId N).
fn vector_exists(root: &Path, reference: &str) -> Result<(), String> {
    let (path, tc) = match reference.split_once('#') {
        Some((p, n)) => (p, Some(n)),
        None => (reference, None),
    };
    let text = std::fs::read_to_string(root.join(path))
        .map_err(|e| format!("vector file {path} cannot be read: {e}"))?;
    let Some(n) = tc else { return Ok(()) };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{reference}: `#{n}` is not a tcId"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let found = doc["testGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["tests"].as_array().into_iter().flatten())
        .any(|t| t["tcId"].as_u64() == Some(n));
    if found {
        Ok(())
    } else {
        Err(format!("{path} has no tcId {n}"))
    }
}

/// Every problem of a requirements document, given the conformance catalogue.
fn problems(root: &Path, doc: &Value, catalogue: &[TestInfo]) -> Vec<String> {
    let mut out = Vec::new();
    if doc["draft"] != "draft-goswami-agentic-jwt-00" {
        out.push(format!(
            "draft is {}, not draft-goswami-agentic-jwt-00",
            doc["draft"]
        ));
    }
    let Some(reqs) = doc["requirements"].as_array() else {
        out.push("no requirements array".into());
        return out;
    };
    let by_id: BTreeMap<&str, &TestInfo> = catalogue.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut ids = BTreeSet::new();
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in reqs {
        let id = r["id"].as_str().unwrap_or("<no id>");
        if !ids.insert(id.to_owned()) {
            out.push(format!("{id}: duplicate id"));
        }
        let section = r["section"].as_str().unwrap_or("");
        if !id.starts_with(&format!("R-{section}-")) {
            out.push(format!("{id}: id does not match section {section}"));
        }
        let level = r["level"].as_str().unwrap_or("");
        if !ALL_LEVELS.contains(&level) {
            out.push(format!("{id}: level {level:?} is not a BCP 14 keyword"));
        }
        if r["text"].as_str().is_none_or(str::is_empty) {
            out.push(format!("{id}: no text"));
        }
        let tests: Vec<&str> = r["tests"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let reason = r["not_testable"].as_str().filter(|s| !s.trim().is_empty());
        if !tests.is_empty() && !r["not_testable"].is_null() {
            out.push(format!("{id}: has tests and a not_testable reason"));
        }
        if MUST_LEVELS.contains(&level) && tests.is_empty() && reason.is_none() {
            out.push(format!(
                "{id}: {level} requirement has no covering test and no not_testable reason"
            ));
        }
        for t in tests {
            let check = if let Some((path, name)) = t.split_once("::") {
                fn_exists(root, path, name)
            } else if t.starts_with("conformance/vectors/") {
                vector_exists(root, t)
            } else if t.starts_with("ISS-") || t.starts_with("VER-") || t.starts_with("VEC-") {
                match by_id.get(t) {
                    Some(info) if t.starts_with("VEC-") || info.requirements.iter().any(|x| x == id) => {
                        Ok(())
                    }
                    Some(_) => Err(format!(
                        "conformance test {t} does not claim {id} in the catalogue; regenerate with --catalog"
                    )),
                    None => Err(format!("conformance test {t} is not in the catalogue")),
                }
            } else {
                Err(format!("unrecognised test id form {t:?}"))
            };
            if let Err(e) = check {
                out.push(format!("{id}: {e}"));
            }
            listed
                .entry(t.to_owned())
                .or_default()
                .insert(id.to_owned());
        }
    }
    for t in catalogue {
        for rid in &t.requirements {
            if !ids.contains(rid) {
                out.push(format!(
                    "catalogue test {} claims unknown requirement {rid}",
                    t.id
                ));
            } else if !listed.get(&t.id).is_some_and(|s| s.contains(rid)) {
                out.push(format!(
                    "{rid}: does not list {} although the catalogue says it covers it; regenerate with --catalog",
                    t.id
                ));
            }
        }
    }
    out
}

fn load() -> Value {
    let text = std::fs::read_to_string(repo_root().join("spec/requirements.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn s1_2_every_must_is_covered_and_every_test_id_exists() {
    let catalogue = ajwt_conformance::cli::full_catalogue().unwrap();
    let doc = load();
    let problems = problems(&repo_root(), &doc, &catalogue);
    assert!(
        problems.is_empty(),
        "{} traceability problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn s1_2_requirements_md_lists_every_requirement() {
    let doc = load();
    let md = std::fs::read_to_string(repo_root().join("spec/requirements.md")).unwrap();
    for r in doc["requirements"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        assert!(
            md.contains(&format!("| {id} |")),
            "{id} missing from requirements.md"
        );
    }
}

#[test]
fn s1_2_checker_reports_uncovered_must_and_missing_tests() {
    // The checker itself must be able to fail: a MUST without tests, a test
    // naming a function that does not exist, a missing vector, an unknown
    // conformance id and a catalogue claim the JSON does not list.
    let doc = serde_json::json!({
        "draft": "draft-goswami-agentic-jwt-00",
        "requirements": [
            {"id": "R-4.2.1-1", "section": "4.2.1", "level": "MUST", "text": "x", "tests": [], "not_testable": null},
            {"id": "R-4.2.1-2", "section": "4.2.1", "level": "MUST", "text": "x",
             "tests": ["crates/protocol/src/wire.rs::no_such_test_fn",
                       "conformance/vectors/checksum.json#999999",
                       "conformance/vectors/nope.json",
                       "ISS-9.9-no-such-test",
                       "something else"], "not_testable": null},
            {"id": "R-4.2.1-3", "section": "4.2.1", "level": "SHOULD", "text": "x", "tests": [], "not_testable": null},
            {"id": "R-4.2.1-3", "section": "4.2.1", "level": "must", "text": "x", "tests": [], "not_testable": "r"}
        ]
    });
    let catalogue = vec![TestInfo::new(
        "ISS-4.2.1-x",
        "4.2.1",
        "MUST",
        &["R-4.2.1-1"],
        "x",
    )];
    let p = problems(&repo_root(), &doc, &catalogue);
    let joined = p.join("\n");
    for needle in [
        "R-4.2.1-1: MUST requirement has no covering test",
        "no `fn no_such_test_fn(`",
        "has no tcId 999999",
        "nope.json cannot be read",
        "ISS-9.9-no-such-test is not in the catalogue",
        "unrecognised test id form",
        "R-4.2.1-1: does not list ISS-4.2.1-x",
        "duplicate id",
        "is not a BCP 14 keyword",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(
        !joined.contains("R-4.2.1-3: SHOULD"),
        "a SHOULD may be open"
    );
}

#[test]
fn s1_2_existing_references_are_accepted() {
    let root = repo_root();
    assert!(fn_exists(&root, "conformance/tests/requirements.rs", "load").is_ok());
    assert!(vector_exists(&root, "conformance/vectors/checksum.json#1").is_ok());
    assert!(vector_exists(&root, "conformance/vectors/checksum.json").is_ok());
}
