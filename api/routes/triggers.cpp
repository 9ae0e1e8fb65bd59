// Triggers over HTTP: the public webhook route (/hooks/{hook_id}), emitted
// events, the schedule listing, pausing and resuming a flow, and rotating a
// flow's webhook id.
//
// Why the webhook route checks its own credentials: it is public (the
// caller is a third-party service holding a URL, not an API key), so the
// app's authentication does not apply; what a request must carry is part of
// the flow's trigger (docs/workflows.md). Every comparison with a
// credential runs in constant time: secrets are compared as SHA-256 digests
// with crypto::constant_time_equal, so neither their content nor their length leaks
// through timing. An unknown hook id, a rotated-away one and a flow whose
// latest version has no webhook trigger all answer the same 404.
//
// Pausing stores a new version whose only change is "status": the flow's
// history shows who paused it and when, like any other change, and every
// trigger reads the status from the latest version.
#include <cstdlib>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "base/storage_errc.hpp"
#include "base/text.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

const Status kUnknownHook(Errc::kNotFound, "unknown webhook");

// Constant time in content and length: both sides are hashed first.
bool same_secret(const std::string& given, const std::string& expected) {
  return crypto::constant_time_equal(crypto::sha256(given), crypto::sha256(expected));
}

// A credential as written in the trigger: a string, or {"$secret": NAME}
// read from the flow's tenant's vault now (so a changed secret applies to
// the next request).
Result<std::string> credential(Services& svc, const std::string& tenant, const json& c) {
  if (c.is_string()) return c.get<std::string>();
  const std::string name = c.is_object() ? c.value("$secret", "") : "";
  if (!svc.admin.has_vault()) {
    return Status(ActorsErrc::kVaultUnavailable,
                  "the webhook's credential is secret '" + name + "' and this node has no vault");
  }
  auto value = svc.admin.secret_value(tenant, name);
  if (!value.ok()) return value.status();
  if (!value.value().has_value()) {
    return Status(Errc::kUnavailable, "the webhook's credential secret '" + name + "' is not set");
  }
  return std::move(*value.value());
}

Status unauthorized(const std::string& why) {
  return Status(Errc::kUnauthorized, why);
}

// The trigger's auth scheme against the request (docs/workflows.md).
Status check_webhook_auth(Services& svc, const std::string& tenant, const Trigger& t,
                          const HttpRequest& req) {
  if (t.auth == "none") return Status::ok();
  const std::string& authorization = req.header("authorization");
  if (t.auth == "basic") {
    Result<std::string> credentials = unauthorized("this webhook needs HTTP Basic credentials");
    if (ascii_starts_with_ci(authorization, "basic ") && authorization.size() > 6 &&
        authorization.size() <= 6 + 4096) {
      credentials = base64_decode(std::string_view(authorization).substr(6));
    }
    if (!credentials.ok()) return unauthorized("this webhook needs HTTP Basic credentials");
    const std::string& decoded = credentials.value();
    auto password = credential(svc, tenant, t.credentials.value("password", json()));
    if (!password.ok()) return password.status();
    const std::string expected =
        t.credentials.value("username", std::string()) + ":" + password.value();
    if (!same_secret(decoded, expected)) return unauthorized("wrong webhook credentials");
    return Status::ok();
  }
  if (t.auth == "bearer") {
    if (!ascii_starts_with_ci(authorization, "bearer ")) {
      return unauthorized("this webhook needs 'Authorization: Bearer <token>'");
    }
    auto token = credential(svc, tenant, t.credentials.value("token", json()));
    if (!token.ok()) return token.status();
    if (!same_secret(authorization.substr(7), token.value())) {
      return unauthorized("wrong webhook token");
    }
    return Status::ok();
  }
  // signature
  std::string signature = req.header(ascii_lower(t.signature_header));
  const std::string& stamp = req.header(ascii_lower(t.timestamp_header));
  if (signature.empty()) return unauthorized("missing " + t.signature_header + " header");
  if (stamp.empty()) return unauthorized("missing " + t.timestamp_header + " header");
  if (stamp.size() > 12 || stamp.find_first_not_of("0123456789") != std::string::npos) {
    return unauthorized(t.timestamp_header + " must be Unix seconds");
  }
  const int64_t sent_ms = std::strtoll(stamp.c_str(), nullptr, 10) * 1000;
  if (std::llabs(now_ms() - sent_ms) > t.replay_window_ms) {
    return unauthorized("stale webhook timestamp: more than " + std::to_string(t.replay_window_ms) +
                        " ms from the server's time");
  }
  auto secret = credential(svc, tenant, t.credentials.value("secret", json()));
  if (!secret.ok()) return secret.status();
  signature = ascii_lower(signature);
  if (signature.rfind("sha256=", 0) == 0) signature = signature.substr(7);
  const std::string expected = crypto::hmac_sha256_hex(secret.value(), stamp + "." + req.body);
  if (!crypto::constant_time_equal(signature, expected)) {
    return unauthorized("webhook signature does not match");
  }
  return Status::ok();
}

// {"body", "headers", "query"}: what a flow started by a webhook sees.
json webhook_input(const HttpRequest& req, const Trigger& t) {
  json body = nullptr;
  if (!req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    // Not JSON: the text itself (invalid UTF-8 is replaced when stored).
    if (body.is_discarded()) body = req.body;
  }
  const std::string signature = ascii_lower(t.signature_header);
  json headers = json::object();
  for (const auto& [name, value] : req.headers) {
    if (name == "authorization" || name == signature || headers.contains(name)) continue;
    headers[name] = value;
  }
  json query = json::object();
  for (const auto& [name, value] : req.query) {
    if (name == "wait_ms" || query.contains(name)) continue;
    query[name] = value;
  }
  return {{"body", std::move(body)}, {"headers", std::move(headers)}, {"query", std::move(query)}};
}

// [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}, as event triggers name their events.
bool valid_event_name(const std::string& s) {
  auto ok = [](char c, bool first) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           (!first && (c == '_' || c == '.' || c == ':' || c == '-'));
  };
  if (s.empty() || s.size() > 128) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!ok(s[i], i == 0)) return false;
  }
  return true;
}

// Stores a new version of the flow with "status" set to `wanted`.
void set_flow_status(Services& svc, const std::shared_ptr<RouteCtx>& ctx,
                     const std::string& wanted) {
  const std::string& id = ctx->param("id");
  auto fv = svc.engine.get_flow_version(ctx->who.tenant, id);
  if (!fv.ok()) return respond_error(ctx, fv.status());
  json def = json::parse(fv.value().definition_json(), nullptr, false);
  if (!def.is_object())
    return respond_error(ctx, Status(StorageErrc::kCorrupt, "flow does not parse"));
  if (def.value("status", "active") == wanted) {
    return respond_error(ctx, Status(Errc::kConflict, "flow '" + id + "' is already " + wanted));
  }
  def["status"] = wanted;
  svc.admin.put_flow(ctx->who.tenant, std::move(def), ctx->who.key_id,
                     wanted == "paused" ? "paused" : "resumed",
                     [&svc, ctx, id](Result<v1::FlowVersion> stored) {
                       if (!stored.ok()) return respond_error(ctx, stored.status());
                       json view = flow_view(stored.value(), true);
                       json hook = webhook_view(svc, ctx->who.tenant, id);
                       if (!hook.is_null()) view["webhook"] = std::move(hook);
                       respond_json(ctx, 200, view);
                     });
}

json hook_json(const std::string& hook_id) {
  return {{"id", hook_id}, {"url", "/hooks/" + hook_id}};
}

}  // namespace

json webhook_view(Services& svc, const std::string& tenant, const std::string& flow_id) {
  auto flow = svc.engine.get_flow(tenant, flow_id);
  if (!flow.ok() || flow.value()->trigger_spec.type != Trigger::Type::kWebhook) return nullptr;
  auto id = svc.admin.hook_of(tenant, flow_id);
  if (!id.ok() || !id.value().has_value()) return nullptr;
  return hook_json(*id.value());
}

void register_trigger_routes(Router& router, Services& svc) {
  router.add("POST", "/hooks/{hook_id}", Access::kPublic,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto target = svc.admin.find_hook(ctx->param("hook_id"));
               if (!target.ok()) return respond_error(ctx, target.status());
               if (!target.value().has_value()) return respond_error(ctx, kUnknownHook);
               const std::string tenant = target.value()->tenant;
               const std::string flow_id = target.value()->flow_id;
               auto flow = svc.engine.get_flow(tenant, flow_id);
               if (!flow.ok()) {
                 return respond_error(
                     ctx, flow.status().is(Errc::kNotFound) ? kUnknownHook : flow.status());
               }
               const Trigger& trigger = flow.value()->trigger_spec;
               if (trigger.type != Trigger::Type::kWebhook) return respond_error(ctx, kUnknownHook);
               // From here on the request is the flow's tenant's business: audited
               // in its chain, with the outcome (the app audits routes with a
               // principal only, and this one has none).
               // One answered by another node was audited there.
               ctx->respond = [&svc, respond = std::move(ctx->respond), tenant, flow_id,
                               request_id = ctx->request_id](HttpResponse r) {
                 if (r.forwarded) return respond(std::move(r));
                 AuditEntry e;
                 e.tenant = tenant;
                 e.role = "webhook";
                 e.action = "hook.received";
                 e.resource = "/api/v1/flows/" + flow_id + "/webhook";
                 e.outcome = r.error_code.empty() ? "ok" : r.error_code;
                 e.request_id = request_id;
                 svc.admin.audit(std::move(e));
                 respond(std::move(r));
               };
               Status auth = check_webhook_auth(svc, tenant, trigger, ctx->req);
               if (!auth.is_ok()) {
                 HttpResponse r = error_response(auth);
                 if (r.status == 401 && trigger.auth == "basic") {
                   r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"yantra-webhook\"");
                 }
                 return ctx->respond(std::move(r));
               }
               auto wait = query_uint(ctx->req, "wait_ms", 0, svc.max_wait_ms);
               if (!wait.ok()) return respond_error(ctx, wait.status());
               RunRequest run;
               run.tenant = tenant;
               run.flow_id = flow_id;
               run.input = webhook_input(ctx->req, trigger);
               // A paused flow is refused by the engine ("conflict"): nothing starts.
               start_and_answer(svc, ctx, std::move(run), wait.value());
             });

  router.add("POST", "/api/v1/flows/{id}/webhook/rotate", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               const std::string& id = ctx->param("id");
               auto flow = svc.engine.get_flow(ctx->who.tenant, id);
               if (!flow.ok()) return respond_error(ctx, flow.status());
               if (flow.value()->trigger_spec.type != Trigger::Type::kWebhook) {
                 return respond_error(
                     ctx, Status(Errc::kConflict, "flow '" + id + "' has no webhook trigger"));
               }
               svc.admin.rotate_hook(ctx->who.tenant, id, [ctx](Result<std::string> hook) {
                 if (!hook.ok()) return respond_error(ctx, hook.status());
                 respond_json(ctx, 200, hook_json(hook.value()));
               });
             });

  router.add("POST", "/api/v1/flows/{id}/pause", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { set_flow_status(svc, ctx, "paused"); });
  router.add("POST", "/api/v1/flows/{id}/resume", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { set_flow_status(svc, ctx, "active"); });

  router.add(
      "POST", "/api/v1/events", Access::kEditor, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto body = parse_body(ctx->req);
        if (!body.ok()) return respond_error(ctx, body.status());
        const json& b = body.value();
        if (!b.is_object()) {
          return respond_error(
              ctx, Status(ApiErrc::kInvalidRequest, "request body must be an object",
                          {{"", "must be an object like {\"name\": ..., \"data\": ...}"}}));
        }
        if (Status s =
                reject_unknown_fields(b, {"name", "data"}, "unknown field (expected name, data)");
            !s.is_ok()) {
          return respond_error(ctx, s);
        }
        if (!b.contains("name") || !b["name"].is_string() ||
            !valid_event_name(b["name"].get<std::string>())) {
          return respond_error(
              ctx,
              Status(ApiErrc::kInvalidRequest, "name is required",
                     {{"/name", "must be a string matching [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"}}));
        }
        svc.engine.emit_event(
            ctx->who.tenant, b["name"].get<std::string>(), b.value("data", json(nullptr)),
            [&svc, ctx](std::vector<EventStart> starts) {
              // In a cluster, a node that leads no partition right now starts
              // nothing: the event goes to a node that does (api/forwarding.hpp).
              const bool none_led =
                  !starts.empty() &&
                  std::all_of(starts.begin(), starts.end(), [](const EventStart& s) {
                    return s.error.is(ActorsErrc::kPartitionNotLed);
                  });
              if (none_led && forward_not_led(svc, ctx, ctx->respond)) return;
              json executions = json::array();
              json errors = json::array();
              for (const auto& s : starts) {
                if (s.error.is_ok()) {
                  executions.push_back({{"flow_id", s.flow_id},
                                        {"execution_id", s.execution_id},
                                        {"status", s.queued ? "queued" : "running"}});
                } else {
                  errors.push_back(
                      {{"flow_id", s.flow_id},
                       {"error", {{"code", s.error.code()}, {"message", s.error.message()}}}});
                }
              }
              respond_json(ctx, 202, {{"executions", executions}, {"errors", errors}});
            });
      });

  router.add(
      "GET", "/api/v1/schedules", Access::kViewer, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        json items = json::array();
        for (const auto& s : svc.engine.schedules(ctx->who.tenant)) {
          items.push_back(
              {{"flow_id", s.flow_id},
               {"cron", s.cron},
               {"timezone", s.time_zone},
               {"catch_up", s.catch_up},
               {"status", s.status},
               {"next_fire_at", s.next_fire_ms > 0 ? json(iso_time(s.next_fire_ms)) : json()},
               {"next_fire_ms", s.next_fire_ms > 0 ? json(s.next_fire_ms) : json()},
               {"last_fired_at", s.last_fired_ms > 0 ? json(iso_time(s.last_fired_ms)) : json()}});
        }
        respond_json(ctx, 200, {{"schedules", items}});
      });
}

}  // namespace yantra::api
