#!/usr/bin/env bash
# Sync at scale (issue 12, targets and item 5): an allowlist of many projects, cold and no-op.
#
# For each N in SIZES: a generated fake upstream of N projects of MAX_FILES file(s) at most
# (`fake-upstream --generate projects=N,max-files=MAX_FILES,big-projects=0`, pinned to
# UPSTREAM_CORE), a new mirror (`tufa init --dev-keys`, TUF signing included) whose allowlist
# (`projects = [...]` in tufa.toml) names all N projects, then on MIRROR_CORES under GNU time:
#   cold   the first `tufa sync`: every page, every file, publish of N projects, first TUF
#   no-op  `tufa sync` again with nothing changed upstream: in allowlist mode tufa asks for
#          every listed project's page (the upstream counts them) and finds nothing to do
# and prints one row per run: wall s, CPU-s, peak RSS (the memory target: flat in the number
# of projects), pages and files the upstream served. The no-op target of the issue: 10,000
# projects in under 10 s.
#
# Usage: bench/sync-scale.sh
#
# Environment (defaults in brackets):
#   SIZES ["10000 50000"]   project counts, one mirror each
#   MAX_FILES [1]           most files per project (1-20; small keeps 50,000 projects cheap)
#   SEED [1]
#   UPSTREAM_CORE [0], MIRROR_CORES [1]
#   CARGO_TARGET_DIR        honoured (tufa and fake-upstream are built in release)
#   TMPDIR [/tmp]           where the mirrors live (about 30 MB per 1,000 one-file projects)
#
# Everything listens on 127.0.0.1 only; processes and files are removed on exit. Needs GNU time
# (/usr/bin/time; apt-get when missing), taskset, curl, python3.
set -euo pipefail

case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "error: unknown argument \`$1\`; usage: bench/sync-scale.sh" >&2; exit 2 ;;
esac

SIZES=${SIZES:-10000 50000}
MAX_FILES=${MAX_FILES:-1}
SEED=${SEED:-1}
UPSTREAM_CORE=${UPSTREAM_CORE:-0}
MIRROR_CORES=${MIRROR_CORES:-1}
for n in $SIZES $MAX_FILES $SEED; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "error: SIZES, MAX_FILES and SEED must be whole numbers, not \`$n\`" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

[ -x /usr/bin/time ] || apt_install time
need_tools taskset curl python3
build_tufa
build_fake_upstream
bench_workdir tufa-sync-scale


# measure NAME CMD...: sets ROW to "wall cpu rss_mib pages files".
measure() {
  local name=$1 pages0 files0 wall user sys rss
  shift
  sync
  pages0=$(upstat simple_pages)
  files0=$(upstat file_downloads)
  taskset -c "$MIRROR_CORES" /usr/bin/time -f '%e %U %S %M' -o "$WORK/$name.time" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" ||
    { echo "error: $name failed:" >&2; tail -n 20 "$WORK/$name.log" >&2; exit 1; }
  read -r wall user sys rss <"$WORK/$name.time"
  ROW="$wall $(python3 -c "print(f'{$user + $sys:.2f}')") $(python3 -c "print(f'{$rss / 1024:.1f}')") $(( $(upstat simple_pages) - pages0 )) $(( $(upstat file_downloads) - files0 ))"
}

ROWS=()
for n in $SIZES; do
  echo "$n projects: generating the upstream…" >&2
  port=$(free_port)
  start_bg "$UPSTREAM_CORE" "$WORK/up-$n.log" "$FAKE" --port "$port" \
    --generate "projects=$n,seed=$SEED,max-files=$MAX_FILES,big-projects=0"
  UP_PID=$LAST_PID
  UP=http://127.0.0.1:$port
  wait_http "$UP/_fake/stats" fake-upstream "$UP_PID" || { cat "$WORK/up-$n.log" >&2; exit 1; }
  M=$WORK/m-$n
  "$BIN" init "$M" --upstream "$UP/simple/" --dev-keys >"$M.init.log" 2>&1 || { cat "$M.init.log" >&2; exit 1; }
  # The allowlist: every project of the upstream (its PEP 691 root list; a loopback fake).
  curl -fsS -H 'Accept: application/vnd.pypi.simple.v1+json' "$UP/simple/" | python3 -c '
import json, re, sys
names = [p["name"] for p in json.load(sys.stdin)["projects"]]
path = sys.argv[1]
text = open(path).read()
line = "projects = [" + ", ".join(json.dumps(n) for n in names) + "]"
text, count = re.subn(r"^# projects = .*$", line, text, count=1, flags=re.M)
assert count == 1, "no projects line in tufa.toml"
open(path, "w").write(text)
print(len(names), file=sys.stderr)' "$M/tufa.toml" 2>"$WORK/names-$n"
  [ "$(cat "$WORK/names-$n")" = "$n" ] || { echo "error: the upstream lists $(cat "$WORK/names-$n") projects, not $n" >&2; exit 1; }
  for phase in cold no-op; do
    echo "  $phase…" >&2
    measure "$phase-$n" "$BIN" --config "$M/tufa.toml" --log-format json sync
    ROWS+=("$n $phase $ROW")
  done
  taskset -c "$MIRROR_CORES" "$BIN" --config "$M/tufa.toml" verify >"$WORK/verify-$n.out" 2>&1 ||
    { echo "error: tufa verify failed for $n projects:" >&2; tail "$WORK/verify-$n.out" >&2; exit 1; }
  stop_bg "$UP_PID"
  rm -rf "$M"
done

echo "| projects in the allowlist | sync | wall s | CPU-s | peak RSS MiB | pages fetched | files downloaded |"
echo "|--:|---|--:|--:|--:|--:|--:|"
for r in "${ROWS[@]}"; do
  read -r n phase wall cpu rss pages files <<<"$r"
  python3 -c 'import sys; n, phase, wall, cpu, rss, pages, files = sys.argv[1:]
print(f"| {int(n):,} | {phase} | {wall} | {cpu} | {rss} | {int(pages):,} | {int(files):,} |")' "$n" "$phase" "$wall" "$cpu" "$rss" "$pages" "$files"
done
echo
echo "Upstream: fake-upstream --generate projects=N,seed=$SEED,max-files=$MAX_FILES,big-projects=0 on core $UPSTREAM_CORE; tufa on core(s) $MIRROR_CORES; every mirror passed \`tufa verify\`."
echo "tufa $rev, $(rustc --version); tufa init --dev-keys (allowlist mode, TUF signing, 16,384 bins)."
echo "Machine: $(uname -srm); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); work dir ${TMPDIR:-/tmp} ($(df -T "$WORK" | awk 'NR==2 {print $2}')); $(date -u +%Y-%m-%dT%H:%MZ)."
echo "Command: SIZES=\"$SIZES\" MAX_FILES=$MAX_FILES SEED=$SEED UPSTREAM_CORE=$UPSTREAM_CORE MIRROR_CORES=$MIRROR_CORES bench/sync-scale.sh"
