// Admission control: which run starts now, which waits in its flow's queue,
// which is refused (and for how long). One instance per engine, shared by
// every caller of Engine::start (HTTP threads, triggers, dequeues).
//
// What it counts, and why in memory: a tenant's running executions and a
// limited flow's running and queued runs change on every start and end; a
// store write per change would cost the hot path a write for a number the
// log already implies. So the counts live here and are rebuilt at open from
// the active executions and the queue rows. Monthly usage is derived from
// the listing index (execution ids sort by creation time), counted once per
// tenant and month, then incremented in memory.
//
// In a cluster each node counts the executions of the partitions it leads,
// so a tenant's concurrency limit is shared: this node admits its share,
// ceil(limit × the fraction of partitions it leads) (`share`), and the
// shares of all nodes add up to the limit (plus at most one per node from
// rounding), since every partition has one leader (docs/cluster.md,
// "Limits and quotas"). The monthly quota likewise: what the listing index
// held when the month was first counted here is every node's (each node
// holds the listing rows of the partitions it replicates), and of what is
// left this node admits its share.
//
// Fast path: a flow without limits and a tenant without limits cost one
// mutex and two hash lookups per start.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/result.hpp"
#include "runtime/flow.hpp"
#include "storage/auth_store.hpp"
#include "storage/execution_index.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::detail {

class Admission {
 public:
  // The fraction (0..1) of a tenant's concurrency limit this node admits:
  // 1 on a single node; in a cluster the fraction of partitions it leads.
  using ShareFn = std::function<double()>;

  // Tenant rows (auth) and the listing index (monthly usage); both must
  // outlive the Admission. `share` null = 1.
  Admission(storage::AuthStore& auth, const storage::ExecutionIndex& executions, ShareFn share = {})
      : auth_(auth), executions_(executions), share_(std::move(share)) {}

  // Tenant rows, cached (nullopt = no row: active and unlimited).
  Result<std::optional<v1::Tenant>> tenant(const std::string& id);
  Status put_tenant(const v1::Tenant& tenant);
  Status delete_tenant(const std::string& id);

  enum class Verdict { kStart, kQueue };
  // Decides for one run of `flow` and counts it (running or queued) when the
  // answer is ok. Errors: "tenant_suspended", "rate_limited",
  // "quota_exceeded", each with a retry hint.
  Result<Verdict> admit(const std::string& tenant, const Flow& flow, int64_t now_ms);
  // For executions that bypass a flow's queue and rate limits but not the
  // tenant's: forks (a new execution: counts for the month too) and retries
  // (the same execution running again). Counts it as running when ok.
  Status admit_extra(const std::string& tenant, const std::string& flow_id, bool new_execution,
                     int64_t now_ms);
  // An admitted start that did not happen (its first batch failed).
  void abandon(const std::string& tenant, const std::string& flow_id);
  // An execution became running without admit(): recovery, retry, fork.
  void count_running(const std::string& tenant, const std::string& flow_id);
  // An execution ended. True when its flow now has a free slot and queued
  // runs: the caller should dequeue.
  bool finished(const std::string& tenant, const std::string& flow_id);

  // The queue side, for the dequeuer. Recovery registers queued runs found
  // in the store with the flow's limit.
  void count_queued(const std::string& tenant, const std::string& flow_id, uint32_t limit,
                    int64_t n);
  // Reserves a slot for the oldest queued run, if the flow has both; the
  // caller starts the oldest run with queue_seq > cursor() of its partition
  // and then calls dispatched(seq). False = nothing to do. The cursor is
  // per partition of the run's execution id, so a node that leads only
  // some partitions skips the others' rows without losing them, and a
  // partition led again starts its rows from the head (reset_cursor).
  bool reserve_dequeue(const std::string& tenant, const std::string& flow_id);
  void release_dequeue(const std::string& tenant, const std::string& flow_id);  // nothing found
  uint64_t cursor(const std::string& tenant, const std::string& flow_id, uint32_t partition);
  void dispatched(const std::string& tenant, const std::string& flow_id, uint32_t partition,
                  uint64_t queue_seq);
  void reset_cursor(const std::string& tenant, const std::string& flow_id, uint32_t partition);
  // A queued run was cancelled (its row is gone): no longer counted.
  void forget_queued(const std::string& tenant, const std::string& flow_id);

  struct Usage {
    int64_t running = 0;
    int64_t queued = 0;
  };
  Usage usage(const std::string& tenant);

 private:
  struct FlowSlots {
    uint32_t limit = 0;  // from the newest version admitted
    int64_t running = 0;
    int64_t queued = 0;
    // Highest queue_seq handed to a start, by partition of the run.
    std::unordered_map<uint32_t, uint64_t> cursors;
    int64_t minute_start = 0, minute_count = 0;
    int64_t hour_start = 0, hour_count = 0;
  };
  struct TenantCounts {
    int64_t running = 0;
    int64_t queued = 0;
    int64_t month_start = -1;  // UTC ms of the month `month_count` counts
    int64_t month_count = 0;
    int64_t month_base = 0;  // month_count as the listing index said (all nodes' starts)
  };
  const v1::Tenant* cached_tenant(const std::string& id, Status* error);  // mu_ held
  Status check_month(const std::string& tenant, TenantCounts& counts, uint64_t limit,
                     int64_t now_ms);  // mu_ held
  Status check_tenant(const std::string& tenant, const v1::Tenant* t, TenantCounts& counts,
                      bool new_execution, int64_t now_ms);  // mu_ held

  storage::AuthStore& auth_;
  const storage::ExecutionIndex& executions_;
  const ShareFn share_;
  std::mutex mu_;
  std::unordered_map<std::string, std::optional<v1::Tenant>> tenants_;
  std::unordered_map<std::string, TenantCounts> counts_;
  std::unordered_map<std::string, FlowSlots> flows_;  // tenant \0 flow_id
};

}  // namespace yantra::detail
