// MCP servers as tenant tools (mcp_tool.hpp): the server records, the
// connector thread, the Tool that calls, and the registration body's
// validation.
//
// Ownership. McpServers owns a Core (shared) that holds the servers and the
// connector thread. A Server record is shared by the Core and the McpTool
// in the engine (a call in flight keeps it, and its client, alive after a
// DELETE). Client callbacks (tools/list_changed) hold the Core weakly, so
// a notification arriving during shutdown finds nothing to do.
#include "actors/mcp_tool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "actors/engine.hpp"
#include "base/encoding.hpp"
#include "base/errc.hpp"
#include "base/text.hpp"
#include "base/thread_name.hpp"
#include "base/time.hpp"
#include "mcp/client.hpp"
#include "mcp/transport.hpp"
#include "runtime/json_schema.hpp"

namespace yantra {
namespace {

using SteadyClock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

bool valid_server_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool alnum = std::isalnum(c) != 0;
    if (i == 0 ? !alnum : !(alnum || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

bool valid_header_name(std::string_view s) {
  return s.size() <= 256 && is_http_token(s);
}

bool valid_header_value(std::string_view s) {
  if (s.size() > 8192) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

// Headers the transport sets itself; a registration may not override them.
bool reserved_header(const std::string& name) {
  static const std::set<std::string> r = {
      "host",           "content-type",         "content-length",    "accept",
      "mcp-session-id", "mcp-protocol-version", "transfer-encoding", "connection"};
  std::string l = name;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  return r.count(l) > 0;
}

Status invalid(const std::string& pointer, const std::string& message) {
  return Status(Errc::kInvalidArgument, pointer.substr(1) + ": " + message, {{pointer, message}});
}

// The text of a result's content blocks ("" when none is text).
std::string content_text(const json& result) {
  std::string out;
  if (auto c = result.find("content"); c != result.end() && c->is_array()) {
    for (const auto& block : *c) {
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") &&
          block["text"].is_string()) {
        if (!out.empty()) out += "\n";
        out += block["text"].get<std::string>();
      }
    }
  }
  return out;
}

bool hint(const json& tool, const char* name) {
  auto a = tool.find("annotations");
  if (a == tool.end() || !a->is_object()) return false;
  auto h = a->find(name);
  return h != a->end() && h->is_boolean() && h->get<bool>();
}

}  // namespace

// --- registration bodies ------------------------------------------------------

Result<McpServerConfig> parse_mcp_registration(const json& body, const std::string& tenant) {
  if (!body.is_object()) return Status(Errc::kInvalidArgument, "body must be a JSON object");
  for (const auto& [k, v] : body.items()) {
    if (k != "id" && k != "transport" && k != "url" && k != "headers") {
      return invalid("/" + k, "unknown field (allowed: id, transport, url, headers)");
    }
  }
  McpServerConfig c;
  c.tenant = tenant;
  auto id = body.find("id");
  if (id == body.end() || !id->is_string()) return invalid("/id", "required, a string");
  c.id = id->get<std::string>();
  if (!valid_server_id(c.id)) return invalid("/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  auto transport = body.find("transport");
  if (transport == body.end() || !transport->is_string()) {
    return invalid("/transport", "required: \"streamable_http\"");
  }
  c.transport = transport->get<std::string>();
  if (c.transport == "stdio") {
    return invalid("/transport",
                   "stdio servers are configured by the operator (node configuration "
                   "mcp_servers), not through the API");
  }
  if (c.transport != "streamable_http") {
    return invalid("/transport", "must be \"streamable_http\"");
  }
  auto url = body.find("url");
  if (url == body.end() || !url->is_string()) return invalid("/url", "required, an http(s) URL");
  c.url = url->get<std::string>();
  mcp::HttpUrl parsed;
  if (c.url.size() > 2048) return invalid("/url", "at most 2048 characters");
  if (std::string why = mcp::parse_http_url(c.url, &parsed); !why.empty()) {
    return invalid("/url", why);
  }
  if (auto h = body.find("headers"); h != body.end() && !h->is_null()) {
    if (!h->is_object()) return invalid("/headers", "must be an object of header name to value");
    if (h->size() > 64) return invalid("/headers", "at most 64 headers");
    for (const auto& [name, value] : h->items()) {
      const std::string at = "/headers/" + name;
      if (!valid_header_name(name)) return invalid(at, "not a valid header name");
      if (reserved_header(name)) return invalid(at, "set by the MCP transport itself");
      if (value.is_string()) {
        if (!valid_header_value(value.get<std::string>())) {
          return invalid(at, "contains control characters or is longer than 8192 bytes");
        }
      } else if (is_secret_string(value) && value.size() == 1 && value["$secret"].is_string() &&
                 !value["$secret"].get<std::string>().empty()) {
        // {"$secret": NAME}: resolved from the tenant's vault when connecting.
      } else {
        return invalid(at, "must be a string or {\"$secret\": NAME}");
      }
    }
    c.headers = *h;
  }
  return c;
}

json mcp_registration_json(const McpServerConfig& c) {
  json j = {{"id", c.id}, {"transport", c.transport}};
  if (c.transport == "stdio") {
    j["command"] = c.command;
    j["args"] = c.args;
    json env_keys = json::array();
    for (const auto& [k, v] : c.env) env_keys.push_back(k);
    j["env"] = env_keys;  // names only: values may be credentials
  } else {
    j["url"] = c.url;
    j["headers"] = c.headers;
  }
  return j;
}

// --- servers ---------------------------------------------------------------

namespace {

struct Server {
  McpServerConfig config;
  bool configured = false;  // from the node configuration
  mutable std::mutex mu;
  std::string state = "connecting";
  std::string last_error;
  std::string protocol_version;
  std::vector<json> tools;  // as listed
  std::vector<std::string> schema_notes;
  int64_t listed_ms = 0;
  ToolSpec spec;
  std::shared_ptr<mcp::Client> client;
  std::condition_variable client_cv;  // a client was set (calls made before wait for it)
  std::unordered_map<std::string, std::shared_ptr<mcp::CancelFlag>> inflight;  // by idempotency key
  // Under tool_mu: whether the engine has the tool, and whether the server
  // was removed (then it must not be added again).
  std::mutex tool_mu;
  bool tool_added = false;
  bool removed = false;
  int64_t retry_delay_ms = 0;
  bool retry_queued = false;

  std::string tool_id() const { return "mcp:" + config.id; }

  json view() const {
    std::lock_guard<std::mutex> lock(mu);
    json v = mcp_registration_json(config);
    v["source"] = configured ? "config" : "api";
    v["tool_id"] = tool_id();
    v["state"] = state;
    v["last_error"] = last_error.empty() ? json(nullptr) : json(last_error);
    v["protocol_version"] = protocol_version.empty() ? json(nullptr) : json(protocol_version);
    json tl = json::array();
    for (const auto& t : tools) {
      tl.push_back({{"name", t["name"]},
                    {"description", t.value("description", "")},
                    {"idempotent", hint(t, "idempotentHint")},
                    {"read_only", hint(t, "readOnlyHint")}});
    }
    v["tools"] = std::move(tl);
    v["schema_notes"] = schema_notes;
    v["listed_ms"] = listed_ms == 0 ? json(nullptr) : json(listed_ms);
    return v;
  }
};

class McpTool final : public Tool {
 public:
  McpTool(std::shared_ptr<Server> server, McpOptions options)
      : server_(std::move(server)), options_(options) {}

  ToolSpec spec() const override {
    std::lock_guard<std::mutex> lock(server_->mu);
    return server_->spec;
  }
  size_t max_concurrency() const override { return options_.max_concurrency; }

  ToolResult invoke(const ToolCall& call) override {
    std::shared_ptr<mcp::Client> client;
    std::optional<ActionSpec> action;
    auto flag = std::make_shared<mcp::CancelFlag>();
    {
      std::unique_lock<std::mutex> lock(server_->mu);
      if (const ActionSpec* a = server_->spec.find_action(call.action)) action = *a;
      // Right after a restart the tool exists (cached listing) before its
      // client: wait for the connector a while rather than fail the call.
      if (action && !server_->client) {
        server_->client_cv.wait_until(lock, SteadyClock::now() + ms(options_.connect_timeout_ms),
                                      [&] { return server_->client != nullptr; });
      }
      client = server_->client;
      if (action && client) server_->inflight[call.idempotency_key] = flag;
    }
    if (!action) {
      return ToolResult::failure(
          "unknown_action",
          "MCP server '" + server_->config.id + "' has no tool '" + call.action + "'", false);
    }
    if (!client) {
      return ToolResult::failure("mcp_unavailable",
                                 "MCP server '" + server_->config.id + "' is not connected",
                                 action->idempotent);
    }
    const int64_t timeout = call.timeout_ms > 0              ? call.timeout_ms
                            : action->default_timeout_ms > 0 ? action->default_timeout_ms
                                                             : options_.default_call_timeout_ms;
    auto r = client->call_tool(call.action, call.parameters, SteadyClock::now() + ms(timeout),
                               flag.get());
    {
      std::lock_guard<std::mutex> lock(server_->mu);
      auto it = server_->inflight.find(call.idempotency_key);
      if (it != server_->inflight.end() && it->second == flag) server_->inflight.erase(it);
      if (!r.ok() && !r.status().is(Errc::kTimeout) && !flag->cancelled) {
        server_->last_error = r.status().message();
      }
    }
    if (!r.ok()) {
      const Status& s = r.status();
      if (flag->cancelled) {
        return ToolResult::failure("cancelled", "the call was cancelled", false);
      }
      if (s.is(Errc::kTimeout)) {
        return ToolResult::failure("timeout",
                                   "MCP tool '" + call.action + "' did not answer within " +
                                       std::to_string(timeout) +
                                       " ms (notifications/cancelled sent)",
                                   action->idempotent);
      }
      if (s.is(Errc::kInvalidArgument)) {
        return ToolResult::failure("mcp_invalid_params", s.message(), false);
      }
      return ToolResult::failure("mcp_unavailable", s.message(), action->idempotent);
    }
    json result = std::move(r.value());
    if (result.value("isError", false) == true) {
      std::string text = content_text(result);
      if (text.empty()) text = "the MCP tool reported an error without text";
      return ToolResult::failure("mcp_tool_error", text, false);
    }
    if (!result.contains("content")) result["content"] = json::array();
    result["isError"] = false;
    return ToolResult::success(std::move(result));
  }

  void cancel(const std::string& idempotency_key) override {
    std::lock_guard<std::mutex> lock(server_->mu);
    if (auto it = server_->inflight.find(idempotency_key); it != server_->inflight.end()) {
      it->second->cancelled = true;
    }
  }

 private:
  std::shared_ptr<Server> server_;
  McpOptions options_;
};

using Key = std::pair<std::string, std::string>;  // tenant, id

}  // namespace

struct McpServers::Impl {
  struct Core : std::enable_shared_from_this<Core> {
    Engine& engine;
    McpSecretLookup secrets;
    McpOptions options;
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    std::map<Key, std::shared_ptr<Server>> servers;
    std::deque<std::function<void()>> jobs;
    std::multimap<SteadyClock::time_point, std::function<void()>> timed;
    struct Waiter {
      Key key;
      SteadyClock::time_point deadline;
      std::function<void(json)> done;
    };
    std::vector<Waiter> waiters;
    std::thread thread;

    Core(Engine& e, McpSecretLookup s, McpOptions o)
        : engine(e), secrets(std::move(s)), options(o) {}

    void start() {
      thread = std::thread([this] {
        name_this_thread("y-mcp");
        run();
      });
    }
    void stop() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      }
      cv.notify_all();
      if (thread.joinable()) thread.join();
      // Waiters still pending get their view now rather than never.
      for (auto& w : waiters) w.done(nullptr);
      waiters.clear();
    }

    void post(std::function<void()> job) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
        jobs.push_back(std::move(job));
      }
      cv.notify_all();
    }
    void post_at(SteadyClock::time_point when, std::function<void()> job) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
        timed.emplace(when, std::move(job));
      }
      cv.notify_all();
    }

    void run() {
      std::unique_lock<std::mutex> lock(mu);
      while (!stopping) {
        const auto now = SteadyClock::now();
        while (!timed.empty() && timed.begin()->first <= now) {
          jobs.push_back(std::move(timed.begin()->second));
          timed.erase(timed.begin());
        }
        settle_waiters(lock);
        if (!jobs.empty()) {
          auto job = std::move(jobs.front());
          jobs.pop_front();
          lock.unlock();
          job();
          lock.lock();
          continue;
        }
        auto wake = now + ms(1000);
        if (!timed.empty()) wake = std::min(wake, timed.begin()->first);
        for (const auto& w : waiters) wake = std::min(wake, w.deadline);
        cv.wait_until(lock, wake);
      }
    }

    // Called with `lock` held; runs the callbacks without it.
    void settle_waiters(std::unique_lock<std::mutex>& lock) {
      std::vector<std::pair<std::function<void(json)>, std::shared_ptr<Server>>> due;
      const auto now = SteadyClock::now();
      for (auto it = waiters.begin(); it != waiters.end();) {
        auto s = servers.find(it->key);
        std::shared_ptr<Server> server = s == servers.end() ? nullptr : s->second;
        bool settled = false;
        if (server) {
          std::lock_guard<std::mutex> sl(server->mu);
          settled = server->state != "connecting";
        }
        if (settled || now >= it->deadline) {
          due.emplace_back(std::move(it->done), server);
          it = waiters.erase(it);
        } else {
          ++it;
        }
      }
      if (due.empty()) return;
      lock.unlock();
      for (auto& [done, server] : due) done(server ? server->view() : json(nullptr));
      lock.lock();
    }

    // The cache file of a server's last listing (tenant and id hex-encoded:
    // any bytes are safe in a file name then).
    std::string cache_path(const McpServerConfig& c) const {
      if (options.cache_dir.empty()) return "";
      return options.cache_dir + "/" + hex_encode(c.tenant) + "." + hex_encode(c.id) + ".json";
    }
    void write_cache(const McpServerConfig& c, const std::vector<json>& tools) {
      const std::string path = cache_path(c);
      if (path.empty()) return;
      std::error_code ec;
      std::filesystem::create_directories(options.cache_dir, ec);
      const std::string tmp = path + ".tmp";
      {
        std::ofstream out(tmp, std::ios::trunc);
        out << json(tools).dump();
        if (!out) return;
      }
      std::filesystem::rename(tmp, path, ec);
    }
    std::optional<std::vector<json>> read_cache(const McpServerConfig& c) const {
      const std::string path = cache_path(c);
      if (path.empty()) return std::nullopt;
      std::ifstream in(path);
      if (!in) return std::nullopt;
      std::stringstream ss;
      ss << in.rdbuf();
      json j = json::parse(ss.str(), nullptr, false);
      if (!j.is_array()) return std::nullopt;
      std::vector<json> tools;
      for (const auto& t : j) {
        if (t.is_object() && t.contains("name") && t["name"].is_string()) tools.push_back(t);
      }
      return tools;
    }
    void drop_cache(const McpServerConfig& c) {
      const std::string path = cache_path(c);
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }

    // A new server: its tool at once from the cached listing, if any (and
    // a client, which connects on first use), then a connect.
    void adopt(const std::shared_ptr<Server>& server) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;  // shutting down: nothing new
      }
      if (auto cached = read_cache(server->config); cached && !cached->empty()) {
        ToolSpec spec;
        std::vector<std::string> notes;
        build_spec(*server, *cached, spec, notes);
        auto client = make_client(server);
        {
          std::lock_guard<std::mutex> lock(server->mu);
          server->tools = *cached;
          server->schema_notes = notes;
          server->spec = spec;
          if (client.ok()) server->client = client.value();
          server->client_cv.notify_all();
        }
        std::lock_guard<std::mutex> tl(server->tool_mu);
        server->tool_added =
            engine.add_tool(server->config.tenant, std::make_shared<McpTool>(server, options))
                .is_ok();
      }
      post([this, server] {
        bool fresh = false;
        {
          std::lock_guard<std::mutex> lock(server->mu);
          fresh = server->client == nullptr;
        }
        connect(server, fresh);
      });
    }

    std::shared_ptr<Server> find(const Key& k) {
      std::lock_guard<std::mutex> lock(mu);
      auto it = servers.find(k);
      return it == servers.end() ? nullptr : it->second;
    }

    // Connects (a new client when `fresh` or none yet) and lists the tools.
    void connect(const std::shared_ptr<Server>& server, bool fresh) {
      {
        std::lock_guard<std::mutex> tl(server->tool_mu);
        if (server->removed) return;
      }
      std::shared_ptr<mcp::Client> client;
      {
        std::lock_guard<std::mutex> lock(server->mu);
        client = server->client;
      }
      if (!client || fresh) {
        auto made = make_client(server);
        if (!made.ok()) return failed(server, made.status().message());
        client = made.value();
        std::lock_guard<std::mutex> lock(server->mu);
        server->client = client;
        server->client_cv.notify_all();
      }
      auto listed = client->list_tools(SteadyClock::now() + ms(options.connect_timeout_ms));
      if (!listed.ok()) return failed(server, listed.status().message());
      ToolSpec spec;
      std::vector<std::string> notes;
      build_spec(*server, listed.value(), spec, notes);
      {
        std::lock_guard<std::mutex> lock(server->mu);
        server->tools = listed.value();
        server->schema_notes = notes;
        server->spec = spec;
        server->protocol_version = client->protocol_version();
        server->listed_ms = now_ms();
      }
      write_cache(server->config, listed.value());
      Status added;
      {
        std::lock_guard<std::mutex> tl(server->tool_mu);
        if (server->removed) return;
        if (!server->tool_added) {
          added =
              engine.add_tool(server->config.tenant, std::make_shared<McpTool>(server, options));
          server->tool_added = added.is_ok();
        } else {
          added = engine.refresh_tool_spec(server->config.tenant, spec);
        }
      }
      if (!added.is_ok()) return failed(server, "registering the tools: " + added.message());
      {
        std::lock_guard<std::mutex> lock(server->mu);
        server->state = "ready";
        server->last_error.clear();
        server->retry_delay_ms = 0;
      }
      cv.notify_all();
    }

    void failed(const std::shared_ptr<Server>& server, const std::string& why) {
      int64_t delay = 0;
      bool queue = false;
      {
        std::lock_guard<std::mutex> lock(server->mu);
        // A server listed before keeps its tools (calls reconnect by
        // themselves); one never listed is "failed" until a retry works.
        if (server->listed_ms == 0) server->state = "failed";
        server->last_error = why;
        server->retry_delay_ms = server->retry_delay_ms == 0
                                     ? options.retry_min_ms
                                     : std::min(options.retry_max_ms, server->retry_delay_ms * 2);
        delay = server->retry_delay_ms;
        queue = server->listed_ms == 0 && !server->retry_queued;
        if (queue) server->retry_queued = true;
      }
      cv.notify_all();
      if (!queue) return;
      std::weak_ptr<Server> weak = server;
      post_at(SteadyClock::now() + ms(delay), [this, weak] {
        auto s = weak.lock();
        if (!s) return;
        {
          std::lock_guard<std::mutex> lock(s->mu);
          s->retry_queued = false;
          if (s->state == "ready") return;
        }
        connect(s, true);
      });
    }

    Result<std::shared_ptr<mcp::Client>> make_client(const std::shared_ptr<Server>& server) {
      const McpServerConfig& c = server->config;
      mcp::ClientOptions co;
      co.connect_timeout_ms = options.connect_timeout_ms;
      std::shared_ptr<mcp::Client> client;
      if (c.transport == "stdio") {
        client = mcp::Client::stdio({c.command, c.args, c.env, ""}, co);
      } else {
        mcp::HttpTarget t;
        t.url = c.url;
        for (const auto& [name, value] : c.headers.items()) {
          if (value.is_string()) {
            t.headers.emplace_back(name, value.get<std::string>());
            continue;
          }
          const std::string secret = value.value("$secret", "");
          if (!secrets) return Status(Errc::kUnavailable, "no vault on this node");
          auto v = secrets(c.tenant, secret);
          if (!v.ok()) {
            return Status(Errc::kUnavailable, "header '" + name + "': secret '" + secret +
                                                  "': " + v.status().message());
          }
          if (!v.value()) {
            return Status(Errc::kUnavailable,
                          "header '" + name + "': secret '" + secret + "' is not set");
          }
          t.headers.emplace_back(name, *v.value());
        }
        client = mcp::Client::http(std::move(t), co);
      }
      std::weak_ptr<Core> weak_core = shared_from_this();
      std::weak_ptr<Server> weak_server = server;
      client->set_on_notification([weak_core, weak_server](const json& msg) {
        if (msg.value("method", "") != "notifications/tools/list_changed") return;
        auto core = weak_core.lock();
        if (!core) return;
        core->post([core_raw = core.get(), weak_server] {
          if (auto s = weak_server.lock()) core_raw->connect(s, false);
        });
      });
      return client;
    }

    void build_spec(const Server& server, const std::vector<json>& tools, ToolSpec& spec,
                    std::vector<std::string>& notes) {
      spec = ToolSpec();
      spec.id = server.tool_id();
      spec.kind = "mcp";
      spec.tenant = server.config.tenant;
      spec.description = "MCP server '" + server.config.id + "' (" + server.config.transport + ")";
      std::set<std::string> seen;
      for (const auto& t : tools) {
        const std::string name = t["name"].get<std::string>();
        if (!seen.insert(name).second) continue;
        ActionSpec a(name);
        a.description = t.value("description", "");
        if (a.description.empty() && t.contains("title") && t["title"].is_string()) {
          a.description = t["title"].get<std::string>();
        }
        a.idempotent = hint(t, "idempotentHint");
        a.side_effects = !hint(t, "readOnlyHint");
        a.default_timeout_ms = options.default_call_timeout_ms;
        json input = t.contains("inputSchema") ? t["inputSchema"] : json::object();
        std::vector<Problem> problems;
        check_schema(input, "/inputSchema", problems);
        if (!problems.empty()) {
          notes.push_back("tool '" + name + "': inputSchema not checked by Yantra (" +
                          problems.front().path + ": " + problems.front().message +
                          "); the server validates");
          input = json::object();
        }
        a.input_schema = std::move(input);
        json structured = t.contains("outputSchema") ? t["outputSchema"] : json::object();
        problems.clear();
        check_schema(structured, "/outputSchema", problems);
        if (!problems.empty()) {
          notes.push_back("tool '" + name + "': outputSchema not used (" + problems.front().path +
                          ": " + problems.front().message + ")");
          structured = json::object();
        }
        // The step output is the whole result; outputSchema describes its
        // structuredContent.
        json out = {
            {"type", "object"},
            {"properties", {{"content", {{"type", "array"}}}, {"isError", {{"type", "boolean"}}}}}};
        if (!structured.empty()) out["properties"]["structuredContent"] = structured;
        a.output_schema = std::move(out);
        spec.actions.push_back(std::move(a));
      }
    }
  };

  std::shared_ptr<Core> core;
};

McpServers::McpServers(Engine& engine, McpSecretLookup secrets, McpOptions options)
    : impl_(new Impl) {
  impl_->core = std::make_shared<Impl::Core>(engine, std::move(secrets), options);
  impl_->core->start();
}

McpServers::~McpServers() {
  impl_->core->stop();
}

void McpServers::stop() {
  impl_->core->stop();
}

void McpServers::put(McpServerConfig config) {
  auto& core = *impl_->core;
  const Key key{config.tenant, config.id};
  auto server = std::make_shared<Server>();
  server->config = std::move(config);
  std::shared_ptr<Server> old;
  {
    std::lock_guard<std::mutex> lock(core.mu);
    auto& slot = core.servers[key];
    old = slot;
    slot = server;
  }
  if (old) {
    std::lock_guard<std::mutex> tl(old->tool_mu);
    old->removed = true;
    // The new server's tool replaces the old one when it is listed; until
    // then calls go to the old one.
  }
  core.adopt(server);
}

void McpServers::put_configured(McpServerConfig config) {
  auto& core = *impl_->core;
  const Key key{config.tenant, config.id};
  auto server = std::make_shared<Server>();
  server->config = std::move(config);
  server->configured = true;
  {
    std::lock_guard<std::mutex> lock(core.mu);
    core.servers[key] = server;
  }
  core.adopt(server);
}

bool McpServers::remove(const std::string& tenant, const std::string& id) {
  auto& core = *impl_->core;
  std::shared_ptr<Server> server;
  {
    std::lock_guard<std::mutex> lock(core.mu);
    auto it = core.servers.find({tenant, id});
    if (it == core.servers.end()) return false;
    server = it->second;
    core.servers.erase(it);
  }
  {
    // Calls in flight stop first, so that the tool pool's threads (joined
    // when the engine drops the tool) are free at once.
    std::lock_guard<std::mutex> lock(server->mu);
    for (auto& [key, flag] : server->inflight) flag->cancelled = true;
  }
  {
    std::lock_guard<std::mutex> tl(server->tool_mu);
    server->removed = true;
    if (server->tool_added) (void)core.engine.remove_tool(tenant, server->tool_id());
    server->tool_added = false;
  }
  core.drop_cache(server->config);
  // Ending the session (or the child) may take a moment: not on the caller.
  core.post([server] {
    std::shared_ptr<mcp::Client> client;
    {
      std::lock_guard<std::mutex> lock(server->mu);
      client.swap(server->client);
    }
    if (client) client->close();
  });
  core.cv.notify_all();
  return true;
}

bool McpServers::refresh(const std::string& tenant, const std::string& id,
                         std::function<void(json)> done) {
  auto& core = *impl_->core;
  auto server = core.find({tenant, id});
  if (!server) return false;
  core.post([c = &core, server, done = std::move(done)] {
    bool fresh = false;
    {
      std::lock_guard<std::mutex> lock(server->mu);
      fresh = server->state != "ready";
    }
    c->connect(server, fresh);
    if (done) done(server->view());
  });
  return true;
}

void McpServers::when_settled(const std::string& tenant, const std::string& id, int64_t timeout_ms,
                              std::function<void(json)> done) {
  auto& core = *impl_->core;
  {
    std::lock_guard<std::mutex> lock(core.mu);
    if (!core.stopping) {
      core.waiters.push_back({{tenant, id}, SteadyClock::now() + ms(timeout_ms), std::move(done)});
      done = nullptr;
    }
  }
  core.cv.notify_all();
  if (done) done(nullptr);
}

std::optional<json> McpServers::view(const std::string& tenant, const std::string& id) const {
  auto server = impl_->core->find({tenant, id});
  if (!server) return std::nullopt;
  return server->view();
}

std::vector<json> McpServers::list(const std::string& tenant) const {
  std::vector<std::shared_ptr<Server>> found;
  {
    std::lock_guard<std::mutex> lock(impl_->core->mu);
    for (auto it = impl_->core->servers.lower_bound({tenant, ""});
         it != impl_->core->servers.end() && it->first.first == tenant; ++it) {
      found.push_back(it->second);
    }
  }
  std::vector<json> out;
  for (const auto& s : found) out.push_back(s->view());
  return out;
}

bool McpServers::is_configured(const std::string& tenant, const std::string& id) const {
  auto server = impl_->core->find({tenant, id});
  return server && server->configured;
}

}  // namespace yantra
