// FlowStore against a real RocksDB: dense versions per flow, neighbours
// sharing a byte prefix ("f" vs "fa", tenant "acme" vs "acmex") with their
// own series, concurrent puts, listings at the latest version with
// tombstones skipped.
#include "storage/flow_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::make_flow;
using testing::open_store;
using testing::ScopedDir;

TEST(FlowStoreTest, PutFlowIncrementsVersionsAndGetFlowFindsThem) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->flows().get("acme", "f")->has_value());
  EXPECT_EQ(*store->flows().put(make_flow("acme", "f", "v1")), 1u);
  EXPECT_EQ(*store->flows().put(make_flow("acme", "f", "v2")), 2u);
  EXPECT_EQ(*store->flows().put(make_flow("acme", "f", "v3")), 3u);
  // Neighbours that share a byte prefix with (acme, f) have their own series.
  EXPECT_EQ(*store->flows().put(make_flow("acme", "fa", "other")), 1u);
  EXPECT_EQ(*store->flows().put(make_flow("acmex", "f", "other")), 1u);
  EXPECT_EQ(*store->flows().put(make_flow("acme", "e", "other")), 1u);

  auto latest = store->flows().get("acme", "f");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->version(), 3u);
  EXPECT_EQ((*latest)->definition_json(), "v3");
  auto second = store->flows().get("acme", "f", 2);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->version(), 2u);
  EXPECT_EQ((*second)->definition_json(), "v2");
  EXPECT_FALSE(store->flows().get("acme", "f", 4)->has_value());
  EXPECT_FALSE(store->flows().get("acme", "g")->has_value());
  EXPECT_FALSE(store->flows().get("other", "f")->has_value());
  EXPECT_EQ((*store->flows().get("acme", "fa"))->definition_json(), "other");

  EXPECT_EQ(store->flows().put(make_flow(std::string("ac\0me", 5), "f", "x")).status().code(),
            "invalid_argument");
  EXPECT_EQ(store->flows().put(make_flow("acme", "", "x")).status().code(), "invalid_argument");
  EXPECT_EQ(store->flows().get("acme", std::string("f\0", 2)).status().code(), "invalid_argument");
}

// A cluster node installs versions numbered in etcd: at their own number,
// twice harmlessly, and put() continues after the highest one.
TEST(FlowStoreTest, PutVersionStoresAtItsOwnNumberIdempotently) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto v2 = make_flow("acme", "f", "two");
  v2.set_version(2);
  ASSERT_TRUE(store->flows().put_version(v2).is_ok());
  ASSERT_TRUE(store->flows().put_version(v2).is_ok());
  auto v1 = make_flow("acme", "f", "one");
  v1.set_version(1);
  ASSERT_TRUE(store->flows().put_version(v1).is_ok());
  auto all = store->flows().versions("acme", "f");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].definition_json(), "one");
  EXPECT_EQ((*all)[1].definition_json(), "two");
  EXPECT_EQ((*store->flows().get("acme", "f"))->version(), 2u);
  EXPECT_EQ(*store->flows().put(make_flow("acme", "f", "three")), 3u);
  auto zero = make_flow("acme", "f", "x");
  zero.set_version(0);
  EXPECT_EQ(store->flows().put_version(zero).code(), "invalid_argument");
}

TEST(FlowStoreTest, ConcurrentPutFlowYieldsDistinctDenseVersions) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  constexpr int kThreads = 4;
  constexpr int kPuts = 25;
  std::vector<std::vector<uint32_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        auto v = store->flows().put(make_flow("acme", "hot", std::to_string(t)));
        if (v.ok()) got[t].push_back(*v);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint32_t> all;
  for (const auto& g : got) {
    EXPECT_EQ(g.size(), static_cast<size_t>(kPuts));
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
    all.insert(g.begin(), g.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPuts));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint32_t>(kThreads * kPuts));
  EXPECT_EQ((*store->flows().get("acme", "hot"))->version(),
            static_cast<uint32_t>(kThreads * kPuts));
}

std::vector<std::string> names(const std::vector<v1::FlowVersion>& flows) {
  std::vector<std::string> out;
  for (const auto& f : flows) {
    out.push_back(f.tenant() + "/" + f.flow_id() + "@" + std::to_string(f.version()));
  }
  return out;
}

// list() and list_all() show each flow at its latest version and skip a flow
// whose latest version is a tombstone; versions() shows the whole history.
// Tenant "ab" never lists a flow of "abc" (the tenant ends in 0x00 in the key).
TEST(FlowStoreTest, ListingsShowLatestVersionsAndSkipTombstones) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  FlowStore& flows = store->flows();
  ASSERT_TRUE(flows.put(make_flow("ab", "f", "1")).ok());
  ASSERT_TRUE(flows.put(make_flow("ab", "f", "2")).ok());
  ASSERT_TRUE(flows.put(make_flow("ab", "g", "1")).ok());
  ASSERT_TRUE(flows.put(make_flow("abc", "f", "1")).ok());
  ASSERT_TRUE(flows.put(make_flow("a", "z", "1")).ok());
  v1::FlowVersion tomb = make_flow("ab", "g", "");
  tomb.set_deleted(true);
  ASSERT_TRUE(flows.put(tomb).ok());

  EXPECT_EQ(names(*flows.list("ab")), std::vector<std::string>{"ab/f@2"});
  EXPECT_EQ(names(*flows.list("abc")), std::vector<std::string>{"abc/f@1"});
  EXPECT_TRUE(flows.list("b")->empty());
  EXPECT_EQ(names(*flows.list_all()), (std::vector<std::string>{"a/z@1", "ab/f@2", "abc/f@1"}));
  EXPECT_EQ(names(*flows.versions("ab", "g")), (std::vector<std::string>{"ab/g@1", "ab/g@2"}));
  EXPECT_TRUE((*flows.get("ab", "g"))->deleted());

  // A revived flow lists again, at its new version.
  ASSERT_TRUE(flows.put(make_flow("ab", "g", "3")).ok());
  EXPECT_EQ(names(*flows.list("ab")), (std::vector<std::string>{"ab/f@2", "ab/g@3"}));
}

}  // namespace
}  // namespace yantra::storage
