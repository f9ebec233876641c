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
# Debian's python3 ships the venv module's pip bootstrap separately (python3-venv): install it
# when it is missing, as root or through a sudo that needs no password, else say what to run.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  pkg=python3-venv
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "error: python3 cannot create a venv (no ensurepip): run \`sudo apt-get install $pkg\`" >&2
    exit 1
  fi
  echo "python3 cannot create a venv: installing $pkg"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y --no-install-recommends "$pkg" ||
    { "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y --no-install-recommends "$pkg"; }
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -r "$REQS"
cp "$REQS" "$STAMP"
"$VENV/bin/python" -m pip --version
"$VENV/bin/uv" --version
