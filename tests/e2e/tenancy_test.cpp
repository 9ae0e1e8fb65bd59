// Multi-tenancy through the real `yantra` binary (issue 5): tenants created
// by the operator, API keys with roles, the secrets vault, the audit trail
// and the limits, all over HTTP on loopback.
//
// What is shown, and why this way:
// - Access control is one table: every route × every kind of caller (each
//   role, Basic credentials, the operator key, no key, a malformed header, a
//   revoked key, another tenant's key). A route or a caller added without a
//   row is visible in review, and each row checks 401/403 against "not
//   refused", plus the effect where it is cheap (a refused DELETE must leave
//   the resource, an allowed one must remove it).
// - Isolation is probed the way an attacker would: tenant B replays every id
//   tenant A created through every route and must only ever see 404, the
//   same answer as for an id that never existed.
// - Secrets are checked where they could leak: the peer must really receive
//   the value (or the test would pass with secrets that never resolve), and
//   then every byte of the data dir, the node's log and every response
//   collected must not contain it. A canary input that must be found in the
//   data dir shows that the scan would find a value if it were there.
// - The audit chain is tampered with the node stopped, through RocksDB
//   directly (changing a field without recomputing the hash, as an intruder
//   with disk access would), and the restarted node must name that seq.
// - Queued runs survive a restart and start in order, one at a time.
// - Every limit answers 429 with its own code, a Retry-After and a message
//   naming it, and is lifted by the operator at once. Replays must not get
//   around the limits, and a tenant id created again after a deletion must
//   not inherit the deleted tenant's data.
//
// Nodes are children started on free loopback ports and stopped by PID
// (node_process.hpp). Tests that only talk HTTP share one node; the ones that
// stop and restart a node or read its files have their own.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>

#include "base/encoding.hpp"
#include "base/time.hpp"
#include "storage/internal/scan.hpp"
#include "storage/store.hpp"
#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"
#include "tests/http_test_server.hpp"
#include "yantra/v1/tenancy.pb.h"

namespace yantra::e2e {
namespace {

const char* const kOperatorKey = "e2e-operator-key-9d2f61c04b7e4a55";

// ---- helpers -----------------------------------------------------------------

Headers bearer(const std::string& key) {
  return {{"Authorization", "Bearer " + key}};
}
Headers basic(const std::string& tenant, const std::string& key) {
  return {{"Authorization", "Basic " + base64_encode(tenant + ":" + key)}};
}

// A random string of letters and digits (no escaping anywhere: URL, JSON).
std::string random_text(size_t n) {
  static const char* kChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(kChars[gen() % 62]);
  return out;
}

// "2026-11-22T10:00:00.123Z" -> Unix ms; -1 when it does not parse.
int64_t parse_iso_ms(const std::string& s) {
  auto ms = parse_rfc3339_ms(s);
  return ms.ok() ? ms.value() : -1;
}

// An API error as the contract describes it: the status, the code, and the
// body {"error": {"code", "message", "details": [{"path", "message"}]}}.
::testing::AssertionResult is_error(const Reply& r, int status, const std::string& code) {
  if (r.status != status) {
    return ::testing::AssertionFailure()
           << "expected " << status << " " << code << ", got " << r.describe();
  }
  const json j = r.doc();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) {
    return ::testing::AssertionFailure() << "no error object: " << r.describe();
  }
  const json& e = j["error"];
  if (e.value("code", "") != code) {
    return ::testing::AssertionFailure() << "expected code " << code << ": " << r.describe();
  }
  if (!e.contains("message") || !e["message"].is_string() ||
      e["message"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "no message: " << r.describe();
  }
  if (!e.contains("details") || !e["details"].is_array()) {
    return ::testing::AssertionFailure() << "details is not an array: " << r.describe();
  }
  for (const auto& d : e["details"]) {
    if (!d.is_object() || !d.contains("path") || !d.contains("message")) {
      return ::testing::AssertionFailure() << "malformed detail: " << r.describe();
    }
  }
  return ::testing::AssertionSuccess();
}

std::set<std::string> pointers(const Reply& r) {
  std::set<std::string> out;
  const json j = r.doc();
  if (!j.is_object() || !j.contains("error")) return out;
  for (const auto& d : j["error"].value("details", json::array())) out.insert(d.value("path", ""));
  return out;
}

// The array `field` of a reply's body, by value (so that a range-for over it
// does not iterate a destroyed temporary); empty when absent.
json list_of(const Reply& r, const std::string& field) {
  const json j = r.doc();
  if (!j.is_object() || !j.contains(field) || !j[field].is_array()) return json::array();
  return j[field];
}

std::string error_message(const Reply& r) {
  const json j = r.doc();
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
  return j["error"].value("message", "");
}

// Retry-After as whole seconds, -1 when absent or not a number.
int64_t retry_after(const Reply& r) {
  const std::string v = r.header("retry-after");
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(v);
}

// POST /admin/v1/tenants; returns the owner key's secret ("" on failure).
std::string create_tenant(Api& op, const std::string& id, const json& limits = json::object()) {
  json body = {{"id", id}, {"name", "Tenant " + id}};
  if (!limits.empty()) body["limits"] = limits;
  Reply r = op.post("/admin/v1/tenants", body);
  EXPECT_EQ(r.status, 201) << id << ": " << r.describe();
  const json j = r.doc();
  if (!j.is_object() || !j.contains("owner_key") || !j["owner_key"].is_object()) return "";
  return j["owner_key"].value("secret", "");
}

struct Key {
  std::string id;
  std::string secret;
};

Key create_key(Api& admin, const std::string& role) {
  Reply r = admin.post("/api/v1/keys", {{"role", role}, {"name", role + " key"}});
  EXPECT_EQ(r.status, 201) << role << ": " << r.describe();
  const json j = r.doc();
  if (!j.is_object()) return {};
  return {j.value("id", ""), j.value("secret", "")};
}

// GET `target` (an audit listing) until `done(records)` or the deadline: the
// audit thread writes asynchronously. Returns the last records read.
template <typename Pred>
json poll_audit(Api& api, const std::string& target, Pred done,
                std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json last = json::array();
  while (true) {
    Reply r = api.get(target);
    if (r.status == 200) {
      last = r.doc().value("records", json::array());
      if (done(last)) return last;
    }
    if (std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(20ms);
  }
}

json find_record(const json& records, const std::string& request_id) {
  for (const auto& rec : records) {
    if (rec.value("request_id", "") == request_id) return rec;
  }
  return nullptr;
}

bool has_request_id(const json& records, const std::string& request_id) {
  return !find_record(records, request_id).is_null();
}

bool secret_listed(Api& admin, const std::string& name) {
  const json list = admin.get("/api/v1/secrets").doc();
  for (const auto& s : list.value("secrets", json::array())) {
    if (s.value("name", "") == name) return true;
  }
  return false;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Files under `dir` whose bytes contain `needle`.
std::vector<std::string> files_containing(const std::string& dir, const std::string& needle,
                                          size_t* files_scanned) {
  std::vector<std::string> hits;
  *files_scanned = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++*files_scanned;
    if (read_file(entry.path()).find(needle) != std::string::npos) {
      hits.push_back(entry.path().string());
    }
  }
  return hits;
}

// `text` with every occurrence of each .first replaced by its .second, in order.
std::string substitute(std::string text,
                       const std::vector<std::pair<std::string, std::string>>& map) {
  for (const auto& [from, to] : map) {
    for (size_t pos = text.find(from); pos != std::string::npos;
         pos = text.find(from, pos + to.size())) {
      text.replace(pos, from.size(), to);
    }
  }
  return text;
}

// ---- the shared node ---------------------------------------------------------

class TenancyTest : public NodeSuite<TenancyTest> {
 public:
  static NodeProcess::Options node_options() {
    NodeProcess::Options options;
    options.env.emplace_back("YANTRA_OPERATOR_KEY", kOperatorKey);
    return options;
  }

 protected:
  static Api op() { return Api(node_->port(), kOperatorKey); }
};

// ---- 1. roles × routes -------------------------------------------------------

enum class Level { kPublic, kViewer, kEditor, kAdmin, kOperator };

// One request of the matrix. `check(effective, reply)` verifies what the call
// did: effective = it was allowed to act on the tenant's resource.
struct Call {
  std::string target;
  std::string body;
  std::function<void(bool effective, const Reply& reply)> check;
};

struct Route {
  std::string method;
  std::string pattern;
  Level level;
  std::set<int> ok;  // statuses of an allowed caller of the tenant
  bool scoped;       // names a resource of the tenant: another tenant gets `other`
  std::set<int> other;
  std::function<Call()> make;  // prepares fresh resources (as the tenant's owner)
};

struct Caller {
  std::string name;
  Headers auth;
  int rank = 0;  // viewer 1 .. owner 4
  bool is_operator = false;
  bool other_tenant = false;
  bool unauthenticated = false;  // must get 401
};

int rank_of(Level l) {
  switch (l) {
    case Level::kViewer: return 1;
    case Level::kEditor: return 2;
    case Level::kAdmin: return 3;
    default: return 0;
  }
}

TEST_F(TenancyTest, EveryRouteAnswersEveryCallerAsItsRoleAllows) {
  Api operator_api = op();
  const std::string T = "mx";
  const std::string U = "mx-other";
  const std::string owner_secret = create_tenant(operator_api, T);
  const std::string other_secret = create_tenant(operator_api, U);
  ASSERT_FALSE(owner_secret.empty());
  ASSERT_FALSE(other_secret.empty());
  Api owner(port(), owner_secret);
  const Key viewer = create_key(owner, "viewer");
  const Key editor = create_key(owner, "editor");
  const Key admin = create_key(owner, "admin");
  const Key revoked = create_key(owner, "viewer");
  ASSERT_FALSE(revoked.secret.empty());
  ASSERT_EQ(owner.del("/api/v1/keys/" + revoked.id).status, 204);

  create_flow(owner, echo_flow("mx-echo"));
  create_flow(owner, echo_flow("mx-put"));
  create_flow(owner, delay_flow("mx-wait", 60000));
  create_flow(owner, fail_flow("mx-fail"));
  Reply done = owner.post("/api/v1/flows/mx-echo/run?wait_ms=10000", {{"input", {{"x", 1}}}});
  ASSERT_EQ(done.status, 200) << done.describe();
  const std::string E = "/api/v1/executions/" + done.doc()["execution_id"].get<std::string>();

  int counter = 0;
  auto fresh = [&](const std::string& prefix) { return prefix + std::to_string(++counter); };
  auto fixed = [](const std::string& target, const std::string& body = "") {
    return [target, body] { return Call{target, body, nullptr}; };
  };
  const uint16_t p = port();
  auto works = [p](const std::string& secret) {
    return http_request(p, "GET", "/api/v1/flows", "", bearer(secret)).status;
  };

  // Reads: GET, 200; `scoped` ones name a resource of T (another tenant: 404).
  auto read = [&](Level level, const std::string& pattern, const std::string& target, bool scoped) {
    return Route{"GET", pattern, level, {200}, scoped, {404}, fixed(target)};
  };
  // Writes: `ok` for the tenant's callers; `other` (0: none) for another
  // tenant's owner when scoped.
  auto write = [](const std::string& method, const std::string& pattern, Level level, int ok,
                  bool scoped, int other, std::function<Call()> make) {
    return Route{method, pattern, level, {ok}, scoped, {other}, std::move(make)};
  };
  const bool kScoped = true, kUnscoped = false;
  std::vector<Route> routes = {
      read(Level::kPublic, "/healthz", "/healthz", kUnscoped),
      read(Level::kPublic, "/readyz", "/readyz", kUnscoped),
      read(Level::kPublic, "/metrics", "/metrics", kUnscoped),
      read(Level::kViewer, "/api/v1/openapi.json", "/api/v1/openapi.json", kUnscoped),
      read(Level::kViewer, "/api/v1/flows", "/api/v1/flows", kUnscoped),
      read(Level::kViewer, "/api/v1/flows/{id}", "/api/v1/flows/mx-echo", kScoped),
      read(Level::kViewer, "/api/v1/flows/{id}/versions", "/api/v1/flows/mx-echo/versions",
           kScoped),
      read(Level::kViewer, "/api/v1/executions", "/api/v1/executions", kUnscoped),
      read(Level::kViewer, "/api/v1/executions/{id}", E, kScoped),
      read(Level::kViewer, "/api/v1/executions/{id}/events", E + "/events", kScoped),
      read(Level::kViewer, "/api/v1/executions/{id}/state", E + "/state?at_seq=1", kScoped),
      read(Level::kViewer, "/api/v1/executions/{id}/timeline", E + "/timeline", kScoped),
      read(Level::kViewer, "/api/v1/executions/{id}/diff", E + "/diff?from_seq=1&to_seq=2",
           kScoped),
      read(Level::kAdmin, "/api/v1/keys", "/api/v1/keys", kUnscoped),
      read(Level::kAdmin, "/api/v1/audit", "/api/v1/audit", kUnscoped),
      read(Level::kAdmin, "/api/v1/audit/verify", "/api/v1/audit/verify", kUnscoped),
      read(Level::kAdmin, "/api/v1/audit/report", "/api/v1/audit/report", kUnscoped),
      // Built-in tools: every tenant sees the same ones (a tenant's own
      // tools are 404 to others: tools_registry_test).
      read(Level::kViewer, "/api/v1/tools", "/api/v1/tools", kUnscoped),
      read(Level::kViewer, "/api/v1/tools/{id}", "/api/v1/tools/http", kUnscoped),
      read(Level::kViewer, "/api/v1/tools/{id}/usage", "/api/v1/tools/core/usage", kUnscoped),
      read(Level::kOperator, "/admin/v1/tenants", "/admin/v1/tenants", kUnscoped),
      read(Level::kOperator, "/admin/v1/tenants/{t}", "/admin/v1/tenants/" + T, kUnscoped),
      read(Level::kOperator, "/admin/v1/audit", "/admin/v1/audit?tenant=" + T, kUnscoped),
      read(Level::kOperator, "/admin/v1/audit/verify", "/admin/v1/audit/verify?tenant=" + T,
           kUnscoped),
      // Writes.
      write("POST", "/api/v1/flows", Level::kEditor, 201, kUnscoped, 0,
            [&] {
              const std::string id = fresh("mx-new-");
              return Call{
                  "/api/v1/flows", echo_flow(id).dump(), [&owner, id](bool eff, const Reply&) {
                    EXPECT_EQ(owner.get("/api/v1/flows/" + id).status, eff ? 200 : 404) << id;
                  }};
            }),
      // Another tenant's PUT creates a flow of its own (ids are per tenant).
      write("PUT", "/api/v1/flows/{id}", Level::kEditor, 200, kScoped, 201,
            fixed("/api/v1/flows/mx-put", echo_flow("mx-put").dump())),
      write("DELETE", "/api/v1/flows/{id}", Level::kEditor, 204, kScoped, 404,
            [&] {
              const std::string id = fresh("mx-del-");
              create_flow(owner, echo_flow(id));
              return Call{"/api/v1/flows/" + id, "", [&owner, id](bool eff, const Reply&) {
                            EXPECT_EQ(owner.get("/api/v1/flows/" + id).status, eff ? 404 : 200)
                                << id;
                          }};
            }),
      write("POST", "/api/v1/flows/{id}/rollback", Level::kEditor, 200, kScoped, 404,
            fixed("/api/v1/flows/mx-echo/rollback", R"({"version": 1})")),
      write("POST", "/api/v1/flows/{id}/run", Level::kEditor, 202, kScoped, 404,
            [&] {
              return Call{"/api/v1/flows/mx-echo/run", R"({"input": {"x": 2}})",
                          [&owner](bool eff, const Reply& r) {
                            if (!eff) return;
                            const std::string id = r.doc().value("execution_id", "");
                            EXPECT_EQ(wait_finished(owner, id).value("status", ""), "completed")
                                << id;
                          }};
            }),
      write("POST", "/api/v1/executions/{id}/cancel", Level::kEditor, 200, kScoped, 404,
            [&] {
              const std::string id = start_run(owner, "mx-wait");
              EXPECT_EQ(wait_status(owner, id, "waiting").value("status", ""), "waiting") << id;
              return Call{"/api/v1/executions/" + id + "/cancel", "{}",
                          [&owner, id](bool eff, const Reply&) {
                            const json st = owner.get("/api/v1/executions/" + id).doc();
                            EXPECT_EQ(st.value("status", ""), eff ? "cancelled" : "waiting") << id;
                            // Tidy up: a refused cancel leaves a 60 s delay behind.
                            if (!eff)
                              owner.post("/api/v1/executions/" + id + "/cancel", json::object());
                          }};
            }),
      write("POST", "/api/v1/executions/{id}/replay", Level::kEditor, 201, kScoped, 404,
            fixed(E + "/replay", R"({"from_seq": 1})")),
      write("POST", "/api/v1/executions/{id}/retry", Level::kEditor, 202, kScoped, 404,
            [&] {
              Reply r = owner.post("/api/v1/flows/mx-fail/run?wait_ms=10000", json::object());
              EXPECT_EQ(r.status, 200) << r.describe();
              const std::string id = r.doc().value("execution_id", "");
              const uint64_t seq = owner.get("/api/v1/executions/" + id).doc().value("last_seq", 0);
              return Call{"/api/v1/executions/" + id + "/retry", "",
                          [&owner, id, seq](bool eff, const Reply&) {
                            // An allowed retry appends to the log; a refused one must not.
                            json st = poll_execution(
                                owner, id,
                                [&](const json& d) {
                                  return !eff || (d.value("last_seq", uint64_t{0}) > seq &&
                                                  is_terminal(d.value("status", "")));
                                },
                                10s);
                            if (eff) {
                              EXPECT_GT(st.value("last_seq", uint64_t{0}), seq) << id;
                            } else {
                              EXPECT_EQ(st.value("last_seq", uint64_t{0}), seq) << id;
                            }
                          }};
            }),
      write("POST", "/api/v1/keys", Level::kAdmin, 201, kUnscoped, 0,
            [&] {
              return Call{"/api/v1/keys", R"({"role": "viewer", "name": "matrix"})",
                          [works](bool eff, const Reply& r) {
                            if (!eff) return;
                            EXPECT_EQ(r.doc().value("role", ""), "viewer") << r.body;
                            EXPECT_EQ(works(r.doc().value("secret", "")), 200) << r.body;
                          }};
            }),
      write("DELETE", "/api/v1/keys/{id}", Level::kAdmin, 204, kScoped, 404,
            [&] {
              const Key k = create_key(owner, "viewer");
              return Call{"/api/v1/keys/" + k.id, "", [works, k](bool eff, const Reply&) {
                            EXPECT_EQ(works(k.secret), eff ? 401 : 200) << k.id;
                          }};
            }),
      write("POST", "/admin/v1/tenants", Level::kOperator, 201, kUnscoped, 0,
            [&] {
              const std::string id = fresh("mx-new-t-");
              return Call{
                  "/admin/v1/tenants", json{{"id", id}}.dump(),
                  [&operator_api, id](bool eff, const Reply&) {
                    EXPECT_EQ(operator_api.get("/admin/v1/tenants/" + id).status, eff ? 200 : 404)
                        << id;
                  }};
            }),
      write("PATCH", "/admin/v1/tenants/{t}", Level::kOperator, 200, kUnscoped, 0,
            [&] {
              const std::string name = fresh("Matrix ");
              return Call{"/admin/v1/tenants/" + T, json{{"name", name}}.dump(),
                          [&operator_api, T, name](bool eff, const Reply&) {
                            const std::string now =
                                operator_api.get("/admin/v1/tenants/" + T).doc().value("name", "");
                            EXPECT_EQ(now == name, eff) << now;
                          }};
            }),
      write("DELETE", "/admin/v1/tenants/{t}", Level::kOperator, 204, kUnscoped, 0,
            [&] {
              const std::string id = fresh("mx-gone-");
              create_tenant(operator_api, id);
              return Call{
                  "/admin/v1/tenants/" + id, "", [&operator_api, id](bool eff, const Reply&) {
                    EXPECT_EQ(operator_api.get("/admin/v1/tenants/" + id).status, eff ? 404 : 200)
                        << id;
                  }};
            }),
  };
  // The vault, under both of its bases. Under /accounts/{tenant} the path
  // names tenant T, so every call of another tenant is scoped (404).
  for (const std::string& base :
       std::vector<std::string>{"/api/v1/secrets", "/api/v1/accounts/" + T + "/secrets"}) {
    const bool accounts = base != "/api/v1/secrets";
    routes.push_back(write("PUT", base + "/{name}", Level::kAdmin, 201, accounts, 404, [&, base] {
      const std::string name = fresh("MX_PUT_");
      return Call{base + "/" + name, R"({"value": "matrix-value"})",
                  [&owner, name](bool eff, const Reply&) {
                    EXPECT_EQ(secret_listed(owner, name), eff) << name;
                  }};
    }));
    routes.push_back(read(Level::kAdmin, base, base, accounts));
    routes.push_back(write("DELETE", base + "/{name}", Level::kAdmin, 204, kScoped, 404, [&, base] {
      const std::string name = fresh("MX_DEL_");
      EXPECT_EQ(owner.put("/api/v1/secrets/" + name, {{"value", "v"}}).status, 201);
      return Call{base + "/" + name, "", [&owner, name](bool eff, const Reply&) {
                    EXPECT_EQ(secret_listed(owner, name), !eff) << name;
                  }};
    }));
  }

  const std::vector<Caller> callers = {
      {"viewer", bearer(viewer.secret), 1},
      {"editor", bearer(editor.secret), 2},
      {"admin", bearer(admin.secret), 3},
      {"owner", bearer(owner_secret), 4},
      {"owner via Basic", basic(T, owner_secret), 4},
      {"operator", bearer(kOperatorKey), 0, true},
      {"owner of another tenant", bearer(other_secret), 4, false, true},
      {"no key", {}, 0, false, false, true},
      {"malformed header", {{"Authorization", "Token " + owner_secret}}, 0, false, false, true},
      {"Bearer without a key", {{"Authorization", "Bearer"}}, 0, false, false, true},
      {"revoked key", bearer(revoked.secret), 0, false, false, true},
      {"Basic under another tenant's name", basic(U, owner_secret), 0, false, false, true},
  };

  size_t checked = 0;
  for (const Route& route : routes) {
    for (const Caller& who : callers) {
      const std::string what = route.method + " " + route.pattern + " as " + who.name;
      const Call call = route.make();
      Headers h = who.auth;
      const std::string rid = "mx-" + std::to_string(++counter);
      h.emplace_back("X-Request-Id", rid);
      if (!call.body.empty()) h.emplace_back("Content-Type", "application/json");
      const Reply r = http_request(port(), route.method, call.target, call.body, h);
      EXPECT_EQ(r.header("x-request-id"), rid) << what << ": " << r.describe();
      enum { kAllowed, kAllowedElsewhere, kRefused } outcome = kRefused;
      if (route.level == Level::kPublic) {
        EXPECT_EQ(r.status, 200) << what << ": " << r.describe();
        outcome = kAllowed;
      } else if (who.unauthenticated) {
        EXPECT_TRUE(is_error(r, 401, "unauthorized")) << what;
        EXPECT_FALSE(r.header("www-authenticate").empty()) << what;
      } else if ((route.level == Level::kOperator) != who.is_operator ||
                 who.rank < rank_of(route.level)) {
        EXPECT_TRUE(is_error(r, 403, "forbidden")) << what;
      } else if (who.other_tenant && route.scoped) {
        EXPECT_TRUE(route.other.count(r.status)) << what << ": " << r.describe();
        if (r.status == 404) {
          EXPECT_TRUE(is_error(r, 404, "not_found")) << what;
        }
      } else if (who.other_tenant) {
        EXPECT_TRUE(route.ok.count(r.status)) << what << ": " << r.describe();
        outcome = kAllowedElsewhere;
      } else {
        EXPECT_TRUE(route.ok.count(r.status)) << what << ": " << r.describe();
        outcome = kAllowed;
      }
      if (call.check && outcome != kAllowedElsewhere) {
        SCOPED_TRACE(what);
        call.check(outcome == kAllowed, r);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, routes.size() * callers.size());
  EXPECT_GE(routes.size(), 40u);
}

// The rules of keys beyond the role check: secrets are shown once, owners are
// protected from admins, revocation is immediate, ids are per tenant.
TEST_F(TenancyTest, KeyAndSecretRules) {
  Api operator_api = op();
  const std::string owner_secret = create_tenant(operator_api, "rules");
  ASSERT_FALSE(owner_secret.empty());
  Api owner(port(), owner_secret);
  const Key admin_key = create_key(owner, "admin");
  Api admin(port(), admin_key.secret);

  // An admin may not create or revoke owner keys; an owner may.
  EXPECT_TRUE(is_error(admin.post("/api/v1/keys", {{"role", "owner"}}), 403, "forbidden"));
  const Key second_owner = create_key(owner, "owner");
  ASSERT_FALSE(second_owner.id.empty());
  EXPECT_TRUE(is_error(admin.del("/api/v1/keys/" + second_owner.id), 403, "forbidden"));
  EXPECT_EQ(http_request(port(), "GET", "/api/v1/keys", "", bearer(second_owner.secret)).status,
            200);
  Reply bad_role = admin.post("/api/v1/keys", {{"role", "root"}});
  EXPECT_TRUE(is_error(bad_role, 400, "invalid_request"));
  EXPECT_TRUE(pointers(bad_role).count("/role")) << bad_role.body;

  // Listing never shows a secret, and shows revocation.
  const Key editor = create_key(admin, "editor");
  ASSERT_FALSE(editor.secret.empty());
  Reply listed = admin.get("/api/v1/keys");
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(listed.body.find(editor.secret), std::string::npos);
  EXPECT_EQ(listed.body.find(owner_secret), std::string::npos);
  EXPECT_EQ(listed.body.find("\"secret\""), std::string::npos) << listed.body;
  bool found = false;
  for (const auto& k : list_of(listed, "keys")) {
    if (k.value("id", "") != editor.id) continue;
    found = true;
    EXPECT_EQ(k.value("role", ""), "editor");
    EXPECT_EQ(k.value("revoked", true), false);
    EXPECT_FALSE(k.value("created_at", "").empty());
  }
  EXPECT_TRUE(found) << listed.body;
  Api editor_api(port(), editor.secret);
  EXPECT_EQ(editor_api.get("/api/v1/flows").status, 200);
  ASSERT_EQ(admin.del("/api/v1/keys/" + editor.id).status, 204);
  EXPECT_TRUE(is_error(editor_api.get("/api/v1/flows"), 401, "unauthorized"));
  for (const auto& k : list_of(admin.get("/api/v1/keys"), "keys")) {
    if (k.value("id", "") == editor.id) {
      EXPECT_EQ(k.value("revoked", false), true);
    }
  }
  EXPECT_TRUE(is_error(admin.del("/api/v1/keys/key_does_not_exist"), 404, "not_found"));

  // Secrets: 201 then 200 with a new version, never a value; 204 then 404.
  const std::string value = "rules-" + random_text(24);
  Reply first = admin.put("/api/v1/secrets/RULES", {{"value", value}});
  ASSERT_EQ(first.status, 201) << first.describe();
  EXPECT_EQ(first.doc().value("name", ""), "RULES");
  EXPECT_EQ(first.doc().value("version", 0), 1);
  EXPECT_FALSE(first.doc().value("created_at", "").empty());
  EXPECT_FALSE(first.doc().value("updated_at", "").empty());
  Reply second = admin.put("/api/v1/accounts/rules/secrets/RULES", {{"value", value + "2"}});
  ASSERT_EQ(second.status, 200) << second.describe();
  EXPECT_EQ(second.doc().value("version", 0), 2);
  EXPECT_EQ(second.doc().value("created_at", ""), first.doc().value("created_at", ""));
  Reply list = admin.get("/api/v1/accounts/rules/secrets");
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_TRUE(secret_listed(admin, "RULES"));
  for (const Reply* r : {&first, &second, &list}) {
    EXPECT_EQ(r->body.find(value), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("\"value\""), std::string::npos) << r->body;
  }
  Reply empty = admin.put("/api/v1/secrets/EMPTY", {{"value", ""}});
  EXPECT_TRUE(is_error(empty, 400, "invalid_request"));
  EXPECT_TRUE(pointers(empty).count("/value")) << empty.body;
  EXPECT_TRUE(is_error(admin.put("/api/v1/secrets/X", {{"val", "x"}}), 400, "invalid_request"));
  EXPECT_EQ(admin.del("/api/v1/secrets/RULES").status, 204);
  EXPECT_TRUE(is_error(admin.del("/api/v1/secrets/RULES"), 404, "not_found"));
  EXPECT_FALSE(secret_listed(admin, "RULES"));
}

// The operator's side of tenants: what a tenant looks like, validation with
// pointers, conflicts and unknown ids.
TEST_F(TenancyTest, OperatorManagesTenants) {
  Api o = op();
  Reply created = o.post("/admin/v1/tenants", {{"id", "acme-1"},
                                               {"name", "Acme"},
                                               {"limits",
                                                {{"requests_per_second", 50},
                                                 {"burst", 100},
                                                 {"max_concurrent_executions", 7},
                                                 {"max_executions_per_month", 1000}}}});
  ASSERT_EQ(created.status, 201) << created.describe();
  const json t = created.doc();
  EXPECT_EQ(t.value("id", ""), "acme-1");
  EXPECT_EQ(t.value("name", ""), "Acme");
  EXPECT_EQ(t.value("status", ""), "active");
  EXPECT_EQ(t["limits"], json({{"requests_per_second", 50},
                               {"burst", 100},
                               {"max_concurrent_executions", 7},
                               {"max_executions_per_month", 1000}}));
  EXPECT_EQ(t["usage"], json({{"running_executions", 0}, {"queued_executions", 0}}));
  EXPECT_GT(parse_iso_ms(t.value("created_at", "")), 0) << t.dump();
  EXPECT_GT(parse_iso_ms(t.value("updated_at", "")), 0) << t.dump();
  EXPECT_EQ(t["owner_key"].value("role", ""), "owner");
  EXPECT_FALSE(t["owner_key"].value("id", "").empty());
  const std::string secret = t["owner_key"].value("secret", "");
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(http_request(port(), "GET", "/api/v1/keys", "", bearer(secret)).status, 200);

  // Listed, without any secret; readable alone.
  Reply list = o.get("/admin/v1/tenants");
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_EQ(list.body.find(secret), std::string::npos);
  bool listed = false;
  for (const auto& x : list_of(list, "tenants")) listed = listed || x.value("id", "") == "acme-1";
  EXPECT_TRUE(listed) << list.body;
  Reply one = o.get("/admin/v1/tenants/acme-1");
  ASSERT_EQ(one.status, 200) << one.describe();
  EXPECT_EQ(one.doc()["limits"], t["limits"]);
  EXPECT_FALSE(one.doc().contains("owner_key")) << one.body;

  // Validation, every problem with its pointer.
  struct Bad {
    json body;
    std::string pointer;
  };
  const std::vector<Bad> bad = {
      {{{"name", "no id"}}, "/id"},
      {{{"id", "Upper"}}, "/id"},
      {{{"id", "-dash-first"}}, "/id"},
      {{{"id", std::string(64, 'a')}}, "/id"},
      {{{"id", "ok-id-1"}, {"limits", {{"burst", -1}}}}, "/limits/burst"},
      {{{"id", "ok-id-2"}, {"limits", {{"requests_per_second", "fast"}}}},
       "/limits/requests_per_second"},
      {{{"id", "ok-id-3"}, {"limits", {{"bogus", 1}}}}, "/limits/bogus"},
      {{{"id", "ok-id-4"}, {"status", "paused"}}, "/status"},
  };
  for (const auto& b : bad) {
    Reply r = o.post("/admin/v1/tenants", b.body);
    EXPECT_TRUE(is_error(r, 400, "invalid_request")) << b.body.dump();
    EXPECT_TRUE(pointers(r).count(b.pointer)) << b.body.dump() << ": " << r.body;
    if (b.body.contains("id") && b.body["id"].is_string()) {
      EXPECT_EQ(o.get("/admin/v1/tenants/" + b.body["id"].get<std::string>()).status, 404);
    }
  }
  EXPECT_TRUE(is_error(o.post("/admin/v1/tenants", {{"id", "acme-1"}}), 409, "already_exists"));
  EXPECT_TRUE(is_error(o.get("/admin/v1/tenants/nobody"), 404, "not_found"));
  EXPECT_TRUE(is_error(o.request("PATCH", "/admin/v1/tenants/nobody", R"({"name": "x"})",
                                 {{"Content-Type", "application/json"}}),
                       404, "not_found"));
  EXPECT_TRUE(is_error(o.del("/admin/v1/tenants/nobody"), 404, "not_found"));
  Reply patch_bad = o.request("PATCH", "/admin/v1/tenants/acme-1",
                              R"({"limits": {"burst": -5}, "status": "gone"})",
                              {{"Content-Type", "application/json"}});
  EXPECT_TRUE(is_error(patch_bad, 400, "invalid_request"));
  EXPECT_TRUE(pointers(patch_bad).count("/limits/burst")) << patch_bad.body;
  EXPECT_TRUE(pointers(patch_bad).count("/status")) << patch_bad.body;
  EXPECT_TRUE(is_error(o.get("/admin/v1/audit"), 400, "invalid_parameter"));
  EXPECT_TRUE(is_error(o.get("/admin/v1/audit/verify"), 400, "invalid_parameter"));
  // A refused PATCH changed nothing.
  EXPECT_EQ(o.get("/admin/v1/tenants/acme-1").doc()["limits"], t["limits"]);
}

// ---- 2. isolation --------------------------------------------------------------

TEST_F(TenancyTest, AnotherTenantSeesOnly404ForEveryIdOfA) {
  Api o = op();
  const std::string secret_a = create_tenant(o, "iso-a");
  const std::string secret_b = create_tenant(o, "iso-b");
  ASSERT_FALSE(secret_a.empty());
  ASSERT_FALSE(secret_b.empty());
  Api a(port(), secret_a);
  Api b(port(), secret_b);

  create_flow(a, echo_flow("iso-echo"));
  create_flow(a, delay_flow("iso-wait", 60000));
  create_flow(a, fail_flow("iso-fail"));
  Reply done = a.post("/api/v1/flows/iso-echo/run?wait_ms=10000", {{"input", {{"x", "a"}}}});
  ASSERT_EQ(done.status, 200) << done.describe();
  const std::string done_id = done.doc()["execution_id"];
  Reply failed = a.post("/api/v1/flows/iso-fail/run?wait_ms=10000", json::object());
  ASSERT_EQ(failed.status, 200) << failed.describe();
  const std::string failed_id = failed.doc()["execution_id"];
  const std::string waiting_id = start_run(a, "iso-wait");
  ASSERT_EQ(wait_status(a, waiting_id, "waiting").value("status", ""), "waiting");
  ASSERT_EQ(a.put("/api/v1/secrets/ISO_SECRET", {{"value", "a-only-value"}}).status, 201);
  const Key a_admin = create_key(a, "admin");
  std::string a_owner_id;
  for (const auto& k : list_of(a.get("/api/v1/keys"), "keys")) {
    if (k.value("role", "") == "owner") a_owner_id = k.value("id", "");
  }
  ASSERT_FALSE(a_owner_id.empty());
  const uint64_t failed_seq = a.get("/api/v1/executions/" + failed_id).doc().value("last_seq", 0);

  // A's ids, and ids of the same shape that exist nowhere.
  auto never = [](const std::string& ulid) { return "00000000ZZ" + ulid.substr(10); };
  const std::vector<std::pair<std::string, std::string>> to_fake = {
      {done_id, never(done_id)},       {failed_id, never(failed_id)},
      {waiting_id, never(waiting_id)}, {a_admin.id, a_admin.id + "x"},
      {a_owner_id, a_owner_id + "x"},  {"iso-echo", "zz-echo"},
      {"iso-wait", "zz-wait"},         {"iso-fail", "zz-fail"},
      {"ISO_SECRET", "ZZ_SECRET"},     {"iso-a", "zz-a"}};
  std::vector<std::pair<std::string, std::string>> to_real;
  for (const auto& [real, fake] : to_fake) to_real.emplace_back(fake, real);

  struct Probe {
    std::string method, target, body;
  };
  std::vector<Probe> probes = {
      {"GET", "/api/v1/flows/iso-echo", ""},
      {"GET", "/api/v1/flows/iso-echo?version=1", ""},
      {"GET", "/api/v1/flows/iso-echo/versions", ""},
      {"POST", "/api/v1/flows/iso-echo/rollback", R"({"version": 1})"},
      {"POST", "/api/v1/flows/iso-echo/run", R"({"input": {"x": "b"}})"},
      {"POST", "/api/v1/flows/iso-wait/run", "{}"},
      {"DELETE", "/api/v1/flows/iso-fail", ""},
      {"DELETE", "/api/v1/keys/" + a_admin.id, ""},
      {"DELETE", "/api/v1/keys/" + a_owner_id, ""},
      {"DELETE", "/api/v1/secrets/ISO_SECRET", ""},
      {"GET", "/api/v1/accounts/iso-a/secrets", ""},
      {"PUT", "/api/v1/accounts/iso-a/secrets/ISO_SECRET", R"({"value": "overwritten"})"},
      {"PUT", "/api/v1/accounts/iso-a/secrets/NEW", R"({"value": "planted"})"},
      {"DELETE", "/api/v1/accounts/iso-a/secrets/ISO_SECRET", ""},
  };
  for (const std::string& id : {done_id, failed_id, waiting_id}) {
    const std::string e = "/api/v1/executions/" + id;
    for (const std::string& get :
         {e, e + "/events", e + "/events?after_seq=1", e + "/state", e + "/state?at_seq=1",
          e + "/timeline", e + "/diff?from_seq=1&to_seq=2"}) {
      probes.push_back({"GET", get, ""});
    }
    probes.push_back({"POST", e + "/replay", "{}"});
    probes.push_back({"POST", e + "/replay", R"({"from_seq": 1})"});
    probes.push_back({"POST", e + "/retry", ""});
    probes.push_back({"POST", e + "/cancel", R"({"reason": "b was here"})"});
  }
  for (const auto& p : probes) {
    Headers h;
    if (!p.body.empty()) h.emplace_back("Content-Type", "application/json");
    Reply r = b.request(p.method, p.target, p.body, h);
    EXPECT_TRUE(is_error(r, 404, "not_found")) << "B: " << p.method << " " << p.target;
    // No oracle: the answer is the one for ids that never existed (with
    // those ids in place of A's).
    const std::string fake_target = substitute(p.target, to_fake);
    Reply fake = b.request(p.method, fake_target, substitute(p.body, to_fake), h);
    EXPECT_EQ(substitute(fake.body, to_real), r.body) << p.method << " " << fake_target;
  }
  // A's key under B's name (Basic) is refused like a wrong key.
  EXPECT_TRUE(is_error(http_request(port(), "GET", "/api/v1/flows", "", basic("iso-b", secret_a)),
                       401, "unauthorized"));

  // B's listings hold nothing of A's.
  Reply flows = b.get("/api/v1/flows");
  ASSERT_EQ(flows.status, 200);
  EXPECT_EQ(flows.doc()["flows"].size(), 0u) << flows.body;
  Reply executions = b.get("/api/v1/executions?limit=1000");
  ASSERT_EQ(executions.status, 200);
  EXPECT_EQ(executions.doc()["executions"].size(), 0u) << executions.body;
  Reply keys = b.get("/api/v1/keys");
  ASSERT_EQ(keys.status, 200);
  EXPECT_EQ(keys.doc()["keys"].size(), 1u) << keys.body;  // its owner key only
  EXPECT_EQ(keys.body.find(a_admin.id), std::string::npos);
  EXPECT_EQ(keys.body.find(a_owner_id), std::string::npos);
  Reply secrets = b.get("/api/v1/secrets");
  ASSERT_EQ(secrets.status, 200);
  EXPECT_EQ(secrets.doc()["secrets"].size(), 0u) << secrets.body;
  const json b_audit =
      poll_audit(b, "/api/v1/audit?limit=1000", [](const json& recs) { return !recs.empty(); });
  for (const auto& rec : b_audit) {
    EXPECT_EQ(rec.value("tenant", ""), "iso-b") << rec.dump();
    EXPECT_NE(rec.value("key_id", ""), a_admin.id) << rec.dump();
    EXPECT_NE(rec.value("key_id", ""), a_owner_id) << rec.dump();
    EXPECT_NE(rec.value("action", ""), "tool.call") << rec.dump();  // B ran nothing
  }

  // Nothing of A's changed.
  EXPECT_EQ(a.get("/api/v1/flows/iso-echo").doc().value("version", 0), 1);
  EXPECT_EQ(a.get("/api/v1/flows/iso-fail").status, 200);
  EXPECT_EQ(a.get("/api/v1/executions/" + waiting_id).doc().value("status", ""), "waiting");
  EXPECT_EQ(a.get("/api/v1/executions/" + failed_id).doc().value("last_seq", 0), failed_seq);
  EXPECT_EQ(a.get("/api/v1/executions?flow_id=iso-echo").doc()["executions"].size(), 1u);
  EXPECT_EQ(a.get("/api/v1/executions/" + done_id).doc()["forks"].size(), 0u);
  EXPECT_EQ(http_request(port(), "GET", "/api/v1/keys", "", bearer(a_admin.secret)).status, 200);
  EXPECT_TRUE(secret_listed(a, "ISO_SECRET"));
  EXPECT_FALSE(secret_listed(a, "NEW"));
  for (const auto& s : list_of(a.get("/api/v1/secrets"), "secrets")) {
    if (s.value("name", "") == "ISO_SECRET") {
      EXPECT_EQ(s.value("version", 0), 1);
    }
  }

  // Ids are per tenant: B may use A's names for its own things, and A's
  // secret does not resolve in B's runs.
  Reply put = b.put("/api/v1/flows/iso-echo", echo_flow("iso-echo"));
  EXPECT_EQ(put.status, 201) << put.describe();
  EXPECT_EQ(put.doc().value("version", 0), 1);
  EXPECT_EQ(a.get("/api/v1/flows/iso-echo/versions").doc()["versions"].size(), 1u);
  create_flow(b, json::parse(R"({"id": "iso-steal", "steps": [{"id": "s", "type": "action",
      "config": {"tool_id": "core", "action": "echo",
                 "parameters": {"v": {"$secret": "ISO_SECRET"}}}}]})"));
  Reply steal = b.post("/api/v1/flows/iso-steal/run?wait_ms=10000", json::object());
  ASSERT_EQ(steal.status, 200) << steal.describe();
  EXPECT_EQ(steal.doc().value("status", ""), "failed") << steal.body;
  EXPECT_EQ(steal.doc()["error"].value("code", ""), "secret_not_found") << steal.body;
  const std::string steal_id = steal.doc()["execution_id"];
  const json steal_view = b.get("/api/v1/executions/" + steal_id).doc();
  EXPECT_EQ(steal_view["steps"]["s"]["error"].value("code", ""), "secret_not_found")
      << steal_view.dump();
  Reply own = b.put("/api/v1/secrets/ISO_SECRET", {{"value", "b-value"}});
  EXPECT_EQ(own.status, 201) << own.describe();
  EXPECT_EQ(own.doc().value("version", 0), 1);

  // Idempotency keys are per tenant too: B's run with A's key is B's own.
  const Headers idem = {{"Idempotency-Key", "iso-order-1"}};
  Reply a_run = a.post("/api/v1/flows/iso-echo/run?wait_ms=10000", {{"input", {{"x", 1}}}}, idem);
  ASSERT_EQ(a_run.status, 200) << a_run.describe();
  Reply b_run = b.post("/api/v1/flows/iso-echo/run?wait_ms=10000", {{"input", {{"x", 2}}}}, idem);
  ASSERT_EQ(b_run.status, 200) << b_run.describe();
  EXPECT_NE(b_run.doc()["execution_id"], a_run.doc()["execution_id"]);
  EXPECT_EQ(b_run.doc()["output"], json({{"x", 2}})) << b_run.body;
  EXPECT_EQ(b.get("/api/v1/executions/" + b_run.doc().value("execution_id", "")).status, 200);

  // The audit listing reads the caller's chain only: naming another
  // tenant's is refused (the tenant routes take no ?tenant=, only the
  // operator's do), and the caller's own listing holds its records only.
  for (const std::string target :
       {"/api/v1/audit?tenant=iso-a&limit=1000", "/api/v1/audit/verify?tenant=iso-a"}) {
    Reply b_reads_a = b.get(target);
    EXPECT_EQ(b_reads_a.status, 400) << target << ": " << b_reads_a.describe();
    EXPECT_EQ(b_reads_a.code(), "invalid_parameter") << target;
  }
  Reply b_reads_own = b.get("/api/v1/audit?limit=1000");
  ASSERT_EQ(b_reads_own.status, 200) << b_reads_own.describe();
  for (const auto& rec : list_of(b_reads_own, "records")) {
    EXPECT_EQ(rec.value("tenant", ""), "iso-b") << rec.dump();
  }

  EXPECT_EQ(a.post("/api/v1/executions/" + waiting_id + "/cancel", json::object()).status, 200);
}

// ---- 6. limits -----------------------------------------------------------------

TEST_F(TenancyTest, RequestsPerSecondAnswer429WithRetryAfter) {
  Api o = op();
  const std::string secret =
      create_tenant(o, "lim-rps", {{"requests_per_second", 2}, {"burst", 2}});
  ASSERT_FALSE(secret.empty());
  Api t(port(), secret);
  Reply limited;
  int ok = 0;
  // Refusals are answered after a pause (a tarpit), so the bucket refills
  // while the loop runs: the bound is the burst plus what the elapsed time
  // allows, whatever the pace.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    Reply r = t.get("/api/v1/flows");
    if (r.status == 200) ++ok;
    if (r.status == 429) limited = r;
  }
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LE(ok, 2 + static_cast<int>(2 * elapsed_s) + 1)
      << "10 requests in a burst of 2 at 2/s over " << elapsed_s << " s";
  EXPECT_LT(ok, 10);
  ASSERT_TRUE(is_error(limited, 429, "rate_limited"));
  const int64_t wait = retry_after(limited);
  EXPECT_GE(wait, 1) << limited.header("retry-after");
  EXPECT_LE(wait, 2) << limited.header("retry-after");
  EXPECT_NE(error_message(limited).find("requests"), std::string::npos) << limited.body;
  // Other tenants are not affected.
  Api other(port(), node_->key());
  EXPECT_EQ(other.get("/api/v1/flows").status, 200);
  // After Retry-After the tenant is served again.
  std::this_thread::sleep_for(std::chrono::seconds(wait));
  EXPECT_EQ(t.get("/api/v1/flows").status, 200);
  // Raising the limit applies at once.
  Reply patch = o.request("PATCH", "/admin/v1/tenants/lim-rps",
                          R"({"limits": {"requests_per_second": 0, "burst": 0}})",
                          {{"Content-Type", "application/json"}});
  ASSERT_EQ(patch.status, 200) << patch.describe();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.get("/api/v1/flows").status, 200) << i;
}

TEST_F(TenancyTest, TenantConcurrencyLimitAnswers429NamingIt) {
  Api o = op();
  const std::string secret = create_tenant(o, "lim-conc", {{"max_concurrent_executions", 1}});
  ASSERT_FALSE(secret.empty());
  Api t(port(), secret);
  create_flow(t, delay_flow("lim-wait", 60000));
  const std::string first = start_run(t, "lim-wait");
  ASSERT_FALSE(first.empty());
  Reply second = t.post("/api/v1/flows/lim-wait/run", {{"input", json::object()}});
  EXPECT_TRUE(is_error(second, 429, "rate_limited"));
  EXPECT_GE(retry_after(second), 1) << second.header("retry-after");
  const std::string msg = error_message(second);
  EXPECT_TRUE(msg.find("running") != std::string::npos ||
              msg.find("concurrent") != std::string::npos)
      << "the message should name the concurrency limit: " << msg;
  EXPECT_EQ(t.get("/api/v1/executions?flow_id=lim-wait").doc()["executions"].size(), 1u);
  const json runs = poll_audit(t, "/api/v1/audit?action=execution.run", [](const json& recs) {
    for (const auto& r : recs) {
      if (r.value("outcome", "") == "rate_limited") return true;
    }
    return false;
  });
  EXPECT_EQ(runs.size(), 2u) << "one accepted and one refused run: " << runs.dump();
  const json usage = o.get("/admin/v1/tenants/lim-conc").doc()["usage"];
  EXPECT_EQ(usage.value("running_executions", -1), 1) << usage.dump();
  // Once the first ends, a run is accepted again.
  ASSERT_EQ(t.post("/api/v1/executions/" + first + "/cancel", json::object()).status, 200);
  Reply again;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    again = t.post("/api/v1/flows/lim-wait/run", {{"input", json::object()}});
    if (again.status != 429) break;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(again.status, 202) << again.describe();
  EXPECT_EQ(t.post("/api/v1/executions/" + again.doc().value("execution_id", "") + "/cancel",
                   json::object())
                .status,
            200);
}

TEST_F(TenancyTest, MonthlyQuotaAnswers429QuotaExceeded) {
  Api o = op();
  const std::string secret = create_tenant(o, "lim-quota", {{"max_executions_per_month", 2}});
  ASSERT_FALSE(secret.empty());
  Api t(port(), secret);
  create_flow(t, echo_flow("lim-echo"));
  for (int i = 0; i < 2; ++i) {
    Reply r = t.post("/api/v1/flows/lim-echo/run?wait_ms=10000", {{"input", {{"x", i}}}});
    ASSERT_EQ(r.status, 200) << r.describe();
  }
  Reply third = t.post("/api/v1/flows/lim-echo/run?wait_ms=10000", {{"input", {{"x", 3}}}});
  EXPECT_TRUE(is_error(third, 429, "quota_exceeded"));
  EXPECT_GE(retry_after(third), 1) << third.header("retry-after");
  EXPECT_LE(retry_after(third), 31 * 24 * 3600) << third.header("retry-after");
  EXPECT_NE(error_message(third).find("month"), std::string::npos) << third.body;
  EXPECT_EQ(t.get("/api/v1/executions?flow_id=lim-echo").doc()["executions"].size(), 2u);
  // Raising the quota lets the next run in.
  Reply patch = o.request("PATCH", "/admin/v1/tenants/lim-quota",
                          R"({"limits": {"max_executions_per_month": 3}})",
                          {{"Content-Type", "application/json"}});
  ASSERT_EQ(patch.status, 200) << patch.describe();
  EXPECT_EQ(t.post("/api/v1/flows/lim-echo/run?wait_ms=10000", json::object()).status, 200);
  EXPECT_TRUE(
      is_error(t.post("/api/v1/flows/lim-echo/run", json::object()), 429, "quota_exceeded"));
}

TEST_F(TenancyTest, FlowRateLimitAnswers429) {
  Api t(port(), node_->key());
  json def = echo_flow("lim-rate");
  def["config"] = {{"rate_limit", {{"max_per_minute", 2}, {"max_per_hour", 100}}}};
  create_flow(t, def);
  // The window is the clock's minute: do not start right before it turns.
  const int64_t into_minute = now_ms() % 60000;
  if (into_minute > 55000)
    std::this_thread::sleep_for(std::chrono::milliseconds(60100 - into_minute));
  for (int i = 0; i < 2; ++i) {
    Reply r = t.post("/api/v1/flows/lim-rate/run", {{"input", {{"x", i}}}});
    ASSERT_EQ(r.status, 202) << r.describe();
  }
  Reply third = t.post("/api/v1/flows/lim-rate/run", {{"input", {{"x", 3}}}});
  EXPECT_TRUE(is_error(third, 429, "rate_limited"));
  EXPECT_GE(retry_after(third), 1) << third.header("retry-after");
  EXPECT_LE(retry_after(third), 60) << third.header("retry-after");
  EXPECT_NE(error_message(third).find("minute"), std::string::npos) << third.body;
  EXPECT_EQ(t.get("/api/v1/executions?flow_id=lim-rate").doc()["executions"].size(), 2u);
  // Other flows of the tenant are not limited by it.
  create_flow(t, echo_flow("lim-rate-free"));
  EXPECT_EQ(t.post("/api/v1/flows/lim-rate-free/run", json::object()).status, 202);
  // A bad rate_limit is an invalid flow.
  json bad = echo_flow("lim-rate-bad");
  bad["config"] = {{"rate_limit", {{"max_per_minute", 0}, {"per_day", 1}}}};
  Reply r = t.post("/api/v1/flows", bad);
  EXPECT_TRUE(is_error(r, 400, "invalid_flow"));
  EXPECT_TRUE(pointers(r).count("/config/rate_limit/max_per_minute")) << r.body;
  EXPECT_TRUE(pointers(r).count("/config/rate_limit/per_day")) << r.body;
}

TEST_F(TenancyTest, SuspendedTenantIs403UntilReactivated) {
  Api o = op();
  const std::string secret = create_tenant(o, "lim-susp");
  ASSERT_FALSE(secret.empty());
  Api t(port(), secret);
  create_flow(t, echo_flow("susp"));
  auto patch = [&](const std::string& status) {
    return o.request("PATCH", "/admin/v1/tenants/lim-susp", json{{"status", status}}.dump(),
                     {{"Content-Type", "application/json"}});
  };
  Reply s = patch("suspended");
  ASSERT_EQ(s.status, 200) << s.describe();
  EXPECT_EQ(s.doc().value("status", ""), "suspended");
  EXPECT_EQ(o.get("/admin/v1/tenants/lim-susp").doc().value("status", ""), "suspended");
  EXPECT_TRUE(is_error(t.get("/api/v1/flows"), 403, "tenant_suspended"));
  EXPECT_TRUE(is_error(t.post("/api/v1/flows/susp/run", json::object()), 403, "tenant_suspended"));
  EXPECT_TRUE(is_error(http_request(port(), "GET", "/api/v1/flows", "", basic("lim-susp", secret)),
                       403, "tenant_suspended"));
  EXPECT_EQ(t.get("/api/v1/executions?flow_id=susp").status, 403);
  Reply a = patch("active");
  ASSERT_EQ(a.status, 200) << a.describe();
  EXPECT_EQ(t.get("/api/v1/flows").status, 200);
  Reply run = t.post("/api/v1/flows/susp/run?wait_ms=10000", {{"input", {{"x", 1}}}});
  EXPECT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(t.get("/api/v1/executions?flow_id=susp").doc()["executions"].size(), 1u);
}

TEST_F(TenancyTest, DeletedTenantsKeysAre401) {
  Api o = op();
  const std::string secret = create_tenant(o, "lim-del");
  ASSERT_FALSE(secret.empty());
  Api owner(port(), secret);
  const Key admin = create_key(owner, "admin");
  ASSERT_EQ(http_request(port(), "GET", "/api/v1/keys", "", bearer(admin.secret)).status, 200);
  Reply del = o.del("/admin/v1/tenants/lim-del");
  ASSERT_EQ(del.status, 204) << del.describe();
  for (const std::string& key : {secret, admin.secret}) {
    EXPECT_TRUE(is_error(http_request(port(), "GET", "/api/v1/flows", "", bearer(key)), 401,
                         "unauthorized"));
    EXPECT_TRUE(is_error(http_request(port(), "GET", "/api/v1/flows", "", basic("lim-del", key)),
                         401, "unauthorized"));
  }
  EXPECT_TRUE(is_error(o.get("/admin/v1/tenants/lim-del"), 404, "not_found"));
  EXPECT_TRUE(is_error(o.del("/admin/v1/tenants/lim-del"), 404, "not_found"));
  for (const auto& x : list_of(o.get("/admin/v1/tenants"), "tenants")) {
    EXPECT_NE(x.value("id", ""), "lim-del");
  }
}

// Every execution a tenant starts is one of its executions for the limits: a
// replay (a fork) is listed among the month's executions like a run, so it
// may not take the tenant past its monthly quota or its concurrency limit.
TEST_F(TenancyTest, ReplaysCountAgainstTheTenantsLimits) {
  Api o = op();
  const std::string secret = create_tenant(o, "lim-fork", {{"max_executions_per_month", 2}});
  ASSERT_FALSE(secret.empty());
  Api t(port(), secret);
  create_flow(t, echo_flow("fork-echo"));
  Reply run = t.post("/api/v1/flows/fork-echo/run?wait_ms=10000", {{"input", {{"x", 1}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string source = run.doc()["execution_id"];
  Reply replay = t.post("/api/v1/executions/" + source + "/replay", json::object());
  ASSERT_TRUE(replay.status == 201 || replay.status == 429) << replay.describe();
  Reply second = t.post("/api/v1/executions/" + source + "/replay", json::object());
  Reply another = t.post("/api/v1/flows/fork-echo/run", {{"input", {{"x", 2}}}});
  const size_t executions = list_of(t.get("/api/v1/executions?limit=1000"), "executions").size();
  EXPECT_LE(executions, 2u) << "quota 2, yet the month lists " << executions
                            << " executions; replays answered " << replay.status << ", "
                            << second.status << "; the run after them " << another.status;

  Reply patch = o.request("PATCH", "/admin/v1/tenants/lim-fork",
                          R"({"limits": {"max_executions_per_month": 0,
                                         "max_concurrent_executions": 1}})",
                          {{"Content-Type", "application/json"}});
  ASSERT_EQ(patch.status, 200) << patch.describe();
  create_flow(t, delay_flow("fork-wait", 60000));
  const std::string waiting = start_run(t, "fork-wait");
  ASSERT_EQ(wait_status(t, waiting, "waiting").value("status", ""), "waiting");
  Reply fork = t.post("/api/v1/executions/" + waiting + "/replay", json::object());
  const json usage = o.get("/admin/v1/tenants/lim-fork").doc()["usage"];
  EXPECT_LE(usage.value("running_executions", 0), 1)
      << "limit 1, yet " << usage.dump() << " after a replay answered " << fork.describe();
  for (const std::string& id : {waiting, fork.doc().value("execution_id", "")}) {
    if (!id.empty()) t.post("/api/v1/executions/" + id + "/cancel", json::object());
  }
}

// Deleting a tenant makes its data unreachable through the API; creating a
// tenant with the same id later must not hand that data to the new owner.
TEST_F(TenancyTest, ARecreatedTenantIdInheritsNothing) {
  Api o = op();
  const std::string old_secret = create_tenant(o, "reused");
  ASSERT_FALSE(old_secret.empty());
  Api old_owner(port(), old_secret);
  create_flow(old_owner, echo_flow("old-flow"));
  Reply run = old_owner.post("/api/v1/flows/old-flow/run?wait_ms=10000", {{"input", {{"x", 1}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string old_exec = run.doc()["execution_id"];
  ASSERT_EQ(old_owner.put("/api/v1/secrets/OLD_SECRET", {{"value", "old"}}).status, 201);
  ASSERT_EQ(o.del("/admin/v1/tenants/reused").status, 204);

  Reply again = o.post("/admin/v1/tenants", {{"id", "reused"}});
  if (again.status == 409) return;  // refusing to reuse the id is a fine answer too
  ASSERT_EQ(again.status, 201) << again.describe();
  Api new_owner(port(), again.doc()["owner_key"].value("secret", ""));
  EXPECT_TRUE(is_error(old_owner.get("/api/v1/flows"), 401, "unauthorized"));
  Reply flows = new_owner.get("/api/v1/flows");
  EXPECT_EQ(list_of(flows, "flows").size(), 0u) << flows.body;
  EXPECT_EQ(new_owner.get("/api/v1/flows/old-flow").status, 404);
  Reply executions = new_owner.get("/api/v1/executions");
  EXPECT_EQ(list_of(executions, "executions").size(), 0u) << executions.body;
  EXPECT_EQ(new_owner.get("/api/v1/executions/" + old_exec).status, 404);
  Reply secrets = new_owner.get("/api/v1/secrets");
  EXPECT_EQ(list_of(secrets, "secrets").size(), 0u) << secrets.body;
}

// ---- 3. secrets never at rest, in logs or in answers --------------------------

// A flow sends a vault secret to a local peer in a header, the query and a
// JSON body; the peer echoes the request (and with `as_key`, also answers
// with the token as an object key, as APIs indexing by token do), then a
// second call is refused with the token in the error body. The peer must
// have received the value; the node must have kept it nowhere.
void check_secret_never_kept(bool as_key) {
  const std::string value = "sv" + random_text(46);
  const std::string canary = "cn" + random_text(46);
  testing::HttpTestServer server([as_key](const testing::TestRequest& req) {
    if (req.path == "/reject") {
      return testing::TestResponse::text(400, "refused credentials " + req.header("authorization"));
    }
    json body = json::parse(req.body, nullptr, false);
    json echo = {{"method", req.method},
                 {"path", req.path},
                 {"query", req.query},
                 {"headers", req.headers},
                 {"body", body.is_discarded() ? json(req.body) : body}};
    if (as_key) echo["by_token"] = {{req.header("x-token"), "seen"}};
    return testing::TestResponse::json(200, echo);
  });
  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  std::vector<Reply> responses;
  auto keep = [&](Reply r) {
    responses.push_back(r);
    return r;
  };

  Reply put = keep(api.put("/api/v1/secrets/LEAK_TOKEN", {{"value", value}}));
  ASSERT_EQ(put.status, 201) << put.describe();
  const json marker = {{"$secret", "LEAK_TOKEN"}};
  json flow = {{"id", "leaky"},
               {"steps",
                {{{"id", "call"},
                  {"type", "action"},
                  {"config",
                   {{"tool_id", "http"},
                    {"action", "request"},
                    {"parameters",
                     {{"method", "POST"},
                      {"url", server.url("/echo")},
                      {"headers", {{"X-Token", marker}}},
                      {"query", {{"t", marker}, {"n", "1"}}},
                      {"body", {{"token", marker}, {"canary", {{"$ref", "input.canary"}}}}}}}}},
                  {"on_success", "reject"}},
                 {{"id", "reject"},
                  {"type", "action"},
                  {"config",
                   {{"tool_id", "http"},
                    {"action", "request"},
                    {"parameters",
                     {{"method", "GET"},
                      {"url", server.url("/reject")},
                      {"headers", {{"Authorization", marker}}}}}}}}}}};
  Reply created = keep(api.post("/api/v1/flows", flow));
  ASSERT_EQ(created.status, 201) << created.describe();
  Reply run =
      keep(api.post("/api/v1/flows/leaky/run?wait_ms=20000", {{"input", {{"canary", canary}}}}));
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  EXPECT_EQ(run.doc().value("status", ""), "failed") << run.body;

  // The peer got the value in the header, the query and the JSON body.
  std::vector<testing::TestRequest> seen = server.received();
  ASSERT_GE(seen.size(), 2u);
  bool echoed = false, rejected = false;
  for (const auto& req : seen) {
    if (req.path == "/echo") {
      echoed = true;
      EXPECT_EQ(req.header("x-token"), value);
      EXPECT_EQ(req.query.count("t") ? req.query.at("t") : "", value) << req.target;
      json body = json::parse(req.body, nullptr, false);
      EXPECT_EQ(body.value("token", ""), value) << req.body;
      EXPECT_EQ(body.value("canary", ""), canary) << req.body;
    } else if (req.path == "/reject") {
      rejected = true;
      EXPECT_EQ(req.header("authorization"), value);
    }
  }
  EXPECT_TRUE(echoed && rejected);

  // What the tools answered was scrubbed before it was recorded.
  Reply view = keep(api.get("/api/v1/executions/" + id));
  ASSERT_EQ(view.status, 200) << view.describe();
  const json steps = view.doc()["steps"];
  const json echo = steps["call"]["output"]["body"];
  EXPECT_EQ(echo["headers"].value("x-token", ""), "***") << echo.dump();
  EXPECT_EQ(echo["query"].value("t", ""), "***") << echo.dump();
  EXPECT_EQ(echo["body"].value("token", ""), "***") << echo.dump();
  EXPECT_EQ(echo["body"].value("canary", ""), canary) << echo.dump();
  EXPECT_EQ(echo.dump().find(value), std::string::npos)
      << "the tool's answer was recorded with the secret in it: " << echo.dump();
  EXPECT_EQ(steps["reject"]["error"].value("code", ""), "http_400") << steps.dump();
  EXPECT_EQ(steps["reject"]["error"].value("message", ""), "***") << steps.dump();

  // Every other view of the execution, and the audit trail.
  const uint64_t last = view.doc().value("last_seq", 0);
  ASSERT_GT(last, 0u);
  const std::string e = "/api/v1/executions/" + id;
  keep(api.get(e + "/events?limit=1000"));
  keep(api.get(e + "/timeline"));
  for (uint64_t seq = 1; seq <= last; ++seq) {
    keep(api.get(e + "/state?at_seq=" + std::to_string(seq)));
  }
  keep(api.get(e + "/diff?from_seq=1&to_seq=" + std::to_string(last)));
  keep(api.get("/api/v1/executions?limit=1000"));
  keep(api.get("/api/v1/secrets"));
  keep(api.get("/api/v1/flows/leaky"));
  const json tool_calls = poll_audit(api, "/api/v1/audit?action=tool.call",
                                     [](const json& recs) { return recs.size() >= 2; });
  EXPECT_EQ(tool_calls.size(), 2u) << tool_calls.dump();
  keep(api.get("/api/v1/audit?limit=1000"));
  keep(api.get("/api/v1/audit/report"));
  keep(api.get("/api/v1/audit/verify"));
  keep(http_request(node.port(), "GET", "/metrics"));
  bool canary_seen = false;
  for (const auto& r : responses) {
    EXPECT_GT(r.status, 0) << r.error;
    const size_t at = r.body.find(value);
    EXPECT_EQ(at, std::string::npos)
        << "secret in a response: ..." << r.body.substr(at < 200 ? 0 : at - 200, 260) << "...";
    for (const auto& [k, v] : r.headers) EXPECT_EQ(v.find(value), std::string::npos) << k;
    canary_seen = canary_seen || r.body.find(canary) != std::string::npos;
  }
  EXPECT_TRUE(canary_seen) << "the responses do not even hold the run's input";

  // At rest: every byte of the data dir, with the node stopped (so nothing
  // is left in memory only), and the node's log.
  ASSERT_TRUE(node.stop()) << node.log();
  size_t scanned = 0;
  const auto with_value = files_containing(node.data_dir(), value, &scanned);
  EXPECT_TRUE(with_value.empty()) << "the secret is stored in plaintext in " << with_value[0];
  EXPECT_GT(scanned, 3u);
  const auto with_canary = files_containing(node.data_dir(), canary, &scanned);
  EXPECT_FALSE(with_canary.empty()) << "the scan does not find even the run's input";
  const std::string log = node.log();
  EXPECT_EQ(log.find(value), std::string::npos) << log;
}

TEST(TenancySecrets, ValueReachesThePeerButNoDiskLogOrResponse) {
  check_secret_never_kept(false);
}

// The same when the tool's answer holds the value as an object key: "a tool
// answer that contains the value is scrubbed before it is recorded".
TEST(TenancySecrets, ValueAsAKeyOfAToolAnswerIsNotKeptEither) {
  check_secret_never_kept(true);
}

// ---- 4. the audit trail ---------------------------------------------------------

TEST(TenancyAudit, RecordsChainAndATamperedRecordIsNamed) {
  NodeProcess::Options options;
  options.env.emplace_back("YANTRA_OPERATOR_KEY", kOperatorKey);
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api o(node.port(), kOperatorKey);
  const std::string owner_secret = create_tenant(o, "aud");
  ASSERT_FALSE(owner_secret.empty());
  Api owner(node.port(), owner_secret);
  const Key admin_key = create_key(owner, "admin");
  const Key editor_key = create_key(owner, "editor");
  const Key viewer_key = create_key(owner, "viewer");
  Api admin(node.port(), admin_key.secret);
  Api editor(node.port(), editor_key.secret);
  Api viewer(node.port(), viewer_key.secret);
  // Everything above is before t0: the report from t0 covers exactly what follows.
  std::this_thread::sleep_for(5ms);
  const int64_t t0 = now_ms();

  Reply created =
      editor.post("/api/v1/flows", echo_flow("aud-flow"), {{"X-Request-Id", "aud-create-1"}});
  ASSERT_EQ(created.status, 201) << created.describe();
  EXPECT_EQ(created.header("x-request-id"), "aud-create-1");
  Reply denied =
      viewer.post("/api/v1/flows", echo_flow("aud-denied"), {{"X-Request-Id", "aud-denied-1"}});
  EXPECT_TRUE(is_error(denied, 403, "forbidden"));
  Headers wrong = basic("aud", "not-a-key");
  wrong.emplace_back("X-Request-Id", "aud-auth-1");
  EXPECT_TRUE(
      is_error(http_request(node.port(), "GET", "/api/v1/flows", "", wrong), 401, "unauthorized"));
  Headers anon = bearer("not-a-key-either");
  anon.emplace_back("X-Request-Id", "aud-anon-1");
  EXPECT_TRUE(is_error(http_request(node.port(), "POST", "/api/v1/flows", "{}", anon), 401,
                       "unauthorized"));
  Reply run = editor.post("/api/v1/flows/aud-flow/run?wait_ms=10000", {{"input", {{"x", 1}}}},
                          {{"X-Request-Id", "aud-run-1"}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string exec_id = run.doc()["execution_id"];
  // An unusable X-Request-Id is replaced, never echoed.
  const std::string longest(64, 'q');
  EXPECT_EQ(admin.get("/api/v1/audit/verify", {{"X-Request-Id", longest}}).header("x-request-id"),
            longest);
  const std::string too_long(65, 'r');
  Reply replaced = admin.get("/api/v1/audit", {{"X-Request-Id", too_long}});
  EXPECT_FALSE(replaced.header("x-request-id").empty());
  EXPECT_NE(replaced.header("x-request-id"), too_long);
  EXPECT_LE(replaced.header("x-request-id").size(), 64u);
  const int64_t t1 = now_ms();

  const json records = poll_audit(admin, "/api/v1/audit?limit=1000", [](const json& recs) {
    bool tool = false;
    for (const auto& r : recs) tool = tool || r.value("action", "") == "tool.call";
    return has_request_id(recs, "aud-create-1") && has_request_id(recs, "aud-denied-1") &&
           has_request_id(recs, "aud-auth-1") && has_request_id(recs, "aud-run-1") && tool;
  });
  const json create = find_record(records, "aud-create-1");
  ASSERT_TRUE(create.is_object()) << records.dump();
  EXPECT_EQ(create.value("tenant", ""), "aud");
  EXPECT_EQ(create.value("key_id", ""), editor_key.id);
  EXPECT_EQ(create.value("role", ""), "editor");
  EXPECT_EQ(create.value("action", ""), "flow.create");
  EXPECT_EQ(create.value("outcome", ""), "ok");
  EXPECT_FALSE(create.value("resource", "").empty());
  EXPECT_GE(create.value("time_ms", int64_t{0}), t0);
  EXPECT_LE(create.value("time_ms", int64_t{0}), t1);
  EXPECT_EQ(parse_iso_ms(create.value("time", "")), create.value("time_ms", int64_t{0}));
  EXPECT_EQ(create.value("hash", "").size(), 64u);
  const json forbidden = find_record(records, "aud-denied-1");
  ASSERT_TRUE(forbidden.is_object()) << records.dump();
  EXPECT_EQ(forbidden.value("action", ""), "flow.create");
  EXPECT_EQ(forbidden.value("outcome", ""), "forbidden");
  EXPECT_EQ(forbidden.value("key_id", ""), viewer_key.id);
  EXPECT_EQ(forbidden.value("role", ""), "viewer");
  const json failed_auth = find_record(records, "aud-auth-1");
  ASSERT_TRUE(failed_auth.is_object()) << records.dump();
  EXPECT_EQ(failed_auth.value("action", ""), "auth.failed");
  EXPECT_EQ(failed_auth.value("outcome", ""), "unauthorized");
  EXPECT_EQ(failed_auth.value("tenant", ""), "aud");
  EXPECT_EQ(failed_auth.value("key_id", ""), "");
  const json run_rec = find_record(records, "aud-run-1");
  ASSERT_TRUE(run_rec.is_object()) << records.dump();
  EXPECT_EQ(run_rec.value("action", ""), "execution.run");
  EXPECT_EQ(run_rec.value("outcome", ""), "ok");
  EXPECT_EQ(run_rec.value("key_id", ""), editor_key.id);
  json tool;
  for (const auto& r : records) {
    if (r.value("action", "") == "tool.call") tool = r;
  }
  ASSERT_TRUE(tool.is_object()) << records.dump();
  EXPECT_EQ(tool.value("role", ""), "system");
  EXPECT_EQ(tool.value("resource", ""), "executions/" + exec_id + "/steps/a");
  EXPECT_EQ(tool.value("outcome", ""), "ok");
  EXPECT_EQ(tool.value("tenant", ""), "aud");
  // key.create records of the setup, with the owner's role.
  size_t key_creates = 0;
  for (const auto& r : records) {
    if (r.value("action", "") == "key.create" && r.value("role", "") == "owner") ++key_creates;
  }
  EXPECT_EQ(key_creates, 3u) << records.dump();
  // Oldest first, seqs dense from 1, only this tenant's records.
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].value("seq", uint64_t{0}), i + 1) << records[i].dump();
    EXPECT_EQ(records[i].value("tenant", ""), "aud") << records[i].dump();
    if (i > 0) {
      EXPECT_GE(records[i].value("time_ms", int64_t{0}),
                records[i - 1].value("time_ms", int64_t{0}));
    }
  }
  // A failure without a tenant name goes to the "-" chain, which the operator reads.
  const json unnamed = poll_audit(o, "/admin/v1/audit?tenant=-&limit=1000", [](const json& recs) {
    return has_request_id(recs, "aud-anon-1");
  });
  const json anon_rec = find_record(unnamed, "aud-anon-1");
  ASSERT_TRUE(anon_rec.is_object()) << unnamed.dump();
  EXPECT_EQ(anon_rec.value("action", ""), "auth.failed");
  EXPECT_EQ(anon_rec.value("tenant", ""), "");
  EXPECT_FALSE(has_request_id(records, "aud-anon-1"));
  Reply op_view = o.get("/admin/v1/audit?tenant=aud&limit=1000");
  ASSERT_EQ(op_view.status, 200) << op_view.describe();
  EXPECT_TRUE(has_request_id(op_view.doc()["records"], "aud-create-1"));

  // Filters: action, paging, time (Unix ms and RFC 3339).
  const json creates = admin.get("/api/v1/audit?action=flow.create").doc()["records"];
  EXPECT_EQ(creates.size(), 2u) << creates.dump();
  for (const auto& r : creates) EXPECT_EQ(r.value("action", ""), "flow.create");
  json paged = json::array();
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    Reply r = admin.get("/api/v1/audit?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.describe();
    const json doc = r.doc();
    EXPECT_LE(doc["records"].size(), 2u);
    for (const auto& rec : doc["records"]) paged.push_back(rec);
    if (doc["next_cursor"].is_null()) break;
    cursor = doc["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(paged, records);
  const json since =
      admin.get("/api/v1/audit?limit=1000&from=" + std::to_string(t0)).doc()["records"];
  for (const auto& r : since) EXPECT_GE(r.value("time_ms", int64_t{0}), t0) << r.dump();
  EXPECT_TRUE(has_request_id(since, "aud-create-1"));
  EXPECT_LT(since.size(), records.size());  // the setup's key.create records are older
  EXPECT_EQ(admin.get("/api/v1/audit?to=2000-01-01T00:00:00Z").doc()["records"].size(), 0u);
  EXPECT_EQ(admin.get("/api/v1/audit?from=2999-01-01T00:00:00Z").doc()["records"].size(), 0u);
  EXPECT_EQ(admin.get("/api/v1/audit?from=2000-01-01T00:00:00Z&limit=1000").doc()["records"],
            records);
  EXPECT_TRUE(is_error(admin.get("/api/v1/audit?from=yesterday"), 400, "invalid_parameter"));
  // A date that does not exist is refused rather than rolled over into
  // March (as timegm did), and a numeric offset names the same instant as Z.
  EXPECT_TRUE(
      is_error(admin.get("/api/v1/audit?from=2026-02-31T00:00:00Z"), 400, "invalid_parameter"));
  EXPECT_EQ(admin.get("/api/v1/audit?from=2000-01-01T01:00:00%2B01:00&limit=1000").doc()["records"],
            records);

  // Report: counts per action and outcome since t0.
  Reply report = admin.get("/api/v1/audit/report?from=" + std::to_string(t0));
  ASSERT_EQ(report.status, 200) << report.describe();
  const json counts = report.doc();
  const json expected = {{"flow.create", {{"ok", 1}, {"forbidden", 1}}},
                         {"auth.failed", {{"unauthorized", 1}}},
                         {"execution.run", {{"ok", 1}}},
                         {"tool.call", {{"ok", 1}}}};
  EXPECT_EQ(counts["actions"], expected) << report.body;
  EXPECT_EQ(counts.value("total", 0), 5) << report.body;

  // The chain verifies.
  Reply verify = admin.get("/api/v1/audit/verify");
  ASSERT_EQ(verify.status, 200) << verify.describe();
  // One chain on a single node: the node's own (broken_partition is the
  // partition of a broken chain in a cluster, docs/cluster.md).
  EXPECT_EQ(verify.doc(), json({{"ok", true},
                                {"records", records.size()},
                                {"chains", 1},
                                {"first_broken_seq", nullptr},
                                {"reason", nullptr},
                                {"broken_partition", nullptr}}));
  // The operator's changes to a tenant are in that tenant's chain.
  Reply patched = o.request("PATCH", "/admin/v1/tenants/aud", R"({"name": "Audited"})",
                            {{"Content-Type", "application/json"}, {"X-Request-Id", "aud-op-1"}});
  ASSERT_EQ(patched.status, 200) << patched.describe();
  const json with_op =
      poll_audit(admin, "/api/v1/audit?action=tenant.&limit=1000",
                 [](const json& recs) { return has_request_id(recs, "aud-op-1"); });
  const json op_rec = find_record(with_op, "aud-op-1");
  ASSERT_TRUE(op_rec.is_object()) << with_op.dump();
  EXPECT_EQ(op_rec.value("action", ""), "tenant.update");
  EXPECT_EQ(op_rec.value("role", ""), "operator");
  EXPECT_EQ(op_rec.value("outcome", ""), "ok");
  EXPECT_EQ(op_rec.value("tenant", ""), "aud");
  const uint64_t tampered_seq = create.value("seq", uint64_t{0});
  ASSERT_GT(tampered_seq, 0u);

  // With the node stopped, change one record's outcome in RocksDB, leaving
  // its hash as it was.
  ASSERT_TRUE(node.stop()) << node.log();
  {
    auto store =
        storage::Store::open(storage::StoreOptions{node.data_dir(), storage::Durability::kSync});
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    const storage::internal::Db& db = storage::internal::db_of(*store.value());
    const std::string prefix = std::string("c") + "aud" + std::string(1, '\0');
    std::string key;
    v1::AuditRecord rec;
    size_t rows = 0;
    Status scanned = storage::internal::scan_prefix(
        db, db.audit, prefix, [&](const rocksdb::Slice& k, const rocksdb::Slice& value) -> Status {
          ++rows;
          v1::AuditRecord r;
          if (!r.ParseFromString(value.ToString()))
            return Status(Errc::kInternalError, "record does not parse");
          if (r.request_id() == "aud-create-1") {
            key = k.ToString();
            rec = r;
          }
          return Status::ok();
        });
    ASSERT_TRUE(scanned.is_ok()) << scanned.to_string();
    EXPECT_EQ(rows, records.size() + 1);  // + the operator's tenant.update
    ASSERT_FALSE(key.empty()) << "no stored record for aud-create-1";
    ASSERT_EQ(rec.seq(), tampered_seq);
    ASSERT_EQ(rec.outcome(), "ok");
    rec.set_outcome("error");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(db.rocks->Put(wo, db.audit, key, rec.SerializeAsString()).ok());
  }
  ASSERT_TRUE(node.start(&error)) << error;
  Api admin2(node.port(), admin_key.secret);
  Api o2(node.port(), kOperatorKey);
  // The change is there to be seen...
  const json after = admin2.get("/api/v1/audit?limit=1000").doc()["records"];
  const json changed = find_record(after, "aud-create-1");
  ASSERT_TRUE(changed.is_object()) << after.dump();
  EXPECT_EQ(changed.value("outcome", ""), "error");
  // ...and verify names the record, for the tenant and for the operator,
  // also after new records were appended behind it.
  EXPECT_EQ(admin2.post("/api/v1/keys", {{"role", "viewer"}}).status, 201);
  for (Api* who : {&admin2, &o2}) {
    Reply v = who == &admin2 ? who->get("/api/v1/audit/verify")
                             : who->get("/admin/v1/audit/verify?tenant=aud");
    ASSERT_EQ(v.status, 200) << v.describe();
    const json doc = v.doc();
    EXPECT_EQ(doc.value("ok", true), false) << v.body;
    EXPECT_EQ(doc["first_broken_seq"], tampered_seq) << v.body;
    EXPECT_TRUE(doc["reason"].is_string() && !doc["reason"].get<std::string>().empty()) << v.body;
  }
  // Other chains are intact.
  Reply others = o2.get("/admin/v1/audit/verify?tenant=-");
  ASSERT_EQ(others.status, 200) << others.describe();
  EXPECT_EQ(others.doc().value("ok", false), true) << others.body;
  EXPECT_TRUE(node.stop()) << node.log();
}

// ---- 5. the durable run queue -------------------------------------------------

TEST(TenancyQueue, QueuedRunsSurviveARestartAndStartInOrderOneAtATime) {
  NodeProcess::Options options;
  options.env.emplace_back("YANTRA_OPERATOR_KEY", kOperatorKey);
  NodeProcess node(options);
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api api(node.port(), node.key());
  json def = delay_flow("one-at-a-time", 300);
  def["config"] = {{"max_concurrent_executions", 1}};
  create_flow(api, def);

  constexpr int kRuns = 6;
  std::vector<std::string> ids;
  for (int i = 0; i < kRuns; ++i) {
    Reply r = api.post("/api/v1/flows/one-at-a-time/run", {{"input", {{"n", i}}}});
    ASSERT_EQ(r.status, 202) << r.describe();
    EXPECT_EQ(r.doc().value("status", ""), i == 0 ? "running" : "queued") << i << ": " << r.body;
    ids.push_back(r.doc()["execution_id"]);
  }
  // One more, cancelled while queued: it ends without ever starting.
  Reply extra = api.post("/api/v1/flows/one-at-a-time/run", json::object());
  ASSERT_EQ(extra.status, 202) << extra.describe();
  EXPECT_EQ(extra.doc().value("status", ""), "queued");
  const std::string cancelled = extra.doc()["execution_id"];
  Reply cancel = api.post("/api/v1/executions/" + cancelled + "/cancel", json::object());
  EXPECT_EQ(cancel.status, 200) << cancel.describe();
  for (int i = 2; i < kRuns; ++i) {
    Reply r = api.get("/api/v1/executions/" + ids[i]);
    EXPECT_EQ(r.doc().value("status", ""), "queued") << i << ": " << r.body;
  }
  Api o(node.port(), kOperatorKey);
  const json usage = o.get("/admin/v1/tenants/default").doc()["usage"];
  EXPECT_LE(usage.value("running_executions", -1), 1) << usage.dump();
  EXPECT_GE(usage.value("queued_executions", -1), 3) << usage.dump();

  // Restart while most are still queued.
  const auto t_stop = std::chrono::steady_clock::now();
  ASSERT_TRUE(node.stop()) << node.log();
  const auto t_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(node.start(&error)) << error;
  const auto t_ready = std::chrono::steady_clock::now();
  std::cout << "stop took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(t_start - t_stop).count()
            << " ms, start "
            << std::chrono::duration_cast<std::chrono::milliseconds>(t_ready - t_start).count()
            << " ms\n";
  Api after(node.port(), node.key());
  EXPECT_EQ(after.get("/api/v1/executions/" + ids[kRuns - 1]).doc().value("status", ""), "queued");

  std::vector<int64_t> started, ended;
  for (int i = 0; i < kRuns; ++i) {
    const json done = wait_finished(after, ids[i], 30s);
    ASSERT_EQ(done.value("status", ""), "completed") << i << ": " << done.dump();
    EXPECT_EQ(done["input"], json({{"n", i}}));
    const json events = after.get("/api/v1/executions/" + ids[i] + "/events?limit=1000").doc();
    ASSERT_GE(events["events"].size(), 2u) << events.dump();
    EXPECT_EQ(events["events"].front().value("type", ""), "execution_started");
    EXPECT_EQ(events["events"].back().value("type", ""), "execution_completed");
    started.push_back(parse_iso_ms(events["events"].front().value("time", "")));
    ended.push_back(parse_iso_ms(events["events"].back().value("time", "")));
  }
  for (int i = 0; i < kRuns; ++i) {
    std::cout << "run " << i << ": started " << started[i] - started[0] << " ms, ended "
              << ended[i] - started[0] << " ms\n";
  }
  for (int i = 1; i < kRuns; ++i) {
    EXPECT_GE(started[i], started[i - 1]) << "run " << i << " started before run " << i - 1;
    EXPECT_GE(started[i], ended[i - 1]) << "run " << i << " overlapped run " << i - 1;
  }
  const json c = after.get("/api/v1/executions/" + cancelled).doc();
  EXPECT_EQ(c.value("status", ""), "cancelled") << c.dump();
  EXPECT_EQ(c.value("last_seq", 1), 0) << c.dump();
  const json usage_after = Api(node.port(), kOperatorKey).get("/admin/v1/tenants/default").doc();
  EXPECT_EQ(usage_after["usage"], json({{"running_executions", 0}, {"queued_executions", 0}}))
      << usage_after.dump();
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra::e2e
