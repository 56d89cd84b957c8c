#!/usr/bin/env python3
"""Generate known-answer conformance vectors for the token-request protocol.

Specification: draft-goswami-agentic-jwt-00, Sections 4.2-4.5, 4.7.2, 6.3.3
and 6.6.

Three files are written to conformance/vectors/:

    sequence_hashes.json          Section 4.4.4  (delegation_chain, step_sequence_hash)
    workflow_authorization.json   Sections 4.3.3, 4.5.5, 6.6.4 (workflow step authorization)
    token_request_decoding.json   Sections 4.2.1, 4.3.1, 4.5.2, 4.5.6 (request decoding)

This generator is an INDEPENDENT implementation written in plain CPython 3.11
using only the standard library (json, hashlib, re).  It never calls, imports
or reads the Rust implementation under test; every expected value in the
output files is produced by the rule code below, which was written from the
draft text and the project's pinned rules (see
conformance/vectors/PROTOCOL_VECTORS.md).

Usage (from the repository root):

    python3 conformance/tools/gen_protocol_vectors.py            # (re)write the three files
    python3 conformance/tools/gen_protocol_vectors.py --check    # exit 1 if any committed
                                                                  # file is stale
    python3 conformance/tools/gen_protocol_vectors.py --output-dir DIR

The output is deterministic: re-running the script produces byte-identical
files (the only environment-dependent field is "generatorPython", the
major.minor version of the interpreter that ran the script).
"""

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT_DIR = REPO_ROOT / "conformance" / "vectors"
GENERATOR_PATH = "conformance/tools/gen_protocol_vectors.py"
# Version of the vector files (all four share it; bump on any change of
# content or format) and the JSON Schema they follow, relative to the file.
VECTORS_VERSION = "2.0.0"
VECTORS_SCHEMA = "schema.json"
DRAFT = "draft-goswami-agentic-jwt-00"

# Agent ids, step ids and delegation-context elements (Section 5.2.1 agent_id
# syntax, pinned by this project).  Always used with fullmatch(), so a
# trailing newline is NOT accepted.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# RFC 6749 Section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
CHECKSUM_RE = re.compile(r"sha256:[0-9a-f]{64}")
MAX_DEPTH = 128


def _section_key(s):
    return tuple(int(x) for x in s.split("."))


def _sorted_flags(flags, notes):
    order = list(notes)
    for f in flags:
        assert f in notes, ("undocumented flag", f)
    return sorted(set(flags), key=order.index)


# ===========================================================================
# 1. Sequence hashes (Section 4.4.4)
# ===========================================================================

def _h16(parts):
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]


def delegation_chain_input(chain, agent_id):
    """The pipe-joined string hashed for delegation_chain: the chain with the
    requesting agent appended, unless the chain already ends with it."""
    full = list(chain)
    if not (full and full[-1] == agent_id):
        full.append(agent_id)
    return "|".join(full)


def step_sequence_input(completed_steps, workflow_step):
    parts = list(completed_steps)
    if workflow_step is not None:
        parts.append(workflow_step)
    return "|".join(parts)


def delegation_chain_hash(chain, agent_id):
    return hashlib.sha256(delegation_chain_input(chain, agent_id).encode("utf-8")).hexdigest()[:16]


def step_sequence_hash(completed_steps, workflow_step):
    return hashlib.sha256(
        step_sequence_input(completed_steps, workflow_step).encode("utf-8")).hexdigest()[:16]


SEQ_FLAGS = {
    "DraftExample": "Inputs taken from an example of the draft (Section 4.4.4, 4.2.2 or 6.6.3).",
    "DraftMismatch": "The draft prints a hash value, or an abbreviated input, that is NOT what "
                     "SHA-256 gives for the example's real input. The vector holds the real "
                     "SHA-256 value; the comment quotes the draft.",
    "AgentAppended": "The chain does not end with the requesting agent, so agent_id is appended "
                     "before hashing (Section 6.6.3 form: the chain lists the parents only).",
    "AgentAlreadyLast": "The chain already ends with the requesting agent (Section 4.2.2 / "
                        "4.3.4 form), so it is hashed as is and the agent is NOT appended again.",
    "RepeatedAgent": "The requesting agent appears in the chain, but not as its last element, "
                     "or an agent appears several times: only the LAST element is compared.",
    "EmptyChain": "delegation_context.chain is empty: delegation_chain hashes agent_id alone.",
    "NoWorkflowStep": "workflow_step is null (no workflow): step_sequence_hash covers "
                      "completed_steps alone; with no completed steps it is the hash of the "
                      "empty string (e3b0c44298fc1c14).",
    "EmptySteps": "completed_steps is empty.",
    "SingleElement": "Single-element inputs: no separator is hashed.",
    "LongInput": "Long chains / step lists and 128-character identifiers.",
    "OrderMatters": "Same elements in a different order give a different hash.",
    "CaseSensitive": "Identifiers are compared and hashed byte for byte; case matters.",
    "NonAscii": "Non-ASCII text, hashed as UTF-8. Such identifiers cannot pass request "
                "decoding (agent-id syntax); the vector only pins the encoding of the hash "
                "function.",
    "EquivalentInput": "A different input that must give exactly the same delegation_chain and "
                       "step_sequence_hash as the tcId named in the comment.",
}

DRAFT_444_DELEGATION = "f3e8d9c7b2a41a3c"
DRAFT_444_STEPS = "a7c9e2f4b8d61c3f"

S663_STEPS = ["step_1_analyze_manifest", "step_2_create_patch_plan", "step_3_approval_gate",
              "step_4_apply_patch", "step_5_verify_patch"]


def build_sequence_cases():
    cases = []

    def case(cid, comment, flags, sections, chain, agent_id, completed, step, same_as=None):
        cases.append({"id": cid, "comment": comment, "flags": flags, "sections": sections,
                      "chain": chain, "agent_id": agent_id, "completed_steps": completed,
                      "workflow_step": step, "same_as": same_as})

    s1, s2, s3, s4, _ = S663_STEPS
    case("draft-444", "Section 4.4.4 literal example: chain [supervisor, planner, patcher] "
         "requested by patcher, steps step_1_analyze|step_2_plan|step_3_patch. The draft prints "
         "delegation_chain \"%s\" and step_sequence_hash \"%s\"; those are NOT the SHA-256 "
         "values of these strings" % (DRAFT_444_DELEGATION, DRAFT_444_STEPS),
         ["DraftExample", "DraftMismatch", "AgentAlreadyLast"], ["4.4.2", "4.4.4"],
         ["supervisor", "planner", "patcher"], "patcher", ["step_1_analyze", "step_2_plan"],
         "step_3_patch")
    case("draft-444-appended", "Section 4.4.4 example in the Section 6.6.3 form: chain "
         "[supervisor, planner], requesting agent patcher is appended",
         ["DraftExample", "DraftMismatch", "AgentAppended"], ["4.4.4", "6.6.4"],
         ["supervisor", "planner"], "patcher", ["step_1_analyze", "step_2_plan"],
         "step_3_patch", same_as="draft-444")
    case("draft-444-null-step", "Section 4.4.4 step list given entirely as completed_steps with "
         "workflow_step null",
         ["DraftExample", "DraftMismatch", "AgentAlreadyLast", "NoWorkflowStep"], ["4.4.4"],
         ["supervisor", "planner", "patcher"], "patcher",
         ["step_1_analyze", "step_2_plan", "step_3_patch"], None, same_as="draft-444")

    case("s663-supervisor", "Section 6.6.3 request 1: supervisor-agent, step_1, empty chain, "
         "no completed steps", ["DraftExample", "EmptyChain", "EmptySteps", "SingleElement"],
         ["4.4.4", "6.6.3"], [], "supervisor-agent", [], s1)
    case("s663-planner", "Section 6.6.3 request 2: patch-planner, step_2, chain "
         "[supervisor-agent]", ["DraftExample", "AgentAppended"], ["4.4.4", "6.6.3"],
         ["supervisor-agent"], "patch-planner", [s1], s2)
    case("s663-patcher", "Section 6.6.3 request 3: vulnerability-patcher-v1, step_4, chain "
         "[supervisor-agent, patch-planner]. The draft (item 10) writes the step input as "
         "\"step_1|step_2|step_3|step_4\", an abbreviation of the real step ids used here",
         ["DraftExample", "AgentAppended"], ["4.4.4", "6.6.3"],
         ["supervisor-agent", "patch-planner"], "vulnerability-patcher-v1", [s1, s2, s3], s4)
    case("s663-supervisor-last", "Section 6.6.3 request 1 with the requesting agent already in "
         "the chain: chain [supervisor-agent]", ["DraftExample", "AgentAlreadyLast", "EmptySteps"],
         ["4.3.4", "4.4.4", "6.6.3"], ["supervisor-agent"], "supervisor-agent", [], s1,
         same_as="s663-supervisor")
    case("s663-planner-last", "Section 6.6.3 request 2 with the requesting agent already last: "
         "chain [supervisor-agent, patch-planner]", ["DraftExample", "AgentAlreadyLast"],
         ["4.3.4", "4.4.4", "6.6.3"], ["supervisor-agent", "patch-planner"], "patch-planner",
         [s1], s2, same_as="s663-planner")
    case("s663-patcher-last", "Section 6.6.3 request 3 with the requesting agent already last: "
         "chain [supervisor-agent, patch-planner, vulnerability-patcher-v1]",
         ["DraftExample", "AgentAlreadyLast"], ["4.3.4", "4.4.4", "6.6.3"],
         ["supervisor-agent", "patch-planner", "vulnerability-patcher-v1"],
         "vulnerability-patcher-v1", [s1, s2, s3], s4, same_as="s663-patcher")
    case("s663-abbrev", "Section 6.6.3 item 10 taken literally: steps \"step_1|step_2|step_3|"
         "step_4\". This is the draft's abbreviation, not what a real request hashes (compare "
         "the s663 patcher test)", ["DraftExample", "DraftMismatch", "AgentAppended"],
         ["6.6.3"], ["supervisor-agent", "patch-planner"], "vulnerability-patcher-v1",
         ["step_1", "step_2", "step_3"], "step_4")
    case("s422", "Section 4.2.2 request: chain already ends with vulnerability-patcher-v1, step "
         "step_3_patch_application after two completed steps",
         ["DraftExample", "AgentAlreadyLast"], ["4.2.2", "4.4.4"],
         ["supervisor-agent", "planner-agent", "vulnerability-patcher-v1"],
         "vulnerability-patcher-v1", [s1, s2], "step_3_patch_application")
    case("s422-appended", "Section 4.2.2 request with the chain listing the parents only",
         ["DraftExample", "AgentAppended"], ["4.2.2", "4.4.4", "6.6.4"],
         ["supervisor-agent", "planner-agent"], "vulnerability-patcher-v1", [s1, s2],
         "step_3_patch_application", same_as="s422")

    case("empty-chain", "Empty chain: delegation_chain = SHA-256(\"agent-a\")",
         ["EmptyChain", "SingleElement"], ["4.4.4"], [], "agent-a", ["step-a"], "step-b")
    case("chain-is-agent", "Chain [agent-a] requested by agent-a hashes the same as the empty "
         "chain", ["AgentAlreadyLast", "SingleElement"], ["4.4.4"], ["agent-a"], "agent-a",
         ["step-a"], "step-b", same_as="empty-chain")
    case("no-step-no-completed", "No workflow: workflow_step null and no completed steps, so "
         "step_sequence_hash is SHA-256 of the empty string",
         ["NoWorkflowStep", "EmptySteps", "EmptyChain"], ["4.4.4"], [], "agent-a", [], None)
    case("no-step-completed", "workflow_step null with completed steps: hash of the completed "
         "steps alone", ["NoWorkflowStep"], ["4.4.4"], ["agent-a"], "agent-b",
         ["step-a", "step-b"], None)
    case("step-no-completed", "First step: no completed steps, hash of the workflow step alone",
         ["EmptySteps", "SingleElement"], ["4.4.4"], ["agent-a"], "agent-b", [], "step-a")
    case("single-completed-null", "One completed step and workflow_step null hashes the same as "
         "no completed steps and that step as workflow_step",
         ["NoWorkflowStep", "SingleElement"], ["4.4.4"], ["agent-a"], "agent-b", ["step-a"],
         None, same_as="step-no-completed")
    case("one-char-ids", "One-character identifiers", ["SingleElement"], ["4.4.4"], ["a"], "b",
         ["c"], "d")
    case("digits-and-punct", "Identifiers using every allowed punctuation character (. _ -) "
         "and digits", [], ["4.4.4"], ["0.agent_1-x", "Agent.2"], "z9-_.",
         ["step.1", "step_2", "step-3"], "4")
    case("repeated-agent-not-last", "The requesting agent appears earlier in the chain but not "
         "last: it is appended again (agent-a|agent-b|agent-a)", ["RepeatedAgent", "AgentAppended"],
         ["4.4.4"], ["agent-a", "agent-b"], "agent-a", [], "step-a")
    case("repeated-agent-last", "Chain [agent-a, agent-a] requested by agent-a: the last element "
         "already equals agent_id, so nothing is appended (agent-a|agent-a)",
         ["RepeatedAgent", "AgentAlreadyLast"], ["4.4.4"], ["agent-a", "agent-a"], "agent-a", [],
         "step-a")
    case("repeated-agent-appended-twice", "Chain [agent-a] requested by agent-a hashes "
         "\"agent-a\", not \"agent-a|agent-a\" (compare the previous test)",
         ["RepeatedAgent", "AgentAlreadyLast", "SingleElement"], ["4.4.4"], ["agent-a"],
         "agent-a", [], "step-a")
    case("case-differs", "Chain ends with \"Agent-A\" but the request is from \"agent-a\": not "
         "equal, so agent-a is appended", ["CaseSensitive", "AgentAppended"], ["4.4.4"],
         ["Agent-A"], "agent-a", ["Step-A"], "step-a")
    case("order-1", "Chain order matters (1/2): [agent-a, agent-b] + agent-c",
         ["OrderMatters", "AgentAppended"], ["4.4.4"], ["agent-a", "agent-b"], "agent-c",
         ["step-a", "step-b"], "step-c")
    case("order-2", "Chain order matters (2/2): [agent-b, agent-a] + agent-c; steps reversed "
         "too", ["OrderMatters", "AgentAppended"], ["4.4.4"], ["agent-b", "agent-a"], "agent-c",
         ["step-b", "step-a"], "step-c")
    case("duplicate-completed", "completed_steps containing a repeated id: the hash function "
         "hashes whatever it is given (request validation rejects this elsewhere)", [],
         ["4.4.4"], ["agent-a"], "agent-b", ["step-a", "step-a"], "step-b")
    case("long-chain", "Chain of 20 agents plus the requesting agent; 30 completed steps",
         ["LongInput", "AgentAppended"], ["4.4.4"],
         ["agent-%02d" % i for i in range(1, 21)], "agent-21",
         ["step-%02d" % i for i in range(1, 31)], "step-31")
    case("long-chain-last", "The 21-agent chain of the previous test with the requesting agent "
         "already last", ["LongInput", "AgentAlreadyLast"], ["4.4.4"],
         ["agent-%02d" % i for i in range(1, 22)], "agent-21",
         ["step-%02d" % i for i in range(1, 31)], "step-31", same_as="long-chain")
    case("max-length-ids", "128-character identifiers (the maximum of the id syntax)",
         ["LongInput"], ["4.4.4"], ["a" * 128, "B" * 128], "0" * 128, ["s" * 128, "t" * 128],
         "u" * 128)
    case("many-steps", "100 completed steps followed by the workflow step step_100", ["LongInput"], ["4.4.4"], [], "agent-a",
         ["step_%03d" % i for i in range(100)], "step_100")
    case("non-ascii", "Non-ASCII identifiers are hashed as UTF-8 (é = C3 A9, 🤖 = F0 9F A4 96)",
         ["NonAscii", "AgentAppended"], ["4.4.4"], ["agent-é"], "agent-🤖", ["étape-1"],
         "étape-2")
    return cases


def build_sequence_vectors():
    cases = build_sequence_cases()
    results = {}
    for c in cases:
        results[c["id"]] = (delegation_chain_hash(c["chain"], c["agent_id"]),
                            step_sequence_hash(c["completed_steps"], c["workflow_step"]))

    # Self checks.
    assert hashlib.sha256(b"").hexdigest()[:16] == "e3b0c44298fc1c14"
    assert results["no-step-no-completed"][1] == "e3b0c44298fc1c14"
    assert results["draft-444"] != (DRAFT_444_DELEGATION, DRAFT_444_STEPS)
    assert results["draft-444"][0] != DRAFT_444_DELEGATION
    assert results["draft-444"][1] != DRAFT_444_STEPS
    assert results["s663-patcher"][1] != results["s663-abbrev"][1]
    assert results["s663-patcher"][0] == results["s663-abbrev"][0]
    assert results["repeated-agent-last"][0] != results["repeated-agent-appended-twice"][0]
    assert results["order-1"][0] != results["order-2"][0]
    assert results["order-1"][1] != results["order-2"][1]
    assert delegation_chain_input(["supervisor-agent", "patch-planner"],
                                  "vulnerability-patcher-v1") == \
        "supervisor-agent|patch-planner|vulnerability-patcher-v1"   # Section 6.6.3 item 10
    for c in cases:
        if c["same_as"]:
            assert results[c["id"]] == results[c["same_as"]], c["id"]
    # Distinct inputs that are not declared equivalent must differ.
    seen = {}
    for c in cases:
        r = results[c["id"]]
        root = c["same_as"] or c["id"]
        if r in seen:
            assert seen[r] == root, ("unexpected collision", c["id"], seen[r])
        seen[r] = root

    tc_ids = {c["id"]: i + 1 for i, c in enumerate(cases)}
    tests = []
    used = set()
    for c in cases:
        flags = list(c["flags"])
        comment = c["comment"]
        if c["same_as"]:
            flags.append("EquivalentInput")
            comment += " [same delegation_chain and step_sequence_hash as tcId %d]" % (
                tc_ids[c["same_as"]])
        flags = _sorted_flags(flags, SEQ_FLAGS)
        used.update(flags)
        dc, sh = results[c["id"]]
        tests.append({
            "tcId": tc_ids[c["id"]],
            "comment": comment,
            "flags": flags,
            "sections": sorted(set(c["sections"]), key=_section_key),
            "chain": c["chain"],
            "agent_id": c["agent_id"],
            "completed_steps": c["completed_steps"],
            "workflow_step": c["workflow_step"],
            "result": "valid",
            "delegation_chain_input": delegation_chain_input(c["chain"], c["agent_id"]),
            "step_sequence_input": step_sequence_input(c["completed_steps"], c["workflow_step"]),
            "delegation_chain": dc,
            "step_sequence_hash": sh,
        })
    assert not set(SEQ_FLAGS) - used, ("flags documented but unused", set(SEQ_FLAGS) - used)
    return {
        "algorithm": "sequence-hash",
        "draft": DRAFT,
        "sections": ["4.4.2", "4.4.4", "6.6.3"],
        "vectorsVersion": VECTORS_VERSION,
        "schema": VECTORS_SCHEMA,
        "generator": GENERATOR_PATH,
        "generatorPython": "%d.%d" % sys.version_info[:2],
        "numberOfTests": len(tests),
        "notes": dict(SEQ_FLAGS),
        "testGroups": [{"type": "SequenceHashTest", "hash": "SHA-256, lowercase hex, first 16 "
                        "characters", "tests": tests}],
    }


# ===========================================================================
# 2. Workflow step authorization (Sections 4.3.3, 4.5.5, 6.6.4)
# ===========================================================================

WF_PREFIX = "Agent not authorized for workflow step. "


def _q(step_or_agent_id):
    """How a step or agent id is quoted inside a description: in single
    quotes, because RFC 6749 Section 5.2 does not allow '"' in an
    error_description (spec/interpretation.md I-24)."""
    return "'%s'" % step_or_agent_id


def rfc6749_description(text):
    """RFC 6749 Section 5.2 allows only %x20-21 / %x23-5B / %x5D-7E in
    error_description: the section sign becomes "Section ", '"' becomes "'",
    any other disallowed character "?"
    (spec/interpretation.md I-24)."""
    out = []
    for ch in text.replace("\u00a7", "Section "):
        if ch == '"':
            out.append("'")
        elif " " <= ch <= "~" and ch != "\\":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)

WF_REASONS = {
    "unknown_step": "The requested workflow_step is not a step of the workflow. "
                    "missing_steps is [].",
    "assigned_to_other_agent": "The requested step has an agent_id and it is not the "
                               "requesting agent_id (exact, case-sensitive). missing_steps is [].",
    "invalid_completed_steps": "delegation_context.completed_steps is not a valid history: it "
                               "names an unknown step, the requested step itself, a step after "
                               "the requested one, a step twice, or steps out of workflow "
                               "order. missing_steps is [].",
    "missing_prerequisites": "Some required steps before the requested step are not in "
                             "completed_steps; missing_steps lists them in workflow order.",
    "approval_gate_not_completed": "The requested step has requires_approval=true and the most "
                                   "recent approval_gate step before it is not in "
                                   "completed_steps (only reachable when that gate is optional, "
                                   "otherwise missing_prerequisites fires first); missing_steps "
                                   "is [that gate].",
}

WF_FLAGS = {
    "DraftExample": "Workflow and/or request taken from the draft (Section 6.3.3 registration, "
                    "Section 6.6.3 delegation requests, Section 4.5.5 error example).",
    "DraftContradiction": "The draft contradicts itself here; the vector follows the rules of "
                          "this project (see the comment).",
    "LegitimateRequest": "A request that follows the workflow correctly.",
    "ApprovalGateBypass": "An attempt to reach a requires_approval step without the approval "
                          "gate: skipping it, claiming it while skipping other required steps, "
                          "or claiming later steps.",
    "SkippedRequiredStep": "One or more required prerequisite steps are missing; checks the "
                           "content and order of missing_steps.",
    "OptionalStep": "Steps with required=false that may be skipped.",
    "OptionalApprovalGate": "An approval gate with required=false: skipping it is only caught "
                            "by the approval rule (approval_gate_not_completed).",
    "MultipleGates": "Several approval gates: only the most recent gate before the requested "
                     "step counts.",
    "UnassignedStep": "Steps without agent_id, which any agent may execute.",
    "AgentAssignment": "Steps with an agent_id: only that agent may execute them.",
    "UnknownStep": "The requested step is not defined in the workflow.",
    "CompletedStepsValidation": "completed_steps is checked element by element (unknown, the "
                                "requested step, after the requested step, listed twice, out of "
                                "order).",
    "Precedence": "Several rules are broken; the FIRST failing rule (order a..e, and within "
                  "rule c the first failing element and the first failing check) decides.",
    "CaseSensitive": "Step ids and agent ids are compared exactly; case matters.",
    "Defaults": "Step members left out: required=true, requires_approval=false, "
                "approval_gate=false, no agent_id.",
    "ArrayForm": "The workflow is registered in the Section 4.7.2 array form "
                 "(steps: [{step_id, ...}, ...]) instead of the Section 6.3.3 object form.",
    "EquivalentResult": "Same workflow (in the other form) and request as the tcId named in the "
                        "comment; the outcome must be identical.",
    "Invalid": "The request must be rejected with workflow_step_unauthorized (HTTP 403).",
}

STEP_MEMBERS = {"required", "requires_approval", "approval_gate", "agent_id", "scopes"}


def normalize_workflow(wf):
    """Validate a registration document (as POSTed) and return the ordered
    step list.  Every workflow used in the vectors must pass."""
    assert isinstance(wf, dict) and set(wf) == {"workflow_id", "steps"}, wf
    assert isinstance(wf["workflow_id"], str) and ID_RE.fullmatch(wf["workflow_id"])
    raw = wf["steps"]
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        assert isinstance(raw, list)
        items = []
        for s in raw:
            assert isinstance(s, dict) and isinstance(s.get("step_id"), str), s
            items.append((s["step_id"], {k: v for k, v in s.items() if k != "step_id"}))
    assert items, "a workflow has at least one step"
    steps = []
    ids = set()
    seen_gate = False
    for sid, body in items:
        assert ID_RE.fullmatch(sid), sid
        assert sid not in ids, ("duplicate step id", sid)
        ids.add(sid)
        assert isinstance(body, dict) and set(body) <= STEP_MEMBERS, body
        step = {"step_id": sid, "required": body.get("required", True),
                "requires_approval": body.get("requires_approval", False),
                "approval_gate": body.get("approval_gate", False),
                "agent_id": body.get("agent_id")}
        for k in ("required", "requires_approval", "approval_gate"):
            assert type(step[k]) is bool, (sid, k)
        if step["agent_id"] is not None:
            assert isinstance(step["agent_id"], str) and ID_RE.fullmatch(step["agent_id"])
            assert not step["approval_gate"], ("approval gate with agent_id", sid)
        if "scopes" in body:
            assert isinstance(body["scopes"], list) and all(
                isinstance(x, str) and SCOPE_TOKEN_RE.fullmatch(x) for x in body["scopes"])
        if step["requires_approval"]:
            assert seen_gate, ("requires_approval step without an earlier gate", sid)
        if step["approval_gate"]:
            seen_gate = True
        steps.append(step)
    return steps


def authorize(wf, request):
    """Return None (authorized) or (reason, description, missing_steps)."""
    steps = normalize_workflow(wf)
    index = {s["step_id"]: i for i, s in enumerate(steps)}
    agent = request["agent_id"]
    target = request["workflow_step"]
    completed = request["completed_steps"]

    # a. unknown step
    if target not in index:
        return ("unknown_step",
                WF_PREFIX + "Step %s is not defined in the workflow." % _q(target), [])
    t = index[target]
    step = steps[t]
    # b. agent assignment
    if step["agent_id"] is not None and step["agent_id"] != agent:
        return ("assigned_to_other_agent",
                WF_PREFIX + "Step %s is assigned to agent %s." % (_q(target), _q(step["agent_id"])),
                [])
    # c. completed_steps history
    seen = set()
    prev = None
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
    # d. required prerequisites
    missing = [s["step_id"] for s in steps[:t] if s["required"] and s["step_id"] not in seen]
    if missing:
        return ("missing_prerequisites",
                WF_PREFIX + "Required prerequisite steps not completed.", missing)
    # e. approval gate
    if step["requires_approval"]:
        gates = [s["step_id"] for s in steps[:t] if s["approval_gate"]]
        assert gates, "unreachable for a registered workflow"
        gate = gates[-1]
        if gate not in seen:
            return ("approval_gate_not_completed",
                    WF_PREFIX + "Step requires approval and approval gate %s is not "
                    "completed." % _q(gate), [gate])
    return None


def to_array_form(wf, scopes=None):
    """The Section 4.7.2 array form of an object-form workflow, every member
    spelled out (scopes optionally added per step id)."""
    steps = []
    for s in normalize_workflow(wf):
        entry = {"step_id": s["step_id"], "required": s["required"],
                 "requires_approval": s["requires_approval"],
                 "approval_gate": s["approval_gate"]}
        if s["agent_id"] is not None:
            entry["agent_id"] = s["agent_id"]
        if scopes and s["step_id"] in scopes:
            entry["scopes"] = scopes[s["step_id"]]
        steps.append(entry)
    return {"workflow_id": wf["workflow_id"], "steps": steps}


S1, S2, S3, S4, S5 = S663_STEPS
ANALYZER, PLANNER, PATCHER, VERIFIER = ("vulnerability-analyzer", "patch-planner",
                                        "vulnerability-patcher-v1", "patch-verifier")

WF_633 = {
    "workflow_id": "auto-patch-workflow-v1",
    "steps": {
        S1: {"required": True, "requires_approval": False, "agent_id": ANALYZER},
        S2: {"required": True, "requires_approval": False, "agent_id": PLANNER},
        S3: {"required": True, "requires_approval": False, "approval_gate": True},
        S4: {"required": True, "requires_approval": True, "agent_id": PATCHER},
        S5: {"required": True, "requires_approval": False, "agent_id": VERIFIER},
    },
}

# Section 4.5.5's error example lists missing_steps ["step_1_analyze_manifest",
# "step_2_approval_gate"]; this is the smallest workflow producing it.
WF_455 = {
    "workflow_id": "error-example-workflow",
    "steps": {
        "step_1_analyze_manifest": {"required": True},
        "step_2_approval_gate": {"required": True, "approval_gate": True},
        "step_3_apply_patch": {"required": True, "requires_approval": True},
    },
}

WF_OPTIONAL = {
    "workflow_id": "optional-steps-v1",
    "steps": {
        "fetch": {"required": True},
        "lint": {"required": False},
        "build": {"required": True},
        "notify": {"required": False},
        "publish": {"required": True},
    },
}

WF_OPT_GATE = {
    "workflow_id": "optional-gate-v1",
    "steps": {
        "prepare": {"required": True, "agent_id": "deploy-planner"},
        "human_approval": {"required": False, "approval_gate": True},
        "deploy": {"required": True, "requires_approval": True, "agent_id": "deployer"},
    },
}

WF_TWO_GATES = {
    "workflow_id": "two-gates-v1",
    "steps": {
        "prepare": {"required": True},
        "gate_1": {"required": False, "approval_gate": True},
        "build": {"required": True, "requires_approval": True},
        "gate_2": {"required": False, "approval_gate": True},
        "deploy": {"required": True, "requires_approval": True},
    },
}

WF_UNASSIGNED = {
    "workflow_id": "open-workflow",
    "steps": {
        "collect": {"required": True, "requires_approval": False},
        "summarize": {"required": True, "requires_approval": False},
        "review": {"required": False},
    },
}

WF_DEFAULTS = {
    "workflow_id": "defaults-workflow",
    "steps": {"first": {}, "second": {}, "third": {}},
}

WF_CASE = {
    "workflow_id": "case-workflow",
    "steps": {
        "Step-A": {"agent_id": "Agent-A"},
        "step-a": {"agent_id": "agent-a"},
    },
}

WF_ARRAY_MINIMAL = {
    "workflow_id": "array-defaults",
    "steps": [{"step_id": "first"}, {"step_id": "gate", "approval_gate": True},
              {"step_id": "second", "requires_approval": True, "agent_id": "agent-b"}],
}


def req(agent, step, completed):
    return {"agent_id": agent, "workflow_step": step, "completed_steps": list(completed)}


def build_workflow_cases():
    obj_cases, arr_cases = [], []

    def case(cid, comment, flags, sections, wf, request, expect, into=None):
        (obj_cases if into is None else into).append(
            {"id": cid, "comment": comment, "flags": flags, "sections": sections,
             "workflow": wf, "request": request, "expect": expect, "same_as": None})

    # --- Section 6.3.3 workflow: legitimate requests ---------------------
    legit = [
        ("s633-step1", ANALYZER, S1, []),
        ("s633-step2", PLANNER, S2, [S1]),
        ("s633-step3", "supervisor-agent", S3, [S1, S2]),
        ("s633-step4", PATCHER, S4, [S1, S2, S3]),
        ("s633-step5", VERIFIER, S5, [S1, S2, S3, S4]),
    ]
    for cid, agent, step, done in legit:
        extra = ["UnassignedStep"] if step == S3 else ["AgentAssignment"]
        case(cid, "Section 6.3.3 workflow: %s executes %s after %s" % (
            agent, step, "[" + ", ".join(done) + "]"),
            ["DraftExample", "LegitimateRequest"] + extra, ["4.3.3", "6.3.3"], WF_633,
            req(agent, step, done), "valid")
    obj_cases[2]["comment"] += " (the approval gate has no agent_id, so any agent may " \
                               "record it)"
    case("s663-patcher", "Section 6.6.3 request 3: vulnerability-patcher-v1 requests "
         "step_4_apply_patch (requires approval) with step_1..step_3 including the gate "
         "completed", ["DraftExample", "LegitimateRequest", "AgentAssignment"],
         ["4.3.3", "6.3.3", "6.6.3", "6.6.4"], WF_633, req(PATCHER, S4, [S1, S2, S3]), "valid")
    case("s663-planner", "Section 6.6.3 request 2: patch-planner requests step_2 after step_1",
         ["DraftExample", "LegitimateRequest", "AgentAssignment"],
         ["4.3.3", "6.3.3", "6.6.3"], WF_633, req(PLANNER, S2, [S1]), "valid")
    case("s663-supervisor", "Section 6.6.3 request 1: supervisor-agent requests "
         "step_1_analyze_manifest, but Section 6.3.3 assigns step_1 to vulnerability-analyzer: "
         "the draft's own example is rejected",
         ["DraftExample", "DraftContradiction", "AgentAssignment"],
         ["4.3.3", "4.5.5", "6.3.3", "6.6.3", "6.6.4"], WF_633,
         req("supervisor-agent", S1, []), "assigned_to_other_agent")

    # --- approval gate bypass -------------------------------------------
    case("bypass-skip-gate", "Patcher skips the approval gate: step_3 is required, so it is "
         "reported as a missing prerequisite", ["ApprovalGateBypass", "SkippedRequiredStep"],
         ["4.3.3", "4.5.5", "6.6.4"], WF_633, req(PATCHER, S4, [S1, S2]),
         "missing_prerequisites")
    case("bypass-gate-only", "Patcher claims the gate but skips step_1 and step_2",
         ["ApprovalGateBypass", "SkippedRequiredStep"], ["4.3.3", "4.5.5"], WF_633,
         req(PATCHER, S4, [S3]), "missing_prerequisites")
    case("bypass-gate-skip-one", "Patcher claims the gate but skips step_2",
         ["ApprovalGateBypass", "SkippedRequiredStep"], ["4.3.3", "4.5.5"], WF_633,
         req(PATCHER, S4, [S1, S3]), "missing_prerequisites")
    case("bypass-later-step", "Patcher lists step_5 (after the requested step) as completed",
         ["ApprovalGateBypass", "CompletedStepsValidation"], ["4.3.3", "4.5.5"], WF_633,
         req(PATCHER, S4, [S1, S2, S3, S5]), "invalid_completed_steps")
    case("bypass-nothing", "Patcher requests step_4 with no history at all: all three earlier "
         "steps are missing, in workflow order",
         ["ApprovalGateBypass", "SkippedRequiredStep"], ["4.3.3", "4.5.5"], WF_633,
         req(PATCHER, S4, []), "missing_prerequisites")

    # --- skipped required steps ------------------------------------------
    case("skip-step1", "Planner requests step_2 without step_1", ["SkippedRequiredStep"],
         ["4.3.3", "4.5.5"], WF_633, req(PLANNER, S2, []), "missing_prerequisites")
    case("skip-step4", "Verifier requests step_5 but step_4 was never executed",
         ["SkippedRequiredStep"], ["4.3.3", "4.5.5"], WF_633,
         req(VERIFIER, S5, [S1, S2, S3]), "missing_prerequisites")
    case("skip-many", "Verifier requests step_5 after step_2 and step_4 only: missing_steps "
         "[step_1, step_3] in workflow order", ["SkippedRequiredStep"], ["4.3.3", "4.5.5"],
         WF_633, req(VERIFIER, S5, [S2, S4]), "missing_prerequisites")
    case("s455-example", "Section 4.5.5 error example: missing_steps [step_1_analyze_manifest, "
         "step_2_approval_gate]", ["DraftExample", "SkippedRequiredStep", "UnassignedStep"],
         ["4.3.3", "4.5.5"], WF_455, req("any-agent", "step_3_apply_patch", []),
         "missing_prerequisites")

    # --- completed_steps validation ---------------------------------------
    case("cs-unknown", "completed_steps names a step that is not in the workflow",
         ["CompletedStepsValidation"], ["4.3.3"], WF_633,
         req(PATCHER, S4, [S1, "step_9_unknown", S3]), "invalid_completed_steps")
    case("cs-requested", "completed_steps contains the requested step itself",
         ["CompletedStepsValidation"], ["4.3.3"], WF_633, req(PATCHER, S4, [S1, S2, S3, S4]),
         "invalid_completed_steps")
    case("cs-after", "completed_steps contains a step that comes after the requested step",
         ["CompletedStepsValidation"], ["4.3.3"], WF_633, req(PLANNER, S2, [S1, S3]),
         "invalid_completed_steps")
    case("cs-twice", "completed_steps lists step_2 twice in a row", ["CompletedStepsValidation"],
         ["4.3.3"], WF_633, req(PATCHER, S4, [S1, S2, S2, S3]), "invalid_completed_steps")
    case("cs-out-of-order", "completed_steps lists step_1 after step_2",
         ["CompletedStepsValidation"], ["4.3.3"], WF_633, req(PATCHER, S4, [S2, S1, S3]),
         "invalid_completed_steps")
    case("cs-twice-beats-order", "[step_1, step_2, step_1]: the second step_1 is both a repeat "
         "and out of order; \"listed twice\" is checked first",
         ["CompletedStepsValidation", "Precedence"], ["4.3.3"], WF_633,
         req(PATCHER, S4, [S1, S2, S1, S3]), "invalid_completed_steps")
    case("cs-first-element-wins", "[step_5, step_9_unknown]: the first bad element decides "
         "(step_5 comes after the requested step)", ["CompletedStepsValidation", "Precedence"],
         ["4.3.3"], WF_633, req(PATCHER, S4, [S5, "step_9_unknown"]),
         "invalid_completed_steps")
    case("cs-unknown-first", "[step_9_unknown, step_5]: the unknown step comes first",
         ["CompletedStepsValidation", "Precedence"], ["4.3.3"], WF_633,
         req(PATCHER, S4, ["step_9_unknown", S5]), "invalid_completed_steps")
    case("cs-requested-twice", "The requested step listed twice: \"is the requested step\" is "
         "checked before \"listed twice\"", ["CompletedStepsValidation", "Precedence"],
         ["4.3.3"], WF_633, req(PLANNER, S2, [S2, S2]), "invalid_completed_steps")
    case("cs-case", "completed_steps spells step_1 in upper case: not a step of the workflow",
         ["CompletedStepsValidation", "CaseSensitive"], ["4.3.3"], WF_633,
         req(PLANNER, S2, ["STEP_1_ANALYZE_MANIFEST"]), "invalid_completed_steps")
    case("cs-beats-missing", "completed_steps is out of order AND step_2 is missing: "
         "invalid_completed_steps wins", ["CompletedStepsValidation", "Precedence"],
         ["4.3.3"], WF_633, req(PATCHER, S4, [S3, S1]), "invalid_completed_steps")

    # --- unknown step / agent assignment / precedence ---------------------
    case("unknown-step", "Requested step step_6_deploy is not in the workflow", ["UnknownStep"],
         ["4.3.3", "4.5.5"], WF_633, req(PATCHER, "step_6_deploy", [S1, S2, S3, S4, S5]),
         "unknown_step")
    case("unknown-step-case", "Requested step spelled Step_1_Analyze_Manifest: step ids are "
         "case-sensitive", ["UnknownStep", "CaseSensitive"], ["4.3.3"], WF_633,
         req(ANALYZER, "Step_1_Analyze_Manifest", []), "unknown_step")
    case("unknown-beats-all", "Unknown requested step with a bogus history: unknown_step is "
         "checked first", ["UnknownStep", "Precedence"], ["4.3.3"], WF_633,
         req("someone", "step_0", ["nope", "nope"]), "unknown_step")
    case("wrong-agent", "patch-planner requests step_1, which belongs to vulnerability-analyzer",
         ["AgentAssignment"], ["4.3.3", "4.5.5", "6.6.4"], WF_633, req(PLANNER, S1, []),
         "assigned_to_other_agent")
    case("wrong-agent-case", "Vulnerability-Analyzer (capitalized) requests step_1: agent ids "
         "are case-sensitive", ["AgentAssignment", "CaseSensitive"], ["4.3.3"], WF_633,
         req("Vulnerability-Analyzer", S1, []), "assigned_to_other_agent")
    case("wrong-agent-beats-history", "Wrong agent AND an invalid history AND missing "
         "prerequisites: assigned_to_other_agent is checked first",
         ["AgentAssignment", "Precedence"], ["4.3.3"], WF_633,
         req(PLANNER, S4, [S5, S5]), "assigned_to_other_agent")
    case("case-steps-distinct", "Step-A and step-a are different steps: agent-a may run "
         "step-a (Step-A is required and missing)", ["CaseSensitive", "SkippedRequiredStep",
                                                     "Defaults"],
         ["4.3.3"], WF_CASE, req("agent-a", "step-a", []), "missing_prerequisites")
    case("case-steps-ok", "Step-A then step-a, each by its own agent", ["CaseSensitive",
                                                                        "LegitimateRequest",
                                                                        "Defaults"],
         ["4.3.3"], WF_CASE, req("agent-a", "step-a", ["Step-A"]), "valid")

    # --- optional steps ----------------------------------------------------
    case("optional-skipped", "Optional lint and notify skipped: publish is allowed",
         ["OptionalStep", "LegitimateRequest", "UnassignedStep"], ["4.3.3"], WF_OPTIONAL,
         req("ci-agent", "publish", ["fetch", "build"]), "valid")
    case("optional-done", "All steps including the optional ones completed",
         ["OptionalStep", "LegitimateRequest", "UnassignedStep"], ["4.3.3"], WF_OPTIONAL,
         req("ci-agent", "publish", ["fetch", "lint", "build", "notify"]), "valid")
    case("optional-only", "Only the optional steps completed: missing_steps lists the required "
         "fetch and build, never the optional ones", ["OptionalStep", "SkippedRequiredStep"],
         ["4.3.3", "4.5.5"], WF_OPTIONAL, req("ci-agent", "publish", ["lint", "notify"]),
         "missing_prerequisites")
    case("optional-requested", "An optional step can itself be requested; its required "
         "prerequisites still apply", ["OptionalStep", "SkippedRequiredStep"], ["4.3.3"],
         WF_OPTIONAL, req("ci-agent", "notify", ["fetch"]), "missing_prerequisites")
    case("optional-order", "Optional step listed out of order ([lint, fetch])",
         ["OptionalStep", "CompletedStepsValidation"], ["4.3.3"], WF_OPTIONAL,
         req("ci-agent", "build", ["lint", "fetch"]), "invalid_completed_steps")

    # --- optional approval gate --------------------------------------------
    case("opt-gate-skipped", "The approval gate is optional (required=false) and skipped before "
         "a requires_approval step: the approval rule still rejects",
         ["OptionalApprovalGate", "ApprovalGateBypass"], ["4.3.3", "4.5.5", "6.6.4"],
         WF_OPT_GATE, req("deployer", "deploy", ["prepare"]), "approval_gate_not_completed")
    case("opt-gate-done", "Optional approval gate completed: deploy is allowed",
         ["OptionalApprovalGate", "LegitimateRequest", "AgentAssignment"], ["4.3.3", "6.6.4"],
         WF_OPT_GATE, req("deployer", "deploy", ["prepare", "human_approval"]), "valid")
    case("opt-gate-and-missing", "Optional gate skipped AND the required prepare step missing: "
         "missing_prerequisites comes first (missing_steps [prepare] only)",
         ["OptionalApprovalGate", "SkippedRequiredStep", "Precedence"], ["4.3.3"],
         WF_OPT_GATE, req("deployer", "deploy", []), "missing_prerequisites")
    case("opt-gate-wrong-agent", "deploy-planner tries to deploy after the gate",
         ["OptionalApprovalGate", "AgentAssignment"], ["4.3.3"], WF_OPT_GATE,
         req("deploy-planner", "deploy", ["prepare", "human_approval"]),
         "assigned_to_other_agent")

    # --- two gates ---------------------------------------------------------
    case("two-gates-recent-missing", "Two optional gates: deploy needs gate_2 (the most recent "
         "gate before it); gate_1 does not count",
         ["MultipleGates", "OptionalApprovalGate", "ApprovalGateBypass"], ["4.3.3", "6.6.4"],
         WF_TWO_GATES, req("release-bot", "deploy", ["prepare", "gate_1", "build"]),
         "approval_gate_not_completed")
    case("two-gates-recent-done", "Two optional gates: gate_2 completed, gate_1 skipped; deploy "
         "is allowed", ["MultipleGates", "OptionalApprovalGate", "LegitimateRequest"],
         ["4.3.3", "6.6.4"], WF_TWO_GATES,
         req("release-bot", "deploy", ["prepare", "build", "gate_2"]), "valid")
    case("two-gates-both", "Two optional gates, both completed",
         ["MultipleGates", "OptionalApprovalGate", "LegitimateRequest"], ["4.3.3"],
         WF_TWO_GATES, req("release-bot", "deploy", ["prepare", "gate_1", "build", "gate_2"]),
         "valid")
    case("two-gates-first-needed", "build (requires approval) sits between the gates: its most "
         "recent gate is gate_1",
         ["MultipleGates", "OptionalApprovalGate", "ApprovalGateBypass"], ["4.3.3"],
         WF_TWO_GATES, req("release-bot", "build", ["prepare"]), "approval_gate_not_completed")
    case("two-gates-first-done", "build after prepare and gate_1",
         ["MultipleGates", "OptionalApprovalGate", "LegitimateRequest"], ["4.3.3"],
         WF_TWO_GATES, req("release-bot", "build", ["prepare", "gate_1"]), "valid")
    case("two-gates-later-gate-claimed", "build requested with gate_2 (after build) claimed as "
         "completed", ["MultipleGates", "ApprovalGateBypass", "CompletedStepsValidation"],
         ["4.3.3"], WF_TWO_GATES, req("release-bot", "build", ["prepare", "gate_2"]),
         "invalid_completed_steps")

    # --- unassigned steps / defaults ---------------------------------------
    for i, agent in enumerate(["agent-one", "agent-two"]):
        case("unassigned-%d" % i, "Step without agent_id: %s may execute it" % agent,
             ["UnassignedStep", "LegitimateRequest"], ["4.3.3", "4.7.2"], WF_UNASSIGNED,
             req(agent, "summarize", ["collect"]), "valid")
    case("unassigned-first", "First step of a workflow, no history, any agent",
         ["UnassignedStep", "LegitimateRequest"], ["4.3.3"], WF_UNASSIGNED,
         req("x", "collect", []), "valid")
    case("defaults-missing", "Steps declared as {} default to required=true: missing_steps "
         "[first, second]", ["Defaults", "SkippedRequiredStep", "UnassignedStep"],
         ["4.3.3", "4.7.2"], WF_DEFAULTS, req("agent-z", "third", []), "missing_prerequisites")
    case("defaults-ok", "Steps declared as {}: third after first and second",
         ["Defaults", "LegitimateRequest", "UnassignedStep"], ["4.3.3", "4.7.2"], WF_DEFAULTS,
         req("agent-z", "third", ["first", "second"]), "valid")

    # --- array form --------------------------------------------------------
    wf_633_array = to_array_form(WF_633, scopes={S4: ["repo:write", "vulnerability:read"]})
    mirrored = ["s633-step1", "s633-step3", "s663-patcher", "s663-supervisor",
                "bypass-skip-gate", "bypass-later-step", "skip-many", "cs-unknown",
                "cs-requested", "cs-twice", "cs-out-of-order", "unknown-step", "wrong-agent"]
    by_id = {c["id"]: c for c in obj_cases}
    for cid in mirrored:
        src = by_id[cid]
        arr_cases.append({"id": "array-" + cid, "comment": src["comment"] + " (array form)",
                          "flags": src["flags"] + ["ArrayForm"],
                          "sections": src["sections"] + ["4.7.2"], "workflow": wf_633_array,
                          "request": src["request"], "expect": src["expect"], "same_as": cid})
    for cid in ["opt-gate-skipped", "two-gates-recent-missing", "two-gates-recent-done",
                "optional-only"]:
        src = by_id[cid]
        arr_cases.append({"id": "array-" + cid, "comment": src["comment"] + " (array form)",
                          "flags": src["flags"] + ["ArrayForm"],
                          "sections": src["sections"] + ["4.7.2"],
                          "workflow": to_array_form(src["workflow"]),
                          "request": src["request"], "expect": src["expect"], "same_as": cid})
    case("array-minimal-ok", "Array form with members left out (defaults) and an unassigned "
         "gate: agent-b runs second after first and gate", ["ArrayForm", "Defaults",
                                                            "LegitimateRequest"],
         ["4.3.3", "4.7.2"], WF_ARRAY_MINIMAL, req("agent-b", "second", ["first", "gate"]),
         "valid", into=arr_cases)
    case("array-minimal-gate-missing", "Array form with defaults: the gate defaults to "
         "required=true, so skipping it is a missing prerequisite",
         ["ArrayForm", "Defaults", "ApprovalGateBypass", "SkippedRequiredStep"],
         ["4.3.3", "4.7.2"], WF_ARRAY_MINIMAL, req("agent-b", "second", ["first"]),
         "missing_prerequisites", into=arr_cases)
    case("array-minimal-wrong-agent", "Array form with defaults: agent-c may not run second",
         ["ArrayForm", "Defaults", "AgentAssignment"], ["4.3.3", "4.7.2"], WF_ARRAY_MINIMAL,
         req("agent-c", "second", ["first", "gate"]), "assigned_to_other_agent",
         into=arr_cases)
    return obj_cases, arr_cases


def build_workflow_vectors():
    obj_cases, arr_cases = build_workflow_cases()
    all_cases = obj_cases + arr_cases
    ids = [c["id"] for c in all_cases]
    assert len(ids) == len(set(ids))
    tc_ids = {c["id"]: i + 1 for i, c in enumerate(all_cases)}
    results = {}
    for c in all_cases:
        r = authorize(c["workflow"], c["request"])
        outcome = "valid" if r is None else r[0]
        assert outcome == c["expect"], (c["id"], r, c["expect"])
        results[c["id"]] = r
    for c in arr_cases:
        if c["same_as"]:
            assert results[c["id"]] == results[c["same_as"]], c["id"]
            assert normalize_workflow(c["workflow"]) == normalize_workflow(
                by_workflow(obj_cases, c["same_as"])), c["id"]
    # Pinned descriptions / missing_steps for a few cases, written out by hand
    # as a cross-check of the rule code.
    r = results["s455-example"]
    assert r[2] == ["step_1_analyze_manifest", "step_2_approval_gate"]
    assert r[1] == ("Agent not authorized for workflow step. "
                    "Required prerequisite steps not completed.")
    assert results["skip-many"][2] == [S1, S3]
    assert results["bypass-nothing"][2] == [S1, S2, S3]
    assert results["optional-only"][2] == ["fetch", "build"]
    assert results["two-gates-recent-missing"][2] == ["gate_2"]
    assert results["two-gates-first-needed"][2] == ["gate_1"]
    assert results["cs-twice-beats-order"][1].endswith("step '%s' is listed twice." % S1)
    assert results["cs-out-of-order"][1] == (
        "Agent not authorized for workflow step. Invalid completed_steps: step "
        "'step_1_analyze_manifest' is listed after step 'step_2_create_patch_plan', which "
        "comes later in the workflow.")
    assert results["s663-supervisor"][1] == (
        "Agent not authorized for workflow step. Step 'step_1_analyze_manifest' is assigned "
        "to agent 'vulnerability-analyzer'.")

    groups = []
    used_flags, used_reasons, used_details = set(), set(), set()
    for form, cases in (("object", obj_cases), ("array", arr_cases)):
        tests = []
        for c in cases:
            r = results[c["id"]]
            flags = list(c["flags"])
            comment = c["comment"]
            if c["same_as"]:
                flags.append("EquivalentResult")
                comment += " [same outcome as tcId %d]" % tc_ids[c["same_as"]]
            if r is not None:
                flags.append("Invalid")
            flags = _sorted_flags(flags, WF_FLAGS)
            used_flags.update(flags)
            steps = normalize_workflow(c["workflow"])
            test = {"tcId": tc_ids[c["id"]], "comment": comment, "flags": flags,
                    "sections": sorted(set(c["sections"]), key=_section_key),
                    # The exact registration body: member order is step order.
                    "workflow": json.dumps(c["workflow"]),
                    "step_order": [s["step_id"] for s in steps],
                    "request": c["request"]}
            if r is None:
                test["result"] = "valid"
            else:
                used_reasons.add(r[0])
                if r[0] == "invalid_completed_steps":
                    for kind in ("not defined", "is the requested step", "comes after",
                                 "listed twice", "comes later in the workflow"):
                        if kind in r[1]:
                            used_details.add(kind)
                test.update({"result": "invalid", "error": "workflow_step_unauthorized",
                             "status": 403, "reason": r[0], "description": rfc6749_description(r[1]),
                             "missing_steps": r[2]})
            tests.append(test)
        groups.append({"type": "WorkflowAuthorizationTest", "form": form, "tests": tests})
    assert not set(WF_FLAGS) - used_flags, set(WF_FLAGS) - used_flags
    assert used_reasons == set(WF_REASONS), used_reasons
    assert len(used_details) == 5, used_details
    return {
        "algorithm": "workflow-step-authorization",
        "draft": DRAFT,
        "sections": ["4.3.3", "4.5.5", "4.7.2", "6.3.3", "6.6.3", "6.6.4"],
        "vectorsVersion": VECTORS_VERSION,
        "schema": VECTORS_SCHEMA,
        "generator": GENERATOR_PATH,
        "generatorPython": "%d.%d" % sys.version_info[:2],
        "numberOfTests": len(all_cases),
        "notes": dict(WF_FLAGS),
        "reasons": dict(WF_REASONS),
        "testGroups": groups,
    }


def by_workflow(cases, cid):
    for c in cases:
        if c["id"] == cid:
            return c["workflow"]
    raise KeyError(cid)


# ===========================================================================
# 3. Token request decoding (Sections 4.2.1, 4.3.1, 4.5.2, 4.5.6)
# ===========================================================================

GRANT_TYPES = ("agent_checksum", "urn:ietf:params:oauth:grant-type:agent_checksum")

D_INVALID_JSON = "Invalid JSON format"
D_GRANT = "Grant type must be 'agent_checksum'"
D_CHECKSUM = "Invalid checksum format (must be 'sha256:<hex>')"
D_WF_MISSING = "workflow_enabled=true but workflow_id/workflow_step missing"


def d_missing(p):
    return "Missing required parameter: " + p


def d_invalid(p):
    return "Invalid parameter: " + p


def d_scope(scope):
    # Single quotes; disallowed characters are replaced when the description
    # is written (rfc6749_description).
    return "Malformed scope: '%s'" % scope


TOKEN_ERRORS = {
    "invalid_request": "HTTP 400. Malformed body or a missing / invalid parameter "
                       "(Section 4.5.6).",
    "unsupported_grant_type": "HTTP 400. grant_type is a string other than \"agent_checksum\" "
                              "and its URN (Section 4.5.2).",
    "invalid_scope": "HTTP 400. An element of requested_scopes is not an RFC 6749 "
                     "scope-token (RFC 6749 Section 5.2).",
}
TOKEN_STATUS = {"invalid_request": 400, "unsupported_grant_type": 400, "invalid_scope": 400}

ALL_DESCRIPTIONS = [
    D_INVALID_JSON, d_missing("grant_type"), d_invalid("grant_type"), D_GRANT,
    d_missing("agent_id"), d_invalid("agent_id"), d_missing("computed_checksum"), D_CHECKSUM,
    d_invalid("workflow_id"), d_invalid("workflow_step"), d_invalid("workflow_enabled"),
    D_WF_MISSING, d_missing("requested_scopes"), d_invalid("requested_scopes"),
    d_missing("audience"), d_invalid("audience"), d_invalid("delegation_context"),
    d_invalid("delegation_context.chain"), d_invalid("delegation_context.completed_steps"),
    d_invalid("parent_token"),
]


def description_table():
    """Every error_description, in check order, mapped to its error code."""
    table = {}
    for d in ALL_DESCRIPTIONS:
        if d == d_invalid("requested_scopes"):
            table[d] = "invalid_request"
            table['Malformed scope: "<scope>"'] = "invalid_scope"
        else:
            table[d] = "unsupported_grant_type" if d == D_GRANT else "invalid_request"
    return table


class Reject(Exception):
    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


class _BadJson(Exception):
    pass


def _pairs_hook(pairs):
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _BadJson("duplicate member " + repr(key))
        seen.add(key)
    return dict(pairs)


def _parse_constant(name):
    raise _BadJson("non-JSON literal " + name)


def _depth(value):
    """A scalar is 0; an array/object is 1 + the max depth of its values."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def decode_token_request(body):
    """body: bytes.  Returns the decoded request dict or raises Reject."""
    def bad(desc):
        return Reject("invalid_request", desc)

    # D1, D2
    try:
        text = body.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_parse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, _BadJson):
        raise bad(D_INVALID_JSON) from None
    if _depth(doc) > MAX_DEPTH or not isinstance(doc, dict):
        raise bad(D_INVALID_JSON)

    # D3 grant_type
    gt = doc.get("grant_type")
    if gt is None or gt == "":
        raise bad(d_missing("grant_type"))
    if not isinstance(gt, str):
        raise bad(d_invalid("grant_type"))
    if gt not in GRANT_TYPES:
        raise Reject("unsupported_grant_type", D_GRANT)

    # D4 agent_id
    agent_id = doc.get("agent_id")
    if agent_id is None or agent_id == "":
        raise bad(d_missing("agent_id"))
    if not isinstance(agent_id, str) or not ID_RE.fullmatch(agent_id):
        raise bad(d_invalid("agent_id"))

    # D5 computed_checksum
    ck = doc.get("computed_checksum")
    if ck is None or ck == "":
        raise bad(d_missing("computed_checksum"))
    if not isinstance(ck, str) or not CHECKSUM_RE.fullmatch(ck):
        raise bad(D_CHECKSUM)

    # D6, D7 workflow_id / workflow_step
    def opt_string(name):
        v = doc.get(name)
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            raise bad(d_invalid(name))
        return v
    workflow_id = opt_string("workflow_id")
    workflow_step = opt_string("workflow_step")

    # D8 workflow_enabled
    we = doc.get("workflow_enabled")
    if we is None:
        we = False
    elif type(we) is not bool:
        raise bad(d_invalid("workflow_enabled"))
    if we and (workflow_id is None or workflow_step is None):
        raise bad(D_WF_MISSING)

    # D9 requested_scopes
    rs = doc.get("requested_scopes")
    if rs is None or rs == []:
        raise bad(d_missing("requested_scopes"))
    if not isinstance(rs, list) or not all(isinstance(s, str) for s in rs):
        raise bad(d_invalid("requested_scopes"))
    for s in rs:
        if not SCOPE_TOKEN_RE.fullmatch(s):
            raise Reject("invalid_scope", d_scope(s))
    scopes = []
    for s in rs:
        if s not in scopes:
            scopes.append(s)

    # D10 audience
    aud = doc.get("audience")
    if aud is None or aud == "" or aud == []:
        raise bad(d_missing("audience"))
    if isinstance(aud, str):
        pass
    elif isinstance(aud, list) and all(isinstance(a, str) and a != "" for a in aud):
        pass
    else:
        raise bad(d_invalid("audience"))

    # D11 delegation_context
    dc = doc.get("delegation_context")
    if dc is None:
        dc = {}
    if not isinstance(dc, dict):
        raise bad(d_invalid("delegation_context"))
    context = {}
    for member in ("chain", "completed_steps"):
        v = dc.get(member)
        if v is None:
            v = []
        if not isinstance(v, list) or not all(
                isinstance(x, str) and ID_RE.fullmatch(x) for x in v):
            raise bad(d_invalid("delegation_context." + member))
        context[member] = v

    # D12 parent_token
    pt = doc.get("parent_token")
    if pt is not None and (not isinstance(pt, str) or pt == ""):
        raise bad(d_invalid("parent_token"))

    return {
        "grant_type": gt,
        "agent_id": agent_id,
        "computed_checksum": ck,
        "workflow_id": workflow_id,
        "workflow_step": workflow_step,
        "workflow_enabled": we,
        "requested_scopes": scopes,
        "audience": aud,
        "delegation_context": context,
        "parent_token": pt,
    }


TOKEN_FLAGS = {
    "DraftExample": "Taken from a request printed in the draft (Section 4.2.2 or 6.6.3), "
                    "completed with the members the draft leaves out where needed.",
    "Minimal": "Only the REQUIRED members.",
    "GrantType": "The grant_type parameter (Section 4.5.2).",
    "UrnGrantType": "grant_type spelled as the full URN "
                    "urn:ietf:params:oauth:grant-type:agent_checksum.",
    "AgentId": "agent_id syntax ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (whole string).",
    "Checksum": "computed_checksum format: exactly \"sha256:\" + 64 lowercase hex digits.",
    "Workflow": "workflow_id, workflow_step and workflow_enabled.",
    "Scopes": "requested_scopes: array of RFC 6749 scope-tokens, duplicates removed keeping "
              "the first occurrence.",
    "Audience": "audience: non-empty string or array of non-empty strings, passed through "
                "unchanged.",
    "DelegationContext": "delegation_context and its chain / completed_steps arrays.",
    "ParentToken": "The optional parent_token member.",
    "NullOptional": "Optional members given an explicit null value, which must behave exactly "
                    "as if they were absent.",
    "EmptyString": "A member given as \"\": treated as absent for grant_type, agent_id, "
                   "computed_checksum, workflow_id, workflow_step and audience.",
    "UnknownMember": "Unknown members are ignored (OAuth convention), at the top level and "
                     "inside delegation_context.",
    "InvalidJson": "The body is not an RFC 8259 JSON text (syntax error, trailing data, "
                   "NaN, comments, raw control characters, empty body).",
    "DuplicateKey": "Some object, at any depth, repeats a member name (compared after "
                    "unescaping): rejected as Invalid JSON format.",
    "Nesting": "Nesting depth limit: at most 128 levels, the top-level object being level 1.",
    "NonObject": "The top-level JSON value is not an object.",
    "InputEscapes": "Values spelled with JSON \\u escapes; the decoded strings count.",
    "Precedence": "Several parameters are wrong; the first failing check in the Section 4.2.1 "
                  "parameter order (D1..D12) decides.",
    "ScopeQuoting": "Checks the exact JSON quoting of the scope inside "
                    "\"Malformed scope: ...\".",
    "Invalid": "The request must be rejected with the given error, status and description.",
}

CK_A = "sha256:" + hashlib.sha256(b"vulnerability-patcher-v1").hexdigest()
DRAFT_CK_TRUNC = "sha256:a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1..."
DRAFT_CK_FULL = "sha256:" + "a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1" * 2

BASE = {
    "grant_type": "agent_checksum",
    "agent_id": "vulnerability-patcher-v1",
    "computed_checksum": CK_A,
    "requested_scopes": ["repo:write"],
    "audience": "https://api.github.com",
}

ABSENT = object()


def body_of(**changes):
    """json.dumps of BASE with members replaced (in place), added (at the end)
    or removed (value ABSENT)."""
    obj = dict(BASE)
    for k, v in changes.items():
        if v is ABSENT:
            obj.pop(k, None)
        else:
            obj[k] = v
    return json.dumps(obj, ensure_ascii=False)


DRAFT_422_TEMPLATE = """{
  "grant_type": "agent_checksum",
  "agent_id": "vulnerability-patcher-v1",
  "computed_checksum": "%s",
  "workflow_id": "auto-patch-workflow-v1",
  "workflow_step": "step_3_patch_application",
  "workflow_enabled": true,
  "requested_scopes": [
    "repo:write",
    "vulnerability:read"
  ],
  "audience": "https://api.github.com",
  "delegation_context": {
    "chain": [
      "supervisor-agent",
      "planner-agent",
      "vulnerability-patcher-v1"
    ],
    "completed_steps": [
      "step_1_analyze_manifest",
      "step_2_create_patch_plan"
    ]
  }
}"""


def _nested(depth):
    """A value of the given nesting depth made of arrays."""
    return "[" * depth + "]" * depth


def build_token_cases():
    cases = []

    def case(cid, comment, flags, sections, body, expect):
        cases.append({"id": cid, "comment": comment, "flags": flags,
                      "sections": sections, "body": body, "expect": expect})

    def inv(cid, comment, flags, sections, body, expect):
        case(cid, comment, flags, sections, body, expect)

    # --- draft examples -----------------------------------------------------
    case("s422", "Section 4.2.2 example with its truncated checksum \"sha256:a3c7f2e8...c4f1...\" "
         "replaced by a full one (the 32 printed hex digits twice); pretty-printed as in the "
         "draft", ["DraftExample", "Workflow", "DelegationContext", "Scopes"],
         ["4.2.1", "4.2.2"], DRAFT_422_TEMPLATE % DRAFT_CK_FULL, "valid")
    inv("s422-literal", "Section 4.2.2 example verbatim: its computed_checksum "
        "\"sha256:a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1...\" is truncated, so the format check "
        "rejects it", ["DraftExample", "Checksum"], ["4.2.2", "4.5.6"],
        DRAFT_422_TEMPLATE % DRAFT_CK_TRUNC, D_CHECKSUM)
    s663 = [
        ("s663-supervisor", "supervisor-agent", S1, [], []),
        ("s663-planner", "patch-planner", S2, ["supervisor-agent"], [S1]),
        ("s663-patcher", "vulnerability-patcher-v1", S4, ["supervisor-agent", "patch-planner"],
         [S1, S2, S3]),
    ]
    for n, (cid, agent, step, chain, done) in enumerate(s663, 1):
        obj = {"grant_type": "agent_checksum", "agent_id": agent,
               "computed_checksum": "sha256:" + hashlib.sha256(agent.encode()).hexdigest(),
               "workflow_id": "auto-patch-workflow-v1", "workflow_step": step,
               "workflow_enabled": True, "requested_scopes": ["repo:read"],
               "audience": "https://api.github.com",
               "delegation_context": {"chain": chain, "completed_steps": done}}
        case(cid, "Section 6.6.3 request %d (%s, %s) completed with grant_type, a "
             "placeholder checksum, workflow_id, workflow_enabled, requested_scopes and "
             "audience" % (n, agent, step), ["DraftExample", "Workflow", "DelegationContext"],
             ["4.2.1", "6.6.3"], json.dumps(obj, indent=2), "valid")
    case("s663-bare", "Section 6.6.3 request 1 exactly as printed (no grant_type): the first "
         "check fails", ["DraftExample", "GrantType", "Precedence"], ["4.3.1", "4.5.6", "6.6.3"],
         json.dumps({"agent_id": "supervisor-agent", "workflow_step": S1,
                     "delegation_context": {"chain": [], "completed_steps": []}}, indent=2),
         d_missing("grant_type"))

    # --- valid variations -----------------------------------------------------
    case("minimal", "Only the five REQUIRED members: defaults for everything else",
         ["Minimal"], ["4.2.1"], body_of(), "valid")
    case("urn", "grant_type as the full URN (kept as given in the decoded request)",
         ["GrantType", "UrnGrantType"], ["4.2.1", "8.2"],
         body_of(grant_type="urn:ietf:params:oauth:grant-type:agent_checksum"), "valid")
    case("audience-array", "audience as an array of two strings",
         ["Audience"], ["4.2.1"],
         body_of(audience=["https://api.github.com", "https://api.example.com"]), "valid")
    case("audience-array-one", "audience as a one-element array stays an array",
         ["Audience"], ["4.2.1"], body_of(audience=["https://api.github.com"]), "valid")
    case("scope-duplicates", "requested_scopes with duplicates: removed, first occurrence "
         "order kept", ["Scopes"], ["4.2.1"],
         body_of(requested_scopes=["b:read", "a:write", "b:read", "c", "a:write", "b:read"]),
         "valid")
    case("scope-charset", "Scope using every allowed punctuation character "
         "(%x21 / %x23-5B / %x5D-7E)", ["Scopes"], ["4.2.1"],
         body_of(requested_scopes=["!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "A-Z_a-z.0-9"]), "valid")
    case("unknown-members", "Unknown top-level members (string, null, object, array, "
         "number) are ignored, as are unknown delegation_context members",
         ["UnknownMember", "DelegationContext"], ["4.2.1"],
         body_of(scope="ignored", client_id=None, extra={"a": [1, 2, {"b": None}]},
                 tags=["x"], version=2,
                 delegation_context={"chain": ["agent-a"], "depth": 1, "note": None}),
         "valid")
    case("nulls", "Every optional member explicitly null", ["NullOptional", "Workflow",
                                                           "DelegationContext", "ParentToken"],
         ["4.2.1"], body_of(workflow_id=None, workflow_step=None, workflow_enabled=None,
                            delegation_context=None, parent_token=None), "valid")
    case("empty-workflow-strings", "workflow_id and workflow_step \"\" mean absent "
         "(workflow_enabled false)", ["EmptyString", "Workflow"], ["4.2.1"],
         body_of(workflow_id="", workflow_step="", workflow_enabled=False), "valid")
    case("workflow-not-enabled", "workflow_id and workflow_step given with workflow_enabled "
         "false: kept, workflow_enabled false", ["Workflow"], ["4.2.1"],
         body_of(workflow_id="auto-patch-workflow-v1", workflow_step=S4,
                 workflow_enabled=False), "valid")
    case("workflow-enabled-absent", "workflow_id and workflow_step without workflow_enabled: "
         "workflow_enabled defaults to false", ["Workflow"], ["4.2.1"],
         body_of(workflow_id="auto-patch-workflow-v1", workflow_step=S1), "valid")
    case("delegation-empty-object", "delegation_context {}: chain and completed_steps default "
         "to []", ["DelegationContext"], ["4.2.1"], body_of(delegation_context={}), "valid")
    case("delegation-null-members", "delegation_context with chain and completed_steps null",
         ["DelegationContext", "NullOptional"], ["4.2.1"],
         body_of(delegation_context={"chain": None, "completed_steps": None}), "valid")
    case("parent-token", "parent_token given as a string", ["ParentToken"], ["4.2.1"],
         body_of(parent_token="eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"), "valid")
    case("reordered-minified", "Members in reverse order, no whitespace", ["Minimal"],
         ["4.2.1"], json.dumps(dict(reversed(list(BASE.items()))), separators=(",", ":")),
         "valid")
    case("whitespace", "Leading and trailing JSON whitespace (space, tab, CR, LF) around the "
         "object", ["Minimal"], ["4.2.1"], " \t\r\n" + body_of() + "\r\n\t ", "valid")
    case("escapes", "agent_id, scope and audience spelled with \\u escapes", ["InputEscapes"],
         ["4.2.1"],
         '{"grant_type": "agent\\u005fchecksum", "agent_id": "\\u0076ulnerability-patcher-v1", '
         '"computed_checksum": "%s", "requested_scopes": ["repo\\u003awrite"], '
         '"audience": "https:\\/\\/api.github.com"}' % CK_A, "valid")
    case("agent-id-128", "agent_id of 128 characters (the maximum)", ["AgentId"], ["4.2.1"],
         body_of(agent_id="A" + "b.-_9" * 25 + "xy"), "valid")
    case("agent-id-one", "agent_id of one character", ["AgentId"], ["4.2.1"],
         body_of(agent_id="7"), "valid")
    case("nesting-128", "An unknown member nested so that the body is exactly 128 levels deep",
         ["Nesting", "UnknownMember"], ["4.2.1"],
         '{"ignored": %s, %s' % (_nested(127), body_of()[1:]), "valid")

    # --- D1 / D2 invalid JSON and non-objects --------------------------------
    for cid, comment, body, flags in [
        ("empty-body", "Empty body", "", ["InvalidJson"]),
        ("truncated", "Truncated object", body_of()[:-1], ["InvalidJson"]),
        ("trailing-garbage", "Valid object followed by \" x\"", body_of() + " x",
         ["InvalidJson"]),
        ("trailing-object", "Two JSON objects back to back", body_of() + "{}", ["InvalidJson"]),
        ("trailing-comma", "Trailing comma in the top-level object",
         body_of()[:-1] + ",}", ["InvalidJson"]),
        ("single-quotes", "Single-quoted strings", body_of().replace('"', "'"), ["InvalidJson"]),
        ("nan", "NaN in an unknown member", body_of()[:-1] + ', "x": NaN}', ["InvalidJson",
                                                                           "UnknownMember"]),
        ("comment", "JavaScript comment", "/* c */ " + body_of(), ["InvalidJson"]),
        ("raw-newline", "Raw (unescaped) line feed inside a string value",
         body_of(agent_id="agent-x").replace("agent-x", "agent\nx"), ["InvalidJson"]),
        ("dup-top", "agent_id given twice (same value)",
         body_of()[:-1] + ', "agent_id": "vulnerability-patcher-v1"}', ["DuplicateKey"]),
        ("dup-escaped", "grant_type given twice, once as \"gr\\u0061nt_type\"",
         body_of()[:-1] + ', "gr\\u0061nt_type": "agent_checksum"}',
         ["DuplicateKey", "InputEscapes"]),
        ("dup-delegation", "Duplicate member inside delegation_context",
         body_of()[:-1] + ', "delegation_context": {"chain": [], "chain": []}}',
         ["DuplicateKey", "DelegationContext"]),
        ("dup-unknown-nested", "Duplicate member deep inside an unknown member",
         body_of()[:-1] + ', "extra": [{"a": {"b": 1, "b": 2}}]}',
         ["DuplicateKey", "UnknownMember"]),
        ("nesting-129", "Body nested 129 levels deep inside an unknown member",
         '{"ignored": %s, %s' % (_nested(128), body_of()[1:]), ["Nesting", "UnknownMember"]),
        ("non-object-array", "Top-level value []", "[]", ["NonObject"]),
        ("non-object-null", "Top-level value null", "null", ["NonObject"]),
        ("non-object-string", "Top-level value \"x\"", '"x"', ["NonObject"]),
        ("non-object-number", "Top-level value 42", "42", ["NonObject"]),
        ("non-object-array-of-request", "The request wrapped in an array",
         "[" + body_of() + "]", ["NonObject"]),
    ]:
        inv(cid, comment, flags, ["4.5.6"], body, D_INVALID_JSON)
    inv("json-beats-all", "Duplicate member AND an unsupported grant type AND missing "
        "members: Invalid JSON format wins",
        ["DuplicateKey", "Precedence", "GrantType"], ["4.3.1", "4.5.6"],
        '{"grant_type": "password", "grant_type": "password"}', D_INVALID_JSON)

    # --- D3 grant_type ------------------------------------------------------
    inv("grant-missing", "grant_type absent", ["GrantType"], ["4.2.1", "4.5.6"],
        body_of(grant_type=ABSENT), d_missing("grant_type"))
    inv("grant-null", "grant_type null", ["GrantType", "NullOptional"], ["4.2.1", "4.5.6"],
        body_of(grant_type=None), d_missing("grant_type"))
    inv("grant-empty", "grant_type \"\"", ["GrantType", "EmptyString"], ["4.2.1", "4.5.6"],
        body_of(grant_type=""), d_missing("grant_type"))
    inv("grant-number", "grant_type is a number", ["GrantType"], ["4.2.1", "4.5.6"],
        body_of(grant_type=1), d_invalid("grant_type"))
    inv("grant-array", "grant_type is [\"agent_checksum\"]", ["GrantType"], ["4.2.1", "4.5.6"],
        body_of(grant_type=["agent_checksum"]), d_invalid("grant_type"))
    inv("grant-password", "grant_type \"password\"", ["GrantType"], ["4.3.1", "4.5.2"],
        body_of(grant_type="password"), D_GRANT)
    inv("grant-case", "grant_type \"Agent_Checksum\" (case-sensitive)", ["GrantType"],
        ["4.3.1", "4.5.2"], body_of(grant_type="Agent_Checksum"), D_GRANT)
    inv("grant-space", "grant_type with a trailing space", ["GrantType"], ["4.3.1", "4.5.2"],
        body_of(grant_type="agent_checksum "), D_GRANT)
    inv("grant-urn-wrong", "URN with a different final segment", ["GrantType", "UrnGrantType"],
        ["4.3.1", "4.5.2"],
        body_of(grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer"), D_GRANT)
    inv("grant-unsupported-first", "Unsupported grant type with every other member missing: "
        "unsupported_grant_type, not a missing parameter", ["GrantType", "Precedence"],
        ["4.3.1", "4.5.2"], '{"grant_type": "client_credentials"}', D_GRANT)
    inv("grant-missing-first", "grant_type missing and every other member present but wrong: "
        "the missing grant_type is reported",
        ["GrantType", "Precedence"], ["4.3.1", "4.5.6"],
        json.dumps({"agent_id": "bad agent", "computed_checksum": "md5:00",
                    "workflow_enabled": "yes", "requested_scopes": "a b", "audience": 5,
                    "delegation_context": [], "parent_token": 1}), d_missing("grant_type"))

    # --- D4 agent_id --------------------------------------------------------
    inv("agent-missing", "agent_id absent", ["AgentId"], ["4.2.1", "4.5.6"],
        body_of(agent_id=ABSENT), d_missing("agent_id"))
    inv("agent-null", "agent_id null", ["AgentId", "NullOptional"], ["4.2.1", "4.5.6"],
        body_of(agent_id=None), d_missing("agent_id"))
    inv("agent-empty", "agent_id \"\"", ["AgentId", "EmptyString"], ["4.2.1", "4.5.6"],
        body_of(agent_id=""), d_missing("agent_id"))
    inv("agent-number", "agent_id is a number", ["AgentId"], ["4.2.1", "4.5.6"],
        body_of(agent_id=42), d_invalid("agent_id"))
    for cid, value, what in [
        ("agent-space", "bad agent", "contains a space"),
        ("agent-leading-dash", "-agent", "starts with '-'"),
        ("agent-trailing-newline", "agent\n", "ends with a line feed (whole-string match)"),
        ("agent-slash", "agent/1", "contains '/'"),
        ("agent-non-ascii", "agenté", "contains a non-ASCII letter"),
        ("agent-129", "a" * 129, "is 129 characters long"),
    ]:
        inv(cid, "agent_id %s" % what, ["AgentId"], ["4.2.1", "4.5.6"],
            body_of(agent_id=value), d_invalid("agent_id"))
    inv("agent-before-checksum", "Invalid agent_id and missing computed_checksum: agent_id is "
        "checked first", ["AgentId", "Checksum", "Precedence"], ["4.2.1", "4.5.6"],
        body_of(agent_id="bad agent", computed_checksum=ABSENT), d_invalid("agent_id"))

    # --- D5 computed_checksum -----------------------------------------------
    inv("ck-missing", "computed_checksum absent", ["Checksum"], ["4.2.1", "4.5.6"],
        body_of(computed_checksum=ABSENT), d_missing("computed_checksum"))
    inv("ck-null", "computed_checksum null", ["Checksum", "NullOptional"], ["4.2.1", "4.5.6"],
        body_of(computed_checksum=None), d_missing("computed_checksum"))
    inv("ck-empty", "computed_checksum \"\"", ["Checksum", "EmptyString"], ["4.2.1", "4.5.6"],
        body_of(computed_checksum=""), d_missing("computed_checksum"))
    hexd = CK_A[len("sha256:"):]
    for cid, value, what in [
        ("ck-upper", "sha256:" + hexd.upper(), "upper-case hex digits"),
        ("ck-upper-prefix", "SHA256:" + hexd, "upper-case prefix SHA256:"),
        ("ck-sha512", "sha512:" + hashlib.sha512(b"x").hexdigest(), "\"sha512:\" prefix"),
        ("ck-bare", hexd, "bare hex without prefix"),
        ("ck-short", CK_A[:-1], "63 hex digits"),
        ("ck-long", CK_A + "0", "65 hex digits"),
        ("ck-nonhex", CK_A[:-1] + "g", "non-hex digit 'g'"),
        ("ck-prefix-only", "sha256:", "prefix only"),
        ("ck-space", "sha256: " + hexd[:-1], "space after the colon"),
        ("ck-number", 12345, "a number"),
    ]:
        inv(cid, "computed_checksum: %s" % what, ["Checksum"], ["4.2.1", "4.5.6"],
            body_of(computed_checksum=value), D_CHECKSUM)

    # --- D6..D8 workflow ------------------------------------------------------
    inv("wf-id-number", "workflow_id is a number", ["Workflow"], ["4.2.1", "4.5.6"],
        body_of(workflow_id=7), d_invalid("workflow_id"))
    inv("wf-step-bool", "workflow_step is true", ["Workflow"], ["4.2.1", "4.5.6"],
        body_of(workflow_id="wf", workflow_step=True), d_invalid("workflow_step"))
    inv("wf-enabled-string", "workflow_enabled is the string \"true\"", ["Workflow"],
        ["4.2.1", "4.5.6"], body_of(workflow_id="wf", workflow_step="s",
                                    workflow_enabled="true"), d_invalid("workflow_enabled"))
    inv("wf-enabled-number", "workflow_enabled is 1", ["Workflow"], ["4.2.1", "4.5.6"],
        body_of(workflow_enabled=1), d_invalid("workflow_enabled"))
    inv("wf-enabled-no-id", "workflow_enabled true without workflow_id", ["Workflow"],
        ["4.2.1", "4.5.6"], body_of(workflow_step=S1, workflow_enabled=True), D_WF_MISSING)
    inv("wf-enabled-empty-step", "workflow_enabled true with workflow_step \"\"",
        ["Workflow", "EmptyString"], ["4.2.1", "4.5.6"],
        body_of(workflow_id="wf", workflow_step="", workflow_enabled=True), D_WF_MISSING)
    inv("wf-enabled-null-both", "workflow_enabled true, workflow_id and workflow_step null",
        ["Workflow", "NullOptional"], ["4.2.1", "4.5.6"],
        body_of(workflow_id=None, workflow_step=None, workflow_enabled=True), D_WF_MISSING)
    inv("wf-before-scopes", "workflow_enabled true without workflow_id AND requested_scopes "
        "missing: the workflow check comes first", ["Workflow", "Precedence"],
        ["4.2.1", "4.5.6"], body_of(workflow_enabled=True, requested_scopes=ABSENT),
        D_WF_MISSING)
    inv("wf-id-type-before-enabled", "workflow_id is a number and workflow_enabled true: the "
        "type error of workflow_id comes first", ["Workflow", "Precedence"],
        ["4.2.1", "4.5.6"], body_of(workflow_id=[], workflow_enabled=True),
        d_invalid("workflow_id"))

    # --- D9 requested_scopes ------------------------------------------------
    inv("scopes-missing", "requested_scopes absent", ["Scopes"], ["4.2.1", "4.5.6"],
        body_of(requested_scopes=ABSENT), d_missing("requested_scopes"))
    inv("scopes-null", "requested_scopes null", ["Scopes", "NullOptional"], ["4.2.1", "4.5.6"],
        body_of(requested_scopes=None), d_missing("requested_scopes"))
    inv("scopes-empty", "requested_scopes []", ["Scopes"], ["4.2.1", "4.5.6"],
        body_of(requested_scopes=[]), d_missing("requested_scopes"))
    inv("scopes-string", "requested_scopes as a space-delimited string instead of an array",
        ["Scopes"], ["4.2.1", "4.5.6"], body_of(requested_scopes="repo:write repo:read"),
        d_invalid("requested_scopes"))
    inv("scopes-number-element", "requested_scopes contains a number", ["Scopes"],
        ["4.2.1", "4.5.6"], body_of(requested_scopes=["repo:write", 5]),
        d_invalid("requested_scopes"))
    inv("scopes-null-element", "requested_scopes contains null", ["Scopes", "NullOptional"],
        ["4.2.1", "4.5.6"], body_of(requested_scopes=[None]), d_invalid("requested_scopes"))
    inv("scopes-type-before-syntax", "requested_scopes [\"bad scope\", 5]: the array is "
        "type-checked as a whole before any scope syntax", ["Scopes", "Precedence"],
        ["4.2.1", "4.5.6"], body_of(requested_scopes=["bad scope", 5]),
        d_invalid("requested_scopes"))
    for cid, scopes, bad_scope, what, extra in [
        ("scope-space", ["repo:write", "repo write"], "repo write", "contains a space", []),
        ("scope-empty", ["repo:write", ""], "", "is the empty string", ["EmptyString"]),
        ("scope-quote", ['say"hi'], 'say"hi', "contains '\"' (escaped in the message)",
         ["ScopeQuoting"]),
        ("scope-backslash", ["a\\b"], "a\\b", "contains '\\' (escaped in the message)",
         ["ScopeQuoting"]),
        ("scope-tab", ["a\tb"], "a\tb", "contains a tab (\\t in the message)",
         ["ScopeQuoting"]),
        ("scope-non-ascii", ["répertoire:read"], "répertoire:read",
         "contains a non-ASCII letter (raw UTF-8 in the message)", ["ScopeQuoting"]),
        ("scope-del", ["a\x7fb"], "a\x7fb", "contains DEL U+007F (raw in the message)",
         ["ScopeQuoting"]),
        ("scope-first-bad", ["ok", "bad one", "bad\"two"], "bad one",
         "two malformed scopes: the first is reported", ["Precedence"]),
    ]:
        inv(cid, "A requested scope %s" % what, ["Scopes"] + extra, ["4.2.1"],
            body_of(requested_scopes=scopes), d_scope(bad_scope))
    inv("scope-before-audience", "Malformed scope and missing audience: the scope is reported",
        ["Scopes", "Audience", "Precedence"], ["4.2.1"],
        body_of(requested_scopes=["a b"], audience=ABSENT), d_scope("a b"))

    # --- D10 audience -------------------------------------------------------
    for cid, value, what, flags in [
        ("aud-missing", ABSENT, "absent", []),
        ("aud-null", None, "null", ["NullOptional"]),
        ("aud-empty", "", "\"\"", ["EmptyString"]),
        ("aud-empty-array", [], "[]", []),
    ]:
        inv(cid, "audience %s" % what, ["Audience"] + flags, ["4.2.1", "4.5.6"],
            body_of(audience=value), d_missing("audience"))
    for cid, value, what in [
        ("aud-number", 5, "is a number"),
        ("aud-object", {"aud": "x"}, "is an object"),
        ("aud-empty-element", ["https://api.github.com", ""], "array contains \"\""),
        ("aud-number-element", ["https://api.github.com", 5], "array contains a number"),
        ("aud-nested", [["https://api.github.com"]], "array contains an array"),
    ]:
        inv(cid, "audience %s" % what, ["Audience"], ["4.2.1", "4.5.6"],
            body_of(audience=value), d_invalid("audience"))
    inv("aud-before-delegation", "audience missing and delegation_context invalid: audience "
        "is reported", ["Audience", "DelegationContext", "Precedence"], ["4.2.1", "4.5.6"],
        body_of(audience=ABSENT, delegation_context="x"), d_missing("audience"))

    # --- D11 delegation_context ---------------------------------------------
    for cid, value, desc, what in [
        ("dc-string", "supervisor-agent", d_invalid("delegation_context"), "is a string"),
        ("dc-array", ["supervisor-agent"], d_invalid("delegation_context"), "is an array"),
        ("dc-chain-string", {"chain": "supervisor-agent"}, d_invalid("delegation_context.chain"),
         "chain is a string"),
        ("dc-chain-number", {"chain": ["supervisor-agent", 1]},
         d_invalid("delegation_context.chain"), "chain contains a number"),
        ("dc-chain-bad-id", {"chain": ["supervisor agent"]},
         d_invalid("delegation_context.chain"), "chain contains an invalid agent id"),
        ("dc-chain-empty-id", {"chain": [""]}, d_invalid("delegation_context.chain"),
         "chain contains \"\""),
        ("dc-steps-object", {"chain": [], "completed_steps": {}},
         d_invalid("delegation_context.completed_steps"), "completed_steps is an object"),
        ("dc-steps-bad-id", {"completed_steps": ["step 1"]},
         d_invalid("delegation_context.completed_steps"),
         "completed_steps contains an invalid step id"),
        ("dc-steps-null-element", {"completed_steps": [None]},
         d_invalid("delegation_context.completed_steps"), "completed_steps contains null"),
        ("dc-chain-before-steps", {"completed_steps": ["bad step"], "chain": ["bad agent"]},
         d_invalid("delegation_context.chain"),
         "chain and completed_steps both invalid: chain is checked first (member order in "
         "the body does not matter)"),
    ]:
        flags = ["DelegationContext"]
        if cid == "dc-chain-before-steps":
            flags.append("Precedence")
        if cid == "dc-steps-null-element":
            flags.append("NullOptional")
        if cid == "dc-chain-empty-id":
            flags.append("EmptyString")
        inv(cid, "delegation_context %s" % what, flags, ["4.2.1", "4.5.6"],
            body_of(delegation_context=value), desc)

    # --- D12 parent_token ---------------------------------------------------
    for cid, value, what, flags in [
        ("pt-empty", "", "\"\"", ["EmptyString"]),
        ("pt-number", 1, "a number", []),
        ("pt-object", {"token": "x"}, "an object", []),
    ]:
        inv(cid, "parent_token is %s" % what, ["ParentToken"] + flags, ["4.2.1", "4.5.6"],
            body_of(parent_token=value), d_invalid("parent_token"))
    inv("dc-before-pt", "delegation_context and parent_token both invalid: "
        "delegation_context is reported", ["DelegationContext", "ParentToken", "Precedence"],
        ["4.2.1", "4.5.6"], body_of(parent_token=5, delegation_context=[]),
        d_invalid("delegation_context"))
    return cases


def build_token_vectors():
    cases = build_token_cases()
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    results = {}
    for c in cases:
        try:
            r = ("valid", decode_token_request(c["body"].encode("utf-8")))
        except Reject as e:
            r = ("invalid", e.error, e.description)
        want = c["expect"]
        got = "valid" if r[0] == "valid" else r[2]
        assert got == want, (c["id"], r, want)
        results[c["id"]] = r

    # Hand-written cross-checks of a few decoded requests.
    d = results["s422"][1]
    assert d["delegation_context"]["chain"][-1] == d["agent_id"]
    assert d["requested_scopes"] == ["repo:write", "vulnerability:read"]
    assert results["scope-duplicates"][1]["requested_scopes"] == ["b:read", "a:write", "c"]
    assert results["minimal"][1] == {
        "grant_type": "agent_checksum", "agent_id": "vulnerability-patcher-v1",
        "computed_checksum": CK_A, "workflow_id": None, "workflow_step": None,
        "workflow_enabled": False, "requested_scopes": ["repo:write"],
        "audience": "https://api.github.com",
        "delegation_context": {"chain": [], "completed_steps": []}, "parent_token": None}
    assert results["escapes"][1] == results["minimal"][1]
    assert results["reordered-minified"][1] == results["minimal"][1]
    assert len(results["agent-id-128"][1]["agent_id"]) == 128
    assert rfc6749_description(results["scope-quote"][2]) == "Malformed scope: 'say'hi'"
    assert rfc6749_description(results["scope-tab"][2]) == "Malformed scope: 'a?b'"
    # Section 6.6.3 patcher: decoded request -> workflow authorization and
    # sequence hashes agree with the other two files' inputs.
    p = results["s663-patcher"][1]
    assert authorize(WF_633, {"agent_id": p["agent_id"], "workflow_step": p["workflow_step"],
                              "completed_steps": p["delegation_context"]["completed_steps"]}) \
        is None
    seq = {c["id"]: c for c in build_sequence_cases()}["s663-patcher"]
    assert (seq["chain"], seq["agent_id"], seq["completed_steps"], seq["workflow_step"]) == (
        p["delegation_context"]["chain"], p["agent_id"],
        p["delegation_context"]["completed_steps"], p["workflow_step"])

    tests = []
    used_flags, used_desc, used_errors = set(), set(), set()
    for i, c in enumerate(cases):
        r = results[c["id"]]
        flags = list(c["flags"]) + (["Invalid"] if r[0] == "invalid" else [])
        flags = _sorted_flags(flags, TOKEN_FLAGS)
        used_flags.update(flags)
        test = {"tcId": i + 1, "comment": c["comment"], "flags": flags,
                "sections": sorted(set(c["sections"]), key=_section_key), "body": c["body"]}
        if r[0] == "valid":
            test["result"] = "valid"
            test["decoded"] = r[1]
        else:
            used_errors.add(r[1])
            used_desc.add(r[2] if not r[2].startswith("Malformed scope: ") else "scope")
            test.update({"result": "invalid", "error": r[1], "status": TOKEN_STATUS[r[1]],
                         "description": rfc6749_description(r[2])})
        tests.append(test)
    assert not set(TOKEN_FLAGS) - used_flags, set(TOKEN_FLAGS) - used_flags
    assert used_errors == set(TOKEN_ERRORS), used_errors
    assert used_desc == set(ALL_DESCRIPTIONS) | {"scope"}, set(ALL_DESCRIPTIONS) - used_desc
    return {
        "algorithm": "token-request-decoding",
        "draft": DRAFT,
        "sections": ["4.2.1", "4.2.2", "4.3.1", "4.5.2", "4.5.6", "6.6.3"],
        "vectorsVersion": VECTORS_VERSION,
        "schema": VECTORS_SCHEMA,
        "generator": GENERATOR_PATH,
        "generatorPython": "%d.%d" % sys.version_info[:2],
        "numberOfTests": len(tests),
        "notes": dict(TOKEN_FLAGS),
        "errors": dict(TOKEN_ERRORS),
        "descriptions": description_table(),
        "testGroups": [{"type": "TokenRequestDecodingTest", "tests": tests}],
    }


# ===========================================================================
# Output
# ===========================================================================

FILES = {
    "sequence_hashes.json": build_sequence_vectors,
    "workflow_authorization.json": build_workflow_vectors,
    "token_request_decoding.json": build_token_vectors,
}


def render(vectors):
    # Consecutive tcIds across groups.
    n = 0
    for g in vectors["testGroups"]:
        for t in g["tests"]:
            n += 1
            assert t["tcId"] == n, (vectors["algorithm"], t["tcId"], n)
    assert n == vectors["numberOfTests"]
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if any file differs from what would be "
                             "generated")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)

    status = 0
    for name, build in FILES.items():
        text = render(build())
        data = text.encode("utf-8")
        path = args.output_dir / name
        count = json.loads(text)["numberOfTests"]
        if args.check:
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                print("%s: missing" % path, file=sys.stderr)
                status = 1
                continue
            if current != data:
                print("%s: out of date; re-run %s" % (path, GENERATOR_PATH), file=sys.stderr)
                status = 1
            else:
                print("%s: up to date (%d tests)" % (path, count))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print("wrote %s (%d tests)" % (path, count))
    return status


if __name__ == "__main__":
    sys.exit(main())
