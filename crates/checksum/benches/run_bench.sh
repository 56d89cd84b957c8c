#!/usr/bin/env bash
# Runs the ajwt-checksum criterion benchmark and the CPython §5.3.2 baseline on
# the same input files, checks that both compute the same python-ref checksum,
# and writes benches/RESULTS.md and the results-contract JSON
# $AJWT_BENCH_OUT/checksum.json (default <target dir>/bench-results).
#
#   crates/checksum/benches/run_bench.sh              # normal run, < 3 minutes
#   BENCH_QUICK=1 crates/checksum/benches/run_bench.sh  # smoke run, < 40 s; writes
#       $AJWT_BENCH_OUT/checksum-RESULTS.md instead of benches/RESULTS.md
#
# Issue 15 targets, each a ratio to SHA-256 (sha2) of the canonical bytes
# alone measured in the SAME criterion group: a checksum from a parsed spec
# <= 1.5x, from JSON bytes (strict parse + validation included) <= 3x.
#
# Knobs (environment): WARMUP (criterion warm-up seconds, default 1),
# MEASURE (criterion measurement seconds, default 2), PY_REPEAT (timeit
# repetitions, default 7), PY_MIN_TIME (seconds per timeit repetition,
# default 0.3), PYTHON (default python3), CLI_WITNESS=1 (also compare the
# `ajwt checksum` CLI's python-ref checksum; builds ajwt-cli), AJWT_BENCH_OUT.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/../../.." && pwd)"
if [ "${BENCH_QUICK:-0}" = "1" ]; then
    WARMUP="${WARMUP:-0.1}"
    MEASURE="${MEASURE:-0.3}"
    PY_REPEAT="${PY_REPEAT:-3}"
    PY_MIN_TIME="${PY_MIN_TIME:-0.05}"
else
    WARMUP="${WARMUP:-1}"
    MEASURE="${MEASURE:-2}"
    PY_REPEAT="${PY_REPEAT:-7}"
    PY_MIN_TIME="${PY_MIN_TIME:-0.3}"
fi
PYTHON="${PYTHON:-python3}"
INPUTS=(draft-example large-agent)
FILES=()
for input in "${INPUTS[@]}"; do FILES+=("$BENCH_DIR/data/$input.json"); done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

echo "== generating inputs" >&2
"$PYTHON" "$BENCH_DIR/cpython_baseline.py" generate >&2

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
# Never report a stale estimate from an earlier run.
for input in "${INPUTS[@]}"; do
    rm -rf "${TARGET_DIR:?}/criterion/$input"
done

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

echo "== cargo bench (warm-up ${WARMUP}s, measurement ${MEASURE}s)" >&2
cargo bench -p ajwt-checksum --bench checksum -- --noplot \
    --warm-up-time "$WARMUP" --measurement-time "$MEASURE" | tee "$WORK/rust.txt" >&2
AJWT_BENCH_OUT="${AJWT_BENCH_OUT:-$TARGET_DIR/bench-results}"
mkdir -p "$AJWT_BENCH_OUT"

echo "== CPython baseline (median of $PY_REPEAT, >= ${PY_MIN_TIME}s each)" >&2
"$PYTHON" "$BENCH_DIR/cpython_baseline.py" run --repeat "$PY_REPEAT" \
    --min-time "$PY_MIN_TIME" --json \
    "${FILES[@]}" >"$WORK/python.json"

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

# The ajwt CLI, when it prints a python-ref checksum, is a third witness
# (opt-in: it builds ajwt-cli, which does not fit the time budget when cold).
: >"$WORK/cli.txt"
for input in "${INPUTS[@]}"; do
    if [ "${CLI_WITNESS:-0}" != "1" ]; then
        echo "$input unavailable" >>"$WORK/cli.txt"
        continue
    fi
    out="$(cargo run -q -p ajwt-cli -- checksum --profile python-ref \
        "$BENCH_DIR/data/$input.json" 2>/dev/null || true)"
    hex="$(grep -Eo '[0-9a-f]{64}' <<<"$out" | head -n1 || true)"
    echo "$input ${hex:-unavailable}" >>"$WORK/cli.txt"
done

BENCH_QUICK="${BENCH_QUICK:-0}"
export WORK TARGET_DIR BENCH_DIR WARMUP MEASURE LOAD_BEFORE LOAD_AFTER AJWT_BENCH_OUT BENCH_QUICK
export INPUT_LIST="${INPUTS[*]}"
RUSTC_VERSION="$(rustc --version)"
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
NPROC="$(nproc 2>/dev/null || echo unknown)"
export RUSTC_VERSION GIT_REV NPROC

"$PYTHON" "$BENCH_DIR/report.py"
