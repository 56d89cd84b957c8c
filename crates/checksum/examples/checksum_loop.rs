//! Fixed-count loop for `perf stat -e cycles:u` / callgrind comparisons of
//! one checksum pipeline (repeatable under load, unlike wall-clock timing):
//!
//! ```text
//! cargo build --release -p ajwt-checksum --example checksum_loop
//! perf stat -e cycles:u target/release/examples/checksum_loop large-agent jcs checksum 20000
//! ```
//!
//! MODE: `sha256` (SHA-256 of the canonical bytes alone, the baseline),
//! `checksum` (from a parsed spec), `checksum_json` (from JSON bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use ajwt_checksum::{compute, compute_checksum, compute_checksum_json, AgentChecksum, AgentSpec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, profile, mode, n] = args.as_slice() else {
        panic!("usage: checksum_loop INPUT PROFILE MODE N");
    };
    let path = format!("{}/benches/data/{input}.json", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(path).unwrap();
    let profile = profile.parse().unwrap();
    let n: u64 = n.parse().unwrap();
    let spec = AgentSpec::from_json(&bytes).unwrap();
    let canonical = compute(&spec, profile).unwrap().canonical;
    for _ in 0..n {
        let out = match mode.as_str() {
            "sha256" => AgentChecksum::digest(black_box(&canonical)),
            "checksum" => compute_checksum(black_box(&spec), profile).unwrap(),
            "checksum_json" => compute_checksum_json(black_box(&bytes), profile).unwrap(),
            other => panic!("unknown mode {other}"),
        };
        black_box(out);
    }
}
