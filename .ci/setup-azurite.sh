#!/usr/bin/env bash
# Installs Azurite, Microsoft's Azure Blob Storage emulator (npm package `azurite`), into DIR, for
# tufa-store's Azure tests. Usage: setup-azurite.sh DIR. Idempotent and quick when up to date.
# Needs node and npm (Debian: `apt-get install nodejs npm`); installs them when missing and
# running as root. The tests run this themselves on first use (tufa-testkit's azurite()).
set -euo pipefail
DIR=${1:?usage: setup-azurite.sh DIR}
VERSION=3.37.0
if [ -x "$DIR/node_modules/.bin/azurite-blob" ] && [ -f "$DIR/.version" ] && [ "$(cat "$DIR/.version")" = "$VERSION" ]; then
  echo "azurite $VERSION in $DIR is up to date"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: npm is missing: run \`sudo apt-get install nodejs npm\`" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends nodejs npm ||
    { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
fi
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "azurite@$VERSION"
echo "$VERSION" > "$DIR/.version"
"$DIR/node_modules/.bin/azurite-blob" --version
