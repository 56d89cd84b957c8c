//! Runs every known-answer vector of `conformance/vectors/checksum.json`
//! (expected values computed by CPython in conformance/tools/gen_checksum_vectors.py,
//! never by this crate) against the checksum code (§5.2–§5.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use ajwt_checksum::{compute_json, Profile};
use serde_json::Value;

fn vectors() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/vectors/checksum.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn s5_2_s5_3_checksum_vectors_all_pass() {
    let doc = vectors();
    assert_eq!(doc["algorithm"], "agent-checksum");
    let notes = doc["notes"].as_object().unwrap();
    let kinds = doc["errorKinds"].as_object().unwrap();
    let mut failures = Vec::new();
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let profile: Profile = group["profile"].as_str().unwrap().parse().unwrap();
        for t in group["tests"].as_array().unwrap() {
            count += 1;
            let id = t["tcId"].as_u64().unwrap();
            assert!(ids.insert(id), "duplicate tcId {id}");
            for flag in t["flags"].as_array().unwrap() {
                assert!(
                    notes.contains_key(flag.as_str().unwrap()),
                    "tcId {id}: undocumented flag {flag}"
                );
            }
            let input = t["input"].as_str().unwrap();
            let got = compute_json(input.as_bytes(), profile);
            match (t["result"].as_str().unwrap(), got) {
                ("valid", Ok(c)) => {
                    if c.canonical != t["canonical"].as_str().unwrap().as_bytes()
                        || c.checksum.to_string() != t["checksum"].as_str().unwrap()
                    {
                        failures.push(format!(
                            "tcId {id} ({profile}, {}): got {} {:?}",
                            t["comment"],
                            c.checksum,
                            String::from_utf8_lossy(&c.canonical)
                        ));
                    }
                }
                ("invalid", Err(e)) => {
                    let want = t["error"].as_str().unwrap();
                    assert!(
                        kinds.contains_key(want),
                        "tcId {id}: undocumented error kind {want}"
                    );
                    if e.kind().as_str() != want {
                        failures.push(format!(
                            "tcId {id} ({profile}, {}): want {want}, got {} ({e})",
                            t["comment"],
                            e.kind()
                        ));
                    }
                }
                (want, got) => failures.push(format!(
                    "tcId {id} ({profile}, {}): want {want}, got {got:?}",
                    t["comment"]
                )),
            }
        }
    }
    assert_eq!(count, doc["numberOfTests"].as_u64().unwrap() as usize);
    assert_eq!(
        ids.iter().copied().collect::<Vec<_>>(),
        (1..=count as u64).collect::<Vec<_>>()
    );
    assert!(count >= 40, "the issue asks for at least 40 vectors");
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
