"""Intent-token verification through the binding against a real `ajwt serve`
(draft-goswami-agentic-jwt-00 §6.5.3 steps 1-8, §9.2.2; RFC 9449 §4.3, §7.1,
§8; RFC 6750 §3).

Tokens come from the issuer over HTTP, proofs from AgentKey (checked
independently with PyJWT in test_keys.py); the expected statuses, codes and
challenges are those of RFC 6750 §3.1 / RFC 9449 §7.1 as parsed here, and
test_verifier_axum.py compares every refusal with the axum layer's own answer."""

import base64
import http.server
import json
import re
import threading
import time

import httpx
import pytest

from agentic_jwt import (
    AgentJwtError,
    AgentKey,
    IntentClaims,
    VerificationError,
    Verifier,
    checksum,
    delegation_hash,
    sequence_hash,
)

from conftest import REPO_ROOT, Issuer

AUDIENCE = "https://api.py1.example"
URL = AUDIENCE + "/patches"
WORKFLOW = json.loads((REPO_ROOT / "examples" / "workflows" / "auto-patch-workflow-v1.json").read_text())
PATCHER = json.loads((REPO_ROOT / "examples" / "agents" / "vulnerability-patcher-v1.json").read_text())
DONE = ["step_1_analyze_manifest", "step_2_create_patch_plan", "step_3_approval_gate"]
STEP = "step_4_apply_patch"
ALGS = "ES256 EdDSA Ed25519 RS256 PS256"
TOKEN_LIFETIME = 2


@pytest.fixture(scope="module")
def py1_issuer(ajwt_bin, tmp_path_factory):
    """An issuer of this module's own (2 s intent tokens), with the §6.3.3
    workflow and the patcher agent registered under an ES256 key."""
    server = Issuer(ajwt_bin, tmp_path_factory.mktemp("py1-issuer"), "--token-lifetime", str(TOKEN_LIFETIME))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def agent(py1_issuer):
    key = AgentKey.generate("ES256")
    py1_issuer.register_agent(PATCHER, key.public_jwk())
    py1_issuer.register_workflow(WORKFLOW)
    return key


def new_token(issuer, scopes=("repo:write",), step=STEP, done=DONE):
    return issuer.intent_token(PATCHER, scopes, AUDIENCE, workflow_id=WORKFLOW["workflow_id"], workflow_step=step,
                               completed_steps=done)


def route(verifier, authorization, dpop, method="POST", url=URL, **kw):
    kw.setdefault("scopes", ["repo:write"])
    kw.setdefault("workflow_step", STEP)
    kw.setdefault("workflow_id", WORKFLOW["workflow_id"])
    return verifier.verify(authorization, dpop, method, url, **kw)


def refusal(call):
    with pytest.raises(VerificationError) as info:
        call()
    return info.value


CHALLENGE = re.compile(r'\s*([A-Za-z]+)(?:\s+(.*))?$')
PARAM = re.compile(r'\s*([a-z_]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_challenge(value):
    """One RFC 9110 §11.6.1 challenge with quoted parameters: (scheme, {param: value})."""
    m = CHALLENGE.match(value)
    scheme, rest = m.group(1), m.group(2) or ""
    params, pos = {}, 0
    while pos < len(rest):
        p = PARAM.match(rest, pos)
        assert p, f"unparsable challenge parameters: {rest[pos:]!r}"
        params[p.group(1)] = re.sub(r"\\(.)", r"\1", p.group(2))
        pos = p.end()
    return scheme, params


def assert_refusal(err, status, error, scheme="DPoP"):
    assert isinstance(err, AgentJwtError)
    assert err.status == status, str(err)
    assert err.error == error, str(err)
    assert err.headers["Cache-Control"] == "no-store"
    if status == 503:
        assert err.www_authenticate is None
        return {}
    assert err.headers["WWW-Authenticate"] == err.www_authenticate
    got_scheme, params = parse_challenge(err.www_authenticate)
    assert got_scheme == scheme
    if scheme == "DPoP":
        assert params["algs"] == ALGS  # RFC 9449 §7.1
    if error is None:  # RFC 6750 §3.1: no error code without credentials
        assert "error" not in params and err.body == {} and err.description is None
    else:
        assert params["error"] == error and params["error_description"] == err.description
        assert err.body == {"error": error, "error_description": err.description}
    return params


# --- the good path --------------------------------------------------------------------


def test_s6_5_3_good_token_and_proof_verify(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    claims = route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token))
    assert isinstance(claims, IntentClaims)
    assert claims.iss == py1_issuer.url
    assert claims.sub == claims.agent_id == PATCHER["agent_id"]
    assert claims.aud == [AUDIENCE]
    assert claims.scopes == ["repo:write"] and claims.scope == "repo:write"
    assert claims.exp - claims.iat == TOKEN_LIFETIME
    assert claims.workflow_id == WORKFLOW["workflow_id"] and claims.workflow_step == STEP
    # §4.4.4, against the Python-side hashes.
    assert claims.step_sequence_hash == sequence_hash(DONE, STEP)
    assert claims.delegation_chain == delegation_hash([], PATCHER["agent_id"])
    assert claims.agent_checksum == checksum(PATCHER)
    # §9.2.2: bound to the agent's key, proven by it.
    assert claims.cnf_jkt == claims.dpop_jkt == agent.thumbprint()
    raw = claims.claims
    assert raw["jti"] == claims.jti and raw["intent"]["workflow_step"] == STEP
    assert raw["cnf"]["jwk"]["x"] == agent.public_jwk()["x"]
    assert "IntentClaims(" in repr(claims)


def test_rfc8414_static_jwks_needs_no_discovery(py1_issuer, agent):
    jwks = httpx.get(py1_issuer.url + "/.well-known/jwks.json").json()
    for given in (jwks, json.dumps(jwks), json.dumps(jwks).encode()):
        verifier = Verifier(py1_issuer.url, AUDIENCE, jwks=given, status_lists="off")
        token = new_token(py1_issuer)
        assert route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)).sub


# --- refusals -------------------------------------------------------------------------


def test_rfc6750_3_1_no_token_no_error_code(py1_issuer, agent):
    err = refusal(lambda: route(Verifier(py1_issuer.url, AUDIENCE), None, None))
    assert_refusal(err, 401, None)
    assert err.www_authenticate == f'DPoP algs="{ALGS}"'


def test_s6_5_3_step4_wrong_audience(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, "https://other.example")
    token = new_token(py1_issuer)
    err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)))
    assert_refusal(err, 401, "invalid_token")
    assert "audience" in err.description


def test_s6_5_3_step4_expired(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE, leeway=0)
    token = new_token(py1_issuer)
    time.sleep(TOKEN_LIFETIME + 1.1)
    err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)))
    assert_refusal(err, 401, "invalid_token")
    assert err.description == "token expired"


def test_s9_2_2_missing_proof(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    for authorization in (f"DPoP {token}", f"Bearer {token}"):
        err = refusal(lambda: route(verifier, authorization, None))
        assert_refusal(err, 401, "invalid_dpop_proof")


def test_rfc9449_s11_1_replayed_proof(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    proof = agent.dpop_proof("POST", URL, access_token=token)
    assert route(verifier, f"DPoP {token}", proof).sub
    err = refusal(lambda: route(verifier, f"DPoP {token}", proof))
    assert_refusal(err, 401, "invalid_dpop_proof")
    assert "replayed" in err.description


def test_s9_2_2_stolen_token_proof_by_another_key(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    thief = AgentKey.generate("ES256")
    err = refusal(lambda: route(verifier, f"DPoP {token}", thief.dpop_proof("POST", URL, access_token=token)))
    assert_refusal(err, 401, "invalid_dpop_proof")


def test_s6_5_3_step3_token_signed_by_another_key(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    genuine = new_token(py1_issuer)
    payload = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    forged = AgentKey.generate("ES256").sign("JWT", payload)
    err = refusal(lambda: route(verifier, f"DPoP {forged}", agent.dpop_proof("POST", URL, access_token=forged)))
    assert_refusal(err, 401, "invalid_token")


def test_rfc9449_proof_for_another_request(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    for proof in (agent.dpop_proof("GET", URL, access_token=token),  # htm
                  agent.dpop_proof("POST", AUDIENCE + "/other", access_token=token),  # htu
                  agent.dpop_proof("POST", URL, access_token=token + "x"),  # ath
                  agent.dpop_proof("POST", URL, access_token=token, iat=int(time.time()) - 3600)):  # iat
        err = refusal(lambda: route(verifier, f"DPoP {token}", proof))
        assert_refusal(err, 401, "invalid_dpop_proof")


def test_rfc6750_3_1_insufficient_scope_is_403(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token),
                                scopes=["repo:write", "repo:admin"]))
    params = assert_refusal(err, 403, "insufficient_scope")
    assert params["scope"] == "repo:admin"


def test_s6_5_3_step6_wrong_workflow_step(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token),
                                workflow_step=["step_5_verify_patch"]))
    assert_refusal(err, 401, "invalid_token")


def test_rfc9449_s7_2_bound_token_as_bearer_under_optional(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE, pop="optional")
    token = new_token(py1_issuer)
    err = refusal(lambda: route(verifier, f"Bearer {token}", None))
    assert_refusal(err, 401, "invalid_token", scheme="DPoP")


def test_rfc6750_malformed_authorization_is_400(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE)
    for authorization in ("Basic abc", "DPoP", ["DPoP a", "DPoP b"]):
        err = refusal(lambda: route(verifier, authorization, None))
        assert_refusal(err, 400, "invalid_request")


def test_rfc9449_s8_server_nonce(py1_issuer, agent):
    verifier = Verifier(py1_issuer.url, AUDIENCE, nonces=True)
    nonce = verifier.current_nonce()
    assert nonce and Verifier(py1_issuer.url, AUDIENCE).current_nonce() is None
    token = new_token(py1_issuer)
    err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)))
    assert_refusal(err, 401, "use_dpop_nonce")
    assert err.headers["DPoP-Nonce"] == nonce
    proof = agent.dpop_proof("POST", URL, access_token=token, nonce=err.headers["DPoP-Nonce"])
    assert route(verifier, f"DPoP {token}", proof).sub == PATCHER["agent_id"]


def test_discovery_failure_is_503_then_recovers(py1_issuer, agent, tmp_path):
    # No issuer at this URL: 503 temporarily_unavailable without a challenge
    # (the token may be good); the verifier retries discovery on the next call.
    dead = Verifier(f"http://127.0.0.1:{1}", AUDIENCE)
    err = refusal(lambda: route(dead, "DPoP x.y.z", None))
    assert_refusal(err, 503, "temporarily_unavailable")


def test_verify_releases_the_gil(py1_issuer, agent):
    """The verifier's HTTP fetch of the issuer metadata is answered by a
    Python server thread of this process: it can only answer if verify()
    released the GIL. (It names another issuer, so the token is then refused
    with 401 invalid_token rather than the 503 of a fetch that timed out.)"""
    jwks = httpx.get(py1_issuer.url + "/.well-known/jwks.json").content

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/.well-known/oauth-authorization-server"):
                body = json.dumps({"issuer": base, "jwks_uri": base + "/jwks"}).encode()
            elif self.path == "/jwks":
                body = jwks
            else:
                self.send_error(404)
                return
            time.sleep(0.2)  # Python code running while verify() waits
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        verifier = Verifier(f"http://127.0.0.1:{server.server_port}", AUDIENCE, status_lists="off")
        token = new_token(py1_issuer)
        err = refusal(lambda: route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)))
        assert_refusal(err, 401, "invalid_token")
        assert "issuer" in err.description
    finally:
        server.shutdown()


def test_verifier_arguments_checked():
    for kwargs in ({"pop": "sometimes"}, {"algorithms": ["HS256"]}, {"algorithms": []}, {"status_lists": "maybe"},
                   {"jwks": {"keys": "no"}}, {"leeway": -1}, {"leeway": 2**62}, {"dpop_window": 0},
                   {"max_age": 10**12}, {"nonces": True, "nonce_lifetime": 0},
                   {"nonces": True, "nonce_lifetime": 1e300}, {"nonces": True, "nonce_lifetime": float("nan")},
                   {"known_checksums": ["md5:00"]}):
        with pytest.raises(ValueError):
            Verifier("https://issuer.example", AUDIENCE, **kwargs)
    v = Verifier("https://issuer.example", AUDIENCE)
    assert (v.issuer, v.audience) == ("https://issuer.example", AUDIENCE)
    with pytest.raises(TypeError):
        v.verify(42, None, "GET", URL)


def test_i169_a_forked_child_verifies_with_its_own_runtime(py1_issuer, agent):
    import os

    verifier = Verifier(py1_issuer.url, AUDIENCE)
    token = new_token(py1_issuer)
    assert route(verifier, f"DPoP {token}", agent.dpop_proof("POST", URL, access_token=token)).sub  # runtime up
    child_token = new_token(py1_issuer)
    child_proof = agent.dpop_proof("POST", URL, access_token=child_token)
    pid = os.fork()
    if pid == 0:  # the child: the parent's runtime threads do not exist here
        code = 1
        try:
            fresh = Verifier(py1_issuer.url, AUDIENCE)
            code = 0 if route(fresh, f"DPoP {child_token}", child_proof).sub == PATCHER["agent_id"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
