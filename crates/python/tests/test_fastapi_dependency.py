"""agentic_jwt.fastapi (§6.5.3, RFC 6750 §3, RFC 9449 §4.3 step 9, §7.1, §8): the URL the
proof is checked against (configured public base URL + the path as sent; the Host and
X-Forwarded-* headers only when told to trust them), refusals answered with exactly the
verifier's status, challenge and nonce, and the RFC 6750 body when ``install`` is used.
In-process ASGI (Starlette's TestClient); the full flow with real sockets is
test_e2e_fastapi.py.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from agentic_jwt import AgentKey, IntentClaims, Verifier, VerificationError
from agentic_jwt.fastapi import IntentRefused, install, request_url, require_intent, verify_request

ISSUER = "https://idp.example"
AUD = "https://api.example.com"


def url_app(**kw: Any) -> TestClient:
    async def show(request: Request) -> JSONResponse:
        return JSONResponse({"url": request_url(request, **kw)})

    inner = Starlette(routes=[Route("/{rest:path}", show, methods=["GET", "POST"])])
    app = Starlette(routes=[Mount("/api", app=inner), Route("/{rest:path}", show, methods=["GET", "POST"])])
    return TestClient(app, base_url="http://testserver.local:8000")


def test_rfc9449_s4_3_public_base_url_and_the_path_as_sent():
    c = url_app(public_base_url="https://api.example.com/")
    assert c.get("/patches?x=1").json()["url"] == "https://api.example.com/patches"
    # Percent-encoding as the client sent it (raw_path), not the decoded path.
    assert c.get("/items/a%20b/%C3%A9").json()["url"] == "https://api.example.com/items/a%20b/%C3%A9"
    # Under a Mount: the full path the client signed.
    assert c.get("/api/v1/patches").json()["url"] == "https://api.example.com/api/v1/patches"
    # Forwarded headers never change a configured base URL.
    r = c.get("/p", headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"})
    assert r.json()["url"] == "https://api.example.com/p"
    # A base URL with a path prefix (a proxy stripping /svc).
    assert url_app(public_base_url="https://gw.example/svc").get("/p").json()["url"] == "https://gw.example/svc/p"


def test_rfc9449_s4_3_forwarded_headers_are_ignored_unless_trusted():
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com, proxy.internal"}
    untrusted = url_app()
    assert untrusted.get("/p", headers=headers).json()["url"] == "http://testserver.local:8000/p"
    trusted = url_app(trust_forwarded_headers=True)
    assert trusted.get("/p", headers=headers).json()["url"] == "https://api.example.com/p"
    assert trusted.get("/p").json()["url"] == "http://testserver.local:8000/p"


def verifier(**kw: Any) -> Verifier:
    key = AgentKey.generate("ES256").public_jwk()
    key.update({"kid": "k1", "use": "sig", "alg": "ES256"})
    return Verifier(ISSUER, AUD, jwks={"keys": [key]}, status_lists="off", **kw)


def protected_app(v: Verifier, *, installed: bool) -> TestClient:
    app = FastAPI()
    if installed:
        install(app)
    dep = require_intent(v, scopes=["repo:write"], workflow_step="step_4", public_base_url=AUD)

    @app.post("/patches")
    def patches(claims: IntentClaims = Depends(dep)) -> Dict[str, Any]:
        return {"sub": claims.sub}  # pragma: no cover - never reached without a token

    return TestClient(app)


def expected(v: Verifier, authorization: Any, dpop: Any) -> VerificationError:
    """What the verifier itself answers for the same request (the dependency must pass it
    through unchanged)."""
    with pytest.raises(VerificationError) as e:
        v.verify(authorization, dpop, "POST", f"{AUD}/patches", scopes=["repo:write"], workflow_step="step_4")
    return e.value


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Authorization", "Bearer not-a-jwt")],
        [("Authorization", "DPoP a.b.c")],
        [("Authorization", "DPoP a.b.c"), ("DPoP", "x.y.z")],
        [("Authorization", "DPoP a.b.c"), ("Authorization", "DPoP d.e.f")],
        [("Authorization", "Basic dXNlcjpwYXNz")],
    ],
)
def test_rfc6750_s3_refusals_carry_the_verifiers_exact_answer(headers: List[Any]):
    v = verifier()
    authorization = [value for name, value in headers if name == "Authorization"] or None
    dpop = [value for name, value in headers if name == "DPoP"] or None
    want = expected(v, authorization, dpop)
    for installed in (True, False):
        r = protected_app(v, installed=installed).post("/patches", headers=headers)
        assert r.status_code == want.status
        assert r.headers["www-authenticate"] == want.www_authenticate
        for name, value in want.headers.items():
            assert r.headers[name] == value
        body = {"error": want.error, "error_description": want.description} if want.error else {}
        assert r.json() == (body if installed else {"detail": body})


def test_verify_request_and_intent_refused_work_with_plain_starlette():
    v = verifier()

    async def handler(request: Request) -> JSONResponse:
        try:
            verify_request(v, request, scopes=["repo:write"], public_base_url=AUD)
        except VerificationError as e:
            refused = IntentRefused(e)
            return JSONResponse(refused.detail, status_code=refused.status_code, headers=refused.headers)
        return JSONResponse({"ok": True})  # pragma: no cover

    c = TestClient(Starlette(routes=[Route("/patches", handler, methods=["POST"])]))
    r = c.post("/patches", headers={"Authorization": "Bearer x.y.z"})
    want = expected(v, ["Bearer x.y.z"], None)
    assert r.status_code == want.status and r.headers["www-authenticate"] == want.www_authenticate
