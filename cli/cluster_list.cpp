// ClusterList (cli/cluster_list.hpp): the fan-out of a cluster-wide list of
// executions and its serving side.
//
// A fan-out is one FanOut, shared by the callbacks of its requests; its
// mutex guards the bookkeeping only, never a call out (a request, the
// answer), so a callback that runs at once inside node.request (a peer not
// connected fails without sending) cannot deadlock on it. Calls into the
// node go through Impl::node_mu, which stop() takes to clear the node
// before it is destroyed: a retry sent from a transport callback while the
// node shuts down finds no node and fails, instead of touching a
// transport being destroyed. It is recursive because such a failure calls
// back into a send on the same thread.
#include "cli/cluster_list.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "actors/engine.hpp"
#include "base/errc.hpp"
#include "base/metrics.hpp"
#include "cli/list_merge.hpp"
#include "cluster/node.hpp"
#include "runtime/ids.hpp"
#include "yantra/v1/cluster_list.pb.h"

namespace yantra::cli {
namespace {

using Clock = std::chrono::steady_clock;

// One node's share is one bounded index scan: milliseconds when the node
// is well. 2 s is also the transport's connection timeout, after which a
// hung peer's link drops and requests to it fail at once.
constexpr std::chrono::milliseconds kRequestTimeout{2000};
// Every attempt of one list together (each retry goes to another replica).
constexpr std::chrono::milliseconds kListDeadline{5000};
constexpr int64_t kRetryAfterMs = 1000;
// Requests from other nodes waiting for the worker; beyond, refused (the
// asker tries another replica), so a burst cannot queue without bound.
constexpr size_t kMaxQueued = 64;
constexpr uint32_t kMaxLimit = 1000;  // the route's bound

metrics::Counter& lists(const char* outcome) {
  return metrics::global().counter(
      "yantra_cluster_list_requests_total",
      "Lists of executions through this node, by outcome: local (this node holds every "
      "partition), merged (pages of other nodes merged), unavailable (a partition's holders did "
      "not answer: 503), failed (this node's own store failed)",
      {{"outcome", outcome}});
}

metrics::Counter& retries() {
  static metrics::Counter& c = metrics::global().counter(
      "yantra_cluster_list_retries_total",
      "Nodes that did not answer their share of a list of executions (timed out, refused, "
      "unreachable), whose partitions were asked of the next replica");
  return c;
}

metrics::Counter& served(const char* outcome) {
  return metrics::global().counter(
      "yantra_cluster_list_served_total",
      "Shares of other nodes' lists of executions served here, by outcome: ok, refused (a "
      "partition not held here, a malformed request, the queue full, stopping), failed (the "
      "store failed)",
      {{"outcome", outcome}});
}

metrics::Histogram& fanout_seconds() {
  static metrics::Histogram& h = metrics::global().histogram(
      "yantra_cluster_list_fanout_seconds",
      "Time from asking other nodes for their shares of a list of executions to the answer",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  return h;
}

Status unavailable(const std::string& why) {
  return Status(Errc::kUnavailable, why).with_retry_after_ms(kRetryAfterMs);
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

struct ClusterList::Impl {
  Impl(cluster::ClusterNode& n, Engine& e)
      : engine(e),
        node(&n),
        self(n.node_id()),
        partitions(n.meta().partitions),
        replication(n.meta().replication) {}

  Engine& engine;
  std::recursive_mutex node_mu;
  cluster::ClusterNode* node;  // null once stopped (under node_mu)
  const std::string self;
  const uint32_t partitions;
  const uint32_t replication;

  // The serving side's queue and worker.
  struct Job {
    std::string from;
    std::string payload;
    cluster::Reply reply;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool stopping = false;
  std::thread worker;

  // Whether this node's store holds partition p (under node_mu, node set):
  // it leads p, or the placement names it; before the controller wrote any
  // placement (a cluster's first second), segments open on live nodes, so
  // with no more live nodes than R every node holds every partition.
  bool holds(uint32_t p, const std::map<std::string, cluster::NodeRecord>& live) const {
    if (auto leader = node->leader_of(p); leader && leader->empty()) return true;
    if (auto placement = node->placement(p)) {
      return std::find(placement->replicas.begin(), placement->replicas.end(), self) !=
             placement->replicas.end();
    }
    return live.size() <= replication;
  }

  // The nodes to ask for partition p, in order: its leader (its copy is
  // fresh), then the placement's other live replicas.
  std::vector<std::string> candidates(
      uint32_t p, const std::map<std::string, cluster::NodeRecord>& live) const {
    std::vector<std::string> out;
    auto add = [&](const std::string& n) {
      if (!n.empty() && n != self && std::find(out.begin(), out.end(), n) == out.end()) {
        out.push_back(n);
      }
    };
    if (auto leader = node->leader_of(p)) add(*leader);  // a leader key lives on a lease
    if (auto placement = node->placement(p)) {
      for (const auto& r : placement->replicas) {
        if (live.count(r) != 0) add(r);
      }
    }
    return out;
  }

  void work();
  Result<std::string> answer(const std::string& payload);
};

namespace {

using Groups = std::map<std::string, std::vector<uint32_t>>;

// One list in flight.
struct FanOut {
  std::shared_ptr<ClusterList::Impl> list;
  api::ClusterView::ListQuery query;
  std::function<void(Result<ExecutionPage>)> done;
  Clock::time_point started;
  Clock::time_point deadline;

  std::mutex mu;  // guards what follows; never held across a call out
  std::map<uint32_t, std::vector<std::string>> candidates;  // partitions asked of others
  std::set<std::string> failed;                             // nodes that did not answer
  std::vector<std::string> failures;                        // why, for the 503
  std::vector<ExecutionPage> pages;
  size_t pending = 0;  // requests (and the local share) not answered yet
  bool finished = false;
};

// Under f.mu: the first candidate of each of `parts` that has not failed,
// grouped by node; false with *lacking when a partition has none left.
bool assign(FanOut& f, const std::vector<uint32_t>& parts, Groups& groups, uint32_t* lacking) {
  for (uint32_t p : parts) {
    const auto& c = f.candidates[p];
    auto it = std::find_if(c.begin(), c.end(),
                           [&f](const std::string& n) { return f.failed.count(n) == 0; });
    if (it == c.end()) {
      *lacking = p;
      return false;
    }
    groups[*it].push_back(p);
  }
  return true;
}

void complete(FanOut& f, Result<ExecutionPage> page, const char* outcome) {
  lists(outcome).inc();
  fanout_seconds().observe(std::chrono::duration<double>(Clock::now() - f.started).count());
  f.done(std::move(page));
}

// The end of one piece (a node's page, or the local one): records it and,
// when it was the last, answers. A failed node's partitions go to their
// next candidates (`retry_elsewhere`); a failure of the local share is the
// answer. Called outside f.mu.
void settle(const std::shared_ptr<FanOut>& f, const std::string& node,
            const std::vector<uint32_t>& parts, Result<ExecutionPage> page, bool retry_elsewhere);

void send(const std::shared_ptr<FanOut>& f, const std::string& node, std::vector<uint32_t> parts) {
  v1::ListExecutionsRequest request;
  request.set_tenant(f->query.tenant);
  request.set_flow_id(f->query.flow_id);
  request.set_status(f->query.status);
  request.set_limit(static_cast<uint32_t>(f->query.limit));
  request.set_cursor(f->query.cursor);
  for (uint32_t p : parts) request.add_partitions(p);
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(f->deadline - Clock::now());
  const auto timeout = std::clamp(left, std::chrono::milliseconds(50), kRequestTimeout);
  std::lock_guard gate(f->list->node_mu);
  if (f->list->node == nullptr) {
    return settle(f, node, parts, Status(Errc::kUnavailable, "this node is stopping"), false);
  }
  f->list->node->request(node, "list", request.SerializeAsString(), timeout,
                         [f, node, parts](Result<std::string> answer) {
                           if (!answer.ok()) return settle(f, node, parts, answer.status(), true);
                           v1::ListExecutionsReply reply;
                           if (!reply.ParseFromString(answer.value())) {
                             return settle(f, node, parts,
                                           Status(Errc::kUnavailable, "a malformed answer"), true);
                           }
                           ExecutionPage page;
                           page.items.reserve(static_cast<size_t>(reply.items_size()));
                           for (auto& item : *reply.mutable_items())
                             page.items.push_back(std::move(item));
                           page.next_cursor = std::move(*reply.mutable_next_cursor());
                           settle(f, node, parts, std::move(page), true);
                         });
}

void settle(const std::shared_ptr<FanOut>& f, const std::string& node,
            const std::vector<uint32_t>& parts, Result<ExecutionPage> page, bool retry_elsewhere) {
  Groups retry;
  std::optional<Status> failure;
  bool last = false;
  {
    std::lock_guard lock(f->mu);
    if (f->finished) return;
    --f->pending;
    if (page.ok()) {
      f->pages.push_back(std::move(page.value()));
    } else if (!retry_elsewhere) {
      failure = page.status();
    } else {
      retries().inc();
      f->failed.insert(node);
      f->failures.push_back("node " + node + ": " + page.status().to_string());
      uint32_t lacking = 0;
      if (Clock::now() >= f->deadline) {
        failure = unavailable("the list of executions took longer than " +
                              std::to_string(kListDeadline.count()) +
                              " ms: nodes holding partitions this node lacks did not answer (" +
                              join(f->failures) + "); retry shortly");
      } else if (!assign(*f, parts, retry, &lacking)) {
        failure = unavailable("partition " + std::to_string(lacking) +
                              " of the list of executions: no node holding it answered (" +
                              join(f->failures) + "); retry shortly");
      } else {
        f->pending += retry.size();
      }
    }
    if (failure || f->pending == 0) f->finished = true;
    last = !failure && f->pending == 0;
  }
  if (failure) {
    const bool store = !retry_elsewhere && !failure->is(Errc::kUnavailable);
    return complete(*f, std::move(*failure), store ? "failed" : "unavailable");
  }
  // finished: no other thread touches pages any more.
  if (last) return complete(*f, merge_pages(std::move(f->pages), f->query.limit), "merged");
  for (auto& [n, ps] : retry) send(f, n, std::move(ps));
}

}  // namespace

ClusterList::ClusterList(cluster::ClusterNode& node, Engine& engine)
    : impl_(std::make_shared<Impl>(node, engine)) {
  impl_->worker = std::thread([impl = impl_.get()] { impl->work(); });
}

ClusterList::~ClusterList() {
  stop();
}

void ClusterList::stop() {
  Impl& m = *impl_;
  std::deque<Impl::Job> left;
  {
    std::lock_guard lock(m.mu);
    m.stopping = true;
    left.swap(m.queue);
  }
  m.cv.notify_all();
  if (m.worker.joinable()) m.worker.join();
  for (auto& job : left) {
    served("refused").inc();
    job.reply(Status(Errc::kUnavailable, "node " + m.self + " is stopping"));
  }
  std::lock_guard gate(m.node_mu);
  m.node = nullptr;
}

bool ClusterList::list(const api::ClusterView::ListQuery& query,
                       std::function<void(Result<ExecutionPage>)> done) {
  Impl& m = *impl_;
  std::vector<uint32_t> local;
  std::map<uint32_t, std::vector<std::string>> remote;
  {
    std::lock_guard gate(m.node_mu);
    if (m.node == nullptr) return false;  // stopping: as a single node would
    const auto live = m.node->live_nodes();
    for (uint32_t p = 0; p < m.partitions; ++p) {
      if (m.holds(p, live)) {
        local.push_back(p);
      } else {
        remote[p] = m.candidates(p, live);
      }
    }
  }
  if (remote.empty()) {
    static metrics::Counter& answered_here = lists("local");
    answered_here.inc();
    return false;
  }
  auto f = std::make_shared<FanOut>();
  f->list = impl_;
  f->query = query;
  f->done = std::move(done);
  f->started = Clock::now();
  f->deadline = f->started + kListDeadline;
  f->candidates = std::move(remote);
  Groups groups;
  std::optional<uint32_t> lacking;
  {
    std::lock_guard lock(f->mu);
    std::vector<uint32_t> asked;
    for (const auto& [p, nodes] : f->candidates) asked.push_back(p);
    uint32_t p = 0;
    if (!assign(*f, asked, groups, &p)) {
      lacking = p;
      f->finished = true;
    } else {
      f->pending = groups.size() + (local.empty() ? 0 : 1);
    }
  }
  if (lacking) {
    complete(*f,
             unavailable("partition " + std::to_string(*lacking) +
                         " of the list of executions has no leader and no live replica known "
                         "to this node; retry shortly"),
             "unavailable");
    return true;
  }
  for (auto& [node, parts] : groups) send(f, node, std::move(parts));
  // This node's own partitions meanwhile, from its store, on this thread
  // (as a single node's list), unless the list failed already.
  bool failed = false;
  {
    std::lock_guard lock(f->mu);
    failed = f->finished;
  }
  if (!local.empty() && !failed) {
    settle(f, m.self, local,
           m.engine.list_executions(query.tenant, query.flow_id, query.status, query.limit,
                                    query.cursor, local),
           false);
  }
  return true;
}

void ClusterList::serve(const std::string& from_node, std::string payload, cluster::Reply reply) {
  Impl& m = *impl_;
  const char* refused = nullptr;
  {
    std::lock_guard lock(m.mu);
    if (m.stopping) {
      refused = "is stopping";
    } else if (m.queue.size() >= kMaxQueued) {
      refused = "has too many lists of executions queued";
    } else {
      m.queue.push_back({from_node, std::move(payload), std::move(reply)});
      m.cv.notify_one();
      return;
    }
  }
  served("refused").inc();
  reply(Status(Errc::kUnavailable, "node " + m.self + " " + refused));
}

void ClusterList::Impl::work() {
  std::unique_lock lock(mu);
  for (;;) {
    cv.wait(lock, [this] { return stopping || !queue.empty(); });
    if (stopping) return;  // stop() answers what is left
    Job job = std::move(queue.front());
    queue.pop_front();
    lock.unlock();
    job.reply(answer(job.payload));
    lock.lock();
  }
}

Result<std::string> ClusterList::Impl::answer(const std::string& payload) {
  v1::ListExecutionsRequest request;
  if (!request.ParseFromString(payload) || request.tenant().empty() ||
      request.partitions_size() == 0 || request.limit() == 0 || request.limit() > kMaxLimit ||
      (!request.cursor().empty() && !is_valid_execution_id(request.cursor()))) {
    served("refused").inc();
    return Status(Errc::kInvalidArgument, "a malformed list request");
  }
  std::vector<uint32_t> parts(request.partitions().begin(), request.partitions().end());
  {
    // The worker runs only before stop() cleared the node.
    const auto live = node->live_nodes();
    for (uint32_t p : parts) {
      if (p >= partitions) {
        served("refused").inc();
        return Status(Errc::kInvalidArgument, "partition " + std::to_string(p) + " out of range");
      }
      // The asker's view of the placement is older or newer than ours: its
      // retry goes to another replica.
      if (!holds(p, live)) {
        served("refused").inc();
        return Status(Errc::kUnavailable,
                      "node " + self + " does not hold partition " + std::to_string(p) + " now");
      }
    }
  }
  auto page = engine.list_executions(request.tenant(), request.flow_id(), request.status(),
                                     request.limit(), request.cursor(), parts);
  if (!page.ok()) {
    served("failed").inc();
    return page.status();
  }
  v1::ListExecutionsReply reply;
  for (auto& item : page.value().items) *reply.add_items() = std::move(item);
  reply.set_next_cursor(std::move(page.value().next_cursor));
  static metrics::Counter& ok = served("ok");
  ok.inc();
  return reply.SerializeAsString();
}

}  // namespace yantra::cli
