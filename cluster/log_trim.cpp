// trim_point (cluster/log_trim.hpp).
#include "cluster/log_trim.hpp"

#include <algorithm>

namespace yantra::cluster {

std::optional<uint64_t> trim_point(const std::vector<std::string>& replicas,
                                   const TrimPositions& previous, const TrimPositions& current) {
  if (replicas.empty()) return std::nullopt;
  uint64_t point = UINT64_MAX;
  for (const std::string& node : replicas) {
    auto before = previous.find(node);
    auto now = current.find(node);
    if (before == previous.end() || now == current.end()) return std::nullopt;
    const TrimPosition& a = before->second;
    const TrimPosition& b = now->second;
    // Something synced on the node since the earlier report (same segment).
    if (a.segment == 0 || a.segment != b.segment || b.durable <= a.durable) return std::nullopt;
    if (b.applied < a.applied) return std::nullopt;
    point = std::min(point, a.applied);
  }
  return point;
}

}  // namespace yantra::cluster
