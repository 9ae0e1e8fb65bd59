// The tenant's secrets vault (/api/v1/secrets, and the same resource under
// /api/v1/accounts/{tenant}/secrets for clients of that shape). Values go in
// and never come out: responses carry names, versions and times only; the
// value is read back solely by the engine when a step's tool call needs it.
// Managing secrets needs the admin role (app.cpp checks it).
//
// Under /accounts/{tenant}, a tenant other than the caller's answers 404,
// the same as a missing secret: tenant names are not probed this way.
#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

constexpr size_t kMaxSecretBytes = 64 * 1024;

json info_view(const SecretInfo& i) {
  return {{"name", i.name},
          {"version", i.version},
          {"created_at", iso_time(i.created_ms)},
          {"updated_at", iso_time(i.updated_ms)}};
}

// Whether the node has a vault; answers for its absence (no master key).
bool vault_or_error(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  if (svc.admin.has_vault()) return true;
  respond_error(ctx,
                Status(ActorsErrc::kVaultUnavailable, "this node has no master key configured"));
  return false;
}

// Under /accounts/{tenant}: the path must name the caller's own tenant.
bool own_account(const std::shared_ptr<RouteCtx>& ctx) {
  auto it = ctx->params.find("tenant");
  if (it == ctx->params.end() || it->second == ctx->who.tenant) return true;
  respond_error(ctx, Status(Errc::kNotFound, "account '" + it->second + "' not found"));
  return false;
}

void put_secret(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  if (!own_account(ctx)) return;
  if (!vault_or_error(svc, ctx)) return;
  auto body = parse_body(ctx->req);
  if (!body.ok()) return respond_error(ctx, body.status());
  const json& b = body.value();
  std::vector<Problem> problems;
  if (!b.is_object()) {
    return respond_error(ctx,
                         Status(ApiErrc::kInvalidRequest, "body must be {\"value\": \"...\"}"));
  }
  for (const auto& [k, v] : b.items()) {
    if (k != "value") problems.push_back({"/" + k, "unknown field '" + k + "'"});
  }
  if (!b.contains("value") || !b["value"].is_string()) {
    problems.push_back({"/value", "is required and must be a string"});
  } else if (b["value"].get_ref<const std::string&>().size() > kMaxSecretBytes) {
    problems.push_back({"/value", "must be at most 65536 bytes"});
  } else if (b["value"].get_ref<const std::string&>().empty()) {
    problems.push_back({"/value", "must not be empty"});
  }
  if (!problems.empty()) {
    return respond_error(
        ctx, Status(ApiErrc::kInvalidRequest, "secret is invalid", std::move(problems)));
  }
  svc.admin.put_secret(ctx->who.tenant, ctx->param("name"), b["value"].get<std::string>(), now_ms(),
                       [ctx](Result<SecretInfo> info) {
                         if (!info.ok()) return respond_error(ctx, info.status());
                         respond_json(ctx, info.value().version == 1 ? 201 : 200,
                                      info_view(info.value()));
                       });
}

void list_secrets(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  if (!own_account(ctx)) return;
  if (!vault_or_error(svc, ctx)) return;
  auto all = svc.admin.list_secrets(ctx->who.tenant);
  if (!all.ok()) return respond_error(ctx, all.status());
  json items = json::array();
  for (const auto& i : all.value()) items.push_back(info_view(i));
  respond_json(ctx, 200, {{"secrets", items}});
}

void delete_secret(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  if (!own_account(ctx)) return;
  if (!vault_or_error(svc, ctx)) return;
  svc.admin.delete_secret(ctx->who.tenant, ctx->param("name"), [ctx](Status s) {
    if (!s.is_ok()) return respond_error(ctx, s);
    ctx->respond(json_response(204, ""));
  });
}

}  // namespace

void register_secret_routes(Router& router, Services& svc) {
  for (const std::string base : {"/api/v1/secrets", "/api/v1/accounts/{tenant}/secrets"}) {
    router.add("PUT", base + "/{name}", Access::kAdmin,
               [&svc](const std::shared_ptr<RouteCtx>& ctx) { put_secret(svc, ctx); });
    router.add("GET", base, Access::kAdmin,
               [&svc](const std::shared_ptr<RouteCtx>& ctx) { list_secrets(svc, ctx); });
    router.add("DELETE", base + "/{name}", Access::kAdmin,
               [&svc](const std::shared_ptr<RouteCtx>& ctx) { delete_secret(svc, ctx); });
  }
}

}  // namespace yantra::api
