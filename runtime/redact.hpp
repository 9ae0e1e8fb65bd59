// Redaction of secrets in values shown to users (timeline, state views).
//
// Why two rules and nothing cleverer: secrets enter executions in exactly
// two ways. Step parameters reference vault secrets with a marker object
// {"$secret": "<name>"} that is resolved only when the tool is invoked (the
// resolved value is never stored in the log), so the marker is what logs
// and states contain; and a tool may echo a resolved secret back in its
// output, which only a comparison with the resolved values can catch.
// Guessing by key names ("password", "token") would hide innocent data and
// still miss secrets, so it is not done.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

using json = nlohmann::json;

inline constexpr const char* kRedacted = "***";

// Replaces every object of the exact form {"$secret": "<name>"} (one member,
// a string value), at any depth, by the string "***". Everything else is
// returned unchanged, object keys included.
json redact(const json& value);

// As above, and also replaces every string value and every object key equal
// to or containing one of `secret_values` (empty ones are ignored: they would
// match everything) by "***" (keys that collide keep the last value).
json redact(const json& value, const std::vector<std::string>& secret_values);

// Resolution, the other side of the marker: true when `value` holds a
// {"$secret": "<name>"} marker at any depth (cheap; most parameters hold none).
bool has_secret_marker(const json& value);

// True when `value` holds a {"$concat": [...]} at any depth: a string built
// when the tool is called, so that a secret can be part of a string
// ("Bearer " + token) without the joined string ever being recorded.
bool has_concat(const json& value);

// A copy of `value` with every marker replaced by the secret's value from
// `lookup` (nullopt = no such secret: error "secret_not_found" naming it).
// The resolved values are appended to `values` so that whatever the tool
// answers can be scrubbed of them before it is recorded. Pure: the vault
// lookup is the caller's. Every {"$concat": [parts]} becomes the string of
// its parts joined (strings; numbers and booleans as JSON writes them;
// markers resolved); any other part is error "expression_error".
using SecretLookup = std::function<Result<std::optional<std::string>>(const std::string& name)>;
Result<json> resolve_secrets(const json& value, const SecretLookup& lookup,
                             std::vector<std::string>* values);

}  // namespace yantra
