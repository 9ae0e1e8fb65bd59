// A blocking etcd v3 client over etcd's JSON gateway (`POST /v3/...`), the
// cluster's only way to agree on anything (membership, partition leadership
// and epochs, segment chains, cluster-wide resources: docs/cluster.md).
//
// Why the gateway and not gRPC: Debian's etcd 3.4 serves every v3 call as
// JSON over HTTP/1.1 on the client port, so Beast (already in the build) is
// enough; no gRPC stack to build or ship. The gateway's quirks, all handled
// in etcd_client.cpp: keys, values and range ends are base64; every int64
// (revision, lease ID, TTL) is a JSON string and lease IDs exceed 2^53, so
// none is ever parsed as a double; proto3 JSON omits defaults (absent
// `succeeded` is false, absent event `type` is PUT, an empty range is just a
// header); streams (watch, keepalive) send `{"result":...}\n` per message in
// chunks whose boundaries differ from the messages'; a stream error is
// `{"error":...}` with no newline, then EOF.
//
// Threads: every call blocks its caller until etcd answers or the deadline
// passes, so call it from cluster threads only — never from a CAF scheduler
// thread and never from an HTTP I/O thread (ARCHITECTURE.md). An EtcdClient
// is thread-safe: any number of threads may call it at once; each call takes
// a keep-alive connection to an endpoint from a small mutex-guarded pool and
// gives it back when the answer was read whole.
//
// Deadlines and retries: each attempt on one endpoint has `request_timeout`
// (connect, send and answer together). Reads (range, lease time_to_live,
// lease keepalive, which are idempotent) move on to the next endpoint after a
// connection failure, a timeout or an etcd "unavailable" answer, at most once
// per endpoint. Writes (put, delete, txn, lease grant and revoke) move on only
// when the connection could not be made (nothing was sent); once sent, a
// timeout is kTimeout and a lost connection kOutcomeUnknown: the write may or
// may not be applied, re-read before acting. A failing endpoint stops being
// the preferred one, so later calls start elsewhere.
//
// Beast and Asio stay in etcd_client.cpp (pImpl): compiling them costs ~10 s
// per translation unit on the 2-core CI.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.hpp"
#include "cluster/errc.hpp"

namespace yantra::cluster {

struct EtcdOptions {
  // "http://127.0.0.1:2379", ... (http only; a host name is resolved on each
  // new connection). At least one.
  std::vector<std::string> endpoints;
  // One attempt on one endpoint: connect + send + whole answer. etcd may hold
  // a request 6-7 s across a leader change, so keep it short and let the
  // retry reach another member.
  std::chrono::milliseconds request_timeout{1000};
  // Idle keep-alive connections kept per endpoint.
  size_t max_idle_per_endpoint = 4;
};

// The header of every answer; ids are unsigned 64-bit in etcd.
struct ResponseHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  int64_t revision = 0;
  uint64_t raft_term = 0;
};

struct KeyValue {
  std::string key;    // bytes
  std::string value;  // bytes (empty with keys_only)
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: no lease
  bool operator==(const KeyValue&) const = default;
};

// The range_end that selects every key starting with `prefix`: the prefix
// with trailing 0xff bytes dropped and the last remaining byte + 1. For an
// empty prefix or one of only 0xff bytes, "\0": every key >= the key.
std::string prefix_range_end(std::string_view prefix);

// "http://a:2379,http://b:2379" (a flag or YANTRA_ETCD) as endpoints; empty
// items are skipped.
std::vector<std::string> split_endpoints(std::string_view list);

struct RangeRequest {
  std::string key;
  std::string range_end;  // empty: the single key
  int64_t limit = 0;      // 0: no limit
  int64_t revision = 0;   // 0: the newest
  bool keys_only = false;
  bool count_only = false;

  static RangeRequest single(std::string key);
  static RangeRequest prefix(std::string prefix);
};

struct RangeResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;  // a limit cut the answer short
  int64_t count = 0;  // keys in the range (regardless of limit)
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;  // 0: no lease
  bool prev_kv = false;
};

struct PutResponse {
  ResponseHeader header;
  std::optional<KeyValue> prev_kv;  // with prev_kv, when the key existed
};

struct DeleteRequest {
  std::string key;
  std::string range_end;  // empty: the single key
  bool prev_kv = false;

  static DeleteRequest single(std::string key);
  static DeleteRequest prefix(std::string prefix);
};

struct DeleteResponse {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

// One condition of a transaction: `target(key) result operand`. A key that
// does not exist has create/mod revision, version and lease 0 and an empty
// value, so `create_revision == 0` is "absent".
struct Compare {
  enum class Target { kValue, kCreateRevision, kModRevision, kVersion, kLease };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  std::string range_end;  // empty: the single key
  Target target = Target::kValue;
  Op op = Op::kEqual;
  std::string value;   // for kValue
  int64_t number = 0;  // for the others

  static Compare value_is(std::string key, Op op, std::string value);
  static Compare create_revision_is(std::string key, Op op, int64_t revision);
  static Compare mod_revision_is(std::string key, Op op, int64_t revision);
  static Compare version_is(std::string key, Op op, int64_t version);
  static Compare lease_is(std::string key, Op op, int64_t lease);
};

using TxnOp = std::variant<RangeRequest, PutRequest, DeleteRequest>;
using TxnOpResponse = std::variant<RangeResponse, PutResponse, DeleteResponse>;

struct TxnRequest {
  std::vector<Compare> compare;  // all must hold for `success` to run
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
};

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<TxnOpResponse> responses;  // one per op of the branch that ran, in order
};

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds etcd granted
};

struct LeaseTimeToLive {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds left
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;  // with keys=true
};

struct EndpointHealth {
  std::string endpoint;
  bool healthy = false;
  std::string error;  // why not, when not
};

struct MemberStatus {
  std::string endpoint;
  ResponseHeader header;  // header.member_id: the member that answered
  uint64_t leader = 0;    // member id of the leader as that member sees it
  int64_t db_size = 0;    // bytes
  std::string version;
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for a DELETE: the key and mod_revision (the deletion's)
  // With WatchOptions::prev_kv: the key before the event. A leased key that
  // expired arrives as an ordinary DELETE; prev_kv->lease tells it apart.
  std::optional<KeyValue> prev_kv;
};

// What the watch callback receives: a batch of events in revision order, or
// the end of the watch (compacted or failed; no callback follows either).
struct WatchUpdate {
  std::vector<WatchEvent> events;
  int64_t header_revision = 0;
  // The start revision (or the revision to resume from after a reconnect) was
  // compacted away: events are missing. Re-list the range and watch again
  // from the listing's header revision + 1.
  bool compacted = false;
  int64_t compact_revision = 0;
  // etcd ended the watch for another reason (not ok): the watch is over.
  Status error;

  bool ended() const { return compacted || !error.is_ok(); }
};

struct WatchOptions {
  std::string key;
  std::string range_end;       // empty: the single key; prefix_range_end(p) for a prefix
  int64_t start_revision = 0;  // 0: from now
  bool prev_kv = false;
};

// A running watch. Lifecycle: EtcdClient::watch() starts its thread, which
// connects to an endpoint, reads the chunked stream and calls the callback
// with each batch of events; after a connection error or a member losing its
// leader (`Grpc-Metadata-hasleader: true`), it reconnects to the next
// endpoint and resumes from the last delivered revision + 1, so no event is
// lost or delivered twice. It ends by itself only when compacted or canceled
// (one final WatchUpdate says so). The destructor stops the thread promptly
// (it aborts the pending read; it does not wait for etcd) and joins it.
//
// The callback runs on the watch's thread, one call at a time: keep it
// short, let no exception escape it, and never destroy the Watch from inside
// it. The Watch does not
// reference the EtcdClient that made it; it may outlive it.
//
// A watch on a member that is stopped (SIGSTOP) or cut off silently stays
// quiet: TCP keepalive (a few seconds) detects a cut, the hasleader header
// an isolated member; a paused process is only noticed when it resumes.
class Watch {
 public:
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Blocks until the watch is established on some endpoint, the watch ended,
  // or `timeout` passed; true when established.
  bool wait_connected(std::chrono::milliseconds timeout);
  // The endpoint the stream currently uses ("" between connections).
  std::string current_endpoint() const;
  // Connections that failed or were lost so far (each is followed by an
  // attempt on the next endpoint).
  int64_t reconnects() const;
  // True once the watch has ended (compacted or canceled).
  bool ended() const;

  struct Impl;

 private:
  friend class EtcdClient;
  explicit Watch(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

using WatchCallback = std::function<void(const WatchUpdate&)>;

class EtcdClient {
 public:
  // kInvalidEndpoint when an endpoint is not http://HOST:PORT or none is given.
  static Result<std::unique_ptr<EtcdClient>> create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // KV.
  Result<RangeResponse> range(const RangeRequest& request);
  Result<PutResponse> put(const PutRequest& request);
  Result<DeleteResponse> delete_range(const DeleteRequest& request);
  Result<TxnResponse> txn(const TxnRequest& request);
  // Compacts history up to `revision` (physical: waits until it is done).
  Status compact(int64_t revision);

  // Leases. `id` 0 lets etcd choose. A lease that does not exist (never
  // granted, revoked, expired) is kLeaseNotFound everywhere.
  Result<LeaseGrant> lease_grant(int64_t ttl_seconds, int64_t id = 0);
  Status lease_revoke(int64_t id);
  // One keepalive: returns the TTL etcd granted again (seconds). Count it
  // from when the call started, not from when it returned: etcd may have
  // renewed the lease at any moment in between.
  Result<int64_t> lease_keepalive_once(int64_t id);
  Result<LeaseTimeToLive> lease_time_to_live(int64_t id, bool keys = false);

  // Cluster. health(): GET /health of every endpoint (each within the
  // deadline, one after another). status(): the member behind one endpoint.
  std::vector<EndpointHealth> health();
  Result<MemberStatus> status(const std::string& endpoint);

  // Starts a watch (see Watch). It connects in the background: use
  // Watch::wait_connected() when the caller must know it is established.
  std::unique_ptr<Watch> watch(WatchOptions options, WatchCallback callback);

  const EtcdOptions& options() const;

  struct Impl;

 private:
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yantra::cluster
