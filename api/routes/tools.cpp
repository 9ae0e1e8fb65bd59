// The tool registry over HTTP (/api/v1/tools, any role): the tools a tenant
// can call — the built-ins and its own (MCP servers, workers) — described one
// way, with each action's schemas and whether the caller's tenant and role
// may use it; and a tool's usage over a time range.
//
// Usage is counted from the tenant's audit trail, where every tool call is a
// "tool.call" record (outcome, "<tool>.<action> attempt N duration_us D"):
// durable, in a cluster replicated with the execution's partition, and the
// same numbers on every node. The node-local live view is /metrics
// (yantra_tool_action_*). A range is scanned record by record, so it is
// bounded: at most kMaxUsageRecords records, beyond which the answer says
// "truncated" and counts what it read.
#include <cmath>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/metrics.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

constexpr size_t kMaxUsageRecords = 200000;
constexpr int64_t kDefaultUsageRangeMs = 24LL * 3600 * 1000;

json action_view(const ToolSpec& tool, const ActionSpec& a, const std::string& refusal,
                 bool with_schemas) {
  json v = {{"name", a.name},
            {"description", a.description},
            {"permission", tool.id + "." + a.name},
            {"side_effects", a.side_effects},
            {"idempotent", a.idempotent},
            {"default_timeout_ms", a.default_timeout_ms},
            {"default_retry",
             {{"max_attempts", a.default_retry.max_attempts},
              {"backoff", a.default_retry.backoff == Backoff::kFixed ? "fixed" : "exponential"},
              {"initial_delay_ms", a.default_retry.initial_delay_ms},
              {"max_delay_ms", a.default_retry.max_delay_ms},
              {"multiplier", a.default_retry.multiplier}}},
            {"allowed", refusal.empty()}};
  if (!refusal.empty()) v["denied_because"] = refusal;
  if (with_schemas) {
    v["input_schema"] = a.input_schema;
    v["output_schema"] = a.output_schema;
  }
  return v;
}

json tool_view(Services& svc, const std::shared_ptr<RouteCtx>& ctx, const ToolSpec& t,
               bool with_schemas) {
  json actions = json::array();
  for (const auto& a : t.actions) {
    actions.push_back(
        action_view(t, a, svc.engine.tools().refuses(ctx->who.tenant, t.id, a.name, ctx->who.role),
                    with_schemas));
  }
  return {{"id", t.id},
          {"version", t.version},
          {"description", t.description},
          {"kind", t.kind},
          {"scope", t.tenant.empty() ? "builtin" : "tenant"},
          {"actions", actions}};
}

struct ActionUsage {
  uint64_t calls = 0;
  uint64_t failures = 0;
  std::map<std::string, uint64_t> failures_by_code;
  std::vector<uint64_t> buckets;  // per bound of metrics::latency_seconds_buckets(), not cumulative
  uint64_t timed = 0;             // calls with a recorded duration
  double seconds = 0;
};

// "<tool>.<action> attempt N duration_us D" -> action and D (-1 when the
// record predates durations). False when the record is another tool's.
bool parse_detail(const std::string& detail, const std::string& tool, std::string& action,
                  int64_t& duration_us) {
  if (detail.size() <= tool.size() + 1 || detail.compare(0, tool.size(), tool) != 0 ||
      detail[tool.size()] != '.') {
    return false;
  }
  const size_t attempt = detail.find(" attempt ", tool.size() + 1);
  if (attempt == std::string::npos) return false;
  action = detail.substr(tool.size() + 1, attempt - tool.size() - 1);
  duration_us = -1;
  const size_t d = detail.find(" duration_us ", attempt);
  if (d != std::string::npos) {
    const std::string digits = detail.substr(d + 13);
    if (!digits.empty() && digits.size() < 16 &&
        digits.find_first_not_of("0123456789") == std::string::npos) {
      duration_us = std::stoll(digits);
    }
  }
  return true;
}

void usage(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  const std::string id = ctx->param("id");
  if (!svc.engine.tools().find(ctx->who.tenant, id)) {
    return respond_error(ctx, Status(Errc::kNotFound, "tool '" + id + "' not found"));
  }
  const int64_t now = now_ms();
  auto to = query_time(ctx->req, "to", now);
  if (!to.ok()) return respond_error(ctx, to.status());
  auto from = query_time(ctx->req, "from", to.value() - kDefaultUsageRangeMs);
  if (!from.ok()) return respond_error(ctx, from.status());
  if (from.value() >= to.value()) {
    return respond_error(
        ctx, Status(ApiErrc::kInvalidParameter, "query parameter 'from' must be before 'to'"));
  }
  AuditQuery q;
  q.chain = ctx->who.tenant;
  q.from_ms = from.value();
  q.to_ms = to.value();
  q.action = "tool.call";
  q.limit = kMaxUsageRecords;
  svc.admin.audit_query(std::move(q), [ctx, id, from = from.value(),
                                       to = to.value()](Result<std::vector<AuditListed>> records) {
    if (!records.ok()) return respond_error(ctx, records.status());
    const std::vector<double>& bounds = metrics::latency_seconds_buckets();
    std::map<std::string, ActionUsage> by_action;
    uint64_t calls = 0;
    uint64_t failures = 0;
    for (const auto& listed : records.value()) {
      std::string action;
      int64_t us = -1;
      if (!parse_detail(listed.record.detail(), id, action, us)) continue;
      ActionUsage& u = by_action[action];
      if (u.buckets.empty()) u.buckets.assign(bounds.size(), 0);
      ++u.calls;
      ++calls;
      if (listed.record.outcome() != "ok") {
        ++u.failures;
        ++failures;
        ++u.failures_by_code[listed.record.outcome()];
      }
      if (us >= 0) {
        const double s = static_cast<double>(us) / 1e6;
        ++u.timed;
        u.seconds += s;
        for (size_t i = 0; i < bounds.size(); ++i) {
          if (s <= bounds[i]) {
            ++u.buckets[i];
            break;
          }
        }
      }
    }
    json actions = json::object();
    for (const auto& [name, u] : by_action) {
      json buckets = json::array();
      uint64_t cumulative = 0;
      for (size_t i = 0; i < bounds.size(); ++i) {
        cumulative += u.buckets[i];
        buckets.push_back({{"le", bounds[i]}, {"count", cumulative}});
      }
      buckets.push_back({{"le", "+Inf"}, {"count", u.timed}});
      actions[name] = {
          {"calls", u.calls},
          {"failures", u.failures},
          {"failures_by_code", u.failures_by_code},
          {"duration_seconds", {{"count", u.timed}, {"sum", u.seconds}, {"buckets", buckets}}}};
    }
    respond_json(ctx, 200,
                 {{"tool_id", id},
                  {"from", iso_time(from)},
                  {"to", iso_time(to)},
                  {"calls", calls},
                  {"failures", failures},
                  {"actions", actions},
                  {"truncated", records.value().size() >= kMaxUsageRecords}});
  });
}

}  // namespace

// The action steps of a definition a tool policy refuses, each with the
// JSON pointer of its tool_id (bodies of loops and parallels included).
void refused_steps(const ToolRegistry& tools, const std::string& tenant, const std::string& role,
                   const json& steps, const std::string& pointer, std::vector<Problem>& out) {
  if (!steps.is_array()) return;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& step = steps[i];
    const std::string at = pointer + "/" + std::to_string(i);
    if (!step.is_object() || !step.contains("config") || !step["config"].is_object()) continue;
    const json& config = step["config"];
    if (step.value("type", json()) == "action" && config.value("tool_id", json()).is_string() &&
        config.value("action", json()).is_string()) {
      const std::string why = tools.refuses(tenant, config["tool_id"].get<std::string>(),
                                            config["action"].get<std::string>(), role);
      if (!why.empty()) out.push_back({at + "/config/tool_id", why});
    }
    if (config.contains("steps")) {
      refused_steps(tools, tenant, role, config["steps"], at + "/config/steps", out);
    }
  }
}

void register_tool_routes(Router& router, Services& svc) {
  router.add("GET", "/api/v1/tools", Access::kViewer, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    json items = json::array();
    for (const auto& t : svc.engine.tool_specs(ctx->who.tenant)) {
      items.push_back(tool_view(svc, ctx, t, false));
    }
    respond_json(ctx, 200, {{"tools", items}});
  });
  router.add("GET", "/api/v1/tools/{id}", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto t = svc.engine.tools().find(ctx->who.tenant, ctx->param("id"));
               if (!t) {
                 return respond_error(
                     ctx, Status(Errc::kNotFound, "tool '" + ctx->param("id") + "' not found"));
               }
               respond_json(ctx, 200, tool_view(svc, ctx, *t, true));
             });
  router.add("GET", "/api/v1/tools/{id}/usage", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { usage(svc, ctx); });
}

}  // namespace yantra::api
