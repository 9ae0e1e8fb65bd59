// Which tools and actions a tenant, and a role within it, may use: set by
// the operator on the tenant record (PATCH /admin/v1/tenants/{t} "tools"),
// so that in a cluster it travels with the tenant record through etcd.
//
// Shape (docs/tools.md, "Permissions"):
//   {"allow": ["core", "http"],          // absent = every tool
//    "deny":  ["http.request"],          // wins over allow
//    "roles": {"editor": {"allow": [...], "deny": [...]}}}
// An entry names a tool ("http": all its actions), one action
// ("http.request", the action's `permission`), every action of a tool
// ("http.*") or everything ("*"). A call must pass the tenant's rules and,
// when a role is known, that role's rules too.
//
// Where it is enforced: storing a flow (the tenant's rules and the storing
// key's role's rules; 403 naming each refused step) and every tool call
// (the tenant's rules as they are then: a step fails with
// "permission_denied" and the refusal is audited). A role is not known at
// run time (runs start from triggers and schedules too), so role rules bind
// what a role may store.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

using json = nlohmann::json;

struct ToolRules {
  bool has_allow = false;  // no "allow": everything not denied
  std::vector<std::string> allow;
  std::vector<std::string> deny;

  // The entry that refuses tool.action, or nullopt when it passes.
  std::optional<std::string> refuses(std::string_view tool, std::string_view action) const;
  bool empty() const { return !has_allow && deny.empty(); }
};

struct ToolPolicy {
  ToolRules tenant;
  std::map<std::string, ToolRules> roles;

  bool empty() const { return tenant.empty() && roles.empty(); }

  // Why tool.action is refused ("" = allowed) to the tenant and, when `role`
  // is not empty, to that role.
  std::string refuses(std::string_view tool, std::string_view action,
                      std::string_view role = {}) const;

  // Reads the shape above; every problem with its pointer under `pointer`.
  static Result<ToolPolicy> parse(const json& doc, const std::string& pointer = "/tools");
  json to_json() const;
};

}  // namespace yantra
