// Compiled, not run, by tests/actors/check_interfaces.cmake (CTest
// actors_interfaces_test): a message an actor's typed interface
// (actors/internal/*_actor.hpp) does not declare must not compile. The good
// variant must compile; each YANTRA_MISMATCH variant must fail with CAF's
// "does not accept" assertion — so the check fails if the interfaces go
// untyped again, or if the good sends stop compiling.
#include <string>

#include <caf/all.hpp>

#include "actors/internal/partition_actor.hpp"
#include "actors/internal/tool_actor.hpp"

namespace yantra::detail {

void sends(const partition_actor& p, const execution_actor& e, const tool_actor& t) {
#if !defined(YANTRA_MISMATCH)
  caf::anon_send(p, cancel_atom::value, CancelCommand{});
  caf::anon_send(p, idle_atom::value, std::string("id"), int64_t{0});
  caf::anon_send(e, sleep_atom::value);
  caf::anon_send(t, invoke_atom::value, CallPtr{});
#elif YANTRA_MISMATCH == 1
  caf::anon_send(p, sleep_atom::value);  // an execution's message, sent to a partition
#elif YANTRA_MISMATCH == 2
  caf::anon_send(e, cancel_atom::value, std::string("id"));  // the wrong payload
#elif YANTRA_MISMATCH == 3
  caf::anon_send(t, invoke_atom::value, ToolCall{});  // a call by value, not CallPtr
#endif
}

}  // namespace yantra::detail
