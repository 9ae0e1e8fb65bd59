#!/usr/bin/env bash
# The quick start's run command: install what is missing, build, and start a
# node with the embedded default store (RocksDB under ./data) on
# 127.0.0.1:8080. Extra arguments go to `yantra serve` (e.g. --listen, --data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYANTRA_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" --target yantra -j"$(nproc)"
cat <<HINT

Starting a node. In another shell, run an example workflow:
  export YANTRA_API_KEY=\$(cat data/bootstrap-key)
  $BUILD_DIR/cli/yantra flows apply -f examples/branching.json
  $BUILD_DIR/cli/yantra run example-branching --input '{"price": 60, "quantity": 2}' --wait
  $BUILD_DIR/cli/yantra executions list

HINT
# The vault's master key: a node refuses to start without one. A development
# key is made once, next to the data (mode 0600); production keeps it
# elsewhere (YANTRA_MASTER_KEY or --master-key-file).
if [ -z "${YANTRA_MASTER_KEY:-}" ] && [ -z "${YANTRA_MASTER_KEY_FILE:-}" ]; then
  if [ ! -f master.key ]; then
    (umask 077 && openssl rand -hex 32 > master.key)
    echo "Created a development master key in ./master.key"
  fi
  export YANTRA_MASTER_KEY_FILE=$PWD/master.key
fi
exec "$BUILD_DIR/cli/yantra" serve "$@"
