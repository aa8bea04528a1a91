#!/usr/bin/env bash
# Runs the Python client tests against a real `banso up`.
#
#   cargo build -p banso && tests/python/run.sh [pytest args...]
#
# Creates (or reuses) the virtualenv .ci/.venv, installs requirements.txt,
# generates the stubs from proto/ into tests/python/gen/ and runs pytest.
# BANSO_BIN picks the binary (default target/debug/banso, under $CARGO_TARGET_DIR if set); PYTHON picks the
# interpreter that creates the virtualenv (default python3, 3.11+).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.ci/.venv"

bin="${BANSO_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/banso}"
[[ "$bin" = /* ]] || bin="$root/$bin"
if [[ ! -x "$bin" ]]; then
    echo "run.sh: no banso binary at $bin; run \`cargo build -p banso\` first (or set BANSO_BIN)" >&2
    exit 2
fi
export BANSO_BIN="$bin"

if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$root/.ci"
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"

# Install only when requirements.txt changed since the last install.
stamp="$venv/.banso-requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

PYTHON="$py" "$here/generate.sh"

cd "$root"
exec "$py" -m pytest -q -p no:cacheprovider "$here" "$@"
