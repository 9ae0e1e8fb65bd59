// mcp::Client against the real reference server
// (@modelcontextprotocol/server-everything, pinned in tests/mcp/package.json)
// over stdio and over Streamable HTTP on 127.0.0.1: handshake and version,
// paged tools/list, a call, an isError result, a deadline that sends
// notifications/cancelled, cancellation from another thread, and a server
// killed and restarted between calls. Skipped (with a message) when the
// server is not installed: run tests/mcp/install.sh (scripts/test.sh does).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "base/errc.hpp"
#include "mcp/client.hpp"

namespace yantra::mcp {
namespace {

const std::string kDir = std::string(YANTRA_SOURCE_DIR) + "/tests/mcp";
const std::string kServer =
    kDir + "/node_modules/@modelcontextprotocol/server-everything/dist/index.js";

bool installed() {
  return std::filesystem::exists(kServer);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// The reference server in Streamable HTTP mode, bound to 127.0.0.1.
struct HttpServer {
  int port = free_port();
  pid_t pid = -1;
  void start() {
    pid = fork();
    if (pid == 0) {
      setenv("PORT", std::to_string(port).c_str(), 1);
      if (chdir(kDir.c_str()) != 0) _exit(126);
      int devnull = ::open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execlp("node", "node", "-r", "./loopback.cjs", kServer.c_str(), "streamableHttp", nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !can_connect(port); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  void kill9() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~HttpServer() { kill9(); }
};

Clock::time_point in(int ms) {
  return Clock::now() + std::chrono::milliseconds(ms);
}

std::string text_of(const json& result) {
  return result.at("content").at(0).at("text").get<std::string>();
}

void exercise(Client& c) {
  ASSERT_TRUE(c.connect(in(10000)).is_ok());
  EXPECT_EQ(c.protocol_version(), "2025-11-25");
  auto tools = c.list_tools(in(10000));
  ASSERT_TRUE(tools.ok()) << tools.status().to_string();
  std::set<std::string> names;
  for (const auto& t : tools.value()) names.insert(t["name"].get<std::string>());
  EXPECT_TRUE(names.count("echo"));
  EXPECT_TRUE(names.count("get-sum"));
  EXPECT_TRUE(names.count("trigger-long-running-operation"));

  auto echo = c.call_tool("echo", {{"message", "hi"}}, in(10000));
  ASSERT_TRUE(echo.ok()) << echo.status().to_string();
  EXPECT_EQ(text_of(echo.value()), "Echo: hi");
  auto sum = c.call_tool("get-sum", {{"a", 2}, {"b", 40}}, in(10000));
  ASSERT_TRUE(sum.ok());
  EXPECT_NE(text_of(sum.value()).find("42"), std::string::npos);

  auto err = c.call_tool("get-resource-reference", {{"resourceId", 0}}, in(10000));
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err.value().value("isError", false), true);
  EXPECT_NE(text_of(err.value()).find("Invalid resourceId"), std::string::npos);

  // A deadline: the call gives up on time and the session stays usable.
  const auto t0 = Clock::now();
  auto slow =
      c.call_tool("trigger-long-running-operation", {{"duration", 5}, {"steps", 5}}, in(300));
  EXPECT_TRUE(slow.status().is(Errc::kTimeout)) << slow.status().to_string();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(2500));
  // Cancellation from another thread.
  CancelFlag cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel.cancelled = true;
  });
  const auto t1 = Clock::now();
  auto cancelled = c.call_tool("trigger-long-running-operation", {{"duration", 5}, {"steps", 5}},
                               in(10000), &cancel);
  canceller.join();
  EXPECT_EQ(cancelled.status().message(), "cancelled");
  EXPECT_LT(Clock::now() - t1, std::chrono::milliseconds(2500));
  auto again = c.call_tool("echo", {{"message", "still"}}, in(10000));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
}

TEST(McpClient, Stdio) {
  if (!installed()) GTEST_SKIP() << "MCP reference server not installed: run tests/mcp/install.sh";
  StdioTarget t;
  t.command = "node";
  t.args = {kServer, "stdio"};
  auto c = Client::stdio(t);
  exercise(*c);
}

TEST(McpClient, StdioChildRestartsAfterItDies) {
  if (!installed()) GTEST_SKIP() << "MCP reference server not installed: run tests/mcp/install.sh";
  StdioTarget t;
  t.command = "node";
  t.args = {kServer, "stdio"};
  auto c = Client::stdio(t);
  ASSERT_TRUE(c->call_tool("echo", {{"message", "1"}}, in(10000)).ok());
  // Kill our child (found through /proc: the only child of this process).
  pid_t child = -1;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(e.path() / "children");
    pid_t p;
    if (f >> p) child = p;
  }
  ASSERT_GT(child, 0);
  ::kill(child, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Found dead before anything was sent: a new child takes the call.
  auto back = c->call_tool("echo", {{"message", "3"}}, in(10000));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(text_of(back.value()), "Echo: 3");
}

TEST(McpClient, StreamableHttp) {
  if (!installed()) GTEST_SKIP() << "MCP reference server not installed: run tests/mcp/install.sh";
  HttpServer server;
  server.start();
  auto c = Client::http({"http://127.0.0.1:" + std::to_string(server.port) + "/mcp", {}});
  exercise(*c);

  // The server restarts: the old session is unknown to the new process; the
  // client shakes hands again and the call goes through.
  server.kill9();
  auto down = c->call_tool("echo", {{"message", "down"}}, in(2000));
  EXPECT_TRUE(down.status().is(Errc::kUnavailable)) << down.status().to_string();
  server.start();
  ASSERT_TRUE(c->call_tool("echo", {{"message", "warm"}}, in(10000)).ok());
  HttpServer other;  // a fresh server on the same port after a restart with the session alive
  server.kill9();
  other.port = server.port;
  other.start();
  auto back = c->call_tool("echo", {{"message", "back"}}, in(10000));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(text_of(back.value()), "Echo: back");
}

TEST(McpClient, UnreachableServerFailsWithinTheDeadline) {
  auto c = Client::http({"http://127.0.0.1:" + std::to_string(free_port()) + "/mcp", {}});
  const auto t0 = Clock::now();
  auto r = c->list_tools(in(2000));
  EXPECT_TRUE(r.status().is(Errc::kUnavailable)) << r.status().to_string();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace yantra::mcp
