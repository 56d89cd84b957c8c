//! Cross-implementation checks against the PyPI package auth51-checksum 0.3.0
//! and 0.4.0, whose `compute_v1` ("patchet-compat") ports the draft author's
//! checksum (hypernome/patchet). The expected values were computed by that
//! package's own code under CPython (conformance/tools/gen_peer_vectors.py,
//! provenance in conformance/vectors/external/auth51-checksum/PROVENANCE.md),
//! never by this crate. What differs, and why, is in spec/peers.md
//! (spec/interpretation.md I-61..I-63).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use ajwt_checksum::{compute_json, Profile};
use serde_json::Value;

fn recorded() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/vectors/external/auth51-checksum/checksums.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn python_ref_hex(input: &str) -> String {
    compute_json(input.as_bytes(), Profile::PythonRef)
        .unwrap()
        .checksum
        .to_hex()
}

fn test_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no recorded test {name}"))
}

/// Every recorded case: our python-ref equals auth51's compute_v1 exactly
/// where the file says "equal", and differs where it says "differs".
#[test]
fn s5_3_2_python_ref_matches_auth51_compute_v1_where_documented() {
    let doc = recorded();
    let mut checked = 0;
    for t in doc["tests"].as_array().unwrap() {
        let ours = python_ref_hex(t["input"].as_str().unwrap());
        for (version, theirs) in t["compute_v1"].as_object().unwrap() {
            let expect = t["pythonRef"][version].as_str().unwrap();
            let theirs = theirs.as_str().unwrap();
            match expect {
                "equal" => assert_eq!(ours, theirs, "{} with auth51 {version}", t["name"]),
                "differs" => assert_ne!(ours, theirs, "{} with auth51 {version}", t["name"]),
                other => panic!("unknown expectation {other}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

/// I-61: an agent without configuration, as every patchet agent is, hashes
/// like the reference code as deployed (`"config": {}`), in both auth51 versions.
#[test]
fn i61_absent_configuration_matches_the_deployed_reference_code() {
    let doc = recorded();
    let t = test_named(&doc, "no-configuration");
    assert!(!t["input"].as_str().unwrap().contains("configuration"));
    let ours = python_ref_hex(t["input"].as_str().unwrap());
    assert_eq!(ours, t["compute_v1"]["0.3.0"].as_str().unwrap());
    assert_eq!(ours, t["compute_v1"]["0.4.0"].as_str().unwrap());
}

/// I-62: a sub-agent tool (`is_agent`) is accepted and hashed like any tool,
/// as patchet and auth51 0.3.0 do; auth51 0.4.0 drops it (documented drift).
#[test]
fn i62_sub_agent_tools_match_auth51_0_3_and_not_0_4() {
    let doc = recorded();
    for name in ["sub-agent", "only-sub-agents"] {
        let t = test_named(&doc, name);
        let ours = python_ref_hex(t["input"].as_str().unwrap());
        assert_eq!(ours, t["compute_v1"]["0.3.0"].as_str().unwrap(), "{name}");
        assert_ne!(ours, t["compute_v1"]["0.4.0"].as_str().unwrap(), "{name}");
    }
    // 0.4.0 hashes an agent whose only tool is a sub-agent as one with no tools.
    let only = test_named(&doc, "only-sub-agents");
    let mut spec: Value = serde_json::from_str(only["input"].as_str().unwrap()).unwrap();
    spec["tools"] = Value::Array(vec![]);
    assert_eq!(
        python_ref_hex(&spec.to_string()),
        only["compute_v1"]["0.4.0"].as_str().unwrap()
    );
}
