// libFuzzer target: a flow definition as JSON text, as POST /api/v1/flows
// receives it (parse_json_text, then parse_flow with a node's tools), plus the
// invariants of flow_common.hpp. Seeds: tests/fuzz/corpus/flow_json/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/flow_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = yantra::parse_json_text(text);
  if (!doc.ok()) {
    FUZZ_CHECK(doc.status().code() == "invalid_json", "unexpected error code %s",
               doc.status().to_string().c_str());
    return 0;
  }
  yantra::fuzz::check_document(*doc);
  return 0;
}
