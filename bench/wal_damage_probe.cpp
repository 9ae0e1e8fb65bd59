// wal_damage_probe: what RocksDB itself does with each kind of write-ahead
// log damage under each recovery setting, measured rather than assumed
// (the table in docs/operations.md came from it; rerun it when RocksDB is
// upgraded). Plain RocksDB, none of Yantra's own checks.
//
// For every (damage, setting) pair, a child process (exec'ed afresh, so no
// RocksDB thread survives a fork) writes 400 synced puts and one unsynced
// put and exits without closing the DB, like SIGKILL; the parent damages the
// newest WAL and opens the DB with the setting, printing whether the open
// failed and how many of the 400 acknowledged records came back, the first
// missing one and how many are present after it (a hole).
//
// Usage: yantra_wal_damage_probe [DIR [FILTER]]: DIR (default
// /tmp/yantra-wal-probe) is removed and recreated; FILTER runs only the
// damages whose name contains it. Takes a few minutes: one fsync per record.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "tests/support/wal_file.hpp"

namespace {

using namespace yantra::testing::wal;

namespace fs = std::filesystem;

constexpr int kRecords = 400;

std::string key(int i) {
  char b[16];
  std::snprintf(b, sizeof b, "k%06d", i);
  return b;
}

// The child: `layout` 0 = one WAL of 330-byte records; 1 = 512-byte records
// (every 32 KiB block starts with a whole record); 2 = two live WALs (the
// older kept alive by column family "a", which is never flushed).
int populate(const std::string& dir, int layout) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.track_and_verify_wals_in_manifest = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                      {"a", {}}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(o, dir, cfs, &handles, &db).ok()) return 3;
  rocksdb::WriteOptions synced;
  synced.sync = true;
  // 512 = 7 (record header) + 12 (batch header) + 1 (type) + 1 + 7 (key)
  // + 2 + 482 (value).
  const size_t value_size = layout == 1 ? 482 : 300;
  for (int i = 0; i < kRecords; ++i) {
    if (layout == 2 && i == kRecords / 2) {
      if (!db->Put(synced, handles[1], "pin", "x").ok()) return 4;
      if (!db->Flush(rocksdb::FlushOptions(), handles[0]).ok()) return 5;
    }
    if (!db->Put(synced, key(i), std::string(value_size, static_cast<char>('a' + i % 26))).ok()) {
      return 6;
    }
  }
  rocksdb::WriteOptions unsynced;
  if (!db->Put(unsynced, key(kRecords), std::string(value_size, 'z')).ok()) return 7;
  std::_Exit(0);  // no Close, no flush: like SIGKILL
}

struct Setting {
  const char* name;
  rocksdb::WALRecoveryMode mode;
  bool track;
  bool paranoid;
};

struct Damage {
  const char* name;
  int layout;
  std::function<void(const std::vector<std::string>& wals)> apply;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--populate")
    return populate(argv[2], std::stoi(argv[3]));
  const std::string base = argc > 1 ? argv[1] : "/tmp/yantra-wal-probe";
  const std::string filter = argc > 2 ? argv[2] : "";
  const std::string self = fs::canonical("/proc/self/exe").string();
  using M = rocksdb::WALRecoveryMode;
  const std::vector<Setting> settings = {
      {"PointInTime (default)", M::kPointInTimeRecovery, false, true},
      {"PointInTime+track", M::kPointInTimeRecovery, true, true},
      {"TolerateTail", M::kTolerateCorruptedTailRecords, false, true},
      {"TolerateTail+track", M::kTolerateCorruptedTailRecords, true, true},
      {"TolerateTail+track paranoid=false", M::kTolerateCorruptedTailRecords, true, false},
      {"AbsoluteConsistency+track", M::kAbsoluteConsistency, true, true},
  };
  auto newest = [](const std::vector<std::string>& w) { return w.back(); };
  auto flip = [](const std::string& wal, size_t pos) {
    std::string d = read_file(wal);
    d[pos] ^= 0x5a;
    write_file(wal, d);
  };
  const std::vector<Damage> damages = {
      {"none", 0, [](const auto&) {}},
      {"last (unsynced) record cut in half", 0,
       [&](const auto& w) {
         auto r = records_of(read_file(newest(w)));
         fs::resize_file(newest(w), r.back().offset + 7 + r.back().length / 2);
       }},
      {"cut mid-record halfway", 0,
       [&](const auto& w) {
         auto r = records_of(read_file(newest(w)));
         const Record& m = r[r.size() / 2];
         fs::resize_file(newest(w), m.offset + 7 + m.length / 2);
       }},
      {"cut at a record boundary halfway", 0,
       [&](const auto& w) {
         auto r = records_of(read_file(newest(w)));
         fs::resize_file(newest(w), r[r.size() / 2].offset);
       }},
      {"byte flipped a third of the way in", 0,
       [&](const auto& w) {
         auto r = records_of(read_file(newest(w)));
         const Record& m = r[r.size() / 3];
         flip(newest(w), m.offset + 7 + m.length / 2);
       }},
      {"record zeroed a third of the way in", 0,
       [&](const auto& w) {
         std::string d = read_file(newest(w));
         auto r = records_of(d);
         const Record& m = r[r.size() / 3];
         std::fill(d.begin() + static_cast<std::ptrdiff_t>(m.offset),
                   d.begin() + static_cast<std::ptrdiff_t>(m.offset + 7 + m.length), '\0');
         write_file(newest(w), d);
       }},
      {"record header zeroed, next block starts with a whole record", 1,
       [&](const auto& w) {
         std::string d = read_file(newest(w));
         for (const Record& m : records_of(d)) {
           if (m.type == 1 && m.offset > 4096 && m.offset + 7 + m.length < kBlock) {
             std::fill(d.begin() + static_cast<std::ptrdiff_t>(m.offset),
                       d.begin() + static_cast<std::ptrdiff_t>(m.offset + 7), '\0');
             break;
           }
         }
         write_file(newest(w), d);
       }},
      {"byte flipped in the last (unsynced) record", 0,
       [&](const auto& w) {
         auto r = records_of(read_file(newest(w)));
         flip(newest(w), r.back().offset + 7 + r.back().length / 2);
       }},
      {"4096 zero bytes appended", 0,
       [&](const auto& w) {
         std::string d = read_file(newest(w));
         d.append(4096, '\0');
         write_file(newest(w), d);
       }},
      {"WAL deleted", 0, [&](const auto& w) { fs::remove(newest(w)); }},
      {"WAL cut to 0 bytes", 0, [&](const auto& w) { fs::resize_file(newest(w), 0); }},
      {"two WALs: older (closed) one deleted", 2, [](const auto& w) { fs::remove(w.front()); }},
      {"two WALs: older one cut in half", 2,
       [](const auto& w) { fs::resize_file(w.front(), fs::file_size(w.front()) / 2); }},
      {"two WALs: newest (live) one deleted", 2, [&](const auto& w) { fs::remove(newest(w)); }},
  };

  for (const auto& damage : damages) {
    if (std::string(damage.name).find(filter) == std::string::npos) continue;
    std::cout << "== " << damage.name << "\n";
    for (const auto& setting : settings) {
      const std::string dir = base + "/db";
      fs::remove_all(base);
      fs::create_directories(base);
      const pid_t pid = fork();
      if (pid == 0) {
        execl(self.c_str(), self.c_str(), "--populate", dir.c_str(),
              std::to_string(damage.layout).c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::cout << "  populate failed (" << status << ")\n";
        return 1;
      }
      damage.apply(wals_of(dir));
      rocksdb::Options o;
      o.wal_recovery_mode = setting.mode;
      o.track_and_verify_wals_in_manifest = setting.track;
      o.paranoid_checks = setting.paranoid;
      std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                          {"a", {}}};
      std::vector<rocksdb::ColumnFamilyHandle*> handles;
      rocksdb::DB* db = nullptr;
      rocksdb::Status s = rocksdb::DB::Open(o, dir, cfs, &handles, &db);
      std::cout << "  " << setting.name << ": ";
      if (!s.ok()) {
        std::cout << "REFUSES: " << s.ToString() << "\n";
        continue;
      }
      int present = 0;
      int first_missing = -1;
      int after_hole = 0;
      for (int i = 0; i < kRecords; ++i) {
        std::string v;
        if (db->Get(rocksdb::ReadOptions(), key(i), &v).ok()) {
          ++present;
          if (first_missing >= 0) ++after_hole;
        } else if (first_missing < 0) {
          first_missing = i;
        }
      }
      std::string v;
      const bool unsynced = db->Get(rocksdb::ReadOptions(), key(kRecords), &v).ok();
      const bool pin = db->Get(rocksdb::ReadOptions(), handles[1], "pin", &v).ok();
      std::cout << "opens, " << present << "/" << kRecords << " acknowledged";
      if (first_missing >= 0) std::cout << ", first missing " << first_missing;
      if (after_hole > 0) std::cout << ", " << after_hole << " present after a hole";
      if (unsynced) std::cout << ", +unsynced";
      if (damage.layout == 2) std::cout << (pin ? ", pin ok" : ", pin LOST");
      std::cout << std::endl;
      for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
      delete db;
    }
  }
  fs::remove_all(base);
  return 0;
}
