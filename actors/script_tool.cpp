// The `script` tool (see script_tool.hpp): a bytecode cache in front of the
// sandbox. The cache's lock is held only to look up or insert, never while
// compiling or running, so tool threads run scripts in parallel; two threads
// compiling one new source at once both compile it and one copy is kept.
#include "actors/script_tool.hpp"

#include <algorithm>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/crypto.hpp"
#include "script/sandbox.hpp"

namespace yantra {
namespace {

constexpr int64_t kDefaultTimeoutMs = 50;

class ScriptTool final : public Tool {
 public:
  explicit ScriptTool(const ScriptToolOptions& o) : options_(o) {}

  ToolSpec spec() const override {
    ActionSpec run("run");
    run.description = "Runs a script step's source in a sandbox with no I/O (docs/scripts.md)";
    run.side_effects = false;  // so it need not wait for its decision to be durable
    ToolSpec spec{"script", {run}};
    spec.description = "JavaScript of script steps (Duktape, time and memory capped)";
    return spec;
  }
  size_t max_concurrency() const override { return std::max<size_t>(1, options_.concurrency); }

  ToolResult invoke(const ToolCall& call) override {
    const json& p = call.parameters;
    auto src = p.is_object() ? p.find("source") : p.end();
    if (!p.is_object() || src == p.end() || !src->is_string()) {
      return ToolResult::failure("invalid_parameters", "parameters.source must be a string", false);
    }
    const std::string& source = src->get_ref<const std::string&>();
    auto program = compiled(source);
    if (!program.ok) return ToolResult::failure(program.error.code, program.error.message, false);
    script::Limits limits;
    limits.timeout_ms = call.timeout_ms > 0 ? call.timeout_ms : kDefaultTimeoutMs;
    limits.timeout_ms = std::min(limits.timeout_ms, options_.max_timeout_ms);
    limits.memory_bytes = options_.memory_bytes;
    script::Outcome out = script::run(*program.program, p, limits);
    if (!out.ok) return ToolResult::failure(out.error.code, out.error.message, false);
    return ToolResult::success(std::move(out.value));
  }

 private:
  struct Lookup {
    bool ok = false;
    std::shared_ptr<const script::Program> program;
    script::Error error;
  };

  Lookup compiled(const std::string& source) {
    const std::string key = crypto::sha256(source);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return {true, it->second.first, {}};
      }
    }
    script::Compiled c = script::compile(source);
    if (c.program == nullptr) return {false, nullptr, std::move(c.error)};
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.find(key) == cache_.end()) {
      lru_.push_front(key);
      cache_.emplace(key, std::make_pair(c.program, lru_.begin()));
      while (cache_.size() > std::max<size_t>(1, options_.cache_entries)) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
    }
    return {true, std::move(c.program), {}};
  }

  const ScriptToolOptions options_;
  std::mutex mu_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, std::pair<std::shared_ptr<const script::Program>,
                                            std::list<std::string>::iterator>>
      cache_;
};

}  // namespace

std::shared_ptr<Tool> make_script_tool(const ScriptToolOptions& options) {
  return std::make_shared<ScriptTool>(options);
}

}  // namespace yantra
