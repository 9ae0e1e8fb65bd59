// The scheduler's thread fires one slot at a time, the earliest due slot of
// any flow first, and waits for that start's acknowledgement before the
// next: slots are minutes apart, so sequential firing costs nothing, and it
// keeps "recorded as fired" strictly after "durably started" without any
// bookkeeping of starts in flight. The lock is never held across a start.
#include "actors/internal/scheduler.hpp"

#include <algorithm>
#include <climits>
#include <future>

#include <spdlog/spdlog.h>

#include "actors/errc.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"
#include "runtime/errc.hpp"

namespace yantra::detail {
namespace {

// Refusals that will not change by trying the same slot again soon.
bool consumes_slot(const Status& s) {
  return s.is(ActorsErrc::kTenantSuspended) || s.is(Errc::kRateLimited) ||
         s.is(Errc::kQuotaExceeded) || s.is(Errc::kConflict) || s.is(Errc::kNotFound) ||
         s.is(RuntimeErrc::kInvalidFlow);
}

std::string entry_key(const std::string& tenant, const std::string& flow_id) {
  return tenant + '\0' + flow_id;
}

}  // namespace

Scheduler::Scheduler(storage::TriggerStore& rows, std::shared_ptr<Clock> clock)
    : rows_(rows), clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()) {
  clock_token_ = clock_->subscribe([this] {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
    cv_.notify_all();
  });
}

Scheduler::~Scheduler() {
  stop();
  clock_->unsubscribe(clock_token_);
}

int64_t Scheduler::next_after(const Entry& e, int64_t after_ms) const {
  auto next = next_fire_ms(e.spec, e.time_zone, after_ms);
  if (!next.ok()) {
    spdlog::warn("schedule of {}/{} stops: {}", e.tenant, e.flow_id, next.status().to_string());
    return 0;
  }
  return next.value();
}

void Scheduler::copy_trigger(Entry& e, const Flow& flow) {
  const Trigger& t = flow.trigger_spec;
  e.cron = t.cron;
  e.spec = t.cron_spec;
  e.time_zone = t.time_zone;
  e.catch_up = t.catch_up;
  e.input = t.schedule_input.is_object() ? t.schedule_input : json::object();
  e.paused = flow.status == "paused";
}

void Scheduler::persist(const Entry& e) {
  Status s = rows_.put_schedule(e.tenant, e.flow_id, {e.last_fired_ms, e.anchor_ms});
  if (!s.is_ok()) spdlog::error("schedule of {}/{}: {}", e.tenant, e.flow_id, s.to_string());
}

void Scheduler::restart_from_now(Entry& e, int64_t now) {
  ++e.generation;
  e.backlog.clear();
  if (e.paused) {
    e.next_ms = 0;
    return;
  }
  e.anchor_ms = now;
  persist(e);
  e.next_ms = next_after(e, now);
}

void Scheduler::load(const std::string& tenant, const std::shared_ptr<const Flow>& flow) {
  if (flow->trigger_spec.type != Trigger::Type::kSchedule) return;
  const int64_t now = clock_->now_ms();
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[entry_key(tenant, flow->id)];
  e.tenant = tenant;
  e.flow_id = flow->id;
  copy_trigger(e, *flow);
  auto row = rows_.schedule(tenant, flow->id);
  if (!row.ok()) spdlog::error("schedule of {}/{}: {}", tenant, flow->id, row.status().to_string());
  if (!row.ok() || !row.value().has_value()) {
    // Never seen (or unreadable): it starts counting now.
    restart_from_now(e, now);
    return;
  }
  e.last_fired_ms = row.value()->last_fired_ms;
  e.anchor_ms = row.value()->anchor_ms;
  if (e.paused) return;
  if (e.catch_up == "all") {
    const int64_t floor = std::max(e.last_fired_ms, e.anchor_ms);
    auto missed = fire_times_between(e.spec, e.time_zone, floor, now, kMaxCatchUp + 1);
    if (!missed.ok()) {
      spdlog::error("catch-up of {}/{}: {}", tenant, flow->id, missed.status().to_string());
    } else {
      if (missed.value().size() > kMaxCatchUp) {
        spdlog::warn("catch-up of {}/{}: more than {} slots missed; firing the oldest {}", tenant,
                     flow->id, kMaxCatchUp, kMaxCatchUp);
        missed.value().resize(kMaxCatchUp);
      }
      e.backlog.assign(missed.value().begin(), missed.value().end());
    }
  }
  e.next_ms = next_after(e, now);
}

void Scheduler::update(const std::string& tenant, const std::shared_ptr<const Flow>& flow) {
  const std::string key = entry_key(tenant, flow->id);
  const int64_t now = clock_->now_ms();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (flow->trigger_spec.type != Trigger::Type::kSchedule) {
    if (it != entries_.end()) entries_.erase(it);
    dirty_ = true;
    cv_.notify_all();
    return;
  }
  if (it == entries_.end()) {
    Entry& e = entries_[key];
    e.tenant = tenant;
    e.flow_id = flow->id;
    copy_trigger(e, *flow);
    // A flow that had a schedule before (another trigger in between) keeps
    // what it fired; it counts from now all the same.
    auto row = rows_.schedule(tenant, flow->id);
    if (row.ok() && row.value().has_value()) e.last_fired_ms = row.value()->last_fired_ms;
    restart_from_now(e, now);
  } else {
    Entry& e = it->second;
    const bool was_paused = e.paused;
    const bool same_slots =
        e.cron == flow->trigger_spec.cron && e.time_zone == flow->trigger_spec.time_zone;
    copy_trigger(e, *flow);
    // Same slots and still running: keep the position (a new version must
    // not skip or repeat a slot). Otherwise count from now.
    if (!(same_slots && !was_paused && !e.paused) && !(was_paused && e.paused)) {
      restart_from_now(e, now);
    }
  }
  dirty_ = true;
  cv_.notify_all();
}

void Scheduler::remove(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(entry_key(tenant, flow_id));
  dirty_ = true;
  cv_.notify_all();
}

void Scheduler::start(StartFn start, ClaimFn claim) {
  start_ = std::move(start);
  claim_ = std::move(claim);
  thread_ = std::thread([this] {
    name_this_thread("y-scheduler");
    run();
  });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<ScheduleInfo> Scheduler::list(const std::string& tenant) const {
  std::vector<ScheduleInfo> out;
  const std::string prefix = tenant + '\0';
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const Entry& e = it->second;
    ScheduleInfo info;
    info.flow_id = e.flow_id;
    info.cron = e.cron;
    info.time_zone = e.time_zone;
    info.catch_up = e.catch_up;
    info.status = e.paused ? "paused" : "active";
    info.next_fire_ms = e.paused ? 0 : e.due();
    info.last_fired_ms = e.last_fired_ms;
    out.push_back(std::move(info));
  }
  return out;
}

void Scheduler::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const int64_t now = clock_->now_ms();
    const Entry* due = nullptr;
    int64_t earliest = INT64_MAX;
    for (const auto& [key, e] : entries_) {
      const int64_t slot = e.paused ? 0 : e.due();
      if (slot <= 0) continue;
      if (slot <= now) {
        if (due == nullptr || slot < due->due()) due = &e;
      } else {
        earliest = std::min(earliest, slot);
      }
    }
    std::chrono::milliseconds wait = std::chrono::hours(1);
    if (due != nullptr) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          retry_at_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        Firing f;
        f.key = entry_key(due->tenant, due->flow_id);
        f.tenant = due->tenant;
        f.flow_id = due->flow_id;
        f.slot_ms = due->due();
        f.input = due->input;
        f.generation = due->generation;
        lock.unlock();
        Status outcome = fire(f);
        lock.lock();
        finish(f, outcome);
        continue;
      }
      wait = left;
    } else if (earliest != INT64_MAX) {
      wait = clock_->real_wait(earliest);
    }
    dirty_ = false;
    cv_.wait_for(lock, wait, [&] { return stop_.load() || dirty_; });
  }
}

Status Scheduler::fire(const Firing& f) {
  if (claim_ && !claim_(f.tenant, f.flow_id, f.slot_ms)) {
    // Another node holds this slot: it is handled there, not here.
    spdlog::debug("scheduled run of {}/{} at {} is another node's", f.tenant, f.flow_id,
                  format_rfc3339_ms(f.slot_ms));
    return Status::ok();
  }
  RunRequest run;
  run.tenant = f.tenant;
  run.flow_id = f.flow_id;
  run.input = f.input;
  run.input["scheduled_at"] = format_rfc3339_ms(f.slot_ms);
  run.idempotency_key = "schedule/" + f.flow_id + "/" + std::to_string(f.slot_ms);
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  start_(std::move(run), [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  // Bounded, and in slices so that stop() is never held up by a start.
  for (int i = 0; i < 600; ++i) {
    if (future.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) {
      auto r = future.get();
      return r.ok() ? Status::ok() : r.status();
    }
    if (stop_) return Status(Errc::kUnavailable, "scheduler stopping");
  }
  return Status(Errc::kTimeout, "start of a scheduled run was not acknowledged within 30 s");
}

void Scheduler::finish(const Firing& f, const Status& s) {
  if (!s.is_ok() && !consumes_slot(s)) {
    if (!stop_) {
      spdlog::warn("scheduled run of {}/{} at {} failed, retrying: {}", f.tenant, f.flow_id,
                   format_rfc3339_ms(f.slot_ms), s.to_string());
    }
    retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    return;
  }
  if (!s.is_ok()) {
    spdlog::warn("scheduled run of {}/{} at {} refused: {}", f.tenant, f.flow_id,
                 format_rfc3339_ms(f.slot_ms), s.to_string());
  }
  auto it = entries_.find(f.key);
  if (it == entries_.end()) return;  // deleted meanwhile: its rows are gone too
  Entry& e = it->second;
  if (e.generation == f.generation) {
    if (!e.backlog.empty() && e.backlog.front() == f.slot_ms) {
      e.backlog.pop_front();
    } else if (e.next_ms == f.slot_ms) {
      e.next_ms = next_after(e, f.slot_ms);
    }
  }
  if (f.slot_ms > e.last_fired_ms) {
    e.last_fired_ms = f.slot_ms;
    persist(e);
  }
}

}  // namespace yantra::detail
