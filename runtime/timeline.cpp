// timeline(): one pass over the events with apply() alongside. The state
// answers what an event meant (which timer fired, the error a deadline left,
// whether a frame was abandoned) so this file never re-implements apply()'s
// rules; the events supply what the state forgets (earlier attempts, times).
// Signals are listed in arrival order with the step that consumed each (the
// state forgets a signal once consumed); approval decisions are attached to
// the attempt they were made on (a new attempt asks again).
#include "runtime/timeline.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/execution.hpp"
#include "runtime/redact.hpp"
#include "runtime/steps/step_kind.hpp"
#include "runtime/waits.hpp"

namespace yantra {
namespace {

class Builder {
 public:
  explicit Builder(const std::vector<std::string>& secrets) : secrets_(secrets) {}

  json build(const std::vector<v1::Event>& events) {
    json out = json::object();
    for (const auto& ev : events) {
      // What a TimerFired means depends on the timer, which apply() consumes.
      Timer fired;
      bool had_timer = false;
      if (ev.has_timer_fired()) {
        auto it = st_.timers.find(ev.timer_fired().timer_id());
        if (it != st_.timers.end()) {
          fired = it->second;
          had_timer = true;
        }
      }
      Status s = apply(st_, ev);
      if (!s.is_ok()) {
        out["error"] = s.message();
        break;
      }
      record(ev, had_timer ? &fired : nullptr);
    }
    json steps = json::array();
    std::vector<std::string> waits = input_waits(st_);
    for (auto& e : steps_) {
      const std::string path = e["path"].get<std::string>();
      auto it = st_.steps.find(path);
      if (it != st_.steps.end()) {
        e["status"] = to_string(it->second.status);
        if (std::binary_search(waits.begin(), waits.end(), path)) {
          e["waiting_for"] = waiting_for(path, it->second);
        }
      }
      steps.push_back(std::move(e));
    }
    out["execution_id"] = st_.execution_id;
    out["status"] = st_.started ? st_.display_status() : std::string();
    out["parent_execution_id"] = st_.parent_execution_id;
    out["forked_at_seq"] = st_.forked_at_seq;
    out["first_seq"] = events.empty() ? 0 : events.front().seq();
    out["last_seq"] = st_.last_seq;
    out["steps"] = std::move(steps);
    out["overrides"] = std::move(overrides_);
    out["resumes"] = std::move(resumes_);
    out["signals"] = std::move(signals_);
    return out;
  }

 private:
  void record(const v1::Event& ev, const Timer* fired) {
    switch (ev.body_case()) {
      case v1::Event::kStepStarted: start(ev); break;
      case v1::Event::kStepCompleted: {
        const std::string& path = ev.step_completed().path();
        if (ev.step_completed().signal_seq() != 0) consumed(path, ev);
        close(path, "completed", "output", step_value(path, true), ev);
        close_abandoned_if_container(path, ev);
        break;
      }
      case v1::Event::kStepFailed: {
        const std::string& path = ev.step_failed().path();
        close(path, "failed", "error", step_value(path, false), ev);
        close_abandoned_if_container(path, ev);
        break;
      }
      case v1::Event::kRetryScheduled: touch(ev.retry_scheduled().path(), ev.seq()); break;
      case v1::Event::kTimerFired:
        if (fired == nullptr) break;
        switch (fired->kind) {
          case TimerKind::kDeadline:
            close(fired->path, "timed_out", "error", step_value(fired->path, false), ev);
            break;
          case TimerKind::kDelay:
            close(fired->path, "completed", "output", step_value(fired->path, true), ev);
            break;
          case TimerKind::kRetry: touch(fired->path, ev.seq()); break;
          case TimerKind::kWorkflowTimeout: break;
        }
        break;
      case v1::Event::kBranchTaken: {
        const auto& e = ev.branch_taken();
        close(e.path(), "completed", "output", step_value(e.path(), true), ev);
        auto it = index_.find(e.path());
        if (it != index_.end()) {
          steps_[it->second]["branch"] = {{"result", e.result()}, {"next", e.next()}};
        }
        break;
      }
      case v1::Event::kStateOverridden: overridden(ev); break;
      case v1::Event::kSignalReceived: {
        const auto& e = ev.signal_received();
        json data = json::parse(e.data_json(), nullptr, false);
        if (data.is_discarded() || e.data_json().empty()) data = nullptr;
        signal_index_[ev.seq()] = signals_.size();
        signals_.push_back({{"seq", ev.seq()},
                            {"name", e.name()},
                            {"signal_id", e.signal_id()},
                            {"data", redact(data, secrets_)},
                            {"received_at_ms", ev.time_ms()},
                            {"consumed_by", nullptr},
                            {"consumed_seq", nullptr}});
        break;
      }
      case v1::Event::kApprovalRecorded: decided(ev); break;
      case v1::Event::kResumed: {
        const auto& e = ev.resumed();
        resumes_.push_back(
            {{"seq", ev.seq()},
             {"steps", std::vector<std::string>(e.steps().begin(), e.steps().end())},
             {"frames", std::vector<std::string>(e.frames().begin(), e.frames().end())}});
        break;
      }
      case v1::Event::kExecutionCompleted:
      case v1::Event::kExecutionFailed:
      case v1::Event::kExecutionCancelled:
      case v1::Event::kExecutionTimedOut: {
        // Whatever was still in flight will never report back.
        std::vector<std::string> paths;
        for (const auto& [path, idx] : open_) paths.push_back(path);
        for (const auto& path : paths) close(path, "abandoned", "", json(), ev);
        break;
      }
      case v1::Event::kExecutionStarted:
      case v1::Event::kFrameEnded:
      case v1::Event::BODY_NOT_SET: break;
    }
  }

  void start(const v1::Event& ev) {
    const auto& e = ev.step_started();
    auto it = index_.find(e.path());
    if (it == index_.end()) {
      it = index_.emplace(e.path(), steps_.size()).first;
      steps_.push_back({{"step_id", e.step_id()},
                        {"path", e.path()},
                        {"frame", e.frame()},
                        {"type", e.kind()},
                        {"attempts", json::array()},
                        {"first_seq", ev.seq()},
                        {"last_seq", ev.seq()}});
    }
    json& entry = steps_[it->second];
    // An attempt still open here was replaced without an ending event.
    if (open_.count(e.path()) != 0) close(e.path(), "abandoned", "", json(), ev);
    auto sit = st_.steps.find(e.path());
    entry["attempts"].push_back(
        {{"attempt", e.attempt()},
         {"started_at_ms", ev.time_ms()},
         {"ended_at_ms", nullptr},
         {"duration_ms", nullptr},
         {"input", sit == st_.steps.end() ? json() : redact(sit->second.input, secrets_)},
         {"outcome", "running"},
         {"first_seq", ev.seq()},
         {"last_seq", ev.seq()}});
    open_[e.path()] = entry["attempts"].size() - 1;
    entry["last_seq"] = ev.seq();
  }

  // The open attempt of a wait_signal step records which signal ended it.
  void consumed(const std::string& path, const v1::Event& ev) {
    const uint64_t seq = ev.step_completed().signal_seq();
    auto sig = signal_index_.find(seq);
    if (sig == signal_index_.end()) return;
    json& entry = signals_[sig->second];
    entry["consumed_by"] = path;
    entry["consumed_seq"] = ev.seq();
    auto it = index_.find(path);
    auto o = open_.find(path);
    if (it == index_.end() || o == open_.end()) return;
    steps_[it->second]["attempts"][o->second]["signal"] = {
        {"seq", seq}, {"name", entry["name"]}, {"signal_id", entry["signal_id"]}};
  }

  void decided(const v1::Event& ev) {
    const auto& e = ev.approval_recorded();
    auto it = index_.find(e.step_path());
    auto o = open_.find(e.step_path());
    if (it == index_.end() || o == open_.end()) return;
    json& attempt = steps_[it->second]["attempts"][o->second];
    if (!attempt.contains("decisions")) attempt["decisions"] = json::array();
    attempt["decisions"].push_back({{"seq", ev.seq()},
                                    {"key_id", e.key_id()},
                                    {"role", e.role()},
                                    {"decision", e.decision()},
                                    {"comment", redact(json(e.comment()), secrets_)},
                                    {"time_ms", e.time_ms() != 0 ? e.time_ms() : ev.time_ms()}});
    touch(e.step_path(), ev.seq());
  }

  // What a step waiting at the end of the events waits for (its kind
  // describes it: input_waits() lists only kinds that wait for input) and
  // when it times out.
  json waiting_for(const std::string& path, const StepState& s) const {
    json w = recorded_kind(s.kind).waiting_for(s);
    auto timer = st_.timers.find(path + "#" + std::to_string(s.attempt));
    w["due_at_ms"] = timer == st_.timers.end() ? json(nullptr) : json(timer->second.due_ms);
    return w;
  }

  void overridden(const v1::Event& ev) {
    json patch = json::parse(ev.state_overridden().patch_json(), nullptr, false);
    if (patch.is_discarded()) patch = nullptr;
    overrides_.push_back({{"seq", ev.seq()}, {"patch", redact(patch, secrets_)}});
    if (patch.is_object() && patch.contains("steps") && patch["steps"].is_object()) {
      for (auto it = patch["steps"].begin(); it != patch["steps"].end(); ++it) {
        const std::string& path = it.key();
        close(path, "abandoned", "", json(), ev);
        auto idx = index_.find(path);
        if (idx == index_.end()) continue;
        steps_[idx->second]["override"] = {{"seq", ev.seq()}, {"output", step_value(path, true)}};
        steps_[idx->second]["last_seq"] = ev.seq();
      }
    }
    close_abandoned(ev);
  }

  // The step's output (or error), redacted, as apply() left it.
  json step_value(const std::string& path, bool output) const {
    auto it = st_.steps.find(path);
    if (it == st_.steps.end()) return nullptr;
    return redact(output ? it->second.output : it->second.error, secrets_);
  }

  void touch(const std::string& path, uint64_t seq) {
    auto it = index_.find(path);
    if (it == index_.end()) return;
    steps_[it->second]["last_seq"] = seq;
    auto o = open_.find(path);
    if (o != open_.end()) steps_[it->second]["attempts"][o->second]["last_seq"] = seq;
  }

  // Ends the open attempt of `path` (if any); `key` ("output"/"error") names
  // the result member, "" for none.
  void close(const std::string& path, const char* outcome, const char* key, json value,
             const v1::Event& ev) {
    auto o = open_.find(path);
    auto it = index_.find(path);
    if (o == open_.end() || it == index_.end()) return;
    json& attempt = steps_[it->second]["attempts"][o->second];
    const int64_t started = attempt["started_at_ms"].get<int64_t>();
    attempt["ended_at_ms"] = ev.time_ms();
    attempt["duration_ms"] = ev.time_ms() - started;
    attempt["outcome"] = outcome;
    attempt["last_seq"] = ev.seq();
    if (key[0] != '\0') attempt[key] = std::move(value);
    steps_[it->second]["last_seq"] = ev.seq();
    open_.erase(o);
  }

  // Attempts whose frame apply() just abandoned (a container ended while
  // they ran, or was overridden). Only the end of a container abandons
  // frames, so other events skip the scan (a loop of 100,000 iterations
  // would otherwise make this quadratic).
  void close_abandoned_if_container(const std::string& path, const v1::Event& ev) {
    auto sit = st_.steps.find(path);
    if (sit != st_.steps.end() && recorded_kind(sit->second.kind).body != BodyKind::kNone) {
      close_abandoned(ev);
    }
  }

  void close_abandoned(const v1::Event& ev) {
    std::vector<std::string> dead;
    for (const auto& [path, idx] : open_) {
      auto sit = st_.steps.find(path);
      if (sit == st_.steps.end()) continue;
      auto fit = st_.frames.find(sit->second.frame);
      if (fit != st_.frames.end() && fit->second.status == FrameStatus::kAbandoned) {
        dead.push_back(path);
      }
    }
    for (const auto& path : dead) close(path, "abandoned", "", json(), ev);
  }

  const std::vector<std::string>& secrets_;
  ExecutionState st_;
  std::vector<json> steps_;
  std::map<std::string, size_t> index_;  // path -> position in steps_
  std::map<std::string, size_t> open_;   // path -> index of its running attempt
  json overrides_ = json::array();
  json resumes_ = json::array();
  json signals_ = json::array();
  std::map<uint64_t, size_t> signal_index_;  // SignalReceived seq -> position in signals_
};

}  // namespace

json timeline(const std::vector<v1::Event>& events, const std::vector<std::string>& secret_values) {
  return Builder(secret_values).build(events);
}

}  // namespace yantra
