// approval: waits for people. Each approvers entry (an API key id, or
// "role:<role>") is a seat; decisions arrive as ApprovalRecorded events,
// which apply() appends to the step (`takes_decisions`), and the step ends
// once its policy (any, all, majority) is settled: completed when approved,
// failed with "rejected" otherwise. What it waits for is recorded in its
// input ({"approvers","policy","timeout_ms"}). The policy rules and the
// checks the API runs before appending a decision are in waits.hpp.
#include <algorithm>
#include <string>
#include <string_view>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"
#include "runtime/waits.hpp"

namespace yantra::steps {
namespace {

// Approver lists are read on every decision.
constexpr size_t kMaxApprovers = 100;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// "key_" + [A-Za-z0-9_-]{1,64}, or "role:" + one of the API's roles.
bool valid_approver(std::string_view s) {
  constexpr std::string_view kRole = "role:";
  if (s.substr(0, kRole.size()) == kRole) {
    std::string_view role = s.substr(kRole.size());
    return role == "owner" || role == "admin" || role == "editor" || role == "viewer";
  }
  constexpr std::string_view kKey = "key_";
  if (s.substr(0, kKey.size()) != kKey) return false;
  std::string_view rest = s.substr(kKey.size());
  return !rest.empty() && rest.size() <= 64 && std::all_of(rest.begin(), rest.end(), is_name_char);
}

// Approvers are API key ids ("key_" + [A-Za-z0-9_-], as the API issues
// them) or "role:<role>"; anything else is most likely a typo ("admin" for
// "role:admin") that would leave the step waiting for nobody.
void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"approvers", "policy", "timeout_ms"});
  const json* approvers = DocReader::find(config, "approvers");
  const std::string ap = pointer_child(cp, "approvers");
  if (approvers == nullptr) {
    r.add(ap, "is required");
  } else if (!approvers->is_array() || approvers->empty()) {
    r.add(ap, "must be a non-empty array of API key ids and \"role:<role>\" entries");
  } else if (approvers->size() > kMaxApprovers) {
    r.add(ap, "may have at most " + std::to_string(kMaxApprovers) + " entries");
  } else {
    for (size_t i = 0; i < approvers->size(); ++i) {
      const json& entry = (*approvers)[i];
      const std::string ep = pointer_child(ap, i);
      if (!entry.is_string()) {
        r.add(ep, "must be a string");
        continue;
      }
      const std::string& text = entry.get_ref<const std::string&>();
      if (!valid_approver(text)) {
        r.add(ep,
              "must be an API key id (key_...) or role:owner, role:admin, role:editor or "
              "role:viewer, got " +
                  quote_name(text));
      } else if (std::find(step.approvers.begin(), step.approvers.end(), text) !=
                 step.approvers.end()) {
        r.add(ep, "duplicate approver " + quote_name(text));
      } else {
        step.approvers.push_back(text);
      }
    }
  }
  std::string policy;
  if (r.read_enum(config, "policy", cp, false, {"any", "all", "majority"}, policy)) {
    step.policy = policy == "any"   ? ApprovalPolicy::kAny
                  : policy == "all" ? ApprovalPolicy::kAll
                                    : ApprovalPolicy::kMajority;
  }
  // Optional; when given a real duration (0 would time out at once).
  r.read_int(config, "timeout_ms", cp, false, 1, kMaxDurationMs, step.timeout_ms);
}

void start(Decider& d, const FrameCtx&, const Step& def, const std::string&, uint32_t,
           v1::StepStarted& e) {
  e.set_input_json(dump_canonical(json{{"approvers", def.approvers},
                                       {"policy", to_string(def.policy)},
                                       {"timeout_ms", def.timeout_ms}}));
  if (def.timeout_ms > 0) e.set_timer_due_ms(d.now() + def.timeout_ms);
}

// Ends the step once the decisions recorded so far settle its policy.
void drive(Decider& d, const FrameCtx&, const std::string& path, const StepState& s, const Step&) {
  auto spec = approval_spec(s);
  if (!spec) {
    d.fail_step(path, s.attempt,
                make_error("invalid_input", "the approval's recorded input is malformed", false));
    return;
  }
  const ApprovalOutcome outcome = approval_outcome(*spec, s.decisions);
  if (outcome == ApprovalOutcome::kPending) return;
  const json output = approval_output(outcome, s.decisions);
  if (outcome == ApprovalOutcome::kApproved) {
    d.complete_step(path, s.attempt, output);
    return;
  }
  d.fail_step(path, s.attempt,
              make_error("rejected",
                         std::string("approval rejected (policy ") + to_string(spec->policy) + ")",
                         false, output));
}

bool input_ready(const ExecutionState&, const StepState& s) {
  auto spec = approval_spec(s);
  return spec && approval_outcome(*spec, s.decisions) != ApprovalOutcome::kPending;
}

json waiting_for(const StepState& s) {
  auto spec = approval_spec(s);
  return {{"kind", "approval"},
          {"approvers", spec ? spec->approvers : std::vector<std::string>()},
          {"policy", spec ? to_string(spec->policy) : ""}};
}

}  // namespace

extern const StepKind kApproval;
constinit const StepKind kApproval{
    .type = StepType::kApproval,
    .name = "approval",
    .waits_for_input = true,
    .takes_decisions = true,
    .parse = parse,
    .start = start,
    .drive = drive,
    .input_ready = input_ready,
    .waiting_for = waiting_for,
};

}  // namespace yantra::steps
