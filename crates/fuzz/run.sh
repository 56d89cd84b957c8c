#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 600)
# with libFuzzer through cargo-fuzz, two targets at a time, and writes
# one line per target to crates/fuzz/results.tsv:
#   target  seconds  executions  exec/s  coverage  features  corpus  crashes  commit
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`);
# see crates/fuzz/README.md. Crashes, leaks, timeouts (-timeout=10 s per
# input) and out-of-memory (-rss_limit_mb=2048) stop a target and leave the
# input in crates/fuzz/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${SECONDS_EACH:-600}"
JOBS="${JOBS:-2}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(agent_spec jcs token_request registration intent_token dpop_proof keys router)
fi
cargo +nightly fuzz build -O
mkdir -p logs work
run_one() {
  local t="$1"
  mkdir -p "work/$t"
  # New inputs go to work/<t> (not committed); the committed corpus is read.
  if cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"logs/$t.log" 2>&1; then
    echo "$t ok"
  else
    echo "$t FAILED (see crates/fuzz/logs/$t.log)"
  fi
}
export -f run_one
export SECONDS_EACH
printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
{
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
  printf 'target\tseconds\texecutions\texec_per_s\tcoverage\tfeatures\tcorpus\tcrashes\tcommit\n'
  for t in "${targets[@]}"; do
    log="logs/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$commit"
  done
} > results.tsv
cat results.tsv
