// Test-only read access to the stores behind an Engine, for tests that
// inspect what was written (outbox rows, snapshots, webhook ids). The public
// Engine API hands out no storage object; api/ and cli/ never include this.
#pragma once

#include "actors/engine.hpp"
#include "storage/event_log.hpp"
#include "storage/execution_index.hpp"
#include "storage/outbox.hpp"
#include "storage/store.hpp"
#include "storage/trigger_store.hpp"
#include "storage/vault.hpp"

namespace yantra::testing {

const storage::Store& store_of(const Engine& engine);
storage::Vault* vault_of(Engine& engine);  // null without a master key
storage::TriggerStore& triggers_of(Engine& engine);

}  // namespace yantra::testing
