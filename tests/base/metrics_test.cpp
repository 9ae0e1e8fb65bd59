// The metrics registry (base/metrics.hpp): the exposition text of counters,
// gauges and histograms, and collectors that set gauges at scrape time and
// stop once removed.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "base/metrics.hpp"

namespace yantra::metrics {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(MetricsTest, RendersCountersGaugesAndHistogramsInTheExpositionFormat) {
  Registry reg;
  reg.counter("yantra_x_total", "Xs", {{"kind", "a"}}).inc(3);
  reg.gauge("yantra_y_bytes", "Ys").set(-5);
  auto& h = reg.histogram("yantra_z_seconds", "Zs", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const std::string text = reg.render();
  EXPECT_TRUE(has_line(text, "# TYPE yantra_x_total counter")) << text;
  EXPECT_TRUE(has_line(text, "yantra_x_total{kind=\"a\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE yantra_y_bytes gauge")) << text;
  EXPECT_TRUE(has_line(text, "yantra_y_bytes -5")) << text;
  EXPECT_TRUE(has_line(text, "yantra_z_seconds_bucket{le=\"0.1\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "yantra_z_seconds_bucket{le=\"1\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "yantra_z_seconds_bucket{le=\"+Inf\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "yantra_z_seconds_count 3")) << text;
  // Numbers in their shortest form: le="0.1", not le="0.10000000000000001".
  EXPECT_TRUE(has_line(text, "yantra_z_seconds_sum 5.55")) << text;
}

TEST(MetricsTest, CollectorsSetGaugesAtEachRenderUntilRemoved) {
  Registry reg;
  std::atomic<int> value{1};
  std::atomic<int> runs{0};
  const uint64_t id = reg.add_collector([&] {
    ++runs;
    // A collector may register series (the registry's lock is not held).
    reg.gauge("yantra_partition_led", "Led here", {{"partition", "0"}}).set(value.load());
  });
  EXPECT_TRUE(has_line(reg.render(), "yantra_partition_led{partition=\"0\"} 1"));
  value = 0;
  EXPECT_TRUE(has_line(reg.render(), "yantra_partition_led{partition=\"0\"} 0"));
  EXPECT_EQ(runs.load(), 2);
  reg.remove_collector(id);
  value = 7;
  const std::string text = reg.render();
  EXPECT_EQ(runs.load(), 2);
  EXPECT_TRUE(has_line(text, "yantra_partition_led{partition=\"0\"} 0")) << text;
  reg.remove_collector(id);  // twice is harmless
}

}  // namespace
}  // namespace yantra::metrics
