// Parameter templates: a JSON document in which an object of the exact form
// {"$ref": "path"} or {"$expr": "source"} is replaced, at run time, by the
// value it denotes. Compiled once at load time (refs and expressions parsed,
// problems reported with JSON pointers); evaluated per step attempt against a
// Scope. Subtrees without refs are kept as literal JSON and copied as is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "runtime/expr.hpp"

namespace yantra {

struct TemplateNode;  // internal

class Template {
 public:
  Template() = default;  // evaluates to null

  // Compiles `doc`; every malformed $ref/$expr (or an object mixing "$ref" or
  // "$expr" with other keys) is appended to `problems` with its pointer
  // (`pointer` is the location of `doc` itself, e.g. "/steps/0/config/parameters").
  static Template compile(const expr::json& doc, std::string_view pointer,
                          std::vector<Problem>& problems);

  // Error code "expression_error" (from a failing $expr).
  Result<expr::json> eval(const expr::Scope& scope) const;

  bool is_static() const;
  // Root identifiers of every $ref and $expr inside, with the JSON pointer of
  // each use, for load-time checks of step references.
  struct Use {
    std::string root;
    std::string pointer;
  };
  const std::vector<Use>& uses() const { return uses_; }

 private:
  std::shared_ptr<const TemplateNode> root_;
  std::vector<Use> uses_;
};

}  // namespace yantra
