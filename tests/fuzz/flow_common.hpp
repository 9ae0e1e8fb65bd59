// Shared by the two flow-parser targets: what must hold for any document
// that either parser accepted.
#pragma once

#include <string>

#include "runtime/flow.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace yantra::fuzz {

// The tools a real node registers (actors/core_tool.cpp, actors/http_tool.cpp),
// so that action steps are validated against them as on a node.
inline const ParseOptions& node_parse_options() {
  static const ParseOptions opts{
      {{"core", {"echo", "fail", "sleep", "emit"}}, {"http", {"request"}}}};
  return opts;
}

// Whether any object key of `doc` is spelled, in JSON text, with more
// characters than YAML allows an implicit key (1024; a margin below it, as
// the limit counts from where the key's token starts).
inline bool has_long_key(const json& doc) {
  if (doc.is_object()) {
    for (const auto& [k, v] : doc.items()) {
      if (json(k).dump().size() >= 1000 || has_long_key(v)) return true;
    }
  } else if (doc.is_array()) {
    for (const auto& v : doc) {
      if (has_long_key(v)) return true;
    }
  }
  return false;
}

// `doc` came out of parse_json_text or yaml_to_json.
inline void check_document(const json& doc) {
  // runtime/yaml.cpp promises yaml_to_json(json_to_yaml(x)) == x for any
  // JSON x: a flow must mean the same in either spelling.
  const std::string yaml = json_to_yaml(doc);
  auto back = yaml_to_json(yaml);
  FUZZ_CHECK(back.ok(), "json_to_yaml output does not parse: %s\n--- yaml:\n%s",
             back.status().to_string().c_str(), yaml.c_str());
  FUZZ_CHECK(*back == doc, "YAML round trip changed the document\n--- json:\n%s\n--- yaml:\n%s",
             doc.dump().c_str(), yaml.c_str());
  // And so must JSON: what we store (dump) reads back as the same value.
  const std::string text = doc.dump();
  auto again = parse_json_text(text);
  FUZZ_CHECK(again.ok() && *again == doc, "JSON round trip failed: %s", text.c_str());
  // JSON text is YAML (json_to_yaml writes some documents that way), but
  // for one limit: YAML caps an implicit key at 1024 characters, so JSON
  // text with a longer key is refused (invalid_yaml, a 400), never read as
  // something else (tests/fuzz found a 1,270-character key).
  auto as_yaml = yaml_to_json(text);
  if (as_yaml.ok()) {
    FUZZ_CHECK(*as_yaml == doc, "JSON text read as YAML differs: %s", text.c_str());
  } else {
    FUZZ_CHECK(has_long_key(doc) && as_yaml.status().code() == "invalid_yaml",
               "JSON text refused as YAML: %s\n--- json:\n%s", as_yaml.status().to_string().c_str(),
               text.c_str());
  }

  auto flow = parse_flow(doc, node_parse_options());
  if (!flow.ok()) {
    FUZZ_CHECK(flow.status().code() == "invalid_flow", "unexpected error code %s",
               flow.status().to_string().c_str());
    return;
  }
  // An accepted flow is stored as its canonical source and parsed again
  // whenever a node loads it: that must never fail.
  auto reloaded = parse_flow((*flow)->source, node_parse_options());
  FUZZ_CHECK(reloaded.ok(), "a flow's own source does not parse again: %s\n%s",
             reloaded.status().to_string().c_str(), (*flow)->source.dump().c_str());
}

}  // namespace yantra::fuzz
