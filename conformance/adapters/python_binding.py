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
* `authorize_step` and `decode_token_request` are issuer-side rules the
  package does not offer: answered `unsupported_op` (skipped by the suite).
"""

import json
import sys

import agentic_jwt

PROTOCOL = "ajwt-vectors-adapter/1"
OPS = ("checksum", "sequence_hash")


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


HANDLERS = {"checksum": op_checksum, "sequence_hash": op_sequence_hash}


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
