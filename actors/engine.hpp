// The engine of one node: durable executions as CAF actors over a RocksDB log.
//
//   Engine ─┬─ Store (RocksDB) and one LogWriter (group commit) per partition
//           ├─ partition supervisors: spawn, monitor and rebuild execution actors
//           ├─ execution actors: fold their log, decide, persist, then act
//           ├─ tool actors: `core` (non-blocking) and pools for blocking tools
//           └─ an I/O pool for reads (recovery, activation), off the scheduler
//
// This header hides CAF (pimpl) and storage (value types only, below) so the
// API layer does not compile either; actors links storage privately. Admin
// writes from the API go through the admin seam (actors/admin.hpp), whose
// single-node implementation calls the synchronous write methods here on a
// pool of its own.
// Thread-safety: every method may be called from any thread; callbacks run on
// engine threads and must not block.
//
// Lifecycle: open() recovers every unfinished execution found in the store
// (ready() turns true once every one has been handed to its partition for
// re-activation, which then proceeds in the background); the destructor shuts down
// cleanly. halt_for_test() instead simulates a power loss: writes that were
// not yet durable are dropped and nothing is flushed.
//
// Partitions: a single node leads every partition from open() on. A cluster
// node opens with lead_all_partitions = false and is told at run time which
// partitions it leads (lead_partition / release_partition, below); commands
// for executions of other partitions are refused with "partition_not_led",
// reads stay local.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/clock.hpp"
#include "actors/tool_registration.hpp"
#include "actors/tool_registry.hpp"
#include "actors/tools.hpp"
#include "base/result.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/waits.hpp"
#include "yantra/v1/tenancy.pb.h"

// Opaque here: the engine's users never see storage (api/ does not link it);
// only the composition root, which does, fills these options in.
namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace yantra {
namespace storage {
class PartitionLog;         // storage/partition_log.hpp
class PartitionLogFactory;  // storage/partition_log.hpp
}  // namespace storage

// How the event log commits (storage::Durability): kSync fsyncs every group
// commit; kAsync leaves it to the OS (throwaway work, benchmarks).
enum class Durability { kSync, kAsync };

// Group-commit counters, summed over the partitions' logs.
struct WriterStats {
  uint64_t batches = 0;
  uint64_t requests = 0;
  uint64_t events = 0;
  uint64_t sync_ns_total = 0;  // time spent in DB::Write
  uint64_t max_batch_requests = 0;
};

// One page of a tenant's executions, newest first.
struct ExecutionPage {
  std::vector<v1::ExecutionSummary> items;
  std::string next_cursor;  // "" when there is nothing more
};

class Engine;
struct AuditEntry;  // actors/admin.hpp
namespace detail {
struct EngineParts;
EngineParts parts_of(const Engine& engine);  // actors/internal/parts.hpp
}  // namespace detail

struct RunRequest;

struct EngineOptions {
  std::string data_dir = "./data";
  uint32_t partitions = 4;
  Durability durability = Durability::kSync;
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
  // Free-space floor of the data dir (storage/disk_guard.hpp): below it the
  // node refuses writes ("store_no_space") until space is back. 0 = none.
  uint64_t min_free_disk_bytes = 0;
  std::vector<std::shared_ptr<Tool>> tools;  // in addition to `core`
  // The vault's master key (32 raw bytes). Empty = no vault: secrets cannot
  // be stored and a step that references one fails ("vault_unavailable").
  // `yantra serve` refuses to start without one.
  std::string master_key;
  // Open the store even if its write-ahead log is damaged, dropping what
  // follows the damage (storage::StoreOptions::accept_data_loss); what was
  // dropped is logged at critical level.
  bool accept_data_loss = false;
  // The time the trigger scheduler sees (null = the system clock); tests
  // pass a ManualClock to cross days and DST transitions without sleeping.
  // Nothing else in the engine reads it.
  std::shared_ptr<Clock> clock;
  // Callback delivery (config.callbacks, docs/workflows.md): deliveries in
  // flight at once, the delay after a first failed attempt (doubled per
  // failure, capped at 1 h, with jitter) and how long a callback is retried
  // before it is dropped. Tests shorten the last two.
  size_t callback_workers = 8;
  int64_t callback_initial_backoff_ms = 1000;
  int64_t callback_max_age_ms = 24LL * 3600 * 1000;
  // The file system under the store (null = the OS's); tests pass a
  // fault-injecting one (tests/support/fault_fs.hpp).
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Makes each partition's log, the append path the partition and
  // execution actors commit through (null = a local storage::LogWriter per
  // partition). Used only with lead_all_partitions.
  std::shared_ptr<storage::PartitionLogFactory> partition_logs;
  // True (the single node): open() leads every partition, each on a log
  // from partition_logs. False (a cluster node): open() opens no log,
  // spawns no partition and recovers nothing, ready() is true once it
  // returns, and the node serves reads; partitions are then led one by one
  // with Engine::lead_partition, each on the log the cluster gives it.
  bool lead_all_partitions = true;
  // With lead_all_partitions: open() spawns the partitions but recovers no
  // execution until recover() is called. `yantra serve` first installs what
  // recovered executions may call — the tenant tools that registrations
  // bring (watch_tool_registrations) — so that a recovered call to a worker
  // or MCP tool does not find it missing and fail.
  bool defer_recovery = false;
  // Asked by the trigger scheduler before it fires a schedule slot, on the
  // scheduler's thread (never a CAF thread; it may block for about a
  // second): true = this node fires it, false = another node holds it (the
  // slot is recorded as handled here). Asked again when a start of the same
  // slot is retried, so it must answer true again to the holder. Null =
  // always true (single node). A cluster implements it with an etcd
  // create-if-absent so that one slot fires once in the whole cluster.
  std::function<bool(const std::string& tenant, const std::string& flow_id, int64_t slot_ms)>
      claim_schedule_slot;
  // A cluster node places every execution of a flow with
  // max_concurrent_executions or a rate limit in the flow's partition
  // (partition_of_flow), so that its leader counts all of them and holds
  // its queue: exact flow limits cluster-wide (docs/cluster.md, "Limits and quotas"). A start of
  // such a flow that reaches a node not leading that partition (an event, a schedule, a webhook, a
  // retry racing a leadership move) is handed to this hook with the partition, to be run by its
  // leader (RunRequest:: forwarded set there); `started` as for Engine::start. Called on the
  // starting thread, must not block. Null = refused with
  // "partition_not_led".
  std::function<void(uint32_t partition, RunRequest request,
                     std::function<void(Result<std::string>)> started)>
      start_elsewhere;
};

struct RunRequest {
  std::string tenant = "default";
  std::string flow_id;
  uint32_t flow_version = 0;  // 0 = latest
  json input = json::object();
  std::string idempotency_key;
  // Set to true, before `started` is called, when the run was queued behind
  // its flow's concurrency limit (optional; for callers that show a status).
  std::shared_ptr<std::atomic<bool>> queued;
  // Sent here by another node (EngineOptions::start_elsewhere): refused
  // rather than sent on when this node does not lead its partition either.
  bool forwarded = false;
};

struct ExecutionResult {
  std::string execution_id;
  std::string status;
  json output;
  json error;
  std::string tenant;
  std::string flow_id;
};

// One flow's schedule trigger, as the scheduler holds it.
struct ScheduleInfo {
  std::string flow_id;
  std::string cron;
  std::string time_zone;
  std::string catch_up;
  std::string status;         // "active" | "paused"
  int64_t next_fire_ms = 0;   // 0 = none (paused, or it never fires again)
  int64_t last_fired_ms = 0;  // the newest slot handled; 0 = none yet
};

// What one flow did with an emitted event: started (execution_id, queued
// when it waits behind its flow's concurrency limit) or refused (error).
struct EventStart {
  std::string flow_id;
  std::string execution_id;
  bool queued = false;
  Status error;
};

struct EngineStats {
  uint64_t started = 0;
  uint64_t finished = 0;
  uint64_t active_actors = 0;
  uint64_t events = 0;
  uint64_t tool_calls = 0;
  uint64_t recovered = 0;
  uint64_t restarts = 0;
  WriterStats writer;  // summed over partitions
};

class Engine {
 public:
  using StartedFn = std::function<void(Result<std::string>)>;
  using FinishedFn = std::function<void(const ExecutionResult&)>;
  using EmitFn = std::function<void(std::vector<EventStart>)>;

  static Result<std::unique_ptr<Engine>> open(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and stores a new version of a flow; returns the version.
  // This and the other synchronous writes below (delete_flow, put_api_key,
  // put_tenant, delete_tenant) block on a synced write: not for HTTP I/O or
  // actor threads (the API uses Admin).
  Result<uint32_t> put_flow(const std::string& tenant, const json& definition,
                            const std::string& created_by = "", const std::string& note = "");
  Result<std::shared_ptr<const Flow>> get_flow(const std::string& tenant,
                                               const std::string& flow_id, uint32_t version = 0);
  // The tool registry (tool_registry.hpp): built-in specs, and those plus
  // the tenant's own tools.
  std::vector<ToolSpec> tool_specs() const;
  std::vector<ToolSpec> tool_specs(const std::string& tenant) const;
  const ToolRegistry& tools() const;
  // A tenant tool, usable at once by that tenant's flows (stored ones too:
  // calls look the tool up when they start), without a restart: its spec
  // goes to the registry, and its calls to a pool of its own (max_concurrency
  // threads; Tool::invoke may block). Adding an id again replaces the tool;
  // calls in flight on the old one finish there. Removing it makes the
  // next calls fail with "unknown_tool" (not retried).
  Status add_tool(const std::string& tenant, std::shared_ptr<Tool> tool);
  Status remove_tool(const std::string& tenant, const std::string& id);

  // Tool registrations (actors/tool_registration.hpp): a tenant's MCP
  // servers and workers, stored in the node's store (blocking synced
  // writes: not for I/O or CAF threads; the Admin seam runs them on its
  // pool). A put or delete calls the kind's handler after the write, on the
  // writer's thread; so do the cluster's mirror installs, which come here.
  Status put_tool_registration(const ToolRegistration& registration);
  Status delete_tool_registration(const std::string& tenant, const std::string& kind,
                                  const std::string& id);
  Result<std::vector<ToolRegistration>> tool_registrations(const std::string& tenant,
                                                           const std::string& kind) const;
  Result<std::optional<ToolRegistration>> tool_registration(const std::string& tenant,
                                                            const std::string& kind,
                                                            const std::string& id) const;
  // Every registration of a kind ("" = of every kind), of every tenant (the
  // cluster mirror's first listing compares them with etcd's).
  Result<std::vector<ToolRegistration>> all_tool_registrations(const std::string& kind) const;
  // The handler of a kind: called at once, on this thread, for every stored
  // registration of the kind, then after every later put (deleted = false)
  // or delete (deleted = true) on the writer's thread — short work only,
  // never a wait. One handler per kind; a second replaces the first.
  using RegistrationHandler = std::function<void(const ToolRegistration&, bool deleted)>;
  void watch_tool_registrations(const std::string& kind, RegistrationHandler handler);
  // A cluster node: the partition every new execution of the flow's newest
  // version must live in (EngineOptions::start_elsewhere), for routing a
  // start to its leader up front; nullopt when any partition will do (no
  // concurrency or rate limit, an unknown flow, or a single node). May read the
  // store (flow cache miss).
  std::optional<uint32_t> home_partition(const std::string& tenant, const std::string& flow_id);

  // Starts an execution. A paused flow (its latest version, or the version
  // asked for, has "status": "paused") starts nothing: "conflict".
  // `started` gets the id once ExecutionStarted is
  // durable; `finished` gets the outcome when it ends (either may be empty).
  // Admission first: a suspended tenant ("tenant_suspended"), a tenant at its
  // concurrency limit ("rate_limited") or monthly quota ("quota_exceeded"),
  // or a flow over its config.rate_limit ("rate_limited") is refused with a
  // retry hint. A flow at config.max_concurrent_executions does not refuse:
  // the run is queued durably (status "queued", `started` gets its id) and
  // starts, in order, when a running one ends.
  void start(RunRequest request, StartedFn started, FinishedFn finished = {});

  // Triggers (docs/workflows.md). emit_event() starts every active flow of
  // `tenant` whose event trigger names `name` and whose filter matches, with
  // input {"name", "data"}; `done` gets one entry per such flow, ordered by
  // flow id, once every start answered (on an engine thread; at once on the
  // caller's when none matched). Never blocks on an actor. schedules(): the
  // schedule triggers of a tenant, by flow id. Webhook ids are the admin
  // seam's (actors/admin.hpp).
  void emit_event(const std::string& tenant, const std::string& name, const json& data,
                  EmitFn done);
  std::vector<ScheduleInfo> schedules(const std::string& tenant) const;

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
  // A cluster node installs a version numbered elsewhere (etcd:
  // cluster/resources.hpp): stores it at its own version (idempotent), then
  // updates the flow cache and the triggers as put_flow / delete_flow do (a
  // tombstone as a deletion). A definition that does not parse here is
  // stored but triggers nothing, and its parse error is returned.
  Status install_flow_version(const v1::FlowVersion& version);

  // Executions of a tenant, newest first (cursor = last id of the previous page).
  Result<ExecutionPage> list_executions(const std::string& tenant, const std::string& flow_id,
                                        const std::string& status, size_t limit,
                                        const std::string& cursor) const;
  // The same, only executions of the listed partitions (partition_of their
  // id): a cluster node's share of a cluster-wide list (docs/cluster.md,
  // "Routing"). Rows of other partitions count against the scan bound, so a
  // page may end early with a cursor, as a filtered page does.
  Result<ExecutionPage> list_executions(const std::string& tenant, const std::string& flow_id,
                                        const std::string& status, size_t limit,
                                        const std::string& cursor,
                                        const std::vector<uint32_t>& partitions) const;
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

  // Tenants. Rows are cached: a change applies to the next start at once.
  // A tenant without a row (the bootstrap tenant of an older store) is
  // active and unlimited.
  Result<std::optional<v1::Tenant>> tenant(const std::string& id) const;
  Result<std::vector<v1::Tenant>> list_tenants() const;
  Status put_tenant(const v1::Tenant& tenant);
  Status delete_tenant(const std::string& id);
  // What counts against a tenant's limits right now.
  struct TenantUsage {
    int64_t running = 0;  // started and not ended (queued runs excluded)
    int64_t queued = 0;
  };
  TenantUsage usage(const std::string& tenant) const;

  // Signals and approvals (runtime/waits.hpp). A sleeping execution is
  // woken for them. signal(): `done` gets the signal id once SignalReceived
  // is durable, or "not_found", "conflict" (ended or queued),
  // "too_many_signals", "invalid_argument". approve(): ok once
  // ApprovalRecorded is durable, or "not_found" (no such step waiting),
  // "forbidden" (not an approver), "conflict" (already decided).
  void signal(const std::string& tenant, const std::string& execution_id, const std::string& name,
              const json& data, std::function<void(Result<std::string>)> done);
  void approve(const std::string& tenant, const std::string& execution_id,
               const std::string& step_path, const std::string& key_id, const std::string& role,
               bool approved, const std::string& comment, std::function<void(Status)> done);
  // Approval steps waiting in the tenant's waiting executions (the newest
  // `max_executions` of them are looked at). Reads the store: not for actor
  // threads.
  struct WaitingApproval {
    std::string execution_id;
    std::string flow_id;
    PendingApproval approval;
  };
  Result<std::vector<WaitingApproval>> pending_approvals(const std::string& tenant,
                                                         size_t max_executions = 1000);

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

  // ---- Partition leadership (a cluster node; docs/cluster.md) ----
  // Where executions go: an execution lives in partition_of(id) (runtime/
  // ids.hpp). A start with an idempotency key goes to
  // partition_of_key(tenant, key) in every mode, so retries of one key
  // reach one partition wherever they arrive (not led here:
  // "partition_not_led"); a start without one goes to a led partition,
  // round-robin (single node: any). Commands for an execution of a
  // partition not led here (cancel, signal, approve, retry; a fork's new
  // execution) are refused with "partition_not_led" (HTTP 503, forwarded
  // by the cluster to the leader); reads (summary, list, events, watch)
  // answer from the local store in every case.
  //
  // lead_partition(): starts partition p on `log` (the engine owns it from
  // now on): spawns its supervisor, recovers its active executions and its
  // queued runs from the local store as open() does for a single node, and
  // serves its commands. Returns once recovery has handed every active
  // execution to the supervisor. "invalid_argument" for p >= partitions
  // (or no log), "conflict" if already led, "unavailable" while shutting
  // down. Call from a thread that is neither a CAF nor an engine thread; it
  // blocks for the recovery listing.
  Status lead_partition(uint32_t p, std::unique_ptr<storage::PartitionLog> log);
  // release_partition(): leadership of p was lost. Stops p's supervisor and
  // every execution of p without writing anything (no cancel events; the
  // log behind it already refuses appends), answers whoever waits on them
  // (starts, signals, cancels, approvals, Engine::watch) with
  // "partition_not_led", drops p's admission counts (its executions count
  // at its new leader), then destroys the log, after the actors. Blocks
  // until all that is done (same threads as lead_partition). Releasing a
  // partition not led is a no-op.
  void release_partition(uint32_t p);
  bool leads(uint32_t p) const;
  std::vector<uint32_t> led_partitions() const;  // ascending

  // Records `entries` in partition p's audit chains (a cluster node: one
  // chain per (tenant, p), storage/audit_log.hpp), committed through p's
  // log like its executions' events, so every replica holds the same
  // chain. Entry i of `sender` has counter first_counter + i; entries at or
  // below the sender's recorded high-water mark are skipped, so a relay may
  // resend a batch whose answer it lost (sender "" = no such check).
  // `done` gets ok once committed, "partition_not_led" when p is not led
  // here (synchronously, on the caller's thread), or the log's error.
  // Blocks for a store read the first time a chain is touched in a
  // leadership: call it from a thread that is neither CAF nor HTTP I/O.
  void append_audit(uint32_t p, std::vector<AuditEntry> entries, const std::string& sender,
                    uint64_t first_counter, std::function<void(Status)> done);
  uint32_t partition_count() const;

  bool ready() const;
  // Starts the recovery open() deferred (EngineOptions::defer_recovery);
  // returns at once (recovery runs on the I/O pool). Calling it again, or
  // without defer_recovery, does nothing.
  void recover();
  // Ok while the node accepts writes; else why not: "store_read_only" (a
  // write failed; for good) or "store_no_space" (below the free-space
  // floor; ends when space is back). For readiness probes.
  Status write_status() const;
  EngineStats stats() const;

  // Test hooks: kill an execution actor as a crash would (its partition
  // rebuilds it from the log), and simulate power loss of the whole node.
  bool kill_execution_actor_for_test(const std::string& execution_id);
  void halt_for_test();

  struct Impl;

 private:
  friend detail::EngineParts detail::parts_of(const Engine& engine);
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The tool policy a tenant record holds (empty: no restriction).
ToolPolicy tool_policy_of(const v1::Tenant& tenant);

}  // namespace yantra
