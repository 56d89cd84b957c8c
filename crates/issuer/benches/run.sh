#!/usr/bin/env bash
# In-process issuance benchmark (issue 15 "Issuance", I-147): runs
# `cargo bench -p ajwt-issuer --bench issuance` and writes
# $AJWT_BENCH_OUT/issuance.json (the results contract of issue 15) and
# $AJWT_BENCH_OUT/issuance.md. BENCH_QUICK=1: ES256 only, short sampling.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${AJWT_BENCH_OUT:-$TARGET/bench-results}"
mkdir -p "$OUT"
if [[ -n "${BENCH_QUICK:-}" ]]; then
  ARGS=(--warm-up-time 0.5 --measurement-time 1 --sample-size 10)
else
  ARGS=(--warm-up-time 0.5 --measurement-time 1.5)
fi
# The bench runs REPEATS times (default 3, 1 with BENCH_QUICK); every ratio is
# computed within one repeat and the median over repeats is reported (the
# machine is shared and noisy: a ratio of two medians taken minutes apart is not).
# BENCH_REPORT_ONLY=1: rewrite the JSON from the last run without measuring again.
REPEATS="${REPEATS:-$([[ -n "${BENCH_QUICK:-}" ]] && echo 1 || echo 3)}"
RAW="$OUT/raw-issuance"
if [[ -z "${BENCH_REPORT_ONLY:-}" ]]; then
  rm -rf "$RAW"
  for i in $(seq "$REPEATS"); do
    rm -rf "$TARGET/criterion/issuance_"*
    cargo bench -p ajwt-issuer -p ajwt-verifier --bench issuance -- "${ARGS[@]}" --noplot >"$OUT/issuance.log" 2>&1 \
      || { tail -40 "$OUT/issuance.log"; exit 1; }
    mkdir -p "$RAW/$i"
    cp -r "$TARGET/criterion/issuance_"* "$RAW/$i/"
  done
fi
python3 - "$RAW" "$OUT" "$(git rev-parse --short HEAD)" <<'EOF'
import json, os, sys, datetime
raw_dir, out, commit = sys.argv[1:4]
repeats = sorted(os.listdir(raw_dir), key=int)
import statistics

def median_ns_in(crit, group, fn):
    path = os.path.join(crit, group, fn, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]

def fmt(ns):
    return f"{ns/1000:.1f} µs ({1e9/ns:,.0f}/s)"

notes = []
def median_ns(group, fn):
    return median_ns_in(CRIT, group, fn)

all_rows = []
for rep in repeats:
    CRIT = os.path.join(raw_dir, rep)
    rows = []
    for alg in ("ES256", "EdDSA"):
        g = f"issuance_{alg}"
        ours = median_ns(g, "raw_sign_ajwt_jose")
        if ours is None:
            continue
        jk = median_ns(g, "raw_sign_josekit")
        # Both rows are the same raw signature (same key, same bytes); on a
        # shared, noisy machine the lower median is the closer estimate of its
        # cost, and the stricter baseline for the ratios.
        raw = min(ours, jk)
        pipe = median_ns(g, "pipeline")
        pers = median_ns(g, "persistence")
        hit = median_ns(g, "client_token_hit")
        miss = median_ns(g, "client_token_miss")
        base = (f"raw {alg} signature of the same claims, same key: {raw/1000:.1f} µs "
                f"(lower of ajwt-jose sign_raw {ours/1000:.1f} µs and josekit {jk/1000:.1f} µs)")
        cpu = median_ns(g, "pipeline_no_store_writes")
        rows.append({"measure": f"issuance pipeline {alg}, in-process, store writes answered without writing",
                     "value": fmt(cpu), "baseline": base, "ratio": round(cpu / raw, 3),
                     "target": "≤ 1.10×", "met": cpu / raw <= 1.10})
        rows.append({"measure": f"issuance pipeline {alg}, in-process, with token record + audit append (in-memory SQLite behind the cache)",
                     "value": fmt(pipe), "baseline": base, "ratio": round(pipe / raw, 3),
                     "target": None, "met": None})
        rows.append({"measure": f"persistence of one issuance {alg} alone (record_token + append_audit, in-memory SQLite)",
                     "value": fmt(pers), "baseline": base, "ratio": round(pers / raw, 3),
                     "target": None, "met": None})
        rows.append({"measure": f"client access token check, {alg} issuer key, cached (I-145)",
                     "value": fmt(hit), "baseline": f"same token, cache off (signature verified): {miss/1000:.1f} µs",
                     "ratio": round(hit / miss, 4), "target": None, "met": None})
    all_rows.append(rows)
# Per row, the repeat whose ratio is the median (ratios are taken within a repeat).
rows = []
for i in range(len(all_rows[0])):
    cands = sorted((rs[i] for rs in all_rows), key=lambda r: r["ratio"])
    rows.append(dict(cands[len(cands) // 2]))

notes.append(f"Criterion medians; each ratio is the median over {len(repeats)} repeat(s) of the ratio within one repeat (`crates/issuer/benches/run.sh`); every ratio compares "
             "measurements of the same run. The pipeline is decode → rate-limit check → registry lookup "
             "(cache decorator) → checksum compare → workflow/delegation rules → claims → token record "
             "and status index → sign → metrics → audit append (intent hash).")
notes.append("'store writes answered without writing': the same pipeline over a store decorator that answers "
             "record_token and append_audit at once (the audit hash chain still computed); every other call "
             "goes to the SQLite store. The persistence row is those two writes alone on the SQLite store.")
notes.append("The bench binary allocates with mimalloc, the allocator of `ajwt serve` (I-183, I-186), so the "
             "pipeline is measured as the server runs it. Measured with glibc malloc instead (2026-12-07, same "
             "session, two runs each): ES256 1.74-1.84x against 1.60-1.62x with mimalloc, EdDSA 1.42-1.47x "
             "against 1.34-1.37x.")
doc = {"area": "issuance", "title": "Issuance pipeline in process (crates/issuer)",
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
       "commit": commit, "notes": notes, "rows": rows}
with open(os.path.join(out, "issuance.json"), "w") as f:
    json.dump(doc, f, indent=1, ensure_ascii=False)
with open(os.path.join(out, "issuance.md"), "w") as f:
    f.write(f"# {doc['title']}\n\n{doc['date']}, commit {commit}\n\n| measure | value | baseline | ratio | target | met |\n|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['measure']} | {r['value']} | {r['baseline']} | {r['ratio']} | {r['target'] or ''} | {'' if r['met'] is None else ('yes' if r['met'] else 'NO')} |\n")
    for n in notes:
        f.write(f"\n{n}\n")
print(open(os.path.join(out, "issuance.md")).read())
EOF
