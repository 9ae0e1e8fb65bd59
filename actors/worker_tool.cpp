// See worker_tool.hpp. The wait polls a flag every 100 ms besides the
// outcome, so a retired tool's threads return within that.
#include "actors/worker_tool.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "runtime/json_schema.hpp"

namespace yantra {

WorkerTool::WorkerTool(std::shared_ptr<TaskBroker> broker, ToolSpec spec, size_t max_concurrency)
    : broker_(std::move(broker)),
      spec_(std::move(spec)),
      max_concurrency_(std::max<size_t>(1, max_concurrency)) {
  spec_.kind = "worker";
}

ToolResult WorkerTool::invoke(const ToolCall& call) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<TaskOutcome> outcome;
  };
  auto wait = std::make_shared<Wait>();
  TaskRequest req;
  req.tenant = call.tenant;
  req.tool_id = spec_.id;
  req.action = call.action;
  req.idempotency_key = call.idempotency_key;
  req.execution_id = call.execution_id;
  req.path = call.path;
  req.parameters = call.parameters;
  const uint64_t ticket = broker_->submit(std::move(req), [wait](TaskOutcome o) {
    std::lock_guard<std::mutex> lock(wait->mu);
    wait->outcome = std::move(o);
    wait->cv.notify_all();
  });
  using Clock = std::chrono::steady_clock;
  const auto deadline = call.timeout_ms > 0
                            ? Clock::now() + std::chrono::milliseconds(call.timeout_ms)
                            : Clock::time_point::max();
  std::unique_lock<std::mutex> lock(wait->mu);
  while (!wait->outcome) {
    const auto slice = Clock::now() + std::chrono::milliseconds(100);
    wait->cv.wait_until(lock, std::min(slice, deadline));
    if (wait->outcome) break;
    const bool timed_out = Clock::now() >= deadline;
    if (!timed_out && !retired_.load()) continue;
    lock.unlock();
    const bool withdrawn = broker_->withdraw(ticket);
    lock.lock();
    if (!withdrawn) {
      // The outcome is being delivered right now.
      wait->cv.wait(lock, [&] { return wait->outcome.has_value(); });
      break;
    }
    if (timed_out) {
      return ToolResult::failure(
          "timeout",
          "no worker finished the task within " + std::to_string(call.timeout_ms) + " ms", true);
    }
    return ToolResult::failure("tool_replaced",
                               "worker tool '" + spec_.id + "' was re-registered or removed", true);
  }
  TaskOutcome o = std::move(*wait->outcome);
  lock.unlock();
  if (!o.ok) return ToolResult::failure(o.code, o.message, o.retryable);
  if (const ActionSpec* a = spec_.find_action(call.action); a != nullptr) {
    std::vector<Problem> problems;
    validate_schema(a->output_schema, o.output, "", problems);
    if (!problems.empty()) {
      std::string why;
      for (const auto& p : problems) {
        why += (why.empty() ? "" : "; ") + (p.path.empty() ? "/" : p.path) + ": " + p.message;
      }
      return ToolResult::failure("invalid_output",
                                 "the worker's output does not fit the output_schema of '" +
                                     spec_.id + "." + call.action + "': " + why,
                                 false);
    }
  }
  return ToolResult::success(std::move(o.output));
}

}  // namespace yantra
