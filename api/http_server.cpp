// The Beast implementation of HttpServer; the only translation unit of the
// server that compiles Beast/Asio (one such file costs ~10 s and 0.75 GB).
//
// Threads: one io_context per I/O thread, each run by exactly one thread, and
// accepted connections dealt round-robin to them. A connection therefore lives
// on one thread for its whole life, so its state needs neither a strand nor a
// lock, and io_context(1) lets Asio skip most of its internal locking. On the
// project's 2-core machines this measured fastest (~120-180 k req/s with wrk;
// ~150 k req/s for a trivial handler with bench's yantra_http_load at -c64,
// client on the same cores), ahead of one io_context shared by N threads with
// a strand per connection, where every handler pays strand and scheduler
// synchronisation. The price is no work
// stealing: a thread with heavy connections cannot shed them. That is fine here
// because handlers never block (they hand work to actors and answer later).
//
// Lifetime: each loop's registry owns its sessions (shared_ptr), so a session
// waiting for a slow handler stays alive without any pending I/O. A Responder
// holds only a weak_ptr: a response for a connection that has gone is dropped,
// and a handler that keeps a Responder forever keeps nothing of the server
// alive. Responders post back through a "gate" (a shared_mutex + flag) that
// stop() closes before the io_contexts are torn down, so a late response from
// an engine thread can never post into a destroyed io_context.
//
// Timeouts: one steady_timer per connection with a lazily moved deadline.
// Each phase (idle, reading, writing) only records its deadline; the timer is
// re-armed only when the deadline moves earlier than the armed expiry, and when
// it fires early it re-arms to the current deadline. Re-arming per request
// would cost a timerfd syscall or two per request on a busy keep-alive
// connection.
//
// Closing after an error response is "lingering": shut down the send side,
// then drain what the client is still sending for a short while. Closing a
// socket with unread data makes the kernel send RST, which can destroy the 413
// or 400 we just wrote before the client reads it.
//
// Slow clients: a connection holds one of max_connections slots for as long
// as it takes to send its request. Two limits keep trickling clients
// ("slowloris") from taking every slot. (1) Per client address
// (max_connections_per_address; an IPv6 /64 counts as one address): with
// 10,000 slow connections from one address the others are refused with 503
// at accept, and a client from any other address is served at once. The
// count is taken at accept (loop 0's thread) and released at close (the
// connection's loop): twice per connection, never per request, in a sharded
// map whose locks those two threads almost never meet on. (2) A total header
// deadline (header_timeout_ms): the request line and headers must arrive
// within it, however steadily the bytes trickle, so slow connections from
// many addresses are shed in seconds rather than at the read timeout.
//
// Framing (RFC 9112 §6): a request whose Transfer-Encoding is anything but
// exactly "chunked", or that carries both Transfer-Encoding and
// Content-Length, is answered 400 and the connection closed. Beast reads an
// unknown coding ("gzip", "identity", "chunked, chunked") as "no body", so
// the body would otherwise run as a second request that a proxy in front of
// us framed differently and never checked: request smuggling.
#include "api/http_server.hpp"
#include "api/errc.hpp"
#include "api/errors.hpp"
#include "api/request_target.hpp"
#include "base/metrics.hpp"
#include "base/text.hpp"
#include "base/thread_name.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace yantra::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// ---------------------------------------------------------------------------
// HttpRequest helpers

const std::string& HttpRequest::header(const std::string& name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return kEmpty;
}

const std::string* HttpRequest::query_param(const std::string& name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

namespace {

constexpr size_t kReadChunk = 16 * 1024;
// How long an error response waits for the client to stop sending before the
// socket is closed anyway, and how much it reads meanwhile.
constexpr uint32_t kLingerMs = 1000;
constexpr size_t kLingerMaxBytes = 8u << 20;
// Pause before accepting again after an accept error such as EMFILE, so a
// full fd table does not turn the accept loop into a busy loop.
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);

// Beast 1.74 speaks boost::string_view.
std::string_view std_view(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string lower(std::string_view s) {
  return ascii_lower(s);
}
std::string upper(std::string_view s) {
  return ascii_upper(s);
}

std::string endpoint_string(const tcp::endpoint& ep) {
  error_code ec;
  const auto addr = ep.address();
  const std::string host = addr.to_string(ec);
  if (ec) return "?";
  return (addr.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

// A header the handler may not set: framing is the server's business, and a
// CR or LF in a header would let a handler split the response.
bool header_allowed(const std::string& name, const std::string& value) {
  if (name.empty()) return false;
  for (const char c : name) {
    if (c == '\r' || c == '\n' || c == '\0' || c == ':' || c == ' ') return false;
  }
  for (const char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return !beast::iequals(name, "content-length") && !beast::iequals(name, "transfer-encoding");
}

HttpResponse default_error(const Status& error) {
  std::string escaped;
  for (const char c : error.message()) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
      escaped += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      escaped += ' ';
    } else {
      escaped += c;
    }
  }
  HttpResponse r;
  r.status = http_status_for(error);
  r.body = R"({"error":{"code":")" + error.code() + R"(","message":")" + escaped + "\"}}";
  return r;
}

// --- framing ------------------------------------------------------------

constexpr const char* kBothFramings =
    "a request must not carry both Transfer-Encoding and Content-Length";

// At most this much of a rejected header value is quoted back to the client.
constexpr size_t kQuoteMax = 64;

// Printable ASCII only, and not too much of it: the value goes into a JSON
// error message and a log line.
std::string quote_header(std::string_view value) {
  std::string out;
  for (const char c : value.substr(0, kQuoteMax)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (value.size() > kQuoteMax) out += "...";
  return out;
}

// Why the framing of a request whose headers have been read is unacceptable
// (RFC 9112 §6.1, §6.3), or "" when it is fine. The only transfer coding
// accepted is exactly one "chunked" (case-insensitive, optional whitespace),
// counted over every Transfer-Encoding line, since several lines form one
// list. Beast enforces "chunked is last" only and reads an unknown coding as
// "no body"; that difference is what request smuggling exploits.
template <class Message>
std::string framing_problem(const Message& msg) {
  const auto range = msg.equal_range(beast::http::field::transfer_encoding);
  if (range.first == range.second) return "";
  if (msg.version() < 11) {
    return "Transfer-Encoding is not allowed in an HTTP/1.0 request";
  }
  if (msg.find(beast::http::field::content_length) != msg.end()) return kBothFramings;
  size_t codings = 0;
  bool only_chunked = true;
  std::string all;
  for (auto it = range.first; it != range.second; ++it) {
    const std::string_view value = std_view(it->value());
    all += (all.empty() ? "" : ", ") + std::string(value);
    size_t start = 0;
    for (;;) {
      const size_t comma = value.find(',', start);
      std::string_view item = value.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      ++codings;
      if (!beast::iequals(beast::string_view(item.data(), item.size()), "chunked")) {
        only_chunked = false;
      }
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (only_chunked && codings == 1) return "";
  return "unsupported Transfer-Encoding '" + quote_header(all) +
         "': only a single 'chunked' is accepted";
}

// --- connections per client address ---------------------------------------

// What a connection counts under for max_connections_per_address: an IPv4
// address (as its IPv4-mapped IPv6 form), or the /64 prefix of an IPv6
// address, since one subscriber is routinely given a whole /64 and counting
// single IPv6 addresses would limit nobody.
using AddressKey = std::array<unsigned char, 16>;

AddressKey address_key(const net::ip::address& address) {
  AddressKey key{};
  if (address.is_v4()) {
    const auto v4 = address.to_v4().to_bytes();
    key[10] = 0xff;
    key[11] = 0xff;
    std::copy(v4.begin(), v4.end(), key.begin() + 12);
    return key;
  }
  const auto v6 = address.to_v6();
  const auto bytes = v6.to_bytes();
  // An IPv4 client of a dual-stack listener keeps its full address.
  const size_t keep = v6.is_v4_mapped() ? 16 : 8;
  std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep), key.begin());
  return key;
}

// How a refusal names the client: its address, or its /64.
std::string address_text(const net::ip::address& address) {
  error_code ec;
  if (address.is_v6() && !address.to_v6().is_v4_mapped()) {
    auto bytes = address.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return net::ip::address_v6(bytes).to_string(ec) + "/64";
  }
  const auto v4 = address.is_v4() ? address.to_v4()
                                  : net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  return v4.to_string(ec);
}

// Open connections per AddressKey. Touched twice per connection (acquire on
// the accepting thread, release on the connection's loop), never per
// request, so a mutex per shard costs nothing measurable; the shards keep
// accept and close on different threads from meeting on one lock. Entries
// are erased at zero: the map holds only addresses with open connections.
class ConnectionsPerAddress {
 public:
  ConnectionsPerAddress() : seed_(std::random_device{}()) {
    for (auto& s : shards_) s.counts = Map(16, Hash{seed_});
  }

  // False, counting nothing, when `key` already has `limit` connections.
  bool acquire(const AddressKey& key, uint32_t limit) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lock(s.mu);
    uint32_t& n = s.counts[key];
    if (n >= limit) {
      if (n == 0) s.counts.erase(key);
      return false;
    }
    ++n;
    return true;
  }

  void release(const AddressKey& key) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.counts.find(key);
    if (it == s.counts.end()) return;
    if (--it->second == 0) s.counts.erase(it);
  }

 private:
  // Seeded, so a client that picks its addresses cannot aim them all at one
  // bucket of the map.
  struct Hash {
    uint64_t seed;
    size_t operator()(const AddressKey& k) const noexcept {
      uint64_t h = seed ^ 0xcbf29ce484222325ull;  // FNV-1a
      for (const unsigned char b : k) h = (h ^ b) * 0x100000001b3ull;
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  using Map = std::unordered_map<AddressKey, uint32_t, Hash>;
  struct Shard {
    std::mutex mu;
    Map counts;
  };
  Shard& shard(const AddressKey& key) { return shards_[Hash{seed_}(key) % shards_.size()]; }

  uint64_t seed_;
  std::array<Shard, 16> shards_;
};

// stop() closes the gate under the exclusive lock; anyone about to post into
// an io_context from outside holds the shared lock while checking and posting,
// so the io_contexts outlive every post.
struct Gate {
  std::shared_mutex mu;
  bool open = true;
};

class Session;

struct Loop {
  net::io_context ctx{1};
  // Sessions of this loop, touched only on this loop's thread (and by stop()
  // after the thread is joined).
  std::list<std::shared_ptr<Session>> sessions;
  std::thread thread;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  ErrorFormatter errors;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  // Declared before the acceptor: members are destroyed in reverse order and
  // the acceptor must go before the io_context it belongs to.
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  uint16_t bound_port = 0;
  std::atomic<uint32_t> connections{0};
  ConnectionsPerAddress per_address;
  metrics::Counter& refused_total = refused_counter("total");
  metrics::Counter& refused_per_address = refused_counter("per_address");
  size_t next_accept_loop = 0;  // touched only by the accept handler (loop 0's thread)
  std::atomic<size_t> next_timer_loop{0};
  std::mutex stop_mu;
  bool stopped = false;

  explicit Impl(HttpServerOptions opts, Handler h, ErrorFormatter e)
      : options(std::move(opts)),
        handler(std::move(h)),
        errors(std::move(e)),
        loops(make_loops(options.io_threads)),
        acceptor(loops[0]->ctx),
        accept_retry(loops[0]->ctx) {}

  static metrics::Counter& refused_counter(const char* reason) {
    return metrics::global().counter(
        "yantra_http_connections_refused_total",
        "Connections answered 503 and closed at accept, by the limit that refused them "
        "(total: max_connections, per_address: max_connections_per_address)",
        {{"reason", reason}});
  }

  static std::vector<std::unique_ptr<Loop>> make_loops(size_t n) {
    std::vector<std::unique_ptr<Loop>> v;
    for (size_t i = 0; i < std::max<size_t>(n, 1); ++i) v.push_back(std::make_unique<Loop>());
    return v;
  }

  HttpResponse format_error(const Status& error) {
    if (errors) {
      try {
        return errors(error);
      } catch (...) {
        // A broken formatter must not turn a 4xx into a dropped connection.
      }
    }
    return default_error(error);
  }

  Status listen();
  void do_accept();
  void stop();
};

namespace {

// Shared by all copies of one request's Responder. Its destructor notices a
// handler that dropped the Responder without answering, and answers 500 for
// it: otherwise the client would wait forever on a keep-alive connection.
struct ResponderState {
  ResponderState(std::weak_ptr<Session> s, std::shared_ptr<Gate> g, uint64_t q)
      : session(std::move(s)), gate(std::move(g)), seq(q) {}
  ~ResponderState();
  void deliver(HttpResponse response, bool dropped);

  std::weak_ptr<Session> session;
  std::shared_ptr<Gate> gate;
  uint64_t seq;
  std::atomic<bool> done{false};
};

// One connection. Lives on one loop and is touched only from that loop's
// thread; ResponderState::deliver is the one entry from other threads, and it
// only posts. Every asynchronous completion holds a shared_ptr to the session,
// so `this` stays valid while a handler runs even after close() unregisters it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl* server, Loop* loop, tcp::socket socket, std::string remote)
      : server_(server),
        loop_(loop),
        socket_(std::move(socket)),
        timer_(loop->ctx),
        remote_(std::move(remote)) {}

  net::io_context::executor_type executor() { return loop_->ctx.get_executor(); }

  // `refusal` non-empty: the connection was refused at accept (answered 503
  // with that message); else it holds a slot of max_connections and, when
  // `address` is set, one of its address.
  void start(std::optional<AddressKey> address, const std::string& refusal) {
    loop_->sessions.push_front(shared_from_this());
    registry_it_ = loop_->sessions.begin();
    registered_ = true;
    counted_ = refusal.empty();
    address_ = address;
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    if (!counted_) {
      fail(Status(Errc::kUnavailable, refusal));
      return;
    }
    wait_for_request(true);
  }

  // stop(), after the loop's thread is joined: release the socket now so the
  // peer sees the close; the registry is cleared by the caller.
  void abort() {
    closed_ = true;
    registered_ = false;
    error_code ec;
    socket_.close(ec);
    timer_.cancel();
  }

  void on_response(uint64_t seq, HttpResponse response, bool dropped) {
    if (closed_ || phase_ != Phase::handling || seq != seq_) return;
    if (dropped) {
      response = server_->format_error(
          Status(ApiErrc::kInternal, "the request handler finished without answering"));
    }
    write_response(std::move(response), !keep_alive_);
  }

 private:
  enum class Phase { idle, reading, handling, writing, lingering, closed };

  // --- timer ----------------------------------------------------------------

  void set_deadline(Clock::time_point d) {
    deadline_ = d;
    if (d == Clock::time_point::max()) return;
    if (timer_armed_ && armed_at_ <= d) return;
    arm(d);
  }

  void clear_deadline() { deadline_ = Clock::time_point::max(); }

  void arm(Clock::time_point at) {
    timer_armed_ = true;
    armed_at_ = at;
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](error_code ec) {
      self->on_timer(ec, gen);
    });
  }

  void on_timer(error_code ec, uint64_t gen) {
    if (closed_ || gen != timer_gen_) return;  // superseded by a later arm()
    timer_armed_ = false;
    if (ec || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) {
      arm(deadline_);
      return;
    }
    switch (phase_) {
      case Phase::reading: {
        // The pending read completes with operation_aborted and answers 408:
        // the socket stays open for that.
        timed_out_ = true;
        header_timed_out_ = reading_headers_ && header_deadline_ <= read_deadline_;
        error_code ignored;
        socket_.cancel(ignored);
        break;
      }
      case Phase::idle:  // nothing asked, nothing to answer
      case Phase::writing:
      case Phase::lingering: close(); break;
      case Phase::handling:
      case Phase::closed: break;
    }
  }

  static Clock::time_point after_ms(uint32_t ms) {
    return Clock::now() + std::chrono::milliseconds(ms);
  }

  // --- reading --------------------------------------------------------------

  // Waits for the first byte of the next request with the idle deadline; the
  // read and header deadlines start with that byte. A fresh connection gets
  // the shortest of the three, and its header deadline runs from the accept:
  // it has not earned keep-alive patience yet.
  void wait_for_request(bool fresh) {
    const auto& o = server_->options;
    // One clock reading for both deadlines: when the header deadline is the
    // shortest, read_request() then finds it already armed (a re-arm would
    // cost a timer cancellation and, measured, a timerfd_settime per
    // connection).
    const auto now = Clock::now();
    if (fresh || buffer_.size() > 0) {
      header_deadline_ = now + std::chrono::milliseconds(o.header_timeout_ms);
    }
    if (buffer_.size() > 0) {  // pipelined bytes already here
      read_request();
      return;
    }
    phase_ = Phase::idle;
    fresh_ = fresh;
    set_deadline(now +
                 std::chrono::milliseconds(
                     fresh ? std::min({o.read_timeout_ms, o.idle_timeout_ms, o.header_timeout_ms})
                           : o.idle_timeout_ms));
    socket_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](error_code ec, size_t n) { self->on_first_bytes(ec, n); });
  }

  void on_first_bytes(error_code ec, size_t n) {
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    buffer_.commit(n);
    if (!fresh_) header_deadline_ = after_ms(server_->options.header_timeout_ms);
    read_request();
  }

  void read_request() {
    phase_ = Phase::reading;
    timed_out_ = false;
    header_timed_out_ = false;
    reading_headers_ = true;
    read_deadline_ = after_ms(server_->options.read_timeout_ms);
    set_deadline(std::min(header_deadline_, read_deadline_));
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(server_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_->options.max_body_bytes);
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (closed_) return;
    if (ec) {
      on_read_error(ec);
      return;
    }
    // The body has only the read deadline (later: the timer re-arms lazily).
    reading_headers_ = false;
    set_deadline(read_deadline_);
    const auto& req = parser_->get();
    size_t count = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++count;
    if (count > server_->options.max_header_count) {
      fail(Status(ApiErrc::kHeadersTooLarge,
                  "too many header fields: " + std::to_string(count) + " (at most " +
                      std::to_string(server_->options.max_header_count) + ")"));
      return;
    }
    if (const std::string problem = framing_problem(req); !problem.empty()) {
      fail(Status(ApiErrc::kBadRequest, problem));
      return;
    }
    if (parser_->is_done()) {
      dispatch();
      return;
    }
    if (req.version() == 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      // The headers passed every limit (an oversized Content-Length already
      // failed with body_limit above), so invite the body.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (self->closed_) return;
                         if (ec) {
                           self->on_read_error(ec);
                           return;
                         }
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (self->closed_) return;
                       if (ec) {
                         self->on_read_error(ec);
                         return;
                       }
                       self->dispatch();
                     });
  }

  void on_read_error(error_code ec) {
    if (ec == net::error::operation_aborted && timed_out_ && header_timed_out_) {
      fail(Status(ApiErrc::kRequestTimeout, "request headers not received within " +
                                                std::to_string(server_->options.header_timeout_ms) +
                                                " ms"));
    } else if (ec == net::error::operation_aborted && timed_out_) {
      fail(Status(ApiErrc::kRequestTimeout, "request not received within " +
                                                std::to_string(server_->options.read_timeout_ms) +
                                                " ms"));
    } else if (const std::string problem = beast_framing_problem(ec); !problem.empty()) {
      fail(Status(ApiErrc::kBadRequest, problem));
    } else if (ec == http::error::body_limit) {
      fail(Status(
          ApiErrc::kPayloadTooLarge,
          "request body exceeds " + std::to_string(server_->options.max_body_bytes) + " bytes"));
    } else if (ec == http::error::header_limit) {
      fail(Status(ApiErrc::kHeadersTooLarge, "request headers exceed " +
                                                 std::to_string(server_->options.max_header_bytes) +
                                                 " bytes"));
    } else if (&ec.category() == &http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      fail(Status(ApiErrc::kBadRequest, "malformed request: " + ec.message()));
    } else {
      // The peer closed or reset mid-request: there is nobody to answer.
      close();
    }
  }

  // Beast stops at the second of two conflicting framing headers (the first
  // is already in the message): name the conflict instead of Beast's words.
  // "" for other errors; a lone bad Content-Length stays a malformed request.
  std::string beast_framing_problem(error_code ec) const {
    if (!parser_) return "";
    const auto& m = parser_->get();
    const bool te = m.find(http::field::transfer_encoding) != m.end();
    const bool cl = m.find(http::field::content_length) != m.end();
    if ((ec == http::error::bad_transfer_encoding && cl) ||
        (ec == http::error::bad_content_length && te)) {
      return kBothFramings;
    }
    if (ec == http::error::bad_transfer_encoding) {
      return "unsupported Transfer-Encoding: only a single 'chunked' is accepted";
    }
    return "";
  }

  // --- handling -------------------------------------------------------------

  void dispatch() {
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = upper(std_view(msg.method_string()));
    req.target = std::string(msg.target());
    if (!split_target(req.target, req)) {
      fail(Status(ApiErrc::kBadRequest, "invalid percent-encoding in the request target"));
      return;
    }
    req.headers.reserve(16);
    for (const auto& field : msg) {
      req.headers.emplace_back(lower(std_view(field.name_string())), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote = remote_;
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    head_ = msg.method() == http::verb::head;
    parser_.reset();

    phase_ = Phase::handling;
    clear_deadline();
    const uint64_t seq = ++seq_;
    auto state = std::make_shared<ResponderState>(weak_from_this(), server_->gate, seq);
    Responder responder = [state](HttpResponse r) { state->deliver(std::move(r), false); };
    // The handler is user code on an I/O thread: nothing may escape it. (The
    // request has moved into the handler, so the log names the peer only;
    // ApiApp logs its routes' exceptions with the request id and route.)
    try {
      server_->handler(std::move(req), std::move(responder));
    } catch (const std::exception& e) {
      spdlog::error("http: request handler threw (peer {}): {}", remote_, e.what());
      state->deliver(server_->format_error(Status(
                         ApiErrc::kInternal, std::string("request handler failed: ") + e.what())),
                     false);
    } catch (...) {
      spdlog::error("http: request handler threw a non-exception (peer {})", remote_);
      state->deliver(server_->format_error(Status(ApiErrc::kInternal, "request handler failed")),
                     false);
    }
  }

  // --- writing --------------------------------------------------------------

  void write_response(HttpResponse r, bool close_after) {
    phase_ = Phase::writing;
    close_after_write_ = close_after;
    // A client that stops reading must not pin the connection forever.
    set_deadline(after_ms(server_->options.read_timeout_ms));
    try {
      build_response(std::move(r));
    } catch (const std::exception& e) {
      // Beast throws on absurd fields (e.g. a 64 KiB header name); the
      // handler's answer is unusable, so the client gets a plain 500.
      close_after_write_ = true;
      build_response(server_->format_error(Status(
          ApiErrc::kInternal, std::string("the handler's response is invalid: ") + e.what())));
    }
    http::async_write(socket_, response_,
                      [self = shared_from_this()](error_code ec, size_t) { self->on_written(ec); });
  }

  void build_response(HttpResponse r) {
    response_ = {};
    if (r.status < 100 || r.status > 999) {
      r = server_->format_error(Status(
          ApiErrc::kInternal, "handler answered with invalid status " + std::to_string(r.status)));
    }
    response_.result(static_cast<unsigned>(r.status));
    response_.version(version_);
    response_.set(http::field::server, "yantra");
    const bool no_body = r.status < 200 || r.status == 204 || r.status == 304;
    if (!no_body && header_allowed("content-type", r.content_type)) {
      response_.set(http::field::content_type, r.content_type);
    }
    for (auto& [name, value] : r.headers) {
      if (!header_allowed(name, value)) continue;
      if (beast::iequals(name, "connection")) {
        if (beast::iequals(value, "close")) close_after_write_ = true;
      } else if (beast::iequals(name, "content-type") || beast::iequals(name, "server")) {
        response_.set(name, value);
      } else {
        response_.insert(name, value);
      }
    }
    response_.set(http::field::connection, close_after_write_ ? "close" : "keep-alive");
    if (!no_body) {
      response_.content_length(r.body.size());
      // A response to HEAD announces the length of the body it leaves out;
      // sending the body would desynchronise a keep-alive client.
      if (!head_) response_.body() = std::move(r.body);
    }
  }

  void on_written(error_code ec) {
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    response_ = {};  // free the body now, the next request may take a while
    if (close_after_write_) {
      linger();
    } else {
      wait_for_request(false);
    }
  }

  // Server-detected error: answer and close, whatever the request asked.
  void fail(const Status& error) {
    parser_.reset();
    version_ = 11;
    write_response(server_->format_error(error), true);
  }

  // --- closing --------------------------------------------------------------

  void linger() {
    phase_ = Phase::lingering;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    buffer_.clear();
    set_deadline(after_ms(std::min(server_->options.read_timeout_ms, kLingerMs)));
    drain();
  }

  void drain() {
    socket_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (self->closed_) return;
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) {
                                self->close();
                                return;
                              }
                              self->drain();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    phase_ = Phase::closed;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
    if (registered_) {
      registered_ = false;
      if (counted_) server_->connections.fetch_sub(1, std::memory_order_relaxed);
      if (address_) server_->per_address.release(*address_);
      loop_->sessions.erase(registry_it_);  // the running handler still holds us
    }
  }

  HttpServer::Impl* server_;
  Loop* loop_;
  tcp::socket socket_;
  net::steady_timer timer_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::list<std::shared_ptr<Session>>::iterator registry_it_;

  std::optional<AddressKey> address_;  // counted in server_->per_address

  Phase phase_ = Phase::idle;
  Clock::time_point deadline_ = Clock::time_point::max();
  // The current request's deadlines: headers complete, whole request read.
  Clock::time_point header_deadline_ = Clock::time_point::max();
  Clock::time_point read_deadline_ = Clock::time_point::max();
  Clock::time_point armed_at_;
  uint64_t timer_gen_ = 0;
  uint64_t seq_ = 0;
  size_t drained_ = 0;
  unsigned version_ = 11;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool header_timed_out_ = false;  // timed_out_ by the header deadline
  bool reading_headers_ = false;
  bool fresh_ = true;  // waiting for the connection's first request
  bool head_ = false;  // the request being answered is a HEAD
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  bool closed_ = false;
  bool registered_ = false;
  bool counted_ = false;
};

ResponderState::~ResponderState() {
  if (!done.load(std::memory_order_acquire)) deliver({}, true);
}

void ResponderState::deliver(HttpResponse response, bool dropped) {
  if (done.exchange(true, std::memory_order_acq_rel)) return;
  std::shared_lock lock(gate->mu);
  if (!gate->open) return;
  auto s = session.lock();
  if (!s) return;
  auto ex = s->executor();
  // `s` moves into the posted function: this thread must not end up holding
  // the last reference, since the session belongs to its loop's thread.
  net::post(ex, [s = std::move(s), seq = seq, response = std::move(response), dropped]() mutable {
    s->on_response(seq, std::move(response), dropped);
  });
}

// Keeps a loop's thread alive through exceptions from user callbacks that
// slipped past the per-call guards: an exception must never end an I/O
// thread (std::terminate) or silently stop its connections.
void run_loop(Loop& loop) {
  for (;;) {
    try {
      loop.ctx.run();
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "yantra http: exception on an I/O thread: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "yantra http: unknown exception on an I/O thread\n");
    }
  }
}

}  // namespace

Status HttpServer::Impl::listen() {
  const std::string where = options.host + ":" + std::to_string(options.port);
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = net::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    // A name such as "localhost": take the first address it resolves to.
    tcp::resolver resolver(loops[0]->ctx);
    const auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec || results.empty()) {
      return Status(ApiErrc::kBindFailed, "cannot resolve " + where + ": " +
                                              (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status(ApiErrc::kBindFailed, "cannot listen on " + where + ": " + ec.message());
  bound_port = acceptor.local_endpoint(ec).port();
  if (ec) return Status(ApiErrc::kBindFailed, "cannot listen on " + where + ": " + ec.message());
  return Status::ok();
}

void HttpServer::Impl::do_accept() {
  Loop& target = *loops[next_accept_loop++ % loops.size()];
  // Accepting straight onto the target loop's io_context: the socket never
  // has to migrate between reactors.
  acceptor.async_accept(target.ctx, [this, &target](error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      std::fprintf(stderr, "yantra http: accept failed: %s\n", ec.message().c_str());
      accept_retry.expires_after(kAcceptRetry);
      accept_retry.async_wait([this](error_code wait_ec) {
        if (!wait_ec) do_accept();
      });
      return;
    }
    error_code ep_ec;
    const tcp::endpoint peer = socket.remote_endpoint(ep_ec);
    std::string remote = ep_ec ? std::string("?") : endpoint_string(peer);
    std::optional<AddressKey> address;
    std::string refusal;
    if (connections.fetch_add(1, std::memory_order_relaxed) >= options.max_connections) {
      connections.fetch_sub(1, std::memory_order_relaxed);
      refused_total.inc();
      refusal = "too many connections (at most " + std::to_string(options.max_connections) + ")";
    } else if (options.max_connections_per_address > 0 && !ep_ec) {
      // A peer whose address cannot be read has already gone; its session
      // fails at the first read, so it needs no slot of an address.
      const AddressKey key = address_key(peer.address());
      if (per_address.acquire(key, options.max_connections_per_address)) {
        address = key;
      } else {
        connections.fetch_sub(1, std::memory_order_relaxed);
        refused_per_address.inc();
        refusal = "too many connections from " + address_text(peer.address()) + " (at most " +
                  std::to_string(options.max_connections_per_address) + " per client address)";
      }
    }
    net::post(target.ctx, [this, &target, socket = std::move(socket), remote = std::move(remote),
                           address, refusal = std::move(refusal)]() mutable {
      auto session = std::make_shared<Session>(this, &target, std::move(socket), std::move(remote));
      session->start(address, refusal);
    });
    do_accept();
  });
}

void HttpServer::Impl::stop() {
  std::lock_guard<std::mutex> lock(stop_mu);
  if (stopped) return;
  stopped = true;
  {
    std::unique_lock<std::shared_mutex> gate_lock(gate->mu);
    gate->open = false;
  }
  guards.clear();
  for (auto& loop : loops) loop->ctx.stop();
  for (auto& loop : loops) {
    // Called from an I/O thread (a handler or an after() callback) this would
    // join itself: stop() must come from outside the server.
    if (loop->thread.joinable()) loop->thread.join();
  }
  // Single-threaded from here on.
  error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  for (auto& loop : loops) {
    for (auto& session : loop->sessions) session->abort();
    loop->sessions.clear();
  }
  connections.store(0);
  // Handlers still queued (reads, timers, after() callbacks, posted
  // responses) are destroyed with the io_contexts, in ~Impl.
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, Handler handler,
                                                      ErrorFormatter errors) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler), std::move(errors));
  if (Status s = impl->listen(); !s) return s;
  for (auto& loop : impl->loops) impl->guards.push_back(net::make_work_guard(loop->ctx));
  impl->do_accept();
  for (auto& loop : impl->loops) {
    loop->thread = std::thread([l = loop.get()] {
      name_this_thread("y-http");
      run_loop(*l);
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  return impl_->bound_port;
}

void HttpServer::after(uint32_t ms, std::function<void()> fn) {
  if (!fn) return;
  std::shared_lock lock(impl_->gate->mu);
  if (!impl_->gate->open) return;
  auto& loops = impl_->loops;
  Loop& loop =
      *loops[impl_->next_timer_loop.fetch_add(1, std::memory_order_relaxed) % loops.size()];
  // A timer is safe to create and wait on from any thread as long as no other
  // thread touches the same timer; the wait keeps it alive.
  auto timer = std::make_shared<net::steady_timer>(loop.ctx, std::chrono::milliseconds(ms));
  timer->async_wait([timer, fn = std::move(fn)](error_code ec) {
    if (ec) return;
    try {
      fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "yantra http: after() callback threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "yantra http: after() callback threw\n");
    }
  });
}

void HttpServer::stop() {
  if (impl_) impl_->stop();
}

}  // namespace yantra::api
