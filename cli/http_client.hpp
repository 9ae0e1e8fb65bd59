// A small synchronous HTTP/1.1 client for the CLI: one request per call on a
// fresh connection, bounded by one deadline that covers connect, write and
// read. Plain http:// only: the CLI talks to a node on a trusted network or
// through a TLS-terminating proxy, and keeping TLS out keeps this tiny.
//
// Why synchronous and one connection per request: a CLI invocation makes a
// handful of requests (a --wait poll at most a few per second), so
// keep-alive would save nothing measurable and would add reconnect logic.
//
// Beast stays inside http_client.cpp; this header has no Boost in it, so
// client.cpp (the commands) compiles without Asio.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace yantra::cli {

struct BaseUrl {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash), prepended to every target
  std::string text() const;
};

// Parses "http://host[:port][/prefix]" (IPv6 hosts in brackets). Errors:
// "invalid_url" (https:// included: not supported by this client).
Result<BaseUrl> parse_base_url(const std::string& url);

struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // First header with that lower-case name, or "".
  std::string header(const std::string& name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  HttpClient(BaseUrl base, std::chrono::milliseconds timeout)
      : base_(std::move(base)), timeout_(timeout) {}

  // Sends one request; `target` is the path and query below the base URL.
  // `extra_wait` lengthens the deadline for requests the server is asked to
  // hold (?wait_ms). Errors (all transport-level, never an HTTP status):
  // "connect_failed" (resolve or connect), "timeout", "protocol_error" (the
  // peer does not speak HTTP or closed mid-response).
  Result<HttpReply> request(
      const std::string& method, const std::string& target, const Headers& headers,
      const std::string& body,
      std::chrono::milliseconds extra_wait = std::chrono::milliseconds(0)) const;

  const BaseUrl& base() const { return base_; }

 private:
  BaseUrl base_;
  std::chrono::milliseconds timeout_;
};

}  // namespace yantra::cli
