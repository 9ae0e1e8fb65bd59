// A small Prometheus-style metrics registry: counters, gauges and histograms with
// labels, rendered in the text exposition format for GET /metrics.
//
// Hot paths keep a reference to their series (lookups take a mutex; updates
// are lock-free atomics). Series are never removed, so references stay valid
// for the life of the process. No clock here: callers measure durations and
// observe the value, which keeps this file free of time and I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace yantra::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (free bytes, 0/1 states). Integer-valued:
// every gauge of ours counts something (bytes, states).
class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Snapshot for rendering and tests: cumulative counts per bound, +Inf last.
  std::vector<uint64_t> cumulative() const;
  double sum() const;
  uint64_t count() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micros_{0};               // sum * 1e6, for atomicity
};

// Buckets for latencies in milliseconds and for batch sizes.
std::vector<double> latency_ms_buckets();
std::vector<double> latency_seconds_buckets();  // the same bounds in seconds (base units)
std::vector<double> size_buckets();

class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds, const Labels& labels = {});
  std::string render() const;

  // A function run at the start of every render(), for gauges whose value
  // lives elsewhere (a cluster node's view of its partitions) and is read
  // at scrape time rather than kept current on a hot path. It may call
  // counter()/gauge()/histogram(). remove_collector() returns once the
  // collector is not running and will not run again.
  uint64_t add_collector(std::function<void()> collect);
  void remove_collector(uint64_t id);

 private:
  struct Family {
    std::string help;
    bool is_histogram = false;
    bool is_gauge = false;
    std::map<std::string, std::unique_ptr<Counter>> counters;      // by rendered labels
    std::map<std::string, std::unique_ptr<Gauge>> gauges;          // by rendered labels
    std::map<std::string, std::unique_ptr<Histogram>> histograms;  // by rendered labels
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  mutable std::mutex collectors_mu_;  // held while collectors run; never inside mu_
  std::map<uint64_t, std::function<void()>> collectors_;
  uint64_t next_collector_ = 0;
};

// The process-wide registry the engine and the API report into.
Registry& global();

}  // namespace yantra::metrics
