// Crash recovery. Hundreds of executions are caught mid-flight (in durable
// delays, in slow blocking tool calls, between steps) and the node dies
// without a clean shutdown: in-process by halting the log writers (queued,
// non-durable batches are lost as in a power cut), and for real by SIGKILL
// of a child process. The engine is reopened on the same data and must
// finish every execution with the right output, never dispatch again a step
// whose completion was durable, and keep every log dense and foldable.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "actors/engine.hpp"
#include "runtime/ids.hpp"
#include "storage/event_log.hpp"
#include "tests/fault/crash_flow.hpp"
#include "tests/test_util.hpp"

extern char** environ;

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::RecordingTool;
using testing::TempDir;

constexpr uint32_t kPartitions = 4;

struct CrashSnapshot {
  std::set<std::string> completed_keys;  // tool steps whose completion is durable
  int finished = 0;                      // executions already ended before the crash
  int in_delay = 0;                      // waiting on a durable timer
  int in_tool_call = 0;                  // with a tool call started but not recorded
};

// What the log says about every execution at the moment of the crash.
CrashSnapshot inspect(const std::string& data_dir, const std::vector<std::string>& ids) {
  CrashSnapshot snap;
  auto& keys = snap.completed_keys;
  auto store = storage::Store::open(storage::StoreOptions{data_dir, storage::Durability::kSync});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return snap;
  for (const auto& id : ids) {
    auto events = store.value()->events().read(partition_of(id, kPartitions), id);
    EXPECT_TRUE(events.ok());
    auto st = fold(events.value());
    EXPECT_TRUE(st.ok()) << id << ": " << st.status().to_string();
    if (!st.ok()) continue;
    if (is_terminal(st.value().status)) snap.finished++;
    if (!st.value().running.empty()) snap.in_tool_call++;
    if (st.value().display_status() == "waiting") snap.in_delay++;
    for (const auto& [path, s] : st.value().steps) {
      if (s.kind == "action" && s.status == StepStatus::kCompleted) {
        keys.insert(id + "/" + path + "/" + std::to_string(s.attempt));
      }
    }
  }
  return snap;
}

// The crash must have caught executions in every kind of wait, or the test
// proves little.
void expect_caught_mid_flight(const CrashSnapshot& snap) {
  std::cout << "at the crash: " << snap.finished << " finished, " << snap.in_delay
            << " in a delay, " << snap.in_tool_call << " in a tool call, "
            << snap.completed_keys.size() << " tool steps completed\n";
  EXPECT_GT(snap.in_delay, 0);
  EXPECT_GT(snap.in_tool_call, 0);
  // Some slow tool steps completed before the crash: those must never run again.
  EXPECT_GT(std::count_if(snap.completed_keys.begin(), snap.completed_keys.end(),
                          [](const std::string& k) { return k.find("/b/") != std::string::npos; }),
            0);
  EXPECT_LT(snap.finished, 300);
}

// Reopens the engine, lets every execution finish and checks outputs, logs
// and that nothing completed before the crash was dispatched again.
void recover_and_check(const std::string& data_dir, const std::map<std::string, int>& runs,
                       const std::set<std::string>& done_before) {
  auto rec = std::make_shared<RecordingTool>(32);
  EngineOptions opts;
  opts.data_dir = data_dir;
  opts.partitions = kPartitions;
  opts.tools.push_back(rec);
  auto engine = Engine::open(opts);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  for (const auto& [id, n] : runs) {
    auto r = engine.value()->wait(id, 30s);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().to_string();
    EXPECT_EQ(r.value().status, "completed") << id << " " << r.value().error.dump();
    EXPECT_EQ(r.value().output, json({{"final", testing::crash_flow_expected(n)}})) << id;

    auto events = engine.value()->load_events(id);
    ASSERT_TRUE(events.ok());
    std::map<std::string, int> completions;
    for (size_t i = 0; i < events.value().size(); ++i) {
      ASSERT_EQ(events.value()[i].seq(), i + 1) << id;
      if (events.value()[i].has_step_completed()) {
        completions[events.value()[i].step_completed().path()]++;
      }
    }
    for (const auto& [path, count] : completions) EXPECT_EQ(count, 1) << id << " " << path;
    EXPECT_EQ(completions.size(), 3u) << id;  // a, b, c (the delay ends by TimerFired)
  }
  for (const auto& key : rec->keys()) {
    EXPECT_EQ(done_before.count(key), 0u) << "completed step dispatched again: " << key;
  }
}

TEST(CrashRecovery, HaltWithoutCleanShutdownLosesNothing) {
  TempDir dir;
  std::map<std::string, int> runs;
  {
    auto rec = std::make_shared<RecordingTool>(32);
    EngineOptions opts;
    opts.data_dir = dir.str();
    opts.partitions = kPartitions;
    opts.tools.push_back(rec);
    auto engine = Engine::open(opts);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    ASSERT_TRUE(engine.value()->put_flow("default", testing::crash_flow()).ok());
    std::mutex mu;
    std::condition_variable cv;
    int acked = 0;
    const int n = 300;
    for (int i = 0; i < n; ++i) {
      // Two waves, so the crash finds the first in tool calls and the second
      // in its delay.
      if (i == n / 2) std::this_thread::sleep_for(150ms);
      RunRequest req;
      req.flow_id = "crashy";
      req.input = {{"n", i}};
      engine.value()->start(req, [&, i](Result<std::string> id) {
        std::lock_guard<std::mutex> lock(mu);
        if (id.ok()) runs[id.value()] = i;
        ++acked;
        cv.notify_all();
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return acked == n; });
    }
    ASSERT_EQ(runs.size(), 300u);
    std::this_thread::sleep_for(80ms);
    engine.value()->halt_for_test();
    EXPECT_GT(rec->keys().size(), 0u);
  }
  std::vector<std::string> ids;
  for (const auto& [id, n] : runs) ids.push_back(id);
  const auto snap = inspect(dir.str(), ids);
  expect_caught_mid_flight(snap);
  recover_and_check(dir.str(), runs, snap.completed_keys);
}

TEST(CrashRecovery, SigkillOfTheNodeProcessLosesNothing) {
  TempDir dir;
  const std::string data = dir.sub("data");
  const std::string work = dir.str();
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  std::string bin = YANTRA_CRASH_CHILD;
  std::string n = "300";
  char* argv[] = {bin.data(), const_cast<char*>(data.c_str()), const_cast<char*>(work.c_str()),
                  n.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);

  // Wait for READY (bounded), then kill mid-flight.
  std::string out;
  char buf[256];
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (out.find("READY") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    ssize_t got = read(out_pipe[0], buf, sizeof buf);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  close(out_pipe[0]);
  const bool ready = out.find("READY") != std::string::npos;
  if (ready) std::this_thread::sleep_for(80ms);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(ready) << "child did not get ready: " << out;
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  std::map<std::string, int> runs;
  for (const auto& line : testing::read_lines(work + "/ids.txt")) {
    std::istringstream in(line);
    std::string id;
    int i = 0;
    in >> id >> i;
    runs[id] = i;
  }
  ASSERT_EQ(runs.size(), 300u);
  EXPECT_GT(testing::read_lines(work + "/calls-1.txt").size(), 0u);
  std::vector<std::string> ids;
  for (const auto& [id, i] : runs) ids.push_back(id);
  const auto snap = inspect(data, ids);
  expect_caught_mid_flight(snap);
  recover_and_check(data, runs, snap.completed_keys);
}

}  // namespace
}  // namespace yantra
