// Resource views. Timestamps are RFC 3339 UTC strings with milliseconds;
// event payloads stored as canonical JSON text are inlined as JSON, so a
// client never parses JSON inside JSON.
#include "api/views.hpp"

#include <google/protobuf/util/json_util.h>

#include "api/errc.hpp"
#include "base/time.hpp"
#include "runtime/errc.hpp"
#include "runtime/flow.hpp"

namespace yantra::api {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string iso_time(int64_t unix_ms) {
  return unix_ms <= 0 ? "" : format_rfc3339_ms(unix_ms);
}

namespace {
json or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

// Replaces every "<name>_json": "<text>" member by "<name>": <parsed>.
void inline_json_fields(json& j) {
  if (j.is_array()) {
    for (auto& v : j) inline_json_fields(v);
    return;
  }
  if (!j.is_object()) return;
  json out = json::object();
  for (auto& [k, v] : j.items()) {
    if (k.size() > 5 && k.compare(k.size() - 5, 5, "_json") == 0 && v.is_string()) {
      json parsed = json::parse(v.get<std::string>(), nullptr, false);
      out[k.substr(0, k.size() - 5)] = parsed.is_discarded() ? v : parsed;
    } else {
      inline_json_fields(v);
      out[k] = v;
    }
  }
  j = std::move(out);
}
}  // namespace

json flow_view(const v1::FlowVersion& fv, bool with_definition) {
  json j = {{"id", fv.flow_id()},
            {"version", fv.version()},
            {"created_at", iso_time(fv.created_ms())},
            {"created_by", fv.created_by()},
            {"note", fv.note()}};
  json def = json::parse(fv.definition_json(), nullptr, false);
  if (!def.is_discarded() && def.is_object()) {
    j["name"] = def.value("name", "");
    j["description"] = def.value("description", "");
    j["trigger"] = def.value("trigger", json{{"type", "manual"}});
    if (with_definition) j["definition"] = def;
  }
  return j;
}

json summary_view(const v1::ExecutionSummary& s) {
  return {{"execution_id", s.execution_id()},
          {"flow_id", s.flow_id()},
          {"flow_version", s.flow_version()},
          {"status", s.status()},
          {"created_at", iso_time(s.created_ms())},
          {"updated_at", iso_time(s.updated_ms())},
          {"last_seq", s.last_seq()}};
}

json execution_view(const ExecutionState& st) {
  json steps = json::object();
  for (const auto& [path, s] : st.steps) {
    json step = {{"step_id", s.step_id},
                 {"type", s.kind},
                 {"status", to_string(s.status)},
                 {"attempts", s.attempt},
                 {"input", s.input},
                 {"output", s.output},
                 {"error", s.error},
                 {"started_at", or_null(iso_time(s.first_started_ms))},
                 {"ended_at", or_null(iso_time(s.ended_ms))}};
    if (!s.next.empty()) step["next"] = s.next;
    steps[path] = std::move(step);
  }
  return {
      {"execution_id", st.execution_id},
      {"flow_id", st.flow_id},
      {"flow_version", st.flow_version},
      {"status", st.display_status()},
      {"input", st.input},
      {"output", st.output},
      {"error", st.error},
      {"idempotency_key", or_null(st.idempotency_key)},
      {"created_at", or_null(iso_time(st.created_ms))},
      {"updated_at", or_null(iso_time(st.updated_ms))},
      {"ended_at", or_null(iso_time(st.ended_ms))},
      {"last_seq", st.last_seq},
      {"parent_execution_id", or_null(st.parent_execution_id)},
      {"forked_at_seq", st.parent_execution_id.empty() ? json(nullptr) : json(st.forked_at_seq)},
      {"steps", std::move(steps)}};
}

json event_view(const v1::Event& ev) {
  std::string text;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = false;
  json j = json::object();
  if (google::protobuf::util::MessageToJsonString(ev, &text, opts).ok()) {
    j = json::parse(text, nullptr, false);
    if (j.is_discarded()) j = json::object();
  }
  json out = {{"seq", ev.seq()}, {"time", iso_time(ev.time_ms())}};
  for (auto& [k, v] : j.items()) {
    if (k == "seq" || k == "time_ms") continue;
    out["type"] = k;
    inline_json_fields(v);
    out["data"] = v;
  }
  return out;
}

Result<json> parse_body(const HttpRequest& req) {
  std::string type = req.header("content-type");
  auto semi = type.find(';');
  if (semi != std::string::npos) type.resize(semi);
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type.empty() || type == "application/json") {
    if (req.body.empty())
      return Status(RuntimeErrc::kInvalidJson, "request body is empty (expected JSON)");
    return parse_json_text(req.body);
  }
  if (type == "application/yaml" || type == "application/x-yaml" || type == "text/yaml") {
    return yaml_to_json(req.body);
  }
  return Status(ApiErrc::kUnsupportedMediaType, "unsupported Content-Type '" + type +
                                                    "' (use application/json or application/yaml)");
}

bool wants_yaml(const HttpRequest& req) {
  const std::string& accept = req.header("accept");
  return accept.find("application/yaml") != std::string::npos ||
         accept.find("application/x-yaml") != std::string::npos ||
         accept.find("text/yaml") != std::string::npos;
}

}  // namespace yantra::api
