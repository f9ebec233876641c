#!/usr/bin/env bash
# Object storage benchmark (issue 10): tufa over the local disk (`file://`, the default) and
# over S3 (moto's S3 server on loopback) side by side, in one run.
#
#   1. Big file: one file of BIG_MB MiB (and one of SMALL_BIG_MB MiB) of random bytes synced
#      from a static upstream: wall time, MiB/s, CPU time and the writer's peak RSS, which must
#      stay small and the same for both sizes (the file is streamed, never held in memory).
#   2. Many small files: PROJECTS projects of FILES sdists of FILE_KB KiB synced cold into an
#      empty store (the first publish signs all 16,384 TUF bins): wall time, files/s, CPU time,
#      and the phases (download, pages, TUF) from tufa's own log timestamps.
#   3. Serve: `tufa serve` over each store of part 2, wrk on one project page (PEP 691 JSON)
#      and on one small file: requests/s, latency p50/p99, the first request after start
#      (cold), the reader's RSS at idle and its peak under load.
#
# Usage: bench/storage.sh            (prints three markdown tables and the setup on stdout)
#
# Environment (defaults in brackets):
#   BIG_MB [2048], SMALL_BIG_MB [256]        sizes of the two big files, MiB
#   PROJECTS [200], FILES [5], FILE_KB [20]  the many-small-files upstream
#   DURATION [10], WARMUP [3], REPEAT [3], CONNECTIONS [32]
#                                            wrk: seconds per measured run, seconds of warm-up
#                                            before them, measured runs (the median one is
#                                            reported), open connections
#   CARGO_TARGET_DIR                         honoured as usual (tufa is built in release)
#   TUFA_E2E_VENV [<target>/e2e-venv]        the venv with moto[server] (created or refreshed
#                                            by tests/e2e/setup-venv.sh)
#   TMPDIR [/tmp]                            where the upstream, the local store and moto's
#                                            spooled objects live (about 3 × BIG_MB of disk)
#
# Memory: tufa's own peak stays around 50 MiB, but moto assembles a completed multipart upload
# in memory: its RSS peaks at about 4 × BIG_MB (8.6 GiB for the default 2048 MiB).
#
# CPU placement on this 2-core machine: the measured client (tufa sync in parts 1-2, wrk in
# part 3) runs on core 0; the servers (the static upstream, moto, tufa serve) on core 1. moto
# shares core 1 with tufa serve because it is the reader's storage backend, i.e. part of the
# server side, and wrk must not be starved of its core.
#
# Everything listens on 127.0.0.1 only. Every background process is killed and every temporary
# file removed on exit. Needs wrk (installed with apt-get when missing), GNU time (/usr/bin/time),
# taskset, curl and python3.
set -euo pipefail

BIG_MB=${BIG_MB:-2048}
SMALL_BIG_MB=${SMALL_BIG_MB:-256}
PROJECTS=${PROJECTS:-200}
FILES=${FILES:-5}
FILE_KB=${FILE_KB:-20}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-32}
JSON_ACCEPT="application/vnd.pypi.simple.v1+json"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------

command -v wrk >/dev/null 2>&1 || apt_install wrk
[ -x /usr/bin/time ] || apt_install time
need_tools taskset curl python3

build_tufa
VENV=${TUFA_E2E_VENV:-$TARGET/e2e-venv}
bash tests/e2e/setup-venv.sh "$VENV" >&2
[ -x "$VENV/bin/moto_server" ] || { echo "error: $VENV/bin/moto_server missing" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Background processes and clean-up
# ---------------------------------------------------------------------------------------------

bench_workdir tufa-storage-bench

# ---------------------------------------------------------------------------------------------
# Peers: a static upstream and moto's S3 server, both on core 1
# ---------------------------------------------------------------------------------------------

UP=$WORK/upstream
mkdir -p "$UP/simple" "$UP/files"
UP_PORT=$(free_port)
start_bg 1 "$WORK/upstream.log" python3 -m http.server --bind 127.0.0.1 --directory "$UP" "$UP_PORT"
UP_PID=$LAST_PID
wait_http "http://127.0.0.1:$UP_PORT/" "the static upstream" "$UP_PID" || { cat "$WORK/upstream.log" >&2; exit 1; }
UPSTREAM="http://127.0.0.1:$UP_PORT/simple/"

S3_PORT=$(free_port)
mkdir -p "$WORK/moto-tmp"
# moto keeps objects in SpooledTemporaryFiles: big ones go to its TMPDIR, inside $WORK.
start_bg 1 "$WORK/moto.log" env TMPDIR="$WORK/moto-tmp" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
MOTO_PID=$LAST_PID
wait_http "http://127.0.0.1:$S3_PORT/" "moto_server" "$MOTO_PID" || { cat "$WORK/moto.log" >&2; exit 1; }
create_bucket() {
  local status
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$S3_PORT/$1")
  [ "$status" = 200 ] || { echo "error: creating bucket $1 on moto: HTTP $status" >&2; exit 1; }
}

# store_requests: how many requests moto has logged so far (one line per request).
store_requests() { grep -c '" [0-9][0-9][0-9] ' "$WORK/moto.log" || true; }

# The standard AWS environment, pointed at moto and nowhere else (no profile, no IMDS).
export AWS_ACCESS_KEY_ID=tufa-bench AWS_SECRET_ACCESS_KEY=tufa-bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_ALLOW_HTTP=true AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export RUST_LOG=info

# ---------------------------------------------------------------------------------------------
# Writers and measured syncs
# ---------------------------------------------------------------------------------------------

# new_writer DIR STORE PROJECT...: `tufa init` with dev keys and the default 16,384 bins; STORE
# is "local" (DIR/data/store) or an s3:// URL.
new_writer() {
  local dir=$1 store=$2
  shift 2
  local args=(init "$dir" --upstream "$UPSTREAM" --dev-keys)
  [ "$store" = local ] || args+=(--storage "$store")
  local p
  for p in "$@"; do args+=(--project "$p"); done
  "$BIN" "${args[@]}" >"$dir.init.log" 2>&1 || { cat "$dir.init.log" >&2; exit 1; }
  # The default limit (8 GiB) already covers BIG_MB up to 8192; say the limit explicitly anyway.
  local limit=$(( BIG_MB * 1048576 > 8589934592 ? BIG_MB * 1048576 : 8589934592 ))
  sed -i "s/^# max_file_bytes = .*/max_file_bytes = $limit/" "$dir/tufa.toml"
  grep -q "^max_file_bytes = $limit\$" "$dir/tufa.toml" || { echo "error: could not set max_file_bytes in $dir/tufa.toml" >&2; exit 1; }
}

# sync_measured NAME DIR: `tufa sync` on core 0 under /usr/bin/time -v; sets WALL USER SYS RSS_MIB,
# and S3REQ (the requests moto served meanwhile, "–" when there were none), and leaves NAME.out
# (stdout), NAME.log (JSON logs), NAME.time and NAME.start in $WORK.
sync_measured() {
  local name=$1 dir=$2 before
  sync; sleep 1 # earlier runs' dirty pages must not be written back during this one
  before=$(store_requests)
  date +%s.%N >"$WORK/$name.start"
  if ! taskset -c 0 /usr/bin/time -v -o "$WORK/$name.time" \
    "$BIN" --config "$dir/tufa.toml" --log-format json sync >"$WORK/$name.out" 2>"$WORK/$name.log"; then
    echo "error: tufa sync ($name) failed:" >&2
    tail -n 20 "$WORK/$name.log" "$WORK/$name.out" >&2
    exit 1
  fi
  S3REQ=$(( $(store_requests) - before ))
  [ "$S3REQ" -gt 0 ] || S3REQ=–
  read -r WALL USER SYS RSS_MIB < <(python3 - "$WORK/$name.time" <<'EOF'
import sys
v = {}
for line in open(sys.argv[1]):
    k, _, val = line.strip().rpartition(": ")
    v[k] = val
wall = 0.0
for part in v["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
    wall = wall * 60 + float(part)
print(f'{wall:.2f} {float(v["User time (seconds)"]):.2f} {float(v["System time (seconds)"]):.2f} '
      f'{int(v["Maximum resident set size (kbytes)"]) / 1024:.1f}')
EOF
  )
}

# phases NAME: "download pages tuf" seconds from the sync's JSON log timestamps: start → `sync
# finished` (pages fetched, files downloaded, verified and stored), → the last `published`
# project (pages and manifests written), → `TUF metadata published` (bins, snapshot,
# timestamp signed and written, plus the pointer).
phases() { log_phases "$WORK/$1.start" "$WORK/$1.log"; }

# expect_downloaded NAME FILES BYTES: the sync's summary line says exactly that.
expect_downloaded() {
  grep -q " $2 files downloaded ($3 bytes)" "$WORK/$1.out" ||
    { echo "error: sync $1 did not download $2 files of $3 bytes:" >&2; cat "$WORK/$1.out" >&2; exit 1; }
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

MACHINE_LOAD=""
note_load() { MACHINE_LOAD="$MACHINE_LOAD${MACHINE_LOAD:+; }$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# ---------------------------------------------------------------------------------------------
# Part 1: big files
# ---------------------------------------------------------------------------------------------

# The page of project `big` links the given files (PEP 503 HTML, with sha256 fragments).
write_big_page() {
  mkdir -p "$UP/simple/big"
  {
    echo '<!DOCTYPE html>'
    echo '<html><body>'
    local f
    for f in "$@"; do
      echo "<a href=\"../../files/$f#sha256=$(sha256 "$UP/files/$f")\">$f</a><br>"
    done
    echo '</body></html>'
  } >"$UP/simple/big/index.html"
}

echo "part 1: big files (bootstrap, ${SMALL_BIG_MB} MiB, ${BIG_MB} MiB)…" >&2
create_bucket bench-big
head -c 1024 /dev/urandom >"$UP/files/big-0.1.tar.gz"
write_big_page big-0.1.tar.gz
new_writer "$WORK/big-local" local big
new_writer "$WORK/big-s3" s3://bench-big/mirror big

BIG_ROWS=()
# A first sync of a 1 KiB file: creates the TUF roles and signs all 16,384 bins, so the big-file
# syncs below measure the transfer (plus an incremental publish: one bin, snapshot, timestamp).
for store in local s3; do
  note_load "bootstrap $store"
  sync_measured "bootstrap-$store" "$WORK/big-$store"
  expect_downloaded "bootstrap-$store" 1 1024
  BIG_ROWS+=("| $store | first sync: one 1 KiB file, signs all 16,384 bins | | $WALL | | $USER | $SYS | $RSS_MIB | $S3REQ |")
done

declare -A BIG_RSS
for mb in "$SMALL_BIG_MB" "$BIG_MB"; do
  file=big-$mb.0.tar.gz
  echo "  writing $mb MiB of random bytes…" >&2
  head -c $(( mb * 1048576 )) /dev/urandom >"$UP/files/$file"
  write_big_page big-0.1.tar.gz "$file"
  for store in local s3; do
    echo "  sync $mb MiB into $store…" >&2
    note_load "$mb MiB $store"
    sync_measured "big-$mb-$store" "$WORK/big-$store"
    expect_downloaded "big-$mb-$store" 1 $(( mb * 1048576 ))
    rate=$(python3 -c "print(f'{$mb / $WALL:.0f}')")
    BIG_ROWS+=("| $store | sync one new $mb MiB file | $mb | $WALL | $rate | $USER | $SYS | $RSS_MIB | $S3REQ |")
    BIG_RSS[$mb-$store]=$RSS_MIB
  done
done
MOTO_HWM_AFTER_BIG=$(rss_mib "$MOTO_PID" VmHWM)
rm -f "$UP/files/big-"*.0.tar.gz # free the disk; the stores keep their copies until exit

# ---------------------------------------------------------------------------------------------
# Part 2: many small files, cold
# ---------------------------------------------------------------------------------------------

echo "part 2: $PROJECTS projects × $FILES files of $FILE_KB KiB, cold…" >&2
python3 - "$UP" "$PROJECTS" "$FILES" "$FILE_KB" <<'EOF'
import hashlib, os, sys
root, projects, files, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for p in range(projects):
    links = []
    for m in range(files):
        name = f"p{p}-1.{m}.tar.gz"
        data = os.urandom(kib * 1024)
        with open(os.path.join(root, "files", name), "wb") as f:
            f.write(data)
        links.append(f'<a href="../../files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a><br>')
    os.makedirs(os.path.join(root, "simple", f"p{p}"), exist_ok=True)
    with open(os.path.join(root, "simple", f"p{p}", "index.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n")
EOF
mapfile -t SMALL_PROJECTS < <(seq 0 $(( PROJECTS - 1 )) | sed 's/^/p/')
create_bucket bench-small
new_writer "$WORK/small-local" local "${SMALL_PROJECTS[@]}"
new_writer "$WORK/small-s3" s3://bench-small/mirror "${SMALL_PROJECTS[@]}"
NFILES=$(( PROJECTS * FILES ))
SMALL_ROWS=()
for store in local s3; do
  echo "  cold sync into $store…" >&2
  note_load "small files $store"
  sync_measured "small-$store" "$WORK/small-$store"
  expect_downloaded "small-$store" "$NFILES" $(( NFILES * FILE_KB * 1024 ))
  read -r t_dl t_pages t_tuf < <(phases "small-$store")
  rate=$(python3 -c "print(f'{$NFILES / $WALL:.0f}')")
  dl_rate=$(python3 -c "print(f'{$NFILES / $t_dl:.0f}' if $t_dl > 0 else '')")
  cpu=$(python3 -c "print(f'{$USER + $SYS:.2f}')")
  SMALL_ROWS+=("| $store | $PROJECTS | $NFILES | $WALL | $rate | $t_dl | $dl_rate | $t_pages | $t_tuf | $cpu | $RSS_MIB | $S3REQ |")
done

# ---------------------------------------------------------------------------------------------
# Part 3: serve
# ---------------------------------------------------------------------------------------------

# wrk_run URL [HEADER]: wrk on core 0 (1 thread, CONNECTIONS connections): WARMUP seconds of
# warm-up, then REPEAT measured runs of DURATION seconds. Prints the run with the median
# requests/s as "req/s p50_ms p99_ms min_req/s max_req/s store_requests/run", where the last is
# moto's request count over the measured runs divided by REPEAT. Fails on any socket error or
# non-2xx answer.
wrk_run() {
  local url=$1 i before after
  local hdr=()
  [ $# -lt 2 ] || hdr=(-H "$2")
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${hdr[@]}" "$url" >/dev/null
  before=$(store_requests)
  for i in $(seq 1 "$REPEAT"); do
    taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${hdr[@]}" "$url" >"$WORK/wrk.$i.out"
  done
  after=$(store_requests)
  python3 - "$(( (after - before) / REPEAT ))" "$WORK"/wrk.*.out <<'EOF'
import re, sys
def ms(v):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
runs = []
for path in sys.argv[2:]:
    text = open(path).read()
    if re.search(r"Non-2xx|Socket errors", text):
        sys.exit("wrk saw errors:\n" + text)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    runs.append((rps, p50, p99))
runs.sort()
rps, p50, p99 = runs[len(runs) // 2]
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {runs[0][0]:.0f} {runs[-1][0]:.0f} {sys.argv[1]}")
EOF
  rm -f "$WORK"/wrk.*.out
}

# first_ms URL [HEADER]: one request's total time, in ms.
first_ms() {
  local hdr=()
  [ $# -lt 2 ] || hdr=(-H "$2")
  curl -fsS -o /dev/null -w '%{time_total}' "${hdr[@]}" "$1" | python3 -c 'import sys; print(f"{float(sys.stdin.read()) * 1000:.1f}")'
}

echo "part 3: serve…" >&2
PAGE_PROJECT=p$(( PROJECTS > 7 ? 7 : 0 )) # the project whose page and first file are requested
SERVE_ROWS=()
SIZING_ROWS=()
for store in local s3; do
  reader=$WORK/reader-$store
  mkdir -p "$reader"
  if [ "$store" = local ]; then url="file://$WORK/small-local/data/store"; else url="s3://bench-small/mirror"; fi
  printf '# A reader: no index, no keys.\n[storage]\nurl = "%s"\n' "$url" >"$reader/tufa.toml"
  port=$(free_port)
  start_bg 1 "$reader/serve.log" "$BIN" --config "$reader/tufa.toml" serve --listen "127.0.0.1:$port"
  serve_pid=$LAST_PID
  base=http://127.0.0.1:$port
  wait_http "$base/healthz" "tufa serve ($store)" "$serve_pid" || { cat "$reader/serve.log" >&2; exit 1; }
  rss_start=$(rss_mib "$serve_pid" VmRSS)
  page=$base/simple/$PAGE_PROJECT/
  # Cold: the first request loads the pointer and the generation (and the manifest) from the store.
  page_first=$(first_ms "$page" "Accept: $JSON_ACCEPT")
  page_second=$(first_ms "$page" "Accept: $JSON_ACCEPT")
  file=$(curl -fsS -H "Accept: $JSON_ACCEPT" "$page" | python3 -c \
    'import json, sys, posixpath; u = json.load(sys.stdin)["files"][0]["url"]; print(posixpath.normpath(posixpath.join("/simple/'"$PAGE_PROJECT"'/", u)))')
  file_first=$(first_ms "$base$file")
  file_second=$(first_ms "$base$file")
  rss_idle=$(rss_mib "$serve_pid" VmRSS)
  note_load "serve $store"
  read -r page_rps page_p50 page_p99 page_min page_max page_store < <(wrk_run "$page" "Accept: $JSON_ACCEPT")
  read -r file_rps file_p50 file_p99 file_min file_max file_store < <(wrk_run "$base$file")
  [ "$store" = s3 ] || { page_store=–; file_store=–; }
  rss_after=$(rss_mib "$serve_pid" VmRSS)
  rss_peak=$(rss_mib "$serve_pid" VmHWM)
  SERVE_ROWS+=("| $store | project page /simple/$PAGE_PROJECT/ (JSON) | $page_rps | $page_min–$page_max | $page_p50 | $page_p99 | $page_store | $page_first | $page_second |")
  SERVE_ROWS+=("| $store | file $(basename "$file") ($FILE_KB KiB) | $file_rps | $file_min–$file_max | $file_p50 | $file_p99 | $file_store | $file_first | $file_second |")
  SIZING_ROWS+=("| $store | $rss_start | $rss_idle | $rss_peak | $rss_after |")
  stop_bg "$serve_pid"
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

flat() {
  python3 -c "print(f'{$2 - $1:+.1f}')"
}

echo "### Table 1: big files (peak RSS must not grow with the file)"
echo
echo "| store | sync | MiB | wall s | MiB/s | user s | sys s | peak RSS MiB | S3 requests |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
printf '%s\n' "${BIG_ROWS[@]}"
echo
echo "Peak RSS, ${BIG_MB} MiB file minus ${SMALL_BIG_MB} MiB file: local $(flat "${BIG_RSS[$SMALL_BIG_MB-local]}" "${BIG_RSS[$BIG_MB-local]}") MiB, S3 $(flat "${BIG_RSS[$SMALL_BIG_MB-s3]}" "${BIG_RSS[$BIG_MB-s3]}") MiB. moto_server's own peak RSS: $MOTO_HWM_AFTER_BIG MiB after part 1, $(rss_mib "$MOTO_PID" VmHWM) MiB at the end."
echo
echo "### Table 2: many small files, cold sync ($PROJECTS projects × $FILES sdists of $FILE_KB KiB, 16,384 bins)"
echo
echo "| store | projects | files | wall s | files/s | download s | files/s (download) | pages s | TUF s | CPU s (user+sys) | peak RSS MiB | S3 requests |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
printf '%s\n' "${SMALL_ROWS[@]}"
echo
echo "### Table 3: serve (wrk, $CONNECTIONS connections, ${WARMUP} s warm-up, then $REPEAT runs of ${DURATION} s; the run with the median requests/s)"
echo
echo "| store | request | requests/s | range of the $REPEAT runs | p50 ms | p99 ms | S3 requests per run | first request ms (cold) | second request ms |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
printf '%s\n' "${SERVE_ROWS[@]}"
echo
echo "Reader RSS (MiB): after start, idle after the first requests, peak (VmHWM) over both wrk runs, after the runs."
echo
echo "| store | after start | idle | peak under load | after load |"
echo "|---|--:|--:|--:|--:|"
printf '%s\n' "${SIZING_ROWS[@]}"
echo
echo "Setup: tufa $rev, $(rustc --version); moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') on $("$VENV/bin/python" --version 2>&1); upstream \`python3 -m http.server\` ($(python3 --version 2>&1)); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)."
echo "Machine: $(uname -a)"
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; work dir ${TMPDIR:-/tmp} ($(df -T "$WORK" | awk 'NR==2 {print $2}')); $(date -u +%Y-%m-%d)."
echo "Load average (1/5/15 min) before each run: $MACHINE_LOAD."
echo "Command: BIG_MB=$BIG_MB SMALL_BIG_MB=$SMALL_BIG_MB PROJECTS=$PROJECTS FILES=$FILES FILE_KB=$FILE_KB DURATION=$DURATION WARMUP=$WARMUP REPEAT=$REPEAT CONNECTIONS=$CONNECTIONS bench/storage.sh"
