// Cluster routing: where a request runs, and the bytes that carry it there
// (api/forwarding.hpp; docs/cluster.md "Routing").
//
// The decision is made once per request, after authentication, the role
// check, the tenant's rate limit and the query check (so a request that
// would be refused is refused by the node the client reached, and never
// costs a hop), from the route's Placement and the partition its execution
// id or idempotency key maps to. It needs no store read: partition_of and
// partition_of_key are pure, and leader_of is the composition root's cached
// view of the cluster. A forward never blocks an I/O thread: the answer
// comes back by callback and goes out through the request's thread-safe
// Responder.
//
// A request travels at most one hop: the node that receives a forwarded
// request and finds that it does not lead the partition (leadership moved
// while the request was on the wire) answers 503 partition_not_led with
// Retry-After instead of forwarding it again, so two nodes with different
// views of the cluster can never bounce a request between them; the
// client's retry finds the new leader.
#include <algorithm>
#include <cctype>
#include <string_view>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/forwarding.hpp"
#include "api/request_target.hpp"
#include "api/services.hpp"
#include "base/metrics.hpp"
#include "base/text.hpp"
#include "base/time.hpp"
#include "runtime/ids.hpp"
#include "yantra/v1/forward.pb.h"

namespace yantra::api {
namespace {

// Bounds on what a forwarded message may hold. The node the client reached
// already enforced its HTTP limits (1 MiB bodies, 100 headers by default);
// these only keep a malformed or hostile message from costing much.
constexpr size_t kMaxForwardedBytes = 64u << 20;
constexpr int kMaxHeaders = 256;
constexpr size_t kMaxTargetBytes = 16384;
// How long a forwarded request may take, on top of the ?wait_ms it asks the
// leader to wait for an outcome.
constexpr uint32_t kForwardTimeoutMs = 10000;
constexpr int64_t kRetryAfterMs = 1000;

void count(const char* outcome) {
  metrics::global()
      .counter("yantra_api_forwarded_requests_total",
               "Requests that belong to another node's partition, by outcome: answered (by the "
               "leader), failed (the leader did not answer, or not readably), no_leader (nobody "
               "leads the partition), not_forwarded (a forwarded request for a partition this "
               "node does not lead), overloaded, malformed (received bytes that are no request)",
               {{"outcome", outcome}})
      .inc();
}

metrics::Histogram& duration() {
  static metrics::Histogram& h = metrics::global().histogram(
      "yantra_api_forward_duration_seconds",
      "Time from forwarding a request to the leader's answer (or the failure)",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  return h;
}

// Headers that describe one connection, not the request (RFC 9110 §7.6.1),
// and the ones the sender replaces.
bool hop_by_hop(const std::string& name) {
  static const char* kNames[] = {
      "connection",        "keep-alive", "proxy-connection", "te",     "trailer",
      "transfer-encoding", "upgrade",    "content-length",   "expect", "x-request-id"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

bool is_token(const std::string& s) {
  return s.size() <= 256 && is_http_token(s);
}

// A field value that cannot split a message: no CR, LF or NUL.
bool is_field_value(const std::string& s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status bad_request(const std::string& why) {
  count("malformed");
  return Status(ApiErrc::kInvalidRequest, "malformed forwarded request: " + why);
}

Status not_led(const std::string& why) {
  return Status(ActorsErrc::kPartitionNotLed, why).with_retry_after_ms(kRetryAfterMs);
}

// Where a request must run.
struct Target {
  enum Kind { kHere, kThere, kNobody } kind = kHere;
  std::string node;  // kThere
  std::string what;  // "partition 3", for messages
};

// A start of a flow whose executions all live in one partition (a flow with
// a concurrency or rate limit, in a cluster: Engine::home_partition) goes to that
// partition's leader, with or without an idempotency key, so that the
// leader's engine counts, queues and deduplicates all of them.
std::optional<uint32_t> home_of(Services& svc, const RouteCtx& ctx) {
  if (ctx.placement != Placement::kKeyedStart) return std::nullopt;
  auto id = ctx.params.find("id");
  if (id == ctx.params.end()) return std::nullopt;
  return svc.engine.home_partition(ctx.who.tenant, id->second);
}

Target target_of(const Forwarding& f, const RouteCtx& ctx, bool after_not_led,
                 std::optional<uint32_t> home) {
  const uint32_t n = f.partitions();
  if (n == 0) return {};
  auto place = [](std::optional<std::string> leader, std::string what) {
    Target t;
    t.what = std::move(what);
    if (!leader) {
      t.kind = Target::kNobody;
    } else if (!leader->empty()) {
      t.kind = Target::kThere;
      t.node = std::move(*leader);
    }
    return t;
  };
  auto by_partition = [&](uint32_t p) {
    return place(f.leader_of(p), "partition " + std::to_string(p));
  };
  switch (ctx.placement) {
    case Placement::kLocal: return {};
    case Placement::kExecution: {
      auto id = ctx.params.find("id");
      // Not an execution id: nobody has it; the handler here answers 404.
      if (id == ctx.params.end() || !is_valid_execution_id(id->second)) return {};
      return by_partition(partition_of(id->second, n));
    }
    case Placement::kExecutionRead: {
      auto id = ctx.params.find("id");
      if (id == ctx.params.end() || !is_valid_execution_id(id->second)) return {};
      Target t = by_partition(partition_of(id->second, n));
      if (t.kind == Target::kNobody) return {};  // no leader now: this node's copy
      return t;
    }
    case Placement::kKeyedStart: {
      if (home && *home < n) return by_partition(*home);
      const std::string& key = ctx.req.header("idempotency-key");
      if (!key.empty()) return by_partition(partition_of_key(ctx.who.tenant, key, n));
      [[fallthrough]];
    }
    case Placement::kStart:
      // A new execution may go to any partition: this node's, unless its
      // engine said it leads none.
      if (!after_not_led) return {};
      return place(f.any_leader(), "any partition");
  }
  return {};
}

// Sends the request to t.node; `answer` gets the leader's response, or 503.
void send(Services& svc, Forwarding& f, const std::shared_ptr<RouteCtx>& ctx, const Target& t,
          Responder answer) {
  if (svc.forwards_in_flight.fetch_add(1) >= svc.max_forwards_in_flight) {
    svc.forwards_in_flight.fetch_sub(1);
    count("overloaded");
    return answer(
        error_response(Status(Errc::kUnavailable,
                              "too many requests forwarded to other nodes in flight (" +
                                  std::to_string(svc.max_forwards_in_flight) + "); retry shortly")
                           .with_retry_after_ms(kRetryAfterMs)));
  }
  uint64_t wait_ms = 0;
  if (auto w = query_uint(ctx->req, "wait_ms", 0, svc.max_wait_ms); w.ok()) wait_ms = w.value();
  const auto timeout_ms = static_cast<uint32_t>(kForwardTimeoutMs + wait_ms);
  const int64_t t0 = now_us();
  f.forward(
      t.node, encode_forwarded_request(ctx->req, ctx->request_id, ctx->hops + 1), timeout_ms,
      [&svc, node = t.node, what = t.what, answer = std::move(answer), t0](Result<std::string> r) {
        svc.forwards_in_flight.fetch_sub(1);
        duration().observe(static_cast<double>(now_us() - t0) / 1e6);
        const std::string who = "node '" + node + "' (the leader of " + what + ")";
        if (!r.ok()) {
          count("failed");
          return answer(error_response(
              Status(Errc::kUnavailable, who + " did not answer: " + r.status().message())
                  .with_retry_after_ms(kRetryAfterMs)));
        }
        auto response = decode_forwarded_response(r.value());
        if (!response.ok()) {
          count("failed");
          return answer(error_response(Status(Errc::kUnavailable, who + " answered unreadably: " +
                                                                      response.status().message())
                                           .with_retry_after_ms(kRetryAfterMs)));
        }
        count("answered");
        HttpResponse out = std::move(response.value());
        // The node that answers the client sets the request id (the same).
        out.headers.erase(
            std::remove_if(out.headers.begin(), out.headers.end(),
                           [](const auto& h) { return lower(h.first) == "x-request-id"; }),
            out.headers.end());
        out.forwarded = true;
        answer(std::move(out));
      });
}

}  // namespace

bool route_elsewhere(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  Forwarding* f = svc.forwarding.load(std::memory_order_acquire);
  if (f == nullptr || ctx->placement == Placement::kLocal) return false;
  const Target t = target_of(*f, *ctx, false, home_of(svc, *ctx));
  switch (t.kind) {
    case Target::kHere: return false;
    case Target::kNobody:
      count("no_leader");
      ctx->respond(error_response(not_led("no node leads " + t.what +
                                          " right now (a leader is being "
                                          "elected); retry shortly")));
      return true;
    case Target::kThere:
      // A read forwarded here by a node that took us for the leader: this
      // node's copy is as fresh as any it could reach now.
      if (ctx->hops > 0 && ctx->placement == Placement::kExecutionRead) return false;
      if (ctx->hops > 0) {
        count("not_forwarded");
        ctx->respond(error_response(
            not_led("this node does not lead " + t.what + " (node '" + t.node +
                    "' does, as far as this node knows); a forwarded request is not forwarded "
                    "again: retry shortly")));
        return true;
      }
      send(svc, *f, ctx, t, ctx->respond);
      return true;
  }
  return false;
}

bool forward_not_led(Services& svc, const std::shared_ptr<RouteCtx>& ctx, Responder answer) {
  Forwarding* f = svc.forwarding.load(std::memory_order_acquire);
  if (f == nullptr || ctx->hops > 0 || ctx->placement == Placement::kLocal) return false;
  const Target t = target_of(*f, *ctx, true, home_of(svc, *ctx));
  if (t.kind != Target::kThere) return false;
  send(svc, *f, ctx, t, std::move(answer));
  return true;
}

std::string encode_forwarded_request(const HttpRequest& req, const std::string& request_id,
                                     uint32_t hops) {
  v1::ForwardedRequest m;
  m.set_method(req.method);
  // Origin-form: a client may have sent absolute-form ("http://host/p?q").
  std::string_view target = req.target;
  if (target.substr(0, 1) != "/") {
    const auto scheme = target.find("://");
    const auto slash =
        scheme == std::string_view::npos ? std::string_view::npos : target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  m.set_target(std::string(target));
  for (const auto& [name, value] : req.headers) {
    if (hop_by_hop(name)) continue;
    auto* h = m.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  auto* id = m.add_headers();
  id->set_name("x-request-id");
  id->set_value(request_id);
  m.set_body(req.body);
  m.set_hops(hops);
  m.set_remote(req.remote);
  return m.SerializeAsString();
}

Result<ForwardedRequest> decode_forwarded_request(std::string_view bytes) {
  if (bytes.size() > kMaxForwardedBytes) {
    return bad_request("larger than " + std::to_string(kMaxForwardedBytes) + " bytes");
  }
  v1::ForwardedRequest m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad_request("not a yantra.v1.ForwardedRequest");
  }
  const std::string& method = m.method();
  if (method.empty() || method.size() > 16 ||
      !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return bad_request("the method must be 1 to 16 upper-case letters");
  }
  const std::string& target = m.target();
  if (target.empty() || target.size() > kMaxTargetBytes || target.front() != '/' ||
      !std::all_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
      })) {
    return bad_request("the target must be a path of at most " + std::to_string(kMaxTargetBytes) +
                       " bytes without spaces or control characters");
  }
  if (m.headers_size() > kMaxHeaders) {
    return bad_request("more than " + std::to_string(kMaxHeaders) + " headers");
  }
  ForwardedRequest out;
  out.hops = std::max<uint32_t>(1, m.hops());
  HttpRequest& req = out.req;
  req.method = method;
  req.target = target;
  if (!split_target(req.target, req))
    return bad_request("the target's percent-encoding is invalid");
  for (const auto& h : m.headers()) {
    if (!is_token(h.name())) return bad_request("a header name is not an HTTP token");
    if (!is_field_value(h.value())) {
      return bad_request("header '" + h.name() + "' holds CR, LF or NUL");
    }
    req.headers.emplace_back(lower(h.name()), h.value());
  }
  req.body = m.body();
  req.remote = m.remote().size() <= 64 && is_field_value(m.remote()) ? m.remote() : "";
  return out;
}

std::string encode_forwarded_response(const HttpResponse& r) {
  v1::ForwardedResponse m;
  m.set_status(r.status);
  m.set_content_type(r.content_type);
  for (const auto& [name, value] : r.headers) {
    auto* h = m.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  m.set_body(r.body);
  m.set_error_code(r.error_code);
  return m.SerializeAsString();
}

Result<HttpResponse> decode_forwarded_response(std::string_view bytes) {
  auto bad = [](const std::string& why) { return Status(Errc::kInvalidArgument, why); };
  if (bytes.size() > kMaxForwardedBytes) return bad("a reply of more than 64 MiB");
  v1::ForwardedResponse m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad("not a yantra.v1.ForwardedResponse");
  }
  if (m.status() < 100 || m.status() > 599) {
    return bad("HTTP status " + std::to_string(m.status()));
  }
  if (!is_field_value(m.content_type()) || m.content_type().size() > 256) {
    return bad("a malformed Content-Type");
  }
  if (m.headers_size() > kMaxHeaders)
    return bad("more than " + std::to_string(kMaxHeaders) + " headers");
  HttpResponse r;
  r.status = m.status();
  r.content_type = m.content_type();
  for (const auto& h : m.headers()) {
    if (!is_token(h.name()) || !is_field_value(h.value())) return bad("a malformed header");
    r.headers.emplace_back(h.name(), h.value());
  }
  r.body = m.body();
  r.error_code = m.error_code().size() <= 64 ? m.error_code() : "";
  return r;
}

}  // namespace yantra::api
