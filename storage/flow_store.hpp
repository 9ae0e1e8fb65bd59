// FlowStore: every version of every flow definition, in the `flows` column
// family (docs/event-log-format.md):
//   tenant | 0x00 | flow_id | 0x00 | version(be32) -> FlowVersion
// Versions are dense from 1; a deleted flow is a tombstone version
// (deleted = true), so its history stays readable. Tenant and flow ids are
// non-empty without 0x00, which makes tenant|0x00|flow|0x00 an exact prefix
// of one flow's versions ("f" never reads "fa").
//
// Writes: put() is rare and user-visible, so it is always synced, whatever
// the store's durability mode. Puts are serialised by one mutex around "read
// latest, write latest+1", simpler than a merge operator or a transaction,
// so concurrent puts of one flow get distinct, dense versions.
//
// Thread-safety: every method may be called from any thread. Owned by Store
// (store.flows()).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::storage {

class FlowStore {
 public:
  FlowStore(const FlowStore&) = delete;
  FlowStore& operator=(const FlowStore&) = delete;

  // Stores `flow` as version latest+1 of (tenant, flow_id) and returns that
  // version (flow.version is ignored).
  Result<uint32_t> put(v1::FlowVersion flow);
  // Stores `flow` at its own version (1 or more), overwriting what is there:
  // for a cluster node installing a version etcd numbered
  // (cluster/resources.hpp), where installing one twice must be harmless.
  // Synced, like put().
  Status put_version(const v1::FlowVersion& flow);
  // version 0 = latest (a tombstone included). nullopt when absent.
  Result<std::optional<v1::FlowVersion>> get(std::string_view tenant, std::string_view flow_id,
                                             uint32_t version = 0) const;
  // Flows of a tenant at their latest version, tombstones (deleted) skipped,
  // ordered by flow id.
  Result<std::vector<v1::FlowVersion>> list(std::string_view tenant) const;
  // Every stored version of one flow, oldest first (tombstones included).
  Result<std::vector<v1::FlowVersion>> versions(std::string_view tenant,
                                                std::string_view flow_id) const;
  // The latest version of every flow of every tenant, tombstones skipped,
  // ordered by tenant and flow id: what trigger indexes are built from at
  // open.
  Result<std::vector<v1::FlowVersion>> list_all() const;

 private:
  friend class Store;
  explicit FlowStore(const internal::Db& db) : db_(db) {}
  const internal::Db& db_;
  std::mutex put_mu_;  // serialises put()
};

}  // namespace yantra::storage
