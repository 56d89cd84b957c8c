#!/usr/bin/env python3
"""Conformance adapter (protocol ajwt-vectors-adapter/1, see PROTOCOL.md) over
the `agentic_jwt` Python package (crates/python): what a Python agent runtime
gets from `pip install ./crates/python`.

    ajwt conformance vectors --adapter "python3 conformance/adapters/python_binding.py"

(python3 being an interpreter where `agentic_jwt` is installed.)

Ops:
* `checksum` (draft-goswami-agentic-jwt-00 §5.2-§5.3): `agentic_jwt.checksum`
  and `agentic_jwt.canonical` over the exact bytes of the vector's `spec`, in
  the requested profile (`jcs` §5.3.1 / `python-ref` §5.3.2); a rejection is
  the ChecksumError's `.kind`.
* `sequence_hash` (§4.4.4): `agentic_jwt.delegation_hash` and
  `agentic_jwt.sequence_hash`.
* `authorize_step` (§4.3.3, §4.5.5, §6.6.4): `agentic_jwt.authorize_step`
  over the exact workflow registration text; a refusal is the ProtocolError's
  error/status/reason/description/missing_steps.
* `decode_token_request` (§4.2.1, §4.5.6): `agentic_jwt.decode_token_request`
  over the exact body text; a refusal is the ProtocolError's
  error/status/description.
"""

import json
import sys

import agentic_jwt

PROTOCOL = "ajwt-vectors-adapter/1"
OPS = ("checksum", "sequence_hash", "authorize_step", "decode_token_request")


def op_checksum(req):
    spec, profile = req.get("spec"), req.get("profile", "jcs")
    if not isinstance(spec, str) or not isinstance(profile, str):
        return {"error": "bad_request", "message": "checksum needs a string spec and profile"}
    try:
        # The exact text as UTF-8 bytes (PROTOCOL.md "Exact text"); a str that
        # has no UTF-8 form (lone surrogates) is passed as is and refused.
        document = spec.encode("utf-8")
    except UnicodeEncodeError:
        document = spec
    try:
        canonical = agentic_jwt.canonical(document, profile)
        digest = agentic_jwt.checksum(document, profile)
    except agentic_jwt.ChecksumError as err:
        return {"result": "invalid", "error": err.kind, "message": str(err)}
    return {"result": "valid", "checksum": digest, "canonical": canonical.decode("utf-8")}


def op_sequence_hash(req):
    chain, agent_id = req.get("chain"), req.get("agent_id")
    completed, step = req.get("completed_steps"), req.get("workflow_step")
    if not (isinstance(chain, list) and isinstance(agent_id, str) and isinstance(completed, list)):
        return {"error": "bad_request", "message": "sequence_hash needs chain, agent_id, completed_steps"}
    return {
        "result": "valid",
        "delegation_chain": agentic_jwt.delegation_hash(chain, agent_id),
        "step_sequence_hash": agentic_jwt.sequence_hash(completed, step),
    }


def exact_bytes(text):
    """The exact text as UTF-8 bytes (PROTOCOL.md), or the str when it has no UTF-8 form."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text


def refused(err, *members):
    out = {"result": "invalid", "error": err.error, "status": err.status, "description": err.description}
    for name in members:
        out[name] = getattr(err, name)
    return out


def op_authorize_step(req):
    workflow, agent_id = req.get("workflow"), req.get("agent_id")
    step, completed = req.get("workflow_step"), req.get("completed_steps")
    if not (isinstance(workflow, str) and isinstance(agent_id, str) and isinstance(step, str)
            and isinstance(completed, list)):
        return {"error": "bad_request",
                "message": "authorize_step needs workflow, agent_id, workflow_step and completed_steps"}
    try:
        agentic_jwt.authorize_step(exact_bytes(workflow), agent_id, step, completed)
    except agentic_jwt.ProtocolError as err:
        if err.reason is None:  # the workflow registration itself was refused
            return dict(refused(err), message="workflow registration refused: %s" % err)
        return refused(err, "reason", "missing_steps")
    return {"result": "valid"}


def op_decode_token_request(req):
    body = req.get("body")
    if not isinstance(body, str):
        return {"error": "bad_request", "message": "decode_token_request needs a string body"}
    try:
        decoded = agentic_jwt.decode_token_request(exact_bytes(body))
    except agentic_jwt.ProtocolError as err:
        return refused(err)
    return {"result": "valid", "decoded": decoded}


HANDLERS = {"checksum": op_checksum, "sequence_hash": op_sequence_hash,
            "authorize_step": op_authorize_step, "decode_token_request": op_decode_token_request}


def answer(req):
    if not isinstance(req, dict):
        return {"error": "bad_request", "message": "a request is a JSON object"}
    op = req.get("op")
    if op == "hello":
        return {"protocol": PROTOCOL, "name": "agentic_jwt (Python binding of the Rust crates)",
                "version": agentic_jwt.__version__, "ops": list(OPS)}
    if op not in HANDLERS:
        return {"error": "unsupported_op", "message": "op %r is not offered by the agentic_jwt package" % (op,)}
    try:
        return HANDLERS[op](req)
    except Exception as exc:  # never die on one request
        return {"error": "internal", "message": "%s: %s" % (type(exc).__name__, exc)}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            resp = {"error": "bad_request", "message": "not JSON: %s" % exc}
        else:
            resp = answer(req)
            if isinstance(req, dict) and "id" in req:
                resp["id"] = req["id"]
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
