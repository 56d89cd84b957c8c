"""The type stubs (python/agentic_jwt/_native.pyi) describe the native module:
every public name and class member exists on both sides, and `py.typed` ships
with the package (PEP 561)."""

import ast
import importlib.resources
import inspect
import pathlib

import agentic_jwt
from agentic_jwt import _native

STUB = pathlib.Path(__file__).resolve().parents[1] / "python" / "agentic_jwt" / "_native.pyi"
TYPE_ALIASES = {"Spec", "Profile"}


def stub_names():
    tree = ast.parse(STUB.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name if isinstance(n, ast.FunctionDef) else n.target.id
                for n in node.body
                if isinstance(n, ast.FunctionDef) or (isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))
            }
        if isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names - TYPE_ALIASES, members


def test_every_native_name_has_a_stub_and_back():
    names, members = stub_names()
    public = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    assert names == public
    for cls, stubbed in members.items():
        actual = {n for n in dir(getattr(_native, cls)) if not n.startswith("_") or n == "__init__"}
        stubbed = stubbed - {"__init__"}
        actual = actual - {"__init__"} - set(dir(Exception))
        assert stubbed == actual, cls


def test_package_reexports_and_ships_py_typed():
    assert set(agentic_jwt.__all__) == {n for n in dir(_native) if not n.startswith("_")}
    files = importlib.resources.files("agentic_jwt")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


def test_docstrings_cite_the_draft():
    for name in ("checksum", "canonical", "normalize_prompt", "sequence_hash", "delegation_hash", "jwk_thumbprint",
                 "AgentKey", "Verifier", "IntentClaims", "ChecksumError", "VerificationError"):
        doc = inspect.getdoc(getattr(agentic_jwt, name)) or ""
        assert "§" in doc, name
