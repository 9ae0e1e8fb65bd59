// libFuzzer target: the `$expr` language and `$ref` paths (runtime/expr.hpp).
// The input is the expression text; it is parsed, and when it parses it is
// evaluated twice against a small fixed scope shaped like an execution's
// (input, item, index, step outputs). Errors must be values with the
// documented codes, and evaluation must be deterministic (replay depends on
// it). The same text is also tried as a $ref path. Seeds:
// tests/fuzz/corpus/expr/ (the expressions of the unit tests and examples/).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "runtime/expr.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using yantra::expr::json;

class FixedScope final : public yantra::expr::Scope {
 public:
  FixedScope()
      : values_{
            {"input", json::parse(R"({
                "name": "Ada", "count": 3, "price": 2.5, "flag": true, "none": null,
                "items": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                "tags": ["x", "y"], "obj": {"k": 1, "0": "zero"}, "text": "h\u00e9llo",
                "big": 9223372036854775807, "neg": -5, "empty": "", "list": [3, 1.5, 7, -2],
                "huge": 1e308, "tiny": 5e-324, "umax": 18446744073709551615
            })")},
            {"item", "current"},
            {"index", 2},
            {"fetch-user", json{{"id", 42}, {"tags", json::array({"a", "b"})}}},
            {"get", json{{"items", json::array({json{{"name", "n0"}}})}}},
        } {}
  const json* lookup(std::string_view name) const override {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, json, std::less<>> values_;
};

// Expressions come out of JSON documents, so their text is valid UTF-8;
// only then must their results be too.
bool valid_utf8(std::string_view text) {
  try {
    (void)json(std::string(text)).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FixedScope scope;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto e = yantra::expr::Expression::parse(text);
  if (!e.ok()) {
    FUZZ_CHECK(e.status().code() == "invalid_expression", "unexpected error code %s",
               e.status().to_string().c_str());
  } else {
    auto first = e->eval(scope);
    auto second = e->eval(scope);
    FUZZ_CHECK(first.ok() == second.ok(), "eval is not deterministic");
    if (first.ok()) {
      FUZZ_CHECK(*first == *second, "eval is not deterministic: %s vs %s", first->dump().c_str(),
                 second->dump().c_str());
      // Results end up in events and API answers: they must serialise.
      if (valid_utf8(text)) {
        try {
          (void)first->dump();
        } catch (const json::exception& x) {
          FUZZ_CHECK(false, "the result of a valid UTF-8 expression does not dump: %s", x.what());
        }
      }
      (void)yantra::expr::truthy(*first);
    } else {
      FUZZ_CHECK(first.status().code() == "expression_error", "unexpected error code %s",
                 first.status().to_string().c_str());
    }
  }

  auto ref = yantra::expr::Ref::parse(text);
  if (ref.ok()) {
    (void)ref->eval(scope);
  } else {
    FUZZ_CHECK(ref.status().code() == "invalid_ref", "unexpected error code %s",
               ref.status().to_string().c_str());
  }
  return 0;
}
