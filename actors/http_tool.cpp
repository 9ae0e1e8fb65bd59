// The `http` tool (see http_tool.hpp for its contract).
//
// Threading and timeouts. A call runs on one tool worker thread from start to
// end. Beast's synchronous calls cannot time out (tcp_stream's expiry applies
// to asynchronous operations only), so every operation is started
// asynchronously with tcp_stream::expires_at(deadline) and then driven to
// completion by run() on an io_context that belongs to the connection: the
// call stays on its worker thread, needs no I/O thread of its own, and one
// deadline covers connect + TLS handshake + write + read. An io_context per
// connection (rather than per thread) is what lets a pooled connection move
// between worker threads: whoever has checked it out is the only one running
// its io_context. DNS lookups are synchronous getaddrinfo calls (an async
// resolve would start a resolver thread per io_context); they are bounded by
// the system resolver's own timeouts, and the remaining deadline is checked
// right after.
//
// Pooling. Idle keep-alive connections wait in a mutex-protected LIFO per
// origin (the most recently used one is the most likely to still be open),
// capped per origin and closed after idle_timeout_ms. A connection goes back
// only after a complete response that allows keep-alive. A pooled connection
// the server has closed in the meantime usually shows as readable and is
// dropped before use; if one still fails before any byte of the response
// arrived, the request is sent once more on a fresh connection (the
// Idempotency-Key makes that repeat safe for the server).
//
// TLS. Peers are verified against the system CA store plus options.ca_file,
// with OpenSSL's own host check (X509_check_host / X509_check_ip, the check
// asio's host_name_verification performs) set on the SSL object, so a failed
// check reports its reason ("hostname mismatch") through the verify result.
// SNI is sent for DNS names only (RFC 6066 forbids IP literals). Connections
// are closed without close_notify: the client never reads after its last
// response, so the exchange needs no truncation protection on that side.
#include "actors/http_tool.hpp"
#include "base/encoding.hpp"
#include "base/text.hpp"
#include "base/utf8.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

namespace yantra {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kExcerptBytes = 200;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr int64_t kMaxTimeoutMs = 24 * 3600 * 1000;

const std::set<std::string>& known_methods() {
  static const std::set<std::string> m = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
  return m;
}

// --- small text helpers ----------------------------------------------------

// Beast 1.74 speaks boost::string_view.
std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string lower(std::string_view s) {
  return ascii_lower(s);
}
std::string upper(std::string_view s) {
  return ascii_upper(s);
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// --- URLs --------------------------------------------------------------------

struct Url {
  bool tls = false;
  std::string host;  // lower case, IPv6 without brackets
  uint16_t port = 0;
  std::string target;  // origin-form: path and query, never empty

  bool default_port() const { return port == (tls ? 443 : 80); }
  std::string host_for_humans() const {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
  }
  std::string host_header() const {
    return default_port() ? host_for_humans() : host_for_humans() + ":" + std::to_string(port);
  }
  std::string origin() const {
    return std::string(tls ? "https://" : "http://") + host_for_humans() + ":" +
           std::to_string(port);
  }
};

// Returns an error message, or "" with *out filled.
std::string parse_url(std::string_view s, Url* out) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return "url contains spaces or control characters";
  }
  const size_t sep = s.find("://");
  if (sep == std::string_view::npos) return "url must start with http:// or https://";
  const std::string scheme = lower(s.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return "unsupported url scheme '" + scheme + "' (only http and https)";
  }
  Url url;
  url.tls = scheme == "https";
  url.port = url.tls ? 443 : 80;
  std::string_view rest = s.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return "credentials in the url are not supported; set an Authorization header";
  }
  std::string_view host = authority;
  std::optional<std::string_view> port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "url has an unterminated IPv6 address";
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "url has junk after the IPv6 address";
      port = after.substr(1);
    }
    beast::error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return "url has an invalid IPv6 address";
  } else {
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (char ch : host) {
      const auto c = static_cast<unsigned char>(ch);
      if (!std::isalnum(c) && ch != '-' && ch != '.' && ch != '_') {
        return "url has an invalid host";
      }
    }
  }
  if (host.empty()) return "url has no host";
  if (port && !port->empty()) {
    if (port->size() > 5 || !std::all_of(port->begin(), port->end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return "url has an invalid port";
    }
    const int p = std::stoi(std::string(*port));
    if (p < 1 || p > 65535) return "url port out of range";
    url.port = static_cast<uint16_t>(p);
  }
  url.host = lower(host);
  if (const size_t hash = tail.find('#'); hash != std::string_view::npos) {
    tail = tail.substr(0, hash);
  }
  url.target = (tail.empty() || tail.front() == '?') ? "/" : "";
  // Raw UTF-8 in a path is common in hand-written URLs; on the wire it must
  // be percent-encoded. Everything else is sent as written.
  for (char ch : tail) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      url.target += percent_encode(std::string_view(&ch, 1));
    } else {
      url.target += ch;
    }
  }
  *out = std::move(url);
  return "";
}

// Resolves a Location header against the URL that answered. Dot segments are
// left alone: servers accept them, and a redirect rarely uses them.
std::string resolve_location(const Url& base, const std::string& location, Url* out) {
  const size_t scheme_end = location.find("://");
  const size_t first_delim = location.find_first_of("/?#");
  if (scheme_end != std::string::npos && scheme_end < first_delim) {
    return parse_url(location, out);
  }
  const std::string scheme = base.tls ? "https:" : "http:";
  if (location.rfind("//", 0) == 0) return parse_url(scheme + location, out);
  std::string target;
  if (!location.empty() && location.front() == '/') {
    target = location;
  } else if (!location.empty() && location.front() == '?') {
    target = base.target.substr(0, base.target.find('?')) + location;
  } else {
    const std::string path = base.target.substr(0, base.target.find('?'));
    target = path.substr(0, path.rfind('/') + 1) + location;
  }
  return parse_url(scheme + "//" + base.host_header() + target, out);
}

// --- parameters --------------------------------------------------------------

struct Request {
  std::string method = "GET";
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;  // as given by the step
  bool has_body = false;
  std::string body;
  std::string default_content_type;  // used when the step sets none
  int64_t timeout_ms = 0;
  std::set<int> accept_status;
  std::optional<std::set<int>> retry_on;
  bool follow_redirects = false;

  bool has_header(std::string_view name) const {
    const std::string n = lower(name);
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& h) { return lower(h.first) == n; });
  }
  void drop_header(std::string_view name) {
    const std::string n = lower(name);
    std::erase_if(headers, [&](const auto& h) { return lower(h.first) == n; });
  }
};

std::optional<std::string> scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned() || v.is_number_float()) return v.dump();
  return std::nullopt;
}

std::string read_status_set(const json& p, const char* name, std::set<int>* out) {
  const json& v = p.at(name);
  if (!v.is_array()) return std::string(name) + " must be an array of HTTP status codes";
  for (const auto& s : v) {
    if (!s.is_number_integer() || s.get<int64_t>() < 100 || s.get<int64_t>() > 599) {
      return std::string(name) + " must be an array of HTTP status codes (100-599)";
    }
    out->insert(s.get<int>());
  }
  return "";
}

// Returns an error message, or "" with *out filled.
std::string parse_request(const ToolCall& call, const HttpToolOptions& opts, Request* out) {
  if (call.action != "request") return "unknown action '" + call.action + "' (http has: request)";
  const json& p = call.parameters;
  if (!p.is_object()) return "parameters must be an object";
  static const std::set<std::string> kKnown = {"method",        "url",      "headers",
                                               "query",         "body",     "timeout_ms",
                                               "accept_status", "retry_on", "follow_redirects"};
  for (const auto& [k, v] : p.items()) {
    if (kKnown.count(k) == 0) return "unknown parameter '" + k + "'";
  }
  Request r;
  if (p.contains("method")) {
    if (!p["method"].is_string()) return "method must be a string";
    r.method = upper(p["method"].get<std::string>());
    if (known_methods().count(r.method) == 0) return "unsupported method '" + r.method + "'";
  }
  if (!p.contains("url") || !p["url"].is_string()) return "url is required and must be a string";
  if (auto err = parse_url(p["url"].get<std::string>(), &r.url); !err.empty()) return err;

  if (p.contains("query") && !p["query"].is_null()) {
    if (!p["query"].is_object()) return "query must be an object";
    std::string q;
    for (const auto& [k, v] : p["query"].items()) {
      std::vector<json> values = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
      for (const auto& item : values) {
        auto text = scalar_text(item);
        if (!text) return "query value of '" + k + "' must be a string, number or boolean";
        q += (q.empty() ? "" : "&") + percent_encode(k) + "=" + percent_encode(*text);
      }
    }
    if (!q.empty()) {
      const bool has_query = r.url.target.find('?') != std::string::npos;
      const char last = r.url.target.back();
      r.url.target += (!has_query ? "?" : (last == '?' || last == '&') ? "" : "&") + q;
    }
  }

  if (p.contains("headers") && !p["headers"].is_null()) {
    if (!p["headers"].is_object()) return "headers must be an object of strings";
    for (const auto& [k, v] : p["headers"].items()) {
      if (!is_http_token(k)) return "invalid header name '" + k + "'";
      const std::string n = lower(k);
      if (n == "content-length" || n == "transfer-encoding") {
        return "header '" + k + "' is computed by the tool and cannot be set";
      }
      auto text = scalar_text(v);
      if (!text) return "header '" + k + "' must be a string";
      if (text->find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
        return "header '" + k + "' contains a line break";
      }
      r.headers.emplace_back(k, *text);
    }
  }

  if (p.contains("body") && !p["body"].is_null()) {
    r.has_body = true;
    if (p["body"].is_string()) {
      r.body = p["body"].get<std::string>();
    } else {
      r.body = p["body"].dump();
      r.default_content_type = "application/json";
    }
  }

  r.timeout_ms = call.timeout_ms > 0 ? call.timeout_ms : opts.default_timeout_ms;
  if (p.contains("timeout_ms")) {
    const json& t = p["timeout_ms"];
    if (!t.is_number_integer() || t.get<int64_t>() <= 0) {
      return "timeout_ms must be a positive integer";
    }
    r.timeout_ms = t.get<int64_t>();
  }
  // A day is longer than any sane HTTP exchange, and keeps now() + timeout
  // far from overflowing.
  r.timeout_ms = std::min<int64_t>(r.timeout_ms, kMaxTimeoutMs);
  if (p.contains("accept_status")) {
    if (auto err = read_status_set(p, "accept_status", &r.accept_status); !err.empty()) return err;
  }
  if (p.contains("retry_on")) {
    r.retry_on.emplace();
    if (auto err = read_status_set(p, "retry_on", &*r.retry_on); !err.empty()) return err;
  }
  if (p.contains("follow_redirects")) {
    if (!p["follow_redirects"].is_boolean()) return "follow_redirects must be a boolean";
    r.follow_redirects = p["follow_redirects"].get<bool>();
  }
  *out = std::move(r);
  return "";
}

}  // namespace

// The registry's description of "request" (docs/tools.md, "http"): the
// schema says what parse_request() above accepts, so that a definition is
// refused when it is stored rather than when the step runs.
ToolSpec http_tool_spec() {
  // A method in any case ("get" is sent as GET): [Gg][Ee][Tt] for each.
  std::string methods;
  for (const auto& m : known_methods()) {
    methods += methods.empty() ? "^(" : "|";
    for (char c : m) {
      methods += '[';
      methods += c;
      methods += static_cast<char>(c - 'A' + 'a');
      methods += ']';
    }
  }
  methods += ")$";
  const json scalar = {{"type", json::array({"string", "number", "boolean"})}};
  auto with = [](json schema, const char* description) {
    schema["description"] = description;
    return schema;
  };
  const json status_list = {
      {"type", "array"},
      {"items", {{"type", "integer"}, {"minimum", 100}, {"maximum", 599}}},
  };
  ActionSpec request("request");
  request.description =
      "Sends one HTTP(S) request and answers {status, headers, body}. A status ≥ 400 not in "
      "accept_status fails the step with code http_<status>.";
  request.input_schema = {
      {"type", "object"},
      {"required", {"url"}},
      {"additionalProperties", false},
      {"properties",
       {{"method",
         {{"type", "string"},
          {"pattern", methods},
          {"description", "GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS"}}},
        {"url",
         {{"type", "string"},
          {"minLength", 1},
          {"description", "http:// or https:// URL; may carry a secret via $concat"}}},
        {"headers",
         {{"type", json::array({"object", "null"})},
          {"additionalProperties", scalar},
          {"description", "name -> value; Content-Length and Transfer-Encoding are computed"}}},
        {"query",
         {{"type", json::array({"object", "null"})},
          {"additionalProperties",
           {{"anyOf", json::array({scalar, {{"type", "array"}, {"items", scalar}}})}}},
          {"description", "name -> value or list of values, appended percent-encoded"}}},
        {"body",
         {{"description", "a string is sent as is; anything else as JSON (application/json)"}}},
        {"timeout_ms",
         {{"type", "integer"},
          {"minimum", 1},
          {"description", "overrides the step's timeout_ms for the exchange (capped at a day)"}}},
        {"accept_status", with(status_list, "statuses ≥ 400 that do not fail the step")},
        {"retry_on",
         with(status_list, "statuses whose failure is retriable (default: 408, 429, 5xx)")},
        {"follow_redirects",
         {{"type", "boolean"}, {"description", "follow 301/302/303/307/308 (default false)"}}}}},
  };
  request.output_schema = {
      {"type", "object"},
      {"required", {"status", "headers", "body"}},
      {"properties",
       {{"status", {{"type", "integer"}}},
        {"headers",
         {{"type", "object"},
          {"additionalProperties", {{"type", "string"}}},
          {"description", "lower-case names; repeated fields joined with \", \""}}},
        {"body",
         {{"description", "parsed JSON for a JSON content type, otherwise the text (UTF-8)"}}}}},
  };
  request.side_effects = true;
  request.idempotent = false;  // it depends on the method and the server (Idempotency-Key is sent)
  request.default_timeout_ms = 0;  // the tool's own default applies (HttpToolOptions)
  ToolSpec spec{"http", {std::move(request)}};
  spec.version = "1";
  spec.description = "HTTP(S) requests with pooled keep-alive connections";
  return spec;
}

namespace {

// --- connections and the pool ------------------------------------------------

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection and the io_context that drives it. Owned by exactly one
// party at a time: the pool, or the worker thread that checked it out.
struct Connection {
  asio::io_context ioc{1};  // declared first: destroyed after the streams
  std::unique_ptr<PlainStream> plain;
  std::unique_ptr<TlsStream> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since{};

  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Runs the operation just started to completion on this thread.
  void drive() {
    ioc.restart();
    ioc.run();
  }

  // An idle keep-alive connection has nothing to read; if it has (EOF, a
  // reset, a stray byte) the server is done with it.
  bool looks_reusable() {
    if (!tcp().socket().is_open()) return false;
    pollfd p{tcp().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
};

class ConnectionPool {
 public:
  ConnectionPool(size_t max_idle_per_host, std::chrono::milliseconds idle_timeout)
      : max_idle_(max_idle_per_host), idle_timeout_(idle_timeout) {}

  std::unique_ptr<Connection> take(const std::string& origin) {
    for (;;) {
      std::unique_ptr<Connection> c;
      std::vector<std::unique_ptr<Connection>> expired;  // closed after the lock is released
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = idle_.find(origin);
        if (it == idle_.end()) return nullptr;
        drop_expired(it->second, Clock::now(), &expired);
        if (!it->second.empty()) {
          c = std::move(it->second.back());
          it->second.pop_back();
        }
        if (it->second.empty()) idle_.erase(it);
      }
      if (c == nullptr) return nullptr;
      if (c->looks_reusable()) return c;
    }
  }

  void put(const std::string& origin, std::unique_ptr<Connection> c) {
    std::vector<std::unique_ptr<Connection>> dropped;
    const auto now = Clock::now();
    c->idle_since = now;
    std::lock_guard<std::mutex> lock(mu_);
    if (max_idle_ == 0) {
      dropped.push_back(std::move(c));
      return;
    }
    auto& q = idle_[origin];
    q.push_back(std::move(c));
    while (q.size() > max_idle_) {
      dropped.push_back(std::move(q.front()));
      q.pop_front();
    }
    // Origins a flow stops calling would otherwise keep their sockets open
    // forever; sweep them now and then.
    if (now - last_sweep_ > idle_timeout_) {
      last_sweep_ = now;
      for (auto it = idle_.begin(); it != idle_.end();) {
        drop_expired(it->second, now, &dropped);
        it = it->second.empty() ? idle_.erase(it) : std::next(it);
      }
    }
  }

 private:
  using Queue = std::deque<std::unique_ptr<Connection>>;  // back = most recently used

  void drop_expired(Queue& q, Clock::time_point now,
                    std::vector<std::unique_ptr<Connection>>* out) {
    while (!q.empty() && now - q.front()->idle_since > idle_timeout_) {
      out->push_back(std::move(q.front()));
      q.pop_front();
    }
  }

  const size_t max_idle_;
  const std::chrono::milliseconds idle_timeout_;
  std::mutex mu_;
  std::unordered_map<std::string, Queue> idle_;
  Clock::time_point last_sweep_ = Clock::now();
};

// --- the exchange ------------------------------------------------------------

using Response = http::response<http::string_body>;

// How one attempt on one connection ended.
struct Exchange {
  beast::error_code ec;
  const char* phase = "";
  bool response_started = false;  // a byte of the response arrived
  bool reusable = false;          // the connection may go back to the pool
};

const std::error_category& beast_http_category() {
  return http::make_error_code(http::error::end_of_stream).category();
}

class HttpTool final : public Tool {
 public:
  explicit HttpTool(HttpToolOptions opts)
      : opts_(std::move(opts)),
        pool_(opts_.max_idle_per_host, std::chrono::milliseconds(opts_.idle_timeout_ms)) {
    init_tls();
  }

  ToolSpec spec() const override { return http_tool_spec(); }
  size_t max_concurrency() const override { return std::max<size_t>(1, opts_.max_concurrency); }

  ToolResult invoke(const ToolCall& call) override {
    try {
      return invoke_checked(call);
    } catch (const std::exception& e) {
      return ToolResult::failure("http_internal_error", e.what(), true);
    } catch (...) {
      return ToolResult::failure("http_internal_error", "unknown exception", true);
    }
  }

 private:
  void init_tls() {
    try {
      auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
      ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      ctx->set_default_verify_paths();
      if (!opts_.ca_file.empty()) ctx->load_verify_file(opts_.ca_file);
      ctx->set_verify_mode(ssl::verify_peer);
      tls_ = std::move(ctx);
    } catch (const std::exception& e) {
      tls_error_ = "cannot set up TLS (ca_file '" + opts_.ca_file + "'): " + e.what();
    }
  }

  ToolResult invoke_checked(const ToolCall& call) {
    Request req;
    if (auto err = parse_request(call, opts_, &req); !err.empty()) {
      return ToolResult::failure("invalid_parameters", err, false);
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(req.timeout_ms);
    for (int redirects = 0;; ++redirects) {
      Response res;
      if (auto failed = perform(req, call, deadline, &res)) return std::move(*failed);
      const int status = static_cast<int>(res.result_int());
      const bool redirect =
          status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
      auto location = res.find(http::field::location);
      if (!req.follow_redirects || !redirect || location == res.end()) {
        return to_result(req, res);
      }
      if (redirects >= opts_.max_redirects) {
        return ToolResult::failure("http_too_many_redirects",
                                   "more than " + std::to_string(opts_.max_redirects) +
                                       " redirects, last to " + std::string(location->value()),
                                   false);
      }
      Url next;
      if (auto err = resolve_location(req.url, std::string(location->value()), &next);
          !err.empty()) {
        return ToolResult::failure(
            "http_bad_redirect",
            "redirect to an unusable location '" + std::string(location->value()) + "': " + err,
            false);
      }
      // What browsers and curl do: 303, and 301/302 after a POST, turn into a
      // GET without a body; 307/308 repeat the request as it was.
      if (status == 303 || ((status == 301 || status == 302) && req.method == "POST")) {
        if (req.method != "HEAD") req.method = "GET";
        req.has_body = false;
        req.body.clear();
        req.drop_header("content-type");
      }
      // Credentials are for the origin they were written for.
      if (next.origin() != req.url.origin()) {
        req.drop_header("authorization");
        req.drop_header("proxy-authorization");
        req.drop_header("cookie");
      }
      req.url = std::move(next);
    }
  }

  http::request<http::string_body> build_message(const Request& req, const ToolCall& call) const {
    http::request<http::string_body> m{http::string_to_verb(req.method), req.url.target, 11};
    m.set(http::field::host, req.url.host_header());
    m.set(http::field::user_agent, opts_.user_agent);
    if (!call.idempotency_key.empty()) m.set("Idempotency-Key", call.idempotency_key);
    // The step's headers win over the defaults above (set() replaces).
    for (const auto& [name, value] : req.headers) m.set(name, value);
    if (req.has_body) {
      m.body() = req.body;
      if (!req.has_header("content-type") && !req.default_content_type.empty()) {
        m.set(http::field::content_type, req.default_content_type);
      }
    }
    m.prepare_payload();
    return m;
  }

  // One request/response on a pooled or new connection. Returns a failure,
  // or nothing with *res filled.
  std::optional<ToolResult> perform(const Request& req, const ToolCall& call,
                                    Clock::time_point deadline, Response* res) {
    const auto msg = build_message(req, call);
    const std::string origin = req.url.origin();
    std::unique_ptr<Connection> conn = pool_.take(origin);
    bool reused = conn != nullptr;
    for (;;) {
      if (conn == nullptr) {
        if (auto failed = connect(req.url, deadline, &conn)) return failed;
      }
      Exchange x = conn->tls ? exchange(*conn->tls, *conn, msg, deadline, res)
                             : exchange(*conn->plain, *conn, msg, deadline, res);
      if (!x.ec) {
        if (x.reusable) pool_.put(origin, std::move(conn));
        return std::nullopt;
      }
      conn.reset();
      // A pooled connection the server closed while it sat idle: the request
      // never reached anyone, so send it once more on a fresh connection.
      if (reused && !x.response_started && x.ec != beast::error::timeout) {
        reused = false;
        continue;
      }
      return transport_failure(x.phase, x.ec, req.url);
    }
  }

  std::optional<ToolResult> connect(const Url& url, Clock::time_point deadline,
                                    std::unique_ptr<Connection>* out) {
    if (url.tls && tls_ == nullptr) return ToolResult::failure("http_tls_error", tls_error_, false);
    auto conn = std::make_unique<Connection>();
    beast::error_code ec;
    tcp::resolver resolver(conn->ioc);
    const auto endpoints =
        resolver.resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service, ec);
    if (ec) {
      return ToolResult::failure("http_connect_error",
                                 "cannot resolve " + url.host + ": " + ec.message(), true);
    }
    if (Clock::now() >= deadline) return transport_failure("resolve", beast::error::timeout, url);

    if (url.tls) {
      conn->tls = std::make_unique<TlsStream>(conn->ioc, *tls_);
      SSL* ssl = conn->tls->native_handle();
      if (is_ip_literal(url.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl, url.host.c_str());
        SSL_set1_host(ssl, url.host.c_str());
      }
    } else {
      conn->plain = std::make_unique<PlainStream>(conn->ioc);
    }

    conn->tcp().expires_at(deadline);
    conn->tcp().async_connect(endpoints,
                              [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    conn->drive();
    if (ec) return transport_failure("connect", ec, url);
    conn->tcp().socket().set_option(tcp::no_delay(true), ec);

    if (conn->tls) {
      conn->tcp().expires_at(deadline);
      conn->tls->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      conn->drive();
      if (ec == beast::error::timeout) return transport_failure("TLS handshake", ec, url);
      if (ec && ec.category() == asio::error::get_ssl_category()) {
        const long verify = SSL_get_verify_result(conn->tls->native_handle());
        std::string why = ec.message();
        if (verify != X509_V_OK) {
          why = std::string("certificate verification failed: ") +
                X509_verify_cert_error_string(verify);
        }
        return ToolResult::failure("http_tls_error", "TLS with " + url.origin() + ": " + why,
                                   false);
      }
      if (ec) return transport_failure("TLS handshake", ec, url);
    }
    *out = std::move(conn);
    return std::nullopt;
  }

  template <class Stream>
  Exchange exchange(Stream& stream, Connection& c, const http::request<http::string_body>& msg,
                    Clock::time_point deadline, Response* res) {
    Exchange x;
    c.tcp().expires_at(deadline);
    http::async_write(stream, msg, [&](beast::error_code e, size_t) { x.ec = e; });
    c.drive();
    if (x.ec) {
      x.phase = "send request";
      return x;
    }
    // Interim 1xx responses (100 Continue, 103 Early Hints) precede the real one.
    for (;;) {
      http::response_parser<http::string_body> parser;
      parser.header_limit(kHeaderLimit);
      parser.body_limit(opts_.max_response_bytes);
      if (msg.method() == http::verb::head) parser.skip(true);
      // The header is read on its own because Beast 1.74 loses the
      // Content-Length vs body_limit error when a whole message is read in
      // one go (eager parsing overwrites it), and the string body would then
      // reserve whatever length the server announced.
      c.tcp().expires_at(deadline);
      http::async_read_header(stream, c.buffer, parser,
                              [&](beast::error_code e, size_t) { x.ec = e; });
      c.drive();
      x.response_started = x.response_started || parser.got_some();
      if (!x.ec && !parser.is_done()) {
        if (auto n = parser.content_length(); n && *n > opts_.max_response_bytes) {
          x.ec = http::error::body_limit;
        } else {
          http::async_read(stream, c.buffer, parser,
                           [&](beast::error_code e, size_t) { x.ec = e; });
          c.drive();
        }
      }
      // Over TLS, a body that ends at EOF usually ends without close_notify.
      if (x.ec == ssl::error::stream_truncated && parser.is_header_done() && parser.need_eof()) {
        beast::error_code eof;
        parser.put_eof(eof);
        if (!eof && parser.is_done()) x.ec = {};
      }
      if (x.ec) {
        x.phase = "read response";
        return x;
      }
      *res = parser.release();
      const unsigned status = res->result_int();
      if (status >= 100 && status < 200 && status != 101) continue;
      x.reusable = res->keep_alive() && msg.keep_alive() && c.buffer.size() == 0;
      return x;
    }
  }

  ToolResult transport_failure(const std::string& phase, const beast::error_code& ec,
                               const Url& url) const {
    const std::string where = phase + " " + url.origin();
    if (ec == beast::error::timeout) {
      return ToolResult::failure("http_timeout", "timed out: " + where, true);
    }
    if (ec == http::error::body_limit) {
      return ToolResult::failure("http_response_too_large",
                                 "response body from " + url.origin() + " exceeds " +
                                     std::to_string(opts_.max_response_bytes) + " bytes",
                                 false);
    }
    if (ec == http::error::header_limit) {
      return ToolResult::failure("http_response_too_large",
                                 "response headers from " + url.origin() + " exceed " +
                                     std::to_string(kHeaderLimit) + " bytes",
                                 false);
    }
    if (ec == http::error::end_of_stream) {
      return ToolResult::failure("http_connect_error", where + ": the server closed the connection",
                                 true);
    }
    if (ec.category() == beast_http_category()) {
      return ToolResult::failure("http_protocol_error", where + ": " + ec.message(), true);
    }
    return ToolResult::failure("http_connect_error", where + ": " + ec.message(), true);
  }

  static bool is_json_type(std::string_view content_type) {
    std::string t = lower(content_type.substr(0, content_type.find(';')));
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
    return t == "application/json" || t == "text/json" ||
           (t.size() > 5 && t.compare(t.size() - 5, 5, "+json") == 0);
  }

  static ToolResult to_result(const Request& req, Response& res) {
    const int status = static_cast<int>(res.result_int());
    json headers = json::object();
    for (const auto& f : res) {
      const std::string name = lower(sv(f.name_string()));
      const std::string value = utf8::replace_invalid(sv(f.value()));
      // Repeated fields (Set-Cookie, Vary) are joined as an HTTP list.
      auto it = headers.find(name);
      if (it == headers.end()) {
        headers[name] = value;
      } else {
        *it = it->get<std::string>() + ", " + value;
      }
    }
    const std::string& text = res.body();
    json body = json::value_t::discarded;
    auto ct = res.find(http::field::content_type);
    if (ct != res.end() && is_json_type(sv(ct->value())) && !text.empty()) {
      body = json::parse(text, nullptr, false);
    }
    if (body.is_discarded()) body = utf8::replace_invalid(text);

    if (status >= 400 && req.accept_status.count(status) == 0) {
      const bool retriable = req.retry_on ? req.retry_on->count(status) > 0
                                          : (status == 408 || status == 429 || status >= 500);
      std::string message = "HTTP " + std::to_string(status);
      if (!res.reason().empty()) message += " " + std::string(res.reason());
      // The path but not the query: query strings often carry API keys, and
      // this message is stored in the event log.
      const std::string path = req.url.target.substr(0, req.url.target.find('?'));
      message += " from " + req.method + " " + req.url.origin() + path.substr(0, 200);
      if (!text.empty()) {
        message += ": " + utf8::replace_invalid(utf8::truncate(text, kExcerptBytes));
        if (text.size() > kExcerptBytes) message += "...";
      }
      return ToolResult::failure("http_" + std::to_string(status), std::move(message), retriable);
    }
    return ToolResult::success(
        json{{"status", status}, {"headers", std::move(headers)}, {"body", std::move(body)}});
  }

  const HttpToolOptions opts_;
  std::unique_ptr<ssl::context> tls_;  // shared by all connections (SSL_CTX is thread-safe)
  std::string tls_error_;
  ConnectionPool pool_;
};

}  // namespace

Status check_http_tool_options(const HttpToolOptions& options) {
  if (options.max_concurrency == 0) {
    return Status(Errc::kInvalidConfig, "http tool: max_concurrency must be at least 1");
  }
  if (options.default_timeout_ms <= 0 || options.idle_timeout_ms < 0) {
    return Status(Errc::kInvalidConfig, "http tool: timeouts must be positive");
  }
  if (!options.ca_file.empty()) {
    try {
      ssl::context ctx(ssl::context::tls_client);
      ctx.load_verify_file(options.ca_file);
    } catch (const std::exception& e) {
      return Status(Errc::kInvalidConfig,
                    "http tool: cannot load ca_file '" + options.ca_file + "': " + e.what());
    }
  }
  return Status::ok();
}

std::shared_ptr<Tool> make_http_tool(HttpToolOptions options) {
  return std::make_shared<HttpTool>(std::move(options));
}

}  // namespace yantra
