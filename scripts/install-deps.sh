#!/usr/bin/env bash
# Installs the Debian 12 packages Yantra builds and tests with. Idempotent and
# quiet when everything is present: it asks dpkg first and only calls apt-get
# for what is missing, so repeated runs (CI, the quick start) cost nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libcaf-dev libprotobuf-dev protobuf-compiler librocksdb-dev
  libboost-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libssl-dev openssl libjemalloc-dev libcli11-dev curl
  libhowardhinnant-date-dev
  libgtest-dev libgmock-dev
  # Duktape's amalgamated source, which script/ compiles with the execution
  # timeout of script steps enabled (docs/scripts.md).
  duktape-dev
  # etcd 3.4, the cluster's consensus (docs/cluster.md): tests/cluster starts
  # private members of it; etcdctl for operators and debugging.
  etcd-server etcd-client
  # The reference tool worker (examples/worker.py, standard library only),
  # which tests/e2e/workers_test.cpp runs against a real node.
  python3
  # The checks of scripts/test.sh (docs/testing.md): the format check, and the
  # sanitizer and fuzzer builds, which need clang. clang's sanitizer and
  # libFuzzer runtimes (libclang-rt-14-dev) and llvm-symbolizer (llvm-14, for
  # file:line in sanitizer reports) are only *recommended* by clang-14, and
  # --no-install-recommends skips them: they are named here. lld links the
  # instrumented test binaries several times faster than GNU ld.
  clang-14 libclang-rt-14-dev llvm-14 lld-14 clang-format-14
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
