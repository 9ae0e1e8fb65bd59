// AuditRelay over a real engine that leads its partitions on local logs
// (what the cluster hands it, minus the replication): records reach their
// tenant's home partition chain exactly once even when the answers of
// committed batches are lost and the batches resent, records wait while a
// partition has no leader, and a relayed batch that does not parse is
// refused.
#include "cluster/audit_relay.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "actors/engine.hpp"
#include "actors/internal/parts.hpp"
#include "base/errc.hpp"
#include "storage/audit_log.hpp"
#include "storage/log_writer.hpp"
#include "tests/test_util.hpp"

namespace yantra::cluster {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kPartitions = 4;

class AuditRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions opts;
    opts.data_dir = dir_.str();
    opts.partitions = kPartitions;
    opts.lead_all_partitions = false;
    auto e = Engine::open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e.value());
    for (uint32_t p = 0; p < kPartitions; ++p) {
      Status s = engine_->lead_partition(
          p, std::make_unique<storage::LogWriter>(*detail::parts_of(*engine_).store, p));
      ASSERT_TRUE(s.is_ok()) << s.to_string();
    }
  }

  static AuditEntry entry(const std::string& tenant, int i) {
    AuditEntry e;
    e.time_ms = 1000 + i;
    e.tenant = tenant;
    e.role = "admin";
    e.action = "flow.create";
    e.resource = "/api/v1/flows";
    e.outcome = "ok";
    e.request_id = "r" + std::to_string(i);
    return e;
  }

  storage::AuditLog& audit() { return *detail::parts_of(*engine_).audit; }

  void expect_chain(const std::string& tenant, uint64_t records) {
    auto chains = audit().chains(tenant);
    ASSERT_TRUE(chains.ok());
    EXPECT_EQ(chains.value(), std::vector<storage::AuditChainPartition>{AuditRelay::home_partition(
                                  tenant, kPartitions)})
        << tenant;
    auto report = audit().verify_all(tenant);
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << report->reason;
    EXPECT_EQ(report->records, records) << tenant;
  }

  testing::TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(AuditRelayTest, LostAnswersAreResentAndRecordedOnce) {
  // The "leader" is a second relay over the same engine (the transport's
  // "audit" service); the answers of its first three batches are lost
  // after they were committed, as a timeout or a dying leader would lose them.
  AuditRelay leader(*engine_, kPartitions, "leader", {});
  std::atomic<int> sent{0};
  AuditRelay::Routes routes;
  routes.leader_of = [](uint32_t) { return std::optional<std::string>("leader"); };
  routes.send = [&](const std::string& node, std::string payload, std::chrono::milliseconds,
                    std::function<void(Result<std::string>)> done) {
    EXPECT_EQ(node, "leader");
    const int n = ++sent;
    leader.serve(std::move(payload), [n, done](Result<std::string> r) {
      if (n <= 3 && r.ok()) return done(Status(Errc::kTimeout, "the answer was lost"));
      done(std::move(r));
    });
  };
  AuditRelayOptions options;
  options.retry = 20ms;
  options.max_batch = 8;
  AuditRelay relay(*engine_, kPartitions, "node-a", routes, options);
  for (int i = 0; i < 30; ++i) {
    relay.append(entry("acme", i));
    relay.append(entry("beta", i));
  }
  ASSERT_TRUE(relay.flush(10s));
  EXPECT_GT(sent.load(), 3);
  expect_chain("acme", 30);
  expect_chain("beta", 30);
}

TEST_F(AuditRelayTest, RecordsWaitForALeaderThenGoToThisNodesEngine) {
  std::atomic<bool> elected{false};
  AuditRelay::Routes routes;
  routes.leader_of = [&](uint32_t) {
    return elected.load() ? std::optional<std::string>("") : std::nullopt;  // "" = this node
  };
  routes.send = [](const std::string&, std::string, std::chrono::milliseconds,
                   std::function<void(Result<std::string>)> done) {
    done(Status(Errc::kInternalError, "no remote node in this test"));
  };
  AuditRelayOptions options;
  options.retry = 20ms;
  AuditRelay relay(*engine_, kPartitions, "node-a", routes, options);
  for (int i = 0; i < 5; ++i) relay.append(entry("acme", i));
  EXPECT_FALSE(relay.flush(200ms));  // no leader yet
  elected = true;
  ASSERT_TRUE(relay.flush(10s));
  expect_chain("acme", 5);
}

TEST_F(AuditRelayTest, AMalformedRelayedBatchIsRefused) {
  AuditRelay leader(*engine_, kPartitions, "leader", {});
  const std::string good = AuditRelay::encode(1, "node-a/1", 1, {entry("acme", 1)});
  ASSERT_TRUE(AuditRelay::decode(good).ok());
  for (const std::string& bad :
       {std::string(), std::string("xx"), good.substr(0, good.size() - 1), good + "x",
        AuditRelay::encode(1, "", 1, {entry("acme", 1)}), AuditRelay::encode(1, "s", 1, {})}) {
    EXPECT_FALSE(AuditRelay::decode(bad).ok()) << bad.size();
    std::promise<Status> answer;
    leader.serve(bad, [&answer](Result<std::string> r) { answer.set_value(r.status()); });
    EXPECT_EQ(answer.get_future().get().code(), "invalid_argument");
  }
  // A partition this engine does not have.
  std::promise<Status> answer;
  leader.serve(AuditRelay::encode(9, "node-a/1", 1, {entry("acme", 1)}),
               [&answer](Result<std::string> r) { answer.set_value(r.status()); });
  EXPECT_EQ(answer.get_future().get().code(), "invalid_argument");
  EXPECT_TRUE(audit().chains("acme")->empty());
}

}  // namespace
}  // namespace yantra::cluster
