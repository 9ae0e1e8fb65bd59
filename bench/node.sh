# Sourced by the bench scripts: a throwaway node of a build on a free
# loopback port, and the 3-step workflow they measure. Not run by itself.
#   node_start BUILD [ENV=VALUE...]  sets NODE_PID, NODE_PORT, NODE_URL,
#                                    NODE_KEY (owner key), NODE_DATA
#   node_stop                        SIGTERM by PID, waits, removes the data
#   three_flow                       prints the 3-step core.echo definition

node_start() {
  local build=$1
  shift
  NODE_DATA=$(mktemp -d /tmp/yantra-bench.XXXXXX)
  NODE_KEY="yk_bench_$(date +%s%N)"
  : >"$NODE_DATA.log"  # exists before the node starts: the port is read from it
  # Port 0: the node picks a free port and prints it.
  env YANTRA_MASTER_KEY="$(openssl rand -hex 32)" YANTRA_BOOTSTRAP_KEY="$NODE_KEY" "$@" \
    "$build/cli/yantra" serve --data "$NODE_DATA/data" --listen "127.0.0.1:0" >"$NODE_DATA.log" 2>&1 &
  NODE_PID=$!
  NODE_PORT=""
  for _ in $(seq 1 100); do
    NODE_PORT=$(sed -n 's|^yantra listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$NODE_DATA.log")
    [ -n "$NODE_PORT" ] && curl -sf "http://127.0.0.1:$NODE_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if [ -z "$NODE_PORT" ]; then
    echo "node of $build did not start:" >&2
    cat "$NODE_DATA.log" >&2
    node_stop
    return 1
  fi
  NODE_URL="http://127.0.0.1:$NODE_PORT"
}

node_stop() {
  [ -n "${NODE_PID:-}" ] || return 0
  kill -TERM "$NODE_PID" 2>/dev/null || true
  wait "$NODE_PID" 2>/dev/null || true
  rm -rf "$NODE_DATA" "$NODE_DATA.log"
  NODE_PID=""
}

three_flow() {
  cat <<'JSON'
{"id": "three", "steps": [
  {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$ref": "input.n"}}}, "on_success": "b"},
  {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$expr": "a.n + 1"}}}, "on_success": "c"},
  {"id": "c", "type": "action", "config": {"tool_id": "core", "action": "echo",
    "parameters": {"n": {"$expr": "b.n * 2"}}}}],
 "output": {"n": {"$ref": "c.n"}}}
JSON
}
