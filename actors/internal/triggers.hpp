// What acts on flow triggers inside the engine, kept out of engine.cpp:
//
// - webhooks: a flow whose stored version has a webhook trigger gets a hook
//   id (TriggerStore) the first time; the id survives later versions and is
//   removed with the flow. Checking a request's credentials is the API's
//   business (it owns HTTP); this side only keeps the ids.
// - events: an in-memory index tenant -> event name -> flows, of the active
//   flows whose latest version has an event trigger, so an emitted event
//   costs a lookup, not a scan of the tenant's flows. Built at open from the
//   stored flows, updated by every put and delete.
// - schedules: the Scheduler (scheduler.hpp), fed the same way.
//
// Versions: put_flow() calls on_stored() after its version is durable, but
// two concurrent puts of one flow may call in either order; each flow's
// highest version seen wins and an older one is ignored (a deletion's
// tombstone version included), so the indexes follow the store.
//
// Thread-safety: every method may be called from any thread. The owner
// calls stop() before the engine's actors go away.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/internal/scheduler.hpp"
#include "storage/flow_store.hpp"

namespace yantra::detail {

class Triggers {
 public:
  using StartFn = Scheduler::StartFn;
  using ResolveFn = std::function<Result<std::shared_ptr<const Flow>>(const std::string& tenant,
                                                                      const std::string& flow_id)>;

  Triggers(storage::Store& store, std::shared_ptr<Clock> clock);
  ~Triggers();

  storage::TriggerStore& rows() { return rows_; }

  // Builds the indexes from every stored flow's latest version (flows
  // without a trigger are skipped unparsed). Before start().
  Status load(const ResolveFn& resolve);
  // Starts the scheduler; `start` is Engine::start, `claim` the cluster's
  // slot claim (scheduler.hpp; null = single node).
  void start(StartFn start, Scheduler::ClaimFn claim = {});
  void stop();

  // A version became the latest (after it is durable). Errors only when a
  // needed hook id could not be stored.
  Status on_stored(const std::string& tenant, uint32_t version,
                   const std::shared_ptr<const Flow>& flow);
  // The flow was deleted (its tombstone is `version`): indexes and rows go.
  void on_deleted(const std::string& tenant, const std::string& flow_id, uint32_t version);

  // Starts every active flow of `tenant` whose event trigger matches.
  void emit(const std::string& tenant, const std::string& name, const json& data,
            Engine::EmitFn done);

  std::vector<ScheduleInfo> schedules(const std::string& tenant) const {
    return scheduler_.list(tenant);
  }

 private:
  // Whether `version` is the newest seen for the flow (and records it).
  bool newest(const std::string& key, uint32_t version);  // mu_ held
  void index_events(const std::string& tenant, const std::shared_ptr<const Flow>& flow);  // mu_

  const storage::FlowStore& flows_;  // what load() reads
  storage::TriggerStore rows_;
  Scheduler scheduler_;
  StartFn start_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint32_t> versions_;  // tenant \0 flow_id -> newest seen
  // tenant -> event name -> flow id -> flow (active, event-triggered only)
  std::unordered_map<
      std::string,
      std::unordered_map<std::string, std::map<std::string, std::shared_ptr<const Flow>>>>
      events_;
  std::unordered_map<std::string, std::string> event_of_;  // tenant \0 flow_id -> event name
};

}  // namespace yantra::detail
