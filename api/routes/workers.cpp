// Tool workers over HTTP (docs/tools.md "Tool workers"): a worker registers
// its tools (POST /api/v1/workers), long-polls for tasks
// (POST /api/v1/workers/{id}/poll?wait_ms=N), heartbeats, and completes or
// fails each task (/api/v1/tasks/{task_id}/...). Access::kWorker: worker
// keys, and admin and owner keys.
//
// Registrations are stored through the admin seam as tool registrations of
// kind "worker" (so they reach every node and survive restarts); the tools
// are made from them by the registration watch (api/worker_tools.hpp), not
// here. The routes validate first: nothing invalid is stored.
//
// A poll never holds an I/O thread: the broker answers it by callback, at
// once or when a task arrives or its wait ends (the broker's timer thread).
#include <regex>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "api/services.hpp"
#include "api/worker_tools.hpp"
#include "base/time.hpp"

namespace yantra::api {
namespace {

// ---- The registration store: the admin seam's tool registrations. ----

constexpr const char* kKind = "worker";
using StatusFn = std::function<void(Status)>;

void put_registration(Services& svc, const std::string& tenant, const std::string& id, json doc,
                      StatusFn done) {
  ToolRegistration r;
  r.tenant = tenant;
  r.kind = kKind;
  r.id = id;
  r.definition = std::move(doc);
  // Answered once this node's engine ran the handler (the tools exist).
  svc.admin.put_tool_registration(std::move(r), std::move(done));
}

void delete_registration(Services& svc, const std::string& tenant, const std::string& id,
                         StatusFn done) {
  svc.admin.delete_tool_registration(tenant, kKind, id, [id, done](Status s) {
    if (s.is(Errc::kNotFound))
      return done(Status(Errc::kNotFound, "worker '" + id + "' not found"));
    done(s);
  });
}

Result<std::optional<json>> find_registration(Services& svc, const std::string& tenant,
                                              const std::string& id) {
  auto r = svc.admin.find_tool_registration(tenant, kKind, id);
  if (!r.ok()) return r.status();
  if (!r.value()) return std::optional<json>();
  return std::optional<json>(r.value()->definition);
}

Result<std::vector<std::pair<std::string, json>>> list_registrations(Services& svc,
                                                                     const std::string& tenant) {
  auto all = svc.admin.list_tool_registrations(tenant, kKind);
  if (!all.ok()) return all.status();
  std::vector<std::pair<std::string, json>> out;
  for (auto& r : all.value()) out.emplace_back(r.id, std::move(r.definition));
  return out;
}

// ---- Views. ----

json tool_ids(const json& doc) {
  json ids = json::array();
  for (const auto& t : doc.value("tools", json::array())) ids.push_back(t.value("id", ""));
  return ids;
}

json task_view(const DispatchedTask& t) {
  return {{"task_id", t.task_id},
          {"tool_id", t.tool_id},
          {"action", t.action},
          {"parameters", t.parameters},
          {"idempotency_key", t.idempotency_key},
          {"lease_ms", t.lease_ms},
          {"attempt", t.attempt},
          {"execution_id", t.execution_id},
          {"step", t.path}};
}

json worker_view(Services& svc, const std::string& tenant, const std::string& id, const json& doc,
                 bool full) {
  const TaskBroker::WorkerStatus st = svc.workers->broker().worker_status(tenant, id);
  json v = {{"id", id},
            {"tool_ids", tool_ids(doc)},
            {"last_poll_at", st.last_poll_ms > 0 ? json(iso_time(st.last_poll_ms)) : json()},
            {"polling", st.polling},
            {"in_flight", st.in_flight.size()}};
  if (full) {
    v["tools"] = doc.value("tools", json::array());
    json tasks = json::array();
    for (const auto& t : st.in_flight) {
      tasks.push_back({{"task_id", t.task_id},
                       {"tool_id", t.tool_id},
                       {"action", t.action},
                       {"attempt", t.attempt},
                       {"lease_ms", t.lease_ms},
                       {"execution_id", t.execution_id},
                       {"step", t.path}});
    }
    v["in_flight_tasks"] = tasks;
  }
  return v;
}

// A body that may be empty (heartbeat): an empty object then.
Result<json> optional_body(const HttpRequest& req) {
  if (req.body.empty()) return json::object();
  auto b = parse_body(req);
  if (!b.ok()) return b.status();
  if (!b.value().is_object()) return Status(ApiErrc::kInvalidRequest, "body must be an object");
  return b;
}

Status not_object(const Result<json>& b) {
  if (!b.ok()) return b.status();
  if (!b.value().is_object()) return Status(ApiErrc::kInvalidRequest, "body must be an object");
  return Status::ok();
}

void register_worker(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  auto body = parse_body(ctx->req);
  if (Status s = not_object(body); !s.is_ok()) return respond_error(ctx, s);
  if (ctx->req.body.size() > 256 * 1024) {
    return respond_error(
        ctx, Status(ApiErrc::kPayloadTooLarge, "a worker registration is at most 256 KiB"));
  }
  auto def = parse_worker_definition(
      body.value(), [&svc](const std::string& id) { return svc.engine.tools().is_builtin(id); });
  if (!def.ok()) return respond_error(ctx, def.status());
  const std::string tenant = ctx->who.tenant;
  const std::string id = def.value().id;
  put_registration(svc, tenant, id, body.value(),
                   [&svc, ctx, tenant, id, doc = body.value()](Status s) {
                     if (!s.is_ok()) return respond_error(ctx, s);
                     // A registration opens a worker's session: polls still
                     // waiting from an earlier process with this id (killed
                     // while polling) are answered empty rather than handed
                     // a task nobody will take.
                     svc.workers->broker().forget_worker(tenant, id);
                     respond_json(ctx, 201, worker_view(svc, tenant, id, doc, true));
                   });
}

void poll(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  const std::string id = ctx->param("id");
  auto wait = query_uint(ctx->req, "wait_ms", 0, svc.max_wait_ms);
  if (!wait.ok()) return respond_error(ctx, wait.status());
  auto doc = find_registration(svc, ctx->who.tenant, id);
  if (!doc.ok()) return respond_error(ctx, doc.status());
  if (!doc.value()) {
    return respond_error(ctx, Status(Errc::kNotFound, "worker '" + id +
                                                          "' not found (register it first: "
                                                          "POST /api/v1/workers)"));
  }
  std::vector<std::string> tools;
  for (const auto& t : tool_ids(*doc.value())) tools.push_back(t.get<std::string>());
  svc.workers->broker().poll(ctx->who.tenant, id, std::move(tools),
                             static_cast<int64_t>(wait.value()),
                             [ctx](std::optional<DispatchedTask> t) {
                               if (!t) return ctx->respond(json_response(204, ""));
                               respond_json(ctx, 200, task_view(*t));
                             });
}

const std::regex& code_re() {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return re;
}

void fail_task(Services& svc, const std::shared_ptr<RouteCtx>& ctx) {
  auto body = parse_body(ctx->req);
  if (Status s = not_object(body); !s.is_ok()) return respond_error(ctx, s);
  const json& b = body.value();
  std::vector<Problem> problems;
  for (const auto& [k, v] : b.items()) {
    if (k != "error" && k != "retryable")
      problems.push_back({"/" + k, "unknown field '" + k + "'"});
  }
  std::string code;
  std::string message;
  if (!b.contains("error") || !b["error"].is_object()) {
    problems.push_back({"/error", "is required: {\"code\", \"message\"}"});
  } else {
    const json& e = b["error"];
    for (const auto& [k, v] : e.items()) {
      if (k != "code" && k != "message") {
        problems.push_back({"/error/" + k, "unknown field '" + k + "'"});
      }
    }
    if (!e.contains("code") || !e["code"].is_string() ||
        !std::regex_match(e["code"].get_ref<const std::string&>(), code_re())) {
      problems.push_back({"/error/code", "is required and must match [A-Za-z0-9_.-]{1,64}"});
    } else {
      code = e["code"];
    }
    if (e.contains("message")) {
      if (!e["message"].is_string() || e["message"].get_ref<const std::string&>().size() > 4096) {
        problems.push_back({"/error/message", "must be a string of at most 4096 bytes"});
      } else {
        message = e["message"];
      }
    }
  }
  bool retryable = true;
  if (b.contains("retryable")) {
    if (!b["retryable"].is_boolean()) {
      problems.push_back({"/retryable", "must be a boolean"});
    } else {
      retryable = b["retryable"];
    }
  }
  if (!problems.empty()) {
    return respond_error(
        ctx, Status(ApiErrc::kInvalidRequest, "task failure is invalid", std::move(problems)));
  }
  const std::string task_id = ctx->param("task_id");
  Status s = svc.workers->broker().fail(ctx->who.tenant, task_id, code, message, retryable);
  if (!s.is_ok()) return respond_error(ctx, s);
  respond_json(ctx, 200, {{"task_id", task_id}, {"status", "failed"}});
}

}  // namespace

void register_worker_routes(Router& router, Services& svc) {
  router.add("POST", "/api/v1/workers", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { register_worker(svc, ctx); });

  router.add("GET", "/api/v1/workers", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto all = list_registrations(svc, ctx->who.tenant);
               if (!all.ok()) return respond_error(ctx, all.status());
               json items = json::array();
               for (const auto& [id, doc] : all.value()) {
                 items.push_back(worker_view(svc, ctx->who.tenant, id, doc, false));
               }
               respond_json(ctx, 200, {{"workers", items}});
             });

  router.add(
      "GET", "/api/v1/workers/{id}", Access::kWorker, [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        const std::string id = ctx->param("id");
        auto doc = find_registration(svc, ctx->who.tenant, id);
        if (!doc.ok()) return respond_error(ctx, doc.status());
        if (!doc.value()) {
          return respond_error(ctx, Status(Errc::kNotFound, "worker '" + id + "' not found"));
        }
        respond_json(ctx, 200, worker_view(svc, ctx->who.tenant, id, *doc.value(), true));
      });

  router.add("DELETE", "/api/v1/workers/{id}", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               delete_registration(svc, ctx->who.tenant, ctx->param("id"), [ctx](Status s) {
                 if (!s.is_ok()) return respond_error(ctx, s);
                 ctx->respond(json_response(204, ""));
               });
             });

  router.add("POST", "/api/v1/workers/{id}/poll", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { poll(svc, ctx); });

  router.add("POST", "/api/v1/tasks/{task_id}/heartbeat", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto body = optional_body(ctx->req);
               if (!body.ok()) return respond_error(ctx, body.status());
               if (Status s = reject_unknown_fields(body.value(), {}, "a heartbeat has no body");
                   !s.is_ok()) {
                 return respond_error(ctx, s);
               }
               const std::string task_id = ctx->param("task_id");
               auto lease = svc.workers->broker().heartbeat(ctx->who.tenant, task_id);
               if (!lease.ok()) return respond_error(ctx, lease.status());
               respond_json(ctx, 200, {{"task_id", task_id}, {"lease_ms", lease.value()}});
             });

  router.add("POST", "/api/v1/tasks/{task_id}/complete", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               auto body = parse_body(ctx->req);
               if (Status s = not_object(body); !s.is_ok()) return respond_error(ctx, s);
               if (Status s = reject_unknown_fields(body.value(), {"output"},
                                                    "a completion is {\"output\": ...}");
                   !s.is_ok()) {
                 return respond_error(ctx, s);
               }
               if (!body.value().contains("output")) {
                 return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "'output' is required",
                                                  {{"/output", "is required (any JSON value)"}}));
               }
               const std::string task_id = ctx->param("task_id");
               Status s = svc.workers->broker().complete(ctx->who.tenant, task_id,
                                                         std::move(body.value()["output"]));
               if (!s.is_ok()) return respond_error(ctx, s);
               respond_json(ctx, 200, {{"task_id", task_id}, {"status", "completed"}});
             });

  router.add("POST", "/api/v1/tasks/{task_id}/fail", Access::kWorker,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) { fail_task(svc, ctx); });
}

}  // namespace yantra::api
