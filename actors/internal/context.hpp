// What the actors of one engine share: the store and its writers, the tool
// actors, the I/O pool, counters and the finish hooks. Owned by Engine::Impl,
// which outlives the actor system; actors hold a plain pointer to it.
// Also the CAF atoms and message types of actors/ (local only: they are
// allowed as unsafe message types because they never cross a node boundary;
// the cluster layer defines its own serializable messages).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/engine.hpp"
#include "actors/internal/io_pool.hpp"
#include "base/time.hpp"
#include "storage/partition_log.hpp"
#include "storage/store.hpp"

namespace yantra::storage {
class Vault;
class AuditLog;
}  // namespace yantra::storage

namespace yantra::detail {

using start_atom = caf::atom_constant<caf::atom("ystart")>;
using activate_atom = caf::atom_constant<caf::atom("yactivate")>;
using persisted_atom = caf::atom_constant<caf::atom("ypersist")>;
using tool_result_atom = caf::atom_constant<caf::atom("ytoolres")>;
using timer_atom = caf::atom_constant<caf::atom("ytimer")>;
using cancel_atom = caf::atom_constant<caf::atom("ycancel")>;
using invoke_atom = caf::atom_constant<caf::atom("yinvoke")>;
using done_atom = caf::atom_constant<caf::atom("ydone")>;
using kill_atom = caf::atom_constant<caf::atom("ykill")>;
using wake_atom = caf::atom_constant<caf::atom("ywake")>;
using secrets_atom = caf::atom_constant<caf::atom("ysecrets")>;
using signal_atom = caf::atom_constant<caf::atom("ysignal")>;
using approve_atom = caf::atom_constant<caf::atom("yapprove")>;
// Passivation handshake (see partition.cpp): an idle execution asks to
// sleep, the partition answers sleep (quit) and the execution either quits
// or, if an input reached it meanwhile, says it is awake.
using idle_atom = caf::atom_constant<caf::atom("yidle")>;
using sleep_atom = caf::atom_constant<caf::atom("ysleep")>;
using awake_atom = caf::atom_constant<caf::atom("yawake")>;

// Asks a partition to run a new execution.
struct StartCommand {
  std::string execution_id;
  RunRequest request;
  std::shared_ptr<const Flow> flow;
  Engine::StartedFn started;
  Engine::FinishedFn finished;
  // A run leaving its flow's queue: the queue row, deleted in the batch that
  // holds ExecutionStarted (so it neither vanishes nor starts twice).
  std::string delete_key;
};

// Asks a partition to rebuild an execution from its log (recovery, restart).
struct Activation {
  std::string execution_id;
  // The state of the newest snapshot, when there is one; `events` then holds
  // only what follows it.
  std::optional<ExecutionState> base;
  std::vector<v1::Event> events;
  std::shared_ptr<const Flow> flow;
  Status error;  // set when the log or the flow could not be loaded
  // A fork: `events` (a copy of another execution's history, plus its
  // StateOverridden) are not stored yet and become the first batch.
  bool unsaved = false;
  // A retry: an input event (Resumed) to submit once the log is folded.
  std::optional<v1::Event> input;
  Engine::StartedFn started;  // answered when the first batch is durable
};

struct CancelCommand {
  std::string execution_id;
  std::string reason;
  std::function<void(Status)> done;
};

// A signal for an execution; `done` gets ok once SignalReceived is durable.
struct SignalCommand {
  std::string execution_id;
  std::string name;
  json data;
  std::string signal_id;
  std::function<void(Status)> done;
};

// An approval decision; `done` gets ok once ApprovalRecorded is durable.
struct ApprovalCommand {
  std::string execution_id;
  std::string step_path;
  std::string key_id;
  std::string role;
  bool approved = false;
  std::string comment;
  std::function<void(Status)> done;
};

struct PersistAck {
  uint64_t batch = 0;
  Status status;
};

using CallPtr = std::shared_ptr<const ToolCall>;

// A tool call whose $secret markers were resolved on the I/O pool (a vault
// read is a RocksDB read: not for a scheduler thread). `values` are the
// plaintexts, kept only to scrub the tool's answer before it is recorded.
struct SecretsResolved {
  std::string tool_id;
  CallPtr call;
  Status status;
  std::shared_ptr<const std::vector<std::string>> values;
};

struct EngineCtx {
  storage::Store* store = nullptr;
  // Each partition's log (storage/partition_log.hpp), by partition: the
  // only way events become durable.
  std::vector<std::unique_ptr<storage::PartitionLog>> writers;
  std::unordered_map<std::string, caf::actor> tools;  // by tool id
  std::vector<caf::actor> partitions;
  IoPool* io = nullptr;
  storage::Vault* vault = nullptr;  // null without a master key
  storage::AuditLog* audit = nullptr;
  uint32_t partition_count = 1;
  uint32_t snapshot_every = 0;

  // Resolves the flow an execution runs on (tenant, id, version); blocking,
  // call from the I/O pool only.
  std::function<Result<std::shared_ptr<const Flow>>(const std::string&, const std::string&,
                                                    uint32_t)>
      load_flow;
  // Called once per finished execution, on an actor thread.
  std::function<void(const ExecutionResult&)> on_finished;
  // Called on a writer thread when a batch with outbox rows (callbacks) is
  // durable: wakes the callback dispatcher. Never blocks.
  std::function<void()> outbox_written;
  // Starts the event-triggered flows of a tenant (core.emit); `done` gets
  // {"executions": [...], "errors": [...]} on an engine thread. Set once the
  // triggers are loaded.
  std::function<void(const std::string&, const std::string&, const json&,
                     std::function<void(json)>)>
      emit_event;
  // An execution going to sleep hands over the callback of the run that
  // started it (a caller waiting with ?wait_ms): it is called at the end,
  // by whichever actor finishes the execution. Must not block.
  std::function<void(const std::string&, Engine::FinishedFn)> keep_finished;

  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> finished{0};
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> tool_calls{0};
  std::atomic<uint64_t> recovered{0};
  std::atomic<uint64_t> restarts{0};
};

// Spawners (one file each).
caf::actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                           StartCommand cmd);
caf::actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                           Activation act);
caf::actor spawn_partition(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition);
caf::actor spawn_core_tool(caf::actor_system& sys, size_t max_concurrency, EngineCtx* ctx);
ToolSpec core_tool_spec();
caf::actor spawn_tool_pool(caf::actor_system& sys, std::shared_ptr<Tool> tool);

}  // namespace yantra::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::StartCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::Activation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::CancelCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::PersistAck)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::CallPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::ToolResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::SecretsResolved)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::SignalCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::ApprovalCommand)
