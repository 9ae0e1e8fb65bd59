// MCP servers of a tenant (/api/v1/mcp/servers; docs/tools.md "MCP
// servers"). A registration is a ToolRegistration of kind "mcp" written
// through the admin seam (stored on the node, or in etcd in a cluster);
// every node turns it into the tool "mcp:<id>" from its
// Engine::watch_tool_registrations("mcp") handler (cli/serve.cpp), which
// hands it to McpServers (actors/mcp_tool.hpp). This file validates,
// stores, and shows what the node's McpServers knows.
//
// POST answers 201 once the server's tools are listed, or, if that takes
// longer than kSettleMs, 201 with "state": "connecting" (the wait is a
// callback from the MCP connector thread: no I/O thread waits). Header
// values given as {"$secret": NAME} are stored and shown as given; the
// value is read from the vault only when connecting.
//
// Registering, deleting and refreshing need the editor role; reading any
// role. stdio servers come from the node configuration only: they are
// listed here (source "config") but cannot be deleted through the API.
#include "actors/mcp_tool.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

constexpr int64_t kSettleMs = 5000;

McpServers* servers_or_error(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* m = svc.mcp.load();
  if (m == nullptr) {
    respond_error(ctx, Status(ApiErrc::kNotReady, "MCP servers are not enabled on this node"));
  }
  return m;
}

Status not_found(const std::string& id) {
  return Status(Errc::kNotFound, "MCP server '" + id + "' not found");
}

void register_server(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* mcp = servers_or_error(svc, ctx);
  if (mcp == nullptr) return;
  auto body = parse_body(ctx->req);
  if (!body.ok()) return respond_error(ctx, body.status());
  auto config = parse_mcp_registration(body.value(), ctx->who.tenant);
  if (!config.ok()) {
    // Validation speaks Errc::kInvalidArgument (actors/); the API's word
    // for a bad body is invalid_request.
    return respond_error(ctx, Status(ApiErrc::kInvalidRequest, config.status().message(),
                                     config.status().details()));
  }
  const std::string tenant = ctx->who.tenant;
  const std::string id = config.value().id;
  if (mcp->is_configured(tenant, id)) {
    return respond_error(
        ctx, Status(Errc::kConflict, "MCP server '" + id + "' is configured by the operator"));
  }
  auto existing = svc.admin.find_tool_registration(tenant, "mcp", id);
  if (!existing.ok()) return respond_error(ctx, existing.status());
  if (existing.value()) {
    return respond_error(ctx,
                         Status(Errc::kAlreadyExists,
                                "MCP server '" + id + "' is registered already (DELETE it first)"));
  }
  ToolRegistration r;
  r.tenant = tenant;
  r.kind = "mcp";
  r.id = id;
  r.definition = mcp_registration_json(config.value());
  r.updated_ms = now_ms();
  json fallback = r.definition;
  svc.admin.put_tool_registration(std::move(r), [ctx, mcp, tenant, id, fallback](Status s) {
    if (!s.is_ok()) return respond_error(ctx, s);
    mcp->when_settled(tenant, id, kSettleMs, [ctx, fallback](json view) {
      if (view.is_null()) {
        view = fallback;
        view["state"] = "connecting";
      }
      respond_json(ctx, 201, view);
    });
  });
}

void list_servers(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* mcp = servers_or_error(svc, ctx);
  if (mcp == nullptr) return;
  json items = json::array();
  for (auto& v : mcp->list(ctx->who.tenant)) items.push_back(std::move(v));
  respond_json(ctx, 200, {{"servers", items}});
}

void get_server(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* mcp = servers_or_error(svc, ctx);
  if (mcp == nullptr) return;
  auto v = mcp->view(ctx->who.tenant, ctx->param("id"));
  if (!v) return respond_error(ctx, not_found(ctx->param("id")));
  respond_json(ctx, 200, *v);
}

void delete_server(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* mcp = servers_or_error(svc, ctx);
  if (mcp == nullptr) return;
  const std::string id = ctx->param("id");
  if (mcp->is_configured(ctx->who.tenant, id)) {
    return respond_error(
        ctx, Status(Errc::kConflict,
                    "MCP server '" + id + "' is configured by the operator (node configuration)"));
  }
  svc.admin.delete_tool_registration(ctx->who.tenant, "mcp", id, [ctx, id](Status s) {
    if (!s.is_ok()) return respond_error(ctx, s.is(Errc::kNotFound) ? not_found(id) : s);
    ctx->respond(json_response(204, ""));
  });
}

void refresh_server(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  McpServers* mcp = servers_or_error(svc, ctx);
  if (mcp == nullptr) return;
  const std::string id = ctx->param("id");
  if (!mcp->refresh(ctx->who.tenant, id, [ctx](json view) { respond_json(ctx, 200, view); })) {
    respond_error(ctx, not_found(id));
  }
}

}  // namespace

void register_mcp_routes(Router& router, Services& svc) {
  router.add("POST", "/api/v1/mcp/servers", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { register_server(svc, ctx); });
  router.add("GET", "/api/v1/mcp/servers", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { list_servers(svc, ctx); });
  router.add("GET", "/api/v1/mcp/servers/{id}", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { get_server(svc, ctx); });
  router.add("DELETE", "/api/v1/mcp/servers/{id}", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { delete_server(svc, ctx); });
  router.add("POST", "/api/v1/mcp/servers/{id}/refresh", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { refresh_server(svc, ctx); });
}

}  // namespace yantra::api
