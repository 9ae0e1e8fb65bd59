// Operator routes of the cluster (/admin/v1/cluster): the picture of nodes
// and partitions a node has (ClusterView, api/cluster_view.hpp). A single
// node answers 404 "not_found" saying it is not part of a cluster, so a
// script can tell that from a wrong URL. Query parameters: none (the
// OpenAPI document declares the route's, so any is refused with 400).
#include "api/services.hpp"

namespace yantra::api {

void register_cluster_routes(Router& router, Services& svc) {
  router.add("GET", "/admin/v1/cluster", Access::kOperator,
             [&svc](const std::shared_ptr<RouteCtx>& ctx) {
               if (svc.cluster == nullptr) {
                 return respond_error(
                     ctx, Status(Errc::kNotFound,
                                 "this node is not part of a cluster (started without --etcd)"));
               }
               respond_json(ctx, 200, svc.cluster->describe());
             });
}

}  // namespace yantra::api
