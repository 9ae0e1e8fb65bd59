// libFuzzer target: JSON Patch, JSON Merge Patch and JSON Pointer
// (runtime/json_patch.hpp). The input is JSON text, read with the API's
// limits (parse_json_text). It is used three ways against a small fixed
// document shaped like an execution's state:
//   - as an RFC 6902 patch: apply_patch is total (errors are values), and
//     when it succeeds diff(doc, result) turns doc into the result;
//   - as a target: diff(doc, x) applies to doc giving x, and back;
//   - as an RFC 7396 merge patch (a fork's input override), which is total;
// and a string input is also read as a JSON pointer, which must round-trip.
// Seeds: tests/fuzz/corpus/json_patch/ (the unit tests' patches).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/flow.hpp"
#include "runtime/json_patch.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using yantra::json;

const json& fixed_doc() {
  static const json doc = json::parse(R"({
      "input": {"name": "Ada", "items": [1, 2, {"k": "v"}], "a/b": 1, "m~n": 2, "": 0},
      "steps": {"get": {"status": "completed", "output": [{"id": 1}, {"id": 2}]}},
      "status": "running", "seq": 7, "n": null})");
  return doc;
}

void check_diff(const json& from, const json& to) {
  const json patch = yantra::diff(from, to);
  auto r = yantra::apply_patch(from, patch);
  FUZZ_CHECK(r.ok(), "diff does not apply: %s\npatch: %s", r.status().to_string().c_str(),
             patch.dump().c_str());
  FUZZ_CHECK(*r == to, "applying diff(from, to) does not give `to`\npatch: %s",
             patch.dump().c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = yantra::parse_json_text(text);
  if (!parsed.ok()) return 0;
  const json& x = *parsed;
  const json& doc = fixed_doc();

  auto applied = yantra::apply_patch(doc, x);
  if (applied.ok()) {
    check_diff(doc, *applied);
  } else {
    FUZZ_CHECK(applied.status().code() == "invalid_patch", "unexpected error code %s",
               applied.status().to_string().c_str());
  }

  check_diff(doc, x);
  check_diff(x, doc);

  json merged = doc;
  yantra::merge_patch(merged, x);

  if (x.is_string()) {
    const std::string& pointer = x.get_ref<const std::string&>();
    auto tokens = yantra::parse_pointer(pointer);
    if (tokens.ok()) {
      FUZZ_CHECK(yantra::make_pointer(*tokens) == pointer, "pointer %s does not round-trip",
                 pointer.c_str());
    } else {
      FUZZ_CHECK(tokens.status().code() == "invalid_pointer", "unexpected error code %s",
                 tokens.status().to_string().c_str());
    }
  }
  return 0;
}
