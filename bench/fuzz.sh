#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target in fuzz/ for N seconds each (default 20), one at a
# time, and prints the executions per target (libFuzzer's stat::number_of_executed_units).
#
#   bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz; installs cargo-fuzz when missing (FUZZ_INSTALL=0
# to not). Without nightly, or when cargo-fuzz cannot be installed, it says SKIPPED and exits 0.
# Exits 1 when a target finds a crash, a timeout or an out-of-memory input: the reproducer's
# path is printed (run it again with `<binary> <file>`), then make it a regression test.
#
# Outside the clone, reused between runs: the build (FUZZ_TARGET_DIR, default
# ${CARGO_TARGET_DIR:-/var/tmp/tufa-target}-fuzz), the corpus libFuzzer grows (FUZZ_WORK_DIR,
# default <build dir>/corpus) and crash artifacts (<build dir>/artifacts). The committed seeds
# in fuzz/corpus/<target> are read, never written.
set -uo pipefail
cd "$(dirname "$0")/.."

secs="${1:-${FUZZ_SECONDS:-20}}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  if [ "${FUZZ_INSTALL:-1}" = 1 ] && cargo install --locked cargo-fuzz; then
    :
  else
    echo "fuzz: SKIPPED: cargo-fuzz is not installed and could not be installed (cargo install --locked cargo-fuzz)"
    exit 0
  fi
fi

target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-/var/tmp/tufa-target}-fuzz}"
work="${FUZZ_WORK_DIR:-$target_dir/corpus}"
artifacts="$target_dir/artifacts"
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"

# No sanitizer: the code under test is safe Rust; libFuzzer still catches panics (debug
# assertions and overflow checks are on), stack overflows, timeouts and memory blow-ups.
echo "fuzz: building (cargo +nightly fuzz build -s none, target dir $target_dir)"
if ! cargo +nightly fuzz build -s none --target-dir "$target_dir"; then
  echo "fuzz: FAILED: build"
  exit 1
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

mkdir -p "$artifacts"
failed=()
total=0
printf '\n%-28s %14s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  start=$(date +%s)
  "$bin_dir/$t" "$work/$t" "fuzz/corpus/$t" \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" >"$log" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs="${execs:-0}"
  total=$((total + execs))
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc)"
    failed+=("$t")
  fi
  printf '%-28s %14s %8s  %s\n' "$t" "$execs" "$elapsed" "$result"
  if [ "$rc" -ne 0 ]; then
    grep -E 'panicked at|^(thread|assertion)|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 12 | sed 's/^/    /'
    echo "    full log: $log"
  fi
done
printf '%-28s %14s\n' total "$total"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in $artifacts)"
  exit 1
fi
echo "fuzz: ok (${#targets[@]} targets, ${secs}s each)"
