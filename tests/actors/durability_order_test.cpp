// When a step's tool call leaves, relative to the durability of the batch
// that decided it (actors/execution_actor.cpp, runs_before_durable): calls
// of pure actions (core.echo) leave at once, every other call only once its
// decision is durable. The engine runs on a partition log that holds every
// append at a gate until the test opens it, so "durable" is in the test's
// hands: with the gate closed, pure steps must keep producing results, and a
// tool with effects must not be called at all.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "actors/engine.hpp"
#include "storage/log_writer.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;

// Shared by the logs of every partition: appends wait here while closed.
struct Gate {
  std::mutex mu;
  bool open = true;
  // What waits, in arrival order, with the log it is for.
  std::deque<
      std::tuple<storage::PartitionLog*, storage::WriteRequest, storage::PartitionLog::Callback>>
      held;
  size_t held_total = 0;

  void close() {
    std::lock_guard lock(mu);
    open = false;
  }
  void release() {
    decltype(held) out;
    {
      std::lock_guard lock(mu);
      open = true;
      out.swap(held);
    }
    for (auto& [log, req, cb] : out) log->append(std::move(req), std::move(cb));
  }
  size_t total() {
    std::lock_guard lock(mu);
    return held_total;
  }
};

class GatedLog final : public storage::PartitionLog {
 public:
  GatedLog(std::unique_ptr<storage::PartitionLog> inner, std::shared_ptr<Gate> gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}
  void append(storage::WriteRequest request, Callback done) override {
    {
      std::lock_guard lock(gate_->mu);
      if (!gate_->open) {
        ++gate_->held_total;
        gate_->held.emplace_back(inner_.get(), std::move(request), std::move(done));
        return;
      }
    }
    inner_->append(std::move(request), std::move(done));
  }
  void halt() override { inner_->halt(); }
  storage::WriterStats stats() const override { return inner_->stats(); }
  uint32_t partition() const override { return inner_->partition(); }

 private:
  std::unique_ptr<storage::PartitionLog> inner_;
  std::shared_ptr<Gate> gate_;
};

class GatedLogs final : public storage::PartitionLogFactory {
 public:
  explicit GatedLogs(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  Result<std::unique_ptr<storage::PartitionLog>> open(storage::Store& store,
                                                      uint32_t partition) override {
    auto inner = storage::LocalPartitionLogs().open(store, partition);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<storage::PartitionLog>(
        std::make_unique<GatedLog>(std::move(inner.value()), gate_));
  }

 private:
  std::shared_ptr<Gate> gate_;
};

json echo_chain() {
  return json::parse(R"J({
    "id": "pure", "name": "Three echoes",
    "steps": [
      {"id": "a", "type": "action",
       "config": {"tool_id": "core", "action": "echo", "parameters": {"n": 1}},
       "on_success": "b"},
      {"id": "b", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"n": {"$expr": "a.n + 1"}}},
       "on_success": "c"},
      {"id": "c", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"n": {"$expr": "b.n * 10"}}}}
    ],
    "output": {"result": {"$ref": "c.n"}}
  })J");
}

json effect_step() {
  return json::parse(R"J({
    "id": "effect", "name": "One call with effects",
    "steps": [
      {"id": "a", "type": "action",
       "config": {"tool_id": "rec", "action": "work", "parameters": {"v": 7}}}
    ]
  })J");
}

class DurabilityOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gate_ = std::make_shared<Gate>();
    rec_ = std::make_shared<testing::RecordingTool>(4);
    EngineOptions opts;
    opts.data_dir = dir_.str();
    opts.tools.push_back(rec_);
    opts.partition_logs = std::make_shared<GatedLogs>(gate_);
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
    ASSERT_TRUE(engine_->put_flow("default", echo_chain()).ok());
    ASSERT_TRUE(engine_->put_flow("default", effect_step()).ok());
  }
  void TearDown() override {
    gate_->release();
    engine_.reset();
  }

  // Starts `flow` with the gate closed; the id arrives once it is open.
  std::shared_ptr<std::promise<Result<std::string>>> start_gated(const std::string& flow) {
    gate_->close();
    auto started = std::make_shared<std::promise<Result<std::string>>>();
    RunRequest req;
    req.flow_id = flow;
    engine_->start(std::move(req), [started](Result<std::string> id) { started->set_value(id); });
    return started;
  }

  bool wait_held(size_t n, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (gate_->total() < n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  testing::TempDir dir_;
  std::shared_ptr<Gate> gate_;
  std::shared_ptr<testing::RecordingTool> rec_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(DurabilityOrderTest, PureStepsRunAheadOfDurabilityAndCommitInOrder) {
  auto started = start_gated("pure");
  // The start, then one result per step: four appends while nothing is
  // durable (waiting for durability per step would hold it at one).
  ASSERT_TRUE(wait_held(4, 5s)) << "appends held: " << gate_->total();
  auto id_future = started->get_future();
  EXPECT_EQ(id_future.wait_for(50ms), std::future_status::timeout)
      << "a start is answered only once its batch is durable";
  gate_->release();
  ASSERT_EQ(id_future.wait_for(5s), std::future_status::ready);
  auto id = id_future.get();
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto r = engine_->wait(*id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, "completed");
  EXPECT_EQ(r->output, json({{"result", 20}}));
}

TEST_F(DurabilityOrderTest, ACallWithEffectsWaitsUntilItsDecisionIsDurable) {
  auto started = start_gated("effect");
  ASSERT_TRUE(wait_held(1, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(rec_->keys().empty()) << "the tool was called before its decision was durable";
  EXPECT_EQ(gate_->total(), 1u);
  gate_->release();
  auto id_future = started->get_future();
  ASSERT_EQ(id_future.wait_for(5s), std::future_status::ready);
  auto id = id_future.get();
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto r = engine_->wait(*id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, "completed");
  EXPECT_EQ(rec_->keys().size(), 1u);
}

}  // namespace
}  // namespace yantra
