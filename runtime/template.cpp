// Template compilation and evaluation. compile() walks the document once: every {"$ref": ...}
// or {"$expr": ...} object becomes a dynamic node, and every subtree without one is copied
// exactly once into the static part of its nearest dynamic ancestor (or the root literal).
// An object or array node keeps its static members pre-built in `literal`, with null
// placeholders for its dynamic children; eval() copies that skeleton and fills the holes.
#include "runtime/template.hpp"

#include "runtime/errc.hpp"
#include "runtime/json_patch.hpp"

#include <cstdint>
#include <utility>

namespace yantra {

struct TemplateNode {
  enum class Kind : std::uint8_t { kLiteral, kRef, kExpr, kObject, kArray };
  struct Child {
    std::string key;        // kObject
    std::size_t index = 0;  // kArray
    std::unique_ptr<TemplateNode> node;
  };

  Kind kind = Kind::kLiteral;
  expr::json literal;  // kLiteral: the value; kObject/kArray: the static skeleton
  expr::Ref ref;
  expr::Expression expression;
  std::string where;  // pointer relative to the template root, for error messages
  std::vector<Child> children;
};

namespace {

using expr::json;
using Kind = TemplateNode::Kind;

constexpr std::string_view kRefKey = "$ref";
constexpr std::string_view kExprKey = "$expr";

// Appends "/" and the RFC 6901 escape of `token`.
void AppendToken(std::string& pointer, std::string_view token) {
  pointer += '/';
  pointer += pointer_escape(token);
}

std::unique_ptr<TemplateNode> NullNode() {
  return std::make_unique<TemplateNode>();
}

class Compiler {
 public:
  Compiler(std::string_view base, std::vector<Problem>& problems, std::vector<Template::Use>& uses)
      : base_(base), problems_(problems), uses_(uses) {}

  // Returns nullptr when `doc` holds no $ref/$expr (the caller copies it as a literal).
  std::unique_ptr<TemplateNode> Compile(const json& doc) {
    if (doc.is_object()) {
      const bool has_ref = doc.contains(kRefKey);
      const bool has_expr = doc.contains(kExprKey);
      if (has_ref || has_expr) return CompileSpecial(doc, has_ref, has_expr);
      return CompileContainer(doc);
    }
    if (doc.is_array()) return CompileContainer(doc);
    return nullptr;
  }

 private:
  std::string Pointer() const { return base_ + rel_; }

  void Report(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }

  std::unique_ptr<TemplateNode> CompileSpecial(const json& doc, bool has_ref, bool has_expr) {
    const std::string key(has_ref ? kRefKey : kExprKey);
    if (has_ref && has_expr) {
      Report(Pointer(), "an object cannot have both \"$ref\" and \"$expr\"");
      return NullNode();
    }
    if (doc.size() != 1) {
      Report(Pointer(), "\"" + key + "\" must be the only key of its object");
      return NullNode();
    }
    const json& value = doc.begin().value();
    const std::string* source = value.get_ptr<const std::string*>();
    if (source == nullptr) {
      Report(Pointer(), "\"" + key + "\" must be a string, got " + std::string(value.type_name()));
      return NullNode();
    }
    std::string at = Pointer();
    AppendToken(at, key);
    auto node = std::make_unique<TemplateNode>();
    node->where = rel_;
    if (has_ref) {
      auto ref = expr::Ref::parse(*source);
      if (!ref.ok()) {
        Report(std::move(at), "invalid $ref: " + ref.status().message());
        return NullNode();
      }
      node->kind = Kind::kRef;
      node->ref = std::move(ref).value();
      uses_.push_back(Template::Use{node->ref.root(), std::move(at)});
    } else {
      auto expression = expr::Expression::parse(*source);
      if (!expression.ok()) {
        Report(std::move(at), "invalid $expr: " + expression.status().message());
        return NullNode();
      }
      node->kind = Kind::kExpr;
      node->expression = std::move(expression).value();
      for (const std::string& root : node->expression.roots()) {
        uses_.push_back(Template::Use{root, at});
      }
    }
    return node;
  }

  // An object or array: compiles the children, then builds the static skeleton if any child is
  // dynamic (or was malformed and replaced by null).
  std::unique_ptr<TemplateNode> CompileContainer(const json& doc) {
    const bool is_object = doc.is_object();
    std::vector<std::unique_ptr<TemplateNode>> compiled;  // parallel to doc's children
    bool any = false;
    std::size_t index = 0;
    for (auto it = doc.begin(); it != doc.end(); ++it, ++index) {
      const std::size_t length = rel_.size();
      if (is_object) {
        AppendToken(rel_, it.key());
      } else {
        rel_ += '/';
        rel_ += std::to_string(index);
      }
      std::unique_ptr<TemplateNode> child = Compile(it.value());
      rel_.resize(length);
      any = any || child != nullptr;
      compiled.push_back(std::move(child));
    }
    if (!any) return nullptr;

    auto node = std::make_unique<TemplateNode>();
    node->kind = is_object ? Kind::kObject : Kind::kArray;
    node->literal = is_object ? json::object() : json::array();
    index = 0;
    for (auto it = doc.begin(); it != doc.end(); ++it, ++index) {
      std::unique_ptr<TemplateNode>& child = compiled[index];
      json slot;
      if (child == nullptr) {
        slot = it.value();
      } else if (child->kind == Kind::kLiteral) {
        slot = std::move(child->literal);
      } else {
        TemplateNode::Child c;
        if (is_object) c.key = it.key();
        c.index = index;
        c.node = std::move(child);
        node->children.push_back(std::move(c));
      }
      if (is_object) {
        node->literal.get_ref<json::object_t&>().emplace(it.key(), std::move(slot));
      } else {
        node->literal.get_ref<json::array_t&>().push_back(std::move(slot));
      }
    }
    if (node->children.empty()) {  // only malformed children: the skeleton is the value
      node->kind = Kind::kLiteral;
    }
    return node;
  }

  std::string base_;
  std::string rel_;
  std::vector<Problem>& problems_;
  std::vector<Template::Use>& uses_;
};

bool EvalNode(const TemplateNode& n, const expr::Scope& scope, json& out, Status& error) {
  switch (n.kind) {
    case Kind::kLiteral: out = n.literal; return true;
    case Kind::kRef: out = n.ref.eval(scope); return true;
    case Kind::kExpr: {
      auto value = n.expression.eval(scope);
      if (!value.ok()) {
        const std::string prefix = n.where.empty() ? "$expr: " : "$expr at " + n.where + ": ";
        error = Status(RuntimeErrc::kExpressionError, prefix + value.status().message());
        return false;
      }
      out = std::move(value).value();
      return true;
    }
    case Kind::kObject:
      out = n.literal;
      for (const TemplateNode::Child& c : n.children) {
        if (!EvalNode(*c.node, scope, out.get_ref<json::object_t&>()[c.key], error)) return false;
      }
      return true;
    case Kind::kArray:
      out = n.literal;
      for (const TemplateNode::Child& c : n.children) {
        if (!EvalNode(*c.node, scope, out.get_ref<json::array_t&>()[c.index], error)) return false;
      }
      return true;
  }
  return true;
}

}  // namespace

Template Template::compile(const expr::json& doc, std::string_view pointer,
                           std::vector<Problem>& problems) {
  Template t;
  Compiler compiler(pointer, problems, t.uses_);
  std::unique_ptr<TemplateNode> root = compiler.Compile(doc);
  if (root == nullptr) {
    root = std::make_unique<TemplateNode>();
    root->literal = doc;
  }
  t.root_ = std::move(root);
  return t;
}

Result<expr::json> Template::eval(const expr::Scope& scope) const {
  if (!root_) return json(nullptr);
  try {
    json out;
    Status error;
    if (!EvalNode(*root_, scope, out, error)) return error;
    return out;
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kExpressionError,
                  std::string("template evaluation failed: ") + e.what());
  } catch (...) {
    return Status(RuntimeErrc::kExpressionError, "template evaluation failed");
  }
}

bool Template::is_static() const {
  return !root_ || root_->kind == Kind::kLiteral;
}

}  // namespace yantra
