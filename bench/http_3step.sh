#!/usr/bin/env bash
# http_3step: the 3-step core.echo workflow started over real HTTP with
# ?wait_ms (the response carries the finished execution), keep-alive, at
# concurrency 1 and 64, `sync` durability. Starts its own node on a free
# loopback port with a throwaway data dir and stops it by PID.
# Usage: bench/http_3step.sh BUILD_DIR [DURATION_S]
set -euo pipefail
build=$1
duration=${2:-10}
source "$(dirname "$0")/node.sh"
node_start "$build"
trap node_stop EXIT
key=$NODE_KEY
port=$NODE_PORT
curl -sf -X POST "$NODE_URL/api/v1/flows" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d "$(three_flow)" >/dev/null
for c in 1 64; do
  "$build/bench/yantra_http_load" --url "http://127.0.0.1:$port/api/v1/flows/three/run?wait_ms=5000" \
    --method POST --body '{"input": {"n": 1}}' --header "Authorization: Bearer $key" \
    --header 'Content-Type: application/json' --concurrency "$c" --duration-s "$duration" \
    --name http_3step --expect-status 200
done
