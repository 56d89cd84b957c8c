"""conformance/adapters/python_binding.py (the vectors adapter over this
package) passes `ajwt conformance vectors` with zero failures and zero skips:
every checksum (§5.2-§5.3), sequence-hash (§4.4.4), token-request (§4.2.1,
§4.5.6) and workflow-authorization (§4.3.3) vector."""

import json
import shlex
import subprocess
import sys

from conftest import REPO_ROOT

ADAPTER = REPO_ROOT / "conformance" / "adapters" / "python_binding.py"


def run_vectors(ajwt_bin, tmp_path, *args):
    report = tmp_path / "report.json"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(ADAPTER))}"
    run = subprocess.run([ajwt_bin, "conformance", "vectors", "-q", "--adapter", command, "--json", str(report), *args],
                         capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    return run, json.loads(report.read_text())


def test_s5_3_s4_4_4_adapter_passes_every_checksum_and_sequence_hash_vector(ajwt_bin, tmp_path):
    vectors = REPO_ROOT / "conformance" / "vectors"
    expected = sum(json.loads((vectors / f"{name}.json").read_text())["numberOfTests"]
                   for name in ("checksum", "sequence_hashes"))
    run, report = run_vectors(ajwt_bin, tmp_path, "--file", "checksum,sequence_hashes")
    assert run.returncode == 0, run.stdout[-3000:]
    summary = report["summary"]
    assert summary["pass"] == summary["total"] == expected
    assert summary["fail"] == summary["must_failures"] == summary["skipped"] == 0


def test_adapter_passes_every_vector(ajwt_bin, tmp_path):
    vectors = REPO_ROOT / "conformance" / "vectors"
    expected = sum(json.loads((vectors / f"{name}.json").read_text())["numberOfTests"]
                   for name in ("checksum", "sequence_hashes", "token_request_decoding", "workflow_authorization"))
    run, report = run_vectors(ajwt_bin, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    summary = report["summary"]
    assert summary["pass"] == summary["total"] == expected
    assert summary["fail"] == summary["must_failures"] == summary["skipped"] == summary["unexpected_pass"] == 0
    assert {r["outcome"] for r in report["results"]} == {"pass"}
