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
# 3. builds `ajwt` (cargo build -p ajwt-cli) and exports it as AJWT_BIN
#    (the tests start a real `ajwt serve` and run `ajwt conformance vectors`);
# 4. runs pytest on crates/python/tests. With CI=true a skipped test is a
#    failure (tests/conftest.py).
#
# Environment: PYTHON (interpreter creating the venv, default python3),
# AJWT_PY_VENV, CARGO_TARGET_DIR, AJWT_BIN (skip step 3 and use this binary).
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
(cd "$here" && CARGO_TARGET_DIR="$target" "$venv/bin/maturin" build --release --locked \
  --interpreter "$venv/bin/python" --out "$wheels")
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
printf 'wheel build time: %d.%03d s\n' $((ms / 1000)) $((ms % 1000))
wheel="$(ls "$wheels"/agentic_jwt-*.whl | head -n 1)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"

if [ -z "${AJWT_BIN:-}" ]; then
  echo "== ajwt: cargo build -p ajwt-cli"
  (cd "$root" && CARGO_TARGET_DIR="$target" cargo build --locked -p ajwt-cli)
  export AJWT_BIN="$target/debug/ajwt"
fi
echo "AJWT_BIN=$AJWT_BIN"

echo "== pytest"
cd "$here"
# The tests import the installed wheel, never the source tree (python/ is not on sys.path).
exec "$venv/bin/python" -m pytest -p no:cacheprovider tests "$@"
