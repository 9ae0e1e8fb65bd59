// The tenant's audit trail (/api/v1/audit, admin role): records, chain
// verification and counts. Every tenant has a chain of its own, so a tenant
// verifies and reads exactly its records; the operator reads any chain
// (/admin/v1/audit?tenant=, "-" for records without a tenant such as
// authentication failures with no name).
//
// Times in from/to are Unix milliseconds or RFC 3339 UTC timestamps
// ("2026-11-22T10:00:00Z").
//
// In a cluster a tenant has one chain per partition (docs/cluster.md,
// "Audit trail"): a listing walks them in order, each record naming its
// `partition` (null on a single node, whose one chain is the node's own),
// and the cursor names the chain ("SEQ" for the node's own, "P:SEQ" for
// partition P's); verify and report cover every chain of the tenant.
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/encoding.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

json record_view(const AuditListed& listed) {
  const v1::AuditRecord& r = listed.record;
  return {{"seq", r.seq()},
          {"time", iso_time(r.time_ms())},
          {"time_ms", r.time_ms()},
          {"tenant", r.tenant()},
          {"key_id", r.key_id()},
          {"role", r.role()},
          {"action", r.action()},
          {"resource", r.resource()},
          {"outcome", r.outcome()},
          {"request_id", r.request_id()},
          {"detail", r.detail()},
          {"hash", hex_encode(r.hash())},
          {"partition", listed.partition ? json(*listed.partition) : json(nullptr)}};
}

std::string cursor_of(const AuditListed& listed) {
  const std::string seq = std::to_string(listed.record.seq());
  return listed.partition ? std::to_string(*listed.partition) + ":" + seq : seq;
}

bool parse_number(const std::string& s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = std::stoull(s);
  return out <= max;
}

// "SEQ" (the node's own chain) or "P:SEQ" (partition P's chain).
Status parse_cursor(const HttpRequest& req, AuditQuery& q) {
  const std::string* v = req.query_param("cursor");
  if (v == nullptr || v->empty()) return {};
  const Status bad(ApiErrc::kInvalidParameter,
                   "query parameter 'cursor' must be a next_cursor this route returned (SEQ "
                   "or PARTITION:SEQ)");
  const size_t colon = v->find(':');
  uint64_t seq = 0;
  if (colon == std::string::npos) {
    if (!parse_number(*v, UINT64_MAX / 2, seq)) return bad;
  } else {
    uint64_t p = 0;
    if (!parse_number(v->substr(0, colon), 0xFFFF, p) ||
        !parse_number(v->substr(colon + 1), UINT64_MAX / 2, seq)) {
      return bad;
    }
    q.after_partition = static_cast<uint32_t>(p);
  }
  q.after_seq = seq;
  return {};
}

// The chain a request reads: the caller's tenant, or for the operator the
// ?tenant= parameter.
Result<std::string> chain_of(const std::shared_ptr<RouteCtx>& ctx) {
  if (!ctx->who.is_operator()) return ctx->who.tenant;
  const std::string* t = ctx->req.query_param("tenant");
  if (t == nullptr || t->empty()) {
    return Status(ApiErrc::kInvalidParameter,
                  "query parameter 'tenant' is required ('-' for records "
                  "without a tenant)");
  }
  return *t == "-" ? std::string() : *t;
}

void list_records(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  auto chain = chain_of(ctx);
  if (!chain.ok()) return respond_error(ctx, chain.status());
  auto from = query_time(ctx->req, "from", 0);
  if (!from.ok()) return respond_error(ctx, from.status());
  auto to = query_time(ctx->req, "to", 0);
  if (!to.ok()) return respond_error(ctx, to.status());
  auto limit = query_uint(ctx->req, "limit", 100, 1000);
  if (!limit.ok()) return respond_error(ctx, limit.status());
  AuditQuery q;
  if (Status bad = parse_cursor(ctx->req, q); !bad.is_ok()) return respond_error(ctx, bad);
  const std::string* action = ctx->req.query_param("action");
  q.chain = chain.value();
  q.from_ms = from.value();
  q.to_ms = to.value();
  q.action = action ? *action : "";
  q.limit = limit.value();
  svc.admin.audit_query(std::move(q),
                        [ctx, limit = limit.value()](Result<std::vector<AuditListed>> records) {
                          if (!records.ok()) return respond_error(ctx, records.status());
                          json items = json::array();
                          for (const auto& r : records.value()) items.push_back(record_view(r));
                          json next = nullptr;
                          if (records.value().size() == limit && !records.value().empty()) {
                            next = cursor_of(records.value().back());
                          }
                          respond_json(ctx, 200, {{"records", items}, {"next_cursor", next}});
                        });
}

void verify_chain(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  auto chain = chain_of(ctx);
  if (!chain.ok()) return respond_error(ctx, chain.status());
  // Records appended just before are written by the audit thread: the
  // seam waits for them (off this thread) so that verify covers everything
  // this caller did.
  svc.admin.audit_verify(chain.value(), [ctx](Result<AuditVerifyReport> report) {
    if (!report.ok()) return respond_error(ctx, report.status());
    const auto& r = report.value();
    json body = {{"ok", r.ok}, {"records", r.records}, {"chains", r.chains}};
    body["first_broken_seq"] = r.ok ? json(nullptr) : json(r.first_broken_seq);
    body["reason"] = r.ok ? json(nullptr) : json(r.reason);
    body["broken_partition"] =
        r.ok || !r.broken_partition ? json(nullptr) : json(*r.broken_partition);
    respond_json(ctx, 200, body);
  });
}

void report_counts(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  auto chain = chain_of(ctx);
  if (!chain.ok()) return respond_error(ctx, chain.status());
  auto from = query_time(ctx->req, "from", 0);
  if (!from.ok()) return respond_error(ctx, from.status());
  auto to = query_time(ctx->req, "to", 0);
  if (!to.ok()) return respond_error(ctx, to.status());
  svc.admin.audit_report(chain.value(), from.value(), to.value(),
                         [ctx](Result<AuditCounts> counts) {
                           if (!counts.ok()) return respond_error(ctx, counts.status());
                           json by_action = json::object();
                           uint64_t total = 0;
                           for (const auto& [key, n] : counts.value()) {
                             by_action[key.first][key.second] = n;
                             total += n;
                           }
                           respond_json(ctx, 200, {{"total", total}, {"actions", by_action}});
                         });
}

}  // namespace

Result<int64_t> query_time(const HttpRequest& req, const std::string& name, int64_t fallback) {
  const std::string* v = req.query_param(name);
  if (v == nullptr || v->empty()) return fallback;
  const Status bad(ApiErrc::kInvalidParameter, "query parameter '" + name +
                                                   "' must be Unix milliseconds or an RFC 3339 UTC "
                                                   "time like 2026-11-22T10:00:00Z");
  if (v->find_first_not_of("0123456789") == std::string::npos) {
    if (v->size() > 15) return bad;
    return static_cast<int64_t>(std::stoll(*v));
  }
  auto t = parse_rfc3339_ms(*v);
  if (!t.ok()) return bad;
  return t.value();
}

void register_audit_routes(Router& router, Services& svc) {
  router.add("GET", "/api/v1/audit", Access::kAdmin,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { list_records(svc, ctx); });
  router.add("GET", "/api/v1/audit/verify", Access::kAdmin,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { verify_chain(svc, ctx); });
  router.add("GET", "/api/v1/audit/report", Access::kAdmin,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { report_counts(svc, ctx); });
  router.add("GET", "/admin/v1/audit", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { list_records(svc, ctx); });
  router.add("GET", "/admin/v1/audit/verify", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { verify_chain(svc, ctx); });
}

}  // namespace yantra::api
