// The request target of an HTTP request (RFC 9112 §3.2) split into the
// percent-decoded path and query parameters of an HttpRequest.
//
// Why a file of its own: it is the part of request parsing that is ours
// rather than Beast's, and it must be callable without a socket so that the
// HTTP fuzzer (tests/fuzz/fuzz_http_request.cpp) can drive Beast's parser
// and then exactly this code, as http_server.cpp does for every request.
#pragma once

#include <string>
#include <string_view>

#include "api/http_server.hpp"

namespace yantra::api {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query
// strings) into `out`. False on a malformed escape or a NUL (raw or
// decoded): a NUL would cut the string short wherever it reaches a C API,
// and a path that means different things to different layers is how
// traversal bugs start.
bool percent_decode(std::string_view in, bool plus_is_space, std::string& out);

// Fills req.path and req.query from the raw target (origin-form "/p?q" or
// absolute-form "http://host/p?q"; a fragment is dropped). False on bad
// percent-encoding: the server answers 400.
bool split_target(std::string_view target, HttpRequest& req);

}  // namespace yantra::api
