#!/usr/bin/env bash
# TUF signing benchmark: tufa-tuf (Rust, 1 and 2 threads) and python-tuf 7.0.1 side by side,
# with the same synthetic targets, the same 16,384 bins and the same online key.
#
# Usage: bench/run-tuf-bench.sh [N [PYTHON_N]]
#   N         targets for the Rust runs (default 1000000)
#   PYTHON_N  targets for the python-tuf run (default N; use a smaller one if python-tuf is
#             too slow on this machine — the table then says so in its `targets` column)
#
# Environment:
#   CARGO_TARGET_DIR   honoured as usual
#   TUFA_BENCH_VENV    venv with tuf==7.0.1 and cryptography (default /tmp/tufa-bench-venv,
#                      created if missing). Kept apart from $TUFA_E2E_VENV on purpose: signing
#                      needs pyca/cryptography, and installing it into the test venv would change
#                      which ed25519 verifier python-tuf uses in the conformance tests.
#   TMPDIR             where the metadata is written (default /tmp); TMPDIR=/dev/shm (tmpfs)
#                      takes the disk out of the write column
#
# With equal N the Rust (1 thread) and python-tuf outputs are compared file by file: they must
# be byte-identical (same targets, same key, deterministic ed25519, same canonical JSON).
set -euo pipefail

N=${1:-1000000}
PY_N=${2:-$N}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${TUFA_BENCH_VENV:-/tmp/tufa-bench-venv}

cd "$ROOT"
echo "building tufa-bench-tuf (release)…" >&2
cargo build --release --quiet -p tufa-bench-tuf
BIN=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tufa-bench-tuf

if ! "$VENV/bin/python" -c 'import tuf, cryptography; assert tuf.__version__ == "7.0.1"' 2>/dev/null; then
  echo "creating $VENV (tuf==7.0.1, cryptography)…" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check tuf==7.0.1 cryptography
fi

EXPIRES=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tufa-tuf-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

rows() { grep '^| ' "$1" | tail -n +2; }

# Flush earlier runs' dirty pages so one run's writeback does not land in the next one's timing.
# Also note the load average: the machine may be shared, and 2 cores fill up fast.
LOADS=""
settle() { sync; sleep 2; LOADS="$LOADS${LOADS:+; }$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }

settle "rust 1 thread"
echo "rust, 1 thread, $N targets…" >&2
"$BIN" --targets "$N" --threads 1 --expires "$EXPIRES" --out "$WORK/rust" --verify >"$WORK/rust1.md"
settle "python-tuf"
echo "python-tuf, $PY_N targets…" >&2
"$VENV/bin/python" bench/python_tuf_bins.py --targets "$PY_N" --expires "$EXPIRES" --out "$WORK/python" \
  >"$WORK/python.md"

SAME="not compared (different N)"
if [ "$N" = "$PY_N" ]; then
  # Every file python-tuf wrote must be byte-identical to the Rust one; only the untimed offline
  # roles (1.root.json, 1.targets.json, 1.bins.json) are Rust-only.
  diff -rq "$WORK/rust" "$WORK/python" >"$WORK/diff-all.txt" || true
  if grep -v -E "^Only in $WORK/rust: 1\.(root|targets|bins)\.json$" "$WORK/diff-all.txt" >"$WORK/diff.txt"; then
    echo "Rust and python-tuf outputs DIFFER:" >&2
    head "$WORK/diff.txt" >&2
    exit 1
  fi
  SAME="byte-identical: all $(find "$WORK/python" -type f | wc -l) files python-tuf wrote"
fi
rm -rf "$WORK/rust" "$WORK/python"

settle "rust 2 threads"
echo "rust, 2 threads, $N targets…" >&2
"$BIN" --targets "$N" --threads 2 --expires "$EXPIRES" >"$WORK/rust2.md"

head -n 2 "$WORK/rust1.md"
rows "$WORK/rust1.md"
rows "$WORK/rust2.md"
rows "$WORK/python.md"
echo
echo "¹ 2 threads (std::thread::scope) build, sign, serialise and write the bins, 8,192 each; the build+sign/serialize/write columns add up both threads' time, wall s is elapsed. Splitting, snapshot and timestamp stay on one thread."
echo "Bytes: \"median bin bytes\" is the median bin file on the initial row and the re-signed bin on the incremental row."
grep -h '^Breakdown' "$WORK/rust1.md" "$WORK/python.md" || true
echo "Rust vs python-tuf output: $SAME."
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
" $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $(date -u +%Y-%m-%d); metadata dir ${TMPDIR:-/tmp} ($(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}'))."
echo "Load average (1/5/15 min) before each run: $LOADS."
