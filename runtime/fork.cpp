// make_fork() / make_resume(): see fork.hpp for the rules. Both check their
// own output by applying it to a copy of the state before returning it: the
// engine persists these events as facts, so a bug here must surface as an
// error to the caller, never as a log that no longer folds.
#include "runtime/fork.hpp"

#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/json_patch.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

Status invalid(const std::string& message, std::vector<Problem> details = {}) {
  return Status(Errc::kInvalidArgument, message, std::move(details));
}

// Checks the shape of a fork patch against the state at the fork point;
// every problem, each located by a JSON pointer into the patch.
std::vector<Problem> check_patch(const json& patch, const ExecutionState& st) {
  std::vector<Problem> out;
  if (!patch.is_object()) {
    out.push_back({"", "the patch must be an object {\"input\": {...}, \"steps\": {...}}"});
    return out;
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string at = make_pointer({it.key()});
    if (it.key() == "input") {
      if (!it->is_object()) out.push_back({at, "must be an object (an RFC 7396 merge patch)"});
    } else if (it.key() == "steps") {
      if (!it->is_object()) {
        out.push_back({at, "must be an object of step paths"});
        continue;
      }
      for (auto sit = it->begin(); sit != it->end(); ++sit) {
        const std::string step_at = make_pointer({"steps", sit.key()});
        auto found = st.steps.find(sit.key());
        if (found == st.steps.end()) {
          out.push_back({step_at, "no step instance '" + sit.key() + "' at seq " +
                                      std::to_string(st.last_seq)});
        } else if (recorded_kind(found->second.kind).branches) {
          out.push_back({step_at, "a " + found->second.kind +
                                      " step cannot be overridden (fork from before it and "
                                      "patch what it reads instead)"});
        }
        if (!sit->is_object()) {
          out.push_back({step_at, "must be an object {\"output\": value}"});
          continue;
        }
        if (!sit->contains("output")) out.push_back({step_at, "\"output\" is missing"});
        for (auto mit = sit->begin(); mit != sit->end(); ++mit) {
          if (mit.key() != "output") {
            out.push_back({make_pointer({"steps", sit.key(), mit.key()}),
                           "unknown member (allowed: output)"});
          }
        }
      }
    } else {
      out.push_back({at, "unknown member (allowed: input, steps)"});
    }
  }
  return out;
}

bool is_container(const StepState& s) {
  return recorded_kind(s.kind).body != BodyKind::kNone;
}

// Collects the frames and steps of a Resumed event (rules in fork.hpp).
class ResumePlan {
 public:
  explicit ResumePlan(const ExecutionState& st)
      : st_(st), failed_(st.status == ExecStatus::kFailed) {}

  void frame(const std::string& id) {
    auto fit = st_.frames.find(id);
    if (fit == st_.frames.end() || !seen_frames_.insert(id).second) return;
    frames_.push_back(id);
    auto sit = st_.steps.find(fit->second.current);
    if (sit != st_.steps.end()) step(sit->first, sit->second);
  }

  std::vector<std::string> frames() const { return frames_; }
  std::vector<std::string> steps() const { return steps_; }

 private:
  void step(const std::string& path, const StepState& s) {
    switch (s.status) {
      case StepStatus::kRunning:
        if (is_container(s)) {
          revive_children(s, /*failed_too=*/false);
        } else {
          add(path);
        }
        return;
      case StepStatus::kRetryWaiting: add(path); return;
      case StepStatus::kFailed:
        if (!failed_) return;
        add(path);
        if (is_container(s) && s.child_failed) revive_children(s, /*failed_too=*/true);
        return;
      case StepStatus::kAttemptFailed:
      case StepStatus::kRetryReady:
      case StepStatus::kCompleted: return;
    }
  }

  void revive_children(const StepState& container, bool failed_too) {
    for (const auto& child : container.children) {
      auto fit = st_.frames.find(child);
      if (fit == st_.frames.end() || fit->second.detached) continue;
      const FrameStatus fs = fit->second.status;
      if (fs == FrameStatus::kAbandoned || (failed_too && fs == FrameStatus::kFailed)) {
        frame(child);
      }
    }
  }

  void add(const std::string& path) {
    if (seen_steps_.insert(path).second) steps_.push_back(path);
  }

  const ExecutionState& st_;
  const bool failed_;
  std::vector<std::string> frames_;
  std::vector<std::string> steps_;
  std::set<std::string> seen_frames_;
  std::set<std::string> seen_steps_;
};

}  // namespace

Result<std::vector<v1::Event>> make_fork(const std::vector<v1::Event>& source, uint64_t at_seq,
                                         const json& patch, const std::string& new_execution_id,
                                         int64_t now_ms) {
  if (source.empty()) return invalid("the source execution has no events");
  const uint64_t last = source.back().seq();
  if (at_seq < 1) return invalid("at_seq must be >= 1");
  if (at_seq > last) {
    return invalid("at_seq " + std::to_string(at_seq) + " is past the last event of the source (" +
                   std::to_string(last) + ")");
  }
  if (new_execution_id.empty()) return invalid("the fork needs an execution id");
  if (source.size() < at_seq || source[at_seq - 1].seq() != at_seq) {
    return invalid("the source log is not dense (seq 1.." + std::to_string(last) + ")");
  }
  if (!source.front().has_execution_started()) {
    return invalid("the source log does not start with ExecutionStarted");
  }

  std::vector<v1::Event> out(source.begin(), source.begin() + static_cast<std::ptrdiff_t>(at_seq));
  auto& started = *out.front().mutable_execution_started();
  started.set_parent_execution_id(source.front().execution_started().execution_id());
  started.set_forked_at_seq(at_seq);
  started.set_execution_id(new_execution_id);
  started.clear_idempotency_key();

  auto folded = fold(out);
  if (!folded.ok()) return invalid("the source log does not fold: " + folded.status().message());
  ExecutionState& st = folded.value();

  const bool has_patch = !patch.is_null() && !(patch.is_object() && patch.empty());
  if (!has_patch) return out;
  if (is_terminal(st.status)) {
    return Status(Errc::kConflict,
                  "the source is " + std::string(to_string(st.status)) + " at seq " +
                      std::to_string(at_seq) +
                      "; a finished copy cannot be patched: fork from an earlier seq");
  }
  std::vector<Problem> problems = check_patch(patch, st);
  if (!problems.empty()) {
    const std::string first = problems.front().path + ": " + problems.front().message;
    return invalid("invalid patch: " + first, std::move(problems));
  }
  v1::Event ev = make_event(st, now_ms);
  ev.mutable_state_overridden()->set_patch_json(dump_canonical(patch));
  Status applied = apply(st, ev);
  if (!applied.is_ok()) return invalid("the patch does not apply: " + applied.message());
  out.push_back(std::move(ev));
  return out;
}

Result<v1::Event> make_resume(const ExecutionState& state, int64_t now_ms) {
  if (state.status != ExecStatus::kFailed && state.status != ExecStatus::kTimedOut) {
    return Status(Errc::kConflict, "execution is " + state.display_status() +
                                       "; only failed or timed_out executions can be retried");
  }
  ResumePlan plan(state);
  plan.frame("");
  for (const auto& [id, f] : state.frames) {
    if (f.status == FrameStatus::kActive) plan.frame(id);
  }
  v1::Event ev = make_event(state, now_ms);
  auto& e = *ev.mutable_resumed();
  for (const auto& f : plan.frames()) e.add_frames(f);
  for (const auto& s : plan.steps()) e.add_steps(s);
  std::string reason = "retry after ";
  reason += to_string(state.status);
  if (state.error.is_object()) {
    auto code = state.error.find("code");
    if (code != state.error.end() && code->is_string()) {
      reason += ": " + code->get<std::string>();
    }
  }
  e.set_reason(reason);
  ExecutionState check = state;
  Status applied = apply(check, ev);
  if (!applied.is_ok()) return Status(Errc::kInternalError, "resume: " + applied.message());
  return ev;
}

}  // namespace yantra
