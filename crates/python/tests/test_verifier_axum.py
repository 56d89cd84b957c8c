"""The binding's refusals are the axum layer's (I-168): every request is sent
both to examples/protected-api (ajwt-verifier's IntentLayer, `POST /patches`:
scope repo:write at step_4_apply_patch of auto-patch-workflow-v1) over HTTP
and to `Verifier.verify` with the same route requirements; status,
WWW-Authenticate, DPoP-Nonce, Cache-Control and the JSON body must agree
(draft-goswami-agentic-jwt-00 §6.5.3, RFC 6750 §3, RFC 9449 §7.1, §8)."""

import json
import os
import subprocess
import time

import httpx
import pytest

from agentic_jwt import AgentKey, VerificationError, Verifier

from conftest import REPO_ROOT, Issuer, free_port

AUDIENCE = "https://api.axum.example"
URL = AUDIENCE + "/patches"
WORKFLOW = json.loads((REPO_ROOT / "examples" / "workflows" / "auto-patch-workflow-v1.json").read_text())
PATCHER = json.loads((REPO_ROOT / "examples" / "agents" / "vulnerability-patcher-v1.json").read_text())
DONE = ["step_1_analyze_manifest", "step_2_create_patch_plan", "step_3_approval_gate"]


@pytest.fixture(scope="module")
def api_bin():
    path = os.environ.get("AJWT_API_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("AJWT_API_BIN is not set to the protected-api binary (run crates/python/run-tests.sh)")
    return path


@pytest.fixture(scope="module")
def world(ajwt_bin, api_bin, tmp_path_factory):
    """An issuer with the patcher agent and workflow, and two protected-api
    servers trusting it (with and without server nonces)."""
    issuer = Issuer(ajwt_bin, tmp_path_factory.mktemp("axum-issuer"))
    key = AgentKey.generate("ES256")
    issuer.register_agent(PATCHER, key.public_jwk())
    issuer.register_workflow(WORKFLOW)
    apis, logs = {}, []
    try:
        for name, extra in (("plain", []), ("nonce", ["--dpop-nonce"])):
            port = free_port()
            log = open(tmp_path_factory.mktemp("api") / "api.log", "wb")
            logs.append(log)
            proc = subprocess.Popen(
                [api_bin, "--addr", f"127.0.0.1:{port}", "--issuer", issuer.url, "--audience", AUDIENCE,
                 "--public-url", AUDIENCE, *extra],
                stdout=log, stderr=subprocess.STDOUT,
            )
            apis[name] = (proc, f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"protected-api exited (log {log.name})"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "protected-api did not start"
                time.sleep(0.1)
        yield issuer, key, {n: url for n, (_, url) in apis.items()}
    finally:
        for proc, _ in apis.values():
            proc.terminate()
            proc.wait(timeout=10)
        for log in logs:
            log.close()
        issuer.stop()


def token_for(issuer):
    return issuer.intent_token(PATCHER, ["repo:write"], AUDIENCE, workflow_id=WORKFLOW["workflow_id"],
                               workflow_step="step_4_apply_patch", completed_steps=DONE)


def axum_answer(api_url, headers):
    r = httpx.post(api_url + "/patches", headers=headers)
    if r.status_code == 200:
        return ("ok",)
    return (r.status_code, r.headers.get("www-authenticate"), r.headers.get("dpop-nonce"),
            r.headers.get("cache-control"), r.json())


def binding_answer(verifier, headers):
    auth = [v for k, v in headers if k.lower() == "authorization"]
    dpop = [v for k, v in headers if k.lower() == "dpop"]
    try:
        verifier.verify(auth or None, dpop or None, "POST", URL, scopes=["repo:write"],
                        workflow_step="step_4_apply_patch", workflow_id=WORKFLOW["workflow_id"])
        return ("ok",)
    except VerificationError as e:
        return (e.status, e.www_authenticate, e.headers.get("DPoP-Nonce"), e.headers.get("Cache-Control"), e.body)


def scenarios(issuer, key):
    """(name, headers as a list of pairs) — each built fresh (proofs are single-use)."""
    token = token_for(issuer)
    thief = AgentKey.generate("EdDSA")
    yield "no credentials", []
    yield "good", [("Authorization", f"DPoP {token}"), ("DPoP", key.dpop_proof("POST", URL, access_token=token))]
    yield "no proof", [("Authorization", f"DPoP {token}")]
    yield "bearer", [("Authorization", f"Bearer {token}")]
    yield "bearer with proof", [("Authorization", f"Bearer {token}"),
                                ("DPoP", key.dpop_proof("POST", URL, access_token=token))]
    yield "stolen token", [("Authorization", f"DPoP {token}"),
                           ("DPoP", thief.dpop_proof("POST", URL, access_token=token))]
    yield "proof for GET", [("Authorization", f"DPoP {token}"),
                            ("DPoP", key.dpop_proof("GET", URL, access_token=token))]
    yield "proof without ath", [("Authorization", f"DPoP {token}"), ("DPoP", key.dpop_proof("POST", URL))]
    yield "garbage token", [("Authorization", "DPoP abc.def.ghi"),
                            ("DPoP", key.dpop_proof("POST", URL, access_token="abc.def.ghi"))]
    yield "basic scheme", [("Authorization", "Basic dXNlcjpwYXNz")]
    yield "two authorizations", [("Authorization", f"DPoP {token}"), ("Authorization", f"DPoP {token}")]
    yield "two proofs", [("Authorization", f"DPoP {token}"),
                         ("DPoP", key.dpop_proof("POST", URL, access_token=token)),
                         ("DPoP", key.dpop_proof("POST", URL, access_token=token))]
    second = issuer.intent_token(PATCHER, ["repo:write"], AUDIENCE, workflow_id=WORKFLOW["workflow_id"],
                                     workflow_step="step_4_apply_patch", completed_steps=DONE)
    yield "good again", [("Authorization", f"DPoP {second}"),
                         ("DPoP", key.dpop_proof("POST", URL, access_token=second))]


def test_i168_every_refusal_as_the_axum_layer(world):
    issuer, key, apis = world
    verifier = Verifier(issuer.url, AUDIENCE)
    seen = set()
    for name, headers in scenarios(issuer, key):
        expected = axum_answer(apis["plain"], headers)
        assert binding_answer(verifier, headers) == expected, name
        seen.add(expected[0])
    assert {"ok", 400, 401} <= seen


def test_i168_replay_as_the_axum_layer(world):
    issuer, key, apis = world
    verifier = Verifier(issuer.url, AUDIENCE)
    token = token_for(issuer)
    headers = [("Authorization", f"DPoP {token}"), ("DPoP", key.dpop_proof("POST", URL, access_token=token))]
    assert axum_answer(apis["plain"], headers) == binding_answer(verifier, headers) == ("ok",)
    replayed = axum_answer(apis["plain"], headers)
    assert replayed[0] == 401
    assert binding_answer(verifier, headers) == replayed


def test_i168_nonce_challenge_as_the_axum_layer(world):
    issuer, key, apis = world
    verifier = Verifier(issuer.url, AUDIENCE, nonces=True)
    token = token_for(issuer)
    headers = [("Authorization", f"DPoP {token}"), ("DPoP", key.dpop_proof("POST", URL, access_token=token))]
    expected = axum_answer(apis["nonce"], headers)
    got = binding_answer(verifier, headers)
    # Each server has its own nonce: compare all but its value.
    assert expected[0] == got[0] == 401 and expected[2] and got[2] == verifier.current_nonce()
    assert (expected[1], expected[3], expected[4]) == (got[1], got[3], got[4])
