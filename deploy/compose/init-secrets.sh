#!/bin/sh
# Creates the secrets deploy/compose.yaml reads, in deploy/compose/secrets/ (or DIR):
#   s3-root-password        the trial S3 server's root password (user `tufa-admin`)
#   s3-writer-secret-key    secret key of the S3 user `tufa-writer` (read-write)
#   s3-reader-secret-key    secret key of the S3 user `tufa-reader` (read-only)
#   tufa-online-key.json    the TUF online key (bin-n, snapshot, timestamp), made by
#                           `tufa online-key generate`; online.pub.json is its public part,
#                           for the key ceremony (docs/KEY-CEREMONY.md)
# Never overwrites a file that exists. Needs a tufa binary: `tufa` on PATH, or TUFA=PATH
# (e.g. TUFA=target/release/tufa).
#
# Usage: deploy/compose/init-secrets.sh [DIR]
#
# Permissions: compose (outside swarm) bind-mounts secret files with their host owner and
# mode, and the containers run as other users (tufa 10001, MinIO root), so the files are
# world-readable (0644) and the directory is what keeps them private on the host (0700).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/secrets}"
tufa="${TUFA:-tufa}"

if ! command -v "$tufa" >/dev/null 2>&1; then
  echo "init-secrets.sh: no tufa binary: install it, or set TUFA=PATH (cargo build --release -p tufa gives target/release/tufa)" >&2
  exit 2
fi

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
dir="$(cd "$dir" && pwd)"

# 32 hex characters: within MinIO's 8 to 40 for secret keys.
random_secret() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

for name in s3-root-password s3-writer-secret-key s3-reader-secret-key; do
  file="$dir/$name"
  if [ -e "$file" ]; then
    echo "kept $file"
  else
    random_secret >"$file"
    chmod 0644 "$file"
    echo "wrote $file"
  fi
done

key="$dir/tufa-online-key.json"
if [ -e "$key" ]; then
  echo "kept $key"
else
  # A config naming only the key: `online-key generate` writes the file [tuf] online_key names.
  config="$(mktemp)"
  trap 'rm -f "$config"' EXIT
  escaped="$(printf '%s' "$key" | sed 's/[\\"]/\\&/g')"
  printf '[tuf]\nonline_key = "%s"\n' "$escaped" >"$config"
  "$tufa" --config "$config" online-key generate --public-out "$dir/online.pub.json"
  chmod 0644 "$key"
  echo "wrote $key (public part: $dir/online.pub.json)"
fi
