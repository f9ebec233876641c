# Shared by the benchmark scripts (sourced, not run): installing peers, building tufa, the work
# directory with clean-up, and background processes pinned to a core.

# apt_install PACKAGE...: apt-get install, as root or through a sudo that needs no password.
apt_install() {
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      echo "error: $* missing: run \`sudo apt-get install $*\`" >&2
      exit 1
    fi
  fi
  echo "installing $* (apt-get)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y --no-install-recommends "$@" >&2 ||
    { "${as_root[@]}" apt-get update >&2 && "${as_root[@]}" apt-get install -y --no-install-recommends "$@" >&2; }
}

# need_tools TOOL...: fails naming the first one that is missing.
need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is missing" >&2; exit 1; }
  done
}

# build_tufa: builds tufa in release; sets `rev` (the revision it is built from: the tree may
# change while the benchmark runs), `TARGET` (the cargo target directory) and `BIN`.
build_tufa() {
  echo "building tufa (release)…" >&2
  rev=$(git rev-parse --short HEAD)
  git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || rev="$rev (+ uncommitted changes)"
  cargo build --release --quiet -p tufa
  TARGET=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  BIN=$TARGET/release/tufa
}

# build_fake_upstream: builds the benchmark upstream (crates/tufa-fake-upstream) in release
# after build_tufa; sets `FAKE` to its binary.
build_fake_upstream() {
  echo "building fake-upstream (release)…" >&2
  cargo build --release --quiet -p tufa-fake-upstream --bin fake-upstream
  FAKE=$TARGET/release/fake-upstream
}

# upstat KEY: one counter of the fake upstream at `$UP` (`GET /_fake/stats`).
upstat() { curl -fsS "$UP/_fake/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# log_phases START LOG: "sync publish tuf" seconds of a `tufa --log-format json sync`, from
# START (a file holding its start time, `date +%s.%N`) and its log's timestamps: start →
# `sync finished` (pages fetched, files downloaded, verified, stored) → the last `published`
# project → `TUF metadata published`.
log_phases() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
from datetime import datetime
start = float(open(sys.argv[1]).read())
t = {}
for line in open(sys.argv[2]):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    msg = rec.get("fields", {}).get("message", "")
    ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
    if msg in ("sync finished", "published", "TUF metadata published"):
        t[msg] = ts  # the last one of each
synced = t["sync finished"]
pages = t.get("published", synced)
tuf = t.get("TUF metadata published", pages)
print(f"{synced - start:.2f} {pages - synced:.2f} {tuf - pages:.2f}")
EOF
}

# bench_workdir NAME: a temporary directory `$WORK` (under $TMPDIR), removed on exit together
# with every process started by start_bg (kept, for a look at the logs, with KEEP_WORK=1).
bench_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  PIDS=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}

# start_bg CORE LOG CMD...: runs CMD pinned to CORE in the background; its pid in $LAST_PID.
start_bg() {
  local core=$1 log=$2
  shift 2
  taskset -c "$core" "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop_bg PID: stops one process this script started.
stop_bg() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# rss_mib PID VmRSS|VmHWM: a process's resident set now or at its peak, MiB.
rss_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL WHAT PID: until URL answers 2xx, or fail naming the log.
wait_http() {
  local i
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "error: $2 exited; see its log above" >&2; return 1; }
    sleep 0.1
  done
  echo "error: $2 did not answer $1 within 30 s" >&2
  return 1
}
