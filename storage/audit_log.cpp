// AuditLog: a hash chain per tenant behind a queue. Design notes:
//
// - Why a queue and a thread: audit entries are written on every API
//   request, from the HTTP threads; a synced write per request would cap the
//   API at the disk's fsync rate. As in LogWriter, the writer swaps the whole
//   queue out under the lock, so appenders hold the mutex for a push_back,
//   and one WriteBatch (one fsync) carries everything that piled up meanwhile.
// - Seqs and hashes are assigned by the writer thread alone, so the chain
//   needs no lock: heads_ is touched only by open() (before the thread starts)
//   and by the thread. Records of one chain are written in append order.
// - open() finds each chain's head with two seeks per chain (the first key of
//   a chain, then SeekForPrev to its last), not by reading every record.
// - A head record that does not parse does not stop the node: the chain
//   continues from 32 zero bytes there and verify() reports the broken seq.
//   Refusing to start would turn one damaged record into an outage.
// - verify() compares the stored chain with what this process wrote, so a
//   deleted tail is caught while the node runs; after a restart the tail is
//   whatever the database holds (see the header).
// - The queue is unbounded: dropping audit entries under load would defeat
//   their purpose, and the API's own backpressure bounds the request rate.
// - While the store refuses writes (read-only latch, or below the free-space
//   floor: disk_guard.hpp) entries are dropped, and status() reports why.
//   A failed batch restores the heads it advanced, so the chains stay
//   intact when writing resumes.
#include "storage/audit_log.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "base/errc.hpp"
#include "base/storage_errc.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"
#include "storage/partition_log.hpp"

namespace yantra::storage {

namespace {

constexpr size_t kHashSize = 32;
constexpr const char* kNoTenantChain = "-";
// Bounds one WriteBatch when a large backlog is drained.
constexpr size_t kMaxBatch = 16384;

bool in_range(int64_t t, int64_t from_ms, int64_t to_ms) {
  return t >= from_ms && (to_ms == 0 || t < to_ms);
}

bool action_matches(std::string_view action, std::string_view filter) {
  if (filter.empty()) return true;
  if (filter.back() == '.') return action.substr(0, filter.size()) == filter;
  return action == filter;
}

void append_field(std::string& out, const std::string& field) {
  keys::put_be32(out, static_cast<uint32_t>(field.size()));
  out.append(field);
}

// The first 8 bytes, enough to tell two hashes apart in a message.
std::string hex_prefix(const std::string& bytes) {
  return hex_encode(std::string_view(bytes).substr(0, 8));
}

// Fills `record` as the link after (seq - 1, prev_hash), hash included.
void make_record(AuditEntry& e, uint64_t seq, const std::string& prev_hash,
                 v1::AuditRecord& record) {
  record.Clear();
  record.set_tenant(std::move(e.tenant));
  record.set_seq(seq);
  record.set_time_ms(e.time_ms);
  record.set_key_id(std::move(e.key_id));
  record.set_role(std::move(e.role));
  record.set_action(std::move(e.action));
  record.set_resource(std::move(e.resource));
  record.set_outcome(std::move(e.outcome));
  record.set_request_id(std::move(e.request_id));
  record.set_detail(std::move(e.detail));
  record.set_prev_hash(prev_hash);
  record.set_hash(AuditLog::compute_hash(record));
}

void chain_prefix(std::string& out, std::string_view chain, AuditChainPartition partition) {
  if (partition) {
    keys::partition_audit_prefix(out, *partition, chain);
  } else {
    keys::audit_prefix(out, chain);
  }
}

std::string describe(AuditChainPartition partition) {
  return partition ? "partition " + std::to_string(*partition) : "this node's chain";
}

}  // namespace

std::string AuditLog::chain_of(std::string_view tenant) {
  if (!keys::valid_flow_part(tenant)) return kNoTenantChain;
  return std::string(tenant);
}

std::string AuditLog::compute_hash(const v1::AuditRecord& record) {
  std::string data;
  data.reserve(kHashSize + 16 + record.ByteSizeLong());
  // Hashed as stored, even if malformed: the link check reports that.
  data.append(record.prev_hash());
  keys::put_be64(data, record.seq());
  keys::put_be64(data, static_cast<uint64_t>(record.time_ms()));
  append_field(data, record.tenant());
  append_field(data, record.key_id());
  append_field(data, record.role());
  append_field(data, record.action());
  append_field(data, record.resource());
  append_field(data, record.outcome());
  append_field(data, record.request_id());
  append_field(data, record.detail());
  return crypto::sha256(data);
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(Store& store) {
  std::unique_ptr<AuditLog> log(new AuditLog(store));
  internal::BoundedIterator it(log->db_, log->db_.audit, internal::KeyRange::prefix("c"));
  std::string prefix;
  it.seek_to_first();
  while (it.valid()) {
    std::string_view key = it.key().ToStringView();
    const size_t end = key.find('\0', 1);
    if (end == std::string_view::npos) {
      return Status(StorageErrc::kCorrupt, "an audit row has a malformed key");
    }
    std::string chain(key.substr(1, end - 1));
    keys::audit_prefix(prefix, chain);
    const std::string next = keys::prefix_successor(prefix);
    // The last key of this chain: every other chain's keys sort after
    // prefix_successor(prefix) or before the prefix.
    it.seek_for_prev(next);
    if (!it.valid()) break;
    Head head;
    if (it.key().size() == prefix.size() + 8) {
      head.seq = keys::get_be64(it.key().data() + prefix.size());
    }
    v1::AuditRecord record;
    if (internal::parse_value(it.value(), record) && record.hash().size() == kHashSize) {
      head.hash = record.hash();
    } else {
      head.hash.assign(kHashSize, '\0');
    }
    log->written_seq_[chain] = head.seq;
    log->heads_.emplace(std::move(chain), std::move(head));
    it.seek(next);
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  log->thread_ = std::thread([raw = log.get()] {
    name_this_thread("y-audit");
    raw->run();
  });
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();  // the thread drains the queue first
}

void AuditLog::append(AuditEntry entry) {
  if (entry.time_ms == 0) entry.time_ms = now_ms();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(entry));
    ++appended_;
  }
  work_cv_.notify_one();
}

void AuditLog::flush() {
  {
    std::unique_lock lock(mu_);
    const uint64_t target = appended_;
    done_cv_.wait(lock, [&] { return processed_ >= target; });
  }
  // The writes themselves are not synced (see run()): make them durable now.
  // Not after a write error: nothing was written since, and RocksDB aborts
  // on a sync of a WAL whose write failed.
  if (store_.sync_writes() && !store_.latched()) db_.rocks->SyncWAL();
}

Status AuditLog::status() const {
  std::lock_guard lock(mu_);
  return error_;
}

void AuditLog::run() {
  // Not synced here: the WAL is shared by every column family, so these
  // records become durable with the next synced write of the node — the
  // event batch of the very call they describe, or any other within
  // milliseconds. A sync of their own doubled the fsyncs on the hot path
  // (engine_3step -8%, http_3step c=1 +0.7 ms); flush() still syncs.
  rocksdb::WriteOptions wo;
  wo.sync = false;
  rocksdb::WriteBatch batch;
  std::vector<AuditEntry> work;
  std::string key;
  std::string value;
  v1::AuditRecord record;
  std::map<std::string, uint64_t, std::less<>> touched;  // chain -> last seq of this batch
  std::map<std::string, Head, std::less<>> before;       // chain -> head before this batch

  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping and drained
      work.swap(queue_);
    }

    for (size_t begin = 0; begin < work.size(); begin += kMaxBatch) {
      const size_t end = std::min(work.size(), begin + kMaxBatch);
      Status result = store_.read_only_error();
      touched.clear();
      before.clear();
      if (result.is_ok()) {
        batch.Clear();
        rocksdb::Status put_status;
        for (size_t i = begin; i < end; ++i) {
          AuditEntry& e = work[i];
          std::string chain = chain_of(e.tenant);
          auto head = heads_.find(chain);
          if (head == heads_.end()) {
            head = heads_.emplace(chain, Head{0, std::string(kHashSize, '\0')}).first;
          }
          before.try_emplace(chain, head->second);
          make_record(e, head->second.seq + 1, head->second.hash, record);
          head->second.seq = record.seq();
          head->second.hash = record.hash();
          touched[chain] = record.seq();
          keys::audit_key(key, chain, record.seq());
          record.SerializeToString(&value);
          rocksdb::Status s = batch.Put(db_.audit, key, value);
          if (put_status.ok()) put_status = std::move(s);
        }
        if (put_status.ok()) put_status = db_.rocks->Write(wo, &batch);
        if (put_status.ok()) store_.note_written(batch.GetDataSize());
        if (!put_status.ok()) {
          store_.write_failed(put_status);
          result = store_.write_status();
          // Nothing of the batch is stored: the chains continue from their
          // old heads, or the next record would link to a phantom.
          for (auto& [chain, head] : before) heads_[chain] = head;
        }
      }
      {
        std::lock_guard lock(mu_);
        if (result.is_ok()) {
          for (auto& [chain, seq] : touched) written_seq_[chain] = seq;
        } else if (error_.is_ok()) {
          error_ = result;
        }
        processed_ += end - begin;
      }
      done_cv_.notify_all();
    }
    work.clear();
  }
}

template <typename F>
Status AuditLog::scan(std::string_view chain, AuditChainPartition partition, uint64_t after_seq,
                      F&& f) const {
  if (after_seq == UINT64_MAX) return {};  // nothing can follow
  std::string prefix;
  chain_prefix(prefix, chain, partition);
  internal::KeyRange range = internal::KeyRange::prefix(std::move(prefix));
  const size_t prefix_size = range.lower.size();
  keys::put_be64(range.lower, after_seq + 1);
  internal::BoundedIterator it(db_, db_.audit, std::move(range));
  v1::AuditRecord record;
  for (it.seek_to_first(); it.valid(); it.next()) {
    const uint64_t seq =
        it.key().size() == prefix_size + 8 ? keys::get_be64(it.key().data() + prefix_size) : 0;
    const bool parsed =
        it.key().size() == prefix_size + 8 && internal::parse_value(it.value(), record);
    if (!f(seq, parsed ? &record : nullptr)) break;
  }
  return it.status();
}

Result<std::vector<v1::AuditRecord>> AuditLog::query(std::string_view tenant, int64_t from_ms,
                                                     int64_t to_ms, std::string_view action,
                                                     size_t limit, uint64_t after_seq,
                                                     AuditChainPartition partition) const {
  std::vector<v1::AuditRecord> out;
  Status corrupt;
  Status s =
      scan(chain_of(tenant), partition, after_seq, [&](uint64_t seq, v1::AuditRecord* record) {
        if (record == nullptr) {
          corrupt = Status(StorageErrc::kCorrupt, "audit record " + std::to_string(seq) + " of " +
                                                      chain_of(tenant) + " (" +
                                                      describe(partition) + ") does not parse");
          return false;
        }
        if (in_range(record->time_ms(), from_ms, to_ms) &&
            action_matches(record->action(), action)) {
          out.push_back(*record);
        }
        return limit == 0 || out.size() < limit;
      });
  if (!s.is_ok()) return s;
  if (!corrupt.is_ok()) return corrupt;
  return out;
}

Result<AuditLog::VerifyReport> AuditLog::verify(std::string_view tenant,
                                                AuditChainPartition partition) const {
  const std::string chain = chain_of(tenant);
  uint64_t expected_last = 0;
  // Only the node's own chain is written by this process; a partition's
  // chain is written by whichever node led it (its tail: docs/cluster.md).
  if (!partition) {
    std::lock_guard lock(mu_);
    auto found = written_seq_.find(chain);
    if (found != written_seq_.end()) expected_last = found->second;
  }
  VerifyReport report;
  report.chains = 1;
  uint64_t expected = 1;
  std::string prev(kHashSize, '\0');
  auto broken = [&](uint64_t seq, std::string reason) {
    report.ok = false;
    report.first_broken_seq = seq;
    report.reason = std::move(reason);
    report.broken_partition = partition;
    return false;
  };
  Status s = scan(chain, partition, 0, [&](uint64_t seq, v1::AuditRecord* record) {
    ++report.records;
    if (seq != expected) {
      return broken(expected, "record " + std::to_string(expected) + " is missing (next is " +
                                  std::to_string(seq) + ")");
    }
    if (record == nullptr) return broken(seq, "record does not parse");
    if (record->seq() != seq) {
      return broken(seq, "record claims seq " + std::to_string(record->seq()));
    }
    if (chain_of(record->tenant()) != chain) {
      return broken(seq, "record belongs to tenant '" + record->tenant() + "'");
    }
    if (record->prev_hash() != prev) {
      return broken(seq, "prev_hash " + hex_prefix(record->prev_hash()) +
                             "... does not match the hash of the record before");
    }
    if (compute_hash(*record) != record->hash()) {
      return broken(seq, "hash mismatch: the record was modified");
    }
    prev = record->hash();
    ++expected;
    return true;
  });
  if (!s.is_ok()) return s;
  if (report.ok && expected - 1 < expected_last) {
    broken(expected, "records " + std::to_string(expected) + ".." + std::to_string(expected_last) +
                         " are missing (the tail was deleted)");
  }
  return report;
}

Result<AuditLog::VerifyReport> AuditLog::verify_all(std::string_view tenant) const {
  auto chains = this->chains(tenant);
  if (!chains.ok()) return chains.status();
  if (chains->empty()) return verify(tenant);  // no record yet (or a deleted tail: verify says)
  VerifyReport total;
  for (const AuditChainPartition& partition : chains.value()) {
    auto one = verify(tenant, partition);
    if (!one.ok()) return one.status();
    total.records += one->records;
    ++total.chains;
    if (!one->ok) {
      total.ok = false;
      total.first_broken_seq = one->first_broken_seq;
      total.broken_partition = one->broken_partition;
      total.reason = describe(partition) + ": " + one->reason;
      break;
    }
  }
  return total;
}

Result<AuditLog::Counts> AuditLog::report(std::string_view tenant, int64_t from_ms,
                                          int64_t to_ms) const {
  auto chains = this->chains(tenant);
  if (!chains.ok()) return chains.status();
  Counts counts;
  for (const AuditChainPartition& partition : chains.value()) {
    Status s = scan(chain_of(tenant), partition, 0, [&](uint64_t, v1::AuditRecord* record) {
      if (record != nullptr && in_range(record->time_ms(), from_ms, to_ms)) {
        ++counts[{record->action(), record->outcome()}];
      }
      return true;
    });
    if (!s.is_ok()) return s;
  }
  return counts;
}

Result<std::vector<AuditChainPartition>> AuditLog::chains(std::string_view tenant) const {
  const std::string chain = chain_of(tenant);
  std::vector<AuditChainPartition> out;
  std::string prefix;
  keys::audit_prefix(prefix, chain);
  {
    internal::BoundedIterator it(db_, db_.audit, internal::KeyRange::prefix(prefix));
    it.seek_to_first();
    if (it.valid()) out.emplace_back(std::nullopt);
    if (Status st = it.status(); !st.is_ok()) return st;
  }
  // The partition chains: one seek per partition that has any "p" row, and
  // one more for each that holds this tenant's chain (a store holds the
  // partitions it replicates, a handful of seeks per verify).
  internal::BoundedIterator it(db_, db_.audit, internal::KeyRange::prefix("p"));
  uint32_t p = 0;
  while (keys::valid_partition(p)) {
    keys::partition_audit_prefix(prefix, p, chain);
    it.seek(prefix);
    if (!it.valid()) break;
    const rocksdb::Slice key = it.key();
    if (key.size() < keys::kPartitionAuditHeader) break;  // not a "p" row of ours: stop
    const uint32_t found = keys::get_be16(key.data() + 1);
    if (found == p && key.starts_with(prefix)) {
      out.emplace_back(p);
      ++p;
    } else {
      p = found > p ? found : p + 1;
    }
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  return out;
}

// ---- AuditChainer

AuditChainer::AuditChainer(const Store& store, uint32_t partition)
    : db_(internal::db_of(store)), partition_(partition) {}

Result<AuditChainer::Head*> AuditChainer::head_of(const std::string& chain) {
  auto found = heads_.find(chain);
  if (found != heads_.end()) return &found->second;
  Head head{0, std::string(kHashSize, '\0')};
  std::string prefix;
  keys::partition_audit_prefix(prefix, partition_, chain);
  internal::BoundedIterator it(db_, db_.audit, internal::KeyRange::prefix(prefix));
  it.seek_to_last();
  if (it.valid()) {
    if (it.key().size() == prefix.size() + 8) {
      head.seq = keys::get_be64(it.key().data() + prefix.size());
    }
    v1::AuditRecord record;
    // A damaged head does not stop the chain (as AuditLog::open): verify
    // reports the broken link.
    if (internal::parse_value(it.value(), record) && record.hash().size() == kHashSize) {
      head.hash = record.hash();
    }
  }
  if (Status st = it.status(); !st.is_ok()) return st;
  return &heads_.emplace(chain, std::move(head)).first->second;
}

Result<uint64_t*> AuditChainer::mark_of(std::string_view sender) {
  auto found = marks_.find(sender);
  if (found != marks_.end()) return &found->second;
  std::string key;
  keys::audit_mark_key(key, partition_, sender);
  auto raw = db_.get(db_.audit, key);
  if (!raw.ok()) return raw.status();
  uint64_t mark = 0;
  if (raw->has_value() && (*raw)->size() == 8) mark = keys::get_be64((*raw)->data());
  return &marks_.emplace(std::string(sender), mark).first->second;
}

Result<std::vector<AuditRow>> AuditChainer::stamp(std::vector<AuditEntry> entries,
                                                  std::string_view sender, uint64_t first_counter) {
  if (poisoned_) {
    return Status(Errc::kUnavailable,
                  "the audit chains of partition " + std::to_string(partition_) +
                      " stopped after a failed write; its next leader continues them");
  }
  size_t skip = 0;
  uint64_t* mark = nullptr;
  if (!sender.empty()) {
    auto m = mark_of(sender);
    if (!m.ok()) return m.status();
    mark = m.value();
    if (*mark >= first_counter) {
      skip = static_cast<size_t>(std::min<uint64_t>(*mark - first_counter + 1, entries.size()));
    }
  }
  std::vector<AuditRow> rows;
  if (skip == entries.size()) return rows;
  rows.reserve(entries.size() - skip + 1);
  v1::AuditRecord record;
  for (size_t i = skip; i < entries.size(); ++i) {
    AuditEntry& e = entries[i];
    if (e.time_ms == 0) e.time_ms = now_ms();
    const std::string chain = AuditLog::chain_of(e.tenant);
    auto head = head_of(chain);
    if (!head.ok()) {
      poisoned_ = true;  // heads of this call's earlier links moved already
      return head.status();
    }
    make_record(e, head.value()->seq + 1, head.value()->hash, record);
    head.value()->seq = record.seq();
    head.value()->hash = record.hash();
    AuditRow& row = rows.emplace_back();
    keys::partition_audit_key(row.key, partition_, chain, record.seq());
    record.SerializeToString(&row.value);
  }
  if (mark != nullptr) {
    *mark = first_counter + entries.size() - 1;
    AuditRow& row = rows.emplace_back();
    keys::audit_mark_key(row.key, partition_, sender);
    keys::put_be64(row.value, *mark);
  }
  return rows;
}

}  // namespace yantra::storage
