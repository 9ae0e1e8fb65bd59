// Vault: envelope encryption of tenant secrets. Design notes:
//
// - AES-256-GCM through OpenSSL's EVP interface (the FIPS-capable path; the
//   low-level AES_* calls are deprecated in OpenSSL 3). GCM authenticates, so
//   tampering and wrong keys are detected rather than yielding garbage.
// - Nonces are 12 random bytes per encryption (crypto::random_bytes). With random
//   nonces GCM stays safe for about 2^32 encryptions per key; a tenant's data
//   key sees one per secret write and a master key one per tenant and
//   rotation, far below that.
// - The AAD is the row's identity, not the record's own `name` field: a
//   record copied to another row is decrypted with the new row's AAD and
//   fails, whatever its fields claim.
// - A data key is never overwritten: put() looks in the database before
//   creating one, under the write mutex, since overwriting would make every
//   existing secret of the tenant undecryptable.
// - Key bytes in memory are wiped (OPENSSL_cleanse) when dropped; plaintext
//   returned to callers is theirs to handle.
// - rotate_master_key() compacts the secrets column family afterwards so the
//   data keys wrapped by the old master key do not linger in SST files (a
//   leaked old master key must not unlock a later backup). Best effort: the
//   rotation is already committed when the compaction runs.
#include "storage/vault.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "base/storage_errc.hpp"
#include "storage/internal/db.hpp"
#include "storage/internal/keys.hpp"
#include "storage/internal/scan.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::storage {

namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kDataKeySize = 32;
constexpr size_t kMaxSecretName = 128;
// Secrets are credentials and small documents; a bound keeps one put from
// producing a huge WriteBatch.
constexpr size_t kMaxSecretValue = 1 << 20;

Status storage_error(const rocksdb::Status& s) {
  return {StorageErrc::kError, s.ToString()};
}

Status invalid(std::string message) {
  return {Errc::kInvalidArgument, std::move(message)};
}

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

struct CipherCtx {
  CipherCtx() : ctx(EVP_CIPHER_CTX_new()) {}
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
  EVP_CIPHER_CTX* ctx;
};

// AES-256-GCM; returns ciphertext || tag.
Result<std::string> seal(std::string_view key, std::string_view nonce, std::string_view aad,
                         std::string_view plaintext) {
  CipherCtx c;
  std::string out(plaintext.size() + kTagSize, '\0');
  int len = 0;
  int total = 0;
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) !=
          1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, bytes(key), bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, bytes(out), &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return Status(Errc::kCryptoError, "AES-256-GCM encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(c.ctx, bytes(out) + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          bytes(out) + plaintext.size()) != 1) {
    return Status(Errc::kCryptoError, "AES-256-GCM encryption failed");
  }
  return out;
}

// Inverse of seal(); nullopt when the tag does not authenticate (wrong key,
// wrong AAD, or modified bytes).
std::optional<std::string> unseal(std::string_view key, std::string_view nonce,
                                  std::string_view aad, std::string_view sealed) {
  if (key.size() != kDataKeySize || nonce.size() != kNonceSize || sealed.size() < kTagSize) {
    return std::nullopt;
  }
  const size_t n = sealed.size() - kTagSize;
  std::string tag(sealed.substr(n));
  CipherCtx c;
  std::string out(n, '\0');
  int len = 0;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) !=
          1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, bytes(key), bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(c.ctx, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(c.ctx, bytes(out), &len, bytes(sealed), static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) !=
          1 ||
      EVP_DecryptFinal_ex(c.ctx, bytes(out) + len, &len) != 1) {
    wipe(out);
    return std::nullopt;
  }
  return out;
}

std::string secret_aad(std::string_view tenant, std::string_view name) {
  std::string aad(tenant);
  aad.push_back('\0');
  aad.append(name);
  return aad;
}

bool valid_secret_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSecretName) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status check_secret_args(std::string_view tenant, std::string_view name) {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  if (!valid_secret_name(name)) {
    return invalid("secret names are 1..128 characters of A-Z a-z 0-9 _ . -");
  }
  return {};
}

// A new TenantDataKey row: `data_key` wrapped by `master_key`.
Result<v1::TenantDataKey> wrap(std::string_view master_key, std::string_view tenant,
                               std::string_view data_key, int64_t created_ms) {
  auto nonce = crypto::random_bytes(kNonceSize);
  if (!nonce.ok()) return nonce.status();
  auto wrapped = seal(master_key, *nonce, tenant, data_key);
  if (!wrapped.ok()) return wrapped.status();
  v1::TenantDataKey row;
  row.set_wrapped(std::move(*wrapped));
  row.set_nonce(std::move(*nonce));
  row.set_master_key_id(master_key_id(master_key));
  row.set_created_ms(created_ms);
  return row;
}

// Unwraps one data key row, checking first that `master_key` wrapped it.
Result<std::string> unwrap(std::string_view master_key, std::string_view tenant,
                           const v1::TenantDataKey& row) {
  if (row.master_key_id() != master_key_id(master_key)) {
    return Status(StorageErrc::kMasterKeyMismatch,
                  "the data key of tenant " + std::string(tenant) + " was wrapped by master key " +
                      row.master_key_id() + ", not by " + master_key_id(master_key));
  }
  auto key = unseal(master_key, row.nonce(), tenant, row.wrapped());
  if (!key || key->size() != kDataKeySize) {
    return Status(StorageErrc::kDecryptFailed,
                  "the data key of tenant " + std::string(tenant) + " does not authenticate");
  }
  return std::move(*key);
}

Status bad_master_key(const std::string& what) {
  return {StorageErrc::kInvalidMasterKey,
          "master key must be 64 hex digits or the base64 of 32 bytes: " + what};
}

}  // namespace

Result<std::string> parse_master_key(std::string_view text) {
  const char* kSpace = " \t\r\n\v\f";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return bad_master_key("it is empty");
  text = text.substr(first, text.find_last_not_of(kSpace) - first + 1);

  // 64 hex digits, else base64 in the alphabet its characters name (the
  // URL-safe one if it has '-' or '_'), padded or not.
  const bool hex = text.size() == 2 * kMasterKeySize &&
                   text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
  const Base64 alphabet =
      text.find_first_of("-_") != std::string_view::npos ? Base64::kUrl : Base64::kStandard;
  Result<std::string> key = hex ? hex_decode(text) : base64_decode(text, alphabet);
  // The decoders' messages name a position, never key material.
  if (!key.ok()) return bad_master_key(key.status().message());
  if (key->size() != kMasterKeySize) {
    const size_t n = key->size();
    wipe(key.value());
    return bad_master_key(std::to_string(text.size()) + " characters, which as base64 are " +
                          std::to_string(n) + " bytes");
  }
  return key;
}

Result<std::string> read_master_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status(StorageErrc::kMasterKeyUnreadable,
                  "cannot read master key file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(StorageErrc::kMasterKeyUnreadable,
                  "master key file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    return Status(
        StorageErrc::kInsecureMasterKeyFile,
        "master key file " + path + " has mode 0" + mode.str() + "; it must be 0600 or 0400");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    wipe(text);
    return Status(StorageErrc::kMasterKeyUnreadable, "cannot read master key file " + path);
  }
  auto key = parse_master_key(text);
  wipe(text);
  if (!key.ok()) return key.status().with_message(path + ": " + key.status().message());
  return key;
}

std::string master_key_id(std::string_view key) {
  return crypto::sha256_hex(key).substr(0, 16);
}

Vault::Vault(Store& store, std::string master_key)
    : store_(store),
      db_(internal::db_of(store)),
      master_key_(std::move(master_key)),
      master_key_id_(storage::master_key_id(master_key_)) {}

Vault::~Vault() {
  wipe(master_key_);
  for (auto& [tenant, key] : data_keys_) wipe(key);
}

Result<std::unique_ptr<Vault>> Vault::open(Store& store, std::string master_key) {
  if (master_key.size() != kMasterKeySize) {
    const size_t n = master_key.size();
    wipe(master_key);
    return bad_master_key("got " + std::to_string(n) + " raw bytes, need 32");
  }
  std::unique_ptr<Vault> vault(new Vault(store, std::move(master_key)));
  Status st = internal::scan_prefix(
      vault->db_, vault->db_.secrets, "d",
      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        std::string tenant = key.ToString().substr(1);
        v1::TenantDataKey row;
        if (!internal::parse_value(value, row)) {
          return Status(StorageErrc::kCorrupt,
                        "the data key of tenant " + tenant + " does not parse");
        }
        auto data_key = unwrap(vault->master_key_, tenant, row);
        if (!data_key.ok()) return data_key.status();
        vault->data_keys_.emplace(std::move(tenant), std::move(*data_key));
        return {};
      });
  if (!st.is_ok()) return st;
  return vault;
}

Result<std::optional<std::string>> Vault::data_key(std::string_view tenant) const {
  {
    std::lock_guard lock(cache_mu_);
    auto found = data_keys_.find(tenant);
    if (found != data_keys_.end()) return std::optional<std::string>(found->second);
  }
  std::string k;
  keys::data_key_key(k, tenant);
  std::string value;
  rocksdb::Status s = db_.rocks->Get(rocksdb::ReadOptions(), db_.secrets, k, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  v1::TenantDataKey row;
  if (!row.ParseFromString(value)) {
    return Status(StorageErrc::kCorrupt,
                  "the data key of tenant " + std::string(tenant) + " does not parse");
  }
  auto key = unwrap(master_key_, tenant, row);
  if (!key.ok()) return key.status();
  std::lock_guard lock(cache_mu_);
  data_keys_.emplace(std::string(tenant), *key);
  return std::optional<std::string>(std::move(*key));
}

Result<Vault::SecretInfo> Vault::put(std::string_view tenant, std::string_view name,
                                     std::string_view value, int64_t now_ms) {
  if (Status st = check_secret_args(tenant, name); !st.is_ok()) return st;
  if (value.size() > kMaxSecretValue) return invalid("secret values are at most 1 MiB");
  std::lock_guard lock(write_mu_);
  if (store_.read_only()) return store_.read_only_error();

  rocksdb::WriteBatch batch;
  rocksdb::Status put_status;
  auto check = [&put_status](rocksdb::Status s) {
    if (put_status.ok()) put_status = std::move(s);
  };
  std::string k;
  auto existing_key = data_key(tenant);
  if (!existing_key.ok()) return existing_key.status();
  std::string key;
  bool created = false;
  if (existing_key.value()) {
    key = std::move(*existing_key.value());
  } else {
    auto fresh = crypto::random_bytes(kDataKeySize);
    if (!fresh.ok()) return fresh.status();
    key = std::move(*fresh);
    auto row = wrap(master_key_, tenant, key, now_ms);
    if (!row.ok()) {
      wipe(key);
      return row.status();
    }
    keys::data_key_key(k, tenant);
    check(batch.Put(db_.secrets, k, row->SerializeAsString()));
    created = true;
  }

  keys::secret_key(k, tenant, name);
  SecretInfo info{std::string(name), 1, now_ms, now_ms};
  std::string previous;
  rocksdb::Status s = db_.rocks->Get(rocksdb::ReadOptions(), db_.secrets, k, &previous);
  if (s.ok()) {
    v1::SecretRecord old;
    if (!old.ParseFromString(previous)) {
      wipe(key);
      return Status(StorageErrc::kCorrupt, "secret " + std::string(name) + " of tenant " +
                                               std::string(tenant) + " does not parse");
    }
    info.version = old.version() + 1;
    info.created_ms = old.created_ms();
  } else if (!s.IsNotFound()) {
    wipe(key);
    return storage_error(s);
  }

  auto nonce = crypto::random_bytes(kNonceSize);
  Result<std::string> sealed =
      nonce.ok() ? seal(key, *nonce, secret_aad(tenant, name), value) : nonce.status();
  if (!sealed.ok()) {
    wipe(key);
    return sealed.status();
  }
  v1::SecretRecord record;
  record.set_name(info.name);
  record.set_version(info.version);
  record.set_created_ms(info.created_ms);
  record.set_updated_ms(info.updated_ms);
  record.set_nonce(std::move(*nonce));
  record.set_ciphertext(std::move(*sealed));
  check(batch.Put(db_.secrets, k, record.SerializeAsString()));
  if (!put_status.ok()) {
    wipe(key);
    return storage_error(put_status);
  }
  rocksdb::WriteOptions wo;
  wo.sync = store_.sync_writes();
  s = db_.rocks->Write(wo, &batch);
  if (!s.ok()) {
    wipe(key);
    return store_.write_failed(s);
  }
  store_.note_written(batch.GetDataSize());
  if (created) {
    std::lock_guard cache_lock(cache_mu_);
    data_keys_.emplace(std::string(tenant), std::move(key));
  } else {
    wipe(key);
  }
  return info;
}

Result<std::optional<std::string>> Vault::get(std::string_view tenant,
                                              std::string_view name) const {
  if (Status st = check_secret_args(tenant, name); !st.is_ok()) return st;
  std::string k;
  keys::secret_key(k, tenant, name);
  std::string value;
  rocksdb::Status s = db_.rocks->Get(rocksdb::ReadOptions(), db_.secrets, k, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s);
  v1::SecretRecord record;
  if (!record.ParseFromString(value)) {
    return Status(StorageErrc::kCorrupt, "secret " + std::string(name) + " of tenant " +
                                             std::string(tenant) + " does not parse");
  }
  auto key = data_key(tenant);
  if (!key.ok()) return key.status();
  if (!key.value()) {
    return Status(StorageErrc::kDecryptFailed, "tenant " + std::string(tenant) + " has secret " +
                                                   std::string(name) + " but no data key");
  }
  auto plain = unseal(*key.value(), record.nonce(), secret_aad(tenant, name), record.ciphertext());
  wipe(*key.value());
  if (!plain) {
    return Status(StorageErrc::kDecryptFailed, "secret " + std::string(name) + " of tenant " +
                                                   std::string(tenant) + " does not authenticate");
  }
  return std::optional<std::string>(std::move(*plain));
}

Result<std::vector<Vault::SecretInfo>> Vault::list(std::string_view tenant) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  std::string prefix;
  keys::secret_prefix(prefix, tenant);
  const size_t prefix_size = prefix.size();
  std::vector<SecretInfo> out;
  Status st = internal::scan_prefix(
      db_, db_.secrets, std::move(prefix),
      [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Status {
        std::string name(key.data() + prefix_size, key.size() - prefix_size);
        v1::SecretRecord record;
        if (!internal::parse_value(value, record)) {
          return Status(StorageErrc::kCorrupt,
                        "secret " + name + " of tenant " + std::string(tenant) + " does not parse");
        }
        out.push_back(
            {std::move(name), record.version(), record.created_ms(), record.updated_ms()});
        return {};
      });
  if (!st.is_ok()) return st;
  return out;
}

Status Vault::remove(std::string_view tenant, std::string_view name) {
  if (Status st = check_secret_args(tenant, name); !st.is_ok()) return st;
  std::lock_guard lock(write_mu_);
  if (store_.read_only()) return store_.read_only_error();
  std::string k;
  keys::secret_key(k, tenant, name);
  std::string value;
  rocksdb::Status s = db_.rocks->Get(rocksdb::ReadOptions(), db_.secrets, k, &value);
  if (s.IsNotFound()) {
    return Status(Errc::kNotFound,
                  "tenant " + std::string(tenant) + " has no secret " + std::string(name));
  }
  if (!s.ok()) return storage_error(s);
  rocksdb::WriteOptions wo;
  wo.sync = store_.sync_writes();
  s = db_.rocks->Delete(wo, db_.secrets, k);
  if (!s.ok()) return store_.write_failed(s);
  return {};
}

Status Vault::rotate_master_key(Store& store, std::string_view old_key, std::string_view new_key) {
  if (old_key.size() != kMasterKeySize || new_key.size() != kMasterKeySize) {
    return bad_master_key("rotation needs two keys of 32 raw bytes");
  }
  if (store.read_only()) return store.read_only_error();
  const internal::Db& db = internal::db_of(store);
  rocksdb::WriteBatch batch;
  rocksdb::Status put_status;
  Status st = internal::scan_prefix(
      db, db.secrets, "d", [&](const rocksdb::Slice& k, const rocksdb::Slice& value) -> Status {
        std::string tenant = k.ToString().substr(1);
        v1::TenantDataKey row;
        if (!internal::parse_value(value, row)) {
          return Status(StorageErrc::kCorrupt,
                        "the data key of tenant " + tenant + " does not parse");
        }
        auto key = unwrap(old_key, tenant, row);
        if (!key.ok()) return key.status();
        auto rewrapped = wrap(new_key, tenant, *key, row.created_ms());
        wipe(*key);
        if (!rewrapped.ok()) return rewrapped.status();
        rocksdb::Status s = batch.Put(db.secrets, k, rewrapped->SerializeAsString());
        if (put_status.ok()) put_status = std::move(s);
        return {};
      });
  if (!st.is_ok()) return st;
  if (!put_status.ok()) return storage_error(put_status);
  if (batch.Count() == 0) return {};
  rocksdb::WriteOptions wo;
  wo.sync = true;  // rare, and losing it would strand the keys under the old master key
  rocksdb::Status s = db.rocks->Write(wo, &batch);
  if (!s.ok()) return store.write_failed(s);
  store.note_written(batch.GetDataSize());
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  db.rocks->Flush(rocksdb::FlushOptions(), db.secrets).PermitUncheckedError();
  db.rocks->CompactRange(compact, db.secrets, nullptr, nullptr).PermitUncheckedError();
  return {};
}

Status Vault::check_secret(std::string_view tenant, std::string_view name, std::string_view value) {
  if (Status st = check_secret_args(tenant, name); !st.is_ok()) return st;
  if (value.size() > kMaxSecretValue) return invalid("secret values are at most 1 MiB");
  return {};
}

Result<std::string> Vault::new_data_key_row(std::string_view tenant, int64_t now_ms) const {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  auto fresh = crypto::random_bytes(kDataKeySize);
  if (!fresh.ok()) return fresh.status();
  auto row = wrap(master_key_, tenant, *fresh, now_ms);
  wipe(*fresh);
  if (!row.ok()) return row.status();
  return row->SerializeAsString();
}

Result<std::string> Vault::seal_secret(std::string_view tenant, const SecretInfo& info,
                                       std::string_view value,
                                       std::string_view data_key_row) const {
  if (Status st = check_secret(tenant, info.name, value); !st.is_ok()) return st;
  v1::TenantDataKey row;
  if (!row.ParseFromArray(data_key_row.data(), static_cast<int>(data_key_row.size()))) {
    return Status(StorageErrc::kCorrupt,
                  "the data key of tenant " + std::string(tenant) + " does not parse");
  }
  auto key = unwrap(master_key_, tenant, row);
  if (!key.ok()) return key.status();
  auto nonce = crypto::random_bytes(kNonceSize);
  Result<std::string> sealed =
      nonce.ok() ? seal(*key, *nonce, secret_aad(tenant, info.name), value) : nonce.status();
  wipe(*key);
  if (!sealed.ok()) return sealed.status();
  v1::SecretRecord record;
  record.set_name(info.name);
  record.set_version(info.version);
  record.set_created_ms(info.created_ms);
  record.set_updated_ms(info.updated_ms);
  record.set_nonce(std::move(*nonce));
  record.set_ciphertext(std::move(*sealed));
  return record.SerializeAsString();
}

Status Vault::install_data_key(std::string_view tenant, std::string_view row_bytes) {
  if (!keys::valid_flow_part(tenant)) return invalid("tenant must be non-empty and contain no NUL");
  v1::TenantDataKey row;
  if (!row.ParseFromArray(row_bytes.data(), static_cast<int>(row_bytes.size()))) {
    return Status(StorageErrc::kCorrupt,
                  "the data key of tenant " + std::string(tenant) + " does not parse");
  }
  auto key = unwrap(master_key_, tenant, row);
  if (!key.ok()) return key.status();
  std::lock_guard lock(write_mu_);
  if (store_.read_only()) {
    wipe(*key);
    return store_.read_only_error();
  }
  std::string k;
  keys::data_key_key(k, tenant);
  rocksdb::WriteOptions wo;
  wo.sync = store_.sync_writes();
  rocksdb::Status s = db_.rocks->Put(wo, db_.secrets, k, rocksdb::Slice(row_bytes));
  if (!s.ok()) {
    wipe(*key);
    return store_.write_failed(s);
  }
  store_.note_written(k.size() + row_bytes.size());
  std::lock_guard cache_lock(cache_mu_);
  auto [it, inserted] = data_keys_.try_emplace(std::string(tenant));
  if (!inserted) wipe(it->second);
  it->second = std::move(*key);
  return {};
}

Status Vault::install_secret(std::string_view tenant, std::string_view name,
                             std::string_view record_bytes) {
  if (Status st = check_secret_args(tenant, name); !st.is_ok()) return st;
  v1::SecretRecord record;
  if (!record.ParseFromArray(record_bytes.data(), static_cast<int>(record_bytes.size()))) {
    return Status(StorageErrc::kCorrupt, "secret " + std::string(name) + " of tenant " +
                                             std::string(tenant) + " does not parse");
  }
  std::lock_guard lock(write_mu_);
  if (store_.read_only()) return store_.read_only_error();
  std::string k;
  keys::secret_key(k, tenant, name);
  rocksdb::WriteOptions wo;
  wo.sync = store_.sync_writes();
  rocksdb::Status s = db_.rocks->Put(wo, db_.secrets, k, rocksdb::Slice(record_bytes));
  if (!s.ok()) return store_.write_failed(s);
  store_.note_written(k.size() + record_bytes.size());
  return {};
}

}  // namespace yantra::storage
