// The task broker between worker tools (actors/worker_tool.hpp) and the
// worker processes that serve them over HTTP (api/routes/workers.cpp).
//
// A step calling a worker tool becomes a task, queued per (tenant, tool id).
// Workers long-poll for the tasks of the tools they registered, under their
// own tenant only; a poll that finds nothing waits (a callback with a
// deadline, never a blocked thread) until a task arrives or the deadline
// passes. A dispatched task is leased to one worker for lease_ms; heartbeats
// extend the lease, complete/fail end the task and answer the tool call.
//
// Why leases and dispatch ids: a worker can die at any time. When a lease
// runs out the task is dispatched again, under a new task id, as a new
// attempt (`attempt` counts dispatches; the step's own retry_config is not
// touched, because the step did not fail: its worker vanished). After
// max_lost_leases lost leases the call fails with code "worker_lost"
// (retriable: the step's retry_config decides). The old task id is
// remembered, so a late complete from the worker that lost it is refused with
// "lease_expired" (409) rather than taken, and never answers a call twice.
//
// Fairness: tenants never share a queue and a worker only sees its tenant's,
// so one tenant's backlog cannot delay another's tasks. Within a tenant a
// worker serving several tools is given them round-robin (a cursor per
// worker), so a busy tool does not starve a quiet one. Each (tenant, tool)
// has a concurrency limit: at most max_concurrency tasks leased at once,
// further tasks wait in the queue even when a worker polls.
//
// Idempotency: every task carries the step's idempotency key. A second
// submit with the same (tenant, key) while a task with that key is queued or
// leased joins it: one dispatch, both callers get its outcome.
//
// Threads: every method is thread-safe (one mutex). Callbacks (a poll's
// answer, a submit's outcome, on_event) are always called without the lock
// held, on the caller's thread or the broker's timer thread, and must not
// block long. The timer thread fires poll deadlines and lease expiries.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

using json = nlohmann::json;

struct TaskRequest {
  std::string tenant;
  std::string tool_id;
  std::string action;
  std::string idempotency_key;
  std::string execution_id;
  std::string path;
  json parameters;
};

// What a task's caller gets: the worker's output, or its failure (or the
// broker's: "worker_lost", "node_shutting_down").
struct TaskOutcome {
  bool ok = false;
  json output;
  std::string code;
  std::string message;
  bool retryable = true;
};

// A task as handed to a worker.
struct DispatchedTask {
  std::string task_id;  // this dispatch's id
  std::string tenant;
  std::string tool_id;
  std::string action;
  json parameters;
  std::string idempotency_key;
  std::string execution_id;
  std::string path;
  int64_t lease_ms = 0;
  uint32_t attempt = 1;  // 1 + the leases lost before this dispatch
  std::string worker_id;
  int64_t wait_us = 0;  // queued this long before this dispatch
};

struct ToolLimits {
  size_t max_concurrency = 16;
  int64_t lease_ms = 30000;
};

struct BrokerOptions {
  ToolLimits defaults;
  uint32_t max_lost_leases = 3;
  // How many expired task ids are remembered (to answer 409, not 404).
  size_t remember_expired = 10000;
  // Lease events, for the audit trail: "task.lease_lost" (the task goes
  // back to its queue) and "task.worker_lost" (the call fails). Called
  // without the lock, on the timer thread.
  std::function<void(const std::string& event, const DispatchedTask& task)> on_event;
};

class TaskBroker {
 public:
  explicit TaskBroker(BrokerOptions options = {});
  ~TaskBroker();  // shutdown(), then stops the timer thread
  TaskBroker(const TaskBroker&) = delete;
  TaskBroker& operator=(const TaskBroker&) = delete;

  // Limits of one tenant's tool (from its registration); others get the defaults.
  void set_limits(const std::string& tenant, const std::string& tool_id, ToolLimits limits);

  using Done = std::function<void(TaskOutcome)>;
  // Queues a task (or joins the one in flight with the same idempotency
  // key) and returns a ticket; `done` is called exactly once, unless the
  // ticket is withdrawn first.
  uint64_t submit(TaskRequest request, Done done);
  // The caller stops waiting (its timeout). A queued task nobody waits for
  // any more leaves the queue; a leased one runs on, its outcome dropped.
  // False when `done` was called already (or is being called).
  bool withdraw(uint64_t ticket);

  using PollDone = std::function<void(std::optional<DispatchedTask>)>;
  // A worker asks for a task of one of `tools` (its tenant's). Answered at
  // once when one is ready, else when one arrives or after wait_ms (nullopt).
  // A worker may have several polls waiting (a process serving tasks on
  // several threads); waiting polls are served oldest first. A poll whose
  // client went away may still be handed a task: its lease runs out and the
  // task is dispatched again.
  void poll(const std::string& tenant, const std::string& worker_id, std::vector<std::string> tools,
            int64_t wait_ms, PollDone done);

  // Errors: not_found (no such task of the tenant), "lease_expired" (409:
  // the lease ran out and the task went back to the queue or failed).
  Result<int64_t> heartbeat(const std::string& tenant, const std::string& task_id);  // lease_ms
  Status complete(const std::string& tenant, const std::string& task_id, json output);
  Status fail(const std::string& tenant, const std::string& task_id, std::string code,
              std::string message, bool retryable);

  struct WorkerStatus {
    int64_t last_poll_ms = 0;  // wall clock; 0 = never polled this node
    bool polling = false;      // a poll is waiting now
    std::vector<DispatchedTask> in_flight;
  };
  WorkerStatus worker_status(const std::string& tenant, const std::string& worker_id) const;
  // A worker deregistered: its waiting polls are answered with nullopt; its
  // leased tasks run on until they end or their lease runs out.
  void forget_worker(const std::string& tenant, const std::string& worker_id);

  // Tasks waiting for a worker (all tenants).
  size_t queue_depth() const;
  size_t queue_depth(const std::string& tenant, const std::string& tool_id) const;

  // Fails every waiting call with "node_shutting_down" (retriable) and
  // answers every waiting poll; later submits fail the same way at once.
  void shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace yantra
