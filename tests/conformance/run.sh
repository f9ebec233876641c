#!/usr/bin/env bash
# Runs the public tuf-conformance suite (https://github.com/theupdateframework/tuf-conformance)
# against tufa's TUF client, `tufa tuf-client`.
#
# Usage: run.sh TUFA_BINARY [SUITE_DIR] [REPORT_JSON] [-- PYTEST_ARGS...]
#   SUITE_DIR   default: ../shared/tuf-conformance beside the repository (TUF_CONFORMANCE_DIR)
#   REPORT_JSON pytest-json-report output (default: $CARGO_TARGET_DIR/conformance-report.json)
# Installs the suite into a venv under CARGO_TARGET_DIR (TUF_CONFORMANCE_VENV overrides) and
# Debian's `faketime`, which the suite runs clients under, when missing. Exit 0 when every test
# passed (there is no expected-failure list: `tufa tuf-client.xfails` does not exist).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN=${1:?usage: run.sh TUFA_BINARY [SUITE_DIR] [REPORT_JSON]}
SUITE=${2:-${TUF_CONFORMANCE_DIR:-$ROOT/../shared/tuf-conformance}}
TARGET=${CARGO_TARGET_DIR:-/var/tmp/tufa-target}
REPORT=${3:-$TARGET/conformance-report.json}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
VENV=${TUF_CONFORMANCE_VENV:-$TARGET/conformance-venv}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@";
  else echo "error: run \`sudo $*\`" >&2; return 1; fi
}

if ! command -v faketime >/dev/null 2>&1; then
  echo "installing faketime (Debian), which tuf-conformance runs clients under"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends faketime ||
    { as_root apt-get update && as_root apt-get install -y --no-install-recommends faketime; }
fi

# Reinstall when the suite changes (its pinned requirements and commit are the stamp).
STAMP="$VENV/.tufa-conformance"
want=$(cat "$SUITE/pyproject.toml" "$SUITE/UPSTREAM-COMMIT" 2>/dev/null | sha256sum | cut -d' ' -f1)
if ! [ -x "$VENV/bin/pytest" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    as_root apt-get install -y --no-install-recommends python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SUITE"
  echo "$want" > "$STAMP"
fi

cd "$SUITE"
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/pytest" tuf_conformance -p no:cacheprovider -q \
  --entrypoint "$BIN tuf-client" --json-report --json-report-file="$REPORT" "$@"
