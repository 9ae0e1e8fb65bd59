// API errors: the one place where an error code becomes an HTTP status, and
// the one JSON shape every error has:
//   {"error": {"code": "...", "message": "...", "details": [{"path", "message"}]}}
#pragma once

#include <string>

#include "api/http_server.hpp"
#include "base/result.hpp"

namespace yantra::api {

// The HTTP status for a failed Status: every enumerator of every error enum
// (base/errc.hpp and each layer's errc.hpp) is mapped by an exhaustive switch
// in errors.cpp, so a code without a status does not compile.
int http_status_for(const Status& status);
HttpResponse error_response(const Status& status);
HttpResponse json_response(int status, const std::string& body);

}  // namespace yantra::api
