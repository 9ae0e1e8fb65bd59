// TriggerStore: the durable rows of flow triggers (since 0.4), kept in the
// `auth` column family beside API keys because a webhook id is a credential
// of sorts (whoever knows it may start the flow):
//
//   "h" | hook_id                    -> tenant | 0x00 | flow_id   (lookup by URL)
//   "H" | tenant | 0x00 | flow_id    -> hook_id                   (the flow's current id)
//   "S" | tenant | 0x00 | flow_id    -> last_fired_ms(be64) | anchor_ms(be64)
//
// Why two hook rows: a request names only the hook id, and a flow view or a
// rotation names only the flow; both directions are one point read. They are
// written and deleted in one batch, so they never disagree.
//
// Why the schedule row holds two times: `last_fired_ms` is the newest slot
// whose execution start was acknowledged (0 = none yet); `anchor_ms` is when
// the schedule last (re)started counting from "now" (created, resumed, cron
// changed). Catch-up after downtime fires the slots after the later of the
// two, so a resumed flow never fires the slots of the time it was paused.
//
// Thread-safety: every method may be called from any thread; writes are
// serialised by one mutex and synced unless the store is Durability::kAsync.
// The TriggerStore must not outlive its Store.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"

namespace yantra::storage {

class TriggerStore {
 public:
  explicit TriggerStore(Store& store) : store_(store), db_(internal::db_of(store)) {}
  TriggerStore(const TriggerStore&) = delete;
  TriggerStore& operator=(const TriggerStore&) = delete;

  // "hk_" + 32 characters of base64url over 24 random bytes (OpenSSL
  // RAND_bytes, through base/crypto): unguessable, and safe in a URL path.
  // Fails ("crypto_error") only when the CSPRNG does.
  static Result<std::string> new_hook_id();

  struct HookTarget {
    std::string tenant;
    std::string flow_id;
  };
  // The flow a hook id starts; nullopt for an unknown (or rotated-away) id.
  Result<std::optional<HookTarget>> find_hook(std::string_view hook_id) const;
  // The flow's current hook id; nullopt when it has none.
  Result<std::optional<std::string>> hook_of(std::string_view tenant,
                                             std::string_view flow_id) const;
  // The flow's hook id, creating one when it has none.
  Result<std::string> ensure_hook(std::string_view tenant, std::string_view flow_id);
  // Replaces the flow's hook id by a new one (the old one stops resolving in
  // the same batch) and returns it.
  Result<std::string> rotate_hook(std::string_view tenant, std::string_view flow_id);
  // Makes `hook_id` the flow's id (the previous one stops resolving in the
  // same batch); a no-op when it already is. For a cluster node installing
  // the id etcd assigned (cluster/resources.hpp).
  Status set_hook(std::string_view tenant, std::string_view flow_id, std::string_view hook_id);

  struct ScheduleRow {
    int64_t last_fired_ms = 0;  // 0 = never fired
    int64_t anchor_ms = 0;
  };
  Result<std::optional<ScheduleRow>> schedule(std::string_view tenant,
                                              std::string_view flow_id) const;
  Status put_schedule(std::string_view tenant, std::string_view flow_id, const ScheduleRow& row);

  // Removes every trigger row of a deleted flow (hook and schedule).
  Status remove_flow(std::string_view tenant, std::string_view flow_id);

 private:
  Store& store_;
  const internal::Db& db_;
  std::mutex write_mu_;  // hook id creation is read-modify-write
};

}  // namespace yantra::storage
