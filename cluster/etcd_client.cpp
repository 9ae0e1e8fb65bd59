// The etcd v3 client (etcd_client.hpp says what it offers and why the JSON
// gateway). The only translation unit of cluster/ that compiles Beast/Asio.
//
// Blocking calls with deadlines. Beast's synchronous calls cannot time out
// (tcp_stream's expiry applies to asynchronous operations only), so every
// operation is started asynchronously with tcp_stream::expires_at(deadline)
// and driven to completion by run() on an io_context owned by the connection
// (the pattern of actors/http_tool.cpp): the call stays on the caller's
// thread and needs no I/O thread, and one deadline covers connect + write +
// read. Host names are resolved with the synchronous resolver (getaddrinfo;
// an async resolve would start a thread per io_context); numeric hosts, the
// usual case, skip it.
//
// Pooling. Idle keep-alive connections wait in a mutex-guarded LIFO per
// endpoint. One is returned only after a whole answer that allows
// keep-alive. Before reuse, an idle connection with anything to read (EOF
// from a member that restarted or closed it) is dropped: that keeps a write
// from going out on a dead socket and coming back as "outcome unknown".
//
// Gateway quirks handled here: base64 keys/values/range ends; int64 fields as
// JSON strings (parsed with from_chars, never through double: lease IDs
// exceed 2^53); proto3 defaults omitted (absent bool = false, absent number
// = 0, absent event type = PUT, absent keepalive TTL = lease gone); streaming
// endpoints (keepalive, watch) wrap each message in {"result":...} and end a
// failed stream with {"error":{...}} without a newline; errors of unary calls
// are {"error":"...","code":N} with a gRPC code and a non-200 status.
//
// The watch thread. Its io_context belongs to the Watch; the destructor sets
// `stopping` and calls ioc.stop(), which makes the thread's run() return at
// once wherever it is (connecting, reading, waiting to reconnect). The
// thread re-checks `stopping` after every restart() and before every run(),
// so a stop() that lands between two operations is never lost.
#include "cluster/etcd_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/encoding.hpp"
#include "base/thread_name.hpp"

namespace yantra::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A range answer can be large (etcd caps requests at 1.5 MiB, not answers).
constexpr uint64_t kMaxBodyBytes = 256ull * 1024 * 1024;
// One watch message is one batch of events; etcd sends big revisions whole.
constexpr size_t kMaxWatchMessageBytes = 64 * 1024 * 1024;
constexpr auto kWatchBackoffMin = std::chrono::milliseconds(50);
constexpr auto kWatchBackoffMax = std::chrono::milliseconds(1000);

// gRPC status codes etcd's gateway puts in its error bodies.
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcOutOfRange = 11;
constexpr int kGrpcUnavailable = 14;

struct Endpoint {
  std::string url;   // as given, without a trailing '/'
  std::string host;  // without brackets
  std::string port;
  std::string host_header;
};

Result<Endpoint> parse_endpoint(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return Status(ClusterErrc::kInvalidEndpoint, "etcd endpoint '" + url + "': " + why);
  };
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return bad("only http://HOST:PORT is supported");
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return bad("expected http://HOST:PORT");
  Endpoint e;
  e.url = std::string(kScheme) + rest;
  e.host_header = rest;
  std::string port;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) return bad("unclosed '['");
    e.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("expected ':' after ']'");
      port = rest.substr(close + 2);
    }
  } else {
    const auto colon = rest.rfind(':');
    e.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (e.host.empty()) return bad("no host");
  if (port.empty()) return bad("no port");
  int value = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size() || value < 1 || value > 65535)
    return bad("port '" + port + "' is not 1-65535");
  e.port = port;
  return e;
}

// --- JSON decoding ---------------------------------------------------------
// Decoders throw BadAnswer, caught in decode() within the same call: an
// answer that does not match the gateway's documented shape is one error,
// wherever in the document it is found.

struct BadAnswer {
  std::string what;
};

const json* field(const json& obj, const char* name) {
  if (!obj.is_object()) throw BadAnswer{"expected an object"};
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

template <class Int>
Int integer(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (v == nullptr) return 0;
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    Int out = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size())
      throw BadAnswer{std::string(name) + " is not a 64-bit integer"};
    return out;
  }
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<Int>::max()))
      throw BadAnswer{std::string(name) + " is out of range"};
    return static_cast<Int>(u);
  }
  if (v->is_number_integer()) {
    const int64_t i = v->get<int64_t>();
    if (std::is_unsigned_v<Int> && i < 0) throw BadAnswer{std::string(name) + " is negative"};
    return static_cast<Int>(i);
  }
  throw BadAnswer{std::string(name) + " is not an integer"};
}

int64_t i64(const json& obj, const char* name) {
  return integer<int64_t>(obj, name);
}
uint64_t u64(const json& obj, const char* name) {
  return integer<uint64_t>(obj, name);
}

bool boolean(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (v == nullptr) return false;
  if (!v->is_boolean()) throw BadAnswer{std::string(name) + " is not a boolean"};
  return v->get<bool>();
}

std::string text(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (v == nullptr) return {};
  if (!v->is_string()) throw BadAnswer{std::string(name) + " is not a string"};
  return v->get<std::string>();
}

std::string bytes(const json& obj, const char* name) {
  const std::string b64 = text(obj, name);
  if (b64.empty()) return {};
  auto decoded = base64_decode(b64);
  if (!decoded.ok()) throw BadAnswer{std::string(name) + " is not base64"};
  return std::move(decoded).value();
}

const json& object_or_empty(const json& obj, const char* name) {
  static const json kEmpty = json::object();
  const json* v = field(obj, name);
  if (v == nullptr) return kEmpty;
  if (!v->is_object()) throw BadAnswer{std::string(name) + " is not an object"};
  return *v;
}

const json& array_or_empty(const json& obj, const char* name) {
  static const json kEmpty = json::array();
  const json* v = field(obj, name);
  if (v == nullptr) return kEmpty;
  if (!v->is_array()) throw BadAnswer{std::string(name) + " is not an array"};
  return *v;
}

ResponseHeader decode_header(const json& obj) {
  const json& h = object_or_empty(obj, "header");
  ResponseHeader out;
  out.cluster_id = u64(h, "cluster_id");
  out.member_id = u64(h, "member_id");
  out.revision = i64(h, "revision");
  out.raft_term = u64(h, "raft_term");
  return out;
}

KeyValue decode_kv(const json& obj) {
  KeyValue kv;
  kv.key = bytes(obj, "key");
  kv.value = bytes(obj, "value");
  kv.create_revision = i64(obj, "create_revision");
  kv.mod_revision = i64(obj, "mod_revision");
  kv.version = i64(obj, "version");
  kv.lease = i64(obj, "lease");
  return kv;
}

RangeResponse decode_range(const json& obj) {
  RangeResponse r;
  r.header = decode_header(obj);
  for (const json& kv : array_or_empty(obj, "kvs")) r.kvs.push_back(decode_kv(kv));
  r.more = boolean(obj, "more");
  r.count = i64(obj, "count");
  return r;
}

PutResponse decode_put(const json& obj) {
  PutResponse r;
  r.header = decode_header(obj);
  if (const json* prev = field(obj, "prev_kv")) r.prev_kv = decode_kv(*prev);
  return r;
}

DeleteResponse decode_delete(const json& obj) {
  DeleteResponse r;
  r.header = decode_header(obj);
  r.deleted = i64(obj, "deleted");
  for (const json& kv : array_or_empty(obj, "prev_kvs")) r.prev_kvs.push_back(decode_kv(kv));
  return r;
}

template <class T, class F>
Result<T> decode(const json& doc, F&& f) {
  try {
    return f(doc);
  } catch (const BadAnswer& e) {
    return Status(ClusterErrc::kProtocolError, "unexpected answer from etcd: " + e.what);
  } catch (const json::exception& e) {
    return Status(ClusterErrc::kProtocolError,
                  std::string("unexpected answer from etcd: ") + e.what());
  }
}

// --- JSON encoding -----------------------------------------------------------

std::string b64(std::string_view s) {
  return base64_encode(s);
}

json encode_range(const RangeRequest& r) {
  json j = {{"key", b64(r.key)}};
  if (!r.range_end.empty()) j["range_end"] = b64(r.range_end);
  if (r.limit != 0) j["limit"] = std::to_string(r.limit);
  if (r.revision != 0) j["revision"] = std::to_string(r.revision);
  if (r.keys_only) j["keys_only"] = true;
  if (r.count_only) j["count_only"] = true;
  return j;
}

json encode_put(const PutRequest& r) {
  json j = {{"key", b64(r.key)}, {"value", b64(r.value)}};
  if (r.lease != 0) j["lease"] = std::to_string(r.lease);
  if (r.prev_kv) j["prev_kv"] = true;
  return j;
}

json encode_delete(const DeleteRequest& r) {
  json j = {{"key", b64(r.key)}};
  if (!r.range_end.empty()) j["range_end"] = b64(r.range_end);
  if (r.prev_kv) j["prev_kv"] = true;
  return j;
}

json encode_compare(const Compare& c) {
  json j = {{"key", b64(c.key)}};
  if (!c.range_end.empty()) j["range_end"] = b64(c.range_end);
  switch (c.op) {
    case Compare::Op::kEqual: j["result"] = "EQUAL"; break;
    case Compare::Op::kNotEqual: j["result"] = "NOT_EQUAL"; break;
    case Compare::Op::kGreater: j["result"] = "GREATER"; break;
    case Compare::Op::kLess: j["result"] = "LESS"; break;
  }
  const std::string n = std::to_string(c.number);
  switch (c.target) {
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = b64(c.value);
      break;
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = n;
      break;
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = n;
      break;
    case Compare::Target::kVersion:
      j["target"] = "VERSION";
      j["version"] = n;
      break;
    case Compare::Target::kLease:
      j["target"] = "LEASE";
      j["lease"] = n;
      break;
  }
  return j;
}

json encode_op(const TxnOp& op) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) return {{"request_range", encode_range(*r)}};
  if (const auto* p = std::get_if<PutRequest>(&op)) return {{"request_put", encode_put(*p)}};
  return {{"request_delete_range", encode_delete(std::get<DeleteRequest>(op))}};
}

// --- errors ----------------------------------------------------------------

enum class Kind {
  kRead,   // idempotent: retried on the next endpoint after any transport failure
  kWrite,  // retried only when nothing was sent
};

// An error answer of etcd, in either of the gateway's two shapes:
// {"error":"text","message":"text","code":N} (unary) or
// {"error":{"grpc_code":N,"message":"text",...}} (streams).
struct EtcdError {
  int code = 0;
  std::string message;
};

std::optional<EtcdError> etcd_error(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("error");
  if (it == j.end()) return std::nullopt;
  EtcdError e;
  const json& src = it->is_object() ? *it : j;
  if (auto c = src.find("grpc_code"); c != src.end() && c->is_number_integer())
    e.code = c->get<int>();
  if (auto c = src.find("code"); c != src.end() && c->is_number_integer()) e.code = c->get<int>();
  if (auto m = src.find("message"); m != src.end() && m->is_string())
    e.message = m->get<std::string>();
  if (e.message.empty() && it->is_string()) e.message = it->get<std::string>();
  return e;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// What etcd's error means to the caller; `retry` when another member may
// answer a read.
Status map_etcd_error(const EtcdError& e, Kind kind, bool* retry) {
  *retry = false;
  const std::string msg = "etcd: " + e.message;
  switch (e.code) {
    case kGrpcNotFound:
      if (contains(e.message, "lease not found")) return Status(ClusterErrc::kLeaseNotFound, msg);
      break;
    case kGrpcOutOfRange:
      if (contains(e.message, "compacted")) return Status(ClusterErrc::kCompacted, msg);
      break;
    case kGrpcResourceExhausted:
      if (contains(e.message, "space exceeded")) return Status(ClusterErrc::kNoSpace, msg);
      // "too many requests": the member is overloaded, nothing was applied.
      *retry = kind == Kind::kRead;
      return Status(ClusterErrc::kUnavailable, msg);
    case kGrpcUnavailable:
      *retry = kind == Kind::kRead;
      // "no leader" is refused before proposing; "leader changed" and the
      // like may have been applied.
      if (kind == Kind::kRead || contains(e.message, "no leader"))
        return Status(ClusterErrc::kUnavailable, msg);
      return Status(ClusterErrc::kOutcomeUnknown, msg);
    case kGrpcDeadlineExceeded:
      *retry = kind == Kind::kRead;
      return Status(ClusterErrc::kTimeout, msg);
    case kGrpcInvalidArgument:
    default: break;
  }
  return Status(ClusterErrc::kRejected, msg);
}

// --- connections -------------------------------------------------------------

// One connection and the io_context that drives it; owned by the pool or by
// the one thread that checked it out.
struct Conn {
  asio::io_context ioc{1};  // declared first: destroyed after the stream
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;

  // Runs the operation just started to completion on this thread.
  void drive() {
    ioc.restart();
    ioc.run();
  }

  // An idle keep-alive connection has nothing to read; if it has (EOF, a
  // reset, a stray byte) the member is done with it.
  bool looks_reusable() {
    if (!open || !stream.socket().is_open()) return false;
    pollfd p{stream.socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    buffer.clear();
    open = false;
  }
};

// Resolves `e` (numeric hosts without a lookup). Empty on failure.
std::vector<tcp::endpoint> resolve(asio::io_context& ioc, const Endpoint& e, std::string* error) {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(e.host, ec);
  const auto port = static_cast<uint16_t>(std::stoi(e.port));
  if (!ec) return {tcp::endpoint(addr, port)};
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(e.host, e.port, ec);
  if (ec) {
    *error = "cannot resolve " + e.host + ": " + ec.message();
    return {};
  }
  std::vector<tcp::endpoint> out;
  for (const auto& r : results) out.push_back(r.endpoint());
  return out;
}

enum class Fail { kNone, kConnect, kTimeout, kLost };

struct Exchange {
  Fail fail = Fail::kNone;
  std::string error;
  int status = 0;
  std::string body;
};

bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::timed_out;
}

// One HTTP exchange on `c` (connecting first when needed), within `deadline`.
Exchange exchange(Conn& c, const Endpoint& e, http::verb verb, const std::string& target,
                  const std::string& body, Clock::time_point deadline) {
  Exchange x;
  if (!c.open) {
    std::vector<tcp::endpoint> addrs = resolve(c.ioc, e, &x.error);
    if (addrs.empty()) {
      x.fail = Fail::kConnect;
      return x;
    }
    beast::error_code ec = asio::error::would_block;
    c.stream.expires_at(deadline);
    c.stream.async_connect(addrs, [&](beast::error_code r, const tcp::endpoint&) { ec = r; });
    c.drive();
    if (ec) {
      x.fail = is_timeout(ec) ? Fail::kTimeout : Fail::kConnect;
      x.error = "connect: " + ec.message();
      c.close();
      // A timed-out connect sent nothing either: for the caller it is "not
      // reached", but it did cost the whole deadline.
      if (x.fail == Fail::kTimeout) x.fail = Fail::kConnect;
      return x;
    }
    c.stream.socket().set_option(tcp::no_delay(true), ec);
    c.open = true;
  }

  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, e.host_header);
  req.keep_alive(true);
  if (verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();

  beast::error_code ec = asio::error::would_block;
  c.stream.expires_at(deadline);
  http::async_write(c.stream, req, [&](beast::error_code r, size_t) { ec = r; });
  c.drive();
  if (ec) {
    x.fail = is_timeout(ec) ? Fail::kTimeout : Fail::kLost;
    x.error = "send: " + ec.message();
    c.close();
    return x;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBodyBytes);
  ec = asio::error::would_block;
  c.stream.expires_at(deadline);
  http::async_read(c.stream, c.buffer, parser, [&](beast::error_code r, size_t) { ec = r; });
  c.drive();
  if (ec) {
    x.fail = is_timeout(ec) ? Fail::kTimeout : Fail::kLost;
    x.error = "answer: " + ec.message();
    c.close();
    return x;
  }
  auto res = parser.release();
  x.status = static_cast<int>(res.result_int());
  x.body = std::move(res.body());
  if (!res.keep_alive()) c.close();
  return x;
}

// The JSON document of an answer: unwraps a stream's {"result":...} (the
// first message; unary calls to a streaming endpoint send one) and turns
// errors into Status values.
Result<json> interpret(const Exchange& x, Kind kind, bool* retry) {
  *retry = false;
  std::string_view body = x.body;
  if (const auto nl = body.find('\n'); nl != std::string_view::npos) {
    // A stream: the first message is the answer.
    if (body.find_first_not_of(" \r\n", nl) != std::string_view::npos) body = body.substr(0, nl);
  }
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (x.status >= 500) {
      *retry = kind == Kind::kRead;
      return Status(ClusterErrc::kUnavailable, "etcd answered HTTP " + std::to_string(x.status));
    }
    return Status(ClusterErrc::kProtocolError,
                  "etcd answered HTTP " + std::to_string(x.status) + " without JSON");
  }
  if (auto it = j.find("result"); it != j.end() && it->is_object()) {
    json inner = std::move(*it);
    j = std::move(inner);
  } else if (auto e = etcd_error(j); e && (x.status != 200 || j["error"].is_object())) {
    return map_etcd_error(*e, kind, retry);
  }
  if (x.status != 200) {
    return Status(ClusterErrc::kProtocolError,
                  "etcd answered HTTP " + std::to_string(x.status) + " without an error");
  }
  return j;
}

std::string to_s(int64_t v) {
  return std::to_string(v);
}

}  // namespace

// --- public helpers ------------------------------------------------------------

std::vector<std::string> split_endpoints(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

RangeRequest RangeRequest::single(std::string key) {
  RangeRequest r;
  r.key = std::move(key);
  return r;
}

RangeRequest RangeRequest::prefix(std::string prefix) {
  RangeRequest r;
  r.range_end = prefix_range_end(prefix);
  r.key = std::move(prefix);
  return r;
}

DeleteRequest DeleteRequest::single(std::string key) {
  DeleteRequest r;
  r.key = std::move(key);
  return r;
}

DeleteRequest DeleteRequest::prefix(std::string prefix) {
  DeleteRequest r;
  r.range_end = prefix_range_end(prefix);
  r.key = std::move(prefix);
  return r;
}

namespace {
Compare make_compare(std::string key, Compare::Target t, Compare::Op op, int64_t n) {
  Compare c;
  c.key = std::move(key);
  c.target = t;
  c.op = op;
  c.number = n;
  return c;
}
}  // namespace

Compare Compare::value_is(std::string key, Op op, std::string value) {
  Compare c = make_compare(std::move(key), Target::kValue, op, 0);
  c.value = std::move(value);
  return c;
}
Compare Compare::create_revision_is(std::string key, Op op, int64_t revision) {
  return make_compare(std::move(key), Target::kCreateRevision, op, revision);
}
Compare Compare::mod_revision_is(std::string key, Op op, int64_t revision) {
  return make_compare(std::move(key), Target::kModRevision, op, revision);
}
Compare Compare::version_is(std::string key, Op op, int64_t version) {
  return make_compare(std::move(key), Target::kVersion, op, version);
}
Compare Compare::lease_is(std::string key, Op op, int64_t lease) {
  return make_compare(std::move(key), Target::kLease, op, lease);
}

// --- the client ----------------------------------------------------------------

struct EtcdClient::Impl {
  EtcdOptions options;
  std::vector<Endpoint> endpoints;
  std::mutex mu;  // guards idle
  std::vector<std::vector<std::unique_ptr<Conn>>> idle;
  std::atomic<size_t> preferred{0};

  std::unique_ptr<Conn> take(size_t i) {
    {
      std::lock_guard lock(mu);
      auto& list = idle[i];
      while (!list.empty()) {
        std::unique_ptr<Conn> c = std::move(list.back());
        list.pop_back();
        if (c->looks_reusable()) return c;
      }
    }
    return std::make_unique<Conn>();
  }

  void give_back(size_t i, std::unique_ptr<Conn> c) {
    if (!c->open) return;
    std::lock_guard lock(mu);
    if (idle[i].size() < options.max_idle_per_endpoint) idle[i].push_back(std::move(c));
  }

  // After endpoint i failed, later calls start at the one after it.
  void demote(size_t i) {
    size_t expected = i;
    preferred.compare_exchange_strong(expected, (i + 1) % endpoints.size());
  }

  // One POST (or GET) on one endpoint, with one retry on a fresh connection
  // when a pooled one turned out dead for a read.
  Exchange send(size_t i, http::verb verb, const std::string& target, const std::string& body,
                Kind kind) {
    const auto deadline = Clock::now() + options.request_timeout;
    std::unique_ptr<Conn> c = take(i);
    const bool reused = c->open;
    Exchange x = exchange(*c, endpoints[i], verb, target, body, deadline);
    if (x.fail == Fail::kLost && reused && kind == Kind::kRead && Clock::now() < deadline) {
      c = std::make_unique<Conn>();
      x = exchange(*c, endpoints[i], verb, target, body, deadline);
    }
    if (x.fail == Fail::kNone) give_back(i, std::move(c));
    return x;
  }

  Result<json> call(const std::string& target, const json& request, Kind kind) {
    const std::string body = request.dump();
    const size_t n = endpoints.size();
    const size_t first = preferred.load() % n;
    std::string errors;
    bool any_timeout = false;
    Status last;
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (first + k) % n;
      Exchange x = send(i, http::verb::post, target, body, kind);
      if (x.fail == Fail::kNone) {
        bool retry = false;
        Result<json> r = interpret(x, kind, &retry);
        if (r.ok() || !retry) return r;
        demote(i);
        last = r.status();
        if (last.is(ClusterErrc::kTimeout)) any_timeout = true;
        errors += (errors.empty() ? "" : "; ") + endpoints[i].url + ": " + last.message();
        continue;
      }
      demote(i);
      errors += (errors.empty() ? "" : "; ") + endpoints[i].url + ": " + x.error;
      if (x.fail == Fail::kConnect) continue;
      if (kind == Kind::kWrite) {
        if (x.fail == Fail::kTimeout) {
          return Status(ClusterErrc::kTimeout,
                        target + ": no answer within " +
                            std::to_string(options.request_timeout.count()) +
                            " ms (the write may or may not be applied): " + errors);
        }
        return Status(ClusterErrc::kOutcomeUnknown,
                      target +
                          ": connection lost after sending (the write may or may not be "
                          "applied): " +
                          errors);
      }
      if (x.fail == Fail::kTimeout) any_timeout = true;
    }
    if (any_timeout) {
      return Status(ClusterErrc::kTimeout, target + ": no endpoint answered within " +
                                               std::to_string(options.request_timeout.count()) +
                                               " ms: " + errors);
    }
    if (!last.is_ok() && n == 1) return last;  // etcd's own refusal says more
    return Status(ClusterErrc::kUnavailable, target + ": no etcd endpoint reachable: " + errors);
  }
};

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(EtcdOptions options) {
  if (options.endpoints.empty())
    return Status(ClusterErrc::kInvalidEndpoint, "no etcd endpoint given");
  auto impl = std::make_unique<Impl>();
  for (const auto& url : options.endpoints) {
    auto e = parse_endpoint(url);
    if (!e.ok()) return e.status();
    impl->endpoints.push_back(std::move(e).value());
  }
  if (options.request_timeout.count() <= 0)
    options.request_timeout = std::chrono::milliseconds(1000);
  impl->idle.resize(impl->endpoints.size());
  impl->options = std::move(options);
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

const EtcdOptions& EtcdClient::options() const {
  return impl_->options;
}

Result<RangeResponse> EtcdClient::range(const RangeRequest& request) {
  auto j = impl_->call("/v3/kv/range", encode_range(request), Kind::kRead);
  if (!j.ok()) return j.status();
  return decode<RangeResponse>(*j, decode_range);
}

Result<PutResponse> EtcdClient::put(const PutRequest& request) {
  auto j = impl_->call("/v3/kv/put", encode_put(request), Kind::kWrite);
  if (!j.ok()) return j.status();
  return decode<PutResponse>(*j, decode_put);
}

Result<DeleteResponse> EtcdClient::delete_range(const DeleteRequest& request) {
  auto j = impl_->call("/v3/kv/deleterange", encode_delete(request), Kind::kWrite);
  if (!j.ok()) return j.status();
  return decode<DeleteResponse>(*j, decode_delete);
}

Result<TxnResponse> EtcdClient::txn(const TxnRequest& request) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : request.compare) body["compare"].push_back(encode_compare(c));
  for (const auto& op : request.success) body["success"].push_back(encode_op(op));
  for (const auto& op : request.failure) body["failure"].push_back(encode_op(op));
  auto j = impl_->call("/v3/kv/txn", body, Kind::kWrite);
  if (!j.ok()) return j.status();
  return decode<TxnResponse>(*j, [&](const json& doc) {
    TxnResponse r;
    r.header = decode_header(doc);
    r.succeeded = boolean(doc, "succeeded");
    const auto& ops = r.succeeded ? request.success : request.failure;
    const json& responses = array_or_empty(doc, "responses");
    if (responses.size() != ops.size()) throw BadAnswer{"txn answered a different number of ops"};
    // Each answer is typed by the op that asked for it: proto3 JSON may
    // omit an answer's fields, never its position.
    for (size_t i = 0; i < ops.size(); ++i) {
      if (std::holds_alternative<RangeRequest>(ops[i])) {
        r.responses.emplace_back(decode_range(object_or_empty(responses[i], "response_range")));
      } else if (std::holds_alternative<PutRequest>(ops[i])) {
        r.responses.emplace_back(decode_put(object_or_empty(responses[i], "response_put")));
      } else {
        r.responses.emplace_back(
            decode_delete(object_or_empty(responses[i], "response_delete_range")));
      }
    }
    return r;
  });
}

Status EtcdClient::compact(int64_t revision) {
  auto j = impl_->call("/v3/kv/compaction", {{"revision", to_s(revision)}, {"physical", true}},
                       Kind::kWrite);
  return j.ok() ? Status() : j.status();
}

Result<LeaseGrant> EtcdClient::lease_grant(int64_t ttl_seconds, int64_t id) {
  json body = {{"TTL", to_s(ttl_seconds)}};
  if (id != 0) body["ID"] = to_s(id);
  auto j = impl_->call("/v3/lease/grant", body, Kind::kWrite);
  if (!j.ok()) return j.status();
  return decode<LeaseGrant>(*j, [](const json& doc) -> Result<LeaseGrant> {
    // LeaseGrantResponse carries its own `error` string.
    if (const std::string err = text(doc, "error"); !err.empty())
      return Status(ClusterErrc::kRejected, "etcd: " + err);
    return LeaseGrant{i64(doc, "ID"), i64(doc, "TTL")};
  });
}

Status EtcdClient::lease_revoke(int64_t id) {
  auto j = impl_->call("/v3/lease/revoke", {{"ID", to_s(id)}}, Kind::kWrite);
  return j.ok() ? Status() : j.status();
}

Result<int64_t> EtcdClient::lease_keepalive_once(int64_t id) {
  auto j = impl_->call("/v3/lease/keepalive", {{"ID", to_s(id)}}, Kind::kRead);
  if (!j.ok()) return j.status();
  return decode<int64_t>(*j, [&](const json& doc) -> Result<int64_t> {
    // A lease that is gone answers with no TTL (proto3's 0), not an error.
    const int64_t ttl = i64(doc, "TTL");
    if (ttl <= 0) return Status(ClusterErrc::kLeaseNotFound, "lease " + to_s(id) + " has expired");
    return ttl;
  });
}

Result<LeaseTimeToLive> EtcdClient::lease_time_to_live(int64_t id, bool keys) {
  json body = {{"ID", to_s(id)}};
  if (keys) body["keys"] = true;
  auto j = impl_->call("/v3/lease/timetolive", body, Kind::kRead);
  if (!j.ok()) return j.status();
  return decode<LeaseTimeToLive>(*j, [&](const json& doc) -> Result<LeaseTimeToLive> {
    LeaseTimeToLive r;
    r.id = i64(doc, "ID");
    r.ttl = i64(doc, "TTL");
    // A lease that is gone answers TTL -1, not an error.
    if (r.ttl < 0) return Status(ClusterErrc::kLeaseNotFound, "lease " + to_s(id) + " not found");
    r.granted_ttl = i64(doc, "grantedTTL");
    for (const json& k : array_or_empty(doc, "keys")) {
      if (!k.is_string()) throw BadAnswer{"keys holds a non-string"};
      auto key = base64_decode(k.get<std::string>());
      if (!key.ok()) throw BadAnswer{"keys holds non-base64"};
      r.keys.push_back(std::move(key).value());
    }
    return r;
  });
}

std::vector<EndpointHealth> EtcdClient::health() {
  std::vector<EndpointHealth> out;
  for (size_t i = 0; i < impl_->endpoints.size(); ++i) {
    EndpointHealth h;
    h.endpoint = impl_->endpoints[i].url;
    Exchange x = impl_->send(i, http::verb::get, "/health", "", Kind::kRead);
    if (x.fail != Fail::kNone) {
      h.error = x.fail == Fail::kTimeout
                    ? "no answer within " + std::to_string(impl_->options.request_timeout.count()) +
                          " ms (" + x.error + ")"
                    : x.error;
    } else {
      json j = json::parse(x.body, nullptr, false);
      // {"health":"true"}; 3.4 writes the boolean as a string.
      const json* v = j.is_object() && j.contains("health") ? &j["health"] : nullptr;
      h.healthy = v != nullptr && ((v->is_string() && v->get<std::string>() == "true") ||
                                   (v->is_boolean() && v->get<bool>()));
      if (!h.healthy) {
        h.error = "HTTP " + std::to_string(x.status) + ": " + x.body.substr(0, 200);
      }
    }
    out.push_back(std::move(h));
  }
  return out;
}

Result<MemberStatus> EtcdClient::status(const std::string& endpoint) {
  auto e = parse_endpoint(endpoint);
  if (!e.ok()) return e.status();
  Conn c;
  const auto deadline = Clock::now() + impl_->options.request_timeout;
  Exchange x = exchange(c, *e, http::verb::post, "/v3/maintenance/status", "{}", deadline);
  if (x.fail == Fail::kTimeout)
    return Status(ClusterErrc::kTimeout, endpoint + ": no answer in time: " + x.error);
  if (x.fail != Fail::kNone) return Status(ClusterErrc::kUnavailable, endpoint + ": " + x.error);
  bool retry = false;
  auto j = interpret(x, Kind::kRead, &retry);
  if (!j.ok()) return j.status();
  return decode<MemberStatus>(*j, [&](const json& doc) {
    MemberStatus s;
    s.endpoint = e->url;
    s.header = decode_header(doc);
    // The maintenance answers use the proto's JSON names (camelCase).
    s.leader = u64(doc, "leader");
    s.db_size = i64(doc, "dbSize");
    s.version = text(doc, "version");
    s.raft_index = u64(doc, "raftIndex");
    s.raft_term = u64(doc, "raftTerm");
    return s;
  });
}

// --- the watch -------------------------------------------------------------------

struct Watch::Impl {
  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds timeout{};
  WatchOptions options;
  WatchCallback callback;

  asio::io_context ioc{1};
  std::atomic<bool> stopping{false};
  std::thread thread;

  mutable std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  bool connected = false;
  bool ended = false;
  std::string current;
  int64_t reconnects = 0;

  // The watch thread's own state.
  int64_t next_revision = 0;  // where a new connection resumes; 0: "now"
  size_t endpoint = 0;
  std::chrono::milliseconds backoff = kWatchBackoffMin;
  std::string pending;  // stream bytes not yet ending in '\n'

  // How a message or a connection ended: kContinue (read on), kError
  // (reconnect elsewhere), kStopped (the destructor), kFinished (the watch
  // is over: compacted or canceled, and the caller was told).
  enum class End { kContinue, kError, kStopped, kFinished };

  // Runs the operation just started; false when the watch is stopping (the
  // operation may then still be pending: the caller must return at once).
  bool drive() {
    ioc.restart();
    if (stopping.load()) return false;
    ioc.run();
    return !stopping.load();
  }

  void set_connected(bool on, const std::string& url) {
    std::lock_guard lock(mu);
    connected = on;
    current = on ? url : "";
    cv.notify_all();
  }

  void run() {
    next_revision = options.start_revision;
    while (!stopping.load()) {
      const End end = run_once(endpoints[endpoint]);
      set_connected(false, "");
      if (end == End::kStopped) break;
      if (end == End::kFinished) {
        std::lock_guard lock(mu);
        ended = true;
        cv.notify_all();
        break;
      }
      {
        std::lock_guard lock(mu);
        ++reconnects;
      }
      endpoint = (endpoint + 1) % endpoints.size();
      // Wait before the next attempt, interruptibly.
      asio::steady_timer timer(ioc);
      timer.expires_after(backoff);
      timer.async_wait([](beast::error_code) {});
      if (!drive()) break;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kWatchBackoffMax);
    }
  }

  void deliver(const WatchUpdate& u) {
    if (callback) callback(u);
  }

  // Handles one message of the stream.
  End on_message(std::string_view line, const std::string& url) {
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return End::kError;
    if (etcd_error(j)) return End::kError;  // e.g. the member lost its leader: reconnect
    auto it = j.find("result");
    if (it == j.end() || !it->is_object()) return End::kError;
    const json& r = *it;
    try {
      WatchUpdate u;
      u.header_revision = decode_header(r).revision;
      const bool created = boolean(r, "created");
      if (created) {
        if (next_revision == 0) next_revision = u.header_revision + 1;
        backoff = kWatchBackoffMin;
        set_connected(true, url);
      }
      u.compact_revision = i64(r, "compact_revision");
      if (u.compact_revision > 0) {
        u.compacted = true;
        deliver(u);
        return End::kFinished;
      }
      if (boolean(r, "canceled")) {
        const std::string reason = text(r, "cancel_reason");
        u.error = Status(ClusterErrc::kRejected,
                         "etcd canceled the watch" + (reason.empty() ? "" : ": " + reason));
        deliver(u);
        return End::kFinished;
      }
      for (const json& ev : array_or_empty(r, "events")) {
        WatchEvent e;
        const std::string type = text(ev, "type");  // absent: PUT (proto3's default)
        if (type == "DELETE") {
          e.type = WatchEvent::Type::kDelete;
        } else if (!type.empty() && type != "PUT") {
          throw BadAnswer{"unknown event type " + type};
        }
        e.kv = decode_kv(object_or_empty(ev, "kv"));
        if (const json* prev = field(ev, "prev_kv")) e.prev_kv = decode_kv(*prev);
        // Already delivered before a reconnect: never twice.
        if (e.kv.mod_revision < next_revision) continue;
        u.events.push_back(std::move(e));
      }
      // (No progress notifications are asked for, so a message without
      // events says nothing about where to resume.)
      if (!u.events.empty()) {
        next_revision = u.events.back().kv.mod_revision + 1;
        deliver(u);
      }
    } catch (const BadAnswer&) {
      return End::kError;
    } catch (const json::exception&) {
      return End::kError;
    }
    return End::kContinue;
  }

  End run_once(const Endpoint& e) {
    pending.clear();
    beast::tcp_stream stream(ioc);
    beast::flat_buffer buffer;
    const auto deadline = Clock::now() + timeout;

    std::string error;
    std::vector<tcp::endpoint> addrs = resolve(ioc, e, &error);
    if (addrs.empty()) return End::kError;
    beast::error_code ec = asio::error::would_block;
    stream.expires_at(deadline);
    stream.async_connect(addrs, [&](beast::error_code r, const tcp::endpoint&) { ec = r; });
    if (!drive()) return End::kStopped;
    if (ec) return End::kError;
    // An idle watch sends nothing: TCP keepalive notices a member that is
    // cut off (a few seconds) rather than never.
    stream.socket().set_option(asio::socket_base::keep_alive(true), ec);
    const int fd = stream.socket().native_handle();
    const int idle = 2, interval = 1, count = 3;
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);

    json create = {{"key", b64(options.key)}};
    if (!options.range_end.empty()) create["range_end"] = b64(options.range_end);
    if (next_revision > 0) create["start_revision"] = to_s(next_revision);
    if (options.prev_kv) create["prev_kv"] = true;
    http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
    req.set(http::field::host, e.host_header);
    req.set(http::field::content_type, "application/json");
    // Without it a watch on a member cut off from its leader stays silent.
    req.set("Grpc-Metadata-hasleader", "true");
    req.body() = json{{"create_request", create}}.dump();
    req.prepare_payload();
    ec = asio::error::would_block;
    stream.expires_at(deadline);
    http::async_write(stream, req, [&](beast::error_code r, size_t) { ec = r; });
    if (!drive()) return End::kStopped;
    if (ec) return End::kError;

    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // a stream: unbounded over its life
    ec = asio::error::would_block;
    stream.expires_at(deadline);
    http::async_read_header(stream, buffer, parser, [&](beast::error_code r, size_t) { ec = r; });
    if (!drive()) return End::kStopped;
    if (ec || parser.get().result() != http::status::ok) return End::kError;

    // The stream has no deadline: a watch may be quiet for hours.
    stream.expires_never();
    char chunk[16 * 1024];
    while (true) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      ec = asio::error::would_block;
      // read_some: read() would wait until the chunk buffer is full or the
      // stream ends, holding back a message that has arrived.
      http::async_read_some(stream, buffer, parser, [&](beast::error_code r, size_t) { ec = r; });
      if (!drive()) return End::kStopped;
      if (ec == http::error::need_buffer) ec = {};
      const size_t got = sizeof chunk - parser.get().body().size;
      pending.append(chunk, got);
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string_view line(pending.data() + start, nl - start);
        if (line.find_first_not_of(" \r") == std::string_view::npos) continue;
        const End end = on_message(line, e.url);
        if (end != End::kContinue) return end;
      }
      pending.erase(0, start);
      if (pending.size() > kMaxWatchMessageBytes) return End::kError;
      if (ec || parser.is_done()) {
        // A stream error is {"error":...} without a newline, then EOF;
        // either way the connection is over.
        return End::kError;
      }
    }
  }
};

Watch::Watch(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Watch::~Watch() {
  impl_->stopping.store(true);
  impl_->ioc.stop();
  if (impl_->thread.joinable()) {
    if (impl_->thread.get_id() == std::this_thread::get_id()) {
      impl_->thread.detach();  // destroyed from its own callback: the thread holds impl_
    } else {
      impl_->thread.join();
    }
  }
}

bool Watch::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [&] { return impl_->connected || impl_->ended; });
  return impl_->connected;
}

std::string Watch::current_endpoint() const {
  std::lock_guard lock(impl_->mu);
  return impl_->current;
}

int64_t Watch::reconnects() const {
  std::lock_guard lock(impl_->mu);
  return impl_->reconnects;
}

bool Watch::ended() const {
  std::lock_guard lock(impl_->mu);
  return impl_->ended;
}

std::unique_ptr<Watch> EtcdClient::watch(WatchOptions options, WatchCallback callback) {
  auto impl = std::make_shared<Watch::Impl>();
  impl->endpoints = impl_->endpoints;
  impl->timeout = impl_->options.request_timeout;
  impl->options = std::move(options);
  impl->callback = std::move(callback);
  impl->endpoint = impl_->preferred.load() % impl->endpoints.size();
  // The thread keeps impl alive; the Watch stops and joins it.
  impl->thread = std::thread([impl] {
    name_this_thread("y-etcd");
    impl->run();
  });
  return std::unique_ptr<Watch>(new Watch(impl));
}

}  // namespace yantra::cluster
