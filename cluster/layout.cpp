// Key names, record codecs and cluster creation (layout.hpp). The parsers
// read through a small Fields helper so that every refusal says which key
// and which field is wrong, and no nlohmann exception leaves this file (the
// parse itself uses the non-throwing overload; field access checks types
// before reading).
#include "cluster/layout.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "cluster/etcd_client.hpp"

namespace yantra::cluster {

using json = nlohmann::json;

Status validate_node_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return Status(Errc::kInvalidArgument, "node id must have 1 to 64 characters");
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      return Status(Errc::kInvalidArgument,
                    "node id '" + std::string(id) + "' may only contain A-Z a-z 0-9 . _ -");
  }
  return Status::ok();
}

Layout::Layout(std::string_view prefix) : prefix_(prefix) {
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  if (!prefix_.empty() && prefix_.front() != '/') prefix_.insert(prefix_.begin(), '/');
}

std::string Layout::segments(uint32_t partition) const {
  return prefix_ + "/segments/" + std::to_string(partition) + "/";
}

std::string Layout::segment(uint32_t partition, int64_t epoch) const {
  std::string digits = std::to_string(epoch < 0 ? 0 : epoch);
  return segments(partition) + std::string(20 - digits.size(), '0') + digits;
}

std::optional<std::string> Layout::node_id_of(std::string_view key) const {
  const std::string p = nodes();
  if (key.size() <= p.size() || key.substr(0, p.size()) != p) return std::nullopt;
  std::string_view id = key.substr(p.size());
  if (!validate_node_id(id).is_ok()) return std::nullopt;
  return std::string(id);
}

std::optional<std::string> Layout::node_id_of_admin(std::string_view key) const {
  const std::string p = node_admins();
  if (key.size() <= p.size() || key.substr(0, p.size()) != p) return std::nullopt;
  std::string_view id = key.substr(p.size());
  if (!validate_node_id(id).is_ok()) return std::nullopt;
  return std::string(id);
}

std::optional<uint32_t> Layout::partition_of_placement(std::string_view key) const {
  const std::string p = placements();
  if (key.size() <= p.size() || key.substr(0, p.size()) != p) return std::nullopt;
  std::string_view digits = key.substr(p.size());
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::optional<uint32_t> Layout::partition_of_leader(std::string_view key) const {
  const std::string p = leaders();
  if (key.size() <= p.size() || key.substr(0, p.size()) != p) return std::nullopt;
  std::string_view digits = key.substr(p.size());
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (std::to_string(value) != digits) return std::nullopt;  // "007" is not partition 7's key
  return value;
}

// --- encoding ---------------------------------------------------------------------

std::string to_json(const ClusterMeta& m) {
  return json{{"cluster_id", m.cluster_id},
              {"partitions", m.partitions},
              {"replication", m.replication},
              {"write_quorum", m.write_quorum},
              {"protocol", m.protocol}}
      .dump();
}

std::string to_json(const NodeRecord& n) {
  return json{{"id", n.id},
              {"http", n.http},
              {"cluster", n.cluster},
              {"version", n.version},
              {"protocol", n.protocol},
              {"started_ms", n.started_ms},
              {"writable", n.writable}}
      .dump();
}

std::string to_json(const PlacementRecord& p) {
  return json{{"replicas", p.replicas}, {"preferred", p.preferred}}.dump();
}

const char* to_string(NodeAdminState s) {
  switch (s) {
    case NodeAdminState::kActive: return "active";
    case NodeAdminState::kDraining: return "draining";
    case NodeAdminState::kRemoved: return "removed";
  }
  return "active";
}

std::optional<NodeAdminState> parse_node_admin_state(std::string_view s) {
  if (s == "active") return NodeAdminState::kActive;
  if (s == "draining") return NodeAdminState::kDraining;
  if (s == "removed") return NodeAdminState::kRemoved;
  return std::nullopt;
}

std::string to_json(NodeAdminState s) {
  return json{{"state", to_string(s)}}.dump();
}

std::string to_json(const ControllerRecord& c) {
  return json{{"node", c.node}}.dump();
}

std::string to_json(const LeaderRecord& l) {
  return json{{"node", l.node}, {"http", l.http}, {"cluster", l.cluster}}.dump();
}

std::string to_json(const SegmentRecord& s) {
  json j{{"epoch", s.epoch},
         {"writer", s.writer},
         {"replicas", s.replicas},
         {"first_lsn", s.first_lsn}};
  if (s.sealed_end) j["sealed_end"] = *s.sealed_end;
  return j.dump();
}

// --- decoding ---------------------------------------------------------------------

namespace {

// Reads typed fields of one JSON object, remembering the first problem.
class Fields {
 public:
  Fields(std::string_view value, std::string_view key) : key_(key) {
    doc_ = json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
    if (doc_.is_discarded()) {
      fail("", "is not JSON");
    } else if (!doc_.is_object()) {
      fail("", "is not a JSON object");
    }
  }

  std::string str(const char* name, bool non_empty = true) {
    const json* f = field(name);
    if (f == nullptr) return {};
    if (!f->is_string()) return fail(name, "must be a string"), std::string();
    std::string s = f->get<std::string>();
    if (non_empty && s.empty()) fail(name, "must not be empty");
    return s;
  }

  int64_t int64(const char* name, int64_t min, int64_t max) {
    const json* f = field(name);
    if (f == nullptr) return 0;
    if (!f->is_number_integer()) return fail(name, "must be an integer"), 0;
    if (f->is_number_unsigned() && f->get<uint64_t>() > static_cast<uint64_t>(max))
      return fail(name, "must be at most " + std::to_string(max)), 0;
    const int64_t v =
        f->is_number_unsigned() ? static_cast<int64_t>(f->get<uint64_t>()) : f->get<int64_t>();
    if (v < min || v > max)
      return fail(name, "must be in " + std::to_string(min) + ".." + std::to_string(max)), 0;
    return v;
  }

  uint64_t uint64(const char* name) {
    const json* f = field(name);
    if (f == nullptr) return 0;
    if (!f->is_number_unsigned() && !(f->is_number_integer() && f->get<int64_t>() >= 0))
      return fail(name, "must be a non-negative integer"), 0;
    return f->get<uint64_t>();
  }

  std::vector<std::string> strings(const char* name) {
    std::vector<std::string> out;
    const json* f = field(name);
    if (f == nullptr) return out;
    if (!f->is_array()) return fail(name, "must be an array of strings"), out;
    for (const auto& e : *f) {
      if (!e.is_string() || e.get<std::string>().empty())
        return fail(name, "must be an array of non-empty strings"), out;
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  // Optional: `absent` when the record has no such field (older writers).
  bool boolean(const char* name, bool absent) {
    if (!has(name)) return absent;
    const json* f = field(name);
    if (f == nullptr) return absent;
    if (!f->is_boolean()) return fail(name, "must be true or false"), absent;
    return f->get<bool>();
  }

  bool has(const char* name) const {
    return ok() && doc_.contains(name) && !doc_.at(name).is_null();
  }

  void fail(const std::string& name, const std::string& why) {
    if (!ok()) return;
    error_ =
        Status(ClusterErrc::kInvalidRecord, "etcd record " + std::string(key_) +
                                                (name.empty() ? "" : " field " + name) + " " + why);
  }
  bool ok() const { return error_.is_ok(); }
  const Status& error() const { return error_; }

 private:
  const json* field(const char* name) {
    if (!ok()) return nullptr;
    auto it = doc_.find(name);
    if (it == doc_.end() || it->is_null()) {
      fail(name, "is missing");
      return nullptr;
    }
    return &*it;
  }

  std::string_view key_;
  json doc_;
  Status error_;
};

}  // namespace

Result<ClusterMeta> parse_cluster_meta(std::string_view value, std::string_view key) {
  Fields f(value, key);
  ClusterMeta m;
  m.cluster_id = f.str("cluster_id");
  m.partitions = static_cast<uint32_t>(f.int64("partitions", 1, kMaxPartitions));
  m.replication = static_cast<uint32_t>(f.int64("replication", 1, kMaxReplication));
  m.write_quorum = static_cast<uint32_t>(f.int64("write_quorum", 1, kMaxReplication));
  m.protocol = f.int64("protocol", 1, INT64_MAX);
  if (f.ok() && m.write_quorum != m.replication / 2 + 1)
    f.fail("write_quorum",
           "must be replication / 2 + 1 = " + std::to_string(m.replication / 2 + 1));
  if (!f.ok()) return f.error();
  return m;
}

Result<NodeRecord> parse_node_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  NodeRecord n;
  n.id = f.str("id");
  if (f.ok()) {
    if (Status s = validate_node_id(n.id); !s.is_ok()) f.fail("id", s.message());
  }
  n.http = f.str("http");
  n.cluster = f.str("cluster");
  n.version = f.str("version", /*non_empty=*/false);
  n.protocol = f.int64("protocol", 1, INT64_MAX);
  n.started_ms = f.int64("started_ms", 0, INT64_MAX);
  n.writable = f.boolean("writable", true);
  if (!f.ok()) return f.error();
  return n;
}

Result<LeaderRecord> parse_leader_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  LeaderRecord l;
  l.node = f.str("node");
  l.http = f.str("http");
  l.cluster = f.str("cluster");
  if (!f.ok()) return f.error();
  return l;
}

Result<PlacementRecord> parse_placement_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  PlacementRecord p;
  p.replicas = f.strings("replicas");
  if (f.ok() && (p.replicas.empty() || p.replicas.size() > kMaxReplication))
    f.fail("replicas", "must name 1 to " + std::to_string(kMaxReplication) + " nodes");
  p.preferred = f.str("preferred");
  if (!f.ok()) return f.error();
  return p;
}

Result<NodeAdminState> parse_node_admin_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  const std::string state = f.str("state");
  if (!f.ok()) return f.error();
  auto parsed = parse_node_admin_state(state);
  if (!parsed) {
    f.fail("state", "must be active, draining or removed");
    return f.error();
  }
  return *parsed;
}

Result<ControllerRecord> parse_controller_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  ControllerRecord c;
  c.node = f.str("node");
  if (!f.ok()) return f.error();
  return c;
}

Result<SegmentRecord> parse_segment_record(std::string_view value, std::string_view key) {
  Fields f(value, key);
  SegmentRecord s;
  s.epoch = f.int64("epoch", 1, INT64_MAX);
  s.writer = f.str("writer");
  s.replicas = f.strings("replicas");
  if (f.ok() && (s.replicas.empty() || s.replicas.size() > kMaxReplication))
    f.fail("replicas", "must name 1 to " + std::to_string(kMaxReplication) + " nodes");
  s.first_lsn = f.uint64("first_lsn");
  if (f.ok() && s.first_lsn == 0) f.fail("first_lsn", "must be at least 1 (LSNs start at 1)");
  if (f.has("sealed_end")) {
    s.sealed_end = f.uint64("sealed_end");
    if (f.ok() && *s.sealed_end + 1 < s.first_lsn)
      f.fail("sealed_end", "must be at least first_lsn - 1");
  }
  if (!f.ok()) return f.error();
  return s;
}

// --- cluster creation ---------------------------------------------------------------

namespace {

std::string describe(const ClusterMeta& m) {
  return "partitions=" + std::to_string(m.partitions) +
         " replication=" + std::to_string(m.replication);
}

// The existing meta compared with what init asked for.
Result<ClusterMeta> settle(const Layout& layout, const std::string& value, uint32_t partitions,
                           uint32_t replication) {
  auto existing = parse_cluster_meta(value, layout.meta());
  if (!existing.ok()) return existing.status();
  if (existing->partitions == partitions && existing->replication == replication) return existing;
  ClusterMeta asked;
  asked.partitions = partitions;
  asked.replication = replication;
  return Status(ClusterErrc::kClusterExists,
                "a cluster already exists under " + layout.meta() + " with " + describe(*existing) +
                    " (cluster_id " + existing->cluster_id + "); asked for " + describe(asked));
}

}  // namespace

Result<ClusterMeta> init_cluster(EtcdClient& etcd, const Layout& layout, uint32_t partitions,
                                 uint32_t replication) {
  if (partitions < 1 || partitions > kMaxPartitions)
    return Status(Errc::kInvalidArgument, "partitions must be in 1.." +
                                              std::to_string(kMaxPartitions) + ", got " +
                                              std::to_string(partitions));
  if (replication < 1 || replication > kMaxReplication)
    return Status(Errc::kInvalidArgument, "replication must be in 1.." +
                                              std::to_string(kMaxReplication) + ", got " +
                                              std::to_string(replication));
  auto id = crypto::random_bytes(16);
  if (!id.ok()) return id.status();
  ClusterMeta meta;
  meta.cluster_id = hex_encode(*id);
  meta.partitions = partitions;
  meta.replication = replication;
  meta.write_quorum = replication / 2 + 1;

  TxnRequest txn;
  txn.compare.push_back(Compare::create_revision_is(layout.meta(), Compare::Op::kEqual, 0));
  txn.success.push_back(PutRequest{layout.meta(), to_json(meta), 0, false});
  txn.failure.push_back(RangeRequest::single(layout.meta()));
  auto r = etcd.txn(txn);
  if (r.ok()) {
    if (r->succeeded) return meta;
    const auto* range =
        r->responses.empty() ? nullptr : std::get_if<RangeResponse>(&r->responses[0]);
    if (range == nullptr || range->kvs.empty())
      return Status(ClusterErrc::kProtocolError, "cluster init txn failed without the meta record");
    return settle(layout, range->kvs[0].value, partitions, replication);
  }
  if (!r.status().is(ClusterErrc::kTimeout) && !r.status().is(ClusterErrc::kOutcomeUnknown))
    return r.status();
  // Sent, outcome unknown: whatever is there now decides (ours or another's
  // with the same settings is success either way).
  auto again = etcd.range(RangeRequest::single(layout.meta()));
  if (!again.ok()) return again.status();
  if (again->kvs.empty()) return r.status();
  return settle(layout, again->kvs[0].value, partitions, replication);
}

Result<ClusterMeta> load_cluster(EtcdClient& etcd, const Layout& layout) {
  auto r = etcd.range(RangeRequest::single(layout.meta()));
  if (!r.ok()) return r.status();
  if (r->kvs.empty())
    return Status(Errc::kNotFound,
                  "no cluster under " + layout.prefix() + " (run `yantra cluster init` first)");
  return parse_cluster_meta(r->kvs[0].value, layout.meta());
}

}  // namespace yantra::cluster
