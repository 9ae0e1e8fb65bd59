// The stores inside an Engine, for the engine's own single-node parts that
// live outside engine.cpp (LocalAdmin, actors/local_admin.cpp) and for the
// test-only accessors (actors/testing.hpp). Not for api/ or cli/: they go
// through Engine's methods and the Admin seam.
#pragma once

#include "actors/engine.hpp"

namespace yantra::storage {
class Store;
class Vault;
class AuditLog;
class TriggerStore;
}  // namespace yantra::storage

namespace yantra::detail {

struct EngineParts {
  storage::Store* store = nullptr;
  storage::Vault* vault = nullptr;  // null without a master key
  storage::AuditLog* audit = nullptr;
  storage::TriggerStore* triggers = nullptr;
};

// Defined in engine.cpp; valid for the engine's lifetime.
EngineParts parts_of(const Engine& engine);

}  // namespace yantra::detail
