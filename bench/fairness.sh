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
data=$(mktemp -d /tmp/yantra-bench-fair.XXXXXX)
op="op_bench_$(date +%s%N)"
master=$(openssl rand -hex 32)
: >"$data.log"  # exists before the node starts: the port is read from it
YANTRA_MASTER_KEY=$master YANTRA_OPERATOR_KEY=$op YANTRA_BOOTSTRAP_KEY="yk_b_$op" \
  "$build/cli/yantra" serve --data "$data" --listen "127.0.0.1:0" >"$data.log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data" "$data.log"; }
trap cleanup EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's|^yantra listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$data.log")
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$port" ] || { echo "node did not start:" >&2; cat "$data.log" >&2; exit 1; }
base="http://127.0.0.1:$port"

# Creates a tenant and prints its owner key.
tenant() {
  curl -sf -X POST "$base/admin/v1/tenants" -H "Authorization: Bearer $op" \
    -H 'Content-Type: application/json' -d "$2" |
    sed -n 's|.*"secret": *"\([^"]*\)".*|\1|p'
}
quiet=$(tenant quiet '{"id": "quiet"}')
flood=$(tenant flood "{\"id\": \"flood\", \"limits\": {\"requests_per_second\": $flood_rps, \"max_concurrent_executions\": 1000}}")
flow='{"id": "three", "steps": [
  {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$ref": "input.n"}}}, "on_success": "b"},
  {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$expr": "a.n + 1"}}}, "on_success": "c"},
  {"id": "c", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$expr": "b.n * 2"}}}}]}'
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
load flood_limited "$flood" 64 >"$data.flood" &
flood_pid=$!
sleep 1
during=$(load quiet_during_flood "$quiet" 4)
wait "$flood_pid"
cat "$data.flood"
echo "$during"
p99() { sed -n 's|.*"p99_ms":\([0-9.]*\).*|\1|p' <<<"$1"; }
awk -v a="$(p99 "$alone")" -v d="$(p99 "$during")" \
  'BEGIN { printf "{\"bench\":\"fairness\",\"quiet_p99_alone_ms\":%s,\"quiet_p99_during_flood_ms\":%s,\"ratio\":%.2f}\n", a, d, d / a }'
rm -f "$data.flood"
