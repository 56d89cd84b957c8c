#!/usr/bin/env python3
"""Record the agent checksums that another implementation really computes.

Writes conformance/vectors/external/auth51-checksum/checksums.json: for a few
agent specifications (this repository's input format, conformance/vectors/
README.md), the `compute_v1` ("patchet-compat") checksum computed by the PyPI
package auth51-checksum 0.3.0 and 0.4.0, run by THIS script with CPython. The
Rust test crates/checksum/tests/peers.rs compares them with our `python-ref`
profile, so every value in the file comes from the other implementation's own
code, never from ours (spec/peers.md, spec/interpretation.md I-61..I-64).

The package is not vendored and this script downloads nothing. Unpack the two
wheels first (pip's ordinary client; both are pure Python, Apache-2.0):

    pip download --no-deps 'auth51-checksum==0.3.0' -d /tmp/a51/0.3
    pip download --no-deps 'auth51-checksum==0.4.0' -d /tmp/a51/0.4
    (cd /tmp/a51/0.3 && python3 -m zipfile -e *.whl .)
    (cd /tmp/a51/0.4 && python3 -m zipfile -e *.whl .)
    python3 conformance/tools/gen_peer_vectors.py --auth51-0.3 /tmp/a51/0.3 --auth51-0.4 /tmp/a51/0.4

With --check the file is compared instead of written (exit 1 if stale). The
wheels' SHA-256 are recorded and verified, so a different upload under the same
version is noticed.
"""

import argparse
import hashlib
import importlib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "conformance" / "vectors" / "external" / "auth51-checksum" / "checksums.json"
GENERATOR = "conformance/tools/gen_peer_vectors.py"

# sha256 of the wheels as published on PyPI (checked when the directory holds them).
WHEELS = {
    "0.3.0": ("auth51_checksum-0.3.0-py3-none-any.whl",
              "f255731c10abc7e822c1ecba8a861519383f12750c29a7f60e6b52973f1ef0a5"),
    "0.4.0": ("auth51_checksum-0.4.0-py3-none-any.whl",
              "4d4679665fedb20d6e977db8ce812e3ff71a8d8f370f37fe8bc03790967e90b5"),
}

PROMPT = ("You are a security agent responsible for patching vulnerabilities in software "
          "dependencies. Analyze manifests, identify vulnerable packages, and generate "
          "patches. Always verify changes before committing.")
READ = {"name": "read_manifest", "description": "Read package manifest file",
        "signature": "(file_path: str) -> dict"}
CHECK = {"name": "check_vulnerability", "description": "Check package for known vulnerabilities",
         "signature": "(package: str, version: str) -> list"}
PLANNER = {"name": "patch-planner", "description": "Plan the patches (a sub-agent)",
           "signature": "(state: dict) -> dict"}

# (name, what it shows, our specification document, expectation per version:
#  "equal" = auth51 v1 equals our python-ref, "differs" = it does not, by design)
CASES = [
    ("no-configuration",
     "Agent without configuration (every patchet agent): auth51 v1 hashes \"config\": {} "
     "(I-61)",
     {"agent_id": "vulnerability-patcher-v1", "prompt": PROMPT, "tools": [CHECK, READ]},
     {"0.3.0": "equal", "0.4.0": "equal"}),
    ("configuration",
     "Agent with the Section 5.2.2 configuration (float 0.0, int 4096)",
     {"agent_id": "vulnerability-patcher-v1", "prompt": PROMPT, "tools": [READ, CHECK],
      "configuration": {"model_name": "claude-3-5-sonnet-20241022", "temperature": 0.0,
                        "max_tokens": 4096}},
     {"0.3.0": "equal", "0.4.0": "equal"}),
    ("whitespace-unicode",
     "Prompt needing normalization (CRLF, blank lines, U+3000, U+001F at edges) and "
     "non-ASCII text (\\uXXXX escapes in json.dumps)",
     {"agent_id": "unicode-agent",
      "prompt": "\u3000 R\u00e9ponds en fran\u00e7ais.\r\n\r\n\t\u001f Ligne 2 \U0001F600\r\n",
      "tools": [{"name": "\u7ffb\u8a33", "description": "\u7ffb\u8a33\u3059\u308b",
                 "signature": "(text: str) -> str"}]},
     {"0.3.0": "equal", "0.4.0": "equal"}),
    ("tool-without-signature",
     "Tool without signature: our python-ref and auth51 v1 both hash \"signature\": null",
     {"agent_id": "a", "prompt": "p", "tools": [{"name": "ping", "description": "Ping"}]},
     {"0.3.0": "equal", "0.4.0": "equal"}),
    ("deep-tool",
     "Deep tool: source_code hashed verbatim after the name/signature/description",
     {"agent_id": "deep-agent", "prompt": "p",
      "tools": [dict(READ, checksum_level="deep",
                     source_code="def read_manifest(file_path):\n    return load(file_path)")]},
     {"0.3.0": "equal", "0.4.0": "equal"}),
    ("deep-tool-empty-source",
     "Deep tool whose source_code is \"\": patchet and auth51 v1 add source_code only when "
     "it is truthy, our python-ref adds it for every deep tool (I-63)",
     {"agent_id": "deep-agent", "prompt": "p",
      "tools": [{"name": "noop", "description": "", "signature": "() -> None",
                 "checksum_level": "deep", "source_code": ""}]},
     {"0.3.0": "differs", "0.4.0": "differs"}),
    ("sub-agent",
     "Supervisor with a sub-agent tool (is_agent true): 0.3.0 hashes the tool like any other "
     "(as patchet and our python-ref do, I-62); 0.4.0 drops it from the hash",
     {"agent_id": "supervisor-agent", "prompt": "Delegate to the planner.",
      "tools": [dict(PLANNER, is_agent=True), dict(READ, is_agent=False)]},
     {"0.3.0": "equal", "0.4.0": "differs"}),
    ("only-sub-agents",
     "Agent whose only tool is a sub-agent: under 0.4.0 its checksum is that of an agent "
     "with no tools at all",
     {"agent_id": "supervisor-agent", "prompt": "Delegate to the planner.",
      "tools": [dict(PLANNER, is_agent=True)]},
     {"0.3.0": "equal", "0.4.0": "differs"}),
]


def components(spec):
    """The AgentComponents dict auth51's compute_v1 takes (its _as_dict reads
    agent_id, prompt_template, tools[name, signature, description, source_code,
    is_agent], configuration), mapped from our input format."""
    tools = []
    for t in spec["tools"]:
        tool = {"name": t["name"], "signature": t.get("signature"),
                "description": t.get("description", "")}
        if t.get("checksum_level") == "deep":
            tool["source_code"] = t["source_code"]
        if "is_agent" in t:
            tool["is_agent"] = t["is_agent"]
        tools.append(tool)
    out = {"agent_id": spec["agent_id"], "prompt_template": spec["prompt"], "tools": tools}
    if "configuration" in spec:
        out["configuration"] = spec["configuration"]
    return out


def load_auth51(directory, version):
    """Imports auth51_checksum from an unpacked wheel directory, checking the
    version and (when the wheel file is there) its SHA-256."""
    directory = Path(directory).resolve()
    name, digest = WHEELS[version]
    wheel = directory / name
    if wheel.exists():
        got = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if got != digest:
            sys.exit("%s: sha256 %s, expected %s" % (wheel, got, digest))
    for mod in [m for m in sys.modules if m == "auth51_checksum" or m.startswith("auth51_checksum.")]:
        del sys.modules[mod]
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module("auth51_checksum")
    finally:
        sys.path.remove(str(directory))
    meta = directory / ("auth51_checksum-%s.dist-info" % version) / "METADATA"
    if not meta.exists() or ("Version: %s\n" % version) not in meta.read_text(encoding="utf-8"):
        sys.exit("%s does not hold auth51-checksum %s" % (directory, version))
    return module


def build(dirs):
    results = {}
    for version, directory in dirs.items():
        mod = load_auth51(directory, version)
        results[version] = {name: mod.compute_v1(components(spec)) for name, _, spec, _ in CASES}
    tests = []
    for name, comment, spec, expect in CASES:
        tests.append({
            "name": name,
            "comment": comment,
            "input": json.dumps(spec, ensure_ascii=False),
            "auth51Components": components(spec),
            "compute_v1": {v: results[v][name] for v in sorted(dirs)},
            "pythonRef": {v: expect[v] for v in sorted(dirs)},
        })
    return {
        "what": "auth51-checksum compute_v1 (patchet-compat) checksums, computed by the "
                "package's own code under CPython; compared with our python-ref profile by "
                "crates/checksum/tests/peers.rs",
        "generator": GENERATOR,
        "generatorPython": "%d.%d" % sys.version_info[:2],
        "packages": {v: {"pypi": "auth51-checksum==%s" % v, "wheel": WHEELS[v][0],
                         "sha256": WHEELS[v][1], "licence": "Apache-2.0"} for v in sorted(dirs)},
        "pythonRef": {"equal": "our python-ref checksum (bare hex) equals compute_v1",
                      "differs": "our python-ref checksum differs from compute_v1, as "
                                 "documented in spec/peers.md"},
        "tests": tests,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--auth51-0.3", dest="v03", required=True, help="unpacked 0.3.0 wheel")
    ap.add_argument("--auth51-0.4", dest="v04", required=True, help="unpacked 0.4.0 wheel")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = ap.parse_args(argv)
    text = json.dumps(build({"0.3.0": args.v03, "0.4.0": args.v04}), indent=2,
                      ensure_ascii=False) + "\n"
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print("%s: out of date; re-run %s" % (OUTPUT, GENERATOR), file=sys.stderr)
            return 1
        print("%s: up to date" % OUTPUT)
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print("wrote %s (%d tests)" % (OUTPUT, len(CASES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
