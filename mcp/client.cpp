// mcp::Client (client.hpp): the handshake, the session generation that
// decides when to run it again, request ids, and cancellation notices.
#include "mcp/client.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "base/errc.hpp"
#include "mcp/transport.hpp"

namespace yantra::mcp {

const std::vector<std::string>& supported_versions() {
  static const std::vector<std::string> v = {"2025-11-25", "2025-06-18", "2025-03-26",
                                             "2024-11-05"};
  return v;
}

struct Client::State {
  std::mutex handshake_mu;  // one handshake at a time; others wait for it
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> generation{0};  // +1 per handshake
  std::atomic<int64_t> next_id{1};
  mutable std::mutex mu;
  std::string version;
  std::function<void(const json&)> on_notification;
};

Client::Client(std::unique_ptr<Transport> transport, ClientOptions options)
    : transport_(std::move(transport)), options_(std::move(options)), state_(new State) {
  State* st = state_.get();
  transport_->sink = [st](const json& msg) {
    std::function<void(const json&)> fn;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      fn = st->on_notification;
    }
    if (fn) fn(msg);
  };
}

Client::~Client() {
  transport_->reset();
}

std::shared_ptr<Client> Client::http(HttpTarget target, ClientOptions options) {
  return std::shared_ptr<Client>(
      new Client(make_http_transport(std::move(target)), std::move(options)));
}

std::shared_ptr<Client> Client::stdio(StdioTarget target, ClientOptions options) {
  return std::shared_ptr<Client>(
      new Client(make_stdio_transport(std::move(target)), std::move(options)));
}

std::string Client::protocol_version() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->version;
}

void Client::set_on_notification(std::function<void(const json&)> fn) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->on_notification = std::move(fn);
}

void Client::close() {
  std::lock_guard<std::mutex> lock(state_->handshake_mu);
  state_->connected = false;
  transport_->reset();
}

Status Client::connect(Clock::time_point deadline) {
  if (state_->connected.load()) return Status::ok();
  std::lock_guard<std::mutex> lock(state_->handshake_mu);
  if (state_->connected.load()) return Status::ok();
  return handshake(deadline);
}

Status Client::handshake(Clock::time_point deadline) {
  deadline =
      std::min(deadline, Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms));
  transport_->reset();
  if (Status s = transport_->open(deadline); !s.is_ok()) return s;
  const int64_t id = state_->next_id++;
  json params = {
      {"protocolVersion", supported_versions().front()},
      {"capabilities", json::object()},
      {"clientInfo", {{"name", options_.client_name}, {"version", options_.client_version}}}};
  auto answer =
      transport_->request(make_request(id, "initialize", std::move(params)), id, deadline, nullptr);
  if (!answer.ok()) {
    const Status& s = answer.status();
    if (s.is(Errc::kTimeout)) return s.with_message("initialize: " + s.message());
    return Status(Errc::kUnavailable, "initialize: " + s.message());
  }
  auto result = response_result(answer.value());
  if (!result.ok()) return Status(Errc::kUnavailable, "initialize: " + result.status().message());
  const json& r = result.value();
  const std::string version = r.is_object() ? r.value("protocolVersion", "") : "";
  const auto& ours = supported_versions();
  if (std::find(ours.begin(), ours.end(), version) == ours.end()) {
    transport_->reset();
    return Status(Errc::kUnavailable, "the server answered protocol version '" + version +
                                          "', which this client does not speak");
  }
  transport_->set_protocol_version(version);
  if (Status s =
          transport_->notify(make_notification("notifications/initialized", nullptr), deadline);
      !s.is_ok()) {
    return s.with_message("notifications/initialized: " + s.message());
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->version = version;
  }
  state_->generation++;
  state_->connected = true;
  return Status::ok();
}

Result<json> Client::request(const std::string& method, json params, Clock::time_point deadline,
                             const CancelFlag* cancel, int64_t* id_out) {
  for (int attempt = 0;; ++attempt) {
    if (Status s = connect(deadline); !s.is_ok()) return s;
    const uint64_t generation = state_->generation.load();
    const int64_t id = state_->next_id++;
    if (id_out) *id_out = id;
    auto answer = transport_->request(make_request(id, method, params), id, deadline, cancel);
    if (answer.ok()) return response_result(answer.value());
    const Status& s = answer.status();
    const bool cancelled = cancel && cancel->cancelled.load();
    if (s.is(Errc::kNotFound) || (s.is(Errc::kUnavailable) && !cancelled)) {
      // The session (or the child, or the server) is gone: the next
      // request shakes hands again — unless another thread already has.
      std::lock_guard<std::mutex> lock(state_->handshake_mu);
      if (state_->generation.load() == generation) state_->connected = false;
    }
    // A request that was certainly not processed (a forgotten session, a
    // server or child not running) is repeated once after a new handshake.
    if (s.is(Errc::kNotFound) && attempt == 0) continue;
    if (s.is(Errc::kNotFound)) return Status(Errc::kUnavailable, s.message());
    return s;
  }
}

void Client::cancelled(int64_t id, const std::string& reason) {
  if (!state_->connected.load()) return;  // the session it belonged to is gone
  (void)transport_->notify(
      make_notification("notifications/cancelled", {{"requestId", id}, {"reason", reason}}),
      Clock::now() + std::chrono::milliseconds(1000));
}

Result<std::vector<json>> Client::list_tools(Clock::time_point deadline) {
  std::vector<json> tools;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    json params = json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    auto r = request("tools/list", std::move(params), deadline, nullptr);
    if (!r.ok()) return r.status();
    const json& v = r.value();
    if (!v.is_object() || !v.contains("tools") || !v["tools"].is_array()) {
      return Status(Errc::kUnavailable, "tools/list: the answer has no tools array");
    }
    for (const auto& t : v["tools"]) {
      if (t.is_object() && t.contains("name") && t["name"].is_string()) tools.push_back(t);
    }
    auto next = v.find("nextCursor");
    if (next == v.end() || !next->is_string() || next->get<std::string>().empty()) return tools;
    cursor = next->get<std::string>();
  }
  return Status(Errc::kUnavailable, "tools/list: more than 1000 pages");
}

Result<json> Client::call_tool(const std::string& name, const json& arguments,
                               Clock::time_point deadline, const CancelFlag* cancel) {
  int64_t id = 0;
  json params = {{"name", name}, {"arguments", arguments.is_null() ? json::object() : arguments}};
  auto r = request("tools/call", std::move(params), deadline, cancel, &id);
  if (!r.ok() && id != 0) {
    const bool was_cancelled = cancel && cancel->cancelled.load();
    if (r.status().is(Errc::kTimeout)) cancelled(id, "the step's timeout passed");
    if (was_cancelled) cancelled(id, "the step was cancelled");
  }
  if (!r.ok()) return r;
  if (!r.value().is_object())
    return Status(Errc::kUnavailable, "tools/call: the result is not an object");
  return r;
}

}  // namespace yantra::mcp
