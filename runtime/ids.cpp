// ULID formatting and the stable partition hash. FNV-1a is used rather than
// std::hash because the partition of an id must never change between builds,
// compilers or nodes: it is part of the on-disk key layout.
#include "runtime/ids.hpp"

namespace yantra {
namespace {
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

bool is_base32(char c) {
  for (const char* p = kAlphabet; *p; ++p) {
    if (*p == c) return true;
  }
  return false;
}
}  // namespace

std::string make_execution_id(int64_t unix_ms, uint64_t random_hi, uint64_t random_lo) {
  // ULID: 10 digits for 48 time bits (top two bits zero), then 16 digits for
  // 80 random bits (16 from random_hi, 64 from random_lo).
  std::string out(kExecutionIdLength, '0');
  uint64_t t = static_cast<uint64_t>(unix_ms) & 0xFFFFFFFFFFFFull;
  for (int i = 9; i >= 0; --i, t >>= 5) out[static_cast<size_t>(i)] = kAlphabet[t & 31u];
  uint64_t lo = random_lo;
  uint64_t hi = random_hi & 0xFFFFull;
  for (int i = 25; i >= 10; --i) {
    out[static_cast<size_t>(i)] = kAlphabet[lo & 31u];
    lo = (lo >> 5) | ((hi & 31u) << 59);
    hi >>= 5;
  }
  return out;
}

bool is_valid_execution_id(std::string_view id) {
  if (id.size() != kExecutionIdLength) return false;
  if (id[0] > '7') return false;  // first digit holds only 3 bits
  for (char c : id) {
    if (!is_base32(c)) return false;
  }
  return true;
}

namespace {

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

constexpr uint64_t kFnvOffset = 14695981039346656037ull;

}  // namespace

uint32_t partition_of(std::string_view execution_id, uint32_t partitions) {
  const uint64_t h = fnv1a(kFnvOffset, execution_id);
  return partitions == 0 ? 0 : static_cast<uint32_t>(h % partitions);
}

uint32_t partition_of_key(std::string_view tenant, std::string_view key, uint32_t partitions) {
  uint64_t h = fnv1a(kFnvOffset, tenant);
  h = fnv1a(h, std::string_view("\0", 1));
  h = fnv1a(h, key);
  return partitions == 0 ? 0 : static_cast<uint32_t>(h % partitions);
}

uint32_t partition_of_flow(std::string_view tenant, std::string_view flow_id, uint32_t partitions) {
  uint64_t h = fnv1a(kFnvOffset, tenant);
  h = fnv1a(h, std::string_view("\0\1flow\0", 7));
  h = fnv1a(h, flow_id);
  return partitions == 0 ? 0 : static_cast<uint32_t>(h % partitions);
}

}  // namespace yantra
