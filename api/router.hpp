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

struct RouteCtx {
  HttpRequest req;
  std::unordered_map<std::string, std::string> params;
  Principal who;
  Responder respond;
  const std::string& param(const std::string& name) const { return params.at(name); }
};
using RouteFn = std::function<void(const std::shared_ptr<RouteCtx>&)>;

struct Route {
  std::string method;
  std::string pattern;
  bool needs_auth = true;
  RouteFn fn;
  std::vector<std::string> segments;
};

class Router {
 public:
  void add(std::string method, std::string pattern, bool needs_auth, RouteFn fn);

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
