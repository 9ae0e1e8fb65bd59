// Tool workers' registrations turned into tenant tools (issue 12, "Tool
// workers"; docs/tools.md). A registration is the document a worker POSTs to
// /api/v1/workers: {"id", "tools": [{"id", "description", "max_concurrency",
// "lease_ms", "actions": [{"name", "description", "input_schema",
// "output_schema"}]}]}. It is stored as a tool registration of kind
// "worker" (actors/admin.hpp) and applied here on every node, from the
// engine's registration watch, so the tools exist wherever flows run and
// come back after a restart.
//
// Several workers may serve one tool id: the tool exists while at least one
// registration names it, and the registry keeps one spec, the latest
// registered. A tool is replaced in the engine only when its spec or limits
// change (a worker re-registering as it restarts changes nothing): replacing
// a tool retires the old one, whose waiting calls fail "tool_replaced".
//
// Thread-safe: apply() runs on admin/mirror threads, the routes read from
// HTTP I/O threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "actors/task_broker.hpp"
#include "actors/worker_tool.hpp"
#include "base/result.hpp"

namespace yantra::api {

struct WorkerToolDef {
  ToolSpec spec;
  ToolLimits limits;
  json doc;  // the tool's part of the registration, as given
};

struct WorkerDef {
  std::string id;
  std::vector<WorkerToolDef> tools;
};

// Bounds of a registration (docs/tools.md).
constexpr size_t kMaxWorkerTools = 64;
constexpr size_t kMaxWorkerActions = 64;
constexpr int64_t kMinLeaseMs = 500;
constexpr int64_t kMaxLeaseMs = 600000;
constexpr int64_t kMaxWorkerConcurrency = 256;

// Parses and checks a registration document: invalid_request with one
// Problem (a JSON pointer) per bad field. `builtin` says whether a tool id
// is a built-in's (those may not be shadowed).
Result<WorkerDef> parse_worker_definition(const json& doc,
                                          const std::function<bool(const std::string&)>& builtin);

class WorkerTools {
 public:
  WorkerTools(Engine& engine, std::shared_ptr<TaskBroker> broker);
  // A registration was put (deleted = false) or deleted. `doc` is ignored
  // for a delete. A document that does not parse (it was checked before it
  // was stored, so only a newer node's) is logged and skipped.
  void apply(const std::string& tenant, const std::string& worker_id, const json& doc,
             bool deleted);
  // The tool ids a worker registered here (empty when unknown).
  std::vector<std::string> tools_of(const std::string& tenant, const std::string& worker_id) const;
  bool knows(const std::string& tenant, const std::string& worker_id) const;
  // The registrations applied here: (worker id, document), by id.
  std::vector<std::pair<std::string, json>> list(const std::string& tenant) const;
  std::optional<json> find(const std::string& tenant, const std::string& worker_id) const;
  TaskBroker& broker() { return *broker_; }

 private:
  struct Installed {
    std::shared_ptr<WorkerTool> tool;
    std::string fingerprint;        // spec + limits, canonical
    std::set<std::string> workers;  // the registrations naming it
  };
  Engine& engine_;
  std::shared_ptr<TaskBroker> broker_;
  mutable std::mutex mu_;
  struct Registered {
    std::vector<std::string> tools;
    json doc;
  };
  std::map<std::pair<std::string, std::string>, Registered> workers_;  // (tenant, worker id)
  std::map<std::pair<std::string, std::string>, Installed> tools_;     // (tenant, tool id)
};

}  // namespace yantra::api
