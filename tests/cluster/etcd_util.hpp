// Helpers of the etcd-backed cluster suites (etcd_client_test.cpp,
// membership_test.cpp): a client with a short deadline, a poll, and the
// fixture that shares one etcd member across a suite's tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/etcd_client.hpp"
#include "tests/support/etcd_process.hpp"

namespace yantra::cluster::etcd_test {

inline std::unique_ptr<EtcdClient> make_client(
    std::vector<std::string> endpoints,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  EtcdOptions o;
  o.endpoints = std::move(endpoints);
  o.request_timeout = timeout;
  auto c = EtcdClient::create(o);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Polls `cond` every 10 ms until true or `timeout`; its last answer.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// One etcd member per suite, started by the first test and stopped after
// the last; every test gets its own client and writes under its own prefix
// (test_prefix()).
class SharedEtcdTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    if (!etcd_) {
      etcd_ = std::make_unique<test::EtcdCluster>(1);
      std::string error;
      if (!etcd_->start(&error)) {
        etcd_.reset();
        FAIL() << error;
      }
    }
    client_ = make_client(etcd_->endpoints());
    ASSERT_NE(client_, nullptr);
  }

  static std::string test_prefix() {
    return std::string("/t/") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static inline std::unique_ptr<test::EtcdCluster> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

}  // namespace yantra::cluster::etcd_test
