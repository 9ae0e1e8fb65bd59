// decode_state(): a strict reader of to_json(). Every field is required and
// type-checked (a snapshot is trusted as much as the log it replaces, so a
// truncated or foreign one must be refused, not half-loaded); the reader
// keeps the first problem and turns the rest into no-ops, which keeps the
// field list below a flat, reviewable mirror of to_json().
#include "runtime/snapshot.hpp"

#include <limits>
#include <string>
#include <utility>

#include "runtime/errc.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

class Reader {
 public:
  const std::string& error() const { return error_; }

  // `where` names the object being read, for the error message.
  const json* field(const json& obj, const char* key, const std::string& where) {
    if (!error_.empty()) return nullptr;
    if (!obj.is_object()) {
      fail(where + " is not an object");
      return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end()) {
      fail(where + "." + key + " is missing");
      return nullptr;
    }
    return &*it;
  }

  void str(const json& obj, const char* key, const std::string& where, std::string& out) {
    const json* v = field(obj, key, where);
    if (v == nullptr) return;
    if (!v->is_string()) return fail(where + "." + key + " is not a string");
    out = v->get<std::string>();
  }

  void boolean(const json& obj, const char* key, const std::string& where, bool& out) {
    const json* v = field(obj, key, where);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(where + "." + key + " is not a boolean");
    out = v->get<bool>();
  }

  // decode owns the parsed document and reads every field once, so payloads
  // (inputs, outputs, a long loop's results) are moved out, not copied:
  // that is most of the work for a large state.
  void any(const json& obj, const char* key, const std::string& where, json& out) {
    const json* v = field(obj, key, where);
    if (v != nullptr) out = std::move(const_cast<json&>(*v));
  }

  template <typename Int>
  void integer(const json& obj, const char* key, const std::string& where, Int& out) {
    const json* v = field(obj, key, where);
    if (v == nullptr) return;
    bool ok = false;
    if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
      const uint64_t u =
          v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
      ok = u <= static_cast<uint64_t>(std::numeric_limits<Int>::max());
      if (ok) out = static_cast<Int>(u);
    } else if (v->is_number_integer()) {
      const int64_t i = v->get<int64_t>();
      ok = std::numeric_limits<Int>::is_signed &&
           i >= static_cast<int64_t>(std::numeric_limits<Int>::min());
      if (ok) out = static_cast<Int>(i);
    }
    if (!ok) fail(where + "." + key + " is not an integer in range");
  }

  // Enums are stored by their to_string() name.
  template <typename Enum, size_t N>
  void name(const json& obj, const char* key, const std::string& where, const Enum (&all)[N],
            Enum& out) {
    std::string text;
    str(obj, key, where, text);
    if (!error_.empty()) return;
    for (Enum e : all) {
      if (text == to_string(e)) {
        out = e;
        return;
      }
    }
    fail(where + "." + key + " has an unknown value '" + text + "'");
  }

  void strings(const json& obj, const char* key, const std::string& where,
               std::vector<std::string>& out) {
    const json* v = field(obj, key, where);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(where + "." + key + " is not an array");
    out.clear();
    for (const auto& item : *v) {
      if (!item.is_string()) return fail(where + "." + key + " has a non-string element");
      out.push_back(item.get<std::string>());
    }
  }

  void fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
  }

 private:
  std::string error_;
};

constexpr ExecStatus kExecStatuses[] = {ExecStatus::kRunning,   ExecStatus::kWaiting,
                                        ExecStatus::kCompleted, ExecStatus::kFailed,
                                        ExecStatus::kCancelled, ExecStatus::kTimedOut};
constexpr StepStatus kStepStatuses[] = {StepStatus::kRunning,      StepStatus::kAttemptFailed,
                                        StepStatus::kRetryWaiting, StepStatus::kRetryReady,
                                        StepStatus::kCompleted,    StepStatus::kFailed};
constexpr FrameStatus kFrameStatuses[] = {FrameStatus::kActive, FrameStatus::kCompleted,
                                          FrameStatus::kFailed, FrameStatus::kAbandoned};
constexpr TimerKind kTimerKinds[] = {TimerKind::kDeadline, TimerKind::kRetry, TimerKind::kDelay,
                                     TimerKind::kWorkflowTimeout};

void read_step(Reader& r, const json& j, const std::string& where, StepState& s) {
  r.str(j, "step_id", where, s.step_id);
  r.str(j, "frame", where, s.frame);
  r.str(j, "kind", where, s.kind);
  r.name(j, "status", where, kStepStatuses, s.status);
  r.integer(j, "attempt", where, s.attempt);
  r.integer(j, "max_attempts", where, s.max_attempts);
  r.any(j, "input", where, s.input);
  r.any(j, "output", where, s.output);
  r.any(j, "error", where, s.error);
  r.integer(j, "first_started_ms", where, s.first_started_ms);
  r.integer(j, "started_ms", where, s.started_ms);
  r.integer(j, "ended_ms", where, s.ended_ms);
  if (j.is_object() && j.contains("next")) r.str(j, "next", where, s.next);
  // to_json() writes the container fields for containers (loops, parallels)
  // only; for other kinds they keep their defaults, which is what apply()
  // leaves there. Likewise the decisions of kinds that take them.
  const StepKind& kind = recorded_kind(s.kind);
  if (kind.body != BodyKind::kNone) {
    r.strings(j, "children", where, s.children);
    r.integer(j, "next_index", where, s.next_index);
    r.integer(j, "active", where, s.active);
    r.integer(j, "done", where, s.done);
    r.any(j, "results", where, s.results);
    r.boolean(j, "child_failed", where, s.child_failed);
    r.any(j, "child_error", where, s.child_error);
  }
  if (kind.takes_decisions) {
    r.any(j, "decisions", where, s.decisions);
    if (r.error().empty() && !s.decisions.is_array()) r.fail(where + ".decisions is not an array");
  }
}

void read_signal(Reader& r, const json& j, const std::string& where, PendingSignal& sig) {
  r.integer(j, "seq", where, sig.seq);
  r.str(j, "signal_id", where, sig.signal_id);
  r.any(j, "data", where, sig.data);
  r.integer(j, "received_ms", where, sig.received_ms);
}

// "signals" is written only when a signal is buffered (see state.cpp).
void read_signals(Reader& r, const json& top,
                  std::map<std::string, std::vector<PendingSignal>>& out) {
  if (!top.is_object() || !top.contains("signals")) return;
  const json* v = r.field(top, "signals", "state");
  if (v == nullptr) return;
  if (!v->is_object()) return r.fail("state.signals is not an object");
  for (auto it = v->begin(); it != v->end() && r.error().empty(); ++it) {
    const std::string where = "signals[\"" + it.key() + "\"]";
    if (!it->is_array() || it->empty()) return r.fail(where + " is not a non-empty array");
    auto& queue = out[it.key()];
    for (size_t i = 0; i < it->size() && r.error().empty(); ++i) {
      read_signal(r, (*it)[i], where + "[" + std::to_string(i) + "]", queue.emplace_back());
    }
  }
}

void read_frame(Reader& r, const json& j, const std::string& where, FrameState& f) {
  r.str(j, "parent", where, f.parent);
  r.str(j, "prefix", where, f.prefix);
  r.str(j, "current", where, f.current);
  r.integer(j, "index", where, f.index);
  r.boolean(j, "detached", where, f.detached);
  r.name(j, "status", where, kFrameStatuses, f.status);
  r.any(j, "output", where, f.output);
  r.any(j, "error", where, f.error);
}

void read_timer(Reader& r, const json& j, const std::string& where, Timer& t) {
  r.name(j, "kind", where, kTimerKinds, t.kind);
  r.str(j, "path", where, t.path);
  r.integer(j, "attempt", where, t.attempt);
  r.integer(j, "due_ms", where, t.due_ms);
}

// Reads an object of objects into a map, one entry per member.
template <typename T, typename ReadFn>
void read_map(Reader& r, const json& top, const char* key, std::map<std::string, T>& out,
              ReadFn read) {
  const json* v = r.field(top, key, "state");
  if (v == nullptr) return;
  if (!v->is_object()) return r.fail(std::string("state.") + key + " is not an object");
  for (auto it = v->begin(); it != v->end() && r.error().empty(); ++it) {
    read(r, *it, std::string(key) + "[\"" + it.key() + "\"]", out[it.key()]);
  }
}

}  // namespace

std::string encode_state(const ExecutionState& state) {
  return dump_canonical(to_json(state));
}

namespace {
Result<ExecutionState> decode_document(json j);
}  // namespace

Result<ExecutionState> decode_state(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status(RuntimeErrc::kInvalidSnapshot, "the snapshot is not JSON");
  return decode_document(std::move(j));
}

namespace {
Result<ExecutionState> decode_document(json j) {
  ExecutionState st;
  Reader r;
  const std::string top = "state";
  r.str(j, "execution_id", top, st.execution_id);
  r.str(j, "tenant", top, st.tenant);
  r.str(j, "flow_id", top, st.flow_id);
  r.integer(j, "flow_version", top, st.flow_version);
  r.str(j, "idempotency_key", top, st.idempotency_key);
  r.name(j, "status", top, kExecStatuses, st.status);
  r.any(j, "input", top, st.input);
  r.any(j, "output", top, st.output);
  r.any(j, "error", top, st.error);
  r.integer(j, "created_ms", top, st.created_ms);
  r.integer(j, "updated_ms", top, st.updated_ms);
  r.integer(j, "ended_ms", top, st.ended_ms);
  r.integer(j, "timeout_ms", top, st.timeout_ms);
  r.boolean(j, "timeout_fired", top, st.timeout_fired);
  r.integer(j, "last_seq", top, st.last_seq);
  r.str(j, "parent_execution_id", top, st.parent_execution_id);
  r.integer(j, "forked_at_seq", top, st.forked_at_seq);
  read_map(r, j, "steps", st.steps, read_step);
  read_map(r, j, "frames", st.frames, read_frame);
  read_map(r, j, "timers", st.timers, read_timer);
  read_signals(r, j, st.signals);
  std::vector<std::string> running;
  std::vector<std::string> active_frames;
  r.strings(j, "running", top, running);
  r.strings(j, "active_frames", top, active_frames);
  r.integer(j, "detached_active", top, st.detached_active);
  if (!r.error().empty()) return Status(RuntimeErrc::kInvalidSnapshot, r.error());
  st.running.insert(running.begin(), running.end());
  st.active_frames.insert(active_frames.begin(), active_frames.end());
  st.started = st.last_seq > 0;
  return st;
}
}  // namespace

Result<ExecutionState> fold_from(ExecutionState snapshot, const std::vector<v1::Event>& rest) {
  for (const auto& ev : rest) {
    Status s = apply(snapshot, ev);
    if (!s.is_ok()) return s;
  }
  return snapshot;
}

v1::Snapshot make_snapshot(const ExecutionState& state) {
  // CBOR of the same document as encode_state(): several times faster to
  // read back than JSON text, which matters for the states of long runs.
  v1::Snapshot snap;
  snap.set_seq(state.last_seq);
  const std::vector<uint8_t> bytes = json::to_cbor(to_json(state));
  snap.set_state_cbor(std::string(bytes.begin(), bytes.end()));
  snap.set_format(kSnapshotFormat);
  return snap;
}

Result<ExecutionState> restore_snapshot(const v1::Snapshot& snapshot) {
  Result<ExecutionState> st = Status(RuntimeErrc::kInvalidSnapshot, "unknown snapshot format");
  if (snapshot.format() == kSnapshotFormatJson) {
    st = decode_state(snapshot.state_json());
  } else if (snapshot.format() == kSnapshotFormat || snapshot.format() == kSnapshotFormatCbor02) {
    const std::string& bytes = snapshot.state_cbor();
    json j = json::from_cbor(bytes.begin(), bytes.end(), /*strict=*/true,
                             /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status(RuntimeErrc::kInvalidSnapshot, "the snapshot is not CBOR");
    st = decode_document(std::move(j));
  } else {
    return Status(RuntimeErrc::kInvalidSnapshot,
                  "unknown snapshot format " + std::to_string(snapshot.format()) + " (expected " +
                      std::to_string(kSnapshotFormat) + ")");
  }
  if (!st.ok()) return st;
  if (st->last_seq != snapshot.seq()) {
    return Status(RuntimeErrc::kInvalidSnapshot,
                  "snapshot row seq " + std::to_string(snapshot.seq()) +
                      " does not match its state (last_seq " + std::to_string(st->last_seq) + ")");
  }
  return st;
}

}  // namespace yantra
