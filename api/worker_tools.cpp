// See worker_tools.hpp. Validation names every bad field (400 with one
// pointer per problem) so that a worker's author sees all mistakes at once.
#include "api/worker_tools.hpp"

#include <regex>

#include <spdlog/spdlog.h>

#include "api/errc.hpp"
#include "runtime/execution.hpp"
#include "runtime/json_schema.hpp"

namespace yantra::api {
namespace {

bool valid_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  return std::regex_match(s, re);
}

const char* kNameRule = "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}";

void unknown_fields(const json& obj, std::initializer_list<const char*> allowed,
                    const std::string& at, std::vector<Problem>& problems) {
  for (const auto& [k, v] : obj.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) problems.push_back({at + "/" + k, "unknown field '" + k + "'"});
  }
}

// An optional integer member within [lo, hi]; `out` keeps its default when absent.
void bounded_int(const json& obj, const char* name, int64_t lo, int64_t hi, const std::string& at,
                 int64_t& out, std::vector<Problem>& problems) {
  auto it = obj.find(name);
  if (it == obj.end()) return;
  if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    problems.push_back({at + "/" + name, "must be an integer from " + std::to_string(lo) + " to " +
                                             std::to_string(hi)});
    return;
  }
  out = it->get<int64_t>();
}

}  // namespace

Result<WorkerDef> parse_worker_definition(const json& doc,
                                          const std::function<bool(const std::string&)>& builtin) {
  std::vector<Problem> problems;
  if (!doc.is_object()) return Status(ApiErrc::kInvalidRequest, "body must be a JSON object");
  unknown_fields(doc, {"id", "tools"}, "", problems);
  WorkerDef def;
  if (!doc.contains("id") || !doc["id"].is_string() || !valid_name(doc["id"])) {
    problems.push_back({"/id", std::string("is required and ") + kNameRule});
  } else {
    def.id = doc["id"];
  }
  const json* tools = doc.contains("tools") ? &doc["tools"] : nullptr;
  if (tools == nullptr || !tools->is_array() || tools->empty() || tools->size() > kMaxWorkerTools) {
    problems.push_back(
        {"/tools", "is required: an array of 1 to " + std::to_string(kMaxWorkerTools) + " tools"});
    tools = nullptr;
  }
  std::set<std::string> tool_ids;
  for (size_t i = 0; tools != nullptr && i < tools->size(); ++i) {
    const json& t = (*tools)[i];
    const std::string at = "/tools/" + std::to_string(i);
    if (!t.is_object()) {
      problems.push_back({at, "must be an object"});
      continue;
    }
    unknown_fields(t, {"id", "description", "actions", "max_concurrency", "lease_ms"}, at,
                   problems);
    WorkerToolDef w;
    w.doc = t;
    w.spec.kind = "worker";
    if (!t.contains("id") || !t["id"].is_string()) {
      problems.push_back({at + "/id", std::string("is required and ") + kNameRule});
    } else {
      const std::string id = t["id"];
      if (id.rfind("mcp:", 0) == 0) {
        problems.push_back({at + "/id", "'mcp:' ids are MCP servers' tools"});
      } else if (!valid_name(id)) {
        problems.push_back({at + "/id", kNameRule});
      } else if (builtin(id)) {
        problems.push_back({at + "/id", "'" + id + "' is a built-in tool's id"});
      } else if (!tool_ids.insert(id).second) {
        problems.push_back({at + "/id", "tool '" + id + "' is listed twice"});
      }
      w.spec.id = id;
    }
    if (t.contains("description")) {
      if (!t["description"].is_string() ||
          t["description"].get_ref<const std::string&>().size() > 4096) {
        problems.push_back({at + "/description", "must be a string of at most 4096 bytes"});
      } else {
        w.spec.description = t["description"];
      }
    }
    int64_t conc = static_cast<int64_t>(w.limits.max_concurrency);
    bounded_int(t, "max_concurrency", 1, kMaxWorkerConcurrency, at, conc, problems);
    w.limits.max_concurrency = static_cast<size_t>(conc);
    bounded_int(t, "lease_ms", kMinLeaseMs, kMaxLeaseMs, at, w.limits.lease_ms, problems);
    const json* actions = t.contains("actions") ? &t["actions"] : nullptr;
    if (actions == nullptr || !actions->is_array() || actions->empty() ||
        actions->size() > kMaxWorkerActions) {
      problems.push_back({at + "/actions", "is required: an array of 1 to " +
                                               std::to_string(kMaxWorkerActions) + " actions"});
      actions = nullptr;
    }
    std::set<std::string> names;
    for (size_t j = 0; actions != nullptr && j < actions->size(); ++j) {
      const json& a = (*actions)[j];
      const std::string aat = at + "/actions/" + std::to_string(j);
      if (!a.is_object()) {
        problems.push_back({aat, "must be an object"});
        continue;
      }
      unknown_fields(a, {"name", "description", "input_schema", "output_schema"}, aat, problems);
      ActionSpec spec;
      if (!a.contains("name") || !a["name"].is_string() || !valid_name(a["name"])) {
        problems.push_back({aat + "/name", std::string("is required and ") + kNameRule});
      } else if (!names.insert(a["name"].get<std::string>()).second) {
        problems.push_back(
            {aat + "/name", "action '" + a["name"].get<std::string>() + "' is listed twice"});
      } else {
        spec.name = a["name"];
      }
      if (a.contains("description")) {
        if (!a["description"].is_string()) {
          problems.push_back({aat + "/description", "must be a string"});
        } else {
          spec.description = a["description"];
        }
      }
      for (const char* key : {"input_schema", "output_schema"}) {
        if (!a.contains(key)) continue;
        const size_t before = problems.size();
        check_schema(a[key], aat + "/" + key, problems);
        if (problems.size() == before) {
          (std::string(key) == "input_schema" ? spec.input_schema : spec.output_schema) = a[key];
        }
      }
      w.spec.actions.push_back(std::move(spec));
    }
    def.tools.push_back(std::move(w));
  }
  if (!problems.empty()) {
    return Status(ApiErrc::kInvalidRequest, "worker registration is invalid", std::move(problems));
  }
  return def;
}

WorkerTools::WorkerTools(Engine& engine, std::shared_ptr<TaskBroker> broker)
    : engine_(engine), broker_(std::move(broker)) {}

void WorkerTools::apply(const std::string& tenant, const std::string& worker_id, const json& doc,
                        bool deleted) {
  std::vector<WorkerToolDef> tools;
  if (!deleted) {
    auto def = parse_worker_definition(
        doc, [this](const std::string& id) { return engine_.tools().is_builtin(id); });
    if (!def.ok()) {
      spdlog::warn("workers: registration '{}' of tenant '{}' skipped: {}", worker_id, tenant,
                   def.status().to_string());
      return;
    }
    tools = std::move(def.value().tools);
  }
  std::vector<std::shared_ptr<WorkerTool>> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto wkey = std::make_pair(tenant, worker_id);
    std::set<std::string> now;
    for (const auto& t : tools) now.insert(t.spec.id);
    // Tools this worker no longer serves.
    if (auto w = workers_.find(wkey); w != workers_.end()) {
      for (const auto& id : w->second.tools) {
        if (now.count(id)) continue;
        auto it = tools_.find({tenant, id});
        if (it == tools_.end()) continue;
        it->second.workers.erase(worker_id);
        if (!it->second.workers.empty()) continue;
        (void)engine_.remove_tool(tenant, id);
        retired.push_back(it->second.tool);
        tools_.erase(it);
      }
    }
    if (deleted) {
      workers_.erase(wkey);
    } else {
      workers_[wkey] = Registered{std::vector<std::string>(now.begin(), now.end()), doc};
    }
    for (auto& t : tools) {
      Installed& slot = tools_[{tenant, t.spec.id}];
      slot.workers.insert(worker_id);
      const std::string fingerprint = dump_canonical(t.doc);
      if (slot.tool && slot.fingerprint == fingerprint) continue;
      broker_->set_limits(tenant, t.spec.id, t.limits);
      auto tool = std::make_shared<WorkerTool>(broker_, t.spec, t.limits.max_concurrency);
      if (Status s = engine_.add_tool(tenant, tool); !s.is_ok()) {
        spdlog::warn("workers: tool '{}' of worker '{}' (tenant '{}') not added: {}", t.spec.id,
                     worker_id, tenant, s.to_string());
        if (!slot.tool) tools_.erase({tenant, t.spec.id});
        continue;
      }
      if (slot.tool) retired.push_back(slot.tool);
      slot.tool = std::move(tool);
      slot.fingerprint = fingerprint;
    }
  }
  for (auto& t : retired) t->retire();
  if (deleted) broker_->forget_worker(tenant, worker_id);
}

std::vector<std::string> WorkerTools::tools_of(const std::string& tenant,
                                               const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find({tenant, worker_id});
  return it == workers_.end() ? std::vector<std::string>{} : it->second.tools;
}

std::vector<std::pair<std::string, json>> WorkerTools::list(const std::string& tenant) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, json>> out;
  for (auto it = workers_.lower_bound({tenant, ""});
       it != workers_.end() && it->first.first == tenant; ++it) {
    out.emplace_back(it->first.second, it->second.doc);
  }
  return out;
}

std::optional<json> WorkerTools::find(const std::string& tenant,
                                      const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find({tenant, worker_id});
  if (it == workers_.end()) return std::nullopt;
  return it->second.doc;
}

bool WorkerTools::knows(const std::string& tenant, const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.count({tenant, worker_id}) > 0;
}

}  // namespace yantra::api
