//! Mode 1 (`ajwt conformance vectors`): the built-in target passes every
//! vector; the §5.3.2 Python reference adapter passes the python-ref
//! checksum vectors and fails the jcs ones for the documented reason
//! (spec/interpretation.md I-1); broken adapters give clear errors; every
//! vector file follows conformance/vectors/schema.json.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ajwt_conformance::report::{read_expect_fail, Outcome, Report, RunOptions};
use ajwt_conformance::vectors::{self, VectorsArgs};
use ajwt_conformance::Error;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vectors_dir() -> PathBuf {
    root().join("vectors")
}

fn load(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(vectors_dir().join(name)).unwrap()).unwrap()
}

fn quiet() -> RunOptions {
    RunOptions::default()
}

fn only(ids: &[&str]) -> RunOptions {
    RunOptions {
        only: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..RunOptions::default()
    }
}

fn outcome<'a>(r: &'a Report, id: &str) -> (&'a Outcome, Option<&'a str>) {
    let t = r
        .results
        .iter()
        .find(|t| t.info.id == id)
        .unwrap_or_else(|| panic!("{id} not in report"));
    (&t.outcome, t.reason.as_deref())
}

fn ids_with(r: &Report, o: Outcome) -> BTreeSet<String> {
    r.results
        .iter()
        .filter(|t| t.outcome == o)
        .map(|t| t.info.id.clone())
        .collect()
}

/// `python3 conformance/adapters/python_reference.py [extra]`, or `None`
/// (test skipped) when python3 is missing and AJWT_REQUIRE_PYTHON is not 1.
fn python_adapter(extra: &str) -> Option<String> {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("AJWT_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "python3 is required (AJWT_REQUIRE_PYTHON=1) but not found"
        );
        eprintln!("python3 not found: skipping");
        return None;
    }
    let script = root().join("adapters/python_reference.py");
    Some(format!("python3 '{}' {extra}", script.display()))
}

fn adapter_args(cmd: &str) -> VectorsArgs {
    VectorsArgs {
        adapter: Some(cmd.to_owned()),
        ..VectorsArgs::default()
    }
}

/// The jcs checksum vectors a §5.3.2 implementation must fail: every valid
/// one (different member names and serialization, I-1) and the
/// `unrepresentable_number` ones (JCS numbers are doubles, I-9).
fn documented_jcs_failures() -> BTreeSet<String> {
    let doc = load("checksum.json");
    let mut out = BTreeSet::new();
    for g in doc["testGroups"].as_array().unwrap() {
        if g["profile"] != "jcs" {
            continue;
        }
        for t in g["tests"].as_array().unwrap() {
            if t["result"] == "valid" || t["error"] == "unrepresentable_number" {
                out.insert(format!("VEC-checksum-{}", t["tcId"]));
            }
        }
    }
    out
}

#[test]
fn catalogue_has_one_must_test_per_vector_with_its_first_section() {
    let cat = vectors::catalogue(&VectorsArgs::default()).unwrap();
    let mut expected = 0;
    for (name, _) in ajwt_conformance::VECTOR_FILES {
        expected += load(name)["numberOfTests"].as_u64().unwrap() as usize;
    }
    assert_eq!(cat.len(), expected);
    assert_eq!(cat.len(), 542);
    let ids: BTreeSet<&str> = cat.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), cat.len(), "ids are unique");
    let t17 = cat.iter().find(|t| t.id == "VEC-checksum-17").unwrap();
    let v17 = &load("checksum.json")["testGroups"][0]["tests"][16];
    assert_eq!(v17["tcId"], 17);
    assert_eq!(t17.section, v17["sections"][0].as_str().unwrap());
    assert_eq!(t17.title, v17["comment"].as_str().unwrap());
    assert_eq!(t17.keyword, "MUST");
    assert!(t17.requirements.is_empty());
    assert!(ids.contains("VEC-sequence_hashes-3"));
    assert!(ids.contains("VEC-workflow_authorization-76"));
    assert!(ids.contains("VEC-token_request_decoding-130"));
    let only = vectors::catalogue(&VectorsArgs {
        files: vec!["sequence_hashes.json".into()],
        ..VectorsArgs::default()
    })
    .unwrap();
    assert_eq!(only.len(), 32);
    assert!(matches!(
        vectors::catalogue(&VectorsArgs {
            files: vec!["nope".into()],
            ..VectorsArgs::default()
        }),
        Err(Error::Setup(_))
    ));
}

#[tokio::test]
async fn s5_3_s4_builtin_target_passes_every_vector() {
    let started = Instant::now();
    let report = vectors::run(&VectorsArgs::default(), quiet())
        .await
        .unwrap();
    let s = &report.summary;
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| format!("{} {:?}: {:?}", r.info.id, r.outcome, r.reason))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((s.total, s.pass), (542, 542));
    assert!(!report.failed());
    assert!(
        report.target.starts_with("built-in (ajwt-checksum "),
        "{}",
        report.target
    );
    assert!(report.target.contains("ajwt-protocol "));
    assert_eq!(
        report.versions.get("vectors"),
        Some(&ajwt_conformance::vectors_version())
    );
    assert!(report.versions["vectors"].starts_with("2.0.0 (sha256:"));
    assert!(report.terminal().contains("vectors"));
    eprintln!("built-in: 542 vectors in {:?}", started.elapsed());
}

#[tokio::test]
async fn s5_3_2_python_adapter_passes_python_ref_vectors_and_fails_jcs_ones() {
    let Some(cmd) = python_adapter("") else {
        return;
    };
    let started = Instant::now();
    let report = vectors::run(&adapter_args(&cmd), quiet()).await.unwrap();
    eprintln!(
        "python adapter: {:?} in {:?}",
        report.summary,
        started.elapsed()
    );
    assert!(report.versions["adapter"].starts_with("python_reference.py"));
    let failed = ids_with(&report, Outcome::Fail);
    let want = documented_jcs_failures();
    let unexpected: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail && !want.contains(&r.info.id))
        .map(|r| format!("{}: {:?}", r.info.id, r.reason))
        .collect();
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
    assert_eq!(failed, want);
    // Pinned counts: 152 jcs + 152 python-ref checksum vectors, 32 sequence
    // hashes, 76 workflow authorizations, 130 token request decodings; of the
    // jcs vectors, the 65 valid ones and the 6 unrepresentable_number ones fail.
    assert_eq!(want.len(), 71, "jcs vectors a §5.3.2 implementation fails");
    let s = &report.summary;
    assert_eq!((s.total, s.pass, s.fail, s.skipped), (542, 471, 71, 0));
    for id in &want {
        let (_, reason) = outcome(&report, id);
        let reason = reason.unwrap();
        assert!(
            reason.contains("§5.3.1")
                && reason.contains("§5.3.2")
                && reason.contains("json.dumps(sort_keys=True)")
                && reason.contains("spec/interpretation.md I-1"),
            "{id}: {reason}"
        );
        assert!(reason.starts_with("[jcs] "), "{id}: {reason}");
    }
    // A valid jcs vector names the first differing canonical byte.
    let (_, r) = outcome(&report, "VEC-checksum-6");
    let r = r.unwrap();
    eprintln!("VEC-checksum-6: {r}");
    assert!(r.contains("canonical bytes first differ at byte 2"), "{r}");
    // A jcs-only rejection explains the error kind.
    let doc = load("checksum.json");
    let unrep = doc["testGroups"][0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["error"] == "unrepresentable_number")
        .unwrap();
    let (_, r) = outcome(&report, &format!("VEC-checksum-{}", unrep["tcId"]));
    eprintln!("VEC-checksum-{}: {r:?}", unrep["tcId"]);
    assert!(
        r.unwrap()
            .contains("expected rejection with error kind unrepresentable_number"),
        "{r:?}"
    );
    for group in [
        "sequence_hashes",
        "workflow_authorization",
        "token_request_decoding",
    ] {
        assert!(
            report
                .results
                .iter()
                .filter(|t| t.info.id.starts_with(&format!("VEC-{group}-")))
                .all(|t| t.outcome == Outcome::Pass),
            "{group}"
        );
    }
}

#[tokio::test]
async fn s5_3_2_python_adapter_expect_fail_file_lists_exactly_the_jcs_failures() {
    let text = std::fs::read_to_string(root().join("adapters/python_reference.expected-failures"))
        .unwrap();
    let listed = read_expect_fail(&text);
    assert_eq!(listed, documented_jcs_failures());
    let Some(cmd) = python_adapter("") else {
        return;
    };
    let options = RunOptions {
        expect_fail: listed,
        ..RunOptions::default()
    };
    let report = vectors::run(&adapter_args(&cmd), options).await.unwrap();
    let s = &report.summary;
    assert_eq!(
        (s.pass, s.expected_fail, s.fail, s.unexpected_pass),
        (471, 71, 0, 0)
    );
    assert!(!report.failed(), "the CI command exits 0");
}

#[tokio::test]
async fn s4_4_4_adapter_without_an_op_gets_those_vectors_skipped() {
    let Some(cmd) = python_adapter("--ops sequence_hash") else {
        return;
    };
    let args = VectorsArgs {
        files: vec!["sequence_hashes".into(), "workflow_authorization".into()],
        ..adapter_args(&cmd)
    };
    let report = vectors::run(&args, quiet()).await.unwrap();
    let s = &report.summary;
    assert_eq!((s.total, s.pass, s.fail, s.skipped), (108, 32, 0, 76));
    let (o, r) = outcome(&report, "VEC-workflow_authorization-1");
    assert_eq!(*o, Outcome::Skipped);
    assert!(
        r.unwrap()
            .contains("does not support op \"authorize_step\""),
        "{r:?}"
    );
    assert!(!report.failed());
}

fn sh(script: &str) -> String {
    format!("sh -c '{script}'")
}

#[tokio::test]
async fn adapter_that_cannot_start_or_garbles_hello_is_a_setup_error() {
    let err = vectors::run(&adapter_args("/nonexistent/adapter --x"), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Setup(m) if m.contains("cannot start adapter")),
        "{err}"
    );
    let err = vectors::run(&adapter_args(&sh("read l; echo garbage")), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Setup(m) if m.contains("hello") && m.contains("not a JSON line") && m.contains("garbage")),
        "{err}"
    );
    let err = vectors::run(&adapter_args(&sh("echo oops >&2; exit 7")), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Setup(m) if m.contains("exit status: 7") && m.contains("oops")),
        "{err}"
    );
    let err = vectors::run(&adapter_args("'unterminated"), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Setup(m) if m.contains("unterminated")),
        "{err}"
    );
    let err = vectors::run(
        &adapter_args(&sh("read l; echo \"{\\\"protocol\\\": \\\"other/9\\\"}\"")),
        quiet(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Setup(m) if m.contains("other/9")),
        "{err}"
    );
}

#[tokio::test]
async fn adapter_crashing_garbling_or_hanging_mid_run_fails_tests_with_the_reason() {
    let ids = [
        "VEC-sequence_hashes-1",
        "VEC-sequence_hashes-2",
        "VEC-sequence_hashes-3",
    ];
    // Answers hello, then dies with a message.
    let crash = sh("read l; echo {}; read l; echo boom >&2; exit 3");
    let report = vectors::run(&adapter_args(&crash), only(&ids))
        .await
        .unwrap();
    assert_eq!(report.summary.fail, 3);
    let (_, r) = outcome(&report, ids[0]);
    let r = r.unwrap();
    assert!(
        r.contains("exited before answering") && r.contains("exit status: 3") && r.contains("boom"),
        "{r}"
    );
    assert!(report.notes.iter().any(|n| n.contains("restarted")));

    // Answers hello, then prints garbage.
    let garbage = sh("read l; echo {}; while read l; do echo not json; done");
    let report = vectors::run(&adapter_args(&garbage), only(&ids))
        .await
        .unwrap();
    assert_eq!(report.summary.fail, 3);
    let (_, r) = outcome(&report, ids[1]);
    assert!(
        r.unwrap().contains("out of protocol: not a JSON line"),
        "{r:?}"
    );

    // Answers every request with a wrong but well-formed response.
    let wrong = sh("while read l; do echo \"{\\\"result\\\": \\\"valid\\\", \\\"delegation_chain\\\": \\\"0000000000000000\\\"}\"; done");
    let report = vectors::run(&adapter_args(&wrong), only(&ids[..1]))
        .await
        .unwrap();
    let (_, r) = outcome(&report, ids[0]);
    let r = r.unwrap();
    assert!(
        r.contains("delegation_chain: expected \"e2b0bb2db17839e8\" = SHA-256(\"supervisor|planner|patcher\")[..16], got \"0000000000000000\"")
            && r.contains("step_sequence_hash: expected \"bed72404ae7c18e8\""),
        "{r}"
    );

    // Answers hello, then hangs: each test times out after 1 s.
    let hang = sh("read l; echo {}; sleep 60");
    let args = VectorsArgs {
        adapter_timeout: Some(1),
        ..adapter_args(&hang)
    };
    let started = Instant::now();
    let report = vectors::run(&args, only(&ids[..2])).await.unwrap();
    assert_eq!(report.summary.fail, 2);
    let (_, r) = outcome(&report, ids[0]);
    assert!(r.unwrap().contains("did not answer within 1 s"), "{r:?}");
    assert!(started.elapsed().as_secs() < 20);
}

#[tokio::test]
async fn s5_3_vectors_dir_is_read_and_canonical_differences_are_located() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in ajwt_conformance::VECTOR_FILES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // Corrupt the expected canonical text and checksum of jcs tcId 6.
    let mut doc = load("checksum.json");
    let t = &mut doc["testGroups"][0]["tests"][5];
    assert_eq!(t["tcId"], 6);
    let canonical = t["canonical"]
        .as_str()
        .unwrap()
        .replace("\"prompt_template\":\"p\"", "\"prompt_template\":\"q\"");
    t["canonical"] = Value::String(canonical);
    t["checksum"] = Value::String(format!("sha256:{}", "0".repeat(64)));
    std::fs::write(
        dir.path().join("checksum.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    let args = VectorsArgs {
        vectors_dir: Some(dir.path().to_owned()),
        files: vec!["checksum".into()],
        ..VectorsArgs::default()
    };
    let report = vectors::run(&args, quiet()).await.unwrap();
    assert_eq!(
        ids_with(&report, Outcome::Fail),
        BTreeSet::from(["VEC-checksum-6".to_owned()])
    );
    let (_, r) = outcome(&report, "VEC-checksum-6");
    let r = r.unwrap();
    assert!(
        r.contains("expected sha256:0000") && r.contains("canonical bytes first differ at byte"),
        "{r}"
    );
    assert_ne!(
        report.versions["vectors"],
        ajwt_conformance::vectors_version()
    );
    assert!(report.versions["vectors"].starts_with("2.0.0 (sha256:"));

    let missing = VectorsArgs {
        vectors_dir: Some(dir.path().join("nope")),
        ..VectorsArgs::default()
    };
    assert!(matches!(
        vectors::run(&missing, quiet()).await,
        Err(Error::Setup(_))
    ));
}

fn schema_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(vectors_dir().join("schema.json")).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn every_vector_file_follows_schema_json() {
    let v = schema_validator();
    for (name, _) in ajwt_conformance::VECTOR_FILES {
        let doc = load(name);
        let errors = schema_errors(&v, &doc);
        assert!(errors.is_empty(), "{name}: {}", errors.join("\n"));
        assert_eq!(doc["vectorsVersion"], "2.0.0", "{name}");
        assert_eq!(doc["schema"], "schema.json", "{name}");
    }
}

fn assert_rejected(v: &jsonschema::Validator, doc: &Value, what: &str) {
    assert!(!v.is_valid(doc), "schema accepted {what}");
}

#[test]
fn schema_json_rejects_broken_vector_files() {
    let v = schema_validator();
    let base = load("checksum.json");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]["tcId"] = Value::String("1".into());
    assert_rejected(&v, &d, "a string tcId");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]
        .as_object_mut()
        .unwrap()
        .remove("checksum");
    assert_rejected(&v, &d, "a valid checksum test without checksum");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]["result"] = Value::String("acceptable".into());
    assert_rejected(&v, &d, "result acceptable");
    let mut d = base.clone();
    d["testGroups"][0]["profile"] = Value::String("xml".into());
    assert_rejected(&v, &d, "an unknown profile");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]["extra"] = Value::Bool(true);
    assert_rejected(&v, &d, "an unknown test member");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]["error"] = Value::String("invalid_json".into());
    assert_rejected(&v, &d, "a valid checksum test with an error kind");
    let mut d = base.clone();
    d["testGroups"][0]["tests"][0]["sections"] = serde_json::json!(["§5.3"]);
    assert_rejected(&v, &d, "a section with a section sign");
    let mut d = base.clone();
    d["surprise"] = Value::Bool(true);
    assert_rejected(&v, &d, "an unknown header member");
    let mut d = base.clone();
    d.as_object_mut().unwrap().remove("vectorsVersion");
    assert_rejected(&v, &d, "a file without vectorsVersion");
    let mut d = load("sequence_hashes.json");
    d["testGroups"][0]["tests"][0]["delegation_chain"] = Value::String("XYZ".into());
    assert_rejected(&v, &d, "a non-hex sequence hash");
    let mut d = load("workflow_authorization.json");
    d["testGroups"][0]["tests"][5]["result"] = Value::String("invalid".into());
    assert_rejected(&v, &d, "an invalid authorization test without error");
    let mut d = load("token_request_decoding.json");
    d["testGroups"][0]["type"] = Value::String("AgentChecksumTest".into());
    assert_rejected(&v, &d, "a token test group of the checksum type");
    let mut d = load("token_request_decoding.json");
    d["algorithm"] = Value::String("agent-checksum".into());
    assert_rejected(&v, &d, "a token file claiming the checksum algorithm");
}

#[test]
fn vectors_readme_and_protocol_document_the_format() {
    let readme = std::fs::read_to_string(vectors_dir().join("README.md")).unwrap();
    assert!(readme.contains("schema.json") && readme.contains("vectorsVersion"));
    let protocol = std::fs::read_to_string(root().join("adapters/PROTOCOL.md")).unwrap();
    for op in [
        "\"hello\"",
        "\"checksum\"",
        "\"sequence_hash\"",
        "\"authorize_step\"",
        "\"decode_token_request\"",
        "unsupported_op",
    ] {
        assert!(protocol.contains(op), "PROTOCOL.md lacks {op}");
    }
    assert!(Path::new(&root().join("adapters/python_reference.py")).exists());
}
