// /api/v1/executions: list (newest first, cursor paging; in a cluster with
// more nodes than replicas, merged from the nodes holding the partitions
// this one lacks: api/cluster_view.hpp), get (the state folded from the
// log: the log is the truth), events (paged history), cancel (an event like
// any other; answered once it is durable).
#include "api/errc.hpp"
#include "api/services.hpp"
#include "runtime/ids.hpp"
#include "runtime/redact.hpp"

namespace yantra::api {

void register_execution_routes(Router& router, Services& svc) {
  router.add(
      "GET", "/api/v1/executions", Access::kViewer, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto limit = query_uint(ctx->req, "limit", 50, 1000);
        if (!limit.ok()) return respond_error(ctx, limit.status());
        const std::string* flow_id = ctx->req.query_param("flow_id");
        const std::string* status = ctx->req.query_param("status");
        const std::string* cursor = ctx->req.query_param("cursor");
        static const char* kStatuses[] = {"running", "waiting",   "completed",
                                          "failed",  "cancelled", "timed_out"};
        if (status != nullptr && !status->empty() &&
            std::find(std::begin(kStatuses), std::end(kStatuses), *status) == std::end(kStatuses)) {
          return respond_error(ctx, Status(ApiErrc::kInvalidParameter,
                                           "status must be one of running, waiting, completed, "
                                           "failed, cancelled, timed_out"));
        }
        if (cursor != nullptr && !cursor->empty() && !is_valid_execution_id(*cursor)) {
          return respond_error(ctx,
                               Status(ApiErrc::kInvalidParameter, "cursor is not a valid cursor"));
        }
        ClusterView::ListQuery query;
        query.tenant = ctx->who.tenant;
        query.flow_id = flow_id ? *flow_id : "";
        query.status = status ? *status : "";
        query.limit = std::max<uint64_t>(1, limit.value());
        query.cursor = cursor ? *cursor : "";
        auto answer = [ctx](Result<ExecutionPage> page) {
          if (!page.ok()) return respond_error(ctx, page.status());
          json items = json::array();
          for (const auto& s : page.value().items) items.push_back(summary_view(s));
          respond_json(
              ctx, 200,
              {{"executions", items},
               {"next_cursor", page.value().next_cursor.empty() ? json(nullptr)
                                                                : json(page.value().next_cursor)}});
        };
        // A node that lacks some partitions asks the nodes holding them
        // (cli/cluster_list.hpp); the answer comes back by callback, so no
        // I/O thread waits on another node. Otherwise, as a single node:
        // from this node's own store.
        if (svc.cluster != nullptr && svc.cluster->list_executions(query, answer)) return;
        answer(svc.engine.list_executions(query.tenant, query.flow_id, query.status, query.limit,
                                          query.cursor));
      });

  router.add("GET", "/api/v1/executions/{id}", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto summary = svc.engine.summary(ctx->who.tenant, ctx->param("id"));
               if (!summary.ok()) return respond_error(ctx, summary.status());
               // A queued run has no history yet (and none if cancelled in the queue).
               if (summary.value().last_seq() == 0) {
                 return respond_json(ctx, 200, summary_view(summary.value()));
               }
               auto st = svc.engine.load_state(ctx->param("id"));
               if (!st.ok()) {
                 // Retention removed the history; the summary is kept longer.
                 if (!st.status().is(Errc::kNotFound)) return respond_error(ctx, st.status());
                 json view = summary_view(summary.value());
                 view["events_expired"] = true;
                 return respond_json(ctx, 200, view);
               }
               json view = execution_view(st.value());
               auto forks = svc.engine.forks(ctx->param("id"));
               if (!forks.ok()) return respond_error(ctx, forks.status());
               view["forks"] = forks.value();
               respond_json(ctx, 200, redact(view));
             });

  router.add("GET", "/api/v1/executions/{id}/events", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto summary = svc.engine.summary(ctx->who.tenant, ctx->param("id"));
               if (!summary.ok()) return respond_error(ctx, summary.status());
               auto after = query_uint(ctx->req, "after_seq", 0, UINT64_MAX / 2);
               if (!after.ok()) return respond_error(ctx, after.status());
               auto limit = query_uint(ctx->req, "limit", 100, 1000);
               if (!limit.ok()) return respond_error(ctx, limit.status());
               const uint64_t n = std::max<uint64_t>(1, limit.value());
               // One event more than the page: whether more follow is read from the
               // log, as the summary's last_seq lags behind a running execution.
               auto events = svc.engine.load_events(ctx->param("id"), after.value() + 1,
                                                    after.value() + n + 1);
               if (!events.ok()) return respond_error(ctx, events.status());
               const bool more = events.value().size() > n;
               if (more) events.value().pop_back();
               json items = json::array();
               for (const auto& ev : events.value()) items.push_back(redact(event_view(ev)));
               const uint64_t last =
                   events.value().empty() ? after.value() : events.value().back().seq();
               json next = more ? json(last) : json(nullptr);
               respond_json(ctx, 200, {{"events", items}, {"next_after_seq", next}});
             });

  router.add("POST", "/api/v1/executions/{id}/cancel", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto summary = svc.engine.summary(ctx->who.tenant, ctx->param("id"));
               if (!summary.ok()) return respond_error(ctx, summary.status());
               std::string reason = "cancelled by " + ctx->who.key_id;
               if (!ctx->req.body.empty()) {
                 auto body = parse_body(ctx->req);
                 if (!body.ok()) return respond_error(ctx, body.status());
                 if (body.value().is_object() && body.value().contains("reason") &&
                     body.value()["reason"].is_string()) {
                   reason = body.value()["reason"].get<std::string>();
                 }
               }
               const std::string id = ctx->param("id");
               svc.engine.cancel_async(id, reason, [ctx, id](Status s) {
                 if (!s.is_ok()) return respond_error(ctx, s);
                 respond_json(ctx, 200, {{"execution_id", id}, {"status", "cancelled"}});
               });
             });
}

}  // namespace yantra::api
