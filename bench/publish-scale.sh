#!/usr/bin/env bash
# Incremental publish into a big mirror (issue 12 target): one upstream change synced and
# published end to end by `tufa sync` into a mirror whose index holds TARGETS TUF targets.
#
#   1. A small generated upstream (`fake-upstream --generate projects=PROJECTS,max-files=1,
#      big-projects=0`, on UPSTREAM_CORE) and a mirror of it (`tufa init --dev-keys`, full
#      mode, 16,384 bins), synced once.
#   2. Seeding: `seed-targets` (bench/tuf/src/bin/seed-targets.rs) adds TARGETS synthetic
#      targets to the mirror's index (1,000-target projects `seeded-<k>`, paths and digests
#      like tufa's file targets, so they spread over the bins like real ones). Their blobs do
#      not exist: this mirror is for timing only, and is not verified.
#   3. `tufa sync` with nothing changed upstream: the publish re-signs every bin the seeding
#      touched (all 16,384 for a million targets) — the cost of signing the whole target set.
#   4. RUNS times: `POST /_fake/mutate` (one project gets a new release: 1 % of 100 projects),
#      then `tufa sync` under GNU time: changelog, page, download, group commit, publish of one
#      project, re-signing the few bins its targets fall in, a new snapshot (16,384 entries)
#      and timestamp. The target of the issue: under 100 ms.
#
# Usage: bench/publish-scale.sh
#
# Environment (defaults in brackets): TARGETS [1000000], PROJECTS [100], RUNS [5],
# UPSTREAM_CORE [0], MIRROR_CORES [1], CARGO_TARGET_DIR (honoured), TMPDIR [/tmp] (about
# 0.6 GB for a million targets: the index and 16,384 bins).
#
# Everything listens on 127.0.0.1 only; processes and files are removed on exit. Needs GNU time
# (/usr/bin/time; apt-get when missing), taskset, curl, python3.
set -euo pipefail

case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "error: unknown argument \`$1\`; usage: bench/publish-scale.sh" >&2; exit 2 ;;
esac

TARGETS=${TARGETS:-1000000}
PROJECTS=${PROJECTS:-100}
RUNS=${RUNS:-5}
UPSTREAM_CORE=${UPSTREAM_CORE:-0}
MIRROR_CORES=${MIRROR_CORES:-1}
for n in $TARGETS $PROJECTS $RUNS; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "error: TARGETS, PROJECTS and RUNS must be whole numbers, not \`$n\`" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

[ -x /usr/bin/time ] || apt_install time
need_tools taskset curl python3
build_tufa
build_fake_upstream
echo "building seed-targets (release)…" >&2
cargo build --release --quiet -p tufa-bench-tuf --bin seed-targets
bench_workdir tufa-publish-scale

port=$(free_port)
start_bg "$UPSTREAM_CORE" "$WORK/upstream.log" "$FAKE" --port "$port" \
  --generate "projects=$PROJECTS,seed=1,max-files=1,big-projects=0,changed=1"
UP=http://127.0.0.1:$port
wait_http "$UP/_fake/stats" fake-upstream "$LAST_PID" || { cat "$WORK/upstream.log" >&2; exit 1; }
M=$WORK/mirror
"$BIN" init "$M" --upstream "$UP/simple/" --dev-keys >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }

# timed NAME: `tufa sync` on MIRROR_CORES under GNU time; prints "wall cpu rss_mib".
timed() {
  sync
  taskset -c "$MIRROR_CORES" /usr/bin/time -f '%e %U %S %M' -o "$WORK/$1.time" \
    "$BIN" --config "$M/tufa.toml" --log-format json sync >"$WORK/$1.out" 2>"$WORK/$1.log" ||
    { echo "error: $1 failed:" >&2; tail -n 20 "$WORK/$1.log" >&2; exit 1; }
  python3 - "$WORK/$1.time" <<'EOF'
import sys
wall, user, sys_, rss = open(sys.argv[1]).read().split()
print(f"{float(wall):.3f} {float(user) + float(sys_):.2f} {int(rss) / 1024:.1f}")
EOF
}

echo "first sync ($PROJECTS projects)…" >&2
read -r first_wall _ _ < <(timed first)
echo "seeding $TARGETS targets…" >&2
seed_start=$(date +%s.%N)
"$TARGET/release/seed-targets" "$M/data/index.redb" "$TARGETS" >&2
seed_s=$(python3 -c "print(f'{$(date +%s.%N) - $seed_start:.1f}')")
echo "signing every bin…" >&2
read -r all_wall all_cpu all_rss < <(timed resign-all)
bins=$(grep -o 'signed [0-9,]* bins' "$WORK/resign-all.out" | head -n 1 || true)

ROWS=()
for run in $(seq 1 "$RUNS"); do
  changed=$(curl -fsS -X POST "$UP/_fake/mutate" | python3 -c 'import json, sys; r = json.load(sys.stdin); print(len(r["projects"]), r["files"])')
  read -r wall cpu rss < <(timed "incremental-$run")
  line=$(grep -o 'signed [0-9,]* bins[^"]*' "$WORK/incremental-$run.out" | head -n 1 || true)
  ROWS+=("$run $changed $wall $cpu $rss|$line")
done

echo "| sync into a mirror of $(python3 -c "print(f'{$TARGETS:,}')") seeded targets | wall s | CPU-s | peak RSS MiB | what it did |"
echo "|---|--:|--:|--:|---|"
echo "| nothing changed upstream, every seeded bin re-signed | $all_wall | $all_cpu | $all_rss | ${bins:-?} |"
for r in "${ROWS[@]}"; do
  read -r run projects files wall cpu rss <<<"${r%%|*}"
  echo "| incremental run $run: $projects project, $files new file(s) | $wall | $cpu | $rss | ${r#*|} |"
done
echo
echo "First sync of the $PROJECTS-project upstream: $first_wall s; seeding $TARGETS targets into the index: $seed_s s; index $(du -m "$M/data/index.redb" | cut -f1) MiB."
echo "tufa $rev, $(rustc --version); tufa init --dev-keys (full mode, 16,384 bins); upstream on core $UPSTREAM_CORE, tufa on core(s) $MIRROR_CORES."
echo "Machine: $(uname -srm); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); work dir ${TMPDIR:-/tmp} ($(df -T "$WORK" | awk 'NR==2 {print $2}')); $(date -u +%Y-%m-%dT%H:%MZ)."
echo "Command: TARGETS=$TARGETS PROJECTS=$PROJECTS RUNS=$RUNS UPSTREAM_CORE=$UPSTREAM_CORE MIRROR_CORES=$MIRROR_CORES bench/publish-scale.sh"
