// FlowStore: versions are found by scanning one flow's prefix backwards (the
// last key is the latest version), and listings by grouping a scan of the
// tenant's (or every tenant's) rows: keys sort by flow then version, so the
// last row before the flow changes is its latest version.
#include "storage/flow_store.hpp"

#include <string>

#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"

namespace yantra::storage {

using internal::invalid;

namespace {

Status invalid_pair() {
  return invalid("tenant and flow id must be non-empty and contain no NUL byte");
}

// Keeps the latest version of each flow of a key-ordered scan, tombstones
// skipped: feed every row to add(), then call finish().
class LatestPerFlow {
 public:
  explicit LatestPerFlow(std::vector<v1::FlowVersion>& out) : out_(out) {}
  void add(v1::FlowVersion fv) {
    if (have_ && (fv.flow_id() != current_.flow_id() || fv.tenant() != current_.tenant())) {
      finish();
    }
    current_ = std::move(fv);
    have_ = true;
  }
  void finish() {
    if (have_ && !current_.deleted()) out_.push_back(std::move(current_));
    have_ = false;
  }

 private:
  std::vector<v1::FlowVersion>& out_;
  v1::FlowVersion current_;
  bool have_ = false;
};

}  // namespace

Result<uint32_t> FlowStore::put(v1::FlowVersion flow) {
  if (!keys::valid_flow_part(flow.tenant()) || !keys::valid_flow_part(flow.flow_id())) {
    return invalid_pair();
  }
  std::lock_guard lock(put_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();

  std::string prefix;
  keys::flow_prefix(prefix, flow.tenant(), flow.flow_id());
  uint32_t latest = 0;
  Status st = internal::scan_prefix(
      db_, db_.flows, prefix,
      [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Status {
        if (key.size() != prefix.size() + 4) {
          return Status(StorageErrc::kCorrupt,
                        "flow key of " + flow.tenant() + "/" + flow.flow_id() + " has a bad size");
        }
        latest = keys::get_be32(key.data() + prefix.size());
        return {};
      },
      {.limit = 1, .reverse = true});
  if (!st.is_ok()) return st;
  if (latest == UINT32_MAX) return invalid("flow has too many versions");
  const uint32_t version = latest + 1;
  flow.set_version(version);

  std::string key;
  keys::flow_key(key, flow.tenant(), flow.flow_id(), version);
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Put(db_.flows, key, flow.SerializeAsString()));
  if (Status s = check.status(); !s.is_ok()) return s;
  // Rare and user-visible: always durable, whatever the mode.
  if (Status s = db_.write(batch, /*sync=*/true); !s.is_ok()) return s;
  return version;
}

Status FlowStore::put_version(const v1::FlowVersion& flow) {
  if (!keys::valid_flow_part(flow.tenant()) || !keys::valid_flow_part(flow.flow_id())) {
    return invalid_pair();
  }
  if (flow.version() == 0) return invalid("a flow version is numbered from 1");
  std::lock_guard lock(put_mu_);
  if (db_.store->read_only()) return db_.store->read_only_error();
  std::string key;
  keys::flow_key(key, flow.tenant(), flow.flow_id(), flow.version());
  rocksdb::WriteBatch batch;
  internal::BatchCheck check;
  check(batch.Put(db_.flows, key, flow.SerializeAsString()));
  if (Status s = check.status(); !s.is_ok()) return s;
  return db_.write(batch, /*sync=*/true);
}

Result<std::optional<v1::FlowVersion>> FlowStore::get(std::string_view tenant,
                                                      std::string_view flow_id,
                                                      uint32_t version) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) return invalid_pair();
  const std::string what = "flow " + std::string(tenant) + "/" + std::string(flow_id);
  if (version != 0) {
    std::string key;
    keys::flow_key(key, tenant, flow_id, version);
    return internal::parse_row<v1::FlowVersion>(db_.get(db_.flows, key), what);
  }
  std::string prefix;
  keys::flow_prefix(prefix, tenant, flow_id);
  std::optional<v1::FlowVersion> found;
  Status st =
      internal::scan_prefix(db_, db_.flows, std::move(prefix),
                            [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Status {
                              if (!internal::parse_value(value, found.emplace()))
                                return internal::corrupt(what);
                              return {};
                            },
                            {.limit = 1, .reverse = true});
  if (!st.is_ok()) return st;
  return found;
}

Result<std::vector<v1::FlowVersion>> FlowStore::list(std::string_view tenant) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string prefix(tenant);
  prefix.push_back('\0');
  std::vector<v1::FlowVersion> flows;
  LatestPerFlow latest(flows);
  Status st =
      internal::scan_prefix(db_, db_.flows, std::move(prefix),
                            [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Status {
                              v1::FlowVersion fv;
                              if (!internal::parse_value(value, fv)) {
                                return internal::corrupt("a flow of tenant " + std::string(tenant));
                              }
                              latest.add(std::move(fv));
                              return {};
                            });
  if (!st.is_ok()) return st;
  latest.finish();
  return flows;
}

Result<std::vector<v1::FlowVersion>> FlowStore::versions(std::string_view tenant,
                                                         std::string_view flow_id) const {
  if (!keys::valid_flow_part(tenant) || !keys::valid_flow_part(flow_id)) return invalid_pair();
  std::string prefix;
  keys::flow_prefix(prefix, tenant, flow_id);
  std::vector<v1::FlowVersion> out;
  Status st =
      internal::scan_prefix(db_, db_.flows, std::move(prefix),
                            [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Status {
                              if (!internal::parse_value(value, out.emplace_back())) {
                                return internal::corrupt("flow " + std::string(flow_id));
                              }
                              return {};
                            });
  if (!st.is_ok()) return st;
  return out;
}

Result<std::vector<v1::FlowVersion>> FlowStore::list_all() const {
  std::vector<v1::FlowVersion> flows;
  LatestPerFlow latest(flows);
  Status st = internal::scan_prefix(
      db_, db_.flows, "", [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Status {
        v1::FlowVersion fv;
        if (!internal::parse_value(value, fv)) return internal::corrupt("a stored flow version");
        latest.add(std::move(fv));
        return {};
      });
  if (!st.is_ok()) return st;
  latest.finish();
  return flows;
}

}  // namespace yantra::storage
