// Field readers for validating untrusted JSON documents against a schema,
// each problem recorded at its JSON pointer.
//
// Why a class of its own: a definition is checked by several parsers (the
// flow and its steps, the trigger, the callbacks), and a tenant must see the
// same message for the same mistake wherever it is ("is required", "must be
// a string", "unknown field 'x'"). The readers say whether they set `out`
// and never throw, so a parser states the rules of a document and never
// formats a message itself. flow_parse.cpp's Parser reads through it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

// `pointer` + "/" + the escaped key or index (RFC 6901).
std::string pointer_child(std::string_view pointer, std::string_view key);
std::string pointer_child(std::string_view pointer, size_t index);

// 's' in quotes, cut after 64 bytes (on a UTF-8 boundary): names echoed in
// messages come from the document, and a 1 MB key must not become a 1 MB
// message.
std::string quote_name(std::string_view s);

class DocReader {
 public:
  using json = nlohmann::json;

  explicit DocReader(std::vector<Problem>& problems) : problems_(problems) {}

  void add(std::string path, std::string message);

  static const json* find(const json& obj, std::string_view key);

  // "must be an object" unless it is one.
  bool expect_object(const json& value, std::string_view pointer);

  // One "unknown field 'k'" problem per key not in `allowed`.
  void check_fields(const json& obj, std::string_view pointer,
                    std::initializer_list<std::string_view> allowed);

  bool read_string(const json& obj, std::string_view key, std::string_view pointer, bool required,
                   std::string& out, bool non_empty = false);

  bool read_enum(const json& obj, std::string_view key, std::string_view pointer, bool required,
                 std::initializer_list<std::string_view> values, std::string& out);

  // Small bounded ranges are stated in full; open-ended ones (durations,
  // counts) state the lower bound, and the upper one only when exceeded.
  bool read_int(const json& obj, std::string_view key, std::string_view pointer, bool required,
                int64_t min, int64_t max, int64_t& out);

  // A credential: a literal non-empty string, or a reference to a vault
  // secret {"$secret": "<name>"}, stored as written so that the secret is
  // resolved when used and never copied into the definition.
  bool read_secret(const json& obj, std::string_view key, std::string_view pointer, bool required,
                   json& out);

 private:
  std::vector<Problem>& problems_;
};

}  // namespace yantra
