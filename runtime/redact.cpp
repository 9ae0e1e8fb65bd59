// Redaction is a copy, never in place: the values come from the state or
// the log, which must keep exactly what happened (the marker, not "***").
#include "runtime/redact.hpp"
#include "runtime/errc.hpp"

namespace yantra {
namespace {

bool is_secret_marker(const json& v) {
  if (!v.is_object() || v.size() != 1) return false;
  auto it = v.begin();
  return it.key() == "$secret" && it->is_string();
}

bool contains_secret(const std::string& s, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (!secret.empty() && s.find(secret) != std::string::npos) return true;
  }
  return false;
}

json redact_value(const json& v, const std::vector<std::string>& secrets) {
  if (is_secret_marker(v)) return kRedacted;
  if (v.is_object()) {
    json out = json::object();
    // A key may carry a secret too (a server answering {"<token>": ...}).
    for (auto it = v.begin(); it != v.end(); ++it) {
      out[contains_secret(it.key(), secrets) ? kRedacted : it.key()] = redact_value(*it, secrets);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& item : v) out.push_back(redact_value(item, secrets));
    return out;
  }
  if (v.is_string() && contains_secret(v.get_ref<const std::string&>(), secrets)) return kRedacted;
  return v;
}

bool is_concat(const json& v) {
  return v.is_object() && v.size() == 1 && v.begin().key() == "$concat";
}

Status resolve_into(json& v, const SecretLookup& lookup, std::vector<std::string>* values);

// {"$concat": [parts]} -> one string. Parts are strings, numbers and
// booleans (as JSON writes them), secret markers and nested $concat; an
// object, an array or null is a mistake the author must see, not "null".
Status fold_concat(json& v, const SecretLookup& lookup, std::vector<std::string>* values) {
  const json& parts = v.begin().value();
  if (!parts.is_array()) {
    return Status(RuntimeErrc::kExpressionError, "$concat must be a list of strings");
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    json part = parts[i];
    Status s = resolve_into(part, lookup, values);
    if (!s.is_ok()) return s;
    if (part.is_string()) {
      out += part.get_ref<const std::string&>();
    } else if (part.is_number() || part.is_boolean()) {
      out += part.dump();
    } else {
      return Status(RuntimeErrc::kExpressionError, "$concat part " + std::to_string(i) + " is " +
                                                       std::string(part.type_name()) +
                                                       ", not a string, number or boolean");
    }
  }
  v = std::move(out);
  return Status::ok();
}

Status resolve_into(json& v, const SecretLookup& lookup, std::vector<std::string>* values) {
  if (is_concat(v)) return fold_concat(v, lookup, values);
  if (is_secret_marker(v)) {
    const std::string name = v.begin()->get<std::string>();
    auto secret = lookup(name);
    if (!secret.ok()) return secret.status();
    if (!secret.value().has_value()) {
      return Status(RuntimeErrc::kSecretNotFound,
                    "secret '" + name + "' does not exist in this tenant");
    }
    if (values != nullptr) values->push_back(*secret.value());
    v = std::move(*secret.value());
    return Status::ok();
  }
  if (v.is_object() || v.is_array()) {
    for (auto& item : v) {
      Status s = resolve_into(item, lookup, values);
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

}  // namespace

bool has_secret_marker(const json& value) {
  if (is_secret_marker(value)) return true;
  if (value.is_object() || value.is_array()) {
    for (const auto& item : value) {
      if (has_secret_marker(item)) return true;
    }
  }
  return false;
}

bool has_concat(const json& value) {
  if (is_concat(value)) return true;
  if (value.is_object() || value.is_array()) {
    for (const auto& item : value) {
      if (has_concat(item)) return true;
    }
  }
  return false;
}

Result<json> resolve_secrets(const json& value, const SecretLookup& lookup,
                             std::vector<std::string>* values) {
  json out = value;
  Status s = resolve_into(out, lookup, values);
  if (!s.is_ok()) return s;
  return out;
}

json redact(const json& value) {
  return redact_value(value, {});
}

json redact(const json& value, const std::vector<std::string>& secret_values) {
  return redact_value(value, secret_values);
}

}  // namespace yantra
