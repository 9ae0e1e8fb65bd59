// The router in-process, without a server or an engine: what a path and a
// method match (captures, 404 against 405 and its Allow list), which query
// parameters a route takes (declared from an OpenAPI document, the rest
// refused with 400), and what happens when a handler throws (logged with the
// request id and route, answered 500 once, counted).
#include "api/router.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/errors.hpp"
#include "base/metrics.hpp"

namespace yantra::api {
namespace {

using json = nlohmann::json;

// A router whose handlers answer with their own name.
Router make_router() {
  Router r;
  auto named = [](std::string name) {
    return [name](const std::shared_ptr<RouteCtx>& ctx) {
      HttpResponse res;
      res.body = name;
      ctx->respond(std::move(res));
    };
  };
  r.add("GET", "/api/v1/flows", Access::kViewer, named("list"));
  r.add("POST", "/api/v1/flows", Access::kEditor, named("create"));
  r.add("GET", "/api/v1/flows/{id}", Access::kViewer, named("get"));
  r.add("DELETE", "/api/v1/flows/{id}", Access::kEditor, named("delete"));
  r.add("POST", "/api/v1/flows/{id}/run", Access::kEditor, named("run"));
  r.add("POST", "/api/v1/executions/{id}/signals/{name}", Access::kEditor, named("signal"));
  r.add("GET", "/healthz", Access::kPublic, named("health"));
  return r;
}

TEST(RouterTest, LiteralAndCapturedSegments) {
  const Router r = make_router();
  auto m = r.match("GET", "/api/v1/flows");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/v1/flows");
  EXPECT_TRUE(m.params.empty());

  m = r.match("POST", "/api/v1/flows/order-42/run");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/v1/flows/{id}/run");
  EXPECT_EQ(m.params.at("id"), "order-42");

  // Two captures; the path is already percent-decoded by the server.
  m = r.match("POST", "/api/v1/executions/ex_1/signals/go ahead");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params.at("id"), "ex_1");
  EXPECT_EQ(m.params.at("name"), "go ahead");
  EXPECT_EQ(m.route->access, Access::kEditor);
}

TEST(RouterTest, EmptySegmentsAreIgnored) {
  const Router r = make_router();
  for (const std::string path : {"/api/v1/flows/", "//api/v1//flows", "api/v1/flows"}) {
    auto m = r.match("GET", path);
    ASSERT_NE(m.route, nullptr) << path;
    EXPECT_EQ(m.route->pattern, "/api/v1/flows") << path;
  }
}

TEST(RouterTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  const Router r = make_router();
  auto m = r.match("GET", "/api/v1/nothing");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "");  // 404: nothing matches the path

  // A capture matches one segment only: more segments is another path.
  m = r.match("GET", "/api/v1/flows/a/b");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "");

  m = r.match("PUT", "/api/v1/flows/f1");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, DELETE");  // 405, in registration order

  m = r.match("DELETE", "/api/v1/flows");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, POST");

  // Methods are matched exactly (the server upper-cases them).
  m = r.match("get", "/healthz");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET");
}

TEST(RouterTest, FirstRegisteredPatternWins) {
  Router r;
  r.add("GET", "/things/{id}", Access::kViewer, [](const std::shared_ptr<RouteCtx>&) {});
  r.add("GET", "/things/special", Access::kAdmin, [](const std::shared_ptr<RouteCtx>&) {});
  auto m = r.match("GET", "/things/special");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/things/{id}");
  EXPECT_EQ(m.params.at("id"), "special");
}

TEST(RouterTest, SetActionAndSetQueryNeedAnExistingRoute) {
  Router r = make_router();
  EXPECT_TRUE(r.set_action("POST", "/api/v1/flows", "flow.create"));
  EXPECT_FALSE(r.set_action("PUT", "/api/v1/flows", "flow.create"));
  EXPECT_FALSE(r.set_action("POST", "/api/v1/flow", "flow.create"));
  EXPECT_EQ(r.match("POST", "/api/v1/flows").route->action, "flow.create");
  EXPECT_TRUE(r.set_query("GET", "/api/v1/flows", {"limit"}));
  EXPECT_FALSE(r.set_query("GET", "/api/v1/nope", {"limit"}));
}

HttpRequest with_query(std::vector<std::pair<std::string, std::string>> query) {
  HttpRequest req;
  req.query = std::move(query);
  return req;
}

TEST(RouterTest, UndeclaredQueryParametersAreRefused) {
  Router r = make_router();
  ASSERT_TRUE(r.set_query("GET", "/api/v1/flows", {"limit", "cursor"}));
  ASSERT_TRUE(r.set_query("GET", "/api/v1/flows/{id}", {}));
  const Route& list = *r.match("GET", "/api/v1/flows").route;
  EXPECT_TRUE(check_query(list, with_query({})).is_ok());
  EXPECT_TRUE(check_query(list, with_query({{"limit", "5"}, {"cursor", "x"}})).is_ok());
  EXPECT_TRUE(check_query(list, with_query({{"limit", "5"}, {"limit", "6"}})).is_ok());

  Status bad = check_query(list, with_query({{"limit", "5"}, {"limt", "5"}}));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.code(), "invalid_parameter");
  EXPECT_EQ(bad.message(),
            "unknown query parameter 'limt' (GET /api/v1/flows takes: limit, cursor)");
  EXPECT_EQ(http_status_for(bad), 400);
  EXPECT_EQ(error_response(bad).status, 400);

  // Declared with none: every parameter is refused.
  const Route& one = *r.match("GET", "/api/v1/flows/{id}").route;
  bad = check_query(one, with_query({{"version", "1"}}));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.message(), "unknown query parameter 'version' (GET /api/v1/flows/{id} takes none)");

  // A long name is quoted, but not whole.
  bad = check_query(one, with_query({{std::string(1000, 'q'), ""}}));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_LT(bad.message().size(), 200u);

  // Not declared: anything goes (what a webhook needs).
  const Route& run = *r.match("POST", "/api/v1/flows/f/run").route;
  EXPECT_TRUE(check_query(run, with_query({{"anything", "1"}})).is_ok());
}

TEST(RouterTest, QueryParametersDeclaredFromOpenApi) {
  Router r = make_router();
  const json doc = {
      {"openapi", "3.0.3"},
      {"components", {{"parameters", {{"Limit", {{"name", "limit"}, {"in", "query"}}}}}}},
      {"paths",
       {{"/api/v1/flows",
         {{"get", {{"parameters", {{{"$ref", "#/components/parameters/Limit"}}}}}},
          {"post", {{"summary", "create"}}}}},
        {"/api/v1/flows/{id}",
         {{"parameters", {{{"name", "id"}, {"in", "path"}}}},
          {"get", {{"parameters", {{{"name", "version"}, {"in", "query"}}}}}},
          {"delete", json::object()}}},
        {"/api/v1/flows/{id}/run",
         {{"post",
           {{"x-yantra-any-query", true},
            {"parameters", {{{"name", "wait_ms"}, {"in", "query"}}}}}}}}}}};
  ASSERT_TRUE(declare_query_params(r, doc.dump()).is_ok());

  auto query_of = [&](const std::string& method, const std::string& path) {
    return r.match(method, path).route->query;
  };
  EXPECT_EQ(query_of("GET", "/api/v1/flows"), std::vector<std::string>{"limit"});
  EXPECT_EQ(query_of("POST", "/api/v1/flows"), std::vector<std::string>{});
  // The path item's parameters are "in": "path": no query parameter.
  EXPECT_EQ(query_of("GET", "/api/v1/flows/x"), std::vector<std::string>{"version"});
  EXPECT_EQ(query_of("DELETE", "/api/v1/flows/x"), std::vector<std::string>{});
  EXPECT_FALSE(query_of("POST", "/api/v1/flows/x/run").has_value());
  // Routes the document does not describe stay undeclared.
  EXPECT_FALSE(query_of("GET", "/healthz").has_value());
}

TEST(RouterTest, OpenApiThatDriftedFromTheRoutesIsAnError) {
  Router r = make_router();
  const json extra = {{"paths", {{"/api/v1/gone", {{"get", json::object()}}}}}};
  Status s = declare_query_params(r, extra.dump());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("GET /api/v1/gone"), std::string::npos) << s.message();

  const json bad_ref = {
      {"paths",
       {{"/api/v1/flows",
         {{"get", {{"parameters", {{{"$ref", "#/components/parameters/X"}}}}}}}}}}};
  s = declare_query_params(r, bad_ref.dump());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("#/components/parameters/X"), std::string::npos) << s.message();

  EXPECT_FALSE(declare_query_params(r, "not json").is_ok());
  EXPECT_FALSE(declare_query_params(r, "{}").is_ok());
}

// --- handler exceptions ------------------------------------------------------

// Captures what the default logger writes while a test runs.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)) {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::vector<std::string> lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct Answers {
  std::vector<HttpResponse> all;
};

std::shared_ptr<RouteCtx> make_ctx(const std::string& request_id, Answers& answers) {
  auto ctx = std::make_shared<RouteCtx>();
  ctx->request_id = request_id;
  ctx->respond = [&answers](HttpResponse r) { answers.all.push_back(std::move(r)); };
  return ctx;
}

uint64_t handler_exceptions(const std::string& route) {
  return metrics::global()
      .counter("yantra_http_handler_exceptions_total", "", {{"route", route}})
      .value();
}

TEST(RunRouteTest, ExceptionIsLoggedWithRequestIdAndRouteAndAnswered500) {
  LogCapture log;
  Router r;
  r.add("POST", "/api/v1/boom/{id}", Access::kEditor, [](const std::shared_ptr<RouteCtx>&) {
    throw std::runtime_error("disk on fire at /var/lib/secret");
  });
  const uint64_t before = handler_exceptions("/api/v1/boom/{id}");
  Answers answers;
  auto ctx = make_ctx("req_test_1", answers);
  run_route(*r.match("POST", "/api/v1/boom/7").route, ctx);

  ASSERT_EQ(answers.all.size(), 1u);
  EXPECT_EQ(answers.all[0].status, 500);
  const json body = json::parse(answers.all[0].body);
  EXPECT_EQ(body["error"]["code"], "internal");
  const std::string message = body["error"]["message"];
  EXPECT_NE(message.find("req_test_1"), std::string::npos) << message;
  EXPECT_EQ(message.find("disk on fire"), std::string::npos) << "internals leaked: " << message;

  const auto lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("[error]"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("req_test_1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("POST /api/v1/boom/{id}"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("disk on fire"), std::string::npos) << lines[0];
  EXPECT_EQ(handler_exceptions("/api/v1/boom/{id}") - before, 1u);
}

TEST(RunRouteTest, NonStandardExceptionIsCaughtToo) {
  LogCapture log;
  Router r;
  r.add("GET", "/odd", Access::kPublic, [](const std::shared_ptr<RouteCtx>&) { throw 42; });
  Answers answers;
  run_route(*r.match("GET", "/odd").route, make_ctx("req_odd", answers));
  ASSERT_EQ(answers.all.size(), 1u);
  EXPECT_EQ(answers.all[0].status, 500);
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_NE(log.lines()[0].find("req_odd"), std::string::npos);
}

// The answer went out (and was counted and audited) before the throw: the
// exception is logged, but the client gets no second answer and the audit
// no second record.
TEST(RunRouteTest, ExceptionAfterTheAnswerIsLoggedNotAnsweredTwice) {
  LogCapture log;
  Router r;
  r.add("PUT", "/late", Access::kEditor, [](const std::shared_ptr<RouteCtx>& ctx) {
    HttpResponse ok;
    ok.status = 201;
    ctx->respond(std::move(ok));
    throw std::logic_error("after the fact");
  });
  Answers answers;
  run_route(*r.match("PUT", "/late").route, make_ctx("req_late", answers));
  ASSERT_EQ(answers.all.size(), 1u);
  EXPECT_EQ(answers.all[0].status, 201);
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_NE(log.lines()[0].find("after the fact"), std::string::npos);
}

TEST(RunRouteTest, HandlerThatAnswersIsPassedThroughUnlogged) {
  LogCapture log;
  const Router r = make_router();
  Answers answers;
  auto ctx = make_ctx("req_ok", answers);
  run_route(*r.match("GET", "/healthz").route, ctx);
  ASSERT_EQ(answers.all.size(), 1u);
  EXPECT_EQ(answers.all[0].body, "health");
  EXPECT_TRUE(ctx->answered.load());
  EXPECT_TRUE(log.lines().empty());
}

}  // namespace
}  // namespace yantra::api
