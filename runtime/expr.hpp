// The `$expr` expression language and `$ref` paths.
//
// A small, deterministic language over JSON values: literals (numbers,
// strings in '…' or "…", true/false/null, [arrays]), identifiers resolved by a
// Scope (input, item, index, step ids), member access (a.b), index access
// (a[0], a["k"]), arithmetic (+ - * / %, unary -; + also joins strings),
// comparisons (== != < <= > >=), logic (&& || !), `in`, and a fixed set of
// pure functions (len, lower, upper, ...). No clock, no randomness, no I/O:
// the same scope always gives the same value, which replay depends on.
//
// Expressions are parsed once, when a flow is loaded, into an immutable tree
// shared by every execution; parse errors name the 0-based character
// position ("at 7: expected ')'"). Evaluation errors (type mismatches,
// division by zero) are values, never exceptions.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra::expr {

using json = nlohmann::json;

// Resolves the root identifiers of expressions and refs. Returns nullptr for
// an unknown name (an expression then fails with "unknown name 'x'", a $ref
// yields null). Implementations own the values they return.
class Scope {
 public:
  virtual ~Scope() = default;
  virtual const json* lookup(std::string_view name) const = 0;
};

struct Node;  // internal AST node

class Expression {
 public:
  Expression() = default;
  // Error code "invalid_expression"; message "at <pos>: <what>".
  static Result<Expression> parse(std::string_view source);

  // Error code "expression_error" with a message naming what failed.
  Result<json> eval(const Scope& scope) const;

  const std::string& source() const { return source_; }
  // Root identifiers the expression reads (deduplicated, in first-use order),
  // so validation can reject references to unknown steps at load time.
  const std::vector<std::string>& roots() const { return roots_; }

 private:
  std::string source_;
  std::shared_ptr<const Node> root_;
  std::vector<std::string> roots_;
};

// A `$ref` path: a root identifier followed by dot-separated segments; a
// segment of digits indexes an array ("get.items.0.name"). A missing member
// or index resolves to null.
class Ref {
 public:
  Ref() = default;
  // Error code "invalid_ref" for an empty path, empty segment or bad root.
  static Result<Ref> parse(std::string_view path);
  json eval(const Scope& scope) const;
  const std::string& root() const { return root_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::string root_;
  std::vector<std::string> segments_;
};

// Shared semantics of the condition operators, used by both `$expr` and the
// `{"operator": ..., "left": ..., "right": ...}` form: == != > < >= <=
// contains in. Numbers compare numerically whatever their JSON
// representation (1 == 1.0); strings compare lexicographically; ordering
// other types is an "expression_error".
Result<bool> apply_operator(std::string_view op, const json& left, const json& right);
bool is_operator(std::string_view op);

// JavaScript-like truthiness: false, null, 0, "" , [] and {} are false.
bool truthy(const json& value);

}  // namespace yantra::expr
