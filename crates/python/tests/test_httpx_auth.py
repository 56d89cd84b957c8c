"""agentic_jwt.httpx.IntentAuth against a small real HTTP server (RFC 9449 §4.2, §8-§9;
draft-goswami-agentic-jwt-00 §9.2.2): ``Authorization: DPoP <token>``, a fresh proof per
request bound to the token (``ath``), one retry on ``use_dpop_nonce`` with the nonce
given, no retry of any other 4xx, nonces remembered per origin; sync and async clients.
Every proof is checked with PyJWT (the independent JOSE implementation) and hashlib.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import json
import threading
from typing import Any, Dict, List, Optional

import httpx
import jwt
import pytest

from agentic_jwt import AgentKey
from agentic_jwt.httpx import IntentAuth, is_use_dpop_nonce

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2ln"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: List[Dict[str, Any]] = []
        self.generation = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def nonce(self) -> str:
        return f"nonce-{self.generation}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def answer(self, status: int, body: Dict[str, Any], headers: Dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        proof = self.headers.get("DPoP")
        claims = jwt.decode(proof, options={"verify_signature": False}) if proof else {}
        self.server.seen.append(
            {"path": self.path, "authorization": self.headers.get("Authorization"), "dpop": proof,
             "claims": claims}
        )
        path = self.path.split("?")[0]
        srv = self.server
        challenge = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 EdDSA"'
        if path == "/nonce":
            if claims.get("nonce") != srv.nonce():
                return self.answer(401, {"error": "use_dpop_nonce"},
                                   {"WWW-Authenticate": challenge, "DPoP-Nonce": srv.nonce()})
            return self.answer(200, {"ok": True, "nonce": claims["nonce"]}, {})
        if path == "/always-nonce":
            srv.generation += 1
            return self.answer(401, {}, {"WWW-Authenticate": challenge, "DPoP-Nonce": srv.nonce()})
        if path == "/body-nonce":
            if claims.get("nonce") != "from-body":
                return self.answer(400 if "bad" in self.path else 401, {"error": "use_dpop_nonce"},
                                   {"DPoP-Nonce": "from-body"})
            return self.answer(200, {"ok": True}, {})
        if path == "/invalid":
            return self.answer(401, {"error": "invalid_token"},
                               {"WWW-Authenticate": 'DPoP error="invalid_token", algs="ES256"',
                                "DPoP-Nonce": "ignored"})
        if path == "/forbidden":
            return self.answer(403, {"error": "insufficient_scope"},
                               {"WWW-Authenticate": 'DPoP error="insufficient_scope", scope="repo:write"'})
        return self.answer(200, {"ok": True}, {})

    do_GET = handle_any
    do_POST = handle_any
    do_DELETE = handle_any


@pytest.fixture()
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


class FakeIdentity:
    def __init__(self, key: AgentKey) -> None:
        self.key = key


class FakeSession:
    """What IntentAuth needs of an AgentSession: the token of a step and the agent key."""

    def __init__(self, key: AgentKey) -> None:
        self.identity = FakeIdentity(key)
        self.calls: List[Any] = []

    def intent_token(self, step: Optional[str] = None, scopes: Any = ()) -> str:
        self.calls.append((step, tuple(scopes)))
        return TOKEN


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def check_proof(seen: Dict[str, Any], key: AgentKey, method: str, url: str, nonce: Optional[str]) -> str:
    """The proof verified by PyJWT with the key in its own header (RFC 9449 §4.3), which
    must be the agent's public key; returns its jti."""
    header = jwt.get_unverified_header(seen["dpop"])
    assert header["typ"] == "dpop+jwt"
    assert header["jwk"] == key.public_jwk()
    public = jwt.PyJWK.from_dict(header["jwk"], algorithm=header["alg"])
    claims = jwt.decode(seen["dpop"], public.key, algorithms=[header["alg"]])
    assert seen["authorization"] == f"DPoP {TOKEN}"
    assert claims["htm"] == method
    assert claims["htu"] == url
    assert claims["ath"] == b64url_sha256(TOKEN.encode("ascii"))
    assert claims.get("nonce") == nonce
    return claims["jti"]


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_rfc9449_s9_use_dpop_nonce_is_retried_once_with_the_nonce(server, alg):
    key = AgentKey.generate(alg)
    session = FakeSession(key)
    auth = IntentAuth(session, step="step_1", scopes=["repo:read"])
    with httpx.Client() as http:
        r = http.get(f"{server.base}/nonce?q=1", auth=auth)
    assert r.status_code == 200 and r.json()["nonce"] == "nonce-0"
    assert len(server.seen) == 2
    url = f"{server.base}/nonce"  # htu without the query (RFC 9449 §4.2)
    first = check_proof(server.seen[0], key, "GET", url, None)
    second = check_proof(server.seen[1], key, "GET", url, "nonce-0")
    assert first != second, "a fresh proof (jti) for the retry"
    assert session.calls == [("step_1", ("repo:read",))], "one token for both attempts"

    # The nonce is remembered for the origin: the next request carries it at once.
    server.seen.clear()
    with httpx.Client() as http:
        assert http.post(f"{server.base}/nonce", json={"a": 1}, auth=auth).status_code == 200
    assert len(server.seen) == 1
    check_proof(server.seen[0], key, "POST", f"{server.base}/nonce", "nonce-0")

    # A rotated nonce: one more retry with the new one.
    server.generation += 1
    server.seen.clear()
    with httpx.Client() as http:
        assert http.get(f"{server.base}/nonce", auth=auth).status_code == 200
    assert [s["claims"].get("nonce") for s in server.seen] == ["nonce-0", "nonce-1"]


def test_rfc9449_s9_only_one_retry(server):
    key = AgentKey.generate("ES256")
    with httpx.Client() as http:
        r = http.get(f"{server.base}/always-nonce", auth=IntentAuth(FakeSession(key)))
    assert r.status_code == 401
    assert len(server.seen) == 2, "exactly one retry, never a loop"


def test_s2_other_4xx_are_never_retried(server):
    key = AgentKey.generate("ES256")
    auth = IntentAuth(FakeSession(key))
    with httpx.Client() as http:
        assert http.get(f"{server.base}/invalid", auth=auth).status_code == 401
        assert http.delete(f"{server.base}/forbidden", auth=auth).status_code == 403
    assert [s["path"] for s in server.seen] == ["/invalid", "/forbidden"]
    # A 400 saying use_dpop_nonce is the token endpoint's form, not a resource's 401.
    server.seen.clear()
    with httpx.Client() as http:
        assert http.get(f"{server.base}/body-nonce?bad=1", auth=auth).status_code == 400
    assert len(server.seen) == 1


def test_rfc9449_s9_nonce_required_by_json_body_only(server):
    key = AgentKey.generate("ES256")
    with httpx.Client() as http:
        r = http.get(f"{server.base}/body-nonce", auth=IntentAuth(FakeSession(key)))
    assert r.status_code == 200
    assert [s["claims"].get("nonce") for s in server.seen] == [None, "from-body"]


def test_rfc9449_s4_2_fresh_proof_per_request(server):
    key = AgentKey.generate("EdDSA")
    auth = IntentAuth(FakeSession(key))
    with httpx.Client() as http:
        for _ in range(3):
            assert http.get(f"{server.base}/ok", auth=auth).status_code == 200
    jtis = [check_proof(s, key, "GET", f"{server.base}/ok", None) for s in server.seen]
    assert len(set(jtis)) == 3


def test_rfc9449_s9_async_client_retries_once_with_the_nonce(server):
    key = AgentKey.generate("ES256")
    session = FakeSession(key)
    auth = IntentAuth(session, step="s", scopes=["x"])

    async def call() -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.get(f"{server.base}/nonce", auth=auth)

    r = asyncio.run(call())
    assert r.status_code == 200
    url = f"{server.base}/nonce"
    check_proof(server.seen[0], key, "GET", url, None)
    check_proof(server.seen[1], key, "GET", url, "nonce-0")
    assert session.calls == [("s", ("x",))]


def test_is_use_dpop_nonce_reads_the_challenge_with_the_rust_parser():
    def response(status: int, headers: Dict[str, str], body: bytes = b"") -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    assert is_use_dpop_nonce(response(401, {"WWW-Authenticate": 'Bearer realm="x", DPoP error="use_dpop_nonce"'}))
    assert not is_use_dpop_nonce(response(401, {"WWW-Authenticate": 'DPoP error="invalid_token", error_description="use_dpop_nonce"'}))
    assert not is_use_dpop_nonce(response(401, {"WWW-Authenticate": '"garbage'}))
    assert is_use_dpop_nonce(response(401, {"Content-Type": "application/json"}, b'{"error":"use_dpop_nonce"}'))
    assert not is_use_dpop_nonce(response(401, {"Content-Type": "application/json"}, b"not json"))
