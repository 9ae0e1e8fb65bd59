// Any node answers any request: in a cluster each partition is led by one
// node, and only the leader runs commands on its executions, so the node a
// client reached forwards an execution command (cancel, signal, approval,
// retry, fork) and a start with an Idempotency-Key to the partition's leader,
// which runs it through its own router, authentication and handlers and
// sends back the HTTP response (docs/cluster.md "Routing").
//
// Why an interface: api/ does not depend on cluster/. The composition root
// (cli/serve.cpp) implements Forwarding over the node transport and hands
// it to the app (ApiApp::set_forwarding); on the other side it hands every
// forwarded request it receives to ApiApp::handle_forwarded. A single node
// sets none: routes then run locally, as before, at the cost of one null
// check per request.
//
// The bytes between the nodes are a yantra.v1.ForwardedRequest /
// ForwardedResponse (proto/yantra/v1/forward.proto). Whoever decodes them
// treats them as untrusted: a malformed request is answered 400, a
// malformed response 503, never a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_server.hpp"
#include "base/result.hpp"

namespace yantra::api {

// Implemented by the composition root; called from HTTP I/O threads (and
// engine threads, when a local start learns that this node leads nothing),
// concurrently: every method is thread-safe and none blocks.
class Forwarding {
 public:
  virtual ~Forwarding() = default;
  // The cluster's partition count (fixed at `cluster init`), > 0.
  virtual uint32_t partitions() const = 0;
  // Who leads partition `p` now: std::nullopt = nobody (an election is in
  // progress), "" = this node, else the leader's node id.
  virtual std::optional<std::string> leader_of(uint32_t p) const = 0;
  // Some node that leads at least one partition, for a start this node
  // cannot place ("" = this node; std::nullopt = none).
  virtual std::optional<std::string> any_leader() const = 0;
  // Sends `request` (a ForwardedRequest's bytes) to `node` and calls `done`
  // exactly once with the reply's bytes (a ForwardedResponse), or with an
  // error when the node is unknown, unreachable or has not answered within
  // `timeout_ms`. Never blocks and never throws; `done` may run on any
  // thread, also before forward() returns.
  virtual void forward(const std::string& node, std::string request, uint32_t timeout_ms,
                       std::function<void(Result<std::string>)> done) = 0;
};

// The wire format (proto/yantra/v1/forward.proto). `hops` is how many nodes
// forwarded the request; a node forwards only requests that came from
// clients (hops 0), so a request travels at most one hop.
std::string encode_forwarded_request(const HttpRequest& req, const std::string& request_id,
                                     uint32_t hops);
struct ForwardedRequest {
  HttpRequest req;    // method, target, path and query (split as the server does), headers, body
  uint32_t hops = 1;  // at least 1, whatever the sender wrote
};
// "invalid_request" naming what is wrong: not a ForwardedRequest, a method
// or target the HTTP parser would have refused, too many headers, a header
// with a control character, too large.
Result<ForwardedRequest> decode_forwarded_request(std::string_view bytes);
std::string encode_forwarded_response(const HttpResponse& response);
// "invalid_argument" naming what is wrong (a status outside 100..599, a
// header that would split the response, ...).
Result<HttpResponse> decode_forwarded_response(std::string_view bytes);

}  // namespace yantra::api
