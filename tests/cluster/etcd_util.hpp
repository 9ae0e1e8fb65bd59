// Helpers of the etcd-backed cluster suites (etcd_client_test.cpp,
// membership_test.cpp): a client with a short deadline, and a poll.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/etcd_client.hpp"

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

}  // namespace yantra::cluster::etcd_test
