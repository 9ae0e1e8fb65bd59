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

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yantra {

using json = nlohmann::json;

inline constexpr const char* kRedacted = "***";

// Replaces every object of the exact form {"$secret": "<name>"} (one member,
// a string value), at any depth, by the string "***". Everything else is
// returned unchanged, object keys included.
json redact(const json& value);

// As above, and also replaces every string value equal to or containing one
// of `secret_values` (empty ones are ignored: they would match everything)
// by "***". Object keys are left alone.
json redact(const json& value, const std::vector<std::string>& secret_values);

}  // namespace yantra
