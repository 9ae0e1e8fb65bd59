// The client's operations are asynchronous Beast calls driven to completion
// by a private io_context: Beast's tcp_stream only enforces its expiry on
// asynchronous operations, and that expiry is what bounds connect, write and
// read by a single deadline. Name resolution is synchronous (numeric hosts
// and localhost resolve without I/O; a DNS name is bounded by the resolver's
// own timeouts).
//
// If writing the request fails (the server may answer 413 and close before
// reading a large body), the response is still read: what the server said is
// more useful than "broken pipe".
#include "cli/http_client.hpp"
#include "api/errc.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <optional>

namespace yantra::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr uint64_t kMaxResponseBytes = 256ull << 20;  // a large event page is still far below

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string BaseUrl::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + base_path;
}

Result<BaseUrl> parse_base_url(const std::string& url) {
  static const std::string kScheme = "http://";
  if (lower(url.substr(0, 8)) == "https://") {
    return Status(ApiErrc::kInvalidUrl,
                  "https:// is not supported by the CLI (use http://): " + url);
  }
  if (lower(url.substr(0, kScheme.size())) != kScheme) {
    return Status(ApiErrc::kInvalidUrl, "URL must start with http:// : '" + url + "'");
  }
  std::string rest = url.substr(kScheme.size());
  BaseUrl out;
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.base_path = rest.substr(slash);
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos)
      return Status(ApiErrc::kInvalidUrl, "unclosed '[' in '" + url + "'");
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return Status(ApiErrc::kInvalidUrl, "bad port in '" + url + "'");
      port_text = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return Status(ApiErrc::kInvalidUrl, "no host in '" + url + "'");
  if (!port_text.empty() || authority.find(':') != std::string::npos) {
    if (port_text.empty() || port_text.size() > 5) {
      return Status(ApiErrc::kInvalidUrl, "bad port in '" + url + "'");
    }
    unsigned long port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return Status(ApiErrc::kInvalidUrl, "bad port in '" + url + "'");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return Status(ApiErrc::kInvalidUrl, "bad port in '" + url + "'");
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string HttpReply::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

Result<HttpReply> HttpClient::request(const std::string& method, const std::string& target,
                                      const Headers& headers, const std::string& body,
                                      std::chrono::milliseconds extra_wait) const {
  net::io_context ioc;
  const auto deadline = std::chrono::steady_clock::now() + timeout_ + extra_wait;

  error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(base_.host, std::to_string(base_.port), ec);
  if (ec) {
    return Status(ApiErrc::kConnectFailed, "cannot resolve '" + base_.host + "': " + ec.message());
  }

  http::request<http::string_body> req;
  req.version(11);
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(base_.base_path + target);
  const bool v6 = base_.host.find(':') != std::string::npos;
  req.set(http::field::host,
          (v6 ? "[" + base_.host + "]" : base_.host) + ":" + std::to_string(base_.port));
  req.set(http::field::user_agent, "yantra-cli/0.1");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = body;
    req.prepare_payload();
  }

  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  std::optional<Status> failure;
  error_code write_error;

  auto on_read = [&](error_code rec, size_t) {
    if (!rec) return;
    if (rec == beast::error::timeout) {
      failure = Status(Errc::kTimeout, "no complete response from " + base_.text() + " within " +
                                           std::to_string((timeout_ + extra_wait).count()) + " ms");
    } else if (write_error) {
      failure = Status(ApiErrc::kProtocolError, "sending the request to " + base_.text() +
                                                    " failed: " + write_error.message());
    } else {
      failure = Status(ApiErrc::kProtocolError,
                       "bad or missing HTTP response from " + base_.text() + ": " + rec.message());
    }
  };
  auto on_write = [&](error_code wec, size_t) {
    if (wec == beast::error::timeout) {
      failure = Status(Errc::kTimeout, "sending the request to " + base_.text() + " timed out");
      return;
    }
    write_error = wec;
    stream.expires_at(deadline);
    http::async_read(stream, buffer, parser, on_read);
  };
  stream.expires_at(deadline);
  stream.async_connect(endpoints, [&](error_code cec, const tcp::endpoint&) {
    if (cec) {
      failure =
          Status(ApiErrc::kConnectFailed,
                 "cannot connect to " + base_.text() + ": " +
                     (cec == beast::error::timeout ? std::string("timed out") : cec.message()));
      return;
    }
    stream.expires_at(deadline);
    http::async_write(stream, req, on_write);
  });
  ioc.run();
  if (failure) return *failure;

  auto& res = parser.get();
  HttpReply out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(lower(std::string(field.name_string())), std::string(field.value()));
  }
  out.body = std::move(res.body());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

}  // namespace yantra::cli
