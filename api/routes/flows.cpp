// /api/v1/flows: create (POST, 409 if the id exists), list, get (JSON or
// YAML, optionally one version), update (PUT stores version N+1), delete
// (a tombstone version: running executions keep their pinned version), and
// run. Definitions are validated by the engine; every problem comes back in
// error.details with its JSON pointer.
#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "base/utf8.hpp"
#include "runtime/errc.hpp"
#include "runtime/redact.hpp"

namespace yantra::api {
namespace {

// Header values are stored in protobuf `string` fields (FlowVersion.note,
// ExecutionStarted.idempotency_key), which must be valid UTF-8: protobuf
// writes invalid bytes but refuses to parse them back, so a single bad
// header made a flow (and its tenant's flow list) or an execution answer
// 500 storage_corrupt for good. JSON and YAML bodies are checked by their
// parsers; headers are checked here.
void put_definition(Services& svc, const std::shared_ptr<RouteCtx>& ctx, json def, int status) {
  if (!utf8::is_valid(ctx->req.header("x-change-note"))) {
    return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "X-Change-Note is not valid UTF-8"));
  }
  // The tenant's tool policy, and its role's: refused before anything is
  // stored, 403 with the pointer of every refused step.
  if (def.is_object() && def.contains("steps")) {
    std::vector<Problem> refused;
    refused_steps(svc.engine.tools(), ctx->who.tenant, ctx->who.role, def["steps"], "/steps",
                  refused);
    if (!refused.empty()) {
      return respond_error(
          ctx, Status(ActorsErrc::kPermissionDenied,
                      "the flow uses tools this tenant or role may not use", std::move(refused)));
    }
  }
  // The synced write runs on the admin pool; the answer is sent from there.
  svc.admin.put_flow(ctx->who.tenant, std::move(def), ctx->who.key_id,
                     ctx->req.header("x-change-note"),
                     [&svc, ctx, status](Result<v1::FlowVersion> fv) {
                       if (!fv.ok()) return respond_error(ctx, fv.status());
                       json view = flow_view(fv.value(), true);
                       json hook = webhook_view(svc, ctx->who.tenant, fv.value().flow_id());
                       if (!hook.is_null()) view["webhook"] = std::move(hook);
                       respond_json(ctx, status, view);
                     });
}

}  // namespace

Result<uint64_t> query_uint(const HttpRequest& req, const std::string& name, uint64_t fallback,
                            uint64_t max) {
  const std::string* v = req.query_param(name);
  if (v == nullptr || v->empty()) return fallback;
  uint64_t n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9' || n > max) {
      return Status(
          ApiErrc::kInvalidParameter,
          "query parameter '" + name + "' must be an integer between 0 and " + std::to_string(max));
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > max) {
    return Status(
        ApiErrc::kInvalidParameter,
        "query parameter '" + name + "' must be an integer between 0 and " + std::to_string(max));
  }
  return n;
}

void start_and_answer(Services& svc, const std::shared_ptr<RouteCtx>& ctx, RunRequest run,
                      uint64_t wait_ms) {
  if (svc.runs_in_flight.fetch_add(1) >= svc.max_runs_in_flight) {
    svc.runs_in_flight.fetch_sub(1);
    HttpResponse busy = error_response(Status(
        Errc::kRateLimited, "too many runs in flight on this node (" +
                                std::to_string(svc.max_runs_in_flight) + "); retry shortly"));
    busy.headers.emplace_back("Retry-After", "1");
    return ctx->respond(std::move(busy));
  }
  // Exactly one of "started", "finished" and "timer" answers the request;
  // the one that does also frees the in-flight slot.
  struct Answer {
    // A constructor, not aggregate init: clang 14 (the sanitizer builds)
    // lacks C++20's parenthesised aggregate initialisation in make_shared.
    explicit Answer(Services& s) : svc(s) {}
    Services& svc;
    std::atomic<bool> done{false};
    bool claim() {
      if (done.exchange(true)) return false;
      svc.runs_in_flight.fetch_sub(1);
      return true;
    }
  };
  auto answered = std::make_shared<Answer>(svc);
  Engine::FinishedFn finished;
  if (wait_ms > 0) {
    finished = [ctx, answered](const ExecutionResult& r) {
      if (!answered->claim()) return;
      respond_json(ctx, 200,
                   redact(json{{"execution_id", r.execution_id},
                               {"status", r.status},
                               {"output", r.output},
                               {"error", r.error}}));
    };
  }
  run.queued = std::make_shared<std::atomic<bool>>(false);
  auto queued = run.queued;
  svc.engine.start(
      std::move(run),
      [ctx, answered, wait_ms, queued, &svc](Result<std::string> id) {
        if (!id.ok()) {
          if (!answered->claim()) return;
          // In a cluster, a node that leads no partition right now hands the
          // start to one that does (api/forwarding.hpp).
          if (id.status().is(ActorsErrc::kPartitionNotLed) &&
              forward_not_led(svc, ctx, ctx->respond)) {
            return;
          }
          respond_error(ctx, id.status());
          return;
        }
        json accepted = {{"execution_id", id.value()},
                         {"status", queued->load() ? "queued" : "running"}};
        HttpServer* server = svc.server.load();
        if (wait_ms == 0 || server == nullptr) {
          if (answered->claim()) respond_json(ctx, 202, accepted);
          return;
        }
        server->after(static_cast<uint32_t>(wait_ms), [ctx, answered, accepted] {
          if (answered->claim()) respond_json(ctx, 202, accepted);
        });
      },
      std::move(finished));
}

void register_flow_routes(Router& router, Services& svc) {
  router.add("POST", "/api/v1/flows", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto body = parse_body(ctx->req);
               if (!body.ok()) return respond_error(ctx, body.status());
               json def = std::move(body.value());
               if (def.is_object() && def.contains("id") && def["id"].is_string()) {
                 auto existing =
                     svc.engine.get_flow_version(ctx->who.tenant, def["id"].get<std::string>());
                 if (existing.ok()) {
                   return respond_error(
                       ctx, Status(Errc::kConflict, "flow '" + def["id"].get<std::string>() +
                                                        "' already exists; use PUT to update it"));
                 }
               }
               put_definition(svc, ctx, std::move(def), 201);
             });

  router.add("GET", "/api/v1/flows", Access::kViewer, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
    auto flows = svc.engine.list_flows(ctx->who.tenant);
    if (!flows.ok()) return respond_error(ctx, flows.status());
    json items = json::array();
    for (const auto& fv : flows.value()) items.push_back(flow_view(fv, false));
    respond_json(ctx, 200, {{"flows", items}});
  });

  router.add(
      "GET", "/api/v1/flows/{id}", Access::kViewer, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto version = query_uint(ctx->req, "version", 0, UINT32_MAX);
        if (!version.ok()) return respond_error(ctx, version.status());
        auto fv = svc.engine.get_flow_version(ctx->who.tenant, ctx->param("id"),
                                              static_cast<uint32_t>(version.value()));
        if (!fv.ok()) return respond_error(ctx, fv.status());
        if (fv.value().deleted()) {
          return respond_error(
              ctx,
              Status(Errc::kNotFound, "version " + std::to_string(version.value()) + " of flow '" +
                                          ctx->param("id") + "' is a deletion"));
        }
        if (wants_yaml(ctx->req)) {
          json def = json::parse(fv.value().definition_json(), nullptr, false);
          HttpResponse r;
          r.content_type = "application/yaml";
          r.body = json_to_yaml(def);
          return ctx->respond(std::move(r));
        }
        json view = flow_view(fv.value(), true);
        if (version.value() == 0) {
          json hook = webhook_view(svc, ctx->who.tenant, ctx->param("id"));
          if (!hook.is_null()) view["webhook"] = std::move(hook);
        }
        respond_json(ctx, 200, view);
      });

  router.add(
      "PUT", "/api/v1/flows/{id}", Access::kEditor, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        auto body = parse_body(ctx->req);
        if (!body.ok()) return respond_error(ctx, body.status());
        json def = std::move(body.value());
        if (def.is_object()) {
          if (!def.contains("id")) def["id"] = ctx->param("id");
          if (!def["id"].is_string() || def["id"].get<std::string>() != ctx->param("id")) {
            return respond_error(
                ctx, Status(RuntimeErrc::kInvalidFlow, "flow id in the body does not match the URL",
                            {{"/id", "must be '" + ctx->param("id") + "' (the id in the URL)"}}));
          }
        }
        const bool exists = svc.engine.get_flow_version(ctx->who.tenant, ctx->param("id")).ok();
        put_definition(svc, ctx, std::move(def), exists ? 200 : 201);
      });

  router.add("DELETE", "/api/v1/flows/{id}", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               svc.admin.delete_flow(ctx->who.tenant, ctx->param("id"), ctx->who.key_id,
                                     [ctx](Result<uint32_t> v) {
                                       if (!v.ok()) return respond_error(ctx, v.status());
                                       ctx->respond(json_response(204, ""));
                                     });
             });

  router.add("GET", "/api/v1/flows/{id}/versions", Access::kViewer,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto versions = svc.engine.flow_versions(ctx->who.tenant, ctx->param("id"));
               if (!versions.ok()) return respond_error(ctx, versions.status());
               if (versions.value().empty()) {
                 return respond_error(
                     ctx, Status(Errc::kNotFound, "flow '" + ctx->param("id") + "' not found"));
               }
               json items = json::array();
               for (const auto& fv : versions.value()) {
                 json v = {{"version", fv.version()},
                           {"created_at", iso_time(fv.created_ms())},
                           {"created_by", fv.created_by()},
                           {"note", fv.note()}};
                 if (fv.deleted()) v["deleted"] = true;
                 items.push_back(std::move(v));
               }
               respond_json(ctx, 200, {{"id", ctx->param("id")}, {"versions", items}});
             });

  // Stores the definition of an old version as a new version: history is
  // never rewritten, so a rollback is itself visible and reversible.
  router.add("POST", "/api/v1/flows/{id}/rollback", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto body = parse_body(ctx->req);
               if (!body.ok()) return respond_error(ctx, body.status());
               const json& b = body.value();
               if (!b.is_object() || !b.contains("version") || !b["version"].is_number_unsigned() ||
                   b["version"].get<uint64_t>() == 0 || b["version"].get<uint64_t>() > UINT32_MAX) {
                 return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "version is required",
                                                  {{"/version", "must be a version number ≥ 1"}}));
               }
               const auto version = static_cast<uint32_t>(b["version"].get<uint64_t>());
               auto old = svc.engine.get_flow_version(ctx->who.tenant, ctx->param("id"), version);
               if (!old.ok()) return respond_error(ctx, old.status());
               if (old.value().deleted()) {
                 return respond_error(
                     ctx, Status(Errc::kConflict,
                                 "version " + std::to_string(version) + " is a deletion"));
               }
               json def = json::parse(old.value().definition_json(), nullptr, false);
               svc.admin.put_flow(ctx->who.tenant, std::move(def), ctx->who.key_id,
                                  "rollback to version " + std::to_string(version),
                                  [ctx](Result<v1::FlowVersion> fv) {
                                    if (!fv.ok()) return respond_error(ctx, fv.status());
                                    respond_json(ctx, 200, flow_view(fv.value(), true));
                                  });
             });

  router.add("POST", "/api/v1/flows/{id}/run", Access::kEditor,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               RunRequest run;
               run.tenant = ctx->who.tenant;
               run.flow_id = ctx->param("id");
               run.idempotency_key = ctx->req.header("idempotency-key");
               if (run.idempotency_key.size() > 200) {
                 return respond_error(
                     ctx, Status(ApiErrc::kInvalidRequest, "Idempotency-Key is longer than 200"));
               }
               if (!utf8::is_valid(run.idempotency_key)) {
                 return respond_error(
                     ctx, Status(ApiErrc::kInvalidRequest, "Idempotency-Key is not valid UTF-8"));
               }
               if (!ctx->req.body.empty()) {
                 auto body = parse_body(ctx->req);
                 if (!body.ok()) return respond_error(ctx, body.status());
                 const json& b = body.value();
                 if (!b.is_object()) {
                   return respond_error(
                       ctx, Status(ApiErrc::kInvalidRequest, "request body must be an object",
                                   {{"", "must be an object like {\"input\": {...}}"}}));
                 }
                 if (Status s = reject_unknown_fields(b, {"input", "shared"},
                                                      "unknown field (expected input)");
                     !s.is_ok()) {
                   return respond_error(ctx, s);
                 }
                 if (b.contains("input")) {
                   run.input = b["input"];
                 } else if (b.contains("shared")) {
                   run.input = b["shared"];
                 }
               }
               auto wait = query_uint(ctx->req, "wait_ms", 0, svc.max_wait_ms);
               if (!wait.ok()) return respond_error(ctx, wait.status());
               start_and_answer(svc, ctx, std::move(run), wait.value());
             });
}

}  // namespace yantra::api
