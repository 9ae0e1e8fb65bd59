// Trigger rows beside the API keys in the `auth` column family. The rows are
// tiny and written rarely (a flow version with a new webhook, a rotation, a
// schedule slot per cron tick), so each write is its own synced batch; the
// store's read-only latch applies to them like to every other write.
#include "storage/trigger_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "base/crypto.hpp"
#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"

namespace yantra::storage {
namespace {

bool valid_pair(std::string_view tenant, std::string_view flow_id) {
  return keys::valid_flow_part(tenant) && keys::valid_flow_part(flow_id);
}

Status invalid_pair() {
  return {Errc::kInvalidArgument, "tenant and flow id must be non-empty and contain no NUL"};
}

Result<std::optional<std::string>> get(const Store& store, const std::string& key) {
  const internal::Db& db = internal::db_of(store);
  return db.get(db.auth, key);
}

Status write(Store& store, rocksdb::WriteBatch& batch) {
  if (store.read_only()) return store.read_only_error();
  return internal::db_of(store).write(batch, store.sync_writes());
}

}  // namespace

Result<std::string> TriggerStore::new_hook_id() {
  auto token = crypto::random_token(24);  // 24 bytes: 32 characters, no padding
  if (!token.ok()) return token.status();
  return "hk_" + token.value();
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
  if (nul == std::string::npos) return Status(StorageErrc::kCorrupt, "hook row does not parse");
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
  auto fresh = new_hook_id();
  if (!fresh.ok()) return fresh.status();
  const std::string& id = fresh.value();
  std::string target(tenant);
  target.push_back('\0');
  target.append(flow_id);
  std::string hk, fk;
  keys::hook_key(hk, id);
  keys::flow_hook_key(fk, tenant, flow_id);
  rocksdb::WriteBatch batch;
  batch.Put(db_.auth, hk, target);
  batch.Put(db_.auth, fk, id);
  if (Status s = write(store_, batch); !s.is_ok()) return s;
  return id;
}

Result<std::string> TriggerStore::rotate_hook(std::string_view tenant, std::string_view flow_id) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::lock_guard<std::mutex> lock(write_mu_);
  auto current = hook_of(tenant, flow_id);
  if (!current.ok()) return current.status();
  auto fresh = new_hook_id();
  if (!fresh.ok()) return fresh.status();
  const std::string& id = fresh.value();
  std::string target(tenant);
  target.push_back('\0');
  target.append(flow_id);
  std::string k;
  rocksdb::WriteBatch batch;
  if (current.value().has_value()) {
    keys::hook_key(k, *current.value());
    batch.Delete(db_.auth, k);
  }
  keys::hook_key(k, id);
  batch.Put(db_.auth, k, target);
  keys::flow_hook_key(k, tenant, flow_id);
  batch.Put(db_.auth, k, id);
  if (Status s = write(store_, batch); !s.is_ok()) return s;
  return id;
}

Status TriggerStore::set_hook(std::string_view tenant, std::string_view flow_id,
                              std::string_view hook_id) {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  if (hook_id.empty() || hook_id.size() > 128) {
    return {Errc::kInvalidArgument, "a hook id is 1..128 bytes"};
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  auto current = hook_of(tenant, flow_id);
  if (!current.ok()) return current.status();
  if (current.value().has_value() && *current.value() == hook_id) return {};
  std::string target(tenant);
  target.push_back('\0');
  target.append(flow_id);
  std::string k;
  rocksdb::WriteBatch batch;
  if (current.value().has_value()) {
    keys::hook_key(k, *current.value());
    batch.Delete(db_.auth, k);
  }
  keys::hook_key(k, hook_id);
  batch.Put(db_.auth, k, target);
  keys::flow_hook_key(k, tenant, flow_id);
  batch.Put(db_.auth, k, std::string(hook_id));
  return write(store_, batch);
}

Result<std::optional<TriggerStore::ScheduleRow>> TriggerStore::schedule(
    std::string_view tenant, std::string_view flow_id) const {
  if (!valid_pair(tenant, flow_id)) return invalid_pair();
  std::string k;
  keys::schedule_key(k, tenant, flow_id);
  auto raw = get(store_, k);
  if (!raw.ok()) return raw.status();
  if (!raw.value().has_value()) return std::optional<ScheduleRow>();
  if (raw.value()->size() != 16)
    return Status(StorageErrc::kCorrupt, "schedule row does not parse");
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
  batch.Put(db_.auth, k, v);
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
    batch.Delete(db_.auth, k);
  }
  keys::flow_hook_key(k, tenant, flow_id);
  batch.Delete(db_.auth, k);
  keys::schedule_key(k, tenant, flow_id);
  batch.Delete(db_.auth, k);
  return write(store_, batch);
}

}  // namespace yantra::storage
