#!/usr/bin/env bash
# Serving benchmark (issue 11): `tufa serve` against nginx serving the SAME bytes, side by side.
#
#   1. A published tree made by the real tufa: a static upstream (`python3 -m http.server`) with
#      a small project (`small`: 2 sdists and 2 wheels), a project of MANY_FILES files (`many`)
#      and one file of BIG_MB MiB (`big`); `tufa init --dev-keys` (16,384 bins, the default, so
#      snapshot.json is ~490 KB) and `tufa sync` into a local store.
#   2. An nginx docroot holding the blobs tufa serves, at the same URL paths: for each project
#      `simple/<p>/index.html` and `index.json` (symlinks to the page blobs named by tufa's
#      manifest `published/projects/<p>.json`) with `index.html.gz` / `index.json.gz` beside
#      them (the manifest's gzip variants, served by `gzip_static on`) and the zstd variants in
#      `simple/<p>/zst/` (picked by a `map` on Accept-Encoding, Debian's nginx has no zstd
#      module; the zstd tests send uv's `Accept-Encoding: gzip, deflate, zstd`, for which
#      tufa picks zstd); `/simple/<p>/` picks
#      index.json when the Accept header names `application/vnd.pypi.simple.v1+json` (a `map`
#      on $http_accept), index.html otherwise, so both servers get the very same requests. Files
#      and `.metadata` at `files/<aa>/<bb>/<60 hex>/<name>`, TUF metadata at `tuf/timestamp.json`
#      and `tuf/<N>.snapshot.json` (symlinks into the store), and the gzip and zstd variants of
#      the snapshot as tufa sends them (the reader compresses versioned metadata in memory;
#      fetched once from tufa). Test `file-once` is the big file again, from a second tufa
#      reader with `file_verification = "once-per-file"` (nginx: the same file). Every test
#      body is fetched once from each server with curl and must be byte-identical to the blob
#      (and so to each other).
#   3. wrk (1 thread) on core 0, both servers on core 1 (nginx: worker_processes 1), at each
#      concurrency of CONNECTIONS, per test: WARMUP seconds of warm-up, then REPEAT runs of
#      DURATION seconds, nginx and tufa alternating per test so drift hits both. The run with
#      the median requests/s is reported (p50, p99 from wrk --latency) with the range of the runs.
#   4. One markdown table on stdout: both servers side by side, the ratio tufa/nginx of
#      requests/s and of p99, MB/s (10^6 bytes) for the big file; then the HTTP/2 table
#      (H2_TESTS), both servers' RSS after the runs, the setup and the exact command.
#
# Usage: bench/serve.sh               (the table on stdout, progress on stderr)
#
# Environment (defaults in brackets):
#   MANY_FILES [5000]         files of project `many` (the big page)
#   BIG_MB [50]               size of the big file, MiB
#   DURATION [5]              seconds per measured wrk run
#   WARMUP [1]                seconds of wrk warm-up before the measured runs of each cell
#   REPEAT [3]                measured runs per cell (median reported, range shown)
#   CONNECTIONS ["1 64 256"]  wrk concurrencies
#   TESTS [all]               a space-separated subset of the test ids printed in the table
#                             (e.g. "small-html many-json-gz file"), for a quick look
#   ACCESS_LOG [1]            1: both servers log one line per request, as deployed by default
#                             (tufa's default `info` request log on stderr, nginx's `combined`
#                             access_log), both written to /dev/null; 0: no request logs
#                             (`tufa --quiet`, nginx `access_log off`)
#   H2_TESTS ["small-html many-html-zst metadata snapshot-zst"]
#                             tests also run over HTTP/2 (h2c with prior knowledge; nginx on a
#                             second `listen … http2` port) with h2load, after the wrk table:
#                             H2_CONNECTIONS [64] connections × H2_STREAMS [10] streams each,
#                             WARMUP + REPEAT × DURATION as above; "" skips HTTP/2
#   PERF_TEST [none]          a test id: after the table, `perf record` samples tufa serve
#                             (999 Hz, DURATION s) while wrk runs that test at c=64, and the
#                             top symbols are printed (needs perf: Debian package linux-perf)
#   CARGO_TARGET_DIR          honoured as usual (tufa is built in release)
#   TMPDIR [/tmp]             where the upstream, the store and the nginx docroot live
#
# Duration with the defaults: 12 tests × 3 concurrencies × 2 servers × (WARMUP + REPEAT ×
# DURATION) ≈ 19 minutes, plus about a minute of setup.
#
# Everything listens on 127.0.0.1 only. Every background process is killed and every temporary
# file removed on exit. Needs nginx and wrk (installed with apt-get when missing), taskset, curl
# and python3.
set -euo pipefail

MANY_FILES=${MANY_FILES:-5000}
BIG_MB=${BIG_MB:-50}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-"1 64 256"}
TESTS=${TESTS:-all}
ACCESS_LOG=${ACCESS_LOG:-1}
PERF_TEST=${PERF_TEST:-}
H2_TESTS=${H2_TESTS-"small-html many-html-zst metadata snapshot-zst"}
H2_CONNECTIONS=${H2_CONNECTIONS:-64}
H2_STREAMS=${H2_STREAMS:-10}
JSON_ACCEPT="application/vnd.pypi.simple.v1+json"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------

command -v wrk >/dev/null 2>&1 || apt_install wrk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { apt_install nginx; NGINX=/usr/sbin/nginx; }
need_tools taskset curl python3
[ -z "$H2_TESTS" ] || command -v h2load >/dev/null 2>&1 || apt_install nghttp2-client
[ -z "$PERF_TEST" ] || command -v perf >/dev/null 2>&1 || apt_install linux-perf
case "$ACCESS_LOG" in 0 | 1) ;; *) echo "error: ACCESS_LOG must be 0 or 1, not \`$ACCESS_LOG\`" >&2; exit 2 ;; esac

build_tufa

# ---------------------------------------------------------------------------------------------
# Background processes and clean-up
# ---------------------------------------------------------------------------------------------

bench_workdir tufa-serve-bench

MACHINE_LOAD=""
note_load() { MACHINE_LOAD="$MACHINE_LOAD${MACHINE_LOAD:+; }$1: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# ---------------------------------------------------------------------------------------------
# 1. The published tree
# ---------------------------------------------------------------------------------------------

UP=$WORK/upstream
mkdir -p "$UP/simple" "$UP/files"
echo "writing the upstream (small: 4 files, many: $MANY_FILES files, big: $BIG_MB MiB)…" >&2
python3 - "$UP" "$MANY_FILES" "$BIG_MB" <<'EOF'
import hashlib, io, os, sys, zipfile
root, many, big_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def page(project, names):
    links = []
    for name in names:
        with open(os.path.join(root, "files", name), "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        links.append(f'<a href="../../files/{name}#sha256={digest}">{name}</a><br>')
    os.makedirs(os.path.join(root, "simple", project), exist_ok=True)
    with open(os.path.join(root, "simple", project, "index.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n")

def write(name, data):
    with open(os.path.join(root, "files", name), "wb") as f:
        f.write(data)

def wheel(name, version):
    buf = io.BytesIO()
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}/__init__.py", f"__version__ = '{version}'\n" + "# padding\n" * 200)
        z.writestr(f"{info}/METADATA",
                   f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                   "Summary: tufa serve benchmark\nRequires-Python: >=3.8\n"
                   "Requires-Dist: idna>=2.8\nRequires-Dist: sniffio>=1.1\n\n" + "A description.\n" * 40)
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return buf.getvalue()

small = []
for version in ("1.0", "1.1"):
    write(f"small-{version}.tar.gz", os.urandom(8192)); small.append(f"small-{version}.tar.gz")
    write(f"small-{version}-py3-none-any.whl", wheel("small", version))
    small.append(f"small-{version}-py3-none-any.whl")
page("small", small)

names = []
for i in range(many):
    name = f"many-1.{i}.tar.gz"
    write(name, os.urandom(128)); names.append(name)
page("many", names)

with open(os.path.join(root, "files", "big-1.0.tar.gz"), "wb") as f:
    for _ in range(big_mb):
        f.write(os.urandom(1 << 20))
page("big", ["big-1.0.tar.gz"])
EOF

UP_PORT=$(free_port)
start_bg 1 "$WORK/upstream.log" python3 -m http.server --bind 127.0.0.1 --directory "$UP" "$UP_PORT"
UP_PID=$LAST_PID
wait_http "http://127.0.0.1:$UP_PORT/" "the static upstream" "$UP_PID" || { cat "$WORK/upstream.log" >&2; exit 1; }

MIRROR=$WORK/mirror
STORE=$MIRROR/data/store
echo "tufa init --dev-keys + tufa sync…" >&2
"$BIN" init "$MIRROR" --upstream "http://127.0.0.1:$UP_PORT/simple/" --dev-keys \
  --project small --project many --project big >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
if ! "$BIN" --config "$MIRROR/tufa.toml" sync >"$WORK/sync.out" 2>"$WORK/sync.log"; then
  echo "error: tufa sync failed:" >&2
  tail -n 20 "$WORK/sync.log" "$WORK/sync.out" >&2
  exit 1
fi
grep -q " $(( 4 + MANY_FILES + 1 )) files downloaded" "$WORK/sync.out" ||
  { echo "error: tufa sync did not download $(( 4 + MANY_FILES + 1 )) files:" >&2; cat "$WORK/sync.out" >&2; exit 1; }
stop_bg "$UP_PID"
rm -rf "$UP"

# ---------------------------------------------------------------------------------------------
# 2. The same bytes for nginx, and the tests
# ---------------------------------------------------------------------------------------------

NG=$WORK/nginx
DOCROOT=$NG/root
mkdir -p "$DOCROOT" "$NG/tmp"
# tests.tsv: id, description, URL path, headers ("|"-separated), the blob whose bytes the body
# must be. Written by reading tufa's manifests and pages, as a client would resolve them.
python3 - "$STORE" "$DOCROOT" "$JSON_ACCEPT" >"$WORK/tests.tsv" <<'EOF'
import json, os, posixpath, sys
store, docroot, json_accept = sys.argv[1:4]

def blob(ref):
    h = ref["sha256"]
    path = os.path.join(store, "blobs", "sha256", h[:2], h[2:4], h)
    if not os.path.isfile(path) or os.path.getsize(path) != ref["len"]:
        sys.exit(f"error: blob {h} ({ref['len']} bytes) is not in the store at {path}")
    return path

def link(url_path, target):
    dest = os.path.join(docroot, url_path.lstrip("/"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.symlink(target, dest)

def manifest(project):
    with open(os.path.join(store, "published", "projects", f"{project}.json")) as f:
        return json.load(f)

tests = []
def test(tid, what, path, headers, body):
    # "-" for none: `read` with IFS=tab merges empty fields.
    tests.append((tid, what, path, "|".join(headers) or "-", body))

pages = {}
for project in ("small", "many", "big"):
    m = manifest(project)
    for fmt, index in (("html", "index.html"), ("json", "index.json")):
        page = m[fmt]
        if page.get("gzip") is None:
            sys.exit(f"error: the {fmt} page of {project} has no gzip variant in its manifest")
        if page.get("zstd") is None:
            sys.exit(f"error: the {fmt} page of {project} has no zstd variant in its manifest")
        link(f"/simple/{project}/{index}", blob(page["raw"]))
        link(f"/simple/{project}/{index}.gz", blob(page["gzip"]))
        link(f"/simple/{project}/zst/{index}", blob(page["zstd"]))
    pages[project] = m

accept = {"html": "Accept: text/html", "json": f"Accept: {json_accept}"}
# What uv 0.13 sends (captured from a real uv): the server picks zstd.
uv_accept_encoding = "gzip, deflate, zstd"
for project, label in (("small", "small page (4 files)"), ("many", None)):
    m = pages[project]
    if label is None:
        with open(blob(m["json"]["raw"])) as f:
            n = len(json.load(f)["files"])
        label = f"{n:,}-file page"
    for fmt in ("html", "json"):
        raw, gz = m[fmt]["raw"], m[fmt]["gzip"]
        test(f"{project}-{fmt}", f"{label}, {fmt.upper()} ({raw['len']:,} B)", f"/simple/{project}/",
             [accept[fmt]], blob(raw))
        test(f"{project}-{fmt}-gz", f"{label}, {fmt.upper()}, gzip ({gz['len']:,} B)", f"/simple/{project}/",
             [accept[fmt], "Accept-Encoding: gzip"], blob(gz))
        zst = m[fmt]["zstd"]
        test(f"{project}-{fmt}-zst", f"{label}, {fmt.upper()}, zstd ({zst['len']:,} B)", f"/simple/{project}/",
             [accept[fmt], f"Accept-Encoding: {uv_accept_encoding}"], blob(zst))

def files_of(project):
    m = pages[project]
    with open(blob(m["json"]["raw"])) as f:
        doc = json.load(f)
    out = {}
    for entry in doc["files"]:
        url = posixpath.normpath(posixpath.join(f"/simple/{project}/", entry["url"]))
        out[entry["filename"]] = (url, entry["hashes"]["sha256"], entry["size"])
    return out

small_files = files_of("small")
wheel = "small-1.0-py3-none-any.whl"
url, digest, size = small_files[wheel]
if wheel not in pages["small"]["metadata"]:
    sys.exit(f"error: the manifest of small has no METADATA for {wheel}")
meta = pages["small"]["metadata"][wheel]
link(url + ".metadata", blob(meta))
test("metadata", f"`.metadata` of a wheel ({meta['len']:,} B)", url + ".metadata", [], blob(meta))

url, digest, size = files_of("big")["big-1.0.tar.gz"]
path = blob({"sha256": digest, "len": size})
link(url, path)
test("file", f"{size / 1e6:.0f} MB file", url, [], path)
# The same file from a second tufa reader with file_verification = "once-per-file" (nginx
# serves it exactly as in `file`).
test("file-once", f"{size / 1e6:.0f} MB file, tufa `once-per-file`", url, [], path)

tuf = os.path.join(store, "published", "tuf")
link("/tuf/timestamp.json", os.path.join(tuf, "timestamp.json"))
with open(os.path.join(tuf, "timestamp.json")) as f:
    n = json.load(f)["signed"]["meta"]["snapshot.json"]["version"]
snap = os.path.join(tuf, f"{n}.snapshot.json")
link(f"/tuf/{n}.snapshot.json", snap)
test("timestamp", f"/tuf/timestamp.json ({os.path.getsize(os.path.join(tuf, 'timestamp.json')):,} B)",
     "/tuf/timestamp.json", [], os.path.join(tuf, "timestamp.json"))
test("snapshot", f"/tuf/{n}.snapshot.json ({os.path.getsize(snap):,} B)", f"/tuf/{n}.snapshot.json", [], snap)

for t in tests:
    print("\t".join(t))
EOF

NG_PORT=$(free_port)
NG_H2_PORT=$(free_port)
if [ "$ACCESS_LOG" = 1 ]; then NG_ACCESS="access_log /dev/null combined;"; else NG_ACCESS="access_log off;"; fi
NG_USER=""
[ "$(id -u)" -ne 0 ] || NG_USER="user root;" # the work dir is mode 0700: the worker must read it
cat >"$NG/nginx.conf" <<EOF
# nginx for bench/serve.sh: one worker, static files, pre-compressed pages (gzip_static).
$NG_USER
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    $NG_ACCESS
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    # PEP 691 negotiation reduced to what the benchmark sends: JSON when asked for by name.
    # (No numbered captures here: evaluating the map would reset the location's \$1.)
    map \$http_accept \$simple_index {
        default index.html;
        "~*application/vnd\.pypi\.simple\.(?:v1|latest)\+json" index.json;
    }
    # zstd (no zstd module in Debian's nginx): the zstd variant of a page or of TUF metadata
    # lives in a zst/ directory beside it, picked when Accept-Encoding names zstd (the tests
    # send it only where that variant exists), with the header added by hand.
    map \$http_accept_encoding \$zst_dir {
        default "";
        "~*zstd" "zst/";
    }
    map \$http_accept_encoding \$zst_encoding {
        default "";
        "~*zstd" "zstd";
    }
    server {
        listen 127.0.0.1:$NG_PORT;
        listen 127.0.0.1:$NG_H2_PORT http2;
        root $DOCROOT;
        gzip off;
        gzip_static on;
        location ~ ^/simple/(?<project>[a-z0-9-]+)/\$ {
            types { text/html html; application/vnd.pypi.simple.v1+json json; }
            charset utf-8;
            add_header Vary "Accept, Accept-Encoding";
            add_header Content-Encoding \$zst_encoding;
            try_files /simple/\$project/\$zst_dir\$simple_index =404;
        }
        location /files/ { }
        location ~ ^/tuf/(?<tuf_file>[^/]+)\$ {
            types { application/json json; }
            add_header Vary Accept-Encoding;
            add_header Content-Encoding \$zst_encoding;
            try_files /tuf/\$zst_dir\$tuf_file =404;
        }
        location = /healthz { return 200 "ok\n"; }
    }
}
EOF
start_bg 1 "$NG/stderr.log" "$NGINX" -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf"
NG_PID=$LAST_PID
wait_http "http://127.0.0.1:$NG_PORT/healthz" "nginx" "$NG_PID" || { cat "$NG/stderr.log" "$NG/error.log" >&2; exit 1; }
NG_WORKER=$(pgrep -P "$NG_PID" | head -n 1)

READER=$WORK/reader
mkdir -p "$READER"
# A reader: no index, no keys. wrk's connections all come from 127.0.0.1, so the per-address
# connection limit (default 64) is off, as behind a reverse proxy.
cat >"$READER/tufa.toml" <<EOF
[storage]
url = "file://$STORE"

[serve.limits]
max_connections_per_ip = 0
EOF
TUFA_PORT=$(free_port)
TUFA_ARGS=(--config "$READER/tufa.toml")
[ "$ACCESS_LOG" = 1 ] || TUFA_ARGS+=(--quiet)
# With request logs on, the log goes to /dev/null (like nginx's): millions of lines otherwise.
TUFA_LOG=/dev/null
[ "$ACCESS_LOG" = 1 ] || TUFA_LOG=$READER/serve.log
start_bg 1 "$TUFA_LOG" "$BIN" "${TUFA_ARGS[@]}" serve --listen "127.0.0.1:$TUFA_PORT"
TUFA_PID=$LAST_PID
wait_http "http://127.0.0.1:$TUFA_PORT/healthz" "tufa serve (ACCESS_LOG=0 keeps its log)" "$TUFA_PID" ||
  { [ "$TUFA_LOG" = /dev/null ] || cat "$TUFA_LOG" >&2; exit 1; }
TUFA_RSS_START=$(rss_mib "$TUFA_PID" VmRSS)

# A second reader, the same but for file_verification = "once-per-file", for test `file-once`.
ONCE=$WORK/reader-once
mkdir -p "$ONCE"
sed 's/^\[serve.limits\]$/[serve]\nfile_verification = "once-per-file"\n\n[serve.limits]/' \
  "$READER/tufa.toml" >"$ONCE/tufa.toml"
grep -q '^file_verification = "once-per-file"$' "$ONCE/tufa.toml" ||
  { echo "error: could not write $ONCE/tufa.toml" >&2; exit 1; }
TUFA_ONCE_PORT=$(free_port)
start_bg 1 /dev/null "$BIN" --config "$ONCE/tufa.toml" --quiet serve --listen "127.0.0.1:$TUFA_ONCE_PORT"
TUFA_ONCE_PID=$LAST_PID
wait_http "http://127.0.0.1:$TUFA_ONCE_PORT/healthz" "tufa serve (once-per-file)" "$TUFA_ONCE_PID" || exit 1

# TUF metadata variants are compressed by the reader when a versioned file enters its memory
# (they are not objects in the store): nginx gets the bytes tufa sends, fetched once here.
snap_path=$(awk -F'\t' '$1 == "snapshot" {print $3}' "$WORK/tests.tsv")
snap_name=${snap_path#/tuf/}
mkdir -p "$DOCROOT/tuf/zst"
for enc in gzip zstd; do
  case $enc in gzip) out=$DOCROOT/tuf/$snap_name.gz ;; zstd) out=$DOCROOT/tuf/zst/$snap_name ;; esac
  # The first request brings the file into memory; its variants follow a moment later.
  for _ in $(seq 1 100); do
    got=$(curl -sS -o "$out" -w '%{http_code} %header{content-encoding}' -H "Accept-Encoding: $enc" \
      "http://127.0.0.1:$TUFA_PORT$snap_path")
    [ "$got" != "200 $enc" ] || break
    sleep 0.1
  done
  [ "$got" = "200 $enc" ] ||
    { echo "error: tufa answered $snap_path with Accept-Encoding: $enc by \`$got\`, not \`200 $enc\`" >&2; exit 1; }
  size=$(wc -c <"$out")
  printf '%s\t%s\t%s\t%s\t%s\n' "snapshot-$( [ $enc = gzip ] && echo gz || echo zst)" \
    "$snap_path, $enc ($size B)" "$snap_path" "Accept-Encoding: $enc" "$out" >>"$WORK/tests.tsv"
done

# The port of tufa for a test.
tufa_port() { if [ "$1" = file-once ]; then echo "$TUFA_ONCE_PORT"; else echo "$TUFA_PORT"; fi; }

# headers_of "H1|H2" (or "-" for none): curl/wrk arguments in $HDR.
headers_of() {
  HDR=()
  local h
  [ "$1" != - ] || return 0
  IFS='|' read -r -a hs <<<"$1"
  for h in "${hs[@]}"; do HDR+=(-H "$h"); done
}

echo "checking that nginx and tufa return the same bytes…" >&2
declare -a T_ID T_WHAT T_PATH T_HDRS T_BODY
while IFS=$'\t' read -r id what path hdrs body; do
  if [ "$TESTS" != all ] && ! [[ " $TESTS " == *" $id "* ]]; then continue; fi
  headers_of "$hdrs"
  for server in nginx tufa; do
    if [ $server = nginx ]; then port=$NG_PORT; else port=$(tufa_port "$id"); fi
    out=$WORK/check.$server
    status=$(curl -sS -o "$out" -w '%{http_code}' "${HDR[@]}" "http://127.0.0.1:$port$path")
    [ "$status" = 200 ] || { echo "error: $server answered $path ($hdrs) with HTTP $status" >&2; exit 1; }
    cmp -s "$out" "$body" ||
      { echo "error: $server's body for $path ($hdrs) is not the blob $body ($(wc -c <"$out") vs $(wc -c <"$body") bytes)" >&2; exit 1; }
  done
  echo "  $id: identical ($(wc -c <"$body") bytes)" >&2
  T_ID+=("$id"); T_WHAT+=("$what"); T_PATH+=("$path"); T_HDRS+=("$hdrs"); T_BODY+=("$(wc -c <"$body")")
done <"$WORK/tests.tsv"
rm -f "$WORK"/check.*
[ "${#T_ID[@]}" -gt 0 ] || { echo "error: TESTS=\`$TESTS\` names none of: $(cut -f1 "$WORK/tests.tsv" | tr '\n' ' ')" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# 3. wrk
# ---------------------------------------------------------------------------------------------

# wrk_cell URL C BYTES "H1|H2": WARMUP s of warm-up, then REPEAT runs of DURATION s, wrk on core
# 0. Prints "req/s p50_ms p99_ms min_req/s max_req/s MB/s errors" for the run with the median
# requests/s (MB/s = req/s × BYTES / 10^6; errors = wrk's socket errors, all runs). Fails on
# any non-2xx answer.
wrk_cell() {
  local url=$1 c=$2 bytes=$3 i out
  headers_of "$4"
  # Its own directory: the caller reads the result before this subshell has cleaned up.
  out=$(mktemp -d "$WORK/cell.XXXXXX")
  taskset -c 0 wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 60s "${HDR[@]}" "$url" >/dev/null
  for i in $(seq 1 "$REPEAT"); do
    taskset -c 0 wrk -t1 -c"$c" -d"${DURATION}s" --timeout 60s --latency "${HDR[@]}" "$url" >"$out/wrk.$i.out"
  done
  python3 - "$bytes" "$out"/wrk.*.out <<'EOF'
import re, sys
def ms(v):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
runs, errors = [], 0
for path in sys.argv[2:]:
    text = open(path).read()
    if "Non-2xx" in text:
        sys.exit("wrk saw non-2xx answers:\n" + text)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(map(int, m.groups()))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    runs.append((rps, p50, p99))
runs.sort()
rps, p50, p99 = runs[len(runs) // 2]
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {runs[0][0]:.0f} {runs[-1][0]:.0f} {rps * int(sys.argv[1]) / 1e6:.0f} {errors}")
EOF
  rm -rf "$out"
}

ROWS=()
ncells=$(( ${#T_ID[@]} * $(wc -w <<<"$CONNECTIONS") ))
cell=0
for i in "${!T_ID[@]}"; do
  for c in $CONNECTIONS; do
    cell=$(( cell + 1 ))
    echo "  [$cell/$ncells] ${T_ID[$i]} c=$c…" >&2
    note_load "${T_ID[$i]} c=$c"
    read -r n_rps n_p50 n_p99 n_min n_max n_mbs n_err < <(wrk_cell "http://127.0.0.1:$NG_PORT${T_PATH[$i]}" "$c" "${T_BODY[$i]}" "${T_HDRS[$i]}")
    read -r t_rps t_p50 t_p99 t_min t_max t_mbs t_err < <(wrk_cell "http://127.0.0.1:$(tufa_port "${T_ID[$i]}")${T_PATH[$i]}" "$c" "${T_BODY[$i]}" "${T_HDRS[$i]}")
    ROWS+=("$(python3 - "${T_ID[$i]}" "${T_WHAT[$i]}" "$c" "$n_rps" "$n_p50" "$n_p99" "$n_min" "$n_max" "$n_mbs" "$n_err" \
      "$t_rps" "$t_p50" "$t_p99" "$t_min" "$t_max" "$t_mbs" "$t_err" <<'EOF'
import sys
tid, what, c = sys.argv[1:4]
n = [float(x) for x in sys.argv[4:11]]
t = [float(x) for x in sys.argv[11:18]]
def lat(v):
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"
def rate(r):
    # The big file is reported in MB/s, everything else in requests/s.
    if tid.startswith("file"):
        return f"{r[5]:,.0f} MB/s ({r[0]:,.0f} req/s)"
    return f"{r[0]:,.0f}"
def rng(r):
    return f"{r[3]:,.0f}–{r[4]:,.0f}"
ratio = t[0] / n[0] if n[0] else float("nan")
p99 = t[2] / n[2] if n[2] else float("nan")
err = ""
if n[6] or t[6]:
    err = f" (socket errors: nginx {n[6]:.0f}, tufa {t[6]:.0f})"
print(f"| {what}{err} | {c} | {rate(n)} | {rng(n)} | {lat(n[1])} | {lat(n[2])} | "
      f"{rate(t)} | {rng(t)} | {lat(t[1])} | {lat(t[2])} | **{ratio:.2f}×** | {p99:.2f}× |")
EOF
    )")
  done
done

# HTTP/2 (h2c, prior knowledge) with h2load: H2_CONNECTIONS connections × H2_STREAMS streams.
H2_ROWS=()
if [ -n "$H2_TESTS" ]; then
  h2_cell() {
    local url=$1 i out
    local hdrs=()
    # Its own directory: the caller reads the result before this subshell has cleaned up.
    out=$(mktemp -d "$WORK/cell.XXXXXX")
    [ "$2" = - ] || { IFS='|' read -r -a hs <<<"$2"; for h in "${hs[@]}"; do hdrs+=(-H "$h"); done; }
    for i in $(seq 1 "$REPEAT"); do
      taskset -c 0 h2load -t1 -c"$H2_CONNECTIONS" -m"$H2_STREAMS" -D"$DURATION" --warm-up-time="$WARMUP" \
        "${hdrs[@]}" "$url" >"$out/h2.$i.out" 2>&1 || { cat "$out/h2.$i.out" >&2; exit 1; }
    done
    python3 - "$out"/h2.*.out <<'EOF2'
import re, sys
def ms(v):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
runs = []
for path in sys.argv[1:]:
    text = open(path).read()
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    if not m or int(m.group(4)) or int(m.group(5)) or int(m.group(2)) != int(m.group(3)):
        sys.exit("h2load saw failed requests:\n" + text)
    if re.search(r"status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx", text) is None:
        sys.exit("h2load saw non-2xx answers:\n" + text)
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text).group(1))
    mean = ms(re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text).group(1))
    runs.append((rps, mean))
runs.sort()
rps, mean = runs[len(runs) // 2]
print(f"{rps:.0f} {mean:.3f} {runs[0][0]:.0f} {runs[-1][0]:.0f}")
EOF2
    rm -rf "$out"
  }
  for id in $H2_TESTS; do
    p=-1
    for i in "${!T_ID[@]}"; do [ "${T_ID[$i]}" != "$id" ] || p=$i; done
    [ "$p" -ge 0 ] || { echo "  h2 $id: skipped (not among the tests run)" >&2; continue; }
    echo "  h2 $id c=$H2_CONNECTIONS×$H2_STREAMS…" >&2
    read -r n_rps n_mean n_min n_max < <(h2_cell "http://127.0.0.1:$NG_H2_PORT${T_PATH[$p]}" "${T_HDRS[$p]}")
    read -r t_rps t_mean t_min t_max < <(h2_cell "http://127.0.0.1:$(tufa_port "$id")${T_PATH[$p]}" "${T_HDRS[$p]}")
    H2_ROWS+=("$(python3 -c '
import sys
what, n, nmean, nmin, nmax, t, tmean, tmin, tmax = sys.argv[1:]
n, t = float(n), float(t)
print(f"| {what} | {n:,.0f} | {float(nmin):,.0f}–{float(nmax):,.0f} | {float(nmean):.2f} | {t:,.0f} | {float(tmin):,.0f}–{float(tmax):,.0f} | {float(tmean):.2f} | **{t / n:.2f}×** |")
' "${T_WHAT[$p]}" "$n_rps" "$n_mean" "$n_min" "$n_max" "$t_rps" "$t_mean" "$t_min" "$t_max")")
  done
fi

TUFA_RSS_AFTER=$(rss_mib "$TUFA_PID" VmRSS)
TUFA_RSS_PEAK=$(rss_mib "$TUFA_PID" VmHWM)
NG_RSS_AFTER=$(rss_mib "$NG_WORKER" VmRSS)
NG_RSS_PEAK=$(rss_mib "$NG_WORKER" VmHWM)

# ---------------------------------------------------------------------------------------------
# 4. Report
# ---------------------------------------------------------------------------------------------

echo "| request | c | nginx req/s | nginx range | nginx p50 ms | nginx p99 ms | tufa req/s | tufa range | tufa p50 ms | tufa p99 ms | req/s tufa/nginx | p99 tufa/nginx |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
printf '%s\n' "${ROWS[@]}"
if [ "${#H2_ROWS[@]}" -gt 0 ]; then
  echo
  echo "HTTP/2 (h2c, h2load, $H2_CONNECTIONS connections × $H2_STREAMS streams):"
  echo
  echo "| request | nginx req/s | nginx range | nginx mean ms | tufa req/s | tufa range | tufa mean ms | req/s tufa/nginx |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|"
  printf '%s\n' "${H2_ROWS[@]}"
fi
echo
echo "RSS (MiB): tufa serve $TUFA_RSS_START after start, $TUFA_RSS_AFTER after the runs, peak (VmHWM) $TUFA_RSS_PEAK; nginx worker $NG_RSS_AFTER after the runs, peak $NG_RSS_PEAK."
echo
echo "Setup: tufa $rev, $(rustc --version); $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2); $(curl --version | head -n 1 | cut -d' ' -f1-2)."
echo "Machine: $(uname -a)"
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; work dir ${TMPDIR:-/tmp} ($(df -T "$WORK" | awk 'NR==2 {print $2}')); $(date -u +%Y-%m-%dT%H:%MZ)."
echo "Load average (1/5/15 min) before each cell: $MACHINE_LOAD."
if [ -n "$PERF_TEST" ]; then
  p=-1
  for i in "${!T_ID[@]}"; do [ "${T_ID[$i]}" != "$PERF_TEST" ] || p=$i; done
  [ "$p" -ge 0 ] || { echo "error: PERF_TEST=\`$PERF_TEST\` is not one of the tests run: ${T_ID[*]}" >&2; exit 2; }
  echo "perf: sampling tufa serve on $PERF_TEST at c=64…" >&2
  headers_of "${T_HDRS[$p]}"
  taskset -c 0 wrk -t1 -c64 -d"$(( DURATION + 2 ))s" --timeout 60s "${HDR[@]}" "http://127.0.0.1:$TUFA_PORT${T_PATH[$p]}" >/dev/null &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  sleep 1
  perf record -q -F 999 -o "$WORK/perf.data" -p "$TUFA_PID" -- sleep "$DURATION" >/dev/null 2>&1
  wait "$wrk_pid" || true
  echo
  echo "perf, tufa serve on \`$PERF_TEST\` at c=64 (self time: by object, then symbols at or above 1.5 %):"
  echo
  echo '```'
  perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+$//' | head -n 6
  echo
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed -E 's/([[:space:]]+-)+[[:space:]]*$//; s/[[:space:]]+$//' | head -n 25
  echo '```'
fi
echo
echo "Command: H2_TESTS=\"$H2_TESTS\" H2_CONNECTIONS=$H2_CONNECTIONS H2_STREAMS=$H2_STREAMS PERF_TEST=$PERF_TEST MANY_FILES=$MANY_FILES BIG_MB=$BIG_MB DURATION=$DURATION WARMUP=$WARMUP REPEAT=$REPEAT CONNECTIONS=\"$CONNECTIONS\" TESTS=\"$TESTS\" ACCESS_LOG=$ACCESS_LOG bench/serve.sh"
