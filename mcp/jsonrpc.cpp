// JSON-RPC helpers and the answer matcher (jsonrpc.hpp).
#include "mcp/jsonrpc.hpp"

#include "base/errc.hpp"

namespace yantra::mcp {

json make_request(int64_t id, const std::string& method, json params) {
  json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

json make_notification(const std::string& method, json params) {
  json m = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

MessageKind classify(const json& msg) {
  if (!msg.is_object()) return MessageKind::kInvalid;
  const bool has_method = msg.contains("method") && msg["method"].is_string();
  const bool has_id = msg.contains("id") && !msg["id"].is_null();
  if (has_method) return has_id ? MessageKind::kRequest : MessageKind::kNotification;
  if (has_id && (msg.contains("result") || msg.contains("error"))) return MessageKind::kResponse;
  return MessageKind::kInvalid;
}

std::optional<int64_t> response_id(const json& msg) {
  if (!msg.is_object()) return std::nullopt;
  auto it = msg.find("id");
  if (it == msg.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

Result<json> response_result(const json& response) {
  if (auto e = response.find("error"); e != response.end()) {
    int64_t code = 0;
    std::string message = "error";
    if (e->is_object()) {
      if (auto c = e->find("code"); c != e->end() && c->is_number_integer())
        code = c->get<int64_t>();
      if (auto m = e->find("message"); m != e->end() && m->is_string())
        message = m->get<std::string>();
    }
    const std::string text = "JSON-RPC error " + std::to_string(code) + ": " + message;
    if (code == -32602) return Status(Errc::kInvalidArgument, text);
    return Status(Errc::kUnavailable, text);
  }
  auto r = response.find("result");
  if (r == response.end()) return Status(Errc::kUnavailable, "a response without result or error");
  return *r;
}

void Matcher::expect(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  slots_[id];
}

Result<json> Matcher::wait(int64_t id, Clock::time_point deadline, const CancelFlag* cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  // Cancellation is a flag (set without this lock), so the wait wakes up
  // every 20 ms to look at it; answers and failures wake it at once.
  for (;;) {
    auto it = slots_.find(id);
    if (it == slots_.end()) return Status(Errc::kInternalError, "no waiter");
    if (it->second.has_value()) {
      Result<json> r = std::move(*it->second);
      slots_.erase(it);
      return r;
    }
    if (cancel && cancel->cancelled.load()) {
      slots_.erase(it);
      return Status(Errc::kUnavailable, "cancelled");
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      slots_.erase(it);
      return Status(Errc::kTimeout, "no answer before the deadline");
    }
    cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(20)));
  }
}

bool Matcher::deliver(const json& response) {
  auto id = response_id(response);
  if (!id) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(*id);
    if (it == slots_.end() || it->second.has_value()) return false;
    it->second = Result<json>(response);
  }
  cv_.notify_all();
  return true;
}

void Matcher::fail_all(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, slot] : slots_) {
      if (!slot.has_value()) slot = Result<json>(why);
    }
  }
  cv_.notify_all();
}

size_t Matcher::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
}

}  // namespace yantra::mcp
