// `yantra cluster init` (cli/cluster_cmd.cpp), the real binary against a
// real etcd the test starts: creates the meta record once, is idempotent
// with the same settings, refuses other settings naming both, and tells
// usage errors (2) and an unreachable etcd (3) apart.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/etcd_process.hpp"
#include "tests/support/process.hpp"

namespace yantra::test {
namespace {

using json = nlohmann::json;

TEST(ClusterCliTest, InitCreatesOnceAndRefusesOtherSettings) {
  EtcdCluster etcd(1);
  std::string error;
  ASSERT_TRUE(etcd.start(&error)) << error;
  const std::string endpoint = etcd.endpoints().at(0);

  auto first = run_process({YANTRA_BIN, "cluster", "init", "--etcd", endpoint, "--prefix", "/t1",
                            "--partitions", "16", "--replication", "3"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  json meta = json::parse(first.out, nullptr, false);
  ASSERT_TRUE(meta.is_object()) << first.out;
  EXPECT_EQ(meta.value("partitions", 0), 16);
  EXPECT_EQ(meta.value("replication", 0), 3);
  EXPECT_EQ(meta.value("write_quorum", 0), 2);
  const std::string cluster_id = meta.value("cluster_id", "");
  EXPECT_EQ(cluster_id.size(), 32u);

  // The same settings again (a retried script): the same cluster.
  auto again = run_process({YANTRA_BIN, "cluster", "init", "--etcd", endpoint, "--prefix", "/t1",
                            "--partitions", "16", "--replication", "3"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out, nullptr, false).value("cluster_id", ""), cluster_id);

  // Other settings on the same prefix: refused, naming what is there.
  auto other = run_process({YANTRA_BIN, "cluster", "init", "--etcd", endpoint, "--prefix", "/t1",
                            "--partitions", "64", "--replication", "3"});
  EXPECT_EQ(other.exit_code, 1) << other.out;
  EXPECT_NE(other.err.find("cluster_exists"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("16"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("64"), std::string::npos) << other.err;

  // Another prefix is another cluster; the endpoint may come from the
  // environment.
  auto env = run_process({YANTRA_BIN, "cluster", "init", "--prefix", "/t2", "--replication", "1"},
                         {{"YANTRA_ETCD", endpoint}});
  ASSERT_EQ(env.exit_code, 0) << env.err;
  json meta2 = json::parse(env.out, nullptr, false);
  EXPECT_EQ(meta2.value("partitions", 0), 64) << "the default";
  EXPECT_EQ(meta2.value("write_quorum", 0), 1);
  EXPECT_NE(meta2.value("cluster_id", ""), cluster_id);
}

TEST(ClusterCliTest, UsageErrorsAndAnUnreachableEtcdHaveTheirOwnExitCodes) {
  auto no_etcd = run_process({YANTRA_BIN, "cluster", "init"}, {{"YANTRA_ETCD", ""}});
  EXPECT_EQ(no_etcd.exit_code, 2) << no_etcd.err;
  auto bad_count = run_process(
      {YANTRA_BIN, "cluster", "init", "--etcd", "http://127.0.0.1:1", "--partitions", "0"});
  EXPECT_EQ(bad_count.exit_code, 2) << bad_count.err;
  EXPECT_NE(bad_count.err.find("partitions"), std::string::npos) << bad_count.err;
  auto bad_url = run_process({YANTRA_BIN, "cluster", "init", "--etcd", "ftp://x"});
  EXPECT_EQ(bad_url.exit_code, 2) << bad_url.err;
  // Nothing listens on this port: unreachable, like a node that is down.
  const uint16_t port = free_loopback_port();
  auto down = run_process(
      {YANTRA_BIN, "cluster", "init", "--etcd", "http://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(down.exit_code, 3) << down.err;
  EXPECT_NE(down.err.find("etcd_unavailable"), std::string::npos) << down.err;
}

}  // namespace
}  // namespace yantra::test
