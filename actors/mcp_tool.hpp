// MCP servers as tools (docs/tools.md "MCP servers"). Each server a tenant
// registers (POST /api/v1/mcp/servers, Streamable HTTP) or the operator
// configures (node config `mcp_servers`, stdio, for listed tenants) becomes
// the tenant tool "mcp:<server id>" of kind "mcp", one action per MCP tool:
// name = the MCP tool's name, input_schema = inputSchema, output_schema =
// outputSchema, idempotent = annotations.idempotentHint, side_effects =
// !annotations.readOnlyHint, default timeout 60 s.
//
// Life of a server. put() makes it "connecting" (with its tool from the
// cached last listing, if any: see McpOptions::cache_dir) and queues a connect on the
// connector thread: resolve `{"$secret": NAME}` header values from the
// tenant's vault, initialize, tools/list; then "ready" (the tool is added
// to the engine, or its spec refreshed) or "failed" with the error (tried
// again after 2 s, doubling to at most 60 s). While a server has never been
// listed it has no tool, so a flow naming it is refused at store time with
// the usual 400. notifications/tools/list_changed and refresh() re-list.
// The connector is one thread: connects are bounded (10 s) and rare, and
// one thread keeps add/refresh/remove of a tool in order.
//
// Schemas MCP servers send may use JSON Schema keywords our validator
// (runtime/json_schema.hpp) cannot check, which ToolRegistry::add refuses:
// such an action keeps no schema (anything accepted; the server validates)
// and the server's view lists why under "schema_notes". Registration never
// fails over a schema.
//
// Calls (McpTool::invoke on a tool thread): tools/call with the step's
// parameters as arguments, deadline = the step's timeout. The output is the
// server's result ({"content", "structuredContent"?, "isError": false});
// isError true fails the call with "mcp_tool_error" and the text content
// (not retriable); a deadline sends notifications/cancelled and fails with
// "timeout"; transport failures ("mcp_unavailable") and timeouts are
// retriable only when the action is idempotent; the step's retry_config
// decides the rest. cancel(idempotency_key) stops a call in flight (sends
// notifications/cancelled).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/tools.hpp"
#include "base/result.hpp"

namespace yantra {

class Engine;

struct McpServerConfig {
  std::string tenant;
  std::string id;         // the tool is "mcp:<id>"
  std::string transport;  // "streamable_http" | "stdio"
  // streamable_http
  std::string url;
  json headers = json::object();  // name -> string | {"$secret": NAME}, as registered
  // stdio (operator configuration only)
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
};

// Checks a registration body from the API (`{"id", "transport", "url",
// "headers"}`); invalid_request naming the field, with a JSON pointer.
// `transport: "stdio"` is refused: stdio servers are the operator's.
Result<McpServerConfig> parse_mcp_registration(const json& body, const std::string& tenant);
// The body stored for a config (the registration's definition).
json mcp_registration_json(const McpServerConfig& config);

struct McpOptions {
  int64_t connect_timeout_ms = 10000;
  int64_t default_call_timeout_ms = 60000;
  int64_t retry_min_ms = 2000;
  int64_t retry_max_ms = 60000;
  size_t max_concurrency = 16;  // calls in flight per server
  // Where the last tools/list of each server is kept ("" = nowhere). With
  // it, a server put after a restart has its tool at once, with the actions
  // of its last listing, so executions recovered by the engine (which may
  // call it before the server answers) find it; the listing then refreshes
  // it. Holds schemas only, never header values.
  std::string cache_dir;
};

// A secret's value from a tenant's vault (nullopt = not set).
using McpSecretLookup = std::function<Result<std::optional<std::string>>(const std::string& tenant,
                                                                         const std::string& name)>;

class McpServers {
 public:
  McpServers(Engine& engine, McpSecretLookup secrets, McpOptions options = {});
  ~McpServers();
  // Stops the connector thread (pending waiters get null); later puts and
  // refreshes do nothing. For shutdown, before what the lookup reads goes.
  void stop();
  McpServers(const McpServers&) = delete;
  McpServers& operator=(const McpServers&) = delete;

  // Adds or replaces a server (and starts connecting); never blocks.
  void put(McpServerConfig config);
  // Removes the server and its tool; false when unknown.
  bool remove(const std::string& tenant, const std::string& id);
  // Lists its tools again; `done` (on the connector thread) gets the view.
  // false when unknown.
  bool refresh(const std::string& tenant, const std::string& id, std::function<void(json)> done);
  // `done` once the server is no longer "connecting" (ready or failed), or
  // after timeout_ms, with its view (null when it is unknown); on the
  // connector thread, never the caller's.
  void when_settled(const std::string& tenant, const std::string& id, int64_t timeout_ms,
                    std::function<void(json)> done);

  // {"id", "transport", "url"/"command", "headers" (as registered, markers
  // not values), "source": "api"|"config", "state", "last_error",
  // "protocol_version", "tools": [{name, description, idempotent, read_only}],
  // "schema_notes", "listed_ms"}; nullopt when unknown.
  std::optional<json> view(const std::string& tenant, const std::string& id) const;
  std::vector<json> list(const std::string& tenant) const;
  bool is_configured(const std::string& tenant, const std::string& id) const;  // from config

  // Marks servers put from the node configuration (GET shows source
  // "config"; the API cannot delete them).
  void put_configured(McpServerConfig config);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra
