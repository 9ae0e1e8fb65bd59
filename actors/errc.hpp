// Error codes actors/ produces: refusals of the engine (a suspended tenant, a
// vault it cannot read), a callback's secret, and kRunning, the engine's own
// "not finished yet" answer of a synchronous start that never reaches a client,
// and kPartitionNotLed: in a cluster, a command for a partition this node
// does not lead (the API forwards it to the leader; 503 if it reaches a client).
// How codes work and how to add one: base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class ActorsErrc : uint16_t {
  kTenantSuspended = 1,
  kVaultUnavailable,
  kInvalidSecret,
  kRunning,
  kPartitionNotLed,
  // A tool policy (runtime/tool_policy.hpp) refuses a tool or action: at
  // store time 403; at run time it is the failed step's code.
  kPermissionDenied,
  // A worker completes, fails or heartbeats a task whose lease ran out
  // (actors/task_broker.hpp): 409, the task went to another worker.
  kLeaseExpired,
};

inline constexpr std::array kAllActorsErrc = {
    ActorsErrc::kTenantSuspended, ActorsErrc::kVaultUnavailable, ActorsErrc::kInvalidSecret,
    ActorsErrc::kRunning,         ActorsErrc::kPartitionNotLed,  ActorsErrc::kPermissionDenied,
    ActorsErrc::kLeaseExpired,
};

template <>
struct ErrcTraits<ActorsErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kActors;
  static constexpr std::string_view wire(ActorsErrc e) {
    switch (e) {
      case ActorsErrc::kTenantSuspended: return "tenant_suspended";
      case ActorsErrc::kVaultUnavailable: return "vault_unavailable";
      case ActorsErrc::kInvalidSecret: return "invalid_secret";
      case ActorsErrc::kRunning: return "running";
      case ActorsErrc::kPartitionNotLed: return "partition_not_led";
      case ActorsErrc::kPermissionDenied: return "permission_denied";
      case ActorsErrc::kLeaseExpired: return "lease_expired";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
