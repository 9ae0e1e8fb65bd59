// recover_partition and read_committed (cluster/log_recovery.hpp).
#include "cluster/log_recovery.hpp"

#include <algorithm>
#include <future>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "base/errc.hpp"
#include "base/storage_errc.hpp"
#include "cluster/errc.hpp"
#include "cluster/etcd_client.hpp"
#include "storage/partition_batch.hpp"
#include "storage/segment_store.hpp"
#include "storage/store.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

constexpr size_t kReadBytes = 1u << 20;

Result<v1::LogReply> call_log(const LogCall& call, const std::string& node,
                              const v1::LogRequest& req, std::chrono::milliseconds timeout) {
  auto raw = call(node, req.SerializeAsString(), timeout);
  if (!raw.ok()) return raw.status();
  v1::LogReply reply;
  if (!reply.ParseFromString(raw.value())) {
    return Status(ClusterErrc::kProtocolError, "node " + node + " answered a malformed LogReply");
  }
  return reply;
}

std::string pname(uint32_t p) {
  return "partition " + std::to_string(p);
}

// Batches [from, to] of `segment` as `node` holds them (one page).
Result<std::vector<std::string>> read_remote(const LogCall& call, const std::string& node,
                                             uint32_t partition, uint64_t segment, uint64_t from,
                                             uint64_t to, size_t max_bytes,
                                             std::chrono::milliseconds timeout) {
  v1::LogRequest req;
  auto* r = req.mutable_read();
  r->set_partition(partition);
  r->set_segment(segment);
  r->set_from_lsn(from);
  r->set_to_lsn(to);
  r->set_max_bytes(max_bytes);
  auto reply = call_log(call, node, req, timeout);
  if (!reply.ok()) return reply.status();
  if (!reply->code().empty()) {
    return Status(ClusterErrc::kProtocolError,
                  "node " + node + " refused a read: " + reply->code() + ": " + reply->message());
  }
  if (reply->batches_size() == 0 || reply->from_lsn() != from) {
    return Status(Errc::kUnavailable, "node " + node + " does not hold lsn " +
                                          std::to_string(from) + " of segment " +
                                          std::to_string(segment));
  }
  return std::vector<std::string>(reply->batches().begin(), reply->batches().end());
}

Result<std::vector<std::string>> read_local(storage::Store& store, uint32_t partition,
                                            uint64_t segment, uint64_t from, uint64_t to,
                                            size_t max_bytes) {
  auto read = store.segments().read(partition, segment, from, to, max_bytes);
  if (!read.ok()) return read.status();
  std::vector<std::string> out;
  uint64_t expect = from;
  for (auto& b : read.value()) {
    if (b.lsn != expect) break;
    out.push_back(std::move(b.bytes));
    ++expect;
  }
  if (out.empty()) return Status(Errc::kNotFound, "not held here");
  return out;
}

}  // namespace

Result<std::vector<std::string>> read_committed(storage::Store& store, const LogCall& call,
                                                const std::vector<SegmentEntry>& chain,
                                                uint32_t partition, uint64_t from, uint64_t to,
                                                size_t max_bytes,
                                                std::chrono::milliseconds timeout) {
  // The covering segment: the largest first_lsn <= from.
  const SegmentEntry* seg = nullptr;
  for (const auto& e : chain) {
    if (e.record.first_lsn <= from &&
        (seg == nullptr || e.record.first_lsn >= seg->record.first_lsn)) {
      seg = &e;
    }
  }
  if (seg == nullptr || !seg->record.sealed_end || *seg->record.sealed_end < from) {
    return Status(Errc::kInvalidArgument, pname(partition) + ": lsn " + std::to_string(from) +
                                              " is not committed in a sealed segment of the chain");
  }
  to = std::min(to, *seg->record.sealed_end);
  const uint64_t segment = static_cast<uint64_t>(seg->record.epoch);
  auto local = read_local(store, partition, segment, from, to, max_bytes);
  if (local.ok()) return local;
  Status last = local.status();
  for (const auto& node : seg->record.replicas) {
    auto remote = read_remote(call, node, partition, segment, from, to, max_bytes, timeout);
    if (remote.ok()) return remote;
    last = remote.status();
  }
  return Status(Errc::kUnavailable, pname(partition) + ": no replica of segment " +
                                        std::to_string(segment) + " gave lsn " +
                                        std::to_string(from) + ": " + last.to_string());
}

Result<uint64_t> apply_committed_range(storage::Store& store, const LogCall& call,
                                       const std::vector<SegmentEntry>& chain, uint32_t partition,
                                       uint64_t to, std::chrono::milliseconds timeout) {
  auto applied = storage::applied_lsn(store, partition);
  if (!applied.ok()) return applied.status();
  uint64_t next = applied.value() + 1;
  uint64_t count = 0;
  while (next <= to) {
    auto batches = read_committed(store, call, chain, partition, next, to, kReadBytes, timeout);
    if (!batches.ok()) return batches.status();
    for (const auto& bytes : batches.value()) {
      Status st = storage::apply_committed(store, partition, next, bytes, false);
      if (!st.is_ok()) return st;
      ++next;
      ++count;
    }
  }
  return count;
}

namespace {

struct SealOutcome {
  std::string node;
  Result<v1::LogReply> reply = Status(Errc::kInternalError, "");
};

// LogSeal on every replica at once; the answers (or errors) of each.
std::vector<SealOutcome> seal_all(const LogCall& call, uint32_t partition, uint64_t segment,
                                  int64_t epoch, const std::vector<std::string>& replicas,
                                  std::chrono::milliseconds timeout) {
  std::vector<std::future<SealOutcome>> futures;
  for (const auto& node : replicas) {
    futures.push_back(
        std::async(std::launch::async, [&call, node, partition, segment, epoch, timeout] {
          v1::LogRequest req;
          auto* s = req.mutable_seal();
          s->set_partition(partition);
          s->set_segment(segment);
          s->set_sealing_epoch(static_cast<uint64_t>(epoch));
          SealOutcome out;
          out.node = node;
          out.reply = call_log(call, node, req, timeout);
          return out;
        }));
  }
  std::vector<SealOutcome> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

// Steps 2-4 for the open segment `open`: the end to record.
Result<uint64_t> seal_and_copy(EtcdClient& etcd, const Layout& layout, const LogCall& call,
                               const RecoveryOptions& o, const SegmentEntry& open,
                               RecoveredLog& out) {
  const auto& rec = open.record;
  const uint64_t segment = static_cast<uint64_t>(rec.epoch);
  const size_t replicas = rec.replicas.size();
  const size_t w = std::min<size_t>(o.write_quorum, replicas);
  const size_t needed = replicas - w + 1;
  auto sealed = seal_all(call, o.partition, segment, o.epoch, rec.replicas, o.rpc_timeout);
  std::map<std::string, uint64_t> last;  // node -> last lsn of its sealed copy
  uint64_t end = rec.first_lsn - 1;
  std::string why;
  for (const auto& s : sealed) {
    if (!s.reply.ok()) {
      why += " " + s.node + ": " + s.reply.status().to_string() + ";";
      continue;
    }
    const v1::LogReply& r = s.reply.value();
    if (!r.code().empty()) {
      why += " " + s.node + ": " + r.code() + " " + r.message() + ";";
      // Sealed by a newer epoch than ours: someone else leads now.
      if (r.sealed() && r.sealing_epoch() > static_cast<uint64_t>(o.epoch)) {
        return Status(ClusterErrc::kFenced, pname(o.partition) + ": segment " +
                                                std::to_string(segment) + " was sealed by epoch " +
                                                std::to_string(r.sealing_epoch()));
      }
      continue;
    }
    const uint64_t l = std::max<uint64_t>(r.last_lsn(), rec.first_lsn - 1);
    last[s.node] = l;
    end = std::max(end, l);
  }
  if (last.size() < needed) {
    return Status(Errc::kUnavailable,
                  pname(o.partition) + ": sealed segment " + std::to_string(segment) + " on " +
                      std::to_string(last.size()) + " of " + std::to_string(replicas) +
                      " replicas, " + std::to_string(needed) + " needed:" + why);
  }
  out.sealed_segment = segment;
  // Every lsn up to `end` onto W sealed copies.
  std::vector<std::string> holders;
  std::vector<std::string> lagging;
  for (const auto& [node, l] : last) (l == end ? holders : lagging).push_back(node);
  if (end >= rec.first_lsn) {
    for (const auto& node : lagging) {
      if (holders.size() >= w) break;
      uint64_t from = last[node] + 1;
      while (from <= end) {
        auto batches = read_remote(call, holders.front(), o.partition, segment, from, end,
                                   kReadBytes, o.rpc_timeout);
        if (!batches.ok()) return batches.status();
        v1::LogRequest req;
        auto* r = req.mutable_repair();
        r->set_partition(o.partition);
        r->set_segment(segment);
        r->set_recovery_epoch(static_cast<uint64_t>(o.epoch));
        r->set_first_lsn(from);
        const uint64_t n = batches->size();
        for (auto& b : batches.value()) r->add_batches(std::move(b));
        auto reply = call_log(call, node, req, o.rpc_timeout);
        if (!reply.ok()) return reply.status();
        if (!reply->code().empty()) {
          return Status(Errc::kUnavailable, pname(o.partition) + ": repair of " + node +
                                                " refused: " + reply->code() + " " +
                                                reply->message());
        }
        from += n;
        out.copied_batches += n;
      }
      holders.push_back(node);
    }
    if (holders.size() < w) {
      return Status(Errc::kUnavailable,
                    pname(o.partition) + ": only " + std::to_string(holders.size()) +
                        " replicas hold the sealed end, " + std::to_string(w) + " needed");
    }
  }
  Status recorded = seal_segment(etcd, layout, o.partition, rec.epoch, end, o.epoch);
  if (!recorded.is_ok()) return recorded;
  // Longer copies drop their unacknowledged tails (best effort).
  for (const auto& [node, l] : last) {
    if (l <= end) continue;
    v1::LogRequest req;
    auto* t = req.mutable_truncate();
    t->set_partition(o.partition);
    t->set_segment(segment);
    t->set_end(end);
    (void)call_log(call, node, req, o.rpc_timeout);
  }
  return end;
}

}  // namespace

Result<RecoveredLog> recover_partition(EtcdClient& etcd, const Layout& layout,
                                       storage::Store& store, const LogCall& call,
                                       const RecoveryOptions& o) {
  RecoveredLog out;
  auto chain = segments(etcd, layout, o.partition);
  if (!chain.ok()) return chain.status();
  uint64_t end = 0;
  bool reopen = false;
  if (!chain->empty()) {
    const SegmentEntry& last = chain->back();
    if (last.record.epoch == o.epoch) {
      // Our own record from an earlier attempt of this recovery.
      reopen = true;
      end = last.record.first_lsn - 1;
    } else if (last.record.epoch > o.epoch) {
      return Status(ClusterErrc::kFenced, pname(o.partition) + ": the chain has epoch " +
                                              std::to_string(last.record.epoch) + " above ours");
    } else if (last.record.sealed_end) {
      end = *last.record.sealed_end;
    } else {
      auto sealed = seal_and_copy(etcd, layout, call, o, last, out);
      if (!sealed.ok()) return sealed.status();
      end = sealed.value();
      auto again = segments(etcd, layout, o.partition);
      if (!again.ok()) return again.status();
      chain = std::move(again);
    }
  }
  // The local state up to the end: from a snapshot first when the log no
  // longer starts at or before what this node needs.
  if (o.install_snapshot && !chain->empty()) {
    auto have = storage::applied_lsn(store, o.partition);
    if (!have.ok()) return have.status();
    if (have.value() + 1 < chain->front().record.first_lsn) {
      if (Status st = o.install_snapshot(chain.value()); !st.is_ok()) return st;
    }
  }
  auto applied = apply_committed_range(store, call, chain.value(), o.partition, end, o.rpc_timeout);
  if (!applied.ok()) return applied.status();
  out.applied_batches = applied.value();
  out.end = end;
  out.first_lsn = end + 1;
  out.replicas = o.replicas;
  if (reopen) out.replicas = chain->back().record.replicas;
  SegmentRecord mine;
  mine.epoch = o.epoch;
  mine.writer = o.self;
  mine.replicas = out.replicas;
  mine.first_lsn = out.first_lsn;
  Status opened = open_segment(etcd, layout, o.partition, mine);
  if (!opened.is_ok()) return opened;
  return out;
}

}  // namespace yantra::cluster
