// Admission decisions (see internal/admission.hpp). Flow rate limits are
// fixed windows (this minute, this hour) rather than sliding ones: the
// answer's Retry-After is then exact (the window's end) and the state is two
// counters per flow.
#include "actors/internal/admission.hpp"

#include <algorithm>
#include <cmath>

#include "actors/errc.hpp"
#include "runtime/ids.hpp"

namespace yantra::detail {
namespace {

std::string flow_slot_key(const std::string& tenant, const std::string& flow_id) {
  std::string k = tenant;
  k.push_back('\0');
  k += flow_id;
  return k;
}

// Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms):
// month boundaries in UTC without a calendar library.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

constexpr int64_t kDayMs = 86400000;

// [start, end) of the UTC month holding `ms`.
std::pair<int64_t, int64_t> month_of(int64_t ms) {
  int64_t y = 0;
  unsigned m = 1;
  civil_from_days(ms / kDayMs, y, m);
  const int64_t start = days_from_civil(y, m, 1) * kDayMs;
  const int64_t end =
      (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * kDayMs;
  return {start, end};
}

}  // namespace

const v1::Tenant* Admission::cached_tenant(const std::string& id, Status* error) {
  auto it = tenants_.find(id);
  if (it == tenants_.end()) {
    auto row = auth_.get_tenant(id);
    if (!row.ok()) {
      *error = row.status();
      return nullptr;
    }
    it = tenants_.emplace(id, std::move(row.value())).first;
  }
  return it->second.has_value() ? &*it->second : nullptr;
}

Result<std::optional<v1::Tenant>> Admission::tenant(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  const v1::Tenant* t = cached_tenant(id, &error);
  if (!error.is_ok()) return error;
  if (t == nullptr) return std::optional<v1::Tenant>();
  return std::optional<v1::Tenant>(*t);
}

Status Admission::put_tenant(const v1::Tenant& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = auth_.put_tenant(tenant);
  if (s.is_ok()) tenants_[tenant.id()] = tenant;
  return s;
}

// A deleted tenant leaves a tombstone row (status "deleted"): its flows,
// executions and secrets stay in the store, so its id must never name a new
// tenant that would inherit them.
Status Admission::delete_tenant(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  const v1::Tenant* t = cached_tenant(id, &error);
  if (!error.is_ok()) return error;
  if (t == nullptr || t->status() == "deleted") {
    return Status(Errc::kNotFound, "tenant '" + id + "' not found");
  }
  v1::Tenant tombstone = *t;
  Status s = auth_.delete_tenant(id);  // revokes every key, one batch
  if (!s.is_ok()) return s;
  tombstone.set_status("deleted");
  s = auth_.put_tenant(tombstone);
  if (!s.is_ok()) return s;
  tenants_[id] = tombstone;
  return Status::ok();
}

Status Admission::check_month(const std::string& tenant, TenantCounts& counts, uint64_t limit,
                              int64_t now_ms) {
  const auto [start, end] = month_of(now_ms);
  if (counts.month_start != start) {
    // The first start of a month (or since open) counts what the listing
    // index already holds; later starts add one each.
    auto n = executions_.count_from(tenant, make_execution_id(start, 0, 0));
    if (!n.ok()) return n.status();
    counts.month_start = start;
    counts.month_count = static_cast<int64_t>(n.value());
    counts.month_base = counts.month_count;
  }
  bool spent = static_cast<uint64_t>(counts.month_count) >= limit;
  if (!spent && share_) {
    // A cluster node: its share of what was left when it counted.
    const double share = std::clamp(share_(), 0.0, 1.0);
    const auto left = static_cast<double>(limit) - static_cast<double>(counts.month_base);
    spent = counts.month_count - counts.month_base >=
            static_cast<int64_t>(std::ceil(left * share - 1e-9));
  }
  if (spent) {
    return Status(Errc::kQuotaExceeded, "tenant '" + tenant + "' has used its " +
                                            std::to_string(limit) +
                                            " executions for this month (UTC)")
        .with_retry_after_ms(end - now_ms);
  }
  return Status::ok();
}

// The tenant-level checks every start passes: status, running executions
// and (for a new execution) the monthly quota.
Status Admission::check_tenant(const std::string& tenant, const v1::Tenant* t, TenantCounts& counts,
                               bool new_execution, int64_t now_ms) {
  if (t == nullptr) return Status::ok();
  if (t->status() == "suspended") {
    return Status(ActorsErrc::kTenantSuspended, "tenant '" + tenant + "' is suspended");
  }
  if (t->status() == "deleted")
    return Status(Errc::kNotFound, "tenant '" + tenant + "' was deleted");
  const auto& limits = t->limits();
  if (limits.max_concurrent_executions() > 0) {
    const uint32_t limit = limits.max_concurrent_executions();
    // This node's share of the limit (a cluster: see the header).
    const double share = share_ ? std::clamp(share_(), 0.0, 1.0) : 1.0;
    const auto mine = static_cast<int64_t>(std::ceil(limit * share - 1e-9));
    if (counts.running >= mine) {
      std::string why = "tenant '" + tenant + "' has " + std::to_string(counts.running) +
                        " running executions (limit " + std::to_string(limit);
      if (mine < static_cast<int64_t>(limit)) {
        why += "; this node's share " + std::to_string(mine);
      }
      return Status(Errc::kRateLimited, why + ")").with_retry_after_ms(1000);
    }
  }
  if (new_execution && limits.max_executions_per_month() > 0) {
    return check_month(tenant, counts, limits.max_executions_per_month(), now_ms);
  }
  return Status::ok();
}

Result<Admission::Verdict> Admission::admit(const std::string& tenant, const Flow& flow,
                                            int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  const v1::Tenant* t = cached_tenant(tenant, &error);
  if (!error.is_ok()) return error;
  TenantCounts& counts = counts_[tenant];
  if (Status s = check_tenant(tenant, t, counts, true, now_ms); !s.is_ok()) return s;
  // Every flow's running count is kept (one lookup), so that a limit added
  // by a newer version applies to an exact count.
  FlowSlots& slots = flows_[flow_slot_key(tenant, flow.id)];
  slots.limit = flow.max_concurrent_executions;
  Verdict verdict = Verdict::kStart;
  if (flow.max_runs_per_minute > 0 || flow.max_runs_per_hour > 0) {
    if (flow.max_runs_per_minute > 0) {
      const int64_t window = now_ms - now_ms % 60000;
      if (slots.minute_start != window) slots.minute_start = window, slots.minute_count = 0;
      if (slots.minute_count >= flow.max_runs_per_minute) {
        return Status(Errc::kRateLimited, "flow '" + flow.id + "' allows " +
                                              std::to_string(flow.max_runs_per_minute) +
                                              " runs per minute")
            .with_retry_after_ms(window + 60000 - now_ms);
      }
    }
    if (flow.max_runs_per_hour > 0) {
      const int64_t window = now_ms - now_ms % 3600000;
      if (slots.hour_start != window) slots.hour_start = window, slots.hour_count = 0;
      if (slots.hour_count >= flow.max_runs_per_hour) {
        return Status(Errc::kRateLimited, "flow '" + flow.id + "' allows " +
                                              std::to_string(flow.max_runs_per_hour) +
                                              " runs per hour")
            .with_retry_after_ms(window + 3600000 - now_ms);
      }
    }
    ++slots.minute_count;
    ++slots.hour_count;
  }
  // Runs already waiting go first: a new run queues behind them even when a
  // slot happens to be free at this instant.
  if (slots.limit > 0 && (slots.queued > 0 || slots.running >= slots.limit)) {
    verdict = Verdict::kQueue;
    ++slots.queued;
    ++counts.queued;
  } else {
    ++slots.running;
    ++counts.running;
  }
  if (t != nullptr && t->limits().max_executions_per_month() > 0) ++counts.month_count;
  return verdict;
}

Status Admission::admit_extra(const std::string& tenant, const std::string& flow_id,
                              bool new_execution, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Status error;
  const v1::Tenant* t = cached_tenant(tenant, &error);
  if (!error.is_ok()) return error;
  TenantCounts& counts = counts_[tenant];
  if (Status s = check_tenant(tenant, t, counts, new_execution, now_ms); !s.is_ok()) return s;
  if (new_execution && t != nullptr && t->limits().max_executions_per_month() > 0) {
    ++counts.month_count;
  }
  ++counts.running;
  ++flows_[flow_slot_key(tenant, flow_id)].running;
  return Status::ok();
}

void Admission::abandon(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = counts_.find(tenant);
  if (c != counts_.end() && c->second.running > 0) --c->second.running;
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f != flows_.end() && f->second.running > 0) --f->second.running;
}

void Admission::count_running(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[tenant].running;
  ++flows_[flow_slot_key(tenant, flow_id)].running;
}

bool Admission::finished(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = counts_.find(tenant);
  if (c != counts_.end() && c->second.running > 0) --c->second.running;
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f == flows_.end()) return false;
  if (f->second.running > 0) --f->second.running;
  return f->second.queued > 0 && f->second.running < f->second.limit;
}

void Admission::count_queued(const std::string& tenant, const std::string& flow_id, uint32_t limit,
                             int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  FlowSlots& slots = flows_[flow_slot_key(tenant, flow_id)];
  if (limit > 0) slots.limit = limit;
  slots.queued += n;
  counts_[tenant].queued += n;
}

bool Admission::reserve_dequeue(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f == flows_.end()) return false;
  FlowSlots& slots = f->second;
  // A flow whose newest version dropped the limit drains its queue at once.
  if (slots.queued == 0 || (slots.limit > 0 && slots.running >= slots.limit)) return false;
  --slots.queued;
  ++slots.running;
  auto& counts = counts_[tenant];
  if (counts.queued > 0) --counts.queued;
  ++counts.running;
  return true;
}

void Admission::release_dequeue(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f == flows_.end()) return;
  if (f->second.running > 0) --f->second.running;
  ++f->second.queued;
  auto& counts = counts_[tenant];
  if (counts.running > 0) --counts.running;
  ++counts.queued;
  // Nothing to start yet: the run was counted by admit() but its row is not
  // written yet. Its enqueuer drains once the row is there.
}

uint64_t Admission::cursor(const std::string& tenant, const std::string& flow_id,
                           uint32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f == flows_.end()) return 0;
  auto c = f->second.cursors.find(partition);
  return c == f->second.cursors.end() ? 0 : c->second;
}

void Admission::dispatched(const std::string& tenant, const std::string& flow_id,
                           uint32_t partition, uint64_t queue_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t& cursor = flows_[flow_slot_key(tenant, flow_id)].cursors[partition];
  if (queue_seq > cursor) cursor = queue_seq;
}

void Admission::reset_cursor(const std::string& tenant, const std::string& flow_id,
                             uint32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  auto f = flows_.find(flow_slot_key(tenant, flow_id));
  if (f != flows_.end()) f->second.cursors.erase(partition);
}

void Admission::forget_queued(const std::string& tenant, const std::string& flow_id) {
  std::lock_guard<std::mutex> lock(mu_);
  FlowSlots& slots = flows_[flow_slot_key(tenant, flow_id)];
  if (slots.queued > 0) --slots.queued;
  auto& counts = counts_[tenant];
  if (counts.queued > 0) --counts.queued;
}

Admission::Usage Admission::usage(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(tenant);
  if (it == counts_.end()) return {};
  return Usage{it->second.running, it->second.queued};
}

}  // namespace yantra::detail
