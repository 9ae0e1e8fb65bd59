// JSON Patch / Pointer / Merge Patch. Every access goes through find() and
// explicit type checks: nlohmann's at() and json_pointer throw, and nothing
// in runtime/ may let an exception escape (a bad patch from a client must be
// an error value, not a crashed actor).
#include "runtime/json_patch.hpp"
#include "runtime/errc.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace yantra {
namespace {

Status bad_patch(size_t index, const std::string& what) {
  return Status(RuntimeErrc::kInvalidPatch, "op " + std::to_string(index) + ": " + what);
}

// RFC 6901 array index: "0" or digits without a leading zero, within size_t.
bool parse_index(const std::string& token, size_t& out) {
  if (token.empty() || token.size() > 18) return false;
  if (token.size() > 1 && token[0] == '0') return false;
  size_t v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  out = v;
  return true;
}

// The value at `tokens` (all of them, or the first `count`), or null.
json* resolve(json& doc, const std::vector<std::string>& tokens, size_t count) {
  json* cur = &doc;
  for (size_t i = 0; i < count; ++i) {
    const std::string& tok = tokens[i];
    if (cur->is_object()) {
      auto it = cur->find(tok);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      size_t idx = 0;
      if (!parse_index(tok, idx) || idx >= cur->size()) return nullptr;
      cur = &(*cur)[idx];
    } else {
      return nullptr;
    }
  }
  return cur;
}

json* resolve(json& doc, const std::vector<std::string>& tokens) {
  return resolve(doc, tokens, tokens.size());
}

// The op bodies return "" on success, else what went wrong.
std::string add_at(json& doc, const std::vector<std::string>& tokens, json value) {
  if (tokens.empty()) {
    doc = std::move(value);
    return "";
  }
  json* parent = resolve(doc, tokens, tokens.size() - 1);
  if (parent == nullptr) return "the parent of the path does not exist";
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    (*parent)[last] = std::move(value);
    return "";
  }
  if (parent->is_array()) {
    if (last == "-") {
      parent->push_back(std::move(value));
      return "";
    }
    size_t idx = 0;
    if (!parse_index(last, idx) || idx > parent->size()) return "array index out of range";
    parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(idx), std::move(value));
    return "";
  }
  return "the parent of the path is not an object or array";
}

std::string remove_at(json& doc, const std::vector<std::string>& tokens) {
  if (tokens.empty()) return "cannot remove the whole document";
  json* parent = resolve(doc, tokens, tokens.size() - 1);
  if (parent == nullptr) return "the path does not exist";
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it == parent->end()) return "the path does not exist";
    parent->erase(it);
    return "";
  }
  if (parent->is_array()) {
    size_t idx = 0;
    if (!parse_index(last, idx) || idx >= parent->size()) return "the path does not exist";
    parent->erase(static_cast<size_t>(idx));
    return "";
  }
  return "the path does not exist";
}

// Reads the member `key` of op `index` as a pointer.
Result<std::vector<std::string>> op_pointer(const json& op, const char* key, size_t index) {
  auto it = op.find(key);
  if (it == op.end() || !it->is_string()) {
    return bad_patch(index, std::string("\"") + key + "\" must be a string");
  }
  auto tokens = parse_pointer(it->get_ref<const std::string&>());
  if (!tokens.ok()) return bad_patch(index, tokens.status().message());
  return tokens;
}

bool is_prefix(const std::vector<std::string>& prefix, const std::vector<std::string>& of) {
  if (prefix.size() > of.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (prefix[i] != of[i]) return false;
  }
  return true;
}

Status apply_op(json& doc, const json& op, size_t index) {
  if (!op.is_object()) return bad_patch(index, "an operation must be an object");
  auto oit = op.find("op");
  if (oit == op.end() || !oit->is_string()) return bad_patch(index, "\"op\" must be a string");
  const std::string& name = oit->get_ref<const std::string&>();
  auto path = op_pointer(op, "path", index);
  if (!path.ok()) return path.status();
  auto vit = op.find("value");
  const bool needs_value = name == "add" || name == "replace" || name == "test";
  if (needs_value && vit == op.end()) return bad_patch(index, "\"value\" is missing");
  std::string err;
  if (name == "add") {
    err = add_at(doc, *path, *vit);
  } else if (name == "remove") {
    err = remove_at(doc, *path);
  } else if (name == "replace") {
    json* target = resolve(doc, *path);
    if (target == nullptr) {
      err = "the path does not exist";
    } else {
      *target = *vit;
    }
  } else if (name == "test") {
    json* target = resolve(doc, *path);
    if (target == nullptr) {
      err = "the path does not exist";
    } else if (*target != *vit) {
      err = "test failed: the value differs";
    }
  } else if (name == "move" || name == "copy") {
    auto from = op_pointer(op, "from", index);
    if (!from.ok()) return from.status();
    json* source = resolve(doc, *from);
    if (source == nullptr) return bad_patch(index, "\"from\" does not exist");
    json value = *source;
    if (name == "move") {
      if (*from == *path) return {};
      if (is_prefix(*from, *path)) return bad_patch(index, "cannot move a value into itself");
      err = remove_at(doc, *from);
    }
    if (err.empty()) err = add_at(doc, *path, std::move(value));
  } else {
    return bad_patch(index, "unknown op \"" + name + "\"");
  }
  if (!err.empty()) return bad_patch(index, err + " (" + make_pointer(*path) + ")");
  return {};
}

void diff_into(const json& from, const json& to, std::vector<std::string>& at, json& out) {
  if (from == to) return;
  if (from.is_object() && to.is_object()) {
    auto f = from.begin();
    auto t = to.begin();
    // Both iterate in sorted key order: a merge walk.
    while (f != from.end() || t != to.end()) {
      if (t == to.end() || (f != from.end() && f.key() < t.key())) {
        at.push_back(f.key());
        out.push_back({{"op", "remove"}, {"path", make_pointer(at)}});
        at.pop_back();
        ++f;
      } else if (f == from.end() || t.key() < f.key()) {
        at.push_back(t.key());
        out.push_back({{"op", "add"}, {"path", make_pointer(at)}, {"value", *t}});
        at.pop_back();
        ++t;
      } else {
        at.push_back(f.key());
        diff_into(*f, *t, at, out);
        at.pop_back();
        ++f;
        ++t;
      }
    }
    return;
  }
  if (from.is_array() && to.is_array()) {
    const size_t common = std::min(from.size(), to.size());
    for (size_t i = 0; i < common; ++i) {
      at.push_back(std::to_string(i));
      diff_into(from[i], to[i], at, out);
      at.pop_back();
    }
    for (size_t i = common; i < to.size(); ++i) {
      at.push_back(std::to_string(i));
      out.push_back({{"op", "add"}, {"path", make_pointer(at)}, {"value", to[i]}});
      at.pop_back();
    }
    for (size_t i = from.size(); i > common; --i) {
      at.push_back(std::to_string(i - 1));
      out.push_back({{"op", "remove"}, {"path", make_pointer(at)}});
      at.pop_back();
    }
    return;
  }
  out.push_back({{"op", "replace"}, {"path", make_pointer(at)}, {"value", to}});
}

}  // namespace

std::string pointer_escape(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string make_pointer(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    out += '/';
    out += pointer_escape(t);
  }
  return out;
}

Result<std::vector<std::string>> parse_pointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') {
    return Status(RuntimeErrc::kInvalidPointer,
                  "JSON pointer \"" + std::string(pointer) + "\" must be empty or start with '/'");
  }
  std::string cur;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        cur += pointer[i + 1] == '0' ? '~' : '/';
        ++i;
        continue;
      }
      return Status(RuntimeErrc::kInvalidPointer, "JSON pointer \"" + std::string(pointer) +
                                                      "\" has a '~' not followed by 0 or 1");
    }
    cur += pointer[i];
  }
  return tokens;
}

json diff(const json& from, const json& to) {
  json out = json::array();
  std::vector<std::string> at;
  diff_into(from, to, at, out);
  return out;
}

Result<json> apply_patch(json doc, const json& patch) {
  if (!patch.is_array()) return Status(RuntimeErrc::kInvalidPatch, "a JSON Patch must be an array");
  for (size_t i = 0; i < patch.size(); ++i) {
    Status s = apply_op(doc, patch[i], i);
    if (!s.is_ok()) return s;
  }
  return doc;
}

void merge_patch(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it->is_null()) {
      target.erase(it.key());
    } else {
      merge_patch(target[it.key()], *it);
    }
  }
}

}  // namespace yantra
