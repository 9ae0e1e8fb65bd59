// The engine's parts that are plain classes (actors/internal/): the bounded
// flow cache and the watchers, in-process, without actors or a store.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/internal/flow_cache.hpp"
#include "actors/internal/watchers.hpp"

namespace yantra::detail {
namespace {

std::shared_ptr<const Flow> flow_named(const std::string& id) {
  auto f = std::make_shared<Flow>();
  f->id = id;
  return f;
}

TEST(FlowCache, NewestVersionAndExplicitVersions) {
  FlowCache cache(16);
  EXPECT_FALSE(cache.find("t", "f", 0).has_value()) << "nothing seen yet";
  cache.put("t", "f", 2, flow_named("v2"));
  cache.put("t", "f", 1, flow_named("v1"));  // an older version read later
  auto latest = cache.find("t", "f", 0);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->first, 2u) << "an older put must not lower the newest version";
  EXPECT_EQ(latest->second->id, "v2");
  EXPECT_EQ(cache.find("t", "f", 1)->second->id, "v1");
  EXPECT_FALSE(cache.find("t", "f", 3).has_value());
  // Tenants and flows are separate keys, even when their names concatenate alike.
  EXPECT_FALSE(cache.find("other", "f", 2).has_value());
  EXPECT_FALSE(cache.find("t", "f2", 0).has_value());
}

TEST(FlowCache, ForgetLatestAfterADeletion) {
  FlowCache cache(16);
  cache.put("t", "f", 1, flow_named("v1"));
  cache.forget_latest("t", "f");
  EXPECT_FALSE(cache.find("t", "f", 0).has_value()) << "newest must be read from the store again";
  EXPECT_TRUE(cache.find("t", "f", 1).has_value()) << "versions are immutable and stay cached";
}

TEST(FlowCache, IsBoundedAndDropsTheLeastRecentlyUsed) {
  FlowCache cache(3);
  for (uint32_t v = 1; v <= 3; ++v) cache.put("t", "f", v, flow_named("v" + std::to_string(v)));
  ASSERT_TRUE(cache.find("t", "f", 1).has_value());  // 1 is now the most recently used
  cache.put("t", "g", 1, flow_named("g1"));          // evicts 2, the least recently used
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.find("t", "f", 1).has_value());
  EXPECT_FALSE(cache.find("t", "f", 2).has_value());
  EXPECT_TRUE(cache.find("t", "f", 3).has_value());
  for (uint32_t v = 0; v < 10000; ++v) cache.put("t", "many", v + 1, flow_named("m"));
  EXPECT_EQ(cache.size(), 3u) << "ten thousand versions later the cache is still bounded";
}

ExecutionResult ended(const std::string& id) {
  return ExecutionResult{id, "completed", nullptr, nullptr, "t", "f"};
}

TEST(Watchers, NotifyCallsEachWatcherOfThatExecutionOnce) {
  Watchers w;
  int a = 0;
  int b = 0;
  w.add("x", [&](Result<ExecutionResult> r) { a += r.ok() && r.value().execution_id == "x"; });
  w.add("x", [&](Result<ExecutionResult>) { ++b; });
  w.add("y", [&](Result<ExecutionResult>) { b += 100; });
  w.notify(ended("x"));
  w.notify(ended("x"));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
}

TEST(Watchers, ExactlyOneOfTakeAndNotifyGetsTheCallback) {
  for (int round = 0; round < 200; ++round) {
    Watchers w;
    std::atomic<int> calls{0};
    const uint64_t token = w.add("x", [&](Result<ExecutionResult>) { ++calls; });
    std::thread notifier([&] { w.notify(ended("x")); });
    Watchers::Fn taken = w.take("x", token);
    notifier.join();
    if (taken) taken(ended("x"));
    ASSERT_EQ(calls.load(), 1) << "round " << round;
  }
}

}  // namespace
}  // namespace yantra::detail
