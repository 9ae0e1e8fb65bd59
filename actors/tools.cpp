// Pools for blocking tools: an actor per tool that owns max_concurrency worker
// threads. The actor queues calls and hands them to the workers; a worker
// runs Tool::invoke (which may block on sockets or child processes) and
// reports back with a message, so neither CAF scheduler threads nor the
// execution actors ever wait on a tool.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "actors/internal/context.hpp"
#include "base/thread_name.hpp"

namespace yantra::detail {
namespace {

class Workers {
 public:
  Workers(std::shared_ptr<Tool> tool, size_t n) : tool_(std::move(tool)) {
    for (size_t i = 0; i < n; ++i)
      threads_.emplace_back([this] {
        name_this_thread("y-tool");
        run();
      });
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(CallPtr call, std::function<void(ToolResult)> done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(std::move(call), std::move(done));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::pair<CallPtr, std::function<void(ToolResult)>> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;  // queued calls are re-dispatched after restart
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      ToolResult r;
      try {
        r = tool_->invoke(*job.first);
      } catch (const std::exception& e) {
        r = ToolResult::failure("tool_exception", e.what(), true);
      } catch (...) {
        r = ToolResult::failure("tool_exception", "unknown exception", true);
      }
      job.second(std::move(r));
    }
  }

  std::shared_ptr<Tool> tool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<CallPtr, std::function<void(ToolResult)>>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A call's result, from a worker thread.
using done_atom = caf::atom_constant<caf::atom("ydone")>;

using tool_pool_impl = tool_actor::extend<caf::reacts_to<done_atom, uint64_t, ToolResult>>;
using Promise = caf::typed_response_promise<ToolResult>;

struct PoolState {
  static inline const char* name = "yantra.tool.pool";
  std::shared_ptr<Workers> workers;
  uint64_t next_ticket = 1;
  std::unordered_map<uint64_t, Promise> waiting;
};

using Self = std::remove_pointer_t<tool_pool_impl::stateful_pointer<PoolState>>;

tool_pool_impl::behavior_type tool_pool(Self* self, std::shared_ptr<Tool> tool) {
  const size_t n = std::max<size_t>(1, tool->max_concurrency());
  self->state.workers = std::make_shared<Workers>(tool, n);
  return {
      [=](invoke_atom, const CallPtr& call) -> caf::result<ToolResult> {
        auto rp = self->make_response_promise<ToolResult>();
        const uint64_t ticket = self->state.next_ticket++;
        self->state.waiting.emplace(ticket, rp);
        auto handle = caf::actor_cast<tool_pool_impl>(self);
        self->state.workers->submit(call, [handle, ticket](ToolResult r) {
          caf::anon_send(handle, done_atom::value, ticket, std::move(r));
        });
        return rp;
      },
      [=](done_atom, uint64_t ticket, ToolResult& r) {
        auto it = self->state.waiting.find(ticket);
        if (it == self->state.waiting.end()) return;
        it->second.deliver(std::move(r));
        self->state.waiting.erase(it);
      },
  };
}

}  // namespace

tool_actor spawn_tool_pool(caf::actor_system& sys, std::shared_ptr<Tool> tool) {
  return sys.spawn(tool_pool, std::move(tool));
}

}  // namespace yantra::detail
