// Remote starts (cli/remote_start.hpp).
#include "cli/remote_start.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <utility>

#include "actors/engine.hpp"
#include "actors/errc.hpp"
#include "base/errc.hpp"
#include "base/storage_errc.hpp"
#include "cluster/node.hpp"
#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "yantra/v1/forward.pb.h"

namespace yantra::cli {
namespace {

// A start waits for its first batch to commit: well under a second unless
// the leader is failing over, when the caller should retry.
constexpr std::chrono::milliseconds kStartTimeout{5000};
constexpr int64_t kRetryAfterMs = 1000;

template <class E, size_t N>
bool match(const std::array<E, N>& all, const std::string& code, const std::string& message,
           Status* out) {
  for (E e : all) {
    if (ErrcTraits<E>::wire(e) == code) {
      *out = Status(e, message);
      return true;
    }
  }
  return false;
}

// The Status the leader answered, with its typed code where this version
// knows it (so the caller maps it to the same HTTP status as a local
// refusal), else "unavailable" naming it.
Status status_from_wire(const std::string& code, const std::string& message,
                        int64_t retry_after_ms) {
  Status s;
  if (!match(kAllErrc, code, message, &s) && !match(kAllActorsErrc, code, message, &s) &&
      !match(kAllStorageErrc, code, message, &s)) {
    s = Status(Errc::kUnavailable, code + ": " + message);
  }
  if (retry_after_ms > 0) s = std::move(s).with_retry_after_ms(retry_after_ms);
  return s;
}

Status not_led(uint32_t p, const std::string& why) {
  return Status(ActorsErrc::kPartitionNotLed,
                "partition " + std::to_string(p) + " of this flow " + why + "; retry shortly")
      .with_retry_after_ms(kRetryAfterMs);
}

std::string reply_bytes(const Result<std::string>& started, bool queued) {
  v1::ForwardedStartReply reply;
  if (started.ok()) {
    reply.set_execution_id(started.value());
    reply.set_queued(queued);
  } else {
    reply.set_error_code(started.status().code());
    reply.set_error_message(started.status().message());
    reply.set_retry_after_ms(started.status().retry_after_ms());
  }
  return reply.SerializeAsString();
}

}  // namespace

RemoteStartFn remote_start_hook(cluster::ClusterNode& node) {
  return [&node](uint32_t p, RunRequest request, std::function<void(Result<std::string>)> started) {
    auto leader = node.leader_of(p);
    if (!leader) return started(not_led(p, "has no leader right now"));
    // Led here after all (it moved since the engine looked): the caller's
    // retry starts it locally.
    if (leader->empty()) return started(not_led(p, "just became led by this node"));
    v1::ForwardedStart message;
    message.set_tenant(request.tenant);
    message.set_flow_id(request.flow_id);
    message.set_flow_version(request.flow_version);
    message.set_input_json(dump_canonical(request.input));
    message.set_idempotency_key(request.idempotency_key);
    node.request(
        *leader, "start", message.SerializeAsString(), kStartTimeout,
        [p, queued = request.queued, started](Result<std::string> answer) {
          if (!answer.ok()) {
            return started(not_led(
                p, "is led by a node that did not answer (" + answer.status().to_string() + ")"));
          }
          v1::ForwardedStartReply reply;
          if (!reply.ParseFromString(answer.value())) {
            return started(Status(Errc::kUnavailable, "a malformed answer to a forwarded start"));
          }
          if (!reply.error_code().empty()) {
            return started(status_from_wire(reply.error_code(), reply.error_message(),
                                            reply.retry_after_ms()));
          }
          if (reply.queued() && queued) queued->store(true);
          started(reply.execution_id());
        });
  };
}

RemoteStarts::RemoteStarts(Engine& engine) : engine_(engine), thread_([this] { run(); }) {}

RemoteStarts::~RemoteStarts() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& [payload, reply] : queue_) {
    reply(Status(Errc::kUnavailable, "this node is stopping"));
  }
}

void RemoteStarts::serve(std::string payload, std::function<void(Result<std::string>)> reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.emplace_back(std::move(payload), std::move(reply));
      cv_.notify_one();
      return;
    }
  }
  reply(Status(Errc::kUnavailable, "this node is stopping"));
}

void RemoteStarts::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto [payload, reply] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    start(payload, std::move(reply));
    lock.lock();
  }
}

void RemoteStarts::start(const std::string& payload,
                         std::function<void(Result<std::string>)> reply) {
  v1::ForwardedStart message;
  if (!message.ParseFromString(payload) || message.tenant().empty() || message.flow_id().empty()) {
    return reply(Status(Errc::kInvalidArgument, "a malformed forwarded start"));
  }
  auto input = parse_json_text(message.input_json());
  if (!input.ok()) return reply(input.status());
  RunRequest request;
  request.tenant = message.tenant();
  request.flow_id = message.flow_id();
  request.flow_version = message.flow_version();
  request.input = std::move(input.value());
  request.idempotency_key = message.idempotency_key();
  request.forwarded = true;
  request.queued = std::make_shared<std::atomic<bool>>(false);
  auto queued = request.queued;
  engine_.start(std::move(request), [reply, queued](Result<std::string> started) {
    reply(reply_bytes(started, queued->load()));
  });
}

}  // namespace yantra::cli
