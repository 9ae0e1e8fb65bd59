// The tool interface. A tool offers actions that steps call; each call gets
// the step's resolved parameters and an idempotency key
// "<execution>/<step path>/<attempt>" that is the same when a call is
// repeated after a crash, so tools can deduplicate side effects.
//
// Tools registered through this interface may block (HTTP, scripts, ...):
// the engine runs them on threads of their own, never on a CAF scheduler
// thread, at most max_concurrency() calls at a time; further calls queue.
// The built-in `core` tool is a non-blocking actor (see core_tool.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/flow.hpp"

namespace yantra {

struct ToolCall {
  std::string execution_id;
  std::string tenant;  // the execution's tenant (a tool acting for it stays in it)
  std::string path;
  std::string action;
  std::string idempotency_key;
  uint32_t attempt = 1;
  json parameters;
  int64_t timeout_ms = 0;  // the step's timeout; the engine enforces it too
};

struct ToolResult {
  bool ok = true;
  json output;
  std::string code;  // failure code, e.g. "http_503"
  std::string message;
  bool retriable = true;

  static ToolResult success(json output) {
    return ToolResult{true, std::move(output), "", "", false};
  }
  static ToolResult failure(std::string code, std::string message, bool retriable = true) {
    return ToolResult{false, nullptr, std::move(code), std::move(message), retriable};
  }
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual ToolSpec spec() const = 0;
  virtual size_t max_concurrency() const { return 16; }
  // Runs on a tool thread; may block. Must not throw (a thrown exception is
  // caught and reported as a failed, retriable call).
  virtual ToolResult invoke(const ToolCall& call) = 0;
  // Asks the call with this idempotency key, if one is in flight, to stop
  // (its invoke then returns soon). Any thread; must not block. Tools that
  // cannot stop a call ignore it (the default).
  virtual void cancel(const std::string& /*idempotency_key*/) {}
};

}  // namespace yantra
