#!/usr/bin/env python3
"""Writes benches/RESULTS.md and $AJWT_BENCH_OUT/checksum.json from one run of
run_bench.sh (criterion estimates + cpython_baseline.py --json). Called by
run_bench.sh, which sets the environment; standard library only.

Every ratio is between two figures of the SAME run: Rust medians from one
criterion group (SHA-256 of the canonical bytes, the baseline, measured in
the same group), CPython medians of timeit repetitions taken right after.
"""

import json
import os
import re
import sys
import time

env = os.environ
work, target, bench = env["WORK"], env["TARGET_DIR"], env["BENCH_DIR"]
out_dir = env["AJWT_BENCH_OUT"]
inputs = env["INPUT_LIST"].split()
py = json.load(open(os.path.join(work, "python.json")))
py_by_input = {r["file"].removesuffix(".json"): r for r in py["results"]}
PROFILES = ("jcs", "python-ref")
FUNCS = ("sha256", "checksum", "checksum_json", "compute", "compute_json")
TARGETS = {"checksum": 1.5, "checksum_json": 3.0}
TITLES = {
    "draft-example": "draft §5.2.2 example agent",
    "large-agent": "large agent",
}

rust_sums = {}
for line in open(os.path.join(work, "rust.txt")):
    m = re.match(r"AJWT-CHECKSUM (\S+) (\S+) sha256:([0-9a-f]{64})$", line.strip())
    if m:
        rust_sums[(m[1], m[2])] = m[3]
cli_sums = dict(line.split() for line in open(os.path.join(work, "cli.txt")))


def median_s(group, func, profile):
    path = os.path.join(target, "criterion", group, func, profile, "new", "estimates.json")
    return json.load(open(path))["median"]["point_estimate"] * 1e-9


def us(seconds):
    return f"{seconds * 1e6:,.2f} µs"


def value(seconds):
    return f"{us(seconds)} ({1 / seconds:,.0f}/s)"


cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass

rows, md, ok = [], [], True
date = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
w = md.append
w("# ajwt-checksum benchmark results")
w("")
w("Written by `crates/checksum/benches/run_bench.sh` (issue 15); rerun it to refresh. "
  "**The machine is shared and noisy: absolute numbers vary from run to run; the "
  "ratios compare figures of the same run** (Rust: medians from one criterion group "
  "that also measures SHA-256 of the canonical bytes; CPython: medians of timeit "
  "repetitions taken right after).")
w("")
w(f"- date: {date}, commit `{env['GIT_REV']}`")
w(f"- machine: `nproc` {env['NPROC']}, CPU {cpu}; load average "
  f"{env['LOAD_BEFORE']} before, {env['LOAD_AFTER']} after")
w(f"- Rust: {env['RUSTC_VERSION']}, `cargo bench` (release, criterion 0.5, warm-up "
  f"{env['WARMUP']} s, measurement {env['MEASURE']} s, median)")
w(f"- Python: {py['python']}, `timeit`, median of {py['repeat']} repetitions of "
  f">= {py['min_time_s']} s, mean per call")
w("")
w("Rows: **sha256** = `sha2` SHA-256 of the canonical bytes alone (the baseline); "
  "**checksum** = `compute_checksum` of a parsed `AgentSpec` (validation + one-pass "
  "canonicalization hashed as written); **checksum_json** = `compute_checksum_json` "
  "(strict parse + validation + the same); **compute / compute_json** = the same "
  "keeping the canonical bytes (`Computed::canonical`). Targets (issue 15): "
  "checksum ≤ 1.5× sha256, checksum_json ≤ 3× sha256.")

for name in inputs:
    p = py_by_input[name]
    t = {(f, prof): median_s(name, f, prof) for f in FUNCS for prof in PROFILES}
    w("")
    w(f"## {TITLES.get(name, name)} (`benches/data/{name}.json`, {p['bytes']:,} bytes)")
    w("")
    w("| measure | jcs | × sha256 | python-ref | × sha256 |")
    w("|---|---:|---:|---:|---:|")
    for f in FUNCS:
        cells = []
        for prof in PROFILES:
            ratio = t[f, prof] / t["sha256", prof]
            mark = ""
            if f in TARGETS:
                mark = " ✓" if ratio <= TARGETS[f] else " ✗"
            cells += [value(t[f, prof]), f"{ratio:.2f}×{mark}"]
        w(f"| {f} | " + " | ".join(cells) + " |")
    cp, cb = p["parsed_median_s_per_call"], p["bytes_median_s_per_call"]
    w(f"| CPython §5.3.2 reference, parsed spec | | | {value(cp)} | "
      f"{cp / t['sha256', 'python-ref']:.1f}× |")
    w(f"| CPython §5.3.2 reference, from bytes (`json.loads` +) | | | {value(cb)} | "
      f"{cb / t['sha256', 'python-ref']:.1f}× |")
    w("")
    w(f"CPython / Rust python-ref: **{cp / t['checksum', 'python-ref']:.1f}×** from a parsed spec, "
      f"**{cb / t['checksum_json', 'python-ref']:.1f}×** from JSON bytes.")
    canon_kb = ""
    rs, cs, cli = rust_sums.get((name, "python-ref")), p["checksum"], cli_sums.get(name, "unavailable")
    same = rs == cs
    ok &= same
    w("")
    w(f"python-ref checksum: Rust `sha256:{rs}`, CPython `sha256:{cs}`: "
      f"{'**equal**' if same else '**MISMATCH**'}.")
    if cli != "unavailable":
        ok &= cli == cs
        w(f"`ajwt checksum --profile python-ref`: `sha256:{cli}`: "
          f"{'equal' if cli == cs else '**MISMATCH**'}.")
    w(f"jcs checksum (Rust): `sha256:{rust_sums.get((name, 'jcs'))}`.")

    for prof in PROFILES:
        for f, label in (("checksum", "from parsed spec"), ("checksum_json", "from JSON bytes")):
            ratio = t[f, prof] / t["sha256", prof]
            rows.append({
                "measure": f"{prof}, {TITLES.get(name, name)}, {label}",
                "value": value(t[f, prof]),
                "baseline": f"SHA-256 of the canonical bytes: {us(t['sha256', prof])}",
                "ratio": round(ratio, 2),
                "target": f"≤ {TARGETS[f]}×",
                "met": ratio <= TARGETS[f],
            })
    for f, label, cpy in (("checksum", "from parsed spec", cp), ("checksum_json", "from JSON bytes", cb)):
        rows.append({
            "measure": f"python-ref, {TITLES.get(name, name)}, {label}: CPython §5.3.2 reference / Rust",
            "value": value(t[f, "python-ref"]),
            "baseline": f"CPython §5.3.2 reference: {us(cpy)}",
            "ratio": round(cpy / t[f, "python-ref"], 2),
            "target": None,
            "met": None,
        })

notes_path = os.path.join(bench, "NOTES.md")
notes = []
if os.path.exists(notes_path):
    notes = [l.rstrip("\n") for l in open(notes_path) if l.strip() and not l.startswith("#")]
    w("")
    w("## Notes")
    w("")
    md.extend(notes)

# A BENCH_QUICK smoke run must not overwrite the committed RESULTS.md.
quick = env.get("BENCH_QUICK", "0") == "1"
md_path = os.path.join(out_dir, "checksum-RESULTS.md") if quick else os.path.join(bench, "RESULTS.md")
if quick:
    md.insert(1, "\n**BENCH_QUICK=1 smoke run: short measurements, not for reporting.**")
with open(md_path, "w") as f:
    f.write("\n".join(md) + "\n")
result = {
    "area": "checksum",
    "title": "Agent checksum (crates/checksum)",
    "date": date,
    "commit": env["GIT_REV"],
    "notes": [n.removeprefix("- ") for n in notes],
    "rows": rows,
}
with open(os.path.join(out_dir, "checksum.json"), "w") as f:
    json.dump(result, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("\n".join(md))
print(f"wrote {md_path} and {os.path.join(out_dir, 'checksum.json')}", file=sys.stderr)
if not ok:
    print("error: python-ref checksum mismatch", file=sys.stderr)
    sys.exit(1)
