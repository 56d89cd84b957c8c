#!/usr/bin/env python3
"""Adapter for `ajwt conformance vectors --adapter`: a naive implementer of
draft-goswami-agentic-jwt-00 in plain CPython 3 (standard library only).

Protocol: conformance/adapters/PROTOCOL.md (one JSON request per line on
stdin, one JSON response per line on stdout).

* op "checksum": the draft's Section 5.3.2 "Reference Implementation
  (Python)" -- json.dumps(components, sort_keys=True) over the components
  {"id", "prompt", "tools": [{"name", "signature", "description"
  [, "source_code"]}], "config"} -- for EVERY requested profile, as someone
  following Section 5.3.2 would. It therefore passes the `python-ref` vectors
  and fails the `jcs` ones: Section 5.3.1 requires RFC 8785 (JCS) over other
  member names (spec/interpretation.md I-1), and JCS rejects integers that
  are not IEEE-754 doubles (I-9) which Python's json keeps exact. The input
  document is read and validated with this project's pinned rules
  (conformance/vectors/README.md, I-7..I-12), which the draft leaves open.
  The checksum is returned as bare lowercase hex, exactly what the draft's
  compute_agent_checksum returns (Section 5.3.1 calls it the reference
  form, I-4), together with the canonical text.
* op "sequence_hash": Section 4.4.4 (first 16 hex digits of SHA-256 over the
  "|"-joined identifiers; the requesting agent is appended to the chain
  unless already last, I-16).
* op "authorize_step": Sections 4.3.3, 4.5.5, 6.6.4 with the rules of
  PROTOCOL_VECTORS.md (I-18, I-20).
* op "decode_token_request": Sections 4.2.1, 4.3.1, 4.5.2, 4.5.6 with the
  rules of PROTOCOL_VECTORS.md (I-15, I-24).

Options: --ops OP[,OP...] answers only these ops (others get
{"error": "unsupported_op"}), to exercise the runner's skip path.

Standalone on purpose: it does not import conformance/tools.
"""
import hashlib
import json
import re
import sys
import types

PROTOCOL = "ajwt-vectors-adapter/1"
VERSION = "1.1.0"
ALL_OPS = ("checksum", "sequence_hash", "authorize_step", "decode_token_request")

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
CHECKSUM_RE = re.compile(r"sha256:[0-9a-f]{64}")
MAX_DEPTH = 128
MAX_INT_DIGITS = 4300


# ===========================================================================
# Section 5.3.2 reference code (the draft's text; only the final hashing is
# split so the canonical text can be returned too)
# ===========================================================================

def normalize_prompt(prompt: str) -> str:
    """
    Normalize prompt string for consistent checksum computation.
    Apply this in BOTH client and server-side computation.
    """
    if not prompt:
        return ""

    # 1. Strip leading/trailing whitespace
    normalized = prompt.strip()

    # 2. Normalize line endings (Windows \r\n vs Unix \n)
    normalized = normalized.replace('\r\n', '\n')

    # 3. Collapse multiple consecutive newlines into single newline
    import re
    normalized = re.sub(r'\n\s*\n', '\n', normalized)

    # 4. Strip whitespace from each line
    lines = [line.strip() for line in normalized.split('\n')]
    normalized = '\n'.join(lines)

    # 5. Remove empty lines
    lines = [line for line in lines if line]
    normalized = '\n'.join(lines)

    return normalized


def reference_content(agent_components) -> str:
    """The body of the draft's compute_agent_checksum up to json.dumps."""
    # Construct canonical components object
    components = {
        "id": agent_components.agent_id,
        "prompt": normalize_prompt(agent_components.prompt_template),
        "tools": sorted([
            dict({
                "name": tool.name,
                "signature": tool.signature,
                "description": tool.description
                # "source_code" included only for deep checksum tools
            }, **({"source_code": tool.source_code}
                  if tool.checksum_level == "deep" else {}))
            for tool in agent_components.tools
        ], key=lambda x: x["name"]),  # Sort tools by name
        "config": agent_components.configuration
    }

    # Serialize with sorted keys for determinism
    return json.dumps(components, sort_keys=True)


def compute_agent_checksum(agent_components):
    """(canonical text, 64-character lowercase hex SHA-256)."""
    content = reference_content(agent_components)
    # Compute SHA-256 hash
    return content, hashlib.sha256(content.encode('utf-8')).hexdigest()


# ===========================================================================
# Reading the agent specification document (rules the draft leaves open,
# pinned in conformance/vectors/README.md)
# ===========================================================================

TOP_LEVEL_MEMBERS = {"agent_id", "prompt", "prompt_template", "tools", "configuration"}
TOOL_MEMBERS = {"name", "description", "parameters", "signature", "checksum_level",
                "source_code", "is_agent"}


class SpecError(Exception):
    """A rejected document; kind is one of the vector files' errorKinds."""

    def __init__(self, kind, detail=""):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind


def _spec_pairs(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise SpecError("duplicate_key", repr(key))
        seen.add(key)
    return dict(pairs)


def _spec_int(literal):
    digits = len(literal) - (1 if literal.startswith("-") else 0)
    if digits > MAX_INT_DIGITS:
        raise SpecError("number_out_of_range", "integer literal with %d digits" % digits)
    return int(literal)  # exact, as Python's json keeps it


def _spec_float(literal):
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise SpecError("number_out_of_range", literal[:40])
    return value


def _spec_constant(name):
    raise SpecError("invalid_json", "non-JSON literal " + name)


def _depth(value):
    """A scalar is 0; an array/object is 1 + the max depth of its values."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def read_spec(text):
    try:
        doc = json.loads(text, object_pairs_hook=_spec_pairs, parse_int=_spec_int,
                         parse_float=_spec_float, parse_constant=_spec_constant)
    except json.JSONDecodeError as exc:
        raise SpecError("invalid_json", str(exc)) from None
    except RecursionError:
        raise SpecError("nesting_too_deep") from None
    if _depth(doc) > MAX_DEPTH:
        raise SpecError("nesting_too_deep")
    if not isinstance(doc, dict):
        raise SpecError("not_an_object", type(doc).__name__)
    for key in doc:
        if key not in TOP_LEVEL_MEMBERS:
            raise SpecError("unknown_field", repr(key))
    if "agent_id" not in doc:
        raise SpecError("missing_field", "agent_id")
    agent_id = doc["agent_id"]
    if not isinstance(agent_id, str):
        raise SpecError("invalid_type", "agent_id")
    if ID_RE.fullmatch(agent_id) is None:
        raise SpecError("invalid_agent_id", repr(agent_id))
    has_prompt, has_template = "prompt" in doc, "prompt_template" in doc
    if has_prompt and has_template:
        raise SpecError("conflicting_fields", "prompt and prompt_template")
    if not has_prompt and not has_template:
        raise SpecError("missing_field", "prompt")
    prompt = doc["prompt"] if has_prompt else doc["prompt_template"]
    if not isinstance(prompt, str):
        raise SpecError("invalid_type", "prompt")
    if "tools" not in doc:
        raise SpecError("missing_field", "tools")
    tools_in = doc["tools"]
    if not isinstance(tools_in, list):
        raise SpecError("invalid_type", "tools")
    configuration = doc.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        raise SpecError("invalid_type", "configuration")
    tools, names = [], set()
    for tool in tools_in:
        if not isinstance(tool, dict):
            raise SpecError("invalid_type", "tool")
        for key in tool:
            if key not in TOOL_MEMBERS:
                raise SpecError("unknown_field", "tool." + repr(key))
        if "name" not in tool:
            raise SpecError("missing_field", "tool.name")
        name = tool["name"]
        if not isinstance(name, str):
            raise SpecError("invalid_type", "tool.name")
        if name == "":
            raise SpecError("invalid_tool_name")
        description = tool.get("description")
        if description is None:
            description = ""
        elif not isinstance(description, str):
            raise SpecError("invalid_type", "tool.description")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, (dict, bool)):
            raise SpecError("invalid_type", "tool.parameters")
        signature = tool.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise SpecError("invalid_type", "tool.signature")
        level = tool.get("checksum_level")
        if level is None:
            level = "shallow"
        elif not isinstance(level, str):
            raise SpecError("invalid_type", "tool.checksum_level")
        elif level not in ("shallow", "deep"):
            raise SpecError("unknown_checksum_level", repr(level))
        source_code = tool.get("source_code")
        if source_code is not None and not isinstance(source_code, str):
            raise SpecError("invalid_type", "tool.source_code")
        is_agent = tool.get("is_agent")  # a sub-agent marker; the reference code never hashes it
        if is_agent is not None and not isinstance(is_agent, bool):
            raise SpecError("invalid_type", "tool.is_agent")
        if level == "deep" and source_code is None:
            raise SpecError("missing_source_code", name)
        if level == "shallow" and source_code is not None:
            raise SpecError("unexpected_source_code", name)
        if name in names:
            raise SpecError("duplicate_tool_name", repr(name))
        names.add(name)
        tools.append(types.SimpleNamespace(name=name, description=description,
                                           signature=signature, checksum_level=level,
                                           source_code=source_code))
    # The deployed reference code hashes {} for an agent without configuration
    # (its AgentComponents declares `configuration: Dict = {}`).
    if configuration is None:
        configuration = {}
    return types.SimpleNamespace(agent_id=agent_id, prompt_template=prompt, tools=tools,
                                 configuration=configuration)


def op_checksum(req):
    spec = req.get("spec")
    if not isinstance(spec, str):
        return {"error": "bad_request", "message": "checksum needs a string spec"}
    # The requested profile is deliberately ignored: Section 5.3.2 only.
    try:
        components = read_spec(spec)
    except SpecError as err:
        return {"result": "invalid", "error": err.kind, "message": str(err)}
    canonical, hexdigest = compute_agent_checksum(components)
    return {"result": "valid", "checksum": hexdigest, "canonical": canonical}


# ===========================================================================
# Section 4.4.4 sequence hashes
# ===========================================================================

def _h16(parts):
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]


def op_sequence_hash(req):
    chain, agent_id = req.get("chain"), req.get("agent_id")
    completed, step = req.get("completed_steps"), req.get("workflow_step")
    if not (isinstance(chain, list) and isinstance(agent_id, str)
            and isinstance(completed, list)):
        return {"error": "bad_request",
                "message": "sequence_hash needs chain, agent_id, completed_steps"}
    full = list(chain) if chain and chain[-1] == agent_id else list(chain) + [agent_id]
    steps = list(completed) + ([step] if step is not None else [])
    return {"result": "valid", "delegation_chain": _h16(full),
            "step_sequence_hash": _h16(steps)}


# ===========================================================================
# RFC 6749 Section 5.2 error_description characters (I-24)
# ===========================================================================

def rfc6749_description(text):
    out = []
    for ch in text.replace("\u00a7", "Section "):
        if ch == '"':
            out.append("'")
        elif " " <= ch <= "~" and ch != "\\":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


class Reject(Exception):
    """An OAuth error response."""

    def __init__(self, error, status, description, **extra):
        super().__init__(description)
        self.body = dict({"result": "invalid", "error": error, "status": status,
                          "description": rfc6749_description(description)}, **extra)


class _BadJson(Exception):
    pass


def _pairs_no_duplicates(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _BadJson("duplicate member " + repr(key))
        seen.add(key)
    return dict(pairs)


def _no_constant(name):
    raise _BadJson("non-JSON literal " + name)


def strict_json(text):
    """Parse RFC 8259 JSON without duplicate names, at most 128 levels deep."""
    try:
        doc = json.loads(text, object_pairs_hook=_pairs_no_duplicates,
                         parse_constant=_no_constant)
    except (json.JSONDecodeError, _BadJson, RecursionError):
        return None, False
    if _depth(doc) > MAX_DEPTH:
        return None, False
    return doc, True


# ===========================================================================
# Sections 4.3.3, 4.5.5, 6.6.4 workflow step authorization
# ===========================================================================

WF_PREFIX = "Agent not authorized for workflow step. "
STEP_MEMBERS = {"required", "requires_approval", "approval_gate", "agent_id", "scopes"}


def _bad_workflow(detail):
    return Reject("invalid_request", 400, "Invalid workflow definition: " + detail)


def read_workflow(text):
    """The ordered steps of a Section 6.3.3 / 4.7.2 registration body."""
    wf, ok = strict_json(text)
    if not ok or not isinstance(wf, dict):
        raise Reject("invalid_request", 400, "Invalid JSON format")
    raw = wf.get("steps")
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for s in raw:
            if not isinstance(s, dict) or not isinstance(s.get("step_id"), str):
                raise _bad_workflow("step without step_id")
            items.append((s["step_id"], {k: v for k, v in s.items() if k != "step_id"}))
    else:
        raise _bad_workflow("steps")
    steps = []
    for sid, body in items:
        if not isinstance(body, dict):
            raise _bad_workflow("step " + sid)
        steps.append({"step_id": sid, "required": body.get("required", True),
                      "requires_approval": body.get("requires_approval", False),
                      "approval_gate": body.get("approval_gate", False),
                      "agent_id": body.get("agent_id")})
    return steps


def _q(x):
    return "'%s'" % x


def authorize(steps, agent, target, completed):
    """None (authorized) or (reason, description, missing_steps)."""
    index = {s["step_id"]: i for i, s in enumerate(steps)}
    if target not in index:
        return ("unknown_step",
                WF_PREFIX + "Step %s is not defined in the workflow." % _q(target), [])
    t = index[target]
    step = steps[t]
    if step["agent_id"] is not None and step["agent_id"] != agent:
        return ("assigned_to_other_agent",
                WF_PREFIX + "Step %s is assigned to agent %s."
                % (_q(target), _q(step["agent_id"])), [])
    seen, prev = set(), None
    for x in completed:
        detail = None
        if x not in index:
            detail = "step %s is not defined in the workflow" % _q(x)
        elif x == target:
            detail = "step %s is the requested step" % _q(x)
        elif index[x] > t:
            detail = "step %s comes after the requested step" % _q(x)
        elif x in seen:
            detail = "step %s is listed twice" % _q(x)
        elif prev is not None and index[x] < index[prev]:
            detail = ("step %s is listed after step %s, which comes later in the workflow"
                      % (_q(x), _q(prev)))
        if detail is not None:
            return ("invalid_completed_steps",
                    WF_PREFIX + "Invalid completed_steps: %s." % detail, [])
        seen.add(x)
        prev = x
    missing = [s["step_id"] for s in steps[:t] if s["required"] and s["step_id"] not in seen]
    if missing:
        return ("missing_prerequisites",
                WF_PREFIX + "Required prerequisite steps not completed.", missing)
    if step["requires_approval"]:
        gates = [s["step_id"] for s in steps[:t] if s["approval_gate"]]
        if not gates:
            return ("approval_gate_not_completed",
                    WF_PREFIX + "Step requires approval and the workflow has no approval "
                    "gate before it.", [])
        if gates[-1] not in seen:
            return ("approval_gate_not_completed",
                    WF_PREFIX + "Step requires approval and approval gate %s is not "
                    "completed." % _q(gates[-1]), [gates[-1]])
    return None


def op_authorize_step(req):
    workflow, agent = req.get("workflow"), req.get("agent_id")
    step, completed = req.get("workflow_step"), req.get("completed_steps")
    if not (isinstance(workflow, str) and isinstance(agent, str) and isinstance(step, str)
            and isinstance(completed, list)):
        return {"error": "bad_request", "message": "authorize_step needs workflow, agent_id, "
                "workflow_step and completed_steps"}
    try:
        denial = authorize(read_workflow(workflow), agent, step, completed)
    except Reject as rej:
        return rej.body
    if denial is None:
        return {"result": "valid"}
    reason, description, missing = denial
    return {"result": "invalid", "error": "workflow_step_unauthorized", "status": 403,
            "reason": reason, "description": rfc6749_description(description),
            "missing_steps": missing}


# ===========================================================================
# Sections 4.2.1, 4.3.1, 4.5.2, 4.5.6 token request decoding (D1..D12)
# ===========================================================================

GRANT_TYPES = ("agent_checksum", "urn:ietf:params:oauth:grant-type:agent_checksum")


def decode_token_request(text):
    def bad(desc):
        return Reject("invalid_request", 400, desc)

    def missing(p):
        return bad("Missing required parameter: " + p)

    def invalid(p):
        return bad("Invalid parameter: " + p)

    doc, ok = strict_json(text)
    if not ok or not isinstance(doc, dict):
        raise bad("Invalid JSON format")
    gt = doc.get("grant_type")
    if gt is None or gt == "":
        raise missing("grant_type")
    if not isinstance(gt, str):
        raise invalid("grant_type")
    if gt not in GRANT_TYPES:
        raise Reject("unsupported_grant_type", 400, "Grant type must be 'agent_checksum'")
    agent_id = doc.get("agent_id")
    if agent_id is None or agent_id == "":
        raise missing("agent_id")
    if not isinstance(agent_id, str) or not ID_RE.fullmatch(agent_id):
        raise invalid("agent_id")
    ck = doc.get("computed_checksum")
    if ck is None or ck == "":
        raise missing("computed_checksum")
    if not isinstance(ck, str) or not CHECKSUM_RE.fullmatch(ck):
        raise bad("Invalid checksum format (must be 'sha256:<hex>')")

    def opt_string(name):
        v = doc.get(name)
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            raise invalid(name)
        return v
    workflow_id = opt_string("workflow_id")
    workflow_step = opt_string("workflow_step")
    we = doc.get("workflow_enabled")
    if we is None:
        we = False
    elif type(we) is not bool:
        raise invalid("workflow_enabled")
    if we and (workflow_id is None or workflow_step is None):
        raise bad("workflow_enabled=true but workflow_id/workflow_step missing")
    rs = doc.get("requested_scopes")
    if rs is None or rs == []:
        raise missing("requested_scopes")
    if not isinstance(rs, list) or not all(isinstance(s, str) for s in rs):
        raise invalid("requested_scopes")
    for s in rs:
        if not SCOPE_TOKEN_RE.fullmatch(s):
            raise Reject("invalid_scope", 400, "Malformed scope: '%s'" % s)
    scopes = []
    for s in rs:
        if s not in scopes:
            scopes.append(s)
    aud = doc.get("audience")
    if aud is None or aud == "" or aud == []:
        raise missing("audience")
    if not (isinstance(aud, str) or (isinstance(aud, list) and all(
            isinstance(a, str) and a != "" for a in aud))):
        raise invalid("audience")
    dc = doc.get("delegation_context")
    if dc is None:
        dc = {}
    if not isinstance(dc, dict):
        raise invalid("delegation_context")
    context = {}
    for member in ("chain", "completed_steps"):
        v = dc.get(member)
        if v is None:
            v = []
        if not isinstance(v, list) or not all(
                isinstance(x, str) and ID_RE.fullmatch(x) for x in v):
            raise invalid("delegation_context." + member)
        context[member] = v
    pt = doc.get("parent_token")
    if pt is not None and (not isinstance(pt, str) or pt == ""):
        raise invalid("parent_token")
    return {"grant_type": gt, "agent_id": agent_id, "computed_checksum": ck,
            "workflow_id": workflow_id, "workflow_step": workflow_step,
            "workflow_enabled": we, "requested_scopes": scopes, "audience": aud,
            "delegation_context": context, "parent_token": pt}


def op_decode_token_request(req):
    body = req.get("body")
    if not isinstance(body, str):
        return {"error": "bad_request", "message": "decode_token_request needs a string body"}
    try:
        return {"result": "valid", "decoded": decode_token_request(body)}
    except Reject as rej:
        return rej.body


# ===========================================================================
# Protocol loop
# ===========================================================================

HANDLERS = {
    "checksum": op_checksum,
    "sequence_hash": op_sequence_hash,
    "authorize_step": op_authorize_step,
    "decode_token_request": op_decode_token_request,
}


def answer(req, ops):
    if not isinstance(req, dict):
        return {"error": "bad_request", "message": "a request is a JSON object"}
    op = req.get("op")
    if op == "hello":
        return {"protocol": PROTOCOL,
                "name": "python_reference.py (draft Section 5.3.2 reference algorithm)",
                "version": "%s (CPython %d.%d.%d)" % ((VERSION,) + sys.version_info[:3]),
                "ops": list(ops)}
    if op not in ops:
        return {"error": "unsupported_op", "message": "op %r is not implemented" % (op,)}
    try:
        return HANDLERS[op](req)
    except Exception as exc:  # never die on one request
        return {"error": "internal", "message": "%s: %s" % (type(exc).__name__, exc)}


def main(argv):
    ops = ALL_OPS
    if len(argv) >= 2 and argv[0] == "--ops":
        ops = tuple(o for o in argv[1].split(",") if o)
    elif argv:
        sys.stderr.write("usage: python_reference.py [--ops OP[,OP...]]\n")
        return 2
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            resp = {"error": "bad_request", "message": "not JSON: %s" % exc}
        else:
            resp = answer(req, ops)
            if isinstance(req, dict) and "id" in req:
                resp["id"] = req["id"]
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
