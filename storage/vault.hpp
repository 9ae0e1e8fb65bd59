// Vault: per-tenant secrets, encrypted at rest (since 0.3). Envelope
// encryption, so that a stolen data directory (or backup) holds no plaintext
// and rotating the master key rewrites 32 bytes per tenant, not every secret:
//
//   master key (32 bytes, outside the DB: a file or the environment)
//     wraps, per tenant, a random 32-byte data key    -> secrets "d" | tenant
//       which encrypts each secret value               -> secrets "s" | tenant | 0x00 | name
//
// Both layers are AES-256-GCM with a fresh random 12-byte nonce per write.
// The additional authenticated data binds a ciphertext to its row (the
// tenant for a data key, tenant | 0x00 | name for a secret), so a ciphertext
// copied to another row fails to decrypt instead of leaking under a new name.
// Every data key records the id of the master key that wrapped it, and open()
// unwraps all of them: a node started with the wrong master key refuses to
// start rather than failing later, secret by secret.
//
// Error codes: "invalid_master_key", "master_key_unreadable",
// "insecure_master_key_file", "master_key_mismatch", "decrypt_failed",
// "invalid_argument", "not_found", and the store's write errors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/store.hpp"

namespace yantra::storage {

inline constexpr size_t kMasterKeySize = 32;

// 64 hex digits or the base64 of 32 bytes (standard alphabet, padded or not),
// surrounding whitespace ignored. Returns the 32 raw bytes.
Result<std::string> parse_master_key(std::string_view text);

// Reads and parses a master key file. "master_key_unreadable" when it is
// missing or unreadable, "insecure_master_key_file" when group or others have
// any permission on it (it must be 0600 or 0400), then as parse_master_key.
Result<std::string> read_master_key_file(const std::string& path);

// The first 16 hex digits of sha256(key): names a master key in the database
// without revealing it.
std::string master_key_id(std::string_view key);

class Vault {
 public:
  struct SecretInfo {
    std::string name;
    uint32_t version = 0;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
  };

  // Unwraps every tenant's data key with `master_key` (32 raw bytes):
  // "master_key_mismatch" naming the first tenant whose key another master
  // key wrapped, "decrypt_failed" when a wrapped key fails authentication.
  // The Vault must not outlive `store`.
  static Result<std::unique_ptr<Vault>> open(Store& store, std::string master_key);
  ~Vault();  // wipes the keys it holds
  Vault(const Vault&) = delete;
  Vault& operator=(const Vault&) = delete;

  // Stores `value` as secret `name` of `tenant` (creating the tenant's data
  // key on its first secret). Overwriting keeps created_ms and increments the
  // version. Names match [A-Za-z0-9_.-]{1,128}; tenants are non-empty without
  // NUL ("invalid_argument" otherwise).
  Result<SecretInfo> put(std::string_view tenant, std::string_view name, std::string_view value,
                         int64_t now_ms);
  // The plaintext, nullopt when absent, "decrypt_failed" when the stored
  // ciphertext does not authenticate (tampered, or moved from another row).
  Result<std::optional<std::string>> get(std::string_view tenant, std::string_view name) const;
  // Metadata only, never values; ordered by name.
  Result<std::vector<SecretInfo>> list(std::string_view tenant) const;
  // "not_found" when absent. The tenant's data key stays.
  Status remove(std::string_view tenant, std::string_view name);

  // Re-wraps every tenant data key from `old_key` to `new_key` in one batch
  // (secrets are untouched: their data keys do not change). Fails with
  // "master_key_mismatch" if any data key was not wrapped by `old_key`,
  // writing nothing. Run it with no Vault open on the store (the node
  // stopped): a Vault creating a data key meanwhile would wrap it with the
  // old key.
  static Status rotate_master_key(Store& store, std::string_view old_key, std::string_view new_key);

  // For a cluster (cluster/resources.hpp): etcd holds each tenant's data
  // key row and the secret records, every node installs them as they are,
  // so one first writer's data key is the cluster's and every node with
  // the same master key decrypts every secret. Plaintext never leaves here.
  //
  // The checks put() makes on its arguments (value may be empty).
  static Status check_secret(std::string_view tenant, std::string_view name,
                             std::string_view value);
  // A fresh random data key for `tenant`, wrapped by this vault's master
  // key: a serialized TenantDataKey.
  Result<std::string> new_data_key_row(std::string_view tenant, int64_t now_ms) const;
  // `value` sealed under the data key of `data_key_row` (which this master
  // key must have wrapped) with `info`'s name, version and times: a
  // serialized SecretRecord, as put() would store it.
  Result<std::string> seal_secret(std::string_view tenant, const SecretInfo& info,
                                  std::string_view value, std::string_view data_key_row) const;
  // Write rows exactly as given (after checking that they parse and, for a
  // data key, that it unwraps): the data key replaces the tenant's cached
  // one. Idempotent.
  Status install_data_key(std::string_view tenant, std::string_view row);
  Status install_secret(std::string_view tenant, std::string_view name, std::string_view record);

 private:
  Vault(Store& store, std::string master_key);
  // The tenant's raw data key from the cache, else unwrapped from its row
  // (and cached); nullopt when the tenant has none yet.
  Result<std::optional<std::string>> data_key(std::string_view tenant) const;

  Store& store_;
  const internal::Db& db_;
  std::string master_key_;
  std::string master_key_id_;
  // Serialises put/remove: versions are read-modify-write, and two first puts
  // of a tenant must not both create (and overwrite) its data key.
  std::mutex write_mu_;
  mutable std::mutex cache_mu_;
  mutable std::map<std::string, std::string, std::less<>> data_keys_;  // tenant -> raw key
};

}  // namespace yantra::storage
