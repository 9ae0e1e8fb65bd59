// Tests of the $expr language, $ref paths, condition operators and parameter templates.
#include "runtime/expr.hpp"

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/template.hpp"

namespace yantra::expr {
namespace {

class MapScope final : public Scope {
 public:
  MapScope() = default;
  explicit MapScope(std::map<std::string, json, std::less<>> values) : values_(std::move(values)) {}
  const json* lookup(std::string_view name) const override {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, json, std::less<>> values_;
};

const MapScope& TestScope() {
  static const MapScope scope({
      {"input", json::parse(R"({
          "name": "Ada", "count": 3, "price": 2.5, "flag": true, "none": null,
          "items": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "tags": ["x", "y"], "obj": {"k": 1, "0": "zero"}, "text": "héllo wörld",
          "big": 9223372036854775807, "neg": -5, "empty": "", "list": [3, 1.5, 7, -2]
      })")},
      {"item", "current"},
      {"index", 2},
      {"fetch-user", json{{"id", 42}}},
      {"len", "shadowed"},
  });
  return scope;
}

// Parses and evaluates, failing the test on a parse error.
json Eval(std::string_view source, const Scope& scope = TestScope()) {
  auto e = Expression::parse(source);
  EXPECT_TRUE(e.ok()) << source << ": " << e.status().to_string();
  if (!e.ok()) return "<parse error>";
  auto v = e->eval(scope);
  EXPECT_TRUE(v.ok()) << source << ": " << v.status().to_string();
  if (!v.ok()) return "<eval error>";
  return *v;
}

// The evaluation error message (the expression must parse).
std::string EvalError(std::string_view source, const Scope& scope = TestScope()) {
  auto e = Expression::parse(source);
  EXPECT_TRUE(e.ok()) << source << ": " << e.status().to_string();
  if (!e.ok()) return "<parse error>";
  auto v = e->eval(scope);
  EXPECT_FALSE(v.ok()) << source << " evaluated to " << (v.ok() ? v->dump() : "");
  if (v.ok()) return "<no error>";
  EXPECT_EQ(v.status().code(), "expression_error");
  return v.status().message();
}

std::string ParseError(std::string_view source) {
  auto e = Expression::parse(source);
  EXPECT_FALSE(e.ok()) << source;
  if (e.ok()) return "<no error>";
  EXPECT_EQ(e.status().code(), "invalid_expression");
  return e.status().message();
}

// Exact JSON equality including the number representation (int vs double).
void ExpectSame(const json& actual, const json& expected, std::string_view what = "") {
  EXPECT_EQ(actual, expected) << what;
  EXPECT_EQ(actual.type(), expected.type())
      << what << ": " << actual.dump() << " vs " << expected.dump();
}

// --- Literals -------------------------------------------------------------------------------

TEST(ExprLiterals, Numbers) {
  ExpectSame(Eval("42"), json(std::int64_t{42}));
  ExpectSame(Eval("0"), json(std::int64_t{0}));
  ExpectSame(Eval("1.5"), json(1.5));
  ExpectSame(Eval("1.5e3"), json(1500.0));
  ExpectSame(Eval("2E-2"), json(0.02));
  ExpectSame(Eval("3e+2"), json(300.0));
  ExpectSame(Eval("9223372036854775807"), json(std::int64_t{9223372036854775807}));
  ExpectSame(Eval("18446744073709551615"), json(std::uint64_t{18446744073709551615u}));
  ExpectSame(Eval("18446744073709551616"), json(18446744073709551616.0));
  ExpectSame(Eval("-9223372036854775808"), json(std::numeric_limits<std::int64_t>::min()));
  ExpectSame(Eval("-2.5"), json(-2.5));
}

TEST(ExprLiterals, Strings) {
  EXPECT_EQ(Eval("'abc'"), "abc");
  EXPECT_EQ(Eval("\"abc\""), "abc");
  EXPECT_EQ(Eval("''"), "");
  EXPECT_EQ(Eval(R"('it\'s')"), "it's");
  EXPECT_EQ(Eval(R"("say \"hi\"")"), "say \"hi\"");
  EXPECT_EQ(Eval(R"("it's")"), "it's");
  EXPECT_EQ(Eval(R"('a\nb\tc\\d\/e\r')"), "a\nb\tc\\d/e\r");
  EXPECT_EQ(Eval(R"('\u00e9\u4e2D')"), "\xC3\xA9\xE4\xB8\xAD");
  EXPECT_EQ(Eval(R"('\ud83d\ude00')"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(Eval("'h\xC3\xA9'"), "h\xC3\xA9");
}

TEST(ExprLiterals, KeywordsAndArrays) {
  ExpectSame(Eval("true"), json(true));
  ExpectSame(Eval("false"), json(false));
  ExpectSame(Eval("null"), json(nullptr));
  EXPECT_EQ(Eval("[]"), json::array());
  EXPECT_EQ(Eval("[1, 'a', [true, null], 2.5]"), json::parse(R"([1, "a", [true, null], 2.5])"));
  EXPECT_EQ(Eval("[input.count, item, index + 1]"), json::parse(R"([3, "current", 3])"));
  EXPECT_EQ(Eval("  ( 1 )  "), 1);
}

// --- Names, members, indexes ----------------------------------------------------------------

TEST(ExprAccess, NamesMembersAndIndexes) {
  EXPECT_EQ(Eval("item"), "current");
  EXPECT_EQ(Eval("input.name"), "Ada");
  EXPECT_EQ(Eval("input.items[1].name"), "b");
  EXPECT_EQ(Eval("input.items[index - 1].id"), 2);
  EXPECT_EQ(Eval("input['name']"), "Ada");
  EXPECT_EQ(Eval("input.obj['0']"), "zero");
  EXPECT_EQ(Eval("input.items[1.0].id"), 2);
  EXPECT_EQ(Eval("[10, 20, 30][2]"), 30);
  EXPECT_EQ(Eval("len"), "shadowed");  // a name, not a call
  EXPECT_EQ(Eval("input.items[0]"), json::parse(R"({"id": 1, "name": "a"})"));
  // Member access on an owned value (the result of a call).
  EXPECT_EQ(Eval("split('a-b', '-')[1]"), "b");
  EXPECT_EQ(Eval("default(input.none, input.obj).k"), 1);
  EXPECT_EQ(Eval("[input.obj][0]['k']"), 1);
}

TEST(ExprAccess, KeywordsAsMemberNames) {
  MapScope scope({{"a", json::parse(R"({"in": 1, "null": 2, "true": 3, "false": 4})")}});
  EXPECT_EQ(Eval("a.in + a.null + a.true + a.false", scope), 10);
}

TEST(ExprAccess, MissingThingsAreNull) {
  for (const char* source : {
           "input.missing",
           "input.missing.deeper",
           "input.name.length",
           "input.items[10]",
           "input.items[-1]",
           "input.items[0.5]",
           "input.items['x']",
           "input.obj[0]",
           "input.name[0]",
           "input.none.x",
           "input.none[0]",
           "input.count.x",
           "[1, 2][5]",
       }) {
    ExpectSame(Eval(source), json(nullptr), source);
  }
}

TEST(ExprAccess, UnknownName) {
  EXPECT_EQ(EvalError("nope"), "unknown name 'nope'");
  EXPECT_EQ(EvalError("input.count + nope.x"), "unknown name 'nope'");
}

// --- Precedence -------------------------------------------------------------------------------

TEST(ExprPrecedence, Arithmetic) {
  EXPECT_EQ(Eval("1 + 2 * 3"), 7);
  EXPECT_EQ(Eval("(1 + 2) * 3"), 9);
  EXPECT_EQ(Eval("2 - 3 - 4"), -5);
  EXPECT_EQ(Eval("16 / 4 / 2"), 2);
  EXPECT_EQ(Eval("7 - 2 * 3 % 4"), 5);
  EXPECT_EQ(Eval("-2 * 3"), -6);
  EXPECT_EQ(Eval("-input.count * 2"), -6);
  EXPECT_EQ(Eval("- -3"), 3);
  EXPECT_EQ(Eval("10 - -3"), 13);
}

TEST(ExprPrecedence, LogicAndComparison) {
  EXPECT_EQ(Eval("true || false && false"), true);
  EXPECT_EQ(Eval("(true || false) && false"), false);
  EXPECT_EQ(Eval("!true || true"), true);
  EXPECT_EQ(Eval("!(true || true)"), false);
  EXPECT_EQ(Eval("1 + 2 == 3 && 2 * 2 == 4"), true);
  EXPECT_EQ(Eval("1 < 2 == 2 < 3"), true);    // (1 < 2) == (2 < 3)
  EXPECT_EQ(Eval("1 in [1] == true"), true);  // in binds tighter than ==
  EXPECT_EQ(Eval("!input.flag"), false);
  EXPECT_EQ(Eval("!input.items[0].id"), false);
  EXPECT_EQ(Eval("1 + 1 in [2]"), true);
  EXPECT_EQ(Eval("input.count > 2 && input.name == 'Ada' || false"), true);
  // Comparisons are left-associative: (1 < 2) < 3 compares a boolean.
  EXPECT_EQ(EvalError("1 < 2 < 3"), "cannot compare boolean and number with '<'");
}

// --- Arithmetic -------------------------------------------------------------------------------

TEST(ExprArithmetic, IntegersStayIntegers) {
  ExpectSame(Eval("2 + 3"), json(5));
  ExpectSame(Eval("2 - 5"), json(-3));
  ExpectSame(Eval("4 * 5"), json(20));
  ExpectSame(Eval("6 / 3"), json(2));
  ExpectSame(Eval("7 % 3"), json(1));
  ExpectSame(Eval("-7 % 3"), json(-1));
  ExpectSame(Eval("input.count * index"), json(6));
  ExpectSame(Eval("input.big - 1"), json(9223372036854775806));
  ExpectSame(Eval("input.big + 1"), json(std::uint64_t{9223372036854775808u}));
  ExpectSame(Eval("-9223372036854775808 / -1"), json(std::uint64_t{9223372036854775808u}));
}

TEST(ExprArithmetic, DoublesAndMixed) {
  ExpectSame(Eval("7 / 2"), json(3.5));
  ExpectSame(Eval("1 / 3"), json(1.0 / 3.0));
  ExpectSame(Eval("1.5 + 1"), json(2.5));
  ExpectSame(Eval("input.price * 2"), json(5.0));
  ExpectSame(Eval("0.1 + 0.2"), json(0.1 + 0.2));
  ExpectSame(Eval("7.5 % 2"), json(1.5));
  ExpectSame(Eval("-input.price"), json(-2.5));
  ExpectSame(Eval("1.0 - 1"), json(0.0));
}

TEST(ExprArithmetic, Errors) {
  EXPECT_EQ(EvalError("1 / 0"), "division by zero");
  EXPECT_EQ(EvalError("1 % 0"), "division by zero");
  EXPECT_EQ(EvalError("1.5 / 0"), "division by zero");
  EXPECT_EQ(EvalError("1 / 0.0"), "division by zero");
  EXPECT_EQ(EvalError("5.0 % 0"), "division by zero");
  EXPECT_EQ(EvalError("input.count / (index - 2)"), "division by zero");
  EXPECT_EQ(EvalError("18446744073709551615 + 1"), "integer overflow");
  EXPECT_EQ(EvalError("-9223372036854775808 - 18446744073709551615"), "integer overflow");
  EXPECT_EQ(EvalError("18446744073709551615 * 18446744073709551615"), "integer overflow");
  EXPECT_EQ(EvalError("1e308 * 10"), "number overflow");
  EXPECT_EQ(EvalError("'a' + 1"), "cannot apply '+' to string and number");
  EXPECT_EQ(EvalError("1 + 'a'"), "cannot apply '+' to number and string");
  EXPECT_EQ(EvalError("'a' * 2"), "cannot apply '*' to string and number");
  EXPECT_EQ(EvalError("null - 1"), "cannot apply '-' to null and number");
  EXPECT_EQ(EvalError("true + 1"), "cannot apply '+' to boolean and number");
  EXPECT_EQ(EvalError("[1] + [2]"), "cannot apply '+' to array and array");
  EXPECT_EQ(EvalError("-'a'"), "cannot negate string");
  EXPECT_EQ(EvalError("-input.none"), "cannot negate null");
}

TEST(ExprArithmetic, StringConcatenation) {
  EXPECT_EQ(Eval("'a' + 'b'"), "ab");
  EXPECT_EQ(Eval("input.name + ' ' + item"), "Ada current");
  EXPECT_EQ(Eval("'n=' + str(input.count)"), "n=3");
}

// --- Comparisons, in, logic -----------------------------------------------------------------

TEST(ExprComparison, Values) {
  EXPECT_EQ(Eval("1 == 1.0"), true);
  EXPECT_EQ(Eval("1 != 1.0"), false);
  EXPECT_EQ(Eval("input.count == 3.0"), true);
  EXPECT_EQ(Eval("[1, [2]] == [1.0, [2.0]]"), true);
  EXPECT_EQ(Eval("[1, 2] == [1, 2, 3]"), false);
  EXPECT_EQ(Eval("'a' == 'a'"), true);
  EXPECT_EQ(Eval("'1' == 1"), false);
  EXPECT_EQ(Eval("null == null"), true);
  EXPECT_EQ(Eval("input.missing == null"), true);
  EXPECT_EQ(Eval("0 == false"), false);
  EXPECT_EQ(Eval("'' == null"), false);
  EXPECT_EQ(Eval("input.obj == input.obj"), true);
  EXPECT_EQ(Eval("2 > 1.5"), true);
  EXPECT_EQ(Eval("2 >= 2.0"), true);
  EXPECT_EQ(Eval("2 <= 1"), false);
  EXPECT_EQ(Eval("-1 < 18446744073709551615"), true);
  EXPECT_EQ(Eval("9007199254740993 > 9007199254740992.0"), true);  // exact, not via double
  EXPECT_EQ(Eval("'abc' < 'abd'"), true);
  EXPECT_EQ(Eval("'b' > 'abc'"), true);
  EXPECT_EQ(Eval("'a' <= 'a'"), true);
}

TEST(ExprComparison, MixedTypesAreErrors) {
  EXPECT_EQ(EvalError("1 < 'a'"), "cannot compare number and string with '<'");
  EXPECT_EQ(EvalError("'a' >= 1"), "cannot compare string and number with '>='");
  EXPECT_EQ(EvalError("null > 0"), "cannot compare null and number with '>'");
  EXPECT_EQ(EvalError("[1] <= [2]"), "cannot compare array and array with '<='");
  EXPECT_EQ(EvalError("input.obj < true"), "cannot compare object and boolean with '<'");
}

TEST(ExprComparison, In) {
  EXPECT_EQ(Eval("'x' in input.tags"), true);
  EXPECT_EQ(Eval("'z' in input.tags"), false);
  EXPECT_EQ(Eval("1.0 in [1, 2]"), true);
  EXPECT_EQ(Eval("[1] in [[1.0], 2]"), true);
  EXPECT_EQ(Eval("'k' in input.obj"), true);
  EXPECT_EQ(Eval("'q' in input.obj"), false);
  EXPECT_EQ(Eval("'ll' in 'hello'"), true);
  EXPECT_EQ(Eval("'' in 'hello'"), true);
  EXPECT_EQ(Eval("'xyz' in 'hello'"), false);
  EXPECT_EQ(EvalError("1 in 'hello'"), "'in': cannot look for number in string");
  EXPECT_EQ(EvalError("1 in input.obj"), "'in': cannot look for number in object");
  EXPECT_EQ(EvalError("1 in 5"), "'in': cannot look for number in number");
  EXPECT_EQ(EvalError("'a' in null"), "'in': cannot look for string in null");
}

TEST(ExprLogic, ShortCircuitAndBooleans) {
  EXPECT_EQ(Eval("false && unknown_name"), false);
  EXPECT_EQ(Eval("true || unknown_name"), true);
  EXPECT_EQ(Eval("input.none && 1 / 0"), false);
  EXPECT_EQ(EvalError("true && unknown_name"), "unknown name 'unknown_name'");
  EXPECT_EQ(EvalError("false || 1 / 0"), "division by zero");
  ExpectSame(Eval("1 && 'x'"), json(true));  // booleans, not operands
  ExpectSame(Eval("0 || ''"), json(false));
  ExpectSame(Eval("input.name || false"), json(true));
  ExpectSame(Eval("!0"), json(true));
  ExpectSame(Eval("![]"), json(true));
  ExpectSame(Eval("!!input.tags"), json(true));
  ExpectSame(Eval("!input.empty"), json(true));
  ExpectSame(Eval("default(input.name, 1 / 0)"), json("Ada"));  // fallback not evaluated
}

// --- Functions --------------------------------------------------------------------------------

TEST(ExprFunctions, Len) {
  EXPECT_EQ(Eval("len('abc')"), 3);
  EXPECT_EQ(Eval("len(input.text)"), 11);  // code points, not bytes (13)
  EXPECT_EQ(Eval("len('')"), 0);
  EXPECT_EQ(Eval("len(input.items)"), 2);
  EXPECT_EQ(Eval("len(input.obj)"), 2);
  EXPECT_EQ(Eval("len([])"), 0);
  EXPECT_EQ(EvalError("len(5)"), "len() expects a string, array or object, got number");
  EXPECT_EQ(EvalError("len(input.none)"), "len() expects a string, array or object, got null");
}

TEST(ExprFunctions, Strings) {
  EXPECT_EQ(Eval("lower('AbC-\xC3\x89')"), "abc-\xC3\x89");  // ASCII only
  EXPECT_EQ(Eval("upper(input.name)"), "ADA");
  EXPECT_EQ(Eval("trim('  a b \\t\\n')"), "a b");
  EXPECT_EQ(Eval("trim('')"), "");
  EXPECT_EQ(Eval("starts_with(input.name, 'Ad')"), true);
  EXPECT_EQ(Eval("starts_with(input.name, 'da')"), false);
  EXPECT_EQ(Eval("ends_with(input.name, 'da')"), true);
  EXPECT_EQ(Eval("ends_with('a', 'abc')"), false);
  EXPECT_EQ(EvalError("lower(1)"), "lower() expects a string, got number");
  EXPECT_EQ(EvalError("upper(null)"), "upper() expects a string, got null");
  EXPECT_EQ(EvalError("trim([])"), "trim() expects a string, got array");
  EXPECT_EQ(EvalError("starts_with('a', 1)"),
            "starts_with() expects two strings, got string and number");
  EXPECT_EQ(EvalError("ends_with(1, 'a')"),
            "ends_with() expects two strings, got number and string");
}

TEST(ExprFunctions, Str) {
  EXPECT_EQ(Eval("str('x')"), "x");
  EXPECT_EQ(Eval("str(12)"), "12");
  EXPECT_EQ(Eval("str(2.5)"), "2.5");
  EXPECT_EQ(Eval("str(true)"), "true");
  EXPECT_EQ(Eval("str(null)"), "null");
  EXPECT_EQ(Eval("str([1, 'a'])"), "[1,\"a\"]");
  EXPECT_EQ(Eval("str(input.items[0])"), "{\"id\":1,\"name\":\"a\"}");
}

TEST(ExprFunctions, NumAndInt) {
  ExpectSame(Eval("num('42')"), json(42));
  ExpectSame(Eval("num(' -1.5e1 ')"), json(-15.0));
  ExpectSame(Eval("num('+7')"), json(7));
  ExpectSame(Eval("num(true)"), json(1));
  ExpectSame(Eval("num(false)"), json(0));
  ExpectSame(Eval("num(2.5)"), json(2.5));
  EXPECT_EQ(EvalError("num('abc')"), "num() cannot parse 'abc' as a number");
  EXPECT_EQ(EvalError("num('nan')"), "num() cannot parse 'nan' as a number");
  EXPECT_EQ(EvalError("num('1e999')"), "num() cannot parse '1e999' as a number");
  EXPECT_EQ(EvalError("num('')"), "num() cannot parse '' as a number");
  EXPECT_EQ(EvalError("num(null)"), "num() expects a string, number or boolean, got null");
  ExpectSame(Eval("int(3.9)"), json(3));
  ExpectSame(Eval("int(-3.9)"), json(-3));
  ExpectSame(Eval("int('12.7')"), json(12));
  ExpectSame(Eval("int(7)"), json(7));
  ExpectSame(Eval("int(true)"), json(1));
  EXPECT_EQ(EvalError("int(1e30)"), "int() argument out of range");
  EXPECT_EQ(EvalError("int('x')"), "int() cannot parse 'x' as a number");
  EXPECT_EQ(EvalError("int([])"), "int() expects a string, number or boolean, got array");
}

TEST(ExprFunctions, Math) {
  ExpectSame(Eval("abs(-3)"), json(3));
  ExpectSame(Eval("abs(input.neg)"), json(5));
  ExpectSame(Eval("abs(-2.5)"), json(2.5));
  ExpectSame(Eval("abs(-9223372036854775808)"), json(std::uint64_t{9223372036854775808u}));
  EXPECT_EQ(EvalError("abs('1')"), "abs() expects a number, got string");
  ExpectSame(Eval("min(3, 1.5, 2)"), json(1.5));
  ExpectSame(Eval("max(3, 1.5, 2)"), json(3));
  ExpectSame(Eval("min(4)"), json(4));
  ExpectSame(Eval("min(input.list)"), json(-2));
  ExpectSame(Eval("max(input.list)"), json(7u));  // parsed JSON: unsigned
  EXPECT_EQ(EvalError("min([])"), "min() of an empty array");
  EXPECT_EQ(EvalError("max(1, 'a')"), "max() expects numbers, got string");
  EXPECT_EQ(EvalError("min(input.tags)"), "min() expects numbers, got string");
  ExpectSame(Eval("round(2.5)"), json(3));
  ExpectSame(Eval("round(-2.5)"), json(-3));
  ExpectSame(Eval("round(2.4)"), json(2));
  ExpectSame(Eval("round(7)"), json(7));
  ExpectSame(Eval("round(1e300)"), json(1e300));
  ExpectSame(Eval("floor(2.7)"), json(2));
  ExpectSame(Eval("floor(-2.1)"), json(-3));
  ExpectSame(Eval("ceil(2.1)"), json(3));
  ExpectSame(Eval("ceil(-2.7)"), json(-2));
  EXPECT_EQ(EvalError("round('1')"), "round() expects a number, got string");
  EXPECT_EQ(EvalError("floor(null)"), "floor() expects a number, got null");
  EXPECT_EQ(EvalError("ceil(true)"), "ceil() expects a number, got boolean");
}

TEST(ExprFunctions, CollectionsAndDefault) {
  EXPECT_EQ(Eval("contains(input.tags, 'y')"), true);
  EXPECT_EQ(Eval("contains(input.name, 'd')"), true);
  EXPECT_EQ(Eval("contains(input.obj, 'zz')"), false);
  EXPECT_EQ(EvalError("contains(1, 1)"), "'contains': cannot look for number in number");
  EXPECT_EQ(Eval("keys(input.obj)"), json::parse(R"(["0", "k"])"));
  EXPECT_EQ(Eval("keys(input.items[0])"), json::parse(R"(["id", "name"])"));
  EXPECT_EQ(EvalError("keys(input.tags)"), "keys() expects an object, got array");
  EXPECT_EQ(Eval("default(input.missing, 'fb')"), "fb");
  EXPECT_EQ(Eval("default(input.count, 'fb')"), 3);
  EXPECT_EQ(Eval("default(input.empty, 'fb')"), "");  // only null falls back
  EXPECT_EQ(Eval("default(false, 'fb')"), false);
  EXPECT_EQ(Eval("join(input.tags, ', ')"), "x, y");
  EXPECT_EQ(Eval("join([1, 'a', null, true], '-')"), "1-a-null-true");
  EXPECT_EQ(Eval("join([], ',')"), "");
  EXPECT_EQ(EvalError("join('ab', ',')"),
            "join() expects an array and a string, got string and string");
  EXPECT_EQ(Eval("split('a,b,,c', ',')"), json::parse(R"(["a", "b", "", "c"])"));
  EXPECT_EQ(Eval("split('abc', '--')"), json::parse(R"(["abc"])"));
  EXPECT_EQ(Eval("split('', ',')"), json::parse(R"([""])"));
  EXPECT_EQ(Eval("split('h\xC3\xA9!', '')"), json::parse("[\"h\", \"\xC3\xA9\", \"!\"]"));
  EXPECT_EQ(EvalError("split(1, ',')"), "split() expects two strings, got number and string");
}

TEST(ExprFunctions, ConstantSubexpressionsAreFoldedButKeepRuntimeErrors) {
  // 1 / 0 is constant but is only an error when evaluated.
  EXPECT_EQ(Eval("input.flag || 1 / 0"), true);
  EXPECT_EQ(EvalError("len(1)"), "len() expects a string, array or object, got number");
  EXPECT_EQ(Eval("upper('a') + lower('B')"), "Ab");
}

// --- Parse errors ---------------------------------------------------------------------------

TEST(ExprParse, ErrorPositions) {
  EXPECT_EQ(ParseError(""), "at 0: unexpected end of expression");
  EXPECT_EQ(ParseError("   "), "at 3: unexpected end of expression");
  EXPECT_EQ(ParseError("1 +"), "at 3: unexpected end of expression");
  EXPECT_EQ(ParseError("(1 + 2"), "at 6: expected ')'");
  EXPECT_EQ(ParseError("len(a) + (b"), "at 11: expected ')'");
  EXPECT_EQ(ParseError("(1 + 2))"), "at 7: unexpected ')'");
  EXPECT_EQ(ParseError("1 2"), "at 2: unexpected number '2'");
  EXPECT_EQ(ParseError("a b"), "at 2: unexpected name 'b'");
  EXPECT_EQ(ParseError("a 'b'"), "at 2: unexpected string");
  EXPECT_EQ(ParseError("* 2"), "at 0: unexpected '*'");
  EXPECT_EQ(ParseError("1 + in"), "at 4: unexpected 'in'");
  EXPECT_EQ(ParseError("foo(1)"), "at 0: unknown function 'foo'");
  EXPECT_EQ(ParseError("1 + foo(2)"), "at 4: unknown function 'foo'");
  EXPECT_EQ(ParseError("a.b(1)"), "at 3: unexpected '('");
  EXPECT_EQ(ParseError("len(1, 2)"), "at 0: function 'len' takes 1 argument, got 2");
  EXPECT_EQ(ParseError("x + len()"), "at 4: function 'len' takes 1 argument, got 0");
  EXPECT_EQ(ParseError("join(a)"), "at 0: function 'join' takes 2 arguments, got 1");
  EXPECT_EQ(ParseError("min()"), "at 0: function 'min' takes at least 1 argument, got 0");
  EXPECT_EQ(ParseError("len(1"), "at 5: expected ',' or ')'");
  EXPECT_EQ(ParseError("len(1,)"), "at 6: unexpected ')'");
  EXPECT_EQ(ParseError("[1, 2"), "at 5: expected ',' or ']'");
  EXPECT_EQ(ParseError("[1 2]"), "at 3: expected ',' or ']'");
  EXPECT_EQ(ParseError("a[1"), "at 3: expected ']'");
  EXPECT_EQ(ParseError("a[]"), "at 2: unexpected ']'");
  EXPECT_EQ(ParseError("a."), "at 2: expected a name after '.'");
  EXPECT_EQ(ParseError("a.1"), "at 2: expected a name after '.'");
  EXPECT_EQ(ParseError("a = 1"), "at 2: unexpected '=' (use '==' to compare)");
  EXPECT_EQ(ParseError("a & b"), "at 2: unexpected '&' (use '&&')");
  EXPECT_EQ(ParseError("a | b"), "at 2: unexpected '|' (use '||')");
  EXPECT_EQ(ParseError("a # b"), "at 2: unexpected character '#'");
  EXPECT_EQ(ParseError("a \x01"), "at 2: unexpected control character");
  EXPECT_EQ(ParseError("a \xC3\xA9"), "at 2: unexpected non-ASCII character");
  EXPECT_EQ(ParseError("'abc"), "at 0: unterminated string");
  EXPECT_EQ(ParseError("x == \"abc\\\""), "at 5: unterminated string");
  EXPECT_EQ(ParseError(R"('a\q')"), R"(at 2: invalid escape '\q')");
  EXPECT_EQ(ParseError(R"('\u12g4')"), R"(at 1: invalid \u escape (expected 4 hex digits))");
  EXPECT_EQ(ParseError(R"('\ud800x')"), R"(at 1: invalid \u escape (unpaired surrogate))");
  EXPECT_EQ(ParseError(R"('\udc00')"), R"(at 1: invalid \u escape (unpaired surrogate))");
  EXPECT_EQ(ParseError("1e"), "at 0: malformed number '1e'");
  EXPECT_EQ(ParseError("2 * 3e+"), "at 4: malformed number '3e+'");
  EXPECT_EQ(ParseError("1e999"), "at 0: number out of range");
  EXPECT_EQ(ParseError("'\xFF'"), "at 1: invalid UTF-8");
  EXPECT_EQ(ParseError("'\xED\xA0\x80'"), "at 1: invalid UTF-8");  // encoded surrogate
}

TEST(ExprParse, Limits) {
  std::string ok = std::string(64, '(') + "1" + std::string(64, ')');
  EXPECT_EQ(Eval(ok), 1);
  std::string deep = std::string(65, '(') + "1" + std::string(65, ')');
  EXPECT_EQ(ParseError(deep), "at 64: expression nested too deeply (limit 64)");
  EXPECT_EQ(ParseError(std::string(100, '!') + "a"),
            "at 64: expression nested too deeply (limit 64)");
  EXPECT_EQ(ParseError(std::string(100, '[') + std::string(100, ']')),
            "at 64: expression nested too deeply (limit 64)");

  std::string chain = "a";
  for (int i = 0; i < 300; ++i) chain += "+a";
  EXPECT_EQ(ParseError(chain), "at 511: expression too complex (more than 256 nested operations)");
  std::string constant_chain = "1";
  for (int i = 0; i < 1000; ++i) constant_chain += "+1";  // folds as it goes
  EXPECT_EQ(Eval(constant_chain), 1001);

  std::string long_source(4096, ' ');
  long_source[0] = '1';
  EXPECT_EQ(Eval(long_source), 1);
  EXPECT_EQ(ParseError(std::string(4097, ' ')), "at 4096: expression longer than 4096 characters");
}

TEST(ExprParse, RootsAndSource) {
  auto e = Expression::parse("input.a + item * index + input.b + len(steps.x) + len - lower('x')");
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->roots(), (std::vector<std::string>{"input", "item", "index", "steps", "len"}));
  EXPECT_EQ(e->source(), "input.a + item * index + input.b + len(steps.x) + len - lower('x')");
  auto constant = Expression::parse("1 + len('abc')");
  ASSERT_TRUE(constant.ok());
  EXPECT_TRUE(constant->roots().empty());
  // Names skipped by short-circuit are still roots.
  auto guarded = Expression::parse("false && a.b || c[d]");
  ASSERT_TRUE(guarded.ok());
  EXPECT_EQ(guarded->roots(), (std::vector<std::string>{"a", "c", "d"}));
}

TEST(ExprParse, DefaultExpressionIsNullAndCopiesShareTheTree) {
  Expression empty;
  auto v = empty.eval(TestScope());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_null());
  auto e = Expression::parse("input.count + 1");
  ASSERT_TRUE(e.ok());
  Expression copy = *e;
  EXPECT_EQ(*copy.eval(TestScope()), 4);
  EXPECT_EQ(*e->eval(TestScope()), 4);
}

TEST(ExprEval, NoExceptionForInvalidUtf8InScope) {
  MapScope scope({{"s", json(std::string("a\xFF"))}, {"o", json{{"k", std::string("\xFE")}}}});
  auto v = Expression::parse("str(o)");
  ASSERT_TRUE(v.ok());
  auto r = v->eval(scope);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, "{\"k\":\"\xEF\xBF\xBD\"}");
  EXPECT_EQ(Eval("join([o, 1], '')", scope), "{\"k\":\"\xEF\xBF\xBD\"}1");
}

// --- apply_operator, is_operator, truthy -------------------------------------------------

TEST(Operators, ApplyOperator) {
  auto check = [](std::string_view op, const json& l, const json& r) {
    auto v = apply_operator(op, l, r);
    EXPECT_TRUE(v.ok()) << op << ": " << v.status().to_string();
    return v.ok() && *v;
  };
  EXPECT_TRUE(check("==", 1, 1.0));
  EXPECT_TRUE(check("==", json::parse(R"({"a": [1, {"b": 2}]})"),
                    json::parse(R"({"a": [1.0, {"b": 2.0}]})")));
  EXPECT_FALSE(check("==", json::parse(R"({"a": 1})"), json::parse(R"({"b": 1})")));
  EXPECT_FALSE(check("==", json::parse(R"({"a": 1})"), json::parse(R"({"a": 1, "b": 2})")));
  EXPECT_TRUE(check("!=", "a", 1));
  EXPECT_FALSE(check("!=", 2u, 2));
  EXPECT_TRUE(check(">", 3, 2.5));
  EXPECT_FALSE(check("<", 3, 2.5));
  EXPECT_TRUE(check(">=", "b", "a"));
  EXPECT_TRUE(check("<=", 2, 2));
  EXPECT_TRUE(check("contains", "hello", "ell"));
  EXPECT_TRUE(check("contains", json::array({1, 2}), 2.0));
  EXPECT_TRUE(check("contains", json{{"k", 1}}, "k"));
  EXPECT_FALSE(check("contains", json::array({1, 2}), 3));
  EXPECT_TRUE(check("in", "ell", "hello"));
  EXPECT_TRUE(check("in", 2, json::array({1, 2})));
  EXPECT_TRUE(check("in", "k", json{{"k", 1}}));

  auto lt = apply_operator("<", 1, "a");
  ASSERT_FALSE(lt.ok());
  EXPECT_EQ(lt.status().code(), "expression_error");
  EXPECT_EQ(lt.status().message(), "cannot compare number and string with '<'");
  auto contains = apply_operator("contains", 5, 5);
  ASSERT_FALSE(contains.ok());
  EXPECT_EQ(contains.status().message(), "'contains': cannot look for number in number");
  auto in = apply_operator("in", json::array(), "abc");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().message(), "'in': cannot look for array in string");
  auto unknown = apply_operator("~=", 1, 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "unknown operator '~='");
}

TEST(Operators, IsOperator) {
  for (const char* op : {"==", "!=", ">", "<", ">=", "<=", "contains", "in"}) {
    EXPECT_TRUE(is_operator(op)) << op;
  }
  for (const char* op : {"", "=", "&&", "not_in", "IN", "=>"}) EXPECT_FALSE(is_operator(op)) << op;
}

TEST(Operators, Truthy) {
  for (const json& v : {json(false), json(nullptr), json(0), json(0u), json(0.0), json(-0.0),
                        json(""), json::array(), json::object()}) {
    EXPECT_FALSE(truthy(v)) << v.dump();
  }
  for (const json& v : {json(true), json(1), json(-1), json(0.5), json("0"), json("false"),
                        json::array({0}), json{{"a", nullptr}}}) {
    EXPECT_TRUE(truthy(v)) << v.dump();
  }
}

// --- Ref --------------------------------------------------------------------------------------

TEST(RefTest, Parse) {
  auto r = Ref::parse("input.a.0.b");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->root(), "input");
  EXPECT_EQ(r->source(), "input.a.0.b");
  auto step = Ref::parse("fetch-user.id");
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->root(), "fetch-user");
  auto bare = Ref::parse("_x");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->root(), "_x");

  auto error = [](std::string_view path) {
    auto p = Ref::parse(path);
    EXPECT_FALSE(p.ok()) << path;
    if (p.ok()) return std::string("<no error>");
    EXPECT_EQ(p.status().code(), "invalid_ref");
    return p.status().message();
  };
  EXPECT_EQ(error(""), "empty $ref path");
  EXPECT_EQ(error("a..b"), "empty segment at 2 in $ref 'a..b'");
  EXPECT_EQ(error(".a"), "empty segment at 0 in $ref '.a'");
  EXPECT_EQ(error("a."), "empty segment at 2 in $ref 'a.'");
  EXPECT_EQ(error("1abc.x"),
            "invalid root '1abc' in $ref '1abc.x' (expected a letter or '_' followed by "
            "letters, digits, '_' or '-')");
  EXPECT_EQ(error("a b"),
            "invalid root 'a b' in $ref 'a b' (expected a letter or '_' followed by "
            "letters, digits, '_' or '-')");
  EXPECT_EQ(error(std::string(4097, 'a')), "$ref path longer than 4096 characters");
}

TEST(RefTest, Eval) {
  auto eval = [](std::string_view path) {
    auto r = Ref::parse(path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status().to_string();
    return r.ok() ? r->eval(TestScope()) : json("<parse error>");
  };
  EXPECT_EQ(eval("input.name"), "Ada");
  EXPECT_EQ(eval("input.items.1.name"), "b");
  EXPECT_EQ(eval("input.obj.0"), "zero");  // object key, not an index
  EXPECT_EQ(eval("fetch-user.id"), 42);
  EXPECT_EQ(eval("input.tags"), json::parse(R"(["x", "y"])"));
  EXPECT_EQ(eval("item"), "current");
  for (const char* path :
       {"nope", "nope.x", "input.missing", "input.missing.deeper", "input.items.2",
        "input.items.-1", "input.items.x", "input.items.99999999999999999999999", "input.name.0",
        "input.count.x", "input.none.x"}) {
    EXPECT_TRUE(eval(path).is_null()) << path;
  }
}

}  // namespace
}  // namespace yantra::expr

// --- Template -------------------------------------------------------------------------------

namespace yantra {
namespace {

using expr::json;

TEST(TemplateTest, StaticDocument) {
  std::vector<Problem> problems;
  json doc = json::parse(R"({"a": [1, {"b": "c"}], "d": null, "$notref": 1})");
  Template t = Template::compile(doc, "/params", problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(t.is_static());
  EXPECT_TRUE(t.uses().empty());
  auto v = t.eval(expr::TestScope());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, doc);

  Template empty;
  EXPECT_TRUE(empty.is_static());
  ASSERT_TRUE(empty.eval(expr::TestScope()).ok());
  EXPECT_TRUE(empty.eval(expr::TestScope())->is_null());
}

TEST(TemplateTest, RefsAndExpressions) {
  std::vector<Problem> problems;
  json doc = json::parse(R"j({
      "name": {"$ref": "input.name"},
      "total": {"$expr": "input.count * input.price"},
      "static": {"x": [1, 2], "y": "z"},
      "list": [1, {"$ref": "fetch-user.id"}, {"k": {"$expr": "upper(item)"}}, "s"],
      "missing": {"$ref": "input.nothing.here"},
      "unknown_root": {"$ref": "nobody.x"}
  })j");
  Template t = Template::compile(doc, "/steps/0/config/parameters", problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_FALSE(t.is_static());
  auto v = t.eval(expr::TestScope());
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(*v, json::parse(R"({
      "name": "Ada", "total": 7.5, "static": {"x": [1, 2], "y": "z"},
      "list": [1, 42, {"k": "CURRENT"}, "s"], "missing": null, "unknown_root": null
  })"));
  // Evaluating twice gives the same result (the compiled skeleton is not consumed).
  auto again = t.eval(expr::TestScope());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *v);

  std::vector<std::pair<std::string, std::string>> uses;
  for (const auto& u : t.uses()) uses.emplace_back(u.root, u.pointer);
  const std::string p = "/steps/0/config/parameters";
  EXPECT_EQ(uses, (std::vector<std::pair<std::string, std::string>>{
                      {"fetch-user", p + "/list/1/$ref"},
                      {"item", p + "/list/2/k/$expr"},
                      {"input", p + "/missing/$ref"},
                      {"input", p + "/name/$ref"},
                      {"input", p + "/total/$expr"},
                      {"nobody", p + "/unknown_root/$ref"},
                  }));
}

TEST(TemplateTest, WholeDocumentIsARef) {
  std::vector<Problem> problems;
  Template t = Template::compile(json::parse(R"({"$ref": "input.items.0"})"), "", problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_FALSE(t.is_static());
  ASSERT_EQ(t.uses().size(), 1u);
  EXPECT_EQ(t.uses()[0].root, "input");
  EXPECT_EQ(t.uses()[0].pointer, "/$ref");
  auto v = t.eval(expr::TestScope());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, json::parse(R"({"id": 1, "name": "a"})"));
}

TEST(TemplateTest, ExpressionWithSeveralRoots) {
  std::vector<Problem> problems;
  Template t = Template::compile(json::parse(R"({"x": {"$expr": "a + b + a"}})"), "/p", problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(t.uses().size(), 2u);
  EXPECT_EQ(t.uses()[0].root, "a");
  EXPECT_EQ(t.uses()[0].pointer, "/p/x/$expr");
  EXPECT_EQ(t.uses()[1].root, "b");
  EXPECT_EQ(t.uses()[1].pointer, "/p/x/$expr");
  expr::MapScope scope({{"a", 1}, {"b", 10}});
  auto v = t.eval(scope);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, json::parse(R"({"x": 12})"));
}

TEST(TemplateTest, Problems) {
  std::vector<Problem> problems;
  json doc = json::parse(R"j({
      "a": [{"$ref": ""}],
      "b": {"$ref": "x", "other": 1},
      "c": {"$expr": "1 +"},
      "d": {"$ref": 5},
      "e": {"$ref": "a", "$expr": "b"},
      "f/g~h": {"$expr": "foo(1)"},
      "i": {"$ref": "x..y"},
      "j": {"$expr": ["x"]},
      "ok": {"$ref": "input.name"}
  })j");
  Template t = Template::compile(doc, "/params", problems);
  EXPECT_EQ(problems, (std::vector<Problem>{
                          {"/params/a/0/$ref", "invalid $ref: empty $ref path"},
                          {"/params/b", "\"$ref\" must be the only key of its object"},
                          {"/params/c/$expr", "invalid $expr: at 3: unexpected end of expression"},
                          {"/params/d", "\"$ref\" must be a string, got number"},
                          {"/params/e", "an object cannot have both \"$ref\" and \"$expr\""},
                          {"/params/f~1g~0h/$expr", "invalid $expr: at 0: unknown function 'foo'"},
                          {"/params/i/$ref", "invalid $ref: empty segment at 2 in $ref 'x..y'"},
                          {"/params/j", "\"$expr\" must be a string, got array"},
                      }));
  // Malformed entries evaluate to null; the valid one still works.
  ASSERT_EQ(t.uses().size(), 1u);
  EXPECT_EQ(t.uses()[0].pointer, "/params/ok/$ref");
  auto v = t.eval(expr::TestScope());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["a"], json::parse("[null]"));
  EXPECT_EQ((*v)["ok"], "Ada");
}

TEST(TemplateTest, OnlyMalformedEntriesMakeAStaticTemplate) {
  std::vector<Problem> problems;
  Template t = Template::compile(json::parse(R"({"a": {"$ref": ""}, "b": 1})"), "", problems);
  EXPECT_EQ(problems.size(), 1u);
  EXPECT_TRUE(t.is_static());
  EXPECT_EQ(*t.eval(expr::TestScope()), json::parse(R"({"a": null, "b": 1})"));
}

TEST(TemplateTest, EvalErrorsNameThePointer) {
  std::vector<Problem> problems;
  Template t = Template::compile(json::parse(R"({"x": 1, "total": {"$expr": "input.count / 0"}})"),
                                 "/params", problems);
  ASSERT_TRUE(problems.empty());
  auto v = t.eval(expr::TestScope());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), "expression_error");
  EXPECT_EQ(v.status().message(), "$expr at /total: division by zero");

  Template nested = Template::compile(json::parse(R"({"a": [0, {"b/c": {"$expr": "nope + 1"}}]})"),
                                      "/params", problems);
  auto n = nested.eval(expr::TestScope());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message(), "$expr at /a/1/b~1c: unknown name 'nope'");

  Template root = Template::compile(json::parse(R"({"$expr": "'a' < 1"})"), "/p", problems);
  auto r = root.eval(expr::TestScope());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "$expr: cannot compare string and number with '<'");
  EXPECT_TRUE(problems.empty());
}

TEST(TemplateTest, ScalarAndArrayRoots) {
  std::vector<Problem> problems;
  Template scalar = Template::compile(json("text"), "/p", problems);
  EXPECT_TRUE(scalar.is_static());
  EXPECT_EQ(*scalar.eval(expr::TestScope()), "text");
  Template array =
      Template::compile(json::parse(R"([{"$expr": "index * 2"}, [true]])"), "/p", problems);
  EXPECT_FALSE(array.is_static());
  EXPECT_EQ(*array.eval(expr::TestScope()), json::parse("[4, [true]]"));
  ASSERT_EQ(array.uses().size(), 1u);
  EXPECT_EQ(array.uses()[0].pointer, "/p/0/$expr");
  EXPECT_TRUE(problems.empty());
}

}  // namespace
}  // namespace yantra
