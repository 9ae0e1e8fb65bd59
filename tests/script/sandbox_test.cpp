// script/sandbox.hpp against real Duktape: what a step's script can return,
// how it fails (time cap, memory cap, thrown errors with their line, syntax
// errors, ES2015 syntax Duktape lacks) and what it cannot reach (the host).
#include <chrono>

#include <gtest/gtest.h>

#include "script/sandbox.hpp"

namespace yantra::script {
namespace {

using json = nlohmann::json;

std::shared_ptr<const Program> must_compile(std::string_view src) {
  Compiled c = compile(src);
  EXPECT_NE(c.program, nullptr) << c.error.message;
  return c.program;
}

Outcome eval(std::string_view src, const json& args = json::object(), Limits limits = {}) {
  auto p = must_compile(src);
  if (p == nullptr) return {};
  return run(*p, args, limits);
}

TEST(Sandbox, ReturnsEveryJsonType) {
  EXPECT_EQ(eval("return null;").value, json(nullptr));
  EXPECT_EQ(eval("return true;").value, json(true));
  EXPECT_EQ(eval("return 42;").value, json(42));
  EXPECT_EQ(eval("return -0.5;").value, json(-0.5));
  EXPECT_EQ(eval("return 'h\\u00e9\\ud83d\\ude00';").value, json("hé😀"));
  EXPECT_EQ(eval("return [1, 'a', [null]];").value, json::parse(R"([1,"a",[null]])"));
  EXPECT_EQ(eval("return {a: {b: [true]}, c: undefined};").value,
            json::parse(R"({"a":{"b":[true]}})"));
  EXPECT_EQ(eval("return new Date(0);").value, json("1970-01-01T00:00:00.000Z"));
  // No return: undefined, recorded as null.
  Outcome none = eval("var x = 1;");
  EXPECT_TRUE(none.ok);
  EXPECT_EQ(none.value, json(nullptr));
}

TEST(Sandbox, SeesItsArguments) {
  json args = {{"input", {{"a", 41}}},
               {"steps", {{"fetch", {{"body", "x"}}}}},
               {"item", "it"},
               {"index", 3}};
  Outcome o =
      eval("return {total: input.a + 1, body: steps.fetch.body, item: item, index: index};", args);
  ASSERT_TRUE(o.ok) << o.error.message;
  EXPECT_EQ(o.value, json::parse(R"({"total":42,"body":"x","item":"it","index":3})"));
  // Outside a loop item and index are undefined.
  EXPECT_EQ(eval("return [typeof item, typeof index];", {{"input", 1}}).value,
            json::parse(R"(["undefined","undefined"])"));
}

TEST(Sandbox, NonJsonResultsAreClearErrors) {
  for (const char* src :
       {"return function () {};", "return {a: [1, function () {}]};", "return NaN;",
        "return {x: 1 / 0};", "return Symbol('s');", "var a = {}; a.self = a; return a;"}) {
    Outcome o = eval(src);
    EXPECT_FALSE(o.ok) << src;
    EXPECT_EQ(o.error.code, kBadResult) << src;
  }
  Outcome f = eval("return {a: [1, function () {}]};");
  EXPECT_NE(f.error.message.find("the value at /a/1 is a function"), std::string::npos)
      << f.error.message;
}

TEST(Sandbox, TimeCapStopsALoop) {
  auto t0 = std::chrono::steady_clock::now();
  Outcome o = eval("for (;;) {}", json::object(), Limits{50, 16u << 20});
  auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code, kTimeout);
  EXPECT_NE(o.error.message.find("50 ms"), std::string::npos) << o.error.message;
  EXPECT_GE(ms, 50);
  EXPECT_LT(ms, 500);
  // Catching the timeout does not keep a script alive.
  Outcome c =
      eval("for (;;) { try { for (;;) {} } catch (e) {} }", json::object(), Limits{30, 16u << 20});
  EXPECT_EQ(c.error.code, kTimeout);
}

TEST(Sandbox, MemoryCapStopsAHog) {
  Outcome o = eval("var a = []; for (;;) { a.push('xxxxxxxxxxxxxxxx' + a.length); }",
                   json::object(), Limits{5000, 4u << 20});
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code, kMemory) << o.error.message;
  EXPECT_NE(o.error.message.find("4 MiB"), std::string::npos) << o.error.message;
  // The same script gets further with more memory (the cap is per call).
  Outcome small = eval("var s = new Array(100000).join('x'); return s.length;", json::object(),
                       Limits{1000, 4u << 20});
  EXPECT_TRUE(small.ok) << small.error.message;
}

TEST(Sandbox, ErrorsCarryTheirLine) {
  Outcome o = eval("var a = 1;\nvar b = 2;\nthrow new TypeError('bad ' + a);");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error.code, kRuntimeError);
  EXPECT_EQ(o.error.line, 3);
  EXPECT_NE(o.error.message.find("TypeError: bad 1"), std::string::npos) << o.error.message;
  EXPECT_NE(o.error.message.find("line 3"), std::string::npos) << o.error.message;
  Outcome ref = eval("\n\nreturn input.missing.field;", {{"input", json::object()}});
  EXPECT_EQ(ref.error.code, kRuntimeError);
  EXPECT_EQ(ref.error.line, 3) << ref.error.message;
  Outcome str = eval("throw 'plain';");
  EXPECT_EQ(str.error.code, kRuntimeError);
  EXPECT_EQ(str.error.message, "plain");
}

TEST(Sandbox, NoHostAccess) {
  Outcome o = eval(
      "return [typeof require, typeof print, typeof alert, typeof Duktape, typeof module,"
      " typeof process, typeof setTimeout, typeof XMLHttpRequest, typeof console];");
  ASSERT_TRUE(o.ok) << o.error.message;
  for (const auto& t : o.value) EXPECT_EQ(t, "undefined") << o.value.dump();
  // Globals a call sets die with its heap.
  auto p = must_compile("var seen = typeof leaked; leaked = 1; this.leaked2 = 2; return seen;");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(run(*p, json::object(), {}).value, "undefined");
  EXPECT_EQ(run(*p, json::object(), {}).value, "undefined");
}

TEST(Sandbox, SyntaxErrorsCarryTheirLine) {
  Compiled c = compile("var a = 1;\nvar b = ;\n");
  ASSERT_EQ(c.program, nullptr);
  EXPECT_EQ(c.error.code, kSyntaxError);
  EXPECT_EQ(c.error.line, 2) << c.error.message;
  // A body that closes the wrapper early is a syntax error, not ignored.
  EXPECT_EQ(compile("return 1; } junk(").program, nullptr);
}

TEST(Sandbox, Es2015SyntaxIsNamed) {
  struct Case {
    const char* src;
    const char* what;
    int line, column;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"var f = x => x + 1;", "arrow functions", 1, 11},
           {"var a = 1;\n  let b = 2;", "let declarations", 2, 3},
           {"return `a${input}`;", "template strings", 1, 8},
           {"var {a, b} = input;", "destructuring", 1, 1},
           {"return [...input];", "spread", 1, 9},
           {"class A {}", "classes", 1, 1},
           {"function* g() {}", "generators", 1, 1},
           {"for (var x of input) {}", "for...of", 1, 1},
       }) {
    Compiled r = compile(c.src);
    EXPECT_EQ(r.program, nullptr) << c.src;
    EXPECT_EQ(r.error.code, kSyntaxError) << c.src;
    EXPECT_NE(r.error.message.find(c.what), std::string::npos) << c.src << ": " << r.error.message;
    EXPECT_NE(r.error.message.find("not supported"), std::string::npos) << r.error.message;
    EXPECT_EQ(r.error.line, c.line) << c.src;
    EXPECT_EQ(r.error.column, c.column) << c.src;
  }
  // What Duktape has of ES2015 compiles.
  for (const char* ok :
       {"const a = 1; return a;", "return 2 ** 10;", "return Object.assign({}, input);",
        "return typeof Symbol('x');", "var s = '=> ... `'; return s;", "return /=>/.test('a');"}) {
    EXPECT_NE(compile(ok).program, nullptr) << ok << ": " << compile(ok).error.message;
  }
}

}  // namespace
}  // namespace yantra::script
