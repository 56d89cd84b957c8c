#!/usr/bin/env python3
"""Python-side agent checksum speed (issue 16): the agentic_jwt binding next to
CPython running the draft's §5.3.2 reference code, in the same process and run.

    python crates/python/bench_checksum.py [--repeat 15] [--json]

Run it with an interpreter where the *release* wheel is installed (run-tests.sh
builds one into target/python-venv). Inputs are the ajwt-checksum benchmark's
(crates/checksum/benches/data): the §5.2.2 example agent and the large agent
(50 tools, ~20 KB prompt). For each input, per call, median of `--repeat`
timeit rounds:

* reference, components ready: the draft's §5.3.2 `compute_agent_checksum`
  (verbatim, conformance/tools/draft_reference.py: normalize_prompt,
  json.dumps(sort_keys=True), sha256) on the already-built components object;
* reference, from JSON bytes: json.loads + building the components + the same
  (both exactly the CPython baseline of crates/checksum/benches/cpython_baseline.py);
* binding python-ref / jcs, from a dict (the spec already loaded);
* binding python-ref / jcs, from JSON bytes (strict reader in Rust).

The python-ref checksums of the binding and of the reference code are checked
equal before timing. Ratios are reference / binding (> 1: the binding is faster).
"""

import argparse
import importlib.util
import json
import pathlib
import platform
import statistics
import sys
import timeit

import agentic_jwt

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "crates" / "checksum" / "benches" / "data"
INPUTS = [("draft-example", DATA / "draft-example.json"), ("large-agent", DATA / "large-agent.json")]


def load_reference():
    path = ROOT / "crates" / "checksum" / "benches" / "cpython_baseline.py"
    spec = importlib.util.spec_from_file_location("cpython_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call(fn, repeat):
    """Median seconds per call over `repeat` rounds (each ~0.2 s)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number)
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ref = load_reference()
    results = []
    for name, path in INPUTS:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        spec = json.loads(raw)
        components = ref.components_from_spec(json.loads(text))
        ref_hex = ref.compute_agent_checksum(components)
        assert ref.checksum_from_bytes(raw) == ref_hex
        assert agentic_jwt.checksum(spec, "python-ref") == "sha256:" + ref_hex
        assert agentic_jwt.checksum(raw, "python-ref") == "sha256:" + ref_hex
        cases = {
            "reference (components ready)": lambda: ref.compute_agent_checksum(components),
            "reference (from JSON bytes)": lambda: ref.checksum_from_bytes(raw),
            "binding python-ref (dict)": lambda: agentic_jwt.checksum(spec, "python-ref"),
            "binding python-ref (JSON bytes)": lambda: agentic_jwt.checksum(raw, "python-ref"),
            "binding jcs (dict)": lambda: agentic_jwt.checksum(spec, "jcs"),
            "binding jcs (JSON bytes)": lambda: agentic_jwt.checksum(raw, "jcs"),
        }
        timings = {label: per_call(fn, args.repeat) for label, fn in cases.items()}
        results.append({"input": name, "bytes": len(raw), "seconds_per_call": timings})
    if args.json:
        print(json.dumps({"python": platform.python_version(), "agentic_jwt": agentic_jwt.__version__,
                          "repeat": args.repeat, "results": results}, indent=2))
        return 0
    print(f"CPython {platform.python_version()} ({platform.machine()}), agentic_jwt {agentic_jwt.__version__}, "
          f"median of {args.repeat} rounds")
    for r in results:
        t = r["seconds_per_call"]
        print(f"\n{r['input']} ({r['bytes']} bytes)")
        ready, from_bytes = t["reference (components ready)"], t["reference (from JSON bytes)"]
        for label, seconds in t.items():
            if label.startswith("binding"):
                base = from_bytes if "bytes" in label else ready
                ratio = f"  {base / seconds:6.2f}x vs reference ({'from JSON bytes' if 'bytes' in label else 'components ready'})"
            else:
                ratio = ""
            print(f"  {label:34s} {seconds * 1e6:10.2f} us  {1 / seconds:12.0f}/s{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
