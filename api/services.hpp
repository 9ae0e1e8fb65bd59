// What route handlers may use. Handlers run on HTTP I/O threads: they may
// read through the engine and the admin seam (RocksDB point reads and short
// scans) but never wait for an actor or an fsync: execution commands go to
// the engine and every other write (flows, keys, tenants, secrets, webhook
// ids) and every audit query to the admin seam (actors/admin.hpp), and all
// of them answer by callback.
#pragma once

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <string_view>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "api/cluster_view.hpp"
#include "api/errc.hpp"
#include "api/errors.hpp"
#include "api/forwarding.hpp"
#include "api/router.hpp"
#include "api/views.hpp"

namespace yantra::api {

class WorkerTools;

struct Services {
  Engine& engine;
  Admin& admin;
  Authenticator* auth = nullptr;             // for revocations (drops cached keys)
  std::atomic<HttpServer*> server{nullptr};  // set once listening (for after())
  uint32_t max_wait_ms = 60000;
  // Backpressure: run requests not yet answered (starting, or waiting with
  // ?wait_ms). Beyond the limit a run answers 429 with Retry-After instead of
  // queueing without bound in memory.
  std::atomic<int64_t> runs_in_flight{0};
  int64_t max_runs_in_flight = 10000;
  // The cluster this node is part of; null for a single node.
  ClusterView* cluster = nullptr;
  // The cluster's routing (api/forwarding.hpp); null on a single node.
  std::atomic<Forwarding*> forwarding{nullptr};
  // Requests forwarded to other nodes and not answered yet; beyond the limit
  // a request that must be forwarded answers 503 with Retry-After.
  std::atomic<int64_t> forwards_in_flight{0};
  int64_t max_forwards_in_flight = 10000;
  // Tool workers' tools and their task broker (api/worker_tools.hpp).
  WorkerTools* workers = nullptr;
};

void register_flow_routes(Router& router, Services& services);
void register_execution_routes(Router& router, Services& services);
void register_system_routes(Router& router, Services& services);
void register_time_machine_routes(Router& router, Services& services);
void register_tenant_routes(Router& router, Services& services);
void register_key_routes(Router& router, Services& services);
void register_secret_routes(Router& router, Services& services);
void register_audit_routes(Router& router, Services& services);
void register_wait_routes(Router& router, Services& services);
void register_trigger_routes(Router& router, Services& services);
void register_cluster_routes(Router& router, Services& services);
void register_tool_routes(Router& router, Services& services);
void register_worker_routes(Router& router, Services& services);
// The action steps of a flow definition's `steps` (at `pointer`) that the
// tenant's tool policy refuses to `role`, with the pointer of each tool_id.
void refused_steps(const ToolRegistry& tools, const std::string& tenant, const std::string& role,
                   const json& steps, const std::string& pointer, std::vector<Problem>& out);

// Shared helpers for routes.
inline void respond_json(const std::shared_ptr<RouteCtx>& ctx, int status, const json& body) {
  ctx->respond(json_response(status, dump(body)));
}
inline void respond_error(const std::shared_ptr<RouteCtx>& ctx, const Status& s) {
  ctx->respond(error_response(s));
}
// Starts `run` and answers the request as POST /api/v1/flows/{id}/run does:
// 202 {"execution_id", "status"} once started, or 200 with the outcome when
// it ends within `wait_ms` (0 = do not wait); 429 beyond the node's runs in
// flight (routes/flows.cpp).
void start_and_answer(Services& svc, const std::shared_ptr<RouteCtx>& ctx, RunRequest run,
                      uint64_t wait_ms);
// The "webhook" member of a flow's view ({"id", "url"}), or null when the
// flow's latest version has no webhook trigger (routes/triggers.cpp).
json webhook_view(Services& svc, const std::string& tenant, const std::string& flow_id);
// invalid_request naming the first member of the object `body` that is not
// in `allowed` ("unknown field 'k'", with `hint` at /k); ok when there is none.
inline Status reject_unknown_fields(const json& body,
                                    std::initializer_list<std::string_view> allowed,
                                    const std::string& hint) {
  for (const auto& [k, v] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return Status(ApiErrc::kInvalidRequest, "unknown field '" + k + "'", {{"/" + k, hint}});
    }
  }
  return Status::ok();
}
// Cluster routing (forwarding.cpp; docs/cluster.md "Routing"). Before the
// handler runs: true when the request was answered here instead, because
// it belongs to another node (forwarded; its answer comes through
// ctx->respond) or to nobody right now (503 partition_not_led). False =
// run the handler here.
bool route_elsewhere(Services& svc, const std::shared_ptr<RouteCtx>& ctx);
// After this node's engine refused the request with partition_not_led (the
// leadership moved, or this node leads nothing and a start must go to a
// node that leads something): true when the request was forwarded to the
// node that can run it now, whose answer goes to `answer`; false when there
// is none (or the request was forwarded already): the caller answers the
// refusal.
bool forward_not_led(Services& svc, const std::shared_ptr<RouteCtx>& ctx, Responder answer);
// Parses an unsigned integer query parameter; error "invalid_parameter".
Result<uint64_t> query_uint(const HttpRequest& req, const std::string& name, uint64_t fallback,
                            uint64_t max);
// Parses a time query parameter: Unix milliseconds or an RFC 3339 UTC time
// ("2026-11-22T10:00:00Z"); `fallback` when absent; error "invalid_parameter".
Result<int64_t> query_time(const HttpRequest& req, const std::string& name, int64_t fallback);

}  // namespace yantra::api
