#!/bin/sh
# Entrypoint of the tufa containers in deploy/compose.yaml: exports every compose secret
# mounted as /run/secrets/AWS_* as the environment variable of that name (object_store reads
# S3 credentials from the environment, not from files), then runs the command.
#   secrets-env.sh tufa --config /etc/tufa/tufa.toml serve
# TUFA_SECRETS_DIR overrides /run/secrets (for tests).
set -eu
dir="${TUFA_SECRETS_DIR:-/run/secrets}"
for file in "$dir"/AWS_*; do
  [ -f "$file" ] || continue
  name="${file##*/}"
  case "$name" in
    *[!A-Z0-9_]*) echo "secrets-env.sh: ignoring $file: not an environment variable name" >&2; continue ;;
  esac
  # The file's content without its final newline, as $(…) gives it.
  value="$(cat "$file")"
  export "$name=$value"
done
if [ "$#" -eq 0 ]; then
  echo "secrets-env.sh: no command given" >&2
  exit 2
fi
exec "$@"
