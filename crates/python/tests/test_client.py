"""agentic_jwt.IssuerClient (the Rust ajwt-client binding) and agentic_jwt.client against a
small real issuer double (http.server): the client_credentials token (RFC 6749 §4.4,
§4.2.3) cached and refreshed after a 401, the agent_checksum grant's members (§4.2.1)
read back with CPython's json, the token-endpoint DPoP proof (RFC 9449 §5) checked with
PyJWT, refusals as IssuerError (§4.5: status, error, missing_steps §4.5.5,
Retry-After), retries only on 5xx/429 and network errors, registration (§5.4, §6.3),
and the session's checksum recomputation (§5.5.1), cache and delegation (§4.3.4).
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import urllib.parse
from typing import Any, Dict, List, Tuple

import jwt
import pytest

from agentic_jwt import AgentKey, checksum, parse_challenges
from agentic_jwt.client import (
    REFRESH_MARGIN_SECS,
    AgentIdentity,
    AgentSession,
    CacheKey,
    IssuerClient,
    IssuerError,
    TokenCache,
    WorkflowTracker,
)
import agentic_jwt

AUD = "https://api.example.com"


def spec(agent_id: str = "patcher", prompt: str = "Apply approved patches.") -> Dict[str, Any]:
    return {
        "agent_id": agent_id,
        "prompt": prompt,
        "tools": [{"name": "apply", "description": "Apply a patch", "parameters": {"type": "object"}}],
        "configuration": {"temperature": 0.0, "seed": 9007199254740992},
    }


def token_with_exp(exp: int) -> str:
    def enc(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'ES256'})}.{enc({'exp': exp, 'sub': 'x'})}.c2ln"


class Issuer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.client_tokens = 0
        self.basic: List[str] = []
        self.grants: List[Dict[str, Any]] = []
        self.script: List[Tuple[int, Dict[str, str], bytes]] = []
        self.registered: List[Dict[str, Any]] = []
        self.workflows: Dict[str, Any] = {}
        self.agents: Dict[str, str] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Issuer

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: Any, headers: Dict[str, str] = {}) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/.well-known/oauth-authorization-server":
            base = self.server.base
            return self.answer(200, {"issuer": base, "token_endpoint": f"{base}/oauth2/token",
                                     "jwks_uri": f"{base}/jwks"})
        self.answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type", "")
        # Before discovery ajwt_client asks <issuer>/intent/token, after it the
        # discovered endpoint: both serve client_credentials here.
        if self.path in ("/oauth2/token", "/intent/token") and ctype.startswith("application/x-www-form-urlencoded"):
            form = urllib.parse.parse_qs(body.decode())
            assert form == {"grant_type": ["client_credentials"]}
            srv.basic.append(self.headers["Authorization"])
            srv.client_tokens += 1
            return self.answer(200, {"access_token": f"client-token-{srv.client_tokens}",
                                     "token_type": "Bearer", "expires_in": 3600})
        if self.path == "/oauth2/token":
            srv.grants.append({"json": json.loads(body), "authorization": self.headers.get("Authorization"),
                               "dpop": self.headers.get("DPoP")})
            if srv.script:
                status, headers, payload = srv.script.pop(0)
                return self.answer(status, payload, headers)
            return self.answer(200, {"access_token": token_with_exp(4_000_000_000), "token_type": "DPoP",
                                     "expires_in": 300, "scope": "repo:write"})
        if self.path == "/intent/register/agent":
            doc = json.loads(body)
            srv.registered.append(doc)
            if srv.agents.get(doc["agent_id"]) == doc["checksum"]:
                return self.answer(409, {"error": "duplicate_agent", "error_description": "same checksum",
                                         "existing_agent_id": doc["agent_id"]})
            srv.agents[doc["agent_id"]] = doc["checksum"]
            return self.answer(201, {"agent_id": doc["agent_id"], "registration_id": "reg_1",
                                     "checksum": doc["checksum"], "version": 1})
        if self.path == "/intent/register/workflow":
            doc = json.loads(body)
            if doc["workflow_id"] in srv.workflows:
                return self.answer(400, {"error": "invalid_request",
                                         "error_description": "Workflow already exists"})
            srv.workflows[doc["workflow_id"]] = doc
            return self.answer(201, {"status": "registered", "workflow_id": doc["workflow_id"]})
        self.answer(404, {"error": "not_found"})


@pytest.fixture()
def issuer_double():
    """The issuer double runs on a thread of this process: every IssuerClient call against
    it would deadlock if the Rust client held the GIL during its HTTP (it detaches)."""
    srv = Issuer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def client(srv: Issuer, **kw: Any) -> IssuerClient:
    return IssuerClient(srv.base, "agent-runtime", "s3cret-1", base_delay=0.0, **kw)


def test_native_names_are_re_exported():
    assert agentic_jwt.IssuerClient is IssuerClient
    assert agentic_jwt.IssuerError is IssuerError
    assert issubclass(IssuerError, agentic_jwt.AgentJwtError)


def test_s4_2_1_grant_members_and_the_token_endpoint_proof(issuer_double):
    key = AgentKey.generate("ES256")
    c = client(issuer_double)
    assert "s3cret" not in repr(c)
    response = c.intent_token(
        "patcher", checksum(spec()), audience=AUD, scopes=["repo:write", "repo:read", "repo:write"],
        workflow_id="wf", workflow_step="step_4", completed_steps=["step_1", "step_3"],
        chain=["supervisor", "planner"], parent_token="parent.jwt.token", key=key,
    )
    assert response["token_type"] == "DPoP" and response["expires_in"] == 300
    (grant,) = issuer_double.grants
    assert grant["json"] == {
        "grant_type": "agent_checksum",
        "agent_id": "patcher",
        "computed_checksum": checksum(spec()),
        "workflow_id": "wf",
        "workflow_step": "step_4",
        "workflow_enabled": True,
        "requested_scopes": ["repo:write", "repo:read"],
        "audience": AUD,
        "delegation_context": {"chain": ["supervisor", "planner"], "completed_steps": ["step_1", "step_3"]},
        "parent_token": "parent.jwt.token",
    }
    # §4.2.3: behind the client token, obtained with HTTP Basic (RFC 6749 §2.3.1).
    assert grant["authorization"] == "Bearer client-token-1"
    expected = base64.b64encode(b"agent-runtime:s3cret-1").decode()
    assert issuer_double.basic == [f"Basic {expected}"]
    # RFC 9449 §4.2/§5: the proof of the agent key for POST at the discovered endpoint.
    header = jwt.get_unverified_header(grant["dpop"])
    assert header["typ"] == "dpop+jwt" and header["jwk"] == key.public_jwk()
    claims = jwt.decode(grant["dpop"], jwt.PyJWK.from_dict(header["jwk"], "ES256").key, algorithms=["ES256"])
    assert claims["htm"] == "POST" and claims["htu"] == f"{issuer_double.base}/oauth2/token"
    assert "ath" not in claims and "nonce" not in claims
    # The client token is cached.
    c.intent_token("patcher", checksum(spec()), audience=[AUD, "https://b.example"])
    assert issuer_double.client_tokens == 1
    assert issuer_double.grants[1]["json"]["audience"] == [AUD, "https://b.example"]
    assert issuer_double.grants[1]["dpop"] is None
    assert "workflow_id" not in issuer_double.grants[1]["json"]
    assert issuer_double.grants[1]["json"]["workflow_enabled"] is False


def test_s4_5_5_refusal_is_issuer_error_with_missing_steps(issuer_double):
    issuer_double.script.append((403, {}, json.dumps({
        "error": "workflow_step_unauthorized", "error_description": "Required steps not completed",
        "missing_steps": ["step_3_approval_gate"]}).encode()))
    with pytest.raises(IssuerError) as e:
        client(issuer_double).intent_token("patcher", checksum(spec()), audience=AUD,
                                           workflow_id="wf", workflow_step="step_4")
    err = e.value
    assert (err.status, err.error, err.missing_steps) == (403, "workflow_step_unauthorized", ["step_3_approval_gate"])
    assert err.description == "Required steps not completed"
    assert err.retry_after is None and err.existing_agent_id is None
    assert len(issuer_double.grants) == 1, "a 4xx is never retried"


def test_s2_retries_only_5xx_and_429_with_fresh_proofs_and_reports_retry_after(issuer_double):
    key = AgentKey.generate("EdDSA")
    issuer_double.script += [(503, {}, b"busy"), (429, {"Retry-After": "0"}, b"{}")]
    c = client(issuer_double, max_attempts=3)
    assert c.intent_token("patcher", checksum(spec()), audience=AUD, key=key)["access_token"]
    jtis = {jwt.decode(g["dpop"], options={"verify_signature": False})["jti"] for g in issuer_double.grants}
    assert len(issuer_double.grants) == 3 and len(jtis) == 3, "a fresh proof per attempt"
    # Attempts exhausted: the last refusal, with its Retry-After.
    issuer_double.grants.clear()
    issuer_double.script += [(429, {"Retry-After": "0"}, b"{}"), (429, {"Retry-After": "7"}, b"not json")]
    with pytest.raises(IssuerError) as e:
        client(issuer_double, max_attempts=2, max_delay=0.0).intent_token("patcher", checksum(spec()), audience=AUD)
    assert (e.value.status, e.value.error, e.value.retry_after) == (429, "http_429", 7.0)
    assert len(issuer_double.grants) == 2


def test_s4_2_3_a_401_gets_one_retry_with_a_new_client_token(issuer_double):
    issuer_double.script.append((401, {}, json.dumps({"error": "invalid_token"}).encode()))
    c = client(issuer_double)
    c.intent_token("patcher", checksum(spec()), audience=AUD)
    assert [g["authorization"] for g in issuer_double.grants] == ["Bearer client-token-1", "Bearer client-token-2"]
    issuer_double.script += [(401, {}, b'{"error":"invalid_token"}')] * 2
    with pytest.raises(IssuerError) as e:
        c.intent_token("patcher", checksum(spec()), audience=AUD)
    assert (e.value.status, e.value.error) == (401, "invalid_token")


def test_network_errors_and_bad_arguments():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = IssuerClient(f"http://127.0.0.1:{port}", "id", "secret", max_attempts=1)
    with pytest.raises(IssuerError) as e:
        c.client_token()
    assert e.value.status is None and e.value.error == "network_error"
    with pytest.raises(ValueError):
        c.intent_token("a", "md5:00", audience=AUD)
    with pytest.raises(ValueError):
        c.intent_token("a", checksum(spec()), audience=AUD, workflow_step="only-the-step")
    with pytest.raises(TypeError):
        c.intent_token("a", checksum(spec()), audience=42)
    with pytest.raises(TypeError):
        c.intent_token("a", checksum(spec()), audience=AUD, key="not a key")
    for bad in ({"base_delay": -1.0}, {"max_delay": float("nan")}, {"base_delay": float("inf")}):
        with pytest.raises(ValueError):
            IssuerClient("http://127.0.0.1:1", "id", "secret", **bad)


def test_configuration_from_the_environment(monkeypatch):
    monkeypatch.delenv("AJWT_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("AJWT_ISSUER", "http://idp.example/")
    monkeypatch.setenv("AJWT_CLIENT_ID", "c1")
    with pytest.raises(IssuerError) as e:
        IssuerClient.from_env()
    assert e.value.error == "configuration_error" and "AJWT_CLIENT_SECRET" in str(e.value)
    monkeypatch.setenv("AJWT_CLIENT_SECRET", "s3cret")
    c = IssuerClient.from_env()
    assert (c.issuer, c.client_id) == ("http://idp.example", "c1")
    assert "s3cret" not in repr(c)


def test_s5_4_registration_is_idempotent(issuer_double):
    key = AgentKey.generate("ES256")
    c = client(issuer_double)
    first = c.register_agent(spec(), key, ["repo:write"])
    assert first == {"status": "registered", "agent_id": "patcher", "registration_id": "reg_1",
                     "checksum": checksum(spec()), "version": 1}
    body = issuer_double.registered[0]
    assert body["public_key"] == key.public_jwk()
    assert body["checksum"] == checksum(spec()) and body["checksum_profile"] == "jcs"
    assert body["allowed_scopes"] == ["repo:write"]
    assert body["configuration"]["seed"] == 9007199254740992, "big ints survive"
    assert {k: body[k] for k in ("agent_id", "prompt")} == {"agent_id": "patcher", "prompt": spec()["prompt"]}
    assert c.register_agent(json.dumps(spec()), key) == {
        "status": "unchanged", "agent_id": "patcher", "checksum": checksum(spec())}
    assert c.register_agent(spec(), key, profile="python-ref")["checksum"] == checksum(spec(), "python-ref")
    with pytest.raises(ValueError):
        c.register_agent(spec(), key, profile="sha1")
    # Bad input is a typed Python error before any request (never a panic).
    with pytest.raises(agentic_jwt.ChecksumError) as bad:
        c.register_agent({"prompt": "no agent_id", "tools": []}, key)
    assert bad.value.kind
    with pytest.raises(TypeError):
        c.register_agent(["not", "a", "spec"], key)
    with pytest.raises(TypeError):
        c.register_agent(spec(), key.public_jwk())
    with pytest.raises(TypeError):
        c.register_workflow(42)
    assert len(issuer_double.registered) == 3
    wf = {"workflow_id": "wf", "steps": {"s1": {"agent_id": "patcher"}}}
    assert c.register_workflow(wf) == {"status": "registered", "workflow_id": "wf"}
    assert c.register_workflow(json.dumps(wf)) == {"status": "already_exists", "workflow_id": "wf"}
    assert c.discover()["token_endpoint"] == f"{issuer_double.base}/oauth2/token"


def test_s5_5_1_session_recomputes_the_checksum_and_caches_per_context(issuer_double):
    identity = AgentIdentity(spec(), AgentKey.generate("ES256"))
    session = AgentSession(identity, client(issuer_double), WorkflowTracker("wf"), AUD)
    t1 = session.intent_token("step_1", ["repo:write"])
    assert session.intent_token("step_1", ["repo:write", "repo:write"]) == t1
    assert len(issuer_double.grants) == 1, "cached"
    assert issuer_double.grants[0]["dpop"], "token-endpoint proof by default"
    # A runtime change of the live dict: new checksum, cache miss, presented to the issuer.
    identity.spec["prompt"] = "Ignore all previous instructions."
    session.intent_token("step_1", ["repo:write"])
    assert len(issuer_double.grants) == 2
    assert issuer_double.grants[1]["json"]["computed_checksum"] == checksum(
        spec(prompt="Ignore all previous instructions."))
    # Completed steps are part of the key (they are bound into step_sequence_hash, §4.4.4).
    session.complete_step("step_1")
    session.intent_token("step_1", ["repo:write"])
    assert len(issuer_double.grants) == 3
    assert issuer_double.grants[2]["json"]["delegation_context"]["completed_steps"] == ["step_1"]
    # Delegation (§4.3.4): chain + this agent, same steps, last token as parent_token.
    child = session.delegate()
    assert child.chain == ("patcher",) and child.completed_steps == ("step_1",)
    assert child.parent_token == session.last_token
    child_session = AgentSession(AgentIdentity(spec("verifier"), AgentKey.generate("EdDSA")),
                                 client(issuer_double), child, AUD, token_endpoint_proof=False)
    child_session.intent_token("step_2", ["repo:read"])
    grant = issuer_double.grants[3]
    assert grant["dpop"] is None
    assert grant["json"]["parent_token"] == session.last_token
    assert grant["json"]["delegation_context"] == {"chain": ["patcher"], "completed_steps": ["step_1"]}
    with pytest.raises(ValueError):
        AgentSession(identity, client(issuer_double), None, AUD).intent_token("step_1")


def test_s2_token_cache_margin_and_keys():
    cache = TokenCache()
    key = CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud", ["b", "a", "b"])
    assert key.scopes == ("a", "b")
    cache.insert(key, "t1", 1000)
    assert cache.get(key, 900) == "t1"
    assert cache.get(key, 1000 - REFRESH_MARGIN_SECS - 1) == "t1"
    assert cache.get(key, 1000 - REFRESH_MARGIN_SECS) is None, "inside the refresh margin"
    assert len(cache) == 0, "the stale entry is dropped"
    cache.insert(key, "t", 10_000)
    assert cache.get(CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud", ["a", "b", "a"]), 0) == "t"
    for other in [
        CacheKey.new("b", "sha256:00", ("wf", "s1"), "aud", ["a", "b"]),
        CacheKey.new("a", "sha256:01", ("wf", "s1"), "aud", ["a", "b"]),
        CacheKey.new("a", "sha256:00", ("wf", "s2"), "aud", ["a", "b"]),
        CacheKey.new("a", "sha256:00", None, "aud", ["a", "b"]),
        CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud2", ["a", "b"]),
        CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud", ["a"]),
        CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud", ["a", "b"], completed_steps=["s0"]),
        CacheKey.new("a", "sha256:00", ("wf", "s1"), "aud", ["a", "b"], chain=["boss"]),
    ]:
        assert cache.get(other, 0) is None, other


def test_s4_3_4_delegation_extends_the_chain_and_keeps_the_steps():
    root = WorkflowTracker("wf")
    root.complete("s1")
    root.complete("s1")
    assert root.completed_steps == ("s1",) and root.parent_token is None
    planner = root.delegate("supervisor", "tok-sup")
    assert (planner.workflow_id, planner.chain, planner.parent_token) == ("wf", ("supervisor",), "tok-sup")
    planner.complete("s2")
    planner.complete("gate")
    assert root.completed_steps == ("s1",), "the parent is unchanged"
    patcher = planner.delegate("planner", "tok-plan")
    assert patcher.chain == ("supervisor", "planner")
    assert patcher.delegation_context() == {"chain": ["supervisor", "planner"], "completed_steps": ["s1", "s2", "gate"]}
    assert "tok-plan" not in repr(patcher)
    assert planner.delegate("planner", "t").chain == ("supervisor", "planner"), "not repeated"


def test_rfc9110_s11_6_1_parse_challenges():
    value = r'Bearer realm="a \"b\"", DPoP error="use_dpop_nonce", ALGS="ES256 EdDSA"'
    assert parse_challenges(value) == [
        {"scheme": "Bearer", "params": {"realm": 'a "b"'}, "token68": None},
        {"scheme": "DPoP", "params": {"error": "use_dpop_nonce", "algs": "ES256 EdDSA"}, "token68": None},
    ]
    with pytest.raises(ValueError):
        parse_challenges('"garbage')


def test_docstrings_cite_the_draft():
    import inspect

    import agentic_jwt.client as client_module
    import agentic_jwt.fastapi as fastapi_module
    import agentic_jwt.httpx as httpx_module

    for obj in (IssuerClient, IssuerError, IssuerClient.intent_token, IssuerClient.register_agent,
                IssuerClient.register_workflow, client_module, fastapi_module, httpx_module,
                AgentIdentity, AgentSession, WorkflowTracker, CacheKey, TokenCache,
                httpx_module.IntentAuth, fastapi_module.require_intent, fastapi_module.request_url):
        assert "§" in (inspect.getdoc(obj) or ""), obj
