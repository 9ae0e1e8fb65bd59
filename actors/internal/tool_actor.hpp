// The typed interface of a tool actor: one call in, its result out. Both
// kinds implement it — the pool that runs a blocking Tool on threads of its
// own (tools.cpp) and the non-blocking built-in `core` tool (core_tool.cpp) —
// each extending it with private messages of its own.
#pragma once

#include <cstddef>
#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/internal/atoms.hpp"
#include "actors/tools.hpp"

namespace yantra::detail {

struct EngineCtx;

using CallPtr = std::shared_ptr<const ToolCall>;

using tool_actor = caf::typed_actor<caf::replies_to<invoke_atom, CallPtr>::with<ToolResult>>;

tool_actor spawn_core_tool(caf::actor_system& sys, size_t max_concurrency, EngineCtx* ctx);
ToolSpec core_tool_spec();
tool_actor spawn_tool_pool(caf::actor_system& sys, std::shared_ptr<Tool> tool);

}  // namespace yantra::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::CallPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::ToolResult)
