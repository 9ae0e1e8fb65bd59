// A damaged write-ahead log under a real node (issue 10). A `yantra serve`
// child runs executions to completion and is SIGKILLed, so everything it
// acknowledged is in its WAL only (no flush at a clean shutdown to hide
// it). A byte in the middle of that WAL is flipped. Before the fix the node
// started, said it was ready and served with about half the executions
// gone. Now:
// - it refuses to start: exit status 4, and stderr names the data dir, the
//   damage and the operator's options; the refusal changes no file;
// - with --accept-data-loss it starts, logs what was lost, reports
//   yantra_storage_recovered_with_data_loss 1, and serves what came before
//   the damage;
// - the next ordinary start is clean again.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_process.hpp"
#include "tests/support/wal_file.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using e2e::Api;
using e2e::NodeProcess;
using nlohmann::json;

constexpr int kRuns = 100;
constexpr const char* kMasterKey =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

using yantra::testing::wal::newest_wal;
using yantra::testing::wal::read_file;

// Offsets in the middle of the payloads of the WAL's physical records.
std::vector<size_t> payload_offsets(const std::string& data) {
  std::vector<size_t> out;
  for (const auto& r : yantra::testing::wal::records_of(data)) {
    if (r.length > 0) out.push_back(r.offset + 7 + r.length / 2);
  }
  return out;
}

std::string metric_line(uint16_t port, const std::string& name) {
  e2e::Reply r = e2e::http_request(port, "GET", "/metrics", "", {});
  EXPECT_EQ(r.status, 200);
  std::istringstream lines(r.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  return "";
}

TEST(WalDamageNode, RefusesToStartOnACorruptLogAndStartsWhenTheLossIsAccepted) {
  e2e::TempDir dir;
  NodeProcess::Options options;
  options.data_dir = dir.sub("data");
  std::vector<std::string> ids;
  {
    NodeProcess node(options);
    std::string error;
    ASSERT_TRUE(node.start(&error)) << error;
    Api api(node.port(), node.key());
    e2e::create_flow(api, e2e::echo_flow("wal"));
    for (int i = 0; i < kRuns; ++i) ids.push_back(e2e::start_run(api, "wal", {{"x", i}}));
    for (const auto& [id, view] : e2e::wait_all_ended(api, ids)) {
      ASSERT_EQ(view.value("status", ""), "completed") << id;
    }
    ASSERT_TRUE(node.kill9());
  }

  // Everything acknowledged is in the WAL; damage a record in its middle.
  const std::string wal = newest_wal(options.data_dir);
  ASSERT_FALSE(wal.empty());
  std::string data = read_file(wal);
  const auto payloads = payload_offsets(data);
  ASSERT_GT(payloads.size(), static_cast<size_t>(kRuns)) << "the WAL does not hold the runs";
  data[payloads[payloads.size() / 2]] ^= 0x5a;
  std::ofstream(wal, std::ios::binary | std::ios::trunc) << data;

  // 1. An ordinary start refuses, loudly, and changes nothing.
  e2e::ProcessResult refused =
      e2e::run_process({YANTRA_BIN, "serve", "--data", options.data_dir, "--listen", "127.0.0.1:0"},
                       {{"YANTRA_MASTER_KEY", kMasterKey}}, 60s);
  ASSERT_FALSE(refused.timed_out) << "the node started on a damaged WAL:\n" << refused.out;
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("REFUSING TO START"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(options.data_dir), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("checksum mismatch"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--accept-data-loss"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("docs/operations.md"), std::string::npos) << refused.err;
  EXPECT_EQ(read_file(wal), data) << "a refused start modified the WAL";

  // 2. The operator accepts the loss.
  {
    NodeProcess::Options accepting = options;
    accepting.args = {"--accept-data-loss"};
    NodeProcess node(accepting);
    std::string error;
    ASSERT_TRUE(node.start(&error)) << error;
    EXPECT_EQ(metric_line(node.port(), "yantra_storage_recovered_with_data_loss"),
              "yantra_storage_recovered_with_data_loss 1");
    const std::string log = node.log();
    EXPECT_NE(log.find("DATA LOST"), std::string::npos) << log;
    EXPECT_NE(log.find("checksum mismatch"), std::string::npos) << log;
    EXPECT_TRUE(fs::exists(fs::path(options.data_dir) / "lost+found"));
    Api api(node.port(), node.key());
    int present = 0;
    for (const auto& id : ids) {
      e2e::Reply r = api.get("/api/v1/executions/" + id);
      ASSERT_TRUE(r.status == 200 || r.status == 404) << r.describe();
      if (r.status == 200) ++present;
    }
    std::cout << present << " of " << kRuns << " executions before the damage survive\n";
    EXPECT_GT(present, 0);
    EXPECT_LT(present, kRuns);
    EXPECT_TRUE(node.stop()) << node.log();
  }

  // 3. The damage is behind it: an ordinary start is clean again.
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  EXPECT_EQ(metric_line(node.port(), "yantra_storage_recovered_with_data_loss"),
            "yantra_storage_recovered_with_data_loss 0");
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra
