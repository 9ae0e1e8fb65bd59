// The tool registry through the real `yantra` binary (issue 12, "Registry"):
// GET /api/v1/tools and /tools/{id} (and the CLI), unknown ids and query
// parameters, store-time schema violations with pointers, tool policies set
// by the operator and refused at store time (403, with pointers) and at run
// time (the step fails with permission_denied, audited), the usage route
// and /metrics, and a secret inside a string ($concat) that reaches the
// peer but no event, output, response, file or log.
//
// One node per test that needs the operator key or stops the node; the
// peer is a loopback server from wire.hpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

const char* const kOperatorKey = "e2e-operator-key-tools-5c1e9a";

NodeProcess::Options with_operator() {
  NodeProcess::Options o;
  o.env.emplace_back("YANTRA_OPERATOR_KEY", kOperatorKey);
  return o;
}

json action_step(const std::string& id, const std::string& tool, const std::string& action,
                 const json& parameters) {
  return {{"id", id},
          {"type", "action"},
          {"config", {{"tool_id", tool}, {"action", action}, {"parameters", parameters}}}};
}

std::set<std::string> pointers(const Reply& r) {
  std::set<std::string> out;
  const json doc = r.doc();
  for (const auto& d : doc["error"].value("details", json::array())) {
    out.insert(d.value("path", ""));
  }
  return out;
}

std::string random_text(size_t n) {
  static const char* kChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(kChars[gen() % 62]);
  return out;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> files_containing(const std::string& dir, const std::string& needle,
                                          size_t* scanned) {
  std::vector<std::string> hits;
  *scanned = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    ++*scanned;
    if (read_all(e.path()).find(needle) != std::string::npos) hits.push_back(e.path().string());
  }
  return hits;
}

class ToolsTest : public NodeSuite<ToolsTest> {};

TEST_F(ToolsTest, ListAndGetDescribeEveryBuiltinAction) {
  Reply list = api().get("/api/v1/tools");
  ASSERT_EQ(list.status, 200) << list.describe();
  std::map<std::string, json> by_id;
  const json tools = list.doc()["tools"];
  for (const auto& t : tools) by_id[t.value("id", "")] = t;
  ASSERT_TRUE(by_id.count("core") && by_id.count("http")) << list.body;
  std::set<std::string> core_actions;
  for (const auto& a : by_id["core"]["actions"]) {
    core_actions.insert(a.value("name", ""));
    EXPECT_EQ(a.value("permission", ""), "core." + a.value("name", ""));
    EXPECT_TRUE(a.value("allowed", false));
    EXPECT_FALSE(a.contains("input_schema")) << "the list leaves schemas to GET /tools/{id}";
  }
  EXPECT_EQ(core_actions, (std::set<std::string>{"echo", "fail", "sleep", "emit"}));
  EXPECT_EQ(by_id["http"].value("scope", ""), "builtin");

  Reply http = api().get("/api/v1/tools/http");
  ASSERT_EQ(http.status, 200) << http.describe();
  const json request = http.doc()["actions"][0];
  EXPECT_EQ(request.value("name", ""), "request");
  EXPECT_EQ(request["input_schema"]["required"], json::array({"url"}));
  EXPECT_FALSE(request["input_schema"]["additionalProperties"].get<bool>());
  EXPECT_TRUE(request["output_schema"]["properties"].contains("status"));
  EXPECT_TRUE(request.value("side_effects", false));

  Reply unknown = api().get("/api/v1/tools/nope");
  EXPECT_EQ(unknown.status, 404) << unknown.describe();
  EXPECT_EQ(unknown.doc()["error"].value("code", ""), "not_found");
  for (const char* target :
       {"/api/v1/tools?limit=1", "/api/v1/tools/core?x=1", "/api/v1/tools/core/usage?since=1"}) {
    Reply bad = api().get(target);
    EXPECT_EQ(bad.status, 400) << target << " " << bad.describe();
    EXPECT_EQ(bad.doc()["error"].value("code", ""), "invalid_parameter") << target;
  }
}

TEST_F(ToolsTest, StoringAFlowChecksParametersAgainstTheSchemasWithPointers) {
  json flow = {{"id", "bad-params"},
               {"steps",
                {action_step("s", "core", "sleep", {{"ms", "soon"}}),
                 action_step("h", "http", "request",
                             {{"url", 42},
                              {"method", "FETCH"},
                              {"headers", {{"X-A", json::array({1})}}},
                              {"unknown", true}})}}};
  flow["steps"][0]["on_success"] = "h";
  Reply r = api().post("/api/v1/flows", flow);
  ASSERT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(r.doc()["error"].value("code", ""), "invalid_flow");
  EXPECT_EQ(pointers(r),
            (std::set<std::string>{
                "/steps/0/config/parameters/ms", "/steps/1/config/parameters/url",
                "/steps/1/config/parameters/method", "/steps/1/config/parameters/headers/X-A",
                "/steps/1/config/parameters/unknown"}))
      << r.body;
  EXPECT_EQ(api().get("/api/v1/flows/bad-params").status, 404);

  // $ref parts are checked when the step runs: the flow stores, a bad value
  // fails the step with invalid_parameters naming the pointer.
  json dynamic = {{"id", "dyn-params"},
                  {"steps", {action_step("s", "core", "sleep", {{"ms", {{"$ref", "input.ms"}}}})}}};
  Reply stored = api().post("/api/v1/flows", dynamic);
  ASSERT_EQ(stored.status, 201) << stored.describe();
  Reply good = api().post("/api/v1/flows/dyn-params/run?wait_ms=10000", {{"input", {{"ms", 1}}}});
  EXPECT_EQ(good.doc().value("status", ""), "completed") << good.body;
  Reply bad =
      api().post("/api/v1/flows/dyn-params/run?wait_ms=10000", {{"input", {{"ms", "soon"}}}});
  EXPECT_EQ(bad.doc().value("status", ""), "failed") << bad.body;
  EXPECT_EQ(bad.doc()["error"].value("code", ""), "invalid_parameters") << bad.body;
  EXPECT_NE(bad.doc()["error"].value("message", "").find("/ms must be an integer"),
            std::string::npos)
      << bad.body;
}

TEST_F(ToolsTest, CliListsAndGetsTools) {
  auto cli = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {YANTRA_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {{"YANTRA_URL", node_->url()}, {"YANTRA_API_KEY", node_->key()}},
                       std::chrono::seconds(30));
  };
  auto list = cli({"tools", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_NE(list.out.find("TOOL"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("request"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("emit"), std::string::npos) << list.out;
  auto get = cli({"tools", "get", "http"});
  ASSERT_EQ(get.exit_code, 0) << get.out << get.err;
  EXPECT_NE(get.out.find("input_schema"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("follow_redirects"), std::string::npos) << get.out;
  auto json_get = cli({"tools", "get", "core", "--json"});
  ASSERT_EQ(json_get.exit_code, 0) << json_get.err;
  EXPECT_EQ(json::parse(json_get.out, nullptr, false).value("id", ""), "core") << json_get.out;
  auto missing = cli({"tools", "get", "nope"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("not_found"), std::string::npos) << missing.err;
  auto usage = cli({"tools", "usage", "core", "--from", "yesterday"});
  EXPECT_NE(usage.exit_code, 0);
  EXPECT_NE(usage.err.find("invalid_parameter"), std::string::npos) << usage.err;
}

// Operator-set policies: refused at store time with a 403 naming the tool
// and the pointer, at run time as a failed step (the policy changed after
// the flow was stored), audited; the list shows what is allowed.
TEST(ToolsPolicy, RefusedAtStoreAndRunTimeAndAudited) {
  NodeProcess node(with_operator());
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api owner(node.port(), node.key());
  Api op(node.port(), kOperatorKey);

  const json echo = {{"id", "echoer"}, {"steps", {action_step("a", "core", "echo", {{"x", 1}})}}};
  ASSERT_EQ(owner.post("/api/v1/flows", echo).status, 201);

  Reply set = op.request("PATCH", "/admin/v1/tenants/default",
                         json({{"tools",
                                {{"allow", {"core", "http"}},
                                 {"deny", {"core.echo"}},
                                 {"roles", {{"owner", {{"deny", {"http.request"}}}}}}}}})
                             .dump(),
                         {{"Content-Type", "application/json"}});
  ASSERT_EQ(set.status, 200) << set.describe();
  EXPECT_EQ(set.doc()["tools"]["deny"], json::array({"core.echo"})) << set.body;
  Reply bad_policy = op.request("PATCH", "/admin/v1/tenants/default",
                                R"({"tools":{"allow":"core","roles":{"chief":{}}}})",
                                {{"Content-Type", "application/json"}});
  EXPECT_EQ(bad_policy.status, 400) << bad_policy.describe();
  EXPECT_EQ(pointers(bad_policy), (std::set<std::string>{"/tools/allow", "/tools/roles/chief"}))
      << bad_policy.body;

  // Store time: the tenant's deny and the owner role's deny, each named.
  json flow = {
      {"id", "refused"},
      {"steps",
       {action_step("a", "core", "echo", json::object()),
        {{"id", "loop"},
         {"type", "loop"},
         {"config",
          {{"items", json::array({1})},
           {"steps",
            {action_step("inner", "http", "request", {{"url", "http://127.0.0.1:1/"}})}}}}},
        action_step("c", "core", "sleep", {{"ms", 1}})}}};
  flow["steps"][0]["on_success"] = "loop";
  flow["steps"][1]["on_success"] = "c";
  Reply refused = owner.post("/api/v1/flows", flow);
  ASSERT_EQ(refused.status, 403) << refused.describe();
  EXPECT_EQ(refused.doc()["error"].value("code", ""), "permission_denied");
  EXPECT_EQ(pointers(refused), (std::set<std::string>{"/steps/0/config/tool_id",
                                                      "/steps/1/config/steps/0/config/tool_id"}))
      << refused.body;
  EXPECT_NE(refused.body.find("core.echo"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("the role owner may not use http.request"), std::string::npos)
      << refused.body;

  // The list says so too.
  const json core = owner.get("/api/v1/tools/core").doc();
  for (const auto& a : core["actions"]) {
    EXPECT_EQ(a.value("allowed", true), a.value("name", "") != "echo") << a.dump();
  }

  // Run time: the flow stored before the policy fails at its step.
  Reply run = owner.post("/api/v1/flows/echoer/run?wait_ms=10000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc().value("status", ""), "failed") << run.body;
  EXPECT_EQ(run.doc()["error"].value("code", ""), "permission_denied") << run.body;
  const std::string exec = run.doc().value("execution_id", "");
  json audited;
  for (int i = 0; i < 100 && audited.is_null(); ++i) {
    const json records = owner.get("/api/v1/audit?action=tool.call").doc()["records"];
    for (const auto& r : records) {
      if (r.value("resource", "") == "executions/" + exec + "/steps/a") audited = r;
    }
    if (audited.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(audited.is_object());
  EXPECT_EQ(audited.value("outcome", ""), "permission_denied") << audited.dump();
  EXPECT_EQ(audited.value("detail", "").rfind("core.echo attempt 1", 0), 0u) << audited.dump();

  // Lifted: the same flow runs.
  Reply lift = op.request("PATCH", "/admin/v1/tenants/default", R"({"tools":null})",
                          {{"Content-Type", "application/json"}});
  ASSERT_EQ(lift.status, 200) << lift.describe();
  EXPECT_EQ(lift.doc()["tools"], json::object());
  Reply again = owner.post("/api/v1/flows/echoer/run?wait_ms=10000", json::object());
  EXPECT_EQ(again.doc().value("status", ""), "completed") << again.body;

  // Usage: both calls, one failure by code, durations; and /metrics.
  // Audit records are written by the audit log's own thread: wait (bounded)
  // until both calls are in.
  Reply usage;
  for (int i = 0; i < 100; ++i) {
    usage = owner.get("/api/v1/tools/core/usage");
    if (usage.status != 200 || usage.doc().value("calls", 0) >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(usage.status, 200) << usage.describe();
  const json e = usage.doc()["actions"]["echo"];
  EXPECT_EQ(e.value("calls", 0), 2) << usage.body;
  EXPECT_EQ(e.value("failures", 0), 1) << usage.body;
  EXPECT_EQ(e["failures_by_code"].value("permission_denied", 0), 1) << usage.body;
  EXPECT_EQ(e["duration_seconds"].value("count", 0), 2) << usage.body;
  Reply empty = owner.get("/api/v1/tools/core/usage?from=0&to=1000");
  ASSERT_EQ(empty.status, 200) << empty.describe();
  EXPECT_EQ(empty.doc().value("calls", -1), 0) << empty.body;
  Reply iso = owner.get("/api/v1/tools/core/usage?from=2020-01-01T00:00:00Z");
  EXPECT_EQ(iso.status, 200) << iso.describe();
  EXPECT_EQ(iso.doc().value("calls", -1), 2) << iso.body;
  for (const char* q : {"?from=soon", "?to=1x", "?from=2000&to=1000"}) {
    Reply bad = owner.get(std::string("/api/v1/tools/core/usage") + q);
    EXPECT_EQ(bad.status, 400) << q << " " << bad.describe();
  }
  EXPECT_EQ(owner.get("/api/v1/tools/nope/usage").status, 404);
  Reply metrics = http_request(node.port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find(
                R"(yantra_tool_action_calls_total{tenant="default",tool="core",action="echo"} 2)"),
            std::string::npos)
      << metrics.body.substr(0, 4000);
  EXPECT_NE(
      metrics.body.find(
          R"(yantra_tool_action_failures_total{tenant="default",tool="core",action="echo"} 1)"),
      std::string::npos);
  EXPECT_NE(metrics.body.find("yantra_tool_action_duration_seconds_bucket{tenant=\"default\""),
            std::string::npos);
}

// A secret inside strings: "Bearer " + secret in a header, a token inside
// the URL. The peer receives the joined strings; the node keeps the secret
// nowhere — not in responses (events, state, timeline, output), not in its
// data dir, not in its log.
TEST(ToolsSecrets, ASecretInsideAStringReachesThePeerOnly) {
  const std::string value = "sv" + random_text(40);
  const std::string canary = "cn" + random_text(40);
  std::mutex mu;
  std::vector<SeenRequest> seen;
  TinyHttpServer server([&](const SeenRequest& req) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(req);
    // Echoes what it got: the node must scrub it before recording.
    return TinyHttpServer::Answer{
        200,
        json({{"auth", req.headers.count("authorization") ? req.headers.at("authorization") : ""},
              {"target", req.target}})
            .dump()};
  });
  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  std::vector<Reply> responses;
  auto keep = [&](Reply r) {
    responses.push_back(r);
    return r;
  };
  ASSERT_EQ(keep(api.put("/api/v1/secrets/TOKEN", {{"value", value}})).status, 201);
  const json secret = {{"$secret", "TOKEN"}};
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  json flow = {
      {"id", "bearer"},
      {"steps",
       {action_step(
           "call", "http", "request",
           {{"method", "POST"},
            {"url",
             {{"$concat", json::array({base + "/hook/", secret, "?c=", {{"$ref", "input.c"}}})}}},
            {"headers", {{"Authorization", {{"$concat", json::array({"Bearer ", secret})}}}}},
            {"body", {{"canary", {{"$ref", "input.c"}}}}}})}}};
  Reply created = keep(api.post("/api/v1/flows", flow));
  ASSERT_EQ(created.status, 201) << created.describe();
  Reply run =
      keep(api.post("/api/v1/flows/bearer/run?wait_ms=20000", {{"input", {{"c", canary}}}}));
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc().value("status", ""), "completed") << run.body;
  const std::string id = run.doc().value("execution_id", "");

  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].headers["authorization"], "Bearer " + value);
    EXPECT_EQ(seen[0].target, "/hook/" + value + "?c=" + canary);
  }
  const std::string e = "/api/v1/executions/" + id;
  Reply view = keep(api.get(e));
  const json output = view.doc()["steps"]["call"]["output"];
  EXPECT_EQ(output["body"].value("auth", ""), "***") << output.dump();
  // What the step was given is recorded with the markers, redacted in views.
  Reply events = keep(api.get(e + "/events?limit=1000"));
  EXPECT_NE(events.body.find("$concat"), std::string::npos) << events.body;
  keep(api.get(e + "/timeline"));
  keep(api.get(e + "/state"));
  keep(api.get("/api/v1/flows/bearer"));
  keep(api.get("/api/v1/audit?action=tool.call"));
  keep(http_request(node.port(), "GET", "/metrics"));
  bool canary_seen = false;
  for (const auto& r : responses) {
    EXPECT_EQ(r.body.find(value), std::string::npos) << "secret in a response: " << r.body;
    canary_seen = canary_seen || r.body.find(canary) != std::string::npos;
  }
  EXPECT_TRUE(canary_seen) << "the responses do not even hold the run's input";

  ASSERT_TRUE(node.stop()) << node.log();
  size_t scanned = 0;
  const auto hits = files_containing(node.data_dir(), value, &scanned);
  EXPECT_TRUE(hits.empty()) << "the secret is stored in plaintext in " << hits[0];
  EXPECT_FALSE(files_containing(node.data_dir(), canary, &scanned).empty())
      << "the scan does not find even the run's input";
  EXPECT_EQ(node.log().find(value), std::string::npos);
}

}  // namespace
}  // namespace yantra::e2e
