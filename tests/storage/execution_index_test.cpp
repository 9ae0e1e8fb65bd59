// ExecutionIndex against a real RocksDB: the summary upsert keeps the
// active markers right, terminal statuses, listing newest first with
// filters and a cursor, forks and idempotency keys, and neighbouring ids
// ("ab" vs "abc", tenants alike) never mixing.
#include "storage/execution_index.hpp"

#include <gtest/gtest.h>

#include "tests/storage/test_support.hpp"

namespace yantra::storage {
namespace {

using testing::commit;
using testing::make_request;
using testing::make_summary;
using testing::open_store;
using testing::range;
using testing::ScopedDir;
using testing::seqs_of;

TEST(ExecutionIndexTest, SummaryUpsertMaintainsActiveMarker) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->executions().summary("e1")->has_value());
  EXPECT_TRUE(store->executions().active(4)->empty());

  auto write_summary = [&](const std::string& id, uint32_t partition, const std::string& status,
                           uint64_t seq) {
    auto request = make_request(partition, id, seq, 1);
    request.summary = make_summary(id, status, partition, seq);
    ASSERT_TRUE(commit(*store, std::move(request)));
  };
  write_summary("e1", 4, "running", 1);
  write_summary("e2", 4, "waiting", 1);
  write_summary("e3", 5, "running", 1);  // other partition
  EXPECT_EQ(*store->executions().active(4), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(*store->executions().active(5), std::vector<std::string>{"e3"});
  EXPECT_TRUE(store->executions().active(6)->empty());

  write_summary("e1", 4, "waiting", 2);  // non-terminal to non-terminal: still active
  EXPECT_EQ(*store->executions().active(4), (std::vector<std::string>{"e1", "e2"}));
  auto summary = store->executions().summary("e1");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->status(), "waiting");
  EXPECT_EQ((*summary)->last_seq(), 2u);

  write_summary("e1", 4, "completed", 3);
  EXPECT_EQ(*store->executions().active(4), std::vector<std::string>{"e2"});
  EXPECT_EQ((*store->executions().summary("e1"))->status(), "completed");
  write_summary("e2", 4, "timed_out", 2);
  EXPECT_TRUE(store->executions().active(4)->empty());
  EXPECT_EQ(*store->executions().active(5), std::vector<std::string>{"e3"});
  // The log itself is untouched by the index.
  EXPECT_EQ(seqs_of(*store->events().read(4, "e1")), range(1, 3));
}

TEST(ExecutionIndexTest, TerminalStatuses) {
  for (const char* s : {"completed", "failed", "cancelled", "timed_out"}) {
    EXPECT_TRUE(is_terminal_status(s)) << s;
  }
  for (const char* s : {"running", "waiting", "", "COMPLETED", "completed "}) {
    EXPECT_FALSE(is_terminal_status(s)) << s;
  }
}

// Starts an execution as the LogWriter's first batch of it would: its
// summary, listing row, idempotency row and fork link.
void start(Store& store, const std::string& tenant, const std::string& flow, const std::string& id,
           const std::string& status, const std::string& idem = "",
           const std::string& parent = "") {
  auto request = make_request(0, id, 1, 1);
  request.summary = make_summary(id, status, 0, 1);
  request.summary->set_tenant(tenant);
  request.summary->set_flow_id(flow);
  request.created = true;
  request.idempotency_key = idem;
  request.parent_execution_id = parent;
  ASSERT_TRUE(commit(store, std::move(request)));
}

std::vector<std::string> ids_of(const ExecutionIndex::Page& page) {
  std::vector<std::string> out;
  for (const auto& s : page.items) out.push_back(s.execution_id());
  return out;
}

// Newest first (ids sort by creation), one tenant only: tenant "ab" never
// sees a row of "abc" (the tenant ends in 0x00 in the key), filters by flow
// and status, and a cursor resumes strictly below the last id returned.
TEST(ExecutionIndexTest, ListIsNewestFirstPerTenantWithFiltersAndCursor) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  start(*store, "ab", "f", "01", "completed");
  start(*store, "ab", "g", "02", "running");
  start(*store, "abc", "f", "03", "running");
  start(*store, "ab", "f", "04", "running");
  start(*store, "a", "f", "05", "running");
  start(*store, "ab", "f", "06", "failed");
  const ExecutionIndex& index = store->executions();

  auto all = index.list("ab", "", "", 10, "");
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(ids_of(*all), (std::vector<std::string>{"06", "04", "02", "01"}));
  EXPECT_TRUE(all->next_cursor.empty());
  EXPECT_EQ(ids_of(*index.list("abc", "", "", 10, "")), std::vector<std::string>{"03"});
  EXPECT_EQ(ids_of(*index.list("ab", "f", "", 10, "")),
            (std::vector<std::string>{"06", "04", "01"}));
  EXPECT_EQ(ids_of(*index.list("ab", "", "running", 10, "")),
            (std::vector<std::string>{"04", "02"}));
  EXPECT_EQ(ids_of(*index.list("ab", "f", "running", 10, "")), std::vector<std::string>{"04"});

  auto first = index.list("ab", "", "", 2, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ids_of(*first), (std::vector<std::string>{"06", "04"}));
  EXPECT_EQ(first->next_cursor, "04");
  auto second = index.list("ab", "", "", 2, first->next_cursor);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ids_of(*second), (std::vector<std::string>{"02", "01"}));
  EXPECT_TRUE(index.list("ab", "", "", 2, "01")->items.empty());
  EXPECT_TRUE(index.list("nobody", "", "", 10, "")->items.empty());
  EXPECT_EQ(index.list(std::string("a\0b", 3), "", "", 10, "").status().code(), "invalid_argument");
}

// The id filter (a cluster node's partitions): only kept ids are listed,
// with the other filters, and a cursor resumes below the last one returned.
TEST(ExecutionIndexTest, ListKeepsOnlyIdsTheFilterKeeps) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  for (const char* id : {"01", "02", "03", "04", "05", "06", "07"}) {
    start(*store, "t", id[1] == '4' ? "g" : "f", id, id[1] == '5' ? "failed" : "completed");
  }
  const ExecutionIndex& index = store->executions();
  const ExecutionIndex::IdFilter odd = [](std::string_view id) { return (id.back() - '0') % 2; };
  EXPECT_EQ(ids_of(*index.list("t", "", "", 10, "", odd)),
            (std::vector<std::string>{"07", "05", "03", "01"}));
  EXPECT_EQ(ids_of(*index.list("t", "", "completed", 10, "", odd)),
            (std::vector<std::string>{"07", "03", "01"}));
  auto first = index.list("t", "f", "", 2, "", odd);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ids_of(*first), (std::vector<std::string>{"07", "05"}));
  EXPECT_EQ(first->next_cursor, "05");
  auto second = index.list("t", "f", "", 2, first->next_cursor, odd);
  EXPECT_EQ(ids_of(*second), (std::vector<std::string>{"03", "01"}));
  EXPECT_TRUE(second->next_cursor.empty());
  EXPECT_TRUE(
      index.list("t", "", "", 10, "", [](std::string_view) { return false; })->items.empty());
}

TEST(ExecutionIndexTest, ForksAndIdempotencyKeysOfNeighbouringIdsDoNotMix) {
  ScopedDir dir;
  auto store = open_store(dir.path());
  ASSERT_TRUE(store);
  start(*store, "t", "f", "ab", "completed", "key-1");
  start(*store, "t", "f", "abc", "completed", "key-12");
  start(*store, "t", "f", "ab-2", "running", "", "ab");
  start(*store, "t", "f", "ab-1", "running", "", "ab");
  start(*store, "t", "f", "abc-1", "running", "", "abc");
  start(*store, "u", "f", "x", "running", "key-1");
  const ExecutionIndex& index = store->executions();

  EXPECT_EQ(*index.forks("ab"), (std::vector<std::string>{"ab-1", "ab-2"}));
  EXPECT_EQ(*index.forks("abc"), std::vector<std::string>{"abc-1"});
  EXPECT_TRUE(index.forks("a")->empty());
  EXPECT_TRUE(index.forks("ab-1")->empty());
  EXPECT_EQ(index.forks("").status().code(), "invalid_argument");

  EXPECT_EQ(*index.find_idempotent("t", "key-1"), std::optional<std::string>("ab"));
  EXPECT_EQ(*index.find_idempotent("t", "key-12"), std::optional<std::string>("abc"));
  EXPECT_EQ(*index.find_idempotent("u", "key-1"), std::optional<std::string>("x"));
  EXPECT_FALSE(index.find_idempotent("t", "key-")->has_value());
  EXPECT_FALSE(index.find_idempotent("tu", "key-1")->has_value());
  EXPECT_EQ(*index.count_from("t", ""), 5u);
  EXPECT_EQ(*index.count_from("t", "ab-2"), 3u);  // ab-2, abc, abc-1
  EXPECT_EQ(*index.count_from("u", ""), 1u);
}

}  // namespace
}  // namespace yantra::storage
