#!/usr/bin/env bash
# Runs the ajwt-checksum criterion benchmark and the CPython baseline on the
# same input files, checks that both compute the same python-ref checksum, and
# writes benches/RESULTS.md.
#
#   crates/checksum/benches/run_bench.sh
#
# Knobs (environment): WARMUP (criterion warm-up seconds, default 1),
# MEASURE (criterion measurement seconds, default 3), PY_REPEAT (timeit
# repetitions, default 7), PY_MIN_TIME (seconds per timeit repetition,
# default 0.5), PYTHON (default python3).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/../../.." && pwd)"
WARMUP="${WARMUP:-1}"
MEASURE="${MEASURE:-3}"
PY_REPEAT="${PY_REPEAT:-7}"
PY_MIN_TIME="${PY_MIN_TIME:-0.5}"
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

echo "== CPython baseline (best of $PY_REPEAT, >= ${PY_MIN_TIME}s each)" >&2
"$PYTHON" "$BENCH_DIR/cpython_baseline.py" run --repeat "$PY_REPEAT" \
    --min-time "$PY_MIN_TIME" --json \
    "${FILES[@]}" >"$WORK/python.json"

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

# The ajwt CLI, when it prints a python-ref checksum, is a third witness.
: >"$WORK/cli.txt"
for input in "${INPUTS[@]}"; do
    out="$(cargo run -q -p ajwt-cli -- checksum --profile python-ref \
        "$BENCH_DIR/data/$input.json" 2>/dev/null || true)"
    hex="$(grep -Eo '[0-9a-f]{64}' <<<"$out" | head -n1 || true)"
    echo "$input ${hex:-unavailable}" >>"$WORK/cli.txt"
done

export WORK TARGET_DIR BENCH_DIR WARMUP MEASURE LOAD_BEFORE LOAD_AFTER
export INPUT_LIST="${INPUTS[*]}"
RUSTC_VERSION="$(rustc --version)"
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
NPROC="$(nproc 2>/dev/null || echo unknown)"
export RUSTC_VERSION GIT_REV NPROC

"$PYTHON" - <<'EOF'
import json
import os
import re
import sys
import time

work, target, bench = os.environ["WORK"], os.environ["TARGET_DIR"], os.environ["BENCH_DIR"]
inputs = os.environ["INPUT_LIST"].split()
py = json.load(open(os.path.join(work, "python.json")))
py_by_input = {r["file"].removesuffix(".json"): r for r in py["results"]}

rust_sums = {}
for line in open(os.path.join(work, "rust.txt")):
    m = re.match(r"AJWT-CHECKSUM (\S+) (\S+) sha256:([0-9a-f]{64})$", line.strip())
    if m:
        rust_sums[(m[1], m[2])] = m[3]
cli_sums = dict(line.split() for line in open(os.path.join(work, "cli.txt")))


def rust_mean_ns(group, func, profile):
    path = os.path.join(target, "criterion", group, func, profile, "new", "estimates.json")
    est = json.load(open(path))
    return est["mean"]["point_estimate"]


def rate(seconds):
    per_s = 1.0 / seconds
    return f"{per_s:,.0f}/s ({seconds * 1e6:,.2f} µs)"


cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass

out = []
w = out.append
w("# ajwt-checksum benchmark results")
w("")
w("Written by `crates/checksum/benches/run_bench.sh`; rerun it to refresh. "
  "**The machine is shared and noisy: absolute numbers vary from run to run; "
  "only the Rust / CPython ratios, measured back to back in the same run, are "
  "meaningful.**")
w("")
w(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit `{os.environ['GIT_REV']}` (plus uncommitted work)")
w(f"- machine: `nproc` {os.environ['NPROC']}, CPU {cpu}; "
  f"load average {os.environ['LOAD_BEFORE']} before, {os.environ['LOAD_AFTER']} after")
w(f"- Rust: {os.environ['RUSTC_VERSION']}, `cargo bench` (release, criterion 0.5, "
  f"warm-up {os.environ['WARMUP']} s, measurement {os.environ['MEASURE']} s, mean)")
w(f"- Python: {py['python']}, `timeit`, best of {py['repeat']} repetitions of "
  f">= {py['min_time_s']} s, mean per call")
w("")
w("Columns:")
w("")
w("- **from JSON bytes**: Rust `compute_json` (strict parse, validation, "
  "canonicalization, SHA-256); CPython `json.loads` of the file bytes, then the "
  "§5.3.2 reference `compute_agent_checksum`.")
w("- **from parsed spec**: Rust `compute` on an `AgentSpec` (canonicalization + "
  "SHA-256); CPython `compute_agent_checksum` on the already loaded spec "
  "(`normalize_prompt` + components + `json.dumps(sort_keys=True)` + `hashlib.sha256`).")
w("")
w("Cells: checksums per second (time per checksum).")

ok = True
titles = {
    "draft-example": "draft §5.2.2 example agent (3 tools, one-line prompt)",
    "large-agent": "large agent (50 tools, ~20 KB multi-line prompt with CRLF, blank lines, indentation)",
}
for name in inputs:
    p = py_by_input[name]
    r = {(f, prof): rust_mean_ns(name, f, prof) * 1e-9
         for f in ("compute_json", "compute") for prof in ("jcs", "python-ref")}
    w("")
    w(f"## {titles.get(name, name)}")
    w("")
    w(f"Input: `benches/data/{name}.json`, {p['bytes']:,} bytes.")
    w("")
    w("| implementation | from JSON bytes | from parsed spec |")
    w("|---|---:|---:|")
    w(f"| Rust `jcs` | {rate(r['compute_json', 'jcs'])} | {rate(r['compute', 'jcs'])} |")
    w(f"| Rust `python-ref` | {rate(r['compute_json', 'python-ref'])} | {rate(r['compute', 'python-ref'])} |")
    w(f"| CPython §5.3.2 reference | {rate(p['bytes_s_per_call'])} | {rate(p['parsed_s_per_call'])} |")
    w(f"| **Rust `python-ref` / CPython** | **{p['bytes_s_per_call'] / r['compute_json', 'python-ref']:.1f}×** "
      f"| **{p['parsed_s_per_call'] / r['compute', 'python-ref']:.1f}×** |")
    w("")
    rs, cs, cli = rust_sums.get((name, "python-ref")), p["checksum"], cli_sums.get(name, "unavailable")
    same = rs == cs
    ok &= same
    w(f"python-ref checksum: Rust (bench) `sha256:{rs}`, CPython `sha256:{cs}`: "
      f"{'**equal**' if same else '**MISMATCH**'}.")
    if cli == "unavailable":
        w("`ajwt checksum --profile python-ref` did not print a checksum (CLI not ready); "
          "the comparison above uses the value the bench itself prints.")
    else:
        cli_same = cli == cs
        ok &= cli_same
        w(f"`ajwt checksum --profile python-ref`: `sha256:{cli}`: "
          f"{'equal' if cli_same else '**MISMATCH**'}.")
    w(f"jcs checksum (Rust): `sha256:{rust_sums.get((name, 'jcs'))}`.")

with open(os.path.join(bench, "RESULTS.md"), "w") as f:
    f.write("\n".join(out) + "\n")
print("\n".join(out))
if not ok:
    print("error: python-ref checksum mismatch", file=sys.stderr)
    sys.exit(1)
EOF
