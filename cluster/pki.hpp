// The cluster's TLS credentials. Node-to-node links are mutual TLS (CAF's
// openssl module), so that nobody outside the cluster reaches CAF's BASP
// parser: a plaintext middleman port aborts the process on one crafted
// 32-byte handshake (../shared/notes/caf-remote-facts.md, section 6).
//
// Two ways to get credentials:
// - Derived (the default): every node derives the same cluster CA from the
//   cluster key file's secret. The CA key is an Ed25519 key whose 32-byte seed
//   is HKDF-SHA256(secret); Ed25519 signatures are deterministic (RFC 8032),
//   and the serial number, validity and names are fixed functions of the
//   secret, so every node computes a byte-identical CA certificate and no CA
//   file needs to be shipped. Each node then makes a fresh Ed25519 key at
//   every start and a certificate signed by that CA, naming its node id (CN
//   and, when it is a DNS name, a DNS SAN), valid 10 years, and writes the
//   three PEM files owner-only (directory 0700, files 0600).
//   Consequence to document for operators: any holder of the cluster key file
//   can mint a certificate, so it can act as any node. The key file is the
//   cluster's root credential.
// - Operator-given files (cafile + certificate + key): checked (readable, the
//   key matches the certificate, the certificate chains to the CA) and used
//   as they are.
//
// Ed25519 (not P-256): deterministic signatures make the derived CA
// certificate identical on every node without carrying RFC 6979 code, and
// CAF 0.17.6's openssl module with OpenSSL 3 accepts it (measured: TLS 1.3,
// tests/cluster/transport_test.cpp).
//
// Thread-safety: every function may be called from any thread. Only pki.cpp
// compiles against OpenSSL.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace yantra::cluster {

// At least this many bytes of secret (e.g. `openssl rand -hex 32` gives 64).
constexpr size_t kMinClusterSecretBytes = 32;

// Paths of the PEM files CAF's options `openssl.cafile`,
// `openssl.certificate` and `openssl.key` point to.
struct TlsFiles {
  std::string cafile;
  std::string certificate;
  std::string key;
};

// The secret in the cluster key file's bytes: one trailing "\n" (or "\r\n")
// stripped, nothing else. TransportErrc::kInvalidClusterKey when the file
// cannot be read, is readable by group or others, or holds fewer than
// kMinClusterSecretBytes bytes.
Result<std::string> read_cluster_secret(const std::string& path);

// kInvalidClusterKey unless `secret` has at least kMinClusterSecretBytes.
Status check_cluster_secret(std::string_view secret);

// The derived cluster CA certificate, PEM. A pure function of `secret`: the
// same bytes on every node and at every call.
Result<std::string> derive_ca_certificate_pem(std::string_view secret);

// Derives the CA, makes a fresh node key and a certificate for `node_id`
// signed by the CA, and writes ca.pem, node.pem and node.key into `dir`
// (created 0700 if missing; files 0600, written to a temporary name and
// renamed, so a reader never sees half a file). `node_id`: 1-64 characters
// of [A-Za-z0-9._-]. Errors: kInvalidClusterKey, kTlsSetupFailed.
Result<TlsFiles> issue_node_credentials(std::string_view secret, const std::string& node_id,
                                        const std::string& dir);

// Operator-given files: each readable, the key matching the certificate, the
// certificate verifying against the cafile. kTlsSetupFailed naming the file
// and the problem otherwise.
Result<TlsFiles> check_operator_credentials(const TlsFiles& files);

// Whether the node at host:port completes a TLS handshake (with these
// credentials) within `timeout`; the connection is then closed. The
// transport calls it before CAF's remote_actor: a peer that accepts TCP but
// never answers (SIGSTOP) would otherwise leave CAF with a TLS connection
// that, once CAF gives up on it, is never closed and keeps CAF's multiplexer
// thread busy (libcaf_openssl 0.17.6 waits for a handshake to finish before
// it closes the socket), one per attempt, and holds up the actor system's
// shutdown until the peer resumes or dies. kConnectFailed, naming the step.
Status probe_tls_peer(const std::string& host, uint16_t port, const TlsFiles& files,
                      std::chrono::milliseconds timeout);

// The CN of the certificate in the PEM file at `path` (tests, diagnostics).
Result<std::string> certificate_common_name(const std::string& path);

}  // namespace yantra::cluster
