#!/usr/bin/env python3
"""CPython baseline for the ajwt-checksum benchmark.

Two sub-commands:

  generate   writes the benchmark inputs to benches/data/ (deterministic: the
             same bytes on every run and every machine):
               draft-example.json  the agent of draft-goswami-agentic-jwt-00
                                   section 5.2.2 (prompt on one line)
               large-agent.json    50 tools with JSON-schema parameters and
                                   signatures, a ~20 KB multi-line prompt with
                                   blank lines, indentation, trailing blanks
                                   and CRLF line ends, and a configuration

  run FILE.. times, with timeit, the draft's section 5.3.2 reference algorithm
             (copied verbatim below) on each file:
               (a) compute_agent_checksum() on the already-loaded spec
               (b) json.loads(file bytes) + the same
             and prints checksums/second (best-of-N mean per call) and the
             checksum. With --json, prints one JSON object instead.

Only the standard library is used.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import timeit
import types

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


# draft-goswami-agentic-jwt-00, section 5.3.2, "Reference Implementation
# (Python)", verbatim: the repository's single copy in conformance/tools.
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "conformance", "tools")
)
from draft_reference import compute_agent_checksum, normalize_prompt  # noqa: E402


def components_from_spec(spec: dict):
    """The object the reference code expects, built from a JSON agent spec the
    way ajwt-checksum's python-ref profile reads it (shallow tools only: the
    benchmark inputs have no deep tools)."""
    prompt = spec["prompt"] if "prompt" in spec else spec["prompt_template"]
    tools = [
        types.SimpleNamespace(
            name=t["name"],
            signature=t.get("signature"),
            description=t.get("description") or "",
        )
        for t in spec["tools"]
    ]
    return types.SimpleNamespace(
        agent_id=spec["agent_id"],
        prompt_template=prompt,
        tools=tools,
        # spec I-61: an absent configuration is hashed as {} (as deployed).
        configuration=spec.get("configuration") if spec.get("configuration") is not None else {},
    )


def checksum_from_bytes(raw: bytes) -> str:
    return compute_agent_checksum(components_from_spec(json.loads(raw)))


# ---------------------------------------------------------------------------
# Input generation
# ---------------------------------------------------------------------------

DRAFT_EXAMPLE = {
    "agent_id": "vulnerability-patcher-v1",
    "prompt": (
        "You are a security agent responsible for patching vulnerabilities in "
        "software dependencies. Analyze manifests, identify vulnerable packages, "
        "and generate patches. Always verify changes before committing."
    ),
    "tools": [
        {
            "name": "read_manifest",
            "description": "Read package manifest file",
            "parameters": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"],
            },
        },
        {
            "name": "check_vulnerability",
            "description": "Check package for known vulnerabilities",
            "parameters": {
                "type": "object",
                "properties": {
                    "package": {"type": "string"},
                    "version": {"type": "string"},
                },
                "required": ["package", "version"],
            },
        },
        {
            "name": "create_patch",
            "description": "Create patch for vulnerable package",
            "parameters": {
                "type": "object",
                "properties": {
                    "package": {"type": "string"},
                    "current_version": {"type": "string"},
                    "target_version": {"type": "string"},
                },
                "required": ["package", "current_version", "target_version"],
            },
        },
    ],
    "configuration": {
        "model_name": "claude-3-5-sonnet-20241022",
        "temperature": 0.0,
        "max_tokens": 4096,
    },
}

_VERBS = ["list", "get", "search", "create", "update", "delete", "scan",
          "patch", "verify", "export"]
_NOUNS = ["repository", "dependency", "advisory", "manifest", "pull_request"]
# (name, JSON-schema property, Python annotation, default or None)
_PROPS = [
    ("repository", {"type": "string", "pattern": "^[\\w.-]+/[\\w.-]+$"}, "str", None),
    ("package", {"type": "string", "description": "Registry name"}, "str", None),
    ("version", {"type": "string"}, "str", None),
    ("ecosystem", {"type": "string", "enum": ["npm", "pypi", "cargo"]}, "str", "'npm'"),
    ("severity", {"type": "string", "enum": ["low", "high", "critical"]}, "str", "'high'"),
    ("limit", {"type": "integer", "minimum": 1, "default": 50}, "int", "50"),
    ("dry_run", {"type": "boolean", "default": True}, "bool", "True"),
    ("labels", {"type": "array", "items": {"type": "string"}}, "list[str]", "None"),
    ("threshold", {"type": "number", "maximum": 10.0, "default": 7.5}, "float", "7.5"),
    ("branch", {"type": "string", "default": "main"}, "str", "'main'"),
]

_SENTENCES = [
    "You are a dependency security agent operating on behalf of the platform team.",
    "Read every manifest in the repository before proposing any change.",
    "Identify packages with published advisories and record the advisory identifiers.",
    "Prefer the smallest version bump that resolves the vulnerability.",
    "Never downgrade a package unless the advisory explicitly recommends it.",
    "Run the project's test suite after each patch and report failures verbatim.",
    "If a fix requires a major version upgrade, open a draft pull request and stop.",
    "Summarize the risk of each change in one sentence for the reviewer.",
    "Do not modify files outside the dependency manifests and lock files.",
    "Escalate to a human when two advisories recommend incompatible versions.",
    "Respect the repository's CODEOWNERS file when requesting reviews.",
    "Keep commit messages under seventy-two characters in the subject line.",
    "Résumé of constraints — budgets, rate limits, naïve retries — apply as listed below.",
]


def _tool(i: int) -> dict:
    verb = _VERBS[i % len(_VERBS)]
    noun = _NOUNS[(i // len(_VERBS)) % len(_NOUNS)]
    name = f"{verb}_{noun}"
    picked = [_PROPS[(i * 3 + k * 7) % len(_PROPS)] for k in range(2 + i % 3)]
    seen, props = set(), []
    for p in picked:
        if p[0] not in seen:
            seen.add(p[0])
            props.append(p)
    required = [p[0] for p in props if p[3] is None]
    args = ", ".join(
        f"{n}: {ann}" if default is None else f"{n}: {ann} = {default}"
        for n, _, ann, default in sorted(props, key=lambda p: p[3] is not None)
    )
    return {
        "name": name,
        "description": f"{verb.capitalize()} {noun.replace('_', ' ')} records (#{i:02d})",
        "parameters": {
            "type": "object",
            "properties": {n: schema for n, schema, _, _ in props},
            "required": required,
        },
        "signature": f"({args}) -> dict",
    }


def _prompt(target_bytes: int = 19_000) -> str:
    parts, i = [], 0
    while sum(len(p) for p in parts) < target_bytes:
        section = i // 12
        if i % 12 == 0:
            # A section heading preceded by blank lines (some holding spaces).
            parts.append(f"\r\n   \r\n\n## Section {section + 1}: operating rules\r\n")
        s = _SENTENCES[i % len(_SENTENCES)]
        indent = " " * (2 * (i % 4)) if i % 5 else "\t"
        trail = "  " if i % 3 == 0 else ""
        eol = "\r\n" if i % 2 else "\n"
        parts.append(f"{indent}- Rule {i + 1}: {s}{trail}{eol}")
        if i % 7 == 6:
            parts.append(" \t \n")  # a blank line made of whitespace
        i += 1
    return "\n\n  " + "".join(parts) + "\n\n"


def large_agent() -> dict:
    return {
        "agent_id": "dependency-guardian-large-v3",
        "prompt": _prompt(),
        "tools": [_tool(i) for i in range(50)],
        "configuration": {
            "model_name": "claude-3-5-sonnet-20241022",
            "temperature": 0.2,
            "top_p": 0.95,
            "max_tokens": 8192,
            "stop_sequences": ["</patch>", "\n\nHuman:"],
            "tool_choice": "auto",
            "retry": {"max_attempts": 3, "backoff_seconds": 1.5},
        },
    }


def _compact(v) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def generate(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    big = large_agent()
    # Compact, one tool per line.
    big_text = (
        "{" + f'"agent_id":{_compact(big["agent_id"])},\n'
        + f'"prompt":{_compact(big["prompt"])},\n'
        + '"tools":[\n' + ",\n".join(_compact(t) for t in big["tools"]) + "\n],\n"
        + f'"configuration":{_compact(big["configuration"])}' + "}\n"
    )
    assert json.loads(big_text) == big
    for name, text in [
        ("draft-example.json", json.dumps(DRAFT_EXAMPLE, indent=2) + "\n"),
        ("large-agent.json", big_text),
    ]:
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"wrote {path} ({len(text.encode('utf-8'))} bytes)")


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def per_call(stmt, repeat: int, min_time: float):
    """(best, median) over `repeat` repetitions of the mean seconds per call,
    each repetition running at least `min_time` seconds (timeit's autorange
    picks the loop count)."""
    timer = timeit.Timer(stmt)
    number, elapsed = timer.autorange()
    if elapsed < min_time:
        number = max(1, int(number * min_time / max(elapsed, 1e-9)))
    times = sorted(t / number for t in timer.repeat(repeat=repeat, number=number))
    return times[0], times[len(times) // 2]


def run(files, repeat: int, min_time: float, as_json: bool) -> None:
    results = []
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        loaded = components_from_spec(json.loads(raw))
        digest = compute_agent_checksum(loaded)
        assert checksum_from_bytes(raw) == digest
        parsed, parsed_median = per_call(lambda: compute_agent_checksum(loaded), repeat, min_time)
        from_bytes, bytes_median = per_call(lambda: checksum_from_bytes(raw), repeat, min_time)
        results.append({
            "file": os.path.basename(path),
            "bytes": len(raw),
            "checksum": digest,
            "parsed_s_per_call": parsed,
            "bytes_s_per_call": from_bytes,
            "parsed_median_s_per_call": parsed_median,
            "bytes_median_s_per_call": bytes_median,
        })
    meta = {
        "python": platform.python_implementation() + " " + platform.python_version(),
        "repeat": repeat,
        "min_time_s": min_time,
        "results": results,
    }
    if as_json:
        print(json.dumps(meta, indent=2))
        return
    print(f"{meta['python']}, best of {repeat} repetitions (>= {min_time}s each)")
    for r in results:
        print(f"{r['file']} ({r['bytes']} bytes)  sha256:{r['checksum']}")
        print(f"  (a) loaded spec     : {1 / r['parsed_s_per_call']:12.1f} checksums/s"
              f"  ({r['parsed_s_per_call'] * 1e6:.2f} us/call)")
        print(f"  (b) json.loads + (a): {1 / r['bytes_s_per_call']:12.1f} checksums/s"
              f"  ({r['bytes_s_per_call'] * 1e6:.2f} us/call)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the benchmark inputs")
    g.add_argument("--out", default=DATA_DIR)
    r = sub.add_parser("run", help="time the section 5.3.2 reference code")
    r.add_argument("files", nargs="*")
    r.add_argument("--repeat", type=int, default=7)
    r.add_argument("--min-time", type=float, default=0.5,
                   help="minimum seconds per repetition")
    r.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.cmd == "generate":
        generate(args.out)
    else:
        files = args.files or [os.path.join(DATA_DIR, n)
                               for n in ("draft-example.json", "large-agent.json")]
        run(files, args.repeat, args.min_time, args.json)


if __name__ == "__main__":
    sys.exit(main())
