// The schedule trigger: for every flow whose latest version has a `schedule`
// trigger, the next slot its cron expression gives in the flow's time zone,
// and one execution started per slot.
//
// Exactly once per slot, also across crashes: a slot is started through
// Engine::start with the idempotency key "schedule/<flow_id>/<slot_ms>",
// whose row is written in the batch of the run's ExecutionStarted. Only
// after that start is acknowledged is the slot recorded as fired (the
// TriggerStore "S" row). A crash between the two makes the next start of the
// same slot find the key and answer with the first execution: a slot can be
// started again, never run twice.
//
// After a restart (load()): catch_up "none" resumes at the first slot after
// now; "all" first fires every slot after max(last fired, anchor) up to now,
// oldest first, at most kMaxCatchUp of them (the oldest), then goes on. A
// schedule that (re)starts counting from now (new, resumed, cron or zone
// changed) writes now as its anchor, so catch-up never reaches back into the
// time it did not exist or was paused. While running, every slot that
// comes due is fired, in order, even if the thread woke late.
//
// Refusals by a limit (tenant suspended, rate limit, quota) consume the slot
// (it is recorded and logged, not retried: retrying would pile up runs the
// limit exists to prevent); other failures (storage, shutdown) leave it due
// and it is tried again a second later.
//
// In a cluster every node runs a scheduler over the same flows, so a slot is
// claimed before it is fired (EngineOptions::claim_schedule_slot, an etcd
// create-if-absent): only the node whose claim succeeds fires it; the others
// record it as handled and move on. Null = single node, every slot is ours.
// The claim is asked again if a start of the slot is retried, so it must
// answer true again to the node that holds it.
//
// Threads: one thread of its own, which blocks on nothing but its condition
// variable, the claim (bounded, ~1 s) and the acknowledgement of one start at a time (Engine::start
// never blocks on an actor; the acknowledgement arrives from the partition's
// log writer). update()/remove()/list() may be called from any thread. Time
// comes from the injected Clock only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/clock.hpp"
#include "actors/engine.hpp"
#include "storage/trigger_store.hpp"

namespace yantra::detail {

class Scheduler {
 public:
  static constexpr size_t kMaxCatchUp = 1000;
  using StartFn = std::function<void(RunRequest, Engine::StartedFn)>;
  // Whether this node may fire (tenant, flow, slot); null = always.
  using ClaimFn = std::function<bool(const std::string&, const std::string&, int64_t)>;

  Scheduler(storage::TriggerStore& rows, std::shared_ptr<Clock> clock);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // A stored flow found at open (catch-up applies). Before start().
  void load(const std::string& tenant, const std::shared_ptr<const Flow>& flow);
  // A new latest version of a flow (any trigger type: a flow that lost its
  // schedule trigger is dropped).
  void update(const std::string& tenant, const std::shared_ptr<const Flow>& flow);
  void remove(const std::string& tenant, const std::string& flow_id);

  void start(StartFn start, ClaimFn claim = {});
  // Joins the thread; a start in flight is abandoned (its slot stays due).
  void stop();

  std::vector<ScheduleInfo> list(const std::string& tenant) const;

 private:
  struct Entry {
    std::string tenant;
    std::string flow_id;
    std::string cron;
    CronSpec spec;
    std::string time_zone;
    std::string catch_up;
    json input;
    bool paused = false;
    int64_t next_ms = 0;          // 0 = none (paused, or never fires again)
    std::deque<int64_t> backlog;  // missed slots, fired before next_ms
    int64_t last_fired_ms = 0;
    int64_t anchor_ms = 0;
    uint64_t generation = 0;  // bumped when the schedule restarts
    int64_t due() const { return backlog.empty() ? next_ms : backlog.front(); }
  };
  struct Firing {
    std::string key;
    std::string tenant;
    std::string flow_id;
    int64_t slot_ms = 0;
    json input;
    uint64_t generation = 0;
  };

  void run();
  Status fire(const Firing& f);                   // without mu_
  void finish(const Firing& f, const Status& s);  // mu_ held
  void copy_trigger(Entry& e, const Flow& flow);
  void restart_from_now(Entry& e, int64_t now);  // mu_ held
  int64_t next_after(const Entry& e, int64_t after_ms) const;
  void persist(const Entry& e);  // mu_ held

  storage::TriggerStore& rows_;
  std::shared_ptr<Clock> clock_;
  uint64_t clock_token_ = 0;
  StartFn start_;
  ClaimFn claim_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;  // something changed since the thread last looked
  std::atomic<bool> stop_{false};
  std::chrono::steady_clock::time_point retry_at_{};
  std::map<std::string, Entry> entries_;  // tenant \0 flow_id
  std::thread thread_;
};

}  // namespace yantra::detail
