// Reading and damaging RocksDB write-ahead log files in tests: the newest WAL
// of a data dir, whole-file read/write, and the physical records of a WAL
// (db/log_format.h: 32 KiB blocks of records with a 7-byte header:
// crc32c(4), length(2), type(1); type 1 = a whole record). Shared by the
// storage-level and the real-binary WAL damage tests, which corrupt records
// at known offsets, and by bench/wal_damage_probe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace yantra::testing::wal {

// RocksDB's WAL block size (db/log_format.h).
constexpr size_t kBlock = 32768;

// Every `*.log` file of `dir`, oldest first (their names are zero-padded
// file numbers, so name order is age order).
inline std::vector<std::string> wals_of(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.substr(name.size() - 4) == ".log")
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The path of the highest-numbered `*.log` file in `dir`; "" when none.
inline std::string newest_wal(const std::string& dir) {
  const std::vector<std::string> all = wals_of(dir);
  return all.empty() ? std::string() : all.back();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

struct Record {
  size_t offset;  // of the 7-byte header
  size_t length;  // of the payload
  int type;
};

// The physical records of a WAL's bytes, up to the first zero header.
inline std::vector<Record> records_of(const std::string& data) {
  std::vector<Record> out;
  size_t pos = 0;
  while (pos + 7 <= data.size()) {
    const size_t left = kBlock - pos % kBlock;
    if (left < 7) {
      pos += left;
      continue;
    }
    const size_t length = static_cast<unsigned char>(data[pos + 4]) |
                          (static_cast<size_t>(static_cast<unsigned char>(data[pos + 5])) << 8);
    const int type = data[pos + 6];
    if (type == 0 && length == 0) break;
    out.push_back({pos, length, type});
    pos += 7 + length;
  }
  return out;
}

}  // namespace yantra::testing::wal
