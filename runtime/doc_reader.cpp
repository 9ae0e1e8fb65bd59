// The messages are part of the API (tenants read them, tests pin them), so
// they are spelled once, here, exactly as flow_parse.cpp spells them.
#include "runtime/doc_reader.hpp"

#include <algorithm>

#include "base/utf8.hpp"
#include "runtime/json_patch.hpp"

namespace yantra {
namespace {

// Ranges whose upper bound is at least this are open-ended in messages
// (flow_parse.cpp's kMaxDurationMs: 100 years in ms).
constexpr int64_t kOpenEnded = 100LL * 365 * 24 * 3600 * 1000;

}  // namespace

std::string pointer_child(std::string_view pointer, std::string_view key) {
  std::string out(pointer);
  out += '/';
  out += pointer_escape(key);
  return out;
}

std::string pointer_child(std::string_view pointer, size_t index) {
  return std::string(pointer) + "/" + std::to_string(index);
}

std::string quote_name(std::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(utf8::truncate(s, kMax)) + "...'";
}

void DocReader::add(std::string path, std::string message) {
  problems_.push_back(Problem{std::move(path), std::move(message)});
}

const nlohmann::json* DocReader::find(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool DocReader::expect_object(const json& value, std::string_view pointer) {
  if (value.is_object()) return true;
  add(std::string(pointer), "must be an object");
  return false;
}

void DocReader::check_fields(const json& obj, std::string_view pointer,
                             std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      add(pointer_child(pointer, key), "unknown field " + quote_name(key));
    }
  }
}

bool DocReader::read_string(const json& obj, std::string_view key, std::string_view pointer,
                            bool required, std::string& out, bool non_empty) {
  const json* v = find(obj, key);
  if (v == nullptr) {
    if (required) add(pointer_child(pointer, key), "is required");
    return false;
  }
  if (!v->is_string() || (non_empty && v->get_ref<const std::string&>().empty())) {
    add(pointer_child(pointer, key), non_empty ? "must be a non-empty string" : "must be a string");
    return false;
  }
  out = v->get<std::string>();
  return true;
}

bool DocReader::read_enum(const json& obj, std::string_view key, std::string_view pointer,
                          bool required, std::initializer_list<std::string_view> values,
                          std::string& out) {
  const json* v = find(obj, key);
  if (v == nullptr) {
    if (required) add(pointer_child(pointer, key), "is required");
    return false;
  }
  if (v->is_string() &&
      std::find(values.begin(), values.end(), v->get_ref<const std::string&>()) != values.end()) {
    out = v->get<std::string>();
    return true;
  }
  std::string message = "must be one of ";
  for (std::string_view value : values) {
    if (value != *values.begin()) message += ", ";
    message += value;
  }
  add(pointer_child(pointer, key), message);
  return false;
}

bool DocReader::read_int(const json& obj, std::string_view key, std::string_view pointer,
                         bool required, int64_t min, int64_t max, int64_t& out) {
  const json* v = find(obj, key);
  if (v == nullptr) {
    if (required) add(pointer_child(pointer, key), "is required");
    return false;
  }
  bool bounded = max < kOpenEnded;
  std::string range =
      bounded ? "must be an integer between " + std::to_string(min) + " and " + std::to_string(max)
              : "must be an integer ≥ " + std::to_string(min);
  if (!v->is_number_integer()) {
    add(pointer_child(pointer, key), range);
    return false;
  }
  bool too_big = v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(max)
                                         : v->get<int64_t>() > max;
  if (too_big) {
    add(pointer_child(pointer, key), bounded ? range : "must be at most " + std::to_string(max));
    return false;
  }
  int64_t value = v->get<int64_t>();
  if (value < min) {
    add(pointer_child(pointer, key), range);
    return false;
  }
  out = value;
  return true;
}

bool DocReader::read_secret(const json& obj, std::string_view key, std::string_view pointer,
                            bool required, json& out) {
  const json* v = find(obj, key);
  if (v == nullptr) {
    if (required) add(pointer_child(pointer, key), "is required");
    return false;
  }
  bool literal = v->is_string() && !v->get_ref<const std::string&>().empty();
  bool marker = v->is_object() && v->size() == 1 && v->contains("$secret") &&
                (*v)["$secret"].is_string() &&
                !(*v)["$secret"].get_ref<const std::string&>().empty();
  if (!literal && !marker) {
    add(pointer_child(pointer, key), "must be a non-empty string or {\"$secret\": \"<name>\"}");
    return false;
  }
  out = *v;
  return true;
}

}  // namespace yantra
