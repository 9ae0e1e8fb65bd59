// HttpServer over the real wire: every test talks to the server through raw
// POSIX sockets, so what is checked is the bytes a client sees (status line,
// framing, Connection handling, closes and timeouts), not what Beast believes
// it sent. The client below is deliberately dumb: it writes exactly what the
// test gives it and parses responses with Content-Length only, which is what
// the server promises to send.
#include "api/http_server.hpp"
#include "api/errors.hpp"
#include "base/metrics.hpp"
#include "tests/support/slowdown.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace yantra::api {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

struct WireResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  json body_json() const { return json::parse(body, nullptr, false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One TCP connection to the server. Reads are bounded by a deadline so a
// server bug fails a test instead of hanging the suite.
class Client {
 public:
  // `from` (IPv4 only): the loopback address to connect from, e.g.
  // "127.0.0.2", so a test can play several clients (all of 127/8 is local).
  explicit Client(uint16_t port, bool v6 = false, const char* from = nullptr) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (from != nullptr && !v6) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, from, &local.sin_addr);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return;
    }
    int rc;
    if (v6) {
      sockaddr_in6 addr{};
      addr.sin6_family = AF_INET6;
      addr.sin6_port = htons(port);
      addr.sin6_addr = in6addr_loopback;
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    } else {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    }
    connected_ = rc == 0;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // The next response, or nullopt if the connection closed or nothing
  // complete arrived in time.
  std::optional<WireResponse> read_response(int timeout_ms = 5000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    WireResponse r;
    const std::string head = buf_.substr(0, end);
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    r.version = status_line.substr(0, status_line.find(' '));
    r.status = std::atoi(status_line.c_str() + status_line.find(' ') + 1);
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace(name, value);
    }
    buf_.erase(0, end + 4);
    const size_t length =
        r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buf_.size() < length) {
      if (!fill(deadline)) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  // Milliseconds until the peer closed (EOF or reset) with no data before it,
  // or -1 if data arrived or it stayed open for `timeout_ms`.
  int64_t ms_until_closed(int timeout_ms) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const size_t before = buf_.size();
      if (fill(deadline)) {
        if (buf_.size() > before) return -1;
        continue;
      }
      if (closed_) return ms_since(t0);
      return -1;
    }
  }

  bool closed() const { return closed_; }

 private:
  // Reads once; false on timeout, EOF or error.
  bool fill(Clock::time_point deadline) {
    if (closed_) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

HttpResponse format_error(const Status& error) {
  HttpResponse r;
  r.status = http_status_for(error);
  r.body = json{{"error", {{"code", error.code()}, {"message", error.message()}}}}.dump();
  return r;
}

HttpResponse json_response(const json& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump();
  return r;
}

json describe(const HttpRequest& req) {
  json headers = json::object();
  for (const auto& [k, v] : req.headers) {
    if (!headers.contains(k)) headers[k] = v;
  }
  json query = json::array();
  for (const auto& [k, v] : req.query) query.push_back({k, v});
  return {{"method", req.method}, {"target", req.target}, {"path", req.path},    {"query", query},
          {"headers", headers},   {"body", req.body},     {"remote", req.remote}};
}

// Answers every request inline with a description of it.
void echo(HttpRequest req, Responder respond) {
  respond(json_response(describe(req)));
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(Handler handler, HttpServerOptions options = {}) {
    options.port = 0;
    auto server = HttpServer::start(options, std::move(handler), format_error);
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    server_ = std::move(server.value());
    ASSERT_NE(server_->port(), 0);
  }
  uint16_t port() const { return server_->port(); }
  // A new client from 127.0.0.1 is served (200) within 2 s: a slot freed by
  // a close is noticed and handed out again.
  void expect_slot_freed() {
    const auto t0 = Clock::now();
    for (;;) {
      Client c(port());
      ASSERT_TRUE(c.send(get("/")));
      auto r = c.read_response();
      ASSERT_TRUE(r);
      if (r->status == 200) return;
      ASSERT_LT(ms_since(t0), 2000) << "slot never freed";
      std::this_thread::sleep_for(20ms);
    }
  }

  std::unique_ptr<HttpServer> server_;
};

// Expects a server-detected error: status, JSON code, and a close afterwards.
void expect_error(Client& c, int status, const std::string& code) {
  auto r = c.read_response();
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status);
  EXPECT_EQ(r->body_json()["error"]["code"], code) << r->body;
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_GE(c.ms_until_closed(3000), 0) << "connection not closed after the error";
}

TEST(HttpRequestTest, HeaderAndQueryParamLookups) {
  HttpRequest req;
  req.headers = {{"x-a", "1"}, {"x-a", "2"}, {"x-b", "3"}};
  req.query = {{"limit", "5"}, {"limit", "6"}, {"empty", ""}};
  EXPECT_EQ(req.header("x-a"), "1");
  EXPECT_EQ(req.header("x-c"), "");
  ASSERT_NE(req.query_param("limit"), nullptr);
  EXPECT_EQ(*req.query_param("limit"), "5");
  ASSERT_NE(req.query_param("empty"), nullptr);
  EXPECT_EQ(*req.query_param("empty"), "");
  EXPECT_EQ(req.query_param("nope"), nullptr);
}

TEST_F(HttpServerTest, GetDecodesPathQueryAndHeaders) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/flows/a%20b%2Fc?limit=5&name=hello+world&check=%E2%9C%93&empty=&flag",
                         "X-Trace-ID: abc\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->version, "HTTP/1.1");
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("server"), "yantra");
  EXPECT_EQ(r->header("connection"), "keep-alive");
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  const json j = r->body_json();
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/flows/a b/c");
  EXPECT_EQ(j["target"], "/flows/a%20b%2Fc?limit=5&name=hello+world&check=%E2%9C%93&empty=&flag");
  EXPECT_EQ(j["query"], json::parse(R"([["limit","5"],["name","hello world"],["check","✓"],
                                        ["empty",""],["flag",""]])"));
  EXPECT_EQ(j["headers"]["x-trace-id"], "abc");
  EXPECT_EQ(j["headers"]["host"], "test");
  EXPECT_EQ(j["remote"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << j["remote"];
}

TEST_F(HttpServerTest, MethodIsUpperCaseAndUnknownMethodsPassThrough) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.send("PURGE /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body_json()["method"], "PURGE");
}

TEST_F(HttpServerTest, PostBodyWithContentLengthAndChunked) {
  start(echo);
  Client c(port());
  const std::string body = R"({"input":{"n":1}})";
  ASSERT_TRUE(c.send(post("/api/v1/flows/f/run", body)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body_json()["method"], "POST");
  EXPECT_EQ(r->body_json()["body"], body);

  ASSERT_TRUE(
      c.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body_json()["body"], "hello world");
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  start([&](HttpRequest req, Responder respond) {
    ++calls;
    respond(json_response({{"path", req.path}}));
  });
  Client c(port());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.send(get("/r/" + std::to_string(i))));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body_json()["path"], "/r/" + std::to_string(i));
    EXPECT_EQ(r->header("connection"), "keep-alive");
  }
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(calls.load(), 10);
}

// Answers come from other threads, with delays chosen so that requests of
// different connections are answered out of their arrival order; each
// connection must still get its own answers, in its own request order.
TEST_F(HttpServerTest, ResponsesInRequestOrderWhenHandlersAnswerOutOfOrder) {
  std::mutex mu;
  std::vector<std::thread> workers;
  std::atomic<int> n{0};
  start([&](HttpRequest req, Responder respond) {
    const int delay = (7 * n++) % 40;
    std::lock_guard<std::mutex> lock(mu);
    workers.emplace_back([path = req.path, respond = std::move(respond), delay] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      respond(json_response({{"path", path}}));
    });
  });
  std::vector<std::unique_ptr<Client>> clients;
  for (int k = 0; k < 4; ++k) clients.push_back(std::make_unique<Client>(port()));
  // Each connection pipelines five requests at once.
  for (int k = 0; k < 4; ++k) {
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += get("/c" + std::to_string(k) + "/" + std::to_string(i));
    ASSERT_TRUE(clients[k]->send(batch));
  }
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 5; ++i) {
      auto r = clients[k]->read_response();
      ASSERT_TRUE(r) << k << "/" << i;
      EXPECT_EQ(r->body_json()["path"], "/c" + std::to_string(k) + "/" + std::to_string(i));
    }
  }
  server_->stop();
  std::lock_guard<std::mutex> lock(mu);
  for (auto& t : workers) t.join();
}

TEST_F(HttpServerTest, ResponderCalledFromAnotherThreadLater) {
  std::thread worker;
  start([&](HttpRequest, Responder respond) {
    worker = std::thread([respond = std::move(respond)] {
      std::this_thread::sleep_for(50ms);
      respond(json_response({{"late", true}}, 202));
      respond(json_response({{"twice", true}}, 500));  // ignored: once only
    });
  });
  Client c(port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send(get("/late")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_GE(ms_since(t0), 45);
  EXPECT_EQ(r->status, 202);
  EXPECT_EQ(r->body_json()["late"], true);
  worker.join();
  // The second call produced nothing: the next request gets its own answer.
  EXPECT_EQ(c.ms_until_closed(100), -1);
  server_->stop();
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.send(get("/a") + post("/b", "bee") + get("/c")));
  for (const std::string path : {"/a", "/b", "/c"}) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->body_json()["path"], path);
  }
}

TEST_F(HttpServerTest, BodyTooLargeIs413AndOtherConnectionsKeepWorking) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  start(echo, o);
  Client big(port());
  Client other(port());
  // The whole body is sent, as a real client would before reading: the
  // server must still deliver its 413 rather than reset the connection.
  ASSERT_TRUE(big.send(post("/upload", std::string(200000, 'x'))));
  expect_error(big, 413, "payload_too_large");

  Client chunked(port());
  ASSERT_TRUE(
      chunked.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "800\r\n" +
                   std::string(2048, 'y') + "\r\n0\r\n\r\n"));
  expect_error(chunked, 413, "payload_too_large");

  ASSERT_TRUE(other.send(post("/small", std::string(1024, 'z'))));
  auto r = other.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, TooManyHeadersIs431) {
  HttpServerOptions o;
  o.max_header_count = 10;
  start(echo, o);
  std::string extra;
  for (int i = 0; i < 20; ++i) extra += "X-H" + std::to_string(i) + ": v\r\n";
  Client c(port());
  ASSERT_TRUE(c.send(get("/", extra)));
  expect_error(c, 431, "headers_too_large");

  // At the limit is fine (Host + 9).
  extra.clear();
  for (int i = 0; i < 9; ++i) extra += "X-H" + std::to_string(i) + ": v\r\n";
  Client ok(port());
  ASSERT_TRUE(ok.send(get("/", extra)));
  auto r = ok.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, HeaderTooLargeIs431) {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  start(echo, o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/", "X-Big: " + std::string(4000, 'b') + "\r\n")));
  expect_error(c, 431, "headers_too_large");
}

TEST_F(HttpServerTest, MalformedRequestIs400WithBeastReason) {
  start(echo);
  for (const std::string bad :
       {"GARBAGE\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    SCOPED_TRACE(bad);
    Client c(port());
    ASSERT_TRUE(c.send(bad));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    const json j = r->body_json();
    EXPECT_EQ(j["error"]["code"], "bad_request");
    const std::string message = j["error"]["message"];
    EXPECT_EQ(message.rfind("malformed request: ", 0), 0u) << message;
    EXPECT_GT(message.size(), std::string("malformed request: ").size());
    EXPECT_GE(c.ms_until_closed(3000), 0);
  }
}

// Beast's parser accepts only HTTP/1.0 and 1.1 and reports anything else as
// "bad version": a 400 like any other malformed request line.
TEST_F(HttpServerTest, UnsupportedHttpVersionIs400) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.send("GET / HTTP/2.0\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body_json()["error"]["message"], "malformed request: bad version");
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveAsked) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version, "HTTP/1.0");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_GE(c.ms_until_closed(3000), 0);

  Client k(port());
  ASSERT_TRUE(k.send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = k.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "keep-alive");
  ASSERT_TRUE(k.send("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = k.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body_json()["path"], "/again");
}

TEST_F(HttpServerTest, ConnectionCloseFromClientIsHonoured) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(c.send(get("/bye", "Connection: close\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_GE(c.ms_until_closed(3000), 0);
}

TEST_F(HttpServerTest, Expect100ContinueInvitesTheBody) {
  start(echo);
  Client c(port());
  ASSERT_TRUE(
      c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto cont = c.read_response();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body_json()["body"], "hello");
}

TEST_F(HttpServerTest, Expect100ContinueWithTooLargeBodyGets413First) {
  HttpServerOptions o;
  o.max_body_bytes = 10;
  start(echo, o);
  Client c(port());
  ASSERT_TRUE(
      c.send("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n"));
  expect_error(c, 413, "payload_too_large");
}

TEST_F(HttpServerTest, SlowClientGets408WithinReadTimeoutThenClose) {
  HttpServerOptions o;
  o.read_timeout_ms = 300;
  start(echo, o);
  Client c(port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: t\r\n"));  // and then nothing
  auto r = c.read_response(3000);
  ASSERT_TRUE(r);
  const int64_t elapsed = ms_since(t0);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->body_json()["error"]["code"], "request_timeout");
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 1500);
  EXPECT_GE(c.ms_until_closed(3000), 0);
}

TEST_F(HttpServerTest, SlowBodyGets408) {
  HttpServerOptions o;
  o.read_timeout_ms = 300;
  start(echo, o);
  Client c(port());
  ASSERT_TRUE(c.send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  auto r = c.read_response(3000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionClosedSilently) {
  HttpServerOptions o;
  o.idle_timeout_ms = 300;
  o.read_timeout_ms = 5000;
  start(echo, o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_TRUE(c.read_response());
  const int64_t closed_after = c.ms_until_closed(3000);
  EXPECT_GE(closed_after, 250) << "closed too early, or data arrived";
  EXPECT_LT(closed_after, 1500);
}

TEST_F(HttpServerTest, ActiveConnectionOutlivesIdleTimeout) {
  HttpServerOptions o;
  o.idle_timeout_ms = 200;
  start(echo, o);
  Client c(port());
  const auto t0 = Clock::now();
  while (ms_since(t0) < 700) {
    ASSERT_TRUE(c.send(get("/")));
    ASSERT_TRUE(c.read_response()) << "closed after " << ms_since(t0) << " ms";
    std::this_thread::sleep_for(50ms);
  }
}

TEST_F(HttpServerTest, InvalidPercentEncodingIs400) {
  start(echo);
  for (const std::string target : {"/a%zz", "/a%2", "/a%", "/a%00b", "/ok?q=%G1", "/ok?q=a%00"}) {
    SCOPED_TRACE(target);
    Client c(port());
    ASSERT_TRUE(c.send(get(target)));
    expect_error(c, 400, "bad_request");
  }
}

// Request smuggling (RFC 9112 §6.1, §6.3). A Transfer-Encoding that is not
// exactly the chunked coding leaves the body length undefined: a server that
// reads it as "no body" runs the body as a second request, which a front
// proxy that framed it differently never saw. Each body below is a complete
// second request; the server must answer 400 once, close, and never hand the
// smuggled request (nor the first one) to the handler.
TEST_F(HttpServerTest, AmbiguousTransferEncodingIs400AndNothingIsSmuggled) {
  std::mutex mu;
  std::vector<std::string> seen;
  start([&](HttpRequest req, Responder respond) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(req.method + " " + req.path);
    }
    respond(json_response({{"path", req.path}}));
  });
  const std::string smuggled = post("/api/v1/flows", R"({"id":"smuggled"})");
  const std::string chunked_smuggled = "0\r\n\r\n" + smuggled;
  struct Case {
    std::string headers;  // the framing headers of the first request
    std::string body;
  };
  const std::vector<Case> cases = {
      {"Transfer-Encoding: identity\r\n", smuggled},
      {"Transfer-Encoding: gzip\r\n", smuggled},
      {"Transfer-Encoding: xchunked\r\n", smuggled},
      {"Transfer-Encoding: chunked, chunked\r\n", smuggled},
      {"Transfer-Encoding: gzip, chunked\r\n", chunked_smuggled},
      {"Transfer-Encoding: chunked,\r\n", chunked_smuggled},
      {"Transfer-Encoding:\r\n", smuggled},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", chunked_smuggled},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked_smuggled},
      {"Transfer-Encoding: gzip\r\nContent-Length: 0\r\n", smuggled},
      {"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", chunked_smuggled},
      {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", chunked_smuggled},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.headers);
    Client client(port());
    ASSERT_TRUE(client.send("POST /x HTTP/1.1\r\nHost: t\r\n" + c.headers + "\r\n" + c.body));
    auto r = client.read_response();
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, 400);
    const json j = r->body_json();
    const json error = j.is_object() ? j.value("error", json::object()) : json::object();
    EXPECT_EQ(error.value("code", ""), "bad_request") << r->body;
    EXPECT_NE(error.value("message", "").find("Transfer-Encoding"), std::string::npos) << r->body;
    EXPECT_EQ(r->header("connection"), "close");
    // Exactly one response: the connection closes with nothing after it.
    EXPECT_GE(client.ms_until_closed(3000), 0) << "a second response, or no close";
  }
  // HTTP/1.0 has no transfer codings: its framing is faulty (§6.1).
  {
    Client client(port());
    ASSERT_TRUE(
        client.send("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_smuggled));
    expect_error(client, 400, "bad_request");
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(seen.empty()) << "the handler saw: " << json(seen).dump();
}

// The one accepted coding, in any case and with optional whitespace, still
// carries its body, and the connection stays usable.
TEST_F(HttpServerTest, ChunkedInAnyCaseStillWorks) {
  start(echo);
  Client c(port());
  for (const std::string te : {"chunked", "CHUNKED", "Chunked ", " \tchunked\t"}) {
    SCOPED_TRACE(te);
    ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:" + te +
                       "\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body_json()["body"], "abc");
  }
}

TEST_F(HttpServerTest, HandlerThatThrowsGets500) {
  start([](HttpRequest req, Responder) {
    if (req.path == "/boom") throw std::runtime_error("kaboom");
    throw 42;
  });
  Client c(port());
  ASSERT_TRUE(c.send(get("/boom")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body_json()["error"]["code"], "internal");
  EXPECT_NE(r->body_json()["error"]["message"].get<std::string>().find("kaboom"),
            std::string::npos);
  // The connection survives a throwing handler.
  ASSERT_TRUE(c.send(get("/other")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, HandlerThatDropsTheResponderGets500) {
  start([](HttpRequest, Responder) {});
  Client c(port());
  ASSERT_TRUE(c.send(get("/forgotten")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body_json()["error"]["code"], "internal");
}

TEST_F(HttpServerTest, HandlerThatNeverRespondsDoesNotBlockStop) {
  std::mutex mu;
  std::vector<Responder> kept;
  std::atomic<int> calls{0};
  start([&](HttpRequest, Responder respond) {
    std::lock_guard<std::mutex> lock(mu);
    kept.push_back(std::move(respond));
    ++calls;
  });
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(clients.back()->send(get("/never")));
  }
  const auto wait0 = Clock::now();
  while (calls.load() < 5 && ms_since(wait0) < 3000) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(calls.load(), 5);
  const auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(ms_since(t0), 1000);
  for (auto& c : clients) EXPECT_GE(c->ms_until_closed(2000), 0);
  server_.reset();
  // Answering or dropping after the server is gone is harmless.
  std::lock_guard<std::mutex> lock(mu);
  kept[0](json_response({{"too", "late"}}));
  kept.clear();
}

TEST_F(HttpServerTest, StopWithRequestsInFlightReturnsPromptly) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::thread> workers;
  std::atomic<int> calls{0};
  start([&](HttpRequest, Responder respond) {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    workers.emplace_back([&, respond = std::move(respond)] {
      std::unique_lock<std::mutex> l(mu);
      cv.wait_for(l, 10s, [&] { return release; });
      l.unlock();
      respond(json_response({{"late", true}}));  // the server is gone by now
    });
  });
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(clients.back()->send(get("/slow")));
  }
  const auto wait0 = Clock::now();
  while (calls.load() < 10 && ms_since(wait0) < 3000) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(calls.load(), 10);
  const auto t0 = Clock::now();
  server_.reset();
  EXPECT_LT(ms_since(t0), 500);
  for (auto& c : clients) EXPECT_GE(c->ms_until_closed(2000), 0);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : workers) t.join();
}

TEST_F(HttpServerTest, AfterRunsTheCallbackLater) {
  start(echo);
  std::promise<int64_t> fired;
  const auto t0 = Clock::now();
  server_->after(60, [&] { fired.set_value(ms_since(t0)); });
  auto f = fired.get_future();
  ASSERT_EQ(f.wait_for(3s), std::future_status::ready);
  EXPECT_GE(f.get(), 55);

  // A throwing callback does not take the I/O thread down.
  std::promise<void> second;
  server_->after(1, [] { throw std::runtime_error("x"); });
  server_->after(20, [&] { second.set_value(); });
  ASSERT_EQ(second.get_future().wait_for(3s), std::future_status::ready);
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_TRUE(c.read_response());

  // After stop() nothing runs and nothing crashes.
  std::atomic<bool> ran{false};
  server_->after(1000, [&] { ran = true; });
  server_->stop();
  server_->after(1, [&] { ran = true; });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ran.load());
}

TEST_F(HttpServerTest, StopIsIdempotent) {
  start(echo);
  server_->stop();
  server_->stop();
  server_.reset();
}

TEST_F(HttpServerTest, PortZeroPicksAFreePortAndTakenPortFailsToBind) {
  start(echo);
  EXPECT_NE(port(), 0);
  HttpServerOptions o;
  o.port = port();
  auto again = HttpServer::start(o, echo, format_error);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), "bind_failed");
  EXPECT_NE(again.status().message().find(std::to_string(port())), std::string::npos);
}

TEST_F(HttpServerTest, MaxConnectionsAnswers503AndRecovers) {
  HttpServerOptions o;
  o.max_connections = 2;
  start(echo, o);
  auto a = std::make_unique<Client>(port());
  Client b(port());
  for (Client* c : {a.get(), &b}) {  // make sure both are accepted
    ASSERT_TRUE(c->send(get("/")));
    ASSERT_TRUE(c->read_response());
  }
  {
    Client over(port());
    ASSERT_TRUE(over.send(get("/")));
    expect_error(over, 503, "unavailable");
  }
  a.reset();  // frees a slot once the server notices the close
  expect_slot_freed();
}

TEST_F(HttpServerTest, HandlerStatusHeadersAndContentType) {
  start([](HttpRequest req, Responder respond) {
    HttpResponse r;
    if (req.path == "/text") {
      r.status = 201;
      r.content_type = "text/plain; charset=utf-8";
      r.body = "made";
      r.headers = {{"Location", "/things/1"},
                   {"X-Evil", "a\r\nSet-Cookie: x=1"},  // dropped: would split the response
                   {"Content-Length", "999"}};          // dropped: framing is the server's
    } else if (req.path == "/empty") {
      r.status = 204;
      r.body = "ignored";
    } else {
      r.status = 200;
      r.body = "{}";
      r.headers = {{"Connection", "close"}};
    }
    respond(std::move(r));
  });
  Client c(port());
  ASSERT_TRUE(c.send(get("/text")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->header("location"), "/things/1");
  EXPECT_EQ(r->header("x-evil"), "");
  EXPECT_EQ(r->header("set-cookie"), "");
  EXPECT_EQ(r->header("content-length"), "4");
  EXPECT_EQ(r->body, "made");

  ASSERT_TRUE(c.send(get("/empty")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->body, "");

  ASSERT_TRUE(c.send(get("/closing")));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_GE(c.ms_until_closed(3000), 0);
}

TEST_F(HttpServerTest, UnserializableResponseBecomes500) {
  start([](HttpRequest, Responder respond) {
    HttpResponse r;
    r.headers = {{std::string(70000, 'n'), "v"}};  // Beast refuses names this long
    respond(std::move(r));
  });
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  expect_error(c, 500, "internal");
}

TEST_F(HttpServerTest, Ipv6Loopback) {
  HttpServerOptions o;
  o.host = "::1";
  o.port = 0;
  auto server = HttpServer::start(o, echo, format_error);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << server.status().to_string();
  Client c(server.value()->port(), true);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/six")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body_json()["path"], "/six");
  EXPECT_EQ(r->body_json()["remote"].get<std::string>().rfind("[::1]:", 0), 0u);
}

TEST_F(HttpServerTest, FiftyConnectionsTimesTwentyRequests) {
  // Half the answers are inline, half come from a worker thread: both paths
  // run concurrently on both I/O threads.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, Responder>> queue;
  bool done = false;
  std::thread worker([&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return done || !queue.empty(); });
      if (queue.empty() && done) return;
      auto items = std::move(queue);
      queue.clear();
      lock.unlock();
      for (auto& [path, respond] : items) respond(json_response({{"path", path}}));
      lock.lock();
    }
  });
  start([&](HttpRequest req, Responder respond) {
    if (req.body.size() % 2 == 0) {
      respond(json_response({{"path", req.path}}));
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    queue.emplace_back(req.path, std::move(respond));
    cv.notify_one();
  });
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int k = 0; k < 50; ++k) {
    clients.emplace_back([&, k] {
      Client c(port());
      for (int i = 0; i < 20; ++i) {
        const std::string path = "/c/" + std::to_string(k) + "/" + std::to_string(i);
        if (!c.send(post(path, std::string(static_cast<size_t>(i % 2), 'x')))) return;
        auto r = c.read_response();
        if (!r || r->status != 200 || r->body_json()["path"] != path) return;
        ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 50 * 20);
  server_->stop();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_one();
  worker.join();
}

// ---------------------------------------------------------------------------
// Slow clients ("slowloris"): connections that trickle a request one byte at
// a time hold a server slot each for as long as the server lets them.

// Raises this process's soft descriptor limit to at least `need` (up to the
// hard limit); false if the hard limit is lower.
bool raise_fd_limit(rlim_t need) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= need) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) return false;
  rl.rlim_cur = need;
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

uint64_t refused_connections(const std::string& reason) {
  return metrics::global()
      .counter("yantra_http_connections_refused_total", "", {{"reason", reason}})
      .value();
}

// A child process that opens `count` connections from 127.0.0.1 and then
// sends one more byte of a never-ending header on each of them every 200 ms,
// closing those the server answered (a refusal). A child, not threads of the
// test: its descriptors do not share the server's limit (the container's hard
// limit is 20000: 10,000 clients plus 10,000 server sockets would not fit in
// one process). After fork() the child makes system calls only, on memory
// allocated before the fork, so no lock held by another thread of the parent
// can hang it.
class SlowLoris {
 public:
  SlowLoris(uint16_t port, int count) : fds_(static_cast<size_t>(count), -1) {
    polls_.resize(fds_.size());
    int p[2];
    if (::pipe(p) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[0]);
      run(port, p[1]);
      ::_exit(0);
    }
    ::close(p[1]);
    report_fd_ = p[0];
  }
  ~SlowLoris() { stop(); }
  SlowLoris(const SlowLoris&) = delete;
  SlowLoris& operator=(const SlowLoris&) = delete;

  // Waits for the child's report that every connection was made; returns
  // how many it could not make (or -1 on timeout or a dead child).
  int wait_connected(int timeout_ms) {
    if (report_fd_ < 0) return -1;
    pollfd p{report_fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return -1;
    int failed = -1;
    if (::read(report_fd_, &failed, sizeof(failed)) != sizeof(failed)) return -1;
    return failed;
  }

  // SIGKILL: the kernel closes the child's sockets, the server sees them go.
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (report_fd_ >= 0) ::close(report_fd_);
    report_fd_ = -1;
  }

 private:
  static constexpr char kPrefix[] = "GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: ";

  // Sends the next byte on every open socket, then closes the ones the
  // server answered (a refusal) or closed.
  void trickle(size_t& sent) {
    const char byte = sent < sizeof(kPrefix) - 1 ? kPrefix[sent] : 'a';
    ++sent;
    size_t n = 0;
    for (const int fd : fds_) {
      if (fd < 0) continue;
      ::send(fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      polls_[n++] = pollfd{fd, POLLIN, 0};
    }
    if (n == 0 || ::poll(polls_.data(), n, 0) <= 0) return;
    size_t k = 0;  // polls_ is in the order of fds_
    for (int& fd : fds_) {
      if (fd < 0) continue;
      if (polls_[k++].revents != 0) {
        ::close(fd);
        fd = -1;
      }
    }
  }

  void run(uint16_t port, int report) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    // The server's descriptors (its listening socket above all) are not the
    // child's business: a copy held here would outlive their close.
    for (int fd = 3; fd < static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 65536)); ++fd) {
      if (fd != report) ::close(fd);
    }
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int failed = 0;
    const char first = kPrefix[0];
    for (size_t i = 0; i < fds_.size(); ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (fd >= 0) ::close(fd);
        ++failed;
        continue;
      }
      ::send(fd, &first, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      fds_[i] = fd;
    }
    (void)!::write(report, &failed, sizeof(failed));
    size_t sent = 1;
    for (;;) {
      timespec pause{0, 200 * 1000 * 1000};
      ::nanosleep(&pause, nullptr);  // the child's own pace, not a synchronisation
      trickle(sent);
    }
  }

  std::vector<int> fds_;
  std::vector<pollfd> polls_;
  pid_t pid_ = -1;
  int report_fd_ = -1;
};

// Slowloris from one address must not lock everyone else out: 10,000 slow
// connections from 127.0.0.1, then a client from 127.0.0.2 is answered
// within 1 s. (Before the per-address limit, the 10,000 took every slot of
// max_connections and every new client got 503 until the read timeout.)
TEST_F(HttpServerTest, TenThousandSlowConnectionsFromOneAddressDoNotLockOthersOut) {
  // What this checks is latency and exact counts at 10,000 connections,
  // which the normal build does. Instrumented (scripts/sanitize.sh), the
  // server drains its accept queue many times slower: under TSan the client
  // was answered after 4-9 s, and 25 s later only 8,332 of the 8,976
  // refusals had happened (the queue overflowing, so that the kernel's
  // SYN-ACK retries decide when the rest arrive, would explain the stall). The per-address limit's
  // code runs under the sanitizers in PerAddressLimitAnswers503AndFreesSlotsOnClose.
  if (yantra::testing::kSlowdown > 1) GTEST_SKIP() << "latency-bound: normal build only";
  constexpr int kSlow = 10000;
  HttpServerOptions o;  // the defaults: max_connections 10000, per address 1024
  ASSERT_TRUE(raise_fd_limit(kSlow + 1000)) << "the server side needs descriptors";
  const uint64_t refused_before = refused_connections("per_address");
  start(echo, o);
  SlowLoris loris(port(), kSlow);
  const auto t0 = Clock::now();
  ASSERT_EQ(loris.wait_connected(15000), 0) << "the child could not open its connections";
  std::printf("[          ] %d slow connections opened in %lld ms\n", kSlow,
              static_cast<long long>(ms_since(t0)));

  // Within 1 s (kSlowdown: a sanitizer build is that many times slower).
  const int bound_ms = 1000 * yantra::testing::kSlowdown;
  const auto asked = Clock::now();
  Client other(port(), false, "127.0.0.2");
  ASSERT_TRUE(other.connected());
  ASSERT_TRUE(other.send(get("/legit")));
  auto r = other.read_response(bound_ms);
  const int64_t elapsed = ms_since(asked);
  ASSERT_TRUE(r) << "no answer within " << bound_ms << " ms";
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_LT(elapsed, bound_ms);
  std::printf("[          ] the client from 127.0.0.2 was answered in %lld ms\n",
              static_cast<long long>(elapsed));

  // Everything above the per-address limit was refused, and counted.
  const uint64_t expected = kSlow - o.max_connections_per_address;
  const auto wait0 = Clock::now();
  while (refused_connections("per_address") - refused_before < expected && ms_since(wait0) < 5000) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(refused_connections("per_address") - refused_before, expected);
  loris.stop();
}

// The per-address limit sits well above ordinary load: 512 concurrent
// connections from one address are all served.
TEST_F(HttpServerTest, FiveHundredTwelveConnectionsFromOneAddressAllServed) {
  constexpr int kConnections = 512;
  ASSERT_TRUE(raise_fd_limit(2 * kConnections + 200));
  const uint64_t refused_before = refused_connections("per_address") + refused_connections("total");
  start(echo);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(clients.back()->connected()) << i;
  }
  // All of them open at once, each with a request in flight.
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_TRUE(clients[i]->send(get("/c/" + std::to_string(i))));
  }
  int ok = 0;
  for (int i = 0; i < kConnections; ++i) {
    auto r = clients[i]->read_response();
    if (r && r->status == 200 && r->body_json()["path"] == "/c/" + std::to_string(i)) ++ok;
  }
  EXPECT_EQ(ok, kConnections);
  EXPECT_EQ(refused_connections("per_address") + refused_connections("total"), refused_before);
}

TEST_F(HttpServerTest, PerAddressLimitAnswers503AndFreesSlotsOnClose) {
  HttpServerOptions o;
  o.max_connections_per_address = 2;
  start(echo, o);
  const uint64_t refused_before = refused_connections("per_address");
  auto a = std::make_unique<Client>(port());
  Client b(port());
  for (Client* c : {a.get(), &b}) {  // make sure both are accepted
    ASSERT_TRUE(c->send(get("/")));
    ASSERT_TRUE(c->read_response());
  }
  {
    Client over(port());
    ASSERT_TRUE(over.send(get("/")));
    auto r = over.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    const json j = r->body_json();
    const json error = j.is_object() ? j.value("error", json::object()) : json::object();
    EXPECT_EQ(error.value("code", ""), "unavailable") << r->body;
    EXPECT_NE(error.value("message", "").find("127.0.0.1"), std::string::npos) << r->body;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_GE(over.ms_until_closed(3000), 0);
  }
  EXPECT_EQ(refused_connections("per_address") - refused_before, 1u);
  // Another address has its own budget.
  Client other(port(), false, "127.0.0.2");
  ASSERT_TRUE(other.send(get("/")));
  auto r = other.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  a.reset();  // frees a slot of 127.0.0.1 once the server notices the close
  expect_slot_freed();
}

// The headers of a request must arrive within header_timeout_ms in total,
// counted from the accept for a connection's first request: a client that
// keeps sending a byte now and then cannot hold its slot for the whole read
// timeout.
TEST_F(HttpServerTest, TricklingHeadersGet408AtTheHeaderTimeout) {
  HttpServerOptions o;
  o.header_timeout_ms = 400;
  o.read_timeout_ms = 10000;
  start(echo, o);
  Client c(port());
  const auto t0 = Clock::now();
  const std::string head = "GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: ";
  std::optional<WireResponse> r;
  for (size_t i = 0; !r && ms_since(t0) < 3000; ++i) {
    c.send(std::string(1, i < head.size() ? head[i] : 'a'));  // may fail once answered
    r = c.read_response(50);                                  // also the pace of the trickle
  }
  const int64_t elapsed = ms_since(t0);
  ASSERT_TRUE(r) << "no answer after " << elapsed << " ms";
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->body_json()["error"]["code"], "request_timeout");
  EXPECT_NE(r->body_json()["error"]["message"].get<std::string>().find("headers"),
            std::string::npos)
      << r->body;
  EXPECT_GE(elapsed, 350);
  EXPECT_LT(elapsed, 2000);
  EXPECT_GE(c.ms_until_closed(3000), 0);
}

// A connection that sends nothing at all is closed at the header timeout too
// (nothing asked, nothing answered).
TEST_F(HttpServerTest, SilentFreshConnectionClosedAtTheHeaderTimeout) {
  HttpServerOptions o;
  o.header_timeout_ms = 300;
  start(echo, o);
  Client c(port());
  const int64_t closed_after = c.ms_until_closed(3000);
  EXPECT_GE(closed_after, 250);
  EXPECT_LT(closed_after, 1500);
}

// The body is not bound by the header timeout, only by the read timeout.
TEST_F(HttpServerTest, SlowBodyIsBoundByTheReadTimeoutNotTheHeaderTimeout) {
  HttpServerOptions o;
  o.header_timeout_ms = 200;
  o.read_timeout_ms = 5000;
  start(echo, o);
  Client c(port());
  ASSERT_TRUE(c.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabc"));
  std::this_thread::sleep_for(500ms);  // the pause being tested, past the header timeout
  ASSERT_TRUE(c.send("def"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body_json()["body"], "abcdef");
}

}  // namespace
}  // namespace yantra::api
