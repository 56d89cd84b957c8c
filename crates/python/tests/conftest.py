"""Shared fixtures of the agentic-jwt pytest suite (issue 16).

* ``repo_root``: the repository root (vectors live in ``conformance/vectors``).
* ``reference``: the §5.3.2 reference code (conformance/adapters/python_reference.py).
* ``ajwt_bin``: the ``ajwt`` binary (``$AJWT_BIN``, set by run-tests.sh).
* With ``CI=true`` a skipped test is reported as a failure: in CI nothing may skip.
"""

import importlib.util
import os
import pathlib

import pytest

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
