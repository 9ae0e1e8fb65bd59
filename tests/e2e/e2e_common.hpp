// Flow definitions and polling helpers shared by the end-to-end suites.
//
// Polling, never fixed sleeps: an execution is awaited by reading its state
// until it reaches what the test expects or a deadline passes, so a fast
// machine is not slowed down and a slow one (CTest -j2 on 2 shared cores)
// gets the time it needs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/wire.hpp"

namespace yantra::e2e {

using namespace std::chrono_literals;

// a: core.echo {"x": input.x}; output {"x": a.x}.
inline json echo_flow(const std::string& id) {
  json f = json::parse(R"({
    "steps": [{"id": "a", "type": "action",
               "config": {"tool_id": "core", "action": "echo",
                          "parameters": {"x": {"$ref": "input.x"}}}}],
    "output": {"x": {"$ref": "a.x"}}})");
  f["id"] = id;
  f["name"] = "echo " + id;
  return f;
}

// wait (a durable delay of `ms`), then done: core.echo {"done": true}.
inline json delay_flow(const std::string& id, int64_t ms) {
  json f = json::parse(R"({
    "steps": [{"id": "wait", "type": "delay", "config": {"duration_ms": 0}, "on_success": "done"},
              {"id": "done", "type": "action",
               "config": {"tool_id": "core", "action": "echo", "parameters": {"done": true}}}],
    "output": {"done": {"$ref": "done.done"}}})");
  f["id"] = id;
  f["steps"][0]["config"]["duration_ms"] = ms;
  return f;
}

// boom: core.fail, not retriable, code "boom".
inline json fail_flow(const std::string& id) {
  json f = json::parse(R"({
    "steps": [{"id": "boom", "type": "action",
               "config": {"tool_id": "core", "action": "fail",
                          "parameters": {"code": "boom", "message": "failed on purpose",
                                         "retriable": false}}}]})");
  f["id"] = id;
  return f;
}

inline bool is_terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled" ||
         status == "timed_out";
}

// GET /api/v1/executions/{id} until `done(doc)` or the deadline; returns the
// last document read (null if none could be read).
template <typename Pred>
json poll_execution(Api& api, const std::string& id, Pred done,
                    std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json last;
  auto delay = 5ms;
  while (true) {
    Reply r = api.get("/api/v1/executions/" + id);
    if (r.status == 200) {
      last = r.doc();
      if (done(last)) return last;
    }
    if (std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 100ms);
  }
}

inline json wait_finished(Api& api, const std::string& id,
                          std::chrono::milliseconds timeout = 20s) {
  return poll_execution(
      api, id, [](const json& d) { return is_terminal(d.value("status", "")); }, timeout);
}

// Waits until every execution of `ids` has ended, under one deadline for
// all; returns the last view read of each (one still running at the deadline
// keeps its running view, so the caller's status check names it; one that
// could not be read maps to null).
inline std::map<std::string, json> wait_all_ended(Api& api, const std::vector<std::string>& ids,
                                                  std::chrono::milliseconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::map<std::string, json> views;
  for (const auto& id : ids) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    views[id] = wait_finished(api, id, std::max(left, std::chrono::milliseconds(0)));
  }
  return views;
}

inline json wait_status(Api& api, const std::string& id, const std::string& status,
                        std::chrono::milliseconds timeout = 20s) {
  return poll_execution(
      api, id, [&](const json& d) { return d.value("status", "") == status; }, timeout);
}

// POST /api/v1/flows, expecting 201.
inline void create_flow(Api& api, const json& def) {
  Reply r = api.post("/api/v1/flows", def);
  ASSERT_EQ(r.status, 201) << def.value("id", "") << ": " << r.describe();
}

// POST /run without waiting, expecting 202; returns the execution id.
inline std::string start_run(Api& api, const std::string& flow, const json& input = json::object(),
                             Headers headers = {}) {
  Reply r = api.post("/api/v1/flows/" + flow + "/run", json{{"input", input}}, std::move(headers));
  EXPECT_TRUE(r.status == 202 || r.status == 200) << r.describe();
  return r.doc().value("execution_id", "");
}

}  // namespace yantra::e2e
