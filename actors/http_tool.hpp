// The built-in `http` tool: one action, "request", that lets a step call any
// HTTP(S) endpoint and get back {status, headers, body}.
//
// Why it is shaped this way:
// - It is a blocking Tool: the engine runs invoke() on the tool's own worker
//   threads (max_concurrency at a time), so the implementation may wait on
//   sockets, and it never touches a CAF scheduler thread.
// - Failures are classified for the retry machinery of the step, not for a
//   human: "http_<status>" (retriable for 408, 429 and 5xx unless the step
//   says otherwise with `retry_on`), "http_connect_error" and "http_timeout"
//   (retriable), "http_tls_error", "http_response_too_large" and
//   "invalid_parameters" (not retriable: retrying cannot fix them).
// - Every request carries the call's idempotency key as `Idempotency-Key`,
//   so a server can deduplicate an attempt the engine repeats after a crash.
// - Keep-alive connections are pooled per (scheme, host, port) and shared by
//   all worker threads, because most flows call the same few services.
//
// This header hides Boost.Beast and OpenSSL (they live in http_tool.cpp only)
// so that the engine and the API layer do not pay their compile cost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/tools.hpp"
#include "base/result.hpp"

namespace yantra {

struct HttpToolOptions {
  size_t max_concurrency = 64;  // calls in flight at once (= worker threads)
  // PEM file of extra CA certificates trusted in addition to the system store.
  std::string ca_file;
  size_t max_response_bytes = 10 * 1024 * 1024;  // body limit per response
  size_t max_idle_per_host = 16;    // idle keep-alive connections kept per origin; 0 = no pooling
  int64_t idle_timeout_ms = 30000;  // an idle connection older than this is closed, not reused
  int64_t default_timeout_ms = 30000;  // when neither the step nor `timeout_ms` give one
  int max_redirects = 10;              // with follow_redirects
  std::string user_agent = "yantra/0.1";
};

// Checks options that would otherwise only fail at the first call (an
// unreadable or invalid ca_file, a zero concurrency), so a node can refuse to
// start instead. make_http_tool() accepts any options: with a bad ca_file,
// every HTTPS call fails with "http_tls_error".
Status check_http_tool_options(const HttpToolOptions& options);

// The tool with id "http" and action "request". Thread-safe; one instance
// owns one connection pool, so register a single instance per engine.
std::shared_ptr<Tool> make_http_tool(HttpToolOptions options = {});

// Its description in the tool registry (schemas of "request").
ToolSpec http_tool_spec();

}  // namespace yantra
