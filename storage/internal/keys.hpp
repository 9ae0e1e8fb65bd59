// Key encoding of the store's column families, shared by storage's own files
// only (the typed stores, log_writer.cpp, vault.cpp, ...). Big-endian
// integers make RocksDB's bytewise order equal numeric order, so "events of
// one execution from seq a to b" is one range scan. The execution id is
// preceded by its length (one byte) in event keys: without it the events of
// "ab" and "abc" would share a byte prefix and a scan of "ab" could run into
// "abc" (whose next byte would look like a seq). In the executions CF the id
// ends the key, so it needs no length there. Tenant and flow ids are
// separated by 0x00 and may not contain it, which keeps "tenant|flow|" an
// exact prefix of one flow's versions.
//
// This is an on-disk format: change it only together with a migration and
// docs/event-log-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace yantra::storage::keys {

inline constexpr size_t kMaxExecutionIdSize = 255;
inline constexpr uint32_t kMaxPartition = 0xFFFF;
// be16 partition + one length byte, before the id itself.
inline constexpr size_t kEventPrefixHeader = 3;

inline void put_be16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

inline void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline void put_be64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline uint16_t get_be16(const char* p) {
  return static_cast<uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                               static_cast<unsigned char>(p[1]));
}

inline uint32_t get_be32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline bool valid_partition(uint32_t partition) {
  return partition <= kMaxPartition;
}

// Any bytes are fine (the id is length-prefixed), but it must fit one byte of
// length and be non-empty so that every execution has a distinct prefix.
inline bool valid_execution_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxExecutionIdSize;
}

// Tenant and flow ids delimit each other with 0x00, so they cannot hold it.
inline bool valid_flow_part(std::string_view s) {
  return !s.empty() && s.find('\0') == std::string_view::npos;
}

// events: partition(be16) | len(u8) | execution_id | seq(be64).
// Appends the per-execution prefix (everything but seq) to `out`.
inline void append_event_prefix(std::string& out, uint32_t partition, std::string_view id) {
  put_be16(out, static_cast<uint16_t>(partition));
  out.push_back(static_cast<char>(static_cast<unsigned char>(id.size())));
  out.append(id);
}

inline void event_key(std::string& out, uint32_t partition, std::string_view id, uint64_t seq) {
  out.clear();
  append_event_prefix(out, partition, id);
  put_be64(out, seq);
}

// Size of the per-execution prefix of an event key, or 0 when `key` is too
// short to have one (the prefix extractor's domain check).
inline size_t event_prefix_size(const char* key, size_t size) {
  if (size < kEventPrefixHeader) return 0;
  size_t n = kEventPrefixHeader + static_cast<unsigned char>(key[2]);
  return n <= size ? n : 0;
}

// executions: "s" | execution_id -> ExecutionSummary.
inline void summary_key(std::string& out, std::string_view id) {
  out.clear();
  out.push_back('s');
  out.append(id);
}

// executions: "r" | partition(be16) | execution_id -> "" (active marker).
inline void active_prefix(std::string& out, uint32_t partition) {
  out.clear();
  out.push_back('r');
  put_be16(out, static_cast<uint16_t>(partition));
}

inline void active_key(std::string& out, uint32_t partition, std::string_view id) {
  active_prefix(out, partition);
  out.append(id);
}

// executions: "l" | tenant | 0x00 | execution_id -> flow_id (listing index:
// ULIDs sort by creation time, so a reverse scan is newest first).
inline void list_prefix(std::string& out, std::string_view tenant) {
  out.clear();
  out.push_back('l');
  out.append(tenant);
  out.push_back('\0');
}

inline void list_key(std::string& out, std::string_view tenant, std::string_view id) {
  list_prefix(out, tenant);
  out.append(id);
}

// executions: "i" | tenant | 0x00 | idempotency key -> execution_id.
inline void idempotency_key(std::string& out, std::string_view tenant, std::string_view key) {
  out.clear();
  out.push_back('i');
  out.append(tenant);
  out.push_back('\0');
  out.append(key);
}

// executions: "f" | len(u8) | parent_id | fork_id -> "" (forks of an execution).
inline void fork_prefix(std::string& out, std::string_view parent) {
  out.clear();
  out.push_back('f');
  out.push_back(static_cast<char>(static_cast<unsigned char>(parent.size())));
  out.append(parent);
}

inline void fork_key(std::string& out, std::string_view parent, std::string_view child) {
  fork_prefix(out, parent);
  out.append(child);
}

// executions: "e" | ended_ms(be64) | execution_id -> partition(be16): the
// retention queue, in the order executions ended.
inline void ended_key(std::string& out, uint64_t ended_ms, std::string_view id) {
  out.clear();
  out.push_back('e');
  put_be64(out, ended_ms);
  out.append(id);
}

// executions: "a" | partition(be16) -> lsn(be64) (since 0.5): the last
// replicated batch of the partition applied to this store, written in the
// same WriteBatch as that batch's rows (storage/partition_batch.hpp).
inline constexpr size_t kAppliedValueSize = 8;

inline void applied_key(std::string& out, uint32_t partition) {
  out.clear();
  out.push_back('a');
  put_be16(out, static_cast<uint16_t>(partition));
}

// auth: "k" | sha256(secret) -> ApiKey.
inline void api_key_key(std::string& out, std::string_view hash) {
  out.clear();
  out.push_back('k');
  out.append(hash);
}

// auth: "t" | tenant -> Tenant (since 0.3). Tenant ids hold no 0x00, and
// every tenant row is exactly "t" + id, so a scan of "t" is ordered by id.
inline void tenant_key(std::string& out, std::string_view tenant) {
  out.clear();
  out.push_back('t');
  out.append(tenant);
}

// auth: "x" | tenant | 0x00 | key_id -> sha256(secret) (since 0.3): the
// per-tenant index of API keys, so listing or revoking by key id never scans
// (or reveals) other tenants' keys.
inline void api_key_index_prefix(std::string& out, std::string_view tenant) {
  out.clear();
  out.push_back('x');
  out.append(tenant);
  out.push_back('\0');
}

inline void api_key_index_key(std::string& out, std::string_view tenant, std::string_view key_id) {
  api_key_index_prefix(out, tenant);
  out.append(key_id);
}

// auth: "g" | tenant | 0x00 | kind | 0x00 | id -> ToolRegistration (since
// 0.8): a tenant's registered tool sources. Tenant ids and kinds hold no
// 0x00, so a scan of the tenant | kind prefix lists one kind, ordered by id.
inline void tool_registration_prefix(std::string& out, std::string_view tenant,
                                     std::string_view kind) {
  out.clear();
  out.push_back('g');
  out.append(tenant);
  out.push_back('\0');
  out.append(kind);
  out.push_back('\0');
}

inline void tool_registration_key(std::string& out, std::string_view tenant, std::string_view kind,
                                  std::string_view id) {
  tool_registration_prefix(out, tenant, kind);
  out.append(id);
}

// auth: "h" | hook_id -> tenant | 0x00 | flow_id (since 0.4): the flow a
// webhook URL starts. Hook ids are ours ("hk_" + base64url), never empty.
inline void hook_key(std::string& out, std::string_view hook_id) {
  out.clear();
  out.push_back('h');
  out.append(hook_id);
}

// auth: "H" | tenant | 0x00 | flow_id -> hook_id (since 0.4): a flow's
// current webhook id, written and deleted in one batch with its "h" row.
inline void flow_hook_key(std::string& out, std::string_view tenant, std::string_view flow_id) {
  out.clear();
  out.push_back('H');
  out.append(tenant);
  out.push_back('\0');
  out.append(flow_id);
}

// auth: "S" | tenant | 0x00 | flow_id -> last_fired_ms(be64) | anchor_ms(be64)
// (since 0.4): where a flow's schedule stands (storage/trigger_store.hpp).
inline void schedule_key(std::string& out, std::string_view tenant, std::string_view flow_id) {
  out.clear();
  out.push_back('S');
  out.append(tenant);
  out.push_back('\0');
  out.append(flow_id);
}

// executions: "q" | tenant | 0x00 | flow_id | 0x00 | queue_seq(be64) ->
// QueuedRun (since 0.3): one flow's waiting runs, oldest (lowest seq) first.
inline void queue_prefix(std::string& out, std::string_view tenant, std::string_view flow_id) {
  out.clear();
  out.push_back('q');
  out.append(tenant);
  out.push_back('\0');
  out.append(flow_id);
  out.push_back('\0');
}

inline void queue_key(std::string& out, std::string_view tenant, std::string_view flow_id,
                      uint64_t queue_seq) {
  queue_prefix(out, tenant, flow_id);
  put_be64(out, queue_seq);
}

// secrets: "d" | tenant -> TenantDataKey (since 0.3).
inline void data_key_key(std::string& out, std::string_view tenant) {
  out.clear();
  out.push_back('d');
  out.append(tenant);
}

// secrets: "s" | tenant | 0x00 | name -> SecretRecord (since 0.3).
inline void secret_prefix(std::string& out, std::string_view tenant) {
  out.clear();
  out.push_back('s');
  out.append(tenant);
  out.push_back('\0');
}

inline void secret_key(std::string& out, std::string_view tenant, std::string_view name) {
  secret_prefix(out, tenant);
  out.append(name);
}

// audit: "c" | chain | 0x00 | seq(be64) -> AuditRecord (since 0.3). The chain
// is the tenant id, or "-" for records without a tenant.
inline void audit_prefix(std::string& out, std::string_view chain) {
  out.clear();
  out.push_back('c');
  out.append(chain);
  out.push_back('\0');
}

inline void audit_key(std::string& out, std::string_view chain, uint64_t seq) {
  audit_prefix(out, chain);
  put_be64(out, seq);
}

// audit, in a cluster (since 0.6; written through the partition's log):
//   "p" | partition(be16) | chain | 0x00 | seq(be64) -> AuditRecord
//   "w" | partition(be16) | sender -> last counter (be64): a relay's high-water mark
inline constexpr size_t kPartitionAuditHeader = 3;  // "p" + be16

inline void partition_audit_prefix(std::string& out, uint32_t partition, std::string_view chain) {
  out.clear();
  out.push_back('p');
  put_be16(out, static_cast<uint16_t>(partition));
  out.append(chain);
  out.push_back('\0');
}

inline void partition_audit_key(std::string& out, uint32_t partition, std::string_view chain,
                                uint64_t seq) {
  partition_audit_prefix(out, partition, chain);
  put_be64(out, seq);
}

inline void audit_mark_key(std::string& out, uint32_t partition, std::string_view sender) {
  out.clear();
  out.push_back('w');
  put_be16(out, static_cast<uint16_t>(partition));
  out.append(sender);
}

// outbox: "o" | due_ms(be64) | message_id -> OutboxEntry (since 0.3): callback
// deliveries owed, in the order they are due, so "what is due now" is one
// scan from "o" up to "o" | now+1. Message ids are ours and never empty.
inline constexpr size_t kOutboxKeyHeader = 9;  // "o" + be64

inline void outbox_key(std::string& out, uint64_t due_ms, std::string_view id) {
  out.clear();
  out.push_back('o');
  put_be64(out, due_ms);
  out.append(id);
}

// flows: tenant | 0x00 | flow_id | 0x00 | version(be32).
inline void flow_prefix(std::string& out, std::string_view tenant, std::string_view flow_id) {
  out.clear();
  out.append(tenant);
  out.push_back('\0');
  out.append(flow_id);
  out.push_back('\0');
}

inline void flow_key(std::string& out, std::string_view tenant, std::string_view flow_id,
                     uint32_t version) {
  flow_prefix(out, tenant, flow_id);
  put_be32(out, version);
}

// segments: the replicated log's segments on this replica (since 0.5,
// segment_store.hpp). Partition is be32 here (the cluster's partition ids),
// segment ids are the writer's epoch.
//   "m" | partition(be32) | segment(be64)             -> segment metadata
//   "b" | partition(be32) | segment(be64) | lsn(be64) -> batch bytes (opaque)
// Metadata rows are a prefix of their own, so listing a partition's segments
// never reads a batch; one segment's batches are one contiguous range.
inline constexpr size_t kSegmentPrefixSize = 1 + 4 + 8;  // tag + partition + segment
inline constexpr size_t kSegmentBatchKeySize = kSegmentPrefixSize + 8;

inline void segment_meta_prefix(std::string& out, uint32_t partition) {
  out.clear();
  out.push_back('m');
  put_be32(out, partition);
}

inline void segment_meta_key(std::string& out, uint32_t partition, uint64_t segment) {
  segment_meta_prefix(out, partition);
  put_be64(out, segment);
}

// Every batch of one segment starts with this.
inline void segment_batch_prefix(std::string& out, uint32_t partition, uint64_t segment) {
  out.clear();
  out.push_back('b');
  put_be32(out, partition);
  put_be64(out, segment);
}

inline void segment_batch_key(std::string& out, uint32_t partition, uint64_t segment,
                              uint64_t lsn) {
  segment_batch_prefix(out, partition, segment);
  put_be64(out, lsn);
}

// Exclusive upper bound of every key starting with `prefix` (for
// ReadOptions::iterate_upper_bound): trailing 0xFF bytes cannot be
// incremented, so they are dropped first. Empty means "no bound".
inline std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xFF) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;  // empty: no upper bound
}

}  // namespace yantra::storage::keys
