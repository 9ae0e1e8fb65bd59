// The execution actor's messages: how one is created (StartCommand for a new
// run, Activation to rebuild one from its log) and the typed interface the
// partition talks to it through. Its private messages (batch durable, timer
// due, secrets resolved) are declared in execution_actor.cpp, in the
// interface the actor implements, which extends this one; a message an
// execution does not accept does not compile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/engine.hpp"
#include "actors/internal/atoms.hpp"

namespace yantra::detail {

struct EngineCtx;

// Asks a partition to run a new execution.
struct StartCommand {
  std::string execution_id;
  RunRequest request;
  std::shared_ptr<const Flow> flow;
  Engine::StartedFn started;
  Engine::FinishedFn finished;
  // A run leaving its flow's queue: the queue row, deleted in the batch that
  // holds ExecutionStarted (so it neither vanishes nor starts twice).
  std::string delete_key;
};

// Asks a partition to rebuild an execution from its log (recovery, restart).
struct Activation {
  std::string execution_id;
  // The state of the newest snapshot, when there is one; `events` then holds
  // only what follows it.
  std::optional<ExecutionState> base;
  std::vector<v1::Event> events;
  std::shared_ptr<const Flow> flow;
  Status error;  // set when the log or the flow could not be loaded
  // A fork: `events` (a copy of another execution's history, plus its
  // StateOverridden) are not stored yet and become the first batch.
  bool unsaved = false;
  // A retry: an input event (Resumed) to submit once the log is folded.
  std::optional<v1::Event> input;
  Engine::StartedFn started;  // answered when the first batch is durable
};

// Inputs of a running execution, routed by its partition; `done` gets ok
// once the input's event is durable (or the reason it was refused).
struct CancelCommand {
  std::string execution_id;
  std::string reason;
  std::function<void(Status)> done;
};

struct SignalCommand {
  std::string execution_id;
  std::string name;
  json data;
  std::string signal_id;
  std::function<void(Status)> done;
};

struct ApprovalCommand {
  std::string execution_id;
  std::string step_path;
  std::string key_id;
  std::string role;
  bool approved = false;
  std::string comment;
  std::function<void(Status)> done;
};

// What an execution accepts from its partition.
using execution_actor = caf::typed_actor<caf::reacts_to<cancel_atom, CancelCommand>,
                                         caf::reacts_to<signal_atom, SignalCommand>,
                                         caf::reacts_to<approve_atom, ApprovalCommand>,
                                         // The partition's answer to idle_atom: quit unless awake.
                                         caf::reacts_to<sleep_atom>,
                                         // Leadership lost: answer waiters, quit, write nothing.
                                         caf::reacts_to<release_atom>,
                                         // Tests only (Engine::kill_execution_for_test): crash.
                                         caf::reacts_to<kill_atom>>;

execution_actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                                StartCommand cmd);
execution_actor spawn_execution(caf::actor_system& sys, EngineCtx* ctx, uint32_t partition,
                                Activation act);

}  // namespace yantra::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::StartCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::Activation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::CancelCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::SignalCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yantra::detail::ApprovalCommand)
