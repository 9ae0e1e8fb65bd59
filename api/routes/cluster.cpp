// Operator routes of the cluster (/admin/v1/cluster, /admin/v1/nodes,
// /admin/v1/partitions, /admin/v1/rebalance) over the ClusterView seam
// (api/cluster_view.hpp). A single node answers 404 "not_found" saying it
// is not part of a cluster, so a script can tell that from a wrong URL.
// Handlers validate the request's shape here and hand the command to the
// view, which runs it on a thread of its own (etcd writes, and a leadership
// move's wait) and answers by callback: an I/O thread never waits. The
// picture (GET /admin/v1/cluster) is asynchronous too: it asks every node
// and etcd, each within a timeout.
// Query parameters: none (the OpenAPI document declares each route's, so
// any is refused with 400).
#include <charconv>

#include "api/services.hpp"

namespace yantra::api {
namespace {

Status not_clustered() {
  return Status(Errc::kNotFound, "this node is not part of a cluster (started without --etcd)");
}

// Answers the command's result: `ok_status` (202 for commands that finish
// in the background), 200 for a move that completed.
void run_command(Services& svc, const std::shared_ptr<RouteCtx>& ctx, ClusterView::Command cmd,
                 int ok_status) {
  const bool is_move = cmd.kind == ClusterView::Command::Kind::kMoveLeader;
  svc.cluster->run(std::move(cmd), [ctx, ok_status, is_move](Result<json> r) {
    if (!r.ok()) return respond_error(ctx, r.status());
    int status = ok_status;
    if (is_move) status = r.value().value("moved", false) ? 200 : 202;
    respond_json(ctx, status, r.value());
  });
}

Result<uint32_t> partition_param(const std::shared_ptr<RouteCtx>& ctx) {
  const std::string& text = ctx->param("p");
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status(ApiErrc::kInvalidRequest,
                  "partition '" + text + "' is not a partition number (0, 1, ...)");
  }
  return p;
}

// The JSON object body of `ctx` (an empty body counts as {} when
// `empty_ok`).
Result<json> object_body(const std::shared_ptr<RouteCtx>& ctx, bool empty_ok) {
  if (ctx->req.body.empty() && empty_ok) return json::object();
  auto body = parse_body(ctx->req);
  if (!body.ok()) return body.status();
  if (!body.value().is_object()) {
    return Status(ApiErrc::kInvalidRequest, "body must be a JSON object");
  }
  return body;
}

void node_command(Router& router, Services& svc, const char* method, const std::string& path,
                  ClusterView::Command::Kind kind, int ok_status) {
  router.add(method, path, Access::kOperator,
             [&svc, kind, ok_status](const std::shared_ptr<RouteCtx>& ctx) {
               if (svc.cluster == nullptr) return respond_error(ctx, not_clustered());
               ClusterView::Command cmd;
               cmd.kind = kind;
               cmd.node = ctx->param("id");
               run_command(svc, ctx, std::move(cmd), ok_status);
             });
}

}  // namespace

void register_cluster_routes(Router& router, Services& svc) {
  router.add("GET", "/admin/v1/cluster", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               if (svc.cluster == nullptr) return respond_error(ctx, not_clustered());
               // Asks every node and etcd (bounded by timeouts): answered by
               // callback from the view's thread.
               svc.cluster->describe([ctx](Result<json> r) {
                 if (!r.ok()) return respond_error(ctx, r.status());
                 respond_json(ctx, 200, r.value());
               });
             });
  using Kind = ClusterView::Command::Kind;
  // Drains and undrains happen in the background (GET /admin/v1/cluster
  // shows "drained"); a removal answers once the node is removed.
  node_command(router, svc, "POST", "/admin/v1/nodes/{id}/drain", Kind::kDrain, 202);
  node_command(router, svc, "POST", "/admin/v1/nodes/{id}/undrain", Kind::kUndrain, 202);
  node_command(router, svc, "DELETE", "/admin/v1/nodes/{id}", Kind::kRemove, 200);

  router.add(
      "POST", "/admin/v1/partitions/{p}/leader", Access::kOperator,
      [&svc](const std::shared_ptr<RouteCtx>& ctx) {
        if (svc.cluster == nullptr) return respond_error(ctx, not_clustered());
        auto p = partition_param(ctx);
        if (!p.ok()) return respond_error(ctx, p.status());
        auto body = object_body(ctx, false);
        if (!body.ok()) return respond_error(ctx, body.status());
        const json& b = body.value();
        if (Status s = reject_unknown_fields(b, {"node"}, "the body is {\"node\": ID}"); !s.is_ok())
          return respond_error(ctx, s);
        if (!b.contains("node") || !b["node"].is_string() || b["node"].get<std::string>().empty()) {
          return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "node is required",
                                           {{"/node", "the id of the node to lead it (string)"}}));
        }
        ClusterView::Command cmd;
        cmd.kind = Kind::kMoveLeader;
        cmd.partition = p.value();
        cmd.node = b["node"].get<std::string>();
        run_command(svc, ctx, std::move(cmd), 200);
      });

  router.add("POST", "/admin/v1/partitions/{p}/replicas", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               if (svc.cluster == nullptr) return respond_error(ctx, not_clustered());
               auto p = partition_param(ctx);
               if (!p.ok()) return respond_error(ctx, p.status());
               auto body = object_body(ctx, false);
               if (!body.ok()) return respond_error(ctx, body.status());
               const json& b = body.value();
               if (Status s = reject_unknown_fields(b, {"replicas"},
                                                    "the body is {\"replicas\": [ID, ...]}");
                   !s.is_ok())
                 return respond_error(ctx, s);
               const char* shape = "an array of node ids (strings)";
               if (!b.contains("replicas") || !b["replicas"].is_array()) {
                 return respond_error(ctx, Status(ApiErrc::kInvalidRequest, "replicas is required",
                                                  {{"/replicas", shape}}));
               }
               ClusterView::Command cmd;
               cmd.kind = Kind::kSetReplicas;
               cmd.partition = p.value();
               for (size_t i = 0; i < b["replicas"].size(); ++i) {
                 const json& n = b["replicas"][i];
                 if (!n.is_string() || n.get<std::string>().empty()) {
                   return respond_error(
                       ctx, Status(ApiErrc::kInvalidRequest, "replicas must be node ids",
                                   {{"/replicas/" + std::to_string(i), "must be a node id"}}));
                 }
                 cmd.replicas.push_back(n.get<std::string>());
               }
               run_command(svc, ctx, std::move(cmd), 200);
             });

  router.add("POST", "/admin/v1/rebalance", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               if (svc.cluster == nullptr) return respond_error(ctx, not_clustered());
               auto body = object_body(ctx, true);
               if (!body.ok()) return respond_error(ctx, body.status());
               if (Status s = reject_unknown_fields(body.value(), {}, "the body is {} or empty");
                   !s.is_ok())
                 return respond_error(ctx, s);
               ClusterView::Command cmd;
               cmd.kind = Kind::kRebalance;
               run_command(svc, ctx, std::move(cmd), 202);
             });
}

}  // namespace yantra::api
