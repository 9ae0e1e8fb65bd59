// The API application: authentication, routing, metrics and error shapes
// around the route handlers. One instance per node; handle() is the
// HttpServer's Handler and may run on any I/O thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/auth.hpp"
#include "api/forwarding.hpp"
#include "api/http_server.hpp"
#include "api/rate_limiter.hpp"
#include "api/router.hpp"
#include "api/services.hpp"
#include "api/worker_tools.hpp"

namespace yantra::api {

class ApiApp {
 public:
  // `admin` carries every write that is not an execution command (and the
  // audit chain); both must outlive the app.
  ApiApp(Engine& engine, Admin& admin);
  void handle(HttpRequest req, Responder respond);
  // Serves a request another node forwarded here (api/forwarding.hpp): the
  // bytes of a ForwardedRequest in, the bytes of a ForwardedResponse to
  // `reply`, exactly once, from any thread (never from within this call
  // unless the answer is immediate). It runs through the same router,
  // authentication, role check and handlers as a request from a client; it
  // is not rate-limited again (the node the client reached counted it) and
  // never forwarded again. Malformed bytes are answered 400.
  void handle_forwarded(std::string request_bytes, std::function<void(std::string)> reply);
  // The cluster's routing; null (the default) = a single node. Set before
  // serving, or at any time: requests read it once each.
  void set_forwarding(Forwarding* forwarding) { services_.forwarding.store(forwarding); }
  void set_server(HttpServer* server) { services_.server.store(server); }
  void set_max_runs_in_flight(int64_t n) { services_.max_runs_in_flight = n; }
  // Before the server starts; outlives the app.
  void set_cluster_view(ClusterView* view) { services_.cluster = view; }
  Authenticator& auth() { return auth_; }
  // Tool workers' registrations become tools here (api/worker_tools.hpp).
  WorkerTools& worker_tools() { return *worker_tools_; }
  // Releases worker tool calls still waiting for a worker ("node_shutting_down")
  // and answers waiting polls, so the engine's tool threads can be joined.
  // Call while the engine shuts down (cli/serve.cpp), before it is destroyed.
  void stop_workers() { broker_->shutdown(); }

 private:
  // handle() and handle_forwarded(): `hops` = how many nodes forwarded it.
  void dispatch(HttpRequest req, Responder respond, uint32_t hops);
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
  std::shared_ptr<TaskBroker> broker_;
  std::shared_ptr<WorkerTools> worker_tools_;  // shared with the registration handler
  Authenticator auth_;
  RateLimiter limiter_;
  Router router_;
};

}  // namespace yantra::api
