// The test HTTP(S) server (see http_test_server.hpp).
//
// Shutdown is the delicate part of a thread-per-connection server with
// blocking calls: closing a socket another thread is blocked on does not wake
// it on Linux. So stop() shuts down (SHUT_RDWR) every open connection, which
// does wake a blocked read, and connects to the listening port once so the
// accepting thread returns from accept() and sees the stop flag. A session
// removes its descriptor from the open set before closing it, under the same
// mutex, so stop() never shuts down a number the kernel has reused.
#include "tests/http_test_server.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace yantra::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// --- certificates --------------------------------------------------------------

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test TLS setup failed: ") + what);
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A CA when issuer is null (self-signed), else a server certificate.
Cert make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
               const std::string& san, long serial) {
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  const bool ca = issuer == nullptr;
  add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(x, &ctx, NID_key_usage,
          ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add_ext(x, &ctx, NID_subject_key_identifier, "hash");
  if (!ca) {
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
    if (!san.empty()) add_ext(x, &ctx, NID_subject_alt_name, san);
  }
  check(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return bio_text(bio.get());
}

std::string pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return bio_text(bio.get());
}

// --- requests --------------------------------------------------------------------

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace

TestTls make_test_tls(const std::vector<std::string>& names) {
  PKey ca_key(EVP_EC_gen("P-256"));
  PKey key(EVP_EC_gen("P-256"));
  check(ca_key != nullptr && key != nullptr, "EVP_EC_gen");
  std::string san;
  for (const auto& n : names) {
    beast::error_code ec;
    asio::ip::make_address(n, ec);
    san += (san.empty() ? "" : ",") + std::string(ec ? "DNS:" : "IP:") + n;
  }
  Cert ca = make_cert(ca_key.get(), "yantra test CA", nullptr, nullptr, "", 1);
  Cert cert = make_cert(key.get(), names.empty() ? "server" : names.front(), ca.get(), ca_key.get(),
                        san, 2);
  return TestTls{pem(ca.get()), pem(cert.get()), pem(key.get())};
}

uint16_t unused_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

struct HttpTestServer::Impl {
  TestHandler handler;
  Options options;
  std::unique_ptr<ssl::context> tls_ctx;
  asio::io_context ioc;  // sync calls only: nobody runs it
  tcp::acceptor acceptor{ioc};
  uint16_t port = 0;
  std::thread accept_thread;

  mutable std::mutex mu;
  std::condition_variable cv;  // wakes handler delays at stop
  bool stopping = false;
  std::set<int> open_fds;
  std::vector<std::thread> sessions;
  size_t connections = 0;
  std::vector<TestRequest> received;

  void accept_loop() {
    for (;;) {
      tcp::socket sock(ioc);
      beast::error_code ec;
      acceptor.accept(sock, ec);
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      if (ec) continue;
      const uint64_t id = ++connections;
      open_fds.insert(sock.native_handle());
      sessions.emplace_back(
          [this, id, s = std::make_shared<tcp::socket>(std::move(sock))] { session(*s, id); });
    }
  }

  void session(tcp::socket& sock, uint64_t id) {
    const int fd = sock.native_handle();
    try {
      if (tls_ctx) {
        ssl::stream<tcp::socket&> stream(sock, *tls_ctx);
        beast::error_code ec;
        stream.handshake(ssl::stream_base::server, ec);
        if (!ec) serve(stream, id);
      } else {
        serve(sock, id);
      }
    } catch (...) {
      // A broken client connection ends its session, nothing more.
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      open_fds.erase(fd);
    }
    beast::error_code ignored;
    sock.close(ignored);
  }

  template <class Stream>
  void serve(Stream& stream, uint64_t id) {
    beast::flat_buffer buffer;
    for (uint64_t n = 1;; ++n) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec) return;
      const auto& req = parser.get();

      TestRequest tr;
      tr.method = std::string(req.method_string());
      tr.target = std::string(req.target());
      const size_t q = tr.target.find('?');
      tr.path = tr.target.substr(0, q);
      if (q != std::string::npos) {
        std::string_view rest = std::string_view(tr.target).substr(q + 1);
        while (!rest.empty()) {
          const size_t amp = rest.find('&');
          const std::string_view pair = rest.substr(0, amp);
          const size_t eq = pair.find('=');
          tr.query[percent_decode(pair.substr(0, eq))] =
              eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
          rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        }
      }
      for (const auto& f : req) {
        tr.headers[lower(sv(f.name_string()))] = std::string(f.value());
      }
      tr.body = req.body();
      tr.connection = id;
      tr.index_on_connection = n;
      {
        std::lock_guard<std::mutex> lock(mu);
        received.push_back(tr);
      }

      TestResponse r;
      try {
        r = handler(tr);
      } catch (const std::exception& e) {
        r = TestResponse::text(500, std::string("handler threw: ") + e.what());
      }
      if (r.delay.count() > 0) {
        std::unique_lock<std::mutex> lock(mu);
        if (cv.wait_for(lock, r.delay, [&] { return stopping; })) return;
      }
      if (r.drop) return;

      http::response<http::string_body> res;
      res.version(req.version());
      res.result(static_cast<unsigned>(r.status));
      if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
      for (const auto& [name, value] : r.headers) res.set(name, value);
      res.body() = std::move(r.body);
      res.keep_alive(req.keep_alive() && !r.close);
      if (r.chunked) {
        res.chunked(true);
      } else {
        res.prepare_payload();
      }
      if (req.method() == http::verb::head) {
        http::response_serializer<http::string_body> sr{res};
        http::write_header(stream, sr, ec);
      } else {
        http::write(stream, res, ec);
      }
      if (ec || !res.keep_alive() || r.close_silently) return;
    }
  }
};

HttpTestServer::HttpTestServer(TestHandler handler)
    : HttpTestServer(std::move(handler), Options{}) {}

HttpTestServer::HttpTestServer(TestHandler handler, Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->options = std::move(options);
  if (impl_->options.https) {
    if (impl_->options.tls.cert_pem.empty()) impl_->options.tls = make_test_tls();
    const TestTls& t = impl_->options.tls;
    impl_->tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls_ctx->use_certificate_chain(asio::buffer(t.cert_pem));
    impl_->tls_ctx->use_private_key(asio::buffer(t.key_pem), ssl::context::pem);
  }
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

HttpTestServer::~HttpTestServer() {
  stop();
}

void HttpTestServer::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  impl_->cv.notify_all();
  {
    // Wake the accept() call (see the comment at the top of the file).
    tcp::socket s(impl_->ioc);
    beast::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), impl_->port), ec);
  }
  impl_->accept_thread.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  // No session starts after the accept thread is gone; join them all.
  for (auto& t : impl_->sessions) t.join();
}

uint16_t HttpTestServer::port() const {
  return impl_->port;
}

std::string HttpTestServer::url(const std::string& path) const {
  return std::string(impl_->options.https ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(impl_->port) + path;
}

const TestTls& HttpTestServer::tls() const {
  return impl_->options.tls;
}

void HttpTestServer::write_ca_file(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << impl_->options.tls.ca_cert_pem;
}

size_t HttpTestServer::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->connections;
}

size_t HttpTestServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->received.size();
}

size_t HttpTestServer::requests_with_key(const std::string& key) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  size_t n = 0;
  for (const auto& r : impl_->received) n += r.header("idempotency-key") == key;
  return n;
}

std::vector<std::string> HttpTestServer::idempotency_keys() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> keys;
  for (const auto& r : impl_->received) keys.push_back(r.header("idempotency-key"));
  return keys;
}

std::vector<TestRequest> HttpTestServer::received() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->received;
}

}  // namespace yantra::testing
