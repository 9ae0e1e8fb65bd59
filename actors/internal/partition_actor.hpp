// The partition supervisor's typed interface: what the engine and its
// executions may send it. Its private messages (a parked retry's timeout, a
// stalled execution's retry, a sleeper's wake-up) are declared in
// partition.cpp, in the interface the actor implements, which extends this
// one; a message a partition does not accept does not compile.
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/internal/atoms.hpp"
#include "actors/internal/execution_actor.hpp"

namespace yantra::detail {

using partition_actor = caf::typed_actor<
    // The engine: a new run, a rebuild (recovery, fork, retry), and inputs
    // of running executions, routed to their actor (woken if asleep).
    caf::reacts_to<start_atom, StartCommand>, caf::reacts_to<activate_atom, Activation>,
    caf::reacts_to<activate_atom, std::string>, caf::reacts_to<cancel_atom, CancelCommand>,
    caf::reacts_to<signal_atom, SignalCommand>, caf::reacts_to<approve_atom, ApprovalCommand>,
    // An execution: idle until `due` (ms, 0 = no timer), or awake after all.
    caf::reacts_to<idle_atom, std::string, int64_t>, caf::reacts_to<awake_atom, std::string>,
    // The engine: leadership lost. Stops every execution (nothing written),
    // answers held inputs with "partition_not_led", then quits once the
    // last execution actor is down.
    caf::reacts_to<release_atom>,
    // Tests only: crash an execution's actor; true when it was live.
    caf::replies_to<kill_atom, std::string>::with<bool>>;

partition_actor spawn_partition(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition);

}  // namespace yantra::detail
