// ToolRegistry (tool_registry.hpp): maps under one shared mutex.
#include "actors/tool_registry.hpp"

#include <algorithm>
#include <mutex>

#include "base/errc.hpp"
#include "runtime/doc_reader.hpp"
#include "runtime/json_schema.hpp"

namespace yantra {

void ToolRegistry::add_builtin(ToolSpec spec) {
  std::unique_lock lock(mu_);
  spec.tenant.clear();
  builtins_.push_back(std::move(spec));
}

Status ToolRegistry::add(const std::string& tenant, ToolSpec spec) {
  if (spec.id.empty() || tenant.empty()) {
    return Status(Errc::kInvalidArgument, "a tenant tool needs a tenant and an id");
  }
  std::vector<Problem> problems;
  for (size_t i = 0; i < spec.actions.size(); ++i) {
    const std::string at = "/actions/" + std::to_string(i);
    check_schema(spec.actions[i].input_schema, pointer_child(at, "input_schema"), problems);
    check_schema(spec.actions[i].output_schema, pointer_child(at, "output_schema"), problems);
  }
  if (!problems.empty()) {
    return Status(Errc::kInvalidArgument, "tool '" + spec.id + "' has invalid schemas",
                  std::move(problems));
  }
  spec.tenant = tenant;
  std::unique_lock lock(mu_);
  for (const auto& b : builtins_) {
    if (b.id == spec.id) {
      return Status(Errc::kInvalidArgument, "tool id '" + spec.id + "' is a built-in tool's");
    }
  }
  tenant_tools_[tenant][spec.id] = std::move(spec);
  return Status::ok();
}

bool ToolRegistry::remove(const std::string& tenant, const std::string& id) {
  std::unique_lock lock(mu_);
  auto t = tenant_tools_.find(tenant);
  if (t == tenant_tools_.end() || t->second.erase(id) == 0) return false;
  if (t->second.empty()) tenant_tools_.erase(t);
  return true;
}

std::vector<ToolSpec> ToolRegistry::list(const std::string& tenant) const {
  std::shared_lock lock(mu_);
  std::vector<ToolSpec> out = builtins_;
  if (auto t = tenant_tools_.find(tenant); t != tenant_tools_.end()) {
    for (const auto& [id, spec] : t->second) out.push_back(spec);
  }
  return out;
}

std::vector<ToolSpec> ToolRegistry::builtins() const {
  std::shared_lock lock(mu_);
  return builtins_;
}

std::optional<ToolSpec> ToolRegistry::find(const std::string& tenant, const std::string& id) const {
  std::shared_lock lock(mu_);
  for (const auto& b : builtins_) {
    if (b.id == id) return b;
  }
  if (auto t = tenant_tools_.find(tenant); t != tenant_tools_.end()) {
    if (auto s = t->second.find(id); s != t->second.end()) return s->second;
  }
  return std::nullopt;
}

bool ToolRegistry::is_builtin(const std::string& id) const {
  std::shared_lock lock(mu_);
  return std::any_of(builtins_.begin(), builtins_.end(),
                     [&](const ToolSpec& b) { return b.id == id; });
}

void ToolRegistry::set_policy(const std::string& tenant, ToolPolicy policy) {
  std::unique_lock lock(mu_);
  if (policy.empty()) {
    policies_.erase(tenant);
  } else {
    policies_[tenant] = std::move(policy);
  }
}

ToolPolicy ToolRegistry::policy(const std::string& tenant) const {
  std::shared_lock lock(mu_);
  auto it = policies_.find(tenant);
  return it == policies_.end() ? ToolPolicy{} : it->second;
}

std::string ToolRegistry::refuses(const std::string& tenant, const std::string& tool,
                                  const std::string& action, const std::string& role) const {
  std::shared_lock lock(mu_);
  auto it = policies_.find(tenant);
  if (it == policies_.end()) return "";
  return it->second.refuses(tool, action, role);
}

}  // namespace yantra
