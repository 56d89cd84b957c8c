"""Example agents calling the API of app.py with agentic_jwt.httpx.IntentAuth
(draft-goswami-agentic-jwt-00 §2, §4.3.4, §6.6, RFC 9449).

The workflow ``dependency-update-v1`` has two steps: ``manifest-reader`` reads the
manifest (step 1, ``repo:read``) and delegates to ``dependency-patcher``, which applies
the patch (step 2, ``repo:write``) with the reader's token as ``parent_token`` and
step 1 in its completed steps (§4.3.4). Each request carries ``Authorization: DPoP
<intent token>`` and a fresh DPoP proof of the agent's key; each token request
recomputes the agent's checksum from its live specification (§5.5.1).

Run it against ``ajwt serve`` and app.py:

    AJWT_ISSUER=http://127.0.0.1:8080 AJWT_CLIENT_ID=... AJWT_CLIENT_SECRET=... \\
        API_URL=http://127.0.0.1:8000 python agent.py

The client needs ``register:intent`` (it registers the workflow and both agents, which
is idempotent) and ``generate:intent-token``: the admin client of ``ajwt serve``
(``<data-dir>/admin-client.json``) has both. The agents' keys are kept in
``$AGENT_KEY_DIR`` (default ``./agent-keys``, files mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Tuple

import httpx

from agentic_jwt import AgentKey
from agentic_jwt.client import AgentIdentity, AgentSession, IssuerClient, WorkflowTracker
from agentic_jwt.httpx import IntentAuth

WORKFLOW_ID = "dependency-update-v1"
READ_STEP = "step_1_read_manifest"
PATCH_STEP = "step_2_apply_patch"
READER = "manifest-reader"
#: The reader's scopes: its own (repo:read) and the one it delegates to the patcher. A
#: delegated agent gets at most the scopes of its parent's token (§4.3.4, §9.3), which the
#: issuer checks against ``parent_token``.
READER_SCOPES = ["repo:read", "repo:write"]
PATCHER = "dependency-patcher"

#: The workflow definition (§6.3.3).
WORKFLOW = {
    "workflow_id": WORKFLOW_ID,
    "steps": {
        READ_STEP: {"required": True, "requires_approval": False, "agent_id": READER},
        PATCH_STEP: {"required": True, "requires_approval": False, "agent_id": PATCHER},
    },
}


def agent_spec(agent_id: str, prompt: str) -> Dict[str, Any]:
    """An agent specification (§5.2.1)."""
    return {
        "agent_id": agent_id,
        "prompt": prompt,
        "tools": [
            {
                "name": "http_request",
                "description": "Call the repository API",
                "parameters": {"type": "object", "properties": {"url": {"type": "string"}}},
            }
        ],
        "configuration": {"model_name": "example-model", "temperature": 0.0},
    }


def load_or_generate_key(path: Path, alg: str) -> AgentKey:
    """The agent's key from ``path`` (PKCS#8 PEM), or a new one written there with mode
    0600 (as ``ajwt_client::load_or_generate_key``). The key must outlive the process:
    the issuer binds tokens to the key registered first, and registering the same
    specification again is "unchanged" (§5.4), so a new key would never be registered."""
    try:
        return AgentKey.from_pem(path.read_bytes())
    except FileNotFoundError:
        pass
    key = AgentKey.generate(alg)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.private_pem())
    return key


def setup(issuer: IssuerClient, key_dir: Path) -> Tuple[AgentIdentity, AgentIdentity]:
    """Registers the workflow and both agents (idempotent, §5.4, §6.3) and returns their
    identities, with their keys kept in ``key_dir``."""
    issuer.register_workflow(WORKFLOW)
    reader = AgentIdentity(
        agent_spec(READER, "You read package manifests and report outdated dependencies."),
        load_or_generate_key(key_dir / f"{READER}.pem", "ES256"),
    )
    patcher = AgentIdentity(
        agent_spec(PATCHER, "You apply approved dependency updates, nothing else."),
        load_or_generate_key(key_dir / f"{PATCHER}.pem", "EdDSA"),
    )
    for identity in (reader, patcher):
        issuer.register_agent(identity.spec, identity.key)
    return reader, patcher


def run(
    issuer: IssuerClient,
    api_url: str,
    reader: AgentIdentity,
    patcher: AgentIdentity,
    audience: str = "https://api.github.com",
) -> Dict[str, Any]:
    """The workflow: the reader reads the manifest at step 1, then delegates to the
    patcher, which bumps lodash at step 2. Returns both responses' JSON."""
    reader_session = AgentSession(reader, issuer, WorkflowTracker(WORKFLOW_ID), audience)
    with httpx.Client(base_url=api_url) as http:
        read = http.get(
            "/manifests/web-frontend",
            auth=IntentAuth(reader_session, step=READ_STEP, scopes=READER_SCOPES),
        )
        read.raise_for_status()
        reader_session.complete_step(READ_STEP)

        # §4.3.4: the child's context is the reader's chain, its completed steps and
        # its intent token as parent_token.
        patcher_session = AgentSession(patcher, issuer, reader_session.delegate(), audience)
        patched = http.post(
            "/patches",
            json={"manifest": "web-frontend", "package": "lodash", "version": "4.17.21"},
            auth=IntentAuth(patcher_session, step=PATCH_STEP, scopes=["repo:write"]),
        )
        patched.raise_for_status()
    return {"read": read.json(), "patched": patched.json()}


def main() -> None:
    issuer = IssuerClient.from_env()
    reader, patcher = setup(issuer, Path(os.environ.get("AGENT_KEY_DIR", "agent-keys")))
    result = run(
        issuer,
        os.environ.get("API_URL", "http://127.0.0.1:8000"),
        reader,
        patcher,
        os.environ.get("API_AUDIENCE", "https://api.github.com"),
    )
    print(result["read"])
    print(result["patched"])


if __name__ == "__main__":
    main()
