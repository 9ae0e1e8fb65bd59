// Routing: (method, path pattern) -> handler. Patterns are literal segments
// and {name} captures ("/api/v1/flows/{id}/run"). A path that matches a
// pattern under another method answers 405 with Allow; no match is 404.
// Each route has a stable name (its pattern) for metrics labels, so label
// cardinality never depends on ids in paths.
//
// Query parameters: a route declares the ones it reads (from the OpenAPI
// document, see declare_query_params), and any other is refused with 400,
// so a typo such as ?limt=5 fails loudly instead of being silently ignored.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/auth.hpp"
#include "api/http_server.hpp"

namespace yantra::api {

// Who may call a route. Tenant roles are ranked viewer < editor < admin <
// owner (a role may do everything the roles below it may); operator routes
// (/admin/v1) accept operator keys only, and operator keys nothing else.
// The `worker` role stands outside the ranking (role_rank 0): a tool
// worker's key opens the worker and task routes (kWorker) and nothing else;
// admin and owner keys may call those routes too.
enum class Access { kPublic, kViewer, kEditor, kAdmin, kOwner, kOperator, kWorker };

int role_rank(const std::string& role);  // 0 for unknown roles and for "worker"
// Whether `role` may call a route of `access` (tenant roles only; the
// operator is checked apart).
bool role_allows(const std::string& role, Access access);
const char* to_string(Access access);

// Where a route's requests run in a cluster (declared per route in app.cpp's
// table; docs/cluster.md "Routing"). Only matters once the app has a
// Forwarding (api/forwarding.hpp); a single node runs everything locally.
enum class Placement {
  kLocal,      // here: reads (every node replicates), resources, admin, health
  kExecution,  // at the leader of partition_of({id}): commands on an execution
  // Reads of one execution: at its leader when one is known, so the answer
  // reflects every batch committed before the request arrived (a follower's
  // copy may trail by the batches in flight); here while there is none (an
  // election: this node's copy, possibly behind), and here when forwarded.
  kExecutionRead,
  kKeyedStart,  // with an Idempotency-Key, at the leader of partition_of_key;
                // without, here (and at any leader if this node leads nothing)
  kStart,       // here, and at any leader if this node leads nothing
};

struct RouteCtx {
  HttpRequest req;
  std::unordered_map<std::string, std::string> params;
  Principal who;
  std::string request_id;
  // How many nodes forwarded this request (0 = it came from a client): a
  // forwarded request is never forwarded again.
  uint32_t hops = 0;
  Placement placement = Placement::kLocal;  // the route's
  Responder respond;
  // Set by the first call of `respond` once run_route() wrapped it: an
  // exception after the answer must not answer (and audit) a second time.
  std::atomic<bool> answered{false};
  const std::string& param(const std::string& name) const { return params.at(name); }
};
using RouteFn = std::function<void(const std::shared_ptr<RouteCtx>&)>;

struct Route {
  std::string method;
  std::string pattern;
  Access access = Access::kViewer;
  // The audit action of a mutating route ("flow.create"); empty for reads,
  // which are not audited. Set from app.cpp's table.
  std::string action;
  Placement placement = Placement::kLocal;  // set from app.cpp's table
  RouteFn fn;
  std::vector<std::string> segments;
  // The query parameters the route reads; any other is refused (400).
  // Unset = not declared, anything goes (a webhook hands its whole query to
  // the flow it starts).
  std::optional<std::vector<std::string>> query;
};

class Router {
 public:
  void add(std::string method, std::string pattern, Access access, RouteFn fn);
  // Names the audit action of a route (see app.cpp's table). False when no
  // such route exists, so a typo in the table is caught at startup.
  bool set_action(const std::string& method, const std::string& pattern, std::string action);
  // Says where the route's requests run in a cluster; false when no such route.
  bool set_placement(const std::string& method, const std::string& pattern, Placement placement);
  // Declares the query parameters of a route; false when no such route.
  bool set_query(const std::string& method, const std::string& pattern,
                 std::vector<std::string> names);

  struct Match {
    const Route* route = nullptr;
    std::unordered_map<std::string, std::string> params;
    std::string allow;  // methods of patterns matching the path (for 405)
  };
  Match match(const std::string& method, const std::string& path) const;

 private:
  std::vector<Route> routes_;
};

// Error "invalid_parameter" naming the first query parameter the route does
// not declare, and those it does; ok for a route without a declaration.
Status check_query(const Route& route, const HttpRequest& req);

// Declares, on the router, the query parameters of every operation of an
// OpenAPI 3 document (parameters "in": "query" of the operation and of its
// path item, $refs into components/parameters followed). An operation marked
// "x-yantra-any-query": true stays undeclared. Error "invalid_argument" for a
// malformed document or an operation that has no route, so the document
// cannot drift from the routes unnoticed.
Status declare_query_params(Router& router, const std::string& openapi_json);

// Runs the route's handler on `ctx`. An exception escaping it is logged
// (spdlog, error: request id, method, route, what()), counted in
// yantra_http_handler_exceptions_total{route}, and answered 500
// "internal" unless the handler had answered already; its text never
// reaches the client. Wraps ctx->respond to know whether it was called.
void run_route(const Route& route, const std::shared_ptr<RouteCtx>& ctx);

}  // namespace yantra::api
