// Callback delivery latency on loopback: how long after its event a callback
// reaches the receiver. An in-process engine (durability `sync`) runs a
// 2-step core.echo flow whose callback subscribes to step.completed and
// execution.completed (3 deliveries per execution, signed) in a sliding
// window; a local HTTP receiver (tests/http_test_server.hpp) answers 204 and
// notes when each delivery arrived. The delay of a delivery is its arrival
// minus the time_ms of the event in the log (both wall clock, ms), so it
// covers the group commit, the dispatcher's wake-up, signing and the POST.
//
//   yantra_bench_callbacks [--executions N] [--window W] [--dir D]
//
// Prints one JSON object: deliveries, deliveries/s, p50/p99/max delay.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/engine.hpp"
#include "base/time.hpp"
#include "tests/http_test_server.hpp"

namespace {

using yantra::json;
using yantra::now_ms;
using Clock = std::chrono::steady_clock;

struct Args {
  int executions = 2000;
  int window = 50;
  std::string dir;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--executions") a.executions = std::stoi(next());
    if (k == "--window") a.window = std::stoi(next());
    if (k == "--dir") a.dir = next();
  }
  if (a.dir.empty()) {
    a.dir = (std::filesystem::temp_directory_path() /
             ("yantra-bench-callbacks-" + std::to_string(getpid())))
                .string();
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::mutex rx_mu;
  std::map<std::string, int64_t> arrived;  // delivery id -> wall ms
  yantra::testing::HttpTestServer receiver([&](const yantra::testing::TestRequest& req) {
    const int64_t now = now_ms();
    {
      std::lock_guard<std::mutex> lock(rx_mu);
      arrived.emplace(req.header("x-yantra-delivery"), now);
    }
    auto r = yantra::testing::TestResponse::text(204, "");
    r.content_type.clear();
    return r;
  });

  yantra::EngineOptions opts;
  opts.data_dir = a.dir;
  auto engine_or = yantra::Engine::open(opts);
  if (!engine_or.ok()) {
    std::cerr << engine_or.status().to_string() << "\n";
    return 1;
  }
  auto engine = std::move(engine_or.value());
  json flow = json::parse(R"J({
    "id": "cb", "steps": [
      {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"n": {"$ref": "input.n"}}}, "on_success": "b"},
      {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"n": {"$expr": "a.n + 1"}}}}],
    "output": {"n": {"$ref": "b.n"}}})J");
  flow["config"]["callbacks"] = {{{"url", receiver.url("/hook")},
                                  {"events", {"step.completed", "execution.completed"}},
                                  {"secret", "bench-signing-key"}}};
  if (auto v = engine->put_flow("default", flow); !v.ok()) {
    std::cerr << v.status().to_string() << "\n";
    return 1;
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> ids;
  std::atomic<int> launched{0};
  std::atomic<int> finished{0};
  std::function<void()> launch_one = [&] {
    const int i = launched.fetch_add(1);
    if (i >= a.executions) return;
    yantra::RunRequest req;
    req.flow_id = "cb";
    req.input = {{"n", i}};
    engine->start(
        std::move(req),
        [&](yantra::Result<std::string> id) {
          if (!id.ok()) {
            if (finished.fetch_add(1) + 1 == a.executions) cv.notify_all();
            launch_one();
          }
        },
        [&](const yantra::ExecutionResult& r) {
          {
            std::lock_guard<std::mutex> lock(mu);
            ids.push_back(r.execution_id);
          }
          if (finished.fetch_add(1) + 1 == a.executions) cv.notify_all();
          launch_one();
        });
  };
  const auto t0 = Clock::now();
  for (int i = 0; i < std::min(a.window, a.executions); ++i) launch_one();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished.load() >= a.executions; });
  }
  const size_t want = 3 * ids.size();
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(rx_mu);
      if (arrived.size() >= want || Clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<double> delays;
  {
    std::lock_guard<std::mutex> lock(rx_mu);
    for (const auto& id : ids) {
      auto events = engine->load_events(id);
      if (!events.ok()) continue;
      for (const auto& ev : events.value()) {
        auto it = arrived.find(id + "/" + std::to_string(ev.seq()) + "/0");
        if (it != arrived.end()) delays.push_back(static_cast<double>(it->second - ev.time_ms()));
      }
    }
  }
  std::sort(delays.begin(), delays.end());
  auto pct = [&](double p) {
    return delays.empty()
               ? 0.0
               : delays[std::min(delays.size() - 1, static_cast<size_t>(p * delays.size()))];
  };
  json out = {{"bench", "callbacks"},
              {"executions", a.executions},
              {"window", a.window},
              {"deliveries", delays.size()},
              {"missing", want - std::min(want, delays.size())},
              {"seconds", secs},
              {"deliveries_per_s", static_cast<double>(delays.size()) / secs},
              {"p50_ms", pct(0.50)},
              {"p99_ms", pct(0.99)},
              {"max_ms", delays.empty() ? 0.0 : delays.back()}};
  std::cout << out.dump() << std::endl;
  engine.reset();
  std::error_code ec;
  std::filesystem::remove_all(a.dir, ec);
  return 0;
}
