#!/usr/bin/env bash
# cluster_3step: the 3-step core.echo workflow over HTTP (?wait_ms, the
# answer carries the finished execution) against a cluster on this machine
# — etcd and three nodes, replication 3 — with the load spread over all
# three nodes (one load generator per node). Prints one JSON line: total
# executions/s, p50/p99 (the worst node's), CPU ms per execution (the three
# nodes and etcd together) and replicated batch bytes per execution; then,
# with FAILOVER=1, kill -9 of one node under load and the time until every
# partition has a new leader. On 2 shared cores this measures cost, not
# scale (docs/cluster.md has the model of N-node throughput).
# Usage: bench/cluster_3step.sh BUILD_DIR [DURATION_S] [CONCURRENCY_PER_NODE] [PARTITIONS]
# Every process is started here and stopped by PID; data in a temp dir.
set -euo pipefail
build=$1
duration=${2:-10}
per_node=${3:-22}
partitions=${4:-16}
bin=$build/cli/yantra
tick=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/yantra-cluster-bench.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

ec=$(free_port); ep=$(free_port)
etcd --name e1 --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$ec" \
  --advertise-client-urls "http://127.0.0.1:$ec" --listen-peer-urls "http://127.0.0.1:$ep" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ep" --initial-cluster "e1=http://127.0.0.1:$ep" \
  --pre-vote --heartbeat-interval 50 --election-timeout 500 \
  --auto-compaction-mode periodic --auto-compaction-retention 1h >"$work/etcd.log" 2>&1 &
etcd_pid=$!
pids+=("$etcd_pid")
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$ec/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" cluster init --etcd "http://127.0.0.1:$ec" --partitions "$partitions" --replication 3 >/dev/null
(umask 077 && openssl rand -hex 32 >"$work/cluster.key")
master=$(openssl rand -hex 32)
key="yk_bench_$(date +%s%N)"
op="op_bench_$(date +%s%N)"
ports=(); node_pids=()
for i in 1 2 3; do
  hp=$(free_port); cp=$(free_port)
  YANTRA_MASTER_KEY=$master YANTRA_BOOTSTRAP_KEY=$key YANTRA_OPERATOR_KEY=$op \
    "$bin" serve --data "$work/n$i" --listen "127.0.0.1:$hp" --node-id "n$i" \
    --etcd "http://127.0.0.1:$ec" --cluster-listen "127.0.0.1:$cp" \
    --cluster-key-file "$work/cluster.key" >"$work/n$i.log" 2>&1 &
  node_pids+=($!); pids+=($!); ports+=("$hp")
done
# Ready, every partition led, and the leaderships spread (placement settles).
for i in 0 1 2; do
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:${ports[$i]}/readyz?writes=true" >/dev/null 2>&1 && break; sleep 0.1
  done
done
leaders() {
  curl -fsS -H "Authorization: Bearer $op" "http://127.0.0.1:${ports[$1]}/admin/v1/cluster" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(str(p["leader"]) for p in d["partitions"]))'
}
prev=""
for _ in $(seq 1 60); do
  now=$(leaders 0 || true)
  [ -n "$now" ] && [ "$now" = "$prev" ] && ! echo "$now" | grep -q None && break
  prev=$now; sleep 1
done
curl -fsS -X POST "http://127.0.0.1:${ports[0]}/api/v1/flows" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d "$(source "$(dirname "$0")/node.sh"; three_flow)" >/dev/null
sleep 1  # the flow reaches every node's mirror

bytes_total() {
  local sum=0 v
  for p in "${ports[@]}"; do
    v=$(curl -fsS "http://127.0.0.1:$p/metrics" | awk '/^yantra_cluster_replicated_bytes_total /{print $2}')
    sum=$(python3 -c "print(int($sum) + int(float('${v:-0}')))")
  done
  echo "$sum"
}
before_cpu=0
for p in "${node_pids[@]}" "$etcd_pid"; do before_cpu=$((before_cpu + $(cpu_ticks "$p"))); done
before_bytes=$(bytes_total)
outs=()
for i in 0 1 2; do
  "$build/bench/yantra_http_load" --url "http://127.0.0.1:${ports[$i]}/api/v1/flows/three/run?wait_ms=5000" \
    --method POST --body '{"input": {"n": 1}}' --header "Authorization: Bearer $key" \
    --header 'Content-Type: application/json' --concurrency "$per_node" --duration-s "$duration" \
    --name "n$((i + 1))" --expect-status 200 >"$work/load$i.json" &
  outs+=($!)
done
for p in "${outs[@]}"; do wait "$p"; done
after_cpu=0
for p in "${node_pids[@]}" "$etcd_pid"; do after_cpu=$((after_cpu + $(cpu_ticks "$p"))); done
after_bytes=$(bytes_total)
python3 - "$work" "$before_cpu" "$after_cpu" "$tick" "$before_bytes" "$after_bytes" "$per_node" "$partitions" <<'EOF'
import json, sys
work, b, a, tick, bb, ab, per_node, parts = sys.argv[1:9]
loads = [json.loads(open(f"{work}/load{i}.json").read()) for i in range(3)]
done = sum(l["requests"] - l["errors"] for l in loads)
rate = sum(l["requests_per_s"] for l in loads)
n = max(done, 1)
print(json.dumps({"bench": "cluster_3step", "nodes": 3, "replication": 3, "partitions": int(parts),
                  "concurrency": 3 * int(per_node), "executions_per_s": round(rate, 1),
                  "errors": sum(l["errors"] for l in loads),
                  "p50_ms": max(l["p50_ms"] for l in loads), "p99_ms": max(l["p99_ms"] for l in loads),
                  "cpu_ms_per_execution": round((int(a) - int(b)) / int(tick) * 1000 / n, 3),
                  "replicated_bytes_per_execution": round((int(ab) - int(bb)) / n, 1),
                  "per_node": [{"node": l["bench"], "requests_per_s": l["requests_per_s"],
                                "p99_ms": l["p99_ms"]} for l in loads]}))
EOF

if [ "${FAILOVER:-0}" = 1 ]; then
  # Load through n2 and n3 while n1 is killed; time until no partition is led by n1.
  "$build/bench/yantra_http_load" --url "http://127.0.0.1:${ports[1]}/api/v1/flows/three/run?wait_ms=5000" \
    --method POST --body '{"input": {"n": 1}}' --header "Authorization: Bearer $key" \
    --header 'Content-Type: application/json' --concurrency 8 --duration-s 8 --name failover_load \
    >"$work/fo.json" &
  lp=$!
  sleep 2
  t0=$(date +%s%N)
  kill -9 "${node_pids[0]}"
  for _ in $(seq 1 300); do
    l=$(leaders 1 || true)
    [ -n "$l" ] && ! echo "$l" | grep -qE 'n1|None' && break
    sleep 0.02
  done
  t1=$(date +%s%N)
  wait "$lp" || true
  python3 -c "import json,sys; print(json.dumps({'bench': 'cluster_failover', 'kill9_to_all_partitions_led_ms': round(($t1 - $t0) / 1e6, 1)}))"
fi
