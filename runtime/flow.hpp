// The workflow definition model: what a tenant posts (JSON or YAML), after
// parsing and validation. A Flow is immutable once loaded and shared by every
// execution that runs on that version (std::shared_ptr<const Flow>).
//
// Shape: a flow has a root Scope of steps. Loop steps own a nested Scope (the
// body, run once per item); parallel steps own a nested Scope whose roots (the
// steps no other step of that scope transitions to) are its branches. Step ids
// are unique across the whole flow, so `$ref: "<step>.field"` is never
// ambiguous. Transitions (on_success, on_failure, on_true, on_false,
// on_timeout) stay within a scope and form no cycle (repetition is what loop
// steps are for), so each step runs at most once per frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "runtime/expr.hpp"
#include "runtime/template.hpp"
#include "runtime/trigger.hpp"

namespace yantra {

using json = nlohmann::json;

// The step types. Each is implemented in one file, runtime/steps/<type>.cpp,
// and registered in runtime/steps/registry.cpp in this order (see
// runtime/README.md, "Adding a step type"); to_string() gives its name.
enum class StepType {
  kAction,
  kCondition,
  kLoop,
  kParallel,
  kDelay,
  kWaitSignal,
  kApproval,
  kScript,
};
inline constexpr size_t kStepTypeCount = static_cast<size_t>(StepType::kScript) + 1;
enum class Backoff { kFixed, kExponential };
enum class WaitFor { kAll, kAny, kNone };
enum class OnError { kFail, kContinue };
enum class ApprovalPolicy { kAny, kAll, kMajority };

const char* to_string(StepType);
const char* to_string(WaitFor);
const char* to_string(ApprovalPolicy);

struct RetryPolicy {
  uint32_t max_attempts = 1;  // 1 = no retry
  Backoff backoff = Backoff::kExponential;
  int64_t initial_delay_ms = 1000;
  int64_t max_delay_ms = 60000;
  double multiplier = 2.0;
};

struct Scope;

struct Step {
  std::string id;
  StepType type = StepType::kAction;
  std::string name;  // optional display name
  std::string on_success;
  std::string on_failure;
  // wait_signal, approval: where a timeout goes (default: on_failure).
  std::string on_timeout;
  RetryPolicy retry;

  // action
  std::string tool_id;
  std::string action;
  Template parameters;
  int64_t timeout_ms = 0;  // 0 = no step deadline (also wait_signal, approval)
  // The action's input schema when the registry knew the action at parse
  // time: the resolved parameters are checked against it when an attempt
  // starts (null = not checked).
  std::shared_ptr<const json> input_schema;

  // condition: either an operator form or an expression
  std::string op;  // "==", ">", ..., or empty when `expression` is used
  Template left;
  Template right;
  std::shared_ptr<const expr::Expression> expression;
  std::string on_true;
  std::string on_false;

  // loop
  Template items;
  bool parallel = false;
  uint32_t max_iterations = 1000;
  uint32_t max_concurrency = 0;  // parallel loops: 0 = all at once

  // loop body / parallel branches
  std::shared_ptr<Scope> body;
  WaitFor wait_for = WaitFor::kAll;

  // delay
  int64_t duration_ms = 0;

  // wait_signal: the signal name it consumes.
  std::string signal_name;

  // approval: each entry is an API key id ("key_...") or "role:<role>".
  std::vector<std::string> approvers;
  ApprovalPolicy policy = ApprovalPolicy::kAny;

  // script: a function body (runtime/steps/script.cpp; its tool_id is
  // "script", its timeout_ms the time cap) and the names it mentions, which
  // decide what of the execution its recorded input holds.
  std::string source;
  std::vector<std::string> source_names;
};

struct Scope {
  std::vector<Step> steps;
  std::map<std::string, size_t> index;  // step id -> position in `steps`
  // Entry points: the first step for the root scope and loop bodies; every
  // step that no other step of the scope transitions to for parallel scopes.
  std::vector<std::string> roots;

  const Step* find(const std::string& id) const {
    auto it = index.find(id);
    return it == index.end() ? nullptr : &steps[it->second];
  }
};

// One action of a tool, as the registry describes it (GET /api/v1/tools).
// The schemas are JSON Schemas in the subset of runtime/json_schema.hpp; an
// empty object accepts anything. `permission` is what a tool policy names
// to allow or deny it: "<tool id>.<action>" (runtime/tool_policy.hpp).
struct ActionSpec {
  ActionSpec() = default;
  // A bare name (no schema, no description): tests and simple tools.
  ActionSpec(std::string n) : name(std::move(n)) {}  // NOLINT(google-explicit-constructor)
  ActionSpec(const char* n) : name(n) {}             // NOLINT(google-explicit-constructor)

  std::string name;
  std::string description;
  json input_schema = json::object();
  json output_schema = json::object();
  bool side_effects = true;        // false: calling it changes nothing outside the call
  bool idempotent = false;         // true: repeating a call (same parameters) is harmless
  int64_t default_timeout_ms = 0;  // the tool's own bound when the step sets none; 0 = none
  RetryPolicy default_retry;       // what a step without retry_config gets (1 = none)
};

// A tool the validator may accept and the registry lists: its id and the
// actions it offers (empty = any action, no schema). Built-in tools have an
// empty `tenant`; a tenant's own tools (an MCP server "mcp:<id>", a worker's
// tools) are registered at run time under their tenant (actors/registry.hpp).
struct ToolSpec {
  ToolSpec() = default;
  ToolSpec(std::string i, std::vector<ActionSpec> a) : id(std::move(i)), actions(std::move(a)) {}

  std::string id;
  std::vector<ActionSpec> actions;
  std::string version = "1";
  std::string description;
  std::string kind = "builtin";  // builtin | mcp | worker | ...
  std::string tenant;            // "" = built-in: every tenant sees it

  const ActionSpec* find_action(const std::string& name) const {
    for (const auto& a : actions) {
      if (a.name == name) return &a;
    }
    return nullptr;
  }
};

// Where the engine reports the progress of an execution (config.callbacks):
// a POST of each listed event to `url`, signed with `secret` when one is set.
struct Callback {
  std::string url;                  // http:// or https://
  std::vector<std::string> events;  // "execution.completed", "step.failed", ...
  json secret;                      // null, a string or {"$secret": NAME}
};

struct Flow {
  std::string id;
  std::string name;
  std::string description;
  json trigger = json{{"type", "manual"}};  // as written
  Trigger trigger_spec;                     // parsed from `trigger`
  // "active" or "paused" (top-level "status"): a paused flow keeps its
  // definition but its trigger starts nothing.
  std::string status = "active";
  Scope root;
  bool has_output = false;
  Template output;
  int64_t timeout_ms = 0;  // 0 = none
  OnError on_error = OnError::kFail;
  // Admission limits (config): runs beyond max_concurrent_executions wait in
  // a durable queue and start in order (0 = no limit); rate limits answer 429.
  uint32_t max_concurrent_executions = 0;
  uint32_t max_runs_per_minute = 0;  // 0 = no limit
  uint32_t max_runs_per_hour = 0;
  std::vector<Callback> callbacks;
  json source;  // the definition as posted (canonical JSON), for GET and storage

  // Every step of every scope by id, with the scope that owns it.
  struct Located {
    const Step* step = nullptr;
    const Scope* scope = nullptr;
    const Step* container = nullptr;  // the loop/parallel owning `scope`, null for root
  };
  std::map<std::string, Located> all_steps;

  const Located* locate(const std::string& step_id) const {
    auto it = all_steps.find(step_id);
    return it == all_steps.end() ? nullptr : &it->second;
  }
};

struct ParseOptions {
  // Tools that exist; an action step naming another tool or action is
  // invalid. Empty = accept any tool (used by tests of the model alone).
  std::vector<ToolSpec> tools;
  // The definition was accepted when it was stored (loading it again, or a
  // replica installing it): a tool or action no longer registered (a
  // tenant's MCP server removed since) and parameters that no longer fit a
  // changed schema are not problems here; the call fails at run time
  // instead, so that stored flows and their executions always load.
  bool stored = false;
};

// Parses and validates a definition. On failure the Status has code
// "invalid_flow" and one Problem per issue found (all of them, not just the
// first), each with a JSON pointer into the document.
Result<std::shared_ptr<const Flow>> parse_flow(const json& doc, const ParseOptions& opts = {});

// YAML and JSON are two spellings of one model. Errors: "invalid_yaml" /
// "invalid_json" with the line/column of the problem.
Result<json> yaml_to_json(std::string_view text);
Result<json> parse_json_text(std::string_view text);
std::string json_to_yaml(const json& doc);

}  // namespace yantra
