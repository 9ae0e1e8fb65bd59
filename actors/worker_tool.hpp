// A tool served by worker processes (kind "worker"): one per tool id a
// tenant's workers registered (api/routes/workers.cpp). A call becomes a
// task of the broker (actors/task_broker.hpp) and its tool thread waits for
// the outcome — blocking is what tool threads are for (actors/tools.hpp), and
// max_concurrency() of them match the broker's concurrency limit for the
// tool, so a call beyond the limit waits in the tool pool's queue.
//
// The wait is bounded by the step's timeout when it has one (the task is
// withdrawn then: a queued task is not dispatched, a leased one's result is
// dropped) and otherwise by the broker: a lost lease re-dispatches, the last
// lost lease fails with "worker_lost". With no worker polling at all the
// task waits in its queue: a worker that comes back later serves it.
//
// The worker's output is checked against the action's output_schema (when
// it has one): a worker breaking its own contract fails the step with
// "invalid_output" (not retriable: the same worker would answer the same).
#pragma once

#include <atomic>
#include <memory>

#include "actors/task_broker.hpp"
#include "actors/tools.hpp"

namespace yantra {

class WorkerTool : public Tool {
 public:
  WorkerTool(std::shared_ptr<TaskBroker> broker, ToolSpec spec, size_t max_concurrency);
  ToolSpec spec() const override { return spec_; }
  size_t max_concurrency() const override { return max_concurrency_; }
  ToolResult invoke(const ToolCall& call) override;
  // The tool was replaced or removed: calls waiting now give up at once
  // ("tool_replaced", retriable), so its pool's threads can be joined.
  void retire() { retired_.store(true); }

 private:
  std::shared_ptr<TaskBroker> broker_;
  ToolSpec spec_;
  size_t max_concurrency_;
  std::atomic<bool> retired_{false};
};

}  // namespace yantra
