// The HTTP API of a real node (`yantra serve` as a child process) over real
// sockets: every route of api/openapi.json, every error status the API
// produces, YAML in and out, flow versions and deletion, runs (waiting,
// polling, idempotent), listing and event paging, cancel, and metrics.
//
// One node serves the whole suite (starting one per test would cost more
// than the tests); tests stay independent by using their own flow ids and by
// filtering listings by flow. The robustness tests (hostile input) live in
// robustness_test.cpp with a node of their own, so that a crash there cannot
// be mistaken for a failure here.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

class ApiTest : public NodeSuite<ApiTest> {
 public:
  static constexpr const char* kOperatorKey = "op_api_test_operator_key_0123456789";
  static NodeProcess::Options node_options() {
    NodeProcess::Options options;
    options.env.emplace_back("YANTRA_OPERATOR_KEY", kOperatorKey);
    return options;
  }

 protected:
  Api operator_api() { return Api(node_->port(), kOperatorKey); }
};

std::set<std::string> pointers(const Reply& r) {
  std::set<std::string> out;
  json j = r.doc();
  for (const auto& d : j["error"].value("details", json::array())) out.insert(d.value("path", ""));
  return out;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

// ---- health, readiness, the document itself ----------------------------------

TEST_F(ApiTest, HealthAndReadinessNeedNoKey) {
  Reply h = http_request(port(), "GET", "/healthz");
  ASSERT_EQ(h.status, 200) << h.describe();
  EXPECT_EQ(h.doc()["status"], "ok");
  EXPECT_EQ(h.header("content-type"), "application/json");
  Reply r = http_request(port(), "GET", "/readyz");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.doc()["status"], "ready");
}

TEST_F(ApiTest, ServesTheOpenApiDocumentOfTheRepository) {
  Api a = api();
  Reply r = a.get("/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200) << r.describe();
  const json served = r.doc();
  const json file = read_json_file(std::string(YANTRA_SOURCE_DIR) + "/api/openapi.json");
  ASSERT_FALSE(file.is_discarded());
  EXPECT_EQ(served, file);
}

// Every (path, method) of api/openapi.json, called for real with values that
// exist, must answer one of its documented 2xx statuses; every route the
// document puts under bearer security must refuse a request without a key.
// A route added to the document without a case below fails this test, so
// the document and this suite cannot drift apart silently.
TEST_F(ApiTest, EveryDocumentedRouteAnswersAsDocumented) {
  Api a = api();
  const json doc = read_json_file(std::string(YANTRA_SOURCE_DIR) + "/api/openapi.json");
  ASSERT_TRUE(doc.is_object());

  create_flow(a, echo_flow("route-cov"));
  create_flow(a, echo_flow("route-cov-del"));
  create_flow(a, delay_flow("route-cov-wait", 60000));
  Reply done = a.post("/api/v1/flows/route-cov/run?wait_ms=10000", json{{"input", {{"x", 1}}}});
  ASSERT_EQ(done.status, 200) << done.describe();
  const std::string finished = done.doc()["execution_id"];
  const std::string waiting = start_run(a, "route-cov-wait");
  ASSERT_EQ(wait_status(a, waiting, "waiting").value("status", ""), "waiting");
  create_flow(a, json::parse(R"({"id": "route-cov-fail", "steps": [{"id": "f", "type": "action",
      "config": {"tool_id": "core", "action": "fail", "parameters": {"retriable": false}}}]})"));
  Reply failed_run = a.post("/api/v1/flows/route-cov-fail/run?wait_ms=10000", json::object());
  ASSERT_EQ(failed_run.status, 200) << failed_run.describe();
  const std::string failed = failed_run.doc()["execution_id"];
  create_flow(a, json::parse(R"({"id": "route-cov-approve", "steps": [{"id": "ok", "type":
      "approval", "config": {"approvers": ["role:owner"]}}]})"));
  const std::string approving = start_run(a, "route-cov-approve");
  const std::string signalled = start_run(a, "route-cov-wait");
  ASSERT_EQ(wait_status(a, approving, "waiting").value("status", ""), "waiting");
  Api opk = operator_api();
  ASSERT_EQ(opk.post("/admin/v1/tenants", json{{"id", "route-cov-b"}}).status, 201);
  ASSERT_EQ(opk.post("/admin/v1/tenants", json{{"id", "route-cov-del"}}).status, 201);
  Reply key = a.post("/api/v1/keys", json{{"role", "viewer"}, {"name", "to revoke"}});
  ASSERT_EQ(key.status, 201) << key.describe();
  const std::string key_id = key.doc()["id"];
  ASSERT_EQ(a.put("/api/v1/secrets/ROUTE_COV_DEL", json{{"value", "v"}}).status, 201);
  ASSERT_EQ(a.put("/api/v1/secrets/ROUTE_COV_DEL2", json{{"value", "v"}}).status, 201);
  // Triggers: a webhook flow to call (its hook answers 200 with ?wait_ms,
  // also without a key: the route is public), another one to rotate (the
  // calls run in path order, so rotating the first would retire its URL
  // first), and a flow to pause and resume.
  json hooked = echo_flow("route-cov-hook");
  hooked["trigger"] = {{"type", "webhook"}, {"config", {{"auth", "none"}}}};
  create_flow(a, hooked);
  hooked["id"] = "route-cov-hook2";
  create_flow(a, hooked);
  create_flow(a, echo_flow("route-cov-pause"));
  const std::string hook_url = a.get("/api/v1/flows/route-cov-hook").doc()["webhook"]["url"];

  // Workers: one to delete (the POST below registers route-cov-w).
  const std::string kWorkerReg =
      R"({"id": "route-cov-w", "tools": [{"id": "routecov", "actions": [{"name": "a"}]}]})";
  ASSERT_EQ(
      a.post(
           "/api/v1/workers",
           json::parse(
               R"({"id": "route-cov-w-del", "tools": [{"id": "routecov2", "actions": [{"name": "a"}]}]})"))
          .status,
      201);
  struct Call {
    std::string target;
    std::string body;
    bool operator_key = false;
    int status = 0;  // the expected answer; 0 = any 2xx
  };
  const std::map<std::string, Call> calls = {
      {"GET /healthz", {"/healthz", ""}},
      {"GET /readyz", {"/readyz", ""}},
      {"GET /metrics", {"/metrics", ""}},
      {"GET /api/v1/openapi.json", {"/api/v1/openapi.json", ""}},
      {"POST /api/v1/flows", {"/api/v1/flows", echo_flow("route-cov-new").dump()}},
      {"GET /api/v1/flows", {"/api/v1/flows", ""}},
      {"GET /api/v1/flows/{id}", {"/api/v1/flows/route-cov", ""}},
      {"PUT /api/v1/flows/{id}", {"/api/v1/flows/route-cov", echo_flow("route-cov").dump()}},
      {"DELETE /api/v1/flows/{id}", {"/api/v1/flows/route-cov-del", ""}},
      {"POST /api/v1/flows/{id}/run", {"/api/v1/flows/route-cov/run", R"({"input": {"x": 2}})"}},
      {"GET /api/v1/executions", {"/api/v1/executions", ""}},
      {"GET /api/v1/executions/{id}", {"/api/v1/executions/" + finished, ""}},
      {"GET /api/v1/executions/{id}/events", {"/api/v1/executions/" + finished + "/events", ""}},
      {"POST /api/v1/executions/{id}/cancel", {"/api/v1/executions/" + waiting + "/cancel", ""}},
      {"GET /api/v1/flows/{id}/versions", {"/api/v1/flows/route-cov/versions", ""}},
      {"POST /api/v1/flows/{id}/rollback",
       {"/api/v1/flows/route-cov/rollback", R"({"version": 1})"}},
      {"GET /api/v1/executions/{id}/state",
       {"/api/v1/executions/" + finished + "/state?at_seq=2", ""}},
      {"GET /api/v1/executions/{id}/timeline",
       {"/api/v1/executions/" + finished + "/timeline", ""}},
      {"GET /api/v1/executions/{id}/diff",
       {"/api/v1/executions/" + finished + "/diff?from_seq=1&to_seq=3", ""}},
      {"POST /api/v1/executions/{id}/replay",
       {"/api/v1/executions/" + finished + "/replay", R"({"from_seq": 2})"}},
      {"POST /api/v1/executions/{id}/retry", {"/api/v1/executions/" + failed + "/retry", ""}},
      {"POST /api/v1/executions/{id}/signals/{name}",
       {"/api/v1/executions/" + signalled + "/signals/nudge", R"({"data": {"n": 1}})"}},
      {"POST /api/v1/executions/{id}/approvals/{step}",
       {"/api/v1/executions/" + approving + "/approvals/ok", R"({"decision": "approved"})"}},
      {"GET /api/v1/approvals", {"/api/v1/approvals?status=pending", ""}},
      {"POST /admin/v1/tenants", {"/admin/v1/tenants", R"({"id": "route-cov-new"})", true}},
      {"GET /admin/v1/tenants", {"/admin/v1/tenants", "", true}},
      {"GET /admin/v1/tenants/{t}", {"/admin/v1/tenants/route-cov-b", "", true}},
      {"PATCH /admin/v1/tenants/{t}",
       {"/admin/v1/tenants/route-cov-b", R"({"name": "B", "limits": {"burst": 5}})", true}},
      {"DELETE /admin/v1/tenants/{t}", {"/admin/v1/tenants/route-cov-del", "", true}},
      {"GET /admin/v1/audit", {"/admin/v1/audit?tenant=default", "", true}},
      {"GET /admin/v1/audit/verify", {"/admin/v1/audit/verify?tenant=default", "", true}},
      // A single node: 404, "not part of a cluster" (cluster_e2e_test covers a cluster).
      {"GET /admin/v1/cluster", {"/admin/v1/cluster", "", true, 404}},
      {"POST /admin/v1/nodes/{id}/drain", {"/admin/v1/nodes/n1/drain", "{}", true, 404}},
      {"POST /admin/v1/nodes/{id}/undrain", {"/admin/v1/nodes/n1/undrain", "{}", true, 404}},
      {"DELETE /admin/v1/nodes/{id}", {"/admin/v1/nodes/n1", "", true, 404}},
      {"POST /admin/v1/partitions/{p}/leader",
       {"/admin/v1/partitions/0/leader", R"({"node": "n1"})", true, 404}},
      {"POST /admin/v1/partitions/{p}/replicas",
       {"/admin/v1/partitions/0/replicas", R"({"replicas": ["n1", "n2"]})", true, 404}},
      {"POST /admin/v1/rebalance", {"/admin/v1/rebalance", "{}", true, 404}},
      {"POST /api/v1/keys", {"/api/v1/keys", R"({"role": "editor"})"}},
      {"GET /api/v1/keys", {"/api/v1/keys", ""}},
      {"DELETE /api/v1/keys/{id}", {"/api/v1/keys/" + key_id, ""}},
      {"PUT /api/v1/secrets/{name}", {"/api/v1/secrets/ROUTE_COV", R"({"value": "s3cr3t"})"}},
      {"GET /api/v1/secrets", {"/api/v1/secrets", ""}},
      {"DELETE /api/v1/secrets/{name}", {"/api/v1/secrets/ROUTE_COV_DEL", ""}},
      {"PUT /api/v1/accounts/{tenant}/secrets/{name}",
       {"/api/v1/accounts/default/secrets/ROUTE_COV2", R"({"value": "s3cr3t"})"}},
      {"GET /api/v1/accounts/{tenant}/secrets", {"/api/v1/accounts/default/secrets", ""}},
      {"DELETE /api/v1/accounts/{tenant}/secrets/{name}",
       {"/api/v1/accounts/default/secrets/ROUTE_COV_DEL2", ""}},
      {"GET /api/v1/audit", {"/api/v1/audit?action=flow.&limit=5", ""}},
      {"GET /api/v1/audit/verify", {"/api/v1/audit/verify", ""}},
      {"GET /api/v1/audit/report", {"/api/v1/audit/report?from=2020-01-01T00:00:00Z", ""}},
      {"POST /api/v1/flows/{id}/pause", {"/api/v1/flows/route-cov-pause/pause", ""}},
      {"POST /api/v1/flows/{id}/resume", {"/api/v1/flows/route-cov-pause/resume", ""}},
      {"POST /api/v1/flows/{id}/webhook/rotate",
       {"/api/v1/flows/route-cov-hook2/webhook/rotate", ""}},
      {"POST /api/v1/events", {"/api/v1/events", R"({"name": "route.cov", "data": {}})"}},
      {"GET /api/v1/schedules", {"/api/v1/schedules", ""}},
      {"GET /api/v1/tools", {"/api/v1/tools", ""}},
      {"GET /api/v1/tools/{id}", {"/api/v1/tools/http", ""}},
      {"GET /api/v1/tools/{id}/usage", {"/api/v1/tools/core/usage?from=0", ""}},
      {"POST /hooks/{hook_id}", {hook_url + "?wait_ms=10000", R"({"x": 1})"}},
      {"POST /api/v1/workers", {"/api/v1/workers", kWorkerReg}},
      {"GET /api/v1/workers", {"/api/v1/workers", ""}},
      {"GET /api/v1/workers/{id}", {"/api/v1/workers/route-cov-w", ""}},
      {"DELETE /api/v1/workers/{id}", {"/api/v1/workers/route-cov-w-del", ""}},
      {"POST /api/v1/workers/{id}/poll",
       {"/api/v1/workers/route-cov-w/poll?wait_ms=0", "", false, 204}},
      {"POST /api/v1/tasks/{task_id}/heartbeat",
       {"/api/v1/tasks/task_none/heartbeat", "", false, 404}},
      {"POST /api/v1/tasks/{task_id}/complete",
       {"/api/v1/tasks/task_none/complete", R"({"output": 1})", false, 404}},
      {"POST /api/v1/tasks/{task_id}/fail",
       {"/api/v1/tasks/task_none/fail", R"({"error": {"code": "x"}})", false, 404}},
  };

  size_t checked = 0;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method_lower, op] : ops.items()) {
      std::string method = method_lower;
      std::transform(method.begin(), method.end(), method.begin(), ::toupper);
      const std::string name = method + " " + path;
      auto it = calls.find(name);
      ASSERT_NE(it, calls.end()) << "no test call for documented route " << name
                                 << ": add one to `calls` above";
      std::set<int> documented;
      const json responses = op.value("responses", json::object());
      for (const auto& [code, _] : responses.items()) documented.insert(std::stoi(code));

      // Unauthenticated first: it must not have any effect.
      const bool secured = !(op.contains("security") && op["security"].empty());
      Headers plain;
      if (!it->second.body.empty()) plain.emplace_back("Content-Type", "application/json");
      Reply anon = http_request(port(), method, it->second.target, it->second.body, plain);
      if (secured) {
        EXPECT_EQ(anon.status, 401) << name << ": " << anon.describe();
        EXPECT_EQ(anon.code(), "unauthorized") << name;
      } else {
        EXPECT_EQ(anon.status, 200) << name << ": " << anon.describe();
      }

      Headers h;
      if (!it->second.body.empty()) h.emplace_back("Content-Type", "application/json");
      Reply r = (it->second.operator_key ? opk : a)
                    .request(method, it->second.target, it->second.body, h);
      if (it->second.status != 0) {
        EXPECT_EQ(r.status, it->second.status) << name << ": " << r.describe();
      } else {
        EXPECT_TRUE(r.status >= 200 && r.status < 300) << name << ": " << r.describe();
      }
      EXPECT_TRUE(documented.count(r.status)) << name << " answered undocumented " << r.status;
      ++checked;
    }
  }
  EXPECT_GE(checked, 14u) << "the document lost routes";
}

// ---- errors --------------------------------------------------------------------

TEST_F(ApiTest, InvalidFlowListsEveryProblemWithItsPointer) {
  Api a = api();
  const json bad = json::parse(R"({
    "id": "bad id!",
    "extra": 1,
    "steps": [
      {"id": "a", "type": "bogus"},
      {"id": "a", "type": "action", "config": {"tool_id": "nope", "action": "x"},
       "on_success": "zz"},
      {"id": "c", "type": "condition", "config": {"condition": {"operator": "~~"}}}
    ],
    "config": {"on_error": "explode"}
  })");
  Reply r = a.post("/api/v1/flows", bad);
  ASSERT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(r.code(), "invalid_flow");
  const auto got = pointers(r);
  for (const char* p :
       {"/id", "/extra", "/steps/0/type", "/steps/1/id", "/steps/1/config/tool_id",
        "/steps/1/on_success", "/steps/2/config/condition/operator", "/config/on_error"}) {
    EXPECT_TRUE(got.count(p)) << "no problem reported at " << p << "; got " << r.body;
  }
  const json body = r.doc();
  for (const auto& d : body["error"]["details"]) {
    EXPECT_FALSE(d.value("message", "").empty()) << d.dump();
  }
  // Nothing was stored.
  EXPECT_EQ(a.get("/api/v1/flows/bad%20id!").status, 404);
}

TEST_F(ApiTest, WrongTypesAreInvalidFlows) {
  Api a = api();
  Reply r = a.post("/api/v1/flows", json{{"id", 5}, {"steps", "none"}, {"output", 1}});
  ASSERT_EQ(r.status, 400) << r.describe();
  EXPECT_EQ(r.code(), "invalid_flow");
  EXPECT_TRUE(pointers(r).count("/id")) << r.body;
  EXPECT_TRUE(pointers(r).count("/steps")) << r.body;

  Reply arr = a.post("/api/v1/flows", json::array({1, 2}));
  ASSERT_EQ(arr.status, 400) << arr.describe();
  EXPECT_EQ(arr.code(), "invalid_flow");

  json timeout = echo_flow("types-timeout");
  timeout["config"] = {{"timeout_ms", "soon"}};
  timeout["steps"][0]["retry_config"] = {{"max_attempts", -1}};
  Reply t = a.post("/api/v1/flows", timeout);
  ASSERT_EQ(t.status, 400) << t.describe();
  EXPECT_TRUE(pointers(t).count("/config/timeout_ms")) << t.body;
  EXPECT_TRUE(pointers(t).count("/steps/0/retry_config/max_attempts")) << t.body;
}

TEST_F(ApiTest, MalformedBodiesAre400) {
  Api a = api();
  Reply j = a.post_raw("/api/v1/flows", R"({"id": "x", "steps": [)", "application/json");
  ASSERT_EQ(j.status, 400) << j.describe();
  EXPECT_EQ(j.code(), "invalid_json");
  EXPECT_NE(j.doc()["error"].value("message", "").find("line 1"), std::string::npos) << j.body;

  Reply empty = a.post_raw("/api/v1/flows", "", "application/json");
  ASSERT_EQ(empty.status, 400) << empty.describe();
  EXPECT_EQ(empty.code(), "invalid_json");

  Reply y = a.post_raw("/api/v1/flows", "id: x\nsteps: [\n  - {a: 1\n", "application/yaml");
  ASSERT_EQ(y.status, 400) << y.describe();
  EXPECT_EQ(y.code(), "invalid_yaml");

  Reply tabs = a.post_raw("/api/v1/flows", "id: x\n\tsteps: []\n", "application/yaml");
  ASSERT_EQ(tabs.status, 400) << tabs.describe();
  EXPECT_EQ(tabs.code(), "invalid_yaml");

  create_flow(a, echo_flow("malformed-run"));
  Reply run = a.post_raw("/api/v1/flows/malformed-run/run", "{input:", "application/json");
  ASSERT_EQ(run.status, 400) << run.describe();
  EXPECT_EQ(run.code(), "invalid_json");
  Reply not_obj = a.post_raw("/api/v1/flows/malformed-run/run", "[1]", "application/json");
  ASSERT_EQ(not_obj.status, 400) << not_obj.describe();
  Reply unknown = a.post("/api/v1/flows/malformed-run/run", json{{"inputs", {{"x", 1}}}});
  ASSERT_EQ(unknown.status, 400) << unknown.describe();
  EXPECT_TRUE(pointers(unknown).count("/inputs")) << unknown.body;
  Reply long_key = a.post("/api/v1/flows/malformed-run/run", json{{"input", json::object()}},
                          {{"Idempotency-Key", std::string(201, 'k')}});
  ASSERT_EQ(long_key.status, 400) << long_key.describe();
  // None of these started anything.
  Reply list = a.get("/api/v1/executions?flow_id=malformed-run");
  EXPECT_EQ(list.doc()["executions"].size(), 0u) << list.body;
}

TEST_F(ApiTest, InvalidQueryParametersAre400) {
  Api a = api();
  create_flow(a, echo_flow("query-params"));
  Reply ok = a.post("/api/v1/flows/query-params/run?wait_ms=10000", json{{"input", {{"x", 1}}}});
  ASSERT_EQ(ok.status, 200) << ok.describe();
  const std::string id = ok.doc()["execution_id"];
  for (const std::string& target : std::vector<std::string>{
           "/api/v1/executions?limit=abc", "/api/v1/executions?limit=-1",
           "/api/v1/executions?limit=1001", "/api/v1/executions?status=sleeping",
           "/api/v1/executions?cursor=not-a-cursor", "/api/v1/flows/query-params?version=x",
           "/api/v1/flows/query-params?version=-2",
           "/api/v1/executions/" + id + "/events?after_seq=-1",
           "/api/v1/executions/" + id + "/events?limit=1001",
           "/api/v1/executions/" + id + "/events?limit=1e3"}) {
    Reply r = a.get(target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.describe();
    EXPECT_EQ(r.code(), "invalid_parameter") << target;
  }
  for (const std::string wait : {"60001", "soon", "-5"}) {
    Reply r = a.post("/api/v1/flows/query-params/run?wait_ms=" + wait, json::object());
    EXPECT_EQ(r.status, 400) << wait << ": " << r.describe();
    EXPECT_EQ(r.code(), "invalid_parameter") << wait;
  }
}

// A route takes the query parameters api/openapi.json lists for it; any
// other is refused by name rather than silently ignored. A webhook takes
// any (it hands its query to the flow), and so do the probes, which load
// balancers and monitors call with query strings of their own.
TEST_F(ApiTest, UnknownQueryParametersAre400) {
  Api a = api();
  create_flow(a, echo_flow("query-strict"));
  for (const std::string& target : std::vector<std::string>{
           "/api/v1/flows?limt=5", "/api/v1/executions?flow=query-strict",
           "/api/v1/flows/query-strict?version=1&verbose=1", "/api/v1/keys?all=1"}) {
    Reply r = a.get(target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.describe();
    EXPECT_EQ(r.code(), "invalid_parameter") << target;
    const std::string message = r.doc()["error"].value("message", "");
    EXPECT_NE(message.find("unknown query parameter"), std::string::npos) << message;
  }
  Reply r = a.post("/api/v1/flows/query-strict/run?wait_ms=10000&wait=1", json::object());
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_NE(r.doc()["error"].value("message", "").find("'wait'"), std::string::npos)
      << r.describe();
  // Documented parameters still work; probes take anything.
  EXPECT_EQ(a.get("/api/v1/flows/query-strict?version=1").status, 200);
  EXPECT_EQ(a.get("/healthz?cache_buster=123").status, 200);
  EXPECT_EQ(a.get("/metrics?format=text").status, 200);
  EXPECT_EQ(a.get("/api/v1/executions?flow_id=query-strict&limit=5").status, 200);
}

TEST_F(ApiTest, MissingMalformedOrWrongKeysAre401) {
  const std::vector<std::pair<std::string, Headers>> cases = {
      {"missing", {}},
      {"basic", {{"Authorization", "Basic dXNlcjpwYXNz"}}},
      {"bearer without key", {{"Authorization", "Bearer "}}},
      {"wrong key", {{"Authorization", "Bearer not-the-key"}}},
      {"key with suffix", {{"Authorization", "Bearer " + node_->key() + "x"}}},
  };
  for (const auto& [name, headers] : cases) {
    Reply r = http_request(port(), "GET", "/api/v1/flows", "", headers);
    EXPECT_EQ(r.status, 401) << name << ": " << r.describe();
    EXPECT_EQ(r.code(), "unauthorized") << name;
    EXPECT_NE(r.header("www-authenticate").find("Bearer"), std::string::npos) << name;
  }
  // The scheme is case-insensitive (RFC 7235); the key is not.
  Reply lower = http_request(port(), "GET", "/api/v1/flows", "",
                             {{"Authorization", "bearer " + node_->key()}});
  EXPECT_EQ(lower.status, 200) << lower.describe();
  // A write without a key changes nothing.
  Reply w = http_request(port(), "POST", "/api/v1/flows", echo_flow("no-key").dump(),
                         {{"Content-Type", "application/json"}});
  EXPECT_EQ(w.status, 401) << w.describe();
  Api a = api();
  EXPECT_EQ(a.get("/api/v1/flows/no-key").status, 404);
}

TEST_F(ApiTest, UnknownRoutesFlowsAndExecutionsAre404) {
  Api a = api();
  for (const std::string target :
       {"/nope", "/api/v1/nope", "/api/v2/flows", "/api/v1/flows/x/y/z"}) {
    Reply r = a.get(target);
    EXPECT_EQ(r.status, 404) << target << ": " << r.describe();
    EXPECT_EQ(r.code(), "not_found") << target;
  }
  EXPECT_EQ(a.get("/api/v1/flows/no-such-flow").status, 404);
  EXPECT_EQ(a.del("/api/v1/flows/no-such-flow").status, 404);
  EXPECT_EQ(a.post("/api/v1/flows/no-such-flow/run", json::object()).status, 404);
  const std::string missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";  // well-formed, never created
  for (const std::string& target : std::vector<std::string>{
           "/api/v1/executions/" + missing, "/api/v1/executions/" + missing + "/events",
           "/api/v1/executions/not-an-id"}) {
    Reply r = a.get(target);
    EXPECT_EQ(r.status, 404) << target << ": " << r.describe();
    EXPECT_EQ(r.code(), "not_found") << target;
  }
  Reply c = a.post("/api/v1/executions/" + missing + "/cancel", json::object());
  EXPECT_EQ(c.status, 404) << c.describe();
  create_flow(a, echo_flow("versions-404"));
  Reply v = a.get("/api/v1/flows/versions-404?version=7");
  EXPECT_EQ(v.status, 404) << v.describe();
}

TEST_F(ApiTest, WrongMethodsAre405WithAllow) {
  Api a = api();
  struct Case {
    std::string method, target;
    std::set<std::string> allow;
  };
  const std::vector<Case> cases = {
      {"DELETE", "/api/v1/executions", {"GET"}},
      {"PATCH", "/api/v1/flows/some-flow", {"GET", "PUT", "DELETE"}},
      {"GET", "/api/v1/flows/some-flow/run", {"POST"}},
      {"PUT", "/api/v1/flows", {"GET", "POST"}},
      {"POST", "/healthz", {"GET"}},
      {"GET", "/api/v1/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel", {"POST"}},
  };
  for (const auto& c : cases) {
    Reply r = a.request(c.method, c.target, "");
    EXPECT_EQ(r.status, 405) << c.method << " " << c.target << ": " << r.describe();
    EXPECT_EQ(r.code(), "method_not_allowed");
    std::set<std::string> allow;
    std::stringstream ss(r.header("allow"));
    for (std::string m; std::getline(ss, m, ',');) {
      m.erase(0, m.find_first_not_of(' '));
      allow.insert(m);
    }
    EXPECT_EQ(allow, c.allow) << c.method << " " << c.target << " Allow: " << r.header("allow");
  }
}

TEST_F(ApiTest, ConflictsAre409) {
  Api a = api();
  create_flow(a, echo_flow("conflict"));
  Reply again = a.post("/api/v1/flows", echo_flow("conflict"));
  ASSERT_EQ(again.status, 409) << again.describe();
  EXPECT_EQ(again.code(), "conflict");
  // The conflict did not create a version.
  EXPECT_EQ(a.get("/api/v1/flows/conflict").doc()["version"], 1);

  Reply run = a.post("/api/v1/flows/conflict/run?wait_ms=10000", json{{"input", {{"x", 1}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  Reply cancel = a.post("/api/v1/executions/" + id + "/cancel", json::object());
  ASSERT_EQ(cancel.status, 409) << cancel.describe();
  EXPECT_EQ(cancel.code(), "conflict");
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["status"], "completed");
}

TEST_F(ApiTest, BodiesOverOneMebibyteAre413) {
  Api a = api();
  constexpr size_t kMiB = 1 << 20;
  // Exactly the limit is still read (and here accepted: a valid flow padded
  // with whitespace), one byte more is refused.
  std::string def = echo_flow("size-limit").dump();
  std::string at_limit = def + std::string(kMiB - def.size(), ' ');
  Reply ok = a.post_raw("/api/v1/flows", at_limit, "application/json");
  EXPECT_EQ(ok.status, 201) << ok.describe();
  Reply over = a.post_raw("/api/v1/flows", at_limit + " ", "application/json");
  ASSERT_EQ(over.status, 413) << over.describe();
  EXPECT_EQ(over.code(), "payload_too_large");

  // A Content-Length over the limit is refused before the body is sent.
  Conn c(port());
  ASSERT_TRUE(c.connected());
  c.send("POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + node_->key() +
         "\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n");
  Reply early = c.read_reply(5s);
  EXPECT_EQ(early.status, 413) << early.describe();

  // Chunked bodies count too.
  Conn ch(port());
  ASSERT_TRUE(ch.connected());
  std::string req = "POST /api/v1/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    node_->key() +
                    "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(64 * 1024, ' ');
  for (int i = 0; i < 20; ++i) req += "10000\r\n" + chunk + "\r\n";
  req += "0\r\n\r\n";
  ch.send(req);
  Reply chunked = ch.read_reply(10s);
  EXPECT_EQ(chunked.status, 413) << chunked.describe();
}

TEST_F(ApiTest, UnsupportedContentTypesAre415) {
  Api a = api();
  const std::string def = echo_flow("media-type").dump();
  for (const std::string type : {"text/plain", "application/xml", "multipart/form-data"}) {
    Reply r = a.post_raw("/api/v1/flows", def, type);
    EXPECT_EQ(r.status, 415) << type << ": " << r.describe();
    EXPECT_EQ(r.code(), "unsupported_media_type") << type;
  }
  create_flow(a, echo_flow("media-type"));
  Reply put = a.put_raw("/api/v1/flows/media-type", def, "text/csv");
  EXPECT_EQ(put.status, 415) << put.describe();
  Reply run = a.post_raw("/api/v1/flows/media-type/run", R"({"input": {}})", "text/plain");
  EXPECT_EQ(run.status, 415) << run.describe();
  // Parameters of the media type are fine.
  Reply charset = a.post_raw("/api/v1/flows/media-type/run?wait_ms=10000", R"({"input": {"x": 3}})",
                             "application/json; charset=utf-8");
  EXPECT_EQ(charset.status, 200) << charset.describe();
}

// ---- flows -------------------------------------------------------------------

TEST_F(ApiTest, FlowVersionsAndDelete) {
  Api a = api();
  Reply created = a.post("/api/v1/flows", echo_flow("crud"));
  ASSERT_EQ(created.status, 201) << created.describe();
  EXPECT_EQ(created.doc()["version"], 1);
  EXPECT_EQ(created.doc()["definition"]["id"], "crud");
  EXPECT_FALSE(created.doc().value("created_at", "").empty());

  json v2 = echo_flow("crud");
  v2["name"] = "second";
  v2["steps"][0]["config"]["parameters"]["v"] = 2;
  Reply put = a.put("/api/v1/flows/crud", v2, {{"X-Change-Note", "add v"}});
  ASSERT_EQ(put.status, 200) << put.describe();
  EXPECT_EQ(put.doc()["version"], 2);
  EXPECT_EQ(put.doc()["note"], "add v");

  // A PUT body without an id takes the URL's; a different id is refused.
  json no_id = v2;
  no_id.erase("id");
  Reply v3 = a.put("/api/v1/flows/crud", no_id);
  ASSERT_EQ(v3.status, 200) << v3.describe();
  EXPECT_EQ(v3.doc()["version"], 3);
  json other = v2;
  other["id"] = "other";
  Reply mismatch = a.put("/api/v1/flows/crud", other);
  ASSERT_EQ(mismatch.status, 400) << mismatch.describe();
  EXPECT_TRUE(pointers(mismatch).count("/id"));

  Reply latest = a.get("/api/v1/flows/crud");
  ASSERT_EQ(latest.status, 200);
  EXPECT_EQ(latest.doc()["version"], 3);
  EXPECT_EQ(latest.doc()["name"], "second");
  Reply first = a.get("/api/v1/flows/crud?version=1");
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.doc()["version"], 1);
  EXPECT_EQ(first.doc()["definition"], echo_flow("crud"));

  bool listed = false;
  const json list = a.get("/api/v1/flows").doc();
  for (const auto& f : list["flows"]) {
    if (f["id"] == "crud") {
      listed = true;
      EXPECT_EQ(f["version"], 3);
    }
  }
  EXPECT_TRUE(listed);

  Reply del = a.del("/api/v1/flows/crud");
  ASSERT_EQ(del.status, 204) << del.describe();
  EXPECT_TRUE(del.body.empty());
  EXPECT_EQ(a.get("/api/v1/flows/crud").status, 404);
  EXPECT_EQ(a.del("/api/v1/flows/crud").status, 404);
  EXPECT_EQ(a.post("/api/v1/flows/crud/run", json::object()).status, 404);
  const json after = a.get("/api/v1/flows").doc();
  for (const auto& f : after["flows"]) EXPECT_NE(f["id"], "crud");
  // Old versions stay readable: executions pinned to them still need them.
  EXPECT_EQ(a.get("/api/v1/flows/crud?version=2").status, 200);
}

TEST_F(ApiTest, RunningExecutionOfADeletedFlowStillFinishes) {
  Api a = api();
  create_flow(a, delay_flow("pinned", 1000));
  const std::string id = start_run(a, "pinned");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(a.del("/api/v1/flows/pinned").status, 204);
  EXPECT_EQ(a.get("/api/v1/flows/pinned").status, 404);
  json done = wait_finished(a, id);
  EXPECT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"], json({{"done", true}}));
  EXPECT_EQ(done["flow_version"], 1);
}

TEST_F(ApiTest, YamlInAndOut) {
  Api a = api();
  const std::string yaml = R"(# a comment YAML allows
id: yaml-flow
name: from YAML
steps:
  - id: a
    type: action
    config:
      tool_id: core
      action: echo
      parameters:
        greeting: {$expr: "'hi ' + input.who"}
output:
  greeting: {$ref: a.greeting}
)";
  Reply created = a.post_raw("/api/v1/flows", yaml, "application/yaml");
  ASSERT_EQ(created.status, 201) << created.describe();
  EXPECT_EQ(created.doc()["definition"]["name"], "from YAML");

  Reply as_yaml = a.get("/api/v1/flows/yaml-flow", {{"Accept", "application/yaml"}});
  ASSERT_EQ(as_yaml.status, 200) << as_yaml.describe();
  EXPECT_NE(as_yaml.header("content-type").find("application/yaml"), std::string::npos);
  EXPECT_NE(as_yaml.body.find("id: yaml-flow"), std::string::npos) << as_yaml.body;
  EXPECT_TRUE(as_yaml.doc().is_discarded()) << "expected YAML, got JSON";

  // What GET gave as YAML goes back in as the next version unchanged.
  Reply put = a.put_raw("/api/v1/flows/yaml-flow", as_yaml.body, "application/x-yaml");
  ASSERT_EQ(put.status, 200) << put.describe();
  EXPECT_EQ(put.doc()["version"], 2);
  EXPECT_EQ(put.doc()["definition"], created.doc()["definition"]);

  Reply run =
      a.post("/api/v1/flows/yaml-flow/run?wait_ms=10000", json{{"input", {{"who", "yaml"}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc()["output"], json({{"greeting", "hi yaml"}}));

  // An invalid YAML flow reports pointers like a JSON one.
  Reply bad = a.post_raw("/api/v1/flows", "id: yaml-bad\nsteps:\n  - id: a\n    type: nope\n",
                         "application/yaml");
  ASSERT_EQ(bad.status, 400) << bad.describe();
  EXPECT_TRUE(pointers(bad).count("/steps/0/type")) << bad.body;
}

// ---- runs ----------------------------------------------------------------------

TEST_F(ApiTest, RunWithWaitAnswers200WithOutput) {
  Api a = api();
  create_flow(a, echo_flow("wait-run"));
  Reply r = a.post("/api/v1/flows/wait-run/run?wait_ms=10000", json{{"input", {{"x", "hello"}}}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.doc()["status"], "completed");
  EXPECT_EQ(r.doc()["output"], json({{"x", "hello"}}));
  EXPECT_TRUE(r.doc()["error"].is_null());

  // "shared" is an alias of "input".
  Reply s = a.post("/api/v1/flows/wait-run/run?wait_ms=10000", json{{"shared", {{"x", 7}}}});
  ASSERT_EQ(s.status, 200) << s.describe();
  EXPECT_EQ(s.doc()["output"], json({{"x", 7}}));

  create_flow(a, fail_flow("wait-fail"));
  Reply f = a.post("/api/v1/flows/wait-fail/run?wait_ms=10000", json::object());
  ASSERT_EQ(f.status, 200) << f.describe();
  EXPECT_EQ(f.doc()["status"], "failed");
  EXPECT_EQ(f.doc()["error"]["code"], "boom") << f.body;
}

TEST_F(ApiTest, RunWithoutWaitAnswers202ThenPolls) {
  Api a = api();
  create_flow(a, delay_flow("async-run", 200));
  Reply r = a.post("/api/v1/flows/async-run/run", json{{"input", {{"k", 1}}}});
  ASSERT_EQ(r.status, 202) << r.describe();
  const std::string id = r.doc()["execution_id"];
  EXPECT_EQ(id.size(), 26u);
  EXPECT_EQ(r.doc()["status"], "running");
  json done = wait_finished(a, id);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["execution_id"], id);
  EXPECT_EQ(done["flow_id"], "async-run");
  EXPECT_EQ(done["input"], json({{"k", 1}}));
  EXPECT_EQ(done["output"], json({{"done", true}}));
  EXPECT_FALSE(done["ended_at"].is_null());
  EXPECT_EQ(done["steps"]["wait"]["status"], "completed") << done["steps"].dump();
  EXPECT_EQ(done["steps"]["done"]["status"], "completed");

  // A wait shorter than the run answers 202 when it runs out.
  create_flow(a, delay_flow("async-run-slow", 1500));
  Reply slow = a.post("/api/v1/flows/async-run-slow/run?wait_ms=100", json::object());
  EXPECT_EQ(slow.status, 202) << slow.describe();
  EXPECT_EQ(wait_finished(a, slow.doc()["execution_id"]).value("status", ""), "completed");
}

TEST_F(ApiTest, SameIdempotencyKeyStartsOneExecution) {
  Api a = api();
  create_flow(a, echo_flow("idem"));
  const Headers key = {{"Idempotency-Key", "order-42"}};
  Reply first = a.post("/api/v1/flows/idem/run?wait_ms=10000", json{{"input", {{"x", 1}}}}, key);
  ASSERT_EQ(first.status, 200) << first.describe();
  // The repeat answers with the first execution, finished result included.
  Reply second = a.post("/api/v1/flows/idem/run?wait_ms=10000", json{{"input", {{"x", 1}}}}, key);
  ASSERT_EQ(second.status, 200) << second.describe();
  EXPECT_EQ(second.doc()["execution_id"], first.doc()["execution_id"]);
  EXPECT_EQ(second.doc()["output"], json({{"x", 1}}));
  Reply list = a.get("/api/v1/executions?flow_id=idem");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.doc()["executions"].size(), 1u) << list.body;
  EXPECT_EQ(a.get("/api/v1/executions/" + first.doc()["execution_id"].get<std::string>())
                .doc()["idempotency_key"],
            "order-42");

  Reply other = a.post("/api/v1/flows/idem/run", json{{"input", {{"x", 1}}}},
                       {{"Idempotency-Key", "order-43"}});
  EXPECT_NE(other.doc()["execution_id"], first.doc()["execution_id"]);
  EXPECT_EQ(a.get("/api/v1/executions?flow_id=idem").doc()["executions"].size(), 2u);
}

TEST_F(ApiTest, ListingFiltersAndPagesNewestFirst) {
  Api a = api();
  create_flow(a, echo_flow("paging"));
  create_flow(a, fail_flow("paging-fail"));
  std::vector<std::string> started;
  for (int i = 0; i < 25; ++i) {
    started.push_back(start_run(a, "paging", {{"x", i}}));
    // Ids carry milliseconds: distinct ones make "newest first" exact.
    std::this_thread::sleep_for(2ms);
  }
  for (int i = 0; i < 3; ++i) start_run(a, "paging-fail");
  for (const auto& id : started) {
    ASSERT_EQ(wait_finished(a, id).value("status", ""), "completed") << id;
  }

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  while (true) {
    std::string target = "/api/v1/executions?flow_id=paging&limit=10";
    if (!cursor.empty()) target += "&cursor=" + cursor;
    Reply r = a.get(target);
    ASSERT_EQ(r.status, 200) << r.describe();
    ++pages;
    const json page = r.doc();
    EXPECT_LE(page["executions"].size(), 10u);
    for (const auto& e : page["executions"]) {
      EXPECT_EQ(e["flow_id"], "paging");
      EXPECT_EQ(e["status"], "completed");
      seen.push_back(e["execution_id"]);
    }
    if (page["next_cursor"].is_null()) break;
    cursor = page["next_cursor"];
    ASSERT_LT(pages, 10) << "paging does not end";
  }
  EXPECT_EQ(pages, 3);
  std::vector<std::string> newest_first(started.rbegin(), started.rend());
  EXPECT_EQ(seen, newest_first);  // none missing, none twice, newest first

  Reply completed = a.get("/api/v1/executions?flow_id=paging&status=completed&limit=100");
  EXPECT_EQ(completed.doc()["executions"].size(), 25u);
  Reply failed = a.get("/api/v1/executions?flow_id=paging&status=failed");
  EXPECT_EQ(failed.doc()["executions"].size(), 0u);
  json fails;
  for (int i = 0; i < 100; ++i) {
    fails = a.get("/api/v1/executions?flow_id=paging-fail&status=failed").doc();
    if (fails["executions"].size() == 3u) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(fails["executions"].size(), 3u) << fails.dump();
  // Without a flow filter both flows appear.
  std::set<std::string> flows;
  const json all = a.get("/api/v1/executions?limit=1000").doc();
  for (const auto& e : all["executions"]) {
    flows.insert(e["flow_id"]);
  }
  EXPECT_TRUE(flows.count("paging") && flows.count("paging-fail"));
}

TEST_F(ApiTest, EventsArePagedBySequence) {
  Api a = api();
  json def = json::parse(R"({
    "id": "events",
    "steps": [
      {"id": "a", "type": "action", "config": {"tool_id": "core", "action": "echo", "parameters": {"n": 1}}, "on_success": "b"},
      {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "echo", "parameters": {"n": 2}}, "on_success": "c"},
      {"id": "c", "type": "action", "config": {"tool_id": "core", "action": "echo", "parameters": {"n": 3}}}
    ]})");
  create_flow(a, def);
  Reply run = a.post("/api/v1/flows/events/run?wait_ms=10000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  const uint64_t last_seq = a.get("/api/v1/executions/" + id).doc()["last_seq"];
  ASSERT_GE(last_seq, 4u);

  Reply all = a.get("/api/v1/executions/" + id + "/events?limit=1000");
  ASSERT_EQ(all.status, 200);
  const json everything = all.doc()["events"];
  ASSERT_EQ(everything.size(), last_seq);
  EXPECT_TRUE(all.doc()["next_after_seq"].is_null());
  for (size_t i = 0; i < everything.size(); ++i) {
    EXPECT_EQ(everything[i]["seq"], i + 1);
    EXPECT_FALSE(everything[i].value("type", "").empty());
    EXPECT_FALSE(everything[i].value("time", "").empty());
  }

  json paged = json::array();
  uint64_t after = 0;
  int pages = 0;
  while (true) {
    Reply r =
        a.get("/api/v1/executions/" + id + "/events?limit=2&after_seq=" + std::to_string(after));
    ASSERT_EQ(r.status, 200) << r.describe();
    ++pages;
    const json page = r.doc();
    for (const auto& e : page["events"]) paged.push_back(e);
    EXPECT_LE(page["events"].size(), 2u);
    if (page["next_after_seq"].is_null()) break;
    after = page["next_after_seq"];
    ASSERT_LT(pages, 100);
  }
  EXPECT_EQ(paged, everything);
  EXPECT_EQ(pages, static_cast<int>((last_seq + 1) / 2));
  Reply past = a.get("/api/v1/executions/" + id + "/events?after_seq=" + std::to_string(last_seq));
  EXPECT_EQ(past.doc()["events"].size(), 0u);
  EXPECT_TRUE(past.doc()["next_after_seq"].is_null());
}

TEST_F(ApiTest, CancelOfAWaitingExecution) {
  Api a = api();
  create_flow(a, delay_flow("cancel-me", 60000));
  const std::string id = start_run(a, "cancel-me");
  json waiting = wait_status(a, id, "waiting");
  ASSERT_EQ(waiting.value("status", ""), "waiting") << waiting.dump();
  Reply c = a.post_raw("/api/v1/executions/" + id + "/cancel", R"({"reason": "not needed"})",
                       "application/json");
  ASSERT_EQ(c.status, 200) << c.describe();
  EXPECT_EQ(c.doc()["status"], "cancelled");
  EXPECT_EQ(c.doc()["execution_id"], id);
  json after = a.get("/api/v1/executions/" + id).doc();
  EXPECT_EQ(after["status"], "cancelled");
  EXPECT_EQ(after["error"]["message"], "not needed") << after.dump();
  EXPECT_EQ(a.post("/api/v1/executions/" + id + "/cancel", json::object()).status, 409);
  Reply listed = a.get("/api/v1/executions?flow_id=cancel-me&status=cancelled");
  EXPECT_EQ(listed.doc()["executions"].size(), 1u) << listed.body;
}

TEST_F(ApiTest, CancelOfAStepInFlightAndTimeouts) {
  Api a = api();
  create_flow(a, json::parse(R"({"id": "cancel-busy", "steps": [{"id": "s", "type": "action",
      "config": {"tool_id": "core", "action": "sleep", "parameters": {"ms": 30000}}}]})"));
  const std::string id = start_run(a, "cancel-busy");
  ASSERT_EQ(wait_status(a, id, "running").value("status", ""), "running");
  Reply c = a.post("/api/v1/executions/" + id + "/cancel", json::object());
  ASSERT_EQ(c.status, 200) << c.describe();
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["status"], "cancelled");

  create_flow(a, json::parse(R"({"id": "times-out", "config": {"timeout_ms": 200},
      "steps": [{"id": "d", "type": "delay", "config": {"duration_ms": 60000}}]})"));
  Reply t = a.post("/api/v1/flows/times-out/run?wait_ms=10000", json::object());
  ASSERT_EQ(t.status, 200) << t.describe();
  EXPECT_EQ(t.doc()["status"], "timed_out");
  EXPECT_EQ(t.doc()["error"]["code"], "timed_out") << t.body;
}

// Values marked secret ({"$secret": NAME}) never appear in an execution
// response: not in the run's answer, the execution, its events, its state at
// any seq or its timeline — although the echo tool answers with the resolved
// value (it is scrubbed before it is recorded).
TEST_F(ApiTest, SecretMarkersAreRedactedInEveryExecutionResponse) {
  Api a = api();
  const std::string value = "tok-8f1c2e9d7b6a5f4e3d2c1b0a";
  ASSERT_EQ(a.put("/api/v1/secrets/API_TOKEN", json{{"value", value}}).status / 100, 2);
  create_flow(a, json::parse(R"({"id": "secretive", "steps": [{"id": "s", "type": "action",
      "config": {"tool_id": "core", "action": "echo",
                 "parameters": {"token": {"$secret": "API_TOKEN"}, "x": 1}}}]})"));
  Reply run = a.post("/api/v1/flows/secretive/run?wait_ms=10000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc()["output"], json({{"token", "***"}, {"x", 1}}));
  const std::string id = run.doc()["execution_id"];
  const std::vector<std::string> targets = {
      "/api/v1/executions/" + id, "/api/v1/executions/" + id + "/events",
      "/api/v1/executions/" + id + "/state?at_seq=2", "/api/v1/executions/" + id + "/timeline"};
  for (const std::string& target : targets) {
    Reply r = a.get(target);
    ASSERT_EQ(r.status, 200) << target << ": " << r.describe();
    EXPECT_EQ(r.body.find("$secret"), std::string::npos) << target << ": " << r.body;
    EXPECT_EQ(r.body.find(value), std::string::npos) << target << ": " << r.body;
    EXPECT_NE(r.body.find("***"), std::string::npos) << target << ": " << r.body;
  }
}

TEST_F(ApiTest, MetricsCountRunsAndRequestsByRoute) {
  Api a = api();
  create_flow(a, echo_flow("metrics"));
  const std::string id = start_run(a, "metrics", {{"x", 1}});
  ASSERT_EQ(wait_finished(a, id).value("status", ""), "completed");
  a.get("/api/v1/executions/" + id);
  Reply m = http_request(port(), "GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.describe();
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(m.body.find("yantra_executions_started_total"), std::string::npos);
  EXPECT_NE(m.body.find("yantra_http_requests_total{"), std::string::npos);
  bool by_pattern = false;
  std::stringstream lines(m.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("yantra_http_requests_total{", 0) == 0 &&
        line.find("route=\"/api/v1/executions/{id}\"") != std::string::npos &&
        line.find("status=\"200\"") != std::string::npos) {
      by_pattern = true;
    }
    // Labels carry route patterns, never ids.
    EXPECT_EQ(line.find(id), std::string::npos) << line;
  }
  EXPECT_TRUE(by_pattern) << m.body;
  EXPECT_NE(m.body.find("route=\"/api/v1/flows\""), std::string::npos);
}

}  // namespace
}  // namespace yantra::e2e

namespace yantra::e2e {
namespace {

// Backpressure: a node with YANTRA_MAX_RUNS_IN_FLIGHT=2 answers a third
// concurrent run with 429, Retry-After and code rate_limited, and accepts
// runs again once the first two are answered.
TEST(ApiBackpressure, RunsBeyondTheInFlightLimitGet429) {
  NodeProcess::Options options;
  options.env.emplace_back("YANTRA_MAX_RUNS_IN_FLIGHT", "2");
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api a(node.port(), node.key());
  create_flow(a, delay_flow("slow-run", 1500));
  std::vector<std::thread> waiters;
  std::atomic<int> completed{0};
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&] {
      Api mine(node.port(), node.key());
      // A probe below may hold a slot for an instant: then this run is
      // refused too, and simply tries again, as a client should.
      for (int attempt = 0; attempt < 200; ++attempt) {
        Reply r =
            mine.post("/api/v1/flows/slow-run/run?wait_ms=10000", json{{"input", json::object()}});
        if (r.status == 429) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        if (r.status == 200) completed++;
        return;
      }
    });
  }
  // Both waiting runs hold their slot until they are answered.
  Reply busy;
  for (int attempt = 0; attempt < 200; ++attempt) {
    busy = a.post("/api/v1/flows/slow-run/run", json{{"input", json::object()}});
    if (busy.status == 429) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(busy.status, 429) << busy.describe();
  EXPECT_EQ(busy.code(), "rate_limited");
  EXPECT_EQ(busy.header("retry-after"), "1");
  for (auto& t : waiters) t.join();
  EXPECT_EQ(completed.load(), 2);
  Reply again = a.post("/api/v1/flows/slow-run/run", json{{"input", json::object()}});
  EXPECT_EQ(again.status, 202) << again.describe();
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra::e2e
