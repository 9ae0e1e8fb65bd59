// Parsing and validation of a flow definition.
//
// Definitions arrive over HTTP from tenants, so the parser treats them as
// untrusted: it never throws, bounds its work (step count, nesting depth) and
// reports every problem it finds at once, each at a JSON pointer, because a
// user fixing a definition wants the whole list rather than one error per
// round trip.
//
// Two passes. The first walks the document, builds the model and records the
// local problems (types, required and unknown fields, ids, malformed
// $ref/$expr); each step's config is read by its type's parse hook
// (runtime/steps/<type>.cpp) through a StepContext. Cross-references need
// every step id first, so the second pass checks, scope by scope,
// transitions, cycles, reachability and the roots of every $ref/$expr.
// Problems are sorted by pointer at the end, which gives document order
// whatever pass found them (nlohmann::json orders object keys, so key order
// is the order the document has once parsed).
#include <algorithm>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/doc_reader.hpp"
#include "runtime/errc.hpp"
#include "runtime/flow.hpp"
#include "runtime/json_patch.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

constexpr size_t kMaxSteps = 1000;
constexpr int kMaxDepth = 16;

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// [A-Za-z_][A-Za-z0-9_-]{0,63}
bool valid_step_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!is_alpha(s[0]) && s[0] != '_') return false;
  return std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '-'; });
}

// [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
bool valid_flow_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (!is_alpha(s[0]) && !is_digit(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == '-';
  });
}

bool is_reserved(std::string_view id) {
  return id == "input" || id == "item" || id == "index" || id == "execution";
}

// Compares JSON pointers in the order their targets appear in the document:
// token by token, array indices numerically, object keys as std::map orders
// them; a location comes before everything inside it.
std::vector<std::string> pointer_tokens(std::string_view p) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < p.size()) {
    ++i;  // the '/'
    std::string token;
    while (i < p.size() && p[i] != '/') {
      if (p[i] == '~' && i + 1 < p.size()) {
        token += p[i + 1] == '1' ? '/' : '~';
        i += 2;
      } else {
        token += p[i++];
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

bool is_index(const std::string& t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), is_digit);
}

bool document_order(const Problem& a, const Problem& b) {
  auto ta = pointer_tokens(a.path);
  auto tb = pointer_tokens(b.path);
  for (size_t i = 0; i < ta.size() && i < tb.size(); ++i) {
    if (ta[i] == tb[i]) continue;
    if (is_index(ta[i]) && is_index(tb[i])) {
      if (ta[i].size() != tb[i].size()) return ta[i].size() < tb[i].size();
    }
    return ta[i] < tb[i];
  }
  return ta.size() < tb.size();
}

// What the second pass needs about a step beyond the model: where it is in the
// document and the cross-references it makes.
struct Transition {
  std::string target;
  std::string pointer;
};
struct RefUse {
  std::string root;
  std::string pointer;
};
struct StepInfo {
  std::string pointer;
  std::vector<Transition> transitions;
  std::vector<RefUse> uses;
};

struct ScopeInfo {
  Scope* scope = nullptr;
  BodyKind kind = BodyKind::kNone;  // kNone for the root scope
  const ScopeInfo* parent = nullptr;
  const Step* container = nullptr;  // the loop/parallel step owning the scope
  bool in_loop = false;             // a loop body, or nested inside one
  std::vector<StepInfo> steps;      // parallel to scope->steps
};

bool encloses(const ScopeInfo* outer, const ScopeInfo* inner) {
  for (const ScopeInfo* s = inner; s != nullptr; s = s->parent) {
    if (s == outer) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(const json& doc, const ParseOptions& opts) : doc_(doc), opts_(opts) {}

  Result<std::shared_ptr<const Flow>> run() {
    auto flow = std::make_shared<Flow>();
    ScopeInfo& root = scopes_.emplace_back();
    root.scope = &flow->root;

    if (!doc_.is_object()) {
      add("", "must be an object");
      return finish(nullptr);
    }
    check_fields(doc_, "",
                 {"config", "description", "id", "name", "output", "status", "steps", "trigger"});
    if (read_string(doc_, "id", "", true, flow->id) && !valid_flow_id(flow->id)) {
      add("/id", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
    }
    read_string(doc_, "name", "", false, flow->name);
    read_string(doc_, "description", "", false, flow->description);
    read_enum(doc_, "status", "", {"active", "paused"}, flow->status);
    parse_trigger(*flow);

    if (const json* steps = find(doc_, "steps")) {
      parse_scope(*steps, "/steps", root, 1);
    } else {
      add("/steps", "is required");
    }

    std::vector<RefUse> output_uses;
    if (const json* output = find(doc_, "output")) {
      flow->has_output = true;
      flow->output = compile(*output, "/output", output_uses);
    }

    if (const json* config = find(doc_, "config")) {
      if (!config->is_object()) {
        add("/config", "must be an object");
      } else {
        check_fields(
            *config, "/config",
            {"callbacks", "max_concurrent_executions", "on_error", "rate_limit", "timeout_ms"});
        read_int(*config, "timeout_ms", "/config", false, 0, kMaxDurationMs, flow->timeout_ms);
        int64_t limit = 0;
        if (read_int(*config, "max_concurrent_executions", "/config", false, 1, 1000000, limit)) {
          flow->max_concurrent_executions = static_cast<uint32_t>(limit);
        }
        if (const json* rate = find(*config, "rate_limit")) {
          if (!rate->is_object()) {
            add("/config/rate_limit", "must be an object");
          } else {
            check_fields(*rate, "/config/rate_limit", {"max_per_hour", "max_per_minute"});
            if (read_int(*rate, "max_per_minute", "/config/rate_limit", false, 1, 1000000000,
                         limit)) {
              flow->max_runs_per_minute = static_cast<uint32_t>(limit);
            }
            if (read_int(*rate, "max_per_hour", "/config/rate_limit", false, 1, 1000000000,
                         limit)) {
              flow->max_runs_per_hour = static_cast<uint32_t>(limit);
            }
          }
        }
        if (const json* callbacks = find(*config, "callbacks")) parse_callbacks(*callbacks, *flow);
        std::string on_error;
        if (read_enum(*config, "on_error", "/config", {"fail", "continue"}, on_error)) {
          flow->on_error = on_error == "fail" ? OnError::kFail : OnError::kContinue;
        }
      }
    }

    // Past a limit the model is incomplete on purpose; cross-reference checks
    // would only add noise about the steps that were not read.
    if (!limit_hit_) {
      for (const ScopeInfo& info : scopes_) check_scope(info);
      for (const RefUse& use : output_uses) check_use(root, use);
    }
    return finish(std::move(flow));
  }

 private:
  void add(std::string path, std::string message) {
    problems_.push_back(Problem{std::move(path), std::move(message)});
  }

  Result<std::shared_ptr<const Flow>> finish(std::shared_ptr<Flow> flow) {
    if (!problems_.empty()) {
      std::stable_sort(problems_.begin(), problems_.end(), document_order);
      size_t n = problems_.size();
      std::string message =
          "flow is invalid: " + std::to_string(n) + (n == 1 ? " problem" : " problems");
      // Said once for the whole flow, not in each problem: a misspelt type
      // is usually repeated, and the list is the same for every one.
      if (unknown_type_) message += " (known step types: " + step_kind_names(nullptr, ", ") + ")";
      return Status(RuntimeErrc::kInvalidFlow, std::move(message), std::move(problems_));
    }
    flow->source = doc_;
    for (const ScopeInfo& info : scopes_) {
      for (const Step& step : info.scope->steps) {
        flow->all_steps.emplace(step.id, Flow::Located{&step, info.scope, info.container});
      }
    }
    return std::shared_ptr<const Flow>(std::move(flow));
  }

  // ---- field readers: each reports its own problem and says whether `out` was set

  // The readers are DocReader's (shared with the trigger and callback
  // parsers, so a mistake reads the same wherever it is made).
  static const json* find(const json& obj, std::string_view key) {
    return DocReader::find(obj, key);
  }

  void check_fields(const json& obj, std::string_view pointer,
                    std::initializer_list<std::string_view> allowed) {
    reader_.check_fields(obj, pointer, allowed);
  }

  bool read_string(const json& obj, std::string_view key, std::string_view pointer, bool required,
                   std::string& out, bool non_empty = false) {
    return reader_.read_string(obj, key, pointer, required, out, non_empty);
  }

  bool read_enum(const json& obj, std::string_view key, std::string_view pointer,
                 std::initializer_list<std::string_view> values, std::string& out) {
    return reader_.read_enum(obj, key, pointer, false, values, out);
  }

  bool read_int(const json& obj, std::string_view key, std::string_view pointer, bool required,
                int64_t min, int64_t max, int64_t& out) {
    return reader_.read_int(obj, key, pointer, required, min, max, out);
  }

  bool read_bool(const json& obj, std::string_view key, std::string_view pointer, bool& out) {
    const json* v = find(obj, key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      add(pointer_child(pointer, key), "must be a boolean");
      return false;
    }
    out = v->get<bool>();
    return true;
  }

  // A transition names a step; whether it exists is the second pass's job.
  void read_transition(const json& obj, std::string_view key, std::string_view pointer,
                       std::string& out, StepInfo& info) {
    if (read_string(obj, key, pointer, false, out, true)) {
      info.transitions.push_back(Transition{out, pointer_child(pointer, key)});
    }
  }

  Template compile(const json& doc, const std::string& pointer, std::vector<RefUse>& uses) {
    Template t = Template::compile(doc, pointer, problems_);
    for (const Template::Use& use : t.uses()) uses.push_back(RefUse{use.root, use.pointer});
    return t;
  }

  // What a step kind's parse hook reads its config through (step_kind.hpp):
  // the parser's readers, with the step's transitions and $ref/$expr roots
  // noted for the second pass.
  class StepContext final : public ParseContext {
   public:
    StepContext(Parser& parser, ScopeInfo& info, StepInfo& si, int depth)
        : p_(parser), info_(info), si_(si), depth_(depth) {}

    DocReader& reader() override { return p_.reader_; }
    bool read_bool(const json& obj, std::string_view key, std::string_view pointer,
                   bool& out) override {
      return p_.read_bool(obj, key, pointer, out);
    }
    void read_transition(const json& obj, std::string_view key, std::string_view pointer,
                         std::string& out) override {
      p_.read_transition(obj, key, pointer, out, si_);
    }
    Template compile(const json& doc, const std::string& pointer) override {
      return p_.compile(doc, pointer, si_.uses);
    }
    void use(const std::string& root, const std::string& pointer) override {
      si_.uses.push_back(RefUse{root, pointer});
    }
    void parse_body(const json& config, const std::string& pointer, Step& step) override {
      p_.parse_body(config, pointer, step, info_, depth_);
    }
    const std::vector<ToolSpec>& tools() const override { return p_.opts_.tools; }
    bool stored() const override { return p_.opts_.stored; }

   private:
    Parser& p_;
    ScopeInfo& info_;
    StepInfo& si_;
    int depth_;
  };

  // ---- the first pass

  void parse_trigger(Flow& flow) {
    const json* trigger = find(doc_, "trigger");
    if (trigger == nullptr) return;
    if (!trigger->is_object()) {
      add("/trigger", "must be an object");
      return;
    }
    flow.trigger = *trigger;
    flow.trigger_spec = parse_trigger_spec(*trigger, "/trigger", problems_);
  }

  // config.callbacks: [{"url", "events", "secret"?}], at most kMaxCallbacks.
  void parse_callbacks(const json& callbacks, Flow& flow) {
    static constexpr size_t kMaxCallbacks = 10;
    static constexpr std::string_view kEvents[] = {
        "execution.started",   "execution.completed", "execution.failed", "execution.cancelled",
        "execution.timed_out", "step.completed",      "step.failed"};
    const std::string p = "/config/callbacks";
    DocReader r(problems_);
    if (!callbacks.is_array()) {
      add(p, "must be an array");
      return;
    }
    if (callbacks.size() > kMaxCallbacks) {
      add(p, "a flow may have at most " + std::to_string(kMaxCallbacks) + " callbacks");
      return;
    }
    for (size_t i = 0; i < callbacks.size(); ++i) {
      const json& doc = callbacks[i];
      std::string cp = pointer_child(p, i);
      if (!r.expect_object(doc, cp)) continue;
      r.check_fields(doc, cp, {"events", "secret", "url"});
      Callback callback;
      if (r.read_string(doc, "url", cp, true, callback.url) && !valid_callback_url(callback.url)) {
        add(pointer_child(cp, "url"),
            "must be an http:// or https:// URL of at most 2048 characters");
      }
      const json* events = find(doc, "events");
      std::string ep = pointer_child(cp, "events");
      if (events == nullptr) {
        add(ep, "is required");
      } else if (!events->is_array() || events->empty()) {
        add(ep, "must be a non-empty array");
      } else {
        for (size_t j = 0; j < events->size(); ++j) {
          const json& e = (*events)[j];
          const std::string* name = e.is_string() ? &e.get_ref<const std::string&>() : nullptr;
          if (name == nullptr ||
              std::find(std::begin(kEvents), std::end(kEvents), *name) == std::end(kEvents)) {
            std::string message = "must be one of";
            for (std::string_view known : kEvents) {
              message += known == kEvents[0] ? " " : ", ";
              message += known;
            }
            add(pointer_child(ep, j), message);
          } else if (std::find(callback.events.begin(), callback.events.end(), *name) !=
                     callback.events.end()) {
            add(pointer_child(ep, j), "duplicate event " + quote_name(*name));
          } else {
            callback.events.push_back(*name);
          }
        }
      }
      r.read_secret(doc, "secret", cp, false, callback.secret);
      flow.callbacks.push_back(std::move(callback));
    }
  }

  // A scheme the callback client speaks and something after it; whether the
  // host resolves is the client's business when it posts.
  static bool valid_callback_url(std::string_view url) {
    constexpr size_t kMaxUrl = 2048;
    if (url.size() > kMaxUrl) return false;
    for (std::string_view scheme : {"http://", "https://"}) {
      if (url.size() > scheme.size() && url.substr(0, scheme.size()) == scheme) return true;
    }
    return false;
  }

  void parse_scope(const json& steps, const std::string& pointer, ScopeInfo& info, int depth) {
    if (!steps.is_array() || steps.empty()) {
      add(pointer, "must be a non-empty array");
      return;
    }
    if (depth > kMaxDepth) {
      add(pointer, "steps may be nested at most " + std::to_string(kMaxDepth) + " levels deep");
      limit_hit_ = true;
      return;
    }
    // No reallocation after this: Located, container and all_steps keep
    // pointers to these steps.
    info.scope->steps.reserve(std::min(steps.size(), kMaxSteps));
    info.steps.reserve(info.scope->steps.capacity());
    for (size_t i = 0; i < steps.size(); ++i) {
      if (total_steps_ == kMaxSteps) {
        add(pointer_child(pointer, i),
            "a flow may have at most " + std::to_string(kMaxSteps) + " steps");
        limit_hit_ = true;
        return;
      }
      ++total_steps_;
      info.scope->steps.emplace_back();
      info.steps.emplace_back();
      parse_step(steps[i], pointer_child(pointer, i), info, i, depth);
    }
  }

  void parse_step(const json& doc, const std::string& pointer, ScopeInfo& info, size_t pos,
                  int depth) {
    Step& step = info.scope->steps[pos];
    StepInfo& si = info.steps[pos];
    si.pointer = pointer;
    if (!doc.is_object()) {
      add(pointer, "must be an object");
      return;
    }
    check_fields(
        doc, pointer,
        {"config", "id", "name", "on_failure", "on_success", "on_timeout", "retry_config", "type"});

    if (read_string(doc, "id", pointer, true, step.id)) {
      std::string id_pointer = pointer_child(pointer, "id");
      if (!valid_step_id(step.id)) {
        add(id_pointer, "must match [A-Za-z_][A-Za-z0-9_-]{0,63}");
      } else if (is_reserved(step.id)) {
        add(id_pointer, quote_name(step.id) + " is a reserved name");
      }
      auto [first, inserted] = defined_.emplace(step.id, Defined{&info, pos, pointer});
      if (!inserted) {
        add(id_pointer, "duplicate step id " + quote_name(step.id) + " (first defined at " +
                            first->second.pointer + ")");
      }
      info.scope->index.emplace(step.id, pos);
    }

    const StepKind* kind = nullptr;
    std::string type_name;
    if (read_string(doc, "type", pointer, true, type_name)) {
      kind = find_step_kind(type_name);
      if (kind == nullptr) {
        add(pointer_child(pointer, "type"), "unknown step type " + quote_name(type_name));
        unknown_type_ = true;
      }
    }
    if (kind != nullptr) step.type = kind->type;

    read_string(doc, "name", pointer, false, step.name);
    read_transition(doc, "on_success", pointer, step.on_success, si);
    read_transition(doc, "on_failure", pointer, step.on_failure, si);
    // Only steps that wait for people or signals have a timeout of their own
    // to branch on; elsewhere on_timeout would be a transition never taken.
    if (find(doc, "on_timeout") != nullptr) {
      if (kind != nullptr && kind->waits_for_input) {
        read_transition(doc, "on_timeout", pointer, step.on_timeout, si);
      } else if (kind != nullptr) {
        add(pointer_child(pointer, "on_timeout"),
            "only " + step_kind_names(&StepKind::waits_for_input) + " steps can have on_timeout");
      }
    }

    // Retrying is for calls that may succeed next time.
    if (const json* retry = find(doc, "retry_config")) {
      if (kind != nullptr && kind->calls_tool) {
        parse_retry(*retry, pointer_child(pointer, "retry_config"), step.retry);
      } else if (kind != nullptr) {
        add(pointer_child(pointer, "retry_config"),
            "only " + step_kind_names(&StepKind::calls_tool) + " steps can have a retry_config");
      }
    }

    const json* config = find(doc, "config");
    std::string cp = pointer_child(pointer, "config");
    if (config == nullptr) {
      add(cp, "is required");
      return;
    }
    if (!config->is_object()) {
      add(cp, "must be an object");
      return;
    }
    if (kind == nullptr) return;  // the fields of an unknown type are unknown too
    StepContext ctx(*this, info, si, depth);
    kind->parse(ctx, *config, cp, step);
    // A call without retry_config gets its action's default (an MCP tool
    // that says it is idempotent, say); a retry_config always wins.
    if (kind->calls_tool && find(doc, "retry_config") == nullptr) {
      if (const ActionSpec* spec = find_action_spec(step.tool_id, step.action)) {
        step.retry = spec->default_retry;
      }
    }
    if (!step.on_timeout.empty() && step.timeout_ms == 0 &&
        find(*config, "timeout_ms") == nullptr) {
      add(pointer_child(pointer, "on_timeout"),
          "needs config.timeout_ms: without it the step never times out");
    }
  }

  const ActionSpec* find_action_spec(const std::string& tool_id, const std::string& action) const {
    for (const ToolSpec& t : opts_.tools) {
      if (t.id == tool_id) return t.find_action(action);
    }
    return nullptr;
  }

  void parse_retry(const json& doc, const std::string& pointer, RetryPolicy& retry) {
    if (!doc.is_object()) {
      add(pointer, "must be an object");
      return;
    }
    check_fields(
        doc, pointer,
        {"backoff_type", "initial_delay_ms", "max_attempts", "max_delay_ms", "multiplier"});
    int64_t attempts = 1;
    if (read_int(doc, "max_attempts", pointer, true, 1, 100, attempts)) {
      retry.max_attempts = static_cast<uint32_t>(attempts);
    }
    std::string backoff;
    if (read_enum(doc, "backoff_type", pointer, {"fixed", "exponential"}, backoff)) {
      retry.backoff = backoff == "fixed" ? Backoff::kFixed : Backoff::kExponential;
    }
    read_int(doc, "initial_delay_ms", pointer, false, 0, kMaxDurationMs, retry.initial_delay_ms);
    // An explicit max below the initial delay is a contradiction; the default
    // max simply follows a large initial delay up.
    if (read_int(doc, "max_delay_ms", pointer, false, 0, kMaxDurationMs, retry.max_delay_ms)) {
      if (retry.max_delay_ms < retry.initial_delay_ms) {
        add(pointer_child(pointer, "max_delay_ms"),
            "must be ≥ initial_delay_ms (" + std::to_string(retry.initial_delay_ms) + ")");
      }
    } else {
      retry.max_delay_ms = std::max(retry.max_delay_ms, retry.initial_delay_ms);
    }
    if (const json* m = find(doc, "multiplier")) {
      if (!m->is_number() || m->get<double>() < 1.0) {
        add(pointer_child(pointer, "multiplier"), "must be a number ≥ 1");
      } else {
        retry.multiplier = m->get<double>();
      }
    }
  }

  // The nested steps of a container; its kind says how they run (a loop's
  // iterations or a parallel step's branches).
  void parse_body(const json& config, const std::string& cp, Step& step, ScopeInfo& info,
                  int depth) {
    const json* steps = find(config, "steps");
    if (steps == nullptr) {
      add(pointer_child(cp, "steps"), "is required");
      return;
    }
    const BodyKind kind = step_kind(step.type).body;
    step.body = std::make_shared<Scope>();
    ScopeInfo& body = scopes_.emplace_back();  // deque: earlier infos stay put
    body.scope = step.body.get();
    body.kind = kind;
    body.parent = &info;
    body.container = &step;
    body.in_loop = info.in_loop || kind == BodyKind::kIterations;
    parse_scope(*steps, pointer_child(cp, "steps"), body, depth + 1);
  }

  // ---- the second pass

  // Transitions, cycles, entry points and reachability of one scope, then the
  // $ref/$expr roots of its steps.
  void check_scope(const ScopeInfo& info) {
    Scope& scope = *info.scope;
    const size_t n = scope.steps.size();
    struct Edge {
      size_t to;
      const Transition* via;
    };
    std::vector<std::vector<Edge>> edges(n);
    std::vector<bool> targeted(n, false);
    for (size_t i = 0; i < n; ++i) {
      for (const Transition& t : info.steps[i].transitions) {
        auto local = scope.index.find(t.target);
        if (t.target == scope.steps[i].id) {
          add(t.pointer, "a step cannot transition to itself");
        } else if (local != scope.index.end()) {
          edges[i].push_back(Edge{local->second, &t});
          targeted[local->second] = true;
        } else if (defined_.count(t.target) != 0) {
          add(t.pointer, "step " + quote_name(t.target) + " is in another scope");
        } else {
          add(t.pointer, "unknown step " + quote_name(t.target));
        }
      }
    }

    // Cycles: depth-first search; a transition back to a step on the current
    // path closes a cycle, reported at that transition.
    enum Color : uint8_t { kWhite, kGray, kBlack };
    std::vector<Color> color(n, kWhite);
    std::vector<size_t> path;
    auto visit = [&](auto& self, size_t i) -> void {
      color[i] = kGray;
      path.push_back(i);
      for (const Edge& e : edges[i]) {
        if (color[e.to] == kGray) {
          std::string cycle = "cycle: ";
          auto start = std::find(path.begin(), path.end(), e.to);
          for (auto it = start; it != path.end(); ++it) cycle += scope.steps[*it].id + " -> ";
          cycle += scope.steps[e.to].id + "; use a loop step to repeat work";
          add(e.via->pointer, cycle);
        } else if (color[e.to] == kWhite) {
          self(self, e.to);
        }
      }
      path.pop_back();
      color[i] = kBlack;
    };
    for (size_t i = 0; i < n; ++i) {
      if (color[i] == kWhite) visit(visit, i);
    }

    // A step only counts if it is the one its id names (not an id-less or
    // duplicate step, which already has its own problem).
    auto named = [&](size_t i) {
      auto it = defined_.find(scope.steps[i].id);
      return it != defined_.end() && it->second.scope == &info && it->second.pos == i;
    };
    if (info.kind == BodyKind::kBranches) {
      for (size_t i = 0; i < n; ++i) {
        if (!targeted[i] && named(i)) scope.roots.push_back(scope.steps[i].id);
      }
      // Branches run side by side with the same path prefix, so a step two
      // branches lead to would run twice under one path: branches may not
      // merge (a step after the parallel step joins them instead).
      std::vector<size_t> owner(n, SIZE_MAX);
      for (size_t r = 0; r < n; ++r) {
        if (targeted[r] || !named(r)) continue;
        std::vector<size_t> todo{r};
        std::vector<bool> seen(n, false);
        seen[r] = true;
        while (!todo.empty()) {
          size_t i = todo.back();
          todo.pop_back();
          if (owner[i] == SIZE_MAX) {
            owner[i] = r;
          } else if (owner[i] != r && named(i)) {
            add(info.steps[i].pointer,
                "step " + quote_name(scope.steps[i].id) + " is reached from branches " +
                    quote_name(scope.steps[owner[i]].id) + " and " + quote_name(scope.steps[r].id) +
                    "; parallel branches cannot merge, put the joining "
                    "step after the parallel step");
            continue;
          }
          for (const Edge& e : edges[i]) {
            if (!seen[e.to]) {
              seen[e.to] = true;
              todo.push_back(e.to);
            }
          }
        }
      }
    } else if (n > 0 && named(0)) {
      scope.roots.push_back(scope.steps[0].id);
      std::vector<bool> reached(n, false);
      std::vector<size_t> todo{0};
      reached[0] = true;
      while (!todo.empty()) {
        size_t i = todo.back();
        todo.pop_back();
        for (const Edge& e : edges[i]) {
          if (!reached[e.to]) {
            reached[e.to] = true;
            todo.push_back(e.to);
          }
        }
      }
      for (size_t i = 1; i < n; ++i) {
        if (!reached[i] && named(i)) {
          add(info.steps[i].pointer, "step " + quote_name(scope.steps[i].id) +
                                         " is unreachable from " + quote_name(scope.steps[0].id));
        }
      }
    }

    for (const StepInfo& si : info.steps) {
      for (const RefUse& use : si.uses) check_use(info, use);
    }
  }

  // A $ref/$expr may read the input, the execution, the loop variables inside
  // a loop, and the steps of its own scope or of an enclosing one; steps
  // nested in a container are only reachable through the container's output.
  void check_use(const ScopeInfo& info, const RefUse& use) {
    const std::string& root = use.root;
    if (root.empty() || root == "input" || root == "execution") return;
    if (root == "item" || root == "index") {
      if (!info.in_loop) add(use.pointer, quote_name(root) + " is only available inside a loop");
      return;
    }
    auto it = defined_.find(root);
    if (it == defined_.end()) {
      add(use.pointer, "unknown step " + quote_name(root) + " in " + ref_kind(use.pointer));
      return;
    }
    const ScopeInfo* s = it->second.scope;
    if (encloses(s, &info)) return;
    while (!encloses(s->parent, &info)) s = s->parent;
    add(use.pointer, quote_name(root) + " is inside " + to_string(s->container->type) + " " +
                         quote_name(s->container->id) + " and not visible here");
  }

  // Template::Use and condition expressions point at the "$ref"/"$expr" member.
  static const char* ref_kind(std::string_view pointer) {
    std::string_view expr_suffix = "/$expr";
    return pointer.size() >= expr_suffix.size() &&
                   pointer.substr(pointer.size() - expr_suffix.size()) == expr_suffix
               ? "$expr"
               : "$ref";
  }

  struct Defined {
    const ScopeInfo* scope;
    size_t pos;
    std::string pointer;
  };

  const json& doc_;
  const ParseOptions& opts_;
  std::vector<Problem> problems_;
  DocReader reader_{problems_};             // after problems_, which it writes to
  std::deque<ScopeInfo> scopes_;            // creation order = document order
  std::map<std::string, Defined> defined_;  // step id -> first definition
  size_t total_steps_ = 0;
  bool limit_hit_ = false;
  bool unknown_type_ = false;  // a step names a type no kind has
};

}  // namespace

Result<std::shared_ptr<const Flow>> parse_flow(const json& doc, const ParseOptions& opts) {
  // The parser only reads the document through non-throwing accessors; the
  // catch is for allocation failure on absurd input, which must not take an
  // actor down with it.
  try {
    return Parser(doc, opts).run();
  } catch (const std::exception& e) {
    return Status(RuntimeErrc::kInvalidFlow, std::string("flow could not be parsed: ") + e.what());
  }
}

}  // namespace yantra
