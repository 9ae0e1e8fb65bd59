#!/usr/bin/env bash
# fairness: does one tenant flooding the node hurt another tenant's start
# latency? A "quiet" tenant starts the 3-step workflow at concurrency 4
# (POST /run without waiting: the answer comes once ExecutionStarted is
# durable, so the latency is the start latency) — first alone, then while a
# "flood" tenant hammers the same node at concurrency 64 with its
# per-tenant limits (requests_per_second, max_concurrent_executions) set:
# its refusals are tarpitted (api/app.cpp), its admitted runs compete.
# Prints the two quiet runs and the flood as JSON lines, then the p99 ratio
# (the target: at most 2x). Starts its own node on a free loopback port with
# a throwaway data dir and stops it by PID.
# Usage: bench/fairness.sh BUILD_DIR [DURATION_S] [FLOOD_RPS]
set -euo pipefail
build=$1
duration=${2:-10}
flood_rps=${3:-2000}
op="op_bench_$(date +%s%N)"
source "$(dirname "$0")/node.sh"
node_start "$build" YANTRA_OPERATOR_KEY="$op"
flood_out=$(mktemp /tmp/yantra-bench-flood.XXXXXX)
trap 'node_stop; rm -f "$flood_out"' EXIT
port=$NODE_PORT
base="http://127.0.0.1:$port"

# Creates a tenant and prints its owner key.
tenant() {
  curl -sf -X POST "$base/admin/v1/tenants" -H "Authorization: Bearer $op" \
    -H 'Content-Type: application/json' -d "$2" |
    sed -n 's|.*"secret": *"\([^"]*\)".*|\1|p'
}
quiet=$(tenant quiet '{"id": "quiet"}')
flood=$(tenant flood "{\"id\": \"flood\", \"limits\": {\"requests_per_second\": $flood_rps, \"max_concurrent_executions\": 1000}}")
flow=$(three_flow)
for key in "$quiet" "$flood"; do
  curl -sf -X POST "$base/api/v1/flows" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "$flow" >/dev/null
done

load() {  # NAME KEY CONCURRENCY
  "$build/bench/yantra_http_load" --url "$base/api/v1/flows/three/run" --method POST \
    --body '{"input": {"n": 1}}' --header "Authorization: Bearer $2" \
    --header 'Content-Type: application/json' --concurrency "$3" --threads 1 \
    --duration-s "$duration" --name "$1" --expect-status 202
}
alone=$(load quiet_alone "$quiet" 4)
echo "$alone"
load flood_limited "$flood" 64 >"$flood_out" &
flood_pid=$!
sleep 1
during=$(load quiet_during_flood "$quiet" 4)
wait "$flood_pid"
cat "$flood_out"
echo "$during"
p99() { sed -n 's|.*"p99_ms":\([0-9.]*\).*|\1|p' <<<"$1"; }
awk -v a="$(p99 "$alone")" -v d="$(p99 "$during")" \
  'BEGIN { printf "{\"bench\":\"fairness\",\"quiet_p99_alone_ms\":%s,\"quiet_p99_during_flood_ms\":%s,\"ratio\":%.2f}\n", a, d, d / a }'
