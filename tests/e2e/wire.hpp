// HTTP over raw POSIX sockets for the end-to-end suites: a deliberately dumb
// client (it writes exactly the bytes a test gives it, so malformed requests
// are possible) and a tiny single-threaded server for flows that call out.
//
// Why not a library: the suites must check what actually crosses the wire
// (status line, headers, framing, closes) and must not link the server's
// libraries or Beast. Every read is bounded by a deadline so a server bug
// fails one test instead of hanging the suite; writes use MSG_NOSIGNAL so a
// server that closes early (413) cannot kill the test process with SIGPIPE.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace yantra::e2e {

using json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Reply {
  int status = 0;                              // 0: no complete response (see error)
  std::string error;                           // transport problem, for failure messages
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  json doc() const { return json::parse(body, nullptr, false); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  // The error code of an API error body, or "".
  std::string code() const {
    json j = doc();
    if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
    return j["error"].value("code", "");
  }
  // For assertion messages.
  std::string describe() const {
    return status == 0 ? "no response (" + error + ")"
                       : std::to_string(status) + " " + body.substr(0, 2000);
  }
};

// Loopback ports in network namespaces, for the cluster suites that cut
// links (tests/cluster/netns.hpp): a node there listens on the loopback of
// its own namespace, so a client reaches it with a socket made in that
// namespace. The registry is empty unless such a suite fills it, and every
// other suite connects exactly as before. A thread already inside the
// namespace it means (a namespace worker, which sets
// `loopback_in_this_namespace`) bypasses the registry.
struct PortNamespaces {
  std::mutex mu;
  std::map<uint16_t, int> fds;  // port -> fd of the namespace (owned by whoever registered it)
};
inline PortNamespaces& port_namespaces() {
  static PortNamespaces registry;
  return registry;
}
inline thread_local bool loopback_in_this_namespace = false;
// `netns_fd` < 0 removes the port.
inline void set_port_namespace(uint16_t port, int netns_fd) {
  std::lock_guard lock(port_namespaces().mu);
  if (netns_fd < 0) {
    port_namespaces().fds.erase(port);
  } else {
    port_namespaces().fds[port] = netns_fd;
  }
}
// A TCP socket in the namespace registered for `port` (this thread's own
// namespace when none is): the thread enters it, makes the socket and
// returns to where it was; a socket keeps the namespace it was made in.
inline int loopback_socket(uint16_t port) {
  int ns = -1;
  if (!loopback_in_this_namespace) {
    std::lock_guard lock(port_namespaces().mu);
    auto it = port_namespaces().fds.find(port);
    if (it != port_namespaces().fds.end()) ns = it->second;
  }
  if (ns < 0) return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -1;
  int fd = -1;
  if (::setns(ns, CLONE_NEWNET) == 0) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::setns(self, CLONE_NEWNET) != 0) std::abort();  // this thread would stay elsewhere
  }
  ::close(self);
  return fd;
}

// One TCP connection to 127.0.0.1:port.
class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = loopback_socket(port);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // Writes everything, or stops at the first error (the peer may have
  // answered and closed already; the caller then reads that answer).
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response (Content-Length, chunked, or until close framing);
  // interim 1xx responses are skipped.
  Reply read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Reply r;
    while (true) {
      size_t end = buf_.find("\r\n\r\n");
      while (end == std::string::npos) {
        if (!fill(deadline, &r.error)) return r;
        end = buf_.find("\r\n\r\n");
      }
      std::string head = buf_.substr(0, end);
      buf_.erase(0, end + 4);
      r.headers.clear();
      size_t line_end = head.find("\r\n");
      const std::string status_line = head.substr(0, line_end);
      if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) {
        r.error = "bad status line: " + status_line;
        return r;
      }
      const int status = std::atoi(status_line.c_str() + 9);
      while (line_end != std::string::npos) {
        const size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        std::string line = head.substr(
            start, line_end == std::string::npos ? std::string::npos : line_end - start);
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[to_lower(line.substr(0, colon))] = value;
      }
      if (status >= 100 && status < 200) continue;
      if (status == 204 || status == 304) {
        r.status = status;
        return r;
      }
      if (to_lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
        if (!read_chunked(deadline, &r)) return r;
      } else if (!r.header("content-length").empty()) {
        const size_t len = std::stoul(r.header("content-length"));
        while (buf_.size() < len) {
          if (!fill(deadline, &r.error)) return r;
        }
        r.body = buf_.substr(0, len);
        buf_.erase(0, len);
      } else {
        std::string ignored;
        while (fill(deadline, &ignored)) {
        }
        if (ignored != "closed") {
          r.error = ignored;
          return r;
        }
        r.body = std::move(buf_);
        buf_.clear();
      }
      r.status = status;
      return r;
    }
  }

  // True if the peer closes the connection (or resets it) within `timeout`;
  // bytes it sends meanwhile are discarded.
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string why;
    while (fill(deadline, &why)) buf_.clear();
    return why != "timeout";
  }

 private:
  // Appends what arrives before the deadline; false with why = "closed",
  // "timeout" or the socket error.
  bool fill(std::chrono::steady_clock::time_point deadline, std::string* why) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      *why = "timeout";
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc == 0) {
      *why = "timeout";
      return false;
    }
    if (rc < 0) {
      *why = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    char tmp[65536];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) {
      *why = "closed";
      return false;
    }
    if (n < 0) {
      *why = std::string("recv: ") + std::strerror(errno);
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  bool read_chunked(std::chrono::steady_clock::time_point deadline, Reply* r) {
    while (true) {
      size_t eol = buf_.find("\r\n");
      while (eol == std::string::npos) {
        if (!fill(deadline, &r->error)) return false;
        eol = buf_.find("\r\n");
      }
      const size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
      while (buf_.size() < eol + 2 + size + 2) {
        if (!fill(deadline, &r->error)) return false;
      }
      r->body.append(buf_, eol + 2, size);
      buf_.erase(0, eol + 2 + size + 2);
      if (size == 0) return true;  // (trailers are not used by the node)
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// The bytes of one HTTP/1.1 request. Content-Length is added for a body
// (and for POST/PUT without one); headers given by the test come first and
// may replace nothing: tests that need odd framing write the bytes directly.
inline std::string build_request(const std::string& method, const std::string& target,
                                 const std::string& body, const Headers& headers,
                                 bool keep_alive = false) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

// One request on its own connection.
inline Reply http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = "", const Headers& headers = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  Conn c(port);
  if (!c.connected()) {
    Reply r;
    r.error = "connect failed";
    return r;
  }
  c.send(build_request(method, target, body, headers));
  return c.read_reply(timeout);
}

// The API as a test sees it: authenticated requests, JSON by default.
class Api {
 public:
  Api(uint16_t port, std::string key) : port_(port), key_(std::move(key)) {}

  Reply request(const std::string& method, const std::string& target, const std::string& body,
                Headers headers = {},
                std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    headers.emplace_back("Authorization", "Bearer " + key_);
    return http_request(port_, method, target, body, headers, timeout);
  }
  Reply get(const std::string& target, Headers headers = {}) {
    return request("GET", target, "", std::move(headers));
  }
  Reply post(const std::string& target, const json& body, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return request("POST", target, body.dump(), std::move(headers));
  }
  Reply post_raw(const std::string& target, const std::string& body,
                 const std::string& content_type, Headers headers = {}) {
    if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
    return request("POST", target, body, std::move(headers));
  }
  Reply put(const std::string& target, const json& body, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return request("PUT", target, body.dump(), std::move(headers));
  }
  Reply put_raw(const std::string& target, const std::string& body, const std::string& content_type,
                Headers headers = {}) {
    if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
    return request("PUT", target, body, std::move(headers));
  }
  Reply del(const std::string& target) { return request("DELETE", target, ""); }

  uint16_t port() const { return port_; }
  const std::string& key() const { return key_; }

 private:
  uint16_t port_;
  std::string key_;
};

// A request as the tiny server saw it.
struct SeenRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// An HTTP/1.1 server on 127.0.0.1 and an ephemeral port, for flows that call
// out with the `http` tool. One thread serves one connection at a time and
// answers with Connection: close, which is all a test of one flow needs.
// The handler runs on that thread.
class TinyHttpServer {
 public:
  struct Answer {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
  };
  using Handler = std::function<Answer(const SeenRequest&)>;

  explicit TinyHttpServer(Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(fd_, 64) == 0) {
      socklen_t len = sizeof(addr);
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  TinyHttpServer(const TinyHttpServer&) = delete;
  TinyHttpServer& operator=(const TinyHttpServer&) = delete;

  uint16_t port() const { return port_; }
  std::vector<SeenRequest> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;  // short, so stop_ is noticed promptly
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  void handle(int c) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::string buf;
    auto fill = [&]() {
      while (!stop_ && std::chrono::steady_clock::now() < deadline) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char tmp[8192];
        const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
        return true;
      }
      return false;
    };
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return;
    }
    SeenRequest req;
    const std::string head = buf.substr(0, end);
    const size_t sp1 = head.find(' ');
    const size_t sp2 = head.find(' ', sp1 + 1);
    req.method = head.substr(0, sp1);
    req.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        req.headers[to_lower(line.substr(0, colon))] = v;
      }
      pos = next;
    }
    const size_t len =
        req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    while (buf.size() < end + 4 + len) {
      if (!fill()) return;
    }
    req.body = buf.substr(end + 4, len);
    const Answer a = handler_(req);
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(req);
    }
    std::string out = "HTTP/1.1 " + std::to_string(a.status) +
                      " X\r\nContent-Type: " + a.content_type +
                      "\r\nContent-Length: " + std::to_string(a.body.size()) +
                      "\r\nConnection: close\r\n\r\n" + a.body;
    std::string_view rest = out;
    while (!rest.empty()) {
      const ssize_t n = ::send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }

  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<SeenRequest> seen_;
  std::thread thread_;
};

}  // namespace yantra::e2e
