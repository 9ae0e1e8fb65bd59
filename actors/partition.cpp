// A partition supervisor: the parent of every live execution actor of its
// partition. It spawns them (new runs, recovery), monitors them, and when one
// dies abnormally (crash, kill) rebuilds it from the log via the I/O pool, so
// one bad execution never takes the partition or its neighbours down. An
// execution that keeps dying is given up after kMaxRestarts and stays active
// in the store, to be retried at the next start of the node.
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "actors/internal/context.hpp"

namespace yantra::detail {
namespace {

constexpr int kMaxRestarts = 5;

struct PartitionState {
  static inline const char* name = "yantra.partition";
  EngineCtx* ctx = nullptr;
  uint32_t partition = 0;
  std::unordered_map<std::string, caf::actor> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  std::unordered_map<std::string, int> restarts;
};

using Self = caf::stateful_actor<PartitionState>;

void track(Self* self, const std::string& id, caf::actor a) {
  self->monitor(a);
  self->state.ids.emplace(a.address(), id);
  self->state.live.emplace(id, std::move(a));
}

// Reads the log and the flow of `id` off the scheduler, then activates it.
void reload(Self* self, const std::string& id) {
  EngineCtx* ctx = self->state.ctx;
  const uint32_t p = self->state.partition;
  auto handle = caf::actor_cast<caf::actor>(self);
  ctx->io->submit([ctx, p, id, handle] {
    Activation act;
    act.execution_id = id;
    auto events = ctx->store->read_events(p, id);
    if (!events.ok()) {
      act.error = events.status();
    } else if (events.value().empty() || !events.value().front().has_execution_started()) {
      act.error = Status("storage_corrupt", "log of " + id + " has no ExecutionStarted");
    } else {
      const auto& started = events.value().front().execution_started();
      auto flow = ctx->load_flow(started.tenant(), started.flow_id(), started.flow_version());
      if (flow.ok()) {
        act.flow = flow.value();
      } else {
        act.error = flow.status();
      }
      act.events = std::move(events.value());
    }
    caf::anon_send(handle, activate_atom::value, std::move(act));
  });
}

caf::behavior partition(Self* self, EngineCtx* ctx, uint32_t p) {
  self->state.ctx = ctx;
  self->state.partition = p;
  // Shutdown: the engine asks partitions to exit; they take their executions
  // with them (the log keeps everything needed to resume them next start).
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& [id, a] : self->state.live) self->send_exit(a, em.reason);
    self->quit(em.reason);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.ids.find(dm.source);
    if (it == st.ids.end()) return;
    const std::string id = it->second;
    st.ids.erase(it);
    st.live.erase(id);
    if (!dm.reason || dm.reason == caf::exit_reason::normal) {
      st.restarts.erase(id);
      return;
    }
    if (ctx->store->read_only()) {
      spdlog::error("partition {}: execution {} stopped and the store is read-only", p, id);
      return;
    }
    if (++st.restarts[id] > kMaxRestarts) {
      spdlog::error("partition {}: execution {} keeps failing ({}); giving up until restart", p, id,
                    self->system().render(dm.reason));
      return;
    }
    ctx->restarts.fetch_add(1, std::memory_order_relaxed);
    reload(self, id);
  });
  return {
      [=](start_atom, StartCommand& cmd) {
        auto& st = self->state;
        if (st.live.count(cmd.execution_id) != 0) {
          if (cmd.started) cmd.started(Status("conflict", "execution id already running"));
          return;
        }
        const std::string id = cmd.execution_id;
        track(self, id, spawn_execution(self->system(), ctx, p, std::move(cmd)));
      },
      [=](activate_atom, Activation& act) {
        auto& st = self->state;
        if (st.live.count(act.execution_id) != 0) {
          if (act.started) act.started(Status("conflict", "execution is still active"));
          return;
        }
        const std::string id = act.execution_id;
        track(self, id, spawn_execution(self->system(), ctx, p, std::move(act)));
      },
      [=](activate_atom, const std::string& id) { reload(self, id); },
      [=](cancel_atom, CancelCommand& cmd) {
        auto it = self->state.live.find(cmd.execution_id);
        if (it == self->state.live.end()) {
          cmd.done(Status("not_running", "execution " + cmd.execution_id + " is not running here"));
          return;
        }
        self->send(it->second, cancel_atom::value, std::move(cmd));
      },
      [=](kill_atom, const std::string& id) -> bool {
        auto it = self->state.live.find(id);
        if (it == self->state.live.end()) return false;
        self->send(it->second, kill_atom::value);
        return true;
      },
  };
}

}  // namespace

caf::actor spawn_partition(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition_id) {
  return sys.spawn(partition, ctx, partition_id);
}

}  // namespace yantra::detail
