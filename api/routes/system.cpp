// Health, readiness, metrics and the API description. /healthz answers as
// long as the process serves HTTP; /readyz only once recovery has handed
// every unfinished execution back to its actor, so a load balancer does not
// send traffic to a node that is still replaying.
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
    if (svc.engine.ready()) return respond_json(ctx, 200, {{"status", "ready"}});
    ctx->respond(error_response(Status(ApiErrc::kNotReady, "recovery in progress")));
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
