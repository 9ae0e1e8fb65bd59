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

}  // namespace yantra
