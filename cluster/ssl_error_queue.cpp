// Works around a defect of CAF 0.17.6's openssl module (libcaf_openssl):
// it calls SSL_get_error() after SSL_read/SSL_write/SSL_accept/SSL_connect
// without clearing OpenSSL's per-thread error queue first, which OpenSSL
// requires. One TLS connection that fails its handshake (a port scanner, a
// peer with a foreign certificate) leaves an error in the queue of CAF's
// multiplexer thread, and the next read or write on a *healthy* link then
// reports SSL_ERROR_SSL: CAF closes it (measured: every such stranger
// dropped the node's links, tests/cluster/transport_test.cpp).
//
// These definitions interpose the four functions for the whole process (the
// executable's symbols win over libssl's): each clears the queue and calls
// libssl's own. Clearing before these calls is what OpenSSL documents as
// required for every caller, so other users (Beast's TLS) are unaffected.
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {
template <class F>
F real(const char* name) {
  static_assert(sizeof(F) == sizeof(void*));
  void* p = ::dlsym(RTLD_NEXT, name);
  F f;
  __builtin_memcpy(&f, &p, sizeof f);
  return f;
}
}  // namespace

extern "C" {
int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto f = real<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return f(ssl, buf, num);
}
int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto f = real<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return f(ssl, buf, num);
}
int SSL_accept(SSL* ssl) {
  static const auto f = real<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return f(ssl);
}
int SSL_connect(SSL* ssl) {
  static const auto f = real<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return f(ssl);
}
}

namespace yantra::cluster::detail {
// Referenced by transport.cpp so that the linker keeps this object (and its
// interposing definitions) when it links the static library.
void keep_ssl_error_queue_fix() {}
}  // namespace yantra::cluster::detail
