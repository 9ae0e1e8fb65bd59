// What the actors of one engine share: the store and its writers, the tool
// actors, the I/O pool, counters and the finish hooks. Owned by Engine::Impl,
// which outlives the actor system; actors hold a plain pointer to it.
// The messages each actor accepts are declared beside it: atoms.hpp,
// partition_actor.hpp, execution_actor.hpp, tool_actor.hpp.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/all.hpp>

#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "actors/internal/execution_actor.hpp"
#include "actors/internal/io_pool.hpp"
#include "actors/internal/partition_actor.hpp"
#include "actors/internal/tool_actor.hpp"
#include "actors/tool_registry.hpp"
#include "base/time.hpp"
#include "storage/partition_log.hpp"
#include "storage/store.hpp"

namespace yantra::storage {
class Vault;
class AuditLog;
struct AuditEntry;
}  // namespace yantra::storage

namespace yantra::detail {

// The answer to a command for an execution whose partition this node does
// not lead (ActorsErrc::kPartitionNotLed; HTTP 503, the API forwards it).
inline Status partition_not_led(uint32_t partition, const std::string& execution_id) {
  return Status(ActorsErrc::kPartitionNotLed, "partition " + std::to_string(partition) +
                                                  " of execution " + execution_id +
                                                  " is not led by this node");
}

inline std::string tenant_tool_key(const std::string& tenant, const std::string& id) {
  std::string k = tenant;
  k.push_back('\0');
  k += id;
  return k;
}

struct EngineCtx {
  storage::Store* store = nullptr;
  // Each partition's log (storage/partition_log.hpp) and supervisor, by
  // partition: the log is the only way events become durable. Sized
  // partition_count at open; the entries of a partition this node does not
  // lead are empty. Written only by Engine::lead_partition (before the
  // supervisor exists) and release_partition (after it and its executions
  // are gone), so an actor reads its own partition's entries without a
  // lock; the engine's own readers go through its per-partition lock.
  std::vector<std::unique_ptr<storage::PartitionLog>> writers;
  std::unordered_map<std::string, tool_actor> tools;  // built-ins, by tool id
  // Tenant tools (Engine::add_tool), by tenant_tool_key(tenant, id): added
  // and removed while executions run, hence the lock.
  std::shared_mutex tenant_tools_mu;
  std::unordered_map<std::string, tool_actor> tenant_tools;
  // The same tools' objects, for Tool::cancel when an execution ends with a
  // call of theirs in flight (under tenant_tools_mu too).
  std::unordered_map<std::string, std::shared_ptr<Tool>> tenant_tool_objects;
  // Specs and tool policies; checked before every tool call.
  const ToolRegistry* registry = nullptr;
  // "<tool>.<action>" of the built-in actions without side effects: their
  // calls leave before the batch that decided them is durable
  // (execution_actor.cpp, runs_before_durable). Tenant tools never do: a
  // remote server's word is not enough to skip the barrier.
  std::unordered_set<std::string> pure_actions;
  std::vector<partition_actor> partitions;
  IoPool* io = nullptr;
  storage::Vault* vault = nullptr;  // null without a master key
  storage::AuditLog* audit = nullptr;
  // In a cluster (set when the engine does not lead every partition): an
  // execution's audit records (tool calls) go to its partition's chain,
  // through the partition's log, instead of `audit`. Never blocks; any
  // thread.
  std::function<void(uint32_t partition, storage::AuditEntry)> audit_partition;
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

}  // namespace yantra::detail
