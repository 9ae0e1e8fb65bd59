// The engine of one node: durable executions as CAF actors over a RocksDB log.
//
//   Engine ─┬─ Store (RocksDB) and one LogWriter (group commit) per partition
//           ├─ partition supervisors: spawn, monitor and rebuild execution actors
//           ├─ execution actors: fold their log, decide, persist, then act
//           ├─ tool actors: `core` (non-blocking) and pools for blocking tools
//           └─ an I/O pool for reads (recovery, activation), off the scheduler
//
// This header hides CAF (pimpl) so the API layer and tests do not compile it.
// Thread-safety: every method may be called from any thread; callbacks run on
// engine threads and must not block.
//
// Lifecycle: open() recovers every unfinished execution found in the store
// (ready() turns true once every one has been handed to its partition for
// re-activation, which then proceeds in the background); the destructor shuts down
// cleanly. halt_for_test() instead simulates a power loss: writes that were
// not yet durable are dropped and nothing is flushed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/tools.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/result.hpp"
#include "storage/log_writer.hpp"
#include "storage/store.hpp"

namespace yantra {

struct EngineOptions {
  std::string data_dir = "./data";
  uint32_t partitions = 4;
  storage::Durability durability = storage::Durability::kSync;
  size_t scheduler_threads = 0;              // 0 = one per core (at least 2)
  std::string scheduler_policy = "sharing";  // sharing | stealing
  size_t core_tool_concurrency = 1024;
  size_t io_threads = 2;
  // A snapshot of an execution's state every this many events (0 = never):
  // activation and state-at-seq fold from the nearest one instead of seq 1.
  uint32_t snapshot_every = 1000;
  // Events and snapshots of executions that ended longer ago than this are
  // deleted by a background task (summaries stay); 0 = keep forever.
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;
  int64_t retention_interval_ms = 60000;
  std::vector<std::shared_ptr<Tool>> tools;  // in addition to `core`
};

struct RunRequest {
  std::string tenant = "default";
  std::string flow_id;
  uint32_t flow_version = 0;  // 0 = latest
  json input = json::object();
  std::string idempotency_key;
};

struct ExecutionResult {
  std::string execution_id;
  std::string status;
  json output;
  json error;
};

struct EngineStats {
  uint64_t started = 0;
  uint64_t finished = 0;
  uint64_t active_actors = 0;
  uint64_t events = 0;
  uint64_t tool_calls = 0;
  uint64_t recovered = 0;
  uint64_t restarts = 0;
  storage::WriterStats writer;  // summed over partitions
};

class Engine {
 public:
  using StartedFn = std::function<void(Result<std::string>)>;
  using FinishedFn = std::function<void(const ExecutionResult&)>;

  static Result<std::unique_ptr<Engine>> open(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and stores a new version of a flow; returns the version.
  Result<uint32_t> put_flow(const std::string& tenant, const json& definition,
                            const std::string& created_by = "", const std::string& note = "");
  Result<std::shared_ptr<const Flow>> get_flow(const std::string& tenant,
                                               const std::string& flow_id, uint32_t version = 0);
  std::vector<ToolSpec> tool_specs() const;

  // Starts an execution. `started` gets the id once ExecutionStarted is
  // durable; `finished` gets the outcome when it ends (either may be empty).
  void start(RunRequest request, StartedFn started, FinishedFn finished = {});

  // Calls `done` once the execution has ended (at once if it already has);
  // never waits for the actor. Error "not_found" for an unknown id. Returns a
  // token for unwatch() (a caller that stops waiting must unwatch).
  using WatchFn = std::function<void(Result<ExecutionResult>)>;
  uint64_t watch(const std::string& execution_id, WatchFn done);
  void unwatch(const std::string& execution_id, uint64_t token);
  // Appends ExecutionCancelled; `done` gets ok, "not_found" or "conflict"
  // (already ended). Never blocks on the actor.
  void cancel_async(const std::string& execution_id, const std::string& reason,
                    std::function<void(Status)> done);

  // Flow versions (tombstoned flows read as not found).
  Result<std::vector<v1::FlowVersion>> list_flows(const std::string& tenant) const;
  Result<v1::FlowVersion> get_flow_version(const std::string& tenant, const std::string& flow_id,
                                           uint32_t version = 0) const;
  Result<std::vector<v1::FlowVersion>> flow_versions(const std::string& tenant,
                                                     const std::string& flow_id) const;
  Result<uint32_t> delete_flow(const std::string& tenant, const std::string& flow_id,
                               const std::string& deleted_by = "");

  // Executions of a tenant, newest first (cursor = last id of the previous page).
  Result<storage::Store::ExecutionPage> list_executions(const std::string& tenant,
                                                        const std::string& flow_id,
                                                        const std::string& status, size_t limit,
                                                        const std::string& cursor) const;
  // The summary row, only if it belongs to `tenant` (else "not_found", the
  // same answer as for a missing id: ids of other tenants do not leak).
  Result<v1::ExecutionSummary> summary(const std::string& tenant,
                                       const std::string& execution_id) const;

  // Time machine. fork(): a new execution whose history is a copy of events
  // 1..at_seq of `source_id` (0 = all), then a StateOverridden carrying
  // `patch` if given; it continues live on the source's flow version and the
  // source is never touched. retry(): a failed or timed-out execution
  // continues from its failed step (a Resumed event), keeping its id.
  // `started` gets the id once the first batch is durable.
  void fork(const std::string& tenant, const std::string& source_id, uint64_t at_seq,
            const json& patch, StartedFn started);
  void retry(const std::string& tenant, const std::string& execution_id, StartedFn started);
  Result<std::vector<std::string>> forks(const std::string& execution_id) const;

  // API keys by SHA-256 (hex) of their secret.
  Status put_api_key(const std::string& hash, const v1::ApiKey& key);
  Result<std::optional<v1::ApiKey>> find_api_key(const std::string& hash) const;
  Result<size_t> count_api_keys(const std::string& tenant) const;

  // Blocking conveniences for tests, tools and benchmarks (never call them on
  // an engine thread).
  Result<std::string> start_sync(RunRequest request);
  Result<ExecutionResult> wait(const std::string& execution_id, std::chrono::milliseconds timeout);
  Status cancel(const std::string& execution_id, const std::string& reason);

  // The state folded from the log (the log is the truth, not the actor).
  Result<ExecutionState> load_state(const std::string& execution_id) const;
  // The state right after event `seq` (from the nearest snapshot at or
  // below it, then folding the rest).
  Result<ExecutionState> load_state_at(const std::string& execution_id, uint64_t seq) const;
  Result<std::vector<v1::Event>> load_events(const std::string& execution_id, uint64_t from_seq = 1,
                                             uint64_t to_seq = UINT64_MAX) const;

  bool ready() const;
  EngineStats stats() const;
  const storage::Store& store() const;

  // Test hooks: kill an execution actor as a crash would (its partition
  // rebuilds it from the log), and simulate power loss of the whole node.
  bool kill_execution_actor_for_test(const std::string& execution_id);
  void halt_for_test();

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra
