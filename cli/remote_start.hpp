// Remote starts: in a cluster every execution of a flow with
// max_concurrent_executions or a rate limit lives in the flow's home partition, so a start
// of such a flow that reaches a node not leading it (an event, a schedule,
// a webhook, a retry racing a leadership move) travels to the home's
// leader as a yantra.v1.ForwardedStart over the cluster transport's
// "start" service (EngineOptions::start_elsewhere). The leader runs it
// with RunRequest::forwarded set, so it is never sent on a second time,
// and answers the execution id (and whether it queued) or the refusal's
// Status, which the sender's caller sees as if the start had run locally.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "base/result.hpp"

namespace yantra {
class Engine;
struct RunRequest;
namespace cluster {
class ClusterNode;
}  // namespace cluster

namespace cli {

using RemoteStartFn =
    std::function<void(uint32_t, RunRequest, std::function<void(Result<std::string>)>)>;

// EngineOptions::start_elsewhere over `node`'s transport (`node` outlives
// the engine's use of it). A partition with no leader now, or an
// unreachable leader, is "partition_not_led" with a retry hint.
RemoteStartFn remote_start_hook(cluster::ClusterNode& node);

// The "start" service. The transport calls serve() on a CAF scheduler
// thread, and a start reads the store (the flow, an idempotency key), so
// each request is run on a thread of its own here; serve() only queues.
class RemoteStarts {
 public:
  explicit RemoteStarts(Engine& engine);
  // Answers what is still queued with "unavailable" and joins.
  ~RemoteStarts();
  RemoteStarts(const RemoteStarts&) = delete;
  RemoteStarts& operator=(const RemoteStarts&) = delete;

  // Runs the ForwardedStart in `payload` and calls `reply` once with a
  // ForwardedStartReply (a payload that does not parse is an error reply,
  // never a crash). Any thread; never blocks.
  void serve(std::string payload, std::function<void(Result<std::string>)> reply);

 private:
  void run();
  void start(const std::string& payload, std::function<void(Result<std::string>)> reply);

  Engine& engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::function<void(Result<std::string>)>>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cli
}  // namespace yantra
