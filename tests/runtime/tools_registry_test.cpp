// The tool registry's pure parts and the engine's run-time side:
// - the JSON Schema subset validator (every keyword, with pointers, and the
//   placeholders $ref/$expr/$secret/$concat);
// - tool policies (parse with pointers, deny over allow, roles, patterns);
// - $concat resolution (a secret inside a string) and its errors;
// - flow parsing against action schemas: static problems at store time with
//   pointers, $ref parts left for run time, stored definitions lenient;
// - the built-in specs: every action has a schema that check_schema accepts;
// - the engine: a tenant tool added and removed at run time (no restart),
//   visible to its tenant only; a run-time schema mismatch and a run-time
//   policy refusal fail the step with their codes.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "actors/engine.hpp"
#include "actors/http_tool.hpp"
#include "actors/tool_registry.hpp"
#include "runtime/json_schema.hpp"
#include "runtime/redact.hpp"
#include "runtime/tool_policy.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

json J(const char* text) {
  return json::parse(text);
}

std::vector<Problem> check(const json& schema, const json& value) {
  std::vector<Problem> p;
  validate_schema(schema, value, "/p", p);
  return p;
}

std::string paths(const std::vector<Problem>& ps) {
  std::string out;
  for (const auto& p : ps) out += p.path + " " + p.message + "\n";
  return out;
}

// ---- validator ---------------------------------------------------------------

TEST(JsonSchema, TypesAndIntegerFloats) {
  EXPECT_TRUE(check(J(R"({"type":"integer"})"), 3).empty());
  EXPECT_TRUE(check(J(R"({"type":"integer"})"), 3.0).empty());
  EXPECT_EQ(check(J(R"({"type":"integer"})"), 3.5).size(), 1u);
  EXPECT_EQ(check(J(R"({"type":"string"})"), 1)[0].message, "must be a string, got number");
  EXPECT_TRUE(check(J(R"({"type":["string","null"]})"), nullptr).empty());
  EXPECT_EQ(check(J(R"({"type":["string","null"]})"), true)[0].message,
            "must be a string or a null, got boolean");
  EXPECT_TRUE(check(J(R"({"type":"number"})"), 1.5).empty());
  EXPECT_TRUE(check(J(R"({"type":"boolean"})"), false).empty());
  EXPECT_EQ(check(J(R"({"type":"array"})"), json::object()).size(), 1u);
  EXPECT_TRUE(check(true, 1).empty());
  EXPECT_EQ(check(false, 1).size(), 1u);
  EXPECT_TRUE(check(json::object(), J(R"({"anything":[1]})")).empty());
}

TEST(JsonSchema, ObjectsWithPointers) {
  const json s = J(R"({"type":"object","required":["url"],"additionalProperties":false,
    "properties":{"url":{"type":"string","minLength":1},
                  "headers":{"type":"object","additionalProperties":{"type":"string"}},
                  "a/b":{"type":"integer"}}})");
  EXPECT_TRUE(check(s, J(R"({"url":"x"})")).empty());
  auto p = check(s, J(R"({"headers":{"X-A":1},"zz":1,"a/b":"no"})"));
  ASSERT_EQ(p.size(), 4u) << paths(p);
  EXPECT_EQ(p[0].path, "/p/url");
  EXPECT_EQ(p[0].message, "is required");
  EXPECT_EQ(p[1].path, "/p/a~1b");  // RFC 6901 escaping
  EXPECT_EQ(p[2].path, "/p/headers/X-A");
  EXPECT_EQ(p[3].path, "/p/zz");
  EXPECT_NE(p[3].message.find("allowed: a/b, headers, url"), std::string::npos) << p[3].message;
  EXPECT_EQ(check(s, J(R"({"url":""})"))[0].message, "must be at least 1 characters long");
}

TEST(JsonSchema, NumbersStringsArraysEnums) {
  const json n = J(R"({"minimum":1,"maximum":3,"exclusiveMaximum":3})");
  EXPECT_TRUE(check(n, 2).empty());
  EXPECT_EQ(check(n, 0).size(), 1u);
  EXPECT_EQ(check(n, 3).size(), 1u);  // maximum passes, exclusiveMaximum fails
  EXPECT_EQ(check(J(R"({"exclusiveMinimum":0})"), 0).size(), 1u);
  EXPECT_EQ(check(J(R"({"maxLength":2})"), "äöü").size(), 1u);  // code points, not bytes
  EXPECT_TRUE(check(J(R"({"maxLength":3})"), "äöü").empty());
  EXPECT_TRUE(check(J(R"({"pattern":"^[a-c]+$"})"), "abc").empty());
  EXPECT_EQ(check(J(R"({"pattern":"^[a-c]+$"})"), "abd").size(), 1u);
  const json a = J(R"({"type":"array","minItems":1,"maxItems":2,"items":{"type":"integer"}})");
  EXPECT_TRUE(check(a, J("[1,2]")).empty());
  EXPECT_EQ(check(a, J("[]")).size(), 1u);
  EXPECT_EQ(check(a, J("[1,2,3]")).size(), 1u);
  auto p = check(a, J(R"([1,"x"])"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/p/1");
  EXPECT_TRUE(check(J(R"({"enum":["a",1]})"), 1).empty());
  EXPECT_EQ(check(J(R"({"enum":["a",1]})"), "b")[0].message, R"(must be one of ["a",1])");
  EXPECT_EQ(check(J(R"({"const":5})"), 4).size(), 1u);
}

TEST(JsonSchema, Combinators) {
  const json one = J(R"({"oneOf":[{"type":"integer"},{"type":"number","minimum":10}]})");
  EXPECT_TRUE(check(one, 2).empty());
  EXPECT_TRUE(check(one, 10.5).empty());
  EXPECT_NE(check(one, 12)[0].message.find("matches 2 of the forms"), std::string::npos);
  EXPECT_NE(check(one, "x")[0].message.find("matches none"), std::string::npos);
  const json any = J(R"({"anyOf":[{"type":"string"},{"type":"array"}]})");
  EXPECT_TRUE(check(any, "x").empty());
  EXPECT_EQ(check(any, 1).size(), 1u);
  EXPECT_EQ(check(J(R"({"allOf":[{"minimum":1},{"maximum":2}]})"), 3).size(), 1u);
  EXPECT_EQ(check(J(R"({"not":{"type":"null"}})"), nullptr).size(), 1u);
}

TEST(JsonSchema, PlaceholdersAreLeftForLaterOrTreatedAsStrings) {
  const json s = J(R"({"type":"object","properties":{
      "n":{"type":"integer"},"t":{"type":"string","minLength":100},"o":{"type":"object"}}})");
  // $ref / $expr: not known before the step starts.
  EXPECT_TRUE(check(s, J(R"({"n":{"$ref":"input.n"},"o":{"$expr":"1+1"}})")).empty());
  // $secret / $concat: strings of unknown content (only `type` applies).
  EXPECT_TRUE(check(s, J(R"({"t":{"$secret":"A"}})")).empty());
  EXPECT_TRUE(check(s, J(R"({"t":{"$concat":["Bearer ",{"$secret":"A"}]}})")).empty());
  auto p = check(s, J(R"({"n":{"$secret":"A"}})"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, "/p/n");
  EXPECT_NE(p[0].message.find("is a secret"), std::string::npos);
}

TEST(JsonSchema, CheckSchemaNamesWhatItDoesNotUnderstand) {
  std::vector<Problem> p;
  check_schema(J(R"({"type":"strin","properties":{"a":{"$ref":"#/x"},"b":3},
                     "required":[1],"oneOf":[],"minLength":-1,"pattern":"("})"),
               "/s", p);
  ASSERT_EQ(p.size(), 7u) << paths(p);
  std::vector<Problem> none;
  check_schema(J(R"({"type":"object","properties":{"a":{"type":["string","null"]}},
                     "required":["a"],"additionalProperties":false,"description":"x"})"),
               "/s", none);
  EXPECT_TRUE(none.empty()) << paths(none);
}

// ---- policies ----------------------------------------------------------------

TEST(ToolPolicy, DenyWinsAllowListsAndPatterns) {
  auto p = ToolPolicy::parse(J(R"({"allow":["core","http"],"deny":["http.request"]})"));
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p.value().refuses("core", "echo"), "");
  EXPECT_NE(p.value().refuses("http", "request").find("denied by \"http.request\""),
            std::string::npos);
  EXPECT_NE(p.value().refuses("mcp:x", "echo").find("not in the allow list"), std::string::npos);
  auto star = ToolPolicy::parse(J(R"({"deny":["core.*"]})"));
  ASSERT_TRUE(star.ok());
  EXPECT_NE(star.value().refuses("core", "sleep"), "");
  EXPECT_EQ(star.value().refuses("corex", "sleep"), "");  // a prefix is not the tool
  auto all = ToolPolicy::parse(J(R"({"deny":["*"]})"));
  EXPECT_NE(all.value().refuses("anything", "x"), "");
  EXPECT_TRUE(ToolPolicy::parse(json(nullptr)).value().empty());
}

TEST(ToolPolicy, RolesAddToTheTenantsRules) {
  auto p = ToolPolicy::parse(J(R"({"roles":{"editor":{"allow":["core"]}}})"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().refuses("http", "request"), "");  // no role known: tenant rules only
  EXPECT_EQ(p.value().refuses("http", "request", "admin"), "");
  EXPECT_NE(p.value().refuses("http", "request", "editor").find("the role editor"),
            std::string::npos);
  EXPECT_EQ(p.value().refuses("core", "echo", "editor"), "");
  EXPECT_EQ(p.value().to_json(), J(R"({"roles":{"editor":{"allow":["core"]}}})"));
}

TEST(ToolPolicy, ProblemsHavePointers) {
  auto p = ToolPolicy::parse(
      J(R"({"allow":"core","deny":[1],"x":1,"roles":{"boss":{},"editor":{"roles":{}}}})"));
  ASSERT_FALSE(p.ok());
  std::set<std::string> at;
  for (const auto& d : p.status().details()) at.insert(d.path);
  EXPECT_EQ(at, (std::set<std::string>{"/tools/allow", "/tools/deny/0", "/tools/x",
                                       "/tools/roles/boss", "/tools/roles/editor/roles"}))
      << p.status().to_string();
}

// ---- $concat -----------------------------------------------------------------

TEST(Concat, JoinsPartsAndResolvesSecretsInside) {
  std::vector<std::string> values;
  auto lookup = [](const std::string& name) -> Result<std::optional<std::string>> {
    if (name == "TOKEN") return std::optional<std::string>("s3cr3t");
    return std::optional<std::string>();
  };
  const json params = J(R"({"headers":{"Authorization":{"$concat":["Bearer ",{"$secret":"TOKEN"}]}},
                            "url":{"$concat":["http://h/?n=",5,"&b=",true]}})");
  EXPECT_TRUE(has_concat(params));
  EXPECT_TRUE(has_secret_marker(params));
  auto r = resolve_secrets(params, lookup, &values);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value()["headers"]["Authorization"], "Bearer s3cr3t");
  EXPECT_EQ(r.value()["url"], "http://h/?n=5&b=true");
  EXPECT_EQ(values, std::vector<std::string>{"s3cr3t"});
  // What views show: the marker redacted, never the joined string.
  EXPECT_EQ(redact(params)["headers"]["Authorization"], J(R"({"$concat":["Bearer ","***"]})"));
  auto bad = resolve_secrets(J(R"({"$concat":["a",{"x":1}]})"), lookup, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "expression_error");
  EXPECT_NE(bad.status().message().find("part 1 is object"), std::string::npos);
  auto missing = resolve_secrets(J(R"({"$concat":[{"$secret":"NOPE"}]})"), lookup, nullptr);
  EXPECT_EQ(missing.status().code(), "secret_not_found");
}

// ---- flows against schemas ---------------------------------------------------

std::vector<ToolSpec> builtin_specs() {
  return {http_tool_spec()};
}

TEST(FlowSchemas, StaticProblemsAtStoreTimeWithPointers) {
  const json flow = J(R"({"id":"f","steps":[{"id":"a","type":"action","config":{
      "tool_id":"http","action":"request",
      "parameters":{"url":7,"method":"FETCH","headers":{"A":{"$secret":"S"},"B":[1]},
                    "timeout_ms":{"$ref":"input.t"},"extra":1}}}]})");
  auto parsed = parse_flow(flow, ParseOptions{builtin_specs()});
  ASSERT_FALSE(parsed.ok());
  std::set<std::string> at;
  for (const auto& d : parsed.status().details()) at.insert(d.path);
  EXPECT_EQ(at, (std::set<std::string>{
                    "/steps/0/config/parameters/url", "/steps/0/config/parameters/method",
                    "/steps/0/config/parameters/headers/B", "/steps/0/config/parameters/extra"}))
      << parsed.status().to_string();
  // A stored definition loads even if it no longer fits (the schema changed).
  ParseOptions stored{builtin_specs(), true};
  auto loaded = parse_flow(flow, stored);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_NE(loaded.value()->locate("a")->step->input_schema, nullptr);
  // ... and so does one naming a tool that is gone (a removed MCP server).
  json gone = flow;
  gone["steps"][0]["config"]["tool_id"] = "mcp:gone";
  EXPECT_TRUE(parse_flow(gone, stored).ok());
  EXPECT_FALSE(parse_flow(gone, ParseOptions{builtin_specs()}).ok());
}

// A step without retry_config gets its action's default retry policy (and
// default timeout); one with retry_config keeps its own.
TEST(FlowSchemas, AnActionsDefaultsApplyWhereTheStepSaysNothing) {
  ActionSpec a("get");
  a.default_retry.max_attempts = 4;
  a.default_retry.initial_delay_ms = 250;
  a.default_timeout_ms = 1500;
  std::vector<ToolSpec> tools{ToolSpec{"mcp:x", {a}}};
  auto plain = parse_flow(J(R"({"id":"f","steps":[{"id":"a","type":"action",
      "config":{"tool_id":"mcp:x","action":"get"}}]})"),
                          ParseOptions{tools});
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  const Step* step = plain.value()->locate("a")->step;
  EXPECT_EQ(step->retry.max_attempts, 4u);
  EXPECT_EQ(step->retry.initial_delay_ms, 250);
  EXPECT_EQ(step->timeout_ms, 1500);
  auto own = parse_flow(J(R"({"id":"f","steps":[{"id":"a","type":"action",
      "retry_config":{"max_attempts":2},"config":{"tool_id":"mcp:x","action":"get",
      "timeout_ms":100}}]})"),
                        ParseOptions{tools});
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  step = own.value()->locate("a")->step;
  EXPECT_EQ(step->retry.max_attempts, 2u);
  EXPECT_EQ(step->timeout_ms, 100);
}

// ---- the engine: tenant tools at run time, run-time refusals -------------------

class EchoTool final : public Tool {
 public:
  explicit EchoTool(std::string id) : id_(std::move(id)) {}
  ToolSpec spec() const override {
    ActionSpec a("say");
    a.input_schema = J(R"({"type":"object","required":["text"],
                          "properties":{"text":{"type":"string"}}})");
    ToolSpec s{id_, {a}};
    s.kind = "worker";
    return s;
  }
  ToolResult invoke(const ToolCall& call) override {
    return ToolResult::success(json{{"said", call.parameters.value("text", "")}});
  }

 private:
  std::string id_;
};

struct EngineFixture : ::testing::Test {
  testing::TempDir dir;
  std::unique_ptr<Engine> engine;
  void SetUp() override {
    EngineOptions o;
    o.data_dir = dir.str();
    o.partitions = 1;
    o.scheduler_threads = 2;
    auto e = Engine::open(o);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine = std::move(e.value());
  }
  bool has_tool(const std::string& tenant, const std::string& id) {
    for (const auto& t : engine->tool_specs(tenant)) {
      if (t.id == id) return true;
    }
    return false;
  }
  ExecutionResult run(const std::string& tenant, const std::string& flow, json input) {
    RunRequest r;
    r.tenant = tenant;
    r.flow_id = flow;
    r.input = std::move(input);
    auto id = engine->start_sync(std::move(r));
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    if (!id.ok()) return {};
    auto done = engine->wait(id.value(), std::chrono::seconds(10));
    EXPECT_TRUE(done.ok()) << done.status().to_string();
    return done.ok() ? done.value() : ExecutionResult{};
  }
};

TEST_F(EngineFixture, EveryBuiltinActionHasAValidSchema) {
  size_t actions = 0;
  for (const ToolSpec& t : engine->tool_specs()) {
    EXPECT_FALSE(t.description.empty()) << t.id;
    for (const auto& a : t.actions) {
      std::vector<Problem> p;
      check_schema(a.input_schema, "/in", p);
      check_schema(a.output_schema, "/out", p);
      EXPECT_TRUE(p.empty()) << t.id << "." << a.name << ": " << paths(p);
      EXPECT_FALSE(a.output_schema.empty()) << t.id << "." << a.name;
      EXPECT_FALSE(a.description.empty()) << t.id << "." << a.name;
      ++actions;
    }
  }
  EXPECT_GE(actions, 4u);  // core's four at least
}

const char* kSayFlow = R"({"id":"say","steps":[{"id":"a","type":"action","config":{
    "tool_id":"w:echo","action":"say","parameters":{"text":{"$ref":"input.text"}}}}],
    "output":{"said":{"$ref":"a.said"}}})";

TEST_F(EngineFixture, ATenantToolIsAddedAndRemovedWithoutARestart) {
  EXPECT_FALSE(engine->put_flow("t1", J(kSayFlow)).ok());  // not registered yet
  ASSERT_TRUE(engine->add_tool("t1", std::make_shared<EchoTool>("w:echo")).is_ok());
  EXPECT_TRUE(has_tool("t1", "w:echo"));
  EXPECT_FALSE(has_tool("t2", "w:echo"));  // another tenant does not see it
  EXPECT_FALSE(engine->put_flow("t2", J(kSayFlow)).ok());
  EXPECT_FALSE(engine->add_tool("t1", std::make_shared<EchoTool>("core")).is_ok());  // built-in id
  ASSERT_TRUE(engine->put_flow("t1", J(kSayFlow)).ok());
  auto ok = run("t1", "say", {{"text", "hi"}});
  EXPECT_EQ(ok.status, "completed") << ok.error.dump();
  EXPECT_EQ(ok.output["said"], "hi");
  // A $ref result that does not fit the schema fails before the tool runs.
  auto bad = run("t1", "say", {{"text", 5}});
  EXPECT_EQ(bad.status, "failed");
  EXPECT_EQ(bad.error.value("code", ""), "invalid_parameters") << bad.error.dump();
  EXPECT_NE(bad.error.value("message", "").find("/text must be a string"), std::string::npos)
      << bad.error.dump();
  // Removed: the stored flow still loads; its calls fail as unknown_tool.
  ASSERT_TRUE(engine->remove_tool("t1", "w:echo").is_ok());
  EXPECT_FALSE(has_tool("t1", "w:echo"));
  auto gone = run("t1", "say", {{"text", "hi"}});
  EXPECT_EQ(gone.status, "failed");
  EXPECT_EQ(gone.error.value("code", ""), "unknown_tool") << gone.error.dump();
}

// A registration's handler turns it into tools: stored ones are handed to
// the handler when it is set (so they survive a restart), later puts and
// deletes as they happen.
TEST_F(EngineFixture, ToolRegistrationsDriveTheirKindsHandler) {
  ToolRegistration r{"t1", "worker", "w1", json{{"tool", "w:echo"}}, 7};
  ASSERT_TRUE(engine->put_tool_registration(r).is_ok());  // before any handler: just stored
  std::vector<std::pair<std::string, bool>> calls;
  auto handler = [&](const ToolRegistration& reg, bool deleted) {
    calls.emplace_back(reg.tenant + "/" + reg.id, deleted);
    const std::string tool = reg.definition.is_object() ? reg.definition.value("tool", "") : "";
    if (deleted) {
      engine->remove_tool(reg.tenant, "w:echo");
    } else {
      engine->add_tool(reg.tenant, std::make_shared<EchoTool>(tool));
    }
  };
  engine->watch_tool_registrations("worker", handler);
  ASSERT_EQ(calls.size(), 1u) << "a stored registration was not handed to the new handler";
  EXPECT_EQ(calls[0], std::make_pair(std::string("t1/w1"), false));
  EXPECT_TRUE(has_tool("t1", "w:echo"));
  ASSERT_TRUE(engine->put_flow("t1", J(kSayFlow)).ok());

  ToolRegistration other{"t1", "mcp", "m1", json::object(), 7};
  ASSERT_TRUE(engine->put_tool_registration(other).is_ok());
  EXPECT_EQ(calls.size(), 1u) << "another kind's registration reached the worker handler";

  ASSERT_TRUE(engine->delete_tool_registration("t1", "worker", "w1").is_ok());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1], std::make_pair(std::string("t1/w1"), true));
  EXPECT_FALSE(has_tool("t1", "w:echo"));
  EXPECT_EQ(engine->delete_tool_registration("t1", "worker", "w1").code(), "not_found");
  EXPECT_EQ(calls.size(), 2u);
  auto listed = engine->tool_registrations("t1", "mcp");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().updated_ms, 7);
}

// A tenant tool whose call blocks until it is cancelled (or 10 s pass).
class BlockingTool final : public Tool {
 public:
  ToolSpec spec() const override { return ToolSpec{"w:block", {ActionSpec("wait")}}; }
  ToolResult invoke(const ToolCall& call) override {
    std::unique_lock lock(mu_);
    started_ = call.idempotency_key;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(10),
                 [&] { return cancelled_ == call.idempotency_key; });
    return ToolResult::success(json::object());
  }
  void cancel(const std::string& key) override {
    std::lock_guard lock(mu_);
    cancelled_ = key;
    cv_.notify_all();
  }
  std::string wait_started() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !started_.empty(); });
    return started_;
  }
  std::string wait_cancelled() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !cancelled_.empty(); });
    return cancelled_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string started_;
  std::string cancelled_;
};

// Cancelling an execution asks its tenant tool's call in flight to stop
// (an MCP server gets notifications/cancelled), with that call's key.
TEST_F(EngineFixture, CancellingAnExecutionCancelsItsToolCallInFlight) {
  auto tool = std::make_shared<BlockingTool>();
  ASSERT_TRUE(engine->add_tool("t1", tool).is_ok());
  ASSERT_TRUE(engine
                  ->put_flow("t1", J(R"({"id":"blk","steps":[{"id":"a","type":"action",
      "config":{"tool_id":"w:block","action":"wait"}}]})"))
                  .ok());
  RunRequest r;
  r.tenant = "t1";
  r.flow_id = "blk";
  auto id = engine->start_sync(std::move(r));
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  const std::string key = tool->wait_started();
  ASSERT_FALSE(key.empty()) << "the tool was never called";
  EXPECT_EQ(key.rfind(id.value() + "/", 0), 0u) << key;
  ASSERT_TRUE(engine->cancel(id.value(), "test").is_ok());
  EXPECT_EQ(tool->wait_cancelled(), key) << "the call in flight was not asked to stop";
  auto done = engine->wait(id.value(), std::chrono::seconds(10));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "cancelled");
}

TEST_F(EngineFixture, ARunTimePolicyRefusalFailsTheStep) {
  ASSERT_TRUE(engine
                  ->put_flow("t1", J(R"({"id":"e","steps":[{"id":"a","type":"action","config":{
                  "tool_id":"core","action":"echo","parameters":{"x":1}}}]})"))
                  .ok());
  v1::Tenant t;
  t.set_id("t1");
  t.set_status("active");
  t.set_tool_policy_json(R"({"deny":["core.echo"]})");
  ASSERT_TRUE(engine->put_tenant(t).is_ok());
  auto refused = run("t1", "e", json::object());
  EXPECT_EQ(refused.status, "failed");
  EXPECT_EQ(refused.error.value("code", ""), "permission_denied") << refused.error.dump();
  t.set_tool_policy_json("");
  ASSERT_TRUE(engine->put_tenant(t).is_ok());
  EXPECT_EQ(run("t1", "e", json::object()).status, "completed");
}

}  // namespace
}  // namespace yantra
