#!/usr/bin/env bash
# Interop suite (issue 11): drives our real servers -- `ajwt serve`,
# examples/protected-api and examples/mcp-server -- with the client libraries
# people already use: oauth4webapi and jose (Node, conformance/interop/node),
# Authlib, PyJWT and joserfc (Python, conformance/interop/python). Versions are
# pinned by package-lock.json and requirements.txt.
#
#   bash conformance/interop/run.sh            # after `npm ci` here and `pip install -r requirements.txt`
#
# Starts, on free loopback ports with fresh data directories:
#   issuer          ajwt serve (ES256)                      the suites' authorization server
#   issuer_path     ajwt serve --issuer http://host/tenant1 RFC 8414 §3.1 path issuer
#   issuer_ed25519  ajwt serve --signing-alg Ed25519        RFC 9864 token signatures
#   api             protected-api (--pop required)
#   api_nonce       protected-api --dpop-nonce              RFC 9449 §8-§9 server nonces
#   api_optional    protected-api --pop optional            RFC 9449 §7.2
#   mcp             mcp-server (--pop required)
#   mcp_nonce       mcp-server --dpop-nonce
# A server that does not start is reported in the fixtures and its tests fail
# with its log (it is not a skip). Registers the agents and workflows
# (setup.py), runs both suites, prints per-suite counts, writes
# $OUT/summary.json (default target/interop) and exits non-zero on any failure.
# With CI=true a missing Node or Python package is a failure; otherwise that
# suite is reported as skipped.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

OUT="${OUT:-target/interop}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cargo build --locked -q -p ajwt-cli -p ajwt-example-protected-api -p ajwt-example-mcp-server
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
AJWT="$BIN/ajwt"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SERVERS="{}"
# add_server NAME JSON: records a server in the fixtures.
add_server() {
  SERVERS="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]=json.loads(sys.argv[3]); print(json.dumps(d))' \
    "$SERVERS" "$1" "$2")"
}

# start NAME READY_URL CMD...: starts a server, waits until READY_URL answers 200.
# Sets STARTED=1 on success; otherwise records the failure with its log.
start() {
  local name="$1" ready="$2"; shift 2
  "$@" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  STARTED=0
  for _ in $(seq 1 150); do
    if curl -fsS "$ready" >/dev/null 2>&1; then STARTED=1; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  local why
  why="$(tail -n 5 "$OUT/$name.log" | tr '\n' ' ')"
  echo "== interop: $name did not start: $why"
  add_server "$name" "$(python3 -c 'import json,sys; print(json.dumps({"url": None, "error": sys.argv[1]}))' "$* -> $why")"
}

# start_issuer NAME ISSUER_PATH ARGS...
start_issuer() {
  local name="$1" path="$2"; shift 2
  local port data url
  port="$(free_port)"
  data="$WORK/$name"
  url="http://127.0.0.1:$port$path"
  start "$name" "http://127.0.0.1:$port/readyz" \
    "$AJWT" serve --addr "127.0.0.1:$port" --issuer "$url" --data-dir "$data" "$@"
  if [ "$STARTED" = 1 ]; then
    add_server "$name" "$(python3 -c 'import json,sys; print(json.dumps({"url": sys.argv[1], "issuer": sys.argv[1], "admin_client": json.load(open(sys.argv[2]))}))' \
      "$url" "$data/admin-client.json")"
  fi
  LAST_URL="$url"
  LAST_DATA="$data"
}

echo "== interop: starting servers (logs in $OUT)"
# A 2 s JWKS max-age and publish delay (I-90): the jose rotation test sees the
# new key published first, then signing.
start_issuer issuer "" --jwks-max-age 2 --key-publish-delay 2
[ "$STARTED" = 1 ] || { echo "== interop: FAIL: the issuer did not start"; exit 1; }
ISSUER="$LAST_URL"
ISSUER_DATA="$LAST_DATA"
start_issuer issuer_path "/tenant1"
start_issuer issuer_ed25519 "" --signing-alg Ed25519

API_AUDIENCE="https://api.interop.example"
# start_rs NAME BINARY AUDIENCE ARGS...
start_rs() {
  local name="$1" bin="$2" audience="$3"; shift 3
  local port url
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  [ -n "$audience" ] || audience="$url"
  start "$name" "$url/healthz" "$BIN/$bin" --addr "127.0.0.1:$port" --issuer "$ISSUER" --audience "$audience" "$@"
  if [ "$STARTED" = 1 ]; then
    add_server "$name" "$(python3 -c 'import json,sys; print(json.dumps({"url": sys.argv[1], "audience": sys.argv[2]}))' "$url" "$audience")"
  fi
}
start_rs api protected-api "$API_AUDIENCE"
start_rs api_nonce protected-api "$API_AUDIENCE" --dpop-nonce
start_rs api_optional protected-api "$API_AUDIENCE" --pop optional
start_rs mcp mcp-server ""
start_rs mcp_nonce mcp-server "" --dpop-nonce

echo "== interop: registering agents and workflows"
python3 "$HERE/setup.py" --ajwt "$AJWT" --issuer "$ISSUER" --data-dir "$ISSUER_DATA" \
  --out "$WORK/fixtures" --extra "$(python3 -c 'import json,sys; print(json.dumps({"servers": json.loads(sys.argv[1])}))' "$SERVERS")"
export AJWT_INTEROP_FIXTURES="$WORK/fixtures/fixtures.json"

status=0
NODE_STATE="not run"
PY_STATE="not run"

# ---- Node: oauth4webapi + jose
node_ok=1
if ! command -v node >/dev/null 2>&1; then
  node_ok=0; NODE_WHY="node is not installed"
elif ! (cd "$HERE" && node -e 'for (const p of ["oauth4webapi", "jose"]) { const v = require(`./node_modules/${p}/package.json`).version; const want = require("./package.json").dependencies[p]; if (v !== want) throw new Error(`${p} ${v} installed, ${want} pinned`) }') 2>"$OUT/node-check.err"; then
  node_ok=0; NODE_WHY="Node packages missing or not the pinned versions (run npm ci in conformance/interop): $(tail -n 1 "$OUT/node-check.err")"
fi
if [ "$node_ok" = 1 ]; then
  echo "== interop: node (oauth4webapi $(cd "$HERE" && node -p 'require("./node_modules/oauth4webapi/package.json").version'), jose $(cd "$HERE" && node -p 'require("./node_modules/jose/package.json").version'))"
  set +e
  (cd "$HERE" && node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$OUT/node.tap" node/)
  node_rc=$?
  set -e
  NODE_STATE="ran"
  [ "$node_rc" = 0 ] || status=1
else
  if [ "${CI:-}" = "true" ]; then
    echo "== interop: node: FAIL: $NODE_WHY"
    status=1; NODE_STATE="missing (a failure in CI)"
  else
    echo "== interop: node: SKIPPED: $NODE_WHY"
    NODE_STATE="skipped (packages missing)"
  fi
fi

# ---- Python: Authlib + PyJWT + joserfc
PY_CHECK='
import re, sys, importlib.metadata as md
import authlib, jwt, joserfc, httpx
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line)
    if m and m.group(1) in ("Authlib", "PyJWT", "joserfc", "httpx"):
        have = md.version(m.group(1))
        if have != m.group(2):
            sys.exit(f"{m.group(1)} {have} installed, {m.group(2)} pinned")
'
if python3 -c "$PY_CHECK" "$HERE/requirements.txt" 2>"$OUT/python-check.err"; then
  echo "== interop: python ($(python3 -c 'import authlib, jwt, joserfc; print(f"Authlib {authlib.__version__}, PyJWT {jwt.__version__}, joserfc {joserfc.__version__}")'))"
  set +e
  python3 "$HERE/python/run.py" --json "$OUT/python.json"
  py_rc=$?
  set -e
  PY_STATE="ran"
  [ "$py_rc" = 0 ] || status=1
else
  PY_WHY="packages missing (pip install -r conformance/interop/requirements.txt): $(tail -n 1 "$OUT/python-check.err")"
  if [ "${CI:-}" = "true" ]; then
    echo "== interop: python: FAIL: $PY_WHY"
    status=1; PY_STATE="missing (a failure in CI)"
  else
    echo "== interop: python: SKIPPED: $PY_WHY"
    PY_STATE="skipped (packages missing)"
  fi
fi

# ---- Summary
python3 - "$OUT" "$NODE_STATE" "$PY_STATE" <<'PY' || status=1
import json, pathlib, re, sys
out, node_state, py_state = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
suites = {}
def node_suite():
    tap = out / "node.tap"
    tests = []
    if tap.exists():
        for line in tap.read_text().splitlines():
            # Node 20's TAP lists each file's top-level tests without indentation.
            m = re.match(r"^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$", line)
            if m:
                status = "skipped" if m.group(3) else ("pass" if m.group(1) == "ok" else "fail")
                tests.append({"name": m.group(2), "status": status})
    return tests
def count(tests, state):
    c = {"state": state, "total": len(tests)}
    for k in ("pass", "fail", "skipped"):
        c[k] = sum(t["status"] == k for t in tests)
    c["tests"] = tests
    return c
suites["node"] = count(node_suite() if node_state == "ran" else [], node_state)
py = []
if py_state == "ran" and (out / "python.json").exists():
    py = json.loads((out / "python.json").read_text())["tests"]
suites["python"] = count(py, py_state)
summary = {"format": "ajwt-interop-summary/1", "suites": suites,
           "ok": all((s["state"] == "ran" and s["fail"] == 0 and s["total"] > 0)
                     or s["state"].startswith("skipped") for s in suites.values())}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
for name, s in suites.items():
    print(f"== interop {name}: {s['state']}: {s['total']} tests, {s['pass']} passed, {s['fail']} failed, {s['skipped']} skipped")
    for t in s["tests"]:
        if t["status"] == "fail":
            print(f"   FAIL {t['name']}")
print(f"== interop summary: {out / 'summary.json'}")
sys.exit(0 if summary["ok"] else 1)
PY

if [ "$status" = 0 ]; then echo "== interop: PASS"; else echo "== interop: FAIL"; fi
exit "$status"
