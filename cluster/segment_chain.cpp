// The segment chain's fenced compare-and-swaps (segment_chain.hpp). Each
// txn's failure branch reads the keys it compared, so a refusal says which
// compare failed: the leader key (kFenced) or the segment records
// (kSegmentConflict), without a second round trip.
#include "cluster/segment_chain.hpp"

#include "cluster/etcd_client.hpp"

namespace yantra::cluster {

namespace {

using Op = Compare::Op;

const RangeResponse* range_at(const TxnResponse& r, size_t i) {
  return i < r.responses.size() ? std::get_if<RangeResponse>(&r.responses[i]) : nullptr;
}

// kFenced when the leader key's create_revision is not `epoch`; ok otherwise.
Status leader_check(const Layout& layout, uint32_t partition, int64_t epoch,
                    const RangeResponse* leader) {
  if (leader == nullptr)
    return Status(ClusterErrc::kProtocolError, "txn answer without the leader key");
  if (leader->kvs.empty())
    return Status(ClusterErrc::kFenced, "partition " + std::to_string(partition) +
                                            " has no leader now; epoch " + std::to_string(epoch) +
                                            " is over");
  const int64_t now = leader->kvs[0].create_revision;
  if (now != epoch)
    return Status(ClusterErrc::kFenced, "partition " + std::to_string(partition) +
                                            " is led at epoch " + std::to_string(now) + ", not " +
                                            std::to_string(epoch) + " (" +
                                            layout.leader(partition) + ")");
  return Status::ok();
}

bool same_open_record(const SegmentRecord& a, const SegmentRecord& b) {
  return a.epoch == b.epoch && a.writer == b.writer && a.replicas == b.replicas &&
         a.first_lsn == b.first_lsn;
}

}  // namespace

Result<std::vector<SegmentEntry>> segments(EtcdClient& etcd, const Layout& layout,
                                           uint32_t partition) {
  auto r = etcd.range(RangeRequest::prefix(layout.segments(partition)));
  if (!r.ok()) return r.status();
  std::vector<SegmentEntry> out;
  for (const KeyValue& kv : r->kvs) {
    auto rec = parse_segment_record(kv.value, kv.key);
    if (!rec.ok()) return rec.status();
    if (layout.segment(partition, rec->epoch) != kv.key)
      return Status(
          ClusterErrc::kInvalidRecord,
          "etcd record " + kv.key + " holds the segment of epoch " + std::to_string(rec->epoch));
    out.push_back({std::move(rec).value(), kv.mod_revision});
  }
  return out;  // keys are zero-padded epochs: etcd's order is epoch order
}

Status open_segment(EtcdClient& etcd, const Layout& layout, uint32_t partition,
                    const SegmentRecord& segment) {
  if (segment.epoch <= 0 || segment.writer.empty() || segment.replicas.empty() ||
      segment.replicas.size() > kMaxReplication || segment.first_lsn == 0 || segment.sealed_end)
    return Status(Errc::kInvalidArgument, "a new segment needs epoch > 0, a writer, 1 to " +
                                              std::to_string(kMaxReplication) +
                                              " replicas, first_lsn >= 1, no sealed_end");
  auto chain = segments(etcd, layout, partition);
  if (!chain.ok()) return chain.status();
  const SegmentEntry* prev = nullptr;
  for (const SegmentEntry& e : *chain) {
    // A record of this epoch already there: the txn's compare fails and its
    // failure branch tells a retry of ours (ok, if still the leader) from a
    // conflict.
    if (e.record.epoch == segment.epoch) break;
    if (e.record.epoch > segment.epoch)
      return Status(ClusterErrc::kFenced, "partition " + std::to_string(partition) +
                                              " already has a segment of the later epoch " +
                                              std::to_string(e.record.epoch));
    prev = &e;
  }
  if (prev != nullptr) {
    if (!prev->record.sealed_end)
      return Status(ClusterErrc::kSegmentConflict,
                    "partition " + std::to_string(partition) + " segment of epoch " +
                        std::to_string(prev->record.epoch) + " is still open: seal it first");
    if (segment.first_lsn != *prev->record.sealed_end + 1)
      return Status(Errc::kInvalidArgument, "first_lsn must be " +
                                                std::to_string(*prev->record.sealed_end + 1) +
                                                " (the previous segment's sealed_end + 1), got " +
                                                std::to_string(segment.first_lsn));
  }

  const std::string key = layout.segment(partition, segment.epoch);
  TxnRequest txn;
  txn.compare.push_back(
      Compare::create_revision_is(layout.leader(partition), Op::kEqual, segment.epoch));
  txn.compare.push_back(Compare::create_revision_is(key, Op::kEqual, 0));
  if (prev != nullptr)
    txn.compare.push_back(Compare::mod_revision_is(layout.segment(partition, prev->record.epoch),
                                                   Op::kEqual, prev->mod_revision));
  txn.success.push_back(PutRequest{key, to_json(segment), 0, false});
  txn.failure.push_back(RangeRequest::single(layout.leader(partition)));
  txn.failure.push_back(RangeRequest::single(key));
  auto r = etcd.txn(txn);
  if (!r.ok()) {
    if (!r.status().is(ClusterErrc::kTimeout) && !r.status().is(ClusterErrc::kOutcomeUnknown))
      return r.status();
    // Sent, outcome unknown: our record there means it was applied.
    auto again = segments(etcd, layout, partition);
    if (again.ok()) {
      for (const SegmentEntry& e : *again) {
        if (e.record.epoch == segment.epoch && same_open_record(e.record, segment))
          return Status::ok();
      }
    }
    return r.status();
  }
  if (r->succeeded) return Status::ok();
  if (Status s = leader_check(layout, partition, segment.epoch, range_at(*r, 0)); !s.is_ok())
    return s;
  const RangeResponse* existing = range_at(*r, 1);
  if (existing != nullptr && !existing->kvs.empty()) {
    auto rec = parse_segment_record(existing->kvs[0].value, key);
    if (rec.ok() && same_open_record(*rec, segment)) return Status::ok();  // a retry of ours
    return Status(ClusterErrc::kSegmentConflict,
                  "partition " + std::to_string(partition) +
                      " already has a different segment record for epoch " +
                      std::to_string(segment.epoch));
  }
  return Status(ClusterErrc::kSegmentConflict, "partition " + std::to_string(partition) +
                                                   " segment chain changed while opening epoch " +
                                                   std::to_string(segment.epoch) + ": re-read it");
}

Status seal_segment(EtcdClient& etcd, const Layout& layout, uint32_t partition,
                    int64_t segment_epoch, uint64_t sealed_end, int64_t my_epoch) {
  const std::string key = layout.segment(partition, segment_epoch);
  auto read = etcd.range(RangeRequest::single(key));
  if (!read.ok()) return read.status();
  if (read->kvs.empty())
    return Status(Errc::kNotFound, "no segment of epoch " + std::to_string(segment_epoch) +
                                       " in partition " + std::to_string(partition));
  const KeyValue kv = read->kvs[0];
  auto rec = parse_segment_record(kv.value, key);
  if (!rec.ok()) return rec.status();
  if (rec->sealed_end)
    return Status(ClusterErrc::kSegmentConflict,
                  "segment " + key + " is already sealed at " + std::to_string(*rec->sealed_end));
  if (sealed_end + 1 < rec->first_lsn)
    return Status(Errc::kInvalidArgument, "sealed_end " + std::to_string(sealed_end) +
                                              " is below the segment's first_lsn - 1 (" +
                                              std::to_string(rec->first_lsn - 1) + ")");
  rec->sealed_end = sealed_end;

  TxnRequest txn;
  txn.compare.push_back(
      Compare::create_revision_is(layout.leader(partition), Op::kEqual, my_epoch));
  txn.compare.push_back(Compare::mod_revision_is(key, Op::kEqual, kv.mod_revision));
  txn.success.push_back(PutRequest{key, to_json(*rec), 0, false});
  txn.failure.push_back(RangeRequest::single(layout.leader(partition)));
  auto r = etcd.txn(txn);
  if (!r.ok()) return r.status();  // unknown outcomes: the caller re-reads the chain
  if (r->succeeded) return Status::ok();
  if (Status s = leader_check(layout, partition, my_epoch, range_at(*r, 0)); !s.is_ok()) return s;
  return Status(ClusterErrc::kSegmentConflict,
                "segment " + key + " changed since it was read (another recovery sealed it)");
}

std::vector<SegmentEntry> trimmable(const std::vector<SegmentEntry>& chain, uint64_t point) {
  std::vector<SegmentEntry> out;
  // Oldest first, a prefix only: the chain stays contiguous from its start.
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    const SegmentRecord& r = chain[i].record;
    if (!r.sealed_end || *r.sealed_end > point) break;
    out.push_back(chain[i]);
  }
  return out;
}

Result<std::vector<SegmentEntry>> trim_chain(EtcdClient& etcd, const Layout& layout,
                                             uint32_t partition,
                                             const std::vector<SegmentEntry>& chain, uint64_t point,
                                             int64_t my_epoch) {
  std::vector<SegmentEntry> drop = trimmable(chain, point);
  if (drop.empty()) return drop;
  TxnRequest txn;
  txn.compare.push_back(
      Compare::create_revision_is(layout.leader(partition), Op::kEqual, my_epoch));
  for (const SegmentEntry& e : drop) {
    const std::string key = layout.segment(partition, e.record.epoch);
    txn.compare.push_back(Compare::mod_revision_is(key, Op::kEqual, e.mod_revision));
    txn.success.push_back(DeleteRequest{key, "", false});
  }
  txn.failure.push_back(RangeRequest::single(layout.leader(partition)));
  auto r = etcd.txn(txn);
  if (!r.ok()) return r.status();  // unknown outcomes: the caller re-reads the chain
  if (r->succeeded) return drop;
  if (Status s = leader_check(layout, partition, my_epoch, range_at(*r, 0)); !s.is_ok()) return s;
  return Status(ClusterErrc::kSegmentConflict, "partition " + std::to_string(partition) +
                                                   " segment chain changed since it was read");
}

}  // namespace yantra::cluster
