// Each command is a function of (Session, its flags) returning an exit code.
// Session owns the one policy all commands share: how a request is sent (key,
// content types, the client timeout), how a failure is reported (stderr) and
// which exit code it becomes. Commands only decide what to request and how to
// print the answer.
//
// Why the CLI reads YAML itself (through runtime/): `flows apply` sends the
// file as written, in its own Content-Type, so the server's error pointers
// refer to the user's file; only when the POST says 409 (the flow exists)
// does the CLI need the id from the document to PUT a new version, and
// runtime's yaml_to_json is the same reading of YAML the server uses.
#include "cli/client.hpp"

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/encoding.hpp"
#include "base/time.hpp"
#include "base/utf8.hpp"
#include "cli/http_client.hpp"
#include "runtime/flow.hpp"

namespace yantra::cli {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";
constexpr std::chrono::milliseconds kClientTimeout = 30s;
constexpr uint32_t kMaxServerWaitMs = 60000;  // the API's cap on ?wait_ms
constexpr uint64_t kMaxSeq = UINT64_MAX / 2;  // the API's bound on seq parameters

// ---- output helpers ---------------------------------------------------------

// Columns separated by two spaces and padded to the widest cell; the last
// column is not padded so lines carry no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> header = {}) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }

  void print(std::ostream& out) const {
    std::vector<size_t> width;
    auto measure = [&](const std::vector<std::string>& row) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
    };
    if (!header_.empty()) measure(header_);
    for (const auto& r : rows_) measure(r);
    auto line = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size(); ++i) {
        out << row[i];
        if (i + 1 < row.size()) out << std::string(width[i] - display_width(row[i]) + 2, ' ');
      }
      out << '\n';
    };
    if (!header_.empty()) line(header_);
    for (const auto& r : rows_) line(r);
  }

 private:
  // Code points, not bytes, so names in other scripts still line up.
  static size_t display_width(const std::string& s) { return utf8::count_code_points(s); }
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

// A JSON value as a table cell: strings bare, null as "-", the rest compact.
std::string cell(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>().empty() ? "-" : j.get<std::string>();
  return dump(j);
}

std::string cell(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key)) return "-";
  return cell(obj[key]);
}

std::string truncate(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return std::string(utf8::truncate(s, max)) + "...";
}

// Appends "name=value" to a query string being built ("" or "?a=1").
void add_query(std::string& target, const std::string& name, const std::string& value) {
  target +=
      (target.find('?') == std::string::npos ? "?" : "&") + name + "=" + percent_encode(value);
}

bool is_terminal_status(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled" ||
         status == "timed_out";
}

// ---- the shared request policy --------------------------------------------------

struct CommonFlags {
  std::string url;
  std::string key;
  bool json = false;
};

class Session {
 public:
  Session(HttpClient client, std::string key, bool json_output)
      : client_(std::move(client)), key_(std::move(key)), json_(json_output) {}

  bool json_output() const { return json_; }

  struct Call {
    Call(std::string m, std::string t, std::string b = "")
        : method(std::move(m)), target(std::move(t)), body(std::move(b)) {}
    std::string method;
    std::string target;
    std::string body;
    std::string content_type = "application/json";
    std::string accept = "application/json";
    Headers headers;
    std::chrono::milliseconds extra_wait{0};
    // Error statuses the command handles itself (no message, no failure).
    std::vector<int> expected_errors;
  };

  // The reply, or nullopt after printing why the request failed; exit_code()
  // then says how the command should exit.
  std::optional<HttpReply> send(const Call& call) {
    Headers headers = call.headers;
    if (!key_.empty()) headers.emplace_back("Authorization", "Bearer " + key_);
    if (!call.body.empty()) headers.emplace_back("Content-Type", call.content_type);
    headers.emplace_back("Accept", call.accept);
    auto reply = client_.request(call.method, call.target, headers, call.body, call.extra_wait);
    if (!reply.ok()) {
      std::cerr << "error: " << reply.status().code() << ": " << reply.status().message() << "\n";
      exit_code_ = kExitUnreachable;
      return std::nullopt;
    }
    const int status = reply.value().status;
    if (status >= 400 && std::find(call.expected_errors.begin(), call.expected_errors.end(),
                                   status) == call.expected_errors.end()) {
      print_api_error(reply.value());
      exit_code_ = kExitServerError;
      return std::nullopt;
    }
    return std::move(reply).value();
  }

  // send() for routes answering JSON; a reply that is not JSON is a server
  // error (exit 1), reported here.
  std::optional<json> send_json(const Call& call, HttpReply* raw = nullptr) {
    auto reply = send(call);
    if (!reply) return std::nullopt;
    json j = reply->body.empty() ? json::object() : json::parse(reply->body, nullptr, false);
    if (j.is_discarded()) {
      std::cerr << "error: bad_response: the server's answer is not JSON: "
                << truncate(reply->body, 200) << "\n";
      exit_code_ = kExitServerError;
      return std::nullopt;
    }
    if (raw != nullptr) *raw = std::move(*reply);
    return j;
  }

  int exit_code() const { return exit_code_; }

  static void print_api_error(const HttpReply& reply) {
    json j = json::parse(reply.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const json& e = j["error"];
      std::cerr << "error: " << e.value("code", "http_" + std::to_string(reply.status)) << ": "
                << e.value("message", std::string()) << "\n";
      if (e.contains("details") && e["details"].is_array()) {
        for (const auto& d : e["details"]) {
          if (!d.is_object()) continue;
          std::string path = d.value("path", std::string());
          std::cerr << "  " << (path.empty() ? "(document)" : path) << ": "
                    << d.value("message", std::string()) << "\n";
        }
      }
      return;
    }
    std::cerr << "error: http_" << reply.status << ": " << truncate(reply.body, 500) << "\n";
  }

 private:
  HttpClient client_;
  std::string key_;
  bool json_;
  int exit_code_ = kExitOk;
};

// Prints the body the server sent (used by --json): unchanged, one newline.
void print_raw(const HttpReply& reply) {
  std::cout << reply.body;
  if (reply.body.empty() || reply.body.back() != '\n') std::cout << '\n';
}

// ---- flags of each command ----------------------------------------------------

struct FlowsApply {
  std::string file;
  std::string note;
};
struct FlowsGet {
  std::string id;
  bool yaml = false;
  uint32_t version = 0;
};
struct RunFlags {
  std::string flow;
  std::string input;
  std::string idempotency_key;
  bool wait = false;
  std::optional<uint32_t> wait_ms;
};
struct ExecList {
  std::string flow;
  std::string status;
  std::optional<uint32_t> limit;
  std::string cursor;
};
struct ExecEvents {
  std::string id;
  std::optional<uint64_t> after_seq;
  std::optional<uint32_t> limit;
};
struct ExecState {
  std::string id;
  std::optional<uint64_t> at_seq;
};
struct ExecDiff {
  std::string id;
  uint64_t from_seq = 0;
  uint64_t to_seq = 0;
};
struct ExecReplay {
  std::string id;
  uint64_t from_seq = 0;
  std::string patch_file;
};
struct FlowsRollback {
  std::string id;
  uint32_t version = 0;
};

// ---- commands -------------------------------------------------------------

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

bool looks_like_yaml(const std::string& path, const std::string& text) {
  auto ends_with = [&](const char* ext) {
    const std::string e = ext;
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends_with(".yaml") || ends_with(".yml")) return true;
  if (ends_with(".json")) return false;
  // Neither extension: JSON documents start with '{' (or '[').
  auto first = text.find_first_not_of(" \t\r\n");
  return first == std::string::npos || (text[first] != '{' && text[first] != '[');
}

int flows_apply(Session& s, const FlowsApply& f) {
  std::string text;
  if (!read_file(f.file, &text)) {
    std::cerr << "error: cannot read '" << f.file << "'\n";
    return kExitUsage;
  }
  const bool yaml = looks_like_yaml(f.file, text);
  Session::Call post("POST", "/api/v1/flows", text);
  post.content_type = yaml ? "application/yaml" : "application/json";
  if (!f.note.empty()) post.headers.emplace_back("X-Change-Note", f.note);
  post.expected_errors = {409};
  HttpReply raw;
  auto created = s.send_json(post, &raw);
  if (!created) return s.exit_code();
  bool updated = false;
  if (raw.status == 409) {
    // The flow exists: store the file as its next version.
    auto doc = yaml ? yaml_to_json(text) : parse_json_text(text);
    if (!doc.ok() || !doc.value().is_object() || !doc.value().contains("id") ||
        !doc.value()["id"].is_string()) {
      std::cerr << "error: conflict: the server says the flow exists, but its id cannot be read "
                   "from '"
                << f.file << "'\n";
      return kExitServerError;
    }
    Session::Call put = post;
    put.method = "PUT";
    put.target = "/api/v1/flows/" + percent_encode(doc.value()["id"].get<std::string>());
    put.expected_errors.clear();
    created = s.send_json(put, &raw);
    if (!created) return s.exit_code();
    updated = true;
  }
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  std::cout << "flow " << cell(*created, "id") << " version " << cell(*created, "version") << " "
            << (updated ? "updated" : "created") << "\n";
  return kExitOk;
}

int flows_list(Session& s) {
  HttpReply raw;
  auto list = s.send_json(Session::Call("GET", "/api/v1/flows"), &raw);
  if (!list) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t({"ID", "VERSION", "NAME", "CREATED_AT", "CREATED_BY"});
  for (const auto& f : list->value("flows", json::array())) {
    t.add({cell(f, "id"), cell(f, "version"), cell(f, "name"), cell(f, "created_at"),
           cell(f, "created_by")});
  }
  if (t.empty()) {
    std::cout << "no flows\n";
  } else {
    t.print(std::cout);
  }
  return kExitOk;
}

// `yantra tools list`: one row per action, so that what a flow can call
// (and whether this key's tenant and role may) is visible at a glance.
int tools_list(Session& s) {
  HttpReply raw;
  auto list = s.send_json(Session::Call("GET", "/api/v1/tools"), &raw);
  if (!list) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t({"TOOL", "ACTION", "VERSION", "SCOPE", "SIDE_EFFECTS", "ALLOWED"});
  for (const auto& tool : list->value("tools", json::array())) {
    for (const auto& a : tool.value("actions", json::array())) {
      t.add({cell(tool, "id"), cell(a, "name"), cell(tool, "version"), cell(tool, "scope"),
             cell(a, "side_effects"), cell(a, "allowed")});
    }
  }
  if (t.empty()) {
    std::cout << "no tools\n";
  } else {
    t.print(std::cout);
  }
  return kExitOk;
}

// `yantra tools get ID`: the tool, then each action with its schemas.
int tools_get(Session& s, const std::string& id) {
  HttpReply raw;
  auto tool = s.send_json(Session::Call("GET", "/api/v1/tools/" + percent_encode(id)), &raw);
  if (!tool) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t;
  for (const char* key : {"id", "version", "description", "kind", "scope"}) {
    t.add({std::string(key), cell(*tool, key)});
  }
  t.print(std::cout);
  for (const auto& a : tool->value("actions", json::array())) {
    std::cout << "\naction " << cell(a, "name") << " (permission " << cell(a, "permission")
              << ", side_effects " << cell(a, "side_effects") << ", idempotent "
              << cell(a, "idempotent") << ", allowed " << cell(a, "allowed") << ")\n";
    if (!a.value("description", "").empty()) std::cout << "  " << cell(a, "description") << "\n";
    std::cout << "input_schema:\n"
              << dump(a.value("input_schema", json::object()), 2) << "\noutput_schema:\n"
              << dump(a.value("output_schema", json::object()), 2) << "\n";
  }
  return kExitOk;
}

// `yantra workers list`: the tenant's registered tool workers, what they
// serve, and when they last polled this node.
int workers_list(Session& s) {
  HttpReply raw;
  auto list = s.send_json(Session::Call("GET", "/api/v1/workers"), &raw);
  if (!list) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t({"ID", "TOOLS", "LAST_POLL_AT", "POLLING", "IN_FLIGHT"});
  for (const auto& w : list->value("workers", json::array())) {
    std::string tools;
    for (const auto& id : w.value("tool_ids", json::array())) {
      tools += (tools.empty() ? "" : ",") + id.get<std::string>();
    }
    t.add(
        {cell(w, "id"), tools, cell(w, "last_poll_at"), cell(w, "polling"), cell(w, "in_flight")});
  }
  if (t.empty()) {
    std::cout << "no workers\n";
  } else {
    t.print(std::cout);
  }
  return kExitOk;
}

// `yantra workers get ID`: the worker, its tools and the tasks it holds.
int workers_get(Session& s, const std::string& id) {
  HttpReply raw;
  auto w = s.send_json(Session::Call("GET", "/api/v1/workers/" + percent_encode(id)), &raw);
  if (!w) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t;
  for (const char* key : {"id", "last_poll_at", "polling", "in_flight"}) {
    t.add({std::string(key), cell(*w, key)});
  }
  t.print(std::cout);
  for (const auto& tool : w->value("tools", json::array())) {
    std::cout << "\ntool " << cell(tool, "id");
    std::string actions;
    for (const auto& a : tool.value("actions", json::array())) {
      actions += (actions.empty() ? "" : ", ") + a.value("name", std::string());
    }
    std::cout << ": " << actions << "\n";
  }
  Table tasks({"TASK", "TOOL", "ACTION", "ATTEMPT", "EXECUTION", "STEP"});
  for (const auto& k : w->value("in_flight_tasks", json::array())) {
    tasks.add({cell(k, "task_id"), cell(k, "tool_id"), cell(k, "action"), cell(k, "attempt"),
               cell(k, "execution_id"), cell(k, "step")});
  }
  if (!tasks.empty()) {
    std::cout << "\n";
    tasks.print(std::cout);
  }
  return kExitOk;
}

// `yantra workers delete ID`: deregisters it (its tools go once no other
// worker serves them).
int workers_delete(Session& s, const std::string& id) {
  auto reply = s.send(Session::Call("DELETE", "/api/v1/workers/" + percent_encode(id)));
  if (!reply) return s.exit_code();
  if (s.json_output()) {
    std::cout << dump(json{{"id", id}, {"deleted", true}}) << "\n";
  } else {
    std::cout << "worker " << id << " deleted\n";
  }
  return kExitOk;
}

// `yantra tools usage ID [--from T] [--to T]`: calls, failures and mean
// duration per action.
int tools_usage(Session& s, const std::string& id, const std::string& from, const std::string& to) {
  std::string target = "/api/v1/tools/" + percent_encode(id) + "/usage";
  if (!from.empty()) add_query(target, "from", from);
  if (!to.empty()) add_query(target, "to", to);
  HttpReply raw;
  auto usage = s.send_json(Session::Call("GET", target), &raw);
  if (!usage) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  std::cout << "tool " << cell(*usage, "tool_id") << " from " << cell(*usage, "from") << " to "
            << cell(*usage, "to") << ": " << cell(*usage, "calls") << " calls, "
            << cell(*usage, "failures") << " failed\n";
  Table t({"ACTION", "CALLS", "FAILURES", "MEAN_SECONDS"});
  for (const auto& [name, a] : usage->value("actions", json::object()).items()) {
    const json d = a.value("duration_seconds", json::object());
    const double n = d.value("count", 0.0);
    t.add({name, cell(a, "calls"), cell(a, "failures"),
           n > 0 ? json(d.value("sum", 0.0) / n).dump() : std::string("-")});
  }
  if (!t.empty()) t.print(std::cout);
  return kExitOk;
}

int flows_get(Session& s, const FlowsGet& f) {
  std::string target = "/api/v1/flows/" + percent_encode(f.id);
  if (f.version > 0) add_query(target, "version", std::to_string(f.version));
  if (f.yaml) {
    Session::Call call("GET", target);
    call.accept = "application/yaml";
    auto reply = s.send(call);
    if (!reply) return s.exit_code();
    print_raw(*reply);
    return kExitOk;
  }
  HttpReply raw;
  auto flow = s.send_json(Session::Call("GET", target), &raw);
  if (!flow) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t;
  for (const char* key :
       {"id", "version", "name", "description", "created_at", "created_by", "note"}) {
    t.add({std::string(key), cell(*flow, key)});
  }
  t.print(std::cout);
  std::cout << "definition:\n" << dump(flow->value("definition", json()), 2) << "\n";
  return kExitOk;
}

int flows_delete(Session& s, const std::string& id) {
  auto reply = s.send(Session::Call("DELETE", "/api/v1/flows/" + percent_encode(id)));
  if (!reply) return s.exit_code();
  if (s.json_output()) {
    // 204 has no body; say what happened in the document scripts expect.
    std::cout << dump(json{{"id", id}, {"deleted", true}}) << "\n";
  } else {
    std::cout << "flow " << id << " deleted\n";
  }
  return kExitOk;
}

// Prints a finished or running execution (a RunFinished or Execution
// document) and returns the exit code its status implies.
int report_run(Session& s, const HttpReply& raw, const json& doc) {
  const std::string status = doc.value("status", std::string());
  if (s.json_output()) {
    print_raw(raw);
  } else {
    Table t;
    t.add({"execution", cell(doc, "execution_id")});
    t.add({"status", status});
    t.print(std::cout);
    if (status == "completed") {
      std::cout << "output:\n" << dump(doc.value("output", json()), 2) << "\n";
    }
  }
  if (!is_terminal_status(status) || status == "completed") return kExitOk;
  const json err = doc.value("error", json());
  std::cerr << "error: execution " << cell(doc, "execution_id") << " " << status;
  if (err.is_object()) {
    std::cerr << ": " << cell(err, "code") << ": " << cell(err, "message");
  } else if (!err.is_null()) {
    std::cerr << ": " << dump(err);
  }
  std::cerr << "\n";
  return kExitServerError;
}

int run_flow(Session& s, const RunFlags& f) {
  json body = json::object();
  if (!f.input.empty()) {
    std::string text = f.input;
    if (text.front() == '@') {
      if (!read_file(text.substr(1), &text)) {
        std::cerr << "error: cannot read '" << f.input.substr(1) << "'\n";
        return kExitUsage;
      }
    }
    json input = json::parse(text, nullptr, false);
    if (input.is_discarded()) {
      std::cerr << "error: --input is not valid JSON\n";
      return kExitUsage;
    }
    body["input"] = std::move(input);
  }
  const uint32_t wait_ms = f.wait_ms ? *f.wait_ms : (f.wait ? kMaxServerWaitMs : 0);
  std::string target = "/api/v1/flows/" + percent_encode(f.flow) + "/run";
  if (wait_ms > 0) add_query(target, "wait_ms", std::to_string(wait_ms));
  Session::Call call("POST", target, dump(body));
  call.extra_wait = std::chrono::milliseconds(wait_ms);
  if (!f.idempotency_key.empty()) call.headers.emplace_back("Idempotency-Key", f.idempotency_key);
  HttpReply raw;
  auto started = s.send_json(call, &raw);
  if (!started) return s.exit_code();
  if (raw.status == 200) return report_run(s, raw, *started);  // finished within wait_ms
  const std::string id = started->value("execution_id", std::string());
  if (!f.wait || id.empty()) {
    if (s.json_output()) {
      print_raw(raw);
    } else {
      std::cout << "execution " << id << " started (" << cell(*started, "status") << ")\n";
    }
    return kExitOk;
  }
  // Still running after the server's longest wait: poll, backing off to 1 s.
  auto delay = 100ms;
  while (true) {
    auto doc = s.send_json(Session::Call("GET", "/api/v1/executions/" + percent_encode(id)), &raw);
    if (!doc) return s.exit_code();
    if (is_terminal_status(doc->value("status", std::string()))) return report_run(s, raw, *doc);
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 1s);
  }
}

int executions_list(Session& s, const ExecList& f) {
  std::string target = "/api/v1/executions";
  if (!f.flow.empty()) add_query(target, "flow_id", f.flow);
  if (!f.status.empty()) add_query(target, "status", f.status);
  if (f.limit) add_query(target, "limit", std::to_string(*f.limit));
  if (!f.cursor.empty()) add_query(target, "cursor", f.cursor);
  HttpReply raw;
  auto page = s.send_json(Session::Call("GET", target), &raw);
  if (!page) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t({"EXECUTION_ID", "FLOW", "VERSION", "STATUS", "CREATED_AT", "UPDATED_AT"});
  for (const auto& e : page->value("executions", json::array())) {
    t.add({cell(e, "execution_id"), cell(e, "flow_id"), cell(e, "flow_version"), cell(e, "status"),
           cell(e, "created_at"), cell(e, "updated_at")});
  }
  if (t.empty()) {
    std::cout << "no executions\n";
  } else {
    t.print(std::cout);
  }
  const json next = page->value("next_cursor", json());
  if (next.is_string()) std::cout << "more: --cursor " << next.get<std::string>() << "\n";
  return kExitOk;
}

int executions_get(Session& s, const std::string& id) {
  HttpReply raw;
  auto ex = s.send_json(Session::Call("GET", "/api/v1/executions/" + percent_encode(id)), &raw);
  if (!ex) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t;
  t.add({"execution", cell(*ex, "execution_id")});
  t.add({"flow", cell(*ex, "flow_id") + " (version " + cell(*ex, "flow_version") + ")"});
  t.add({"status", cell(*ex, "status")});
  for (const char* key : {"created_at", "updated_at", "ended_at", "idempotency_key"}) {
    t.add({std::string(key), cell(*ex, key)});
  }
  t.add({"input", cell(*ex, "input")});
  t.add({"output", cell(*ex, "output")});
  if (!ex->value("error", json()).is_null()) t.add({"error", cell(*ex, "error")});
  t.print(std::cout);
  const json steps = ex->value("steps", json::object());
  if (steps.is_object() && !steps.empty()) {
    std::cout << "\n";
    Table st({"STEP", "TYPE", "STATUS", "ATTEMPTS", "STARTED_AT", "ENDED_AT"});
    for (const auto& [path, step] : steps.items()) {
      st.add({path, cell(step, "type"), cell(step, "status"), cell(step, "attempts"),
              cell(step, "started_at"), cell(step, "ended_at")});
    }
    st.print(std::cout);
  }
  return kExitOk;
}

int executions_events(Session& s, const ExecEvents& f) {
  // Without --after-seq/--limit, read every page: a history is short enough
  // to print whole, and a partial one would be misleading.
  const bool all_pages = !f.after_seq && !f.limit;
  uint64_t after = f.after_seq.value_or(0);
  json events = json::array();
  json next_after = nullptr;
  HttpReply raw;
  while (true) {
    std::string target = "/api/v1/executions/" + percent_encode(f.id) + "/events";
    if (after > 0) add_query(target, "after_seq", std::to_string(after));
    add_query(target, "limit", std::to_string(f.limit.value_or(1000)));
    auto page = s.send_json(Session::Call("GET", target), &raw);
    if (!page) return s.exit_code();
    for (auto& e : page->value("events", json::array())) events.push_back(std::move(e));
    next_after = page->value("next_after_seq", json());
    if (!all_pages || !next_after.is_number_unsigned()) break;
    const uint64_t n = next_after.get<uint64_t>();
    if (n <= after) break;  // a server bug must not loop forever
    after = n;
  }
  if (s.json_output()) {
    std::cout << dump(json{{"events", events}, {"next_after_seq", next_after}}) << "\n";
    return kExitOk;
  }
  Table t({"SEQ", "TIME", "TYPE", "DATA"});
  for (const auto& e : events) {
    t.add({cell(e, "seq"), cell(e, "time"), cell(e, "type"), truncate(cell(e, "data"), 120)});
  }
  t.print(std::cout);
  if (next_after.is_number()) std::cout << "more: --after-seq " << dump(next_after) << "\n";
  return kExitOk;
}

int executions_cancel(Session& s, const std::string& id, const std::string& reason) {
  Session::Call call("POST", "/api/v1/executions/" + percent_encode(id) + "/cancel");
  if (!reason.empty()) call.body = dump(json{{"reason", reason}});
  HttpReply raw;
  auto res = s.send_json(call, &raw);
  if (!res) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
  } else {
    std::cout << "execution " << cell(*res, "execution_id") << " " << cell(*res, "status") << "\n";
  }
  return kExitOk;
}

// ---- time machine and flow history ---------------------------------------------

// Milliseconds since the epoch as UTC ISO 8601 ("-" for 0 or null), the
// format the API uses for times, so both kinds of columns read alike.
std::string iso_ms(const json& ms) {
  if (!ms.is_number_integer()) return "-";
  const int64_t v = ms.get<int64_t>();
  if (v <= 0) return "-";
  return format_rfc3339_ms(v);
}

std::string execution_target(const std::string& id, const std::string& rest = "") {
  return "/api/v1/executions/" + percent_encode(id) + rest;
}

// What a step produced, in one cell: its output when it completed, else its
// error ("code: message"), else nothing.
std::string step_result(const json& step) {
  const json err = step.value("error", json());
  if (step.value("status", std::string()) != "completed" && err.is_object()) {
    return truncate(cell(err, "code") + ": " + cell(err, "message"), 80);
  }
  const json out = step.value("output", json());
  return out.is_null() ? "-" : truncate(dump(out), 80);
}

int executions_state(Session& s, const ExecState& f) {
  std::string target = execution_target(f.id, "/state");
  if (f.at_seq) add_query(target, "at_seq", std::to_string(*f.at_seq));
  HttpReply raw;
  auto st = s.send_json(Session::Call("GET", target), &raw);
  if (!st) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t;
  t.add({"execution", cell(*st, "execution_id")});
  t.add({"at_seq", cell(*st, "at_seq")});
  t.add({"status", cell(*st, "status")});
  if (!st->value("output", json()).is_null()) t.add({"output", truncate(cell(*st, "output"), 120)});
  if (!st->value("error", json()).is_null()) t.add({"error", truncate(cell(*st, "error"), 120)});
  const json running = st->value("running_steps", json::array());
  if (running.is_array() && !running.empty()) {
    std::string names;
    for (const auto& r : running) names += (names.empty() ? "" : ", ") + cell(r);
    t.add({"running", names});
  }
  for (const auto& w : st->value("waiting_for", json::array())) {
    t.add({"waiting", cell(w, "timer") + " until " + cell(w, "due_at")});
  }
  t.print(std::cout);
  const json steps = st->value("steps", json::object());
  if (steps.is_object() && !steps.empty()) {
    std::cout << "\n";
    Table rows({"STEP", "TYPE", "STATUS", "ATTEMPTS", "RESULT"});
    for (const auto& [path, step] : steps.items()) {
      rows.add({path, cell(step, "type"), cell(step, "status"), cell(step, "attempts"),
                step_result(step)});
    }
    rows.print(std::cout);
  }
  return kExitOk;
}

int executions_timeline(Session& s, const std::string& id) {
  HttpReply raw;
  auto tl = s.send_json(Session::Call("GET", execution_target(id, "/timeline")), &raw);
  if (!tl) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table head;
  head.add({"execution", cell(*tl, "execution_id")});
  head.add({"status", cell(*tl, "status")});
  if (cell(*tl, "parent_execution_id") != "-") {
    head.add({"forked from",
              cell(*tl, "parent_execution_id") + " at seq " + cell(*tl, "forked_at_seq")});
  }
  head.print(std::cout);
  // One row per attempt; a step that never had one (overridden before it
  // started, or not an attempt-based step) still gets a row of its own.
  Table t({"STEP", "TYPE", "ATTEMPT", "OUTCOME", "STARTED_AT", "DURATION_MS", "SEQS"});
  for (const auto& step : tl->value("steps", json::array())) {
    const std::string path = cell(step, "path");
    const std::string type = cell(step, "type");
    const json attempts = step.value("attempts", json::array());
    if (!attempts.is_array() || attempts.empty()) {
      t.add({path, type, "-", cell(step, "status"), "-", "-",
             cell(step, "first_seq") + ".." + cell(step, "last_seq")});
      continue;
    }
    for (const auto& a : attempts) {
      t.add({path, type, cell(a, "attempt"), cell(a, "outcome"),
             iso_ms(a.value("started_at_ms", json())), cell(a, "duration_ms"),
             cell(a, "first_seq") + ".." + cell(a, "last_seq")});
    }
  }
  if (!t.empty()) {
    std::cout << "\n";
    t.print(std::cout);
  }
  for (const auto& o : tl->value("overrides", json::array())) {
    std::cout << "override at seq " << cell(o, "seq") << ": "
              << truncate(dump(o.value("patch", json())), 120) << "\n";
  }
  for (const auto& r : tl->value("resumes", json::array())) {
    std::cout << "resumed at seq " << cell(r, "seq") << ": " << dump(r.value("steps", json()))
              << "\n";
  }
  if (tl->contains("error")) std::cout << "timeline stops early: " << cell(*tl, "error") << "\n";
  return kExitOk;
}

int executions_diff(Session& s, const ExecDiff& f) {
  std::string target = execution_target(f.id, "/diff");
  add_query(target, "from_seq", std::to_string(f.from_seq));
  add_query(target, "to_seq", std::to_string(f.to_seq));
  HttpReply raw;
  auto d = s.send_json(Session::Call("GET", target), &raw);
  if (!d) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  const json patch = d->value("patch", json::array());
  if (!patch.is_array() || patch.empty()) {
    std::cout << "no changes between seq " << f.from_seq << " and seq " << f.to_seq << "\n";
    return kExitOk;
  }
  Table t({"OP", "PATH", "VALUE"});
  for (const auto& op : patch) {
    std::string value = "-";
    if (op.contains("value")) value = truncate(dump(op["value"]), 100);
    if (op.contains("from")) value = "from " + cell(op, "from");
    t.add({cell(op, "op"), op.value("path", std::string()).empty() ? "(root)" : cell(op, "path"),
           value});
  }
  t.print(std::cout);
  return kExitOk;
}

int executions_replay(Session& s, const ExecReplay& f) {
  json body = {{"from_seq", f.from_seq}};
  if (!f.patch_file.empty()) {
    std::string text;
    if (!read_file(f.patch_file, &text)) {
      std::cerr << "error: cannot read '" << f.patch_file << "'\n";
      return kExitUsage;
    }
    auto patch = looks_like_yaml(f.patch_file, text) ? yaml_to_json(text) : parse_json_text(text);
    if (!patch.ok()) {
      std::cerr << "error: " << patch.status().code() << ": " << f.patch_file << ": "
                << patch.status().message() << "\n";
      return kExitUsage;
    }
    // The shape ({"input", "steps"}) is the server's to check: its answer
    // names every problem with a pointer into the patch.
    body["patch"] = std::move(patch.value());
  }
  HttpReply raw;
  auto res =
      s.send_json(Session::Call("POST", execution_target(f.id, "/replay"), dump(body)), &raw);
  if (!res) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
  } else {
    // Only the id, so that scripts can capture it: NEW=$(yantra executions replay ...).
    std::cout << cell(*res, "execution_id") << "\n";
  }
  return kExitOk;
}

int executions_retry(Session& s, const std::string& id) {
  HttpReply raw;
  auto res = s.send_json(Session::Call("POST", execution_target(id, "/retry")), &raw);
  if (!res) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
  } else {
    std::cout << "execution " << cell(*res, "execution_id") << " retried (" << cell(*res, "status")
              << ")\n";
  }
  return kExitOk;
}

int flows_versions(Session& s, const std::string& id) {
  HttpReply raw;
  auto res =
      s.send_json(Session::Call("GET", "/api/v1/flows/" + percent_encode(id) + "/versions"), &raw);
  if (!res) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
    return kExitOk;
  }
  Table t({"VERSION", "CREATED_AT", "CREATED_BY", "DELETED", "NOTE"});
  for (const auto& v : res->value("versions", json::array())) {
    t.add({cell(v, "version"), cell(v, "created_at"), cell(v, "created_by"),
           v.value("deleted", false) ? "yes" : "no", cell(v, "note")});
  }
  t.print(std::cout);
  return kExitOk;
}

int flows_rollback(Session& s, const FlowsRollback& f) {
  HttpReply raw;
  auto res =
      s.send_json(Session::Call("POST", "/api/v1/flows/" + percent_encode(f.id) + "/rollback",
                                dump(json{{"version", f.version}})),
                  &raw);
  if (!res) return s.exit_code();
  if (s.json_output()) {
    print_raw(raw);
  } else {
    std::cout << "flow " << cell(*res, "id") << " version " << cell(*res, "version")
              << " created (rollback to version " << f.version << ")\n";
  }
  return kExitOk;
}

}  // namespace

// ---- registration -------------------------------------------------------------

struct ClientCommands::Impl {
  CommonFlags common;
  std::vector<CLI::App*> roots;  // flows, run, executions

  CLI::App* flows_apply = nullptr;
  CLI::App* flows_list = nullptr;
  CLI::App* flows_get = nullptr;
  CLI::App* flows_delete = nullptr;
  CLI::App* run = nullptr;
  CLI::App* ex_list = nullptr;
  CLI::App* ex_get = nullptr;
  CLI::App* ex_events = nullptr;
  CLI::App* ex_cancel = nullptr;
  CLI::App* ex_state = nullptr;
  CLI::App* ex_timeline = nullptr;
  CLI::App* ex_diff = nullptr;
  CLI::App* ex_replay = nullptr;
  CLI::App* ex_retry = nullptr;
  CLI::App* flows_versions = nullptr;
  CLI::App* flows_rollback = nullptr;
  CLI::App* tools_list = nullptr;
  CLI::App* tools_get = nullptr;
  CLI::App* tools_usage = nullptr;
  CLI::App* workers_list = nullptr;
  CLI::App* workers_get = nullptr;
  CLI::App* workers_delete = nullptr;
  std::string usage_from;
  std::string usage_to;

  FlowsApply apply;
  FlowsGet get;
  std::string id;  // the ID argument of delete, executions get/cancel
  std::string reason;
  RunFlags run_flags;
  ExecList list;
  ExecEvents events;
  ExecState state;
  ExecDiff diff;
  ExecReplay replay;
  FlowsRollback rollback;

  // --url/--key/--json on every leaf command (and the root), all bound to the
  // same values, so they may be written anywhere on the command line and
  // show up in each command's --help.
  void add_common(CLI::App* app) {
    app->add_option("--url", common.url,
                    std::string("server URL (env YANTRA_URL, default ") + kDefaultUrl + ")");
    app->add_option("--key", common.key, "API key (env YANTRA_API_KEY)");
    app->add_flag("--json", common.json, "print the raw JSON response");
  }
};

ClientCommands::ClientCommands(CLI::App& app) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.add_common(&app);

  auto* flows = app.add_subcommand("flows", "manage flow definitions");
  flows->require_subcommand(1);
  m.roots.push_back(flows);
  m.flows_apply = flows->add_subcommand(
      "apply", "create a flow from a JSON or YAML file, or store it as the next version");
  m.flows_apply->add_option("-f,--file", m.apply.file, "definition file (.json, .yaml, .yml)")
      ->required();
  m.flows_apply->add_option("--note", m.apply.note, "change note (X-Change-Note)");
  m.flows_list = flows->add_subcommand("list", "list flows (latest versions)");
  m.flows_get = flows->add_subcommand("get", "show a flow");
  m.flows_get->add_option("id", m.get.id, "flow id")->required();
  m.flows_get->add_flag("--yaml", m.get.yaml, "print the definition as YAML");
  m.flows_get->add_option("--version", m.get.version, "a specific version")
      ->check(CLI::Range(1u, UINT32_MAX));
  m.flows_delete = flows->add_subcommand("delete", "delete a flow");
  m.flows_delete->add_option("id", m.id, "flow id")->required();
  m.flows_versions = flows->add_subcommand("versions", "list every stored version of a flow");
  m.flows_versions->add_option("id", m.id, "flow id")->required();
  m.flows_rollback = flows->add_subcommand(
      "rollback", "store the definition of an old version as the next version");
  m.flows_rollback->add_option("id", m.rollback.id, "flow id")->required();
  m.flows_rollback->add_option("--version", m.rollback.version, "the version to bring back")
      ->required()
      ->check(CLI::Range(1u, UINT32_MAX));

  m.run = app.add_subcommand("run", "start an execution of a flow");
  m.roots.push_back(m.run);
  m.run->add_option("flow", m.run_flags.flow, "flow id")->required();
  m.run->add_option("--input", m.run_flags.input, "input as JSON text, or @FILE");
  m.run->add_flag("--wait", m.run_flags.wait,
                  "wait until the execution ends; exit 0 only if it completed");
  m.run
      ->add_option("--wait-ms", m.run_flags.wait_ms,
                   "let the server hold the request this long for the result (max 60000)")
      ->check(CLI::Range(0u, kMaxServerWaitMs));
  m.run->add_option("--idempotency-key", m.run_flags.idempotency_key,
                    "runs with the same key start one execution");

  auto* ex = app.add_subcommand("executions", "inspect, cancel, replay and retry executions");
  ex->require_subcommand(1);
  m.roots.push_back(ex);
  m.ex_list = ex->add_subcommand("list", "list executions, newest first");
  m.ex_list->add_option("--flow", m.list.flow, "only this flow");
  m.ex_list->add_option("--status", m.list.status, "only this status")
      ->check(
          CLI::IsMember({"running", "waiting", "completed", "failed", "cancelled", "timed_out"}));
  m.ex_list->add_option("--limit", m.list.limit, "page size (1-1000)")
      ->check(CLI::Range(1u, 1000u));
  m.ex_list->add_option("--cursor", m.list.cursor, "next_cursor of the previous page");
  m.ex_get = ex->add_subcommand("get", "show an execution and its steps");
  m.ex_get->add_option("id", m.id, "execution id")->required();
  m.ex_events = ex->add_subcommand("events", "show an execution's event history");
  m.ex_events->add_option("id", m.events.id, "execution id")->required();
  m.ex_events->add_option("--after-seq", m.events.after_seq, "start after this sequence number");
  m.ex_events->add_option("--limit", m.events.limit, "one page of at most N events (1-1000)")
      ->check(CLI::Range(1u, 1000u));
  m.ex_cancel = ex->add_subcommand("cancel", "cancel a running execution");
  m.ex_cancel->add_option("id", m.id, "execution id")->required();
  m.ex_cancel->add_option("--reason", m.reason, "recorded in the execution's history");
  m.ex_state = ex->add_subcommand("state", "show an execution's state after any event");
  m.ex_state->add_option("id", m.state.id, "execution id")->required();
  m.ex_state
      ->add_option("--at", m.state.at_seq, "the state right after this event (default: latest)")
      ->check(CLI::Range(uint64_t{1}, kMaxSeq));
  m.ex_timeline = ex->add_subcommand("timeline", "show every attempt of every step");
  m.ex_timeline->add_option("id", m.id, "execution id")->required();
  m.ex_diff = ex->add_subcommand("diff", "show what changed between two events (RFC 6902)");
  m.ex_diff->add_option("id", m.diff.id, "execution id")->required();
  m.ex_diff->add_option("from", m.diff.from_seq, "from this event")
      ->required()
      ->check(CLI::Range(uint64_t{1}, kMaxSeq));
  m.ex_diff->add_option("to", m.diff.to_seq, "to this event")
      ->required()
      ->check(CLI::Range(uint64_t{1}, kMaxSeq));
  m.ex_replay = ex->add_subcommand(
      "replay", "fork an execution at an event, optionally patched; prints the new id");
  m.ex_replay->add_option("id", m.replay.id, "execution id")->required();
  m.ex_replay->add_option("--from", m.replay.from_seq, "copy the history up to this event")
      ->required()
      ->check(CLI::Range(uint64_t{1}, kMaxSeq));
  m.ex_replay->add_option("--patch", m.replay.patch_file,
                          "JSON or YAML file: {input: {...}, steps: {PATH: {output: ...}}}");
  m.ex_retry = ex->add_subcommand("retry", "continue a failed or timed-out execution");
  m.ex_retry->add_option("id", m.id, "execution id")->required();

  auto* tools = app.add_subcommand("tools", "list the tools flows can call, and their usage");
  tools->require_subcommand(1);
  m.roots.push_back(tools);
  m.tools_list = tools->add_subcommand("list", "list tools and their actions");
  m.tools_get = tools->add_subcommand("get", "show a tool with its actions' schemas");
  m.tools_get->add_option("id", m.id, "tool id")->required();
  m.tools_usage = tools->add_subcommand("usage", "calls, failures and durations of a tool");
  m.tools_usage->add_option("id", m.id, "tool id")->required();
  m.tools_usage->add_option("--from", m.usage_from, "Unix ms or RFC 3339 (default: 24 h ago)");
  m.tools_usage->add_option("--to", m.usage_to, "Unix ms or RFC 3339 (default: now)");
  auto* workers = app.add_subcommand("workers", "tool workers registered by this tenant");
  workers->require_subcommand(1);
  m.roots.push_back(workers);
  m.workers_list = workers->add_subcommand("list", "list workers, their tools and last poll");
  m.workers_get = workers->add_subcommand("get", "show a worker, its tools and tasks in flight");
  m.workers_get->add_option("id", m.id, "worker id")->required();
  m.workers_delete = workers->add_subcommand("delete", "deregister a worker");
  m.workers_delete->add_option("id", m.id, "worker id")->required();

  for (CLI::App* leaf :
       {m.flows_apply,    m.flows_list,    m.flows_get,   m.flows_delete, m.flows_versions,
        m.flows_rollback, m.run,           m.ex_list,     m.ex_get,       m.ex_events,
        m.ex_cancel,      m.ex_state,      m.ex_timeline, m.ex_diff,      m.ex_replay,
        m.ex_retry,       m.tools_list,    m.tools_get,   m.tools_usage,  m.workers_list,
        m.workers_get,    m.workers_delete}) {
    m.add_common(leaf);
  }
}

ClientCommands::~ClientCommands() = default;

bool ClientCommands::parsed() const {
  return std::any_of(impl_->roots.begin(), impl_->roots.end(),
                     [](const CLI::App* a) { return a->parsed(); });
}

int ClientCommands::run() {
  Impl& m = *impl_;
  // main() blocks SIGINT/SIGTERM for `serve` (which takes them with
  // sigwait); a client must stay interruptible, e.g. during `run --wait`.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &shutdown_signals, nullptr);
  std::string url = m.common.url;
  if (url.empty()) {
    const char* env = std::getenv("YANTRA_URL");
    url = env != nullptr && *env != '\0' ? env : kDefaultUrl;
  }
  std::string key = m.common.key;
  if (key.empty()) {
    const char* env = std::getenv("YANTRA_API_KEY");
    if (env != nullptr) key = env;
  }
  auto base = parse_base_url(url);
  if (!base.ok()) {
    std::cerr << "error: " << base.status().code() << ": " << base.status().message() << "\n";
    return kExitUsage;
  }
  Session s(HttpClient(base.value(), kClientTimeout), key, m.common.json);
  try {
    if (m.flows_apply->parsed()) return flows_apply(s, m.apply);
    if (m.flows_list->parsed()) return flows_list(s);
    if (m.flows_get->parsed()) return flows_get(s, m.get);
    if (m.flows_delete->parsed()) return flows_delete(s, m.id);
    if (m.run->parsed()) return run_flow(s, m.run_flags);
    if (m.ex_list->parsed()) return executions_list(s, m.list);
    if (m.ex_get->parsed()) return executions_get(s, m.id);
    if (m.ex_events->parsed()) return executions_events(s, m.events);
    if (m.ex_cancel->parsed()) return executions_cancel(s, m.id, m.reason);
    if (m.ex_state->parsed()) return executions_state(s, m.state);
    if (m.ex_timeline->parsed()) return executions_timeline(s, m.id);
    if (m.ex_diff->parsed()) return executions_diff(s, m.diff);
    if (m.ex_replay->parsed()) return executions_replay(s, m.replay);
    if (m.ex_retry->parsed()) return executions_retry(s, m.id);
    if (m.flows_versions->parsed()) return flows_versions(s, m.id);
    if (m.flows_rollback->parsed()) return flows_rollback(s, m.rollback);
    if (m.tools_list->parsed()) return tools_list(s);
    if (m.tools_get->parsed()) return tools_get(s, m.id);
    if (m.tools_usage->parsed()) return tools_usage(s, m.id, m.usage_from, m.usage_to);
    if (m.workers_list->parsed()) return workers_list(s);
    if (m.workers_get->parsed()) return workers_get(s, m.id);
    if (m.workers_delete->parsed()) return workers_delete(s, m.id);
  } catch (const json::exception& e) {
    // A JSON answer of an unexpected shape (a field of another type): the
    // server, or whatever answers at that URL, broke the API's contract.
    std::cerr << "error: bad_response: unexpected JSON from the server: " << e.what() << "\n";
    return kExitServerError;
  }
  return kExitUsage;
}

}  // namespace yantra::cli
