#!/usr/bin/env bash
# Sync benchmark (issue 12): tufa against bandersnatch 6.8.0 mirroring the SAME upstream in one
# run: a cold sync, a no-op sync and a sync after 1 % of the projects changed.
#
#   1. The upstream: `fake-upstream --generate projects=PROJECTS,seed=SEED`
#      (crates/tufa-fake-upstream, built in release) on 127.0.0.1, pinned to UPSTREAM_CORE. A
#      deterministic upstream: PROJECTS projects, most with 1–20 files, one in 400 with 500–800;
#      files of 5–200 KB (median ≈ 13 KB) and 0.4 % of 1–6 MiB; wheels are real zips with
#      METADATA, sdists random bytes; bytes streamed from the seed, not held in memory. It
#      speaks what both mirrors use: PEP 691/503 pages with `_last-serial` and
#      X-PyPI-Last-Serial (tufa), the legacy JSON API `/pypi/<p>/json` (bandersnatch), XML-RPC
#      `list_packages_with_serial` (bandersnatch's cold start) and `changelog_since_serial`
#      (both, afterwards), files under PyPI's `/packages/…` layout. Its counters
#      (`GET /_fake/stats`) count the files each sync downloaded.
#   2. Three phases; in each, bandersnatch runs, then tufa, each alone on MIRROR_CORES, under
#      GNU time (wall, user + sys of the whole process tree, the largest process's peak RSS):
#        cold        empty mirrors: bandersnatch lists every project over XML-RPC and reads
#                    each one's JSON; tufa (full mode: no `projects` allowlist) reads the PEP 691
#                    root list, then each project's page; both download every file
#        no-op       nothing changed upstream (both ask the changelog since their serial)
#        1%-changed  `POST /_fake/mutate`: CHANGED % of the projects get a new release (new
#                    serials, changelog entries), then both sync again
#      files/s = files the upstream served to that mirror during the run ÷ wall time; CPU per
#      file = CPU-s ÷ those files.
#   3. Both mirrors are verified against the upstream's manifest (`GET /_fake/manifest`):
#      bandersnatch's web/packages/… file by file with `sha256sum -c` (and no file more than
#      upstream has); tufa with `tufa verify` (every blob re-hashed, every page, the TUF chain)
#      plus `sha256sum -c` of the blob every upstream digest names (blobs/sha256/aa/bb/<hex>).
#   4. BIG_FILE=1 (tufa only, issue 12 item 5): a second upstream with one file of BIG_MB MiB
#      (`--generate projects=0,big-file-mb=BIG_MB`, generated as it streams) synced into a new
#      mirror: wall, CPU, MiB/s and peak RSS, next to the cold run's peak RSS.
#   5. One markdown table on stdout, then: both peak RSS; the cold runs' user/sys split and
#      context switches; the upstream's own CPU time during each run (near 100 % of a mirror's
#      wall time would mean the upstream, not the mirror, set the pace); the mirrors' sizes;
#      tufa's cold-run phases (from its JSON log); the verification; versions and
#      configuration, machine, command.
#
# Usage: bench/sync.sh [--quick]      (--quick: PROJECTS defaults to 200; under 3 minutes
#                                      apart from first-time installs and builds)
#
# Environment (defaults in brackets):
#   PROJECTS [2000; --quick 200]   generated projects (about 9.3 files each)
#   SEED [1]                        the upstream's seed
#   CHANGED [1]                     percent of projects given a new release before the last phase
#   WORKERS [10]                    bandersnatch's download workers (its default is 3; 10 is
#                                   the most it allows)
#   UPSTREAM_CORE [0]               the core the upstream is pinned to
#   MIRROR_CORES [1]                the core(s) both mirrors are pinned to, one after the other
#   BIG_FILE [0]                    1: also the tufa-only big-file row
#   BIG_MB [2048]                   its size, MiB
#   PERF [0]                        1: after the table, `perf record` samples one more cold tufa
#                                   sync (into a fresh mirror) and prints the top objects and
#                                   symbols (needs perf: Debian package linux-perf)
#   BANDERSNATCH_VENV [/var/tmp/tufa-bench-bandersnatch-6.8.0]
#                                   venv with bandersnatch 6.8.0 (pip-installed when missing)
#   CARGO_TARGET_DIR                honoured as usual (tufa and fake-upstream are built in release)
#   TMPDIR [/tmp]                   where both mirrors live (about 2 × 0.9 GB for 2,000 projects,
#                                   plus BIG_MB MiB with BIG_FILE=1)
#
# CPU placement on this 2-core machine: the upstream on core 0, each mirror alone on core 1, so
# neither mirror competes with the upstream, and both get the same single core (bandersnatch
# is one Python process whose downloads are asyncio tasks, with a thread pool for file I/O;
# tufa is async with a blocking pool). The upstream serves about 10,000 small files/s from its
# core, which bounds what either mirror can show.
#
# Duration with the defaults: about 1.5 minutes of syncs for 2,000 projects (both cold syncs
# dominate), 30 s of verification, plus the release builds; BIG_FILE=1 adds about 30 s.
#
# Fairness notes: both run as installed, with their default logging (tufa's JSON log so its
# phases can be read back); tufa signs with TUF (`tufa init --dev-keys`, 16,384 bins) as users
# run it and fsyncs each file before recording it; bandersnatch does not fsync. Before each
# run `sync` flushes earlier runs' dirty pages; a mirror's own unflushed writes at its exit
# are not counted.
#
# Everything listens on 127.0.0.1 only. Every background process is killed and every temporary
# file removed on exit. Needs GNU time (/usr/bin/time; installed with apt-get when missing),
# taskset, curl, sha256sum and python3 (3.10 or newer, for bandersnatch's venv).
set -euo pipefail

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument \`$arg\`; usage: bench/sync.sh [--quick]" >&2; exit 2 ;;
  esac
done

PROJECTS=${PROJECTS:-$([ "$QUICK" = 1 ] && echo 200 || echo 2000)}
SEED=${SEED:-1}
CHANGED=${CHANGED:-1}
WORKERS=${WORKERS:-10}
UPSTREAM_CORE=${UPSTREAM_CORE:-0}
MIRROR_CORES=${MIRROR_CORES:-1}
BIG_FILE=${BIG_FILE:-0}
BIG_MB=${BIG_MB:-2048}
PERF=${PERF:-0}
BS_VERSION=6.8.0
BS_VENV=${BANDERSNATCH_VENV:-/var/tmp/tufa-bench-bandersnatch-$BS_VERSION}

for knob in PROJECTS SEED WORKERS BIG_MB; do
  [[ ${!knob} =~ ^[0-9]+$ ]] || { echo "error: $knob must be a whole number, not \`${!knob}\`" >&2; exit 2; }
done
[[ $CHANGED =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "error: CHANGED must be a percentage, not \`$CHANGED\`" >&2; exit 2; }
[ "$WORKERS" -ge 1 ] && [ "$WORKERS" -le 10 ] || { echo "error: WORKERS must be 1-10 (bandersnatch's limit), not $WORKERS" >&2; exit 2; }
[ "$PROJECTS" -ge 1 ] || { echo "error: PROJECTS must be at least 1" >&2; exit 2; }
case "$BIG_FILE" in 0 | 1) ;; *) echo "error: BIG_FILE must be 0 or 1, not \`$BIG_FILE\`" >&2; exit 2 ;; esac
case "$PERF" in 0 | 1) ;; *) echo "error: PERF must be 0 or 1, not \`$PERF\`" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

# ---------------------------------------------------------------------------------------------
# Tools, bandersnatch, builds
# ---------------------------------------------------------------------------------------------

[ -x /usr/bin/time ] || apt_install time
[ "$PERF" = 0 ] || command -v perf >/dev/null 2>&1 || apt_install linux-perf
need_tools taskset curl python3 sha256sum

if ! "$BS_VENV/bin/bandersnatch" --version 2>/dev/null | grep -qx "bandersnatch $BS_VERSION"; then
  echo "installing bandersnatch $BS_VERSION into $BS_VENV (pip)…" >&2
  python3 -m venv "$BS_VENV" >&2
  "$BS_VENV/bin/pip" install --quiet "bandersnatch==$BS_VERSION" >&2
fi
BS_BIN=$BS_VENV/bin/bandersnatch

build_tufa
build_fake_upstream

bench_workdir tufa-sync-bench
export RUST_LOG=info

MACHINE_LOAD=""
note_load() { MACHINE_LOAD="$MACHINE_LOAD${MACHINE_LOAD:+; }$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# ---------------------------------------------------------------------------------------------
# The upstream
# ---------------------------------------------------------------------------------------------

# start_upstream NAME SPEC: a generated fake upstream on UPSTREAM_CORE; sets UP (its URL) and UP_PID.
start_upstream() {
  local port
  port=$(free_port)
  start_bg "$UPSTREAM_CORE" "$WORK/$1.log" "$FAKE" --port "$port" --generate "$2"
  UP_PID=$LAST_PID
  UP=http://127.0.0.1:$port
  # Generating hashes every file once (about a second per GiB).
  local i
  for i in $(seq 1 600); do
    curl -fsS -o /dev/null "$UP/_fake/stats" 2>/dev/null && break
    kill -0 "$UP_PID" 2>/dev/null || { cat "$WORK/$1.log" >&2; echo "error: fake-upstream exited" >&2; exit 1; }
    sleep 0.2
  done
  curl -fsS -o /dev/null "$UP/_fake/stats" || { echo "error: fake-upstream did not start within 2 minutes" >&2; exit 1; }
  grep -m1 'generated' "$WORK/$1.log" | sed 's/^fake-upstream: /upstream: /' >&2
}


echo "generating the upstream (projects=$PROJECTS, seed=$SEED)…" >&2
start_upstream upstream "projects=$PROJECTS,seed=$SEED,changed=$CHANGED"
MAIN_UP=$UP
UP_FILES=$(upstat files)
UP_BYTES=$(curl -fsS "$UP/_fake/manifest" | awk '{s += $2} END {print s}')

# ---------------------------------------------------------------------------------------------
# The mirrors
# ---------------------------------------------------------------------------------------------

BS=$WORK/bandersnatch
mkdir -p "$BS"
cat >"$WORK/bandersnatch.conf" <<EOF
[mirror]
directory = $BS
master = $UP
allow-non-https = true
workers = $WORKERS
json = false
release-files = true
hash-index = false
simple-format = ALL
compare-method = hash
stop-on-error = false
timeout = 30
global-timeout = 18000
storage-backend = filesystem
EOF

# new_tufa DIR UPSTREAM: `tufa init --dev-keys` in full mode (no allowlist).
new_tufa() {
  "$BIN" init "$1" --upstream "$2/simple/" --dev-keys >"$1.init.log" 2>&1 || { cat "$1.init.log" >&2; exit 1; }
}
TU=$WORK/tufa
new_tufa "$TU" "$UP"

# upstream_cpu: CPU seconds (user + sys) the upstream has used so far.
upstream_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$UP_PID/stat"; }

# measure NAME CMD...: CMD on MIRROR_CORES under GNU time, its output in NAME.out / NAME.log; sets
# WALL CPU RSS_MIB (the largest process's peak), FILES and BYTES (what the upstream served
# meanwhile), USER SYS, VCS and IVCS (voluntary and involuntary context switches) and UP_CPU
# (the upstream's CPU seconds meanwhile).
measure() {
  local name=$1 files0 bytes0 up0
  shift
  sync
  sleep 1 # earlier runs' dirty pages must not be written back during this one
  files0=$(upstat file_downloads)
  bytes0=$(upstat file_bytes)
  up0=$(upstream_cpu)
  date +%s.%N >"$WORK/$name.start"
  if ! taskset -c "$MIRROR_CORES" /usr/bin/time -f '%e %U %S %M %w %c' -o "$WORK/$name.time" \
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.log"; then
    echo "error: $name failed:" >&2
    tail -n 20 "$WORK/$name.log" "$WORK/$name.out" >&2
    exit 1
  fi
  local rss_kb
  read -r WALL USER SYS rss_kb VCS IVCS <"$WORK/$name.time"
  CPU=$(python3 -c "print(f'{$USER + $SYS:.2f}')")
  RSS_MIB=$(python3 -c "print(f'{$rss_kb / 1024:.1f}')")
  UP_CPU=$(python3 -c "print(f'{$(upstream_cpu) - $up0:.2f}')")
  FILES=$(( $(upstat file_downloads) - files0 ))
  BYTES=$(( $(upstat file_bytes) - bytes0 ))
}

declare -A R
# run_bandersnatch PHASE
run_bandersnatch() {
  echo "  bandersnatch ($1)…" >&2
  note_load "bandersnatch $1"
  measure "bs-$1" "$BS_BIN" -c "$WORK/bandersnatch.conf" mirror
  # It logs a failed package and goes on: a benchmark run must have none.
  if grep -E 'ERROR|Traceback' "$WORK/bs-$1.log" >/dev/null; then
    echo "error: bandersnatch ($1) logged errors:" >&2
    grep -E -A5 'ERROR|Traceback' "$WORK/bs-$1.log" | head -n 40 >&2
    exit 1
  fi
  local serial
  serial=$(cat "$BS/status")
  [ "$serial" = "$(upstat last_serial)" ] ||
    { echo "error: bandersnatch ($1) reached serial $serial, upstream is at $(upstat last_serial)" >&2; exit 1; }
  R[bs,$1]="$WALL $CPU $RSS_MIB $FILES $BYTES $USER $SYS $VCS $IVCS $UP_CPU"
}

# run_tufa PHASE
run_tufa() {
  echo "  tufa ($1)…" >&2
  note_load "tufa $1"
  measure "tufa-$1" "$BIN" --config "$TU/tufa.toml" --log-format json sync
  R[tufa,$1]="$WALL $CPU $RSS_MIB $FILES $BYTES $USER $SYS $VCS $IVCS $UP_CPU"
}

echo "cold…" >&2
run_bandersnatch cold
run_tufa cold
echo "no-op…" >&2
run_bandersnatch noop
run_tufa noop
echo "1 % changed…" >&2
MUTATION=$(curl -fsS -X POST "$UP/_fake/mutate")
read -r CHANGED_PROJECTS CHANGED_FILES < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(len(r["projects"]), r["files"])' "$MUTATION")
run_bandersnatch changed
run_tufa changed

# Each mirror must have downloaded exactly what changed (no more: nothing twice).
expect_files() {
  local who=$1 phase=$2 want=$3 got
  got=$(echo "${R[$who,$phase]}" | cut -d' ' -f4)
  [ "$got" = "$want" ] || { echo "error: $who ($phase) downloaded $got files, upstream changed $want" >&2; exit 1; }
}
for who in bs tufa; do
  expect_files "$who" cold "$UP_FILES"
  expect_files "$who" noop 0
  expect_files "$who" changed "$CHANGED_FILES"
done

# ---------------------------------------------------------------------------------------------
# Verification against the upstream's manifest
# ---------------------------------------------------------------------------------------------

echo "verifying both mirrors against the upstream…" >&2
curl -fsS "$UP/_fake/manifest" >"$WORK/manifest.txt"
MANIFEST_FILES=$(wc -l <"$WORK/manifest.txt")
awk '{print $1 "  " $3}' "$WORK/manifest.txt" >"$WORK/bs.sha256"
(cd "$BS/web" && taskset -c "$MIRROR_CORES" sha256sum --quiet --strict -c "$WORK/bs.sha256") >&2 ||
  { echo "error: bandersnatch's mirror differs from the upstream (above)" >&2; exit 1; }
BS_MIRROR_FILES=$(find "$BS/web/packages" -type f | wc -l)
[ "$BS_MIRROR_FILES" = "$MANIFEST_FILES" ] ||
  { echo "error: bandersnatch holds $BS_MIRROR_FILES files under web/packages, upstream has $MANIFEST_FILES" >&2; exit 1; }

STORE=$TU/data/store
awk '{h = $1; print h "  blobs/sha256/" substr(h, 1, 2) "/" substr(h, 3, 2) "/" h}' "$WORK/manifest.txt" >"$WORK/tufa.sha256"
(cd "$STORE" && taskset -c "$MIRROR_CORES" sha256sum --quiet --strict -c "$WORK/tufa.sha256") >&2 ||
  { echo "error: tufa's store lacks or corrupts upstream files (above)" >&2; exit 1; }
taskset -c "$MIRROR_CORES" "$BIN" --config "$TU/tufa.toml" verify >"$WORK/verify.out" 2>"$WORK/verify.log" ||
  { echo "error: tufa verify failed:" >&2; tail -n 20 "$WORK/verify.out" "$WORK/verify.log" >&2; exit 1; }
VERIFY_SUMMARY=$(tail -n 1 "$WORK/verify.out")

BS_DU=$(du -sm "$BS" | cut -f1)
TU_DU=$(du -sm "$TU" | cut -f1)

# tufa's cold run from its JSON log: start → `sync finished` (pages fetched, files downloaded,
# verified, stored), → the last `published` project, → `TUF metadata published`.
read -r t_sync t_pub t_tuf < <(log_phases "$WORK/tufa-cold.start" "$WORK/tufa-cold.log")
TUFA_PHASES="sync (pages, downloads, stores) $t_sync s, publish $t_pub s, TUF $t_tuf s"
stop_bg "$UP_PID"

# ---------------------------------------------------------------------------------------------
# BIG_FILE=1: one big file, tufa only
# ---------------------------------------------------------------------------------------------

BIG_ROW=""
if [ "$BIG_FILE" = 1 ]; then
  echo "big file ($BIG_MB MiB, tufa only)…" >&2
  start_upstream upstream-big "projects=0,big-file-mb=$BIG_MB,seed=$SEED"
  TB=$WORK/tufa-big
  new_tufa "$TB" "$UP"
  limit=$(( BIG_MB * 1048576 > 8589934592 ? BIG_MB * 1048576 : 8589934592 ))
  sed -i "s/^# max_file_bytes = .*/max_file_bytes = $limit/" "$TB/tufa.toml"
  note_load "tufa big file"
  measure tufa-big "$BIN" --config "$TB/tufa.toml" --log-format json sync
  [ "$FILES" = 1 ] || { echo "error: the big-file sync downloaded $FILES files, not 1" >&2; exit 1; }
  BIG_SHA=$(curl -fsS "$UP/_fake/manifest" | cut -d' ' -f1)
  blob=$TB/data/store/blobs/sha256/${BIG_SHA:0:2}/${BIG_SHA:2:2}/$BIG_SHA
  [ "$(taskset -c "$MIRROR_CORES" sha256sum "$blob" | cut -d' ' -f1)" = "$BIG_SHA" ] ||
    { echo "error: the big file's blob does not hash to $BIG_SHA" >&2; exit 1; }
  BIG_ROW=$(python3 -c '
import sys
mb, wall, cpu, rss, cold_rss = sys.argv[1:]
print(f"| one file of {int(mb):,} MiB | {float(wall):.2f} | {float(cpu):.2f} | {int(mb) / float(wall):,.0f} | {float(rss):.1f} | {float(cold_rss):.1f} |")
' "$BIG_MB" "$WALL" "$CPU" "$RSS_MIB" "$(echo "${R[tufa,cold]}" | cut -d' ' -f3)")
  stop_bg "$UP_PID"
  rm -rf "$TB"
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

row() {
  python3 - "$1" "${R[bs,$2]}" "${R[tufa,$2]}" <<'EOF'
import sys
what = sys.argv[1]
bw, bc, br, bf, bb = sys.argv[2].split()[:5]
tw, tc, tr, tf, tb = sys.argv[3].split()[:5]
bw, bc, tw, tc = float(bw), float(bc), float(tw), float(tc)
bf, tf = int(bf), int(tf)
def rate(f, w):
    return f"{f / w:,.0f}" if f and w > 0 else "–"
def per_file(c, f):
    return f"{c / f * 1000:.2f}" if f else "–"
ratio = f"**{(tf / tw) / (bf / bw):.2f}×**" if bf and tf and bw > 0 and tw > 0 else "–"
files = f"{bf:,}" if bf == tf else f"{bf:,} / {tf:,}"
speedup = f"{bw / tw:.1f}×" if tw > 0 else "–"
print(f"| {what} | {files} | {bw:.2f} | {bc:.2f} | {rate(bf, bw)} | {float(br):.1f} "
      f"| {tw:.2f} | {tc:.2f} | {rate(tf, tw)} | {float(tr):.1f} "
      f"| {ratio} | {speedup} | {per_file(bc, bf)} | {per_file(tc, tf)} |")
EOF
}

peak() { printf '%s\n' "${R[$1,cold]}" "${R[$1,noop]}" "${R[$1,changed]}" | cut -d' ' -f3 | sort -g | tail -n 1; }
conc() { sed -n -E "s/^# $1 = ([0-9]+)$/\1/p" "$TU/tufa.toml" | head -n 1; }

echo "| phase | files | bandersnatch wall s | bandersnatch CPU-s | bandersnatch files/s | bandersnatch peak RSS MiB | tufa wall s | tufa CPU-s | tufa files/s | tufa peak RSS MiB | files/s tufa ÷ bandersnatch | wall bandersnatch ÷ tufa | CPU ms/file bandersnatch | CPU ms/file tufa |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
row cold cold
row no-op noop
row "$CHANGED % changed ($CHANGED_PROJECTS projects)" changed
echo
echo "Peak RSS (GNU time, the largest process of the tree) over the three phases: bandersnatch $(peak bs) MiB, tufa $(peak tufa) MiB."
python3 - "${R[bs,cold]}" "${R[tufa,cold]}" "${R[bs,changed]}" "${R[tufa,changed]}" "$UPSTREAM_CORE" "$CHANGED" <<'EOF'
import sys
b, t, bc, tc = (a.split() for a in sys.argv[1:5])
core, changed = sys.argv[5:7]
def split(r):
    return f"{float(r[5]):.2f} user + {float(r[6]):.2f} sys"
print(f"Cold CPU-s: bandersnatch {split(b)}, {int(b[7]):,} voluntary and {int(b[8]):,} involuntary "
      f"context switches; tufa {split(t)}, {int(t[7]):,} voluntary and {int(t[8]):,} involuntary.")
def share(r):
    return f"{float(r[9]):.2f} s ({float(r[9]) / float(r[0]) * 100:.0f} % of the mirror's wall time)"
print(f"Upstream CPU while serving (core {core}): cold {share(b)} for bandersnatch, {share(t)} for tufa; "
      f"{changed} % changed {float(bc[9]):.2f} s and {float(tc[9]):.2f} s.")
EOF
if [ -n "$BIG_ROW" ]; then
  echo
  echo "Memory, tufa only (issue 12 item 5): one file generated as it streams, synced into a new mirror."
  echo
  echo "| sync | tufa wall s | tufa CPU-s | MiB/s | tufa peak RSS MiB | peak RSS of the cold run above |"
  echo "|---|--:|--:|--:|--:|--:|"
  echo "$BIG_ROW"
fi
echo
echo "Upstream: \`fake-upstream --generate projects=$PROJECTS,seed=$SEED,changed=$CHANGED\`: $PROJECTS projects, $UP_FILES files, $(python3 -c "print(f'{$UP_BYTES / 1e6:,.0f}')") MB at the cold sync; the $CHANGED % change added $CHANGED_FILES files in $CHANGED_PROJECTS projects."
echo "Mirrors on disk after the three phases: bandersnatch $BS_DU MiB, tufa $TU_DU MiB (store, index, keys)."
echo "tufa's cold run: $TUFA_PHASES."
echo "Verified after the last phase against the upstream's $MANIFEST_FILES files: bandersnatch's $BS_MIRROR_FILES files under web/packages match their sha256 (sha256sum -c), none extra; tufa's store holds a blob with each upstream sha256 (sha256sum -c) and \`tufa verify\` says: $VERIFY_SUMMARY."
echo
echo "Setup: tufa $rev, $(rustc --version); tufa init --dev-keys (full mode, TUF signing included, 16,384 bins; concurrency: projects $(conc projects), downloads $(conc downloads), the defaults); bandersnatch $BS_VERSION ($("$BS_VENV/bin/python" --version 2>&1), aiohttp $("$BS_VENV/bin/python" -c 'import aiohttp; print(aiohttp.__version__)')), workers = $WORKERS, simple-format = ALL, json = false, hash-index = false, release-files = true, compare-method = hash."
echo "Cores: upstream on core $UPSTREAM_CORE, each mirror alone on core(s) $MIRROR_CORES (taskset)."
echo "Machine: $(uname -a)"
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; work dir ${TMPDIR:-/tmp} ($(df -T "$WORK" | awk 'NR==2 {print $2}')); $(date -u +%Y-%m-%dT%H:%MZ)."
echo "Load average (1/5/15 min) before each run: $MACHINE_LOAD."
cmd="bench/sync.sh"
[ "$QUICK" = 0 ] || cmd="$cmd --quick"
echo "Command: PROJECTS=$PROJECTS SEED=$SEED CHANGED=$CHANGED WORKERS=$WORKERS UPSTREAM_CORE=$UPSTREAM_CORE MIRROR_CORES=$MIRROR_CORES BIG_FILE=$BIG_FILE BIG_MB=$BIG_MB $cmd"

# ---------------------------------------------------------------------------------------------
# PERF=1: where a cold tufa sync spends its time
# ---------------------------------------------------------------------------------------------

if [ "$PERF" = 1 ]; then
  echo "perf: one more cold tufa sync into a fresh mirror…" >&2
  start_upstream upstream-perf "projects=$PROJECTS,seed=$SEED"
  TP=$WORK/tufa-perf
  new_tufa "$TP" "$UP"
  sync
  taskset -c "$MIRROR_CORES" perf record -q -F 999 -o "$WORK/perf.data" -- \
    "$BIN" --config "$TP/tufa.toml" --log-format json sync >"$WORK/perf.out" 2>"$WORK/perf.log" ||
    { echo "error: tufa sync under perf failed:" >&2; tail -n 20 "$WORK/perf.log" >&2; exit 1; }
  echo
  echo "perf, a cold \`tufa sync\` of the same upstream (self time: by object, then symbols at or above 1.5 %):"
  echo
  echo '```'
  perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' | head -n 8
  echo
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | cut -c1-150 | sed -E 's/[[:space:]]+$//' | head -n 30
  echo '```'
fi
