// yantra_http_load: a closed-loop HTTP/1.1 load generator for the API.
//
//   yantra_http_load --url http://127.0.0.1:8080/api/v1/flows/f/run --method POST
//       --body '{"input":{}}' --header 'Authorization: Bearer t' --concurrency 64
//       --duration-s 10 (or --requests N) --name run_3step --expect-status 200
//       [--threads 2] [--timeout-ms 10000]
//
// Prints one JSON line: bench, concurrency, requests, errors, requests_per_s,
// p50_ms, p99_ms, max_ms.
//
// Why this shape: each of the N keep-alive connections sends one request,
// waits for the whole response, records the latency and repeats, so N is the
// number of requests in flight and the latency is what a client sees. One
// thread drives every connection with Asio (no Beast: a hand-written response
// parser is all that is needed and keeps the client cheap, because on the
// 2-core machines the load generator shares the CPU with the server it
// measures). --threads (default 2) splits the connections over that many
// loops: the kernel shares the CPU per thread, so one client thread against a
// 2-thread server got a third of the machine and capped a trivial handler at
// ~80-100 k req/s where two threads measured ~150-160 k.
// Per-request deadlines are checked by one watchdog timer per thread, not a
// timer per request, for the same reason.
//
// Bounded: it stops sending at --duration-s or after --requests (a run with
// only --requests is still capped at 600 s), gives in-flight requests
// --timeout-ms to finish, and refuses any host that is not loopback: it is a
// benchmark tool, not a way to load someone else's server.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

struct Options {
  std::string url;
  std::string method = "GET";
  std::string body;
  bool has_body = false;
  std::vector<std::string> headers;
  size_t concurrency = 16;
  double duration_s = 0;
  int64_t requests = 0;
  std::string name = "http_load";
  int expect_status = 200;
  size_t threads = 2;
  int64_t timeout_ms = 10000;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "yantra_http_load: " << problem << "\n"
            << "usage: yantra_http_load --url http://127.0.0.1:PORT/path [--method M] [--body B]\n"
            << "         [--header 'K: V']... [--concurrency N] [--duration-s S | --requests N]\n"
            << "         [--name NAME] [--expect-status 200] [--threads 2] [--timeout-ms MS]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg == "--help" || arg == "-h") {
      usage("help");
    } else {
      if (i + 1 >= argc) usage("missing value for " + arg);
      value = argv[++i];
    }
    try {
      if (arg == "--url") {
        o.url = value;
      } else if (arg == "--method") {
        o.method = value;
      } else if (arg == "--body") {
        o.body = value;
        o.has_body = true;
      } else if (arg == "--header") {
        o.headers.push_back(value);
      } else if (arg == "--concurrency") {
        o.concurrency = std::stoul(value);
      } else if (arg == "--duration-s") {
        o.duration_s = std::stod(value);
      } else if (arg == "--requests") {
        o.requests = std::stoll(value);
      } else if (arg == "--name") {
        o.name = value;
      } else if (arg == "--expect-status") {
        o.expect_status = std::stoi(value);
      } else if (arg == "--threads") {
        o.threads = std::stoul(value);
      } else if (arg == "--timeout-ms") {
        o.timeout_ms = std::stoll(value);
      } else {
        usage("unknown option " + arg);
      }
    } catch (const std::exception&) {
      usage("bad value for " + arg + ": " + value);
    }
  }
  if (o.url.empty()) usage("--url is required");
  if (o.concurrency == 0 || o.concurrency > 20000) usage("--concurrency must be 1..20000");
  if (o.threads == 0 || o.threads > 64) usage("--threads must be 1..64");
  if (o.duration_s < 0 || o.requests < 0) usage("--duration-s and --requests must be >= 0");
  if (o.duration_s == 0 && o.requests == 0) o.duration_s = 10;
  if (o.duration_s == 0 || o.duration_s > 600) o.duration_s = 600;
  o.threads = std::min(o.threads, o.concurrency);
  return o;
}

struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

Url parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) usage("only http:// URLs are supported: " + url);
  Url u;
  std::string rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  if (!authority.empty() && authority[0] == '[') {  // [::1]:8080
    const auto close = authority.find(']');
    if (close == std::string::npos) usage("bad IPv6 host in " + url);
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      u.port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.host.empty()) usage("no host in " + url);
  return u;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// Just enough of an HTTP/1.1 response parser for a benchmark: status code,
// Content-Length or chunked framing, and whether the server will close.
struct Parsed {
  enum State { incomplete, complete, bad, until_close } state = incomplete;
  int status = 0;
  size_t consumed = 0;
  bool close = false;
};

Parsed parse_response(const char* data, size_t len) {
  Parsed p;
  const std::string_view v(data, len);
  const size_t head_end = v.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (len > 65536) p.state = Parsed::bad;
    return p;
  }
  if (v.size() < 12 || v.substr(0, 5) != "HTTP/") {
    p.state = Parsed::bad;
    return p;
  }
  p.status = std::atoi(data + 9);
  std::optional<size_t> content_length;
  bool chunked = false;
  size_t line = v.find("\r\n") + 2;
  while (line < head_end + 2) {
    const size_t eol = v.find("\r\n", line);
    const std::string_view h = v.substr(line, eol - line);
    if (iequals_prefix(h, "content-length:")) {
      content_length = std::strtoull(h.data() + 15, nullptr, 10);
    } else if (iequals_prefix(h, "transfer-encoding:")) {
      chunked = h.find("chunked") != std::string_view::npos;
    } else if (iequals_prefix(h, "connection:")) {
      p.close = h.find("close") != std::string_view::npos;
    }
    line = eol + 2;
  }
  size_t pos = head_end + 4;
  if (p.status < 200 || p.status == 204 || p.status == 304) {
    content_length = 0;
  }
  if (chunked) {
    for (;;) {
      const size_t eol = v.find("\r\n", pos);
      if (eol == std::string_view::npos) return p;
      const size_t size = std::strtoull(data + pos, nullptr, 16);
      if (size == 0) {
        const size_t end = v.find("\r\n\r\n", eol);  // trailers end with an empty line
        if (v.substr(eol, 4) == "\r\n\r\n") {
          p.consumed = eol + 4;
        } else if (end != std::string_view::npos) {
          p.consumed = end + 4;
        } else {
          return p;
        }
        p.state = Parsed::complete;
        return p;
      }
      pos = eol + 2 + size + 2;
      if (pos > len) return p;
    }
  }
  if (!content_length) {
    p.state = Parsed::until_close;
    p.close = true;
    return p;
  }
  if (len - pos < *content_length) return p;
  p.consumed = pos + *content_length;
  p.state = Parsed::complete;
  return p;
}

struct Shared {
  Options options;
  std::string request;  // serialized once, sent by every connection
  tcp::endpoint endpoint;
  Clock::time_point start;
  Clock::time_point stop_sending;
  std::atomic<int64_t> tickets{0};  // requests left in --requests mode
  std::atomic<bool> reported_error{false};
};

class Worker;

class Conn {
 public:
  Conn(Worker* w, tcp::socket socket);
  void start() { next(); }
  void on_watchdog(Clock::time_point now);

 private:
  void next();
  void send();
  void read();
  void on_read(error_code ec, size_t n);
  void complete(const Parsed& p);
  void fail(const std::string& why);
  void reconnect();
  void finish();

  Worker* w_;
  tcp::socket socket_;
  std::vector<char> buf_ = std::vector<char>(16384);
  size_t len_ = 0;
  Clock::time_point sent_at_;
  uint64_t gen_ = 0;
  bool busy_ = false;
  bool done_ = false;
};

class Worker {
 public:
  explicit Worker(Shared& shared) : shared_(shared), watchdog_(ctx_) {}

  net::io_context& ctx() { return ctx_; }
  Shared& shared() { return shared_; }

  void add(tcp::socket socket) {
    conns_.push_back(std::make_unique<Conn>(this, std::move(socket)));
  }

  void run() {
    active_ = conns_.size();
    for (auto& c : conns_) c->start();
    arm_watchdog();
    ctx_.run();
    finished_at_ = Clock::now();
  }

  bool take_ticket() {
    if (Clock::now() >= shared_.stop_sending) return false;
    if (shared_.options.requests > 0) {
      return shared_.tickets.fetch_sub(1, std::memory_order_relaxed) > 0;
    }
    return true;
  }

  void record(Clock::time_point sent, int status) {
    latencies_ns_.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent).count());
    if (status != shared_.options.expect_status) {
      ++errors_;
      report("unexpected status " + std::to_string(status));
    }
  }

  void error(const std::string& why) {
    ++errors_;
    ++failed_;
    report(why);
  }

  void conn_done() { --active_; }

  std::vector<int64_t>& latencies() { return latencies_ns_; }
  int64_t errors() const { return errors_; }
  int64_t failed() const { return failed_; }
  Clock::time_point finished_at() const { return finished_at_; }

 private:
  void report(const std::string& why) {
    // The first error is worth a line on stderr; the rest only count.
    if (!shared_.reported_error.exchange(true)) {
      std::cerr << "yantra_http_load: first error: " << why << "\n";
    }
  }

  void arm_watchdog() {
    watchdog_.expires_after(std::chrono::milliseconds(50));
    watchdog_.async_wait([this](error_code ec) {
      if (ec) return;
      const auto now = Clock::now();
      const auto hard_stop =
          shared_.stop_sending + std::chrono::milliseconds(shared_.options.timeout_ms);
      for (auto& c : conns_) c->on_watchdog(now);
      if (active_ == 0) return;
      if (now >= hard_stop) {
        ctx_.stop();
        return;
      }
      arm_watchdog();
    });
  }

  Shared& shared_;
  net::io_context ctx_{1};
  net::steady_timer watchdog_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<int64_t> latencies_ns_;
  size_t active_ = 0;
  int64_t errors_ = 0;
  int64_t failed_ = 0;
  Clock::time_point finished_at_;
};

Conn::Conn(Worker* w, tcp::socket socket) : w_(w), socket_(std::move(socket)) {}

void Conn::next() {
  if (!w_->take_ticket()) {
    finish();
    return;
  }
  ++gen_;  // completions of an earlier request (or socket) are stale from now on
  busy_ = true;
  sent_at_ = Clock::now();
  if (!socket_.is_open()) {
    reconnect();  // the connect counts against this request's deadline
    return;
  }
  send();
}

void Conn::send() {
  net::async_write(socket_, net::buffer(w_->shared().request),
                   [this, gen = gen_](error_code ec, size_t) {
                     if (ec && gen == gen_) fail("write: " + ec.message());
                   });
  read();  // the response is read while the write completes
}

void Conn::read() {
  if (buf_.size() - len_ < 4096) buf_.resize(buf_.size() * 2);
  socket_.async_read_some(net::buffer(buf_.data() + len_, buf_.size() - len_),
                          [this, gen = gen_](error_code ec, size_t n) {
                            if (gen == gen_ && busy_) on_read(ec, n);
                          });
}

void Conn::on_read(error_code ec, size_t n) {
  len_ += n;
  Parsed p = parse_response(buf_.data(), len_);
  if (ec) {
    if (ec == net::error::eof && p.state == Parsed::until_close) {
      p.consumed = len_;
      complete(p);
      return;
    }
    fail(ec == net::error::operation_aborted ? std::string("timeout") : "read: " + ec.message());
    return;
  }
  switch (p.state) {
    case Parsed::complete: complete(p); return;
    case Parsed::bad: fail("unparseable response"); return;
    case Parsed::incomplete:
    case Parsed::until_close: read(); return;
  }
}

void Conn::complete(const Parsed& p) {
  busy_ = false;
  w_->record(sent_at_, p.status);
  std::memmove(buf_.data(), buf_.data() + p.consumed, len_ - p.consumed);
  len_ -= p.consumed;
  if (p.close) {
    error_code ignored;
    socket_.close(ignored);
    len_ = 0;
  }
  next();
}

void Conn::fail(const std::string& why) {
  busy_ = false;
  w_->error(why);
  error_code ignored;
  socket_.close(ignored);
  len_ = 0;
  next();
}

void Conn::reconnect() {
  socket_ = tcp::socket(w_->ctx());
  socket_.async_connect(w_->shared().endpoint, [this, gen = gen_](error_code ec) {
    if (gen != gen_) return;
    if (ec) {
      fail("connect: " + ec.message());
      return;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    send();
  });
}

void Conn::finish() {
  if (done_) return;
  done_ = true;
  error_code ignored;
  socket_.close(ignored);
  w_->conn_done();
}

void Conn::on_watchdog(Clock::time_point now) {
  if (busy_ && now - sent_at_ > std::chrono::milliseconds(w_->shared().options.timeout_ms)) {
    error_code ignored;
    socket_.cancel(ignored);  // the pending read fails with operation_aborted
  }
}

double percentile_ms(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Shared shared;
  shared.options = parse_args(argc, argv);
  const Options& o = shared.options;
  const Url url = parse_url(o.url);

  net::io_context resolver_ctx;
  tcp::resolver resolver(resolver_ctx);
  error_code ec;
  const auto results = resolver.resolve(url.host, url.port, ec);
  if (ec || results.empty()) usage("cannot resolve " + url.host + ": " + ec.message());
  shared.endpoint = results.begin()->endpoint();
  if (!shared.endpoint.address().is_loopback()) {
    usage("refusing non-loopback host " + url.host + " (this tool is for local benchmarks)");
  }

  std::string& req = shared.request;
  req = o.method + " " + url.target + " HTTP/1.1\r\nHost: " + url.host + ":" + url.port +
        "\r\nUser-Agent: yantra_http_load\r\n";
  bool has_content_type = false;
  for (const auto& h : o.headers) {
    if (h.find(':') == std::string::npos) usage("bad --header (want 'K: V'): " + h);
    has_content_type = has_content_type || iequals_prefix(h, "content-type:");
    req += h + "\r\n";
  }
  if (o.has_body) {
    if (!has_content_type) req += "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(o.body.size()) + "\r\n";
  }
  req += "\r\n" + o.body;

  std::vector<std::unique_ptr<Worker>> workers;
  for (size_t t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<Worker>(shared));
  // Connect everything before the clock starts, so the figure measures
  // requests rather than the TCP handshakes.
  for (size_t i = 0; i < o.concurrency; ++i) {
    Worker& w = *workers[i % workers.size()];
    tcp::socket s(w.ctx());
    s.connect(shared.endpoint, ec);
    if (ec) {
      std::cerr << "yantra_http_load: cannot connect to " << o.url << ": " << ec.message() << "\n";
      return 1;
    }
    s.set_option(tcp::no_delay(true), ec);
    w.add(std::move(s));
  }

  shared.tickets = o.requests;
  shared.start = Clock::now();
  shared.stop_sending =
      shared.start + std::chrono::microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  for (auto& t : threads) t.join();

  Clock::time_point end = shared.start;
  std::vector<int64_t> all;
  int64_t errors = 0;
  int64_t failed = 0;
  for (auto& w : workers) {
    end = std::max(end, w->finished_at());
    all.insert(all.end(), w->latencies().begin(), w->latencies().end());
    errors += w->errors();
    failed += w->failed();
  }
  const double elapsed_s = std::chrono::duration<double>(end - shared.start).count();
  const int64_t requests = static_cast<int64_t>(all.size()) + failed;
  const double rps = elapsed_s > 0 ? static_cast<double>(all.size()) / elapsed_s : 0;
  const double max_ms =
      all.empty() ? 0 : static_cast<double>(*std::max_element(all.begin(), all.end())) / 1e6;
  const double p50 = percentile_ms(all, 0.50);
  const double p99 = percentile_ms(all, 0.99);
  // Fixed decimals by hand: a JSON library prints 79860.90000000001.
  char numbers[256];
  std::snprintf(numbers, sizeof(numbers),
                "\"concurrency\":%zu,\"requests\":%lld,\"errors\":%lld,\"requests_per_s\":%.1f,"
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
                o.concurrency, static_cast<long long>(requests), static_cast<long long>(errors),
                rps, p50, p99, max_ms);
  std::cout << "{\"bench\":" << nlohmann::json(o.name).dump() << "," << numbers << "}" << std::endl;
  return 0;
}
