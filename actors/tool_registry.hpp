// The tool registry: every tool a tenant may call, described one way
// (ToolSpec: id, version, actions with input/output JSON Schemas, side
// effects, idempotency, defaults, permission), and the tenants' tool
// policies (runtime/tool_policy.hpp).
//
// Two scopes. Built-in tools (core, http) are registered when the engine
// opens and every tenant sees them. Tenant tools (an MCP server's tools as
// "mcp:<id>", a worker's tools) are added and removed while the node runs,
// under one tenant, which alone sees and calls them; their id may not shadow
// a built-in. Engine::add_tool / remove_tool pair a tenant tool's spec here
// with the actor that runs it.
//
// Thread-safe (a shared mutex): the API lists and reads specs from I/O
// threads, flows are validated on admin/I/O pools, and execution actors ask
// refuses() once per tool call — a map lookup and a few string compares
// under a shared lock, never I/O.
//
// Policies live on the tenant record (operator-set); the engine mirrors them
// here when it opens and whenever a tenant record is put (locally or by the
// cluster's resource mirror), so a change applies to the next tool call.
#pragma once

#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "runtime/flow.hpp"
#include "runtime/tool_policy.hpp"

namespace yantra {

class ToolRegistry {
 public:
  void add_builtin(ToolSpec spec);
  // A tenant tool, replacing one of the same id of that tenant. Refused
  // ("invalid_argument") when the id is a built-in's or empty, or when an
  // action's schema uses what the validator does not understand.
  Status add(const std::string& tenant, ToolSpec spec);
  bool remove(const std::string& tenant, const std::string& id);

  // Built-ins first (registration order), then the tenant's tools by id.
  std::vector<ToolSpec> list(const std::string& tenant) const;
  std::vector<ToolSpec> builtins() const;
  std::optional<ToolSpec> find(const std::string& tenant, const std::string& id) const;
  bool is_builtin(const std::string& id) const;

  void set_policy(const std::string& tenant, ToolPolicy policy);
  ToolPolicy policy(const std::string& tenant) const;
  // Why `tenant` (and `role`, when not empty) may not call tool.action;
  // "" when it may.
  std::string refuses(const std::string& tenant, const std::string& tool, const std::string& action,
                      const std::string& role = "") const;

 private:
  mutable std::shared_mutex mu_;
  std::vector<ToolSpec> builtins_;
  std::map<std::string, std::map<std::string, ToolSpec>> tenant_tools_;  // tenant -> id -> spec
  std::map<std::string, ToolPolicy> policies_;
};

}  // namespace yantra
