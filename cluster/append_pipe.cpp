// AppendPipes (cluster/append_pipe.hpp): one queue per replica node, one
// message in flight each.
#include "cluster/append_pipe.hpp"

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

metrics::Counter& messages_total() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_append_messages_total",
      "Messages partition leaders sent to replicas (one group or a lone request each)");
  return c;
}

metrics::Counter& requests_total() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_append_requests_total",
      "Appends and commit notices partition leaders sent to replicas, grouped or not");
  return c;
}

}  // namespace

struct AppendPipes::State : std::enable_shared_from_this<AppendPipes::State> {
  struct Item {
    std::string request;
    Done done;
  };
  struct Pipe {
    bool in_flight = false;
    std::vector<Item> queue;
  };

  Send send;
  size_t max_group_bytes = 0;
  std::mutex mu;
  std::map<std::string, Pipe> pipes;
  Stats stats;
  bool closed = false;

  // With mu held, the pipe idle: what it sends next (the pipe is then busy
  // when that is not empty).
  std::vector<Item> take_locked(Pipe& pipe) {
    std::vector<Item> out;
    if (pipe.in_flight || pipe.queue.empty() || closed) return out;
    size_t bytes = 0;
    size_t n = 0;
    while (n < pipe.queue.size() &&
           (n == 0 || bytes + pipe.queue[n].request.size() <= max_group_bytes)) {
      bytes += pipe.queue[n].request.size();
      ++n;
    }
    if (n == pipe.queue.size()) {
      out.swap(pipe.queue);
    } else {
      out.assign(std::make_move_iterator(pipe.queue.begin()),
                 std::make_move_iterator(pipe.queue.begin() + static_cast<std::ptrdiff_t>(n)));
      pipe.queue.erase(pipe.queue.begin(), pipe.queue.begin() + static_cast<std::ptrdiff_t>(n));
    }
    pipe.in_flight = true;
    ++stats.messages;
    stats.requests += out.size();
    messages_total().inc();
    requests_total().inc(out.size());
    return out;
  }

  // Unlocked: sends `items` (a lone request as itself, more as a group).
  void launch(const std::string& node, std::vector<Item> items) {
    std::string payload;
    if (items.size() == 1) {
      payload = std::move(items.front().request);
    } else {
      v1::LogRequest group;
      auto* g = group.mutable_group();
      for (auto& item : items) g->add_requests(std::move(item.request));
      payload = group.SerializeAsString();
    }
    const bool grouped = items.size() > 1;
    auto self = shared_from_this();
    auto shared_items = std::make_shared<std::vector<Item>>(std::move(items));
    send(node, std::move(payload), [self, node, grouped, shared_items](Result<std::string> reply) {
      self->on_reply(node, grouped, std::move(*shared_items), std::move(reply));
    });
  }

  void on_reply(const std::string& node, bool grouped, std::vector<Item> items,
                Result<std::string> reply) {
    // Split the answer first: every request gets its own.
    std::vector<Result<std::string>> answers;
    answers.reserve(items.size());
    if (!reply.ok() || !grouped) {
      for (size_t i = 0; i < items.size(); ++i) answers.push_back(reply);
    } else {
      v1::LogReply out;
      if (!out.ParseFromString(reply.value()) ||
          out.replies_size() != static_cast<int>(items.size())) {
        const Status bad(Errc::kInternalError, "node " + node + " answered a group of " +
                                                   std::to_string(items.size()) +
                                                   " log requests with something else");
        for (size_t i = 0; i < items.size(); ++i) answers.push_back(bad);
      } else {
        for (int i = 0; i < out.replies_size(); ++i) {
          answers.push_back(std::move(*out.mutable_replies(i)));
        }
      }
    }
    // Then the next group, before the answers are handed out (they may
    // take a while, and the replica can already write the next one).
    std::vector<Item> next;
    {
      std::lock_guard lock(mu);
      Pipe& pipe = pipes[node];
      pipe.in_flight = false;
      next = take_locked(pipe);
    }
    if (!next.empty()) launch(node, std::move(next));
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].done) items[i].done(std::move(answers[i]));
    }
  }
};

AppendPipes::AppendPipes(Send send, size_t max_group_bytes) : state_(std::make_shared<State>()) {
  state_->send = std::move(send);
  state_->max_group_bytes = max_group_bytes;
}

AppendPipes::~AppendPipes() {
  std::vector<State::Item> failed;
  {
    std::lock_guard lock(state_->mu);
    state_->closed = true;
    for (auto& [node, pipe] : state_->pipes) {
      for (auto& item : pipe.queue) failed.push_back(std::move(item));
      pipe.queue.clear();
    }
  }
  for (auto& item : failed) {
    if (item.done) item.done(Status(Errc::kUnavailable, "the node's append pipes are closed"));
  }
}

void AppendPipes::send(const std::string& node, std::string request, Done done) {
  std::vector<State::Item> now;
  {
    std::lock_guard lock(state_->mu);
    if (!state_->closed) {
      State::Pipe& pipe = state_->pipes[node];
      pipe.queue.push_back({std::move(request), std::move(done)});
      now = state_->take_locked(pipe);
      done = nullptr;
    }
  }
  if (done) {
    done(Status(Errc::kUnavailable, "the node's append pipes are closed"));
    return;
  }
  if (!now.empty()) state_->launch(node, std::move(now));
}

AppendPipes::Stats AppendPipes::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

}  // namespace yantra::cluster
