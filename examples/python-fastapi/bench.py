"""Overhead of intent tokens on the example (issue 16), measured in one run:

* client side, per request: the cached ``AgentSession.intent_token`` (checksum recomputed
  from the live spec, §5.5.1, plus the cache lookup) and ``AgentKey.dpop_proof`` (Rust),
  next to PyJWT + cryptography signing the same ES256 proof (the baseline);
* end to end over loopback: ``GET /health`` (unprotected) vs ``GET /manifests/...``
  (``require_intent``: token and proof verified by the Rust verifier, §6.5.3) through
  ``httpx`` with ``IntentAuth``, against a real ``ajwt serve`` and app.py under uvicorn.

    AJWT_BIN=target/debug/ajwt python examples/python-fastapi/bench.py [N]

Prints medians (and p90 for HTTP); timings on a shared machine are noisy, compare the
ratios within one run.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import jwt

from agentic_jwt import AgentKey
from agentic_jwt.client import AgentSession, IssuerClient, WorkflowTracker
from agentic_jwt.httpx import IntentAuth

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import agent as example  # noqa: E402

AUDIENCE = "https://api.github.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def timed(fn, n: int) -> list:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def pyjwt_proof(private_pem: str, public_jwk: dict, url: str, token: str) -> str:
    import base64
    import hashlib

    ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    claims = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": url, "iat": int(time.time()), "ath": ath}
    return jwt.encode(claims, private_pem, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public_jwk})


def report(name: str, samples: list) -> float:
    samples = sorted(samples)
    med = statistics.median(samples)
    p90 = samples[int(len(samples) * 0.9)]
    print(f"{name:58s} median {med:9.1f} us   p90 {p90:9.1f} us")
    return med


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    ajwt = os.environ["AJWT_BIN"]
    with tempfile.TemporaryDirectory() as tmp:
        iport, aport = free_port(), free_port()
        issuer_url, api = f"http://127.0.0.1:{iport}", f"http://127.0.0.1:{aport}"
        procs = [subprocess.Popen([ajwt, "serve", "--addr", f"127.0.0.1:{iport}", "--issuer", issuer_url,
                                   "--data-dir", f"{tmp}/data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            wait_ok(f"{issuer_url}/readyz")
            admin = json.loads(Path(f"{tmp}/data/admin-client.json").read_text())
            env = dict(os.environ, AJWT_ISSUER=issuer_url, API_PUBLIC_BASE_URL=api, API_AUDIENCE=AUDIENCE)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "app:create_app", "--app-dir", str(HERE),
                 "--port", str(aport), "--log-level", "warning"], env=env))
            wait_ok(f"{api}/health")
            issuer = IssuerClient(issuer_url, admin["client_id"], admin["client_secret"])
            reader, _ = example.setup(issuer, Path(tmp) / "keys")
            session = AgentSession(reader, issuer, WorkflowTracker(example.WORKFLOW_ID), AUDIENCE)
            token = session.intent_token(example.READ_STEP, example.READER_SCOPES)
            url = f"{api}/manifests/web-frontend"

            print(f"N={n}, one run (ratios are what to compare)")
            t_token = report("client: cached intent_token (checksum + cache)",
                             timed(lambda: session.intent_token(example.READ_STEP, example.READER_SCOPES), n))
            t_rust = report("client: AgentKey.dpop_proof ES256 (Rust)",
                            timed(lambda: reader.key.dpop_proof("GET", url, access_token=token), n))
            pem, jwk = reader.key.private_pem(), reader.key.public_jwk()
            t_py = report("baseline: PyJWT+cryptography ES256 proof",
                          timed(lambda: pyjwt_proof(pem, jwk, url, token), n))
            print(f"  proof: Rust/PyJWT = {t_rust / t_py:.2f}")

            auth = IntentAuth(session, step=example.READ_STEP, scopes=example.READER_SCOPES)
            with httpx.Client() as http:
                for _ in range(20):
                    http.get(f"{api}/health")
                    http.get(url, auth=auth)
                t_open = report("http: GET /health (unprotected)", timed(lambda: http.get(f"{api}/health"), n))
                t_prot = report("http: GET /manifests (IntentAuth + require_intent)",
                                timed(lambda: http.get(url, auth=auth).raise_for_status(), n))
            print(f"  protected/unprotected = {t_prot / t_open:.2f}; "
                  f"added per request {t_prot - t_open:.0f} us (client {t_token + t_rust:.0f} us of it)")
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    main()
