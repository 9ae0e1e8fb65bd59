// The time machine: the state of an execution after any event, its timeline,
// what changed between two events (RFC 6902), replay (a fork from any event,
// optionally with a patched input or step outputs) and retry (a failed run
// continues from its failed step). All of it is read from, or appended to,
// the event log: the source of a fork is never modified.
#include "api/errc.hpp"
#include "api/services.hpp"
#include "runtime/json_patch.hpp"
#include "runtime/redact.hpp"
#include "runtime/timeline.hpp"

namespace yantra::api {
namespace {

// The state after event `at_seq` (0 = the latest), as users see it. The
// bound comes from the log, not from the summary row: that row is rewritten
// only when the status changes, so its last_seq lags behind a running
// execution's log.
Result<json> state_at(Services& svc, const std::string& tenant, const std::string& id,
                      uint64_t at_seq) {
  auto summary = svc.engine.summary(tenant, id);
  if (!summary.ok()) return summary.status();
  auto st = svc.engine.load_state_at(id, at_seq == 0 ? UINT64_MAX : at_seq);
  if (!st.ok()) return st.status();
  const uint64_t last = st.value().last_seq;
  if (at_seq > last) {
    return Status(ApiErrc::kInvalidParameter, "at_seq " + std::to_string(at_seq) +
                                                  " is beyond the last event (" +
                                                  std::to_string(last) + ")");
  }
  json view = execution_view(st.value());
  view["at_seq"] = st.value().last_seq;
  json waiting = json::array();
  for (const auto& [timer_id, t] : st.value().timers) {
    waiting.push_back({{"timer", timer_id}, {"path", t.path}, {"due_at", iso_time(t.due_ms)}});
  }
  view["running_steps"] = st.value().running;
  view["waiting_for"] = std::move(waiting);
  return redact(view);
}

// make_fork's problems locate members of the patch; the client sent them
// inside {"from_seq", "patch"}, so point into that body. An invalid argument
// without details is the fork point (past the source's last event).
Status in_replay_body(const Status& s) {
  if (!s.is(Errc::kInvalidArgument)) return s;
  std::vector<Problem> details;
  for (const auto& d : s.details()) details.push_back({"/patch" + d.path, d.message});
  if (details.empty()) details.push_back({"/from_seq", s.message()});
  return s.with_message(s.message(), std::move(details));
}

}  // namespace

void register_time_machine_routes(Router& router, Services& svc) {
  router.add("GET", "/api/v1/executions/{id}/state", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto at = query_uint(ctx->req, "at_seq", 0, UINT64_MAX / 2);
               if (!at.ok()) return respond_error(ctx, at.status());
               auto view = state_at(svc, ctx->who.tenant, ctx->param("id"), at.value());
               if (!view.ok()) return respond_error(ctx, view.status());
               respond_json(ctx, 200, view.value());
             });

  router.add("GET", "/api/v1/executions/{id}/timeline", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto summary = svc.engine.summary(ctx->who.tenant, ctx->param("id"));
               if (!summary.ok()) return respond_error(ctx, summary.status());
               auto events = svc.engine.load_events(ctx->param("id"));
               if (!events.ok()) return respond_error(ctx, events.status());
               respond_json(ctx, 200, redact(timeline(events.value())));
             });

  router.add("GET", "/api/v1/executions/{id}/diff", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               const std::string* from = ctx->req.query_param("from_seq");
               const std::string* to = ctx->req.query_param("to_seq");
               if (from == nullptr || to == nullptr) {
                 return respond_error(
                     ctx, Status(ApiErrc::kInvalidParameter, "from_seq and to_seq are required"));
               }
               auto a = query_uint(ctx->req, "from_seq", 0, UINT64_MAX / 2);
               auto b = query_uint(ctx->req, "to_seq", 0, UINT64_MAX / 2);
               if (!a.ok()) return respond_error(ctx, a.status());
               if (!b.ok()) return respond_error(ctx, b.status());
               if (a.value() == 0 || b.value() == 0) {
                 return respond_error(ctx, Status(ApiErrc::kInvalidParameter, "seqs start at 1"));
               }
               auto sa = state_at(svc, ctx->who.tenant, ctx->param("id"), a.value());
               if (!sa.ok()) return respond_error(ctx, sa.status());
               auto sb = state_at(svc, ctx->who.tenant, ctx->param("id"), b.value());
               if (!sb.ok()) return respond_error(ctx, sb.status());
               respond_json(ctx, 200,
                            {{"from_seq", a.value()},
                             {"to_seq", b.value()},
                             {"patch", diff(sa.value(), sb.value())}});
             });

  router.add(
      "POST", "/api/v1/executions/{id}/replay", Access::kEditor,
      [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        json body = json::object();
        if (!ctx->req.body.empty()) {
          auto b = parse_body(ctx->req);
          if (!b.ok()) return respond_error(ctx, b.status());
          body = std::move(b.value());
        }
        if (!body.is_object()) {
          return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "body must be an object",
                                           {{"", "must be {\"from_seq\": N, \"patch\": {...}}"}}));
        }
        if (Status s = reject_unknown_fields(body, {"from_seq", "patch"}, "unknown field");
            !s.is_ok()) {
          return respond_error(ctx, s);
        }
        uint64_t from_seq = 0;
        if (body.contains("from_seq")) {
          if (!body["from_seq"].is_number_unsigned() || body["from_seq"].get<uint64_t>() == 0) {
            return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "from_seq must be ≥ 1",
                                             {{"/from_seq", "must be an integer ≥ 1"}}));
          }
          from_seq = body["from_seq"].get<uint64_t>();
        }
        json patch = body.contains("patch") ? body["patch"] : json(nullptr);
        const std::string source = ctx->param("id");
        svc.engine.fork(ctx->who.tenant, source, from_seq, patch,
                        [ctx, source, from_seq](Result<std::string> id) {
                          if (!id.ok()) return respond_error(ctx, in_replay_body(id.status()));
                          respond_json(
                              ctx, 201,
                              {{"execution_id", id.value()},
                               {"parent_execution_id", source},
                               {"forked_at_seq", from_seq == 0 ? json(nullptr) : json(from_seq)}});
                        });
      });

  router.add("POST", "/api/v1/executions/{id}/retry", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               const std::string id = ctx->param("id");
               svc.engine.retry(ctx->who.tenant, id, [ctx](Result<std::string> r) {
                 if (!r.ok()) return respond_error(ctx, r.status());
                 respond_json(ctx, 202, {{"execution_id", r.value()}, {"status", "running"}});
               });
             });
}

}  // namespace yantra::api
