// libFuzzer target: a flow definition as YAML text (Content-Type
// application/yaml): yaml_to_json, then parse_flow with a node's tools, plus
// the invariants of flow_common.hpp. Alias bombs, deep nesting and invalid
// UTF-8 must come back as "invalid_yaml", never as a crash or a hang.
// Seeds: tests/fuzz/corpus/flow_yaml/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/flow_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = yantra::yaml_to_json(text);
  if (!doc.ok()) {
    FUZZ_CHECK(doc.status().code() == "invalid_yaml", "unexpected error code %s",
               doc.status().to_string().c_str());
    return 0;
  }
  yantra::fuzz::check_document(*doc);
  return 0;
}
