// Every request goes through handle(): match the route (404/405), check the
// key for /api/v1 routes (401), run the handler, and count the answer by
// route pattern and status. The route pattern, not the raw path, labels the
// metric so ids in paths cannot blow up label cardinality.
#include "api/app.hpp"

#include "runtime/metrics.hpp"

namespace yantra::api {

ApiApp::ApiApp(Engine& engine) : services_{engine}, auth_(engine) {
  register_system_routes(router_, services_);
  register_flow_routes(router_, services_);
  register_execution_routes(router_, services_);
  register_time_machine_routes(router_, services_);
}

void ApiApp::handle(HttpRequest req, Responder respond) {
  // HEAD is GET without the body (the server leaves the body out).
  auto match = router_.match(req.method == "HEAD" ? "GET" : req.method, req.path);
  const std::string route = match.route ? match.route->pattern : "unmatched";
  const std::string method = req.method;
  Responder counted = [respond = std::move(respond), route, method](HttpResponse r) {
    metrics::global()
        .counter("yantra_http_requests_total", "HTTP requests by route and status",
                 {{"method", method}, {"route", route}, {"status", std::to_string(r.status)}})
        .inc();
    respond(std::move(r));
  };
  if (match.route == nullptr) {
    if (!match.allow.empty()) {
      HttpResponse r = error_response(405, "method_not_allowed",
                                      "method " + req.method + " is not allowed on " + req.path +
                                          " (allowed: " + match.allow + ")");
      r.headers.emplace_back("Allow", match.allow);
      return counted(std::move(r));
    }
    return counted(error_response(404, "not_found", "no route for " + req.method + " " + req.path));
  }
  auto ctx = std::make_shared<RouteCtx>();
  if (match.route->needs_auth) {
    auto who = auth_.authenticate(req.header("authorization"));
    if (!who.ok()) {
      HttpResponse r = error_response(who.status());
      if (r.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"yantra\"");
      return counted(std::move(r));
    }
    ctx->who = std::move(who.value());
  }
  ctx->req = std::move(req);
  ctx->params = std::move(match.params);
  ctx->respond = std::move(counted);
  try {
    match.route->fn(ctx);
  } catch (const std::exception& e) {
    ctx->respond(error_response(500, "internal_error", "internal error"));
  }
}

}  // namespace yantra::api
