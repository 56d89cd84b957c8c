//! Throughput of agent checksumming (checksums/second) for both profiles, on
//! the draft's §5.2.2 example agent and on a large generated agent
//! (`benches/data/`, written by `cpython_baseline.py generate`).
//!
//! For every input and profile, in the same criterion group (issue 15):
//! * `sha256`: SHA-256 (`sha2`) of the canonical bytes alone, the baseline;
//! * `checksum`: [`compute_checksum`] of a parsed [`AgentSpec`]
//!   (validation + one-pass canonicalization hashed as it is written);
//! * `checksum_json`: [`compute_checksum_json`], strict JSON parse +
//!   validation + the same;
//! * `compute` / `compute_json`: the same with the canonical bytes kept
//!   (`Computed::canonical`, what the CLI and registration use).
//!
//! Before measuring, one line per input and profile is printed,
//! `AJWT-CHECKSUM <input> <profile> sha256:<hex>`, so that `run_bench.sh` can
//! compare the python-ref checksum with the CPython reference code's.
//! Run everything (with the CPython baseline) via `benches/run_bench.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use ajwt_checksum::{
    compute, compute_checksum, compute_checksum_json, compute_json, AgentChecksum, AgentSpec,
    Profile,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// (benchmark group name, file under `benches/data/`).
const INPUTS: [(&str, &str); 2] = [
    ("draft-example", "draft-example.json"),
    ("large-agent", "large-agent.json"),
];

const PROFILES: [Profile; 2] = [Profile::Jcs, Profile::PythonRef];

fn read_input(file: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "benches", "data", file]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run `python3 benches/cpython_baseline.py generate`)",
            path.display()
        )
    })
}

fn bench_checksum(c: &mut Criterion) {
    for (group_name, file) in INPUTS {
        let bytes = read_input(file);
        let spec = AgentSpec::from_json(&bytes).expect("benchmark input is a valid agent spec");
        for profile in PROFILES {
            let out = compute_json(&bytes, profile).expect("benchmark input checksums");
            println!("AJWT-CHECKSUM {group_name} {profile} {}", out.checksum);
        }

        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        for profile in PROFILES {
            let canonical = compute(&spec, profile).unwrap().canonical;
            group.bench_with_input(BenchmarkId::new("sha256", profile), &canonical, |b, c| {
                b.iter(|| AgentChecksum::digest(black_box(c)));
            });
            group.bench_with_input(BenchmarkId::new("checksum", profile), &spec, |b, spec| {
                b.iter(|| compute_checksum(black_box(spec), profile).unwrap());
            });
            group.bench_with_input(
                BenchmarkId::new("checksum_json", profile),
                &bytes,
                |b, bytes| {
                    b.iter(|| compute_checksum_json(black_box(bytes), profile).unwrap());
                },
            );
            group.bench_with_input(BenchmarkId::new("compute", profile), &spec, |b, spec| {
                b.iter(|| compute(black_box(spec), profile).unwrap());
            });
            group.bench_with_input(
                BenchmarkId::new("compute_json", profile),
                &bytes,
                |b, bytes| {
                    b.iter(|| compute_json(black_box(bytes), profile).unwrap());
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench_checksum);
criterion_main!(benches);
