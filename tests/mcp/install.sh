#!/usr/bin/env bash
# Installs the MCP reference server the MCP tests run
# (@modelcontextprotocol/server-everything, pinned by package-lock.json)
# into tests/mcp/node_modules with `npm ci`. Idempotent: a stamp holding the
# lock file's hash skips the install while the lock is unchanged. Without
# npm it says so and exits 0: the MCP tests then skip with a message.
# Run by CTest as the fixture of the MCP suites (tests/CMakeLists.txt) and
# usable by hand.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "tests/mcp/install.sh: npm/node not found: the MCP tests will skip (scripts/install-deps.sh installs them)"
  exit 0
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.yantra-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
  [ -f node_modules/@modelcontextprotocol/server-everything/dist/index.js ]; then
  exit 0
fi
# A lock held by a concurrent install (ctest -j) is waited for.
exec 9>.install.lock
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
