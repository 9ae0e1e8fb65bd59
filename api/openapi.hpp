// The OpenAPI 3 document of the HTTP API, compiled in from api/openapi.json
// (the source of truth for docs and clients; keep it true to the routes).
#pragma once

#include <string>

namespace yantra::api {
const std::string& openapi_document();
}  // namespace yantra::api
