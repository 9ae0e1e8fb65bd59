// The HTTP/1.1 front door's transport: Boost.Beast behind a pimpl (only
// http_server.cpp compiles Beast). It accepts connections on N I/O threads,
// reads requests with bounded size, header count and time, and hands each one
// to the Handler as a plain HttpRequest. The handler answers through the
// Responder, exactly once, from any thread, whenever it is ready: an I/O
// thread never waits for the engine (requests wait for actors by callback).
//
// Keep-alive is honoured; responses on one connection go out in request order
// (HTTP/1.1 has no multiplexing, so the next request is read only after the
// previous response is written). Protocol errors (malformed request, body or
// headers too large, timeouts) are answered by the server itself with a JSON
// error body, via the ErrorFormatter, so clients never get an HTML page or a
// silently dropped connection for a well-formed request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace yantra::api {

struct HttpRequest {
  std::string method;  // upper case, e.g. "GET"
  std::string target;  // raw request target, e.g. "/api/v1/flows?limit=5"
  std::string path;    // target without the query, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote;  // "ip:port" of the peer
  // First header with that (lower-case) name, or "".
  const std::string& header(const std::string& name) const;
  // First query parameter with that name, or nullptr.
  const std::string* query_param(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  // The error code of an error response ("" for success): what the audit
  // log records as the outcome. Not sent.
  std::string error_code;
  // Answered by another node (api/forwarding.hpp), which audited it: this
  // node does not audit it again. Not sent.
  bool forwarded = false;
};

// Thread-safe, callable once. Calls after the first, or after the connection
// closed, are ignored. A Responder destroyed without ever being called (every
// copy dropped) answers 500 "internal", so a forgetful handler cannot leave a
// client waiting; a handler that throws gets the same.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest, Responder)>;
// Builds the response for errors the server detects itself (a typed code, as
// ApiErrc::kPayloadTooLarge, and a message; the HTTP status comes from
// api/errors.cpp like every other), so the body has the same shape as every
// other API error.
using ErrorFormatter = std::function<HttpResponse(const Status& error)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 = pick a free port (see HttpServer::port())
  size_t io_threads = 2;
  size_t max_body_bytes = 1 << 20;  // larger → 413
  size_t max_header_bytes = 16384;  // larger → 431
  size_t max_header_count = 100;    // more → 431
  // A request not fully read this long after its first byte → 408, then
  // close. Also bounds writing a response to a client that does not read.
  uint32_t read_timeout_ms = 30000;
  // The request line and headers must be complete this long after the
  // request's first byte (after the accept, for a connection's first
  // request) → else 408 and close. A total, not a per-read, deadline: a
  // client trickling a byte a second cannot hold a connection for long.
  uint32_t header_timeout_ms = 10000;
  // Keep-alive connection idle this long → closed silently. A fresh
  // connection waits at most min(read, header, idle) for its first byte.
  uint32_t idle_timeout_ms = 60000;
  uint32_t max_connections = 10000;  // beyond → 503 and close
  // Open connections from one client address (IPv4 address or IPv6 /64)
  // beyond this → 503 and close, so that one client cannot take every
  // slot of max_connections. 0 = no per-address limit.
  uint32_t max_connections_per_address = 1024;
};

class HttpServer {
 public:
  // Binds and listens; error "bind_failed" naming the address.
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, Handler handler,
                                                   ErrorFormatter errors);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Runs `fn` on an I/O thread after `ms` milliseconds (for ?wait_ms timeouts
  // and similar); never blocks the caller.
  void after(uint32_t ms, std::function<void()> fn);
  // Stops accepting, closes connections, joins the I/O threads. Idempotent.
  // Not from an I/O thread (a handler or an after() callback): it would join
  // itself.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::api
