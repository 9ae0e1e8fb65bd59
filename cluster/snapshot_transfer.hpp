// Installing a partition snapshot from another replica (the client side of
// the log service's LogSnapshot, cluster/log_server.hpp): a node that must
// hold a partition whose log no longer starts at LSN 1 (trimmed, invariant 7
// of docs/replicated-log.md) asks a replica that holds it for its snapshot,
// chunk by chunk, imports it (storage/partition_snapshot.hpp: into a store
// without the partition's applied marker; the marker is written last), and
// then follows the log from the snapshot's lsn + 1.
//
// Each chunk is one request with the rpc timeout; a chunk whose reply was
// lost (a timeout, a transport error) is asked for again, up to
// `attempts_per_chunk` times (the server answers the same index with the
// same bytes). Anything else stops the transfer: the import then left rows
// without a marker, which the next attempt deletes first.
//
// Threads: blocks on the rpc and on RocksDB writes: run it on the
// follower's thread, never on a CAF scheduler thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/result.hpp"
#include "cluster/log_recovery.hpp"
#include "storage/partition_snapshot.hpp"

namespace yantra::storage {
class Store;
}  // namespace yantra::storage

namespace yantra::cluster {

struct SnapshotTransferOptions {
  size_t max_chunk_bytes = storage::kSnapshotChunkBytes;  // the server may bound it lower
  std::chrono::milliseconds timeout{5000};                // per chunk
  int attempts_per_chunk = 3;
};

struct InstalledSnapshot {
  uint64_t lsn = 0;  // the partition's applied marker now
  uint64_t chunks = 0;
  uint64_t bytes = 0;  // chunk bytes received
};

// Imports `partition`'s snapshot from `node` into `store`. Errors: the
// import's refusal (the store already holds the partition: kInvalidArgument),
// the server's refusal (its code and message, as kUnavailable), the rpc's
// error after the attempts, or a chunk the import refuses (storage_corrupt).
Result<InstalledSnapshot> install_snapshot(storage::Store& store, const LogCall& call,
                                           const std::string& node, uint32_t partition,
                                           const storage::PartitionOfId& partition_of,
                                           const SnapshotTransferOptions& options = {});

}  // namespace yantra::cluster
