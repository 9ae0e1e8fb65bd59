#!/usr/bin/env bash
# Builds and runs test suites under a sanitizer (docs/testing.md):
#
#   bash scripts/sanitize.sh address   # ASan+UBSan: base, config, runtime, storage, actors, api, e2e,
#                                      #   and the replicated log's in-process suites
#   bash scripts/sanitize.sh thread    # TSan: actors, storage, api, the replicated log's in-process suites
#   bash scripts/sanitize.sh address configure   # only configure (scripts/fuzz.sh)
#
# One clang build directory per sanitizer (build-asan, build-tsan; BUILD_DIR
# overrides). Only the suites that run are built (ninja targets, not `all`):
# the build is the expensive part on 2 cores. The address build also serves
# the fuzzers (YANTRA_FUZZ=ON adds -fsanitize=fuzzer-no-link), so
# scripts/fuzz.sh reuses its objects. The e2e suites test the `yantra`
# binary, so it is built instrumented too.
#
# -O1 -gline-tables-only: the usual sanitizer trade-off (fast enough to run,
# file:line in every report), at half the compile and link cost of -O2 -g.
# NDEBUG is not defined, so assert() checks too. Warnings are not errors
# here: the GCC build (scripts/test.sh) enforces them, and clang's differ.
#
# Reports: every sanitizer writes to $BUILD_DIR/sanitizer-reports/ (log_path),
# which catches the reports of child processes too (the e2e suites' nodes,
# whose stderr goes to a temporary file); any report fails this script and is
# printed. Default options and suppressions: tests/sanitizers/.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:?usage: sanitize.sh address|thread [configure]}
STEP=${2:-all}
case "$MODE" in
  address)
    BUILD_DIR=${BUILD_DIR:-build-asan}
    SUITES='^(base|config|runtime|storage|actors|api|e2e)_|^cluster_(log_server|replicated_log)_test$'
    EXTRA=(-DYANTRA_SANITIZE=address -DYANTRA_FUZZ=ON)
    ;;
  thread)
    BUILD_DIR=${BUILD_DIR:-build-tsan}
    SUITES='^(actors|storage|api)_|^cluster_(log_server|replicated_log)_test$'
    EXTRA=(-DYANTRA_SANITIZE=thread)
    ;;
  *) echo "sanitize.sh: unknown mode '$MODE' (address or thread)" >&2; exit 2 ;;
esac

LAUNCHER=()
if command -v ccache >/dev/null && [ "${YANTRA_CCACHE:-1}" != 0 ]; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only" \
  -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DYANTRA_WERROR=OFF "${EXTRA[@]}" "${LAUNCHER[@]}" >/dev/null
[ "$STEP" = configure ] && exit 0

# The suites that run here, by CTest name (= target name); a suite may opt
# out with the CTest label `nosan` (too slow instrumented, say). -FA: without
# the fixtures CTest adds to a listing (mcp_server_install, a script, is no
# target); ctest below still runs them before the suites that need them.
mapfile -t TESTS < <(cd "$BUILD_DIR" && ctest -N -R "$SUITES" -LE nosan -FA '.*' |
                     sed -n 's/^ *Test *#[0-9]*: //p')
[ ${#TESTS[@]} -gt 0 ] || { echo "sanitize.sh: no suite matches $SUITES" >&2; exit 1; }
echo "sanitize.sh $MODE: building ${#TESTS[@]} suites: ${TESTS[*]}"
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${TESTS[@]}"
[ "$STEP" = build ] && exit 0

REPORTS="$PWD/$BUILD_DIR/sanitizer-reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-14/bin/llvm-symbolizer}
export ASAN_OPTIONS="log_path=$REPORTS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="log_path=$REPORTS/lsan${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TSAN_OPTIONS="log_path=$REPORTS/tsan:external_symbolizer_path=$ASAN_SYMBOLIZER_PATH${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

status=0
(cd "$BUILD_DIR" && ctest -j2 --output-on-failure --timeout 1800 -R "$SUITES" -LE nosan) || status=$?

shopt -s nullglob
# A file holding nothing but "Symbolizer buffer too small" warnings is no
# report: sanitizer_common prints them while it symbolizes a stack with a
# very long C++ name (CAF's typed actor templates) to match it against the
# suppressions; a real report goes to its own tsan./asan./ubsan. file with
# its text. Such files are listed and removed, not counted.
for r in "$REPORTS"/*; do
  if [ -s "$r" ] && ! grep -qvE '^==[0-9]+==WARNING: Symbolizer buffer too small$' "$r"; then
    echo "sanitize.sh $MODE: $(basename "$r"): only 'Symbolizer buffer too small' warnings, not a report"
    rm -f "$r"
  fi
done
reports=("$REPORTS"/*)
if [ ${#reports[@]} -gt 0 ]; then
  echo "sanitize.sh $MODE: ${#reports[@]} sanitizer report file(s) (tests/sanitizers/README.md says what to do):"
  for r in "${reports[@]}"; do
    echo "----- $r"
    cat "$r"
  done
  status=1
fi
exit "$status"
