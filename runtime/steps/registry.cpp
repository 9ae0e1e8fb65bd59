// The registry of step types: one line per type, in StepType order. This
// table is the only list of types there is (the parser's accepted names,
// to_string(StepType), and the names in messages all come from it); a new
// type is a new file in runtime/steps/ plus its line here (see
// runtime/README.md, "Adding a step type"). A plain constant table, not
// self-registration from static constructors: the order is fixed, nothing
// runs before main(), and tests/runtime/step_registry_test.cpp checks that
// every StepType has exactly one kind with the hooks it needs.
#include <iterator>
#include <string>

#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace steps {
extern const StepKind kAction, kCondition, kLoop, kParallel, kDelay, kWaitSignal, kApproval,
    kScript;
}  // namespace steps

namespace {

constexpr const StepKind* kKinds[] = {
    &steps::kAction,      // StepType::kAction
    &steps::kCondition,   // StepType::kCondition
    &steps::kLoop,        // StepType::kLoop
    &steps::kParallel,    // StepType::kParallel
    &steps::kDelay,       // StepType::kDelay
    &steps::kWaitSignal,  // StepType::kWaitSignal
    &steps::kApproval,    // StepType::kApproval
    &steps::kScript,      // StepType::kScript
};
static_assert(std::size(kKinds) == kStepTypeCount, "one StepKind per StepType, in StepType order");

// A recorded kind no registered type has: no traits, no hooks.
constinit const StepKind kUnknown{.type = static_cast<StepType>(kStepTypeCount), .name = "unknown"};

}  // namespace

std::span<const StepKind* const> step_kinds() {
  return kKinds;
}

const StepKind& step_kind(StepType type) {
  const auto i = static_cast<size_t>(type);
  return i < std::size(kKinds) ? *kKinds[i] : kUnknown;
}

const StepKind* find_step_kind(std::string_view name) {
  for (const StepKind* kind : kKinds) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

const StepKind& recorded_kind(std::string_view name) {
  const StepKind* kind = find_step_kind(name);
  return kind != nullptr ? *kind : kUnknown;
}

std::string step_kind_names(bool StepKind::*trait, std::string_view last) {
  std::vector<std::string_view> names;
  for (const StepKind* kind : kKinds) {
    if (trait == nullptr || kind->*trait) names.push_back(kind->name);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? last : std::string_view(", ");
    out += names[i];
  }
  return out;
}

const char* to_string(StepType type) {
  // The names are literals, so the view is NUL-terminated.
  return step_kind(type).name.data();
}

}  // namespace yantra
