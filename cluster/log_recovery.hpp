// Recovery of a partition's log by its new leader, and reading committed
// batches from wherever they are (docs/cluster.md "The data path", step 4;
// the invariants 5a-5d of docs/replicated-log.md).
//
// recover_partition(), run by the leader of `epoch` before it writes:
//   1. reads the segment chain from etcd;
//   2. if the last segment is open: seals it on its replicas (LogSeal) and
//      needs answers from at least |replicas| - W + 1 of them — any such set
//      meets every write quorum, so it sees every committed batch; end =
//      the highest last_lsn among them;
//   3. copies batches up to `end` until W of the sealed replicas hold all
//      of them (LogRead from one that has them, LogRepair into the others);
//   4. records sealed_end = end in etcd (seal_segment: CAS on the record,
//      fenced by our leader key), then truncates longer copies (best
//      effort: a copy beyond the recorded end is never read);
//   5. applies every batch up to `end` to the local store (from the local
//      segment copies, or read from a replica of the segment that holds it);
//   6. opens segment `epoch` (first_lsn = end + 1) on `replicas`.
// Any failure returns an error and leaves etcd consistent; the caller
// retries while it still leads (every step is idempotent: sealing twice,
// repairing a held prefix, the same CAS after success answers "already
// sealed" with the same end, reopening our own record).
//
// read_committed() serves followers and recovery alike: batch `lsn` is read
// from the segment of the chain that covers it (the one with the largest
// first_lsn <= lsn), never past a sealed segment's recorded end, so a copy's
// unacknowledged tail is never taken for a committed batch.
//
// Blocking (etcd, rpcs): a cluster thread, never a CAF or HTTP I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "cluster/segment_chain.hpp"

namespace yantra::storage {
class Store;
}  // namespace yantra::storage

namespace yantra::cluster {

class EtcdClient;

// A blocking log rpc: the serialized v1::LogReply of `request` from `node`'s
// log service, or a transport error within `timeout`.
using LogCall = std::function<Result<std::string>(const std::string& node, std::string request,
                                                  std::chrono::milliseconds timeout)>;

struct RecoveryOptions {
  uint32_t partition = 0;
  int64_t epoch = 0;  // ours: the leader key's create_revision
  std::string self;
  uint32_t write_quorum = 1;
  std::vector<std::string> replicas;  // of the segment we open (self first)
  std::chrono::milliseconds rpc_timeout{1000};
  // When this node's applied LSN + 1 is below the chain's first LSN (the
  // batches it needs were trimmed, invariant 7): installs the partition's
  // snapshot from the chain's replicas, so that the log applies from its
  // LSN + 1 on. Unset: such a recovery fails (the batches are gone).
  std::function<Status(const std::vector<SegmentEntry>& chain)> install_snapshot;
};

struct RecoveredLog {
  uint64_t end = 0;        // the last committed lsn before our segment
  uint64_t first_lsn = 1;  // our segment's first lsn (end + 1)
  std::vector<std::string> replicas;
  uint64_t sealed_segment = 0;  // the segment we sealed (0: none was open)
  uint64_t copied_batches = 0;  // batches repaired into lagging replicas
  uint64_t applied_batches = 0;
};

Result<RecoveredLog> recover_partition(EtcdClient& etcd, const Layout& layout,
                                       storage::Store& store, const LogCall& call,
                                       const RecoveryOptions& options);

// Committed batches from..to (inclusive, at most `max_bytes` but at least
// one) of `partition`, per `chain`: from this node's segment copies when
// they hold them, else from a replica of the covering segment. An lsn the
// chain does not cover as committed (beyond a sealed end, or in the open
// segment) is kInvalidArgument; unreachable copies give the rpc's error.
Result<std::vector<std::string>> read_committed(storage::Store& store, const LogCall& call,
                                                const std::vector<SegmentEntry>& chain,
                                                uint32_t partition, uint64_t from, uint64_t to,
                                                size_t max_bytes,
                                                std::chrono::milliseconds timeout);

// Applies the committed batches (applied + 1)..to of `partition` to `store`
// (read_committed), returning how many; stops early at an error.
Result<uint64_t> apply_committed_range(storage::Store& store, const LogCall& call,
                                       const std::vector<SegmentEntry>& chain, uint32_t partition,
                                       uint64_t to, std::chrono::milliseconds timeout);

}  // namespace yantra::cluster
