// Vault against a real RocksDB: secrets round-trip, never reach the disk in
// plaintext (every file of the DB directory is scanned after flush and
// compaction), a wrong master key is refused at open, rotation re-wraps,
// tampered or moved ciphertexts fail to decrypt, and master keys parse from
// hex, base64 and files with safe permissions only.
#include "storage/vault.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "storage/internal/keys.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::open_store;
using testing::raw;
using testing::ScopedDir;

std::string key_of(char fill) {
  return std::string(kMasterKeySize, fill);
}

std::unique_ptr<Vault> open_vault(Store& store, const std::string& master) {
  auto vault = Vault::open(store, master);
  EXPECT_TRUE(vault.ok()) << vault.status().to_string();
  return vault.ok() ? std::move(vault).value() : nullptr;
}

std::string raw_secret_row(Store& store, const std::string& tenant, const std::string& name) {
  std::string k;
  keys::secret_key(k, tenant, name);
  std::string value;
  EXPECT_TRUE(raw(store).rocks->Get(rocksdb::ReadOptions(), raw(store).secrets, k, &value).ok());
  return value;
}

void put_raw_secret_row(Store& store, const std::string& tenant, const std::string& name,
                        const std::string& value) {
  std::string k;
  keys::secret_key(k, tenant, name);
  ASSERT_TRUE(raw(store).rocks->Put(rocksdb::WriteOptions(), raw(store).secrets, k, value).ok());
}

TEST(VaultTest, PutGetListRemoveRoundTrip) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);

  auto info = vault->put("acme", "db.password", "hunter2", 100);
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->version, 1u);
  EXPECT_EQ(info->created_ms, 100);
  auto second = vault->put("acme", "db.password", "correct horse", 200);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, 2u);
  EXPECT_EQ(second->created_ms, 100);
  EXPECT_EQ(second->updated_ms, 200);
  ASSERT_TRUE(vault->put("acme", "API_TOKEN", "", 300).ok());  // empty values are fine
  ASSERT_TRUE(vault->put("other", "db.password", "other's", 300).ok());

  EXPECT_EQ(**vault->get("acme", "db.password"), "correct horse");
  EXPECT_EQ(**vault->get("acme", "API_TOKEN"), "");
  EXPECT_EQ(**vault->get("other", "db.password"), "other's");
  EXPECT_FALSE(vault->get("acme", "missing")->has_value());
  EXPECT_FALSE(vault->get("nobody", "db.password")->has_value());

  auto listed = vault->list("acme");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->at(0).name, "API_TOKEN");
  EXPECT_EQ(listed->at(1).name, "db.password");
  EXPECT_EQ(listed->at(1).version, 2u);

  ASSERT_TRUE(vault->remove("acme", "db.password"));
  EXPECT_EQ(vault->remove("acme", "db.password").code(), "not_found");
  EXPECT_FALSE(vault->get("acme", "db.password")->has_value());
  EXPECT_EQ(**vault->get("other", "db.password"), "other's");

  // A reopened vault (fresh cache) reads what the first one wrote.
  vault.reset();
  vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);
  EXPECT_EQ(**vault->get("other", "db.password"), "other's");
}

TEST(VaultTest, RejectsBadNamesAndTenants) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);
  for (std::string name : {std::string(""), std::string("has space"), std::string("slash/x"),
                           std::string(129, 'a'), std::string("nul\0x", 5)}) {
    EXPECT_EQ(vault->put("acme", name, "v", 1).status().code(), "invalid_argument") << name;
    EXPECT_EQ(vault->get("acme", name).status().code(), "invalid_argument") << name;
  }
  EXPECT_TRUE(vault->put("acme", std::string(128, 'a'), "v", 1).ok());
  EXPECT_EQ(vault->put("", "name", "v", 1).status().code(), "invalid_argument");
  EXPECT_EQ(Vault::open(*store, "short").status().code(), "invalid_master_key");
}

// Every byte of every file under `dir`.
std::string all_file_bytes(const std::string& dir) {
  std::string out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

TEST(VaultTest, PlaintextNeverReachesTheDisk) {
  ScopedDir dir;
  const std::string plaintext = "PLAINTEXT-MARKER-3f9a1c-do-not-store";
  const std::string master = key_of('M');
  const std::string control = "CONTROL-MARKER-in-the-clear";
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto vault = open_vault(*store, master);
    ASSERT_TRUE(vault);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(vault->put("acme", "s" + std::to_string(i), plaintext, i).ok());
    }
    ASSERT_TRUE(vault->put("acme", "s0", plaintext + "-v2", 50).ok());
    // WAL, memtable flushed to SST, then compacted: every form the data takes.
    std::string before = all_file_bytes(dir.path());
    EXPECT_EQ(before.find(plaintext), std::string::npos) << "plaintext in the WAL";
    ASSERT_TRUE(raw(*store).rocks->Flush(rocksdb::FlushOptions(), raw(*store).secrets).ok());
    ASSERT_TRUE(
        raw(*store)
            .rocks
            ->CompactRange(rocksdb::CompactRangeOptions(), raw(*store).secrets, nullptr, nullptr)
            .ok());
    EXPECT_EQ(**vault->get("acme", "s7"), plaintext);
    // A control: a value stored in the clear is found by the same scan.
    ASSERT_TRUE(raw(*store)
                    .rocks->Put(rocksdb::WriteOptions(), raw(*store).flows, "control", control)
                    .ok());
  }
  const std::string bytes = all_file_bytes(dir.path());
  EXPECT_GT(bytes.size(), 0u);
  EXPECT_EQ(bytes.find(plaintext), std::string::npos) << "plaintext on disk";
  EXPECT_EQ(bytes.find(master), std::string::npos) << "master key on disk";
  EXPECT_NE(bytes.find(control), std::string::npos) << "the scan misses files";
}

TEST(VaultTest, WrongMasterKeyIsRefusedAtOpen) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  {
    auto vault = open_vault(*store, key_of('a'));
    ASSERT_TRUE(vault);
    ASSERT_TRUE(vault->put("acme", "x", "secret", 1).ok());
  }
  auto wrong = Vault::open(*store, key_of('b'));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), "master_key_mismatch");
  EXPECT_NE(wrong.status().message().find("acme"), std::string::npos) << wrong.status().message();
  EXPECT_NE(wrong.status().message().find(master_key_id(key_of('a'))), std::string::npos);
  // An empty store opens with any key.
  ScopedDir other;
  auto empty = open_store(other.path());
  ASSERT_TRUE(empty);
  EXPECT_TRUE(Vault::open(*empty, key_of('b')).ok());
}

TEST(VaultTest, RotationRewrapsDataKeysAndRetiresTheOldMasterKey) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  const std::string old_key = key_of('o');
  const std::string new_key = key_of('n');
  std::string row_before;
  {
    auto vault = open_vault(*store, old_key);
    ASSERT_TRUE(vault);
    ASSERT_TRUE(vault->put("acme", "a", "alpha", 1).ok());
    ASSERT_TRUE(vault->put("beta", "b", "bravo", 1).ok());
    row_before = raw_secret_row(*store, "acme", "a");
  }
  EXPECT_EQ(Vault::rotate_master_key(*store, key_of('x'), new_key).code(), "master_key_mismatch");
  ASSERT_TRUE(Vault::rotate_master_key(*store, old_key, new_key));
  EXPECT_EQ(raw_secret_row(*store, "acme", "a"), row_before);  // secrets untouched

  EXPECT_EQ(Vault::open(*store, old_key).status().code(), "master_key_mismatch");
  auto vault = open_vault(*store, new_key);
  ASSERT_TRUE(vault);
  EXPECT_EQ(**vault->get("acme", "a"), "alpha");
  EXPECT_EQ(**vault->get("beta", "b"), "bravo");
  // A second rotation from the retired key fails and changes nothing.
  EXPECT_EQ(Vault::rotate_master_key(*store, old_key, key_of('z')).code(), "master_key_mismatch");
  EXPECT_TRUE(Vault::open(*store, new_key).ok());
}

TEST(VaultTest, CorruptedCiphertextFailsToDecrypt) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);
  ASSERT_TRUE(vault->put("acme", "token", "value-123", 1).ok());
  v1::SecretRecord record;
  ASSERT_TRUE(record.ParseFromString(raw_secret_row(*store, "acme", "token")));
  std::string ciphertext = record.ciphertext();
  ciphertext[2] = static_cast<char>(ciphertext[2] ^ 0x01);
  record.set_ciphertext(ciphertext);
  put_raw_secret_row(*store, "acme", "token", record.SerializeAsString());
  auto got = vault->get("acme", "token");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), "decrypt_failed");
  // The tag too.
  ASSERT_TRUE(vault->put("acme", "token", "value-123", 2).ok());
  ASSERT_TRUE(record.ParseFromString(raw_secret_row(*store, "acme", "token")));
  ciphertext = record.ciphertext();
  ciphertext.back() = static_cast<char>(ciphertext.back() ^ 0x80);
  record.set_ciphertext(ciphertext);
  put_raw_secret_row(*store, "acme", "token", record.SerializeAsString());
  EXPECT_EQ(vault->get("acme", "token").status().code(), "decrypt_failed");
}

TEST(VaultTest, ARowCopiedToAnotherNameOrTenantFailsToDecrypt) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);
  ASSERT_TRUE(vault->put("acme", "admin_token", "top secret", 1).ok());
  ASSERT_TRUE(vault->put("acme", "public_name", "harmless", 1).ok());
  ASSERT_TRUE(vault->put("evil", "mine", "x", 1).ok());
  const std::string row = raw_secret_row(*store, "acme", "admin_token");

  put_raw_secret_row(*store, "acme", "public_name", row);  // same tenant, other name
  EXPECT_EQ(vault->get("acme", "public_name").status().code(), "decrypt_failed");
  put_raw_secret_row(*store, "evil", "admin_token", row);  // same name, other tenant
  EXPECT_EQ(vault->get("evil", "admin_token").status().code(), "decrypt_failed");
  EXPECT_EQ(**vault->get("acme", "admin_token"), "top secret");

  // Data keys are bound to their tenant too: evil's row holding acme's
  // wrapped key is refused when the vault opens.
  std::string acme_dk;
  std::string evil_dk_key;
  keys::data_key_key(acme_dk, "acme");
  keys::data_key_key(evil_dk_key, "evil");
  std::string wrapped;
  ASSERT_TRUE(
      raw(*store).rocks->Get(rocksdb::ReadOptions(), raw(*store).secrets, acme_dk, &wrapped).ok());
  ASSERT_TRUE(raw(*store)
                  .rocks->Put(rocksdb::WriteOptions(), raw(*store).secrets, evil_dk_key, wrapped)
                  .ok());
  vault.reset();
  EXPECT_EQ(Vault::open(*store, key_of('k')).status().code(), "decrypt_failed");
}

TEST(VaultTest, ListNeverReturnsValues) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  auto vault = open_vault(*store, key_of('k'));
  ASSERT_TRUE(vault);
  ASSERT_TRUE(vault->put("acme", "k1", "VALUE-ONE", 1).ok());
  auto listed = vault->list("acme");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  const Vault::SecretInfo& info = listed->at(0);
  // SecretInfo has no value field: name and metadata are all a listing holds.
  EXPECT_EQ(info.name, "k1");
  EXPECT_EQ(info.version, 1u);
}

// A cluster (cluster/resources.hpp) seals on one node and installs the rows
// as they are on every other: a secret sealed by vault A under the data key
// row A made decrypts in store B with the same master key; the installed
// data key replaces B's own; a row wrapped by another master key is
// refused and installs nothing.
TEST(VaultTest, RowsSealedOnOneNodeInstallAndDecryptOnAnother) {
  ScopedDir dir_a, dir_b;
  auto store_a = open_store(dir_a.path());
  auto store_b = open_store(dir_b.path());
  ASSERT_TRUE(store_a && store_b);
  auto a = open_vault(*store_a, key_of('k'));
  auto b = open_vault(*store_b, key_of('k'));
  ASSERT_TRUE(a && b);
  // B made a data key of its own first (a secret written before joining).
  ASSERT_TRUE(b->put("acme", "local", "x", 1).ok());

  auto row = a->new_data_key_row("acme", 5);
  ASSERT_TRUE(row.ok()) << row.status().to_string();
  Vault::SecretInfo info{"db.password", 3, 10, 20};
  auto record = a->seal_secret("acme", info, "hunter2", row.value());
  ASSERT_TRUE(record.ok()) << record.status().to_string();
  EXPECT_EQ(record->find("hunter2"), std::string::npos);

  ASSERT_TRUE(b->install_data_key("acme", row.value()).is_ok());
  ASSERT_TRUE(b->install_secret("acme", "db.password", record.value()).is_ok());
  ASSERT_TRUE(b->install_secret("acme", "db.password", record.value()).is_ok());  // idempotent
  EXPECT_EQ(b->get("acme", "db.password").value(), std::optional<std::string>("hunter2"));
  auto listed = b->list("acme");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "db.password");
  EXPECT_EQ((*listed)[0].version, 3u);
  EXPECT_EQ((*listed)[0].created_ms, 10);
  // The installed key survives a reopen (it is the row, not just the cache).
  b.reset();
  b = open_vault(*store_b, key_of('k'));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->get("acme", "db.password").value(), std::optional<std::string>("hunter2"));

  // Another master key's row is refused, and B keeps decrypting.
  ScopedDir dir_c;
  auto store_c = open_store(dir_c.path());
  auto c = open_vault(*store_c, key_of('z'));
  ASSERT_TRUE(c);
  auto foreign = c->new_data_key_row("acme", 5);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(b->install_data_key("acme", foreign.value()).code(), "master_key_mismatch");
  EXPECT_EQ(a->seal_secret("acme", info, "v", foreign.value()).status().code(),
            "master_key_mismatch");
  EXPECT_EQ(b->get("acme", "db.password").value(), std::optional<std::string>("hunter2"));
  EXPECT_EQ(b->install_secret("acme", "bad name", record.value()).code(), "invalid_argument");
  EXPECT_EQ(b->install_data_key("acme", "not a row").code(), "storage_corrupt");
}

TEST(MasterKeyTest, ParsesHexAndBase64AndRejectsTheRest) {
  std::string raw;
  for (int i = 0; i < 32; ++i) raw.push_back(static_cast<char>(i * 7 + 1));
  const std::string hex = "01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3da";
  const std::string b64 = "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=";
  auto from_hex = parse_master_key("  " + hex + "\n");
  ASSERT_TRUE(from_hex.ok()) << from_hex.status().to_string();
  EXPECT_EQ(*from_hex, raw);
  auto from_b64 = parse_master_key(b64 + "\r\n");
  ASSERT_TRUE(from_b64.ok()) << from_b64.status().to_string();
  EXPECT_EQ(*from_b64, raw);
  EXPECT_EQ(*parse_master_key(b64.substr(0, 43)), raw);  // unpadded

  for (std::string bad :
       {std::string(""), std::string("   \n"), hex.substr(0, 62), hex + "00",
        std::string("AQgPFh0k"), b64.substr(0, 40) + "!!!=", std::string("=====")}) {
    auto r = parse_master_key(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), "invalid_master_key") << bad;
  }
  // Messages never echo key material.
  auto r = parse_master_key(hex.substr(0, 63) + "!");
  EXPECT_EQ(r.status().message().find(hex.substr(0, 10)), std::string::npos);
}

TEST(MasterKeyTest, MasterKeyIdIsAShortDigestPrefix) {
  const std::string id = master_key_id(key_of('a'));
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(id, master_key_id(key_of('b')));
  EXPECT_EQ(id, master_key_id(key_of('a')));
}

TEST(MasterKeyTest, ReadsFilesWithOwnerOnlyPermissions) {
  ScopedDir dir;
  std::filesystem::create_directories(dir.path());
  const std::string path = dir.sub("master.key");
  { std::ofstream(path) << std::string(64, 'a') << "\n"; }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto key = read_master_key_file(path);
  ASSERT_TRUE(key.ok()) << key.status().to_string();
  EXPECT_EQ(*key, std::string(32, '\xaa'));

  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_EQ(read_master_key_file(path).status().code(), "insecure_master_key_file");
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_EQ(read_master_key_file(path).status().code(), "insecure_master_key_file");

  EXPECT_EQ(read_master_key_file(dir.sub("missing")).status().code(), "master_key_unreadable");
  const std::string junk = dir.sub("junk.key");
  { std::ofstream(junk) << "not a key\n"; }
  ASSERT_EQ(::chmod(junk.c_str(), 0400), 0);
  EXPECT_EQ(read_master_key_file(junk).status().code(), "invalid_master_key");
}

}  // namespace
}  // namespace yantra::storage
