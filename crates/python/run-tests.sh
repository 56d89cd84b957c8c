#!/usr/bin/env bash
# The Python test suite of the agentic-jwt package (issue 16).
#
#   bash crates/python/run-tests.sh [pytest args...]
#
# 1. creates a virtual environment ($AJWT_PY_VENV, default
#    $CARGO_TARGET_DIR/python-venv or target/python-venv) and installs the
#    exact pins of crates/python/requirements-dev.txt;
# 2. builds the abi3 wheel with `maturin build --release` (prints its build
#    time) and installs it into the venv, as users get it;
# 3. builds `ajwt` and the protected-api example (cargo build -p ajwt-cli -p
#    ajwt-example-protected-api) and exports them as AJWT_BIN and AJWT_API_BIN
#    (the tests start a real `ajwt serve`, compare the verifier's refusals
#    with the axum layer's, and run `ajwt conformance vectors`);
# 4. runs pytest on crates/python/tests. With CI=true a skipped test is a
#    failure (tests/conftest.py).
#
# Environment: PYTHON (interpreter creating the venv, default python3),
# AJWT_PY_VENV, CARGO_TARGET_DIR, AJWT_BIN and AJWT_API_BIN (skip step 3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${AJWT_PY_VENV:-$target/python-venv}"
python="${PYTHON:-python3}"

echo "== python venv: $venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-dev.txt"

echo "== wheel: maturin build --release"
wheels="$target/wheels-agentic-jwt"
rm -rf "$wheels"
start=$(date +%s%N)
# The native `linux` platform tag, as `pip install ./crates/python` builds it (the
# PEP 517 path): the module links the system OpenSSL, which a manylinux repair
# would have to bundle (and would need patchelf).
(cd "$here" && CARGO_TARGET_DIR="$target" "$venv/bin/maturin" build --release --locked \
  --compatibility linux --interpreter "$venv/bin/python" --out "$wheels")
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
printf 'wheel build time: %d.%03d s\n' $((ms / 1000)) $((ms % 1000))
wheel="$(ls "$wheels"/agentic_jwt-*.whl | head -n 1)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

if [ -z "${AJWT_BIN:-}" ] || [ -z "${AJWT_API_BIN:-}" ]; then
  echo "== ajwt and protected-api: cargo build -p ajwt-cli -p ajwt-example-protected-api"
  (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --locked -p ajwt-cli -p ajwt-example-protected-api)
  export AJWT_BIN="${AJWT_BIN:-$target/debug/ajwt}"
  export AJWT_API_BIN="${AJWT_API_BIN:-$target/debug/protected-api}"
fi
echo "AJWT_BIN=$AJWT_BIN AJWT_API_BIN=$AJWT_API_BIN"

echo "== pytest"
cd "$here"
# The tests import the installed wheel, never the source tree (python/ is not on sys.path).
exec "$venv/bin/python" -m pytest -p no:cacheprovider tests "$@"
