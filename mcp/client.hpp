// An MCP client (Model Context Protocol, revisions 2024-11-05 .. 2025-11-25)
// for calling a server's tools: `initialize` with version negotiation,
// `notifications/initialized`, `tools/list` (paged), `tools/call`,
// `notifications/cancelled`; over Streamable HTTP or stdio.
//
// Connection life. The client connects lazily: the first request (or
// connect()) runs the handshake; the protocol version offered is the newest
// we speak (2025-11-25) and any version the server answers from
// supported_versions() is accepted. When the connection is lost — the stdio
// child exits, the HTTP server forgets the session (404, or the reference
// server's 400 "No valid session ID") or restarts — the next request runs
// the handshake again (a session-expired answer means the request was not
// processed, so it is repeated once on the new session; a request lost in a
// broken connection is not repeated here: the caller decides, since only it
// knows whether the tool is idempotent).
//
// Threads. Every method may be called from several threads at once (tool
// threads); each request blocks its caller until its answer, its deadline
// or its cancellation. Over HTTP each request is its own POST (a fresh
// connection: loopback servers make that cheap and no pool can go stale);
// over stdio one child serves all requests, answers matched by id
// (jsonrpc.hpp). Server notifications that can arrive — in an SSE answer,
// or on the child's stdout at any time — are handed to on_notification on
// the thread that read them, which must not call back into the client
// (tools/list_changed handlers queue a re-list elsewhere).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "mcp/jsonrpc.hpp"

namespace yantra::mcp {

struct HttpTarget {
  std::string url;  // http:// or https://
  // Extra request headers (e.g. Authorization), already resolved: values
  // are sent, never logged.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct StdioTarget {
  std::string command;  // looked up in PATH when it has no '/'
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the node's environment
  std::string cwd;                         // "" = the node's
};

struct ClientOptions {
  int64_t connect_timeout_ms = 5000;  // the handshake's bound
  std::string client_name = "yantra";
  std::string client_version = "1";
};

const std::vector<std::string>& supported_versions();  // newest first

class Transport;

class Client {
 public:
  static std::shared_ptr<Client> http(HttpTarget target, ClientOptions options = {});
  static std::shared_ptr<Client> stdio(StdioTarget target, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs the handshake unless connected.
  Status connect(Clock::time_point deadline);
  // Every tool of the server (following nextCursor), as the server sent
  // them (name, description, inputSchema, outputSchema, annotations, ...).
  Result<std::vector<json>> list_tools(Clock::time_point deadline);
  // tools/call: the result object ({content, structuredContent?, isError?}).
  // On the deadline: notifications/cancelled for the request, then
  // Errc::kTimeout. When *cancel is set meanwhile: notifications/cancelled,
  // then kUnavailable "cancelled". Transport failures: kUnavailable.
  Result<json> call_tool(const std::string& name, const json& arguments, Clock::time_point deadline,
                         const CancelFlag* cancel = nullptr);

  // The negotiated version ("" before the first handshake).
  std::string protocol_version() const;
  // Called with each notification the server sends (see above).
  void set_on_notification(std::function<void(const json&)> fn);
  // Ends the session / child process; later calls reconnect.
  void close();

 private:
  explicit Client(std::unique_ptr<Transport> transport, ClientOptions options);
  Status handshake(Clock::time_point deadline);
  Result<json> request(const std::string& method, json params, Clock::time_point deadline,
                       const CancelFlag* cancel, int64_t* id_out = nullptr);
  void cancelled(int64_t id, const std::string& reason);

  struct State;
  std::unique_ptr<Transport> transport_;
  ClientOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace yantra::mcp
