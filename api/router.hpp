// Routing: (method, path pattern) -> handler. Patterns are literal segments
// and {name} captures ("/api/v1/flows/{id}/run"). A path that matches a
// pattern under another method answers 405 with Allow; no match is 404.
// Each route has a stable name (its pattern) for metrics labels, so label
// cardinality never depends on ids in paths.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/auth.hpp"
#include "api/http_server.hpp"

namespace yantra::api {

// Who may call a route. Tenant roles are ranked viewer < editor < admin <
// owner (a role may do everything the roles below it may); operator routes
// (/admin/v1) accept operator keys only, and operator keys nothing else.
enum class Access { kPublic, kViewer, kEditor, kAdmin, kOwner, kOperator };

int role_rank(const std::string& role);  // 0 for unknown roles
const char* to_string(Access access);

struct RouteCtx {
  HttpRequest req;
  std::unordered_map<std::string, std::string> params;
  Principal who;
  std::string request_id;
  Responder respond;
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
  RouteFn fn;
  std::vector<std::string> segments;
};

class Router {
 public:
  void add(std::string method, std::string pattern, Access access, RouteFn fn);
  // Names the audit action of a route (see app.cpp's table). False when no
  // such route exists, so a typo in the table is caught at startup.
  bool set_action(const std::string& method, const std::string& pattern, std::string action);

  struct Match {
    const Route* route = nullptr;
    std::unordered_map<std::string, std::string> params;
    std::string allow;  // methods of patterns matching the path (for 405)
  };
  Match match(const std::string& method, const std::string& path) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace yantra::api
