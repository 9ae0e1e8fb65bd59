#!/usr/bin/env bash
# http_3step: the 3-step core.echo workflow started over real HTTP with
# ?wait_ms (the response carries the finished execution), keep-alive, at
# concurrency 1 and 64, `sync` durability. Starts its own node on a free
# loopback port with a throwaway data dir and stops it by PID.
# Usage: bench/http_3step.sh BUILD_DIR [DURATION_S]
set -euo pipefail
build=$1
duration=${2:-10}
data=$(mktemp -d /tmp/yantra-bench-http.XXXXXX)
key="yk_bench_$(date +%s%N)"
# Port 0: the node picks a free port and prints it.
master=$(openssl rand -hex 32)
: >"$data.log"  # exists before the node starts: the port is read from it
YANTRA_MASTER_KEY=$master YANTRA_BOOTSTRAP_KEY=$key "$build/cli/yantra" serve --data "$data" --listen "127.0.0.1:0" >"$data.log" 2>&1 &
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
curl -sf -X POST "http://127.0.0.1:$port/api/v1/flows" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{
  "id": "three", "steps": [
    {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
      "parameters": {"n": {"$ref": "input.n"}}}, "on_success": "b"},
    {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo",
      "parameters": {"n": {"$expr": "a.n + 1"}}}, "on_success": "c"},
    {"id": "c", "type": "action", "config": {"tool_id": "core", "action": "echo",
      "parameters": {"n": {"$expr": "b.n * 2"}}}}],
  "output": {"n": {"$ref": "c.n"}}}' >/dev/null
for c in 1 64; do
  "$build/bench/yantra_http_load" --url "http://127.0.0.1:$port/api/v1/flows/three/run?wait_ms=5000" \
    --method POST --body '{"input": {"n": 1}}' --header "Authorization: Bearer $key" \
    --header 'Content-Type: application/json' --concurrency "$c" --duration-s "$duration" \
    --name http_3step --expect-status 200
done
