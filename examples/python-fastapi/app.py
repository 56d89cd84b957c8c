"""Example resource server protected by intent tokens (draft-goswami-agentic-jwt-00
§6.5.3, §9.2.2) with agentic_jwt.fastapi: two routes at two steps of the workflow
``dependency-update-v1`` (see agent.py), each with its own scope.

    GET  /manifests/{name}   scope repo:read,  step step_1_read_manifest
    POST /patches            scope repo:write, step step_2_apply_patch

Run it (after ``pip install ./crates/python fastapi uvicorn``):

    AJWT_ISSUER=http://127.0.0.1:8080 API_PUBLIC_BASE_URL=http://127.0.0.1:8000 \\
        uvicorn --factory app:create_app --port 8000

Configuration (environment): ``AJWT_ISSUER`` (the issuer; its RFC 8414 metadata and JWKS
are fetched from it), ``API_AUDIENCE`` (the ``aud`` this API accepts, default
``https://api.github.com``), ``API_PUBLIC_BASE_URL`` (the scheme and authority agents
use to reach this server: DPoP proofs name it, RFC 9449 §4.3), ``API_DPOP_NONCES=1`` to
require server nonces (RFC 9449 §8).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from agentic_jwt import IntentClaims, Verifier
from agentic_jwt.fastapi import install, require_intent

WORKFLOW_ID = "dependency-update-v1"
READ_STEP = "step_1_read_manifest"
PATCH_STEP = "step_2_apply_patch"

MANIFESTS = {
    "web-frontend": {"dependencies": {"lodash": "4.17.15", "express": "4.18.2"}},
}


class Patch(BaseModel):
    """A dependency bump."""

    manifest: str
    package: str
    version: str


def create_app(
    verifier: Optional[Verifier] = None,
    *,
    public_base_url: Optional[str] = None,
) -> FastAPI:
    """The API. Without arguments everything comes from the environment (see above)."""
    if verifier is None:
        verifier = Verifier(
            issuer=os.environ["AJWT_ISSUER"],
            audience=os.environ.get("API_AUDIENCE", "https://api.github.com"),
            pop="required",
            nonces=os.environ.get("API_DPOP_NONCES") == "1",
        )
    if public_base_url is None:
        public_base_url = os.environ["API_PUBLIC_BASE_URL"]

    app = FastAPI(title="agentic-jwt example resource server")
    install(app)  # refusals answered with the RFC 6750 JSON body and the exact challenge

    can_read = require_intent(
        verifier,
        scopes=["repo:read"],
        workflow_step=READ_STEP,
        workflow_id=WORKFLOW_ID,
        public_base_url=public_base_url,
    )
    can_patch = require_intent(
        verifier,
        scopes=["repo:write"],
        workflow_step=PATCH_STEP,
        workflow_id=WORKFLOW_ID,
        public_base_url=public_base_url,
    )

    @app.get("/manifests/{name}")
    def read_manifest(name: str, claims: IntentClaims = Depends(can_read)) -> Dict[str, Any]:
        manifest = MANIFESTS.get(name, {"dependencies": {}})
        return {"manifest": name, **manifest, "read_by": claims.sub}

    @app.post("/patches")
    def apply_patch(patch: Patch, claims: IntentClaims = Depends(can_patch)) -> Dict[str, Any]:
        deps = MANIFESTS.setdefault(patch.manifest, {"dependencies": {}})["dependencies"]
        deps[patch.package] = patch.version
        return {
            "status": "patch applied",
            "applied_by": claims.sub,
            "workflow_step": claims.workflow_step,
            "delegation_chain": claims.delegation_chain,
        }

    @app.get("/health")
    def health() -> Dict[str, str]:
        return {"status": "ok"}

    return app
