// AppendPipes: the partition logs led on this node share one pipe per
// replica node. While a pipe has a request in flight, what the logs send to
// that node queues up; when the reply comes, everything queued leaves as one
// LogGroup (proto/yantra/v1/log_rpc.proto), which the replica's log server
// writes in one WriteBatch with one sync and answers request by request.
//
// Why: each partition log keeps one append in flight per replica (that is
// what orders its appends, replicated_log.hpp), so with many partitions led
// here a replica received one message, one fsync and one reply per
// partition batch — measured at ~70 context switches per 3-step execution
// on a 3-node cluster, the bulk of its CPU. A pipe turns the appends of all
// partitions that become ready during one round trip into one message and
// one sync (group commit across partitions), and the load decides the group
// size: an idle pipe sends at once, so a lone append waits for nothing.
//
// Each request keeps its own answer: a group's reply is split and every
// `done` gets its own LogReply (or, when the whole group failed — peer down,
// timeout — the same error). A pipe carries at most `max_group_bytes` per
// group (the transport bounds unacknowledged bytes); the rest waits for the
// next one. Order: a request sent after another on the same pipe is served
// after it (the groups of a pipe go one at a time).
//
// Threads: send() from any thread, never blocks, and never calls `done`
// while holding a lock (a `done` may send again). `done` runs on the thread
// that delivered the reply. The destructor fails what is still queued
// (kUnavailable) and sends nothing more; a reply arriving after it still
// reaches its `done`s (the state lives on with the requests in flight).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "base/result.hpp"

namespace yantra::cluster {

class AppendPipes {
 public:
  using Done = std::function<void(Result<std::string>)>;
  // Sends one serialized LogRequest to `node`'s log service; `done` once.
  using Send = std::function<void(const std::string& node, std::string payload, Done done)>;

  explicit AppendPipes(Send send, size_t max_group_bytes = 4u << 20);
  ~AppendPipes();
  AppendPipes(const AppendPipes&) = delete;
  AppendPipes& operator=(const AppendPipes&) = delete;

  // `request` is a serialized LogRequest (an append or commit notice).
  void send(const std::string& node, std::string request, Done done);

  struct Stats {
    uint64_t messages = 0;  // sent to replicas (groups and lone requests)
    uint64_t requests = 0;  // carried by them
  };
  Stats stats() const;

 private:
  struct State;  // shared with the replies in flight
  std::shared_ptr<State> state_;
};

}  // namespace yantra::cluster
