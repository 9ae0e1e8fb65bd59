// Names of the model's enums as they appear in definitions, events and API
// responses. They are part of the stored formats, so they never change; the
// parser in flow_parse.cpp accepts exactly these spellings. Step type names
// are the registry's (runtime/steps/registry.cpp).
#include "runtime/flow.hpp"

namespace yantra {

const char* to_string(WaitFor w) {
  switch (w) {
    case WaitFor::kAll: return "all";
    case WaitFor::kAny: return "any";
    case WaitFor::kNone: return "none";
  }
  return "unknown";
}

const char* to_string(ApprovalPolicy p) {
  switch (p) {
    case ApprovalPolicy::kAny: return "any";
    case ApprovalPolicy::kAll: return "all";
    case ApprovalPolicy::kMajority: return "majority";
  }
  return "unknown";
}

}  // namespace yantra
