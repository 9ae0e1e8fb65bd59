// A JSON Schema validator for the subset that tool descriptions use (the
// built-in tools' schemas and, later, MCP `inputSchema`s and worker tools).
//
// Why our own: Debian 12 packages no C++ JSON Schema validator (only Go and
// Python ones), and tool schemas use a small, stable part of the standard.
// Keywords understood (draft 2020-12 / draft-07 meaning):
//   type (a name or a list; "integer" accepts 2.0), enum, const,
//   properties, required, additionalProperties (bool or schema),
//   items (one schema), minItems, maxItems,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
//   minLength, maxLength (in code points), pattern (ECMAScript regex),
//   oneOf, anyOf, allOf, not.
// Everything else (title, description, default, examples, format, $schema,
// $id, $comment, ...) is an annotation and ignored, as the standard says of
// unknown keywords; `$ref` inside a schema is not followed (accepted as
// "anything") — check_schema() reports it so that a registrar can tell.
//
// Values from flows may still be placeholders: {"$ref": ...} / {"$expr": ...}
// (known only when the step starts) are not checked at all, and
// {"$secret": NAME} / {"$concat": [...]} (resolved only when the tool is
// called, never recorded) are checked as a string of unknown content (only
// `type` applies). So the same call serves store time (the definition as
// written) and run time (the parameters as resolved for the attempt).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

using json = nlohmann::json;

// Appends one Problem per violation to `problems`, each with the JSON
// pointer of the offending value (`pointer` is the location of `value`
// itself). Stops descending into a value after its first type mismatch.
void validate_schema(const json& schema, const json& value, std::string_view pointer,
                     std::vector<Problem>& problems);

// True when `value` is known only at run time ({"$ref"}/{"$expr"}), or when
// it is a secret placeholder that resolves to a string at call time.
bool is_dynamic_value(const json& value);
bool is_secret_string(const json& value);

// Problems of a schema itself (for tools registered at run time): not an
// object/boolean, a keyword of the wrong type, or `$ref` (not followed).
// `pointer` is where the schema sits in the registration document.
void check_schema(const json& schema, std::string_view pointer, std::vector<Problem>& problems);

}  // namespace yantra
