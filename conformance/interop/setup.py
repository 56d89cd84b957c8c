#!/usr/bin/env python3
"""Prepares the interop suite's fixtures against a running `ajwt serve`.

Python standard library only (plus the `openssl` and `ajwt` binaries), so the
Node and Python suites share one set of agents and neither depends on the other.

* generates one agent key per key type with openssl (Ed25519, P-256, RSA 2048;
  PKCS#8 private keys, SPKI public keys);
* writes one agent specification per key (`interop-<kind>`), and one variant of
  examples/agents/vulnerability-patcher-v1.json per key (same agent_id, a
  prompt naming the key, so each variant is a new registration version with its
  own checksum, §5.4.4) -- the resource servers' protected step is assigned to
  that agent, so a suite re-registers the variant whose key it is about to use;
* computes every checksum with `ajwt checksum` (JCS profile, §5.3.1);
* registers the interop-<kind> agents (public key as PEM SPKI, §6.2.3), the
  §6.3.3 workflow of examples/workflows and `interop-workflow-v1` (two
  unassigned steps) with the bootstrap admin client;
* writes fixtures.json for the suites.

Usage: setup.py --ajwt BIN --issuer URL --data-dir DIR --out DIR
"""

import argparse
import base64
import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
KINDS = {
    "ed25519": ["-algorithm", "ed25519"],
    "es256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}
# Re-registering a checksum already registered is duplicate_agent (I-26), so each
# re-registration of the patcher with a key uses a fresh variant.
PATCHER_VARIANTS = 6
INTEROP_WORKFLOW = {
    "workflow_id": "interop-workflow-v1",
    "steps": {
        "step_1_collect": {"required": True, "requires_approval": False},
        "step_2_act": {"required": True, "requires_approval": False},
    },
}


def request(method, url, *, body=None, token=None, basic=None, form=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:
        raw = f"{basic[0]}:{basic[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def must(status_body, what):
    status, body = status_body
    if status != 200:
        sys.exit(f"setup: {what}: HTTP {status} {body}")
    return body


def checksum(ajwt, spec_path):
    out = subprocess.run([ajwt, "checksum", str(spec_path)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ajwt", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--extra", default="{}", help="JSON merged into fixtures.json")
    a = p.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    admin = json.loads((pathlib.Path(a.data_dir) / "admin-client.json").read_text())
    base = a.issuer.rstrip("/")
    metadata = must(request("GET", f"{base}/.well-known/oauth-authorization-server"), "metadata")
    token = must(
        request("POST", metadata["token_endpoint"], basic=(admin["client_id"], admin["client_secret"]),
                form={"grant_type": "client_credentials"}),
        "client_credentials",
    )["access_token"]

    patcher = json.loads((REPO / "examples/agents/vulnerability-patcher-v1.json").read_text())
    agents = {}
    for kind, opts in KINDS.items():
        key = out / f"{kind}-key.pem"
        pub = out / f"{kind}-pub.pem"
        subprocess.run(["openssl", "genpkey", *opts, "-out", str(key)], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                       capture_output=True)
        spec = dict(patcher, agent_id=f"interop-{kind}",
                    prompt=f"You are the interop agent holding the {kind} key. Read manifests only.")
        spec_path = out / f"interop-{kind}.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        variants = []
        for n in range(PATCHER_VARIANTS):
            variant = dict(patcher, prompt=patcher["prompt"] + f" (interop build {n}, {kind} key)")
            variant_path = out / f"patcher-{kind}-{n}.json"
            variant_path.write_text(json.dumps(variant, indent=2))
            variants.append({"agent_id": variant["agent_id"], "checksum": checksum(a.ajwt, variant_path),
                             "spec": variant})
        agents[kind] = {
            "agent_id": spec["agent_id"],
            "checksum": checksum(a.ajwt, spec_path),
            "spec_file": str(spec_path),
            "private_key_pem": key.read_text(),
            "public_key_pem": pub.read_text(),
            "patcher_variants": variants,
        }
        must(request("POST", metadata["agent_registration_endpoint"], token=token,
                     body=dict(spec, public_key=pub.read_text())), f"register interop-{kind}")

    workflow = json.loads((REPO / "examples/workflows/auto-patch-workflow-v1.json").read_text())
    for wf in (workflow, INTEROP_WORKFLOW):
        must(request("POST", metadata["workflow_registration_endpoint"], token=token, body=wf),
             f"register {wf['workflow_id']}")

    fixtures = {
        "issuer": base,
        "admin_client": admin,
        "agents": agents,
        "workflows": {"patch": workflow, "interop": INTEROP_WORKFLOW},
    }
    fixtures.update(json.loads(a.extra))
    (out / "fixtures.json").write_text(json.dumps(fixtures, indent=2))
    print(f"setup: {len(agents)} agents and 2 workflows registered at {base}")


if __name__ == "__main__":
    main()
