// AuditLog: who did what, per tenant, as a tamper-evident hash chain (since
// 0.3). Every record carries the hash of its predecessor, so changing,
// deleting or reordering a stored record breaks the chain at that point and
// verify() names the seq. (A chain cannot prove its own tail was not cut off
// while the node was down: anchor the latest hash elsewhere for that.)
//
// Rows, in the `audit` column family:
//   "c" | chain | 0x00 | seq(be64) -> yantra.v1.AuditRecord
// where chain is the tenant id, or "-" for entries without a valid tenant
// (failed authentication). Seqs are dense from 1 per chain.
//
// The hash of a record, "format 1" (all integers big-endian):
//   hash = SHA-256( prev_hash                    32 bytes; 32 zero bytes for seq 1
//                 || seq                         8 bytes
//                 || time_ms                     8 bytes (two's complement)
//                 || for each of tenant, key_id, role, action, resource,
//                    outcome, request_id, detail, in this order:
//                      length 4 bytes || the field's bytes )
// An own canonical encoding rather than protobuf bytes: it is exact to
// document, and a later field added to AuditRecord cannot change the bytes
// an older verifier hashes.
//
// append() never blocks on I/O: entries are queued and one background thread
// assigns seqs, hashes and writes each drained batch as one WriteBatch
// (synced unless the store is Durability::kAsync). After a write error the
// store is read-only and the log drops entries; status() reports it.
//
// In a cluster (since 0.6) a tenant has one chain per partition, written in
// the partition's replicated batches rather than by this log's thread:
//   "p" | partition(be16) | chain | 0x00 | seq(be64) -> yantra.v1.AuditRecord
// The partition's leader stamps seq and hash (AuditChainer below) and hands
// the rows to its PartitionLog in a WriteRequest; every replica writes the
// leader's bytes when it applies the batch, so a chain is identical on every
// replica and survives failover with the log. Same hash ("format 1").
// The queries and verify() take the chain's partition: nullopt = the node's
// own chain ("c" rows: the single node's, where the whole tenant is one
// chain); chains() lists a tenant's chains, so a caller walks them all.
//
// A relay (a node sending entries to a partition's leader) may resend a
// batch whose answer it lost; its entries carry (sender, counter) and the
// partition keeps each sender's high-water mark in the same batch as the
// records ("w" | partition(be16) | sender -> be64), so a resent entry is
// recorded once, across failovers too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

struct AuditEntry {
  int64_t time_ms = 0;  // 0 = now (wall clock at append)
  std::string tenant;   // "" = no tenant (chain "-")
  std::string key_id;
  std::string role;
  std::string action;  // dotted, e.g. "flow.put"
  std::string resource;
  std::string outcome;
  std::string request_id;
  std::string detail;
};

// A chain of a tenant: the node's own (nullopt) or partition p's.
using AuditChainPartition = std::optional<uint32_t>;

class AuditLog {
 public:
  struct VerifyReport {
    bool ok = true;
    uint64_t records = 0;           // records examined
    uint64_t first_broken_seq = 0;  // 0 when ok
    std::string reason;
    // verify_all(): the chains walked, and the broken one's partition
    // (nullopt: the node's own chain, or none broken).
    uint64_t chains = 0;
    AuditChainPartition broken_partition;
  };
  // (action, outcome) -> count
  using Counts = std::map<std::pair<std::string, std::string>, uint64_t>;

  // Finds the head (last seq and hash) of every chain and starts the writer.
  // The log must not outlive `store`.
  static Result<std::unique_ptr<AuditLog>> open(Store& store);
  ~AuditLog();  // flushes, then joins the writer
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Thread-safe; never blocks on I/O.
  void append(AuditEntry entry);
  // Returns once every entry appended before the call is written (or dropped
  // after a write error).
  void flush();
  // The first write error, ok while none happened.
  Status status() const;

  // Records of one chain with time_ms in [from_ms, to_ms) (to_ms 0 = no upper
  // bound) whose action equals `action`, or starts with it when it ends in
  // '.' ("" = every action), seq > after_seq (the cursor: pass the last seq
  // returned), oldest first, at most `limit` (0 = no limit). tenant "" reads
  // chain "-".
  Result<std::vector<v1::AuditRecord>> query(std::string_view tenant, int64_t from_ms,
                                             int64_t to_ms, std::string_view action, size_t limit,
                                             uint64_t after_seq,
                                             AuditChainPartition partition = {}) const;
  // Walks one chain: every record must parse, belong to the chain, have the
  // next seq, link to its predecessor's hash and hash to its own `hash`; the
  // node's own chain must reach the last seq this process wrote.
  Result<VerifyReport> verify(std::string_view tenant, AuditChainPartition partition = {}) const;
  // verify() of every chain of the tenant (chains() order), stopping at the
  // first broken one; `records` counts all chains walked.
  Result<VerifyReport> verify_all(std::string_view tenant) const;
  // Counts of records with time_ms in [from_ms, to_ms) (to_ms 0 = no bound),
  // over every chain of the tenant.
  Result<Counts> report(std::string_view tenant, int64_t from_ms, int64_t to_ms) const;
  // The chains the tenant has in this store: its own first (when it has
  // records), then its partition chains in partition order.
  Result<std::vector<AuditChainPartition>> chains(std::string_view tenant) const;

  // The chain a tenant's records go to: the tenant, or "-" for "" and for
  // ids that cannot be part of a key (containing 0x00).
  static std::string chain_of(std::string_view tenant);
  // The record's hash per "format 1" above (its own `hash` field ignored).
  static std::string compute_hash(const v1::AuditRecord& record);

 private:
  explicit AuditLog(Store& store) : store_(store), db_(internal::db_of(store)) {}
  void run();
  // Calls f(record) for every record of a chain with seq > after_seq, in
  // order, until f returns false.
  template <typename F>
  Status scan(std::string_view chain, AuditChainPartition partition, uint64_t after_seq,
              F&& f) const;

  struct Head {
    uint64_t seq = 0;
    std::string hash;  // 32 bytes
  };

  Store& store_;
  const internal::Db& db_;
  std::map<std::string, Head, std::less<>> heads_;  // writer thread only (after open)
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<AuditEntry> queue_;  // swapped out whole by the writer
  uint64_t appended_ = 0;          // entries ever queued
  uint64_t processed_ = 0;         // entries written (or dropped after an error)
  std::map<std::string, uint64_t, std::less<>> written_seq_;  // last durable seq per chain
  Status error_;
  bool stopping_ = false;
  std::thread thread_;
};

struct AuditRow;  // partition_log.hpp

// The audit chains of one partition as its leader extends them (cluster).
// One per leadership of the partition: the heads are read from the store on
// first use of each chain (the store holds every committed batch of the
// partition once recovery is done, and every later link of the chain goes
// through this object), then kept in memory ahead of the store while
// batches are in flight.
//
// Not thread-safe: the owner serializes stamp() and hands the rows to the
// partition's PartitionLog before the next stamp(), so links reach the log
// in seq order. After an append of stamped rows fails, call poison(): the
// heads may name links that will never be stored, so every later stamp()
// is refused ("unavailable") until a new leadership makes a new chainer.
class AuditChainer {
 public:
  AuditChainer(const Store& store, uint32_t partition);

  // The rows recording `entries` as the next links of their tenants'
  // chains in this partition, plus, with a `sender`, its high-water mark.
  // Entry i of a sender has counter first_counter + i; entries at or below
  // the sender's mark are already recorded (a resent batch) and skipped.
  // An empty result: nothing left to record.
  Result<std::vector<AuditRow>> stamp(std::vector<AuditEntry> entries, std::string_view sender = {},
                                      uint64_t first_counter = 0);
  void poison() { poisoned_.store(true); }  // any thread
  uint32_t partition() const { return partition_; }

 private:
  struct Head {
    uint64_t seq = 0;
    std::string hash;
  };
  Result<Head*> head_of(const std::string& chain);
  Result<uint64_t*> mark_of(std::string_view sender);

  const internal::Db& db_;
  const uint32_t partition_;
  std::atomic<bool> poisoned_{false};
  std::map<std::string, Head, std::less<>> heads_;
  std::map<std::string, uint64_t, std::less<>> marks_;
};

}  // namespace yantra::storage
