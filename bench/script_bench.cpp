// The cost of a script step's sandbox (script/sandbox.hpp), single thread:
//   fresh:  compile + run, each in a heap of its own: the cost with no
//           bytecode cache ("fresh sandbox + compile + call");
//   cached: run of cached bytecode in a fresh heap: what the script tool
//           pays per call once a flow version's script was compiled;
//   compile: compile alone (what storing a flow pays per script).
// The snippet is the example, with an input of a few fields.
//
//   yantra_bench_script [--iterations N]
//
// Prints one JSON object per workload: iterations, mean, p50, p99 (µs).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "script/sandbox.hpp"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

void report(const std::string& name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  json out = {{"workload", "script_" + name},
              {"iterations", us.size()},
              {"mean_us", std::round(sum / us.size() * 10) / 10},
              {"p50_us", std::round(at(0.5) * 10) / 10},
              {"p99_us", std::round(at(0.99) * 10) / 10}};
  std::cout << out.dump() << std::endl;
}

std::vector<double> measure(int n, const std::function<void()>& fn) {
  for (int i = 0; i < std::min(n, 100); ++i) fn();  // warm-up
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    fn();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 5000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::max(1, std::atoi(argv[i + 1]));
  }
  using namespace yantra::script;
  const std::string source = "return {total: input.a + 1, name: input.name.toUpperCase()};";
  const json args = {{"input", {{"a", 41}, {"name", "order"}, {"tags", {"x", "y"}}}},
                     {"steps", json::object()}};
  const Limits limits;
  bool ok = true;
  auto check = [&](const Outcome& o) {
    if (!o.ok || o.value["total"] != 42) ok = false;
  };
  report("fresh", measure(iterations, [&] {
           Compiled c = compile(source);
           check(run(*c.program, args, limits));
         }));
  Compiled c = compile(source);
  report("cached", measure(iterations, [&] { check(run(*c.program, args, limits)); }));
  report("compile", measure(iterations, [&] { (void)compile(source); }));
  if (!ok) {
    std::cerr << "yantra_bench_script: a call did not return the expected value\n";
    return 1;
  }
  return 0;
}
