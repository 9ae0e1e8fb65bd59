// Execution ids and partitioning. An execution id is a 26-character ULID
// (Crockford base32: 48 bits of milliseconds, 80 random bits), so ids sort by
// creation time and carry everything routing needs: partition =
// fnv1a(id) mod P, computed by any node without a lookup. Generating an id
// needs a clock and randomness, so the caller supplies both; this file stays
// pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace yantra {

inline constexpr size_t kExecutionIdLength = 26;

std::string make_execution_id(int64_t unix_ms, uint64_t random_hi, uint64_t random_lo);
bool is_valid_execution_id(std::string_view id);
uint32_t partition_of(std::string_view execution_id, uint32_t partitions);
// The partition of a start with an idempotency key: fnv1a(tenant, 0x00, key)
// mod P. Any node computes it, so retries of one key reach one partition
// (whose log holds the key's row) wherever they arrive; the execution id
// is then drawn until partition_of(id) equals it.
uint32_t partition_of_key(std::string_view tenant, std::string_view key, uint32_t partitions);
// The partition that holds every execution of a flow with
// max_concurrent_executions or a rate limit in a cluster (its "home"), so that one leader
// counts and queues them all: fnv1a(tenant, 0x00, 0x01, "flow", 0x00,
// flow_id) mod P. An idempotency key is a header value, which holds no
// control bytes, so no key's partition is computed from the same bytes.
uint32_t partition_of_flow(std::string_view tenant, std::string_view flow_id, uint32_t partitions);

}  // namespace yantra
