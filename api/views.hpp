// JSON shapes of API resources, built from engine and storage records. One
// function per resource so that every route shows a resource the same way.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "api/http_server.hpp"
#include "base/result.hpp"
#include "runtime/execution.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra::api {

using json = nlohmann::json;

std::string iso_time(int64_t unix_ms);  // "" for 0
json flow_view(const v1::FlowVersion& fv, bool with_definition);
json summary_view(const v1::ExecutionSummary& s);
json execution_view(const ExecutionState& st);
json event_view(const v1::Event& ev);

// Request bodies: JSON (application/json or no type) or YAML
// (application/yaml, application/x-yaml, text/yaml). Errors: invalid_json,
// invalid_yaml, unsupported_media_type.
Result<json> parse_body(const HttpRequest& req);
bool wants_yaml(const HttpRequest& req);  // Accept: application/yaml
std::string dump(const json& j);          // never throws on bad UTF-8

}  // namespace yantra::api
