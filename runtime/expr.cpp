// Implementation of the expression language: a hand-written lexer, a Pratt parser that builds
// an immutable AST (subtrees without identifiers are folded into literals at parse time), and
// a tree-walking evaluator. Evaluation borrows values from the Scope and from literal nodes
// (Value holds either a pointer or an owned json), so `input.items[0].name` copies only the
// final result. Parse errors travel as an internal ParseError exception that never leaves
// Expression::parse; evaluation reports errors through EvalContext, without exceptions.
#include "runtime/expr.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "base/utf8.hpp"
#include "runtime/errc.hpp"

namespace yantra::expr {

// One AST node. `kids` are owned; the tree is immutable once parse() returns.
struct Node {
  enum class Op : std::uint8_t {
    kLiteral,  // value
    kName,     // name, looked up in the Scope
    kMember,   // kids[0].name
    kIndex,    // kids[0][kids[1]]
    kCall,     // function kFunctions[fn] applied to kids
    kArray,    // [kids...]
    kNeg,
    kNot,
    kMul,
    kDiv,
    kMod,
    kAdd,
    kSub,
    kLt,
    kLe,
    kGt,
    kGe,
    kEq,
    kNe,
    kIn,
    kAnd,
    kOr,
  };
  Op op = Op::kLiteral;
  std::uint8_t fn = 0;
  int pos = 0;    // 0-based position in the source
  int depth = 1;  // height of the subtree
  json value;
  std::string name;
  std::vector<std::unique_ptr<Node>> kids;
};

namespace {

using Op = Node::Op;
__extension__ typedef __int128 i128;

constexpr std::size_t kMaxSourceLength = 4096;
constexpr int kMaxNesting = 64;
constexpr int kMaxTreeDepth = 256;
constexpr int kUnordered = 2;

// ---------------------------------------------------------------------------------------------
// Values and helpers

const json kNull;  // zero-initialized storage is already a valid null json

const json& JsonBool(bool b) {
  static const json kTrue(true);
  static const json kFalse(false);
  return b ? kTrue : kFalse;
}

// A value produced during evaluation: borrowed (from the Scope, a literal node or a shared
// constant) or owned. Nulls and booleans are always borrowed constants, so the common
// comparison/logic results never construct or destroy a json.
// Invariant: `ref` never points into any Value's `own`.
struct Value {
  const json* ref = &kNull;  // nullptr when `own` holds the value
  std::optional<json> own;

  const json& get() const { return ref != nullptr ? *ref : *own; }
  bool owned() const { return ref == nullptr; }
  void borrow(const json& v) { ref = &v; }
  void set(json v) {  // by value: safe when `v` is moved out of `own` itself
    own = std::move(v);
    ref = nullptr;
  }
  void set_null() { ref = &kNull; }
  void set_bool(bool b) { ref = &JsonBool(b); }
  json take() && { return ref != nullptr ? *ref : std::move(*own); }
};

struct EvalContext {
  const Scope& scope;
  std::string error;
};

bool Fail(EvalContext& c, std::string message) {
  c.error = std::move(message);
  return false;
}

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: break;
  }
  return "discarded";
}

const std::string* StringOf(const json& v) {
  return v.get_ptr<const std::string*>();
}

// Integers (signed or unsigned) widened so that + - of any two fit without overflow.
i128 ToI128(const json& v) {
  if (const auto* u = v.get_ptr<const json::number_unsigned_t*>()) return static_cast<i128>(*u);
  if (const auto* i = v.get_ptr<const json::number_integer_t*>()) return static_cast<i128>(*i);
  return 0;
}

double ToDouble(const json& v) {
  if (const auto* f = v.get_ptr<const json::number_float_t*>()) return *f;
  if (const auto* u = v.get_ptr<const json::number_unsigned_t*>()) return static_cast<double>(*u);
  if (const auto* i = v.get_ptr<const json::number_integer_t*>()) return static_cast<double>(*i);
  return 0;
}

// long double holds every int64, uint64 and double exactly on the supported platforms.
long double ToLongDouble(const json& v) {
  if (const auto* f = v.get_ptr<const json::number_float_t*>()) return *f;
  if (const auto* u = v.get_ptr<const json::number_unsigned_t*>()) return *u;
  if (const auto* i = v.get_ptr<const json::number_integer_t*>()) return *i;
  return 0;
}

bool MakeInt(i128 v, json& out) {
  if (v >= std::numeric_limits<std::int64_t>::min() &&
      v <= std::numeric_limits<std::int64_t>::max()) {
    out = static_cast<std::int64_t>(v);
    return true;
  }
  if (v > 0 && v <= std::numeric_limits<std::uint64_t>::max()) {
    out = static_cast<std::uint64_t>(v);
    return true;
  }
  return false;
}

// An integral double as an int64 when it fits, else the double itself.
json IntegralDouble(double d) {
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
    return static_cast<std::int64_t>(d);
  }
  return d;
}

// -1, 0, 1, or kUnordered (NaN). Both arguments must be numbers.
int CompareNumbers(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    const i128 x = ToI128(a);
    const i128 y = ToI128(b);
    return (x > y) - (x < y);
  }
  const long double x = ToLongDouble(a);
  const long double y = ToLongDouble(b);
  if (std::isnan(x) || std::isnan(y)) return kUnordered;
  return (x > y) - (x < y);
}

// Deep equality in which numbers compare by value whatever their representation.
bool Equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b) == 0;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::array: {
      const auto& x = a.get_ref<const json::array_t&>();
      const auto& y = b.get_ref<const json::array_t&>();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!Equal(x[i], y[i])) return false;
      }
      return true;
    }
    case json::value_t::object: {
      const auto& x = a.get_ref<const json::object_t&>();
      const auto& y = b.get_ref<const json::object_t&>();
      if (x.size() != y.size()) return false;
      // Both maps are ordered by key, so matching entries are at the same position.
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
        if (i->first != j->first || !Equal(i->second, j->second)) return false;
      }
      return true;
    }
    default: return a == b;
  }
}

// `hay` contains `needle`: substring, array element or object key.
bool Contains(const json& hay, const json& needle, std::string_view op, bool& result,
              std::string& error) {
  if (const std::string* h = StringOf(hay)) {
    if (const std::string* n = StringOf(needle)) {
      result = h->find(*n) != std::string::npos;
      return true;
    }
  } else if (hay.is_array()) {
    const auto& items = hay.get_ref<const json::array_t&>();
    result = std::any_of(items.begin(), items.end(),
                         [&](const json& item) { return Equal(item, needle); });
    return true;
  } else if (hay.is_object()) {
    if (const std::string* n = StringOf(needle)) {
      const auto& members = hay.get_ref<const json::object_t&>();
      result = members.find(*n) != members.end();
      return true;
    }
  }
  error = "'" + std::string(op) + "': cannot look for " + TypeName(needle) + " in " + TypeName(hay);
  return false;
}

const char* OpText(Op op) {
  switch (op) {
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kMod: return "%";
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
    default: return "?";
  }
}

// Ordering comparison (kLt, kLe, kGt, kGe): numbers with numbers, strings with strings.
bool Order(Op op, const json& a, const json& b, bool& result, std::string& error) {
  int cmp;
  if (a.is_number() && b.is_number()) {
    cmp = CompareNumbers(a, b);
    if (cmp == kUnordered) {
      result = false;
      return true;
    }
  } else if (a.is_string() && b.is_string()) {
    const int c = StringOf(a)->compare(*StringOf(b));
    cmp = (c > 0) - (c < 0);
  } else {
    error = std::string("cannot compare ") + TypeName(a) + " and " + TypeName(b) + " with '" +
            OpText(op) + "'";
    return false;
  }
  switch (op) {
    case Op::kLt: result = cmp < 0; break;
    case Op::kLe: result = cmp <= 0; break;
    case Op::kGt: result = cmp > 0; break;
    default: result = cmp >= 0; break;
  }
  return true;
}

bool Arithmetic(Op op, const json& a, const json& b, EvalContext& c, Value& out) {
  if (op == Op::kAdd && a.is_string() && b.is_string()) {
    const std::string& x = *StringOf(a);
    const std::string& y = *StringOf(b);
    std::string s;
    s.reserve(x.size() + y.size());
    s.append(x).append(y);
    out.set(std::move(s));
    return true;
  }
  if (!a.is_number() || !b.is_number()) {
    return Fail(c, std::string("cannot apply '") + OpText(op) + "' to " + TypeName(a) + " and " +
                       TypeName(b));
  }
  if (a.is_number_integer() && b.is_number_integer()) {
    const i128 x = ToI128(a);
    const i128 y = ToI128(b);
    i128 r = 0;
    switch (op) {
      case Op::kAdd: r = x + y; break;
      case Op::kSub: r = x - y; break;
      case Op::kMul:
        if (__builtin_mul_overflow(x, y, &r)) return Fail(c, "integer overflow");
        break;
      case Op::kDiv:
        if (y == 0) return Fail(c, "division by zero");
        if (x % y != 0) {
          out.set(static_cast<double>(x) / static_cast<double>(y));
          return true;
        }
        r = x / y;
        break;
      default:  // kMod: the sign follows the dividend, as in C and JavaScript
        if (y == 0) return Fail(c, "division by zero");
        r = x % y;
        break;
    }
    json result;
    if (!MakeInt(r, result)) return Fail(c, "integer overflow");
    out.set(std::move(result));
    return true;
  }
  const double x = ToDouble(a);
  const double y = ToDouble(b);
  double r = 0;
  switch (op) {
    case Op::kAdd: r = x + y; break;
    case Op::kSub: r = x - y; break;
    case Op::kMul: r = x * y; break;
    case Op::kDiv:
      if (y == 0) return Fail(c, "division by zero");
      r = x / y;
      break;
    default:
      if (y == 0) return Fail(c, "division by zero");
      r = std::fmod(x, y);
      break;
  }
  if (!std::isfinite(r)) return Fail(c, "number overflow");
  out.set(r);
  return true;
}

bool IsSpace(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}
bool IsDigit(char ch) {
  return ch >= '0' && ch <= '9';
}
bool IsAlpha(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Length of the number starting at s[0] (grammar -?D+(.D+)?([eE][+-]?D+)?), or 0 if malformed.
// `is_integer` tells whether it has neither fraction nor exponent.
std::size_t ScanNumber(std::string_view s, bool& is_integer) {
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  const std::size_t digits = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == digits) return 0;
  is_integer = true;
  if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
    is_integer = false;
    i += 1;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j >= s.size() || !IsDigit(s[j])) return 0;
    while (j < s.size() && IsDigit(s[j])) ++j;
    is_integer = false;
    i = j;
  }
  return i;
}

// Converts text that ScanNumber accepted in full. Integers become int64, else uint64, else
// double; false when the value is out of the double range.
bool ConvertNumber(std::string_view s, bool is_integer, json& out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (is_integer) {
    std::int64_t i = 0;
    if (auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last) {
      out = i;
      return true;
    }
    std::uint64_t u = 0;
    if (auto r = std::from_chars(first, last, u); r.ec == std::errc() && r.ptr == last) {
      out = u;
      return true;
    }
  }
  double d = 0;
  auto r = std::from_chars(first, last, d);
  if (r.ec != std::errc() || r.ptr != last || !std::isfinite(d)) return false;
  out = d;
  return true;
}

// Parses a whole string as a number (for num() and int()); surrounding spaces and a leading
// '+' are allowed.
bool ParseNumberText(std::string_view s, json& out) {
  s = TrimSpace(s);
  if (s.size() > 1 && s[0] == '+' && IsDigit(s[1])) s.remove_prefix(1);
  bool is_integer = false;
  if (s.empty() || ScanNumber(s, is_integer) != s.size()) return false;
  return ConvertNumber(s, is_integer, out);
}

// A user string quoted for an error message: at most ~40 bytes, cut on a code point boundary.
std::string Quote(const std::string& s) {
  constexpr std::size_t kMax = 40;
  if (s.size() <= kMax) return "'" + s + "'";
  return "'" + std::string(utf8::truncate(s, kMax)) + "...'";
}

std::string Dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// Functions. Arguments are evaluated eagerly except for default(), which is special-cased in
// EvalCall (its impl is null) so that the fallback is only evaluated when needed.

using FnImpl = bool (*)(Value* args, std::size_t n, EvalContext& c, Value& out);

std::string ArgTypes(const Value* args, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) s += " and ";
    s += TypeName(args[i].get());
  }
  return s;
}

bool FnLen(Value* a, std::size_t, EvalContext& c, Value& out) {
  const json& x = a[0].get();
  if (const std::string* s = StringOf(x)) {
    out.set(static_cast<std::int64_t>(utf8::count_code_points(*s)));
  } else if (x.is_array() || x.is_object()) {
    out.set(static_cast<std::int64_t>(x.size()));
  } else {
    return Fail(c, std::string("len() expects a string, array or object, got ") + TypeName(x));
  }
  return true;
}

// The string argument, moved out when owned.
std::string TakeString(Value& v) {
  if (v.owned()) return std::move(*v.own->get_ptr<std::string*>());
  return *StringOf(*v.ref);
}

template <char (*Map)(char)>
bool MapAscii(const char* name, Value* a, EvalContext& c, Value& out) {
  if (!a[0].get().is_string()) {
    return Fail(c, std::string(name) + "() expects a string, got " + TypeName(a[0].get()));
  }
  std::string s = TakeString(a[0]);
  for (char& ch : s) ch = Map(ch);
  out.set(std::move(s));
  return true;
}
char ToLower(char ch) {
  return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
}
char ToUpper(char ch) {
  return ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
}
bool FnLower(Value* a, std::size_t, EvalContext& c, Value& out) {
  return MapAscii<ToLower>("lower", a, c, out);
}
bool FnUpper(Value* a, std::size_t, EvalContext& c, Value& out) {
  return MapAscii<ToUpper>("upper", a, c, out);
}

bool FnTrim(Value* a, std::size_t, EvalContext& c, Value& out) {
  const std::string* s = StringOf(a[0].get());
  if (s == nullptr) {
    return Fail(c, std::string("trim() expects a string, got ") + TypeName(a[0].get()));
  }
  out.set(std::string(TrimSpace(*s)));
  return true;
}

bool FnStr(Value* a, std::size_t, EvalContext&, Value& out) {
  if (a[0].get().is_string()) {
    out = std::move(a[0]);
  } else {
    out.set(Dump(a[0].get()));
  }
  return true;
}

bool FnNum(Value* a, std::size_t, EvalContext& c, Value& out) {
  const json& x = a[0].get();
  if (x.is_number()) {
    out = std::move(a[0]);
  } else if (x.is_boolean()) {
    out.set(static_cast<std::int64_t>(x.get<bool>() ? 1 : 0));
  } else if (const std::string* s = StringOf(x)) {
    json n;
    if (!ParseNumberText(*s, n)) return Fail(c, "num() cannot parse " + Quote(*s) + " as a number");
    out.set(std::move(n));
  } else {
    return Fail(c, std::string("num() expects a string, number or boolean, got ") + TypeName(x));
  }
  return true;
}

bool FnInt(Value* a, std::size_t, EvalContext& c, Value& out) {
  json n;
  const json& x = a[0].get();
  if (x.is_number()) {
    n = x;
  } else if (x.is_boolean()) {
    n = static_cast<std::int64_t>(x.get<bool>() ? 1 : 0);
  } else if (const std::string* s = StringOf(x)) {
    if (!ParseNumberText(*s, n)) return Fail(c, "int() cannot parse " + Quote(*s) + " as a number");
  } else {
    return Fail(c, std::string("int() expects a string, number or boolean, got ") + TypeName(x));
  }
  if (n.is_number_float()) {
    const double t = std::trunc(n.get<double>());
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) {
      return Fail(c, "int() argument out of range");
    }
    n = static_cast<std::int64_t>(t);
  }
  out.set(std::move(n));
  return true;
}

bool FnAbs(Value* a, std::size_t, EvalContext& c, Value& out) {
  const json& x = a[0].get();
  if (!x.is_number()) return Fail(c, std::string("abs() expects a number, got ") + TypeName(x));
  if (x.is_number_float()) {
    out.set(std::fabs(x.get<double>()));
    return true;
  }
  const i128 v = ToI128(x);
  json r;
  MakeInt(v < 0 ? -v : v, r);  // |int64| and uint64 always fit in uint64
  out.set(std::move(r));
  return true;
}

template <bool kMax>
bool MinMax(Value* a, std::size_t n, EvalContext& c, Value& out) {
  const char* name = kMax ? "max" : "min";
  const json* best = nullptr;
  auto consider = [&](const json& x) {
    if (!x.is_number()) {
      return Fail(c, std::string(name) + "() expects numbers, got " + TypeName(x));
    }
    if (best == nullptr) {
      best = &x;
    } else {
      const int cmp = CompareNumbers(x, *best);
      if (kMax ? cmp == 1 : cmp == -1) best = &x;
    }
    return true;
  };
  if (n == 1 && a[0].get().is_array()) {
    for (const json& x : a[0].get().get_ref<const json::array_t&>()) {
      if (!consider(x)) return false;
    }
    if (best == nullptr) return Fail(c, std::string(name) + "() of an empty array");
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      if (!consider(a[i].get())) return false;
    }
  }
  out.set(*best);
  return true;
}
bool FnMin(Value* a, std::size_t n, EvalContext& c, Value& out) {
  return MinMax<false>(a, n, c, out);
}
bool FnMax(Value* a, std::size_t n, EvalContext& c, Value& out) {
  return MinMax<true>(a, n, c, out);
}

template <double (*Round)(double)>
bool RoundWith(const char* name, Value* a, EvalContext& c, Value& out) {
  const json& x = a[0].get();
  if (!x.is_number()) return Fail(c, std::string(name) + "() expects a number, got " + TypeName(x));
  if (x.is_number_integer()) {
    out = std::move(a[0]);
  } else {
    out.set(IntegralDouble(Round(x.get<double>())));
  }
  return true;
}
double RoundHalfAway(double d) {
  return std::round(d);
}
double Floor(double d) {
  return std::floor(d);
}
double Ceil(double d) {
  return std::ceil(d);
}
bool FnRound(Value* a, std::size_t, EvalContext& c, Value& out) {
  return RoundWith<RoundHalfAway>("round", a, c, out);
}
bool FnFloor(Value* a, std::size_t, EvalContext& c, Value& out) {
  return RoundWith<Floor>("floor", a, c, out);
}
bool FnCeil(Value* a, std::size_t, EvalContext& c, Value& out) {
  return RoundWith<Ceil>("ceil", a, c, out);
}

bool FnContains(Value* a, std::size_t, EvalContext& c, Value& out) {
  bool r = false;
  if (!Contains(a[0].get(), a[1].get(), "contains", r, c.error)) return false;
  out.set_bool(r);
  return true;
}

template <bool kStart>
bool Affix(Value* a, EvalContext& c, Value& out) {
  const std::string* s = StringOf(a[0].get());
  const std::string* p = StringOf(a[1].get());
  if (s == nullptr || p == nullptr) {
    return Fail(c, std::string(kStart ? "starts_with" : "ends_with") +
                       "() expects two strings, got " + ArgTypes(a, 2));
  }
  out.set_bool(kStart ? std::string_view(*s).starts_with(*p) : std::string_view(*s).ends_with(*p));
  return true;
}
bool FnStartsWith(Value* a, std::size_t, EvalContext& c, Value& out) {
  return Affix<true>(a, c, out);
}
bool FnEndsWith(Value* a, std::size_t, EvalContext& c, Value& out) {
  return Affix<false>(a, c, out);
}

bool FnKeys(Value* a, std::size_t, EvalContext& c, Value& out) {
  const json& x = a[0].get();
  if (!x.is_object()) return Fail(c, std::string("keys() expects an object, got ") + TypeName(x));
  json keys = json::array();
  auto& items = keys.get_ref<json::array_t&>();
  items.reserve(x.size());
  for (const auto& [key, value] : x.get_ref<const json::object_t&>()) items.emplace_back(key);
  out.set(std::move(keys));
  return true;
}

bool FnJoin(Value* a, std::size_t, EvalContext& c, Value& out) {
  const json& list = a[0].get();
  const std::string* sep = StringOf(a[1].get());
  if (!list.is_array() || sep == nullptr) {
    return Fail(c, "join() expects an array and a string, got " + ArgTypes(a, 2));
  }
  std::string s;
  bool first = true;
  for (const json& item : list.get_ref<const json::array_t&>()) {
    if (!first) s += *sep;
    first = false;
    if (const std::string* text = StringOf(item)) {
      s += *text;
    } else {
      s += Dump(item);
    }
  }
  out.set(std::move(s));
  return true;
}

bool FnSplit(Value* a, std::size_t, EvalContext& c, Value& out) {
  const std::string* s = StringOf(a[0].get());
  const std::string* sep = StringOf(a[1].get());
  if (s == nullptr || sep == nullptr) {
    return Fail(c, "split() expects two strings, got " + ArgTypes(a, 2));
  }
  json parts = json::array();
  auto& items = parts.get_ref<json::array_t&>();
  if (sep->empty()) {  // one element per code point
    std::size_t start = 0;
    for (std::size_t i = 1; i <= s->size(); ++i) {
      if (i == s->size() || (static_cast<unsigned char>((*s)[i]) & 0xC0) != 0x80) {
        items.emplace_back(s->substr(start, i - start));
        start = i;
      }
    }
  } else {
    std::size_t start = 0;
    while (true) {
      const std::size_t at = s->find(*sep, start);
      if (at == std::string::npos) {
        items.emplace_back(s->substr(start));
        break;
      }
      items.emplace_back(s->substr(start, at - start));
      start = at + sep->size();
    }
  }
  out.set(std::move(parts));
  return true;
}

constexpr std::uint8_t kVariadic = 255;

struct FnDef {
  std::string_view name;
  std::uint8_t min_args;
  std::uint8_t max_args;
  FnImpl impl;  // null for default(), which is lazy
};

constexpr FnDef kFunctions[] = {
    {"len", 1, 1, FnLen},
    {"lower", 1, 1, FnLower},
    {"upper", 1, 1, FnUpper},
    {"trim", 1, 1, FnTrim},
    {"str", 1, 1, FnStr},
    {"num", 1, 1, FnNum},
    {"int", 1, 1, FnInt},
    {"abs", 1, 1, FnAbs},
    {"min", 1, kVariadic, FnMin},  // min(a, b, ...) or min(array)
    {"max", 1, kVariadic, FnMax},
    {"round", 1, 1, FnRound},
    {"floor", 1, 1, FnFloor},
    {"ceil", 1, 1, FnCeil},
    {"contains", 2, 2, FnContains},
    {"starts_with", 2, 2, FnStartsWith},
    {"ends_with", 2, 2, FnEndsWith},
    {"keys", 1, 1, FnKeys},
    {"default", 2, 2, nullptr},
    {"join", 2, 2, FnJoin},
    {"split", 2, 2, FnSplit},
};

const FnDef* FindFunction(std::string_view name) {
  for (const FnDef& f : kFunctions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

bool Eval(const Node& n, EvalContext& c, Value& out);

bool EvalCall(const Node& n, EvalContext& c, Value& out) {
  const FnDef& f = kFunctions[n.fn];
  if (f.impl == nullptr) {  // default(x, fallback)
    if (!Eval(*n.kids[0], c, out)) return false;
    if (!out.get().is_null()) return true;
    return Eval(*n.kids[1], c, out);
  }
  constexpr std::size_t kInline = 4;
  Value inline_args[kInline];
  std::vector<Value> heap_args;
  Value* args = inline_args;
  const std::size_t count = n.kids.size();
  if (count > kInline) {
    heap_args.resize(count);
    args = heap_args.data();
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!Eval(*n.kids[i], c, args[i])) return false;
  }
  return f.impl(args, count, c, out);
}

// An array index: a non-negative integral number.
bool ArrayIndex(const json& v, std::size_t& index) {
  if (const auto* u = v.get_ptr<const json::number_unsigned_t*>()) {
    index = *u;
    return true;
  }
  if (const auto* i = v.get_ptr<const json::number_integer_t*>()) {
    if (*i < 0) return false;
    index = static_cast<std::size_t>(*i);
    return true;
  }
  if (const auto* f = v.get_ptr<const json::number_float_t*>()) {
    if (!(*f >= 0 && *f < 1e18) || std::trunc(*f) != *f) return false;
    index = static_cast<std::size_t>(*f);
    return true;
  }
  return false;
}

bool Eval(const Node& n, EvalContext& c, Value& out) {
  switch (n.op) {
    case Op::kLiteral: out.borrow(n.value); return true;
    case Op::kName: {
      const json* v = c.scope.lookup(n.name);
      if (v == nullptr) return Fail(c, "unknown name '" + n.name + "'");
      out.borrow(*v);
      return true;
    }
    case Op::kMember: {
      if (!Eval(*n.kids[0], c, out)) return false;
      const json& base = out.get();
      if (!base.is_object()) {
        out.set_null();
        return true;
      }
      const auto& members = base.get_ref<const json::object_t&>();
      auto it = members.find(n.name);
      if (it == members.end()) {
        out.set_null();
      } else if (out.owned()) {
        out.set(std::move(out.own->get_ref<json::object_t&>().find(n.name)->second));
      } else {
        out.borrow(it->second);
      }
      return true;
    }
    case Op::kIndex: {
      Value key;
      if (!Eval(*n.kids[0], c, out) || !Eval(*n.kids[1], c, key)) return false;
      const json& base = out.get();
      if (base.is_array()) {
        std::size_t i = 0;
        if (!ArrayIndex(key.get(), i) || i >= base.size()) {
          out.set_null();
        } else if (out.owned()) {
          out.set(std::move(out.own->get_ref<json::array_t&>()[i]));
        } else {
          out.borrow(base.get_ref<const json::array_t&>()[i]);
        }
      } else if (base.is_object() && key.get().is_string()) {
        const auto& members = base.get_ref<const json::object_t&>();
        const std::string& name = *StringOf(key.get());
        auto it = members.find(name);
        if (it == members.end()) {
          out.set_null();
        } else if (out.owned()) {
          out.set(std::move(out.own->get_ref<json::object_t&>().find(name)->second));
        } else {
          out.borrow(it->second);
        }
      } else {
        out.set_null();
      }
      return true;
    }
    case Op::kCall: return EvalCall(n, c, out);
    case Op::kArray: {
      json items = json::array();
      auto& list = items.get_ref<json::array_t&>();
      list.reserve(n.kids.size());
      for (const auto& kid : n.kids) {
        Value v;
        if (!Eval(*kid, c, v)) return false;
        list.push_back(std::move(v).take());
      }
      out.set(std::move(items));
      return true;
    }
    case Op::kNeg: {
      if (!Eval(*n.kids[0], c, out)) return false;
      const json& x = out.get();
      if (x.is_number_float()) {
        out.set(-x.get<double>());
      } else if (x.is_number_integer()) {
        json r;
        if (!MakeInt(-ToI128(x), r)) return Fail(c, "integer overflow");
        out.set(std::move(r));
      } else {
        return Fail(c, std::string("cannot negate ") + TypeName(x));
      }
      return true;
    }
    case Op::kNot:
      if (!Eval(*n.kids[0], c, out)) return false;
      out.set_bool(!truthy(out.get()));
      return true;
    case Op::kAnd:
    case Op::kOr: {
      if (!Eval(*n.kids[0], c, out)) return false;
      const bool left = truthy(out.get());
      if (left == (n.op == Op::kOr)) {
        out.set_bool(left);
        return true;
      }
      if (!Eval(*n.kids[1], c, out)) return false;
      out.set_bool(truthy(out.get()));
      return true;
    }
    default: break;
  }
  // Binary operators with both operands evaluated.
  Value left;
  Value right;
  if (!Eval(*n.kids[0], c, left) || !Eval(*n.kids[1], c, right)) return false;
  bool result = false;
  switch (n.op) {
    case Op::kMul:
    case Op::kDiv:
    case Op::kMod:
    case Op::kAdd:
    case Op::kSub: return Arithmetic(n.op, left.get(), right.get(), c, out);
    case Op::kEq: result = Equal(left.get(), right.get()); break;
    case Op::kNe: result = !Equal(left.get(), right.get()); break;
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      if (!Order(n.op, left.get(), right.get(), result, c.error)) return false;
      break;
    case Op::kIn:
      if (!Contains(right.get(), left.get(), "in", result, c.error)) return false;
      break;
    default: return Fail(c, "internal error: unexpected operator");
  }
  out.set_bool(result);
  return true;
}

class EmptyScope final : public Scope {
 public:
  const json* lookup(std::string_view) const override { return nullptr; }
};

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok : std::uint8_t {
  kEnd,
  kNumber,
  kString,
  kName,
  kTrue,
  kFalse,
  kNull,
  kIn,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kBang,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAnd,
  kOr,
};

struct Token {
  Tok kind = Tok::kEnd;
  int pos = 0;
  std::string_view text;
  json value;  // kNumber, kString
};

struct ParseError {
  std::size_t pos;
  std::string message;
};

std::string DescribeChar(char ch) {
  const auto b = static_cast<unsigned char>(ch);
  if (b >= 0x80) return "non-ASCII character";
  if (b < 0x20 || b == 0x7F) return "control character";
  return std::string("character '") + ch + "'";
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> Run() {
    std::vector<Token> tokens;
    while (true) {
      while (i_ < src_.size() && IsSpace(src_[i_])) ++i_;
      Token t;
      t.pos = static_cast<int>(i_);
      if (i_ >= src_.size()) {
        tokens.push_back(std::move(t));
        return tokens;
      }
      const std::size_t start = i_;
      const char ch = src_[i_];
      if (IsDigit(ch)) {
        LexNumber(t);
      } else if (IsAlpha(ch)) {
        while (i_ < src_.size() && (IsAlpha(src_[i_]) || IsDigit(src_[i_]))) ++i_;
        t.kind = Keyword(src_.substr(start, i_ - start));
      } else if (ch == '\'' || ch == '"') {
        LexString(t);
      } else {
        t.kind = LexPunct();
      }
      t.text = src_.substr(start, i_ - start);
      tokens.push_back(std::move(t));
    }
  }

 private:
  static Tok Keyword(std::string_view word) {
    if (word == "true") return Tok::kTrue;
    if (word == "false") return Tok::kFalse;
    if (word == "null") return Tok::kNull;
    if (word == "in") return Tok::kIn;
    return Tok::kName;
  }

  void LexNumber(Token& t) {
    const std::size_t start = i_;
    bool is_integer = false;
    const std::size_t len = ScanNumber(src_.substr(start), is_integer);
    if (len == 0) {  // digits followed by an exponent marker without digits
      std::size_t end = start;
      while (end < src_.size() && (IsDigit(src_[end]) || IsAlpha(src_[end]) || src_[end] == '.' ||
                                   src_[end] == '+' || src_[end] == '-')) {
        ++end;
      }
      throw ParseError{start,
                       "malformed number '" + std::string(src_.substr(start, end - start)) + "'"};
    }
    i_ = start + len;
    t.kind = Tok::kNumber;
    if (!ConvertNumber(src_.substr(start, len), is_integer, t.value)) {
      throw ParseError{start, "number out of range"};
    }
  }

  int Hex4(std::size_t at) const {
    if (at + 4 > src_.size()) return -1;
    int v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      const char ch = src_[k];
      int d;
      if (IsDigit(ch)) {
        d = ch - '0';
      } else if (ch >= 'a' && ch <= 'f') {
        d = ch - 'a' + 10;
      } else if (ch >= 'A' && ch <= 'F') {
        d = ch - 'A' + 10;
      } else {
        return -1;
      }
      v = v * 16 + d;
    }
    return v;
  }

  void LexString(Token& t) {
    const std::size_t start = i_;
    const char quote = src_[i_++];
    std::string s;
    while (true) {
      if (i_ >= src_.size()) throw ParseError{start, "unterminated string"};
      const char ch = src_[i_];
      if (ch == quote) {
        ++i_;
        break;
      }
      if (ch != '\\') {
        const std::size_t run = i_;
        while (i_ < src_.size() && src_[i_] != quote && src_[i_] != '\\') ++i_;
        s.append(src_.substr(run, i_ - run));
        continue;
      }
      if (i_ + 1 >= src_.size()) throw ParseError{start, "unterminated string"};
      const char e = src_[i_ + 1];
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case '"':
        case '\'':
        case '\\':
        case '/': s += e; break;
        case 'u': {
          int cp = Hex4(i_ + 2);
          if (cp < 0) throw ParseError{i_, "invalid \\u escape (expected 4 hex digits)"};
          std::size_t len = 6;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            const int low = i_ + 7 < src_.size() && src_[i_ + 6] == '\\' && src_[i_ + 7] == 'u'
                                ? Hex4(i_ + 8)
                                : -1;
            if (low < 0xDC00 || low > 0xDFFF) {
              throw ParseError{i_, "invalid \\u escape (unpaired surrogate)"};
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            len = 12;
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            throw ParseError{i_, "invalid \\u escape (unpaired surrogate)"};
          }
          utf8::append_code_point(s, static_cast<char32_t>(cp));
          i_ += len;
          continue;
        }
        default:
          if (static_cast<unsigned char>(e) >= 0x20 && static_cast<unsigned char>(e) < 0x7F) {
            throw ParseError{i_, std::string("invalid escape '\\") + e + "'"};
          }
          throw ParseError{i_, "invalid escape"};
      }
      i_ += 2;
    }
    t.kind = Tok::kString;
    t.value = std::move(s);
  }

  Tok LexPunct() {
    const std::size_t at = i_;
    const char ch = src_[i_++];
    const char next = i_ < src_.size() ? src_[i_] : '\0';
    auto two = [&](Tok tok) {
      ++i_;
      return tok;
    };
    switch (ch) {
      case '(': return Tok::kLParen;
      case ')': return Tok::kRParen;
      case '[': return Tok::kLBracket;
      case ']': return Tok::kRBracket;
      case ',': return Tok::kComma;
      case '.': return Tok::kDot;
      case '+': return Tok::kPlus;
      case '-': return Tok::kMinus;
      case '*': return Tok::kStar;
      case '/': return Tok::kSlash;
      case '%': return Tok::kPercent;
      case '!': return next == '=' ? two(Tok::kNe) : Tok::kBang;
      case '<': return next == '=' ? two(Tok::kLe) : Tok::kLt;
      case '>': return next == '=' ? two(Tok::kGe) : Tok::kGt;
      case '=':
        if (next == '=') return two(Tok::kEq);
        throw ParseError{at, "unexpected '=' (use '==' to compare)"};
      case '&':
        if (next == '&') return two(Tok::kAnd);
        throw ParseError{at, "unexpected '&' (use '&&')"};
      case '|':
        if (next == '|') return two(Tok::kOr);
        throw ParseError{at, "unexpected '|' (use '||')"};
      default: throw ParseError{at, "unexpected " + DescribeChar(ch)};
    }
  }

  std::string_view src_;
  std::size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Parser

using NodePtr = std::unique_ptr<Node>;

int Precedence(Tok t) {
  switch (t) {
    case Tok::kOr: return 1;
    case Tok::kAnd: return 2;
    case Tok::kEq:
    case Tok::kNe: return 3;
    case Tok::kLt:
    case Tok::kLe:
    case Tok::kGt:
    case Tok::kGe:
    case Tok::kIn: return 4;
    case Tok::kPlus:
    case Tok::kMinus: return 5;
    case Tok::kStar:
    case Tok::kSlash:
    case Tok::kPercent: return 6;
    default: return 0;
  }
}

Op BinaryOp(Tok t) {
  switch (t) {
    case Tok::kOr: return Op::kOr;
    case Tok::kAnd: return Op::kAnd;
    case Tok::kEq: return Op::kEq;
    case Tok::kNe: return Op::kNe;
    case Tok::kLt: return Op::kLt;
    case Tok::kLe: return Op::kLe;
    case Tok::kGt: return Op::kGt;
    case Tok::kGe: return Op::kGe;
    case Tok::kIn: return Op::kIn;
    case Tok::kPlus: return Op::kAdd;
    case Tok::kMinus: return Op::kSub;
    case Tok::kStar: return Op::kMul;
    case Tok::kSlash: return Op::kDiv;
    default: return Op::kMod;
  }
}

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd: return "end of expression";
    case Tok::kName: return "name '" + std::string(t.text) + "'";
    case Tok::kNumber: return "number '" + std::string(t.text) + "'";
    case Tok::kString: return "string";
    default: return "'" + std::string(t.text) + "'";
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodePtr ParseAll() {
    NodePtr n = ParseBinary(1);
    if (Peek().kind != Tok::kEnd) throw Unexpected(Peek());
    return n;
  }

  std::vector<std::string> roots;

 private:
  // Counts syntactic nesting (parentheses, brackets, calls, unary operators).
  class Nest {
   public:
    Nest(Parser& p, int pos) : p_(p) {
      if (++p_.nesting_ > kMaxNesting) {
        throw ParseError{static_cast<std::size_t>(pos), "expression nested too deeply (limit " +
                                                            std::to_string(kMaxNesting) + ")"};
      }
    }
    ~Nest() { --p_.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    Parser& p_;
  };

  const Token& Peek() const { return tokens_[i_]; }
  Token& Advance() {
    Token& t = tokens_[i_];
    if (t.kind != Tok::kEnd) ++i_;
    return t;
  }
  void Expect(Tok kind, const char* message) {
    if (Peek().kind != kind) throw ParseError{static_cast<std::size_t>(Peek().pos), message};
    Advance();
  }
  static ParseError Unexpected(const Token& t) {
    return ParseError{static_cast<std::size_t>(t.pos), "unexpected " + Describe(t)};
  }

  static NodePtr Literal(json value, int pos) {
    auto n = std::make_unique<Node>();
    n->op = Op::kLiteral;
    n->pos = pos;
    n->value = std::move(value);
    return n;
  }

  // Builds an operator node; folds it into a literal when all operands are literals and the
  // evaluation succeeds (a failing constant such as 1/0 is left to fail at run time, where a
  // short-circuit may skip it).
  static NodePtr Make(Op op, int pos, std::vector<NodePtr> kids, std::uint8_t fn = 0,
                      std::string name = {}) {
    auto n = std::make_unique<Node>();
    n->op = op;
    n->pos = pos;
    n->fn = fn;
    n->name = std::move(name);
    n->kids = std::move(kids);
    bool constant = true;
    for (const NodePtr& k : n->kids) {
      n->depth = std::max(n->depth, k->depth + 1);
      constant = constant && k->op == Op::kLiteral;
    }
    if (n->depth > kMaxTreeDepth) {
      throw ParseError{static_cast<std::size_t>(pos), "expression too complex (more than " +
                                                          std::to_string(kMaxTreeDepth) +
                                                          " nested operations)"};
    }
    if (constant) {
      EmptyScope scope;
      EvalContext c{scope, {}};
      Value v;
      if (Eval(*n, c, v)) return Literal(std::move(v).take(), pos);
    }
    return n;
  }

  NodePtr ParseBinary(int min_precedence) {
    NodePtr left = ParseUnary();
    while (true) {
      const Token& t = Peek();
      const int precedence = Precedence(t.kind);
      if (precedence == 0 || precedence < min_precedence) return left;
      const Op op = BinaryOp(t.kind);
      const int pos = t.pos;
      Advance();
      NodePtr right = ParseBinary(precedence + 1);
      std::vector<NodePtr> kids;
      kids.push_back(std::move(left));
      kids.push_back(std::move(right));
      left = Make(op, pos, std::move(kids));
    }
  }

  NodePtr ParseUnary() {
    const Token& t = Peek();
    if (t.kind == Tok::kMinus || t.kind == Tok::kBang) {
      const Op op = t.kind == Tok::kMinus ? Op::kNeg : Op::kNot;
      const int pos = t.pos;
      Nest nest(*this, pos);
      Advance();
      std::vector<NodePtr> kids;
      kids.push_back(ParseUnary());
      return Make(op, pos, std::move(kids));
    }
    return ParsePostfix(ParsePrimary());
  }

  NodePtr ParsePostfix(NodePtr n) {
    while (true) {
      const Token& t = Peek();
      if (t.kind == Tok::kDot) {
        const int pos = t.pos;
        Advance();
        const Token& name = Peek();
        // Keywords are fine as member names: a.in, a.null.
        if (name.kind != Tok::kName && name.kind != Tok::kTrue && name.kind != Tok::kFalse &&
            name.kind != Tok::kNull && name.kind != Tok::kIn) {
          throw ParseError{static_cast<std::size_t>(name.pos), "expected a name after '.'"};
        }
        std::string member(name.text);
        Advance();
        std::vector<NodePtr> kids;
        kids.push_back(std::move(n));
        n = Make(Op::kMember, pos, std::move(kids), 0, std::move(member));
      } else if (t.kind == Tok::kLBracket) {
        const int pos = t.pos;
        Nest nest(*this, pos);
        Advance();
        std::vector<NodePtr> kids;
        kids.push_back(std::move(n));
        kids.push_back(ParseBinary(1));
        Expect(Tok::kRBracket, "expected ']'");
        n = Make(Op::kIndex, pos, std::move(kids));
      } else {
        return n;
      }
    }
  }

  // Comma-separated expressions up to `close`; the opening token is already consumed.
  std::vector<NodePtr> ParseList(Tok close, const char* expected) {
    std::vector<NodePtr> items;
    if (Peek().kind == close) {
      Advance();
      return items;
    }
    while (true) {
      items.push_back(ParseBinary(1));
      if (Peek().kind == Tok::kComma) {
        Advance();
      } else if (Peek().kind == close) {
        Advance();
        return items;
      } else {
        throw ParseError{static_cast<std::size_t>(Peek().pos), expected};
      }
    }
  }

  NodePtr ParseCall(const Token& name) {
    const FnDef* f = FindFunction(name.text);
    if (f == nullptr) {
      throw ParseError{static_cast<std::size_t>(name.pos),
                       "unknown function '" + std::string(name.text) + "'"};
    }
    Nest nest(*this, Peek().pos);
    Advance();  // (
    std::vector<NodePtr> args = ParseList(Tok::kRParen, "expected ',' or ')'");
    const std::size_t n = args.size();
    if (n < f->min_args || (f->max_args != kVariadic && n > f->max_args)) {
      std::string takes;
      if (f->max_args == kVariadic) {
        takes = "at least " + std::to_string(f->min_args);
      } else if (f->min_args == f->max_args) {
        takes = std::to_string(f->min_args);
      } else {
        takes = std::to_string(f->min_args) + " to " + std::to_string(f->max_args);
      }
      const bool one = f->min_args == 1 && (f->max_args == 1 || f->max_args == kVariadic);
      takes += one ? " argument" : " arguments";
      throw ParseError{
          static_cast<std::size_t>(name.pos),
          "function '" + std::string(f->name) + "' takes " + takes + ", got " + std::to_string(n)};
    }
    return Make(Op::kCall, name.pos, std::move(args), static_cast<std::uint8_t>(f - kFunctions));
  }

  NodePtr ParsePrimary() {
    Token& t = tokens_[i_];
    switch (t.kind) {
      case Tok::kNumber:
      case Tok::kString: Advance(); return Literal(std::move(t.value), t.pos);
      case Tok::kTrue: Advance(); return Literal(true, t.pos);
      case Tok::kFalse: Advance(); return Literal(false, t.pos);
      case Tok::kNull: Advance(); return Literal(nullptr, t.pos);
      case Tok::kName: {
        Advance();
        if (Peek().kind == Tok::kLParen) return ParseCall(t);
        std::string name(t.text);
        if (std::find(roots.begin(), roots.end(), name) == roots.end()) roots.push_back(name);
        auto n = std::make_unique<Node>();
        n->op = Op::kName;
        n->pos = t.pos;
        n->name = std::move(name);
        return n;
      }
      case Tok::kLParen: {
        Nest nest(*this, t.pos);
        Advance();
        NodePtr n = ParseBinary(1);
        Expect(Tok::kRParen, "expected ')'");
        return n;
      }
      case Tok::kLBracket: {
        Nest nest(*this, t.pos);
        Advance();
        return Make(Op::kArray, t.pos, ParseList(Tok::kRBracket, "expected ',' or ']'"));
      }
      default: throw Unexpected(t);
    }
  }

  std::vector<Token> tokens_;
  std::size_t i_ = 0;
  int nesting_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Refs

bool IsRefRoot(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char ch) { return IsAlpha(ch) || IsDigit(ch) || ch == '-'; });
}

bool ParseIndexSegment(const std::string& s, std::size_t& index) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), IsDigit)) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), index);
  return r.ec == std::errc();
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Public API

Result<Expression> Expression::parse(std::string_view source) {
  auto error = [](std::size_t pos, const std::string& what) {
    return Status(RuntimeErrc::kInvalidExpression, "at " + std::to_string(pos) + ": " + what);
  };
  if (source.size() > kMaxSourceLength) {
    return error(kMaxSourceLength,
                 "expression longer than " + std::to_string(kMaxSourceLength) + " characters");
  }
  if (const std::size_t bad = utf8::find_invalid(source); bad != std::string_view::npos) {
    return error(bad, "invalid UTF-8");
  }
  try {
    Parser parser(Lexer(source).Run());
    NodePtr root = parser.ParseAll();
    Expression e;
    e.source_ = std::string(source);
    e.root_ = std::move(root);
    e.roots_ = std::move(parser.roots);
    return e;
  } catch (const ParseError& e) {
    return error(e.pos, e.message);
  } catch (const std::exception& e) {
    return error(0, std::string("cannot parse: ") + e.what());
  }
}

Result<json> Expression::eval(const Scope& scope) const {
  if (!root_) return json(nullptr);
  try {
    EvalContext c{scope, {}};
    Value v;
    if (!Eval(*root_, c, v)) return Status(RuntimeErrc::kExpressionError, std::move(c.error));
    return std::move(v).take();
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kExpressionError, std::string("evaluation failed: ") + e.what());
  } catch (...) {
    return Status(RuntimeErrc::kExpressionError, "evaluation failed");
  }
}

Result<Ref> Ref::parse(std::string_view path) {
  auto error = [](std::string what) { return Status(RuntimeErrc::kInvalidRef, std::move(what)); };
  if (path.empty()) return error("empty $ref path");
  if (path.size() > kMaxSourceLength) {
    return error("$ref path longer than " + std::to_string(kMaxSourceLength) + " characters");
  }
  Ref ref;
  ref.source_ = std::string(path);
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string_view segment =
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment.empty()) {
      return error("empty segment at " + std::to_string(start) + " in $ref '" + ref.source_ + "'");
    }
    if (start == 0) {
      if (!IsRefRoot(segment)) {
        return error("invalid root '" + std::string(segment) + "' in $ref '" + ref.source_ +
                     "' (expected a letter or '_' followed by letters, digits, '_' or '-')");
      }
      ref.root_ = std::string(segment);
    } else {
      ref.segments_.emplace_back(segment);
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return ref;
}

json Ref::eval(const Scope& scope) const {
  const json* cur = scope.lookup(root_);
  if (cur == nullptr) return nullptr;
  for (const std::string& segment : segments_) {
    if (cur->is_object()) {
      const auto& members = cur->get_ref<const json::object_t&>();
      auto it = members.find(segment);
      if (it == members.end()) return nullptr;
      cur = &it->second;
    } else if (cur->is_array()) {
      const auto& items = cur->get_ref<const json::array_t&>();
      std::size_t index = 0;
      if (!ParseIndexSegment(segment, index) || index >= items.size()) return nullptr;
      cur = &items[index];
    } else {
      return nullptr;
    }
  }
  return *cur;
}

Result<bool> apply_operator(std::string_view op, const json& left, const json& right) {
  std::string error;
  bool result = false;
  bool ok = true;
  if (op == "==") {
    result = Equal(left, right);
  } else if (op == "!=") {
    result = !Equal(left, right);
  } else if (op == "<") {
    ok = Order(Op::kLt, left, right, result, error);
  } else if (op == "<=") {
    ok = Order(Op::kLe, left, right, result, error);
  } else if (op == ">") {
    ok = Order(Op::kGt, left, right, result, error);
  } else if (op == ">=") {
    ok = Order(Op::kGe, left, right, result, error);
  } else if (op == "contains") {
    ok = Contains(left, right, "contains", result, error);
  } else if (op == "in") {
    ok = Contains(right, left, "in", result, error);
  } else {
    return Status(RuntimeErrc::kExpressionError, "unknown operator '" + std::string(op) + "'");
  }
  if (!ok) return Status(RuntimeErrc::kExpressionError, std::move(error));
  return result;
}

bool is_operator(std::string_view op) {
  return op == "==" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=" ||
         op == "contains" || op == "in";
}

bool truthy(const json& value) {
  switch (value.type()) {
    case json::value_t::boolean: return *value.get_ptr<const json::boolean_t*>();
    case json::value_t::number_integer: return *value.get_ptr<const json::number_integer_t*>() != 0;
    case json::value_t::number_unsigned:
      return *value.get_ptr<const json::number_unsigned_t*>() != 0;
    case json::value_t::number_float: {
      const double d = *value.get_ptr<const json::number_float_t*>();
      return d != 0 && !std::isnan(d);
    }
    case json::value_t::string: return !value.get_ptr<const json::string_t*>()->empty();
    case json::value_t::array: return !value.get_ptr<const json::array_t*>()->empty();
    case json::value_t::object: return !value.get_ptr<const json::object_t*>()->empty();
    case json::value_t::binary: return !value.get_ptr<const json::binary_t*>()->empty();
    case json::value_t::null:
    case json::value_t::discarded: break;
  }
  return false;
}

}  // namespace yantra::expr
