// The broker's state lives under one mutex: tasks by internal id, queues per
// (tenant, tool), waiting polls in arrival order, and a timer multimap the
// broker's own thread sleeps on. Timers are never removed; each carries the
// generation of what it guards (a lease, a poll) and is ignored when that
// moved on, which keeps heartbeats and answered polls O(log n).
//
// Every callback is collected while the lock is held and run after it is
// released (Out below), so a callback may call back into the broker.
#include "actors/task_broker.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "actors/errc.hpp"
#include "base/crypto.hpp"
#include "base/metrics.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"

namespace yantra {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::pair<std::string, std::string>;  // (tenant, tool id | key | worker id)

struct Metrics {
  metrics::Counter& dispatched;
  metrics::Counter& completed;
  metrics::Counter& failed;
  metrics::Counter& lost;
  metrics::Gauge& queued;
  metrics::Histogram& wait;
  static Metrics& get() {
    auto& g = metrics::global();
    static Metrics m{
        g.counter("yantra_worker_tasks_dispatched_total",
                  "Worker tasks handed to a worker (each lease; re-dispatches count again)"),
        g.counter("yantra_worker_tasks_completed_total", "Worker tasks completed by a worker"),
        g.counter("yantra_worker_tasks_failed_total",
                  "Worker tasks failed (by a worker, or worker_lost after the last lost lease)"),
        g.counter("yantra_worker_task_leases_lost_total",
                  "Worker task leases that ran out (the task was dispatched again or failed)"),
        g.gauge("yantra_worker_tasks_queued", "Worker tasks waiting for a worker"),
        g.histogram("yantra_worker_task_wait_seconds",
                    "How long a worker task waited in its queue before each dispatch",
                    metrics::latency_seconds_buckets())};
    return m;
  }
};

}  // namespace

struct TaskBroker::Impl {
  struct Waiter {
    uint64_t ticket;
    Done done;
  };
  struct Task {
    TaskRequest req;
    std::vector<Waiter> waiters;
    bool leased = false;
    std::string dispatch_id;
    std::string worker_id;
    uint32_t attempt = 1;
    uint32_t lost = 0;
    Clock::time_point queued_at;
    Clock::time_point deadline;
    int64_t lease_ms = 0;
    uint64_t gen = 0;
  };
  struct Queue {
    std::deque<uint64_t> queued;
    size_t leased = 0;
  };
  struct Poller {
    std::string tenant;
    std::string worker;
    std::vector<std::string> tools;
    PollDone done;
  };
  struct Worker {
    int64_t last_poll_ms = 0;
    size_t cursor = 0;
    size_t polls = 0;  // polls waiting now
    std::set<uint64_t> leased;
  };
  enum class TimerKind { kPoll, kLease };
  struct Timer {
    TimerKind kind;
    uint64_t id;
    uint64_t gen;
  };
  using Out = std::vector<std::function<void()>>;

  explicit Impl(BrokerOptions o) : options(std::move(o)), m(Metrics::get()) {}

  BrokerOptions options;
  Metrics& m;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // the timer thread ends
  bool shut = false;      // shutdown(): no more tasks
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, Task> tasks;
  std::map<Key, uint64_t> by_key;                         // (tenant, idempotency key) -> task
  std::unordered_map<std::string, uint64_t> by_dispatch;  // task id -> task
  std::unordered_map<uint64_t, uint64_t> by_ticket;       // ticket -> task
  std::map<Key, Queue> queues;
  std::map<Key, ToolLimits> limits;
  std::map<uint64_t, Poller> pollers;  // by id: arrival order
  std::map<Key, Worker> workers;
  std::unordered_map<std::string, std::string> expired;  // task id -> tenant
  std::deque<std::string> expired_order;
  std::multimap<Clock::time_point, Timer> timers;
  size_t queued_total = 0;
  std::thread thread;

  const ToolLimits& limits_of(const std::string& tenant, const std::string& tool) const {
    auto it = limits.find({tenant, tool});
    return it == limits.end() ? options.defaults : it->second;
  }

  void add_timer(Clock::time_point at, Timer t) {
    const bool first = timers.empty() || at < timers.begin()->first;
    timers.emplace(at, t);
    if (first) cv.notify_one();
  }

  void set_queued(int64_t delta) {
    queued_total = static_cast<size_t>(static_cast<int64_t>(queued_total) + delta);
    m.queued.add(delta);
  }

  static std::string new_task_id(uint64_t fallback) {
    // Random: a task id is all a worker shows to complete a task, so
    // another worker of the tenant should not be able to guess one.
    auto token = crypto::random_token(16);
    return "task_" +
           (token.ok() ? token.value() : std::to_string(now_us()) + "_" + std::to_string(fallback));
  }

  DispatchedTask view(const Task& t) const {
    DispatchedTask d;
    d.task_id = t.dispatch_id;
    d.tenant = t.req.tenant;
    d.tool_id = t.req.tool_id;
    d.action = t.req.action;
    d.parameters = t.req.parameters;
    d.idempotency_key = t.req.idempotency_key;
    d.execution_id = t.req.execution_id;
    d.path = t.req.path;
    d.lease_ms = t.lease_ms;
    d.attempt = t.attempt;
    d.worker_id = t.worker_id;
    return d;
  }

  // Leases the next task of one of the worker's tools (round-robin from its
  // cursor, within each tool's concurrency limit).
  std::optional<DispatchedTask> take(const std::string& tenant, const std::string& worker_id,
                                     const std::vector<std::string>& tools) {
    if (tools.empty() || shut) return std::nullopt;
    Worker& w = workers[{tenant, worker_id}];
    const size_t n = tools.size();
    for (size_t i = 0; i < n; ++i) {
      const std::string& tool = tools[(w.cursor + i) % n];
      auto q = queues.find({tenant, tool});
      if (q == queues.end() || q->second.queued.empty()) continue;
      const ToolLimits& lim = limits_of(tenant, tool);
      if (q->second.leased >= std::max<size_t>(1, lim.max_concurrency)) continue;
      const uint64_t id = q->second.queued.front();
      q->second.queued.pop_front();
      set_queued(-1);
      ++q->second.leased;
      w.cursor = (w.cursor + i + 1) % n;
      w.leased.insert(id);
      Task& t = tasks.at(id);
      t.leased = true;
      t.worker_id = worker_id;
      t.dispatch_id = new_task_id(id);
      t.lease_ms = lim.lease_ms;
      const auto now = Clock::now();
      t.deadline = now + std::chrono::milliseconds(t.lease_ms);
      ++t.gen;
      by_dispatch[t.dispatch_id] = id;
      add_timer(t.deadline, Timer{TimerKind::kLease, id, t.gen});
      DispatchedTask d = view(t);
      d.wait_us = std::chrono::duration_cast<std::chrono::microseconds>(now - t.queued_at).count();
      m.dispatched.inc();
      m.wait.observe(static_cast<double>(d.wait_us) / 1e6);
      return d;
    }
    return std::nullopt;
  }

  // Hands queued tasks of `tenant` to its waiting polls, oldest poll first.
  void pump(const std::string& tenant, Out& out) {
    for (auto it = pollers.begin(); it != pollers.end();) {
      if (it->second.tenant != tenant) {
        ++it;
        continue;
      }
      auto got = take(tenant, it->second.worker, it->second.tools);
      if (!got) {
        ++it;
        continue;
      }
      auto wit = workers.find({tenant, it->second.worker});
      if (wit != workers.end() && wit->second.polls > 0) --wit->second.polls;
      out.push_back([done = std::move(it->second.done), task = std::move(*got)]() mutable {
        done(std::move(task));
      });
      it = pollers.erase(it);
    }
  }

  // The lease of a leased task ends (completed, failed, expired).
  void release(uint64_t id, Task& t) {
    if (!t.leased) return;
    t.leased = false;
    by_dispatch.erase(t.dispatch_id);
    auto q = queues.find({t.req.tenant, t.req.tool_id});
    if (q != queues.end() && q->second.leased > 0) --q->second.leased;
    auto w = workers.find({t.req.tenant, t.worker_id});
    if (w != workers.end()) w->second.leased.erase(id);
  }

  void remember_expired(const std::string& dispatch_id, const std::string& tenant) {
    expired[dispatch_id] = tenant;
    expired_order.push_back(dispatch_id);
    while (expired_order.size() > options.remember_expired) {
      expired.erase(expired_order.front());
      expired_order.pop_front();
    }
  }

  // Ends a task: every waiter gets `outcome`.
  void finish(uint64_t id, const TaskOutcome& outcome, Out& out) {
    auto it = tasks.find(id);
    if (it == tasks.end()) return;
    Task& t = it->second;
    const std::string tenant = t.req.tenant;
    if (t.leased) {
      release(id, t);
    } else {
      auto q = queues.find({tenant, t.req.tool_id});
      if (q != queues.end()) {
        auto& d = q->second.queued;
        for (auto qi = d.begin(); qi != d.end(); ++qi) {
          if (*qi == id) {
            d.erase(qi);
            set_queued(-1);
            break;
          }
        }
      }
    }
    if (!t.req.idempotency_key.empty()) {
      auto k = by_key.find({tenant, t.req.idempotency_key});
      if (k != by_key.end() && k->second == id) by_key.erase(k);
    }
    for (auto& w : t.waiters) {
      by_ticket.erase(w.ticket);
      out.push_back([done = std::move(w.done), outcome] { done(outcome); });
    }
    tasks.erase(it);
    pump(tenant, out);  // a concurrency slot may have freed
  }

  void expire_lease(uint64_t id, uint64_t gen, Out& out) {
    auto it = tasks.find(id);
    if (it == tasks.end()) return;
    Task& t = it->second;
    if (!t.leased || t.gen != gen) return;
    m.lost.inc();
    remember_expired(t.dispatch_id, t.req.tenant);
    DispatchedTask lost = view(t);
    release(id, t);
    ++t.lost;
    if (t.lost >= options.max_lost_leases) {
      if (options.on_event) {
        out.push_back([cb = options.on_event, lost] { cb("task.worker_lost", lost); });
      }
      m.failed.inc();
      TaskOutcome o;
      o.ok = false;
      o.code = "worker_lost";
      o.message = "the task's lease ran out " + std::to_string(t.lost) +
                  " times (the workers serving tool '" + t.req.tool_id +
                  "' died or stopped heartbeating)";
      o.retryable = true;
      finish(id, o, out);
      return;
    }
    if (options.on_event) {
      out.push_back([cb = options.on_event, lost] { cb("task.lease_lost", lost); });
    }
    ++t.attempt;
    t.worker_id.clear();
    t.dispatch_id.clear();
    t.queued_at = Clock::now();
    // To the front: it has waited longest.
    queues[{t.req.tenant, t.req.tool_id}].queued.push_front(id);
    set_queued(1);
    pump(t.req.tenant, out);
  }

  void expire_poll(uint64_t id, Out& out) {
    auto it = pollers.find(id);
    if (it == pollers.end()) return;
    auto w = workers.find({it->second.tenant, it->second.worker});
    if (w != workers.end() && w->second.polls > 0) --w->second.polls;
    out.push_back([done = std::move(it->second.done)] { done(std::nullopt); });
    pollers.erase(it);
  }

  void run_timers() {
    name_this_thread("y-task-timer");
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      if (timers.empty()) {
        cv.wait(lock);
        continue;
      }
      const auto at = timers.begin()->first;
      if (Clock::now() < at) {
        cv.wait_until(lock, at);
        continue;
      }
      Out out;
      const auto now = Clock::now();
      while (!timers.empty() && timers.begin()->first <= now) {
        Timer t = timers.begin()->second;
        timers.erase(timers.begin());
        if (t.kind == TimerKind::kPoll) {
          expire_poll(t.id, out);
        } else {
          expire_lease(t.id, t.gen, out);
        }
      }
      lock.unlock();
      for (auto& f : out) f();
      lock.lock();
    }
  }

  // A task id of the tenant that is leased now, or the error to answer.
  Result<uint64_t> leased(const std::string& tenant, const std::string& task_id) const {
    auto it = by_dispatch.find(task_id);
    if (it != by_dispatch.end()) {
      const Task& t = tasks.at(it->second);
      if (t.req.tenant == tenant) return it->second;
    }
    auto e = expired.find(task_id);
    if (e != expired.end() && e->second == tenant) {
      return Status(ActorsErrc::kLeaseExpired,
                    "the lease of task '" + task_id +
                        "' ran out: it was dispatched again or failed; drop its result");
    }
    return Status(Errc::kNotFound, "task '" + task_id + "' not found");
  }
};

TaskBroker::TaskBroker(BrokerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run_timers(); });
}

TaskBroker::~TaskBroker() {
  shutdown();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void TaskBroker::set_limits(const std::string& tenant, const std::string& tool_id,
                            ToolLimits limits) {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->limits[{tenant, tool_id}] = limits;
    impl_->pump(tenant, out);  // a raised limit may let queued tasks go
  }
  for (auto& f : out) f();
}

uint64_t TaskBroker::submit(TaskRequest request, Done done) {
  Impl::Out out;
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    ticket = s.next_id++;
    if (s.shut) {
      TaskOutcome o;
      o.code = "node_shutting_down";
      o.message = "the node is shutting down";
      out.push_back([done = std::move(done), o] { done(o); });
    } else {
      uint64_t id = 0;
      if (!request.idempotency_key.empty()) {
        auto k = s.by_key.find({request.tenant, request.idempotency_key});
        if (k != s.by_key.end()) id = k->second;
      }
      if (id != 0) {
        s.tasks.at(id).waiters.push_back({ticket, std::move(done)});  // joins the task in flight
      } else {
        id = s.next_id++;
        Impl::Task t;
        t.req = std::move(request);
        t.queued_at = Clock::now();
        t.waiters.push_back({ticket, std::move(done)});
        const std::string tenant = t.req.tenant;
        if (!t.req.idempotency_key.empty()) s.by_key[{tenant, t.req.idempotency_key}] = id;
        s.queues[{tenant, t.req.tool_id}].queued.push_back(id);
        s.set_queued(1);
        s.tasks.emplace(id, std::move(t));
        s.pump(tenant, out);
      }
      s.by_ticket[ticket] = id;
    }
  }
  for (auto& f : out) f();
  return ticket;
}

bool TaskBroker::withdraw(uint64_t ticket) {
  Impl::Out out;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    auto it = s.by_ticket.find(ticket);
    if (it == s.by_ticket.end()) return false;
    const uint64_t id = it->second;
    s.by_ticket.erase(it);
    auto t = s.tasks.find(id);
    if (t != s.tasks.end()) {
      auto& w = t->second.waiters;
      for (auto wi = w.begin(); wi != w.end(); ++wi) {
        if (wi->ticket == ticket) {
          w.erase(wi);
          found = true;
          break;
        }
      }
      // Nobody waits for a queued task any more: it is not dispatched.
      if (w.empty() && !t->second.leased) s.finish(id, TaskOutcome{}, out);
    }
  }
  for (auto& f : out) f();
  return found;
}

void TaskBroker::poll(const std::string& tenant, const std::string& worker_id,
                      std::vector<std::string> tools, int64_t wait_ms, PollDone done) {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    Impl::Worker& w = s.workers[{tenant, worker_id}];
    w.last_poll_ms = now_ms();
    std::optional<DispatchedTask> got;
    if (!s.shut) got = s.take(tenant, worker_id, tools);
    if (got || wait_ms <= 0 || s.shut) {
      out.push_back(
          [done = std::move(done), got = std::move(got)]() mutable { done(std::move(got)); });
    } else {
      const uint64_t id = s.next_id++;
      s.pollers.emplace(id, Impl::Poller{tenant, worker_id, std::move(tools), std::move(done)});
      ++s.workers[{tenant, worker_id}].polls;
      s.add_timer(Clock::now() + std::chrono::milliseconds(wait_ms),
                  Impl::Timer{Impl::TimerKind::kPoll, id, 0});
    }
  }
  for (auto& f : out) f();
}

Result<int64_t> TaskBroker::heartbeat(const std::string& tenant, const std::string& task_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& s = *impl_;
  auto id = s.leased(tenant, task_id);
  if (!id.ok()) return id.status();
  Impl::Task& t = s.tasks.at(id.value());
  t.deadline = Clock::now() + std::chrono::milliseconds(t.lease_ms);
  ++t.gen;
  s.add_timer(t.deadline, Impl::Timer{Impl::TimerKind::kLease, id.value(), t.gen});
  return t.lease_ms;
}

Status TaskBroker::complete(const std::string& tenant, const std::string& task_id, json output) {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    auto id = s.leased(tenant, task_id);
    if (!id.ok()) return id.status();
    s.m.completed.inc();
    TaskOutcome o;
    o.ok = true;
    o.output = std::move(output);
    s.finish(id.value(), o, out);
  }
  for (auto& f : out) f();
  return Status::ok();
}

Status TaskBroker::fail(const std::string& tenant, const std::string& task_id, std::string code,
                        std::string message, bool retryable) {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    auto id = s.leased(tenant, task_id);
    if (!id.ok()) return id.status();
    s.m.failed.inc();
    TaskOutcome o;
    o.ok = false;
    o.code = std::move(code);
    o.message = std::move(message);
    o.retryable = retryable;
    s.finish(id.value(), o, out);
  }
  for (auto& f : out) f();
  return Status::ok();
}

TaskBroker::WorkerStatus TaskBroker::worker_status(const std::string& tenant,
                                                   const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  WorkerStatus out;
  auto it = impl_->workers.find({tenant, worker_id});
  if (it == impl_->workers.end()) return out;
  out.last_poll_ms = it->second.last_poll_ms;
  out.polling = it->second.polls > 0;
  for (uint64_t id : it->second.leased) {
    auto t = impl_->tasks.find(id);
    if (t != impl_->tasks.end()) out.in_flight.push_back(impl_->view(t->second));
  }
  return out;
}

void TaskBroker::forget_worker(const std::string& tenant, const std::string& worker_id) {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->workers.find({tenant, worker_id});
    if (it == impl_->workers.end()) return;
    std::vector<uint64_t> polls;
    for (const auto& [id, p] : impl_->pollers) {
      if (p.tenant == tenant && p.worker == worker_id) polls.push_back(id);
    }
    for (uint64_t id : polls) impl_->expire_poll(id, out);
    // Its leases are tracked by task; keep the record while it holds any.
    if (it->second.leased.empty()) impl_->workers.erase(it);
  }
  for (auto& f : out) f();
}

size_t TaskBroker::queue_depth() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queued_total;
}

size_t TaskBroker::queue_depth(const std::string& tenant, const std::string& tool_id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->queues.find({tenant, tool_id});
  return it == impl_->queues.end() ? 0 : it->second.queued.size();
}

void TaskBroker::shutdown() {
  Impl::Out out;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& s = *impl_;
    if (s.shut) return;
    s.shut = true;
    TaskOutcome o;
    o.code = "node_shutting_down";
    o.message = "the node is shutting down";
    std::vector<uint64_t> ids;
    for (const auto& [id, t] : s.tasks) ids.push_back(id);
    for (uint64_t id : ids) s.finish(id, o, out);
    std::vector<uint64_t> polls;
    for (const auto& [id, p] : s.pollers) polls.push_back(id);
    for (uint64_t id : polls) s.expire_poll(id, out);
  }
  for (auto& f : out) f();
}

}  // namespace yantra
