// API errors: the one place where an error code becomes an HTTP status, and
// the one JSON shape every error has:
//   {"error": {"code": "...", "message": "...", "details": [{"path", "message"}]}}
#pragma once

#include <string>

#include "api/http_server.hpp"
#include "base/result.hpp"

namespace yantra::api {

int http_status_for(const std::string& code);
HttpResponse error_response(int status, const std::string& code, const std::string& message);
HttpResponse error_response(const Status& status);
HttpResponse json_response(int status, const std::string& body);

}  // namespace yantra::api
