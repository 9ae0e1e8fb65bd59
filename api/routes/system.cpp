// Health, readiness, metrics and the API description. /healthz answers as
// long as the process serves HTTP; /readyz only once recovery has handed
// every unfinished execution back to its actor, so a load balancer does not
// send traffic to a node that is still replaying.
//
// A read-only node (a write failed, or the disk is below its free-space
// floor) still serves reads, so /readyz stays 200 and says "writes": false
// with the reason; a probe that routes writes asks /readyz?writes=true,
// which answers 503 then. In a cluster a node also cannot take writes while
// its node lease is not valid or a partition has no leader (ClusterView).
#include "api/errc.hpp"
#include "api/openapi.hpp"
#include "api/services.hpp"
#include "base/metrics.hpp"

namespace yantra::api {

void register_system_routes(Router& router, Services& svc) {
  router.add("GET", "/healthz", Access::kPublic, [](const std::shared_ptr<RouteCtx>& ctx) {
    respond_json(ctx, 200, {{"status", "ok"}});
  });
  router.add("GET", "/readyz", Access::kPublic, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    // Other query parameters are ignored (x-yantra-any-query in
    // openapi.json: load balancers add their own); `writes` is ours, and a
    // value that is neither true nor false is a mistake worth a 400.
    bool need_writes = false;
    for (const auto& [name, value] : ctx->req.query) {
      if (name != "writes") continue;
      if (value != "true" && value != "false") {
        return respond_error(
            ctx, Status(ApiErrc::kInvalidParameter,
                        "query parameter writes must be true or false, not '" + value + "'"));
      }
      need_writes = value == "true";
    }
    if (!svc.engine.ready()) {
      return ctx->respond(error_response(Status(ApiErrc::kNotReady, "recovery in progress")));
    }
    Status writes = svc.engine.write_status();
    // In a cluster, also whether the node can reach every partition's leader.
    if (writes.is_ok() && svc.cluster != nullptr) writes = svc.cluster->write_status();
    if (need_writes && !writes.is_ok()) {
      return respond_error(ctx, writes);  // 503: store_read_only, store_no_space
    }
    json body = {{"status", "ready"}, {"writes", writes.is_ok()}};
    if (!writes.is_ok()) {
      body["reason"] = writes.code();
      body["message"] = writes.message();
    }
    respond_json(ctx, 200, body);
  });
  router.add("GET", "/metrics", Access::kPublic, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    auto stats = svc.engine.stats();
    auto& reg = metrics::global();
    // Gauges sampled at scrape time.
    std::string body = reg.render();
    body += "# HELP yantra_active_executions Execution actors alive\n";
    body += "# TYPE yantra_active_executions gauge\n";
    body += "yantra_active_executions " + std::to_string(stats.active_actors) + "\n";
    body += "# HELP yantra_ready 1 once recovery is done\n# TYPE yantra_ready gauge\n";
    body += std::string("yantra_ready ") + (svc.engine.ready() ? "1" : "0") + "\n";
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = std::move(body);
    ctx->respond(std::move(r));
  });
  router.add("GET", "/api/v1/openapi.json", Access::kViewer,
             [](const std::shared_ptr<RouteCtx>& ctx) {
               ctx->respond(json_response(200, openapi_document()));
             });
}

}  // namespace yantra::api
