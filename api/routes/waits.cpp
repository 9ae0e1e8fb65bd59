// People and systems in the loop: signals to executions, approval decisions,
// and the list of approvals waiting for the caller. The engine answers once
// the input is durable (SignalReceived / ApprovalRecorded), so a 202 here
// means the input will be seen even if the node crashes right after.
//
// Who may approve is decided by the step (its approvers: key ids or
// role:<role>), not by a route role: any key of the tenant may call the
// route, and the step's check answers 403 for a caller it does not list.
#include "api/errc.hpp"
#include "api/services.hpp"

namespace yantra::api {
namespace {

json approval_view(const Engine::WaitingApproval& w) {
  const PendingApproval& a = w.approval;
  return {{"execution_id", w.execution_id},
          {"flow_id", w.flow_id},
          {"step", a.step_id},
          {"step_path", a.step_path},
          {"approvers", a.spec.approvers},
          {"policy", to_string(a.spec.policy)},
          {"decisions", a.decisions},
          {"started_at", iso_time(a.started_ms)},
          {"due_at", a.due_ms == 0 ? json(nullptr) : json(iso_time(a.due_ms))}};
}

// True when the caller is listed and has not decided yet.
bool waits_for(const PendingApproval& a, const Principal& who) {
  for (const auto& d : a.decisions) {
    if (d.value("key_id", "") == who.key_id) return false;
  }
  for (const auto& entry : a.spec.approvers) {
    if (approver_matches(entry, who.key_id, who.role)) return true;
  }
  return false;
}

}  // namespace

void register_wait_routes(Router& router, Services& svc) {
  router.add(
      "POST", "/api/v1/executions/{id}/signals/{name}", Access::kEditor,
      [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        json data = nullptr;
        if (!ctx->req.body.empty()) {
          auto body = parse_body(ctx->req);
          if (!body.ok()) return respond_error(ctx, body.status());
          const json& b = body.value();
          if (!b.is_object()) {
            return respond_error(ctx, Status(ApiErrc::kInvalidRequest,
                                             "body must be an object like {\"data\": ...}"));
          }
          if (Status s = reject_unknown_fields(b, {"data"}, "unknown field (expected data)");
              !s.is_ok()) {
            return respond_error(ctx, s);
          }
          if (b.contains("data")) data = b["data"];
        }
        const std::string id = ctx->param("id");
        const std::string name = ctx->param("name");
        svc.engine.signal(ctx->who.tenant, id, name, data, [ctx, id, name](Result<std::string> r) {
          if (!r.ok()) return respond_error(ctx, r.status());
          respond_json(ctx, 202, {{"execution_id", id}, {"name", name}, {"signal_id", r.value()}});
        });
      });

  router.add(
      "POST", "/api/v1/executions/{id}/approvals/{step}", Access::kViewer,
      [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto body = parse_body(ctx->req);
        if (!body.ok()) return respond_error(ctx, body.status());
        const json& b = body.value();
        std::vector<Problem> problems;
        if (!b.is_object()) {
          return respond_error(ctx,
                               Status(ApiErrc::kInvalidRequest,
                                      "body must be {\"decision\": \"approved\"|\"rejected\"}"));
        }
        for (const auto& [k, v] : b.items()) {
          if (k != "decision" && k != "comment") {
            problems.push_back({"/" + k, "unknown field '" + k + "'"});
          }
        }
        if (!b.contains("decision") || !b["decision"].is_string() ||
            (b["decision"] != "approved" && b["decision"] != "rejected")) {
          problems.push_back({"/decision", "is required: approved or rejected"});
        }
        std::string comment;
        if (b.contains("comment")) {
          if (!b["comment"].is_string() ||
              b["comment"].get_ref<const std::string&>().size() > 4096) {
            problems.push_back({"/comment", "must be a string of at most 4096 bytes"});
          } else {
            comment = b["comment"].get<std::string>();
          }
        }
        if (!problems.empty()) {
          return respond_error(
              ctx, Status(ApiErrc::kInvalidRequest, "decision is invalid", std::move(problems)));
        }
        // A step inside a loop or branch is named by its path (?path=),
        // which may hold '/' and cannot be a path segment.
        const std::string* path = ctx->req.query_param("path");
        const std::string step = path != nullptr ? *path : ctx->param("step");
        const bool approved = b["decision"] == "approved";
        const std::string id = ctx->param("id");
        svc.engine.approve(ctx->who.tenant, id, step, ctx->who.key_id, ctx->who.role, approved,
                           comment, [ctx, id, step, approved](Status s) {
                             if (!s.is_ok()) return respond_error(ctx, s);
                             respond_json(ctx, 200,
                                          {{"execution_id", id},
                                           {"step_path", step},
                                           {"decision", approved ? "approved" : "rejected"}});
                           });
      });

  router.add("GET", "/api/v1/approvals", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               const std::string* status = ctx->req.query_param("status");
               if (status != nullptr && *status != "pending") {
                 return respond_error(ctx, Status(ApiErrc::kInvalidParameter,
                                                  "status must be 'pending' (decided approvals "
                                                  "are in each execution's timeline)"));
               }
               auto all = svc.engine.pending_approvals(ctx->who.tenant);
               if (!all.ok()) return respond_error(ctx, all.status());
               json items = json::array();
               for (const auto& w : all.value()) {
                 if (waits_for(w.approval, ctx->who)) items.push_back(approval_view(w));
               }
               respond_json(ctx, 200, {{"approvals", items}});
             });
}

}  // namespace yantra::api
