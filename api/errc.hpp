// Error codes of HTTP, both sides: what the server and the routes refuse
// (framing, limits, parameters, readiness) and the CLI's HTTP client's
// transport failures (cli/ builds on api/). How codes work and how to add one:
// base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class ApiErrc : uint16_t {
  kInvalidRequest = 1,
  kBadRequest,
  kInvalidParameter,
  kMethodNotAllowed,
  kRequestTimeout,
  kPayloadTooLarge,
  kUnsupportedMediaType,
  kHeadersTooLarge,
  kNotReady,
  kInternal,
  kBindFailed,
  kInvalidUrl,
  kConnectFailed,
  kProtocolError,
};

inline constexpr std::array kAllApiErrc = {
    ApiErrc::kInvalidRequest,
    ApiErrc::kBadRequest,
    ApiErrc::kInvalidParameter,
    ApiErrc::kMethodNotAllowed,
    ApiErrc::kRequestTimeout,
    ApiErrc::kPayloadTooLarge,
    ApiErrc::kUnsupportedMediaType,
    ApiErrc::kHeadersTooLarge,
    ApiErrc::kNotReady,
    ApiErrc::kInternal,
    ApiErrc::kBindFailed,
    ApiErrc::kInvalidUrl,
    ApiErrc::kConnectFailed,
    ApiErrc::kProtocolError,
};

template <>
struct ErrcTraits<ApiErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kApi;
  static constexpr std::string_view wire(ApiErrc e) {
    switch (e) {
      case ApiErrc::kInvalidRequest: return "invalid_request";
      case ApiErrc::kBadRequest: return "bad_request";
      case ApiErrc::kInvalidParameter: return "invalid_parameter";
      case ApiErrc::kMethodNotAllowed: return "method_not_allowed";
      case ApiErrc::kRequestTimeout: return "request_timeout";
      case ApiErrc::kPayloadTooLarge: return "payload_too_large";
      case ApiErrc::kUnsupportedMediaType: return "unsupported_media_type";
      case ApiErrc::kHeadersTooLarge: return "headers_too_large";
      case ApiErrc::kNotReady: return "not_ready";
      case ApiErrc::kInternal: return "internal";
      case ApiErrc::kBindFailed: return "bind_failed";
      case ApiErrc::kInvalidUrl: return "invalid_url";
      case ApiErrc::kConnectFailed: return "connect_failed";
      case ApiErrc::kProtocolError: return "protocol_error";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
