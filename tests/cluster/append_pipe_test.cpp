// AppendPipes (cluster/append_pipe.hpp) with a send function the test
// answers by hand, so what leaves when is exact: an idle pipe sends at once
// and alone, what queues behind a message in flight leaves as one group
// when its reply comes, every request gets its own answer (or the whole
// message's error), pipes of different nodes are independent, a group never
// passes max_group_bytes, and the destructor fails what is queued. The real
// path (a replica's log server over the transport) runs in
// cluster_log_server_test and the cluster suites.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/errc.hpp"
#include "cluster/append_pipe.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

struct Sent {
  std::string node;
  std::string payload;
  AppendPipes::Done done;
};

// A serialized append of partition p (the pipe does not look inside).
std::string request(uint32_t p) {
  v1::LogRequest r;
  r.mutable_append()->set_partition(p);
  r.mutable_append()->add_batches("batch-" + std::to_string(p));
  return r.SerializeAsString();
}

std::string reply(uint64_t last_lsn) {
  v1::LogReply r;
  r.set_last_lsn(last_lsn);
  return r.SerializeAsString();
}

// The partitions a payload carries: one for a lone request, several for a group.
std::vector<uint32_t> partitions_in(const std::string& payload) {
  v1::LogRequest r;
  EXPECT_TRUE(r.ParseFromString(payload));
  std::vector<uint32_t> out;
  if (r.has_append()) {
    out.push_back(r.append().partition());
  } else {
    for (const auto& bytes : r.group().requests()) {
      v1::LogRequest one;
      EXPECT_TRUE(one.ParseFromString(bytes));
      out.push_back(one.append().partition());
    }
  }
  return out;
}

class AppendPipeTest : public ::testing::Test {
 protected:
  AppendPipes::Send sender() {
    return [this](const std::string& node, std::string payload, AppendPipes::Done done) {
      sent_.push_back({node, std::move(payload), std::move(done)});
    };
  }
  // Sends partition p's request to `node`, recording its answer.
  void send(AppendPipes& pipes, const std::string& node, uint32_t p) {
    pipes.send(node, request(p), [this, p](Result<std::string> r) {
      answers_.push_back({p, std::move(r)});
    });
  }
  Sent take() {
    EXPECT_FALSE(sent_.empty());
    Sent s = std::move(sent_.front());
    sent_.pop_front();
    return s;
  }

  std::deque<Sent> sent_;
  std::vector<std::pair<uint32_t, Result<std::string>>> answers_;
};

TEST_F(AppendPipeTest, AnIdlePipeSendsAtOnceAndWhatQueuesBehindLeavesAsOneGroup) {
  AppendPipes pipes(sender());
  send(pipes, "n2", 1);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(partitions_in(sent_.front().payload), (std::vector<uint32_t>{1}));
  // In flight: the next three wait.
  send(pipes, "n2", 2);
  send(pipes, "n2", 3);
  send(pipes, "n2", 4);
  ASSERT_EQ(sent_.size(), 1u);
  Sent first = take();
  first.done(reply(7));
  // The answer of the lone request is its own reply, and the queue left as
  // one group, in order.
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(answers_[0].first, 1u);
  ASSERT_TRUE(answers_[0].second.ok());
  ASSERT_EQ(sent_.size(), 1u);
  Sent group = take();
  EXPECT_EQ(group.node, "n2");
  EXPECT_EQ(partitions_in(group.payload), (std::vector<uint32_t>{2, 3, 4}));
  v1::LogReply out;
  for (uint64_t lsn : {20, 30, 40}) out.add_replies(reply(lsn));
  group.done(out.SerializeAsString());
  ASSERT_EQ(answers_.size(), 4u);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(answers_[i].first, i + 1);
    ASSERT_TRUE(answers_[i].second.ok());
    v1::LogReply one;
    ASSERT_TRUE(one.ParseFromString(answers_[i].second.value()));
    EXPECT_EQ(one.last_lsn(), (i + 1) * 10);
  }
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(pipes.stats().messages, 2u);
  EXPECT_EQ(pipes.stats().requests, 4u);
  // Idle again: the next one goes at once.
  send(pipes, "n2", 5);
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(AppendPipeTest, AFailedMessageFailsEveryRequestItCarriedAndABadGroupReplyToo) {
  AppendPipes pipes(sender());
  send(pipes, "n3", 1);
  send(pipes, "n3", 2);
  send(pipes, "n3", 3);
  take().done(Status(Errc::kTimeout, "no answer"));
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_TRUE(answers_[0].second.status().is(Errc::kTimeout));
  Sent group = take();
  group.done(Status(Errc::kUnavailable, "peer down"));
  ASSERT_EQ(answers_.size(), 3u);
  EXPECT_TRUE(answers_[1].second.status().is(Errc::kUnavailable));
  EXPECT_TRUE(answers_[2].second.status().is(Errc::kUnavailable));
  // A group answered with the wrong number of replies fails each request
  // rather than pairing answers with the wrong request.
  send(pipes, "n3", 4);
  send(pipes, "n3", 5);
  send(pipes, "n3", 6);
  take().done(reply(1));
  v1::LogReply one_only;
  one_only.add_replies(reply(2));
  take().done(one_only.SerializeAsString());
  ASSERT_EQ(answers_.size(), 6u);
  EXPECT_TRUE(answers_[4].second.status().is(Errc::kInternalError));
  EXPECT_TRUE(answers_[5].second.status().is(Errc::kInternalError));
}

TEST_F(AppendPipeTest, PipesOfDifferentNodesAreIndependentAndGroupsStayUnderTheByteBound) {
  const size_t one = request(10).size();
  AppendPipes pipes(sender(), 2 * one);
  send(pipes, "a", 10);
  send(pipes, "b", 20);  // another node: not held back by a's message
  ASSERT_EQ(sent_.size(), 2u);
  for (uint32_t p = 11; p <= 15; ++p) send(pipes, "a", p);
  Sent a1 = take();
  Sent b1 = take();
  EXPECT_EQ(b1.node, "b");
  a1.done(reply(1));
  // Five queued, at most two per group: 11-12, then 13-14, then 15.
  std::vector<std::vector<uint32_t>> groups;
  while (!sent_.empty()) {
    Sent g = take();
    const auto parts = partitions_in(g.payload);
    groups.push_back(parts);
    v1::LogReply out;
    for (size_t i = 0; i < parts.size(); ++i) out.add_replies(reply(i));
    if (parts.size() == 1) {
      g.done(reply(0));
    } else {
      g.done(out.SerializeAsString());
    }
  }
  EXPECT_EQ(groups, (std::vector<std::vector<uint32_t>>{{11, 12}, {13, 14}, {15}}));
  EXPECT_EQ(answers_.size(), 6u);  // b's is still in flight
  b1.done(reply(1));
  EXPECT_EQ(answers_.size(), 7u);
}

TEST_F(AppendPipeTest, TheDestructorFailsWhatIsQueuedAndALateReplyStillReachesItsRequest) {
  Sent in_flight;
  {
    AppendPipes pipes(sender());
    send(pipes, "n2", 1);
    send(pipes, "n2", 2);
    send(pipes, "n2", 3);
    in_flight = take();
  }
  ASSERT_EQ(answers_.size(), 2u);
  EXPECT_TRUE(answers_[0].second.status().is(Errc::kUnavailable));
  EXPECT_TRUE(answers_[1].second.status().is(Errc::kUnavailable));
  in_flight.done(reply(9));
  ASSERT_EQ(answers_.size(), 3u);
  EXPECT_EQ(answers_[2].first, 1u);
  EXPECT_TRUE(answers_[2].second.ok());
  EXPECT_TRUE(sent_.empty());  // nothing more leaves a closed pipe
}

}  // namespace
}  // namespace yantra::cluster
