// The node-to-node transport of the cluster: CAF 0.17 remote actors over
// mutual TLS, an authenticated hello, named services with bytes in and bytes
// out, a timeout on every request, a bound on unacknowledged bytes per peer,
// and reconnection after a peer drops.
//
// Why each piece (measured facts: ../shared/notes/caf-remote-facts.md):
// - Mutual TLS (CAF's openssl module; credentials from cluster/pki.hpp): a
//   plaintext middleman port aborts the process on a crafted 32-byte BASP
//   handshake, so nobody without a certificate of the cluster CA may reach
//   CAF's parser. TLS is verified against the CA only; CAF checks no name.
// - The hello, therefore: after TLS, each side proves it holds the cluster
//   secret with an HMAC-SHA256 over {protocol version, node id, cluster id}
//   and the other side's fresh nonce, so the peer's node id is authenticated
//   and a hello cannot be replayed. The hello travels in CAF builtin types
//   only (atoms, integers, strings), so that a node of any protocol version
//   can parse it and refuse an incompatible one with kIncompatibleVersion
//   instead of timing out. A listener serves requests only from senders
//   whose CAF node completed the hello.
// - Liveness: CAF's heartbeats (middleman.heartbeat-interval and
//   connection-timeout, set from the options): a link silent for
//   connection_timeout is closed at the next heartbeat tick, so a hung peer
//   (SIGSTOP, partition) is dropped within connection_timeout +
//   heartbeat_interval; its pending requests fail and reconnects start.
//   They also bound connecting to a hung peer (TCP accepted, no answer),
//   which without them blocks in CAF's remote_actor forever. (They were off
//   for a while, suspected of dropping healthy links after a stranger's
//   failed TLS handshake; the real cause was libcaf_openssl's stale OpenSSL
//   error queue, fixed by cluster/ssl_error_queue.cpp.) Failure detection
//   in the consensus sense stays with the protocol above (leases, request
//   timeouts): a stall shorter than connection_timeout is invisible here.
// - CAF fails no pending request when a link drops, and has no backpressure:
//   the transport fails a dead peer's pending requests at once with
//   kPeerUnavailable, refuses a request while its peer is down, and refuses
//   (does not queue) a request that would take the peer's unacknowledged
//   bytes over max_unacked_bytes (kBackpressure).
// - Reconnects: each peer ever connected has its own reconnect thread
//   (connecting blocks: never on a CAF scheduler thread), which, while the
//   link is down, makes one attempt at a time every reconnect_interval and
//   monitors the new handle. Threads are bounded by the peer count, and a
//   hung peer delays the reconnects of no other peer.
//
// Anyone holding the cluster key file can act as any node: it can mint a
// certificate and compute every hello. The key file is the cluster's root
// credential.
//
// One Transport per process (a second one is a second CAF actor system).
// CAF 0.17.6 gives each actor system of a process a node id made of the
// process id and a host hash whose last byte is a per-process 8-bit counter
// of actor systems (measured: ...00#<pid> and ...01#<pid> for two systems).
// So node ids differ only by that counter, which wraps after 256 actor
// systems: a later Transport of the same process can then carry the node id
// of an earlier one, and a peer that still routes that id takes the new
// connection for another route to the old node (CAF keys its routing, its
// proxies and its connection cache by node id, and so does the hello's
// "which CAF node is authenticated" bookkeeping). Two transports of one
// process connected to the same peer were also seen to disturb each other's
// links. Nothing in the cluster needs more than one: tests run the second
// node in a child process (tests/cluster/transport_peer.cpp); the one test
// with two in a process connects them only to each other.
//
// Threads and lifecycle: create() starts an actor system (scheduler
// "sharing", scheduler_threads threads); connect() starts the peer's
// reconnect thread; the destructor fails what is pending, stops them all
// and returns when they are gone. Known gap: destroying a Transport while
// a peer is hung (SIGSTOP) was seen to block inside CAF's actor system
// shutdown (~caf::actor_system) until after that peer was gone; not
// root-caused. A node that stops normally has no hung peer in that sense
// for long: the controller's failure handling kills or fences it. Every public method may be called
// from any thread except that connect() and call() block and must not be called on a CAF scheduler
// thread (a handler or a callback of this transport: refused with Errc::kInvalidArgument). Handlers
// and callbacks run on the transport's threads and must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "cluster/pki.hpp"
#include "cluster/transport_errc.hpp"

namespace yantra::cluster {

// The hello's protocol version. Raise it when messages between nodes change
// in a way an older node cannot handle; nodes of different versions refuse
// each other (kIncompatibleVersion) until a rule here accepts both.
// 2: log requests may come as a LogGroup (cluster/append_pipe.hpp).
constexpr uint32_t kProtocolVersion = 2;

struct TransportOptions {
  std::string node_id;     // this node, as peers expect it in connect()
  std::string cluster_id;  // peers of another cluster are refused (kWrongPeer)
  std::string secret;      // the cluster key (read_cluster_secret): keys the hello's HMAC
  TlsFiles tls;            // issue_node_credentials() or check_operator_credentials()
  uint32_t protocol_version = kProtocolVersion;  // tests play other versions with it
  // CAF's heartbeats: required, connection_timeout >= 2 x heartbeat_interval
  // (kInvalidArgument otherwise). A silent link drops within
  // connection_timeout + heartbeat_interval.
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds connection_timeout{2000};
  // connect(): both hello round trips together (TCP + TLS are bounded by
  // connection_timeout + heartbeat_interval through CAF's heartbeats).
  std::chrono::milliseconds hello_timeout{3000};
  std::chrono::milliseconds reconnect_interval{200};
  size_t max_unacked_bytes = 8u << 20;  // per peer: request payloads not yet answered
  size_t scheduler_threads = 2;
};

// A connected peer, as returned by connect(); requests name it by node id.
struct PeerHandle {
  std::string node_id;
};

struct PeerStats {
  bool connected = false;
  uint64_t connects = 0;     // successful connects, the first one included
  size_t unacked_bytes = 0;  // request payloads sent and not yet answered
  size_t in_flight = 0;      // requests sent and not yet answered
  // The last successful connect: TCP + TLS (the TLS probe and CAF's
  // remote_actor), then the hello.
  std::chrono::microseconds tls_connect_time{0};
  std::chrono::microseconds hello_time{0};
};

// The answer to a request, delivered exactly once: the payload, or an error.
using Callback = std::function<void(Result<std::string>)>;
// A handler's way to answer: call it once, from any thread, at any time. An
// error reaches the requester as kRemoteError with "code: message". If the
// last copy is destroyed unanswered, the requester gets kRemoteError.
using Reply = std::function<void(Result<std::string>)>;
// Serves one named service: `from_node` is the authenticated peer.
using Handler = std::function<void(const std::string& from_node, std::string payload, Reply reply)>;

class Transport {
 public:
  // kInvalidClusterKey for a short secret; kTlsSetupFailed when CAF's TLS
  // module will not start with the files.
  static Result<std::unique_ptr<Transport>> create(TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Registers (or replaces) the handler of `service`. Requests for a service
  // with no handler fail with kUnknownService at the requester.
  void handle(const std::string& service, Handler handler);

  // Accepts peers on host:port over TLS (port 0: any free port). Returns the
  // bound port; kListenFailed when it cannot bind. `host` must be the cluster
  // interface (e.g. 127.0.0.1), never left empty (all interfaces).
  Result<uint16_t> listen(const std::string& host, uint16_t port);

  // Connects to the node listening at host:port, exchanges hellos and checks
  // that it is `expected_node_id` of this cluster. Blocks (see above), for a
  // peer that accepts TCP and never answers at most connection_timeout +
  // heartbeat_interval + hello_timeout. From then on the transport keeps the
  // peer connected, reconnecting after drops.
  // Errors: kConnectFailed (TCP/TLS, including a peer of a foreign CA),
  // kIncompatibleVersion, kWrongPeer, kAuthenticationFailed, kRequestTimeout.
  Result<PeerHandle> connect(const std::string& host, uint16_t port,
                             const std::string& expected_node_id);

  // Sends `payload` to `service` on `peer`; `done` gets the answer, on a
  // transport thread, unless this returns an error, in which case the
  // request was not sent and `done` is never called: kPeerUnavailable (not
  // connected now), kBackpressure (too many unacknowledged bytes). After
  // sending, `done` gets kRequestTimeout, kPeerUnavailable (the link
  // dropped), kUnknownService, kRemoteError or the payload.
  Status request(const PeerHandle& peer, const std::string& service, std::string payload,
                 std::chrono::milliseconds timeout, Callback done);

  // request() and wait for the answer. Blocks (see above).
  Result<std::string> call(const PeerHandle& peer, const std::string& service, std::string payload,
                           std::chrono::milliseconds timeout);

  // nullopt for a node never connected.
  std::optional<PeerStats> peer_stats(const std::string& node_id) const;

  const std::string& node_id() const;

  struct Impl;

 private:
  static Status request_impl(Impl& impl, const PeerHandle& peer, const std::string& service,
                             std::string payload, std::chrono::milliseconds timeout, Callback done);
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::cluster
