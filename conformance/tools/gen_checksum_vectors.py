#!/usr/bin/env python3
"""Generate known-answer conformance vectors for the agent checksum.

Specification: draft-goswami-agentic-jwt-00, Sections 5.2 and 5.3.

This generator is an INDEPENDENT implementation written in plain CPython 3
(standard library json, hashlib, re, plus the `jcs` 0.2.1 package for
RFC 8785).  It never calls, imports or reads the Rust implementation under
test; every expected value in the output file is produced here.

Usage (from the repository root):

    python3 conformance/tools/gen_checksum_vectors.py           # (re)write the vectors
    python3 conformance/tools/gen_checksum_vectors.py --check   # exit 1 if the committed
                                                                 # file is stale
    python3 conformance/tools/gen_checksum_vectors.py --output PATH

The output is deterministic: re-running the script produces a byte-identical
file (the only environment-dependent field is "generatorPython", the
major.minor version of the interpreter that ran the script).

The format of the output file is documented in conformance/vectors/README.md.
"""

import argparse
import hashlib
import json
import re
import struct
import sys
import types
from pathlib import Path

import jcs

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "conformance" / "vectors" / "checksum.json"
GENERATOR_PATH = "conformance/tools/gen_checksum_vectors.py"
# Version of the vector files (all four share it; bump on any change of
# content or format) and the JSON Schema they follow, relative to the file.
VECTORS_VERSION = "2.0.0"
VECTORS_SCHEMA = "schema.json"
JCS_PACKAGE = "jcs 0.2.1"

# Integer literals are limited to this many decimal digits (CPython's default
# int/str conversion limit).  We enforce the limit ourselves and lift the
# interpreter's own limit so that the result does not depend on the
# PYTHONINTMAXSTRDIGITS environment variable.
MAX_INT_DIGITS = 4300
MAX_DEPTH = 128

if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)


# The draft's Section 5.3.2 reference code (normalize_prompt,
# compute_agent_checksum), verbatim, lives in draft_reference.py next to this
# file.  (compute_agent_checksum is only used for the self-check in
# crosscheck_draft_reference(); the python-ref profile below is an extension
# of it that also handles deep tools.)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from draft_reference import compute_agent_checksum, normalize_prompt  # noqa: E402



PROFILES = ("jcs", "python-ref")

ERROR_KINDS = {
    "invalid_json": "The document is not well-formed JSON (RFC 8259): syntax error, "
                    "truncated text, trailing data, NaN/Infinity literals, raw control "
                    "characters inside strings, invalid escapes, or invalid UTF-8.",
    "not_an_object": "The top-level JSON value is not an object.",
    "duplicate_key": "Some object, at any depth, contains the same member name twice "
                     "(compared after unescaping).",
    "nesting_too_deep": "Arrays/objects are nested more than 128 levels deep (the "
                        "top-level object is level 1).",
    "number_out_of_range": "A float literal overflows to +/-infinity as an IEEE-754 "
                           "double, or an integer literal has more than 4300 decimal "
                           "digits (sign not counted). Applies to the whole document, in "
                           "both profiles.",
    "unrepresentable_number": "jcs profile only: an integer literal (no fraction, no "
                              "exponent) whose exact value is not exactly representable "
                              "as an IEEE-754 double.",
    "missing_field": "A REQUIRED member is absent: agent_id, prompt/prompt_template "
                     "(neither present), tools, or a tool's name.",
    "invalid_type": "A member has the wrong JSON type (a null value is only accepted for "
                    "the optional members configuration, description, parameters, "
                    "signature, checksum_level, source_code and is_agent; is_agent must "
                    "be a boolean).",
    "invalid_agent_id": "agent_id does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ "
                        "(the whole string must match; a trailing newline is not allowed).",
    "conflicting_fields": "Both prompt and prompt_template are present.",
    "unknown_field": "A top-level member other than agent_id, prompt, prompt_template, "
                     "tools, configuration, or a tool member other than name, description, "
                     "parameters, signature, checksum_level, source_code, is_agent.",
    "invalid_tool_name": "A tool name is the empty string.",
    "duplicate_tool_name": "Two tools have the same name (exact code point equality, no "
                           "Unicode normalization).",
    "unknown_checksum_level": "checksum_level is a string other than \"shallow\" or \"deep\" "
                              "(case-sensitive).",
    "missing_source_code": "A deep tool has no source_code (absent or null).",
    "unexpected_source_code": "A shallow tool (explicitly or by default) has a non-null "
                              "source_code.",
}

FLAG_NOTES = {
    "DraftExample": "Derived from the example agent specification printed in Section 5.2.2.",
    "Minimal": "Smallest possible valid documents.",
    "Configuration": "Exercises the configuration member: absent vs null vs {} and its contents.",
    "NullOptional": "Optional members given an explicit null value, which must behave exactly "
                    "as if the member were absent.",
    "Defaults": "Relies on defaults: description \"\", parameters {}, checksum_level "
                "\"shallow\", configuration {} (both profiles).",
    "ShallowTool": "Shallow tools: name, description, parameters (jcs) or name, signature, "
                   "description (python-ref) are hashed; no source code.",
    "Signature": "The tool signature member: hashed by python-ref (null when absent), "
                 "validated but not hashed by jcs.",
    "DeepTool": "Deep tools (checksum_level \"deep\") whose source_code string is hashed "
                "verbatim.",
    "SubAgent": "The tool member is_agent (a boolean marking a tool that is itself an agent, "
                "as in the draft author's implementation): validated, never hashed by either "
                "profile, so the checksum is that of the same tool without it.",
    "Parameters": "The tool parameters member (JSON Schema: object or boolean): hashed by "
                  "jcs, validated but not hashed by python-ref.",
    "SortOrder": "Ordering: tools are sorted by name in Unicode code point order in both "
                 "profiles; object keys are sorted by UTF-16 code units (jcs, RFC 8785) or by "
                 "code point (python-ref, json.dumps sort_keys).",
    "NonBmp": "Characters outside the Basic Multilingual Plane (surrogate pairs in UTF-16), "
              "where UTF-16 and code point orders differ.",
    "Unicode": "Non-ASCII text: raw UTF-8 in jcs output, lowercase \\uXXXX escapes (surrogate "
               "pairs for non-BMP) in python-ref output.",
    "ControlCharacters": "Control characters and characters with special escaping: short "
                         "escapes \\b \\t \\n \\f \\r, \\u00XX for other C0 controls, DEL "
                         "(U+007F), quote, backslash, solidus, </script>, U+2028/U+2029.",
    "InputEscapes": "The input document spells characters with JSON \\u escapes (including "
                    "surrogate-pair escapes); the parsed string values, not their spelling, "
                    "are hashed.",
    "Whitespace": "Prompt normalization (Section 5.3.2 normalize_prompt).",
    "UnicodeWhitespace": "Prompt contains characters that Python's str.strip() and re \\s treat "
                         "as whitespace (str.isspace()), including U+001C..U+001F which many "
                         "other languages' trim functions do NOT strip.",
    "NotWhitespace": "Prompt contains characters that look blank but are NOT whitespace for "
                     "Python (U+200B, U+FEFF, U+180E) and therefore survive normalization.",
    "LineEndings": "CRLF and lone CR handling: only \\r\\n pairs become \\n; a lone \\r inside a "
                   "line survives, a \\r at a line edge is stripped as whitespace.",
    "NumberForm": "Number spellings: integer vs float literals, exponents, zeros, precision.",
    "LargeInteger": "Integer literals beyond 2^53 or with thousands of digits.",
    "Nesting": "Nesting depth limit (128 levels, top-level object = level 1).",
    "AgentId": "agent_id syntax ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$.",
    "EquivalentInput": "A different input that must produce exactly the same canonical bytes "
                       "and checksum as another vector in the same group (whose tcId is given in "
                       "the comment).",
    "ProfileDifference": "The two profiles disagree on this input: different validity, or one "
                         "profile's checksum changes where the other's does not.",
    "Invalid": "The document must be rejected with the given error kind.",
}

AGENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TOP_LEVEL_MEMBERS = {"agent_id", "prompt", "prompt_template", "tools", "configuration"}
TOOL_MEMBERS = {"name", "description", "parameters", "signature", "checksum_level", "source_code",
                "is_agent"}


class SpecError(Exception):
    """A rejected agent specification document.  Not a ValueError subclass so
    that json's own error handling never swallows it."""

    def __init__(self, kind, detail=""):
        assert kind in ERROR_KINDS, kind
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


# ---------------------------------------------------------------------------
# Parsing and validation (profile-independent except for number exactness)
# ---------------------------------------------------------------------------

def _pairs_hook(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise SpecError("duplicate_key", repr(key))
        seen.add(key)
    return dict(pairs)


def _make_parse_int(profile):
    def parse_int(literal):
        digits = len(literal) - (1 if literal.startswith("-") else 0)
        if digits > MAX_INT_DIGITS:
            raise SpecError("number_out_of_range", f"integer literal with {digits} digits")
        value = int(literal)
        if profile == "jcs":
            try:
                as_double = float(value)
            except OverflowError:
                raise SpecError("unrepresentable_number", literal[:40]) from None
            if int(as_double) != value:
                raise SpecError("unrepresentable_number", literal[:40])
        return value
    return parse_int


def _parse_float(literal):
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise SpecError("number_out_of_range", literal[:40])
    return value


def _parse_constant(name):
    # Python's json module accepts NaN, Infinity and -Infinity; JSON does not.
    raise SpecError("invalid_json", f"non-JSON literal {name}")


def _depth(value):
    """Nesting depth: a scalar is 0, an array/object is 1 + max depth of its values."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def parse_document(text, profile):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError("invalid_json", "invalid UTF-8") from exc
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_int=_make_parse_int(profile),
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise SpecError("invalid_json", str(exc)) from None
    if _depth(doc) > MAX_DEPTH:
        raise SpecError("nesting_too_deep")
    return doc


def _is_string(v):
    return isinstance(v, str)


def validate(doc):
    """Return a normalized agent spec dict or raise SpecError."""
    if not isinstance(doc, dict):
        raise SpecError("not_an_object", type(doc).__name__)
    for key in doc:
        if key not in TOP_LEVEL_MEMBERS:
            raise SpecError("unknown_field", repr(key))

    if "agent_id" not in doc:
        raise SpecError("missing_field", "agent_id")
    agent_id = doc["agent_id"]
    if not _is_string(agent_id):
        raise SpecError("invalid_type", "agent_id")
    if AGENT_ID_RE.fullmatch(agent_id) is None:
        raise SpecError("invalid_agent_id", repr(agent_id))

    has_prompt = "prompt" in doc
    has_template = "prompt_template" in doc
    if has_prompt and has_template:
        raise SpecError("conflicting_fields", "prompt and prompt_template")
    if not has_prompt and not has_template:
        raise SpecError("missing_field", "prompt")
    prompt = doc["prompt"] if has_prompt else doc["prompt_template"]
    if not _is_string(prompt):
        raise SpecError("invalid_type", "prompt")

    if "tools" not in doc:
        raise SpecError("missing_field", "tools")
    tools_in = doc["tools"]
    if not isinstance(tools_in, list):
        raise SpecError("invalid_type", "tools")

    configuration = doc.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        raise SpecError("invalid_type", "configuration")

    tools = []
    names = set()
    for tool in tools_in:
        if not isinstance(tool, dict):
            raise SpecError("invalid_type", "tool")
        for key in tool:
            if key not in TOOL_MEMBERS:
                raise SpecError("unknown_field", "tool." + repr(key))
        if "name" not in tool:
            raise SpecError("missing_field", "tool.name")
        name = tool["name"]
        if not _is_string(name):
            raise SpecError("invalid_type", "tool.name")
        if name == "":
            raise SpecError("invalid_tool_name")

        description = tool.get("description")
        if description is None:
            description = ""
        elif not _is_string(description):
            raise SpecError("invalid_type", "tool.description")

        parameters = tool.get("parameters")
        if parameters is None:
            parameters = {}
        elif not (isinstance(parameters, dict) or isinstance(parameters, bool)):
            raise SpecError("invalid_type", "tool.parameters")

        signature = tool.get("signature")
        if signature is not None and not _is_string(signature):
            raise SpecError("invalid_type", "tool.signature")

        level = tool.get("checksum_level")
        if level is None:
            level = "shallow"
        elif not _is_string(level):
            raise SpecError("invalid_type", "tool.checksum_level")
        elif level not in ("shallow", "deep"):
            raise SpecError("unknown_checksum_level", repr(level))

        source_code = tool.get("source_code")
        if source_code is not None and not _is_string(source_code):
            raise SpecError("invalid_type", "tool.source_code")
        # is_agent (spec I-62): a boolean, null = absent; validated, never hashed.
        # bool only: Python's bool is an int subclass, but 0/1 are not booleans.
        is_agent = tool.get("is_agent")
        if is_agent is not None and not isinstance(is_agent, bool):
            raise SpecError("invalid_type", "tool.is_agent")
        if level == "deep" and source_code is None:
            raise SpecError("missing_source_code", name)
        if level == "shallow" and source_code is not None:
            raise SpecError("unexpected_source_code", name)

        if name in names:
            raise SpecError("duplicate_tool_name", repr(name))
        names.add(name)
        tools.append({
            "name": name,
            "description": description,
            "parameters": parameters,
            "signature": signature,
            "checksum_level": level,
            "source_code": source_code,
            "is_agent": bool(is_agent),
        })

    return {
        "agent_id": agent_id,
        "prompt": prompt,
        "tools": tools,
        "configuration": configuration,
    }


# ---------------------------------------------------------------------------
# Canonicalization profiles
# ---------------------------------------------------------------------------

def _ints_to_floats(value):
    """JCS serializes every number as an IEEE-754 double.  bool is an int
    subclass in Python and must be left alone."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)  # exactness already checked by the parser
    if isinstance(value, dict):
        return {k: _ints_to_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints_to_floats(v) for v in value]
    return value


def canonical_jcs(spec):
    tools = []
    for t in spec["tools"]:
        entry = {"name": t["name"], "description": t["description"], "parameters": t["parameters"]}
        if t["checksum_level"] == "deep":
            entry["source_code"] = t["source_code"]
        tools.append(entry)
    tools.sort(key=lambda e: e["name"])  # code point order
    components = {
        "agent_id": spec["agent_id"],
        "prompt_template": normalize_prompt(spec["prompt"]),
        "tools": tools,
        "configuration": spec["configuration"] if spec["configuration"] is not None else {},
    }
    return jcs.canonicalize(_ints_to_floats(components))


def canonical_python_ref(spec):
    tools = []
    for t in spec["tools"]:
        entry = {"name": t["name"], "signature": t["signature"], "description": t["description"]}
        if t["checksum_level"] == "deep":
            entry["source_code"] = t["source_code"]
        tools.append(entry)
    components = {
        "id": spec["agent_id"],
        "prompt": normalize_prompt(spec["prompt"]),
        "tools": sorted(tools, key=lambda x: x["name"]),
        # spec I-61 (supersedes I-5): the reference code as deployed hashes {} for
        # an agent without configuration (hypernome/patchet's AgentComponents has
        # `configuration: Dict = {}`; auth51-checksum v1 `d.get("configuration", {}) or {}`).
        "config": spec["configuration"] if spec["configuration"] is not None else {},
    }
    return json.dumps(components, sort_keys=True).encode("utf-8")


CANONICALIZERS = {"jcs": canonical_jcs, "python-ref": canonical_python_ref}


def compute(text, profile):
    """Return ("valid", canonical_bytes, checksum) or ("invalid", kind)."""
    try:
        spec = validate(parse_document(text, profile))
    except SpecError as err:
        return ("invalid", err.kind)
    canonical = CANONICALIZERS[profile](spec)
    return ("valid", canonical, "sha256:" + hashlib.sha256(canonical).hexdigest())


# ---------------------------------------------------------------------------
# Helpers to write input documents
# ---------------------------------------------------------------------------

class Raw:
    """A JSON fragment inserted verbatim (to keep number spellings etc.)."""

    def __init__(self, text):
        self.text = text


def emit(value, ensure_ascii=False, compact=False):
    """Single-line JSON writer that keeps insertion order and Raw fragments."""
    item_sep, key_sep = (",", ":") if compact else (", ", ": ")
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + item_sep.join(
            json.dumps(k, ensure_ascii=ensure_ascii) + key_sep
            + emit(v, ensure_ascii, compact) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + item_sep.join(emit(v, ensure_ascii, compact) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def agent(prompt="You are a helpful assistant.", tools=(), agent_id="test-agent-1",
          configuration=None, prompt_key="prompt", ensure_ascii=False, **extra):
    """Build a document.  configuration=None means: omit the member."""
    d = {"agent_id": agent_id, prompt_key: prompt, "tools": list(tools)}
    if configuration is not None:
        d["configuration"] = configuration
    d.update(extra)
    return emit(d, ensure_ascii)


def config_doc(raw_configuration, agent_id="number-agent", tools=()):
    return agent(agent_id=agent_id, prompt="Numbers test.", tools=tools,
                 configuration=Raw(raw_configuration))


# ---------------------------------------------------------------------------
# Section 5.2.2 example
# ---------------------------------------------------------------------------

DRAFT_PROMPT_LINES = [
    "You are a security agent responsible for patching",
    "vulnerabilities in software dependencies. Analyze",
    "manifests, identify vulnerable packages, and generate",
    "patches. Always verify changes before committing.",
]
DRAFT_PROMPT_ONE_LINE = " ".join(DRAFT_PROMPT_LINES)
# The draft prints the prompt wrapped, continuation lines starting at column 12
# of the figure (after removing the draft's 7-column artwork margin).
DRAFT_PROMPT_LITERAL = ("\n" + " " * 12).join(DRAFT_PROMPT_LINES)

DRAFT_TOOLS_TEXT = """\
  "tools": [
    {
      "name": "read_manifest",
      "description": "Read package manifest file",
      "parameters": {
        "type": "object",
        "properties": {
          "file_path": {"type": "string"}
        },
        "required": ["file_path"]
      }
    },
    {
      "name": "check_vulnerability",
      "description": "Check package for known vulnerabilities",
      "parameters": {
        "type": "object",
        "properties": {
          "package": {"type": "string"},
          "version": {"type": "string"}
        },
        "required": ["package", "version"]
      }
    },
    {
      "name": "create_patch",
      "description": "Create patch for vulnerable package",
      "parameters": {
        "type": "object",
        "properties": {
          "package": {"type": "string"},
          "current_version": {"type": "string"},
          "target_version": {"type": "string"}
        },
        "required": ["package", "current_version", "target_version"]
      }
    }
  ],
  "configuration": {
    "model_name": "claude-3-5-sonnet-20241022",
    "temperature": 0.0,
    "max_tokens": 4096
  }
}"""


def draft_example(prompt, prompt_key="prompt", newline="\n"):
    text = ("{\n"
            '  "agent_id": "vulnerability-patcher-v1",\n'
            f'  {json.dumps(prompt_key)}: {json.dumps(prompt, ensure_ascii=False)},\n'
            + DRAFT_TOOLS_TEXT + "\n")
    return text.replace("\n", newline)


def draft_example_minified_reordered():
    tools = json.loads("{\n" + DRAFT_TOOLS_TEXT)  # {"tools": [...], "configuration": {...}}
    doc = {
        "configuration": {"max_tokens": 4096, "temperature": Raw("0E0"),
                          "model_name": "claude-3-5-sonnet-20241022"},
        "tools": [dict(reversed(list(t.items()))) for t in reversed(tools["tools"])],
        "prompt": DRAFT_PROMPT_ONE_LINE,
        "agent_id": "vulnerability-patcher-v1",
    }
    return emit(doc, compact=True)


# ---------------------------------------------------------------------------
# Test cases
#
# Each case: id (internal label), comment, flags, sections, input text,
# expect: {"jcs": "valid"|kind, "python-ref": "valid"|kind} (asserted),
# optional same_as / differs_from: {profile: other case id} (asserted),
# optional notes: {profile: extra comment}.
# ---------------------------------------------------------------------------

CASES = []


def case(cid, comment, flags, sections, text, expect="valid", same_as=None,
         differs_from=None, notes=None):
    if isinstance(expect, str):
        expect = {p: expect for p in PROFILES}
    if isinstance(same_as, str):
        same_as = {p: same_as for p in PROFILES}
    if isinstance(differs_from, str):
        differs_from = {p: differs_from for p in PROFILES}
    assert cid not in {c["id"] for c in CASES}, cid
    CASES.append({
        "id": cid, "comment": comment, "flags": list(flags), "sections": list(sections),
        "input": text, "expect": expect, "same_as": same_as or {},
        "differs_from": differs_from or {}, "notes": notes or {},
    })


def both(jcs_result, python_ref_result):
    return {"jcs": jcs_result, "python-ref": python_ref_result}


SIMPLE_TOOL = {"name": "search", "description": "Search the web",
               "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                              "required": ["q"]}}

DEEP_SOURCE = (
    "def read_manifest(file_path: str) -> dict:\n"
    "    with open(file_path, encoding='utf-8') as fh:\n"
    "        data = json.load(fh)\n"
    "    if not isinstance(data, dict):\n"
    "        raise ValueError('manifest must be an object')\n"
    "    return {k: v for k, v in data.items() if k != 'private'}"
)


def build_cases():
    # --- Section 5.2.2 draft example -------------------------------------
    case("draft-oneline",
         "Section 5.2.2 example exactly as printed, prompt reflowed onto one line with single spaces",
         ["DraftExample"], ["5.2.2"], draft_example(DRAFT_PROMPT_ONE_LINE))
    case("draft-oneline-template",
         "Section 5.2.2 example with the member spelled \"prompt_template\" instead of \"prompt\"; "
         "same result as the one-line \"prompt\" vector",
         ["DraftExample", "EquivalentInput"], ["5.2.2"],
         draft_example(DRAFT_PROMPT_ONE_LINE, "prompt_template"), same_as="draft-oneline")
    case("draft-literal",
         "Section 5.2.2 example keeping the draft's literal line breaks and 12-space "
         "continuation indentation inside the prompt (newlines survive normalization, "
         "indentation is stripped)",
         ["DraftExample", "Whitespace"], ["5.2.2"], draft_example(DRAFT_PROMPT_LITERAL),
         differs_from="draft-oneline")
    case("draft-literal-crlf",
         "Section 5.2.2 example with the literal prompt line breaks written as \\r\\n, tab "
         "indentation, and the whole document using CRLF line endings; same result as the "
         "literal-line-break vector",
         ["DraftExample", "Whitespace", "LineEndings", "EquivalentInput"], ["5.2.2"],
         draft_example("\r\n\t\t".join(DRAFT_PROMPT_LINES), newline="\r\n"),
         same_as="draft-literal")
    case("draft-minified",
         "Section 5.2.2 example minified, with members and tools in a different order and "
         "temperature written 0E0; same result as the one-line vector",
         ["DraftExample", "EquivalentInput", "SortOrder", "NumberForm"], ["5.2.2"],
         draft_example_minified_reordered(), same_as="draft-oneline")

    # --- Minimal / configuration -----------------------------------------
    case("minimal", "Minimal document: empty tools list, configuration absent",
         ["Minimal", "Configuration", "Defaults"], ["5.2.1"],
         '{"agent_id":"a","prompt":"p","tools":[]}')
    case("config-empty",
         "configuration is {}: identical to absent in both profiles (an absent configuration "
         "is hashed as {}, in python-ref as the deployed reference code does)",
         ["Minimal", "Configuration", "EquivalentInput"], ["5.2.1"],
         '{"agent_id":"a","prompt":"p","tools":[],"configuration":{}}', same_as="minimal")
    case("config-null", "configuration is null: identical to absent in both profiles",
         ["Minimal", "Configuration", "NullOptional", "EquivalentInput"], ["5.2.1"],
         '{"agent_id":"a","prompt":"p","tools":[],"configuration":null}', same_as="minimal")
    case("config-typical",
         "Typical configuration: model name, temperature 0.7, max_tokens 4096, top_p 0.95",
         ["Configuration", "NumberForm"], ["5.2.1"],
         config_doc('{"model_name": "gpt-4o-2024-08-06", "temperature": 0.7, '
                    '"max_tokens": 4096, "top_p": 0.95}', agent_id="config-agent"))
    case("config-mixed-values",
         "configuration with booleans, null, nested arrays and objects",
         ["Configuration", "NumberForm"], ["5.2.1"],
         config_doc('{"stream": true, "logprobs": false, "seed": null, '
                    '"stop": ["\\n", "END"], "weights": [1, 2.5, -3, 1e2], '
                    '"nested": {"b": [], "a": {}}}', agent_id="config-agent"))

    # --- Tools ----------------------------------------------------------------
    full_tool = {"name": "read_file", "description": "Read a file from disk",
                 "parameters": {"type": "object",
                                "properties": {"path": {"type": "string"}},
                                "required": ["path"]},
                 "signature": "(path: str) -> str", "checksum_level": "shallow"}
    case("tool-shallow-signature",
         "One shallow tool with every member given, including signature",
         ["ShallowTool", "Signature", "Parameters"], ["5.2.3", "5.2.4"],
         agent(tools=[full_tool]))
    no_sig = dict(full_tool)
    del no_sig["signature"]
    case("tool-shallow-no-signature",
         "Same tool without signature: jcs result unchanged (signature is not hashed), "
         "python-ref hashes \"signature\": null",
         ["ShallowTool", "Signature", "ProfileDifference"], ["5.2.3", "5.2.4"],
         agent(tools=[no_sig]), same_as={"jcs": "tool-shallow-signature"},
         differs_from={"python-ref": "tool-shallow-signature"})
    case("tool-name-only",
         "Tool with only a name: description \"\", parameters {}, shallow, no signature",
         ["ShallowTool", "Defaults"], ["5.2.1", "5.2.3"], agent(tools=[{"name": "ping"}]))
    case("tool-all-null",
         "Tool whose optional members are all null: same as the name-only tool",
         ["ShallowTool", "NullOptional", "Defaults", "EquivalentInput"], ["5.2.1", "5.2.3"],
         agent(tools=[{"name": "ping", "description": None, "parameters": None,
                       "signature": None, "checksum_level": None, "source_code": None}]),
         same_as="tool-name-only")
    case("tool-explicit-defaults",
         "Tool giving the default values explicitly (description \"\", parameters {}, "
         "checksum_level \"shallow\"): same as the name-only tool",
         ["ShallowTool", "Defaults", "EquivalentInput"], ["5.2.1", "5.2.3"],
         agent(tools=[{"checksum_level": "shallow", "parameters": {}, "description": "",
                       "name": "ping"}]),
         same_as="tool-name-only")
    case("tool-parameters-true",
         "parameters is the boolean JSON Schema true: changes jcs, invisible to python-ref "
         "(parameters are not hashed there)",
         ["ShallowTool", "Parameters", "ProfileDifference"], ["5.2.1"],
         agent(tools=[{"name": "ping", "parameters": True}]),
         same_as={"python-ref": "tool-name-only"}, differs_from={"jcs": "tool-name-only"})
    case("tool-parameters-false", "parameters is the boolean JSON Schema false",
         ["ShallowTool", "Parameters"], ["5.2.1"],
         agent(tools=[{"name": "ping", "parameters": False}]),
         differs_from={"jcs": "tool-parameters-true"})
    case("tool-deep",
         "One deep tool with multi-line Python source_code (hashed verbatim, no AST "
         "normalization by the checksum layer)",
         ["DeepTool"], ["5.2.3", "5.2.5"],
         agent(agent_id="vulnerability-patcher-v2",
               prompt="Patch vulnerable dependencies.",
               tools=[{"name": "read_manifest", "description": "Read package manifest file",
                       "parameters": {"type": "object",
                                      "properties": {"file_path": {"type": "string"}},
                                      "required": ["file_path"]},
                       "signature": "(file_path: str) -> dict",
                       "checksum_level": "deep", "source_code": DEEP_SOURCE}]))
    case("tool-deep-changed-source",
         "Same deep tool with one character of logic changed in source_code: checksum differs",
         ["DeepTool"], ["5.2.3", "5.2.5"],
         agent(agent_id="vulnerability-patcher-v2",
               prompt="Patch vulnerable dependencies.",
               tools=[{"name": "read_manifest", "description": "Read package manifest file",
                       "parameters": {"type": "object",
                                      "properties": {"file_path": {"type": "string"}},
                                      "required": ["file_path"]},
                       "signature": "(file_path: str) -> dict",
                       "checksum_level": "deep",
                       "source_code": DEEP_SOURCE.replace("!= 'private'", "== 'private'")}]),
         differs_from="tool-deep")
    case("tool-deep-empty-source",
         "Deep tool whose source_code is the empty string (present, so valid)",
         ["DeepTool"], ["5.2.3"],
         agent(tools=[{"name": "noop", "checksum_level": "deep", "source_code": ""}]))
    case("tools-mixed-deep-shallow",
         "Deep and shallow tools mixed, given unsorted; source_code only appears for the "
         "deep tool, null source_code on a shallow tool is ignored",
         ["DeepTool", "ShallowTool", "SortOrder", "NullOptional", "Signature"],
         ["5.2.3", "5.2.5"],
         agent(agent_id="mixed-agent", prompt="Use the tools wisely.",
               tools=[{"name": "write_file", "description": "Write a file",
                       "signature": "(path: str, data: str) -> None",
                       "checksum_level": "deep",
                       "source_code": "def write_file(path, data):\n"
                                      "    with open(path, 'w') as f:\n"
                                      "        f.write(data)\n"},
                      {"name": "list_dir", "description": "List a directory",
                       "parameters": {"type": "object",
                                      "properties": {"path": {"type": "string"}}},
                       "source_code": None},
                      {"name": "delete_file", "description": "Delete a file",
                       "checksum_level": "deep",
                       "source_code": "def delete_file(path):\n\timport os\n\tos.remove(path)"}]))

    # --- Sort order ------------------------------------------------------------
    case("sort-ascii-names",
         "Tools given unsorted; sorted by code point: digits < uppercase < '_' < lowercase, "
         "'10' < '9', 'a' < 'alpha' < 'alpha2'",
         ["SortOrder"], ["5.2.1"],
         agent(tools=[{"name": n, "description": "tool " + n}
                      for n in ["zeta", "alpha", "Beta", "_under", "9", "10", "alpha2", "a"]]))
    case("sort-utf16-vs-codepoint-names",
         "Tool names whose order differs between UTF-16 code units and code points: "
         "'\\ue000x' < '\\uff61x' < '\\U0001f600x' by code point (used by both profiles), "
         "while UTF-16 would put the emoji first",
         ["SortOrder", "NonBmp", "Unicode"], ["5.2.1"],
         agent(tools=[{"name": "\U0001F600x", "description": "emoji"},
                      {"name": "\uff61x", "description": "halfwidth ideographic full stop"},
                      {"name": "\ue000x", "description": "private use"}]))
    case("sort-nfc-nfd-names",
         "Tool names 'caf\\u00e9' (NFC) and 'cafe\\u0301' (NFD) are distinct names (no Unicode "
         "normalization); 'cafe\\u0301' sorts first",
         ["SortOrder", "Unicode"], ["5.2.1"],
         agent(tools=[{"name": "caf\u00e9", "description": "NFC"},
                      {"name": "cafe\u0301", "description": "NFD"}]))
    case("sort-nonbmp-config-keys",
         "configuration keys whose order differs: JCS sorts by UTF-16 code units "
         "(a, \\u00e9, \\U0001f600, \\ue000, \\ufb33), python-ref by code point "
         "(a, \\u00e9, \\ue000, \\ufb33, \\U0001f600)",
         ["SortOrder", "NonBmp", "Configuration", "ProfileDifference"], ["5.2.1"],
         agent(agent_id="key-order", prompt="Key order.",
               configuration={"\ufb33": "hebrew dalet with dagesh", "\U0001F600": "grinning face",
                              "a": "ascii", "\ue000": "private use", "\u00e9": "e acute"}))
    case("sort-nonbmp-parameter-keys",
         "Nested object keys inside tool parameters and configuration, including the empty "
         "key, 'a\\u0000', upper/lower case and non-BMP keys",
         ["SortOrder", "NonBmp", "Parameters"], ["5.2.1"],
         agent(agent_id="key-order-2", prompt="Key order.",
               tools=[{"name": "t", "parameters": {
                   "type": "object",
                   "properties": {"\U0001F600": {"type": "string"},
                                  "\ufb33": {"type": "integer"},
                                  "b": {"type": "boolean"}, "B": {}, "": {},
                                  "a\u0000": {}, "a": {}}}}],
               configuration={"z": {"\U0001D11E": 1, "\uffff": 2, "\U00010000": 3}}))

    # --- Strings / escaping -------------------------------------------------------
    unicode_cfg = {"greeting": "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, \U0001F600, "
                               "\u0645\u0631\u062d\u0628\u0627, \U0001D11E"}
    case("unicode-text",
         "Non-ASCII text in prompt, description and configuration: raw UTF-8 in jcs, "
         "lowercase \\uXXXX escapes with surrogate pairs in python-ref",
         ["Unicode", "NonBmp"], ["5.2.1"],
         agent(agent_id="unicode-agent",
               prompt="R\u00e9ponds en fran\u00e7ais \U0001F1EB\U0001F1F7 \u2014 \u00bfok?",
               tools=[{"name": "\u7ffb\u8a33", "description": "\u7ffb\u8a33\u3059\u308b \U0001F4DA"}],
               configuration=unicode_cfg))
    case("unicode-text-escaped",
         "Same document as the Unicode vector but every non-ASCII character written as a JSON "
         "\\u escape (surrogate pairs for non-BMP); same result",
         ["Unicode", "NonBmp", "InputEscapes", "EquivalentInput"], ["5.2.1"],
         agent(agent_id="unicode-agent",
               prompt="R\u00e9ponds en fran\u00e7ais \U0001F1EB\U0001F1F7 \u2014 \u00bfok?",
               tools=[{"name": "\u7ffb\u8a33", "description": "\u7ffb\u8a33\u3059\u308b \U0001F4DA"}],
               configuration=unicode_cfg, ensure_ascii=True),
         same_as="unicode-text")
    ctrl = "nul\u0000 soh\u0001 bs\b tab\t lf\n vt\u000b ff\f cr\r us\u001f del\u007f quote\" backslash\\ solidus/ </script> ls\u2028 ps\u2029 bom\ufeff"
    case("control-characters",
         "Control and special characters in description and configuration strings: "
         "\\u0000 \\u0001 \\b \\t \\n \\u000b \\f \\r \\u001f DEL quote backslash solidus "
         "</script> U+2028 U+2029 U+FEFF",
         ["ControlCharacters", "Unicode", "InputEscapes"], ["5.2.1"],
         agent(agent_id="ctrl-agent", prompt="Handle </script> and DEL \u007f safely.",
               tools=[{"name": "echo", "description": ctrl}],
               configuration={"raw": ctrl, "html": "</script><script>alert(1)</script>"}))
    case("control-characters-in-names",
         "Control characters inside a tool name and a configuration key (allowed: only the "
         "empty tool name is rejected)",
         ["ControlCharacters", "SortOrder"], ["5.2.1"],
         agent(agent_id="ctrl-agent-2", prompt="p",
               tools=[{"name": "tab\there"}, {"name": "line\nbreak"}, {"name": "del\u007f"}],
               configuration={"key\u0000nul": 0, "key\u007fdel": 1, "key\tq": 2}))

    # --- Prompt whitespace -------------------------------------------------------
    def wcase(cid, comment, prompt, flags=(), **kw):
        case(cid, comment, ["Whitespace"] + list(flags), ["5.3.2"],
             agent(agent_id="ws-agent", prompt=prompt, ensure_ascii=kw.pop("ensure_ascii", False)),
             **kw)

    wcase("ws-none", "Prompt needing no normalization (baseline for the whitespace vectors)",
          "Hello world")
    wcase("ws-spaces-tabs", "Leading/trailing spaces and tabs are stripped",
          " \t  Hello world\t \t", same_as="ws-none")
    wcase("ws-interior-runs",
          "Runs of spaces and tabs INSIDE a line are preserved (no intra-line collapsing)",
          "Hello  \t  world", differs_from="ws-none")
    wcase("ws-vt-ff", "\\v and \\f are stripped at the edges; an interior \\f survives",
          "\u000b\fHello\fworld\f\u000b")
    wcase("ws-crlf", "\\r\\n line endings become \\n; blank CRLF lines are removed",
          "line one\r\nline two\r\n\r\n\r\nline three\r\n", flags=["LineEndings"])
    wcase("ws-lf-equivalent", "The \\n spelling of the CRLF prompt: same result",
          "line one\nline two\nline three", flags=["LineEndings", "EquivalentInput"],
          same_as="ws-crlf")
    wcase("ws-lone-cr",
          "A lone \\r inside a line survives (it is not a line break); a \\r at the end of a "
          "line is stripped by line.strip()",
          "alpha\rbeta\ngamma\r\ndelta\r", flags=["LineEndings"])
    wcase("ws-info-separators",
          "U+001C..U+001F are whitespace for Python: stripped at the edges, a line holding only "
          "them is removed, but they survive inside a line",
          "\u001c\u001dHello\u001eworld\u001f\n\u001e\u001f\nsecond\u001c", flags=["UnicodeWhitespace"])
    wcase("ws-nel-nbsp",
          "U+0085 (NEL) and U+00A0 (NBSP) are stripped at edges, kept inside a line; NEL is not "
          "a line separator for split('\\n')",
          "\u0085\u00a0Hello\u00a0world\u0085again\u00a0\u0085", flags=["UnicodeWhitespace"])
    wcase("ws-ogham-en-quad",
          "U+1680 and U+2000..U+200A are stripped at the edges and kept inside a line",
          "\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "Hello"
          + "\u2002world\u2009" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u1680",
          flags=["UnicodeWhitespace"])
    wcase("ws-ls-ps",
          "U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR are whitespace but not line "
          "breaks: stripped at the edges, kept inside a line, whitespace-only lines removed",
          "\u2028Hello\u2028world\u2029\n\u2029\u2028\nnext\u2029", flags=["UnicodeWhitespace"])
    wcase("ws-nnbsp-mmsp-ideographic",
          "U+202F, U+205F and U+3000 are stripped at the edges and kept inside a line",
          "\u3000\u202fHello\u205fworld\u3000\u205f\u202f", flags=["UnicodeWhitespace"])
    wcase("ws-ideographic-escaped",
          "Same prompt written with \\u escapes in the document: same result",
          "\u3000\u202fHello\u205fworld\u3000\u205f\u202f",
          flags=["UnicodeWhitespace", "InputEscapes", "EquivalentInput"], ensure_ascii=True,
          same_as="ws-nnbsp-mmsp-ideographic")
    wcase("ws-not-whitespace",
          "U+200B ZERO WIDTH SPACE, U+FEFF and U+180E are NOT whitespace for Python: they "
          "survive even at the edges of the prompt and of lines",
          "\u200bHello world\u200b\n\ufeffline\u180e", flags=["NotWhitespace"],
          differs_from="ws-none")
    wcase("ws-blank-lines",
          "Blank lines and whitespace-only lines (spaces, tabs, \\u3000) are removed; lines are "
          "stripped",
          "\n\nfirst line  \n\n\n   \t  \n  second line\n\u3000\n\t third line\t\n\n",
          flags=["UnicodeWhitespace"])
    wcase("ws-indented-block",
          "An indented multi-line prompt: every line's indentation is removed",
          "    You are an agent.\n        Rule 1: be safe.\n        Rule 2: be helpful.\n    End.")
    wcase("ws-empty", "Empty prompt normalizes to the empty string", "")
    wcase("ws-only-whitespace",
          "Whitespace-only prompt (all kinds) normalizes to the empty string, same as the "
          "empty prompt",
          " \t\r\n\u000b\f\u001c\u001d\u001e\u001f\u0085\u00a0\u1680\u2000\u200a\u2028\u2029"
          "\u202f\u205f\u3000\r\n \n",
          flags=["UnicodeWhitespace", "EquivalentInput"], same_as="ws-empty")
    wcase("ws-all-classes-mixed",
          "Every whitespace class at line edges of a multi-line prompt, plus U+200B which "
          "survives",
          "\t Line A \u00a0\r\n\u2003 Line B\u000b\r\n\u001f\r\n\u0085Line\u3000C\u200b \n"
          "\u2029\n\fLine D\r", flags=["UnicodeWhitespace", "NotWhitespace", "LineEndings"])

    # --- Numbers ------------------------------------------------------------------
    def ncase(cid, comment, raw_cfg, flags=(), **kw):
        case(cid, comment, ["NumberForm", "Configuration"] + list(flags), [],
             config_doc(raw_cfg), **kw)

    ncase("num-zeros", "Zeros: 0, -0 (integer literal), -0.0 and 0.0; jcs prints all as 0",
          '{"zero": 0, "neg_zero_int": -0, "neg_zero_float": -0.0, "zero_float": 0.0}')
    ncase("num-hundred",
          "One hundred spelled 100, 100.0, 1E2, 1e2, 1E+2 and 1.5 spelled 1.50 / 1.5 / 15e-1",
          '{"a": 100, "b": 100.0, "c": 1E2, "d": 1e2, "e": 1E+2, '
          '"f": 1.50, "g": 1.5, "h": 15e-1}')
    ncase("num-exponents",
          "Exponent forms: 1e21, 1e20, 1e-7, 1e+16, 1e16, 1e-5, 0.0001, 1E-6, 2.5E-3",
          '{"e21": 1e21, "e20": 1e20, "e_minus7": 1e-7, "e_plus16": 1e+16, "e16": 1e16, '
          '"e_minus5": 1e-5, "e_minus4": 0.0001, "e_minus6": 1E-6, "x": 2.5E-3}')
    ncase("num-decimals",
          "Decimals: 0.1, 333333333.33333329, temperature 0.7, max_tokens 4096, "
          "1424953923781206.25 (ties-to-even), 9.999999999999997e-7, 1e23",
          '{"tenth": 0.1, "third": 333333333.33333329, "temperature": 0.7, '
          '"max_tokens": 4096, "even": 1424953923781206.25, '
          '"small": 9.999999999999997e-7, "big": 1e23}')
    ncase("num-safe-integers",
          "Integers at the 2^53 boundary that ARE exactly representable: 2^53-1, 2^53, "
          "2^53+2, -2^53",
          '{"max_safe": 9007199254740991, "two53": 9007199254740992, '
          '"two53p2": 9007199254740994, "neg_two53": -9007199254740992}', flags=["LargeInteger"])
    ncase("num-2pow53-plus1",
          "Integer literal 9007199254740993 (2^53+1): exact big int in python-ref, not "
          "representable as a double in jcs",
          '{"n": 9007199254740993}', flags=["LargeInteger", "ProfileDifference"],
          expect=both("unrepresentable_number", "valid"))
    ncase("num-neg-2pow53-plus1",
          "Integer literal -9007199254740993: valid in python-ref, unrepresentable in jcs",
          '{"n": -9007199254740993}', flags=["LargeInteger", "ProfileDifference"],
          expect=both("unrepresentable_number", "valid"))
    ncase("num-30-digits",
          "Integer literal 123456789012345678901234567890: exact in python-ref, "
          "unrepresentable in jcs",
          '{"n": 123456789012345678901234567890}', flags=["LargeInteger", "ProfileDifference"],
          expect=both("unrepresentable_number", "valid"))
    ncase("num-powers-of-two",
          "Integer literals 2^68 = 295147905179352825856 and 2^70 = 1180591620717411303424 "
          "and 10^21: exactly representable, so valid in jcs (printed 295147905179352830000, "
          "1.1805916207174113e+21, 1e+21); python-ref prints them exactly",
          '{"two68": 295147905179352825856, "two70": 1180591620717411303424, '
          '"ten21": 1000000000000000000000}', flags=["LargeInteger"])
    ncase("num-float-literal-2pow53-plus1",
          "FLOAT literal 9007199254740993.0 rounds to 9007199254740992.0 and is valid in both "
          "profiles (the exactness rule applies to integer literals only)",
          '{"n": 9007199254740993.0}', flags=["LargeInteger"])
    ncase("num-extremes",
          "Extreme doubles: 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308",
          '{"min": 5e-324, "neg_min": -5e-324, "max": 1.7976931348623157e308, '
          '"neg_max": -1.7976931348623157e308}')
    ncase("num-underflow",
          "Float literals 1e-400 and -1e-400 underflow to 0.0 and -0.0 (valid, not an error)",
          '{"tiny": 1e-400, "neg_tiny": -1e-400}')
    ncase("num-overflow",
          "Float literal 1e400 overflows to infinity: number_out_of_range in both profiles",
          '{"huge": 1e400}', expect="number_out_of_range")
    ncase("num-neg-overflow",
          "Float literal -1e400 overflows to -infinity: number_out_of_range",
          '{"huge": -1e400}', expect="number_out_of_range")
    ncase("num-overflow-just-above-max",
          "Float literal 1.7976931348623159e308 rounds to infinity: number_out_of_range",
          '{"huge": 1.7976931348623159e308}', expect="number_out_of_range")
    big4300 = "9" + "0" * 4298 + "1"
    ncase("num-4300-digits",
          "Integer literal with exactly 4300 digits: valid exact int in python-ref, "
          "unrepresentable in jcs",
          '{"n": %s}' % big4300, flags=["LargeInteger", "ProfileDifference"],
          expect=both("unrepresentable_number", "valid"))
    ncase("num-neg-4300-digits",
          "Negative integer literal with 4300 digits (the sign is not counted): valid in "
          "python-ref, unrepresentable in jcs",
          '{"n": -%s}' % big4300, flags=["LargeInteger", "ProfileDifference"],
          expect=both("unrepresentable_number", "valid"))
    ncase("num-4301-digits",
          "Integer literal with 4301 digits: number_out_of_range in both profiles",
          '{"n": %s}' % ("1" + "0" * 4300), flags=["LargeInteger"],
          expect="number_out_of_range")
    case("num-unrepresentable-in-parameters",
         "Integer literal 9007199254740993 inside tool parameters: jcs rejects it; python-ref "
         "accepts (parameters are not hashed there) and matches the parameter-less tool",
         ["NumberForm", "LargeInteger", "Parameters", "ProfileDifference"], [],
         agent(tools=[{"name": "ping",
                       "parameters": {"type": "integer", "maximum": Raw("9007199254740993")}}]),
         expect=both("unrepresentable_number", "valid"),
         same_as={"python-ref": "tool-name-only"})
    case("num-overflow-in-parameters",
         "Float literal 1e400 inside tool parameters: number_out_of_range in BOTH profiles "
         "(number checks apply to the whole document, even to members python-ref does not hash)",
         ["NumberForm", "Parameters"], [],
         agent(tools=[{"name": "ping",
                       "parameters": {"type": "number", "maximum": Raw("1e400")}}]),
         expect="number_out_of_range")

    # --- Nesting ------------------------------------------------------------------------
    # top-level object = 1, configuration object = 2, k nested arrays -> 2 + k
    case("nesting-128",
         "Nesting depth exactly 128 (top-level object, configuration object, 126 nested "
         "arrays): valid",
         ["Nesting", "Configuration"], ["5.2.1"],
         config_doc('{"deep": ' + "[" * 126 + "]" * 126 + "}", agent_id="deep-agent"))
    case("nesting-129",
         "Nesting depth 129 (one more array): nesting_too_deep",
         ["Nesting", "Configuration"], ["5.2.1"],
         config_doc('{"deep": ' + "[" * 127 + "]" * 127 + "}", agent_id="deep-agent"),
         expect="nesting_too_deep")
    # top(1) tools array(2) tool(3) parameters(4) + k nested objects
    case("nesting-129-parameters",
         "Nesting depth 129 made of objects inside tool parameters: nesting_too_deep",
         ["Nesting", "Parameters"], ["5.2.1"],
         agent(agent_id="deep-agent", tools=[{"name": "t", "parameters": Raw(
             '{"a": ' * 125 + "{}" + "}" * 125)}]),
         expect="nesting_too_deep")

    # --- agent_id --------------------------------------------------------------------------
    case("agent-id-128",
         "agent_id of 128 characters (the maximum), using every allowed character class",
         ["AgentId"], ["5.2.1"],
         agent(agent_id="A0._-" + "x" * 123, prompt="p"))
    case("agent-id-single-digit", "agent_id '7': a single leading digit is valid",
         ["AgentId", "Minimal"], ["5.2.1"], agent(agent_id="7", prompt="p"))

    def aid_invalid(cid, comment, aid):
        case(cid, comment, ["AgentId"], ["5.2.1"], agent(agent_id=aid, prompt="p"),
             expect="invalid_agent_id")

    aid_invalid("agent-id-empty", "agent_id is the empty string", "")
    aid_invalid("agent-id-pipe", "agent_id contains '|'", "agent|1")
    aid_invalid("agent-id-space", "agent_id contains a space", "my agent")
    aid_invalid("agent-id-129", "agent_id of 129 characters", "a" * 129)
    aid_invalid("agent-id-leading-hyphen", "agent_id starts with '-'", "-agent")
    aid_invalid("agent-id-leading-dot", "agent_id starts with '.'", ".agent")
    aid_invalid("agent-id-trailing-newline",
                "agent_id 'agent\\n': the pattern must match the WHOLE string (a regex '$' "
                "that matches before a final newline is a bug)", "agent\n")
    aid_invalid("agent-id-non-ascii", "agent_id contains a non-ASCII letter", "ag\u00e9nt")
    aid_invalid("agent-id-slash", "agent_id contains '/'", "org/agent")

    # --- Invalid: JSON syntax -------------------------------------------------------------
    def inv(cid, comment, text, kind, flags=(), sections=("5.2.1",)):
        case(cid, comment, list(flags), list(sections), text, expect=kind)

    inv("json-empty", "Empty document", "", "invalid_json")
    inv("json-truncated", "Truncated document", '{"agent_id": "a", "prompt": "p", "tools": [',
        "invalid_json")
    inv("json-trailing-comma", "Trailing comma in an object",
        '{"agent_id": "a", "prompt": "p", "tools": [],}', "invalid_json")
    inv("json-trailing-data", "Valid object followed by extra data",
        '{"agent_id": "a", "prompt": "p", "tools": []} {}', "invalid_json")
    inv("json-single-quotes", "Single-quoted strings",
        "{'agent_id': 'a', 'prompt': 'p', 'tools': []}", "invalid_json")
    inv("json-comment", "A // comment is not JSON",
        '{"agent_id": "a", // id\n "prompt": "p", "tools": []}', "invalid_json")
    inv("json-raw-newline-in-string",
        "Raw (unescaped) line feed inside a string", '{"agent_id": "a", "prompt": "line1\nline2", "tools": []}',
        "invalid_json")
    inv("json-nan", "NaN literal (accepted by some parsers, not JSON)",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": {"t": NaN}}',
        "invalid_json", flags=["NumberForm"])
    inv("json-infinity", "Infinity literal",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": {"t": -Infinity}}',
        "invalid_json", flags=["NumberForm"])
    inv("json-leading-zero", "Number with a leading zero (01)",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": {"t": 01}}',
        "invalid_json", flags=["NumberForm"])
    inv("json-bare-fraction", "Number without integer part (.5)",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": {"t": .5}}',
        "invalid_json", flags=["NumberForm"])
    inv("json-bad-escape", "Invalid string escape \\x41",
        '{"agent_id": "a", "prompt": "\\x41", "tools": []}', "invalid_json")

    # --- Invalid: structure -----------------------------------------------------------------
    inv("top-array", "Top-level value is an array", '[{"agent_id": "a", "prompt": "p", "tools": []}]',
        "not_an_object")
    inv("top-string", "Top-level value is a string", '"agent"', "not_an_object")
    inv("top-null", "Top-level value is null", "null", "not_an_object")
    inv("top-number", "Top-level value is a number", "42", "not_an_object")

    inv("dup-top", "agent_id appears twice at the top level",
        '{"agent_id": "a", "agent_id": "a", "prompt": "p", "tools": []}', "duplicate_key")
    inv("dup-escaped", "Duplicate key spelled differently: \"prompt\" and \"pr\\u006fmpt\"",
        '{"agent_id": "a", "prompt": "p", "pr\\u006fmpt": "p", "tools": []}', "duplicate_key",
        flags=["InputEscapes"])
    inv("dup-configuration", "Duplicate key inside a nested configuration object",
        '{"agent_id": "a", "prompt": "p", "tools": [], '
        '"configuration": {"model": {"name": "x", "name": "y"}}}', "duplicate_key",
        flags=["Configuration"])
    inv("dup-parameters", "Duplicate key deep inside tool parameters",
        '{"agent_id": "a", "prompt": "p", "tools": [{"name": "t", "parameters": '
        '{"type": "object", "properties": {"q": {"type": "string", "type": "integer"}}}}]}',
        "duplicate_key", flags=["Parameters"])
    inv("dup-tool-member", "A tool object has \"name\" twice",
        '{"agent_id": "a", "prompt": "p", "tools": [{"name": "t", "name": "u"}]}',
        "duplicate_key")

    inv("missing-agent-id", "agent_id absent", '{"prompt": "p", "tools": []}', "missing_field")
    inv("missing-prompt", "Neither prompt nor prompt_template present",
        '{"agent_id": "a", "tools": []}', "missing_field")
    inv("missing-tools", "tools absent", '{"agent_id": "a", "prompt": "p"}', "missing_field")
    inv("missing-tool-name", "A tool without name",
        '{"agent_id": "a", "prompt": "p", "tools": [{"description": "d"}]}', "missing_field")

    inv("conflict-prompt", "Both prompt and prompt_template present (same value)",
        '{"agent_id": "a", "prompt": "p", "prompt_template": "p", "tools": []}',
        "conflicting_fields")
    inv("conflict-prompt-empty", "Both prompt and prompt_template present, one empty",
        '{"agent_id": "a", "prompt": "", "prompt_template": "p", "tools": []}',
        "conflicting_fields")

    def tinv(cid, comment, member_text, kind, flags=()):
        inv(cid, comment, '{"agent_id": "a", "prompt": "p", "tools": [' + member_text + ']}',
            kind, flags)

    inv("type-agent-id-number", "agent_id is a number",
        '{"agent_id": 42, "prompt": "p", "tools": []}', "invalid_type")
    inv("type-agent-id-null", "agent_id is null (null is not accepted for REQUIRED members)",
        '{"agent_id": null, "prompt": "p", "tools": []}', "invalid_type", flags=["NullOptional"])
    inv("type-prompt-number", "prompt is a number",
        '{"agent_id": "a", "prompt": 5, "tools": []}', "invalid_type")
    inv("type-prompt-null", "prompt is null", '{"agent_id": "a", "prompt": null, "tools": []}',
        "invalid_type", flags=["NullOptional"])
    inv("type-prompt-template-array", "prompt_template is an array",
        '{"agent_id": "a", "prompt_template": ["p"], "tools": []}', "invalid_type")
    inv("type-tools-object", "tools is an object",
        '{"agent_id": "a", "prompt": "p", "tools": {"name": "t"}}', "invalid_type")
    inv("type-tools-null", "tools is null", '{"agent_id": "a", "prompt": "p", "tools": null}',
        "invalid_type", flags=["NullOptional"])
    inv("type-configuration-array", "configuration is an array",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": []}', "invalid_type",
        flags=["Configuration"])
    inv("type-configuration-string", "configuration is a string",
        '{"agent_id": "a", "prompt": "p", "tools": [], "configuration": "x"}', "invalid_type",
        flags=["Configuration"])
    tinv("type-tool-string", "A tools element is a string", '"search"', "invalid_type")
    tinv("type-tool-null", "A tools element is null", "null", "invalid_type")
    tinv("type-tool-name-number", "Tool name is a number", '{"name": 1}', "invalid_type")
    tinv("type-tool-name-null", "Tool name is null", '{"name": null}', "invalid_type")
    tinv("type-description-number", "Tool description is a number",
         '{"name": "t", "description": 5}', "invalid_type")
    tinv("type-parameters-string", "Tool parameters is a string",
         '{"name": "t", "parameters": "object"}', "invalid_type", ["Parameters"])
    tinv("type-parameters-array", "Tool parameters is an array",
         '{"name": "t", "parameters": []}', "invalid_type", ["Parameters"])
    tinv("type-parameters-number", "Tool parameters is a number",
         '{"name": "t", "parameters": 1}', "invalid_type", ["Parameters"])
    tinv("type-signature-number", "Tool signature is a number",
         '{"name": "t", "signature": 5}', "invalid_type", ["Signature"])
    tinv("type-checksum-level-bool", "Tool checksum_level is a boolean",
         '{"name": "t", "checksum_level": true}', "invalid_type")
    tinv("type-source-code-number", "Deep tool whose source_code is a number",
         '{"name": "t", "checksum_level": "deep", "source_code": 5}', "invalid_type",
         ["DeepTool"])

    inv("unknown-top-level", "Unknown top-level member \"version\"",
        '{"agent_id": "a", "prompt": "p", "tools": [], "version": "1"}', "unknown_field")
    inv("unknown-top-level-case", "Member names are case-sensitive: \"Agent_ID\"",
        '{"agent_id": "a", "Agent_ID": "a", "prompt": "p", "tools": []}', "unknown_field")
    tinv("unknown-tool-member", "Unknown tool member \"type\"",
         '{"name": "t", "type": "function"}', "unknown_field")
    tinv("unknown-tool-member-null", "Unknown tool member with a null value is still unknown",
         '{"name": "t", "deprecated": null}', "unknown_field", ["NullOptional"])

    tinv("tool-name-empty", "Tool name is the empty string", '{"name": ""}', "invalid_tool_name")

    tinv("level-capitalized", "checksum_level \"Deep\" (case-sensitive)",
         '{"name": "t", "checksum_level": "Deep", "source_code": "pass"}',
         "unknown_checksum_level", ["DeepTool"])
    tinv("level-unknown", "checksum_level \"full\"",
         '{"name": "t", "checksum_level": "full"}', "unknown_checksum_level")
    tinv("level-empty", "checksum_level is the empty string",
         '{"name": "t", "checksum_level": ""}', "unknown_checksum_level")

    tinv("deep-no-source", "Deep tool without source_code",
         '{"name": "t", "checksum_level": "deep"}', "missing_source_code", ["DeepTool"])
    tinv("deep-null-source", "Deep tool with source_code null (null = absent)",
         '{"name": "t", "checksum_level": "deep", "source_code": null}', "missing_source_code",
         ["DeepTool", "NullOptional"])
    tinv("shallow-with-source", "Explicitly shallow tool with source_code",
         '{"name": "t", "checksum_level": "shallow", "source_code": "def t(): pass"}',
         "unexpected_source_code", ["ShallowTool"])
    tinv("default-with-source", "Tool defaulting to shallow (no checksum_level) with source_code",
         '{"name": "t", "source_code": "def t(): pass"}', "unexpected_source_code",
         ["ShallowTool", "Defaults"])
    tinv("null-level-with-source",
         "checksum_level null (= shallow) with source_code",
         '{"name": "t", "checksum_level": null, "source_code": ""}', "unexpected_source_code",
         ["ShallowTool", "NullOptional"])

    tinv("dup-tool-name", "Two tools named \"search\"",
         '{"name": "search"}, {"name": "search", "description": "again"}', "duplicate_tool_name")
    tinv("dup-tool-name-escaped", "Tool names \"a\" and \"\\u0061\" are the same name",
         '{"name": "a"}, {"name": "\\u0061"}', "duplicate_tool_name", ["InputEscapes"])

    # --- Sub-agent tools (is_agent, spec I-62) ---------------------------------------
    # Appended last so that the tcIds of the earlier jcs vectors stay as they were.
    # The draft author's implementation (hypernome/patchet, intentmodel.Tool) marks a
    # tool that is itself an agent with is_agent; its _prepare_tool never hashes it.
    def subagent_doc(marker=None, extra=None):
        planner = {"name": "patch-planner", "description": "Plan the patches (a sub-agent)",
                   "signature": "(state: dict) -> dict"}
        if marker is not None:
            planner["is_agent"] = marker
        if extra:
            planner.update(extra)
        return agent(agent_id="supervisor-agent", prompt="Delegate to the planner.",
                     tools=[planner, {"name": "read_manifest",
                                      "description": "Read package manifest file",
                                      "signature": "(file_path: str) -> dict",
                                      "is_agent": False}])

    case("subagent-base",
         "Supervisor with a sub-agent tool and an ordinary tool, no configuration (the shape of "
         "every agent of the draft author's implementation); the ordinary tool carries "
         "\"is_agent\": false",
         ["SubAgent", "ShallowTool", "Signature", "Configuration"], ["5.2.1", "5.2.3"],
         subagent_doc())
    case("subagent-true",
         "The same supervisor with the sub-agent tool marked \"is_agent\": true: is_agent is "
         "not hashed, same result",
         ["SubAgent", "ShallowTool", "EquivalentInput"], ["5.2.1", "5.2.3"],
         subagent_doc(True), same_as="subagent-base")
    case("subagent-null",
         "\"is_agent\": null means absent: same result",
         ["SubAgent", "NullOptional", "EquivalentInput"], ["5.2.1", "5.2.3"],
         subagent_doc(None, {"is_agent": None}), same_as="subagent-base")
    case("subagent-deep",
         "A deep sub-agent tool: its source_code is hashed, is_agent is not",
         ["SubAgent", "DeepTool"], ["5.2.1", "5.2.3", "5.2.5"],
         subagent_doc(True, {"checksum_level": "deep",
                             "source_code": "async def planner(state):\n    return await run(state)"}),
         differs_from="subagent-base")
    tinv("subagent-string", "is_agent is the string \"true\" (must be a boolean)",
         '{"name": "t", "is_agent": "true"}', "invalid_type", ["SubAgent"])
    tinv("subagent-number", "is_agent is the number 1 (must be a boolean)",
         '{"name": "t", "is_agent": 1}', "invalid_type", ["SubAgent"])
    tinv("subagent-misspelt", "Tool member \"isAgent\" is unknown (the member is is_agent)",
         '{"name": "t", "isAgent": true}', "unknown_field", ["SubAgent"])


# ---------------------------------------------------------------------------
# Self checks
# ---------------------------------------------------------------------------

# RFC 8785 Appendix B: IEEE-754 bit pattern -> expected JCS number text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"), ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"), ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"), ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"), ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def selfcheck_jcs_numbers():
    for bits, expected in RFC8785_NUMBERS:
        value = struct.unpack(">d", bytes.fromhex(bits))[0]
        got = jcs.canonicalize(value).decode()
        assert got == expected, (bits, got, expected)
    # RFC 8785 Section 3.2.3 key ordering example (UTF-16 code unit order).
    sample = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = [k for k, _ in json.loads(jcs.canonicalize(sample), object_pairs_hook=list)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"], order


def crosscheck_draft_reference(results):
    """The python-ref result for the Section 5.2.2 example must equal what the
    draft's own compute_agent_checksum() produces."""
    example = json.loads(draft_example(DRAFT_PROMPT_ONE_LINE))
    tools = [types.SimpleNamespace(name=t["name"], signature=None, description=t["description"])
             for t in example["tools"]]
    components = types.SimpleNamespace(agent_id=example["agent_id"],
                                       prompt_template=example["prompt"], tools=tools,
                                       configuration=example["configuration"])
    draft_hex = compute_agent_checksum(components)
    got = results[("python-ref", "draft-oneline")]
    assert got[0] == "valid" and got[2] == "sha256:" + draft_hex, (got, draft_hex)
    return draft_hex


# ---------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------

PROFILE_SECTION = {"jcs": "5.3.1", "python-ref": "5.3.2"}


def _section_key(s):
    return tuple(int(x) for x in s.split("."))


def build_vectors():
    selfcheck_jcs_numbers()
    CASES.clear()
    build_cases()

    results = {}
    for profile in PROFILES:
        for c in CASES:
            results[(profile, c["id"])] = compute(c["input"], profile)

    # Assert every case's declared expectations.
    for c in CASES:
        for profile in PROFILES:
            r = results[(profile, c["id"])]
            outcome = "valid" if r[0] == "valid" else r[1]
            assert outcome == c["expect"][profile], (c["id"], profile, r, c["expect"][profile])
        for profile, other in c["same_as"].items():
            a, b = results[(profile, c["id"])], results[(profile, other)]
            assert a[0] == "valid" and a == b, ("same_as", c["id"], other, profile)
        for profile, other in c["differs_from"].items():
            a, b = results[(profile, c["id"])], results[(profile, other)]
            assert a[0] == b[0] == "valid" and a[2] != b[2], ("differs_from", c["id"], other)

    crosscheck_draft_reference(results)

    def outcome(r):
        return "valid" if r[0] == "valid" else r[1]

    # tcIds are consecutive across the file: group by group, case by case.
    tc_ids = {}
    for gi, profile in enumerate(PROFILES):
        for ci, c in enumerate(CASES):
            tc_ids[(profile, c["id"])] = gi * len(CASES) + ci + 1

    groups = []
    tc_id = 0
    used_flags = set()
    used_kinds = {p: set() for p in PROFILES}
    for profile in PROFILES:
        tests = []
        for c in CASES:
            r = results[(profile, c["id"])]
            other = results[("jcs" if profile == "python-ref" else "python-ref", c["id"])]
            flags = list(c["flags"])
            comment = c["comment"]
            if c["same_as"].get(profile):
                flags.append("EquivalentInput")
                comment += " [same canonical bytes and checksum as tcId %d]" % (
                    tc_ids[(profile, c["same_as"][profile])])
            if outcome(r) != outcome(other):
                flags.append("ProfileDifference")
            if r[0] == "invalid":
                flags.append("Invalid")
                used_kinds[profile].add(r[1])
            flags = sorted(set(flags), key=list(FLAG_NOTES).index)
            used_flags.update(flags)
            sections = sorted(set(c["sections"]) | {PROFILE_SECTION[profile]}, key=_section_key)
            tc_id += 1
            assert tc_id == tc_ids[(profile, c["id"])]
            test = {"tcId": tc_id, "comment": comment, "flags": flags, "sections": sections,
                    "input": c["input"]}
            if r[0] == "valid":
                test["result"] = "valid"
                test["canonical"] = r[1].decode("utf-8")
                test["checksum"] = r[2]
            else:
                test["result"] = "invalid"
                test["error"] = r[1]
            tests.append(test)
        groups.append({"type": "AgentChecksumTest", "profile": profile, "tests": tests})

    unused = set(FLAG_NOTES) - used_flags
    assert not unused, ("flags documented but unused", unused)
    for profile in PROFILES:
        expected_kinds = set(ERROR_KINDS) - ({"unrepresentable_number"} if profile == "python-ref" else set())
        missing = expected_kinds - used_kinds[profile]
        assert not missing, ("error kinds without a vector", profile, missing)

    return {
        "algorithm": "agent-checksum",
        "draft": "draft-goswami-agentic-jwt-00",
        "sections": ["5.2", "5.3"],
        "vectorsVersion": VECTORS_VERSION,
        "schema": VECTORS_SCHEMA,
        "generator": GENERATOR_PATH,
        "generatorPython": "%d.%d" % sys.version_info[:2],
        "jcsPackage": JCS_PACKAGE,
        "numberOfTests": tc_id,
        "notes": dict(FLAG_NOTES),
        "errorKinds": dict(ERROR_KINDS),
        "testGroups": groups,
    }


def render(vectors):
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the file differs from what would be generated")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="output path (default: %(default)s)")
    args = parser.parse_args(argv)

    if jcs.__version__ != "0.2.1":
        print("warning: expected jcs 0.2.1, found %s" % jcs.__version__, file=sys.stderr)

    text = render(build_vectors())
    data = text.encode("utf-8")
    if args.check:
        try:
            current = args.output.read_bytes()
        except FileNotFoundError:
            print("%s: missing" % args.output, file=sys.stderr)
            return 1
        if current != data:
            print("%s: out of date; re-run %s" % (args.output, GENERATOR_PATH), file=sys.stderr)
            return 1
        print("%s: up to date (%d tests)" % (args.output, json.loads(text)["numberOfTests"]))
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print("wrote %s (%d tests)" % (args.output, json.loads(text)["numberOfTests"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
