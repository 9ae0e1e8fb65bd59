// MCP servers as tools through the real `yantra` binary against the real
// reference server (@modelcontextprotocol/server-everything, pinned in
// tests/mcp/package.json, installed by tests/mcp/install.sh as a CTest
// fixture; the suite skips with a message when it is not installed):
// - over Streamable HTTP (registered through the API; the server bound to
//   127.0.0.1 by tests/mcp/loopback.cjs) and over stdio (from the node's
//   configuration): echo and get-sum as step outputs, a tool that reports
//   isError (the step fails with its text), a slow tool stopped by the
//   step's timeout, the server killed and restarted mid-run;
// - registration: bad bodies (400 naming the field), stdio refused, a
//   duplicate (409), a viewer (403), GET/DELETE/refresh, 404s, a secret
//   header shown as its marker only, an unknown action in a flow (400);
// - kill -9 of the node during MCP calls: after the restart every execution
//   finishes and no completed call ran twice (one StepCompleted per step).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

using namespace std::chrono_literals;

const std::string kMcpDir = std::string(YANTRA_SOURCE_DIR) + "/tests/mcp";
const std::string kServerJs =
    kMcpDir + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";

bool server_installed() {
  return std::filesystem::exists(kServerJs);
}

bool can_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// `node` from PATH (spawn() execs a path, not a name).
std::string node_binary() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/node").c_str(), X_OK) == 0) return dir + "/node";
  }
  return "/usr/bin/node";
}

// The reference server in Streamable HTTP mode on 127.0.0.1:port.
class McpHttpServer {
 public:
  explicit McpHttpServer(uint16_t port = free_loopback_port()) : port_(port) {}
  ~McpHttpServer() { kill9(); }
  bool start() {
    const int log =
        ::open(dir_.sub("mcp.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ =
        detail::spawn({node_binary(), "-r", kMcpDir + "/loopback.cjs", kServerJs, "streamableHttp"},
                      {{"PORT", std::to_string(port_)}}, log, log);
    ::close(log);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (can_connect(port_)) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      detail::wait_exit(pid_, 10s, &status);
      pid_ = -1;
    }
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/mcp"; }

 private:
  TempDir dir_;
  uint16_t port_;
  pid_t pid_ = -1;
};

// The node's configuration: the reference server over stdio as "local",
// for the default tenant.
std::string stdio_config_file() {
  static TempDir dir;
  const std::string path = dir.sub("yantra.yaml");
  std::ofstream(path) << "mcp_servers:\n"
                      << "  - id: local\n"
                      << "    command: node\n"
                      << "    args: [" << kServerJs << ", stdio]\n"
                      << "    tenants: [default]\n";
  return path;
}

json mcp_step(const std::string& id, const std::string& tool, const std::string& action,
              const json& parameters, const std::string& next = "") {
  json s = {{"id", id},
            {"type", "action"},
            {"config", {{"tool_id", tool}, {"action", action}, {"parameters", parameters}}}};
  if (!next.empty()) s["on_success"] = next;
  return s;
}

std::string first_text(const json& output) {
  return output["content"][0].value("text", "");
}

json events_of(Api& a, const std::string& id) {
  return a.get("/api/v1/executions/" + id + "/events?limit=1000").doc()["events"];
}

// The pid of the node's child running the stdio server (from /proc).
pid_t stdio_child_of(pid_t node) {
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(node) + "/task")) {
    std::ifstream f(task.path() / "children");
    pid_t p;
    while (f >> p) {
      std::ifstream cmd("/proc/" + std::to_string(p) + "/cmdline");
      std::stringstream ss;
      ss << cmd.rdbuf();
      if (ss.str().find("server-everything") != std::string::npos) return p;
    }
  }
  return -1;
}

class McpTest : public NodeSuite<McpTest> {
 public:
  static NodeProcess::Options node_options() {
    NodeProcess::Options o;
    o.args = {"--config", stdio_config_file()};
    return o;
  }
  static void SetUpTestSuite() {
    if (!server_installed()) return;
    http_ = new McpHttpServer();
    http_started_ = http_->start();
    NodeSuite<McpTest>::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    if (!server_installed()) return;
    NodeSuite<McpTest>::TearDownTestSuite();
    delete http_;
    http_ = nullptr;
  }
  void SetUp() override {
    if (!server_installed()) {
      GTEST_SKIP() << "the MCP reference server is not installed (tests/mcp/install.sh; needs npm)";
    }
    NodeSuite<McpTest>::SetUp();
    ASSERT_TRUE(http_started_) << "the MCP reference server did not start";
  }

  // Registers the HTTP server as `id` (once per id), expecting it ready.
  static void register_http(const std::string& id) {
    Api a = api();
    if (a.get("/api/v1/mcp/servers/" + id).status == 200) return;
    Reply r = a.post("/api/v1/mcp/servers",
                     json{{"id", id}, {"transport", "streamable_http"}, {"url", http_->url()}});
    ASSERT_EQ(r.status, 201) << r.describe();
    ASSERT_EQ(r.doc().value("state", ""), "ready") << r.body;
  }
  static json wait_server_ready(const std::string& id) {
    Api a = api();
    json last;
    for (int i = 0; i < 200; ++i) {
      last = a.get("/api/v1/mcp/servers/" + id).doc();
      if (last.value("state", "") == "ready") return last;
      std::this_thread::sleep_for(50ms);
    }
    return last;
  }

  static inline McpHttpServer* http_ = nullptr;
  static inline bool http_started_ = false;
};

// echo -> get-sum -> a tool that fails, over one transport (tool id).
void calls_and_errors(Api a, const std::string& tool, const std::string& prefix) {
  create_flow(a, {{"id", prefix + "-calls"},
                  {"steps",
                   {mcp_step("say", tool, "echo", {{"message", "hi " + prefix}}, "add"),
                    mcp_step("add", tool, "get-sum", {{"a", 2}, {"b", 40}})}},
                  {"output", {{"say", {{"$ref", "say"}}}, {"add", {{"$ref", "add"}}}}}});
  Reply run = a.post("/api/v1/flows/" + prefix + "-calls/run?wait_ms=20000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  const json done = run.doc();
  ASSERT_EQ(done.value("status", ""), "completed") << run.body;
  EXPECT_EQ(first_text(done["output"]["say"]), "Echo: hi " + prefix) << run.body;
  EXPECT_EQ(done["output"]["say"]["isError"], false);
  EXPECT_NE(first_text(done["output"]["add"]).find("is 42"), std::string::npos) << run.body;

  // isError: the step fails with the tool's text, not retried.
  create_flow(a,
              {{"id", prefix + "-error"},
               {"steps", {mcp_step("ref", tool, "get-resource-reference", {{"resourceId", 0}})}}});
  Reply failed = a.post("/api/v1/flows/" + prefix + "-error/run?wait_ms=20000", json::object());
  ASSERT_EQ(failed.status, 200) << failed.describe();
  EXPECT_EQ(failed.doc().value("status", ""), "failed") << failed.body;
  EXPECT_EQ(failed.doc()["error"].value("code", ""), "mcp_tool_error") << failed.body;
  EXPECT_NE(failed.doc()["error"].value("message", "").find("Invalid resourceId: 0"),
            std::string::npos)
      << failed.body;

  // A slow tool (10 s) under a 500 ms step timeout: stopped on time.
  json slow =
      mcp_step("slow", tool, "trigger-long-running-operation", {{"duration", 10}, {"steps", 10}});
  slow["config"]["timeout_ms"] = 500;
  create_flow(a, {{"id", prefix + "-slow"}, {"steps", {slow}}});
  const auto t0 = std::chrono::steady_clock::now();
  Reply timed = a.post("/api/v1/flows/" + prefix + "-slow/run?wait_ms=20000", json::object());
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(timed.status, 200) << timed.describe();
  EXPECT_NE(timed.doc().value("status", ""), "completed") << timed.body;
  EXPECT_NE(timed.doc()["error"].value("code", "").find("timeout"), std::string::npos)
      << timed.body;
  EXPECT_LT(took, 5s) << timed.body;
  // The server is still usable after the cancelled call.
  Reply again = a.post("/api/v1/flows/" + prefix + "-calls/run?wait_ms=20000", json::object());
  EXPECT_EQ(again.doc().value("status", ""), "completed") << again.body;
}

TEST_F(McpTest, StreamableHttpCallsErrorsAndTimeouts) {
  register_http("everything");
  Api a = api();
  Reply tool = a.get("/api/v1/tools/mcp:everything");
  ASSERT_EQ(tool.status, 200) << tool.describe();
  EXPECT_EQ(tool.doc().value("kind", ""), "mcp");
  EXPECT_EQ(tool.doc().value("scope", ""), "tenant");
  bool saw_sum = false;
  const json tool_doc = tool.doc();
  for (const auto& act : tool_doc["actions"]) {
    if (act.value("name", "") != "get-sum") continue;
    saw_sum = true;
    EXPECT_EQ(act["input_schema"]["required"], json::array({"a", "b"})) << act.dump();
    EXPECT_TRUE(act.value("idempotent", false));    // annotations.idempotentHint
    EXPECT_FALSE(act.value("side_effects", true));  // annotations.readOnlyHint
  }
  EXPECT_TRUE(saw_sum) << tool.body;
  const json view = a.get("/api/v1/mcp/servers/everything").doc();
  EXPECT_EQ(view.value("protocol_version", ""), "2025-11-25") << view.dump();
  EXPECT_EQ(view.value("source", ""), "api");
  calls_and_errors(a, "mcp:everything", "http");
}

TEST_F(McpTest, StdioFromTheConfiguration) {
  const json view = wait_server_ready("local");
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump();
  EXPECT_EQ(view.value("source", ""), "config");
  EXPECT_EQ(view.value("transport", ""), "stdio");
  Api a = api();
  // Configured by the operator: not deletable through the API.
  EXPECT_EQ(a.del("/api/v1/mcp/servers/local").status, 409);
  calls_and_errors(a, "mcp:local", "stdio");
}

// A flow: echo, a delay (during which the server dies and comes back), echo.
json restart_flow(const std::string& id, const std::string& tool) {
  return {{"id", id},
          {"steps",
           {mcp_step("before", tool, "echo", {{"message", "before"}}, "pause"),
            {{"id", "pause"},
             {"type", "delay"},
             {"config", {{"duration_ms", 1500}}},
             {"on_success", "after"}},
            mcp_step("after", tool, "echo", {{"message", "after"}})}},
          {"output", {{"after", {{"$ref", "after"}}}}}};
}

TEST_F(McpTest, HttpServerRestartedMidRun) {
  register_http("restarting");
  Api a = api();
  create_flow(a, restart_flow("http-restart", "mcp:restarting"));
  const std::string id = start_run(a, "http-restart");
  ASSERT_EQ(wait_status(a, id, "waiting").value("status", ""), "waiting");
  http_->kill9();
  ASSERT_TRUE(http_->start());  // a new process: the old session is gone
  const json done = wait_finished(a, id, 20s);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(first_text(done["output"]["after"]), "Echo: after");
}

TEST_F(McpTest, StdioServerKilledMidRun) {
  ASSERT_EQ(wait_server_ready("local").value("state", ""), "ready");
  Api a = api();
  create_flow(a, restart_flow("stdio-restart", "mcp:local"));
  const std::string id = start_run(a, "stdio-restart");
  ASSERT_EQ(wait_status(a, id, "waiting").value("status", ""), "waiting");
  const pid_t child = stdio_child_of(node().pid());
  ASSERT_GT(child, 0) << "no stdio server child found";
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  const json done = wait_finished(a, id, 20s);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(first_text(done["output"]["after"]), "Echo: after");
  EXPECT_NE(stdio_child_of(node().pid()), child) << "the node started a new child";
}

TEST_F(McpTest, BadRegistrationsAre4xx) {
  Api a = api();
  const std::string url = http_->url();
  struct Case {
    json body;
    std::string pointer;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {json::array(), "", "object"},
      {{{"transport", "streamable_http"}, {"url", url}}, "/id", "required"},
      {{{"id", "-bad"}, {"transport", "streamable_http"}, {"url", url}}, "/id", "must match"},
      {{{"id", "x"}, {"transport", "stdio"}, {"url", url}}, "/transport", "operator"},
      {{{"id", "x"}, {"transport", "sse"}, {"url", url}}, "/transport", "streamable_http"},
      {{{"id", "x"}, {"transport", "streamable_http"}}, "/url", "required"},
      {{{"id", "x"}, {"transport", "streamable_http"}, {"url", "ftp://127.0.0.1/mcp"}},
       "/url",
       "http"},
      {{{"id", "x"}, {"transport", "streamable_http"}, {"url", url}, {"headers", "x"}},
       "/headers",
       "object"},
      {{{"id", "x"}, {"transport", "streamable_http"}, {"url", url}, {"headers", {{"X-N", 5}}}},
       "/headers/X-N",
       "$secret"},
      {{{"id", "x"},
        {"transport", "streamable_http"},
        {"url", url},
        {"headers", {{"Mcp-Session-Id", "s"}}}},
       "/headers/Mcp-Session-Id",
       "transport"},
      {{{"id", "x"}, {"transport", "streamable_http"}, {"url", url}, {"command", "sh"}},
       "/command",
       "unknown"},
  };
  for (const auto& c : cases) {
    Reply r = a.post("/api/v1/mcp/servers", c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << ": " << r.describe();
    EXPECT_NE(r.body.find(c.needle), std::string::npos) << c.body.dump() << ": " << r.body;
    if (!c.pointer.empty()) {
      bool found = false;
      for (const auto& d : r.doc()["error"].value("details", json::array())) {
        found = found || d.value("path", "") == c.pointer;
      }
      EXPECT_TRUE(found) << c.body.dump() << ": " << r.body;
    }
  }
  EXPECT_EQ(a.get("/api/v1/mcp/servers/nope").status, 404);
  EXPECT_EQ(a.del("/api/v1/mcp/servers/nope").status, 404);
  EXPECT_EQ(a.post("/api/v1/mcp/servers/nope/refresh", json::object()).status, 404);
  EXPECT_EQ(a.get("/api/v1/mcp/servers?x=1").status, 400);

  // A viewer may look but not register.
  Reply key = a.post("/api/v1/keys", json{{"role", "viewer"}, {"name", "mcp viewer"}});
  ASSERT_EQ(key.status, 201) << key.describe();
  Api viewer(port(), key.doc().value("secret", ""));
  EXPECT_EQ(viewer.get("/api/v1/mcp/servers").status, 200);
  EXPECT_EQ(viewer
                .post("/api/v1/mcp/servers",
                      json{{"id", "v"}, {"transport", "streamable_http"}, {"url", url}})
                .status,
            403);
}

TEST_F(McpTest, LifecycleSecretsAndUnknownActions) {
  Api a = api();
  const std::string url = http_->url();
  // A header from a secret that is not set yet: registered, but failed.
  Reply r = a.post("/api/v1/mcp/servers",
                   json{{"id", "guarded"},
                        {"transport", "streamable_http"},
                        {"url", url},
                        {"headers", {{"Authorization", {{"$secret", "MCP_TOKEN"}}}}}});
  ASSERT_EQ(r.status, 201) << r.describe();
  EXPECT_EQ(r.doc().value("state", ""), "failed") << r.body;
  EXPECT_NE(r.doc().value("last_error", "").find("MCP_TOKEN"), std::string::npos) << r.body;
  EXPECT_EQ(a.post("/api/v1/mcp/servers",
                   json{{"id", "guarded"}, {"transport", "streamable_http"}, {"url", url}})
                .status,
            409);
  const std::string value = "Bearer tok-4f1c9e7a2b";
  ASSERT_EQ(a.put("/api/v1/secrets/MCP_TOKEN", json{{"value", value}}).status, 201);
  Reply refreshed = a.post("/api/v1/mcp/servers/guarded/refresh", json::object());
  ASSERT_EQ(refreshed.status, 200) << refreshed.describe();
  EXPECT_EQ(refreshed.doc().value("state", ""), "ready") << refreshed.body;
  Reply shown = a.get("/api/v1/mcp/servers/guarded");
  EXPECT_EQ(shown.doc()["headers"]["Authorization"], json({{"$secret", "MCP_TOKEN"}}))
      << shown.body;
  EXPECT_EQ(shown.body.find(value), std::string::npos);
  EXPECT_EQ(a.get("/api/v1/mcp/servers").body.find(value), std::string::npos);
  bool listed = false;
  const json servers = a.get("/api/v1/mcp/servers").doc();
  for (const auto& s : servers["servers"]) {
    listed = listed || s.value("id", "") == "guarded";
  }
  EXPECT_TRUE(listed);

  // An action the server does not list: refused when the flow is stored.
  Reply bad =
      a.post("/api/v1/flows",
             json{{"id", "mcp-unknown-action"},
                  {"steps", {mcp_step("x", "mcp:guarded", "no-such-tool", json::object())}}});
  EXPECT_EQ(bad.status, 400) << bad.describe();
  EXPECT_NE(bad.body.find("no-such-tool"), std::string::npos) << bad.body;

  // Deleted: the tool goes with it.
  EXPECT_EQ(a.del("/api/v1/mcp/servers/guarded").status, 204);
  EXPECT_EQ(a.get("/api/v1/mcp/servers/guarded").status, 404);
  EXPECT_EQ(a.get("/api/v1/tools/mcp:guarded").status, 404);
  Reply gone = a.post("/api/v1/flows",
                      json{{"id", "mcp-gone"},
                           {"steps", {mcp_step("x", "mcp:guarded", "echo", {{"message", "m"}})}}});
  EXPECT_EQ(gone.status, 400) << gone.describe();
}

// Its own node (it is killed) and its own HTTP server.
TEST(McpKill9, EveryExecutionFinishesAndNoCompletedCallRunsTwice) {
  if (!server_installed()) GTEST_SKIP() << "the MCP reference server is not installed";
  McpHttpServer server;
  ASSERT_TRUE(server.start());
  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api a(node.port(), node.key());
  Reply reg = a.post("/api/v1/mcp/servers",
                     json{{"id", "ev"}, {"transport", "streamable_http"}, {"url", server.url()}});
  ASSERT_EQ(reg.status, 201) << reg.describe();
  ASSERT_EQ(reg.doc().value("state", ""), "ready") << reg.body;
  json flow = {{"id", "mcp-crash"},
               {"steps",
                {mcp_step("one", "mcp:ev", "echo", {{"message", "one"}}, "sum"),
                 mcp_step("sum", "mcp:ev", "get-sum", {{"a", 1}, {"b", 2}}, "slow"),
                 mcp_step("slow", "mcp:ev", "trigger-long-running-operation",
                          {{"duration", 0.4}, {"steps", 2}}, "two"),
                 mcp_step("two", "mcp:ev", "echo", {{"message", "two"}})}},
               {"output", {{"two", {{"$ref", "two"}}}}}};
  create_flow(a, flow);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(start_run(a, "mcp-crash"));
  std::this_thread::sleep_for(300ms);  // calls in flight: some done, some running
  ASSERT_TRUE(node.kill9());
  ASSERT_TRUE(node.start(&error)) << error;
  Api after(node.port(), node.key());
  auto views = wait_all_ended(after, ids, 60s);
  for (const auto& id : ids) {
    ASSERT_EQ(views[id].value("status", ""), "completed") << id << ": " << views[id].dump();
    std::map<std::string, int> completed;
    for (const auto& e : events_of(after, id)) {
      if (e["type"] == "step_completed") ++completed[e["data"].value("path", "")];
    }
    for (const auto& step : {"one", "sum", "slow", "two"}) {
      EXPECT_EQ(completed[step], 1) << id << " step " << step;
    }
  }
}

}  // namespace
}  // namespace yantra::e2e
