"""Shared fixtures of the agentic-jwt pytest suite (issue 16).

* ``repo_root``: the repository root (vectors live in ``conformance/vectors``).
* ``reference``: the §5.3.2 reference code (conformance/adapters/python_reference.py).
* ``ajwt_bin``: the ``ajwt`` binary (``$AJWT_BIN``, set by run-tests.sh).
* ``issuer``: a real ``ajwt serve`` (class :class:`Issuer`), session-wide.
* With ``CI=true`` a skipped test is reported as a failure: in CI nothing may skip.
"""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import time

import httpx
import pytest
from hypothesis import settings

# No example database in the source tree (.hypothesis/); every run draws afresh.
settings.register_profile("agentic-jwt", database=None, deadline=None)
settings.load_profile("agentic-jwt")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


def load_module(path, name):
    """A Python file of the repository (an oracle script) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_reference():
    """conformance/adapters/python_reference.py as a module: the draft's §5.3.2
    reference code in plain CPython (the independent oracle of the python-ref
    profile and of normalize_prompt)."""
    return load_module(REPO_ROOT / "conformance" / "adapters" / "python_reference.py", "python_reference")


@pytest.fixture(scope="session")
def reference():
    return load_reference()


@pytest.fixture(scope="session")
def ajwt_bin() -> str:
    path = os.environ.get("AJWT_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("AJWT_BIN is not set to the ajwt binary (run crates/python/run-tests.sh)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI (CI=true: nothing may skip): {reason}"


# --- a real `ajwt serve` ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Issuer:
    """A running `ajwt serve` on a free loopback port with a fresh data
    directory, and the admin calls the tests need (README walk-through:
    bootstrap admin client, agent and workflow registration, intent tokens).

    ``url`` is the issuer identifier (also its base URL); ``admin`` holds the
    bootstrap client's ``client_id``/``client_secret``."""

    def __init__(self, ajwt_bin: str, data_dir: pathlib.Path, *extra_args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [ajwt_bin, "serve", "--addr", f"127.0.0.1:{self.port}", "--issuer", self.url,
             "--data-dir", str(data_dir / "data"), *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ajwt serve exited: {self.log()}")
            try:
                if self.http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ajwt serve did not become ready: {self.log()}")
            time.sleep(0.1)
        self.admin = json.loads((data_dir / "data" / "admin-client.json").read_text())
        self._admin_token = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        self._log.close()

    def admin_token(self) -> str:
        """A client_credentials access token of the bootstrap admin client
        (scopes register:intent, generate:intent-token, admin:intent)."""
        if self._admin_token is None:
            r = self.http.post("/intent/token", data={"grant_type": "client_credentials"},
                               auth=(self.admin["client_id"], self.admin["client_secret"]))
            r.raise_for_status()
            self._admin_token = r.json()["access_token"]
        return self._admin_token

    def post(self, path: str, body: dict, token: str = None, headers: dict = None) -> httpx.Response:
        h = {"Authorization": f"Bearer {token or self.admin_token()}"}
        h.update(headers or {})
        return self.http.post(path, json=body, headers=h)

    def register_agent(self, spec: dict, public_key) -> dict:
        """Registers `spec` (§5.4, §6.2) with `public_key` (JWK dict or PEM)."""
        r = self.post("/intent/register/agent", dict(spec, public_key=public_key))
        assert r.status_code == 200, r.text
        return r.json()

    def register_workflow(self, workflow: dict) -> dict:
        r = self.post("/intent/register/workflow", workflow)
        assert r.status_code == 200, r.text
        return r.json()

    def token_request(self, spec: dict, scopes, audience: str, workflow_id=None, workflow_step=None,
                      completed_steps=(), chain=(), dpop_key=None) -> httpx.Response:
        """POST /intent/token with the agent_checksum grant (§4.2.1); the
        checksum is computed by the `ajwt checksum` CLI's Rust core through the
        binding (the same bytes the issuer hashes)."""
        import agentic_jwt

        body = {
            "grant_type": "agent_checksum",
            "agent_id": spec["agent_id"],
            "computed_checksum": agentic_jwt.checksum(spec),
            "requested_scopes": list(scopes),
            "audience": audience,
            "delegation_context": {"chain": list(chain), "completed_steps": list(completed_steps)},
        }
        if workflow_id is not None:
            body.update(workflow_id=workflow_id, workflow_step=workflow_step, workflow_enabled=True)
        headers = {}
        if dpop_key is not None:
            headers["DPoP"] = dpop_key.dpop_proof("POST", self.url + "/intent/token")
        return self.post("/intent/token", body, headers=headers)

    def intent_token(self, *args, **kwargs) -> str:
        r = self.token_request(*args, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


@pytest.fixture(scope="session")
def issuer(ajwt_bin, tmp_path_factory):
    """A session-wide `ajwt serve` (ES256 signing)."""
    server = Issuer(ajwt_bin, tmp_path_factory.mktemp("issuer"))
    try:
        yield server
    finally:
        server.stop()
