// API keys of the caller's tenant (/api/v1/keys). Admins manage keys; a
// role may only hand out what it has below owner, and only an owner creates
// or revokes owner keys (so an admin cannot promote itself or lock the
// owners out). A "worker" key (for tool workers, outside the ranking) opens
// only the worker and task routes. The secret is shown once, at creation; the store keeps its
// SHA-256 only. Revocation is immediate: the key leaves the cache too.
#include "api/auth.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/crypto.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

json key_view(const v1::ApiKey& k) {
  return {{"id", k.key_id()},
          {"name", k.name()},
          {"role", k.role()},
          {"created_at", iso_time(k.created_ms())},
          {"revoked", k.revoked()}};
}

}  // namespace

void register_key_routes(Router& router, Services& svc) {
  router.add("POST", "/api/v1/keys", Access::kAdmin, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    auto body = parse_body(ctx->req);
    if (!body.ok()) return respond_error(ctx, body.status());
    const json& b = body.value();
    std::vector<Problem> problems;
    if (!b.is_object())
      return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "body must be an object"));
    for (const auto& [k, v] : b.items()) {
      if (k != "name" && k != "role") problems.push_back({"/" + k, "unknown field '" + k + "'"});
    }
    std::string role;
    if (!b.contains("role") || !b["role"].is_string() ||
        (role_rank(role = b["role"].get<std::string>()) == 0 && role != "worker")) {
      problems.push_back(
          {"/role", "is required and must be one of owner, admin, editor, viewer, worker"});
    }
    std::string name;
    if (b.contains("name")) {
      if (!b["name"].is_string() || b["name"].get_ref<const std::string&>().size() > 200) {
        problems.push_back({"/name", "must be a string of at most 200 characters"});
      } else {
        name = b["name"].get<std::string>();
      }
    }
    if (!problems.empty()) {
      return respond_error(ctx,
                           Status(ApiErrc::kInvalidRequest, "key is invalid", std::move(problems)));
    }
    if (role_rank(role) > role_rank(ctx->who.role) ||
        (role == "owner" && ctx->who.role != "owner")) {
      return respond_error(
          ctx, Status(Errc::kForbidden,
                      "role '" + ctx->who.role + "' may not create '" + role + "' keys"));
    }
    auto fresh = new_api_key();
    if (!fresh.ok()) return respond_error(ctx, fresh.status());
    const std::string& secret = fresh->secret;
    v1::ApiKey key;
    key.set_key_id(fresh->key_id);
    key.set_tenant(ctx->who.tenant);
    key.set_role(role);
    key.set_name(name);
    key.set_created_ms(now_ms());
    svc.admin.put_api_key(crypto::sha256_hex(secret), key, [ctx, key, secret](Status s) {
      if (!s.is_ok()) return respond_error(ctx, s);
      json view = key_view(key);
      view["secret"] = secret;
      respond_json(ctx, 201, view);
    });
  });

  router.add("GET", "/api/v1/keys", Access::kAdmin, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    auto keys = svc.admin.list_api_keys(ctx->who.tenant);
    if (!keys.ok()) return respond_error(ctx, keys.status());
    json items = json::array();
    for (const auto& k : keys.value()) items.push_back(key_view(k));
    respond_json(ctx, 200, {{"keys", items}});
  });

  router.add("DELETE", "/api/v1/keys/{id}", Access::kAdmin,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto found = svc.admin.find_api_key_by_id(ctx->who.tenant, ctx->param("id"));
               if (!found.ok()) return respond_error(ctx, found.status());
               if (!found.value().has_value()) {
                 return respond_error(
                     ctx, Status(Errc::kNotFound, "key '" + ctx->param("id") + "' not found"));
               }
               if (found.value()->role() == "owner" && ctx->who.role != "owner") {
                 return respond_error(
                     ctx, Status(Errc::kForbidden, "only an owner may revoke an owner key"));
               }
               svc.admin.revoke_api_key(ctx->who.tenant, ctx->param("id"),
                                        [&svc, ctx](Result<std::string> hash) {
                                          if (!hash.ok()) return respond_error(ctx, hash.status());
                                          svc.auth->forget_key(hash.value());
                                          ctx->respond(json_response(204, ""));
                                        });
             });
}

}  // namespace yantra::api
