// Trigger rows beside the API keys in the `auth` column family. The rows are
// tiny and written rarely (a flow version with a new webhook, a rotation, a
// schedule slot per cron tick), so each write is its own synced batch; the
// store's read-only latch applies to them like to every other write.
#include "storage/trigger_store.hpp"

#include <openssl/rand.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "storage/internal/keys.hpp"

namespace yantra::storage {
namespace {

Status storage_error(const rocksdb::Status& s) {
  return {"storage_error", s.ToString()};
}

bool valid_pair(std::string_view tenant, std::string_view flow_id) {
  return keys::valid_flow_part(tenant) && keys::valid_flow_part(flow_id);
}

Status invalid_pair() {
  return {"invalid_argument", "tenant and flow id must be non-empty and contain no NUL"};
}

Result<std::optional<std::string>> get(const Store& store, const std::string& key) {
  std::string value;
  rocksdb::Status s = store.db()->Get(rocksdb::ReadOptions(), store.cf_auth(), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  return std::optional<std::string>(std::move(value));
}

Status write(Store& store, rocksdb::WriteBatch& batch) {
  if (store.read_only()) return store.read_only_error();
  rocksdb::WriteOptions wo;
  wo.sync = store.sync_writes();
  rocksdb::Status s = store.db()->Write(wo, &batch);
  if (!s.ok()) return store.write_failed(s);
  return Status::ok();
}

}  // namespace

std::string TriggerStore::new_hook_id() {
  unsigned char raw[24];
  RAND_bytes(raw, sizeof raw);
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "hk_";
  // 24 bytes are exactly 32 six-bit groups: no padding.
  for (size_t i = 0; i < sizeof raw; i += 3) {
    const uint32_t v = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8) | raw[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  return out;
}

Result<std::optional<TriggerStore::HookTarget>> TriggerStore::find_hook(
    std::string_view hook_id) const {
  if (hook_id.empty() || hook_id.size() > 128) return std::optional<HookTarget>();
  std::string k;
  keys::hook_key(k, hook_id);
  auto raw = get(store_, k);
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<HookTarget>();
  const std::string& v = *raw.value();
  const size_t nul = v.find('\0');
  if (nul == std::string::npos) return Status("storage_corrupt", "hook row does not parse");
  return std::optional<HookTarget>(HookTarget{v.substr(0, nul), v.substr(nul + 1)});
}

Result<std::optional<std::string>> TriggerStore::hook_of(std::string_view tenant,
                                                         std::string_view flow_id) const {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::string k;
  keys::flow_hook_key(k, tenant, flow_id);
  return get(store_, k);
}

Result<std::string> TriggerStore::ensure_hook(std::string_view tenant, std::string_view flow_id) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::lock_guard<std::mutex> lock(write_mu_);
  auto current = hook_of(tenant, flow_id);
  if (!current.ok()) return current.status();
  if (current.value().has_value()) return *current.value();
  const std::string id = new_hook_id();
  std::string target(tenant);
  target.push_back('\0');
  target.append(flow_id);
  std::string hk, fk;
  keys::hook_key(hk, id);
  keys::flow_hook_key(fk, tenant, flow_id);
  rocksdb::WriteBatch batch;
  batch.Put(store_.cf_auth(), hk, target);
  batch.Put(store_.cf_auth(), fk, id);
  if (Status s = write(store_, batch); !s.is_ok()) return s;
  return id;
}

Result<std::string> TriggerStore::rotate_hook(std::string_view tenant, std::string_view flow_id) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::lock_guard<std::mutex> lock(write_mu_);
  auto current = hook_of(tenant, flow_id);
  if (!current.ok()) return current.status();
  const std::string id = new_hook_id();
  std::string target(tenant);
  target.push_back('\0');
  target.append(flow_id);
  std::string k;
  rocksdb::WriteBatch batch;
  if (current.value().has_value()) {
    keys::hook_key(k, *current.value());
    batch.Delete(store_.cf_auth(), k);
  }
  keys::hook_key(k, id);
  batch.Put(store_.cf_auth(), k, target);
  keys::flow_hook_key(k, tenant, flow_id);
  batch.Put(store_.cf_auth(), k, id);
  if (Status s = write(store_, batch); !s.is_ok()) return s;
  return id;
}

Result<std::optional<TriggerStore::ScheduleRow>> TriggerStore::schedule(
    std::string_view tenant, std::string_view flow_id) const {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::string k;
  keys::schedule_key(k, tenant, flow_id);
  auto raw = get(store_, k);
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<ScheduleRow>();
  if (raw.value()->size() != 16) return Status("storage_corrupt", "schedule row does not parse");
  ScheduleRow row;
  row.last_fired_ms = static_cast<int64_t>(keys::get_be64(raw.value()->data()));
  row.anchor_ms = static_cast<int64_t>(keys::get_be64(raw.value()->data() + 8));
  return std::optional<ScheduleRow>(row);
}

Status TriggerStore::put_schedule(std::string_view tenant, std::string_view flow_id,
                                  const ScheduleRow& row) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::string k, v;
  keys::schedule_key(k, tenant, flow_id);
  keys::put_be64(v, static_cast<uint64_t>(row.last_fired_ms));
  keys::put_be64(v, static_cast<uint64_t>(row.anchor_ms));
  std::lock_guard<std::mutex> lock(write_mu_);
  rocksdb::WriteBatch batch;
  batch.Put(store_.cf_auth(), k, v);
  return write(store_, batch);
}

Status TriggerStore::remove_flow(std::string_view tenant, std::string_view flow_id) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::lock_guard<std::mutex> lock(write_mu_);
  auto current = hook_of(tenant, flow_id);
  if (!current.ok()) return current.status();
  std::string k;
  rocksdb::WriteBatch batch;
  if (current.value().has_value()) {
    keys::hook_key(k, *current.value());
    batch.Delete(store_.cf_auth(), k);
  }
  keys::flow_hook_key(k, tenant, flow_id);
  batch.Delete(store_.cf_auth(), k);
  keys::schedule_key(k, tenant, flow_id);
  batch.Delete(store_.cf_auth(), k);
  return write(store_, batch);
}

Result<std::vector<v1::FlowVersion>> TriggerStore::latest_flows() const {
  std::vector<v1::FlowVersion> flows;
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db()->NewIterator(rocksdb::ReadOptions(), store_.cf_flows()));
  // Keys sort by tenant, flow id, then version: the last key before the
  // (tenant, flow) pair changes is that flow's latest version.
  v1::FlowVersion current;
  bool have = false;
  auto flush = [&] {
    if (have && !current.deleted()) flows.push_back(std::move(current));
    have = false;
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    v1::FlowVersion fv;
    if (!fv.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status("storage_corrupt", "a stored flow version does not parse");
    }
    if (have && (fv.flow_id() != current.flow_id() || fv.tenant() != current.tenant())) flush();
    current = std::move(fv);
    have = true;
  }
  if (!it->status().ok()) return storage_error(it->status());
  flush();
  return flows;
}

}  // namespace yantra::storage
