// The fixture every end-to-end suite shares: one `yantra serve` child for the
// whole suite (starting one per test would cost more than the tests), started
// in SetUpTestSuite, stopped by PID in TearDownTestSuite, where a clean exit
// (status 0 after SIGTERM) is asserted because it is part of the contract
// (cli/serve.cpp). Tests stay independent by using their own flow ids.
//
// A suite derives from NodeSuite<Itself> and may declare
//   static NodeProcess::Options node_options();   // environment, flags
// to shape its node; statics are per suite (one node per derived class).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/node_process.hpp"

namespace yantra::e2e {

template <typename Suite>
class NodeSuite : public ::testing::Test {
 protected:
  static NodeProcess::Options node_options() { return {}; }

  static void SetUpTestSuite() {
    node_ = new NodeProcess(Suite::node_options());
    node_->start(&start_error_);
  }
  static void TearDownTestSuite() {
    EXPECT_TRUE(node_->stop()) << "the node did not exit with 0 after SIGTERM; log:\n"
                               << node_->log();
    delete node_;
    node_ = nullptr;
  }
  // Every test fails with the node's log when the node could not start.
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << start_error_; }

  static bool started() { return start_error_.empty(); }
  static NodeProcess& node() { return *node_; }
  static uint16_t port() { return node_->port(); }
  // A client holding the bootstrap (owner) key.
  static Api api() { return Api(node_->port(), node_->key()); }

  static inline NodeProcess* node_ = nullptr;
  static inline std::string start_error_;
};

}  // namespace yantra::e2e
