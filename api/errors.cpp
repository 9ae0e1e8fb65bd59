// Status codes are chosen here and nowhere else: handlers return Status values
// with stable codes, and this table decides what HTTP says about them.
#include "api/errors.hpp"

#include <unordered_map>

#include <nlohmann/json.hpp>

namespace yantra::api {

int http_status_for(const std::string& code) {
  static const std::unordered_map<std::string, int> kTable = {
      {"bad_request", 400},       {"invalid_request", 400},    {"invalid_flow", 400},
      {"invalid_json", 400},      {"invalid_yaml", 400},       {"invalid_argument", 400},
      {"invalid_input", 400},     {"invalid_parameter", 400},  {"unauthorized", 401},
      {"forbidden", 403},         {"not_found", 404},          {"method_not_allowed", 405},
      {"not_acceptable", 406},    {"request_timeout", 408},    {"conflict", 409},
      {"already_exists", 409},    {"payload_too_large", 413},  {"unsupported_media_type", 415},
      {"headers_too_large", 431}, {"rate_limited", 429},       {"not_ready", 503},
      {"unavailable", 503},       {"store_read_only", 503},    {"timeout", 504},
      {"tenant_suspended", 403},  {"quota_exceeded", 429},     {"too_many_signals", 429},
      {"vault_unavailable", 503}, {"invalid_master_key", 400}, {"invalid_cron", 400},
      {"invalid_time_zone", 400}, {"secret_not_found", 400},   {"store_no_space", 503},
  };
  auto it = kTable.find(code);
  return it == kTable.end() ? 500 : it->second;
}

HttpResponse json_response(int status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.body = body;
  return r;
}

HttpResponse error_response(int status, const std::string& code, const std::string& message) {
  nlohmann::json j = {
      {"error", {{"code", code}, {"message", message}, {"details", nlohmann::json::array()}}}};
  HttpResponse r =
      json_response(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  r.error_code = code;
  return r;
}

HttpResponse error_response(const Status& status) {
  nlohmann::json details = nlohmann::json::array();
  for (const auto& p : status.details())
    details.push_back({{"path", p.path}, {"message", p.message}});
  const int http = http_status_for(status.code());
  // Internal failures keep their code but not their text: it may name files
  // or internals that are none of the client's business.
  const std::string message =
      http == 500 ? "internal error (" + status.code() + ")" : status.message();
  nlohmann::json j = {
      {"error", {{"code", status.code()}, {"message", message}, {"details", details}}}};
  HttpResponse r =
      json_response(http, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  r.error_code = status.code();
  if (status.retry_after_ms() > 0) {
    // Whole seconds, rounded up: "0" would invite an immediate retry.
    r.headers.emplace_back("Retry-After", std::to_string((status.retry_after_ms() + 999) / 1000));
  }
  return r;
}

}  // namespace yantra::api
