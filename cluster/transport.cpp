// The cluster transport over CAF 0.17's openssl middleman. Design, threads
// and guarantees: transport.hpp. This is the only file of cluster/ that
// compiles CAF.
//
// Actors of one transport:
// - the endpoint (published with caf::openssl::publish): answers hellos,
//   remembers which CAF nodes completed one (keyed by the CAF node of the
//   sender, the same for every actor of the peer's actor system), and runs
//   the named services' handlers for authenticated senders only;
// - the client ("out"): sends requests with their timeout and hands the
//   answers to Impl::complete(); it also monitors peers' endpoints, so that
//   a dropped link reaches Impl::on_down().
// Every message between nodes uses CAF builtin types (atoms, integers,
// strings, actor handles), so nothing needs add_message_type, and a node of
// another protocol version can still parse the hello and refuse it.
//
// The hello (two round trips; MACs are HMAC-SHA256 under a key derived from
// the cluster secret, over length-prefixed fields):
//   client -> (hello, version, client id, cluster id, nonce_c)
//   server -> (hello, version, refusal, server id, cluster id, nonce_s,
//              mac_s = MAC("server", server version, server id, cluster, client id, nonce_c,
//              nonce_s))
//   client checks version, cluster, mac_s, then that server id == expected
//   client -> (hello2, mac_c = MAC("client", client version, client id, cluster, server id,
//   nonce_s, nonce_c), out) server -> (hello2, refusal); on success it serves the client's CAF
//   node.
// Each side's MAC covers the other's fresh nonce, so a recorded hello does
// not authenticate a later connection.
#include "cluster/transport.hpp"
#include "base/thread_name.hpp"

#include <atomic>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/crypto.hpp"

namespace yantra::cluster {
namespace detail {
void keep_ssl_error_queue_fix();  // ssl_error_queue.cpp
}

using hello_atom = caf::atom_constant<caf::atom("yhello")>;
using hello2_atom = caf::atom_constant<caf::atom("yhello2")>;
using req_atom = caf::atom_constant<caf::atom("yreq")>;
using resp_atom = caf::atom_constant<caf::atom("yresp")>;
using reply_atom = caf::atom_constant<caf::atom("yreply")>;
using call_atom = caf::atom_constant<caf::atom("ycall")>;
using watch_atom = caf::atom_constant<caf::atom("ywatch")>;

namespace {

// Names CAF's threads (scheduler workers, the middleman's loop) for top -H
// and perf; CAF 0.17 leaves them unnamed.
class NameThreads final : public caf::thread_hook {
 public:
  explicit NameThreads(const char* name) : name_(name) {}
  void init(caf::actor_system&) override {}
  void thread_started() override { name_this_thread(name_); }
  void thread_terminates() override {}

 private:
  const char* name_;
};

using Clock = std::chrono::steady_clock;

// Set on every thread that runs one of this file's actors: a CAF scheduler
// thread, where connect() and call() must not block.
thread_local bool t_scheduler_thread = false;

// The answer kinds of a request (resp_atom, kind, text, payload).
enum : uint16_t {
  kOk = 0,
  kNoService = 1,
  kHandlerError = 2,
  kNotAuthenticated = 3,
};

constexpr size_t kNonceBytes = 32;
// Hellos waiting for their second round trip; a member (only they get past
// TLS) has no reason to hold more than a few.
constexpr size_t kMaxChallenges = 1024;

// Whether two protocol versions can talk. Equal only, for now: the first
// version that can also serve an older one widens this.
bool compatible(uint32_t a, uint32_t b) {
  return a == b;
}

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_field(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

std::string hello_key(const std::string& secret) {
  return crypto::hmac_sha256(secret, "yantra-cluster-hello-key-v1");
}

std::string server_mac(const std::string& key, uint32_t version, const std::string& server,
                       const std::string& cluster, const std::string& client,
                       const std::string& nonce_c, const std::string& nonce_s) {
  std::string m = "yantra-hello-server";
  put_u32(m, version);
  for (const auto* f : {&server, &cluster, &client, &nonce_c, &nonce_s}) put_field(m, *f);
  return crypto::hmac_sha256(key, m);
}

std::string client_mac(const std::string& key, uint32_t version, const std::string& client,
                       const std::string& cluster, const std::string& server,
                       const std::string& nonce_s, const std::string& nonce_c) {
  std::string m = "yantra-hello-client";
  put_u32(m, version);
  for (const auto* f : {&client, &cluster, &server, &nonce_s, &nonce_c}) put_field(m, *f);
  return crypto::hmac_sha256(key, m);
}

bool is_sec(const caf::error& e, caf::sec code) {
  return e.category() == caf::atom("system") && e.code() == static_cast<uint8_t>(code);
}

// Whether `target` has terminated (for a proxy: its link dropped). Monitoring
// a terminated actor enqueues its down message at once, within monitor().
bool is_dead(caf::blocking_actor& self, const caf::actor& target) {
  bool dead = false;
  self.monitor(target);
  self.receive([&](caf::down_msg& dm) { dead = dead || dm.source == target.address(); },
               caf::after(std::chrono::seconds(0)) >> [] {});
  if (!dead) self.demonitor(target);
  return dead;
}

// Where Reply objects send their answer: closed (and the handle dropped)
// before the actor system goes away, so a late reply from a user thread is
// dropped instead of touching a dead system.
struct Gate {
  std::mutex mu;
  bool open = true;
  caf::actor endpoint;
  uint64_t token = 0;  // proves a reply_atom message came from this process
};

struct ReplyState {
  std::shared_ptr<Gate> gate;
  uint64_t id = 0;
  std::atomic<bool> done{false};

  void send(uint16_t kind, std::string text, std::string payload) {
    if (done.exchange(true)) return;
    std::lock_guard lk(gate->mu);
    if (!gate->open) return;
    caf::anon_send(gate->endpoint, reply_atom::value, gate->token, id, kind, std::move(text),
                   std::move(payload));
  }
  ~ReplyState() {
    send(kHandlerError, "internal_error: the handler dropped the request without answering", "");
  }
};

Reply make_reply(std::shared_ptr<Gate> gate, uint64_t id) {
  auto st = std::make_shared<ReplyState>();
  st->gate = std::move(gate);
  st->id = id;
  return [st](Result<std::string> r) {
    if (r.ok()) {
      st->send(kOk, "", std::move(r).value());
    } else {
      st->send(kHandlerError, r.status().to_string(), "");
    }
  };
}

struct Challenge {
  uint32_t version = 0;
  std::string client;
  std::string nonce_c;
  std::string nonce_s;
};

struct EndpointState {
  std::map<caf::node_id, Challenge> challenges;
  std::map<caf::node_id, std::string> authed;  // CAF node -> authenticated node id
  std::unordered_map<uint64_t, caf::response_promise> promises;
  uint64_t next_promise = 0;
};

struct OutState {
  std::map<caf::actor_addr, std::pair<std::string, uint64_t>> watched;  // -> node, generation
};

}  // namespace

struct Transport::Impl {
  TransportOptions opts;
  std::string mac_key;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor endpoint;
  caf::actor out;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();

  struct Peer {
    std::string host;
    uint16_t port = 0;
    caf::actor handle;
    bool up = false;
    uint64_t generation = 0;
    size_t unacked = 0;
    size_t in_flight = 0;
    uint64_t connects = 0;
    std::chrono::microseconds tls_time{0};
    std::chrono::microseconds hello_time{0};
  };
  struct Pending {
    std::string node;
    size_t bytes = 0;
    Callback done;
  };

  mutable std::mutex mu;  // peers, pending, next_id, stopping
  std::condition_variable cv;
  std::map<std::string, Peer> peers;
  std::unordered_map<uint64_t, Pending> pending;
  uint64_t next_id = 0;
  bool stopping = false;
  // One reconnect thread per peer ever connected (see reconnect_loop):
  // bounded by the peer count, and a hung peer holds up only its own.
  std::map<std::string, std::thread> reconnectors;

  mutable std::mutex handlers_mu;
  std::map<std::string, Handler> handlers;

  Handler find_handler(const std::string& service) const {
    std::lock_guard lk(handlers_mu);
    auto it = handlers.find(service);
    return it == handlers.end() ? Handler() : it->second;
  }

  // The answer to request `id` (from the client actor), or its failure.
  void complete(uint64_t id, Result<std::string> r) {
    Callback done;
    {
      std::lock_guard lk(mu);
      auto it = pending.find(id);
      if (it == pending.end()) return;  // already failed (link dropped, shutdown)
      if (auto p = peers.find(it->second.node); p != peers.end()) {
        p->second.unacked -= it->second.bytes;
        p->second.in_flight -= 1;
      }
      done = std::move(it->second.done);
      pending.erase(it);
    }
    done(std::move(r));
  }

  // Fails every pending request of `node` (all when empty) with `why`.
  void fail_pending(const std::string& node, const Status& why) {
    std::vector<Callback> failed;
    {
      std::lock_guard lk(mu);
      for (auto it = pending.begin(); it != pending.end();) {
        if (node.empty() || it->second.node == node) {
          if (auto p = peers.find(it->second.node); p != peers.end()) {
            p->second.unacked -= it->second.bytes;
            p->second.in_flight -= 1;
          }
          failed.push_back(std::move(it->second.done));
          it = pending.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& f : failed) f(why);
  }

  // The link to `node` (connection `generation`) dropped: CAF would leave
  // its pending requests to their timeouts; fail them now and reconnect.
  void on_down(const std::string& node, uint64_t generation) {
    {
      std::lock_guard lk(mu);
      auto it = peers.find(node);
      if (it == peers.end() || it->second.generation != generation || !it->second.up) return;
      it->second.up = false;
      it->second.handle = nullptr;
    }
    cv.notify_all();
    fail_pending(node, Status(TransportErrc::kPeerUnavailable,
                              "the link to node " + node + " dropped; reconnecting"));
  }

  struct Connected {
    caf::actor handle;
    std::chrono::microseconds tls_time{0};
    std::chrono::microseconds hello_time{0};
  };

  // TLS connect and hello, on the calling (non-scheduler) thread. Bounded
  // for a hung peer (TCP accepted, nothing answered):
  // - First a TLS handshake of our own (probe_tls_peer, pki.hpp, bounded by
  //   connection_timeout): CAF must not get a connection to a hung peer,
  //   because libcaf_openssl never closes one whose handshake is pending
  //   (a leaked socket per attempt, a busy multiplexer thread, and an actor
  //   system that cannot shut down until the peer resumes or dies).
  // - If the peer hangs just after the probe, CAF's remote_actor fails with sec::connection_timeout
  // at the BASP
  //   broker's next heartbeat tick (within heartbeat_interval): 0.17.6
  //   starts a connecting endpoint's last_seen at the clock's epoch, so the
  //   first tick finds it timed out. The same tick can cut a healthy connect
  //   whose handshake is still in flight (the chance is about handshake
  //   time / heartbeat_interval), so that error is retried until `deadline`;
  //   other errors (refused, TLS refused) are final at once.
  // - Right after a link drops, remote_actor can return the dropped link's
  //   proxy: CAF's middleman keeps a (host, port) -> proxy cache that it
  //   clears on its own down message, which may come after ours. That proxy
  //   is dead and drops every message silently (a hello to it would only
  //   time out after hello_timeout: the occasional 3 s reconnect), so it is
  //   recognised (monitoring a dead actor yields its down message at once)
  //   and asked for again, until `deadline`.
  // - Both hello round trips share hello_timeout.
  Result<Connected> connect_once(const std::string& host, uint16_t port,
                                 const std::string& expected, Clock::time_point deadline) {
    const std::string where = host + ":" + std::to_string(port);
    caf::scoped_actor self{*sys};
    const auto t0 = Clock::now();
    // A hung peer is found here, before CAF holds a connection to it.
    if (Status alive = probe_tls_peer(host, port, opts.tls, opts.connection_timeout); !alive) {
      return alive;
    }
    caf::expected<caf::actor> h{caf::actor{}};
    for (;;) {
      h = caf::openssl::remote_actor(*sys, host, port);
      const bool stale = h && is_dead(*self, *h);
      if (stale) {
        h = caf::make_error(caf::sec::cannot_connect_to_node,
                            "CAF's connection cache returned the dropped link");
      }
      const bool retry = stale || (!h && is_sec(h.error(), caf::sec::connection_timeout));
      if (!retry || Clock::now() >= deadline || is_stopping()) break;
      // Let CAF's middleman handle its down message and forget the link.
      if (stale) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!h) {
      return Status(TransportErrc::kConnectFailed,
                    "cannot connect to " + where + " over TLS: " + sys->render(h.error()));
    }
    const auto t1 = Clock::now();
    const auto hello_deadline = t1 + opts.hello_timeout;
    auto remaining = [&] {
      return std::max(caf::timespan{std::chrono::milliseconds(1)},
                      caf::timespan{hello_deadline - Clock::now()});
    };
    auto nonce_c = crypto::random_bytes(kNonceBytes);
    if (!nonce_c) return nonce_c.status();

    Status st;
    std::string nonce_s;
    self->request(*h, remaining(), hello_atom::value, opts.protocol_version, opts.node_id,
                  opts.cluster_id, *nonce_c)
        .receive(
            [&](hello_atom, uint32_t version, const std::string& refusal, const std::string& node,
                const std::string& cluster, const std::string& ns, const std::string& mac) {
              const std::string versions = "the peer at " + where + " speaks protocol version " +
                                           std::to_string(version) + ", this node " +
                                           std::to_string(opts.protocol_version);
              if (refusal == "incompatible_version" ||
                  !compatible(version, opts.protocol_version)) {
                st = Status(TransportErrc::kIncompatibleVersion, versions);
              } else if (refusal == "wrong_cluster" || cluster != opts.cluster_id) {
                st = Status(TransportErrc::kWrongPeer, "the peer at " + where +
                                                           " belongs to cluster '" + cluster +
                                                           "', not '" + opts.cluster_id + "'");
              } else if (!refusal.empty()) {
                st = Status(TransportErrc::kConnectFailed,
                            "the peer at " + where + " refused the hello: " + refusal);
              } else if (!crypto::constant_time_equal(
                             mac, server_mac(mac_key, version, node, cluster, opts.node_id,
                                             *nonce_c, ns))) {
                st = Status(TransportErrc::kAuthenticationFailed,
                            "the peer at " + where +
                                " does not prove it holds this cluster's key (hello MAC)");
              } else if (node != expected) {
                st = Status(TransportErrc::kWrongPeer, "the peer at " + where + " is node '" +
                                                           node + "', expected '" + expected + "'");
              } else {
                nonce_s = ns;
              }
            },
            [&](caf::error& e) { st = hello_error(e, where); });
    if (!st) return st;

    const std::string mac = client_mac(mac_key, opts.protocol_version, opts.node_id,
                                       opts.cluster_id, expected, nonce_s, *nonce_c);
    self->request(*h, remaining(), hello2_atom::value, mac, out)
        .receive(
            [&](hello2_atom, const std::string& refusal) {
              if (!refusal.empty()) {
                st = Status(TransportErrc::kAuthenticationFailed,
                            "the peer at " + where + " refused this node's hello: " + refusal);
              }
            },
            [&](caf::error& e) { st = hello_error(e, where); });
    if (!st) return st;
    const auto t2 = Clock::now();
    return Connected{*h, std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0),
                     std::chrono::duration_cast<std::chrono::microseconds>(t2 - t1)};
  }

  Status hello_error(const caf::error& e, const std::string& where) {
    if (is_sec(e, caf::sec::request_timeout)) {
      return Status(TransportErrc::kRequestTimeout, "no hello from " + where + " within " +
                                                        std::to_string(opts.hello_timeout.count()) +
                                                        " ms");
    }
    return Status(TransportErrc::kConnectFailed,
                  "hello with " + where + " failed: " + sys->render(e));
  }

  // Records a successful connect of `node` and monitors its endpoint.
  // Caller holds mu.
  void install(const std::string& node, Peer& p, Connected c) {
    p.handle = c.handle;
    p.up = true;
    p.generation += 1;
    p.connects += 1;
    p.tls_time = c.tls_time;
    p.hello_time = c.hello_time;
    caf::anon_send(out, watch_atom::value, c.handle, node, p.generation);
  }

  bool is_stopping() {
    std::lock_guard lk(mu);
    return stopping;
  }

  // Starts the reconnect thread of `node` unless it runs. Caller holds mu.
  void ensure_reconnector(const std::string& node) {
    if (reconnectors.count(node)) return;
    reconnectors.emplace(node, std::thread([this, node] { reconnect_loop(node); }));
  }

  // Keeps `node` connected: while its link is down, one connect attempt at
  // a time (connect_once, retrying its transient errors for up to
  // reconnect_interval), then a pause of reconnect_interval. A hung peer
  // blocks this thread for at most reconnect_interval + heartbeat_interval +
  // hello_timeout per attempt, and no other peer's thread.
  void reconnect_loop(const std::string& node) {
    std::unique_lock lk(mu);
    Peer& p = peers[node];  // never erased while the transport lives
    while (!stopping) {
      if (p.up) {
        cv.wait(lk, [&] { return stopping || !p.up; });
        continue;
      }
      const std::string host = p.host;
      const uint16_t port = p.port;
      lk.unlock();
      auto c = connect_once(host, port, node, Clock::now() + opts.reconnect_interval);
      lk.lock();
      if (stopping) break;
      if (c.ok()) {
        if (!p.up && p.host == host && p.port == port) install(node, p, std::move(c).value());
        continue;
      }
      cv.wait_for(lk, opts.reconnect_interval, [&] { return stopping; });
    }
  }
};

namespace {

using Impl = Transport::Impl;

caf::behavior endpoint_actor(caf::stateful_actor<EndpointState>* self, Impl* impl) {
  // A peer's link dropped: it must say hello again on its next connection.
  self->set_down_handler([=](caf::down_msg& dm) { self->state.authed.erase(dm.source.node()); });
  return {
      [=](hello_atom, uint32_t version, const std::string& client, const std::string& cluster,
          const std::string& nonce_c) -> caf::message {
        t_scheduler_thread = true;
        const auto& o = impl->opts;
        auto refuse = [&](const std::string& why) {
          return caf::make_message(hello_atom::value, o.protocol_version, why, o.node_id,
                                   o.cluster_id, std::string(), std::string());
        };
        const auto& sender = self->current_sender();
        if (!sender) return refuse("anonymous_sender");
        if (!compatible(version, o.protocol_version)) return refuse("incompatible_version");
        if (cluster != o.cluster_id) return refuse("wrong_cluster");
        if (nonce_c.size() != kNonceBytes) return refuse("bad_nonce");
        auto& challenges = self->state.challenges;
        if (challenges.size() >= kMaxChallenges && !challenges.count(sender->node())) {
          return refuse("too_many_hellos");
        }
        auto nonce_s = crypto::random_bytes(kNonceBytes);
        if (!nonce_s) return refuse("no_randomness");
        challenges[sender->node()] = Challenge{version, client, nonce_c, *nonce_s};
        return caf::make_message(hello_atom::value, o.protocol_version, std::string(), o.node_id,
                                 o.cluster_id, *nonce_s,
                                 server_mac(impl->mac_key, o.protocol_version, o.node_id,
                                            o.cluster_id, client, nonce_c, *nonce_s));
      },
      [=](hello2_atom, const std::string& mac, const caf::actor& client_out) -> caf::message {
        t_scheduler_thread = true;
        const auto& o = impl->opts;
        const auto& sender = self->current_sender();
        if (!sender) return caf::make_message(hello2_atom::value, std::string("anonymous_sender"));
        auto it = self->state.challenges.find(sender->node());
        if (it == self->state.challenges.end()) {
          return caf::make_message(hello2_atom::value, std::string("no_hello"));
        }
        const Challenge c = std::move(it->second);
        self->state.challenges.erase(it);
        const std::string want = client_mac(impl->mac_key, c.version, c.client, o.cluster_id,
                                            o.node_id, c.nonce_s, c.nonce_c);
        if (!crypto::constant_time_equal(mac, want)) {
          return caf::make_message(hello2_atom::value, std::string("bad_mac"));
        }
        if (!client_out || client_out.node() != sender->node()) {
          return caf::make_message(hello2_atom::value, std::string("bad_client_actor"));
        }
        self->state.authed[sender->node()] = c.client;
        // Its client actor lives as long as its transport: when the link
        // drops, the down message ends the authentication of that CAF node.
        self->monitor(client_out);
        return caf::make_message(hello2_atom::value, std::string());
      },
      [=](req_atom, const std::string& service, std::string& payload) -> caf::response_promise {
        t_scheduler_thread = true;
        // Before make_response_promise(), which takes the sender out of the
        // current message.
        const caf::strong_actor_ptr sender = self->current_sender();
        auto rp = self->make_response_promise();
        auto who = sender ? self->state.authed.find(sender->node()) : self->state.authed.end();
        if (who == self->state.authed.end()) {
          rp.deliver(resp_atom::value, uint16_t{kNotAuthenticated},
                     std::string("this node has no completed hello from the sender"),
                     std::string());
          return rp;
        }
        Handler h = impl->find_handler(service);
        if (!h) {
          rp.deliver(resp_atom::value, uint16_t{kNoService}, service, std::string());
          return rp;
        }
        const uint64_t id = ++self->state.next_promise;
        self->state.promises.emplace(id, rp);
        h(who->second, std::move(payload), make_reply(impl->gate, id));
        return rp;
      },
      [=](reply_atom, uint64_t token, uint64_t id, uint16_t kind, std::string& text,
          std::string& payload) {
        t_scheduler_thread = true;
        if (token != impl->gate->token) return;  // not from this process
        auto it = self->state.promises.find(id);
        if (it == self->state.promises.end()) return;
        it->second.deliver(resp_atom::value, kind, std::move(text), std::move(payload));
        self->state.promises.erase(it);
      },
  };
}

caf::behavior out_actor(caf::stateful_actor<OutState>* self, Impl* impl) {
  self->set_down_handler([=](caf::down_msg& dm) {
    t_scheduler_thread = true;
    auto it = self->state.watched.find(dm.source);
    if (it == self->state.watched.end()) return;
    auto [node, generation] = it->second;
    self->state.watched.erase(it);
    impl->on_down(node, generation);
  });
  return {
      [=](call_atom, uint64_t id, const caf::actor& target, const std::string& node,
          const std::string& service, std::string& payload, caf::timespan timeout) {
        t_scheduler_thread = true;
        self->request(target, timeout, req_atom::value, service, std::move(payload))
            .then(
                [=](resp_atom, uint16_t kind, std::string& text, std::string& body) {
                  switch (kind) {
                    case kOk: impl->complete(id, std::move(body)); return;
                    case kNoService:
                      impl->complete(id, Status(TransportErrc::kUnknownService,
                                                "node " + node + " has no service '" + text + "'"));
                      return;
                    case kNotAuthenticated:
                      impl->complete(id, Status(TransportErrc::kAuthenticationFailed,
                                                "node " + node + " refused the request: " + text));
                      return;
                    default:
                      impl->complete(
                          id, Status(TransportErrc::kRemoteError,
                                     "service '" + service + "' on node " + node + ": " + text));
                  }
                },
                [=](caf::error& e) {
                  if (is_sec(e, caf::sec::request_timeout)) {
                    impl->complete(
                        id, Status(TransportErrc::kRequestTimeout,
                                   "no answer from node " + node + " to '" + service + "' within " +
                                       std::to_string(timeout.count() / 1000000) + " ms"));
                  } else {
                    impl->complete(id, Status(TransportErrc::kPeerUnavailable,
                                              "request to node " + node +
                                                  " failed: " + self->system().render(e)));
                  }
                });
      },
      [=](watch_atom, const caf::actor& target, const std::string& node, uint64_t generation) {
        t_scheduler_thread = true;
        self->monitor(target);
        self->state.watched[target.address()] = {node, generation};
      },
  };
}

Status refuse_on_scheduler_thread(const char* what) {
  return Status(Errc::kInvalidArgument,
                std::string(what) +
                    " blocks and was called on a CAF scheduler thread (a handler or a callback)");
}

}  // namespace

Result<std::unique_ptr<Transport>> Transport::create(TransportOptions options) {
  detail::keep_ssl_error_queue_fix();
  if (Status s = check_cluster_secret(options.secret); !s) return s;
  if (options.node_id.empty()) {
    return Status(Errc::kInvalidArgument, "the transport needs this node's id");
  }
  // CAF closes a link at the first heartbeat tick at which the peer was
  // silent for connection_timeout, so the timeout must span several
  // heartbeats; without heartbeats a hung peer is never dropped and
  // connecting to it blocks forever.
  if (options.heartbeat_interval.count() <= 0 ||
      options.connection_timeout < 2 * options.heartbeat_interval) {
    return Status(Errc::kInvalidArgument,
                  "the transport needs heartbeat_interval > 0 and connection_timeout >= 2 x "
                  "heartbeat_interval (got " +
                      std::to_string(options.heartbeat_interval.count()) + " ms and " +
                      std::to_string(options.connection_timeout.count()) + " ms)");
  }
  // CAF's openssl module aborts the process (an uncaught exception) when it
  // lacks a certificate; check every file before CAF sees them.
  auto files = check_operator_credentials(options.tls);
  if (!files) return files.status();
  auto token = crypto::random_bytes(8);
  if (!token) return token.status();

  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  impl->mac_key = hello_key(impl->opts.secret);
  std::memcpy(&impl->gate->token, token->data(), sizeof impl->gate->token);

  auto& cfg = *(impl->cfg = std::make_unique<caf::actor_system_config>());
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", std::max<size_t>(1, impl->opts.scheduler_threads));
  cfg.set("logger.console", caf::atom("none"));
  cfg.add_thread_hook<NameThreads>("y-caf-net");
  // Liveness (transport.hpp): CAF's heartbeats drop a link silent for
  // connection_timeout and bound remote_actor to a hung peer.
  cfg.set("middleman.heartbeat-interval", caf::timespan{impl->opts.heartbeat_interval});
  cfg.set("middleman.connection-timeout", caf::timespan{impl->opts.connection_timeout});
  cfg.openssl_certificate = impl->opts.tls.certificate;
  cfg.openssl_key = impl->opts.tls.key;
  cfg.openssl_cafile = impl->opts.tls.cafile;
  impl->sys = std::make_unique<caf::actor_system>(cfg);

  Impl* raw = impl.get();
  impl->endpoint = impl->sys->spawn(endpoint_actor, raw);
  impl->out = impl->sys->spawn(out_actor, raw);
  impl->gate->endpoint = impl->endpoint;
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Transport::~Transport() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    m.stopping = true;
  }
  m.cv.notify_all();
  // No lock needed: only connect() adds threads, and it must not race the
  // destructor.
  for (auto& [node, t] : m.reconnectors) t.join();
  {
    std::lock_guard lk(m.gate->mu);
    m.gate->open = false;
    m.gate->endpoint = nullptr;
  }
  m.fail_pending("", Status(TransportErrc::kPeerUnavailable, "the transport is stopping"));
  {
    std::lock_guard lk(m.mu);
    for (auto& [node, p] : m.peers) p.handle = nullptr;
  }
  caf::anon_send_exit(m.endpoint, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(m.out, caf::exit_reason::user_shutdown);
  m.endpoint = nullptr;
  m.out = nullptr;
  m.sys.reset();  // waits for every actor; then no CAF thread touches m
  m.cfg.reset();
}

void Transport::handle(const std::string& service, Handler handler) {
  std::lock_guard lk(impl_->handlers_mu);
  impl_->handlers[service] = std::move(handler);
}

Result<uint16_t> Transport::listen(const std::string& host, uint16_t port) {
  if (host.empty()) {
    return Status(TransportErrc::kListenFailed,
                  "the cluster listen address needs a host (the cluster interface)");
  }
  auto bound = caf::openssl::publish(impl_->endpoint, port, host.c_str(), true);
  if (!bound) {
    return Status(TransportErrc::kListenFailed, "cannot listen on " + host + ":" +
                                                    std::to_string(port) + ": " +
                                                    impl_->sys->render(bound.error()));
  }
  return *bound;
}

Result<PeerHandle> Transport::connect(const std::string& host, uint16_t port,
                                      const std::string& expected_node_id) {
  if (t_scheduler_thread) return refuse_on_scheduler_thread("Transport::connect");
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    auto it = m.peers.find(expected_node_id);
    if (it != m.peers.end() && it->second.up && it->second.host == host &&
        it->second.port == port) {
      return PeerHandle{expected_node_id};
    }
  }
  auto c = m.connect_once(host, port, expected_node_id, Clock::now() + m.opts.connection_timeout);
  if (!c) return c.status();
  std::lock_guard lk(m.mu);
  Impl::Peer& p = m.peers[expected_node_id];
  // The peer's reconnect thread may have connected it meanwhile.
  if (!(p.up && p.host == host && p.port == port)) {
    p.host = host;
    p.port = port;
    m.install(expected_node_id, p, std::move(c).value());
  }
  m.ensure_reconnector(expected_node_id);
  return PeerHandle{expected_node_id};
}

Status Transport::request(const PeerHandle& peer, const std::string& service, std::string payload,
                          std::chrono::milliseconds timeout, Callback done) {
  return request_impl(*impl_, peer, service, std::move(payload), timeout, std::move(done));
}

Status Transport::request_impl(Impl& m, const PeerHandle& peer, const std::string& service,
                               std::string payload, std::chrono::milliseconds timeout,
                               Callback done) {
  caf::actor target;
  uint64_t id = 0;
  {
    std::lock_guard lk(m.mu);
    auto it = m.peers.find(peer.node_id);
    if (it == m.peers.end() || !it->second.up || m.stopping) {
      return Status(TransportErrc::kPeerUnavailable,
                    "node " + peer.node_id + " is not connected now");
    }
    Impl::Peer& p = it->second;
    if (p.unacked + payload.size() > m.opts.max_unacked_bytes) {
      return Status(TransportErrc::kBackpressure,
                    "node " + peer.node_id + " has " + std::to_string(p.unacked) +
                        " unacknowledged bytes; " + std::to_string(payload.size()) +
                        " more would pass the bound of " +
                        std::to_string(m.opts.max_unacked_bytes));
    }
    p.unacked += payload.size();
    p.in_flight += 1;
    id = ++m.next_id;
    m.pending.emplace(id, Impl::Pending{peer.node_id, payload.size(), std::move(done)});
    target = p.handle;
  }
  caf::anon_send(m.out, call_atom::value, id, std::move(target), peer.node_id, service,
                 std::move(payload), caf::timespan{timeout});
  return {};
}

Result<std::string> Transport::call(const PeerHandle& peer, const std::string& service,
                                    std::string payload, std::chrono::milliseconds timeout) {
  if (t_scheduler_thread) return refuse_on_scheduler_thread("Transport::call");
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto answer = promise->get_future();
  Status sent = request(peer, service, std::move(payload), timeout,
                        [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  if (!sent) return sent;
  return answer.get();
}

std::optional<PeerStats> Transport::peer_stats(const std::string& node_id) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->peers.find(node_id);
  if (it == impl_->peers.end()) return std::nullopt;
  const Impl::Peer& p = it->second;
  PeerStats s;
  s.connected = p.up;
  s.connects = p.connects;
  s.unacked_bytes = p.unacked;
  s.in_flight = p.in_flight;
  s.tls_connect_time = p.tls_time;
  s.hello_time = p.hello_time;
  return s;
}

const std::string& Transport::node_id() const {
  return impl_->opts.node_id;
}

}  // namespace yantra::cluster
