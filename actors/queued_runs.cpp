// QueuedRuns (actors/internal/queued_runs.hpp): the run queue's side of the
// engine. The rows are storage::RunQueue's; the slots are Admission's.
#include "actors/internal/queued_runs.hpp"

#include <spdlog/spdlog.h>

#include "actors/internal/admission.hpp"
#include "base/time.hpp"
#include "runtime/ids.hpp"
#include "storage/run_queue.hpp"

namespace yantra::detail {

void QueuedRuns::enqueue(const std::string& execution_id, const RunRequest& request, DoneFn done) {
  const int64_t now = now_ms();
  const uint32_t p = partition_of_run(execution_id);
  v1::QueuedRun run;
  run.set_execution_id(execution_id);
  run.set_tenant(request.tenant);
  run.set_flow_id(request.flow_id);
  run.set_flow_version(request.flow_version);
  run.set_input_json(dump_canonical(request.input));
  run.set_idempotency_key(request.idempotency_key);
  run.set_enqueued_ms(now);
  v1::ExecutionSummary sum;
  sum.set_execution_id(execution_id);
  sum.set_tenant(request.tenant);
  sum.set_flow_id(request.flow_id);
  sum.set_flow_version(request.flow_version);
  sum.set_status("queued");
  sum.set_created_ms(now);
  sum.set_updated_ms(now);
  sum.set_partition(p);
  // Not counted any more once the write failed (admit() counted it).
  auto uncount = [this, tenant = request.tenant, flow_id = request.flow_id] {
    admission_.count_queued(tenant, flow_id, 0, -1);
  };
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto prepared = queue_.prepare_enqueue(std::move(run), sum, p);
    if (!prepared.ok()) {
      refused = prepared.status();
    } else {
      refused = append_(std::move(prepared.value()), [uncount, done](const Status& s) {
        if (!s.is_ok()) uncount();
        done(s);
      });
    }
  }
  if (!refused.is_ok()) {
    uncount();
    done(refused);
  }
}

uint32_t QueuedRuns::partition_of_run(const std::string& execution_id) const {
  return partition_of(execution_id, partition_count_);
}

void QueuedRuns::drain(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  while (admission_.reserve_dequeue(tenant, flow_id)) {
    // Rows already handed to a start stay until its first batch commits;
    // the cursor of their partition skips them. Rows of partitions not led
    // here are their leader's.
    auto runs = queue_.runs(tenant, flow_id, 1024);
    const v1::QueuedRun* next = nullptr;
    uint32_t next_partition = 0;
    if (runs.ok()) {
      for (const auto& run : runs.value()) {
        const uint32_t p = partition_of_run(run.execution_id());
        if (led_ && !led_(p)) continue;
        if (cancelling_.count(run.execution_id()) > 0) continue;
        if (run.queue_seq() > admission_.cursor(tenant, flow_id, p)) {
          next = &run;
          next_partition = p;
          break;
        }
      }
    } else {
      spdlog::error("queue of {}/{}: {}", tenant, flow_id, runs.status().to_string());
    }
    if (next == nullptr) {
      admission_.release_dequeue(tenant, flow_id);
      return;
    }
    admission_.dispatched(tenant, flow_id, next_partition, next->queue_seq());
    start(*next);
  }
}

void QueuedRuns::start(const v1::QueuedRun& run) {
  auto flow = resolve_(run.tenant(), run.flow_id(), run.flow_version());
  auto input = parse_json_text(run.input_json());
  if (!flow.ok() || !input.ok()) {
    // The version was stored when the run was queued, so this is a damaged
    // store; the run stays queued and visible rather than vanishing.
    spdlog::error("queued execution {} cannot start: {}", run.execution_id(),
                  (flow.ok() ? input.status() : flow.status()).to_string());
    admission_.abandon(run.tenant(), run.flow_id());
    return;
  }
  StartCommand cmd;
  cmd.execution_id = run.execution_id();
  cmd.flow = flow.value().second;
  cmd.request.tenant = run.tenant();
  cmd.request.flow_id = run.flow_id();
  cmd.request.flow_version = run.flow_version();
  cmd.request.input = std::move(input.value());
  cmd.request.idempotency_key = run.idempotency_key();
  cmd.delete_key = storage::RunQueue::row_key(run);
  cmd.started = [this, tenant = run.tenant(), flow_id = run.flow_id()](Result<std::string> r) {
    if (!r.ok()) admission_.abandon(tenant, flow_id);
  };
  dispatch_(std::move(cmd));
}

void QueuedRuns::cancel(const v1::ExecutionSummary& summary, const std::string& reason,
                        DoneFn done) {
  auto runs = queue_.runs(summary.tenant(), summary.flow_id(), SIZE_MAX);
  if (!runs.ok()) return done(runs.status());
  const v1::QueuedRun* found = nullptr;
  for (const auto& run : runs.value()) {
    if (run.execution_id() == summary.execution_id()) found = &run;
  }
  const uint32_t p = partition_of_run(summary.execution_id());
  const Status leaving(Errc::kConflict, "execution " + summary.execution_id() +
                                            " is leaving the queue and starting; cancel it again");
  if (found == nullptr) return done(leaving);
  const v1::QueuedRun run = *found;
  v1::ExecutionSummary cancelled = summary;
  cancelled.set_status("cancelled");
  cancelled.set_updated_ms(now_ms());
  auto prepared = queue_.prepare_cancel(run, cancelled, p);
  if (!prepared.ok()) return done(prepared.status());
  Status refused;
  {
    // A drain hands rows to starts under mu_: past the cursor, this run is
    // one of them; marked, no drain picks it until the cancel is decided.
    std::lock_guard<std::mutex> lock(mu_);
    if (run.queue_seq() <= admission_.cursor(run.tenant(), run.flow_id(), p) ||
        !cancelling_.insert(run.execution_id()).second) {
      return done(leaving);
    }
    refused =
        append_(std::move(prepared.value()), [this, run, summary, reason, done](const Status& s) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            cancelling_.erase(run.execution_id());
          }
          if (s.is_ok()) {
            admission_.forget_queued(run.tenant(), run.flow_id());
            notify_(ExecutionResult{summary.execution_id(), "cancelled", nullptr,
                                    json{{"code", "cancelled"}, {"message", reason}},
                                    summary.tenant(), summary.flow_id()});
          }
          done(s);
        });
    if (!refused.is_ok()) cancelling_.erase(run.execution_id());
  }
  if (!refused.is_ok()) done(refused);
}

void QueuedRuns::recover() {
  recover_where({});
}

void QueuedRuns::recover(uint32_t partition) {
  if (Status st = queue_.reseed(); !st.is_ok()) {
    spdlog::error("queue of partition {}: {}", partition, st.to_string());
  }
  recover_where([partition](uint32_t p) { return p == partition; });
}

void QueuedRuns::recover_where(const std::function<bool(uint32_t)>& which) {
  auto flows_with_queue = queue_.queued_flows();
  if (!flows_with_queue.ok()) {
    spdlog::error("recovery of run queues: {}", flows_with_queue.status().to_string());
    return;
  }
  for (const auto& [tenant, flow_id] : flows_with_queue.value()) {
    auto runs = queue_.runs(tenant, flow_id, SIZE_MAX);
    if (!runs.ok()) continue;
    int64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);  // no drain between the reset and the count
      for (const auto& run : runs.value()) {
        if (!which || which(partition_of_run(run.execution_id()))) ++n;
      }
      if (which) {
        for (uint32_t p = 0; p < partition_count_; ++p) {
          if (which(p)) admission_.reset_cursor(tenant, flow_id, p);
        }
      }
      if (n == 0) continue;
      auto flow = resolve_(tenant, flow_id, 0);
      const uint32_t limit = flow.ok() ? flow.value().second->max_concurrent_executions : 0;
      admission_.count_queued(tenant, flow_id, limit, n);
    }
    drain(tenant, flow_id);
  }
}

void QueuedRuns::release(uint32_t partition) {
  auto flows_with_queue = queue_.queued_flows();
  if (!flows_with_queue.ok()) {
    spdlog::error("release of run queues of partition {}: {}", partition,
                  flows_with_queue.status().to_string());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [tenant, flow_id] : flows_with_queue.value()) {
    auto runs = queue_.runs(tenant, flow_id, SIZE_MAX);
    if (!runs.ok()) continue;
    // Rows at or below the cursor were handed to a start: counted as
    // running, not queued, and given back by that start's failure.
    const uint64_t cursor = admission_.cursor(tenant, flow_id, partition);
    int64_t n = 0;
    for (const auto& run : runs.value()) {
      if (partition_of_run(run.execution_id()) == partition && run.queue_seq() > cursor) ++n;
    }
    if (n > 0) admission_.count_queued(tenant, flow_id, 0, -n);
    admission_.reset_cursor(tenant, flow_id, partition);
  }
}

}  // namespace yantra::detail
