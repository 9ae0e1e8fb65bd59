// Error codes cluster/ produces: what can go wrong when talking to etcd.
// The split between kUnavailable and kTimeout / kOutcomeUnknown is what a
// caller of a write needs: kUnavailable means no etcd member received the
// request (it was not applied); kTimeout and kOutcomeUnknown mean it was sent
// and may or may not have been applied (re-read before acting on either).
// How codes work and how to add one: base/errc.hpp, docs/errors.md.
#pragma once

#include <array>
#include <string_view>

#include "base/errc.hpp"

namespace yantra {

enum class ClusterErrc : uint16_t {
  // No endpoint could be reached, or etcd said it cannot serve (no leader).
  kUnavailable = 1,
  // The per-request deadline passed (on every endpoint tried, for a read).
  kTimeout,
  // A write was sent and its connection lost before an answer.
  kOutcomeUnknown,
  // etcd refused the request (invalid argument, too large, permission, ...).
  kRejected,
  // etcd's answer is not what its v3 JSON gateway documents.
  kProtocolError,
  // The lease does not exist (never granted, revoked or expired).
  kLeaseNotFound,
  // The requested revision was compacted away.
  kCompacted,
  // An endpoint that is not http://HOST:PORT.
  kInvalidEndpoint,
  // etcd's backend quota is exhausted (NOSPACE alarm): writes are refused
  // until an operator compacts, defragments and disarms the alarm.
  kNoSpace,
  // A record read from etcd (cluster meta, node, leader, segment) is not
  // what cluster/layout.hpp writes: the prefix holds foreign or damaged data.
  kInvalidRecord,
  // `yantra cluster init` with partitions/replication other than the
  // cluster that already exists under the prefix.
  kClusterExists,
  // This node does not lead the partition (never did, or no longer).
  kNotLeader,
  // A write compared the writer's leader key create_revision (its epoch) and
  // etcd holds another one: a newer leader exists, the old one is fenced off.
  kFenced,
  // A compare-and-swap on a segment record lost: another writer changed it
  // since it was read (two recovering leaders; re-read the chain).
  kSegmentConflict,
};

inline constexpr std::array kAllClusterErrc = {
    ClusterErrc::kUnavailable,   ClusterErrc::kTimeout,         ClusterErrc::kOutcomeUnknown,
    ClusterErrc::kRejected,      ClusterErrc::kProtocolError,   ClusterErrc::kLeaseNotFound,
    ClusterErrc::kCompacted,     ClusterErrc::kInvalidEndpoint, ClusterErrc::kNoSpace,
    ClusterErrc::kInvalidRecord, ClusterErrc::kClusterExists,   ClusterErrc::kNotLeader,
    ClusterErrc::kFenced,        ClusterErrc::kSegmentConflict,
};

template <>
struct ErrcTraits<ClusterErrc> {
  static constexpr ErrorDomain kDomain = ErrorDomain::kCluster;
  static constexpr std::string_view wire(ClusterErrc e) {
    switch (e) {
      case ClusterErrc::kUnavailable: return "etcd_unavailable";
      case ClusterErrc::kTimeout: return "etcd_timeout";
      case ClusterErrc::kOutcomeUnknown: return "etcd_outcome_unknown";
      case ClusterErrc::kRejected: return "etcd_rejected";
      case ClusterErrc::kProtocolError: return "etcd_protocol_error";
      case ClusterErrc::kLeaseNotFound: return "lease_not_found";
      case ClusterErrc::kCompacted: return "revision_compacted";
      case ClusterErrc::kInvalidEndpoint: return "invalid_etcd_endpoint";
      case ClusterErrc::kNoSpace: return "etcd_no_space";
      case ClusterErrc::kInvalidRecord: return "invalid_cluster_record";
      case ClusterErrc::kClusterExists: return "cluster_exists";
      case ClusterErrc::kNotLeader: return "not_partition_leader";
      case ClusterErrc::kFenced: return "leader_fenced";
      case ClusterErrc::kSegmentConflict: return "segment_conflict";
    }
    return {};  // not an enumerator (a bad cast): no wire string
  }
};

}  // namespace yantra
