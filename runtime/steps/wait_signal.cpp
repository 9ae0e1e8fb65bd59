// wait_signal: waits for a signal of one name. What it waits for is recorded
// in its input ({"name","timeout_ms"}), so the log, not the flow, says it.
// It ends by consuming the oldest buffered signal of that name: decide()
// writes a StepCompleted naming the signal's seq, and apply() (complete)
// removes exactly that signal, so each signal is consumed once. The checks
// the engine runs before appending a SignalReceived are in waits.hpp.
#include <string>

#include "runtime/errc.hpp"
#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"
#include "runtime/waits.hpp"

namespace yantra::steps {
namespace {

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"name", "timeout_ms"});
  if (r.read_string(config, "name", cp, true, step.signal_name, true) &&
      step.signal_name.size() > kMaxSignalNameBytes) {
    r.add(pointer_child(cp, "name"),
          "must be at most " + std::to_string(kMaxSignalNameBytes) + " bytes");
  }
  // Optional; when given a real duration (0 would time out at once).
  r.read_int(config, "timeout_ms", cp, false, 1, kMaxDurationMs, step.timeout_ms);
}

void start(Decider& d, const FrameCtx&, const Step& def, const std::string&, uint32_t,
           v1::StepStarted& e) {
  e.set_input_json(dump_canonical(json{{"name", def.signal_name}, {"timeout_ms", def.timeout_ms}}));
  if (def.timeout_ms > 0) e.set_timer_due_ms(d.now() + def.timeout_ms);
}

// Takes the oldest signal of its name this round has not handed out yet.
void drive(Decider& d, const FrameCtx&, const std::string& path, const StepState& s, const Step&) {
  const std::string name = s.input.is_object() ? s.input.value("name", "") : "";
  const PendingSignal* sig = d.take_signal(name);
  if (sig == nullptr) return;
  d.complete_step(path, s.attempt, sig->data).set_signal_seq(sig->seq);
}

// The StepCompleted must consume the oldest pending signal of the name the
// step recorded in its input.
Status complete(ExecutionState& st, const std::string& path, const StepState& s,
                const v1::StepCompleted& e) {
  if (e.signal_seq() == 0) {
    return Status(RuntimeErrc::kInvalidEvent,
                  "wait_signal step '" + path + "' completes only with a signal");
  }
  const std::string name = s.input.is_object() ? s.input.value("name", "") : "";
  auto qit = st.signals.find(name);
  if (qit == st.signals.end() || qit->second.empty() || qit->second.front().seq != e.signal_seq()) {
    return Status(RuntimeErrc::kInvalidEvent, "signal " + std::to_string(e.signal_seq()) +
                                                  " is not the oldest pending '" + name +
                                                  "' signal");
  }
  qit->second.erase(qit->second.begin());
  if (qit->second.empty()) st.signals.erase(qit);
  return {};
}

bool input_ready(const ExecutionState& st, const StepState& s) {
  auto it = st.signals.find(waited_signal_name(s));
  return it != st.signals.end() && !it->second.empty();
}

json waiting_for(const StepState& s) {
  return {{"kind", "signal"}, {"name", s.input.value("name", "")}};
}

}  // namespace

extern const StepKind kWaitSignal;
constinit const StepKind kWaitSignal{
    .type = StepType::kWaitSignal,
    .name = "wait_signal",
    .waits_for_input = true,
    .parse = parse,
    .start = start,
    .drive = drive,
    .complete = complete,
    .input_ready = input_ready,
    .waiting_for = waiting_for,
};

}  // namespace yantra::steps
