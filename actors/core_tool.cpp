// The built-in `core` tool as a non-blocking actor: `echo` returns its
// parameters, `fail` fails (the first `times` attempts only, if given) and
// `sleep` holds a concurrency slot for `ms` milliseconds using a timer
// message, never a blocked thread; `emit` {"name", "data"} emits an event of
// the execution's tenant (starting the flows it triggers) and answers with
// their execution ids — asynchronously too: the engine's answer comes back
// as a message. Calls beyond max_concurrency queue in arrival order, which
// is what the concurrency tests observe. Tool calls are at-least-once, so an
// emit repeated after a crash emits again.
#include <deque>
#include <unordered_map>

#include "actors/internal/context.hpp"

namespace yantra::detail {
namespace {

// Messages the core tool sends itself: an emit's starts are known (from an
// engine thread), a sleep is over.
using emitted_atom = caf::atom_constant<caf::atom("yemitted")>;
using done_atom = caf::atom_constant<caf::atom("ydone")>;

using core_tool_impl = tool_actor::extend<caf::reacts_to<emitted_atom, uint64_t, std::string>,
                                          caf::reacts_to<done_atom, uint64_t>>;
using Promise = caf::typed_response_promise<ToolResult>;

struct CoreToolState {
  static inline const char* name = "yantra.tool.core";
  size_t max_concurrency = 1024;
  EngineCtx* ctx = nullptr;
  size_t busy = 0;
  uint64_t next_ticket = 1;
  std::deque<std::pair<CallPtr, Promise>> queue;
  std::unordered_map<uint64_t, std::pair<Promise, ToolResult>> sleeping;
};

using Self = std::remove_pointer_t<core_tool_impl::stateful_pointer<CoreToolState>>;

void release(Self* self);

void run(Self* self, const CallPtr& call, Promise rp) {
  auto& st = self->state;
  st.busy++;
  const json& p = call->parameters;
  if (call->action == "echo") {
    rp.deliver(ToolResult::success(p));
    release(self);
  } else if (call->action == "fail") {
    const int64_t times = p.is_object() ? p.value("times", int64_t{-1}) : -1;
    if (times >= 0 && static_cast<int64_t>(call->attempt) > times) {
      rp.deliver(ToolResult::success(json{{"attempt", call->attempt}, {"recovered", true}}));
    } else {
      const bool retriable = p.is_object() ? p.value("retriable", true) : true;
      rp.deliver(ToolResult::failure(
          p.is_object() ? p.value("code", std::string("core_fail")) : "core_fail",
          p.is_object() ? p.value("message", std::string("failed on purpose"))
                        : "failed on purpose",
          retriable));
    }
    release(self);
  } else if (call->action == "sleep") {
    int64_t ms = p.is_object() ? p.value("ms", int64_t{0}) : 0;
    if (ms < 0) ms = 0;
    const uint64_t ticket = st.next_ticket++;
    st.sleeping.emplace(ticket,
                        std::make_pair(std::move(rp), ToolResult::success(json{{"slept_ms", ms}})));
    self->delayed_send(self, std::chrono::milliseconds(ms), done_atom::value, ticket);
  } else if (call->action == "emit") {
    const json* name = p.is_object() && p.contains("name") ? &p["name"] : nullptr;
    if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty() ||
        st.ctx == nullptr || !st.ctx->emit_event) {
      rp.deliver(ToolResult::failure("invalid_parameters",
                                     st.ctx == nullptr || !st.ctx->emit_event
                                         ? "events cannot be emitted on this node"
                                         : "emit needs {\"name\": \"...\", \"data\": ...}",
                                     false));
      release(self);
      return;
    }
    const uint64_t ticket = st.next_ticket++;
    st.sleeping.emplace(ticket, std::make_pair(std::move(rp), ToolResult::success(nullptr)));
    auto handle = caf::actor_cast<core_tool_impl>(self);
    st.ctx->emit_event(call->tenant, name->get<std::string>(), p.value("data", json(nullptr)),
                       [handle, ticket](json out) {
                         // As text: json is not a CAF message type.
                         caf::anon_send(handle, emitted_atom::value, ticket, out.dump());
                       });
  } else {
    rp.deliver(
        ToolResult::failure("unknown_action", "core has no action '" + call->action + "'", false));
    release(self);
  }
}

void release(Self* self) {
  auto& st = self->state;
  st.busy--;
  while (st.busy < st.max_concurrency && !st.queue.empty()) {
    auto next = std::move(st.queue.front());
    st.queue.pop_front();
    run(self, next.first, std::move(next.second));
  }
}

core_tool_impl::behavior_type core_tool(Self* self, size_t max_concurrency, EngineCtx* ctx) {
  self->state.max_concurrency = max_concurrency == 0 ? 1 : max_concurrency;
  self->state.ctx = ctx;
  return {
      [=](invoke_atom, const CallPtr& call) -> caf::result<ToolResult> {
        auto rp = self->make_response_promise<ToolResult>();
        if (self->state.busy < self->state.max_concurrency) {
          run(self, call, rp);
        } else {
          self->state.queue.emplace_back(call, rp);
        }
        return rp;
      },
      [=](emitted_atom, uint64_t ticket, const std::string& out) {
        auto it = self->state.sleeping.find(ticket);
        if (it == self->state.sleeping.end()) return;
        it->second.first.deliver(ToolResult::success(json::parse(out, nullptr, false)));
        self->state.sleeping.erase(it);
        release(self);
      },
      [=](done_atom, uint64_t ticket) {
        auto it = self->state.sleeping.find(ticket);
        if (it == self->state.sleeping.end()) return;
        it->second.first.deliver(std::move(it->second.second));
        self->state.sleeping.erase(it);
        release(self);
      },
  };
}

}  // namespace

tool_actor spawn_core_tool(caf::actor_system& sys, size_t max_concurrency, EngineCtx* ctx) {
  return sys.spawn(core_tool, max_concurrency, ctx);
}

// The registry's description (docs/tools.md, "core"). Fields the actions do
// not read are allowed (additionalProperties is left open): flows written
// before the schemas existed pass extra ones, and ignoring them is harmless.
ToolSpec core_tool_spec() {
  ActionSpec echo("echo");
  echo.description = "Answers with its parameters, unchanged.";
  echo.input_schema = json::object();  // anything
  echo.output_schema = {{"description", "the parameters, as resolved"}};
  echo.side_effects = false;
  echo.idempotent = true;

  ActionSpec fail("fail");
  fail.description =
      "Fails with `code` and `message` (retriable unless retriable is false); with `times`, only "
      "attempts 1..times fail and later ones answer {attempt, recovered: true}.";
  fail.input_schema = {
      {"type", json::array({"object", "null"})},
      {"properties",
       {{"times", {{"type", "integer"}, {"minimum", 0}}},
        {"retriable", {{"type", "boolean"}}},
        {"code", {{"type", "string"}, {"minLength", 1}}},
        {"message", {{"type", "string"}}}}},
  };
  fail.output_schema = {
      {"type", "object"},
      {"properties",
       {{"attempt", {{"type", "integer"}}}, {"recovered", {{"type", "boolean"}, {"const", true}}}}},
  };
  fail.side_effects = false;
  fail.idempotent = true;

  ActionSpec sleep("sleep");
  sleep.description = "Holds a concurrency slot for `ms` milliseconds (a timer, no thread).";
  sleep.input_schema = {
      {"type", json::array({"object", "null"})},
      {"properties", {{"ms", {{"type", "integer"}, {"minimum", 0}}}}},
  };
  sleep.output_schema = {{"type", "object"},
                         {"required", {"slept_ms"}},
                         {"properties", {{"slept_ms", {{"type", "integer"}}}}}};
  sleep.side_effects = false;
  sleep.idempotent = true;

  ActionSpec emit("emit");
  emit.description =
      "Emits the event `name` with `data` in the execution's tenant, starting the flows it "
      "triggers; answers {executions, errors}. Repeated after a crash, it emits again.";
  emit.input_schema = {
      {"type", "object"},
      {"required", {"name"}},
      {"properties",
       {{"name", {{"type", "string"}, {"minLength", 1}}},
        {"data", {{"description", "the event's payload (any JSON)"}}}}},
  };
  emit.output_schema = {
      {"type", "object"},
      {"properties",
       {{"executions",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"flow_id", {{"type", "string"}}},
              {"execution_id", {{"type", "string"}}},
              {"status", {{"type", "string"}}}}}}}}},
        {"errors", {{"type", "array"}}}}},
  };
  emit.side_effects = true;
  emit.idempotent = false;

  ToolSpec spec{"core", {echo, fail, sleep, emit}};
  spec.version = "1";
  spec.description = "Built-in helpers: echo, fail on purpose, sleep, emit an event";
  return spec;
}

}  // namespace yantra::detail
