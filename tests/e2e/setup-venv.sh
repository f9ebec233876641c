#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the end-to-end tests drive: real pip and uv
# clients, from PyPI. Usage: setup-venv.sh VENV_DIR. Idempotent and quick when up to date.
set -euo pipefail
VENV=${1:?usage: setup-venv.sh VENV_DIR}
REQS="$(cd "$(dirname "$0")" && pwd)/requirements.txt"
STAMP="$VENV/.tufa-requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP"; then
  echo "venv $VENV is up to date"
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -r "$REQS"
cp "$REQS" "$STAMP"
"$VENV/bin/python" -m pip --version
"$VENV/bin/uv" --version
