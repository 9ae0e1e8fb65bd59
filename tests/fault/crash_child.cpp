// Child process of the SIGKILL crash test: opens an engine on DIR, starts N
// executions of the crash flow (input n = 0..N-1), writes "<id> <n>" to
// DIR/../ids.txt once each start is durable, prints READY and then waits to
// be killed. The recording tool appends every idempotency key it receives to
// DIR/../calls-1.txt, so the parent can see what ran before the kill.
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "actors/engine.hpp"
#include "tests/fault/crash_flow.hpp"
#include "tests/test_util.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: yantra_crash_child DATA_DIR WORK_DIR N\n";
    return 2;
  }
  const std::string data = argv[1];
  const std::string work = argv[2];
  const int n = std::atoi(argv[3]);
  yantra::EngineOptions opts;
  opts.data_dir = data;
  opts.tools.push_back(std::make_shared<yantra::testing::RecordingTool>(32, work + "/calls-1.txt"));
  auto engine = yantra::Engine::open(opts);
  if (!engine.ok()) {
    std::cerr << engine.status().to_string() << "\n";
    return 1;
  }
  auto version = engine.value()->put_flow("default", yantra::testing::crash_flow());
  if (!version.ok()) {
    std::cerr << version.status().to_string() << "\n";
    return 1;
  }
  // An id is written only once its start is durable.
  std::ofstream ids(work + "/ids.txt");
  std::mutex mu;
  std::condition_variable cv;
  int acked = 0;
  for (int i = 0; i < n; ++i) {
    // Two waves, so the kill finds the first in tool calls and the second in
    // its delay.
    if (i == n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(150));
    yantra::RunRequest req;
    req.flow_id = "crashy";
    req.input = {{"n", i}};
    engine.value()->start(req, [&, i](yantra::Result<std::string> id) {
      std::lock_guard<std::mutex> lock(mu);
      if (id.ok()) ids << id.value() << ' ' << i << '\n';
      ++acked;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return acked == n; });
    ids.flush();
  }
  std::cout << "READY" << std::endl;
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
