// The API application: authentication, routing, metrics and error shapes
// around the route handlers. One instance per node; handle() is the
// HttpServer's Handler and may run on any I/O thread concurrently.
#pragma once

#include <memory>

#include "api/auth.hpp"
#include "api/http_server.hpp"
#include "api/rate_limiter.hpp"
#include "api/router.hpp"
#include "api/services.hpp"

namespace yantra::api {

class ApiApp {
 public:
  explicit ApiApp(Engine& engine);
  void handle(HttpRequest req, Responder respond);
  void set_server(HttpServer* server) { services_.server.store(server); }
  void set_max_runs_in_flight(int64_t n) { services_.max_runs_in_flight = n; }
  Authenticator& auth() { return auth_; }

 private:
  void audit(const Principal& who, const std::string& tenant, const std::string& action,
             const std::string& resource, const std::string& outcome,
             const std::string& request_id);
  Services services_;
  Authenticator auth_;
  RateLimiter limiter_;
  Router router_;
};

}  // namespace yantra::api
