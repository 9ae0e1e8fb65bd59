// The transports under mcp::Client (client.hpp): one JSON-RPC exchange at a
// time per calling thread, several threads at once. Internal to mcp/.
//
// Error contract (what Client relies on):
//   Errc::kNotFound     the request was certainly not processed and a new
//                       connection may fix that: the server does not know our
//                       session, the connection could not be opened, the
//                       child process is not running. Initialize again and
//                       repeat the request once;
//   Errc::kTimeout      the deadline passed while waiting;
//   Errc::kUnavailable  anything else that broke the exchange ("cancelled"
//                       when the CancelFlag was set).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "mcp/client.hpp"
#include "mcp/jsonrpc.hpp"

namespace yantra::mcp {

class Transport {
 public:
  virtual ~Transport() = default;
  // Starts what the handshake needs (spawns the child); ok when running.
  virtual Status open(Clock::time_point /*deadline*/) { return Status::ok(); }
  // Sends request `msg` (id `id`) and returns the response with that id.
  virtual Result<json> request(const json& msg, int64_t id, Clock::time_point deadline,
                               const CancelFlag* cancel) = 0;
  virtual Status notify(const json& msg, Clock::time_point deadline) = 0;
  // After initialize: the version to name in later requests' headers.
  virtual void set_protocol_version(const std::string& /*version*/) {}
  // Drops the session / stops the child: the next open() starts afresh.
  virtual void reset() = 0;

  // Where server notifications go; set once by Client before any I/O.
  std::function<void(const json&)> sink;
};

std::unique_ptr<Transport> make_http_transport(HttpTarget target);
std::unique_ptr<Transport> make_stdio_transport(StdioTarget target);

// Parses an http(s) URL; "" when fine, else the reason.
struct HttpUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, never empty
};
std::string parse_http_url(const std::string& url, HttpUrl* out);

}  // namespace yantra::mcp
