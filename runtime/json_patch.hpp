// JSON Patch (RFC 6902), JSON Pointer (RFC 6901) and JSON Merge Patch
// (RFC 7396) for the time machine.
//
// Why these three: the time machine shows how state changed between two seqs
// (diff -> a JSON Patch a client can render or replay), and users override
// state with the much simpler merge patch (StateOverridden's "input"). Both
// are standards so API clients can use off-the-shelf libraries.
//
// nlohmann::json has patch/diff/merge_patch of its own, but they throw on bad
// input and its diff emits removes in an order that depends on the library
// version; ours are total (errors are values) and their output is part of the
// API, so it is pinned here:
//   - objects are compared key by key in sorted order (remove / recurse /
//     add as the key is only in `from`, in both, or only in `to`);
//   - arrays element by element over the common prefix, then "add" at
//     explicit indexes for the extra elements of `to`, or "remove" from the
//     last index down for the extra elements of `from` (so every index in
//     the patch is valid when its op is applied);
//   - anything else that differs (scalars, a type change) is one "replace".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace yantra {

using json = nlohmann::json;

// An RFC 6902 patch (an array of {"op","path"[,"value"]}) turning `from`
// into `to`: apply_patch(from, diff(from, to)) == to. Empty when equal.
json diff(const json& from, const json& to);

// Applies an RFC 6902 patch: ops add, remove, replace, test, move and copy.
// Error "invalid_patch" naming the index of the failing op (a malformed op,
// a path that does not resolve, a failed test); on error nothing of `doc` is
// returned, so a patch applies completely or not at all.
Result<json> apply_patch(json doc, const json& patch);

// RFC 7396: members of an object `patch` are merged recursively into
// `target` (a null member deletes the key); a non-object patch replaces the
// target. Total.
void merge_patch(json& target, const json& patch);

// RFC 6901 pointers: "/a~1b/0" <-> {"a/b", "0"}.
std::string pointer_escape(std::string_view token);
std::string make_pointer(const std::vector<std::string>& tokens);
// Error "invalid_pointer" when the text is not "" and does not start with
// '/', or has a '~' not followed by '0' or '1'.
Result<std::vector<std::string>> parse_pointer(std::string_view pointer);

}  // namespace yantra
