#!/usr/bin/env bash
# The quick start's test command: install what is missing, build (warnings are
# errors), run every test suite in parallel. BUILD_DIR overrides ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYANTRA_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
ctest -j2 --output-on-failure --timeout 600
