// Node configuration: precedence (defaults < file < environment), every
// recognised key, and precise errors for unknown keys, bad numbers and bad
// values, all reported at once by validate().
#include "config/node_config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.hpp"

namespace yantra {
namespace {

std::string write_file(const testing::TempDir& dir, const std::string& text) {
  const std::string path = dir.sub("yantra.yaml");
  std::ofstream(path) << text;
  return path;
}

TEST(NodeConfig, DefaultsAreValid) {
  NodeConfig c;
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.durability, "sync");
  EXPECT_TRUE(validate(c).is_ok());
}

TEST(NodeConfig, FileThenEnvironment) {
  testing::TempDir dir;
  auto c = load_config_file(write_file(dir,
                                       "data_dir: /srv/yantra\nlisten: 0.0.0.0:9000\n"
                                       "partitions: 8\ndurability: async\n"
                                       "http_ca_file: /etc/ca.pem\nhttp_threads: 4\n"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->data_dir, "/srv/yantra");
  EXPECT_EQ(c->partitions, 8u);
  EXPECT_EQ(c->durability, "async");
  EXPECT_EQ(c->http_ca_file, "/etc/ca.pem");
  EXPECT_EQ(c->http_threads, 4u);
  auto e = apply_env(
      c.value(),
      {{"YANTRA_LISTEN", "127.0.0.1:7000"}, {"YANTRA_PARTITIONS", "2"}, {"UNRELATED", "x"}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->listen, "127.0.0.1:7000");  // environment wins over the file
  EXPECT_EQ(e->partitions, 2u);
  EXPECT_EQ(e->data_dir, "/srv/yantra");  // untouched keys keep the file's value
}

TEST(NodeConfig, McpStdioServers) {
  testing::TempDir dir;
  auto c = load_config_file(write_file(dir,
                                       "mcp_servers:\n"
                                       "  - id: everything\n"
                                       "    command: node\n"
                                       "    args: [server.js, stdio]\n"
                                       "    env: {TOKEN: abc}\n"
                                       "    tenants: [default, acme]\n"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->mcp_servers.size(), 1u);
  const auto& s = c->mcp_servers[0];
  EXPECT_EQ(s.id, "everything");
  EXPECT_EQ(s.command, "node");
  EXPECT_EQ(s.args, (std::vector<std::string>{"server.js", "stdio"}));
  EXPECT_EQ(s.env.at("TOKEN"), "abc");
  EXPECT_EQ(s.tenants, (std::vector<std::string>{"default", "acme"}));
  EXPECT_TRUE(validate(c.value()).is_ok());

  auto unknown = load_config_file(write_file(dir, "mcp_servers:\n  - id: x\n    url: y\n"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("mcp_servers[0]: unknown key 'url'"),
            std::string::npos);
  NodeConfig bad;
  bad.mcp_servers.push_back({"-x", "", {}, {}, {}});
  bad.mcp_servers.push_back({"ok", "node", {}, {}, {"default"}});
  bad.mcp_servers.push_back({"ok", "node", {}, {}, {"default"}});
  auto v = validate(bad);
  ASSERT_FALSE(v.is_ok());
  std::vector<std::string> paths;
  for (const auto& p : v.details()) paths.push_back(p.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/mcp_servers/0/id", "/mcp_servers/0/command",
                                             "/mcp_servers/0/tenants", "/mcp_servers/2/id"}));
}

TEST(NodeConfig, ErrorsNameTheKey) {
  testing::TempDir dir;
  auto unknown = load_config_file(write_file(dir, "data_dri: /x\n"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), "invalid_config");
  EXPECT_NE(unknown.status().message().find("unknown key 'data_dri'"), std::string::npos);

  auto bad_number = apply_env(NodeConfig{}, {{"YANTRA_PARTITIONS", "four"}});
  ASSERT_FALSE(bad_number.ok());
  EXPECT_NE(bad_number.status().message().find("YANTRA_PARTITIONS"), std::string::npos);

  auto not_a_map = load_config_file(write_file(dir, "- a\n- b\n"));
  ASSERT_FALSE(not_a_map.ok());
  auto missing = load_config_file(dir.sub("nope.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "invalid_config");
}

// The escape hatch for a damaged write-ahead log (docs/operations.md) is
// off unless a file or the environment turns it on, and takes only booleans.
TEST(NodeConfig, AcceptDataLossIsAnExplicitBoolean) {
  testing::TempDir dir;
  EXPECT_FALSE(NodeConfig{}.accept_data_loss);
  auto file = load_config_file(write_file(dir, "accept_data_loss: true\n"));
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_TRUE(file->accept_data_loss);
  auto env_off = apply_env(file.value(), {{"YANTRA_ACCEPT_DATA_LOSS", "false"}});
  ASSERT_TRUE(env_off.ok());
  EXPECT_FALSE(env_off->accept_data_loss);
  auto env_on = apply_env(NodeConfig{}, {{"YANTRA_ACCEPT_DATA_LOSS", "1"}});
  ASSERT_TRUE(env_on.ok());
  EXPECT_TRUE(env_on->accept_data_loss);
  auto bad = apply_env(NodeConfig{}, {{"YANTRA_ACCEPT_DATA_LOSS", "maybe"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "invalid_config");
  EXPECT_NE(bad.status().message().find("YANTRA_ACCEPT_DATA_LOSS"), std::string::npos);
}

TEST(NodeConfig, ValidateReportsEveryProblem) {
  NodeConfig c;
  c.partitions = 0;
  c.durability = "sometimes";
  c.listen = "nowhere";
  Status s = validate(c);
  ASSERT_FALSE(s.is_ok());
  ASSERT_EQ(s.details().size(), 3u);
  EXPECT_EQ(s.details()[0].path, "/partitions");
  EXPECT_EQ(s.details()[1].path, "/durability");
  EXPECT_EQ(s.details()[2].path, "/listen");
  EXPECT_NE(s.details()[2].message.find("'nowhere' is not HOST:PORT"), std::string::npos)
      << s.details()[2].message;
  // A port with trailing junk was accepted before (stoi); now it is not.
  c = NodeConfig{};
  c.listen = "127.0.0.1:80abc";
  EXPECT_FALSE(validate(c).is_ok());
  c.listen = "[::1]:0";  // any free port
  EXPECT_TRUE(validate(c).is_ok());
}

// The per-address HTTP connection limit: default well above ordinary load
// from one client, set by file and environment, 0 allowed (no limit), an
// absurd value refused by name.
TEST(NodeConfig, MaxConnectionsPerAddress) {
  EXPECT_EQ(NodeConfig{}.max_connections_per_address, 1024u);
  testing::TempDir dir;
  auto c = load_config_file(write_file(dir, "max_connections_per_address: 64\n"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->max_connections_per_address, 64u);
  auto e = apply_env(c.value(), {{"YANTRA_MAX_CONNECTIONS_PER_ADDRESS", "0"}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->max_connections_per_address, 0u);
  EXPECT_TRUE(validate(e.value()).is_ok());

  auto bad = apply_env(NodeConfig{}, {{"YANTRA_MAX_CONNECTIONS_PER_ADDRESS", "lots"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("YANTRA_MAX_CONNECTIONS_PER_ADDRESS"), std::string::npos);

  NodeConfig huge;
  huge.max_connections_per_address = 2000000;
  Status s = validate(huge);
  ASSERT_FALSE(s.is_ok());
  ASSERT_EQ(s.details().size(), 1u);
  EXPECT_EQ(s.details()[0].path, "/max_connections_per_address");
}

// The disk-space floor: a file key, YANTRA_MIN_FREE_DISK_MB, a flag (which
// wins, being applied last), and a range that refuses nonsense by name.
TEST(NodeConfig, MinFreeDiskFromEverySourceAndValidated) {
  EXPECT_EQ(NodeConfig{}.min_free_disk_mb, 256u);
  testing::TempDir dir;
  auto c = load_config_file(write_file(dir, "min_free_disk_mb: 512\n"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->min_free_disk_mb, 512u);
  auto e = apply_env(c.value(), {{"YANTRA_MIN_FREE_DISK_MB", "1024"}});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->min_free_disk_mb, 1024u);
  auto f = apply_flag(e.value(), "min_free_disk_mb", "64", "--min-free-disk-mb");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->min_free_disk_mb, 64u);
  EXPECT_TRUE(validate(f.value()).is_ok());

  auto bad_flag = apply_flag(NodeConfig{}, "min_free_disk_mb", "lots", "--min-free-disk-mb");
  ASSERT_FALSE(bad_flag.ok());
  EXPECT_NE(bad_flag.status().message().find("--min-free-disk-mb"), std::string::npos);
  auto bad_env = apply_env(NodeConfig{}, {{"YANTRA_MIN_FREE_DISK_MB", "-5"}});
  ASSERT_FALSE(bad_env.ok());
  EXPECT_NE(bad_env.status().message().find("YANTRA_MIN_FREE_DISK_MB"), std::string::npos);
  for (uint32_t mb : {0u, 15u, 1048577u}) {
    NodeConfig n;
    n.min_free_disk_mb = mb;
    Status s = validate(n);
    ASSERT_FALSE(s.is_ok()) << mb;
    ASSERT_EQ(s.details().size(), 1u);
    EXPECT_EQ(s.details()[0].path, "/min_free_disk_mb");
  }
  NodeConfig edge;
  edge.min_free_disk_mb = 16;
  EXPECT_TRUE(validate(edge).is_ok());
}

// Cluster settings: from the file, YANTRA_* and flags; etcd turns them on
// and then node id, transport address and key file are required, each
// named; without etcd they are refused rather than silently ignored.
TEST(NodeConfig, ClusterSettingsFromEverySourceAndValidated) {
  testing::TempDir dir;
  auto c = load_config_file(write_file(dir,
                                       "etcd: http://127.0.0.1:2379\n"
                                       "node_id: n1\n"
                                       "cluster_listen: 127.0.0.1:9001\n"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->clustered());
  EXPECT_EQ(c->etcd_prefix, "/yantra");
  Status missing = validate(c.value());
  ASSERT_FALSE(missing.is_ok());
  ASSERT_EQ(missing.details().size(), 1u);
  EXPECT_EQ(missing.details()[0].path, "/cluster_key_file");
  auto e = apply_env(c.value(), {{"YANTRA_CLUSTER_KEY_FILE", "/k"},
                                 {"YANTRA_ETCD_PREFIX", "/other"},
                                 {"YANTRA_NODE_ID", "n2"}});
  ASSERT_TRUE(e.ok());
  auto f = apply_flag(e.value(), "advertise_http", "10.0.0.1:8080", "--advertise-http");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->node_id, "n2");
  EXPECT_EQ(f->etcd_prefix, "/other");
  EXPECT_EQ(f->advertise_http, "10.0.0.1:8080");
  EXPECT_TRUE(validate(f.value()).is_ok());

  NodeConfig bad = f.value();
  bad.etcd_prefix = "nope";
  bad.cluster_listen = "9001";
  bad.advertise_http = "10.0.0.1:0";  // peers cannot reach port 0
  Status s = validate(bad);
  ASSERT_EQ(s.details().size(), 3u);
  EXPECT_EQ(s.details()[0].path, "/cluster_listen");
  EXPECT_EQ(s.details()[1].path, "/advertise_http");
  EXPECT_EQ(s.details()[2].path, "/etcd_prefix");

  NodeConfig stray;
  stray.node_id = "n1";  // cluster settings without etcd
  Status t = validate(stray);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.details()[0].path, "/etcd");
  EXPECT_FALSE(NodeConfig{}.clustered());
  EXPECT_TRUE(validate(NodeConfig{}).is_ok());
}

}  // namespace
}  // namespace yantra
