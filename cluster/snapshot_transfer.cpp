// install_snapshot (cluster/snapshot_transfer.hpp): LogSnapshot requests in
// order, each chunk into a PartitionSnapshotImport.
#include "cluster/snapshot_transfer.hpp"

#include <algorithm>
#include <utility>

#include "base/errc.hpp"
#include "storage/store.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {

Result<InstalledSnapshot> install_snapshot(storage::Store& store, const LogCall& call,
                                           const std::string& node, uint32_t partition,
                                           const storage::PartitionOfId& partition_of,
                                           const SnapshotTransferOptions& options) {
  auto import = storage::PartitionSnapshotImport::begin(store, partition, partition_of);
  if (!import.ok()) return import.status();
  InstalledSnapshot out;
  uint64_t session = 0;
  for (uint32_t index = 0;; ++index) {
    v1::LogRequest request;
    v1::LogSnapshot* ask = request.mutable_snapshot();
    ask->set_partition(partition);
    ask->set_session(session);
    ask->set_index(index);
    ask->set_max_bytes(options.max_chunk_bytes);
    const std::string payload = request.SerializeAsString();
    Result<std::string> raw = Status(Errc::kInternalError, "not asked");
    for (int attempt = 0; attempt < std::max(1, options.attempts_per_chunk); ++attempt) {
      raw = call(node, payload, options.timeout);
      // A first chunk is not asked again: its session may exist on the
      // server, but we do not know its id (it idles out there).
      if (raw.ok() || session == 0) break;
    }
    if (!raw.ok()) return raw.status();
    v1::LogReply reply;
    if (!reply.ParseFromString(raw.value())) {
      return Status(Errc::kUnavailable, node + ": a snapshot reply that does not parse");
    }
    if (!reply.code().empty()) {
      return Status(Errc::kUnavailable, node + ": snapshot of partition " +
                                            std::to_string(partition) +
                                            " refused: " + reply.code() + ": " + reply.message());
    }
    session = reply.snapshot_session();
    auto info = storage::inspect_chunk(reply.snapshot_chunk());
    if (!info.ok()) return info.status();
    if (Status st = (*import)->add(reply.snapshot_chunk()); !st.is_ok()) return st;
    ++out.chunks;
    out.bytes += reply.snapshot_chunk().size();
    if (info->last) break;
  }
  auto lsn = (*import)->finish();
  if (!lsn.ok()) return lsn.status();
  out.lsn = *lsn;
  return out;
}

}  // namespace yantra::cluster
