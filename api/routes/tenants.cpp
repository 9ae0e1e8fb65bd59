// Operator routes for tenants (/admin/v1/tenants), open to the operator key
// only (the access check is app.cpp's). "tools" is the tenant's tool policy
// (docs/tools.md, "Permissions"), kept on the tenant record so that in a
// cluster it is replicated with it. Creating a tenant also creates its
// first owner key and answers with the secret, once: otherwise nobody could
// ever act in the new tenant. Deleting a tenant revokes every key at once;
// its flows and executions stay in the store, and a tombstone keeps its id
// from ever naming a new tenant (which would inherit them).
#include <regex>

#include "api/auth.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/crypto.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

bool valid_tenant_id(const std::string& id) {
  static const std::regex kId("[a-z0-9][a-z0-9_-]{0,62}");
  return std::regex_match(id, kId);
}

json tenant_view(const v1::Tenant& t, const Engine::TenantUsage& usage) {
  const auto& l = t.limits();
  return {{"id", t.id()},
          {"name", t.name()},
          {"status", t.status()},
          {"limits",
           {{"requests_per_second", l.requests_per_second()},
            {"burst", l.burst()},
            {"max_concurrent_executions", l.max_concurrent_executions()},
            {"max_executions_per_month", l.max_executions_per_month()}}},
          {"usage", {{"running_executions", usage.running}, {"queued_executions", usage.queued}}},
          {"tools", tool_policy_of(t).to_json()},
          {"created_at", iso_time(t.created_ms())},
          {"updated_at", iso_time(t.updated_ms())}};
}

// Applies the fields of `body` (create or PATCH) to `t`; every problem is
// reported with its JSON pointer.
Status apply_fields(const json& body, v1::Tenant& t) {
  std::vector<Problem> problems;
  if (!body.is_object()) return Status(ApiErrc::kInvalidRequest, "body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key == "id") continue;  // checked by the caller
    if (key == "name") {
      if (!value.is_string() || value.get_ref<const std::string&>().size() > 200) {
        problems.push_back({"/name", "must be a string of at most 200 characters"});
      } else {
        t.set_name(value.get<std::string>());
      }
    } else if (key == "status") {
      if (!value.is_string() || (value != "active" && value != "suspended")) {
        problems.push_back({"/status", "must be one of active, suspended"});
      } else {
        t.set_status(value.get<std::string>());
      }
    } else if (key == "limits") {
      if (!value.is_object()) {
        problems.push_back({"/limits", "must be an object"});
        continue;
      }
      auto* l = t.mutable_limits();
      for (const auto& [lk, lv] : value.items()) {
        const std::string path = "/limits/" + lk;
        const bool is_count =
            lv.is_number_unsigned() || (lv.is_number_integer() && lv.get<int64_t>() >= 0);
        const uint64_t max = lk == "max_executions_per_month" ? UINT64_MAX / 2 : UINT32_MAX;
        if (lk != "requests_per_second" && lk != "burst" && lk != "max_concurrent_executions" &&
            lk != "max_executions_per_month") {
          problems.push_back({path, "unknown field '" + lk + "'"});
        } else if (!is_count || lv.get<uint64_t>() > max) {
          problems.push_back({path, "must be an integer ≥ 0 (0 = no limit)"});
        } else if (lk == "requests_per_second") {
          l->set_requests_per_second(lv.get<uint32_t>());
        } else if (lk == "burst") {
          l->set_burst(lv.get<uint32_t>());
        } else if (lk == "max_concurrent_executions") {
          l->set_max_concurrent_executions(lv.get<uint32_t>());
        } else {
          l->set_max_executions_per_month(lv.get<uint64_t>());
        }
      }
    } else if (key == "tools") {
      // The tool policy (runtime/tool_policy.hpp); null or {} lifts it.
      auto policy = ToolPolicy::parse(value, "/tools");
      if (!policy.ok()) {
        for (const auto& p : policy.status().details()) problems.push_back(p);
      } else {
        t.set_tool_policy_json(policy.value().empty() ? "" : policy.value().to_json().dump());
      }
    } else {
      problems.push_back({"/" + key, "unknown field '" + key + "'"});
    }
  }
  if (!problems.empty()) {
    return Status(ApiErrc::kInvalidRequest, "tenant is invalid", std::move(problems));
  }
  return Status::ok();
}

}  // namespace

void register_tenant_routes(Router& router, Services& svc) {
  router.add(
      "POST", "/admin/v1/tenants", Access::kOperator, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto body = parse_body(ctx->req);
        if (!body.ok()) return respond_error(ctx, body.status());
        const json& b = body.value();
        if (!b.is_object() || !b.contains("id") || !b["id"].is_string() ||
            !valid_tenant_id(b["id"].get<std::string>())) {
          return respond_error(
              ctx, Status(ApiErrc::kInvalidRequest, "tenant is invalid",
                          {{"/id", "is required and must match [a-z0-9][a-z0-9_-]{0,62}"}}));
        }
        v1::Tenant t;
        t.set_id(b["id"].get<std::string>());
        t.set_name(t.id());
        t.set_status("active");
        Status s = apply_fields(b, t);
        if (!s.is_ok()) return respond_error(ctx, s);
        auto existing = svc.engine.tenant(t.id());
        if (!existing.ok()) return respond_error(ctx, existing.status());
        if (existing.value().has_value()) {
          return respond_error(ctx,
                               Status(Errc::kAlreadyExists,
                                      existing.value()->status() == "deleted"
                                          ? "tenant id '" + t.id() +
                                                "' belonged to a deleted tenant and is not reused"
                                          : "tenant '" + t.id() + "' already exists"));
        }
        // The owner key is drawn before the tenant is stored: a failing
        // CSPRNG must not leave a tenant without a key.
        auto fresh = new_api_key();
        if (!fresh.ok()) return respond_error(ctx, fresh.status());
        const std::string& secret = fresh->secret;
        t.set_created_ms(now_ms());
        t.set_updated_ms(t.created_ms());
        v1::ApiKey key;
        key.set_key_id(fresh->key_id);
        key.set_tenant(t.id());
        key.set_role("owner");
        key.set_name("initial owner key");
        key.set_created_ms(t.created_ms());
        // Tenant first, then its owner key, each a write on the admin pool.
        svc.admin.put_tenant(t, [&svc, ctx, t, key, secret](Status stored) {
          if (!stored.is_ok()) return respond_error(ctx, stored);
          svc.admin.put_api_key(
              crypto::sha256_hex(secret), key, [ctx, t, key, secret](Status keyed) {
                if (!keyed.is_ok()) return respond_error(ctx, keyed);
                json view = tenant_view(t, {});
                view["owner_key"] = {{"id", key.key_id()}, {"secret", secret}, {"role", "owner"}};
                respond_json(ctx, 201, view);
              });
        });
      });

  router.add("GET", "/admin/v1/tenants", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto all = svc.engine.list_tenants();
               if (!all.ok()) return respond_error(ctx, all.status());
               json items = json::array();
               for (const auto& t : all.value()) {
                 if (t.status() == "deleted") continue;
                 items.push_back(tenant_view(t, svc.engine.usage(t.id())));
               }
               respond_json(ctx, 200, {{"tenants", items}});
             });

  router.add("GET", "/admin/v1/tenants/{t}", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto t = svc.engine.tenant(ctx->param("t"));
               if (!t.ok()) return respond_error(ctx, t.status());
               if (!t.value().has_value() || t.value()->status() == "deleted") {
                 return respond_error(
                     ctx, Status(Errc::kNotFound, "tenant '" + ctx->param("t") + "' not found"));
               }
               respond_json(ctx, 200, tenant_view(*t.value(), svc.engine.usage(ctx->param("t"))));
             });

  router.add("PATCH", "/admin/v1/tenants/{t}", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto body = parse_body(ctx->req);
               if (!body.ok()) return respond_error(ctx, body.status());
               if (body.value().is_object() && body.value().contains("id")) {
                 return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "tenant is invalid",
                                                  {{"/id", "cannot be changed"}}));
               }
               auto t = svc.engine.tenant(ctx->param("t"));
               if (!t.ok()) return respond_error(ctx, t.status());
               if (!t.value().has_value() || t.value()->status() == "deleted") {
                 return respond_error(
                     ctx, Status(Errc::kNotFound, "tenant '" + ctx->param("t") + "' not found"));
               }
               v1::Tenant updated = *t.value();
               Status s = apply_fields(body.value(), updated);
               if (!s.is_ok()) return respond_error(ctx, s);
               updated.set_updated_ms(now_ms());
               svc.admin.put_tenant(updated, [&svc, ctx, updated](Status stored) {
                 if (!stored.is_ok()) return respond_error(ctx, stored);
                 respond_json(ctx, 200, tenant_view(updated, svc.engine.usage(updated.id())));
               });
             });

  router.add("DELETE", "/admin/v1/tenants/{t}", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               svc.admin.delete_tenant(ctx->param("t"), [&svc, ctx](Status s) {
                 if (!s.is_ok()) return respond_error(ctx, s);
                 svc.auth->forget_tenant(ctx->param("t"));
                 ctx->respond(json_response(204, ""));
               });
             });
}

}  // namespace yantra::api
