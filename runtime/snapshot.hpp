// Snapshots of ExecutionState: "state at seq N" without folding from seq 1.
//
// Why the encoding is to_json(): it is already canonical (sorted keys) and
// complete (every field apply() maintains, derived indexes included), and
// tests compare states through it, so "decode(encode(s)) == s" is checked
// with the same bytes the property tests use. Restoring the derived indexes
// (running, active_frames, detached_active) instead of recomputing them keeps
// decode a plain inverse: a snapshot folded further behaves exactly like the
// state it was taken from, byte for byte.
//
// `started` is not in to_json(); it is true exactly when last_seq > 0 (the
// first accepted event is always ExecutionStarted).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "runtime/execution.hpp"

namespace yantra {

// Version of a snapshot row's layout, stored in v1::Snapshot.format. Bump
// when to_json() changes shape; a reader refuses other formats (and folds
// from scratch instead). 1: canonical JSON text of to_json() (still read);
// 2: the same document as CBOR (written in 0.2: faster to read back; still
// read); 3: format 2 plus the members of 0.3 (buffered "signals", approval
// steps' "decisions"), written only when used, so every format-2 document
// is a valid format-3 one. Bumped all the same: a 0.2 reader would drop
// those members silently, and must fold from scratch instead.
inline constexpr uint32_t kSnapshotFormatJson = 1;
inline constexpr uint32_t kSnapshotFormatCbor02 = 2;
inline constexpr uint32_t kSnapshotFormat = 3;

// Canonical JSON text of to_json(state).
std::string encode_state(const ExecutionState& state);

// The inverse of encode_state(). Error "invalid_snapshot" (naming the field)
// when the text is not JSON or a field is missing or of the wrong type.
Result<ExecutionState> decode_state(std::string_view text);

// Applies `rest` (which must start at snapshot.last_seq + 1) to a snapshot;
// the result equals folding the whole log. Errors as apply().
Result<ExecutionState> fold_from(ExecutionState snapshot, const std::vector<v1::Event>& rest);

// The row of the `snapshots` column family, and back (error
// "invalid_snapshot" also for an unknown format or a seq that does not match
// the state).
v1::Snapshot make_snapshot(const ExecutionState& state);
Result<ExecutionState> restore_snapshot(const v1::Snapshot& snapshot);

}  // namespace yantra
