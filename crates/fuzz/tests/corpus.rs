//! The fuzz targets in `cargo test` (issue 12 "Fuzzing and properties"):
//! every committed seed and regression input of `crates/fuzz/corpus/<target>/`
//! is replayed through its target, and proptest feeds each target arbitrary
//! bytes and byte-level mutations of its seeds, so the invariants the fuzzer
//! checks are also checked on every CI run (on the stable toolchain, without
//! coverage guidance).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ajwt_fuzz::TARGETS;
use proptest::prelude::*;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn target(name: &str) -> ajwt_fuzz::Target {
    TARGETS.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Every target has a seed corpus, every input in it passes, and the seeds
/// reach the accepting path (a valid token verifies, a valid proof passes,
/// the router issues a token...), so the fuzzer starts deep, not at the
/// first parse error.
#[test]
fn s9_4_3_every_corpus_input_passes_its_target() {
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        assert!(inputs.len() >= 5, "{name}: only {} seeds", inputs.len());
        let mut failed = Vec::new();
        let mut accepted = 0;
        for (file, data) in &inputs {
            match catch_unwind(AssertUnwindSafe(|| run(data))) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(_) => failed.push(file),
            }
        }
        assert!(failed.is_empty(), "{name}: inputs failing: {failed:?}");
        assert!(
            accepted >= 3 && accepted < inputs.len(),
            "{name}: {accepted} of {} seeds accepted (want valid and invalid ones)",
            inputs.len()
        );
    }
}

/// Mutations of a seed: flip, insert, delete or overwrite bytes.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    )
        .prop_map(|(mut seed, edits)| {
            for (at, byte, op) in edits {
                if seed.is_empty() {
                    seed.push(byte);
                    continue;
                }
                let i = at.index(seed.len());
                match op {
                    0 => seed[i] ^= byte | 1,
                    1 => seed.insert(i, byte),
                    2 => {
                        seed.remove(i);
                    }
                    _ => seed[i] = byte,
                }
            }
            seed
        })
}

fn inputs(name: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus(name).into_iter().map(|(_, d)| d).collect();
    prop_oneof![prop::collection::vec(any::<u8>(), 0..512), mutated(seeds),]
}

macro_rules! property {
    ($test:ident, $name:literal, $cases:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: $cases, ..ProptestConfig::default() })]
            #[test]
            fn $test(data in inputs($name)) {
                let _accepted = target($name)(&data);
            }
        }
    };
}

property!(s5_3_agent_spec_invariants_hold, "agent_spec", 512);
property!(s5_3_1_jcs_round_trip_holds, "jcs", 512);
property!(
    s4_2_1_token_request_decoding_respects_limits,
    "token_request",
    512
);
property!(
    s6_3_registration_decoding_respects_limits,
    "registration",
    512
);
property!(
    s6_5_3_intent_token_verification_invariants_hold,
    "intent_token",
    256
);
property!(rfc9449_s4_3_dpop_proof_invariants_hold, "dpop_proof", 256);
property!(rfc7517_key_parsing_invariants_hold, "keys", 256);
property!(
    s9_4_3_router_never_fails_on_arbitrary_requests,
    "router",
    256
);
