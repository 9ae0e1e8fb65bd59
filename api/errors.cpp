// Status codes are chosen here and nowhere else: handlers return Status values
// with typed codes, and these switches decide what HTTP says about them. Each
// switch lists every enumerator of its enum and has no default; this file is
// compiled with -Werror=switch in every build (api/CMakeLists.txt), so a new
// code that is not given a status here fails the build, not a request.
#include "api/errors.hpp"

#include <nlohmann/json.hpp>

#include "actors/errc.hpp"
#include "api/errc.hpp"
#include "base/storage_errc.hpp"
#include "cluster/errc.hpp"
#include "cluster/transport_errc.hpp"
#include "runtime/errc.hpp"

namespace yantra::api {
namespace {

int http_status(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return 400;
    case Errc::kNotFound: return 404;
    case Errc::kConflict: return 409;
    case Errc::kAlreadyExists: return 409;
    case Errc::kUnauthorized: return 401;
    case Errc::kForbidden: return 403;
    case Errc::kRateLimited: return 429;
    case Errc::kQuotaExceeded: return 429;
    case Errc::kUnavailable: return 503;
    case Errc::kTimeout: return 504;
    case Errc::kInternalError: return 500;
    case Errc::kIoError: return 500;
    case Errc::kCryptoError: return 500;
    case Errc::kInvalidHex: return 500;
    case Errc::kInvalidBase64: return 500;
    case Errc::kInvalidTime: return 500;
    case Errc::kInvalidConfig: return 500;
  }
  return 500;  // not an enumerator
}

int http_status(RuntimeErrc c) {
  switch (c) {
    case RuntimeErrc::kInvalidFlow: return 400;
    case RuntimeErrc::kInvalidJson: return 400;
    case RuntimeErrc::kInvalidYaml: return 400;
    case RuntimeErrc::kExpressionError: return 500;
    case RuntimeErrc::kInvalidExpression: return 500;
    case RuntimeErrc::kInvalidRef: return 500;
    case RuntimeErrc::kInvalidCron: return 400;
    case RuntimeErrc::kInvalidTimeZone: return 400;
    case RuntimeErrc::kInvalidPatch: return 500;
    case RuntimeErrc::kInvalidPointer: return 500;
    case RuntimeErrc::kInvalidSnapshot: return 500;
    case RuntimeErrc::kInvalidEvent: return 500;
    case RuntimeErrc::kTooManySignals: return 429;
    case RuntimeErrc::kSecretNotFound: return 400;
  }
  return 500;
}

int http_status(StorageErrc c) {
  switch (c) {
    case StorageErrc::kError: return 500;
    case StorageErrc::kCorrupt: return 500;
    case StorageErrc::kReadOnly: return 503;
    case StorageErrc::kNoSpace: return 503;
    case StorageErrc::kDecryptFailed: return 500;
    case StorageErrc::kInvalidMasterKey: return 400;
    case StorageErrc::kMasterKeyMismatch: return 500;
    case StorageErrc::kMasterKeyUnreadable: return 500;
    case StorageErrc::kInsecureMasterKeyFile: return 500;
    // Refusals of a replica to the partition's writer: the state of the
    // segment conflicts with the request (deposed writer, hole, wrong
    // epoch), or its batches are gone for good (covered by a snapshot).
    case StorageErrc::kSegmentSealed: return 409;
    case StorageErrc::kSegmentGap: return 409;
    case StorageErrc::kSegmentWrongEpoch: return 409;
    case StorageErrc::kSegmentTrimmed: return 410;
    // The node's copy of a partition is behind (catching up): try again.
    case StorageErrc::kLogGap: return 503;
  }
  return 500;
}

int http_status(ActorsErrc c) {
  switch (c) {
    case ActorsErrc::kTenantSuspended: return 403;
    case ActorsErrc::kVaultUnavailable: return 503;
    case ActorsErrc::kInvalidSecret: return 500;
    case ActorsErrc::kRunning: return 500;
    // Leadership of the partition is elsewhere or moving: retry.
    case ActorsErrc::kPartitionNotLed: return 503;
    case ActorsErrc::kPermissionDenied: return 403;
    case ActorsErrc::kLeaseExpired: return 409;
  }
  return 500;
}

// etcd unreachable, slow or full: the cluster cannot take the request now
// (503, like the read-only store); the rest is an internal failure.
int http_status(ClusterErrc c) {
  switch (c) {
    case ClusterErrc::kUnavailable: return 503;
    case ClusterErrc::kTimeout: return 503;
    case ClusterErrc::kOutcomeUnknown: return 503;
    case ClusterErrc::kRejected: return 500;
    case ClusterErrc::kProtocolError: return 500;
    case ClusterErrc::kLeaseNotFound: return 500;
    case ClusterErrc::kCompacted: return 500;
    case ClusterErrc::kInvalidEndpoint: return 500;
    case ClusterErrc::kNoSpace: return 503;
    case ClusterErrc::kInvalidRecord: return 500;
    // Creating a cluster that exists with other settings: the caller's conflict.
    case ClusterErrc::kClusterExists: return 409;
    // Leadership moved (or is moving): retry, the request finds the new leader.
    case ClusterErrc::kNotLeader: return 503;
    case ClusterErrc::kFenced: return 503;
    case ClusterErrc::kSegmentConflict: return 503;
  }
  return 500;
}

int http_status(ApiErrc c) {
  switch (c) {
    case ApiErrc::kInvalidRequest: return 400;
    case ApiErrc::kBadRequest: return 400;
    case ApiErrc::kInvalidParameter: return 400;
    case ApiErrc::kMethodNotAllowed: return 405;
    case ApiErrc::kRequestTimeout: return 408;
    case ApiErrc::kPayloadTooLarge: return 413;
    case ApiErrc::kUnsupportedMediaType: return 415;
    case ApiErrc::kHeadersTooLarge: return 431;
    case ApiErrc::kNotReady: return 503;
    case ApiErrc::kInternal: return 500;
    case ApiErrc::kBindFailed: return 500;
    case ApiErrc::kInvalidUrl: return 500;
    case ApiErrc::kConnectFailed: return 500;
    case ApiErrc::kProtocolError: return 500;
  }
  return 500;
}

// The transport's codes reach a client only through a request forwarded to
// another node: "that node is not reachable now" is 503, a timeout 504, and
// misconfiguration of this cluster (keys, versions) is our fault, 500.
int http_status(TransportErrc c) {
  switch (c) {
    case TransportErrc::kInvalidClusterKey: return 500;
    case TransportErrc::kTlsSetupFailed: return 500;
    case TransportErrc::kConnectFailed: return 503;
    case TransportErrc::kIncompatibleVersion: return 500;
    case TransportErrc::kWrongPeer: return 500;
    case TransportErrc::kAuthenticationFailed: return 500;
    case TransportErrc::kPeerUnavailable: return 503;
    case TransportErrc::kBackpressure: return 503;
    case TransportErrc::kRequestTimeout: return 504;
    case TransportErrc::kUnknownService: return 500;
    case TransportErrc::kRemoteError: return 500;
    case TransportErrc::kListenFailed: return 500;
  }
  return 500;
}

}  // namespace

int http_status_for(const Status& status) {
  switch (status.domain()) {
    case ErrorDomain::kOk: return 500;  // an error response without an error is our bug
    case ErrorDomain::kBase: return http_status(status.code_as<Errc>());
    case ErrorDomain::kRuntime: return http_status(status.code_as<RuntimeErrc>());
    case ErrorDomain::kStorage: return http_status(status.code_as<StorageErrc>());
    case ErrorDomain::kActors: return http_status(status.code_as<ActorsErrc>());
    case ErrorDomain::kApi: return http_status(status.code_as<ApiErrc>());
    case ErrorDomain::kCluster: return http_status(status.code_as<ClusterErrc>());
    case ErrorDomain::kTransport: return http_status(status.code_as<TransportErrc>());
  }
  return 500;
}

HttpResponse json_response(int status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.body = body;
  return r;
}

HttpResponse error_response(const Status& status) {
  nlohmann::json details = nlohmann::json::array();
  for (const auto& p : status.details())
    details.push_back({{"path", p.path}, {"message", p.message}});
  const int http = http_status_for(status);
  // Internal failures keep their code but not their text: it may name files
  // or internals that are none of the client's business. ApiErrc::kInternal
  // is the exception: the server writes its text for the client (what went
  // wrong with the handler, or the request id to quote).
  const std::string message = http == 500 && !status.is(ApiErrc::kInternal)
                                  ? "internal error (" + status.code() + ")"
                                  : status.message();
  nlohmann::json j = {
      {"error", {{"code", status.code()}, {"message", message}, {"details", details}}}};
  HttpResponse r =
      json_response(http, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  r.error_code = status.code();
  if (status.retry_after_ms() > 0) {
    // Whole seconds, rounded up: "0" would invite an immediate retry.
    r.headers.emplace_back("Retry-After", std::to_string((status.retry_after_ms() + 999) / 1000));
  } else if (status.is(ActorsErrc::kPartitionNotLed)) {
    // A partition's leadership settles within seconds: retry, the request
    // then finds the new leader.
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

}  // namespace yantra::api
