// The free-space floor in the store (storage/disk_guard.hpp): with a probe
// the test controls, every writer of the store — admin writes, the run
// queue, the outbox, secrets, triggers, the log writer, the audit writer —
// refuses with "store_no_space" below the floor, nothing of a refused write
// is stored, reads go on, and writing resumes by itself once the probe
// reports space again (with hysteresis). The latch stays untouched: this
// state is reversible. The gauge of the metrics registry is tested here too.
//
// Two last tests, as root only, let RocksDB itself hit ENOSPC on a tmpfs
// (the probe claims plenty of space, so the floor does not stop the
// writes): a failed flush is reversible, a failed WAL write latches; the
// process never aborts.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "base/metrics.hpp"
#include "storage/audit_log.hpp"
#include "storage/auth_store.hpp"
#include "storage/disk_guard.hpp"
#include "storage/event_log.hpp"
#include "storage/flow_store.hpp"
#include "storage/internal/db.hpp"
#include "storage/run_queue.hpp"
#include "storage/trigger_store.hpp"
#include "storage/vault.hpp"
#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using namespace std::chrono_literals;
using testing::commit;
using testing::make_request;
using testing::make_summary;
using testing::ScopedDir;

constexpr uint64_t kMiB = 1024 * 1024;

// Polls `pred` every millisecond for up to 5 s.
template <typename Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

// A probe whose answer the test sets.
struct FakeDisk {
  std::atomic<uint64_t> free{1024 * kMiB};
  DiskGuard::Probe probe() {
    return [this]() -> Result<uint64_t> { return free.load(); };
  }
};

TEST(Metrics, GaugesGoUpAndDownAndRenderAsGauges) {
  metrics::Registry reg;
  metrics::Gauge& g = reg.gauge("yantra_test_free_bytes", "Free bytes");
  EXPECT_EQ(g.value(), 0);
  g.set(5000000000);  // above 32 bits: bytes of a real disk
  g.add(-1);
  EXPECT_EQ(g.value(), 4999999999);
  EXPECT_EQ(&reg.gauge("yantra_test_free_bytes", "ignored"), &g);  // one series per labels
  reg.gauge("yantra_test_state", "A state", {{"kind", "a"}}).set(1);
  reg.counter("yantra_test_total", "A counter").inc(3);
  const std::string text = reg.render();
  EXPECT_NE(text.find("# TYPE yantra_test_free_bytes gauge\nyantra_test_free_bytes 4999999999\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE yantra_test_state gauge\nyantra_test_state{kind=\"a\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE yantra_test_total counter\nyantra_test_total 3\n"), std::string::npos)
      << text;
}

TEST(DiskGuard, RefusesBelowTheFloorAndResumesAboveItWithHysteresis) {
  FakeDisk disk;
  disk.free = 200 * kMiB;
  std::atomic<int> changes{0};
  DiskGuard::Options options;
  options.path = "/nowhere";
  options.min_free_bytes = 100 * kMiB;
  options.interval = std::chrono::hours(1);  // only sample() samples here
  options.probe = disk.probe();
  options.on_change = [&](bool) { ++changes; };
  auto guard = DiskGuard::start(options);
  EXPECT_FALSE(guard->below_floor());
  EXPECT_EQ(guard->free_bytes(), 200 * kMiB);

  disk.free = 99 * kMiB;
  guard->sample();
  EXPECT_TRUE(guard->below_floor());
  EXPECT_EQ(changes.load(), 1);
  const Status refusal = guard->refusal();
  EXPECT_EQ(refusal.code(), "store_no_space");
  EXPECT_NE(refusal.message().find("99 MiB free under /nowhere"), std::string::npos)
      << refusal.message();
  EXPECT_NE(refusal.message().find("100 MiB (min_free_disk_mb)"), std::string::npos);

  disk.free = 102 * kMiB;  // above the floor, below floor + 5%: still refusing
  guard->sample();
  EXPECT_TRUE(guard->below_floor());
  disk.free = 106 * kMiB;
  guard->sample();
  EXPECT_FALSE(guard->below_floor());
  EXPECT_EQ(changes.load(), 2);

  guard->note_no_space();  // ENOSPC although the sample said fine
  EXPECT_TRUE(guard->below_floor());
  guard->sample();  // 106 MiB >= resume level
  EXPECT_FALSE(guard->below_floor());
  EXPECT_EQ(changes.load(), 4);
}

TEST(DiskGuard, ItsThreadSamplesOnItsOwnAndAFailedProbeKeepsTheState) {
  FakeDisk disk;
  std::atomic<bool> broken{false};
  DiskGuard::Options options;
  options.min_free_bytes = 100 * kMiB;
  options.interval = 5ms;
  options.probe = [&]() -> Result<uint64_t> {
    if (broken) return Status(StorageErrc::kError, "statvfs: gone");
    return disk.free.load();
  };
  auto guard = DiskGuard::start(options);
  EXPECT_FALSE(guard->below_floor());
  disk.free = 10 * kMiB;
  EXPECT_TRUE(eventually([&] { return guard->below_floor(); }));
  broken = true;
  disk.free = 1024 * kMiB;
  std::this_thread::sleep_for(50ms);  // ten samples that fail: the state must not move
  EXPECT_TRUE(guard->below_floor());
  broken = false;
  EXPECT_TRUE(eventually([&] { return !guard->below_floor(); }));
}

class StoreFloorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options{dir_.path(), Durability::kSync};
    options.min_free_disk_bytes = 100 * kMiB;
    options.disk_sample_interval = 2ms;
    options.disk_probe = disk_.probe();
    auto store = Store::open(options);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }

  void fill() {
    disk_.free = 50 * kMiB;
    ASSERT_TRUE(eventually([&] { return store_->read_only(); }));
  }
  void free_space() {
    disk_.free = 1024 * kMiB;
    ASSERT_TRUE(eventually([&] { return !store_->read_only(); }));
  }

  static v1::FlowVersion flow(const std::string& id) {
    v1::FlowVersion f;
    f.set_tenant("acme");
    f.set_flow_id(id);
    f.set_definition_json("{}");
    return f;
  }

  ScopedDir dir_;
  FakeDisk disk_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreFloorTest, EveryWriterRefusesBelowTheFloorAndResumesAfter) {
  auto vault = Vault::open(*store_, std::string(32, 'k'));
  ASSERT_TRUE(vault.ok()) << vault.status().to_string();
  auto audit = AuditLog::open(*store_);
  ASSERT_TRUE(audit.ok()) << audit.status().to_string();
  TriggerStore triggers(*store_);
  metrics::Counter& refusals = metrics::global().counter("yantra_storage_write_refusals_total", "",
                                                         {{"reason", "no_space"}});
  metrics::Gauge& writable = metrics::global().gauge("yantra_storage_writable", "");

  ASSERT_TRUE(store_->flows().put(flow("before")).ok());
  ASSERT_TRUE(commit(*store_, make_request(0, "e1", 1, 2)).is_ok());
  audit.value()->append({0, "acme", "k", "owner", "flow.create", "/f", "ok", "r1", ""});
  audit.value()->flush();
  EXPECT_TRUE(store_->write_status().is_ok());
  EXPECT_EQ(writable.value(), 1);

  fill();
  const uint64_t refused_before = refusals.value();
  EXPECT_FALSE(store_->latched());
  EXPECT_TRUE(store_->out_of_space());
  EXPECT_EQ(store_->write_status().code(), "store_no_space");
  EXPECT_EQ(writable.value(), 0);

  EXPECT_EQ(store_->flows().put(flow("during")).status().code(), "store_no_space");
  v1::Tenant tenant;
  tenant.set_id("beta");
  EXPECT_EQ(store_->auth().put_tenant(tenant).code(), "store_no_space");
  v1::ApiKey key;
  key.set_tenant("acme");
  key.set_key_id("k2");
  EXPECT_EQ(store_->auth().put_api_key("h2", key).code(), "store_no_space");
  v1::QueuedRun run;
  run.set_tenant("acme");
  run.set_flow_id("flow");
  run.set_execution_id("q1");
  EXPECT_EQ(store_->run_queue().enqueue(run, make_summary("q1", "queued", 0, 0)).status().code(),
            "store_no_space");
  EXPECT_EQ(vault.value()->put("acme", "S", "v", 1).status().code(), "store_no_space");
  EXPECT_EQ(triggers.ensure_hook("acme", "f").status().code(), "store_no_space");
  EXPECT_EQ(store_->events().expire_finished(INT64_MAX, 10).status().code(), "store_no_space");
  // The log writer: the waiter gets the refusal, and nothing is stored.
  EXPECT_EQ(commit(*store_, make_request(0, "e2", 1, 3)).code(), "store_no_space");
  EXPECT_TRUE(store_->events().read(0, "e2")->empty());
  // The audit writer drops what it cannot write, without breaking its chain.
  audit.value()->append({0, "acme", "k", "owner", "flow.create", "/g", "ok", "r2", ""});
  audit.value()->flush();
  EXPECT_GE(refusals.value(), refused_before + 8);
  // Reads go on.
  EXPECT_TRUE(store_->flows().get("acme", "before")->has_value());
  EXPECT_EQ(store_->events().read(0, "e1")->size(), 2u);

  free_space();
  EXPECT_TRUE(store_->write_status().is_ok());
  EXPECT_EQ(writable.value(), 1);
  EXPECT_TRUE(store_->flows().put(flow("after")).ok());
  EXPECT_TRUE(store_->auth().put_tenant(tenant).is_ok());
  EXPECT_TRUE(vault.value()->put("acme", "S", "v", 1).ok());
  EXPECT_TRUE(triggers.ensure_hook("acme", "f").ok());
  EXPECT_TRUE(commit(*store_, make_request(0, "e2", 1, 3)).is_ok());
  EXPECT_EQ(store_->events().read(0, "e2")->size(), 3u);
  audit.value()->append({0, "acme", "k", "owner", "flow.create", "/h", "ok", "r3", ""});
  audit.value()->flush();
  auto records = audit.value()->query("acme", 0, 0, "", 0, 0);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);  // r1 and r3; r2 was refused
  EXPECT_EQ(records->at(1).request_id(), "r3");
  EXPECT_EQ(records->at(1).seq(), 2u);
  auto verified = audit.value()->verify("acme");
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok) << verified->reason;
  EXPECT_FALSE(store_->latched());
}

TEST_F(StoreFloorTest, TheLatchOutranksTheFloorAndStays) {
  fill();
  store_->latch_read_only(Status(StorageErrc::kError, "disk on fire"));
  EXPECT_EQ(store_->write_status().code(), "store_read_only");
  disk_.free = 1024 * kMiB;
  ASSERT_TRUE(eventually([&] { return !store_->out_of_space(); }));
  EXPECT_TRUE(store_->read_only());
  EXPECT_EQ(store_->flows().put(flow("x")).status().code(), "store_read_only");
}

// RocksDB itself runs out of space, on a real tmpfs: the floor's probe says
// there is plenty (until `measure` is set), so the writes reach RocksDB.
class RealEnospcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    std::filesystem::create_directories(dir_.path());
    ASSERT_EQ(::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=256m"), 0)
        << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    store_.reset();  // closes RocksDB before the mount goes
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }

  uint64_t free_bytes() const {
    struct statvfs st {};
    if (::statvfs(dir_.path().c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }
  // Fills the tmpfs until at most `leave` bytes are free.
  void fill(const std::string& name, uint64_t leave) {
    const int fd = ::open(dir_.sub(name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    const std::string chunk(64 * 1024, 'x');
    while (free_bytes() > leave && ::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    ::close(fd);
  }
  void open_store() {
    StoreOptions options{dir_.sub("data"), Durability::kSync};
    options.min_free_disk_bytes = 16 * kMiB;
    options.disk_sample_interval = 5ms;
    options.disk_probe = [this]() -> Result<uint64_t> {
      return measure_ ? free_bytes() : 1024 * kMiB;
    };
    auto opened = Store::open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    store_ = std::move(opened).value();
  }

  ScopedDir dir_;
  bool mounted_ = false;
  std::atomic<bool> measure_{false};
  std::unique_ptr<Store> store_;
};

// One event of `bytes` of padding that does not compress (RocksDB's SSTs
// are compressed): letters of a 64-symbol alphabet, drawn at random.
WriteRequest incompressible_request(const std::string& id, uint64_t seq, size_t bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937_64 rng(seq);
  std::string pad(bytes, ' ');
  for (char& c : pad) c = kAlphabet[rng() % 64];
  v1::Event event;
  event.set_seq(seq);
  event.mutable_step_started()->set_path(id);
  event.mutable_step_started()->set_input_json(pad);
  WriteRequest request = make_request(0, id, seq, 0);
  request.events.emplace_back(seq, event.SerializeAsString());
  return request;
}

// A flush that runs out of space: RocksDB stops writes and recovers by
// itself once space is back, so the store says "store_no_space" (not the
// latch) and writes work again without a restart. The memtable switch of
// that flush lists its new WAL in the WAL guard's side file, which the
// guard's reserve (storage/internal/wal_guard.hpp) makes possible on a full
// disk; the SST (~12 MiB) does not fit in what the reserve gives back.
TEST_F(RealEnospcTest, AFailedFlushIsReversible) {
  open_store();  // its WAL preallocates ~70 MiB, so the WAL never runs out
  ASSERT_TRUE(std::filesystem::exists(dir_.sub("data/yantra-wal-guard.reserve")));
  for (uint64_t seq = 1; seq <= 16; ++seq) {
    ASSERT_TRUE(commit(*store_, incompressible_request("before", seq, kMiB)).is_ok());
  }
  fill("filler", 0);
  rocksdb::Status flushed =
      testing::raw(*store_).rocks->Flush(rocksdb::FlushOptions(), testing::raw(*store_).events);
  ASSERT_TRUE(flushed.IsNoSpace()) << flushed.ToString();
  Status refused = commit(*store_, make_request(0, "during", 1, 1));
  EXPECT_EQ(refused.code(), "store_no_space") << refused.to_string();
  EXPECT_FALSE(store_->latched());
  EXPECT_EQ(store_->events().read(0, "before")->size(), 16u);  // reads answer

  measure_ = true;
  std::filesystem::remove(dir_.sub("filler"));
  Status again = Status(StorageErrc::kNoSpace, "not tried");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!again.is_ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    again = commit(*store_, make_request(0, "after", 1, 1));
  }
  EXPECT_TRUE(again.is_ok()) << again.to_string();
  EXPECT_FALSE(store_->latched());
  EXPECT_EQ(store_->events().read(0, "before")->size(), 16u);
  EXPECT_TRUE(store_->events().read(0, "during")->empty());
}

// A WAL append that runs out of space: RocksDB 7.8 (as Debian builds it)
// aborts on the next append to that WAL, so the store latches read-only,
// touches the WAL no more, closes without aborting, and a reopen once space
// is freed has every acknowledged write.
TEST_F(RealEnospcTest, AFailedWalWriteLatchesAndARestartRecovers) {
  fill("filler", 40 * kMiB);  // too little for the WAL's preallocation
  open_store();
  ASSERT_TRUE(commit(*store_, make_request(0, "before", 1, 1)).is_ok());
  fill("filler2", 0);
  Status failed;
  for (uint64_t seq = 2; seq <= 64 && failed.is_ok(); ++seq) {
    failed = commit(*store_, make_request(0, "before", seq, 1, 64 * 1024));
  }
  EXPECT_EQ(failed.code(), "store_read_only") << failed.to_string();
  EXPECT_NE(failed.message().find("No space left on device"), std::string::npos);
  EXPECT_TRUE(store_->latched());
  EXPECT_EQ(commit(*store_, make_request(0, "later", 1, 1)).code(), "store_read_only");
  const size_t acknowledged = store_->events().read(0, "before")->size();
  EXPECT_GE(acknowledged, 1u);
  store_.reset();  // closing must not abort either

  std::filesystem::remove(dir_.sub("filler"));
  std::filesystem::remove(dir_.sub("filler2"));
  measure_ = true;
  open_store();
  EXPECT_EQ(store_->events().read(0, "before")->size(), acknowledged);
  EXPECT_TRUE(commit(*store_, make_request(0, "after", 1, 1)).is_ok());
}

// A restart with acknowledged writes only in the WAL (16 MiB, not yet
// flushed) on a disk with no room for the SST that recovery flushes
// (avoid_flush_during_recovery is off, see store.cpp): the open must not
// abort; it opens read-only with every acknowledged event readable, and a
// restart once space is back writes again, nothing lost.
TEST_F(RealEnospcTest, ARestartWithNoRoomToFlushTheWalOpensReadOnly) {
  open_store();
  for (uint64_t seq = 1; seq <= 16; ++seq) {
    ASSERT_TRUE(commit(*store_, incompressible_request("before", seq, kMiB)).is_ok());
  }
  store_.reset();  // the memtable is not flushed at close: the WAL holds it
  fill("filler", 0);
  ASSERT_LT(free_bytes(), 64 * 1024u);
  open_store();
  EXPECT_EQ(store_->write_status().code(), "store_no_space") << store_->write_status().to_string();
  EXPECT_NE(store_->write_status().message().find("was full when it started"), std::string::npos)
      << store_->write_status().message();
  EXPECT_FALSE(store_->latched());
  EXPECT_EQ(store_->events().read(0, "before")->size(), 16u);
  EXPECT_EQ(commit(*store_, make_request(0, "during", 1, 1)).code(), "store_no_space");
  store_.reset();

  std::filesystem::remove(dir_.sub("filler"));
  measure_ = true;
  open_store();
  EXPECT_TRUE(store_->write_status().is_ok()) << store_->write_status().to_string();
  EXPECT_EQ(store_->events().read(0, "before")->size(), 16u);
  EXPECT_TRUE(commit(*store_, make_request(0, "after", 1, 1)).is_ok());
}

// A store without a floor never refuses for space.
TEST(StoreNoFloor, HasNoGuard) {
  ScopedDir dir;
  auto store = testing::open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->disk_guard(), nullptr);
  EXPECT_FALSE(store->out_of_space());
  EXPECT_TRUE(store->write_status().is_ok());
}

}  // namespace
}  // namespace yantra::storage
