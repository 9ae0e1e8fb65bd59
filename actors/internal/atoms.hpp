// The CAF atoms of actors/, in one place: an atom is a message's name, and
// two actors that share one (cancel_atom: engine -> partition -> execution)
// must agree on it. Which actor accepts which atom, with which arguments, is
// declared by the typed interfaces next to each actor
// (partition_actor.hpp, execution_actor.hpp, tool_actor.hpp). Atoms an actor
// only sends to itself are declared privately in its .cpp file.
//
// Local only: these never cross a node boundary; the cluster layer defines
// its own serializable messages.
#pragma once

#include <caf/atom.hpp>

namespace yantra::detail {

using start_atom = caf::atom_constant<caf::atom("ystart")>;
using activate_atom = caf::atom_constant<caf::atom("yactivate")>;
using cancel_atom = caf::atom_constant<caf::atom("ycancel")>;
using signal_atom = caf::atom_constant<caf::atom("ysignal")>;
using approve_atom = caf::atom_constant<caf::atom("yapprove")>;
using invoke_atom = caf::atom_constant<caf::atom("yinvoke")>;
using kill_atom = caf::atom_constant<caf::atom("ykill")>;
// Passivation handshake (see partition.cpp): an idle execution asks to
// sleep, the partition answers sleep (quit) and the execution either quits
// or, if an input reached it meanwhile, says it is awake.
using idle_atom = caf::atom_constant<caf::atom("yidle")>;
using sleep_atom = caf::atom_constant<caf::atom("ysleep")>;
using awake_atom = caf::atom_constant<caf::atom("yawake")>;
// Leadership of the partition was lost (Engine::release_partition): the
// partition and its executions stop without writing anything and answer
// what waits on them with "partition_not_led".
using release_atom = caf::atom_constant<caf::atom("yrelease")>;

}  // namespace yantra::detail
