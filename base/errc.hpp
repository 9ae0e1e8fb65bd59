// Typed error codes. A Status carries (domain, value): the domain says which
// layer's enum the value belongs to, and each layer declares its own enum in
// its own folder (base: Errc here; runtime/errc.hpp, base/storage_errc.hpp,
// actors/errc.hpp, cluster/errc.hpp, api/errc.hpp), so a layer can only
// produce codes it can see. A code produced by two layers that cannot see
// each other lives in the lowest one both include: here.
//
// Each enum has an ErrcTraits<E> specialisation with its domain and its wire
// string, the stable snake_case text clients see in {"error":{"code":...}}.
// wire() is a switch with no default, so an enumerator without a wire string
// fails the build (-Wswitch is an error in every warnings-as-errors build and
// always in api/errors.cpp, which includes every enum). api/errors.cpp maps
// every enumerator to an HTTP status the same way. Values start at 1 and are
// contiguous; kAll<Enum> next to each enum lists them for the tests, which
// check it against the numbering (docs/errors.md: adding a code).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace yantra {

enum class ErrorDomain : uint8_t {
  kOk = 0,  // no error
  kBase,
  kRuntime,
  kStorage,
  kActors,
  kApi,
  kCluster,
  kTransport,  // cluster/transport_errc.hpp
};

// Specialised once per error enum: `static constexpr ErrorDomain kDomain`
// and `static constexpr std::string_view wire(E)`.
template <class E>
struct ErrcTraits;

template <class E>
concept ErrorCodeEnum = std::is_enum_v<E> && requires(E e) {
  { ErrcTraits<E>::kDomain } -> std::convertible_to<ErrorDomain>;
  { ErrcTraits<E>::wire(e) } -> std::convertible_to<std::string_view>;
};

// Generic codes any layer may produce.
enum class Errc : uint16_t {
  kInvalidArgument = 1,
  kNotFound,
  kConflict,
  kAlreadyExists,
  kUnauthorized,
  kForbidden,
  kRateLimited,
  kQuotaExceeded,
  kUnavailable,
  kTimeout,
  kInternalError,
  kIoError,
  kCryptoError,
  kInvalidHex,
  kInvalidBase64,
  kInvalidTime,
  // Produced by config/ (the node's settings) and actors/ (the http tool's
  // options), which do not see each other.
  kInvalidConfig,
};

inline constexpr std::array kAllErrc = {
    Errc::kInvalidArgument, Errc::kNotFound,   Errc::kConflict,      Errc::kAlreadyExists,
    Errc::kUnauthorized,    Errc::kForbidden,  Errc::kRateLimited,   Errc::kQuotaExceeded,
    Errc::kUnavailable,     Errc::kTimeout,    Errc::kInternalError, Errc::kIoError,
    Errc::kCryptoError,     Errc::kInvalidHex, Errc::kInvalidBase64, Errc::kInvalidTime,
    Errc::kInvalidConfig,
};

template <>
struct ErrcTraits<Errc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kBase;
  static constexpr std::string_view wire(Errc e) {
    switch (e) {
      case Errc::kInvalidArgument: return "invalid_argument";
      case Errc::kNotFound: return "not_found";
      case Errc::kConflict: return "conflict";
      case Errc::kAlreadyExists: return "already_exists";
      case Errc::kUnauthorized: return "unauthorized";
      case Errc::kForbidden: return "forbidden";
      case Errc::kRateLimited: return "rate_limited";
      case Errc::kQuotaExceeded: return "quota_exceeded";
      case Errc::kUnavailable: return "unavailable";
      case Errc::kTimeout: return "timeout";
      case Errc::kInternalError: return "internal_error";
      case Errc::kIoError: return "io_error";
      case Errc::kCryptoError: return "crypto_error";
      case Errc::kInvalidHex: return "invalid_hex";
      case Errc::kInvalidBase64: return "invalid_base64";
      case Errc::kInvalidTime: return "invalid_time";
      case Errc::kInvalidConfig: return "invalid_config";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
