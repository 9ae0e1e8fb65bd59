// A partition supervisor: the parent of every live execution actor of its
// partition. It spawns them (new runs, recovery), monitors them, and when one
// dies abnormally (crash, kill) rebuilds it from the log via the I/O pool, so
// one bad execution never takes the partition or its neighbours down. An
// execution that keeps dying is given up after kMaxRestarts and stays active
// in the store, to be retried at the next start of the node.
//
// An execution that died because the disk went below the free-space floor
// (its batch was refused with "store_no_space", storage/disk_guard.hpp) is
// not a crash and costs no restart: it is rebuilt from its log once the
// store accepts writes again (checked every kStalledRetry), so runs resume
// by themselves when space is freed. A run refused before its first batch
// was stored has no log: its client got the 503, and nothing is rebuilt.
//
// A retry (an activation carrying Resumed) may arrive while the actor of the
// run it resumes is still registered here: the actor tells its watchers that
// the run ended before it exits, so a client that retries as soon as it sees
// "failed" races the down message. Such a retry is parked until that actor is
// down, then checked against the store (still failed or timed out, log not
// grown since the retry read it) and started; a parked retry gets "conflict"
// if the check fails or if the actor is not down within kParkedMs (it was
// then not ending but running, e.g. another retry of the same run).
//
// Passivation: an execution that only waits asks to sleep (idle_atom with
// its earliest timer). The partition marks it dozing — inputs for it
// (signals, approvals, cancels) are held back from then on — and answers
// sleep_atom. The actor quits, unless an input sent before the partition
// marked it reached it first; then it says awake and gets the held inputs.
// A sleeping execution is just an id and a due time here: a delayed wake
// message (if it has a timer) or any input rebuilds it from the log, and the
// held inputs are delivered to the new actor in order. Messages between two
// actors are delivered in order, which is what makes the handshake safe: the
// partition never has two actors for one execution.
//
// Release (Engine::release_partition, a cluster node lost leadership): the
// partition answers every held input and parked retry with
// "partition_not_led", tells each live execution to release (it answers
// its own waiters and quits, appending nothing), forgets its sleepers (the
// next leader wakes them from the log) and quits once the last execution
// actor is down, so the engine, which waits for the partition's exit, knows
// that no actor of the partition can touch its log any more. From the
// release on it spawns nothing and refuses whatever still reaches it.
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/internal/context.hpp"
#include "base/storage_errc.hpp"
#include "runtime/snapshot.hpp"
#include "storage/event_log.hpp"
#include "storage/execution_index.hpp"

namespace yantra::detail {
namespace {

constexpr int kMaxRestarts = 5;
constexpr auto kParkedMs = std::chrono::milliseconds(5000);
constexpr auto kStalledRetry = std::chrono::milliseconds(500);

// Messages a partition sends itself: a parked retry's ticket timed out, a
// stalled execution's store may take writes again, a sleeper's timer is due.
using parked_atom = caf::atom_constant<caf::atom("yparked")>;
using stalled_atom = caf::atom_constant<caf::atom("ystalled")>;
using wake_atom = caf::atom_constant<caf::atom("ywake")>;

// What the actor implements: its public interface and its own messages.
using partition_impl = partition_actor::extend<
    caf::reacts_to<parked_atom, Activation>, caf::reacts_to<parked_atom, std::string, uint64_t>,
    caf::reacts_to<stalled_atom, std::string>, caf::reacts_to<wake_atom, std::string, uint64_t>>;

struct PartitionState {
  static inline const char* name = "yantra.partition";
  EngineCtx* ctx = nullptr;
  uint32_t partition = 0;
  std::unordered_map<std::string, execution_actor> live;
  std::unordered_map<caf::actor_addr, std::string> ids;
  std::unordered_map<std::string, int> restarts;
  // Retries waiting for the previous actor of the same execution to exit,
  // with a ticket matching their timeout message.
  std::unordered_map<std::string, std::pair<uint64_t, Activation>> parked;
  uint64_t next_ticket = 1;
  // Passivation: dozing = asked to sleep (actor maybe still alive), with the
  // due time it reported; sleeping = no actor, woken by (generation) timer.
  std::unordered_map<std::string, int64_t> dozing;
  std::unordered_map<std::string, uint64_t> sleeping;  // id -> wake generation
  uint64_t next_generation = 1;
  std::unordered_set<std::string> waking;  // reload in progress
  // Inputs held for executions that are dozing, sleeping or waking, in order:
  // how to send each to the new actor, and how to refuse it (release).
  struct Held {
    std::function<void(const execution_actor&)> send;
    std::function<void(const Status&)> refuse;
  };
  std::unordered_map<std::string, std::vector<Held>> held;
  bool releasing = false;  // release_atom seen: quitting once `live` is empty
};

using Self = std::remove_pointer_t<partition_impl::stateful_pointer<PartitionState>>;

void track(Self* self, const std::string& id, execution_actor a) {
  self->monitor(a);
  self->state.ids.emplace(a.address(), id);
  self->state.live.emplace(id, std::move(a));
}

// Reads the log and the flow of `id` off the scheduler, then activates it.
void reload(Self* self, const std::string& id) {
  EngineCtx* ctx = self->state.ctx;
  const uint32_t p = self->state.partition;
  auto handle = caf::actor_cast<partition_impl>(self);
  ctx->io->submit([ctx, p, id, handle] {
    Activation act;
    act.execution_id = id;
    // From the newest snapshot when there is one (a snapshot that does not
    // restore is only a lost optimisation: fold from the start instead).
    uint64_t from = 1;
    auto snap = ctx->store->events().latest_snapshot(p, id, UINT64_MAX);
    if (snap.ok() && snap.value().has_value()) {
      auto base = restore_snapshot(*snap.value());
      if (base.ok()) {
        from = base.value().last_seq + 1;
        act.base = std::move(base.value());
      }
    }
    auto events = ctx->store->events().read(p, id, from);
    if (!events.ok()) {
      act.error = events.status();
    } else if (!act.base &&
               (events.value().empty() || !events.value().front().has_execution_started())) {
      act.error = Status(StorageErrc::kCorrupt, "log of " + id + " has no ExecutionStarted");
    } else {
      const ExecutionState* base = act.base ? &*act.base : nullptr;
      const auto& started = events.value().empty() ? v1::ExecutionStarted()
                                                   : events.value().front().execution_started();
      const std::string tenant = base ? base->tenant : started.tenant();
      const std::string flow_id = base ? base->flow_id : started.flow_id();
      const uint32_t version = base ? base->flow_version : started.flow_version();
      auto flow = ctx->load_flow(tenant, flow_id, version);
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

Status still_active() {
  return Status(Errc::kConflict, "execution is still active");
}

// Off the scheduler: starts a parked retry if the store still says what the
// retry was built from.
void release_parked(Self* self, Activation act) {
  EngineCtx* ctx = self->state.ctx;
  auto handle = caf::actor_cast<partition_impl>(self);
  ctx->io->submit([ctx, handle, act = std::move(act)]() mutable {
    auto summary = ctx->store->executions().summary(act.execution_id);
    const bool unchanged =
        summary.ok() && summary.value().has_value() &&
        (summary.value()->status() == "failed" || summary.value()->status() == "timed_out") &&
        act.input && summary.value()->last_seq() + 1 == act.input->seq();
    if (!unchanged) {
      if (act.started) act.started(still_active());
      return;
    }
    caf::anon_send(handle, parked_atom::value, std::move(act));
  });
}

// Rebuilds a sleeping (or not loaded) execution so held inputs can reach it.
void wake(Self* self, const std::string& id) {
  auto& st = self->state;
  st.sleeping.erase(id);
  if (st.waking.insert(id).second) reload(self, id);
}

// Delivers an input to the execution's actor, or holds it and wakes the
// execution when it has none (asleep, or active but not loaded).
template <class Atom, class Cmd>
void deliver(Self* self, const std::string& id, Atom atom, Cmd cmd) {
  auto& st = self->state;
  auto it = st.live.find(id);
  if (it != st.live.end() && st.dozing.count(id) == 0) {
    self->send(it->second, atom, std::move(cmd));
    return;
  }
  auto shared = std::make_shared<Cmd>(std::move(cmd));
  st.held[id].push_back(PartitionState::Held{
      [self, atom, shared](const execution_actor& a) { self->send(a, atom, std::move(*shared)); },
      [shared](const Status& s) {
        if (shared->done) shared->done(s);
      }});
  if (it == st.live.end()) wake(self, id);
}

void release_held(Self* self, const std::string& id, const execution_actor& a) {
  auto held = self->state.held.find(id);
  if (held == self->state.held.end()) return;
  auto fns = std::move(held->second);
  self->state.held.erase(held);
  for (auto& h : fns) h.send(a);
}

// Refuses an input that reached a releasing partition.
template <class Cmd>
void refuse(uint32_t p, Cmd& cmd) {
  if (cmd.done) cmd.done(partition_not_led(p, cmd.execution_id));
}

partition_impl::behavior_type partition(Self* self, EngineCtx* ctx, uint32_t p) {
  self->state.ctx = ctx;
  self->state.partition = p;
  // Shutdown: the engine asks partitions to exit; they take their executions
  // with them (the log keeps everything needed to resume them next start).
  self->set_exit_handler([=](caf::exit_msg& em) {
    for (auto& [id, a] : self->state.live) self->send_exit(a, em.reason);
    for (auto& [id, parked] : self->state.parked) {
      if (parked.second.started) parked.second.started(still_active());
    }
    self->state.parked.clear();
    self->quit(em.reason);
  });
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto it = st.ids.find(dm.source);
    if (it == st.ids.end()) return;
    const std::string id = it->second;
    st.ids.erase(it);
    st.live.erase(id);
    if (st.releasing) {  // nothing is rebuilt: the next leader does that
      if (st.live.empty()) self->quit(caf::exit_reason::user_shutdown);
      return;
    }
    if (auto doze = st.dozing.find(id); doze != st.dozing.end()) {
      const int64_t due = doze->second;
      st.dozing.erase(doze);
      if (!dm.reason || dm.reason == caf::exit_reason::normal) {
        if (st.held.count(id) != 0) {
          wake(self, id);  // an input came while it fell asleep
        } else {
          const uint64_t gen = st.next_generation++;
          st.sleeping[id] = gen;
          if (due >= 0) {
            const int64_t delay = std::max<int64_t>(0, due - now_ms());
            self->delayed_send(self, std::chrono::milliseconds(delay), wake_atom::value, id, gen);
          }
        }
        return;
      }
    }
    if (auto parked = st.parked.find(id); parked != st.parked.end()) {
      // The actor a retry waited for is gone: check the retry, start it.
      Activation act = std::move(parked->second.second);
      st.parked.erase(parked);
      release_parked(self, std::move(act));
    }
    if (!dm.reason || dm.reason == caf::exit_reason::normal) {
      st.restarts.erase(id);
      return;
    }
    if (ctx->store->out_of_space() && !ctx->store->latched()) {
      spdlog::warn(
          "partition {}: execution {} paused: the disk is below its free-space floor; "
          "it resumes once space is freed",
          p, id);
      self->delayed_send(self, kStalledRetry, stalled_atom::value, id);
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
        if (st.releasing) {
          if (cmd.started) cmd.started(partition_not_led(p, cmd.execution_id));
          return;
        }
        if (st.live.count(cmd.execution_id) != 0) {
          if (cmd.started) cmd.started(Status(Errc::kConflict, "execution id already running"));
          return;
        }
        const std::string id = cmd.execution_id;
        track(self, id, spawn_execution(self->system(), ctx, p, std::move(cmd)));
      },
      [=](activate_atom, Activation& act) {
        auto& st = self->state;
        if (st.releasing) {
          if (act.started) act.started(partition_not_led(p, act.execution_id));
          return;
        }
        if (st.live.count(act.execution_id) != 0) {
          if (act.input && st.parked.count(act.execution_id) == 0) {
            const std::string id = act.execution_id;
            const uint64_t ticket = st.next_ticket++;
            st.parked.emplace(id, std::make_pair(ticket, std::move(act)));
            self->delayed_send(self, kParkedMs, parked_atom::value, id, ticket);
            return;
          }
          if (act.started) act.started(still_active());
          return;
        }
        const std::string id = act.execution_id;
        st.waking.erase(id);
        st.sleeping.erase(id);
        auto a = spawn_execution(self->system(), ctx, p, std::move(act));
        track(self, id, a);
        release_held(self, id, a);
      },
      // A parked retry that passed its check.
      [=](parked_atom, Activation& act) {
        auto& st = self->state;
        if (st.releasing) {
          if (act.started) act.started(partition_not_led(p, act.execution_id));
          return;
        }
        if (st.live.count(act.execution_id) != 0) {
          if (act.started) act.started(still_active());
          return;
        }
        const std::string id = act.execution_id;
        track(self, id, spawn_execution(self->system(), ctx, p, std::move(act)));
      },
      // A parked retry whose run did not exit in time.
      [=](parked_atom, const std::string& id, uint64_t ticket) {
        auto it = self->state.parked.find(id);
        if (it == self->state.parked.end() || it->second.first != ticket) return;
        Activation act = std::move(it->second.second);
        self->state.parked.erase(it);
        if (act.started) act.started(still_active());
      },
      [=](activate_atom, const std::string& id) {
        if (!self->state.releasing) reload(self, id);
      },
      // An execution paused by a full disk (see the top of this file).
      [=](stalled_atom, const std::string& id) {
        auto& st = self->state;
        if (st.releasing) return;
        if (st.live.count(id) != 0 || st.waking.count(id) != 0) return;  // rebuilt meanwhile
        if (ctx->store->latched()) return;
        if (ctx->store->out_of_space()) {
          self->delayed_send(self, kStalledRetry, stalled_atom::value, id);
          return;
        }
        // Off the scheduler: only an execution whose start was stored has a
        // log to rebuild from.
        auto handle = caf::actor_cast<partition_impl>(self);
        ctx->io->submit([ctx, id, handle] {
          auto summary = ctx->store->executions().summary(id);
          if (summary.ok() && summary.value().has_value()) {
            caf::anon_send(handle, activate_atom::value, id);
          }
        });
      },
      [=](cancel_atom, CancelCommand& cmd) {
        if (self->state.releasing) return refuse(p, cmd);
        const std::string id = cmd.execution_id;
        deliver(self, id, cancel_atom::value, std::move(cmd));
      },
      [=](signal_atom, SignalCommand& cmd) {
        if (self->state.releasing) return refuse(p, cmd);
        const std::string id = cmd.execution_id;
        deliver(self, id, signal_atom::value, std::move(cmd));
      },
      [=](approve_atom, ApprovalCommand& cmd) {
        if (self->state.releasing) return refuse(p, cmd);
        const std::string id = cmd.execution_id;
        deliver(self, id, approve_atom::value, std::move(cmd));
      },
      [=](idle_atom, const std::string& id, int64_t due) {
        auto& st = self->state;
        auto it = st.live.find(id);
        if (st.releasing || it == st.live.end() || st.dozing.count(id) != 0) return;
        st.dozing[id] = due;
        self->send(it->second, sleep_atom::value);
      },
      [=](awake_atom, const std::string& id) {
        auto& st = self->state;
        if (st.releasing) return;
        st.dozing.erase(id);
        auto it = st.live.find(id);
        if (it != st.live.end()) release_held(self, id, it->second);
      },
      [=](wake_atom, const std::string& id, uint64_t gen) {
        auto it = self->state.sleeping.find(id);
        if (it == self->state.sleeping.end() || it->second != gen) return;
        wake(self, id);
      },
      [=](kill_atom, const std::string& id) -> bool {
        auto it = self->state.live.find(id);
        if (self->state.releasing || it == self->state.live.end()) return false;
        self->send(it->second, kill_atom::value);
        return true;
      },
      [=](release_atom) {
        auto& st = self->state;
        if (st.releasing) return;
        st.releasing = true;
        for (auto& [id, inputs] : st.held) {
          for (auto& h : inputs) h.refuse(partition_not_led(p, id));
        }
        st.held.clear();
        for (auto& [id, parked] : st.parked) {
          if (parked.second.started) parked.second.started(partition_not_led(p, id));
        }
        st.parked.clear();
        st.dozing.clear();
        st.sleeping.clear();
        st.waking.clear();
        st.restarts.clear();
        for (auto& [id, a] : st.live) self->send(a, release_atom::value);
        if (st.live.empty()) self->quit(caf::exit_reason::user_shutdown);
      },
  };
}

}  // namespace

partition_actor spawn_partition(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition_id) {
  return sys.spawn(partition, ctx, partition_id);
}

}  // namespace yantra::detail
