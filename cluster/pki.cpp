// The cluster PKI over OpenSSL 3's EVP and X509 APIs (no `openssl` command).
// Design: pki.hpp. What makes the derived CA certificate byte-identical on
// every node: the key is a pure function of the secret (HKDF-SHA256 seed of an
// Ed25519 key), Ed25519 signing is deterministic, and every field (serial,
// validity, names, extensions and their order) is either fixed or derived
// from the secret. Nothing reads the clock or the random generator for it.
#include "cluster/pki.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "cluster/transport_errc.hpp"

namespace yantra::cluster {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Deleter<EVP_KDF, EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Deleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

// Domain separation of everything derived from the secret: the same secret
// also keys the hello's HMAC (transport.cpp), under another label.
constexpr std::string_view kSalt = "yantra-cluster-pki-v1";
constexpr std::string_view kCaKeyInfo = "ca-key-ed25519";
constexpr std::string_view kCaSerialInfo = "ca-serial";
// 2025-01-01T00:00:00Z and RFC 5280's "no well-defined expiration" date: a
// fixed validity so that the certificate never depends on when it was made.
constexpr time_t kCaNotBefore = 1735689600;
constexpr char kCaNotAfter[] = "99991231235959Z";
constexpr long kNodeValiditySeconds = 10L * 365 * 24 * 3600;

// The first queued OpenSSL error as text (and the queue cleared).
std::string ssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Status tls_error(const std::string& what) {
  return Status(TransportErrc::kTlsSetupFailed, what + ": " + ssl_error());
}

Result<std::string> hkdf(std::string_view secret, std::string_view info, size_t n) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return tls_error("HKDF unavailable");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return tls_error("HKDF context");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt.data()),
                                        kSalt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(n, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), n, params) != 1) {
    return tls_error("HKDF derive");
  }
  return out;
}

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A DNS name in the SAN only when the id is one (letters, digits, '-', '.';
// no '_'), so that strict verifiers do not reject the certificate.
bool dns_name(const std::string& id) {
  if (id.front() == '.' || id.back() == '.' || id.front() == '-') return false;
  for (const char c : id) {
    if (c == '_') return false;
  }
  return true;
}

Status add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return tls_error(std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  return {};
}

Status set_name(X509_NAME* name, const std::string& cn) {
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("Yantra cluster"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return tls_error("certificate name");
  }
  return {};
}

struct Ca {
  PkeyPtr key;
  X509Ptr cert;
};

Result<Ca> derive_ca(std::string_view secret) {
  if (Status s = check_cluster_secret(secret); !s) return s;
  auto seed = hkdf(secret, kCaKeyInfo, 32);
  if (!seed) return seed.status();
  Ca ca;
  ca.key.reset(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed->data()), 32));
  OPENSSL_cleanse(seed->data(), seed->size());
  if (!ca.key) return tls_error("CA key");

  auto serial_bytes = hkdf(secret, kCaSerialInfo, 16);
  if (!serial_bytes) return serial_bytes.status();
  (*serial_bytes)[0] = static_cast<char>((*serial_bytes)[0] & 0x7f);  // positive
  (*serial_bytes)[0] = static_cast<char>((*serial_bytes)[0] | 0x40);  // 16 bytes long
  BnPtr serial(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes->data()), 16, nullptr));

  ca.cert.reset(X509_new());
  X509* c = ca.cert.get();
  if (!c || !serial || X509_set_version(c, 2) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c)) ||
      !ASN1_TIME_set(X509_getm_notBefore(c), kCaNotBefore) ||
      ASN1_TIME_set_string(X509_getm_notAfter(c), kCaNotAfter) != 1 ||
      X509_set_pubkey(c, ca.key.get()) != 1) {
    return tls_error("CA certificate fields");
  }
  // The CN carries 4 bytes derived from the secret, so that two clusters'
  // CAs are told apart in logs and error messages.
  const std::string cn = "Yantra cluster CA " + hex_encode(serial_bytes->substr(0, 4));
  if (Status s = set_name(X509_get_subject_name(c), cn); !s) return s;
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) return tls_error("CA issuer");
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (Status s = add_ext(c, c, nid, value); !s) return s;
  }
  if (X509_sign(c, ca.key.get(), nullptr) <= 0) return tls_error("CA signature");
  return ca;
}

Result<std::string> pem_of_cert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return tls_error("PEM certificate");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> pem_of_key(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return tls_error("PEM key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Writes `bytes` to `path` owner-only: a temporary file created 0600, synced,
// then renamed over the old one.
Status write_private(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status(TransportErrc::kTlsSetupFailed,
                  "cannot create " + tmp + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return Status(TransportErrc::kTlsSetupFailed,
                    "cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status(TransportErrc::kTlsSetupFailed,
                  "cannot write " + path + ": " + std::strerror(errno));
  }
  return {};
}

Result<X509Ptr> read_cert(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return tls_error("cannot read certificate " + path);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return tls_error("no PEM certificate in " + path);
  return cert;
}

}  // namespace

Status check_cluster_secret(std::string_view secret) {
  if (secret.size() < kMinClusterSecretBytes) {
    return Status(TransportErrc::kInvalidClusterKey,
                  "the cluster key has " + std::to_string(secret.size()) +
                      " bytes; it needs at least " + std::to_string(kMinClusterSecretBytes) +
                      " (e.g. from `openssl rand -hex 32`)");
  }
  return {};
}

Result<std::string> read_cluster_secret(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status(TransportErrc::kInvalidClusterKey,
                  "cannot read cluster key file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(TransportErrc::kInvalidClusterKey,
                  "cluster key file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    return Status(TransportErrc::kInvalidClusterKey, "cluster key file " + path + " has mode 0" +
                                                         mode.str() + "; it must be 0600 or 0400");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return Status(TransportErrc::kInvalidClusterKey, "cannot read cluster key file " + path);
  }
  std::string secret = buf.str();
  if (!secret.empty() && secret.back() == '\n') {
    secret.pop_back();
    if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  }
  if (Status s = check_cluster_secret(secret); !s) {
    return s.with_message("cluster key file " + path + ": " + s.message());
  }
  return secret;
}

Result<std::string> derive_ca_certificate_pem(std::string_view secret) {
  auto ca = derive_ca(secret);
  if (!ca) return ca.status();
  return pem_of_cert(ca->cert.get());
}

Result<TlsFiles> issue_node_credentials(std::string_view secret, const std::string& node_id,
                                        const std::string& dir) {
  if (!valid_node_id(node_id)) {
    return Status(TransportErrc::kTlsSetupFailed,
                  "node id '" + node_id + "' must be 1-64 characters of [A-Za-z0-9._-]");
  }
  auto ca = derive_ca(secret);
  if (!ca) return ca.status();

  // The node's own key: fresh at every start, never leaves this node.
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return tls_error("node key");
  auto serial_bytes = crypto::random_bytes(16);
  if (!serial_bytes) return serial_bytes.status();
  (*serial_bytes)[0] = static_cast<char>(((*serial_bytes)[0] & 0x7f) | 0x40);
  BnPtr serial(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes->data()), 16, nullptr));

  X509Ptr cert(X509_new());
  X509* c = cert.get();
  // An hour of slack before now for peers whose clocks are a little behind.
  if (!c || !serial || X509_set_version(c, 2) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c)) ||
      !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(c), kNodeValiditySeconds) ||
      X509_set_pubkey(c, key.get()) != 1 ||
      X509_set_issuer_name(c, X509_get_subject_name(ca->cert.get())) != 1) {
    return tls_error("node certificate fields");
  }
  if (Status s = set_name(X509_get_subject_name(c), node_id); !s) return s;
  if (Status s = add_ext(c, ca->cert.get(), NID_basic_constraints, "critical,CA:FALSE"); !s) {
    return s;
  }
  if (Status s = add_ext(c, ca->cert.get(), NID_key_usage, "critical,digitalSignature"); !s) {
    return s;
  }
  if (Status s = add_ext(c, ca->cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"); !s) {
    return s;
  }
  if (Status s = add_ext(c, ca->cert.get(), NID_authority_key_identifier, "keyid:always"); !s) {
    return s;
  }
  if (dns_name(node_id)) {
    const std::string san = "DNS:" + node_id;
    if (Status s = add_ext(c, ca->cert.get(), NID_subject_alt_name, san.c_str()); !s) return s;
  }
  if (X509_sign(c, ca->key.get(), nullptr) <= 0) return tls_error("node certificate signature");

  auto ca_pem = pem_of_cert(ca->cert.get());
  auto cert_pem = pem_of_cert(c);
  auto key_pem = pem_of_key(key.get());
  if (!ca_pem) return ca_pem.status();
  if (!cert_pem) return cert_pem.status();
  if (!key_pem) return key_pem.status();

  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(TransportErrc::kTlsSetupFailed,
                  "cannot create " + dir + ": " + std::strerror(errno));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return Status(TransportErrc::kTlsSetupFailed,
                  "cannot make " + dir + " owner-only: " + std::strerror(errno));
  }
  TlsFiles files{dir + "/ca.pem", dir + "/node.pem", dir + "/node.key"};
  // The key first: a certificate on disk always has its key next to it.
  if (Status s = write_private(files.key, *key_pem); !s) return s;
  if (Status s = write_private(files.certificate, *cert_pem); !s) return s;
  if (Status s = write_private(files.cafile, *ca_pem); !s) return s;
  return files;
}

Result<TlsFiles> check_operator_credentials(const TlsFiles& files) {
  auto ca = read_cert(files.cafile);
  if (!ca) return ca.status();
  auto cert = read_cert(files.certificate);
  if (!cert) return cert.status();
  BioPtr bio(BIO_new_file(files.key.c_str(), "r"));
  if (!bio) return tls_error("cannot read key " + files.key);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return tls_error("no PEM private key in " + files.key + " (or it is encrypted)");
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    return tls_error("key " + files.key + " does not match certificate " + files.certificate);
  }
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return tls_error("certificate store");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status(TransportErrc::kTlsSetupFailed, "certificate " + files.certificate +
                                                      " does not verify against " + files.cafile +
                                                      ": " + X509_verify_cert_error_string(err));
  }
  return files;
}

Status probe_tls_peer(const std::string& host, uint16_t port, const TlsFiles& files,
                      std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  const std::string where = host + ":" + std::to_string(port);
  auto failed = [&](const std::string& why) {
    ERR_clear_error();
    return Status(TransportErrc::kConnectFailed, "TLS probe of " + where + ": " + why);
  };
  // Waits until `fd` is ready for `events` or the deadline passes.
  auto wait = [&](int fd, short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n;
    do {
      n = ::poll(&p, 1, static_cast<int>(left));
    } while (n < 0 && errno == EINTR);
    return n > 0;
  };

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    return failed("cannot resolve the host");
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addrs(res, ::freeaddrinfo);
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed(std::string("socket: ") + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return failed(std::string("connect: ") + std::strerror(errno));
    if (!wait(fd, POLLOUT)) return failed("TCP connect timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return failed(std::string("connect: ") + std::strerror(err));
  }

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx.get(), files.certificate.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), files.cafile.c_str(), nullptr) != 1) {
    return failed("cannot load this node's TLS files: " + ssl_error());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // OpenSSL writes with write(2): a peer that resets the connection would
  // raise SIGPIPE. Blocked on this thread for the handshake, and a pending
  // one consumed before the mask is restored (what libcaf_openssl does).
  sigset_t pipe_mask, saved_mask;
  sigemptyset(&pipe_mask);
  sigaddset(&pipe_mask, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_mask, &saved_mask);
  std::unique_ptr<sigset_t, void (*)(sigset_t*)> restore(&saved_mask, [](sigset_t* saved) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGPIPE);
    timespec zero{};
    ::sigtimedwait(&mask, nullptr, &zero);
    ::pthread_sigmask(SIG_SETMASK, saved, nullptr);
  });
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return failed("SSL_new: " + ssl_error());
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl.get());
    if (r == 1) break;
    const int e = SSL_get_error(ssl.get(), r);
    if (e == SSL_ERROR_WANT_READ) {
      if (!wait(fd, POLLIN)) {
        return failed("no TLS handshake within " + std::to_string(timeout.count()) +
                      " ms (the peer accepts TCP but does not answer)");
      }
    } else if (e == SSL_ERROR_WANT_WRITE) {
      if (!wait(fd, POLLOUT)) return failed("TLS handshake write timed out");
    } else {
      return failed("TLS handshake failed: " + ssl_error());
    }
  }
  // A polite close (close_notify), so the peer's TLS layer sees a clean end
  // rather than an unexpected EOF.
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return {};
}

Result<std::string> certificate_common_name(const std::string& path) {
  auto cert = read_cert(path);
  if (!cert) return cert.status();
  char buf[256];
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, buf,
                                          sizeof buf);
  if (n < 0) return Status(TransportErrc::kTlsSetupFailed, "no CN in " + path);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace yantra::cluster
