// Worker task dispatch cost (actors/task_broker.hpp), in process: 8 worker
// threads long-poll the broker (callbacks, as the HTTP route does) and
// complete each task at once; a submitter keeps `window` calls in flight.
// No HTTP: this is the broker's own cost (queueing, leasing, timers, the
// callbacks); over HTTP each task adds a poll and a complete round trip on
// loopback (docs/tools.md "Tool workers").
//
//   yantra_bench_workers [--tasks N] [--workers W] [--window K]
//
// Prints one JSON object: tasks/s and the added latency (submit -> outcome)
// p50/p99 in µs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/task_broker.hpp"

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  size_t tasks = 50000;
  size_t workers = 8;
  size_t window = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--tasks") == 0) tasks = v;
    if (std::strcmp(argv[i], "--workers") == 0) workers = v;
    if (std::strcmp(argv[i], "--window") == 0) window = v;
  }
  yantra::TaskBroker broker;
  broker.set_limits("t", "bench", yantra::ToolLimits{window, 30000});
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      const std::string id = "w" + std::to_string(w);
      while (!stop.load()) {
        std::promise<std::optional<yantra::DispatchedTask>> p;
        auto f = p.get_future();
        broker.poll("t", id, {"bench"}, 200,
                    [&p](std::optional<yantra::DispatchedTask> t) { p.set_value(std::move(t)); });
        auto t = f.get();
        if (t) (void)broker.complete("t", t->task_id, nlohmann::json{{"ok", true}});
      }
    });
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t in_flight = 0;
  size_t done = 0;
  std::vector<double> latency_us(tasks);
  const auto start = Clock::now();
  for (size_t i = 0; i < tasks; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    yantra::TaskRequest r;
    r.tenant = "t";
    r.tool_id = "bench";
    r.action = "run";
    r.idempotency_key = "k" + std::to_string(i);
    r.parameters = {{"i", i}};
    const auto t0 = Clock::now();
    broker.submit(std::move(r), [&, i, t0](yantra::TaskOutcome) {
      latency_us[i] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == tasks; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : pool) t.join();
  std::sort(latency_us.begin(), latency_us.end());
  auto at = [&](double q) {
    return latency_us[std::min(latency_us.size() - 1, static_cast<size_t>(q * latency_us.size()))];
  };
  std::cout << nlohmann::json{{"workload", "workers"},
                              {"mode", "in-process broker, no HTTP"},
                              {"tasks", tasks},
                              {"workers", workers},
                              {"window", window},
                              {"tasks_per_s", std::round(tasks / seconds)},
                              {"added_latency_p50_us", std::round(at(0.5) * 10) / 10},
                              {"added_latency_p99_us", std::round(at(0.99) * 10) / 10}}
                   .dump()
            << std::endl;
  return 0;
}
