// libFuzzer target: the replicated log's batches (storage/partition_batch.hpp),
// which a node reads from other nodes and from its segment store. The input
// is decoded twice: as it is (almost always refused by the CRC32C trailer),
// and closed with a valid trailer, so that the fuzzer reaches the protobuf
// parser and the validation behind the checksum. A refusal must be
// "storage_corrupt"; a batch that decodes must pass the validation apply()
// relies on, and encode -> decode of it must give the same requests back.
// Seeds: tests/fuzz/corpus/partition_batch/ (encoded batches, as the unit
// tests build them).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/storage_errc.hpp"
#include "storage/partition_batch.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using yantra::StorageErrc;
using yantra::storage::DecodedBatch;
using yantra::storage::WriteRequest;

std::string framed(std::string_view body) {
  std::string out(body);
  const uint32_t crc = yantra::storage::crc32c(body);
  out.push_back(static_cast<char>((15 << 3) | 5));
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(crc >> shift));
  return out;
}

bool same(const WriteRequest& a, const WriteRequest& b) {
  if (a.summary.has_value() != b.summary.has_value()) return false;
  if (a.summary && a.summary->SerializeAsString() != b.summary->SerializeAsString()) return false;
  if (a.outbox.size() != b.outbox.size()) return false;
  for (size_t i = 0; i < a.outbox.size(); ++i) {
    if (a.outbox[i].due_ms != b.outbox[i].due_ms || a.outbox[i].id != b.outbox[i].id ||
        a.outbox[i].entry != b.outbox[i].entry) {
      return false;
    }
  }
  return a.partition == b.partition && a.execution_id == b.execution_id && a.events == b.events &&
         a.created == b.created && a.idempotency_key == b.idempotency_key &&
         a.parent_execution_id == b.parent_execution_id && a.snapshot == b.snapshot &&
         a.delete_key == b.delete_key;
}

void check(const yantra::Result<DecodedBatch>& batch) {
  if (!batch.ok()) {
    FUZZ_CHECK(batch.status().is(StorageErrc::kCorrupt), "unexpected error %s",
               batch.status().to_string().c_str());
    return;
  }
  FUZZ_CHECK(batch->lsn >= 1 && batch->partition <= 0xFFFF, "lsn %llu partition %u",
             static_cast<unsigned long long>(batch->lsn), batch->partition);
  FUZZ_CHECK(batch->summaries.size() == batch->requests.size(), "summaries not one per request");
  for (const WriteRequest& r : batch->requests) {
    FUZZ_CHECK(
        r.partition == batch->partition && !r.execution_id.empty() && r.execution_id.size() <= 255,
        "a request that apply() must not see passed validation");
  }
  // What decodes, encodes again, to the same requests.
  auto again = yantra::storage::encode(batch->partition, batch->lsn, batch->epoch, batch->requests);
  FUZZ_CHECK(again.ok(), "a decoded batch does not encode: %s", again.status().to_string().c_str());
  auto back = yantra::storage::decode(*again);
  FUZZ_CHECK(back.ok(), "a re-encoded batch does not decode: %s",
             back.status().to_string().c_str());
  FUZZ_CHECK(back->partition == batch->partition && back->lsn == batch->lsn &&
                 back->epoch == batch->epoch && back->requests.size() == batch->requests.size(),
             "the batch header changed in a round trip");
  for (size_t i = 0; i < batch->requests.size(); ++i) {
    FUZZ_CHECK(same(back->requests[i], batch->requests[i]), "request %zu changed in a round trip",
               i);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check(yantra::storage::decode(bytes));
  // The input without its last 5 bytes (a seed's trailer) re-closed, and
  // the whole input closed: both reach the parser.
  if (size >= 5) check(yantra::storage::decode(framed(bytes.substr(0, size - 5))));
  check(yantra::storage::decode(framed(bytes)));
  return 0;
}
