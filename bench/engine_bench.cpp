// In-process engine benchmarks. Prints one JSON object per line and workload
// so results can be compared over time (bench/run collects them).
//
//   engine_3step   the 3-step core.echo workflow, started in a sliding window
//                  of `--window` concurrent executions until `--executions`
//                  have finished: executions/s, events/s, start-to-finish
//                  latency p50/p99, writer batch sizes, resident memory.
//   engine_waiting `--waiting` executions parked in a 1-hour delay: resident
//                  memory per waiting execution.
//   engine_signal_wait `--waiting` executions waiting for a signal: resident
//                  memory once every one is passivated (no actor), then the
//                  time to signal them all awake and run them to the end.
//
// Durability is `sync` unless --async is given: every acknowledged event is
// fsynced (group commit), which is what the floors in the issues refer to.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/engine.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using yantra::json;

double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

struct Args {
  std::string workload = "all";
  int executions = 100000;
  int window = 2000;
  int waiting = 20000;
  int loop_items = 100000;
  uint32_t partitions = 4;
  bool async = false;
  std::string policy = "sharing";
  std::string dir;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--executions")
      a.executions = std::stoi(next());
    else if (k == "--window")
      a.window = std::stoi(next());
    else if (k == "--waiting")
      a.waiting = std::stoi(next());
    else if (k == "--loop-items")
      a.loop_items = std::stoi(next());
    else if (k == "--partitions")
      a.partitions = static_cast<uint32_t>(std::stoi(next()));
    else if (k == "--async")
      a.async = true;
    else if (k == "--policy")
      a.policy = next();
    else if (k == "--dir")
      a.dir = next();
    else
      a.workload = k;
  }
  if (a.dir.empty()) {
    a.dir = (std::filesystem::temp_directory_path() / ("yantra-bench-" + std::to_string(getpid())))
                .string();
  }
  return a;
}

std::unique_ptr<yantra::Engine> open_engine(const Args& a, const std::string& sub) {
  yantra::EngineOptions opts;
  opts.data_dir = a.dir + "/" + sub;
  opts.partitions = a.partitions;
  opts.scheduler_policy = a.policy;
  opts.durability = a.async ? yantra::Durability::kAsync : yantra::Durability::kSync;
  auto e = yantra::Engine::open(opts);
  if (!e.ok()) {
    std::cerr << e.status().to_string() << "\n";
    std::exit(1);
  }
  return std::move(e.value());
}

void bench_3step(const Args& a) {
  auto engine = open_engine(a, "3step");
  auto v = engine->put_flow("default", json::parse(R"J({
    "id": "three", "steps": [
      {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"n": {"$ref": "input.n"}}}, "on_success": "b"},
      {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"n": {"$expr": "a.n + 1"}}}, "on_success": "c"},
      {"id": "c", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"n": {"$expr": "b.n * 2"}}}}],
    "output": {"n": {"$ref": "c.n"}}})J"));
  if (!v.ok()) {
    std::cerr << v.status().to_string() << "\n";
    std::exit(1);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(a.executions));
  std::atomic<int> launched{0};
  std::atomic<int> finished{0};
  std::atomic<int> failed{0};

  std::function<void()> launch_one = [&] {
    const int i = launched.fetch_add(1);
    if (i >= a.executions) return;
    const auto t0 = Clock::now();
    yantra::RunRequest req;
    req.flow_id = "three";
    req.input = {{"n", i}};
    engine->start(
        std::move(req),
        [&](yantra::Result<std::string> id) {
          if (!id.ok()) {
            failed++;
            finished++;
            launch_one();
            cv.notify_all();
          }
        },
        [&, t0](const yantra::ExecutionResult& r) {
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (r.status != "completed") failed++;
          {
            std::lock_guard<std::mutex> lock(mu);
            latencies.push_back(ms);
          }
          if (finished.fetch_add(1) + 1 == a.executions) cv.notify_all();
          launch_one();
        });
  };

  const auto stats0 = engine->stats();
  const auto t0 = Clock::now();
  for (int i = 0; i < std::min(a.window, a.executions); ++i) launch_one();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished.load() >= a.executions; });
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto stats1 = engine->stats();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0
                             : latencies[std::min(latencies.size() - 1,
                                                  static_cast<size_t>(p * latencies.size()))];
  };
  const double batches = static_cast<double>(stats1.writer.batches - stats0.writer.batches);
  const double events = static_cast<double>(stats1.writer.events - stats0.writer.events);
  json out = {{"bench", "engine_3step"},
              {"durability", a.async ? "async" : "sync"},
              {"partitions", a.partitions},
              {"executions", a.executions},
              {"window", a.window},
              {"failed", failed.load()},
              {"seconds", secs},
              {"executions_per_s", a.executions / secs},
              {"events_per_s", events / secs},
              {"p50_ms", pct(0.50)},
              {"p99_ms", pct(0.99)},
              {"events_per_batch", batches > 0 ? events / batches : 0.0},
              {"avg_sync_ms", batches > 0 ? static_cast<double>(stats1.writer.sync_ns_total -
                                                                stats0.writer.sync_ns_total) /
                                                1e6 / batches
                                          : 0.0},
              {"rss_mb", rss_mb()}};
  std::cout << out.dump() << std::endl;
}

void bench_waiting(const Args& a) {
  auto engine = open_engine(a, "waiting");
  auto v = engine->put_flow("default", json::parse(R"J({
    "id": "sleepy", "steps": [
      {"id": "d", "type": "delay", "config": {"duration_ms": 3600000}}]})J"));
  if (!v.ok()) std::exit(1);
  // Warm up allocator and actor system before the baseline.
  const double before = rss_mb();
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> acked{0};
  const auto t0 = Clock::now();
  for (int i = 0; i < a.waiting; ++i) {
    yantra::RunRequest req;
    req.flow_id = "sleepy";
    req.input = {{"i", i}};
    engine->start(std::move(req), [&](yantra::Result<std::string>) {
      if (acked.fetch_add(1) + 1 == a.waiting) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return acked.load() >= a.waiting; });
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double after = rss_mb();
  json out = {{"bench", "engine_waiting"},
              {"waiting", a.waiting},
              {"start_seconds", secs},
              {"starts_per_s", a.waiting / secs},
              {"active_actors", engine->stats().active_actors},
              {"rss_mb", after},
              {"kb_per_waiting_execution", (after - before) * 1024.0 / a.waiting}};
  std::cout << out.dump() << std::endl;
}

void bench_signal_wait(const Args& a) {
  auto engine = open_engine(a, "signal_wait");
  auto v = engine->put_flow("default", json::parse(R"J({
    "id": "hold", "steps": [
      {"id": "w", "type": "wait_signal", "config": {"name": "go"}, "on_success": "e"},
      {"id": "e", "type": "action", "config": {"tool_id": "core", "action": "echo",
        "parameters": {"got": {"$ref": "w"}}}}]})J"));
  if (!v.ok()) std::exit(1);
  const double before = rss_mb();
  std::vector<std::string> ids(static_cast<size_t>(a.waiting));
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> acked{0};
  const auto t0 = Clock::now();
  for (int i = 0; i < a.waiting; ++i) {
    yantra::RunRequest req;
    req.flow_id = "hold";
    engine->start(std::move(req), [&, i](yantra::Result<std::string> r) {
      if (r.ok()) ids[static_cast<size_t>(i)] = r.value();
      if (acked.fetch_add(1) + 1 == a.waiting) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return acked.load() >= a.waiting; });
  }
  const double start_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Passivation happens right after each start; wait until it is complete.
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (engine->stats().active_actors > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const uint64_t actors_left = engine->stats().active_actors;
  const double asleep_at_once = rss_mb();
  // The allocator returns the pages of the actors that went to sleep only
  // after its decay time (jemalloc: ~10 s); what stays is the cost of
  // waiting (partition entries, RocksDB memtables and caches).
  std::this_thread::sleep_for(std::chrono::seconds(15));
  const double asleep = rss_mb();
  // Wake them all with a signal, a window at a time, until every one ends.
  std::atomic<int> finished{0};
  std::atomic<int> in_flight{0};
  const int window = std::max(1, a.window);
  const auto t1 = Clock::now();
  for (int i = 0; i < a.waiting; ++i) {
    while (in_flight.load() >= window) std::this_thread::sleep_for(std::chrono::microseconds(200));
    in_flight.fetch_add(1);
    const std::string id = ids[static_cast<size_t>(i)];
    engine->signal("default", id, "go", i, [&, id](yantra::Result<std::string>) {
      engine->watch(id, [&](yantra::Result<yantra::ExecutionResult>) {
        in_flight.fetch_sub(1);
        if (finished.fetch_add(1) + 1 == a.waiting) cv.notify_all();
      });
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(300), [&] { return finished.load() >= a.waiting; });
  }
  const double wake_s = std::chrono::duration<double>(Clock::now() - t1).count();
  json out = {{"bench", "engine_signal_wait"},
              {"waiting", a.waiting},
              {"starts_per_s", a.waiting / start_s},
              {"actors_alive_while_waiting", actors_left},
              {"rss_mb_before", before},
              {"rss_mb_right_after_sleeping", asleep_at_once},
              {"rss_mb_all_waiting", asleep},
              {"kb_per_waiting_execution", (asleep - before) * 1024.0 / a.waiting},
              {"finished", finished.load()},
              {"signal_to_end_per_s", finished.load() / wake_s}};
  std::cout << out.dump() << std::endl;
}

// A loop of `--loop-items` iterations (parallel, 500 at a time, core.echo
// body), then what the time machine must keep cheap for it: activating the
// execution (newest snapshot + the events after it) and answering
// state?at_seq at the middle of its history (nearest snapshot at or below +
// fold). Built with async durability: only the reads are measured.
void bench_big_loop(const Args& a) {
  Args args = a;
  args.async = true;
  auto engine = open_engine(args, "bigloop");
  auto v = engine->put_flow("default", json::parse(R"J({
    "id": "big", "steps": [
      {"id": "each", "type": "loop", "config": {"items": {"$ref": "input.items"},
        "parallel": true, "max_concurrency": 500, "max_iterations": 100000,
        "steps": [{"id": "e", "type": "action", "config": {"tool_id": "core", "action": "echo",
          "parameters": {"v": {"$ref": "item"}}}}]}}]})J"));
  if (!v.ok()) {
    std::cerr << v.status().to_string() << "\n";
    std::exit(1);
  }
  json items = json::array();
  for (int i = 0; i < a.loop_items; ++i) items.push_back(i);
  yantra::RunRequest req;
  req.flow_id = "big";
  req.input = {{"items", items}};
  const auto t0 = Clock::now();
  auto id = engine->start_sync(req);
  if (!id.ok()) {
    std::cerr << id.status().to_string() << "\n";
    std::exit(1);
  }
  auto r = engine->wait(id.value(), std::chrono::minutes(10));
  const double run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!r.ok() || r.value().status != "completed") {
    std::cerr << "big loop did not complete\n";
    std::exit(1);
  }
  auto last = engine->load_events(id.value());
  const uint64_t last_seq = last.ok() && !last.value().empty() ? last.value().back().seq() : 0;
  auto time_ms = [&](uint64_t seq) {
    std::vector<double> runs;
    for (int i = 0; i < 5; ++i) {
      const auto s0 = Clock::now();
      auto st = engine->load_state_at(id.value(), seq);
      runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
      if (!st.ok() || st.value().last_seq != seq) {
        std::cerr << "state at " << seq << " failed\n";
        std::exit(1);
      }
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
  };
  const auto full0 = Clock::now();
  auto all = engine->load_events(id.value());
  auto folded = yantra::fold(all.value());
  const double full_fold_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - full0).count();
  json out = {{"bench", "engine_big_loop"},
              {"iterations", a.loop_items},
              {"events", last_seq},
              {"run_seconds", run_s},
              // Activation happens to a running execution: the state after
              // the last iteration, before the loop's (100,000-item) output
              // is recorded, is the largest it gets while running.
              {"activate_ms", time_ms(last_seq - 2)},
              {"state_at_middle_ms", time_ms(last_seq / 2)},
              {"state_at_end_ms", time_ms(last_seq)},
              {"fold_from_scratch_ms", full_fold_ms},
              {"rss_mb", rss_mb()}};
  std::cout << out.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.workload == "all" || a.workload == "engine_3step") bench_3step(a);
  if (a.workload == "all" || a.workload == "engine_waiting") bench_waiting(a);
  if (a.workload == "all" || a.workload == "engine_signal_wait") bench_signal_wait(a);
  if (a.workload == "all" || a.workload == "engine_big_loop") bench_big_loop(a);
  std::error_code ec;
  std::filesystem::remove_all(a.dir, ec);
  return 0;
}
