// Tests of the `http` tool against a real server on 127.0.0.1 (plain and
// TLS, see tests/http_test_server.hpp): parameters, result shape, the failure
// codes and their retriability (what the engine's retry logic acts on),
// timeouts, connection pooling and TLS verification. The last test runs the
// tool inside an Engine to check that retries reach the server with a fresh
// Idempotency-Key per attempt. No external network is used.
#include "actors/http_tool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "tests/http_test_server.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using namespace std::chrono_literals;
using testing::HttpTestServer;
using testing::TempDir;
using testing::TestRequest;
using testing::TestResponse;

ToolCall make_call(json parameters, std::string key = "exec-1/call/1", int64_t timeout_ms = 0) {
  ToolCall call;
  call.execution_id = "exec-1";
  call.path = "call";
  call.action = "request";
  call.idempotency_key = std::move(key);
  call.parameters = std::move(parameters);
  call.timeout_ms = timeout_ms;
  return call;
}

// Answers with what it received, so tests can look at the request as sent.
TestResponse echo(const TestRequest& r) {
  json query = json::object();
  for (const auto& [k, v] : r.query) query[k] = v;
  return TestResponse::json(200, {{"method", r.method},
                                  {"target", r.target},
                                  {"path", r.path},
                                  {"query", query},
                                  {"headers", r.headers},
                                  {"body", r.body}});
}

TestResponse status_only(int status) {
  return TestResponse::json(status, {{"error", "status " + std::to_string(status)}});
}

TEST(HttpToolTest, SpecAndConcurrency) {
  auto tool = make_http_tool();
  EXPECT_EQ(tool->spec().id, "http");
  ASSERT_EQ(tool->spec().actions.size(), 1u);
  EXPECT_EQ(tool->spec().actions[0].name, "request");
  EXPECT_EQ(tool->max_concurrency(), 64u);
  HttpToolOptions opts;
  opts.max_concurrency = 3;
  EXPECT_EQ(make_http_tool(opts)->max_concurrency(), 3u);
}

TEST(HttpToolTest, GetWithQueryAndHeaders) {
  HttpTestServer server(echo);
  auto tool = make_http_tool();
  ToolResult r = tool->invoke(make_call(
      {{"url", server.url("/items?x=1")},
       {"query",
        {{"name", "a b&c"}, {"n", 42}, {"f", 1.5}, {"yes", true}, {"tag", {"red", "blue"}}}},
       {"headers", {{"X-Trace", "t-1"}, {"Accept", "*/*"}}}}));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(r.output["status"], 200);
  const json& seen = r.output["body"];
  EXPECT_EQ(seen["method"], "GET");
  EXPECT_EQ(seen["path"], "/items");
  EXPECT_EQ(seen["target"], "/items?x=1&f=1.5&n=42&name=a%20b%26c&tag=red&tag=blue&yes=true");
  EXPECT_EQ(seen["query"]["name"], "a b&c");
  EXPECT_EQ(seen["query"]["x"], "1");
  EXPECT_EQ(seen["headers"]["x-trace"], "t-1");
  EXPECT_EQ(seen["headers"]["accept"], "*/*");
  EXPECT_EQ(seen["headers"]["user-agent"], "yantra/0.1");
  EXPECT_EQ(seen["headers"]["host"], "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.output["headers"]["content-type"], "application/json");
  EXPECT_EQ(r.output["headers"]["content-length"].get<std::string>(),
            std::to_string(r.output["body"].dump().size()));
}

TEST(HttpToolTest, PostJsonBodyRoundTrip) {
  HttpTestServer server([](const TestRequest& r) {
    return TestResponse::json(
        201,
        {{"got", json::parse(r.body)}, {"type", r.header("content-type")}, {"method", r.method}});
  });
  auto tool = make_http_tool();
  const json payload = {{"name", "ünïcode"}, {"list", {1, 2, 3}}, {"nested", {{"ok", true}}}};
  ToolResult r = tool->invoke(
      make_call({{"method", "post"}, {"url", server.url("/things")}, {"body", payload}}));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(r.output["status"], 201);
  EXPECT_EQ(r.output["body"]["got"], payload);
  EXPECT_EQ(r.output["body"]["type"], "application/json");
  EXPECT_EQ(r.output["body"]["method"], "POST");

  // A step's own Content-Type wins; an array is JSON too.
  r = tool->invoke(make_call({{"method", "PUT"},
                              {"url", server.url("/things")},
                              {"headers", {{"content-type", "application/vnd.x+json"}}},
                              {"body", {1, 2}}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"]["got"], json({1, 2}));
  EXPECT_EQ(r.output["body"]["type"], "application/vnd.x+json");
}

TEST(HttpToolTest, TextBodyIsSentAsIs) {
  HttpTestServer server([](const TestRequest& r) {
    return TestResponse::text(200, "len=" + std::to_string(r.body.size()) + " body=" + r.body +
                                       " type=" + r.header("content-type"));
  });
  auto tool = make_http_tool();
  ToolResult r = tool->invoke(make_call({{"method", "POST"},
                                         {"url", server.url("/raw")},
                                         {"headers", {{"Content-Type", "text/csv"}}},
                                         {"body", "a,b\n1,2"}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"], "len=7 body=a,b\n1,2 type=text/csv");
}

TEST(HttpToolTest, NonJsonResponsesAreText) {
  HttpTestServer server([](const TestRequest& r) {
    if (r.path == "/html") return TestResponse::text(200, "<p>hi</p>", "text/html; charset=utf-8");
    if (r.path == "/broken") return TestResponse::text(200, "{not json", "application/json");
    if (r.path == "/problem") {
      return TestResponse::text(200, R"({"title":"x"})", "application/problem+json");
    }
    if (r.path == "/binary")
      return TestResponse::text(200, "ok\xff\xfe", "application/octet-stream");
    return TestResponse::text(204, "", "");
  });
  auto tool = make_http_tool();
  auto get = [&](const std::string& path) {
    ToolResult r = tool->invoke(make_call({{"url", server.url(path)}}));
    EXPECT_TRUE(r.ok) << path << ": " << r.message;
    return r.output;
  };
  EXPECT_EQ(get("/html")["body"], "<p>hi</p>");
  EXPECT_EQ(get("/broken")["body"], "{not json");
  EXPECT_EQ(get("/problem")["body"], json({{"title", "x"}}));
  // Invalid UTF-8 is replaced, so the result can always be serialized.
  const json bin = get("/binary");
  EXPECT_EQ(bin["body"], "ok\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_NO_THROW(bin.dump());
  const json empty = get("/empty");
  EXPECT_EQ(empty["status"], 204);
  EXPECT_EQ(empty["body"], "");
}

TEST(HttpToolTest, HeadRequestHasNoBody) {
  HttpTestServer server([](const TestRequest&) { return TestResponse::text(200, "12345"); });
  auto tool = make_http_tool();
  ToolResult r =
      tool->invoke(make_call({{"method", "HEAD"}, {"url", server.url("/h")}}, "k", 2000));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(r.output["headers"]["content-length"], "5");
  EXPECT_EQ(r.output["body"], "");
  // The connection stays usable after a body-less response.
  r = tool->invoke(make_call({{"url", server.url("/g")}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"], "12345");
  EXPECT_EQ(server.connections(), 1u);
}

TEST(HttpToolTest, ClientErrorsAreNotRetriable) {
  HttpTestServer server([](const TestRequest&) {
    return TestResponse::text(404, "no such thing: " + std::string(500, 'x'));
  });
  ToolResult r =
      make_http_tool()->invoke(make_call({{"url", server.url("/missing?api_key=s3cret")}}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, "http_404");
  EXPECT_EQ(r.message.find("s3cret"), std::string::npos) << "the query stays out of the log";
  EXPECT_FALSE(r.retriable);
  EXPECT_NE(r.message.find("404"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("no such thing"), std::string::npos) << r.message;
  EXPECT_LT(r.message.size(), 400u) << "the body excerpt is short";
}

TEST(HttpToolTest, RetriableStatuses) {
  const std::vector<std::pair<int, bool>> cases = {{408, true},  {429, true},  {500, true},
                                                   {502, true},  {503, true},  {400, false},
                                                   {401, false}, {409, false}, {422, false}};
  HttpTestServer server(
      [](const TestRequest& r) { return status_only(std::stoi(r.path.substr(1))); });
  auto tool = make_http_tool();
  for (const auto& [status, retriable] : cases) {
    ToolResult r = tool->invoke(make_call({{"url", server.url("/" + std::to_string(status))}}));
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.code, "http_" + std::to_string(status));
    EXPECT_EQ(r.retriable, retriable) << status;
  }
}

TEST(HttpToolTest, AcceptStatusTurnsAnErrorIntoAResult) {
  HttpTestServer server([](const TestRequest&) { return status_only(404); });
  ToolResult r = make_http_tool()->invoke(
      make_call({{"url", server.url("/gone")}, {"accept_status", {404, 410}}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["status"], 404);
  EXPECT_EQ(r.output["body"]["error"], "status 404");
}

TEST(HttpToolTest, RetryOnOverridesRetriability) {
  HttpTestServer server(
      [](const TestRequest& r) { return status_only(std::stoi(r.path.substr(1))); });
  auto tool = make_http_tool();
  ToolResult r = tool->invoke(make_call({{"url", server.url("/404")}, {"retry_on", {404}}}));
  EXPECT_EQ(r.code, "http_404");
  EXPECT_TRUE(r.retriable);
  r = tool->invoke(make_call({{"url", server.url("/503")}, {"retry_on", {404}}}));
  EXPECT_EQ(r.code, "http_503");
  EXPECT_FALSE(r.retriable);
  r = tool->invoke(make_call({{"url", server.url("/503")}, {"retry_on", json::array()}}));
  EXPECT_FALSE(r.retriable);
}

TEST(HttpToolTest, TimeoutIsEnforcedForTheWholeExchange) {
  HttpTestServer server([](const TestRequest&) {
    TestResponse r = TestResponse::text(200, "late");
    r.delay = 5s;
    return r;
  });
  auto tool = make_http_tool();
  // From the parameter...
  auto t0 = std::chrono::steady_clock::now();
  ToolResult r = tool->invoke(make_call({{"url", server.url("/slow")}, {"timeout_ms", 300}}));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.code, "http_timeout") << r.message;
  EXPECT_TRUE(r.retriable);
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 600ms);
  // ... and, without it, from the step's timeout.
  t0 = std::chrono::steady_clock::now();
  r = tool->invoke(make_call({{"url", server.url("/slow")}}, "k2", 200));
  elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.code, "http_timeout") << r.message;
  EXPECT_LT(elapsed, 400ms);
}

TEST(HttpToolTest, ConnectionRefusedIsAConnectError) {
  const uint16_t port = testing::unused_port();
  ToolResult r = make_http_tool()->invoke(
      make_call({{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, "http_connect_error") << r.message;
  EXPECT_TRUE(r.retriable);
}

TEST(HttpToolTest, RedirectsAreReturnedUnlessFollowed) {
  HttpTestServer server([](const TestRequest& r) {
    if (r.path == "/old") {
      TestResponse res = TestResponse::text(302, "moved");
      res.headers.emplace_back("Location", "/new?from=old");
      return res;
    }
    if (r.path == "/post-old") {
      TestResponse res = TestResponse::text(303, "see other");
      res.headers.emplace_back("Location", "new");
      return res;
    }
    if (r.path == "/loop") {
      TestResponse res = TestResponse::text(307, "");
      res.headers.emplace_back("Location", "/loop");
      return res;
    }
    return echo(r);
  });
  auto tool = make_http_tool();
  ToolResult r = tool->invoke(make_call({{"url", server.url("/old")}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["status"], 302);
  EXPECT_EQ(r.output["headers"]["location"], "/new?from=old");
  EXPECT_EQ(r.output["body"], "moved");

  r = tool->invoke(make_call({{"url", server.url("/old")}, {"follow_redirects", true}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["status"], 200);
  EXPECT_EQ(r.output["body"]["target"], "/new?from=old");

  // 303 turns a POST into a GET without a body; relative locations resolve.
  r = tool->invoke(make_call({{"method", "POST"},
                              {"url", server.url("/post-old")},
                              {"body", {{"a", 1}}},
                              {"follow_redirects", true}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"]["method"], "GET");
  EXPECT_EQ(r.output["body"]["path"], "/new");
  EXPECT_EQ(r.output["body"]["body"], "");

  r = tool->invoke(make_call({{"url", server.url("/loop")}, {"follow_redirects", true}}));
  EXPECT_EQ(r.code, "http_too_many_redirects");
  EXPECT_FALSE(r.retriable);
}

TEST(HttpToolTest, IdempotencyKeyIsSent) {
  HttpTestServer server(echo);
  auto tool = make_http_tool();
  ToolResult r = tool->invoke(make_call({{"url", server.url("/")}}, "exec-9/pay/2"));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"]["headers"]["idempotency-key"], "exec-9/pay/2");
  EXPECT_EQ(server.requests_with_key("exec-9/pay/2"), 1u);
  // A step may bring its own key (any spelling of the header name).
  r = tool->invoke(make_call({{"url", server.url("/")}, {"headers", {{"idempotency-key", "mine"}}}},
                             "exec-9/pay/3"));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"]["headers"]["idempotency-key"], "mine");
  EXPECT_EQ(server.requests_with_key("exec-9/pay/3"), 0u);
}

TEST(HttpToolTest, KeepAliveConnectionsAreReused) {
  HttpTestServer server(echo);
  auto tool = make_http_tool();
  for (int i = 0; i < 3; ++i) {
    ToolResult r = tool->invoke(make_call({{"url", server.url("/")}}));
    ASSERT_TRUE(r.ok) << r.message;
  }
  EXPECT_EQ(server.connections(), 1u);
  const auto seen = server.received();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].index_on_connection, 3u);

  // Connection: close from the step means a new connection next time.
  ToolResult r =
      tool->invoke(make_call({{"url", server.url("/")}, {"headers", {{"Connection", "close"}}}}));
  ASSERT_TRUE(r.ok) << r.message;
  r = tool->invoke(make_call({{"url", server.url("/")}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(server.connections(), 2u);
}

TEST(HttpToolTest, NoPoolingWhenDisabled) {
  HttpTestServer server(echo);
  HttpToolOptions opts;
  opts.max_idle_per_host = 0;
  auto tool = make_http_tool(opts);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  EXPECT_EQ(server.connections(), 2u);
}

TEST(HttpToolTest, ConnectionClosedWhileIdleIsReplaced) {
  // The server promises keep-alive and then closes: the pooled connection
  // is dead by the next call, which must still succeed.
  HttpTestServer server([](const TestRequest& r) {
    TestResponse res = echo(r);
    res.close_silently = true;
    return res;
  });
  auto tool = make_http_tool();
  ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  std::this_thread::sleep_for(50ms);
  ToolResult r = tool->invoke(make_call({{"url", server.url("/")}}));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(server.connections(), 2u);
  EXPECT_EQ(server.requests(), 2u);
}

TEST(HttpToolTest, StalePooledConnectionIsRetriedOnceOnAFreshOne) {
  // The second request on any connection is dropped unanswered: a pooled
  // connection that looked alive fails before a response byte, so the tool
  // sends the request again on a new connection.
  HttpTestServer server([](const TestRequest& r) {
    TestResponse res = echo(r);
    res.drop = r.index_on_connection > 1;
    return res;
  });
  auto tool = make_http_tool();
  ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  ToolResult r = tool->invoke(make_call({{"url", server.url("/")}}, "exec-1/call/2"));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(server.connections(), 2u);
  EXPECT_EQ(server.requests(), 3u);
  EXPECT_EQ(server.requests_with_key("exec-1/call/2"), 2u);
}

TEST(HttpToolTest, FreshConnectionFailureIsNotRepeated) {
  HttpTestServer server([](const TestRequest& r) {
    TestResponse res = echo(r);
    res.drop = true;
    return res;
  });
  ToolResult r = make_http_tool()->invoke(make_call({{"url", server.url("/")}}));
  EXPECT_EQ(r.code, "http_connect_error") << r.message;
  EXPECT_TRUE(r.retriable);
  EXPECT_EQ(server.requests(), 1u);
}

TEST(HttpToolTest, ResponseBodyLimit) {
  HttpTestServer server([](const TestRequest& r) {
    TestResponse res = TestResponse::text(200, std::string(4096, 'z'));
    res.chunked = r.path == "/chunked";
    return res;
  });
  HttpToolOptions opts;
  opts.max_response_bytes = 1024;
  auto tool = make_http_tool(opts);
  for (const char* path : {"/sized", "/chunked"}) {
    ToolResult r = tool->invoke(make_call({{"url", server.url(path)}}));
    EXPECT_EQ(r.code, "http_response_too_large") << path << ": " << r.message;
    EXPECT_FALSE(r.retriable);
  }
  opts.max_response_bytes = 4096;
  ToolResult r = make_http_tool(opts)->invoke(make_call({{"url", server.url("/chunked")}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"].get<std::string>().size(), 4096u);
}

TEST(HttpToolTest, InvalidParameters) {
  auto tool = make_http_tool();
  const std::vector<json> bad = {
      json::object(),
      {{"url", 5}},
      {{"url", "ftp://example.com/"}},
      {{"url", "example.com/path"}},
      {{"url", "http://"}},
      {{"url", "http://host:99999/"}},
      {{"url", "http://host:abc/"}},
      {{"url", "http://user:pw@host/"}},
      {{"url", "http://bad host/"}},
      {{"url", "http://[::1/"}},
      {{"url", "http://h/"}, {"method", "BREW"}},
      {{"url", "http://h/"}, {"headers", {{"X-A", "a\r\nInjected: 1"}}}},
      {{"url", "http://h/"}, {"headers", {{"Bad Name", "v"}}}},
      {{"url", "http://h/"}, {"headers", {{"Content-Length", "3"}}}},
      {{"url", "http://h/"}, {"headers", {"not", "an object"}}},
      {{"url", "http://h/"}, {"query", {{"q", {{"nested", 1}}}}}},
      {{"url", "http://h/"}, {"timeout_ms", 0}},
      {{"url", "http://h/"}, {"accept_status", {"404"}}},
      {{"url", "http://h/"}, {"retry_on", 503}},
      {{"url", "http://h/"}, {"follow_redirects", "yes"}},
      {{"url", "http://h/"}, {"urll", "typo"}},
  };
  for (const auto& p : bad) {
    ToolResult r = tool->invoke(make_call(p));
    EXPECT_FALSE(r.ok) << p.dump();
    EXPECT_EQ(r.code, "invalid_parameters") << p.dump();
    EXPECT_FALSE(r.retriable) << p.dump();
  }
  ToolCall wrong_action = make_call({{"url", "http://h/"}});
  wrong_action.action = "fetch";
  EXPECT_EQ(tool->invoke(wrong_action).code, "invalid_parameters");
}

TEST(HttpToolTest, HttpsWithTheTestCaWorksAndIsPooled) {
  TempDir dir;
  HttpTestServer server(echo, HttpTestServer::https_options());
  server.write_ca_file(dir.sub("ca.pem"));
  HttpToolOptions opts;
  opts.ca_file = dir.sub("ca.pem");
  EXPECT_TRUE(check_http_tool_options(opts).is_ok());
  auto tool = make_http_tool(opts);
  for (int i = 0; i < 2; ++i) {
    ToolResult r = tool->invoke(make_call({{"url", server.url("/secure")}, {"query", {{"i", i}}}}));
    ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
    EXPECT_EQ(r.output["body"]["query"]["i"], std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1u);
  // By name as well as by IP address (the certificate names both).
  ToolResult r = tool->invoke(
      make_call({{"url", "https://localhost:" + std::to_string(server.port()) + "/by-name"}}));
  ASSERT_TRUE(r.ok) << r.code << ": " << r.message;
  EXPECT_EQ(r.output["body"]["headers"]["host"], "localhost:" + std::to_string(server.port()));
}

TEST(HttpToolTest, HttpsWithoutTheCaIsATlsError) {
  HttpTestServer server(echo, HttpTestServer::https_options());
  ToolResult r = make_http_tool()->invoke(make_call({{"url", server.url("/secure")}}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, "http_tls_error") << r.message;
  EXPECT_FALSE(r.retriable);
  EXPECT_NE(r.message.find("certificate"), std::string::npos) << r.message;
  EXPECT_EQ(server.requests(), 0u);
}

TEST(HttpToolTest, HttpsHostMismatchIsATlsError) {
  TempDir dir;
  HttpTestServer server(echo,
                        HttpTestServer::https_options(testing::make_test_tls({"other.test"})));
  server.write_ca_file(dir.sub("ca.pem"));
  HttpToolOptions opts;
  opts.ca_file = dir.sub("ca.pem");
  ToolResult r = make_http_tool(opts)->invoke(make_call({{"url", server.url("/")}}));
  EXPECT_EQ(r.code, "http_tls_error") << r.message;
  EXPECT_NE(r.message.find("mismatch"), std::string::npos) << r.message;
  EXPECT_EQ(server.requests(), 0u);
}

TEST(HttpToolTest, BadCaFileIsReported) {
  TempDir dir;
  HttpToolOptions opts;
  opts.ca_file = dir.sub("missing.pem");
  EXPECT_FALSE(check_http_tool_options(opts).is_ok());
  ToolResult r = make_http_tool(opts)->invoke(make_call({{"url", "https://127.0.0.1:1/"}}));
  EXPECT_EQ(r.code, "http_tls_error");
  EXPECT_FALSE(r.retriable);
}

TEST(HttpToolTest, ConcurrentCallsShareThePool) {
  std::atomic<int> in_flight{0};
  HttpTestServer server([&](const TestRequest& r) {
    ++in_flight;
    std::this_thread::sleep_for(2ms);
    --in_flight;
    return echo(r);
  });
  HttpToolOptions opts;
  opts.max_idle_per_host = 8;  // as many as callers: no connection is ever dropped
  auto tool = make_http_tool(opts);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string key = "e/" + std::to_string(t) + "/" + std::to_string(i);
        ToolResult r = tool->invoke(make_call({{"url", server.url("/c")}}, key));
        if (!r.ok || r.output["body"]["headers"]["idempotency-key"] != key) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.requests(), 160u);
  EXPECT_LE(server.connections(), 8u) << "connections are reused, not made per call";
}

TEST(HttpToolTest, IdleConnectionsAreCappedPerHost) {
  // Each request waits until all three of its round have arrived, so the
  // three calls of a round certainly hold three connections at once.
  std::atomic<int> arrived{0};
  HttpTestServer server([&](const TestRequest& r) {
    const int target = ((arrived.fetch_add(1) / 3) + 1) * 3;
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (arrived.load() < target && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    return echo(r);
  });
  HttpToolOptions opts;
  opts.max_idle_per_host = 2;
  auto tool = make_http_tool(opts);
  auto round = [&] {
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        EXPECT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
      });
    }
    for (auto& t : threads) t.join();
  };
  round();
  EXPECT_EQ(server.connections(), 3u);
  round();  // two pooled connections are reused, one is new
  EXPECT_EQ(server.connections(), 4u);
}

TEST(HttpToolTest, IdleConnectionsExpire) {
  HttpTestServer server(echo);
  HttpToolOptions opts;
  opts.idle_timeout_ms = 50;
  auto tool = make_http_tool(opts);
  ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  EXPECT_EQ(server.connections(), 1u);
  std::this_thread::sleep_for(120ms);
  ASSERT_TRUE(tool->invoke(make_call({{"url", server.url("/")}})).ok);
  EXPECT_EQ(server.connections(), 2u);
}

TEST(HttpToolTest, NonAsciiPathIsPercentEncoded) {
  HttpTestServer server(echo);
  ToolResult r =
      make_http_tool()->invoke(make_call({{"url", server.url("/caf\xC3\xA9?q=1#frag")}}));
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.output["body"]["target"], "/caf%C3%A9?q=1");
}

// Through the engine: a step whose endpoint fails twice with 500 is retried
// by the engine, and each attempt reaches the server with its own key.
TEST(HttpToolTest, EngineRetriesAnHttpStepWithFreshKeys) {
  std::atomic<int> calls{0};
  HttpTestServer server([&](const TestRequest&) {
    if (++calls <= 2) return status_only(500);
    return TestResponse::json(200, {{"done", true}, {"n", 3}});
  });
  TempDir dir;
  EngineOptions opts;
  opts.data_dir = dir.str();
  opts.tools = {make_http_tool()};
  auto opened = Engine::open(std::move(opts));
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  auto engine = std::move(opened.value());

  json flow = json::parse(R"J({"id": "hook", "steps": [
    {"id": "call", "type": "action",
     "config": {"tool_id": "http", "action": "request",
                "parameters": {"method": "POST", "body": {"order": {"$ref": "input.order"}}}},
     "retry_config": {"max_attempts": 3, "backoff_type": "fixed", "initial_delay_ms": 10}}],
    "output": {"result": {"$ref": "call.body"}, "status": {"$ref": "call.status"}}})J");
  flow["steps"][0]["config"]["parameters"]["url"] = server.url("/hook");
  auto v = engine->put_flow("default", flow);
  ASSERT_TRUE(v.ok()) << v.status().to_string();

  RunRequest req;
  req.flow_id = "hook";
  req.input = {{"order", 7}};
  auto id = engine->start_sync(req);
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto result = engine->wait(id.value(), 10s);
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_EQ(result.value().status, "completed") << result.value().error.dump();
  EXPECT_EQ(result.value().output, json({{"result", {{"done", true}, {"n", 3}}}, {"status", 200}}));

  const auto keys = server.idempotency_keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 3u);
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string suffix = "/" + std::to_string(i + 1);
    ASSERT_GE(keys[i].size(), suffix.size());
    EXPECT_EQ(keys[i].substr(keys[i].size() - suffix.size()), suffix) << keys[i];
    EXPECT_EQ(keys[i].substr(0, keys[i].size() - suffix.size()),
              keys[0].substr(0, keys[0].size() - 2));
  }
  for (const auto& r : server.received()) EXPECT_EQ(r.body, R"({"order":7})");
}

}  // namespace
}  // namespace yantra
