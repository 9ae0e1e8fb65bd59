// A tool source a tenant registered — an MCP server, a tool worker — as the
// API and the engine see it. Stored in the node's store (auth "g" rows,
// docs/event-log-format.md) or, in a cluster, in etcd with a copy on every
// node, so a flow stored on any node validates against the tools it brings
// and they survive restarts.
//
// The engine does not interpret `definition`: the kind's route validates it
// before it is stored, and the kind's handler (Engine::watch_tool_registrations)
// turns it into tools (Engine::add_tool / remove_tool). Pure header.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra {

struct ToolRegistration {
  std::string tenant;
  std::string kind;  // "mcp", "worker" ([a-z_]+)
  std::string id;    // the server's or worker's id (flow-id rules)
  nlohmann::json definition = nlohmann::json::object();
  int64_t updated_ms = 0;
};

// A registration's definition is at most this many bytes of JSON.
inline constexpr size_t kMaxToolRegistrationBytes = 256 * 1024;

// What every seam checks before storing (the store checks the ids too):
// the definition is a JSON object of bounded size.
inline Status check_tool_registration(const ToolRegistration& r) {
  if (!r.definition.is_object()) {
    return Status(Errc::kInvalidArgument, "a tool registration's definition must be an object");
  }
  const size_t bytes = r.definition.dump().size();
  if (bytes > kMaxToolRegistrationBytes) {
    return Status(Errc::kInvalidArgument, "the " + r.kind + " definition is " +
                                              std::to_string(bytes) + " bytes; at most " +
                                              std::to_string(kMaxToolRegistrationBytes));
  }
  return Status::ok();
}

inline v1::ToolRegistration to_proto(const ToolRegistration& r) {
  v1::ToolRegistration p;
  p.set_tenant(r.tenant);
  p.set_kind(r.kind);
  p.set_id(r.id);
  p.set_definition_json(r.definition.dump());
  p.set_updated_ms(r.updated_ms);
  return p;
}

// A definition that does not parse (written by a newer node) comes back as
// null: the kind's handler refuses it rather than guessing.
inline ToolRegistration from_proto(const v1::ToolRegistration& p) {
  ToolRegistration r;
  r.tenant = p.tenant();
  r.kind = p.kind();
  r.id = p.id();
  r.definition = nlohmann::json::parse(p.definition_json(), nullptr, /*allow_exceptions=*/false);
  if (r.definition.is_discarded()) r.definition = nullptr;
  r.updated_ms = p.updated_ms();
  return r;
}

}  // namespace yantra
