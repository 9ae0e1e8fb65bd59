#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (in the ASan+UBSan build
# directory that scripts/sanitize.sh address uses) and runs each one for
# FUZZ_SECONDS (default 30), two at a time (one per core), from its seed
# corpus in tests/fuzz/corpus/<name>/. New inputs go to a scratch corpus in
# the build directory, never into the repository. On a crash, a leak, a
# timeout or an out-of-memory, the report and the input that caused it are
# printed, with the command that reproduces it, and the script fails.
#
#   bash scripts/fuzz.sh                     # every target, 30 s each
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh expr   # one target for an hour
#
# docs/testing.md says how to reproduce a crash and keep its input.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-asan}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc)}
ALL=(flow_json flow_yaml expr cron json_patch http_request partition_batch)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

BUILD_DIR=$BUILD_DIR bash scripts/sanitize.sh address configure
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-14/bin/llvm-symbolizer}
OUT="$PWD/$BUILD_DIR/fuzz"
mkdir -p "$OUT"

# Runs one target; its output goes to $OUT/<name>.log.
run_one() {
  local name=$1 dir="$OUT/$1" extra=()
  rm -rf "$dir/artifacts" && mkdir -p "$dir/corpus" "$dir/artifacts"
  [ -f "tests/fuzz/$name.dict" ] && extra+=("-dict=tests/fuzz/$name.dict")
  # -timeout: one input taking 10 s is a hang worth reporting;
  # -rss_limit_mb: an input that needs 2 GB is a memory bomb.
  "$BUILD_DIR/tests/fuzz/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "${extra[@]}" \
    "$dir/corpus" "tests/fuzz/corpus/$name" >"$OUT/$name.log" 2>&1
}

# Prints the outcome of one target; returns 1 when it failed.
report() {
  local name=$1 rc=$2 dir="$OUT/$1"
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz %-13s ok: %s runs in %s s, corpus %s inputs\n' "$name" "${runs:-?}" \
      "$FUZZ_SECONDS" "$(find "$dir/corpus" "tests/fuzz/corpus/$name" -type f | wc -l)"
    return 0
  fi
  echo "fuzz $name FAILED (exit $rc); its log ($OUT/$name.log) ends with:"
  tail -n 60 "$OUT/$name.log"
  for a in "$dir"/artifacts/*; do
    [ -f "$a" ] || continue
    echo "----- input $a ($(wc -c <"$a") bytes), as hex:"
    head -c 4096 "$a" | od -A d -t x1z -v | head -n 80
    echo "reproduce: $BUILD_DIR/tests/fuzz/fuzz_$name $a"
  done
  return 1
}

failed=0
running=()  # names of the targets in flight, in start order
declare -A pids
for name in "${TARGETS[@]}"; do
  [ -x "$BUILD_DIR/tests/fuzz/fuzz_$name" ] || { echo "fuzz.sh: no target $name" >&2; exit 2; }
  run_one "$name" &
  pids[$name]=$!
  running+=("$name")
  if [ ${#running[@]} -ge "$FUZZ_JOBS" ]; then
    first=${running[0]}
    running=("${running[@]:1}")
    rc=0; wait "${pids[$first]}" || rc=$?
    report "$first" "$rc" || failed=1
  fi
done
for name in "${running[@]}"; do
  rc=0; wait "${pids[$name]}" || rc=$?
  report "$name" "$rc" || failed=1
done
exit "$failed"
