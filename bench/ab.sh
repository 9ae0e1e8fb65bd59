#!/usr/bin/env bash
# bench/ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [HTTP_SECONDS]: an A/B of two
# Release builds (e.g. build-bench of an older checkout and of this one) on
# the same machine in one run, interleaved old, new, old, new... so that
# drift in the machine's load hits both sides alike. Every performance claim
# is made with it.
#
# Per round and side it runs engine_3step (in-process, sync durability) and
# http_3step at concurrency 64 (a node of that build on a free loopback port,
# ?wait_ms so each response carries the finished execution), and prints one
# JSON line each with the rate and the CPU seconds per execution beside it:
#   engine_3step: user+sys of the bench process (the engine runs in it);
#   http_3step:   user+sys of the node process only, read from /proc around
#                 the load (the load generator's CPU is not counted).
# A build dir must hold bench/yantra_bench_engine, bench/yantra_http_load and
# cli/yantra (`BENCH_BUILD_DIR=DIR bench/run engine_3step` builds them).
set -euo pipefail
old=$1
new=$2
rounds=${3:-3}
http_s=${4:-8}
tick=$(getconf CLK_TCK)
source "$(dirname "$0")/node.sh"
trap node_stop EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

engine_run() {  # side build
  local t0 t1 out
  t0=$(mktemp)
  out=$(/usr/bin/time -f '%U %S' -o "$t0" "$2/bench/yantra_bench_engine" engine_3step)
  read -r user sys <"$t0"
  rm -f "$t0"
  python3 - "$1" "$out" "$user" "$sys" <<'EOF'
import json, sys
side, out, user, sys_ = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
n = out["executions"]
print(json.dumps({"side": side, "bench": "engine_3step", "executions_per_s": round(out["executions_per_s"]),
                  "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"],
                  "cpu_ms_per_execution": round((user + sys_) * 1000 / n, 3)}))
EOF
}

http_run() {  # side build
  local build=$2 before after load
  node_start "$build"
  curl -sf -X POST "$NODE_URL/api/v1/flows" -H "Authorization: Bearer $NODE_KEY" \
    -H 'Content-Type: application/json' -d "$(three_flow)" >/dev/null
  before=$(cpu_ticks "$NODE_PID")
  load=$("$build/bench/yantra_http_load" --url "$NODE_URL/api/v1/flows/three/run?wait_ms=5000" \
    --method POST --body '{"input": {"n": 1}}' --header "Authorization: Bearer $NODE_KEY" \
    --header 'Content-Type: application/json' --concurrency 64 --duration-s "$http_s" \
    --name http_3step --expect-status 200)
  after=$(cpu_ticks "$NODE_PID")
  node_stop
  python3 - "$1" "$load" "$before" "$after" "$tick" <<'EOF'
import json, sys
side, out = sys.argv[1], json.loads(sys.argv[2])
ticks = int(sys.argv[4]) - int(sys.argv[3])
n = max(out["requests"] - out["errors"], 1)
print(json.dumps({"side": side, "bench": "http_3step", "concurrency": out["concurrency"],
                  "requests_per_s": out["requests_per_s"], "errors": out["errors"],
                  "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"],
                  "cpu_ms_per_execution": round(ticks / int(sys.argv[5]) * 1000 / n, 3)}))
EOF
}

# The order flips every round, so neither side always runs on a warmer machine.
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then sides="old new"; else sides="new old"; fi
  for s in $sides; do engine_run "$s" "${!s}"; done
  for s in $sides; do http_run "$s" "${!s}"; done
done
