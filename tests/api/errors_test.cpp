// The error table (api/errors.cpp) in-process: every enumerator of every
// error enum has a wire string that no other code uses and an HTTP status in
// 4xx/5xx, and every code keeps the status it had when codes were free
// strings (kBefore below, copied from the table typed codes replaced: clients
// depend on these statuses, so a change must be a decision, not an accident).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/errors.hpp"
#include "base/storage_errc.hpp"
#include "cluster/errc.hpp"
#include "cluster/transport_errc.hpp"
#include "runtime/errc.hpp"

namespace yantra::api {
namespace {

using json = nlohmann::json;

// The string table before typed codes; a code not in it answered 500.
// ("invalid_input" and "not_acceptable" were listed but no Status carried
// them, so they have no enumerator.)
const std::map<std::string, int> kBefore = {
    {"bad_request", 400},        {"invalid_request", 400},
    {"invalid_flow", 400},       {"invalid_json", 400},
    {"invalid_yaml", 400},       {"invalid_argument", 400},
    {"invalid_parameter", 400},  {"unauthorized", 401},
    {"forbidden", 403},          {"not_found", 404},
    {"method_not_allowed", 405}, {"request_timeout", 408},
    {"conflict", 409},           {"already_exists", 409},
    {"payload_too_large", 413},  {"unsupported_media_type", 415},
    {"headers_too_large", 431},  {"rate_limited", 429},
    {"not_ready", 503},          {"unavailable", 503},
    {"store_read_only", 503},    {"timeout", 504},
    {"tenant_suspended", 403},   {"quota_exceeded", 429},
    {"too_many_signals", 429},   {"vault_unavailable", 503},
    {"invalid_master_key", 400}, {"invalid_cron", 400},
    {"invalid_time_zone", 400},  {"secret_not_found", 400},
};

// Codes added with typed codes, and their statuses.
const std::map<std::string, int> kAdded = {
    {"store_no_space", 503},     // the disk-full guard refuses writes like the read-only latch
    {"permission_denied", 403},  // a tool policy refuses a tool (runtime/tool_policy.hpp)
    {"lease_expired", 409},      // a worker task's lease ran out (actors/task_broker.hpp)
    // The replicated log's segment refusals (storage/segment_store.hpp).
    {"segment_sealed", 409},
    {"segment_gap", 409},
    {"segment_wrong_epoch", 409},
    {"segment_trimmed", 410},
    // etcd unreachable, slow or out of space: the cluster cannot take it now.
    {"etcd_unavailable", 503},
    {"etcd_timeout", 503},
    {"etcd_outcome_unknown", 503},
    {"etcd_no_space", 503},
    {"log_gap", 503},            // a replica still catching up on a partition's log
    {"partition_not_led", 503},  // a cluster node asked for a partition another node leads
    // The cluster transport: a peer not reachable now (503) or too slow (504).
    {"peer_connect_failed", 503},
    {"peer_unavailable", 503},
    {"peer_backpressure", 503},
    {"peer_request_timeout", 504},
    // Membership and leadership (cluster/layout.hpp, leadership.hpp).
    {"cluster_exists", 409},
    {"not_partition_leader", 503},
    {"leader_fenced", 503},
    {"segment_conflict", 503},
};

struct Seen {
  std::set<std::string> wires;
  std::set<std::string> from_before;
  size_t count = 0;
};

// Checks one enum: its kAll array is exactly 1..N in order (so a new
// enumerator missing from it shows as a wire string at N+1), and each value's
// wire string, status and typed identity.
template <class E, size_t N>
void check_enum(const std::array<E, N>& all, Seen& seen) {
  using Traits = ErrcTraits<E>;
  for (size_t i = 0; i < N; ++i) {
    const E e = all[i];
    EXPECT_EQ(static_cast<size_t>(e), i + 1) << "kAll out of order at " << i;
    const std::string wire(Traits::wire(e));
    ASSERT_FALSE(wire.empty()) << "value " << i + 1 << " has no wire string";
    EXPECT_TRUE(seen.wires.insert(wire).second) << "wire string used twice: " << wire;
    for (const char c : wire) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
          << "not snake_case: " << wire;
    }

    const Status s(e, "m");
    EXPECT_FALSE(s.is_ok());
    EXPECT_EQ(s.code(), wire);
    EXPECT_EQ(s.domain(), Traits::kDomain);
    EXPECT_TRUE(s.is(e));
    EXPECT_EQ(s.code_as<E>(), e);
    // The same number in another domain is another code.
    if (Traits::kDomain != ErrorDomain::kBase) {
      EXPECT_FALSE(s.is(static_cast<Errc>(static_cast<uint16_t>(e)))) << wire;
    } else {
      EXPECT_FALSE(s.is(static_cast<ApiErrc>(static_cast<uint16_t>(e)))) << wire;
    }

    const int http = http_status_for(s);
    EXPECT_GE(http, 400) << wire;
    EXPECT_LE(http, 599) << wire;
    if (auto it = kBefore.find(wire); it != kBefore.end()) {
      EXPECT_EQ(http, it->second) << wire << " changed its HTTP status";
      seen.from_before.insert(wire);
    } else if (auto added = kAdded.find(wire); added != kAdded.end()) {
      EXPECT_EQ(http, added->second) << wire;
    } else {
      EXPECT_EQ(http, 500) << wire << " was not in the table, so it answered 500";
    }

    const HttpResponse r = error_response(s);
    EXPECT_EQ(r.status, http);
    EXPECT_EQ(r.error_code, wire);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], wire);
  }
  EXPECT_TRUE(Traits::wire(static_cast<E>(N + 1)).empty())
      << "an enumerator after the last of kAll: add it to kAll";
  seen.count += N;
}

TEST(ErrorTableTest, EveryCodeHasAUniqueWireStringAndAnErrorStatus) {
  Seen seen;
  check_enum(kAllErrc, seen);
  check_enum(kAllRuntimeErrc, seen);
  check_enum(kAllStorageErrc, seen);
  check_enum(kAllActorsErrc, seen);
  check_enum(kAllApiErrc, seen);
  check_enum(kAllClusterErrc, seen);
  check_enum(kAllTransportErrc, seen);
  EXPECT_EQ(seen.wires.size(), seen.count);
  // Every code of the old table still exists, with its status.
  for (const auto& [wire, status] : kBefore) {
    EXPECT_TRUE(seen.from_before.count(wire)) << wire << " has no enumerator any more";
  }
}

TEST(ErrorTableTest, KnownMappings) {
  EXPECT_EQ(http_status_for(Status(RuntimeErrc::kInvalidFlow, "")), 400);
  EXPECT_EQ(http_status_for(Status(ApiErrc::kInvalidParameter, "")), 400);
  EXPECT_EQ(http_status_for(Status(Errc::kUnauthorized, "")), 401);
  EXPECT_EQ(http_status_for(Status(ActorsErrc::kTenantSuspended, "")), 403);
  EXPECT_EQ(http_status_for(Status(Errc::kNotFound, "")), 404);
  EXPECT_EQ(http_status_for(Status(Errc::kConflict, "")), 409);
  EXPECT_EQ(http_status_for(Status(ApiErrc::kPayloadTooLarge, "")), 413);
  EXPECT_EQ(http_status_for(Status(RuntimeErrc::kTooManySignals, "")), 429);
  EXPECT_EQ(http_status_for(Status(ApiErrc::kHeadersTooLarge, "")), 431);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kCorrupt, "")), 500);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kReadOnly, "")), 503);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kNoSpace, "")), 503);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kSegmentSealed, "")), 409);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kSegmentGap, "")), 409);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kSegmentWrongEpoch, "")), 409);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kSegmentTrimmed, "")), 410);
  EXPECT_EQ(http_status_for(Status(StorageErrc::kLogGap, "")), 503);
  EXPECT_EQ(http_status_for(Status(Errc::kTimeout, "")), 504);
  EXPECT_EQ(http_status_for(Status(ClusterErrc::kUnavailable, "")), 503);
  EXPECT_EQ(http_status_for(Status(ClusterErrc::kLeaseNotFound, "")), 500);
  EXPECT_EQ(http_status_for(Status()), 500);  // an "error" that is none is our bug
}

TEST(ErrorTableTest, ResponseBodyShapeAndInternalTextKeptFromClients) {
  HttpResponse r =
      error_response(Status(RuntimeErrc::kInvalidFlow, "bad flow", {{"/steps/0/id", "missing"}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body),
            json::parse(R"({"error":{"code":"invalid_flow","message":"bad flow",)"
                        R"("details":[{"path":"/steps/0/id","message":"missing"}]}})"));

  // A 500 keeps its code but not its text, which may name internals...
  r = error_response(Status(StorageErrc::kCorrupt, "/var/lib/yantra/000042.log is bad"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body)["error"]["message"], "internal error (storage_corrupt)");
  // ...except the server's own kInternal, whose text is written for clients.
  r = error_response(Status(ApiErrc::kInternal, "internal error (request r1; see the node's log)"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body)["error"]["message"],
            "internal error (request r1; see the node's log)");

  r = error_response(Status(Errc::kRateLimited, "slow down").with_retry_after_ms(1001));
  EXPECT_EQ(r.status, 429);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Retry-After");
  EXPECT_EQ(r.headers[0].second, "2");
}

TEST(ErrorTableTest, WithMessageKeepsTheCode) {
  const Status s(StorageErrc::kMasterKeyUnreadable, "cannot read");
  const Status w = s.with_message("/etc/key: cannot read", {{"/a", "b"}});
  EXPECT_TRUE(w.is(StorageErrc::kMasterKeyUnreadable));
  EXPECT_EQ(w.code(), "master_key_unreadable");
  EXPECT_EQ(w.message(), "/etc/key: cannot read");
  ASSERT_EQ(w.details().size(), 1u);
  EXPECT_EQ(w.details()[0].path, "/a");
  EXPECT_EQ(http_status_for(w), 500);
  EXPECT_FALSE(Status().with_message("x").is(StorageErrc::kMasterKeyUnreadable));
  EXPECT_TRUE(Status().with_message("x").is_ok());
}

}  // namespace
}  // namespace yantra::api
