// Every request goes through handle(), in this order: match the route
// (404/405), authenticate (401, audited), check the role against the route's
// access level (403), take a token from the tenant's bucket (429), refuse
// query parameters the route does not declare (400), run the handler (an
// exception escaping it is logged with the request id and answered 500),
// then count the answer by route pattern and status and, for mutating
// routes, append an audit record with the outcome. The route
// pattern, not the raw path, labels the metric so ids in paths cannot blow
// up label cardinality.
//
// Access is declared per route (router.hpp) and checked here only, so a
// handler never re-checks roles and a new route cannot forget to.
//
// In a cluster, where a request runs is declared per route too (kPlacements
// below) and decided right before its handler would run (forwarding.cpp):
// an unauthenticated, forbidden, rate-limited or malformed request is
// refused by the node the client reached and never forwarded. A request
// the leader answered is audited by the leader, not again here.
#include "api/app.hpp"

#include <algorithm>
#include <atomic>

#include "api/errc.hpp"
#include "api/openapi.hpp"
#include "base/crypto.hpp"
#include "base/metrics.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

// Audit actions of the mutating routes. set_action() fails for a pattern
// that does not exist, so this table cannot drift from the routes.
struct ActionName {
  const char* method;
  const char* pattern;
  const char* action;
};
constexpr ActionName kActions[] = {
    {"POST", "/api/v1/flows", "flow.create"},
    {"PUT", "/api/v1/flows/{id}", "flow.update"},
    {"DELETE", "/api/v1/flows/{id}", "flow.delete"},
    {"POST", "/api/v1/flows/{id}/rollback", "flow.rollback"},
    {"POST", "/api/v1/flows/{id}/run", "execution.run"},
    {"POST", "/api/v1/flows/{id}/pause", "flow.pause"},
    {"POST", "/api/v1/flows/{id}/resume", "flow.resume"},
    {"POST", "/api/v1/flows/{id}/webhook/rotate", "webhook.rotate"},
    {"POST", "/api/v1/events", "event.emit"},
    {"POST", "/api/v1/executions/{id}/cancel", "execution.cancel"},
    {"POST", "/api/v1/executions/{id}/replay", "execution.replay"},
    {"POST", "/api/v1/executions/{id}/retry", "execution.retry"},
    {"POST", "/api/v1/executions/{id}/signals/{name}", "execution.signal"},
    {"POST", "/api/v1/executions/{id}/approvals/{step}", "execution.approve"},
    {"POST", "/api/v1/keys", "key.create"},
    {"DELETE", "/api/v1/keys/{id}", "key.revoke"},
    {"POST", "/api/v1/workers", "worker.register"},
    {"DELETE", "/api/v1/workers/{id}", "worker.delete"},
    {"PUT", "/api/v1/secrets/{name}", "secret.put"},
    {"DELETE", "/api/v1/secrets/{name}", "secret.delete"},
    {"PUT", "/api/v1/accounts/{tenant}/secrets/{name}", "secret.put"},
    {"DELETE", "/api/v1/accounts/{tenant}/secrets/{name}", "secret.delete"},
    {"POST", "/admin/v1/tenants", "tenant.create"},
    {"PATCH", "/admin/v1/tenants/{t}", "tenant.update"},
    {"DELETE", "/admin/v1/tenants/{t}", "tenant.delete"},
};

// Where the requests of a route run in a cluster (router.hpp's Placement;
// docs/cluster.md "Routing"). Every other route runs on the node the
// client reached: reads (every node holds a replica of each partition),
// resources (flows, keys, tenants, secrets: written through etcd from any
// node), administration, health and metrics.
struct RoutePlacement {
  const char* method;
  const char* pattern;
  Placement placement;
};
constexpr RoutePlacement kPlacements[] = {
    {"POST", "/api/v1/flows/{id}/run", Placement::kKeyedStart},
    {"POST", "/hooks/{hook_id}", Placement::kStart},
    {"POST", "/api/v1/events", Placement::kStart},
    {"POST", "/api/v1/executions/{id}/cancel", Placement::kExecution},
    {"POST", "/api/v1/executions/{id}/replay", Placement::kExecution},
    {"POST", "/api/v1/executions/{id}/retry", Placement::kExecution},
    {"POST", "/api/v1/executions/{id}/signals/{name}", Placement::kExecution},
    {"POST", "/api/v1/executions/{id}/approvals/{step}", Placement::kExecution},
    {"GET", "/api/v1/executions/{id}", Placement::kExecutionRead},
    {"GET", "/api/v1/executions/{id}/events", Placement::kExecutionRead},
    {"GET", "/api/v1/executions/{id}/state", Placement::kExecutionRead},
    {"GET", "/api/v1/executions/{id}/timeline", Placement::kExecutionRead},
    {"GET", "/api/v1/executions/{id}/diff", Placement::kExecutionRead},
};

// Answers a forwarded request's reply callback exactly once: with the
// encoded response, or with 500 "internal" if every copy of the Responder
// is dropped unanswered (as HttpServer does for a client).
class ForwardedReply {
 public:
  explicit ForwardedReply(std::function<void(std::string)> reply) : reply_(std::move(reply)) {}
  ~ForwardedReply() {
    if (sent_.load()) return;
    try {
      send(error_response(Status(ApiErrc::kInternal, "the request was dropped unanswered")));
    } catch (...) {
      // A destructor must not throw; the sender's timeout answers the client.
    }
  }
  void send(const HttpResponse& r) {
    if (sent_.exchange(true)) return;
    reply_(encode_forwarded_response(r));
  }

 private:
  std::function<void(std::string)> reply_;
  std::atomic<bool> sent_{false};
};

// A client's X-Request-Id is kept when it is short and printable, so that
// its logs and our audit records share the id; otherwise we make one.
std::string request_id_of(const HttpRequest& req) {
  const std::string& given = req.header("x-request-id");
  bool ok = !given.empty() && given.size() <= 64;
  for (char c : given) ok = ok && c > 32 && c < 127;
  if (ok) return given;
  // A random per-process prefix and a counter: unique, and no call into the
  // CSPRNG on every request (request ids are not secrets).
  static const std::string prefix = [] {
    auto token = crypto::random_token(6);
    // Without the CSPRNG (it failed once at startup) the start time still
    // tells processes apart; an id is a correlation key, not a secret.
    return "req_" + (token.ok() ? token.value() : std::to_string(now_us())) + "_";
  }();
  static std::atomic<uint64_t> counter{0};
  return prefix + std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

// The least pause before a rate-limit refusal is answered (see handle()).
constexpr int64_t kMinTarpitMs = 200;

}  // namespace

ApiApp::ApiApp(Engine& engine, Admin& admin) : services_{engine, admin}, auth_(engine) {
  services_.auth = &auth_;
  // A lost lease is audited in the task's tenant chain: who held it, which
  // call, which attempt (docs/tools.md "Tool workers").
  BrokerOptions broker_options;
  broker_options.on_event = [&admin](const std::string& event, const DispatchedTask& t) {
    AuditEntry e;
    e.tenant = t.tenant;
    e.action = event;
    e.resource = "/api/v1/tasks/" + t.task_id;
    e.outcome = event == "task.lease_lost" ? "lease_lost" : "worker_lost";
    e.detail = t.tool_id + "." + t.action + " worker " + t.worker_id + " attempt " +
               std::to_string(t.attempt) + " execution " + t.execution_id + " step " + t.path;
    admin.audit(std::move(e));
  };
  broker_ = std::make_shared<TaskBroker>(std::move(broker_options));
  worker_tools_ = std::make_shared<WorkerTools>(engine, broker_);
  services_.workers = worker_tools_.get();
  // Stored worker registrations become tools now (before the first request),
  // later ones as they are put or deleted, here or, in a cluster, anywhere.
  engine.watch_tool_registrations("worker",
                                  [tools = worker_tools_](const ToolRegistration& r, bool deleted) {
                                    tools->apply(r.tenant, r.id, r.definition, deleted);
                                  });
  register_system_routes(router_, services_);
  register_flow_routes(router_, services_);
  register_execution_routes(router_, services_);
  register_time_machine_routes(router_, services_);
  register_tenant_routes(router_, services_);
  register_key_routes(router_, services_);
  register_secret_routes(router_, services_);
  register_audit_routes(router_, services_);
  register_wait_routes(router_, services_);
  register_trigger_routes(router_, services_);
  register_cluster_routes(router_, services_);
  register_tool_routes(router_, services_);
  register_worker_routes(router_, services_);
  for (const auto& p : kPlacements) {
    if (!router_.set_placement(p.method, p.pattern, p.placement)) {
      throw std::logic_error(std::string("placement for unknown route ") + p.method + " " +
                             p.pattern);
    }
  }
  for (const auto& a : kActions) {
    if (!router_.set_action(a.method, a.pattern, a.action)) {
      throw std::logic_error(std::string("audit action for unknown route ") + a.method + " " +
                             a.pattern);
    }
  }
  // The API description says which query parameters each route takes.
  if (Status s = declare_query_params(router_, openapi_document()); !s.is_ok()) {
    throw std::logic_error("api/openapi.json: " + s.message());
  }
}

uint64_t ApiApp::Refusals::note(const std::string& tenant, int64_t second) {
  std::lock_guard<std::mutex> lock(mu);
  Window& w = by_tenant[tenant];
  if (w.second == second) {
    ++w.suppressed;
    return UINT64_MAX;  // this second already has its record
  }
  const uint64_t before = w.suppressed;
  w.second = second;
  w.suppressed = 0;
  return before;
}

void ApiApp::audit(const Principal& who, const std::string& tenant, const std::string& action,
                   const std::string& resource, const std::string& outcome,
                   const std::string& request_id, const std::string& detail) {
  AuditEntry e;
  e.time_ms = now_us() / 1000;
  e.tenant = tenant;
  e.key_id = who.key_id;
  e.role = who.role;
  e.action = action;
  e.resource = resource;
  e.outcome = outcome;
  e.request_id = request_id;
  e.detail = detail;
  services_.admin.audit(std::move(e));
}

void ApiApp::handle(HttpRequest req, Responder respond) {
  dispatch(std::move(req), std::move(respond), 0);
}

void ApiApp::handle_forwarded(std::string request_bytes, std::function<void(std::string)> reply) {
  auto once = std::make_shared<ForwardedReply>(std::move(reply));
  Responder respond = [once](HttpResponse r) { once->send(r); };
  auto decoded = decode_forwarded_request(request_bytes);
  if (!decoded.ok()) return respond(error_response(decoded.status()));
  dispatch(std::move(decoded.value().req), std::move(respond), decoded.value().hops);
}

void ApiApp::dispatch(HttpRequest req, Responder respond, uint32_t hops) {
  // HEAD is GET without the body (the server leaves the body out).
  auto match = router_.match(req.method == "HEAD" ? "GET" : req.method, req.path);
  const Route* route = match.route;
  const std::string pattern = route ? route->pattern : "unmatched";
  const std::string method = req.method;
  const std::string request_id = request_id_of(req);
  Responder counted = [respond = std::move(respond), pattern, method, request_id](HttpResponse r) {
    metrics::global()
        .counter("yantra_http_requests_total", "HTTP requests by route and status",
                 {{"method", method}, {"route", pattern}, {"status", std::to_string(r.status)}})
        .inc();
    r.headers.emplace_back("X-Request-Id", request_id);
    respond(std::move(r));
  };
  if (route == nullptr) {
    if (!match.allow.empty()) {
      HttpResponse r = error_response(
          Status(ApiErrc::kMethodNotAllowed, "method " + req.method + " is not allowed on " +
                                                 req.path + " (allowed: " + match.allow + ")"));
      r.headers.emplace_back("Allow", match.allow);
      return counted(std::move(r));
    }
    return counted(
        error_response(Status(Errc::kNotFound, "no route for " + req.method + " " + req.path)));
  }
  auto ctx = std::make_shared<RouteCtx>();
  ctx->request_id = request_id;
  if (route->access != Access::kPublic) {
    std::string claimed_tenant;
    auto who = auth_.authenticate(req.header("authorization"), &claimed_tenant);
    if (!who.ok()) {
      HttpResponse r = error_response(who.status());
      if (r.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"yantra\"");
      audit(Principal{}, claimed_tenant, "auth.failed", req.method + " " + req.path,
            who.status().code(), request_id);
      return counted(std::move(r));
    }
    ctx->who = std::move(who.value());
    Status denied;
    if (route->access == Access::kOperator) {
      if (!ctx->who.is_operator()) {
        denied = Status(Errc::kForbidden, "this route needs the operator key");
      }
    } else if (ctx->who.is_operator()) {
      denied = Status(Errc::kForbidden,
                      "the operator key manages tenants (/admin/v1); use a tenant's key here");
    } else if (!role_allows(ctx->who.role, route->access)) {
      denied =
          Status(Errc::kForbidden,
                 "role '" + ctx->who.role + "' may not " + req.method + " " + route->pattern +
                     (route->access == Access::kWorker
                          ? std::string(" (needs worker, admin or owner)")
                          : " (needs " + std::string(to_string(route->access)) + " or above)"));
    }
    if (!denied.is_ok()) {
      if (!route->action.empty()) {
        audit(ctx->who, ctx->who.tenant, route->action, req.path, denied.code(), request_id);
      }
      return counted(error_response(denied));
    }
    // A forwarded request was counted by the node the client reached.
    if (hops == 0 && !ctx->who.is_operator() && ctx->who.requests_per_second > 0) {
      Status limited =
          limiter_.admit(ctx->who.tenant, ctx->who.requests_per_second, ctx->who.burst, now_us(),
                         services_.cluster ? services_.cluster->live_nodes() : 1);
      if (!limited.is_ok()) {
        // A flood must not flood the audit chain too: one record per
        // tenant and second stands for every refusal of that second.
        const uint64_t suppressed = refusals_.note(ctx->who.tenant, now_us() / 1000000);
        if (!route->action.empty() && suppressed != UINT64_MAX) {
          audit(ctx->who, ctx->who.tenant, route->action, req.path, limited.code(), request_id,
                suppressed == 0 ? ""
                                : std::to_string(suppressed) +
                                      " more requests refused by the rate limit before this one");
        }
        // Tarpit: the refusal is answered after a pause (never longer
        // than the Retry-After it carries, which is at least 1 s), so a
        // client that ignores Retry-After and retries at once keeps a
        // connection busy instead of the node's CPU. The pause is a timer
        // on the I/O thread, not a wait.
        HttpServer* server = services_.server.load();
        if (server == nullptr) return counted(error_response(limited));
        const auto pause = static_cast<uint32_t>(
            std::clamp<int64_t>(limited.retry_after_ms(), kMinTarpitMs, 1000));
        server->after(
            pause, [counted = std::move(counted), limited] { counted(error_response(limited)); });
        return;
      }
    }
  }
  if (!route->action.empty()) {
    // The outcome is known only when the handler answers.
    std::string tenant = ctx->who.tenant;
    if (ctx->who.is_operator()) {
      auto t = match.params.find("t");
      if (t != match.params.end()) tenant = t->second;
    }
    counted = [this, counted = std::move(counted), who = ctx->who, tenant, action = route->action,
               resource = req.path, request_id](HttpResponse r) {
      if (!r.forwarded) {
        audit(who, tenant, action, resource, r.error_code.empty() ? "ok" : r.error_code,
              request_id);
      }
      counted(std::move(r));
    };
  }
  ctx->req = std::move(req);
  ctx->params = std::move(match.params);
  ctx->respond = std::move(counted);
  if (Status bad = check_query(*route, ctx->req); !bad.is_ok()) {
    return ctx->respond(error_response(bad));
  }
  ctx->hops = hops;
  ctx->placement = route->placement;
  if (ctx->placement != Placement::kLocal &&
      services_.forwarding.load(std::memory_order_acquire) != nullptr) {
    if (route_elsewhere(services_, ctx)) return;
    if (ctx->placement == Placement::kExecution && hops == 0) {
      // Leadership moved between the decision and the engine's refusal:
      // the command goes to the new leader. (Starts do the same in
      // start_and_answer and the events route, before their own wrappers.)
      ctx->respond = [&svc = services_, inner = std::move(ctx->respond),
                      weak = std::weak_ptr<RouteCtx>(ctx)](HttpResponse r) {
        if (r.error_code == "partition_not_led") {
          if (auto c = weak.lock(); c && forward_not_led(svc, c, inner)) return;
        }
        inner(std::move(r));
      };
    }
  }
  run_route(*route, ctx);
}

}  // namespace yantra::api
