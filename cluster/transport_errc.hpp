// Error codes of the cluster's node-to-node transport (cluster/transport.hpp)
// and its PKI (cluster/pki.hpp): why a peer was refused, why a request could
// not be sent or answered. None reaches an HTTP client directly today; when a
// forwarded request fails, api/errors.cpp still gives each code a status
// (mostly 503: the cluster is not reachable right now, try again).
// How codes work and how to add one: base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class TransportErrc : uint16_t {
  // The cluster key file is shorter than 32 bytes, unreadable or insecure.
  kInvalidClusterKey = 1,
  // Certificates or keys could not be made, written, read or do not match.
  kTlsSetupFailed,
  // TCP or TLS to the peer failed (refused, handshake rejected, timed out).
  kConnectFailed,
  // The peer speaks a protocol version this node cannot talk to.
  kIncompatibleVersion,
  // The peer is another node than expected, or of another cluster.
  kWrongPeer,
  // The hello's HMAC did not verify: the peer does not hold the cluster key.
  kAuthenticationFailed,
  // The peer is not connected (down, reconnecting, or never connected).
  kPeerUnavailable,
  // Too many unacknowledged bytes to this peer already: refused, not queued.
  kBackpressure,
  // No reply within the request's timeout.
  kRequestTimeout,
  // The peer has no handler for the named service.
  kUnknownService,
  // The peer's handler answered with an error (its code and text in the message).
  kRemoteError,
  // listen() could not bind the address.
  kListenFailed,
};

inline constexpr std::array kAllTransportErrc = {
    TransportErrc::kInvalidClusterKey, TransportErrc::kTlsSetupFailed,
    TransportErrc::kConnectFailed,     TransportErrc::kIncompatibleVersion,
    TransportErrc::kWrongPeer,         TransportErrc::kAuthenticationFailed,
    TransportErrc::kPeerUnavailable,   TransportErrc::kBackpressure,
    TransportErrc::kRequestTimeout,    TransportErrc::kUnknownService,
    TransportErrc::kRemoteError,       TransportErrc::kListenFailed,
};

template <>
struct ErrcTraits<TransportErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kTransport;
  static constexpr std::string_view wire(TransportErrc e) {
    switch (e) {
      case TransportErrc::kInvalidClusterKey: return "invalid_cluster_key";
      case TransportErrc::kTlsSetupFailed: return "tls_setup_failed";
      case TransportErrc::kConnectFailed: return "peer_connect_failed";
      case TransportErrc::kIncompatibleVersion: return "incompatible_protocol_version";
      case TransportErrc::kWrongPeer: return "wrong_peer";
      case TransportErrc::kAuthenticationFailed: return "peer_authentication_failed";
      case TransportErrc::kPeerUnavailable: return "peer_unavailable";
      case TransportErrc::kBackpressure: return "peer_backpressure";
      case TransportErrc::kRequestTimeout: return "peer_request_timeout";
      case TransportErrc::kUnknownService: return "unknown_service";
      case TransportErrc::kRemoteError: return "remote_error";
      case TransportErrc::kListenFailed: return "cluster_listen_failed";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
