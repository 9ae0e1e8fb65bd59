#!/usr/bin/env bash
# The quick start's test command and CI's (.ci/run): install what is missing,
# then run each stage and print its wall time:
#
#   format  clang-format 14 check of every tracked C++ file (scripts/check-format.sh)
#   normal  GCC build of everything, warnings are errors; every suite, ctest -j2
#   asan    clang ASan+UBSan: base, config, runtime, storage, actors, api, e2e suites and the
#           replicated log's in-process suites (scripts/sanitize.sh)
#   tsan    clang TSan: actors, storage, api suites and the replicated log's (scripts/sanitize.sh)
#   fuzz    every libFuzzer target for FUZZ_SECONDS (default 30) (scripts/fuzz.sh)
#
# STAGES selects and orders them; the default is all five, which is what CI
# runs (about 50 minutes on 2 cores from a clean clone, docs/testing.md has
# the figures). `STAGES=normal` is the quick loop. A failed stage does
# not stop the others, so one run shows every problem; the script exits 1 if
# any failed. BUILD_DIR overrides ./build (the normal stage's directory).
# docs/testing.md describes each stage and how long it takes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

STAGES=${STAGES:-format normal asan tsan fuzz}
BUILD_DIR=${BUILD_DIR:-build}

stage_normal() {
  local launcher=()
  if command -v ccache >/dev/null && [ "${YANTRA_CCACHE:-1}" != 0 ]; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYANTRA_WERROR=ON \
    "${launcher[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
  (cd "$BUILD_DIR" && ctest -j2 --output-on-failure --timeout 600)
}

declare -a summary
failed=0
passed=0
nfailed=0
t_all=$SECONDS
for stage in $STAGES; do
  echo "===== stage $stage"
  t0=$SECONDS
  rc=0
  case "$stage" in
    format) bash scripts/check-format.sh || rc=$? ;;
    normal) stage_normal || rc=$? ;;
    asan) bash scripts/sanitize.sh address || rc=$? ;;
    tsan) bash scripts/sanitize.sh thread || rc=$? ;;
    fuzz) bash scripts/fuzz.sh || rc=$? ;;
    *) echo "test.sh: unknown stage '$stage' (format normal asan tsan fuzz)" >&2; rc=2 ;;
  esac
  secs=$((SECONDS - t0))
  result=ok
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    result="FAILED (exit $rc)"
    failed=1
    nfailed=$((nfailed + 1))
  fi
  summary+=("$(printf '%-7s %4d:%02d  %s' "$stage" $((secs / 60)) $((secs % 60)) "$result")")
  echo "===== stage $stage: $result in $((secs / 60))m$((secs % 60))s"
done
total=$((SECONDS - t_all))
echo "===== summary (wall time per stage, m:ss)"
printf '%s\n' "${summary[@]}"
printf 'total   %4d:%02d\n' $((total / 60)) $((total % 60))
echo "stages: $passed passed, $nfailed failed"
exit "$failed"
