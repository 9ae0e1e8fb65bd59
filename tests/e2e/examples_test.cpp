// Every workflow in examples/ must be accepted by a real node and must run to
// the output documented here, so the examples cannot rot. The table below is
// keyed by flow id; an example without an entry (or an entry without an
// example) fails the suite, as does an example missing from the README.
//
// The HTTP example calls a TinyHttpServer on 127.0.0.1 started by the test:
// it answers the first call with 503 (so the step's retry_config is
// exercised) and echoes the order back afterwards.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_process.hpp"

namespace yantra::e2e {
namespace {

namespace fs = std::filesystem;

struct Case {
  json input;
  json output;
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> example_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(YANTRA_SOURCE_DIR) / "examples")) {
    const std::string ext = e.path().extension().string();
    if (ext == ".json" || ext == ".yaml" || ext == ".yml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ExamplesTest, EveryExampleValidatesAndRunsToItsDocumentedOutput) {
  std::atomic<int> calls{0};
  TinyHttpServer service([&](const SeenRequest& req) {
    if (calls++ == 0) return TinyHttpServer::Answer{503, R"({"error": "warming up"})"};
    const json body = json::parse(req.body, nullptr, false);
    return TinyHttpServer::Answer{
        200, json{{"accepted", true}, {"order_id", body.is_object() ? body["order_id"] : json()}}
                 .dump()};
  });
  ASSERT_NE(service.port(), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(service.port()) + "/orders";

  const std::map<std::string, std::vector<Case>> expected = {
      {"example-branching",
       {{{{"price", 60}, {"quantity", 2}},
         {{"total", 120}, {"big", true}, {"tier", "vip"}, {"to_pay", 120}}},
        {{{"price", 10}, {"quantity", 2}},
         {{"total", 20}, {"big", false}, {"tier", "basic"}, {"to_pay", 25}}}}},
      {"example-loop",
       {{json::parse(R"({"lines": [{"sku": "ab-1", "qty": 2, "unit_price": 5},
                                   {"sku": "cd-2", "qty": 1, "unit_price": 7}]})"),
         json::parse(R"({"count": 2, "lines": [{"label": "1. AB-1", "amount": 10},
                                                {"label": "2. CD-2", "amount": 7}]})")}}},
      {"example-parallel",
       {{{{"sku", "ab-1"}, {"qty", 3}},
         json::parse(R"({"sku": "ab-1", "in_stock": true, "amount": 75, "eta_days": 2,
                         "branches": ["pricing", "shipping", "stock"]})")}}},
      {"example-retries",
       {{json::object(), json::parse(R"({"flaky": {"attempt": 3, "recovered": true},
                         "fallback": {"used_fallback": true, "because": "service_down"}})")}}},
      {"example-http",
       {{{{"url", url}, {"order_id", "o-17"}, {"items", 3}},
         {{"http_status", 200}, {"accepted", true}, {"order_id", "o-17"}}}}},
  };

  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  const std::string readme = read_text(fs::path(YANTRA_SOURCE_DIR) / "examples" / "README.md");

  std::set<std::string> seen;
  const auto files = example_files();
  ASSERT_GE(files.size(), 5u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    EXPECT_NE(readme.find("`" + file.filename().string() + "`"), std::string::npos)
        << "examples/README.md does not describe " << file.filename();
    const std::string ext = file.extension().string();
    Reply created = api.post_raw("/api/v1/flows", read_text(file),
                                 ext == ".json" ? "application/json" : "application/yaml");
    ASSERT_EQ(created.status, 201) << created.describe();
    const std::string id = created.doc()["id"];
    seen.insert(id);
    auto it = expected.find(id);
    ASSERT_NE(it, expected.end()) << "no expected output for example flow " << id;
    for (const auto& c : it->second) {
      Reply run = api.post("/api/v1/flows/" + id + "/run?wait_ms=30000", json{{"input", c.input}});
      ASSERT_EQ(run.status, 200) << run.describe();
      EXPECT_EQ(run.doc()["status"], "completed") << run.body;
      EXPECT_EQ(run.doc()["output"], c.output) << id << " with input " << c.input.dump();
    }
  }
  for (const auto& [id, _] : expected)
    EXPECT_TRUE(seen.count(id)) << "example " << id << " is gone";

  // What the HTTP example sent: the 503 and its retry, both complete requests.
  const auto requests = service.seen();
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/orders?priority=high");
    EXPECT_EQ(r.headers.count("x-order-source") ? r.headers.at("x-order-source") : "",
              "yantra-example");
    EXPECT_FALSE(r.headers.count("idempotency-key") == 0) << "the http tool sends one per call";
    EXPECT_EQ(json::parse(r.body, nullptr, false), json({{"order_id", "o-17"}, {"items", 3}}));
  }
  // Each attempt has its own idempotency key (<execution>/<step>/<attempt>).
  EXPECT_NE(requests[0].headers.at("idempotency-key"), requests[1].headers.at("idempotency-key"));
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra::e2e
