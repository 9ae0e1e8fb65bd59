// Owner-only files and a quiet owner key, for real (issue 10, item 9): the
// data dir and everything a `yantra serve` child writes in it — RocksDB's
// files included — are 0700 / 0600 whatever the umask it inherits; a data dir
// made wider by someone else is narrowed at start, with a warning; the owner
// key made at first start is in <data>/bootstrap-key and not on stdout or
// stderr, unless --print-bootstrap-key asks for it.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_process.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using e2e::Api;
using e2e::NodeProcess;
using e2e::Reply;
using nlohmann::json;

namespace fs = std::filesystem;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

// Every entry under `dir` (and `dir` itself) whose group or other bits are
// set, as "path mode" lines; "" when everything is owner-only.
std::string wide_entries(const fs::path& dir, size_t* files = nullptr) {
  std::string out;
  auto check = [&](const fs::path& p) {
    const unsigned mode = mode_of(p);
    if ((mode & 077) != 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04o", mode);
      out += p.string() + " " + buf + "\n";
    }
  };
  check(dir);
  size_t n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    check(entry.path());
    if (entry.is_regular_file()) ++n;
  }
  if (files != nullptr) *files = n;
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

// Runs something that makes RocksDB write (a flow, an execution), then
// stops the node cleanly so that it flushes and closes its files.
void exercise(NodeProcess& node, const std::string& key) {
  Api a(node.port(), key);
  ASSERT_EQ(a.post("/api/v1/flows", e2e::echo_flow("hard")).status, 201);
  Reply run = a.post("/api/v1/flows/hard/run?wait_ms=10000", json{{"input", {{"x", 1}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_TRUE(node.stop()) << node.log();
}

TEST(Hardening, EveryFileAndDirectoryOfTheNodeIsOwnerOnly) {
  const mode_t old = ::umask(022);  // what a shell usually hands down
  NodeProcess node;
  std::string error;
  const bool started = node.start(&error);
  ::umask(old);
  ASSERT_TRUE(started) << error;
  exercise(node, node.key());
  size_t files = 0;
  EXPECT_EQ(wide_entries(node.data_dir(), &files), "");
  EXPECT_GE(files, 5u);  // RocksDB's CURRENT, MANIFEST, OPTIONS, WAL, LOG at least
  EXPECT_EQ(mode_of(node.data_dir()), 0700u);
}

TEST(Hardening, AWiderDataDirIsNarrowedAtStartWithAWarning) {
  e2e::TempDir tmp;
  const fs::path data = tmp.sub("data");
  fs::create_directories(data / "old");
  std::ofstream(data / "notes.txt") << "left by someone";
  fs::permissions(data, fs::perms(0755));
  fs::permissions(data / "old", fs::perms(0775));
  fs::permissions(data / "notes.txt", fs::perms(0644));
  NodeProcess::Options options;
  options.data_dir = data.string();
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  EXPECT_EQ(mode_of(data), 0700u);
  EXPECT_EQ(mode_of(data / "old"), 0700u);
  EXPECT_EQ(mode_of(data / "notes.txt"), 0600u);
  EXPECT_NE(node.log().find("were readable by others; narrowed 3 entries"), std::string::npos)
      << node.log();
  exercise(node, node.key());
  EXPECT_EQ(wide_entries(data), "");
}

TEST(Hardening, TheOwnerKeyGoesToItsFileNotToTheLog) {
  NodeProcess::Options options;
  options.preset_key = false;
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  const fs::path key_file = fs::path(node.data_dir()) / "bootstrap-key";
  const std::string key = read_file(key_file);
  ASSERT_EQ(key.rfind("yk_", 0), 0u) << key;
  EXPECT_EQ(mode_of(key_file), 0600u);
  const std::string log = node.log();  // the node's stdout and stderr
  EXPECT_EQ(log.find(key), std::string::npos) << log;
  EXPECT_NE(log.find(key_file.string()), std::string::npos) << log;
  EXPECT_NE(log.find("--print-bootstrap-key"), std::string::npos) << log;
  // The key in the file is the owner key.
  Api a(node.port(), key);
  EXPECT_EQ(a.get("/api/v1/flows").status, 200);
  exercise(node, key);
  // A restart makes no new key and prints none.
  ASSERT_TRUE(node.start(&error)) << error;
  EXPECT_EQ(read_file(key_file), key);
  EXPECT_EQ(node.log().find(key), std::string::npos);
}

TEST(Hardening, PrintBootstrapKeyPrintsTheKey) {
  NodeProcess::Options options;
  options.preset_key = false;
  options.args = {"--print-bootstrap-key"};
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  const std::string key = read_file(fs::path(node.data_dir()) / "bootstrap-key");
  ASSERT_FALSE(key.empty());
  EXPECT_NE(node.log().find(key), std::string::npos) << node.log();
}

}  // namespace
}  // namespace yantra
