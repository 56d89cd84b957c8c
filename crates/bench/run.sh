#!/usr/bin/env bash
# Issue 15: the ONE command that runs every performance measurement and
# writes the report.
#
#   crates/bench/run.sh              # full run (< 20 min on 2 cores)
#   BENCH_QUICK=1 crates/bench/run.sh   # smoke run, a few seconds per area
#
# It builds the release binaries, runs each area's script (checksum: H1's
# crates/checksum/benches/run_bench.sh; issuance and verification: the
# criterion scripts crates/issuer/benches/run.sh and
# crates/verifier/benches/run.sh), then the areas of ajwt-bench (http,
# growth, postgres) against real `ajwt serve` processes pinned to core 0
# with the generator on core 1, and assembles every $AJWT_BENCH_OUT/*.json
# into crates/bench/RESULTS.md and the README's Performance block.
#
# Environment: AJWT_BENCH_OUT (default <target>/bench-results),
# AJWT_BENCH_DATABASE_URL or AJWT_TEST_DATABASE_URL (PostgreSQL admin URL;
# without one the postgres rows say "not run: no PostgreSQL"),
# BENCH_AREAS (default "checksum issuance verification http growth postgres"),
# BENCH_GROWTH_SIZES (default 1000,100000,1000000), BENCH_NO_README=1,
# AJWT_BENCH_TRACE=FILE (every fixed-rate run appends one line per request:
# schedule index, scheduled offset in µs, latency in µs; I-190).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$(pwd)"
start=$(date +%s)
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# The commit measured, taken before any area script rewrites its own files.
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export AJWT_BENCH_OUT="${AJWT_BENCH_OUT:-$CARGO_TARGET_DIR/bench-results}"
areas="${BENCH_AREAS:-checksum issuance verification http growth postgres}"
mkdir -p "$AJWT_BENCH_OUT"
rm -f "$AJWT_BENCH_OUT"/*.json

echo "== build (release): ajwt, ajwt-bench"
cargo build --release --quiet -p ajwt-cli -p ajwt-bench || exit 1
ajwt="$CARGO_TARGET_DIR/release/ajwt"
bench="$CARGO_TARGET_DIR/release/ajwt-bench"

run_script() { # area title script
  local area="$1" title="$2" script="$3"
  if [ ! -f "$script" ]; then
    echo "== $area: $script not found"
    "$bench" placeholder --out "$AJWT_BENCH_OUT" --area "$area" --title "$title" \
      --reason "$script does not exist on this commit"
    return
  fi
  echo "== $area: $script"
  local t0=$(date +%s)
  if ! bash "$script"; then
    echo "!! $script failed" >&2
    [ -f "$AJWT_BENCH_OUT/$area.json" ] || "$bench" placeholder --out "$AJWT_BENCH_OUT" \
      --area "$area" --title "$title" --reason "$script failed (exit status non-zero)"
  elif [ ! -f "$AJWT_BENCH_OUT/$area.json" ]; then
    "$bench" placeholder --out "$AJWT_BENCH_OUT" --area "$area" --title "$title" \
      --reason "$script wrote no $area.json"
  fi
  echo "   $area took $(( $(date +%s) - t0 )) s"
}

own=""
for a in $areas; do
  case "$a" in
    checksum) run_script checksum "Agent checksum (crates/checksum)" crates/checksum/benches/run_bench.sh ;;
    issuance) run_script issuance "Issuance in-process (crates/issuer)" crates/issuer/benches/run.sh ;;
    verification) run_script verification "Verification (crates/verifier)" crates/verifier/benches/run.sh ;;
    http|growth|postgres) own="${own:+$own,}$a" ;;
    *) echo "unknown area $a" >&2 ;;
  esac
done

status=0
if [ -n "$own" ]; then
  echo "== ajwt-bench all --areas $own"
  quick=()
  [ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
  "$bench" all --ajwt "$ajwt" --out "$AJWT_BENCH_OUT" --areas "$own" "${quick[@]}" || status=1
fi

elapsed=$(( $(date +%s) - start ))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
readme=(--readme README.md)
[ "${BENCH_NO_README:-0}" = 1 ] && readme=()
mode="full"
[ "${BENCH_QUICK:-0}" = 1 ] && mode="BENCH_QUICK=1 smoke run (figures not meaningful)"
"$bench" assemble --out "$AJWT_BENCH_OUT" --results crates/bench/RESULTS.md "${readme[@]}" \
  --meta "date=$(date -u +%Y-%m-%dT%H:%MZ)" \
  --meta "commit=${commit}" \
  --meta "machine=${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB RAM" \
  --meta "load average (1/5/15 min)=before ${load_before}, after ${load_after}" \
  --meta "rustc=$(rustc --version)" \
  --meta "run=${mode}, $(( elapsed / 60 )) min $(( elapsed % 60 )) s wall for the whole run.sh (build included)" \
  || status=1
echo "== report: crates/bench/RESULTS.md (whole run ${elapsed} s)"
exit $status
