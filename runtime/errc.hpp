// Error codes runtime/ produces: a flow, an expression, a cron line, a patch,
// an event or a snapshot that does not hold together. Pure data, like the rest
// of runtime/. How codes work and how to add one: base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class RuntimeErrc : uint16_t {
  kInvalidFlow = 1,
  kInvalidJson,
  kInvalidYaml,
  kExpressionError,
  kInvalidExpression,
  kInvalidRef,
  kInvalidCron,
  kInvalidTimeZone,
  kInvalidPatch,
  kInvalidPointer,
  kInvalidSnapshot,
  kInvalidEvent,
  kTooManySignals,
  kSecretNotFound,
};

inline constexpr std::array kAllRuntimeErrc = {
    RuntimeErrc::kInvalidFlow,     RuntimeErrc::kInvalidJson,       RuntimeErrc::kInvalidYaml,
    RuntimeErrc::kExpressionError, RuntimeErrc::kInvalidExpression, RuntimeErrc::kInvalidRef,
    RuntimeErrc::kInvalidCron,     RuntimeErrc::kInvalidTimeZone,   RuntimeErrc::kInvalidPatch,
    RuntimeErrc::kInvalidPointer,  RuntimeErrc::kInvalidSnapshot,   RuntimeErrc::kInvalidEvent,
    RuntimeErrc::kTooManySignals,  RuntimeErrc::kSecretNotFound,
};

template <>
struct ErrcTraits<RuntimeErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kRuntime;
  static constexpr std::string_view wire(RuntimeErrc e) {
    switch (e) {
      case RuntimeErrc::kInvalidFlow: return "invalid_flow";
      case RuntimeErrc::kInvalidJson: return "invalid_json";
      case RuntimeErrc::kInvalidYaml: return "invalid_yaml";
      case RuntimeErrc::kExpressionError: return "expression_error";
      case RuntimeErrc::kInvalidExpression: return "invalid_expression";
      case RuntimeErrc::kInvalidRef: return "invalid_ref";
      case RuntimeErrc::kInvalidCron: return "invalid_cron";
      case RuntimeErrc::kInvalidTimeZone: return "invalid_time_zone";
      case RuntimeErrc::kInvalidPatch: return "invalid_patch";
      case RuntimeErrc::kInvalidPointer: return "invalid_pointer";
      case RuntimeErrc::kInvalidSnapshot: return "invalid_snapshot";
      case RuntimeErrc::kInvalidEvent: return "invalid_event";
      case RuntimeErrc::kTooManySignals: return "too_many_signals";
      case RuntimeErrc::kSecretNotFound: return "secret_not_found";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
