// The `yantra` client subcommands, run as real processes against a real
// node: what a user or a script sees — stdout (tables, or JSON with --json),
// stderr (errors with their details) and the exit code (0 ok, 1 the server
// said no or the run did not complete, 2 usage, 3 unreachable).
//
// The node is shared by the suite; every test uses its own flow ids. The
// client gets the node's URL and key from YANTRA_URL / YANTRA_API_KEY, as a
// user's shell would provide them, except where a test checks the flags.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

class CliTest : public NodeSuite<CliTest> {
 protected:
  static void SetUpTestSuite() {
    NodeSuite::SetUpTestSuite();
    files_ = new TempDir();
  }
  static void TearDownTestSuite() {
    NodeSuite::TearDownTestSuite();
    delete files_;
    files_ = nullptr;
  }

  // Runs `yantra args...` with the node's URL and key in the environment.
  static ProcessResult cli(const std::vector<std::string>& args, Env env = {}) {
    std::vector<std::string> argv = {YANTRA_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    Env full = {{"YANTRA_URL", node_->url()}, {"YANTRA_API_KEY", node_->key()}};
    for (auto& kv : env) full.push_back(std::move(kv));
    return run_process(argv, full, 60s);
  }

  static std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = files_->sub(name);
    std::ofstream(path) << text;
    return path;
  }

  static inline TempDir* files_ = nullptr;
};

std::string show(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

json parse(const ProcessResult& r) {
  return json::parse(r.out, nullptr, false);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

TEST_F(CliTest, FlowsApplyCreatesThenStoresNewVersions) {
  const std::string file = write_file("cli-json.json", echo_flow("cli-json").dump(2));
  ProcessResult first = cli({"flows", "apply", "-f", file});
  ASSERT_EQ(first.exit_code, 0) << show(first);
  EXPECT_NE(first.out.find("flow cli-json version 1 created"), std::string::npos) << show(first);
  ProcessResult second = cli({"flows", "apply", "-f", file, "--note", "again"});
  ASSERT_EQ(second.exit_code, 0) << show(second);
  EXPECT_NE(second.out.find("flow cli-json version 2 updated"), std::string::npos) << show(second);
  ProcessResult as_json = cli({"flows", "apply", "-f", file, "--json"});
  ASSERT_EQ(as_json.exit_code, 0) << show(as_json);
  EXPECT_EQ(parse(as_json)["version"], 3) << show(as_json);

  ProcessResult get = cli({"flows", "get", "cli-json", "--json"});
  ASSERT_EQ(get.exit_code, 0) << show(get);
  EXPECT_EQ(parse(get)["version"], 3);
  ProcessResult v2 = cli({"flows", "get", "cli-json", "--version", "2", "--json"});
  ASSERT_EQ(v2.exit_code, 0) << show(v2);
  EXPECT_EQ(parse(v2)["note"], "again");
}

TEST_F(CliTest, FlowsApplyReadsYaml) {
  const std::string yaml = R"(id: cli-yaml
steps:
  - id: a
    type: action
    config: {tool_id: core, action: echo, parameters: {x: {$ref: input.x}}}
output: {x: {$ref: a.x}}
)";
  ProcessResult r = cli({"flows", "apply", "-f", write_file("cli-yaml.yaml", yaml)});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find("flow cli-yaml version 1 created"), std::string::npos) << show(r);
  // No telling extension: the content decides (YAML here, JSON below).
  r = cli({"flows", "apply", "-f", write_file("cli-yaml.txt", yaml)});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find("version 2 updated"), std::string::npos) << show(r);
  r = cli({"flows", "apply", "-f", write_file("cli-sniffed", echo_flow("cli-sniffed").dump())});
  ASSERT_EQ(r.exit_code, 0) << show(r);

  ProcessResult y = cli({"flows", "get", "cli-yaml", "--yaml"});
  ASSERT_EQ(y.exit_code, 0) << show(y);
  EXPECT_NE(y.out.find("id: cli-yaml"), std::string::npos) << show(y);
  EXPECT_TRUE(parse(y).is_discarded()) << "expected YAML: " << y.out;
}

TEST_F(CliTest, FlowsListGetDelete) {
  Api a = api();
  create_flow(a, echo_flow("cli-list-a"));
  create_flow(a, echo_flow("cli-list-bb"));
  ProcessResult list = cli({"flows", "list"});
  ASSERT_EQ(list.exit_code, 0) << show(list);
  const auto lines = lines_of(list.out);
  ASSERT_GE(lines.size(), 3u) << list.out;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u) << list.out;
  // Aligned columns: the VERSION column starts at the same offset on every line.
  const size_t col = lines[0].find("VERSION");
  ASSERT_NE(col, std::string::npos);
  bool saw_a = false, saw_bb = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i][col - 1], ' ') << lines[i];
    EXPECT_NE(lines[i][col], ' ') << lines[i];
    saw_a = saw_a || lines[i].rfind("cli-list-a ", 0) == 0;
    saw_bb = saw_bb || lines[i].rfind("cli-list-bb ", 0) == 0;
  }
  EXPECT_TRUE(saw_a && saw_bb) << list.out;
  ProcessResult list_json = cli({"flows", "list", "--json"});
  ASSERT_EQ(list_json.exit_code, 0) << show(list_json);
  EXPECT_TRUE(parse(list_json)["flows"].is_array()) << show(list_json);

  ProcessResult get = cli({"flows", "get", "cli-list-a"});
  ASSERT_EQ(get.exit_code, 0) << show(get);
  EXPECT_NE(get.out.find("definition:"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("echo cli-list-a"), std::string::npos) << get.out;

  ProcessResult del = cli({"flows", "delete", "cli-list-a"});
  ASSERT_EQ(del.exit_code, 0) << show(del);
  EXPECT_NE(del.out.find("deleted"), std::string::npos);
  ProcessResult del_json = cli({"flows", "delete", "cli-list-bb", "--json"});
  ASSERT_EQ(del_json.exit_code, 0) << show(del_json);
  EXPECT_EQ(parse(del_json)["deleted"], true) << show(del_json);

  ProcessResult gone = cli({"flows", "get", "cli-list-a"});
  EXPECT_EQ(gone.exit_code, 1) << show(gone);
  EXPECT_NE(gone.err.find("error: not_found: "), std::string::npos) << show(gone);
  EXPECT_TRUE(gone.out.empty()) << show(gone);
  ProcessResult again = cli({"flows", "delete", "cli-list-a"});
  EXPECT_EQ(again.exit_code, 1) << show(again);
}

TEST_F(CliTest, RunWaitPrintsTheOutput) {
  Api a = api();
  create_flow(a, echo_flow("cli-run"));
  ProcessResult r = cli({"run", "cli-run", "--input", R"({"x": 42})", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find("completed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"x\": 42"), std::string::npos) << r.out;

  ProcessResult j = cli({"run", "cli-run", "--input", R"({"x": "json"})", "--wait", "--json"});
  ASSERT_EQ(j.exit_code, 0) << show(j);
  const json doc = parse(j);
  EXPECT_EQ(doc["status"], "completed") << show(j);
  EXPECT_EQ(doc["output"]["x"], "json");

  // Input from a file, and an idempotency key: the second run is the first.
  const std::string input = write_file("input.json", R"({"x": "from file"})");
  ProcessResult k1 = cli({"run", "cli-run", "--input", "@" + input, "--wait", "--json",
                          "--idempotency-key", "cli-key-1"});
  ProcessResult k2 = cli({"run", "cli-run", "--input", "@" + input, "--wait", "--json",
                          "--idempotency-key", "cli-key-1"});
  ASSERT_EQ(k1.exit_code, 0) << show(k1);
  ASSERT_EQ(k2.exit_code, 0) << show(k2);
  EXPECT_EQ(parse(k1)["output"]["x"], "from file");
  EXPECT_EQ(parse(k1)["execution_id"], parse(k2)["execution_id"]);
}

TEST_F(CliTest, RunWaitOfAFailingFlowExits1) {
  Api a = api();
  create_flow(a, fail_flow("cli-fail"));
  ProcessResult r = cli({"run", "cli-fail", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.out.find("failed"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("failed: boom: failed on purpose"), std::string::npos) << show(r);
  ProcessResult j = cli({"run", "cli-fail", "--wait", "--json"});
  EXPECT_EQ(j.exit_code, 1) << show(j);
  EXPECT_EQ(parse(j)["status"], "failed") << show(j);
}

TEST_F(CliTest, RunWaitOfATimedOutOrCancelledExecutionExits1) {
  Api a = api();
  create_flow(a, json::parse(R"({"id": "cli-timeout", "config": {"timeout_ms": 100},
      "steps": [{"id": "d", "type": "delay", "config": {"duration_ms": 60000}}]})"));
  ProcessResult t = cli({"run", "cli-timeout", "--wait"});
  EXPECT_EQ(t.exit_code, 1) << show(t);
  EXPECT_NE(t.err.find("timed_out: timed_out: "), std::string::npos) << show(t);

  // Cancelled while the CLI waits for it.
  create_flow(a, delay_flow("cli-cancelled", 60000));
  ProcessResult waited;
  std::thread client([&] { waited = cli({"run", "cli-cancelled", "--wait"}); });
  json list;
  for (int i = 0; i < 500; ++i) {
    list = a.get("/api/v1/executions?flow_id=cli-cancelled").doc();
    if (!list["executions"].empty()) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(list["executions"].size(), 1u) << list.dump();
  const std::string id = list["executions"][0]["execution_id"];
  EXPECT_EQ(a.post("/api/v1/executions/" + id + "/cancel", json::object()).status, 200);
  client.join();
  EXPECT_EQ(waited.exit_code, 1) << show(waited);
  EXPECT_NE(waited.out.find("cancelled"), std::string::npos) << show(waited);
  EXPECT_NE(waited.err.find(id + " cancelled"), std::string::npos) << show(waited);
}

TEST_F(CliTest, RunWaitKeepsPollingAfterTheServerWait) {
  Api a = api();
  create_flow(a, delay_flow("cli-slow", 700));
  // The server holds the request 50 ms, answers 202, and the CLI polls.
  ProcessResult r = cli({"run", "cli-slow", "--wait", "--wait-ms", "50", "--json"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(parse(r)["status"], "completed") << show(r);
  EXPECT_EQ(parse(r)["output"]["done"], true) << show(r);
}

TEST_F(CliTest, RunWithoutWaitPrintsTheExecution) {
  Api a = api();
  create_flow(a, echo_flow("cli-nowait"));
  ProcessResult r = cli({"run", "cli-nowait"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find("started"), std::string::npos) << r.out;
  ProcessResult j = cli({"run", "cli-nowait", "--json"});
  ASSERT_EQ(j.exit_code, 0) << show(j);
  const std::string id = parse(j).value("execution_id", "");
  ASSERT_EQ(id.size(), 26u) << show(j);
  EXPECT_EQ(wait_finished(a, id).value("status", ""), "completed");
}

TEST_F(CliTest, ExecutionsListGetEvents) {
  Api a = api();
  create_flow(a, echo_flow("cli-exec"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Reply r = a.post("/api/v1/flows/cli-exec/run?wait_ms=10000", json{{"input", {{"x", i}}}});
    ASSERT_EQ(r.status, 200) << r.describe();
    ids.push_back(r.doc()["execution_id"]);
    std::this_thread::sleep_for(2ms);  // distinct milliseconds: a strict newest-first order
  }

  ProcessResult list = cli({"executions", "list", "--flow", "cli-exec"});
  ASSERT_EQ(list.exit_code, 0) << show(list);
  EXPECT_EQ(list.out.rfind("EXECUTION_ID", 0), 0u) << list.out;
  for (const auto& id : ids) EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
  EXPECT_EQ(lines_of(list.out).size(), 4u) << list.out;

  ProcessResult page = cli({"executions", "list", "--flow", "cli-exec", "--limit", "2", "--json"});
  ASSERT_EQ(page.exit_code, 0) << show(page);
  const json p1 = parse(page);
  ASSERT_EQ(p1["executions"].size(), 2u) << show(page);
  EXPECT_EQ(p1["executions"][0]["execution_id"], ids[2]);
  ASSERT_TRUE(p1["next_cursor"].is_string());
  ProcessResult table_page = cli({"executions", "list", "--flow", "cli-exec", "--limit", "2"});
  EXPECT_NE(table_page.out.find("more: --cursor " + p1["next_cursor"].get<std::string>()),
            std::string::npos)
      << table_page.out;
  ProcessResult next = cli({"executions", "list", "--flow", "cli-exec", "--limit", "2", "--cursor",
                            p1["next_cursor"], "--json"});
  ASSERT_EQ(next.exit_code, 0) << show(next);
  ASSERT_EQ(parse(next)["executions"].size(), 1u) << show(next);
  EXPECT_EQ(parse(next)["executions"][0]["execution_id"], ids[0]);
  ProcessResult filtered =
      cli({"executions", "list", "--flow", "cli-exec", "--status", "failed", "--json"});
  ASSERT_EQ(filtered.exit_code, 0) << show(filtered);
  EXPECT_EQ(parse(filtered)["executions"].size(), 0u);

  ProcessResult get = cli({"executions", "get", ids[1]});
  ASSERT_EQ(get.exit_code, 0) << show(get);
  EXPECT_NE(get.out.find("completed"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("cli-exec (version 1)"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("STEP"), std::string::npos) << get.out;
  ProcessResult get_json = cli({"executions", "get", ids[1], "--json"});
  ASSERT_EQ(get_json.exit_code, 0) << show(get_json);
  EXPECT_EQ(parse(get_json)["output"]["x"], 1);

  ProcessResult events = cli({"executions", "events", ids[1]});
  ASSERT_EQ(events.exit_code, 0) << show(events);
  EXPECT_EQ(events.out.rfind("SEQ", 0), 0u) << events.out;
  EXPECT_NE(events.out.find("execution_started"), std::string::npos) << events.out;
  EXPECT_NE(events.out.find("execution_completed"), std::string::npos) << events.out;
  ProcessResult events_json = cli({"executions", "events", ids[1], "--json"});
  ASSERT_EQ(events_json.exit_code, 0) << show(events_json);
  const json ev = parse(events_json);
  EXPECT_EQ(ev["events"].size(), parse(get_json)["last_seq"].get<size_t>()) << show(events_json);
  ProcessResult one_page = cli({"executions", "events", ids[1], "--limit", "2", "--json"});
  ASSERT_EQ(one_page.exit_code, 0) << show(one_page);
  EXPECT_EQ(parse(one_page)["events"].size(), 2u);
  EXPECT_EQ(parse(one_page)["next_after_seq"], 2);

  ProcessResult missing = cli({"executions", "get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(missing.exit_code, 1) << show(missing);
  EXPECT_NE(missing.err.find("error: not_found: "), std::string::npos) << show(missing);
}

TEST_F(CliTest, ExecutionsCancel) {
  Api a = api();
  create_flow(a, delay_flow("cli-cancel", 60000));
  const std::string id = start_run(a, "cli-cancel");
  ASSERT_EQ(wait_status(a, id, "waiting").value("status", ""), "waiting");
  ProcessResult c = cli({"executions", "cancel", id, "--reason", "from the CLI"});
  ASSERT_EQ(c.exit_code, 0) << show(c);
  EXPECT_NE(c.out.find(id + " cancelled"), std::string::npos) << c.out;
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["error"]["message"], "from the CLI");
  ProcessResult again = cli({"executions", "cancel", id, "--json"});
  EXPECT_EQ(again.exit_code, 1) << show(again);
  EXPECT_NE(again.err.find("error: conflict: "), std::string::npos) << show(again);
}

// ---- the time machine and flow history ------------------------------------------

// The seq of the first event of `type` (and step `path`) in a run's history.
uint64_t seq_of(Api& a, const std::string& id, const std::string& type,
                const std::string& path = "") {
  const json events = a.get("/api/v1/executions/" + id + "/events?limit=1000").doc()["events"];
  for (const auto& e : events) {
    if (e.value("type", "") == type && (path.empty() || e["data"].value("path", "") == path)) {
      return e["seq"];
    }
  }
  return 0;
}

TEST_F(CliTest, ExecutionsStateTimelineDiff) {
  Api a = api();
  create_flow(a, json::parse(R"J({"id": "cli-tm", "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"x": {"$ref": "input.x"}}},
     "on_success": "flaky"},
    {"id": "flaky", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 1}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10}}],
    "output": {"x": {"$ref": "a.x"}}})J"));
  Reply run = a.post("/api/v1/flows/cli-tm/run?wait_ms=20000", json{{"input", {{"x", 5}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  const uint64_t last = a.get("/api/v1/executions/" + id).doc()["last_seq"];

  // state: the status, then one row per step.
  ProcessResult st = cli({"executions", "state", id});
  ASSERT_EQ(st.exit_code, 0) << show(st);
  EXPECT_NE(st.out.find("status     completed"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("at_seq     " + std::to_string(last) + "\n"), std::string::npos) << st.out;
  const auto lines = lines_of(st.out);
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("STEP", 0) != 0) ++header;
  ASSERT_LT(header, lines.size()) << st.out;
  EXPECT_NE(lines[header].find("ATTEMPTS"), std::string::npos);
  ASSERT_EQ(lines.size(), header + 3) << st.out;  // a, flaky
  EXPECT_EQ(lines[header + 1].rfind("a ", 0), 0u) << st.out;
  EXPECT_NE(lines[header + 1].find("completed"), std::string::npos) << st.out;
  EXPECT_NE(lines[header + 1].find(R"({"x":5})"), std::string::npos) << st.out;
  EXPECT_EQ(lines[header + 2].rfind("flaky ", 0), 0u) << st.out;
  EXPECT_NE(lines[header + 2].find(" 2 "), std::string::npos) << "two attempts: " << st.out;

  ProcessResult first = cli({"executions", "state", id, "--at", "1", "--json"});
  ASSERT_EQ(first.exit_code, 0) << show(first);
  EXPECT_EQ(parse(first)["at_seq"], 1);
  EXPECT_EQ(parse(first)["status"], "running");
  ProcessResult at2 = cli({"executions", "state", id, "--at", "2"});
  ASSERT_EQ(at2.exit_code, 0) << show(at2);
  EXPECT_NE(at2.out.find("running"), std::string::npos) << at2.out;
  ProcessResult beyond = cli({"executions", "state", id, "--at", std::to_string(last + 1)});
  EXPECT_EQ(beyond.exit_code, 1) << show(beyond);
  EXPECT_NE(beyond.err.find("error: invalid_parameter: "), std::string::npos) << show(beyond);
  EXPECT_TRUE(beyond.out.empty()) << show(beyond);

  // timeline: one row per attempt, with its outcome and duration.
  ProcessResult tl = cli({"executions", "timeline", id});
  ASSERT_EQ(tl.exit_code, 0) << show(tl);
  const auto tl_lines = lines_of(tl.out);
  std::vector<std::string> flaky_rows;
  bool saw_header = false;
  for (const auto& l : tl_lines) {
    saw_header = saw_header || l.rfind("STEP", 0) == 0;
    if (l.rfind("flaky ", 0) == 0) flaky_rows.push_back(l);
  }
  EXPECT_TRUE(saw_header) << tl.out;
  EXPECT_NE(tl.out.find("DURATION_MS"), std::string::npos) << tl.out;
  ASSERT_EQ(flaky_rows.size(), 2u) << tl.out;
  EXPECT_NE(flaky_rows[0].find("failed"), std::string::npos) << tl.out;
  EXPECT_NE(flaky_rows[1].find("completed"), std::string::npos) << tl.out;
  ProcessResult tl_json = cli({"executions", "timeline", id, "--json"});
  ASSERT_EQ(tl_json.exit_code, 0) << show(tl_json);
  EXPECT_EQ(parse(tl_json)["execution_id"], id);
  EXPECT_EQ(parse(tl_json)["steps"].size(), 2u) << show(tl_json);

  // diff: one row per operation.
  ProcessResult d = cli({"executions", "diff", id, "1", std::to_string(last)});
  ASSERT_EQ(d.exit_code, 0) << show(d);
  EXPECT_EQ(d.out.rfind("OP", 0), 0u) << d.out;
  ProcessResult dj = cli({"executions", "diff", id, "1", std::to_string(last), "--json"});
  ASSERT_EQ(dj.exit_code, 0) << show(dj);
  const json patch = parse(dj)["patch"];
  ASSERT_TRUE(patch.is_array()) << show(dj);
  EXPECT_EQ(lines_of(d.out).size(), patch.size() + 1) << d.out;
  bool status_row = false;
  for (const auto& l : lines_of(d.out)) {
    status_row =
        status_row || (l.rfind("replace", 0) == 0 && l.find("/status") != std::string::npos &&
                       l.find("completed") != std::string::npos);
  }
  EXPECT_TRUE(status_row) << d.out;
  ProcessResult none = cli({"executions", "diff", id, "2", "2"});
  ASSERT_EQ(none.exit_code, 0) << show(none);
  EXPECT_NE(none.out.find("no changes"), std::string::npos) << none.out;

  ProcessResult missing = cli({"executions", "timeline", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(missing.exit_code, 1) << show(missing);
  EXPECT_NE(missing.err.find("error: not_found: "), std::string::npos) << show(missing);
}

TEST_F(CliTest, ExecutionsReplayPrintsTheForkAndRetryResumes) {
  Api a = api();
  // a fails on its first attempt only (no retries): the run fails, a retry
  // succeeds; b reports what a returned.
  create_flow(a, json::parse(R"J({"id": "cli-replay", "steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 1, "code": "nope"}},
     "on_success": "b"},
    {"id": "b", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"got": {"$ref": "a"}}}}],
    "output": {"got": {"$ref": "b.got"}}})J"));
  Reply run = a.post("/api/v1/flows/cli-replay/run?wait_ms=20000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_EQ(run.doc()["status"], "failed");
  const std::string id = run.doc()["execution_id"];
  const uint64_t failed_at = seq_of(a, id, "step_failed", "a");
  ASSERT_GT(failed_at, 1u);
  const std::string from = std::to_string(failed_at - 1);

  // A YAML patch: stdout is exactly the new id.
  const std::string yaml = write_file("patch.yaml", "steps:\n  a:\n    output: {v: 7}\n");
  ProcessResult r = cli({"executions", "replay", id, "--from", from, "--patch", yaml});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  ASSERT_EQ(r.out.size(), 27u) << show(r);
  const std::string fork = r.out.substr(0, 26);
  EXPECT_EQ(r.out.back(), '\n');
  json done = wait_finished(a, fork);
  EXPECT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"], json({{"got", {{"v", 7}}}}));
  EXPECT_EQ(done["parent_execution_id"], id);
  ProcessResult tl = cli({"executions", "timeline", fork});
  ASSERT_EQ(tl.exit_code, 0) << show(tl);
  EXPECT_NE(tl.out.find("forked from  " + id + " at seq " + from), std::string::npos) << tl.out;
  EXPECT_NE(tl.out.find("override at seq "), std::string::npos) << tl.out;
  ProcessResult src_tl = cli({"executions", "timeline", id});
  EXPECT_EQ(src_tl.out.find("forked from"), std::string::npos) << src_tl.out;

  // A JSON patch, --json: the server's answer.
  const std::string json_patch = write_file("patch.json", R"({"steps": {"a": {"output": 8}}})");
  ProcessResult j =
      cli({"executions", "replay", id, "--from", from, "--patch", json_patch, "--json"});
  ASSERT_EQ(j.exit_code, 0) << show(j);
  EXPECT_EQ(parse(j)["parent_execution_id"], id);
  EXPECT_EQ(parse(j)["forked_at_seq"], failed_at - 1);
  EXPECT_EQ(wait_finished(a, parse(j)["execution_id"])["output"], json({{"got", 8}}));
  // No patch: the fork runs a again, which fails again (its own attempt 1).
  ProcessResult plain = cli({"executions", "replay", id, "--from", "1"});
  ASSERT_EQ(plain.exit_code, 0) << show(plain);
  EXPECT_EQ(wait_finished(a, plain.out.substr(0, 26)).value("status", ""), "failed");
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["forks"].size(), 3u);

  // Problems with the patch: the server's pointers, exit 1.
  const std::string bad = write_file("bad-patch.json", R"({"steps": {"zz": {"output": 1}}})");
  ProcessResult refused = cli({"executions", "replay", id, "--from", from, "--patch", bad});
  EXPECT_EQ(refused.exit_code, 1) << show(refused);
  EXPECT_NE(refused.err.find("error: invalid_argument: "), std::string::npos) << show(refused);
  EXPECT_NE(refused.err.find("steps/zz: "), std::string::npos) << show(refused);
  EXPECT_TRUE(refused.out.empty()) << show(refused);
  // A patch file that cannot be read or parsed: usage, nothing sent.
  ProcessResult unreadable = cli(
      {"executions", "replay", id, "--from", from, "--patch", files_->sub("no-such-patch.json")});
  EXPECT_EQ(unreadable.exit_code, 2) << show(unreadable);
  ProcessResult garbled = cli(
      {"executions", "replay", id, "--from", from, "--patch", write_file("garbled.json", "{a:")});
  EXPECT_EQ(garbled.exit_code, 2) << show(garbled);
  EXPECT_NE(garbled.err.find("invalid_json"), std::string::npos) << show(garbled);
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["forks"].size(), 3u);

  // retry: the same execution continues and completes.
  ProcessResult retry = cli({"executions", "retry", id});
  ASSERT_EQ(retry.exit_code, 0) << show(retry);
  EXPECT_NE(retry.out.find("execution " + id + " retried (running)"), std::string::npos)
      << retry.out;
  done = wait_finished(a, id);
  EXPECT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"]["got"]["recovered"], true) << done.dump();
  ProcessResult again = cli({"executions", "retry", id, "--json"});
  EXPECT_EQ(again.exit_code, 1) << show(again);
  EXPECT_NE(again.err.find("error: conflict: "), std::string::npos) << show(again);
  ProcessResult unknown = cli({"executions", "retry", "01ARZ3NDEKTSV4RRFFQ69G5FAV"});
  EXPECT_EQ(unknown.exit_code, 1) << show(unknown);
}

TEST_F(CliTest, FlowsVersionsAndRollback) {
  Api a = api();
  create_flow(a, echo_flow("cli-hist"));
  json v2 = echo_flow("cli-hist");
  v2["name"] = "second";
  ASSERT_EQ(a.put("/api/v1/flows/cli-hist", v2, {{"X-Change-Note", "rename"}}).status, 200);

  ProcessResult list = cli({"flows", "versions", "cli-hist"});
  ASSERT_EQ(list.exit_code, 0) << show(list);
  auto lines = lines_of(list.out);
  ASSERT_EQ(lines.size(), 3u) << list.out;
  EXPECT_EQ(lines[0].rfind("VERSION", 0), 0u) << list.out;
  EXPECT_EQ(lines[1].rfind("1 ", 0), 0u) << list.out;
  EXPECT_EQ(lines[2].rfind("2 ", 0), 0u) << list.out;
  EXPECT_NE(lines[2].find("rename"), std::string::npos) << list.out;

  ProcessResult rb = cli({"flows", "rollback", "cli-hist", "--version", "1"});
  ASSERT_EQ(rb.exit_code, 0) << show(rb);
  EXPECT_NE(rb.out.find("flow cli-hist version 3 created (rollback to version 1)"),
            std::string::npos)
      << rb.out;
  Reply latest = a.get("/api/v1/flows/cli-hist");
  EXPECT_EQ(latest.doc()["version"], 3);
  EXPECT_EQ(latest.doc()["definition"], echo_flow("cli-hist"));
  ProcessResult vj = cli({"flows", "versions", "cli-hist", "--json"});
  ASSERT_EQ(vj.exit_code, 0) << show(vj);
  ASSERT_EQ(parse(vj)["versions"].size(), 3u) << show(vj);
  EXPECT_EQ(parse(vj)["versions"][2]["note"], "rollback to version 1");
  ProcessResult rbj = cli({"flows", "rollback", "cli-hist", "--version", "2", "--json"});
  ASSERT_EQ(rbj.exit_code, 0) << show(rbj);
  EXPECT_EQ(parse(rbj)["version"], 4);
  EXPECT_EQ(parse(rbj)["definition"], v2);

  ProcessResult no_version = cli({"flows", "rollback", "cli-hist", "--version", "99"});
  EXPECT_EQ(no_version.exit_code, 1) << show(no_version);
  EXPECT_NE(no_version.err.find("error: not_found: "), std::string::npos) << show(no_version);
  ProcessResult no_flow = cli({"flows", "versions", "cli-no-such-flow"});
  EXPECT_EQ(no_flow.exit_code, 1) << show(no_flow);
  EXPECT_NE(no_flow.err.find("error: not_found: "), std::string::npos) << show(no_flow);
}

TEST_F(CliTest, TimeMachineCommandsReportAnUnreachableServer) {
  const std::string closed = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  const std::string id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"executions", "state", id},
                                             {"executions", "timeline", id},
                                             {"executions", "diff", id, "1", "2"},
                                             {"executions", "replay", id, "--from", "1"},
                                             {"executions", "retry", id},
                                             {"flows", "versions", "f"},
                                             {"flows", "rollback", "f", "--version", "1"}}) {
    ProcessResult r = cli(args, {{"YANTRA_URL", closed}});
    EXPECT_EQ(r.exit_code, 3) << args[1] << "\n" << show(r);
    EXPECT_NE(r.err.find("error: connect_failed: "), std::string::npos) << show(r);
  }
}

TEST_F(CliTest, ServerErrorsExit1WithDetails) {
  const std::string bad = write_file("bad.json", R"({"id": "cli-bad", "steps": [
      {"id": "a", "type": "nope"},
      {"id": "b", "type": "action", "config": {"tool_id": "core", "action": "zap"}}]})");
  ProcessResult r = cli({"flows", "apply", "-f", bad});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find("error: invalid_flow: "), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("\n  /steps/0/type: "), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("\n  /steps/1/config/action: "), std::string::npos) << show(r);

  ProcessResult wrong_key = cli({"flows", "list"}, {{"YANTRA_API_KEY", "wrong"}});
  EXPECT_EQ(wrong_key.exit_code, 1) << show(wrong_key);
  EXPECT_NE(wrong_key.err.find("error: unauthorized: "), std::string::npos) << show(wrong_key);
  // --key wins over the environment.
  ProcessResult flag_key = cli({"flows", "list", "--key", node_->key()}, {{"YANTRA_API_KEY", "x"}});
  EXPECT_EQ(flag_key.exit_code, 0) << show(flag_key);

  ProcessResult no_flow = cli({"run", "cli-no-such-flow", "--wait"});
  EXPECT_EQ(no_flow.exit_code, 1) << show(no_flow);
  EXPECT_NE(no_flow.err.find("error: not_found: "), std::string::npos) << show(no_flow);
}

TEST_F(CliTest, UnreachableServerExits3) {
  const std::string closed = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  ProcessResult env = cli({"flows", "list"}, {{"YANTRA_URL", closed}});
  EXPECT_EQ(env.exit_code, 3) << show(env);
  EXPECT_NE(env.err.find("error: connect_failed: "), std::string::npos) << show(env);
  ProcessResult flag = cli({"run", "x", "--wait", "--url", closed});
  EXPECT_EQ(flag.exit_code, 3) << show(flag);
  // --url wins over the environment.
  ProcessResult ok = cli({"flows", "list", "--url", node_->url()}, {{"YANTRA_URL", closed}});
  EXPECT_EQ(ok.exit_code, 0) << show(ok);
}

TEST_F(CliTest, UsageErrorsExit2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"flows"},
      {"flows", "apply"},
      {"flows", "apply", "-f", "/nonexistent/flow.json"},
      {"flows", "get"},
      {"run"},
      {"run", "f", "--input", "{bad json"},
      {"run", "f", "--wait-ms", "70000"},
      {"executions", "list", "--limit", "0"},
      {"executions", "list", "--status", "sleeping"},
      {"executions", "frobnicate"},
      {"flows", "list", "--no-such-flag"},
      {"flows", "list", "--url", "ftp://127.0.0.1:1"},
      {"flows", "list", "--url", "https://127.0.0.1:1"},
      {"executions", "state"},
      {"executions", "state", "x", "--at", "0"},
      {"executions", "state", "x", "--at", "soon"},
      {"executions", "timeline"},
      {"executions", "diff", "x", "1"},
      {"executions", "diff", "x", "0", "2"},
      {"executions", "diff", "x", "1", "two"},
      {"executions", "replay", "x"},
      {"executions", "replay", "x", "--from", "0"},
      {"executions", "replay", "x", "--from", "1", "--patch", "/nonexistent/patch.yaml"},
      {"executions", "retry"},
      {"flows", "versions"},
      {"flows", "rollback", "f"},
      {"flows", "rollback", "f", "--version", "0"},
  };
  for (const auto& args : cases) {
    ProcessResult r = cli(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\n" << show(r);
    EXPECT_FALSE(r.err.empty()) << joined;
  }
  ProcessResult help = cli({"--help"});
  EXPECT_EQ(help.exit_code, 0) << show(help);
  EXPECT_NE(help.out.find("flows"), std::string::npos);
}

}  // namespace
}  // namespace yantra::e2e
