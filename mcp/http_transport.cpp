// MCP's Streamable HTTP transport (spec 2025-06-18/2025-11-25 "Transports"):
// every client message is a POST of one JSON-RPC message to the server's
// URL with `Accept: application/json, text/event-stream`; a notification is
// answered 202, a request either with one JSON body or with an SSE stream
// that carries the response (and maybe notifications before it). The
// session id of the initialize answer (`Mcp-Session-Id`) and the negotiated
// `MCP-Protocol-Version` go with every later request.
//
// Threads and deadlines. Like actors/http_tool.cpp: each exchange runs on
// its caller's thread with an io_context of its own, every operation
// started asynchronously under tcp_stream's expiry (the deadline) and
// driven by run_for() slices of 20 ms, between which the CancelFlag is
// looked at (a set flag closes the socket). One connection per exchange: an
// SSE answer may leave the connection in any state, and the stream is
// closed as soon as the awaited response arrived (a server that keeps
// streaming afterwards is not waited for).
//
// Sessions. A server that no longer knows the session answers 404 (the
// spec) — the reference server answers 400 "Bad Request: No valid session
// ID provided" — both are reported as kNotFound when we sent a session id,
// so the client initializes again. The server's GET stream (server-
// initiated messages outside a request) is not opened: tools/list_changed
// is picked up when it rides on an answer, and on refresh.
//
// Beast and OpenSSL stay in this translation unit.
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>

#include "base/errc.hpp"
#include "base/text.hpp"
#include "mcp/sse.hpp"
#include "mcp/transport.hpp"

namespace yantra::mcp {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kMaxBody = 64u << 20;  // bounds a misbehaving server's answer
constexpr size_t kExcerpt = 300;

std::string excerpt(const std::string& s) {
  return s.size() <= kExcerpt ? s : s.substr(0, kExcerpt) + "...";
}

// Drives `ioc` until *done; a set cancel flag closes the stream (its
// handler then runs with operation_aborted). False when cancelled.
template <class Close>
bool drive(asio::io_context& ioc, const bool& done, const CancelFlag* cancel, Close close) {
  ioc.restart();
  while (!done) {
    ioc.run_for(std::chrono::milliseconds(20));
    if (done) break;
    if (cancel && cancel->cancelled.load()) {
      close();
      ioc.restart();
      ioc.run();
      return false;
    }
    if (ioc.stopped()) ioc.restart();
  }
  return true;
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(HttpTarget target, HttpUrl url) : target_(std::move(target)), url_(std::move(url)) {
    if (url_.tls) {
      tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
      tls_->set_default_verify_paths();
      tls_->set_verify_mode(ssl::verify_peer);
    }
  }

  Result<json> request(const json& msg, int64_t id, Clock::time_point deadline,
                       const CancelFlag* cancel) override {
    return exchange(msg, id, deadline, cancel);
  }
  Status notify(const json& msg, Clock::time_point deadline) override {
    auto r = exchange(msg, std::nullopt, deadline, nullptr);
    return r.ok() ? Status::ok() : r.status();
  }
  void set_protocol_version(const std::string& version) override {
    std::lock_guard<std::mutex> lock(mu_);
    version_ = version;
  }
  void reset() override {
    std::string session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session.swap(session_);
      version_.clear();
    }
    // Tell the server the session ended (best effort, short): it frees it.
    if (!session.empty()) {
      (void)exchange_raw(http::verb::delete_, "", std::nullopt, session,
                         Clock::now() + std::chrono::milliseconds(500), nullptr);
    }
  }

 private:
  Result<json> exchange(const json& msg, std::optional<int64_t> id, Clock::time_point deadline,
                        const CancelFlag* cancel) {
    std::string session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session = session_;
    }
    return exchange_raw(http::verb::post, msg.dump(), id, session, deadline, cancel);
  }

  Result<json> exchange_raw(http::verb verb, std::string body, std::optional<int64_t> id,
                            const std::string& session, Clock::time_point deadline,
                            const CancelFlag* cancel) {
    asio::io_context ioc;
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(url_.host, url_.port, ec);
    if (ec) return Status(Errc::kUnavailable, "cannot resolve " + url_.host + ": " + ec.message());
    if (Clock::now() >= deadline) return Status(Errc::kTimeout, "deadline passed while resolving");
    if (url_.tls) {
      beast::ssl_stream<beast::tcp_stream> stream(ioc, *tls_);
      if (!is_ip(url_.host)) SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str());
      SSL_set1_host(stream.native_handle(), url_.host.c_str());
      return run(ioc, stream, beast::get_lowest_layer(stream), endpoints, verb, std::move(body), id,
                 session, deadline, cancel, true);
    }
    beast::tcp_stream stream(ioc);
    return run(ioc, stream, stream, endpoints, verb, std::move(body), id, session, deadline, cancel,
               false);
  }

  static bool is_ip(const std::string& host) {
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
  }

  template <class Stream>
  Result<json> run(asio::io_context& ioc, Stream& stream, beast::tcp_stream& lowest,
                   const tcp::resolver::results_type& endpoints, http::verb verb, std::string body,
                   std::optional<int64_t> id, const std::string& session,
                   Clock::time_point deadline, const CancelFlag* cancel, bool tls) {
    auto close = [&] {
      beast::error_code ignored;
      lowest.socket().close(ignored);
    };
    auto failed = [&](const char* what, const beast::error_code& e, bool cancelled) -> Status {
      if (cancelled) return Status(Errc::kUnavailable, "cancelled");
      if (e == beast::error::timeout || Clock::now() >= deadline) {
        return Status(Errc::kTimeout, std::string("deadline passed while ") + what);
      }
      return Status(Errc::kUnavailable, std::string(what) + " " + url_.host + ":" + url_.port +
                                            " failed: " + e.message());
    };
    lowest.expires_at(deadline);
    bool done = false;
    beast::error_code ec;
    lowest.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    if (!drive(ioc, done, cancel, close) || ec) {
      Status s = failed("connecting to", ec, cancel && cancel->cancelled);
      // Nothing was sent: a new handshake may reach a restarted server.
      if (s.is(Errc::kUnavailable) && s.message() != "cancelled") {
        return Status(Errc::kNotFound, s.message());
      }
      return s;
    }
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      if (tls) {
        done = false;
        stream.async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
          ec = e;
          done = true;
        });
        if (!drive(ioc, done, cancel, close) || ec)
          return failed("TLS handshake with", ec, cancel && cancel->cancelled);
      }
    }
    http::request<http::string_body> req{verb, url_.target, 11};
    req.set(http::field::host, url_.host + ":" + url_.port);
    req.set(http::field::user_agent, "yantra-mcp");
    req.set(http::field::accept, "application/json, text/event-stream");
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!version_.empty()) req.set("MCP-Protocol-Version", version_);
    }
    if (!session.empty()) req.set("Mcp-Session-Id", session);
    for (const auto& [k, v] : target_.headers) req.set(k, v);
    if (verb == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
    }
    req.prepare_payload();
    done = false;
    http::async_write(stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    if (!drive(ioc, done, cancel, close) || ec)
      return failed("sending to", ec, cancel && cancel->cancelled);

    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    done = false;
    http::async_read_header(stream, buffer, parser, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    if (!drive(ioc, done, cancel, close) || ec)
      return failed("reading from", ec, cancel && cancel->cancelled);
    const auto& head = parser.get();
    const int status = static_cast<int>(head.result_int());
    const std::string content_type = ascii_lower(std::string(head[http::field::content_type]));
    const bool sse = content_type.find("text/event-stream") != std::string::npos;
    if (status >= 200 && status < 300 && verb == http::verb::post && id.has_value()) {
      auto sid = head["Mcp-Session-Id"];
      if (!sid.empty()) {
        std::lock_guard<std::mutex> lock(mu_);
        session_ = std::string(sid);
      }
    }
    if (!id.has_value() && status >= 200 && status < 300) {
      close();
      return json(nullptr);  // a notification (202) or a DELETE: nothing to read
    }

    // The body: raw (JSON or an error text) or SSE events.
    SseParser events_parser;
    std::vector<SseEvent> events;
    std::string raw;
    std::optional<json> answer;
    char chunk[16384];
    while (!parser.is_done() && !answer) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      done = false;
      http::async_read_some(stream, buffer, parser, [&](beast::error_code e, size_t) {
        ec = e;
        done = true;
      });
      const bool not_cancelled = drive(ioc, done, cancel, close);
      if (ec == http::error::need_buffer) ec = {};
      if (!not_cancelled || ec) {
        if ((status >= 200 && status < 300) || raw.empty()) {
          return failed("reading from", ec, cancel && cancel->cancelled);
        }
        break;  // an error status: what arrived is enough for the message
      }
      const size_t n = sizeof chunk - parser.get().body().size;
      if (sse && status >= 200 && status < 300) {
        events.clear();
        events_parser.feed(std::string_view(chunk, n), events);
        if (events_parser.pending_bytes() > kMaxBody) {
          return Status(Errc::kUnavailable, "an SSE event larger than 64 MiB");
        }
        for (auto& ev : events) {
          if (ev.event != "message") continue;
          json msg = json::parse(ev.data, nullptr, false);
          if (msg.is_discarded()) continue;
          if (deliver(msg, id, answer)) break;
        }
      } else {
        raw.append(chunk, n);
        if (raw.size() > kMaxBody)
          return Status(Errc::kUnavailable, "an answer larger than 64 MiB");
      }
    }
    close();
    if (status == 404 && !session.empty()) {
      return Status(Errc::kNotFound, "the server does not know session (HTTP 404)");
    }
    if (status == 400 && !session.empty() &&
        ascii_lower(raw).find("session") != std::string::npos) {
      return Status(Errc::kNotFound, "the server does not know session: " + excerpt(raw));
    }
    if (status < 200 || status >= 300) {
      return Status(Errc::kUnavailable, "HTTP " + std::to_string(status) + " from " + url_.host +
                                            ":" + url_.port + ": " + excerpt(raw));
    }
    if (answer) return *answer;
    if (!sse) {
      json msg = json::parse(raw, nullptr, false);
      if (msg.is_discarded()) {
        return Status(Errc::kUnavailable, "the answer is not JSON: " + excerpt(raw));
      }
      if (msg.is_array()) {
        for (const auto& m : msg) {
          if (deliver(m, id, answer)) break;
        }
      } else {
        deliver(msg, id, answer);
      }
      if (answer) return *answer;
    }
    return Status(Errc::kUnavailable, "the server's answer ended without the response");
  }

  // A message of an answer: the awaited response (true), or a notification
  // for the sink.
  bool deliver(const json& msg, std::optional<int64_t> id, std::optional<json>& answer) {
    switch (classify(msg)) {
      case MessageKind::kResponse:
        if (response_id(msg) == id) {
          answer = msg;
          return true;
        }
        return false;
      case MessageKind::kNotification:
        if (sink) sink(msg);
        return false;
      default: return false;  // server requests (sampling, elicitation, ping) are not served
    }
  }

  HttpTarget target_;
  HttpUrl url_;
  std::unique_ptr<ssl::context> tls_;
  std::mutex mu_;
  std::string session_;
  std::string version_;
};

}  // namespace

std::string parse_http_url(const std::string& url, HttpUrl* out) {
  for (char ch : url) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return "url contains spaces or control characters";
  }
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return "url must start with http:// or https://";
  const std::string scheme = ascii_lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") return "url must start with http:// or https://";
  HttpUrl u;
  u.tls = scheme == "https";
  std::string rest = url.substr(sep + 3);
  const size_t slash = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (const size_t hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
  if (u.target.empty() || u.target[0] != '/') u.target = "/" + u.target;
  if (authority.find('@') != std::string::npos) return "url must not contain credentials";
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return "url has an unclosed IPv6 literal";
    u.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return "url has a malformed host";
      u.port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return "url has no host";
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(u.port) == 0 || std::stoi(u.port) > 65535) {
    return "url has an invalid port";
  }
  u.host = ascii_lower(u.host);
  *out = std::move(u);
  return "";
}

std::unique_ptr<Transport> make_http_transport(HttpTarget target) {
  HttpUrl url;
  (void)parse_http_url(target.url, &url);  // validated by the registrar
  return std::make_unique<HttpTransport>(std::move(target), std::move(url));
}

}  // namespace yantra::mcp
