// A small HTTP/HTTPS server for tests, on 127.0.0.1 and an ephemeral port.
//
// Why it is built like this:
// - Real sockets, so tests see what a real peer does to the client (keep-
//   alive, connections the server drops, slow answers), not a mock's idea
//   of it. Synchronous Beast with a thread per connection keeps the server
//   obviously correct; speed does not matter here.
// - It records what arrived (requests per Idempotency-Key, accepted TCP
//   connections, the request index on each connection) because the
//   interesting assertions are about the client's behaviour: retries carry
//   fresh keys, pooled connections are reused, stale ones are replaced.
// - HTTPS uses a CA and a server certificate generated at construction with
//   the OpenSSL C API, so tests need neither the `openssl` CLI nor files in
//   the repository, and nothing they trust outlives the test.
// - stop() (and the destructor) interrupts everything: blocked reads, and
//   the delays handlers ask for, so a test of a slow server ends promptly.
//
// This header does not include Boost or OpenSSL: suites that use it do not
// compile Beast. Handlers run on the server's connection threads, possibly
// several at once, so they must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace yantra::testing {

struct TestRequest {
  std::string method;
  std::string target;                          // as received: path and query
  std::string path;                            // target without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  uint64_t connection = 0;           // 1-based id of the TCP connection
  uint64_t index_on_connection = 0;  // 1 for the first request of a connection

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct TestResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";  // empty: no Content-Type
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};  // before answering (cut short by stop())
  bool chunked = false;                // Transfer-Encoding: chunked instead of Content-Length
  bool close = false;                  // answer with Connection: close, then close
  bool close_silently = false;         // promise keep-alive, then close anyway
  bool drop = false;                   // close without answering

  static TestResponse json(int status, const nlohmann::json& body) {
    TestResponse r;
    r.status = status;
    r.body = body.dump();
    return r;
  }
  static TestResponse text(int status, std::string body, std::string type = "text/plain") {
    TestResponse r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = std::move(type);
    return r;
  }
};

using TestHandler = std::function<TestResponse(const TestRequest&)>;

// PEM texts of a throwaway CA and of a server certificate it signed.
struct TestTls {
  std::string ca_cert_pem;
  std::string cert_pem;  // the server's certificate
  std::string key_pem;   // the server's private key
};

// Generates a CA and a server certificate for `names` (DNS names or IP
// literals, all put in subjectAltName). EC P-256: fast to generate.
TestTls make_test_tls(const std::vector<std::string>& names = {"localhost", "127.0.0.1"});

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
uint16_t unused_port();

class HttpTestServer {
 public:
  struct Options {
    bool https = false;
    TestTls tls;  // when https and empty, make_test_tls() is used
  };
  static Options https_options(TestTls tls = {}) { return Options{true, std::move(tls)}; }

  explicit HttpTestServer(TestHandler handler);
  HttpTestServer(TestHandler handler, Options options);
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  uint16_t port() const;
  // "http(s)://127.0.0.1:<port>" + path
  std::string url(const std::string& path = "/") const;
  const TestTls& tls() const;
  // Writes the CA certificate (PEM) to `path` for a client's CA file.
  void write_ca_file(const std::string& path) const;

  // Idempotent; the destructor calls it.
  void stop();

  size_t connections() const;  // TCP connections accepted
  size_t requests() const;
  size_t requests_with_key(const std::string& idempotency_key) const;
  std::vector<std::string> idempotency_keys() const;  // in arrival order, "" when absent
  std::vector<TestRequest> received() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::testing
