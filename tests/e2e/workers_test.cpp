// Tool workers end to end (issue 12, "Tool workers"): the real `yantra`
// binary and the real reference worker (examples/worker.py, python3) over
// loopback HTTP. A flow step calls the worker's tool and gets its output; a
// failing task fails the step with the worker's code; a worker killed with
// SIGKILL mid-task loses its lease and the task completes on a second worker
// as attempt 2 (audited, the step's own attempts untouched); bad input of
// every kind gets a 4xx naming the field; a worker key opens the worker and
// task routes only; and a node killed with SIGKILL while tasks are in
// flight comes back with its worker tools, the worker polls again and every
// execution finishes with no completed step run twice.
//
// Workers are child processes stopped by PID (SIGKILL) and killed with the
// test process (PR_SET_PDEATHSIG); every wait has a deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

using namespace std::chrono_literals;

// examples/worker.py as a child process.
class PyWorker {
 public:
  PyWorker(const std::vector<std::string>& urls, const std::string& key, const std::string& id,
           std::vector<std::string> extra = {}) {
    log_ = dir_.str() + "/worker.log";
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(YANTRA_SOURCE_DIR) + "/examples/worker.py",
                                     "--id",
                                     id,
                                     "--wait-ms",
                                     "2000"};
    for (const auto& u : urls) {
      argv.push_back("--url");
      argv.push_back(u);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ = detail::spawn(argv, {{"YANTRA_API_KEY", key}, {"PYTHONUNBUFFERED", "1"}}, fd, fd);
    ::close(fd);
  }
  ~PyWorker() { kill9(); }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    detail::wait_exit(pid_, 5s, &status);
    pid_ = -1;
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Waits until the log holds `needle` `times` times.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout, size_t times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (count(needle) >= times) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  size_t count(const std::string& needle) const {
    const std::string text = log();
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

 private:
  TempDir dir_;
  std::string log_;
  pid_t pid_ = -1;
};

// Stops a worker for good: its process, then its registration (which
// answers the polls it left waiting, so the next test's tasks do not go to
// a dead worker and wait out a lease).
void retire(Api& a, PyWorker& w, const std::string& id) {
  w.kill9();
  Reply r = a.del("/api/v1/workers/" + id);
  EXPECT_EQ(r.status, 204) << r.describe();
}

json text_step(const std::string& id, const std::string& action, const json& parameters) {
  return {{"id", id},
          {"type", "action"},
          {"config", {{"tool_id", "text"}, {"action", action}, {"parameters", parameters}}}};
}

json text_flow(const std::string& id) {
  json flow = {{"id", id},
               {"steps",
                {text_step("up", "upper", {{"text", {{"$ref", "input.s"}}}}),
                 text_step("wc", "word_count", {{"text", {{"$ref", "input.s"}}}}),
                 {{"id", "out"},
                  {"type", "action"},
                  {"config",
                   {{"tool_id", "core"},
                    {"action", "echo"},
                    {"parameters",
                     {{"upper", {{"$ref", "up.text"}}}, {"words", {{"$ref", "wc.words"}}}}}}}}}}};
  flow["steps"][0]["on_success"] = "wc";
  flow["steps"][1]["on_success"] = "out";
  return flow;
}

// Waits until the tenant has tool `text` (a worker registered it).
bool wait_for_tool(Api& a, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (a.get("/api/v1/tools/text").status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string create_key(Api& a, const std::string& role) {
  Reply k = a.post("/api/v1/keys", json{{"role", role}, {"name", role + "-key"}});
  EXPECT_EQ(k.status, 201) << k.describe();
  return k.doc().value("secret", "");
}

class WorkersTest : public NodeSuite<WorkersTest> {};

TEST_F(WorkersTest, AFlowStepGetsTheWorkersOutputWithAWorkerKey) {
  Api a = api();
  const std::string worker_key = create_key(a, "worker");
  ASSERT_FALSE(worker_key.empty());
  PyWorker w({node().url()}, worker_key, "w-basic");
  ASSERT_TRUE(wait_for_tool(a)) << w.log();
  Reply tool = a.get("/api/v1/tools/text");
  EXPECT_EQ(tool.doc().value("kind", ""), "worker") << tool.body;
  EXPECT_EQ(tool.doc().value("scope", ""), "tenant") << tool.body;

  ASSERT_EQ(a.post("/api/v1/flows", text_flow("w-text")).status, 201);
  Reply run =
      a.post("/api/v1/flows/w-text/run?wait_ms=20000", json{{"input", {{"s", "hello big world"}}}});
  ASSERT_EQ(run.status, 200) << run.describe() << "\n" << w.log();
  EXPECT_EQ(run.doc().value("status", ""), "completed") << run.body;
  EXPECT_EQ(run.doc()["output"], json({{"upper", "HELLO BIG WORLD"}, {"words", 3}})) << run.body;

  // Store-time validation against the worker's input schema.
  json bad = text_flow("w-text-bad");
  bad["steps"][0]["config"]["parameters"] = {{"text", 42}};
  Reply refused = a.post("/api/v1/flows", bad);
  EXPECT_EQ(refused.status, 400) << refused.describe();

  Api wk(port(), worker_key);
  Reply one = wk.get("/api/v1/workers/w-basic");
  ASSERT_EQ(one.status, 200) << one.describe();
  EXPECT_EQ(one.doc()["tool_ids"], json::array({"text"}));
  EXPECT_TRUE(one.doc()["last_poll_at"].is_string()) << one.body;
  EXPECT_EQ(one.doc()["tools"][0]["actions"].size(), 3u) << one.body;
  Reply all = wk.get("/api/v1/workers");
  ASSERT_EQ(all.status, 200);
  bool listed = false;
  const json workers = all.doc()["workers"];
  for (const auto& x : workers) listed = listed || x.value("id", "") == "w-basic";
  EXPECT_TRUE(listed) << all.body;
  // Registration is audited.
  Reply audit = a.get("/api/v1/audit?action=worker.register");
  ASSERT_EQ(audit.status, 200);
  EXPECT_FALSE(audit.doc()["records"].empty()) << audit.body;
  retire(a, w, "w-basic");
}

TEST_F(WorkersTest, ATaskTheWorkerFailsFailsTheStepWithItsCode) {
  Api a = api();
  PyWorker w({node().url()}, node().key(), "w-fail", {"--lease-ms", "1000"});
  ASSERT_TRUE(wait_for_tool(a)) << w.log();
  json flow = {{"id", "w-reject"},
               {"steps", {text_step("r", "reject", {{"reason", "not today"}})}}};
  flow["steps"][0]["retry_config"] = {
      {"max_attempts", 3}, {"backoff_type", "fixed"}, {"initial_delay_ms", 10}};
  ASSERT_EQ(a.post("/api/v1/flows", flow).status, 201);
  Reply run = a.post("/api/v1/flows/w-reject/run?wait_ms=20000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  EXPECT_EQ(run.doc().value("status", ""), "failed") << run.body;
  EXPECT_EQ(run.doc()["error"].value("code", ""), "rejected") << run.body;
  EXPECT_NE(run.doc()["error"].value("message", "").find("not today"), std::string::npos);
  // retryable: false, so one task only (the log line follows the answer).
  EXPECT_TRUE(w.wait_for("failed rejected", 5s)) << w.log();
  EXPECT_EQ(w.count("failed rejected"), 1u) << w.log();
  retire(a, w, "w-fail");
}

TEST_F(WorkersTest, AWorkerKilledMidTaskLosesItAndASecondWorkerCompletesIt) {
  Api a = api();
  PyWorker slow({node().url()}, node().key(), "w-slow",
                {"--slow-ms", "60000", "--lease-ms", "1000"});
  ASSERT_TRUE(wait_for_tool(a)) << slow.log();
  ASSERT_TRUE(slow.wait_for("registered", 10s)) << slow.log();
  ASSERT_EQ(a.post("/api/v1/flows", text_flow("w-kill")).status, 201);
  const std::string id = start_run(a, "w-kill", {{"s", "one two"}});
  ASSERT_TRUE(slow.wait_for("task ", 15s)) << slow.log();
  Reply held = a.get("/api/v1/workers/w-slow");
  EXPECT_EQ(held.doc()["in_flight_tasks"].size(), 1u) << held.body;
  slow.kill9();

  PyWorker fast({node().url()}, node().key(), "w-fast", {"--lease-ms", "1000"});
  const json done = wait_finished(a, id);
  EXPECT_EQ(done.value("status", ""), "completed") << done.dump() << "\n" << fast.log();
  // Dispatched again with the step's idempotency key, as a later attempt.
  EXPECT_NE(fast.log().find(" action upper key " + id + "/up/1"), std::string::npos) << fast.log();
  EXPECT_EQ(fast.log().find("attempt 1 action upper key " + id), std::string::npos) << fast.log();
  // The step itself ran once (its retry_config untouched).
  Reply state = a.get("/api/v1/executions/" + id + "/state");
  ASSERT_EQ(state.status, 200);
  EXPECT_EQ(state.doc()["steps"]["up"].value("attempts", 0), 1) << state.body;
  // The lost lease is in the audit trail.
  Reply audit = a.get("/api/v1/audit?action=task.lease_lost");
  ASSERT_EQ(audit.status, 200);
  bool found = false;
  const json records = audit.doc()["records"];
  for (const auto& r : records) {
    found = found || r.value("detail", "").find("worker w-slow attempt 1 execution " + id) !=
                         std::string::npos;
  }
  EXPECT_TRUE(found) << audit.body;
  Reply metrics = a.get("/metrics");
  EXPECT_NE(metrics.body.find("yantra_worker_task_leases_lost_total"), std::string::npos);
  retire(a, fast, "w-fast");
  EXPECT_EQ(a.del("/api/v1/workers/w-slow").status, 204);
}

TEST_F(WorkersTest, BadInputOfEveryKindIsRefusedNamingTheField) {
  Api a = api();
  const json action = {{"name", "go"}};
  const json good_tool = {{"id", "badin"}, {"actions", {action}}};
  struct Case {
    json body;
    std::string pointer;
  };
  const std::vector<Case> cases = {
      {json::array(), ""},
      {{{"tools", {good_tool}}}, "/id"},
      {{{"id", "bad id!"}, {"tools", {good_tool}}}, "/id"},
      {{{"id", "w"}, {"tools", {good_tool}}, {"extra", 1}}, "/extra"},
      {{{"id", "w"}}, "/tools"},
      {{{"id", "w"}, {"tools", json::array()}}, "/tools"},
      {{{"id", "w"}, {"tools", {42}}}, "/tools/0"},
      {{{"id", "w"}, {"tools", {{{"actions", {action}}}}}}, "/tools/0/id"},
      {{{"id", "w"}, {"tools", {{{"id", "http"}, {"actions", {action}}}}}}, "/tools/0/id"},
      {{{"id", "w"}, {"tools", {{{"id", "core"}, {"actions", {action}}}}}}, "/tools/0/id"},
      {{{"id", "w"}, {"tools", {{{"id", "mcp:x"}, {"actions", {action}}}}}}, "/tools/0/id"},
      {{{"id", "w"}, {"tools", {good_tool, good_tool}}}, "/tools/1/id"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", json::array()}}}}}, "/tools/0/actions"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {action}}, {"lease_ms", 10}}}}},
       "/tools/0/lease_ms"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {action}}, {"max_concurrency", 0}}}}},
       "/tools/0/max_concurrency"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {action}}, {"x", 0}}}}}, "/tools/0/x"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {{{"name", ""}}}}}}}},
       "/tools/0/actions/0/name"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {action, action}}}}}},
       "/tools/0/actions/1/name"},
      {{{"id", "w"},
        {"tools",
         {{{"id", "t"}, {"actions", {{{"name", "a"}, {"input_schema", {{"type", 7}}}}}}}}}},
       "/tools/0/actions/0/input_schema/type"},
      {{{"id", "w"},
        {"tools", {{{"id", "t"}, {"actions", {{{"name", "a"}, {"output_schema", "nope"}}}}}}}},
       "/tools/0/actions/0/output_schema"},
      {{{"id", "w"}, {"tools", {{{"id", "t"}, {"actions", {{{"name", "a"}, {"y", 1}}}}}}}},
       "/tools/0/actions/0/y"},
  };
  for (const auto& c : cases) {
    Reply r = a.post("/api/v1/workers", c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << " " << r.describe();
    if (c.pointer.empty()) continue;
    bool named = false;
    for (const auto& d : r.doc()["error"].value("details", json::array())) {
      named = named || d.value("path", "").rfind(c.pointer, 0) == 0;
    }
    EXPECT_TRUE(named) << c.body.dump() << " should name " << c.pointer << ": " << r.body;
  }
  EXPECT_EQ(a.post_raw("/api/v1/workers", "{not json", "application/json").status, 400);
  EXPECT_EQ(a.get("/api/v1/tools/badin").status, 404) << "an invalid registration was applied";

  ASSERT_EQ(a.post("/api/v1/workers", {{"id", "w-bad"}, {"tools", {good_tool}}}).status, 201);
  // Polls.
  EXPECT_EQ(a.post("/api/v1/workers/w-bad/poll?wait_ms=60001", json::object()).status, 400);
  EXPECT_EQ(a.post("/api/v1/workers/w-bad/poll?wait_ms=abc", json::object()).status, 400);
  EXPECT_EQ(a.post("/api/v1/workers/w-bad/poll?wait=5", json::object()).status, 400);
  EXPECT_EQ(a.post("/api/v1/workers/nobody/poll", json::object()).status, 404);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(a.post("/api/v1/workers/w-bad/poll?wait_ms=300", json::object()).status, 204);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(a.get("/api/v1/workers/nobody").status, 404);
  EXPECT_EQ(a.del("/api/v1/workers/nobody").status, 404);
  EXPECT_EQ(a.get("/api/v1/workers?x=1").status, 400);
  // Tasks.
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/heartbeat", json::object()).status, 404);
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/complete", {{"output", 1}}).status, 404);
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/complete", json::object()).status, 400);
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/complete", {{"output", 1}, {"z", 1}}).status, 400);
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/complete", json::array()).status, 400);
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/heartbeat", {{"z", 1}}).status, 400);
  for (const json& body :
       {json::object(), json{{"error", "x"}}, json{{"error", {{"code", "bad code"}}}},
        json{{"error", {{"code", "ok"}, {"message", 5}}}},
        json{{"error", {{"code", "ok"}}}, {"retryable", "yes"}},
        json{{"error", {{"code", "ok"}, {"extra", 1}}}}}) {
    Reply r = a.post("/api/v1/tasks/task_nope/fail", body);
    EXPECT_EQ(r.status, 400) << body.dump() << " " << r.describe();
  }
  EXPECT_EQ(a.post("/api/v1/tasks/task_nope/fail", {{"error", {{"code", "ok"}}}}).status, 404);
  // Re-registering replaces; deleting removes the tool.
  ASSERT_EQ(a.del("/api/v1/workers/w-bad").status, 204);
  EXPECT_EQ(a.get("/api/v1/tools/badin").status, 404);
}

TEST_F(WorkersTest, AWorkerKeyOpensOnlyTheWorkerAndTaskRoutes) {
  Api a = api();
  Api wk(port(), create_key(a, "worker"));
  Api viewer(port(), create_key(a, "viewer"));
  Api editor(port(), create_key(a, "editor"));
  Api admin(port(), create_key(a, "admin"));
  const json reg = {{"id", "w-role"},
                    {"tools", {{{"id", "roletool"}, {"actions", {{{"name", "a"}}}}}}}};
  for (const char* target : {"/api/v1/flows", "/api/v1/executions", "/api/v1/tools", "/api/v1/keys",
                             "/api/v1/secrets", "/api/v1/audit"}) {
    Reply r = wk.get(target);
    EXPECT_EQ(r.status, 403) << target << " " << r.describe();
  }
  EXPECT_EQ(wk.post("/api/v1/flows", text_flow("w-role-flow")).status, 403);
  EXPECT_EQ(wk.post("/api/v1/keys", {{"role", "viewer"}}).status, 403);
  // Viewers and editors may not act as workers.
  EXPECT_EQ(viewer.post("/api/v1/workers", reg).status, 403);
  EXPECT_EQ(editor.get("/api/v1/workers").status, 403);
  EXPECT_EQ(editor.post("/api/v1/tasks/task_x/complete", {{"output", 1}}).status, 403);
  // Workers, admins and owners may.
  EXPECT_EQ(wk.post("/api/v1/workers", reg).status, 201);
  EXPECT_EQ(wk.post("/api/v1/workers/w-role/poll", json::object()).status, 204);
  EXPECT_EQ(admin.get("/api/v1/workers/w-role").status, 200);
  EXPECT_EQ(a.get("/api/v1/workers").status, 200);
  // An unknown role is refused at key creation.
  EXPECT_EQ(a.post("/api/v1/keys", {{"role", "superworker"}}).status, 400);
  EXPECT_EQ(admin.del("/api/v1/workers/w-role").status, 204);
}

TEST_F(WorkersTest, TheCliListsGetsAndDeletesWorkers) {
  Api a = api();
  ASSERT_EQ(
      a.post("/api/v1/workers",
             {{"id", "w-cli"}, {"tools", {{{"id", "clitool"}, {"actions", {{{"name", "go"}}}}}}}})
          .status,
      201);
  auto cli = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {YANTRA_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {{"YANTRA_URL", node().url()}, {"YANTRA_API_KEY", node().key()}}, 30s);
  };
  auto list = cli({"workers", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_NE(list.out.find("LAST_POLL_AT"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("w-cli"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("clitool"), std::string::npos) << list.out;
  auto get = cli({"workers", "get", "w-cli"});
  ASSERT_EQ(get.exit_code, 0) << get.out << get.err;
  EXPECT_NE(get.out.find("tool clitool: go"), std::string::npos) << get.out;
  auto json_get = cli({"workers", "get", "w-cli", "--json"});
  ASSERT_EQ(json_get.exit_code, 0) << json_get.err;
  EXPECT_EQ(json::parse(json_get.out, nullptr, false).value("id", ""), "w-cli") << json_get.out;
  auto del = cli({"workers", "delete", "w-cli"});
  ASSERT_EQ(del.exit_code, 0) << del.out << del.err;
  auto missing = cli({"workers", "get", "w-cli"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("not_found"), std::string::npos) << missing.err;
}

// A node killed (SIGKILL) while worker tasks are in flight: its own node,
// restarted on the same data dir.
TEST(WorkersNodeKill, EveryExecutionFinishesAndNoCompletedStepRunsAgain) {
  NodeProcess node;
  std::string error;
  ASSERT_TRUE(node.start(&error)) << error;
  Api a(node.port(), node.key());
  auto w1 = std::make_unique<PyWorker>(
      std::vector<std::string>{node.url()}, node.key(), "w-n",
      std::vector<std::string>{"--slow-ms", "400", "--lease-ms", "1500", "--concurrency", "3"});
  ASSERT_TRUE(wait_for_tool(a)) << w1->log();
  ASSERT_EQ(a.post("/api/v1/flows", text_flow("w-crash")).status, 201);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(start_run(a, "w-crash", {{"s", "a b c " + std::to_string(i)}}));
  // Some steps done, some in flight.
  ASSERT_TRUE(w1->wait_for("completed 200", 20s, 4)) << w1->log();
  ASSERT_TRUE(node.kill9());
  w1->kill9();

  ASSERT_TRUE(node.start(&error)) << error;
  Api b(node.port(), node.key());
  // The tool is back before any worker registers again (stored registration).
  EXPECT_EQ(b.get("/api/v1/tools/text").status, 200) << "worker tools lost by the restart";
  PyWorker w2({node.url()}, node.key(), "w-n", {"--lease-ms", "1500", "--concurrency", "3"});
  for (const auto& id : ids) {
    const json done = wait_finished(b, id, 40s);
    EXPECT_EQ(done.value("status", ""), "completed") << id << " " << done.dump() << "\n"
                                                     << w2.log() << "\n"
                                                     << node.log();
    Reply events = b.get("/api/v1/executions/" + id + "/events?limit=1000");
    ASSERT_EQ(events.status, 200) << events.describe();
    std::map<std::string, int> completed;
    const json list = events.doc()["events"];
    for (const auto& e : list) {
      if (e.value("type", "") == "step_completed") ++completed[e["data"].value("path", "")];
    }
    for (const auto& [path, n] : completed)
      EXPECT_EQ(n, 1) << id << " step " << path << " ran twice";
    EXPECT_EQ(completed.size(), 3u) << events.body;
  }
  EXPECT_TRUE(node.stop()) << node.log();
}

}  // namespace
}  // namespace yantra::e2e
