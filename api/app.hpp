// The API application: authentication, routing, metrics and error shapes
// around the route handlers. One instance per node; handle() is the
// HttpServer's Handler and may run on any I/O thread concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/auth.hpp"
#include "api/http_server.hpp"
#include "api/rate_limiter.hpp"
#include "api/router.hpp"
#include "api/services.hpp"

namespace yantra::api {

class ApiApp {
 public:
  // `admin` carries every write that is not an execution command (and the
  // audit chain); both must outlive the app.
  ApiApp(Engine& engine, Admin& admin);
  void handle(HttpRequest req, Responder respond);
  void set_server(HttpServer* server) { services_.server.store(server); }
  void set_max_runs_in_flight(int64_t n) { services_.max_runs_in_flight = n; }
  // Before the server starts; outlives the app.
  void set_cluster_view(ClusterView* view) { services_.cluster = view; }
  Authenticator& auth() { return auth_; }

 private:
  void audit(const Principal& who, const std::string& tenant, const std::string& action,
             const std::string& resource, const std::string& outcome, const std::string& request_id,
             const std::string& detail = "");
  // Rate-limit refusals are audited once per tenant and second (the record
  // counts the ones it stands for), so a flood cannot flood the chain.
  struct Refusals {
    struct Window {
      int64_t second = -1;
      uint64_t suppressed = 0;
    };
    // UINT64_MAX = already recorded this second; else how many refusals of
    // earlier seconds went unrecorded.
    uint64_t note(const std::string& tenant, int64_t second);
    std::mutex mu;
    std::unordered_map<std::string, Window> by_tenant;
  };
  Refusals refusals_;
  Services services_;
  Authenticator auth_;
  RateLimiter limiter_;
  Router router_;
};

}  // namespace yantra::api
