#!/usr/bin/env bash
# Runs the three conformance modes against this repository's implementation:
#   1. vectors: our crates, then the Python §5.3.2 reference adapter (its jcs
#      failures are the documented expected failures);
#   2. issuer: a fresh `ajwt serve` with its bootstrap admin client;
#   3. verifier: examples/protected-api, started by the runner (--exec), with
#      the test issuer signing ES256 and then Ed25519 (RFC 9864).
# Our own runs use --strict: SHOULD-level failures count too.
# Reports (JSON, JUnit) go to $OUT (default target/conformance). Exits non-zero
# when any mode has a MUST-level failure or cannot run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT="${OUT:-target/conformance}"
mkdir -p "$OUT"
cargo build --locked -q -p ajwt-cli -p ajwt-example-protected-api
BIN="${CARGO_TARGET_DIR:-target}/debug"
AJWT="$BIN/ajwt"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

status=0
run_mode() {
  local name="$1"; shift
  echo "== conformance: $name"
  rm -f "$OUT/$name.json" "$OUT/$name.xml"
  local rc=0
  "$@" --quiet --json "$OUT/$name.json" --junit "$OUT/$name.xml" || rc=$?
  if [ "$rc" = 0 ]; then
    echo "== conformance: $name: PASS"
  else
    echo "== conformance: $name: FAIL (exit $rc)"
    status=1
  fi
}

# Mode 1
run_mode vectors-builtin "$AJWT" conformance vectors --strict
run_mode vectors-python-reference "$AJWT" conformance vectors \
  --adapter "python3 conformance/adapters/python_reference.py" \
  --expect-fail conformance/adapters/python_reference.expected-failures

# Mode 2
DATA="$(mktemp -d)"
ISSUER_PORT="$(free_port)"
# A 2 s JWKS max-age and publish delay (I-90), so ISS-4.4.2-key-rotation sees
# the new key sign after it was published.
"$AJWT" serve --addr "127.0.0.1:$ISSUER_PORT" --issuer "http://127.0.0.1:$ISSUER_PORT" \
  --jwks-max-age 2 --key-publish-delay 2 \
  --data-dir "$DATA" >"$OUT/issuer-serve.log" 2>&1 &
SERVE_PID=$!
cleanup() { kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
# Debug builds hash the admin secret slowly and CI machines are shared: wait
# up to 60 s, and say why when the issuer never answers.
ready=0
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$ISSUER_PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$SERVE_PID" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "== conformance: issuer: ajwt serve did not become ready; its log:"
  cat "$OUT/issuer-serve.log"
  exit 1
fi
CLIENT_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$DATA/admin-client.json")"
CLIENT_SECRET="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$DATA/admin-client.json")"
run_mode issuer "$AJWT" conformance issuer --strict --base-url "http://127.0.0.1:$ISSUER_PORT" \
  --client-id "$CLIENT_ID" --client-secret="$CLIENT_SECRET"
if [ ! -f "$OUT/issuer.json" ]; then
  echo "== conformance: issuer: no report; the last lines of the issuer's log:"
  tail -n 30 "$OUT/issuer-serve.log"
fi

# Mode 3
API_PORT="$(free_port)"
RUNNER_PORT="$(free_port)"
run_mode verifier "$AJWT" conformance verifier --strict \
  --url "http://127.0.0.1:$API_PORT/patches" \
  --issuer-addr "127.0.0.1:$RUNNER_PORT" \
  --exec "$BIN/protected-api --issuer {issuer} --addr 127.0.0.1:$API_PORT"
# Mode 3 again, the test issuer signing under the RFC 9864 name Ed25519.
API_PORT="$(free_port)"
RUNNER_PORT="$(free_port)"
run_mode verifier-ed25519 "$AJWT" conformance verifier --strict --alg Ed25519 \
  --url "http://127.0.0.1:$API_PORT/patches" \
  --issuer-addr "127.0.0.1:$RUNNER_PORT" \
  --exec "$BIN/protected-api --issuer {issuer} --addr 127.0.0.1:$API_PORT"

# The reports themselves: JUnit is well-formed XML, JSON agrees with the exit status.
python3 - "$OUT" <<'PY' || status=1
import json, sys, pathlib
import xml.etree.ElementTree as ET
out = pathlib.Path(sys.argv[1])
failed = False
for name in ["vectors-builtin", "vectors-python-reference", "issuer", "verifier", "verifier-ed25519"]:
    if not (out / f"{name}.json").exists():
        # A setup error (exit 2) writes no report; the mode's own output says why.
        print(f"== report {name}: no report written (the mode could not run; see its output above)")
        failed = True
        continue
    report = json.loads((out / f"{name}.json").read_text())
    suites = ET.parse(out / f"{name}.xml").getroot()
    cases = suites.findall("./testsuite/testcase")
    s = report["summary"]
    assert report["format"] == "ajwt-conformance-report/1", name
    assert len(cases) == s["total"] == len(report["results"]), name
    assert s["must_failures"] == 0 and s["fail"] == 0 and s["unexpected_pass"] == 0, (name, s)
    print(f"== report {name}: {s['total']} tests, {s['pass']} passed, {s['expected_fail']} expected failures, {s['skipped']} skipped, {s['warning']} warnings")
sys.exit(1 if failed else 0)
PY

exit "$status"
