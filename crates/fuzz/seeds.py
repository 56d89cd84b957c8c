#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (crates/fuzz/corpus/<target>/).

Run from the repository root: `python3 crates/fuzz/seeds.py`. Needs PyJWT and
cryptography (pinned in conformance/interop/requirements.txt). Seeds come from
the conformance vectors, the RFC 8785 and JOSE cookbook corpora copied into
conformance/vectors/external, the repository's example agent and workflow,
and tokens and DPoP proofs signed here by PyJWT (an independent JOSE library)
with the fixed test keys of crates/fuzz/fixtures. The layout of each input
(a leading mode byte, 0xFF separators) is the one documented on each target
in crates/fuzz/src. File names are the SHA-1 of the content, as libFuzzer
names corpus entries, prefixed `seed-`: rerunning the script replaces the
seeds (tokens and generated keys differ from run to run) and keeps every
other file, the regression inputs the fuzzer found.
"""
import base64
import glob
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "crates", "fuzz", "corpus")
NOW = 1_800_000_000  # crates/fuzz/src/jose.rs NOW
ISSUER = "https://idp.example.com"
AUDIENCE = "https://api.example.com"
URL = "https://api.example.com/repos/patch"
SEP = b"\xff"

counts = {}


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    if target not in counts:
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "seed-*")):
            os.remove(old)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def load(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def ec_jwk(key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256",
            "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}


def thumbprint(jwk):
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    return b64u(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


issuer_pem = load("crates/fuzz/fixtures/issuer-es256.pem")
agent_pem = load("crates/fuzz/fixtures/agent-es256.pem")
issuer_key = serialization.load_pem_private_key(issuer_pem, None)
agent_key = serialization.load_pem_private_key(agent_pem, None)
issuer_jwk, agent_jwk = ec_jwk(issuer_key), ec_jwk(agent_key)
issuer_kid, agent_kid = thumbprint(issuer_jwk), thumbprint(agent_jwk)

# --- agent_spec, jcs: checksum vectors, RFC 8785 corpus, example agent ---
vectors = json.loads(load("conformance/vectors/checksum.json"))
for group in vectors["testGroups"]:
    for t in group["tests"]:
        put("agent_spec", t["input"])
        put("jcs", t["input"])
        if "canonical" in t:
            put("jcs", t["canonical"])
for p in sorted(glob.glob(os.path.join(ROOT, "conformance/vectors/external/jcs-cyberphone/input/*.json"))):
    put("jcs", open(p, "rb").read())
example_agent = load("examples/agents/vulnerability-patcher-v1.json")
example_workflow = load("examples/workflows/auto-patch-workflow-v1.json")
put("agent_spec", example_agent)

# --- token_request: decoding vectors as JSON (mode 0) and as forms (mode 1) ---
requests = json.loads(load("conformance/vectors/token_request_decoding.json"))
for group in requests["testGroups"]:
    for t in group["tests"]:
        put("token_request", b"\x00" + t["body"].encode())
        try:
            obj = json.loads(t["body"])
        except ValueError:
            continue
        if isinstance(obj, dict):
            form = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in obj.items()}
            put("token_request", b"\x01" + urllib.parse.urlencode(form).encode())

# --- registration: workflows (mode 0), agent registrations (mode 1) ---
wf = json.loads(load("conformance/vectors/workflow_authorization.json"))
for group in wf["testGroups"]:
    for t in group["tests"]:
        if isinstance(t.get("workflow"), str):
            put("registration", b"\x00" + t["workflow"].encode())
put("registration", b"\x00" + example_workflow)
for bad in (b'{"workflow_id": "w", "steps": {}}', b'{"workflow_id": "w", "workflow_id": "v", "steps": {"s": {}}}',
            b'{"workflow_id": "w", "steps": {"s": {"required": "yes"}}}'):
    put("registration", b"\x00" + bad)
for bad in (b'{"agent_id": "a"}', b'{"agent_id": "a b", "prompt": "p", "tools": []}',
            b'{"agent_id": "a", "prompt": "p", "tools": [], "allowed_scopes": "x"}'):
    put("registration", b"\x01" + bad)
spec = json.loads(example_agent)
for extra in ({}, {"public_key": agent_jwk}, {"checksum_profile": "python-ref"},
              {"allowed_scopes": ["vulnerability:read", "patch:write"], "app_id": "app-1"},
              {"public_key": agent_key.public_key().public_bytes(
                  serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}):
    put("registration", b"\x01" + json.dumps({**spec, **extra}).encode())

# --- intent_token ---
claims = {
    "iss": ISSUER, "aud": AUDIENCE, "sub": "vulnerability-patcher-v1",
    "iat": NOW, "exp": NOW + 300, "jti": "fuzz-jti-1", "scope": "vulnerability:read",
    "cnf": {"jwk": {**agent_jwk, "kid": agent_kid}},
    "intent": {"workflow_id": "auto-patch-workflow-v1", "workflow_step": "step_4_apply_patch",
               "executed_by": "vulnerability-patcher-v1",
               "delegation_chain": hashlib.sha256(b"vulnerability-patcher-v1").hexdigest()[:16],
               "step_sequence_hash": hashlib.sha256(b"step_4_apply_patch").hexdigest()[:16]},
    "agent_proof": {"agent_checksum": "sha256:" + "ab" * 32,
                    "registration_id": "reg_vulnerability-patcher-v1_1800000000"},
}
headers = {"kid": issuer_kid, "typ": "JWT"}
valid = jwt.encode(claims, issuer_pem, algorithm="ES256", headers=headers)
put("intent_token", b"\x00" + valid.encode())
put("intent_token", b"\x01" + json.dumps(claims).encode())
bearer = {k: v for k, v in claims.items() if k != "cnf"}
put("intent_token", b"\x03" + json.dumps(bearer).encode())
put("intent_token", b"\x02" + json.dumps({"alg": "ES256", "typ": "JWT", "kid": issuer_kid}).encode()
    + SEP + json.dumps(claims).encode())
for hostile in ({**claims, "exp": NOW - 3600}, {**claims, "aud": "https://other.example"},
                {**claims, "iss": "https://evil.example"}):
    put("intent_token", b"\x00" + jwt.encode(hostile, issuer_pem, algorithm="ES256", headers=headers).encode())
none = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + b64u(json.dumps(claims).encode()) + "."
put("intent_token", b"\x00" + none.encode())
put("intent_token", b"\x02" + json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer_kid}).encode()
    + SEP + json.dumps(claims).encode())

# --- dpop_proof ---
ath = b64u(hashlib.sha256(b"fuzz-access-token").digest())
proof_claims = {"jti": "fuzz-proof-1", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath, "nonce": "fuzz-nonce"}
proof_header = {"typ": "dpop+jwt", "jwk": agent_jwk}
proof = jwt.encode(proof_claims, agent_pem, algorithm="ES256", headers=proof_header)
for flags in (b"\x00", b"\x01"):
    put("dpop_proof", b"\x00" + flags + proof.encode())
    put("dpop_proof", b"\x01" + flags + json.dumps(proof_claims).encode())
    put("dpop_proof", b"\x02" + flags + json.dumps({"alg": "ES256", **proof_header}).encode()
        + SEP + json.dumps(proof_claims).encode())

for bad in ({**proof_claims, "htm": "POST"}, {**proof_claims, "iat": NOW - 3600},
            {**proof_claims, "ath": b64u(b"x" * 32)}):
    put("dpop_proof", b"\x00\x00" + jwt.encode(bad, agent_pem, algorithm="ES256", headers=proof_header).encode())

# --- keys: JWKs (0), SPKI PEM (1), JWK Sets (2), PKCS#8 with an algorithm byte (3) ---
for p in sorted(glob.glob(os.path.join(ROOT, "conformance/vectors/external/jose-cookbook/jwk/*.json"))):
    put("keys", b"\x00" + open(p, "rb").read())
ed = ed25519.Ed25519PrivateKey.generate()
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
put("keys", b"\x00" + json.dumps(agent_jwk).encode())
put("keys", b"\x00" + json.dumps({"kty": "OKP", "crv": "Ed25519",
                                   "x": b64u(ed.public_key().public_bytes(serialization.Encoding.Raw,
                                                                          serialization.PublicFormat.Raw))}).encode())
put("keys", b"\x02" + json.dumps({"keys": [issuer_jwk, agent_jwk]}).encode())
for k in (agent_key, ed, rsa_key):
    put("keys", b"\x01" + k.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
for which, k in ((0, agent_key), (1, ed), (2, ed), (3, rsa_key), (4, rsa_key)):
    pkcs8 = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    put("keys", b"\x03" + bytes([which]) + pkcs8)

# --- router: method, path, auth, content type, dpop flag, then the body ---
PATHS = ["/intent/token", "/intent/register/agent", "/register/agent", "/intent/register/workflow",
         "/intent/register/client", "/intent/admin/revoke-agent", "/intent/admin/rotate-keys",
         "/.well-known/jwks.json", "/.well-known/oauth-authorization-server",
         "/.well-known/oauth-protected-resource", "/healthz", "/readyz", "/intent/token?x=1",
         "/intent/revoke", "/intent/introspect", "/intent/admin/revoke-registration",
         "/intent/agents/vulnerability-patcher-v1", "/intent/status-lists/1"]


def route(method, path, auth, ctype, dpop, body):
    return bytes([method, PATHS.index(path), auth, ctype, dpop]) + (body if isinstance(body, bytes) else body.encode())


ajwt = os.path.join(ROOT, "target", "debug", "ajwt")
checksum = None
if os.path.exists(ajwt):
    checksum = subprocess.run([ajwt, "checksum", "examples/agents/vulnerability-patcher-v1.json"],
                              capture_output=True, text=True, check=True).stdout.split()[0]
else:
    sys.exit("build the CLI first (cargo build -p ajwt-cli): the router seeds need the example agent's checksum")
token_body = {"grant_type": "agent_checksum", "agent_id": "vulnerability-patcher-v1",
              "computed_checksum": checksum, "requested_scopes": ["vulnerability:read"],
              "audience": AUDIENCE}
step_body = {**token_body, "workflow_id": "auto-patch-workflow-v1", "workflow_step": "step_4_apply_patch",
             "workflow_enabled": True,
             "delegation_context": {"chain": [], "completed_steps": [
                 "step_1_analyze_manifest", "step_2_create_patch_plan", "step_3_approval_gate"]}}
for dpop in (0, 1):
    put("router", route(0, "/intent/token", 1, 0, dpop, json.dumps(token_body)))
    put("router", route(0, "/intent/token", 1, 0, dpop, json.dumps(step_body)))
put("router", route(0, "/intent/token", 2, 1, 0, "grant_type=client_credentials"))
put("router", route(0, "/intent/token", 0, 1, 0, "grant_type=client_credentials&client_id=x&client_secret=y"))
put("router", route(0, "/intent/register/agent", 1, 0, 0, json.dumps({**spec, "agent_id": "fuzz-agent",
                                                                       "public_key": agent_jwk})))
put("router", route(0, "/intent/register/workflow", 1, 0, 0, example_workflow))
put("router", route(0, "/intent/register/client", 1, 0, 0,
                    json.dumps({"scopes": ["generate:intent-token"], "description": "fuzz"})))
put("router", route(0, "/intent/admin/revoke-agent", 1, 0, 0, json.dumps({"agent_id": "fuzz-agent"})))
put("router", route(0, "/intent/admin/rotate-keys", 1, 0, 0, ""))
for p in ("/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/healthz", "/readyz"):
    put("router", route(1, p, 0, 4, 0, ""))
put("router", bytes([0, len(PATHS), 3, 0, 0]) + b"intent/introspect" + SEP + b"Bearer x" + SEP + b"token=abc")
# Lifecycle endpoints (issue 13): a revocation and an introspection of a
# syntactically valid but foreign token, the agent view, a status list.
put("router", route(0, "/intent/revoke", 2, 1, 0, "token=" + valid))
put("router", route(0, "/intent/introspect", 2, 1, 0, "token=" + valid + "&token_type_hint=access_token"))
put("router", route(0, "/intent/admin/revoke-registration", 1, 0, 0,
                    json.dumps({"registration_id": "reg_vulnerability-patcher-v1_1800000000"})))
put("router", route(1, "/intent/agents/vulnerability-patcher-v1", 1, 4, 0, ""))
put("router", route(1, "/intent/status-lists/1", 0, 4, 0, ""))

print(json.dumps(counts, sort_keys=True))
