#!/usr/bin/env bash
# Proxy benchmark (issue 13): what `tufa proxy` costs pip and uv, against the same install
# straight from the mirror, side by side in one run.
#
#   1. A signed mirror made by the real tufa: the fake upstream's demo projects
#      (crates/tufa-fake-upstream, release build: demo-app → demo-lib → demo-util, 3 small
#      wheels with PEP 658 metadata), `tufa init --dev-keys` (16,384 bins), `tufa sync`, and
#      `tufa serve` on core 1.
#   2. For pip and for uv, ROUNDS rounds, each round running the three variants one after
#      the other (interleaved, so drift on this shared machine hits all three alike), every
#      install with its own client cache disabled (pip --no-cache-dir, uv --no-cache) into a
#      fresh --target, the client on core 0:
#        direct       --index-url http://mirror/simple/
#        proxy-cold   a new `tufa proxy` (core 1) on an empty --cache: the root chain,
#                     timestamp, snapshot, targets, bins, the hashed bin of each target, and
#                     every target are fetched and verified during the install
#        proxy-warm   a second install through that same proxy: a verified session and every
#                     target in its cache (re-hashed before it is answered)
#      Wall time of the whole client process (python start-up included: what a user waits).
#   3. One markdown table on stdout: median and min wall per variant, and the median
#      overhead over direct (ms and ratio); then versions, machine and the exact command.
#   4. A verifying replica of the same mirror (`tufa init --upstream-root`, core 1): the wall
#      time of its first sync (every role of the 16,384-bin snapshot and every target fetched
#      and verified) and of a second one with nothing new.
#
# Usage: bench/proxy.sh            (table on stdout, progress on stderr; about a minute)
# Environment: ROUNDS [7], CARGO_TARGET_DIR (release builds), TUFA_E2E_VENV (pip and uv; made
# by tests/e2e/setup-venv.sh when missing), KEEP_WORK=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/common.sh

ROUNDS=${ROUNDS:-7}
need_tools curl python3 taskset
build_tufa
build_fake_upstream
VENV=${TUFA_E2E_VENV:-$TARGET/e2e-venv}
bash "$ROOT/tests/e2e/setup-venv.sh" "$VENV" >&2

bench_workdir tufa-proxy-bench

# The mirror.
start_bg 1 "$WORK/upstream.log" "$FAKE"
UP_PID=$LAST_PID
for _ in $(seq 1 100); do grep -q '^http' "$WORK/upstream.log" 2>/dev/null && break; sleep 0.1; done
UP="$(grep -m1 "^http" "$WORK/upstream.log" | sed "s:/*$::")/simple/"
MIRROR=$WORK/mirror
"$BIN" init "$MIRROR" --upstream "$UP" --dev-keys --project demo-app --project demo-lib \
  --project demo-util >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
"$BIN" --config "$MIRROR/tufa.toml" -q sync >"$WORK/sync.log" 2>&1 || { cat "$WORK/sync.log" >&2; exit 1; }
M_PORT=$(free_port)
start_bg 1 "$WORK/serve.log" "$BIN" --config "$MIRROR/tufa.toml" -q serve --listen "127.0.0.1:$M_PORT"
wait_http "http://127.0.0.1:$M_PORT/healthz" "tufa serve" "$LAST_PID"
M_URL="http://127.0.0.1:$M_PORT/"
curl -fsS -o "$WORK/1.root.json" "${M_URL}tuf/1.root.json"

client_env=(env PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  UV_NO_CONFIG=1 UV_PYTHON_DOWNLOADS=never "UV_PYTHON=$VENV/bin/python" "HOME=$WORK/home")
mkdir -p "$WORK/home"

# install TOOL INDEX: one timed install of demo-app; prints milliseconds.
install() {
  local tool=$1 index=$2 site start end
  site=$(mktemp -d "$WORK/site.XXXXXX")
  start=$(date +%s%N)
  if [ "$tool" = pip ]; then
    taskset -c 0 "${client_env[@]}" "$VENV/bin/pip" install -q --no-cache-dir --index-url "$index" \
      --target "$site" demo-app >"$WORK/client.log" 2>&1
  else
    taskset -c 0 "${client_env[@]}" "$VENV/bin/uv" pip install -q --no-cache --index-url "$index" \
      --target "$site" demo-app >"$WORK/client.log" 2>&1
  fi || { cat "$WORK/client.log" >&2; exit 1; }
  end=$(date +%s%N)
  [ -d "$site/demo_lib" ] || { echo "error: $tool did not install demo-lib" >&2; exit 1; }
  rm -rf "$site"
  echo $(((end - start) / 1000000))
}

declare -A T
for tool in pip uv; do
  for round in $(seq 1 "$ROUNDS"); do
    echo "$tool round $round/$ROUNDS…" >&2
    T[$tool.direct]+="$(install "$tool" "${M_URL}simple/") "
    P_PORT=$(free_port)
    start_bg 1 "$WORK/proxy.log" "$BIN" -q proxy --mirror "$M_URL" --trusted-root "$WORK/1.root.json" \
      --listen "127.0.0.1:$P_PORT" --cache "$WORK/proxy-cache-$tool-$round"
    P_PID=$LAST_PID
    wait_http "http://127.0.0.1:$P_PORT/healthz" "tufa proxy" "$P_PID"
    T[$tool.cold]+="$(install "$tool" "http://127.0.0.1:$P_PORT/simple/") "
    T[$tool.warm]+="$(install "$tool" "http://127.0.0.1:$P_PORT/simple/") "
    stop_bg "$P_PID"
  done
done

echo "verifying replica…" >&2
"$BIN" init "$WORK/replica" --upstream "${M_URL}simple/" --upstream-root "$WORK/1.root.json" >"$WORK/replica-init.log" 2>&1 ||
  { cat "$WORK/replica-init.log" >&2; exit 1; }
replica_sync() {
  local start end
  start=$(date +%s%N)
  taskset -c 1 "$BIN" --config "$WORK/replica/tufa.toml" -q sync >"$WORK/replica-sync.log" 2>&1 ||
    { cat "$WORK/replica-sync.log" >&2; exit 1; }
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
R_COLD=$(replica_sync)
R_NOOP=$(replica_sync)

stats() { python3 -c 'import statistics, sys; v = [int(x) for x in sys.argv[1:]]; print(int(statistics.median(v)), min(v))' "$@"; }

echo "| client | variant | median wall (ms) | min (ms) | overhead vs direct (median) |"
echo "|---|---|---:|---:|---:|"
for tool in pip uv; do
  read -r base_med base_min <<<"$(stats ${T[$tool.direct]})"
  echo "| $tool | direct | $base_med | $base_min | — |"
  for v in cold warm; do
    read -r med min <<<"$(stats ${T[$tool.$v]})"
    over=$(python3 -c "print(f'{$med - $base_med:+d} ms ({$med / $base_med:.2f}×)')")
    echo "| $tool | proxy-$v | $med | $min | $over |"
  done
done
echo
echo "Each install: demo-app and its 2 dependencies (3 wheels + 3 PEP 658 .metadata, 3 pages), client cache off, fresh --target; $ROUNDS interleaved rounds."
echo "tufa $rev; $("$VENV/bin/pip" --version | cut -d' ' -f1-2); $("$VENV/bin/uv" --version); $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); client on core 0, mirror and proxy on core 1"
echo
echo "| verifying replica of the same mirror (16,384 bins) | wall (ms) |"
echo "|---|---:|"
echo "| first sync (all roles and targets fetched and verified) | $R_COLD |"
echo "| second sync, nothing new | $R_NOOP |"
echo
echo "command: bench/proxy.sh (ROUNDS=$ROUNDS)"
