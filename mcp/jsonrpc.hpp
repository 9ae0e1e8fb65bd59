// JSON-RPC 2.0 as MCP uses it: building requests and notifications,
// classifying what a server sends, and matching answers to the requests
// waiting for them.
//
// Why a matcher of our own: over stdio one pipe carries the answers of
// every request in flight (tool threads call concurrently) plus the
// server's notifications and requests, in any order; each caller waits for
// the answer with its id (or its deadline, or its cancellation). Ids are
// integers this client allocates, so an answer is matched by the integer;
// an answer with an id nobody waits for (a late answer after a timeout) is
// dropped. Pure code apart from the condition variable; unit-tested
// (tests/mcp/jsonrpc_test.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra::mcp {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json make_request(int64_t id, const std::string& method, json params);
json make_notification(const std::string& method, json params);

enum class MessageKind { kResponse, kNotification, kRequest, kInvalid };
MessageKind classify(const json& msg);
// The integer id of a response (nullopt when absent or not an integer).
std::optional<int64_t> response_id(const json& msg);

// A response turned into a value: its `result`, or an error naming the
// JSON-RPC error's code and message (Errc::kInvalidArgument for the
// protocol's "invalid params" -32602, kUnavailable otherwise).
Result<json> response_result(const json& response);

// Set from another thread to make a waiting request give up (the engine
// cancelled the step). Checked by the transports while they wait.
struct CancelFlag {
  std::atomic<bool> cancelled{false};
};

class Matcher {
 public:
  // Registers a waiter before the request is written (so that an answer
  // arriving at once is not missed).
  void expect(int64_t id);
  // Waits for the answer to `id` until `deadline` or `cancel`; always
  // unregisters. Errc::kTimeout on the deadline, kUnavailable when the
  // connection failed (fail_all) or the wait was cancelled ("cancelled").
  Result<json> wait(int64_t id, Clock::time_point deadline, const CancelFlag* cancel);
  // Delivers an answer; false when nobody waits for its id.
  bool deliver(const json& response);
  // Every waiter gets `why` (the process died).
  void fail_all(const Status& why);
  size_t waiting() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::optional<Result<json>>> slots_;
};

}  // namespace yantra::mcp
