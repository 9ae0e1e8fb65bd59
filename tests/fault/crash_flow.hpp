// The workflow and checks shared by the crash tests and their child process:
// an echo, a durable delay, a slow blocking tool call and a final echo, so a
// crash catches executions in every kind of wait.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace yantra::testing {

inline nlohmann::json crash_flow() {
  return nlohmann::json::parse(R"J({
    "id": "crashy",
    "steps": [
      {"id": "a", "type": "action",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"v": {"$ref": "input.n"}}},
       "on_success": "d"},
      {"id": "d", "type": "delay", "config": {"duration_ms": 150}, "on_success": "b"},
      {"id": "b", "type": "action",
       "config": {"tool_id": "rec", "action": "work",
                  "parameters": {"v": {"$expr": "a.v + 1"}, "ms": 40}},
       "retry_config": {"max_attempts": 3, "backoff_type": "fixed", "initial_delay_ms": 10},
       "on_success": "c"},
      {"id": "c", "type": "action",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"final": {"$expr": "b.v * 2"}}}}
    ],
    "output": {"final": {"$ref": "c.final"}}
  })J");
}

// What execution n must output.
inline int crash_flow_expected(int n) {
  return (n + 1) * 2;
}

}  // namespace yantra::testing
