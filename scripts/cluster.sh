#!/usr/bin/env bash
# A development cluster on loopback: etcd and three Yantra nodes (HTTP on
# 127.0.0.1:8081-8083, node-to-node transport on 127.0.0.1:9081-9083), all
# under ./data/cluster (override with YANTRA_CLUSTER_DIR). Installs what is
# missing and builds first, like scripts/serve.sh.
#
#   bash scripts/cluster.sh          start (or restart what is not running)
#   bash scripts/cluster.sh stop     stop the nodes and etcd (by PID)
#   bash scripts/cluster.sh status   what runs
#
# Every process is started by this script and stopped by the PID it wrote;
# nothing is killed by name. Logs: <dir>/<name>.log. The cluster is created
# once (`yantra cluster init`, 16 partitions, replication 3: override with
# YANTRA_PARTITIONS / YANTRA_REPLICATION before the first start).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${YANTRA_CLUSTER_DIR:-$ROOT/data/cluster}
BUILD_DIR=${BUILD_DIR:-build}
BIN=$ROOT/$BUILD_DIR/cli/yantra
ETCD_CLIENT=${YANTRA_ETCD_PORT:-2379}
ETCD_PEER=$((ETCD_CLIENT + 1))
ETCD_URL=http://127.0.0.1:$ETCD_CLIENT
NODES=(n1 n2 n3)

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_all() {
  for name in "${NODES[@]}" etcd; do
    local pidfile=$DIR/$name.pid
    if running "$pidfile"; then
      kill -TERM "$(cat "$pidfile")"
      for _ in $(seq 1 100); do running "$pidfile" || break; sleep 0.1; done
      running "$pidfile" && kill -KILL "$(cat "$pidfile")"
      echo "stopped $name"
    fi
    rm -f "$pidfile"
  done
}

status_all() {
  for name in etcd "${NODES[@]}"; do
    if running "$DIR/$name.pid"; then echo "$name: running (pid $(cat "$DIR/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  status) status_all; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYANTRA_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" --target yantra -j"$(nproc)"

mkdir -p "$DIR"
chmod 700 "$DIR"
# Secrets made once: the vault master key and the cluster key (the same
# bytes on every node), and the bootstrap owner key of tenant `default`.
[ -f "$DIR/master.key" ] || (umask 077 && openssl rand -hex 32 > "$DIR/master.key")
[ -f "$DIR/cluster.key" ] || (umask 077 && openssl rand -hex 32 > "$DIR/cluster.key")
[ -f "$DIR/bootstrap-key" ] || (umask 077 && echo "yk_dev_$(openssl rand -hex 24)" > "$DIR/bootstrap-key")

if ! running "$DIR/etcd.pid"; then
  mkdir -p "$DIR/etcd" && chmod 700 "$DIR/etcd"
  etcd --name e1 --data-dir "$DIR/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "e1=http://127.0.0.1:$ETCD_PEER" --pre-vote \
    --heartbeat-interval 50 --election-timeout 500 \
    --auto-compaction-mode periodic --auto-compaction-retention 1h \
    >"$DIR/etcd.log" 2>&1 &
  echo $! > "$DIR/etcd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "$ETCD_URL/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "etcd on $ETCD_URL (log $DIR/etcd.log)"
fi

"$BIN" cluster init --etcd "$ETCD_URL" --partitions "${YANTRA_PARTITIONS:-16}" \
  --replication "${YANTRA_REPLICATION:-3}"

for i in 1 2 3; do
  name=n$i
  if running "$DIR/$name.pid"; then continue; fi
  YANTRA_MASTER_KEY_FILE=$DIR/master.key YANTRA_BOOTSTRAP_KEY=$(cat "$DIR/bootstrap-key") \
    "$BIN" serve --data "$DIR/$name" --listen "127.0.0.1:808$i" \
    --node-id "$name" --etcd "$ETCD_URL" --cluster-listen "127.0.0.1:908$i" \
    --cluster-key-file "$DIR/cluster.key" >"$DIR/$name.log" 2>&1 &
  echo $! > "$DIR/$name.pid"
done
for i in 1 2 3; do
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1 && break
    if ! running "$DIR/n$i.pid"; then echo "node n$i exited; see $DIR/n$i.log" >&2; exit 1; fi
    sleep 0.1
  done
done
status_all
cat <<HINT

Three nodes serve the whole API (any node takes any request):
  export YANTRA_API_KEY=\$(cat $DIR/bootstrap-key)
  export YANTRA_URL=http://127.0.0.1:8081      # or 8082, 8083
  $BUILD_DIR/cli/yantra flows apply -f examples/branching.json
  YANTRA_URL=http://127.0.0.1:8083 $BUILD_DIR/cli/yantra run example-branching \\
      --input '{"price": 60, "quantity": 2}' --wait
Stop everything: bash scripts/cluster.sh stop
HINT
