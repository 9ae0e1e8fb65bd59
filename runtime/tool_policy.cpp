// Tool policies (tool_policy.hpp): parsing with pointers, and the check,
// which is a few string comparisons per entry (policies are short lists).
#include "runtime/tool_policy.hpp"

#include "runtime/doc_reader.hpp"
#include "runtime/errc.hpp"

namespace yantra {
namespace {

bool matches(const std::string& entry, std::string_view tool, std::string_view action) {
  if (entry == "*" || entry == tool) return true;
  if (entry.size() <= tool.size() + 1 || entry.compare(0, tool.size(), tool) != 0 ||
      entry[tool.size()] != '.') {
    return false;
  }
  const std::string_view rest = std::string_view(entry).substr(tool.size() + 1);
  return rest == "*" || rest == action;
}

const char* const kRoles[] = {"viewer", "editor", "admin", "owner", "worker"};

void read_list(const json& doc, const char* key, const std::string& at,
               std::vector<std::string>& out, bool& present, std::vector<Problem>& problems) {
  auto it = doc.find(key);
  if (it == doc.end()) return;
  present = true;
  const std::string where = pointer_child(at, key);
  if (!it->is_array()) {
    problems.push_back({where, "must be a list of tool ids, \"tool.action\", \"tool.*\" or \"*\""});
    return;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_string() || e.get_ref<const std::string&>().empty() ||
        e.get_ref<const std::string&>().size() > 200) {
      problems.push_back({pointer_child(where, i), "must be a non-empty string"});
      continue;
    }
    out.push_back(e.get<std::string>());
  }
}

void read_rules(const json& doc, const std::string& at, ToolRules& rules, bool roles_allowed,
                std::vector<Problem>& problems) {
  if (!doc.is_object()) {
    problems.push_back({at, "must be an object"});
    return;
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "allow" && it.key() != "deny" && !(roles_allowed && it.key() == "roles")) {
      problems.push_back({pointer_child(at, it.key()), "unknown field '" + it.key() +
                                                           "' (allowed: allow, deny" +
                                                           (roles_allowed ? ", roles)" : ")")});
    }
  }
  bool ignored = false;
  read_list(doc, "allow", at, rules.allow, rules.has_allow, problems);
  read_list(doc, "deny", at, rules.deny, ignored, problems);
}

json rules_json(const ToolRules& r) {
  json out = json::object();
  if (r.has_allow) out["allow"] = r.allow;
  if (!r.deny.empty()) out["deny"] = r.deny;
  return out;
}

}  // namespace

std::optional<std::string> ToolRules::refuses(std::string_view tool,
                                              std::string_view action) const {
  for (const auto& d : deny) {
    if (matches(d, tool, action)) return "denied by \"" + d + "\"";
  }
  if (!has_allow) return std::nullopt;
  for (const auto& a : allow) {
    if (matches(a, tool, action)) return std::nullopt;
  }
  return std::string("not in the allow list");
}

std::string ToolPolicy::refuses(std::string_view tool, std::string_view action,
                                std::string_view role) const {
  const std::string name = std::string(tool) + "." + std::string(action);
  if (auto why = tenant.refuses(tool, action)) {
    return "the tenant may not use " + name + " (" + *why + ")";
  }
  if (!role.empty()) {
    auto r = roles.find(std::string(role));
    if (r != roles.end()) {
      if (auto why = r->second.refuses(tool, action)) {
        return "the role " + std::string(role) + " may not use " + name + " (" + *why + ")";
      }
    }
  }
  return "";
}

Result<ToolPolicy> ToolPolicy::parse(const json& doc, const std::string& pointer) {
  ToolPolicy p;
  std::vector<Problem> problems;
  if (doc.is_null()) return p;  // null clears the policy
  read_rules(doc, pointer, p.tenant, true, problems);
  if (doc.is_object() && doc.contains("roles")) {
    const json& roles = doc["roles"];
    const std::string at = pointer_child(pointer, "roles");
    if (!roles.is_object()) {
      problems.push_back({at, "must be an object: role -> {allow, deny}"});
    } else {
      for (auto it = roles.begin(); it != roles.end(); ++it) {
        bool known = false;
        for (const char* r : kRoles) known = known || it.key() == r;
        if (!known) {
          problems.push_back(
              {pointer_child(at, it.key()),
               "unknown role '" + it.key() + "' (roles: viewer, editor, admin, owner, worker)"});
          continue;
        }
        read_rules(*it, pointer_child(at, it.key()), p.roles[it.key()], false, problems);
      }
    }
  }
  if (!problems.empty()) {
    return Status(RuntimeErrc::kInvalidFlow, "the tool policy is invalid", std::move(problems));
  }
  return p;
}

json ToolPolicy::to_json() const {
  json out = rules_json(tenant);
  if (!roles.empty()) {
    json r = json::object();
    for (const auto& [role, rules] : roles) r[role] = rules_json(rules);
    out["roles"] = r;
  }
  return out;
}

}  // namespace yantra
