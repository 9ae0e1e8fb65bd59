// The validator of json_schema.hpp: one recursive walk of schema and value.
// Messages say what was expected in words a flow author reads ("must be an
// integer", "is required") and the pointer says where.
#include "runtime/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <regex>

#include "runtime/doc_reader.hpp"

namespace yantra {
namespace {

const json* member(const json& schema, const char* key) {
  if (!schema.is_object()) return nullptr;
  auto it = schema.find(key);
  return it == schema.end() ? nullptr : &*it;
}

bool is_integer(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const json& v, const std::string& type) {
  if (type == "null") return v.is_null();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string() || is_secret_string(v);
  if (type == "number") return v.is_number();
  if (type == "integer") return is_integer(v);
  return false;
}

std::string article(const std::string& type) {
  return (type == "object" || type == "array" || type == "integer" ? "an " : "a ") + type;
}

std::string type_words(const json& type) {
  if (type.is_string()) return article(type.get<std::string>());
  std::string out;
  for (size_t i = 0; i < type.size(); ++i) {
    if (i > 0) out += i + 1 == type.size() ? " or " : ", ";
    out += type[i].is_string() ? article(type[i].get<std::string>()) : type[i].dump();
  }
  return out;
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A bound as a reader writes it: 1, not 1.0.
std::string number_text(double d) {
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return json(d).dump();
}

std::string short_dump(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

class Validator {
 public:
  explicit Validator(std::vector<Problem>& problems) : problems_(problems) {}

  void run(const json& schema, const json& v, const std::string& at) {
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) add(at, "is not allowed here");
      return;
    }
    if (!schema.is_object() || is_dynamic_value(v)) return;
    const bool secret = is_secret_string(v);

    if (const json* type = member(schema, "type")) {
      bool ok = false;
      if (type->is_string()) {
        ok = has_type(v, type->get<std::string>());
      } else if (type->is_array()) {
        for (const auto& t : *type) ok = ok || (t.is_string() && has_type(v, t.get<std::string>()));
      } else {
        ok = true;  // a malformed schema: check_schema() reports it
      }
      if (!ok) {
        add(at, secret ? "is a secret, which is a string, but must be " + type_words(*type)
                       : "must be " + type_words(*type) + ", got " + std::string(v.type_name()));
        return;
      }
    }
    if (secret) return;  // its content is not known here

    if (const json* e = member(schema, "enum"); e != nullptr && e->is_array()) {
      bool found = false;
      for (const auto& option : *e) found = found || option == v;
      if (!found) add(at, "must be one of " + short_dump(*e));
    }
    if (const json* c = member(schema, "const"); c != nullptr && *c != v) {
      add(at, "must be " + short_dump(*c));
    }
    if (v.is_number()) numbers(schema, v.get<double>(), at);
    if (v.is_string()) strings(schema, v.get_ref<const std::string&>(), at);
    if (v.is_object()) object(schema, v, at);
    if (v.is_array()) array(schema, v, at);
    combinators(schema, v, at);
  }

 private:
  void add(const std::string& at, std::string message) {
    problems_.push_back(Problem{at, std::move(message)});
  }

  static bool number_of(const json& schema, const char* key, double& out) {
    const json* m = member(schema, key);
    if (m == nullptr || !m->is_number()) return false;
    out = m->get<double>();
    return true;
  }

  void numbers(const json& schema, double d, const std::string& at) {
    double bound = 0;
    auto show = [](double b) { return number_text(b); };
    if (number_of(schema, "minimum", bound) && d < bound) add(at, "must be ≥ " + show(bound));
    if (number_of(schema, "maximum", bound) && d > bound) add(at, "must be ≤ " + show(bound));
    if (number_of(schema, "exclusiveMinimum", bound) && d <= bound) {
      add(at, "must be > " + show(bound));
    }
    if (number_of(schema, "exclusiveMaximum", bound) && d >= bound) {
      add(at, "must be < " + show(bound));
    }
  }

  void strings(const json& schema, const std::string& s, const std::string& at) {
    double bound = 0;
    const size_t n = code_points(s);
    if (number_of(schema, "minLength", bound) && static_cast<double>(n) < bound) {
      add(at, "must be at least " + number_text(bound) + " characters long");
    }
    if (number_of(schema, "maxLength", bound) && static_cast<double>(n) > bound) {
      add(at, "must be at most " + number_text(bound) + " characters long");
    }
    if (const json* p = member(schema, "pattern"); p != nullptr && p->is_string()) {
      try {
        const std::regex re(p->get<std::string>(), std::regex::ECMAScript);
        if (!std::regex_search(s, re)) add(at, "must match the pattern " + p->dump());
      } catch (const std::regex_error&) {
        // An unsupported pattern is not the value's fault: check_schema() tells the registrar.
      }
    }
  }

  void object(const json& schema, const json& v, const std::string& at) {
    const json* props = member(schema, "properties");
    if (const json* req = member(schema, "required"); req != nullptr && req->is_array()) {
      for (const auto& name : *req) {
        if (name.is_string() && !v.contains(name.get<std::string>())) {
          add(pointer_child(at, name.get<std::string>()), "is required");
        }
      }
    }
    const json* extra = member(schema, "additionalProperties");
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string child = pointer_child(at, it.key());
      const json* sub = props != nullptr && props->is_object() && props->contains(it.key())
                            ? &(*props)[it.key()]
                            : nullptr;
      if (sub != nullptr) {
        run(*sub, *it, child);
      } else if (extra != nullptr && extra->is_boolean() && !extra->get<bool>()) {
        add(child, "is not a known field (allowed: " + known_fields(props) + ")");
      } else if (extra != nullptr && extra->is_object()) {
        run(*extra, *it, child);
      }
    }
  }

  static std::string known_fields(const json* props) {
    if (props == nullptr || !props->is_object() || props->empty()) return "none";
    std::string out;
    for (auto it = props->begin(); it != props->end(); ++it) {
      if (!out.empty()) out += ", ";
      out += it.key();
    }
    return out;
  }

  void array(const json& schema, const json& v, const std::string& at) {
    double bound = 0;
    if (number_of(schema, "minItems", bound) && static_cast<double>(v.size()) < bound) {
      add(at, "must have at least " + number_text(bound) + " items");
    }
    if (number_of(schema, "maxItems", bound) && static_cast<double>(v.size()) > bound) {
      add(at, "must have at most " + number_text(bound) + " items");
    }
    if (const json* items = member(schema, "items");
        items != nullptr && (items->is_object() || items->is_boolean())) {
      for (size_t i = 0; i < v.size(); ++i) run(*items, v[i], pointer_child(at, i));
    }
  }

  // How many of `options` accept v (each checked into a scratch list).
  size_t matching(const json& options, const json& v, const std::string& at,
                  std::vector<Problem>* first_failure) {
    size_t n = 0;
    for (const auto& option : options) {
      std::vector<Problem> scratch;
      Validator(scratch).run(option, v, at);
      if (scratch.empty()) {
        ++n;
      } else if (first_failure != nullptr && first_failure->empty()) {
        *first_failure = std::move(scratch);
      }
    }
    return n;
  }

  void combinators(const json& schema, const json& v, const std::string& at) {
    if (const json* all = member(schema, "allOf"); all != nullptr && all->is_array()) {
      for (const auto& option : *all) run(option, v, at);
    }
    if (const json* any = member(schema, "anyOf"); any != nullptr && any->is_array()) {
      std::vector<Problem> first;
      if (matching(*any, v, at, &first) == 0) {
        add(at, "matches none of the allowed forms (anyOf)" +
                    (first.empty()
                         ? std::string()
                         : "; the first says " + first.front().path + " " + first.front().message));
      }
    }
    if (const json* one = member(schema, "oneOf"); one != nullptr && one->is_array()) {
      std::vector<Problem> first;
      const size_t n = matching(*one, v, at, &first);
      if (n == 0) {
        add(at, "matches none of the allowed forms (oneOf)" +
                    (first.empty()
                         ? std::string()
                         : "; the first says " + first.front().path + " " + first.front().message));
      } else if (n > 1) {
        add(at, "matches " + std::to_string(n) + " of the forms where exactly one must (oneOf)");
      }
    }
    if (const json* no = member(schema, "not"); no != nullptr) {
      std::vector<Problem> scratch;
      Validator(scratch).run(*no, v, at);
      if (scratch.empty()) add(at, "matches a form that is not allowed (not)");
    }
  }

  std::vector<Problem>& problems_;
};

void check_into(const json& schema, const std::string& at, std::vector<Problem>& problems) {
  if (schema.is_boolean()) return;
  if (!schema.is_object()) {
    problems.push_back({at, "a schema must be an object or a boolean"});
    return;
  }
  auto bad = [&](const char* key, const char* what) {
    problems.push_back({pointer_child(at, key), std::string("must be ") + what});
  };
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    const std::string& k = it.key();
    const json& v = *it;
    if (k == "$ref") {
      problems.push_back({pointer_child(at, k), "references are not supported; inline the schema"});
    } else if (k == "type") {
      static const std::vector<std::string> kTypes = {"null",   "boolean", "object", "array",
                                                      "string", "number",  "integer"};
      auto known = [&](const json& t) {
        return t.is_string() &&
               std::find(kTypes.begin(), kTypes.end(), t.get<std::string>()) != kTypes.end();
      };
      bool ok = known(v);
      if (v.is_array()) {
        ok = !v.empty();
        for (const auto& t : v) ok = ok && known(t);
      }
      if (!ok) bad("type", "a JSON type name or a non-empty list of them");
    } else if (k == "properties") {
      if (!v.is_object()) {
        bad("properties", "an object of schemas");
        continue;
      }
      for (auto p = v.begin(); p != v.end(); ++p) {
        check_into(*p, pointer_child(pointer_child(at, k), p.key()), problems);
      }
    } else if (k == "required") {
      bool ok = v.is_array();
      if (ok) {
        for (const auto& r : v) ok = ok && r.is_string();
      }
      if (!ok) bad("required", "a list of property names");
    } else if (k == "additionalProperties" || k == "items" || k == "not") {
      check_into(v, pointer_child(at, k), problems);
    } else if (k == "oneOf" || k == "anyOf" || k == "allOf") {
      if (!v.is_array() || v.empty()) {
        bad(k.c_str(), "a non-empty list of schemas");
        continue;
      }
      for (size_t i = 0; i < v.size(); ++i) {
        check_into(v[i], pointer_child(pointer_child(at, k), i), problems);
      }
    } else if (k == "enum") {
      if (!v.is_array()) bad("enum", "a list");
    } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" ||
               k == "exclusiveMaximum") {
      if (!v.is_number()) bad(k.c_str(), "a number");
    } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems") {
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
        bad(k.c_str(), "an integer ≥ 0");
      }
    } else if (k == "pattern") {
      bool ok = v.is_string();
      if (ok) {
        try {
          std::regex re(v.get<std::string>(), std::regex::ECMAScript);
        } catch (const std::regex_error&) {
          ok = false;
        }
      }
      if (!ok) bad("pattern", "an ECMAScript regular expression");
    }
  }
}

}  // namespace

bool is_dynamic_value(const json& value) {
  return value.is_object() && (value.contains("$ref") || value.contains("$expr"));
}

bool is_secret_string(const json& value) {
  if (!value.is_object() || value.size() != 1) return false;
  auto it = value.begin();
  return (it.key() == "$secret" && it->is_string()) || (it.key() == "$concat" && it->is_array());
}

void validate_schema(const json& schema, const json& value, std::string_view pointer,
                     std::vector<Problem>& problems) {
  Validator(problems).run(schema, value, std::string(pointer));
}

void check_schema(const json& schema, std::string_view pointer, std::vector<Problem>& problems) {
  check_into(schema, std::string(pointer), problems);
}

}  // namespace yantra
