// What route handlers may use. Handlers run on HTTP I/O threads: they may
// read through the engine (RocksDB point reads and short scans) but never
// wait for an actor; anything that involves one answers by callback.
#pragma once

#include <atomic>

#include "actors/engine.hpp"
#include "api/errors.hpp"
#include "api/router.hpp"
#include "api/views.hpp"

namespace yantra::api {

struct Services {
  Engine& engine;
  std::atomic<HttpServer*> server{nullptr};  // set once listening (for after())
  uint32_t max_wait_ms = 60000;
  // Backpressure: run requests not yet answered (starting, or waiting with
  // ?wait_ms). Beyond the limit a run answers 429 with Retry-After instead of
  // queueing without bound in memory.
  std::atomic<int64_t> runs_in_flight{0};
  int64_t max_runs_in_flight = 10000;
};

void register_flow_routes(Router& router, Services& services);
void register_execution_routes(Router& router, Services& services);
void register_system_routes(Router& router, Services& services);
void register_time_machine_routes(Router& router, Services& services);

// Shared helpers for routes.
inline void respond_json(const std::shared_ptr<RouteCtx>& ctx, int status, const json& body) {
  ctx->respond(json_response(status, dump(body)));
}
inline void respond_error(const std::shared_ptr<RouteCtx>& ctx, const Status& s) {
  ctx->respond(error_response(s));
}
// Parses an unsigned integer query parameter; error "invalid_parameter".
Result<uint64_t> query_uint(const HttpRequest& req, const std::string& name, uint64_t fallback,
                            uint64_t max);

}  // namespace yantra::api
