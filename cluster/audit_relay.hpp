// AuditRelay: how a cluster node's API audit records reach the tenant's
// chain (docs/cluster.md, "Audit trail").
//
// A tenant's API records (admin writes, execution commands, refusals) chain
// in one partition, home(tenant) = partition_of_key(tenant, "", P), and are
// committed through that partition's replicated log by its leader
// (Engine::append_audit), so every replica holds the same chain. The node
// that handled the request is usually not that leader: it queues the record
// here, and one thread sends each partition's queue, in order and one batch
// at a time, to the partition's leader (the transport's "audit" service;
// this node's own engine when it leads).
//
// Exactly once: a batch whose answer is lost (a timeout, the leader died
// after committing it) is resent, to the same or the next leader. Each
// entry carries (sender, counter) — sender = node id + a random incarnation,
// counters dense per partition queue — and the partition records each
// sender's high-water mark in the same batch as the records, so the
// leader skips what was already committed, across failovers too. Why not
// let the partition leader record the resource changes it sees from the
// etcd mirror instead: it would miss what never reaches etcd (refusals,
// failed validation, execution commands) and who made the change.
//
// What it does not guarantee: records queued on a node that dies before
// sending them are lost (as a single node loses records not yet written when
// it crashes); past `max_pending` queued records new ones are dropped and
// counted (yantra_audit_dropped_total) rather than grow without bound
// while a partition has no leader.
//
// Threads: append() from any thread, never blocks. serve() from the
// transport's threads: it queues the work for the relay's thread (append_audit
// may read the store). flush() blocks (the admin's pool).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/admin.hpp"
#include "base/result.hpp"

namespace yantra::cluster {

class ClusterNode;

struct AuditRelayOptions {
  size_t max_batch = 512;       // entries per batch sent
  size_t max_pending = 100000;  // queued entries, all partitions
  std::chrono::milliseconds retry{200};
  std::chrono::milliseconds rpc_timeout{2000};
};

class AuditRelay {
 public:
  // Where the relay sends a partition's batch: the leader's node id ("" =
  // this node), nullopt while none is known. Sends `payload` to that
  // node's "audit" service.
  struct Routes {
    std::function<std::optional<std::string>(uint32_t partition)> leader_of;
    std::function<void(const std::string& node, std::string payload,
                       std::chrono::milliseconds timeout,
                       std::function<void(Result<std::string>)> done)>
        send;
  };

  // `engine` (with `partitions` partitions) outlives the relay.
  AuditRelay(Engine& engine, uint32_t partitions, std::string node_id, Routes routes,
             AuditRelayOptions options = {});
  // Over a ClusterNode (leader_of, request).
  static std::unique_ptr<AuditRelay> over(Engine& engine, ClusterNode& node,
                                          AuditRelayOptions options = {});
  ~AuditRelay();  // stop()
  // Stops sending and serving: joins the thread and waits for the batches
  // in flight; what is still queued is dropped (logged), later append()s
  // are ignored and serve() answers "unavailable". Call before the node the
  // routes use goes away (flush() first to send what is queued).
  void stop();
  AuditRelay(const AuditRelay&) = delete;
  AuditRelay& operator=(const AuditRelay&) = delete;

  static uint32_t home_partition(const std::string& tenant, uint32_t partitions);

  void append(AuditEntry entry);
  // Until every entry appended before the call is committed (true), or
  // `timeout` (false).
  bool flush(std::chrono::milliseconds timeout);
  // The "audit" service: records a batch another node relayed, if this
  // node leads its partition; `reply` gets "" or the error.
  void serve(std::string payload, std::function<void(Result<std::string>)> reply);

  // A batch as it travels (exposed for tests): partition, sender, first
  // counter and the entries.
  static std::string encode(uint32_t partition, const std::string& sender, uint64_t first,
                            const std::vector<AuditEntry>& entries);
  struct Decoded {
    uint32_t partition = 0;
    std::string sender;
    uint64_t first = 0;
    std::vector<AuditEntry> entries;
  };
  static Result<Decoded> decode(std::string_view payload);

 private:
  struct Queue {
    std::deque<AuditEntry> entries;
    uint64_t front_counter = 1;  // counter of entries.front()
    bool in_flight = false;
    std::chrono::steady_clock::time_point retry_at{};
  };
  struct Incoming {
    std::string payload;
    std::function<void(Result<std::string>)> reply;
  };
  void run();
  void dispatch(uint32_t p, std::vector<AuditEntry> batch, uint64_t first);
  void settle(uint32_t p, size_t count, const Status& st);

  Engine& engine_;
  const uint32_t partitions_;
  const std::string sender_;
  const Routes routes_;
  const AuditRelayOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;          // the thread's work
  std::condition_variable settled_cv_;  // flush()
  std::vector<Queue> queues_;
  std::deque<Incoming> incoming_;
  size_t pending_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace yantra::cluster
