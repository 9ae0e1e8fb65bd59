// The checks and listings of waits.hpp. Everything here reads the state
// through the same notion of "waiting" that apply() and decide() use: an
// active frame whose current step is a wait_signal or approval step with its
// attempt in flight. A step in an abandoned frame keeps its "running" status
// (abandon_children() only stops what nobody waits for), so the frame is what
// tells a live wait from a dead one.
#include "runtime/waits.hpp"

#include <algorithm>
#include <utility>

#include "runtime/errc.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

bool is_wait_kind(const std::string& kind) {
  return recorded_kind(kind).waits_for_input;
}

// The step `frame_id` waits at, when it waits for a signal or an approval.
const StepState* waiting_step(const ExecutionState& st, const std::string& frame_id,
                              std::string* path = nullptr) {
  auto fit = st.frames.find(frame_id);
  if (fit == st.frames.end() || fit->second.status != FrameStatus::kActive) return nullptr;
  auto sit = st.steps.find(fit->second.current);
  if (sit == st.steps.end() || sit->second.status != StepStatus::kRunning ||
      !is_wait_kind(sit->second.kind)) {
    return nullptr;
  }
  if (path != nullptr) *path = sit->first;
  return &sit->second;
}

std::optional<ApprovalPolicy> policy_of(const std::string& s) {
  if (s == "any") return ApprovalPolicy::kAny;
  if (s == "all") return ApprovalPolicy::kAll;
  if (s == "majority") return ApprovalPolicy::kMajority;
  return std::nullopt;
}

std::string str_member(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Status can_accept_signal(const ExecutionState& st, std::string_view name) {
  if (name.empty()) return Status(Errc::kInvalidArgument, "a signal needs a name");
  if (name.size() > kMaxSignalNameBytes) {
    return Status(Errc::kInvalidArgument,
                  "a signal name has at most " + std::to_string(kMaxSignalNameBytes) + " bytes");
  }
  if (!st.started || is_terminal(st.status)) {
    return Status(Errc::kConflict,
                  "execution " + st.execution_id + " is " +
                      (st.started ? std::string(to_string(st.status)) : "not started") +
                      "; it takes no more signals");
  }
  size_t buffered = 0;
  for (const auto& [n, queue] : st.signals) buffered += queue.size();
  if (buffered < kMaxPendingSignals) return {};
  // Full, but a step waiting for this name consumes it at once.
  for (const auto& fid : st.active_frames) {
    const StepState* s = waiting_step(st, fid);
    if (s != nullptr && s->kind == "wait_signal" && waited_signal_name(*s) == name) return {};
  }
  return Status(RuntimeErrc::kTooManySignals, "execution " + st.execution_id + " already holds " +
                                                  std::to_string(buffered) +
                                                  " signals no step has consumed (the limit is " +
                                                  std::to_string(kMaxPendingSignals) + ")");
}

std::string waited_signal_name(const StepState& s) {
  if (!s.input.is_object()) return "";
  auto it = s.input.find("name");
  return it != s.input.end() && it->is_string() ? it->get<std::string>() : "";
}

v1::Event make_signal_event(const ExecutionState& st, std::string_view name, const json& data,
                            std::string_view signal_id, int64_t now_ms) {
  v1::Event ev = make_event(st, now_ms);
  auto& e = *ev.mutable_signal_received();
  e.set_name(std::string(name));
  e.set_data_json(dump_canonical(data));
  e.set_signal_id(std::string(signal_id));
  return ev;
}

std::vector<std::string> input_waits(const ExecutionState& st) {
  std::vector<std::string> out;
  std::string path;
  for (const auto& fid : st.active_frames) {
    if (waiting_step(st, fid, &path) != nullptr) out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<ApprovalSpec> approval_spec(const StepState& s) {
  if (s.kind != "approval" || !s.input.is_object()) return std::nullopt;
  auto approvers = s.input.find("approvers");
  if (approvers == s.input.end() || !approvers->is_array()) return std::nullopt;
  auto policy = policy_of(str_member(s.input, "policy"));
  if (!policy) return std::nullopt;
  ApprovalSpec spec;
  spec.policy = *policy;
  for (const auto& entry : *approvers) {
    if (!entry.is_string()) return std::nullopt;
    spec.approvers.push_back(entry.get<std::string>());
  }
  return spec;
}

bool approver_matches(std::string_view entry, std::string_view key_id, std::string_view role) {
  constexpr std::string_view kRole = "role:";
  if (entry.substr(0, kRole.size()) == kRole) {
    return !role.empty() && entry.substr(kRole.size()) == role;
  }
  return !key_id.empty() && entry == key_id;
}

ApprovalOutcome approval_outcome(const ApprovalSpec& spec, const json& decisions) {
  const size_t n = spec.approvers.size();
  if (n == 0) return ApprovalOutcome::kPending;
  // Seats: 0 open, 1 approved, -1 rejected; the first matching decision wins.
  std::vector<int> seat(n, 0);
  if (decisions.is_array()) {
    for (const auto& d : decisions) {
      const std::string key = str_member(d, "key_id");
      const std::string role = str_member(d, "role");
      const int vote = str_member(d, "decision") == "approved" ? 1 : -1;
      for (size_t i = 0; i < n; ++i) {
        if (seat[i] == 0 && approver_matches(spec.approvers[i], key, role)) seat[i] = vote;
      }
    }
  }
  const size_t approved = static_cast<size_t>(std::count(seat.begin(), seat.end(), 1));
  const size_t rejected = static_cast<size_t>(std::count(seat.begin(), seat.end(), -1));
  const size_t open = n - approved - rejected;
  switch (spec.policy) {
    case ApprovalPolicy::kAny:
      if (approved >= 1) return ApprovalOutcome::kApproved;
      if (rejected == n) return ApprovalOutcome::kRejected;
      break;
    case ApprovalPolicy::kAll:
      if (approved == n) return ApprovalOutcome::kApproved;
      if (rejected >= 1) return ApprovalOutcome::kRejected;
      break;
    case ApprovalPolicy::kMajority:
      if (2 * approved > n) return ApprovalOutcome::kApproved;
      if (2 * (approved + open) <= n) return ApprovalOutcome::kRejected;
      break;
  }
  return ApprovalOutcome::kPending;
}

json approval_output(ApprovalOutcome outcome, const json& decisions) {
  return {{"decision", outcome == ApprovalOutcome::kApproved ? "approved" : "rejected"},
          {"decisions", decisions.is_array() ? decisions : json::array()}};
}

Result<ApprovalTarget> check_approval(const Flow& flow, const ExecutionState& st,
                                      std::string_view step_path, std::string_view key_id,
                                      std::string_view role) {
  const std::string path(step_path);
  auto not_found = [&](const std::string& why) {
    return Status(Errc::kNotFound, "no approval step '" + path + "' is waiting" + why);
  };
  if (!st.started || is_terminal(st.status)) {
    return not_found(std::string(": the execution is ") +
                     (st.started ? to_string(st.status) : "not started"));
  }
  auto sit = st.steps.find(path);
  if (sit == st.steps.end()) return not_found(" (the step has not been reached)");
  const StepState& s = sit->second;
  if (s.kind != "approval") return not_found(" (it is a " + s.kind + " step)");
  if (waiting_step(st, s.frame) != &s) {
    return not_found(s.status == StepStatus::kRunning ? " (its branch was abandoned)"
                                                      : " (it was already decided)");
  }
  const Flow::Located* loc = flow.locate(s.step_id);
  auto spec = approval_spec(s);
  if (loc == nullptr || loc->step->type != StepType::kApproval || !spec) {
    return not_found(" (the flow version does not define it)");
  }
  ApprovalTarget t;
  t.step_path = path;
  t.step_id = s.step_id;
  t.frame = s.frame;
  t.attempt = s.attempt;
  for (const auto& entry : spec->approvers) {
    if (approver_matches(entry, key_id, role)) t.matched.push_back(entry);
  }
  t.spec = std::move(*spec);
  if (key_id.empty() || t.matched.empty()) {
    return Status(Errc::kForbidden, "key " + std::string(key_id) + " (role " + std::string(role) +
                                        ") is not among the approvers of '" + path + "'");
  }
  if (s.decisions.is_array()) {
    for (const auto& d : s.decisions) {
      if (str_member(d, "key_id") == key_id) {
        return Status(Errc::kConflict, "key " + std::string(key_id) + " already " +
                                           str_member(d, "decision") + " '" + path + "'");
      }
    }
  }
  return t;
}

v1::Event make_approval_event(const ExecutionState& st, const ApprovalTarget& target,
                              std::string_view key_id, std::string_view role, bool approved,
                              std::string_view comment, int64_t now_ms) {
  v1::Event ev = make_event(st, now_ms);
  auto& e = *ev.mutable_approval_recorded();
  e.set_step_path(target.step_path);
  e.set_key_id(std::string(key_id));
  e.set_role(std::string(role));
  e.set_decision(approved ? "approved" : "rejected");
  e.set_comment(std::string(comment));
  e.set_time_ms(now_ms);
  return ev;
}

std::vector<PendingApproval> pending_approvals(const Flow& flow, const ExecutionState& st) {
  std::vector<PendingApproval> out;
  if (!st.started || is_terminal(st.status)) return out;
  std::string path;
  for (const auto& fid : st.active_frames) {
    const StepState* s = waiting_step(st, fid, &path);
    if (s == nullptr || s->kind != "approval") continue;
    const Flow::Located* loc = flow.locate(s->step_id);
    auto spec = approval_spec(*s);
    if (loc == nullptr || loc->step->type != StepType::kApproval || !spec) continue;
    PendingApproval p;
    p.step_path = path;
    p.step_id = s->step_id;
    p.frame = s->frame;
    p.attempt = s->attempt;
    p.spec = std::move(*spec);
    if (s->decisions.is_array()) p.decisions = s->decisions;
    p.started_ms = s->started_ms;
    auto timer = st.timers.find(path + "#" + std::to_string(s->attempt));
    if (timer != st.timers.end()) p.due_ms = timer->second.due_ms;
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const PendingApproval& a, const PendingApproval& b) {
    return a.step_path < b.step_path;
  });
  return out;
}

bool is_idle_waiting(const ExecutionState& st) {
  if (!st.started || is_terminal(st.status) || st.timeout_fired || !st.running.empty()) {
    return false;
  }
  bool waits_for_input = false;
  for (const auto& fid : st.active_frames) {
    const FrameState& f = st.frames.at(fid);
    auto sit = st.steps.find(f.current);
    if (sit == st.steps.end()) return false;
    const StepState& s = sit->second;
    switch (s.status) {
      case StepStatus::kRetryWaiting: continue;
      case StepStatus::kRunning: {
        // Containers wait for their frames, delays for their own timer.
        const StepKind& kind = recorded_kind(s.kind);
        if (kind.body != BodyKind::kNone || kind.timer == TimerKind::kDelay) continue;
        if (kind.waits_for_input) {
          // A buffered signal or a settled policy: decide() ends it.
          if (kind.input_ready != nullptr && kind.input_ready(st, s)) return false;
          waits_for_input = true;
          continue;
        }
        return false;  // an action in flight or a condition to evaluate
      }
      case StepStatus::kCompleted:
        // The root frame stays active after its last step while detached
        // branches (parallel wait_for "none") still run.
        if (fid.empty() && st.detached_active > 0) continue;
        return false;
      case StepStatus::kAttemptFailed:
      case StepStatus::kRetryReady:
      case StepStatus::kFailed: return false;
    }
  }
  return waits_for_input || !st.timers.empty();
}

std::optional<int64_t> next_timer_due_ms(const ExecutionState& st) {
  std::optional<int64_t> due;
  for (const auto& [id, t] : st.timers) {
    if (!due || t.due_ms < *due) due = t.due_ms;
  }
  return due;
}

}  // namespace yantra
