// The rows one WriteRequest adds to a WriteBatch: the single piece of code
// both ways of committing a partition's log go through — LogWriter (group
// commit into the local store) and apply() of a committed replicated batch
// (partition_batch.hpp) — so that a node's state after the replicated log is
// byte-for-byte what the local writer would have written. The key layout is
// keys.hpp's; what each field of the request means is partition_log.hpp's.
//
// Storage's own files only (internal/).
#pragma once

#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <string>

#include "storage/internal/db.hpp"
#include "storage/partition_log.hpp"

namespace yantra::storage::internal {

// What a request must be for its rows to be written: a partition that fits
// 16 bits, an execution id of 1..255 bytes and outbox rows with ids. A
// request that is not gets "invalid_argument" from LogWriter, is refused by
// encode() and makes decode() refuse its batch.
bool valid_request(const WriteRequest& request);

// Buffers reused from one request to the next (no allocation per row in
// steady state).
struct RowScratch {
  std::string key;
  std::string summary;  // the request's serialized summary
  std::string value;    // small values built here (the retention entry)
};

// Adds the rows of a valid request to `batch`: its events, the removal of
// its delete_key, its outbox rows, its snapshot, and with a summary the
// summary row, the active marker (or, terminal, its removal and the
// retention entry) and, when created, the listing, idempotency and fork
// rows. `summary_bytes` is the summary as already serialized by the writer
// (a replicated batch carries it); null = serialize request.summary here.
// Returns the first refusal of the WriteBatch (it refuses only when it
// outgrows its size limit); rows after a refusal are not added.
rocksdb::Status add_request(rocksdb::WriteBatch& batch, const Db& db, const WriteRequest& request,
                            RowScratch& scratch, const std::string* summary_bytes = nullptr);

}  // namespace yantra::storage::internal
