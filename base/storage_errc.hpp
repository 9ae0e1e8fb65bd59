// Error codes storage/ produces: RocksDB failures, damaged records, the
// read-only latch, the vault's master key and ciphertexts, the replicated
// log's segment refusals. It lives in base/
// (which owns the error codes) rather than storage/, so that api/errors.cpp,
// which maps every code to an HTTP status, names these codes without
// including or linking storage/ (api/ never includes storage/). How codes
// work and how to add one: base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class StorageErrc : uint16_t {
  kError = 1,
  kCorrupt,
  kReadOnly,
  // The disk is (nearly) full: writes are refused until space is freed.
  kNoSpace,
  kDecryptFailed,
  kInvalidMasterKey,
  kMasterKeyMismatch,
  kMasterKeyUnreadable,
  kInsecureMasterKeyFile,
  // The replicated log's segments (storage/segment_store.hpp). A segment
  // this replica sealed refuses every later append: the writer is deposed.
  kSegmentSealed,
  // An append left a hole: the replica expects an earlier lsn (named in the
  // status) and the writer resends from it.
  kSegmentGap,
  // The appending epoch is not the segment's (one writer per segment), or a
  // seal names an epoch older than the segment it seals.
  kSegmentWrongEpoch,
  // The segment's batches were deleted because a snapshot covers them.
  kSegmentTrimmed,
  // A replicated partition batch that does not follow the last one applied
  // (storage/partition_batch.hpp): an earlier batch is missing (since 0.5).
  kLogGap,
};

inline constexpr std::array kAllStorageErrc = {
    StorageErrc::kError,
    StorageErrc::kCorrupt,
    StorageErrc::kReadOnly,
    StorageErrc::kNoSpace,
    StorageErrc::kDecryptFailed,
    StorageErrc::kInvalidMasterKey,
    StorageErrc::kMasterKeyMismatch,
    StorageErrc::kMasterKeyUnreadable,
    StorageErrc::kInsecureMasterKeyFile,
    StorageErrc::kSegmentSealed,
    StorageErrc::kSegmentGap,
    StorageErrc::kSegmentWrongEpoch,
    StorageErrc::kSegmentTrimmed,
    StorageErrc::kLogGap,
};

template <>
struct ErrcTraits<StorageErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kStorage;
  static constexpr std::string_view wire(StorageErrc e) {
    switch (e) {
      case StorageErrc::kError: return "storage_error";
      case StorageErrc::kCorrupt: return "storage_corrupt";
      case StorageErrc::kReadOnly: return "store_read_only";
      case StorageErrc::kNoSpace: return "store_no_space";
      case StorageErrc::kDecryptFailed: return "decrypt_failed";
      case StorageErrc::kInvalidMasterKey: return "invalid_master_key";
      case StorageErrc::kMasterKeyMismatch: return "master_key_mismatch";
      case StorageErrc::kMasterKeyUnreadable: return "master_key_unreadable";
      case StorageErrc::kInsecureMasterKeyFile: return "insecure_master_key_file";
      case StorageErrc::kSegmentSealed: return "segment_sealed";
      case StorageErrc::kSegmentGap: return "segment_gap";
      case StorageErrc::kSegmentWrongEpoch: return "segment_wrong_epoch";
      case StorageErrc::kSegmentTrimmed: return "segment_trimmed";
      case StorageErrc::kLogGap: return "log_gap";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
