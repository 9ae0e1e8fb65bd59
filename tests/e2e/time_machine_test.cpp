// The time machine over HTTP, against a real node: state at every event,
// diffs between events, replay (forks, with and without a patch), retry of a
// failed run, and every error the routes answer.
//
// Design: the expectations come from the history itself, not from a model
// of the engine. For "state at seq N" the test reads the run's events and
// derives which steps must have completed by N (a StepCompleted at or below
// N); diffs are checked by applying them (a tiny RFC 6902 applier below, so
// the test trusts no code of the server) to the state at A and comparing
// with the state at B. The retry test needs a failure that the outside world
// fixes: an `http` step against a TinyHttpServer that answers 500 until the
// test flips it to 200. One node serves the suite; tests use their own flow
// ids.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

class TimeMachineTest : public NodeSuite<TimeMachineTest> {};

// ---- a tiny RFC 6902 applier (add, remove, replace: what diffs contain) -----------

std::vector<std::string> pointer_tokens(const std::string& pointer) {
  std::vector<std::string> out;
  if (pointer.empty()) return out;
  size_t pos = 1;
  while (true) {
    const size_t next = pointer.find('/', pos);
    std::string raw =
        pointer.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    std::string tok;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size()) {
        tok.push_back(raw[i + 1] == '1' ? '/' : '~');
        ++i;
      } else {
        tok.push_back(raw[i]);
      }
    }
    out.push_back(tok);
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

bool parse_index(const std::string& tok, size_t* out) {
  if (tok.empty() || (tok.size() > 1 && tok[0] == '0')) return false;
  for (char c : tok) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::stoul(tok);
  return true;
}

// Applies `patch` to `doc`; on failure returns false with the reason.
bool apply_rfc6902(json& doc, const json& patch, std::string* why) {
  if (!patch.is_array()) {
    *why = "patch is not an array";
    return false;
  }
  for (size_t n = 0; n < patch.size(); ++n) {
    const json& op = patch[n];
    const std::string name = op.value("op", "");
    const std::string path = op.value("path", "");
    auto fail = [&](const std::string& what) {
      *why = "op " + std::to_string(n) + " (" + name + " " + path + "): " + what;
      return false;
    };
    if (name != "add" && name != "remove" && name != "replace") return fail("unexpected op");
    if ((name == "add" || name == "replace") && !op.contains("value")) return fail("no value");
    const auto tokens = pointer_tokens(path);
    if (tokens.empty()) {
      if (name == "remove") return fail("cannot remove the root");
      doc = op["value"];
      continue;
    }
    json* parent = &doc;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      if (parent->is_object()) {
        if (!parent->contains(tokens[i])) return fail("no member " + tokens[i]);
        parent = &(*parent)[tokens[i]];
      } else if (parent->is_array()) {
        size_t idx = 0;
        if (!parse_index(tokens[i], &idx) || idx >= parent->size()) return fail("bad index");
        parent = &(*parent)[idx];
      } else {
        return fail("path runs through a scalar");
      }
    }
    const std::string& last = tokens.back();
    if (parent->is_object()) {
      const bool exists = parent->contains(last);
      if (name == "add") {
        (*parent)[last] = op["value"];
      } else if (!exists) {
        return fail("no member " + last);
      } else if (name == "remove") {
        parent->erase(last);
      } else {
        (*parent)[last] = op["value"];
      }
    } else if (parent->is_array()) {
      size_t idx = 0;
      if (name == "add" && last == "-") {
        parent->push_back(op["value"]);
        continue;
      }
      if (!parse_index(last, &idx)) return fail("bad index");
      if (name == "add") {
        if (idx > parent->size()) return fail("index past the end");
        parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(idx), op["value"]);
      } else if (idx >= parent->size()) {
        return fail("index past the end");
      } else if (name == "remove") {
        parent->erase(idx);
      } else {
        (*parent)[idx] = op["value"];
      }
    } else {
      return fail("parent is a scalar");
    }
  }
  return true;
}

TEST(Rfc6902Applier, AppliesWhatTheRfcSays) {
  json doc = json::parse(R"({"a": {"b": [1, 2]}, "c~d": 1, "e/f": 2})");
  std::string why;
  ASSERT_TRUE(apply_rfc6902(doc, json::parse(R"([
      {"op": "add", "path": "/a/b/1", "value": 9}, {"op": "add", "path": "/a/b/-", "value": 3},
      {"op": "remove", "path": "/c~0d"}, {"op": "replace", "path": "/e~1f", "value": 5},
      {"op": "add", "path": "/g", "value": {"h": null}}])"),
                            &why))
      << why;
  EXPECT_EQ(doc, json::parse(R"({"a": {"b": [1, 9, 2, 3]}, "e/f": 5, "g": {"h": null}})"));
  EXPECT_FALSE(apply_rfc6902(doc, json::parse(R"([{"op": "remove", "path": "/nope"}])"), &why));
  EXPECT_FALSE(apply_rfc6902(
      doc, json::parse(R"([{"op": "replace", "path": "/a/b/9", "value": 1}])"), &why));
}

// ---- helpers --------------------------------------------------------------------

json all_events(Api& a, const std::string& id) {
  json out = json::array();
  uint64_t after = 0;
  for (int page = 0; page < 100; ++page) {
    Reply r =
        a.get("/api/v1/executions/" + id + "/events?limit=1000&after_seq=" + std::to_string(after));
    EXPECT_EQ(r.status, 200) << r.describe();
    if (r.status != 200) break;
    const json doc = r.doc();
    for (const auto& e : doc["events"]) out.push_back(e);
    if (!doc["next_after_seq"].is_number()) break;
    after = doc["next_after_seq"];
  }
  return out;
}

json state_at(Api& a, const std::string& id, uint64_t seq) {
  Reply r = a.get("/api/v1/executions/" + id + "/state?at_seq=" + std::to_string(seq));
  EXPECT_EQ(r.status, 200) << "seq " << seq << ": " << r.describe();
  return r.doc();
}

std::set<std::string> completed_steps(const json& state) {
  std::set<std::string> out;
  for (const auto& [path, step] : state["steps"].items()) {
    if (step.value("status", "") == "completed") out.insert(path);
  }
  return out;
}

std::set<std::string> pointers(const Reply& r) {
  std::set<std::string> out;
  json j = r.doc();
  if (!j.is_object() || !j.contains("error")) return out;
  for (const auto& d : j["error"].value("details", json::array())) out.insert(d.value("path", ""));
  return out;
}

uint64_t seq_of_type(const json& events, const std::string& type, const std::string& path = "") {
  for (const auto& e : events) {
    if (e.value("type", "") != type) continue;
    if (!path.empty() && e["data"].value("path", "") != path) continue;
    return e["seq"];
  }
  return 0;
}

// a (echo) -> flaky (fails once, retried) -> each (loop of 3) -> c (echo).
json history_flow(const std::string& id) {
  json f = json::parse(R"J({"steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"x": {"$ref": "input.x"}}},
     "on_success": "flaky"},
    {"id": "flaky", "type": "action",
     "config": {"tool_id": "core", "action": "fail", "parameters": {"times": 1}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 20},
     "on_success": "each"},
    {"id": "each", "type": "loop", "config": {"items": [1, 2, 3], "steps": [
      {"id": "sq", "type": "action",
       "config": {"tool_id": "core", "action": "echo",
                  "parameters": {"v": {"$expr": "item * input.x"}}}}]},
     "on_success": "c"},
    {"id": "c", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"n": {"$expr": "len(each)"}}}}],
    "output": {"x": {"$ref": "a.x"}, "n": {"$ref": "c.n"}, "last": {"$ref": "each.2.v"}}})J");
  f["id"] = id;
  return f;
}

// a fails (not retriable) -> b echoes a.v and input.y.
json two_step_flow(const std::string& id) {
  json f = json::parse(R"J({"steps": [
    {"id": "a", "type": "action",
     "config": {"tool_id": "core", "action": "fail",
                "parameters": {"code": "bad_request", "retriable": false}},
     "on_success": "b"},
    {"id": "b", "type": "action",
     "config": {"tool_id": "core", "action": "echo",
                "parameters": {"from_a": {"$ref": "a.v"}, "y": {"$ref": "input.y"}}}}],
    "output": {"b": {"$ref": "b"}}})J");
  f["id"] = id;
  return f;
}

// ---- state and diff -------------------------------------------------------------

TEST_F(TimeMachineTest, StateAtEverySeqFollowsTheHistory) {
  Api a = api();
  create_flow(a, history_flow("tm-history"));
  Reply run = a.post("/api/v1/flows/tm-history/run?wait_ms=20000", json{{"input", {{"x", 3}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_EQ(run.doc()["status"], "completed") << run.body;
  EXPECT_EQ(run.doc()["output"], json({{"x", 3}, {"n", 3}, {"last", 9}}));
  const std::string id = run.doc()["execution_id"];
  const json latest = a.get("/api/v1/executions/" + id).doc();
  const uint64_t last = latest["last_seq"];
  const json events = all_events(a, id);
  ASSERT_EQ(events.size(), last);

  // When each step instance first completed, per the events, and when a
  // completed loop iteration was pruned from the state (its FrameEnded: the
  // state keeps only the loop's results, see docs/time-machine.md).
  std::map<std::string, uint64_t> completed_at;
  std::map<std::string, uint64_t> pruned_at;  // iteration frame prefix -> seq
  for (const auto& e : events) {
    if (e["type"] == "step_completed") {
      completed_at.emplace(e["data"]["path"].get<std::string>(), e["seq"].get<uint64_t>());
    }
    if (e["type"] == "frame_ended" && !e["data"].value("failed", false) &&
        e["data"].value("frame", "").find('[') != std::string::npos) {
      pruned_at.emplace(e["data"]["frame"].get<std::string>() + "/", e["seq"].get<uint64_t>());
    }
  }
  ASSERT_GE(completed_at.size(), 7u);  // a, flaky, each, 3 x sq, c
  ASSERT_EQ(pruned_at.size(), 3u);
  auto pruned_by = [&](const std::string& path, uint64_t n) {
    for (const auto& [prefix, seq] : pruned_at) {
      if (seq <= n && path.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };

  std::set<std::string> prev_completed;
  for (uint64_t n = 1; n <= last; ++n) {
    SCOPED_TRACE("seq " + std::to_string(n));
    const json st = state_at(a, id, n);
    ASSERT_TRUE(st.is_object());
    EXPECT_EQ(st["at_seq"], n);
    EXPECT_EQ(st["execution_id"], id);
    EXPECT_EQ(st["input"], json({{"x", 3}}));
    std::set<std::string> expected;
    for (const auto& [path, seq] : completed_at) {
      if (seq <= n && !pruned_by(path, n)) expected.insert(path);
    }
    const auto done = completed_steps(st);
    EXPECT_EQ(done, expected);
    // Monotone: nothing that completed un-completes (pruned iterations
    // leave the state altogether, their output kept in the loop's results).
    for (const auto& p : prev_completed) {
      if (!pruned_by(p, n)) {
        EXPECT_TRUE(done.count(p)) << p;
      }
    }
    prev_completed = done;
    // Running until the last event, which completes the run.
    if (n < last) {
      EXPECT_FALSE(is_terminal(st.value("status", ""))) << st.dump();
      EXPECT_TRUE(st["output"].is_null());
    } else {
      EXPECT_EQ(st["status"], "completed");
      EXPECT_EQ(st["output"], latest["output"]);
      EXPECT_EQ(st["steps"], latest["steps"]);
    }
    // The flaky step's attempts as the history had them.
    if (st["steps"].contains("flaky")) {
      const uint64_t retry_started = [&] {
        uint64_t s = 0;
        for (const auto& e : events) {
          if (e["type"] == "step_started" && e["data"]["path"] == "flaky" &&
              e["data"].value("attempt", 0) == 2) {
            s = e["seq"];
          }
        }
        return s;
      }();
      ASSERT_GT(retry_started, 0u);
      EXPECT_EQ(st["steps"]["flaky"]["attempts"], n >= retry_started ? 2 : 1);
    }
  }
  // Without at_seq: the latest state.
  Reply now = a.get("/api/v1/executions/" + id + "/state");
  ASSERT_EQ(now.status, 200) << now.describe();
  EXPECT_EQ(now.doc()["at_seq"], last);

  // Out of range and malformed.
  for (const std::string& q : {"at_seq=" + std::to_string(last + 1), std::string("at_seq=abc"),
                               std::string("at_seq=-1"), std::string("at_seq=1e3")}) {
    Reply r = a.get("/api/v1/executions/" + id + "/state?" + q);
    EXPECT_EQ(r.status, 400) << q << ": " << r.describe();
    EXPECT_EQ(r.code(), "invalid_parameter") << q;
  }
  EXPECT_EQ(a.get("/api/v1/executions/01ARZ3NDEKTSV4RRFFQ69G5FAV/state").status, 404);
  EXPECT_EQ(a.get("/api/v1/executions/not-an-id/state?at_seq=1").status, 404);
}

TEST_F(TimeMachineTest, DiffsBetweenEventsApplyToTheStates) {
  Api a = api();
  create_flow(a, history_flow("tm-diff"));
  Reply run = a.post("/api/v1/flows/tm-diff/run?wait_ms=20000", json{{"input", {{"x", 2}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  const uint64_t last = a.get("/api/v1/executions/" + id).doc()["last_seq"];
  ASSERT_GT(last, 10u);
  std::vector<json> states(last + 1);
  for (uint64_t n = 1; n <= last; ++n) states[n] = state_at(a, id, n);

  size_t ops = 0;
  for (uint64_t n = 1; n < last; ++n) {
    SCOPED_TRACE("seq " + std::to_string(n));
    Reply r = a.get("/api/v1/executions/" + id + "/diff?from_seq=" + std::to_string(n) +
                    "&to_seq=" + std::to_string(n + 1));
    ASSERT_EQ(r.status, 200) << r.describe();
    const json d = r.doc();
    EXPECT_EQ(d["from_seq"], n);
    EXPECT_EQ(d["to_seq"], n + 1);
    ASSERT_TRUE(d["patch"].is_array());
    EXPECT_FALSE(d["patch"].empty()) << "every event changes the state (at least at_seq)";
    ops += d["patch"].size();
    json doc = states[n];
    std::string why;
    ASSERT_TRUE(apply_rfc6902(doc, d["patch"], &why)) << why << "\n" << d.dump();
    EXPECT_EQ(doc, states[n + 1]);
  }
  EXPECT_GT(ops, last);
  // Any two seqs, either direction; the same seq is an empty patch.
  for (const auto& [from, to] :
       std::vector<std::pair<uint64_t, uint64_t>>{{1, last}, {last, 1}, {3, 3}, {2, last - 1}}) {
    Reply r = a.get("/api/v1/executions/" + id + "/diff?from_seq=" + std::to_string(from) +
                    "&to_seq=" + std::to_string(to));
    ASSERT_EQ(r.status, 200) << r.describe();
    json doc = states[from];
    std::string why;
    ASSERT_TRUE(apply_rfc6902(doc, r.doc()["patch"], &why)) << why;
    EXPECT_EQ(doc, states[to]) << from << " -> " << to;
    if (from == to) {
      EXPECT_TRUE(r.doc()["patch"].empty());
    }
  }
  for (const std::string& q : std::vector<std::string>{
           "", "?from_seq=1", "?to_seq=2", "?from_seq=0&to_seq=2", "?from_seq=1&to_seq=x",
           "?from_seq=1&to_seq=" + std::to_string(last + 1)}) {
    Reply r = a.get("/api/v1/executions/" + id + "/diff" + q);
    EXPECT_EQ(r.status, 400) << q << ": " << r.describe();
    EXPECT_EQ(r.code(), "invalid_parameter") << q;
  }
}

// The state and the events of a run that is still running: the latest seq
// comes from the log, not from the summary row (written only when the status
// changes).
TEST_F(TimeMachineTest, StateEventsAndDiffOfARunningExecutionSeeItsWholeLog) {
  Api a = api();
  create_flow(a, json::parse(R"J({"id": "tm-busy", "steps": [
    {"id": "each", "type": "loop", "config": {"items": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                          13, 14, 15, 16, 17, 18, 19, 20],
     "steps": [{"id": "s", "type": "action",
                "config": {"tool_id": "core", "action": "sleep", "parameters": {"ms": 100}}}]}}]})J"));
  const std::string id = start_run(a, "tm-busy");
  ASSERT_FALSE(id.empty());
  json doc = poll_execution(a, id, [](const json& d) { return d.value("last_seq", 0) >= 12; });
  ASSERT_EQ(doc.value("status", ""), "running") << doc.dump();
  const uint64_t seen = doc["last_seq"];
  ASSERT_GE(seen, 12u);

  Reply st = a.get("/api/v1/executions/" + id + "/state?at_seq=" + std::to_string(seen));
  ASSERT_EQ(st.status, 200) << st.describe();
  EXPECT_EQ(st.doc()["at_seq"], seen);
  Reply latest = a.get("/api/v1/executions/" + id + "/state");
  ASSERT_EQ(latest.status, 200) << latest.describe();
  EXPECT_GE(latest.doc()["at_seq"].get<uint64_t>(), seen);
  Reply d = a.get("/api/v1/executions/" + id + "/diff?from_seq=1&to_seq=" + std::to_string(seen));
  EXPECT_EQ(d.status, 200) << d.describe();

  // Paging the events of the running execution reaches (at least) `seen`.
  uint64_t after = 0;
  uint64_t count = 0;
  for (int page = 0; page < 100; ++page) {
    Reply r =
        a.get("/api/v1/executions/" + id + "/events?limit=4&after_seq=" + std::to_string(after));
    ASSERT_EQ(r.status, 200) << r.describe();
    count += r.doc()["events"].size();
    if (!r.doc()["next_after_seq"].is_number()) break;
    after = r.doc()["next_after_seq"];
  }
  EXPECT_GE(count, seen);
  EXPECT_EQ(a.post("/api/v1/executions/" + id + "/cancel", json::object()).status, 200);
}

// ---- replay ---------------------------------------------------------------------

TEST_F(TimeMachineTest, ReplayWithAPatchedOutputCompletesAFailedRun) {
  Api a = api();
  create_flow(a, two_step_flow("tm-replay"));
  Reply run = a.post("/api/v1/flows/tm-replay/run?wait_ms=20000", json{{"input", {{"y", "Y"}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_EQ(run.doc()["status"], "failed");
  const std::string source = run.doc()["execution_id"];
  const json before = all_events(a, source);
  const uint64_t failed_at = seq_of_type(before, "step_failed", "a");
  ASSERT_GT(failed_at, 1u);

  Reply r = a.post("/api/v1/executions/" + source + "/replay",
                   json{{"from_seq", failed_at - 1},
                        {"patch", {{"steps", {{"a", {{"output", {{"v", 42}}}}}}}}}});
  ASSERT_EQ(r.status, 201) << r.describe();
  const std::string fork = r.doc()["execution_id"];
  EXPECT_EQ(fork.size(), 26u);
  EXPECT_NE(fork, source);
  EXPECT_EQ(r.doc()["parent_execution_id"], source);
  EXPECT_EQ(r.doc()["forked_at_seq"], failed_at - 1);

  const json done = wait_finished(a, fork);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"], json({{"b", {{"from_a", 42}, {"y", "Y"}}}}));
  EXPECT_EQ(done["parent_execution_id"], source);
  EXPECT_EQ(done["forked_at_seq"], failed_at - 1);
  EXPECT_EQ(done["forks"], json::array());
  const json src = a.get("/api/v1/executions/" + source).doc();
  EXPECT_EQ(src["status"], "failed");
  EXPECT_EQ(src["forks"], json::array({fork}));
  EXPECT_TRUE(src["parent_execution_id"].is_null());
  EXPECT_TRUE(src["forked_at_seq"].is_null());
  EXPECT_EQ(all_events(a, source), before) << "the source's history changed";

  // The fork's timeline shows the override.
  Reply tl = a.get("/api/v1/executions/" + fork + "/timeline");
  ASSERT_EQ(tl.status, 200) << tl.describe();
  EXPECT_EQ(tl.doc()["parent_execution_id"], source);
  EXPECT_EQ(tl.doc()["overrides"].size(), 1u) << tl.body;
}

TEST_F(TimeMachineTest, ReplayWithoutPatchAndWithAPatchedInput) {
  Api a = api();
  json flow = two_step_flow("tm-replay-input");
  flow["steps"][0]["config"] = {
      {"tool_id", "core"}, {"action", "echo"}, {"parameters", {{"v", {{"$ref", "input.x"}}}}}};
  create_flow(a, flow);
  Reply run = a.post("/api/v1/flows/tm-replay-input/run?wait_ms=20000",
                     json{{"input", {{"x", 1}, {"y", "old"}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_EQ(run.doc()["status"], "completed");
  const std::string source = run.doc()["execution_id"];
  const json output = run.doc()["output"];
  const json events = all_events(a, source);
  const uint64_t last = events.size();

  // No body at all: a copy of the whole history, the same output.
  Reply whole = a.request("POST", "/api/v1/executions/" + source + "/replay", "");
  ASSERT_EQ(whole.status, 201) << whole.describe();
  EXPECT_TRUE(whole.doc()["forked_at_seq"].is_null()) << whole.body;
  const json copy = wait_finished(a, whole.doc()["execution_id"]);
  EXPECT_EQ(copy.value("status", ""), "completed") << copy.dump();
  EXPECT_EQ(copy["output"], output);
  EXPECT_EQ(copy["forked_at_seq"], last);

  // From the last event, no patch: the same.
  Reply same = a.post("/api/v1/executions/" + source + "/replay", json{{"from_seq", last}});
  ASSERT_EQ(same.status, 201) << same.describe();
  EXPECT_EQ(same.doc()["forked_at_seq"], last);
  EXPECT_EQ(wait_finished(a, same.doc()["execution_id"])["output"], output);

  // From the start of a, with a new input: b sees it.
  const uint64_t a_started = seq_of_type(events, "step_started", "a");
  ASSERT_GT(a_started, 0u);
  Reply patched = a.post("/api/v1/executions/" + source + "/replay",
                         json{{"from_seq", a_started}, {"patch", {{"input", {{"y", "new"}}}}}});
  ASSERT_EQ(patched.status, 201) << patched.describe();
  const json p = wait_finished(a, patched.doc()["execution_id"]);
  EXPECT_EQ(p.value("status", ""), "completed") << p.dump();
  EXPECT_EQ(p["output"], json({{"b", {{"from_a", 1}, {"y", "new"}}}}));
  EXPECT_EQ(p["input"], json({{"x", 1}, {"y", "new"}}));

  const json src = a.get("/api/v1/executions/" + source).doc();
  const std::set<std::string> forks(src["forks"].begin(), src["forks"].end());
  EXPECT_EQ(forks, (std::set<std::string>{whole.doc()["execution_id"], same.doc()["execution_id"],
                                          patched.doc()["execution_id"]}));
  // A finished copy cannot take a patch.
  Reply late = a.post("/api/v1/executions/" + source + "/replay",
                      json{{"from_seq", last}, {"patch", {{"input", {{"y", "z"}}}}}});
  EXPECT_EQ(late.status, 409) << late.describe();
  EXPECT_EQ(late.code(), "conflict");
}

TEST_F(TimeMachineTest, BadReplayRequestsAre400WithDetailsAndUnknownIds404) {
  Api a = api();
  create_flow(a, echo_flow("tm-replay-bad"));
  Reply run = a.post("/api/v1/flows/tm-replay-bad/run?wait_ms=20000", json{{"input", {{"x", 1}}}});
  ASSERT_EQ(run.status, 200) << run.describe();
  const std::string id = run.doc()["execution_id"];
  const uint64_t last = a.get("/api/v1/executions/" + id).doc()["last_seq"];
  const std::string target = "/api/v1/executions/" + id + "/replay";

  struct Case {
    std::string body;
    std::string pointer;  // a detail must name it
  };
  const std::vector<Case> cases = {
      {"[1]", ""},
      {R"({"from": 1})", "/from"},
      {R"({"from_seq": 0})", "/from_seq"},
      {R"({"from_seq": -3})", "/from_seq"},
      {R"({"from_seq": "2"})", "/from_seq"},
      {R"({"from_seq": 1.5})", "/from_seq"},
      {R"({"from_seq": )" + std::to_string(last + 1) + "}", "/from_seq"},
      {R"({"from_seq": 1, "patch": 5})", "/patch"},
      {R"({"from_seq": 1, "patch": {"steps": {"nope": {"output": 1}}}})", "/patch/steps/nope"},
      {R"({"from_seq": 1, "patch": {"input": [1]}})", "/patch/input"},
      {R"({"from_seq": 1, "patch": {"outputs": {}}})", "/patch/outputs"},
      {R"({"from_seq": 2, "patch": {"steps": {"a": {"value": 1}}}})", "/patch/steps/a/value"},
  };
  for (const auto& c : cases) {
    Reply r = a.post_raw(target, c.body, "application/json");
    EXPECT_EQ(r.status, 400) << c.body << ": " << r.describe();
    EXPECT_TRUE(pointers(r).count(c.pointer))
        << c.body << ": no detail at '" << c.pointer << "': " << r.body;
    for (const auto& d : r.doc()["error"].value("details", json::array())) {
      EXPECT_FALSE(d.value("message", "").empty()) << r.body;
    }
  }
  Reply not_json = a.post_raw(target, "{from_seq:", "application/json");
  EXPECT_EQ(not_json.status, 400) << not_json.describe();
  EXPECT_EQ(not_json.code(), "invalid_json");
  // None of these forked anything.
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["forks"], json::array());

  for (const std::string& bad :
       {std::string("01ARZ3NDEKTSV4RRFFQ69G5FAV"), std::string("not-an-id")}) {
    Reply r = a.post("/api/v1/executions/" + bad + "/replay", json{{"from_seq", 1}});
    EXPECT_EQ(r.status, 404) << bad << ": " << r.describe();
    EXPECT_EQ(r.code(), "not_found");
    Reply t = a.post("/api/v1/executions/" + bad + "/retry", json::object());
    EXPECT_EQ(t.status, 404) << bad << ": " << t.describe();
  }
  // Without a key nothing is forked.
  Reply anon = http_request(node_->port(), "POST", target, R"({"from_seq": 1})",
                            {{"Content-Type", "application/json"}});
  EXPECT_EQ(anon.status, 401) << anon.describe();
  EXPECT_EQ(a.get("/api/v1/executions/" + id).doc()["forks"], json::array());
}

// ---- retry ----------------------------------------------------------------------

TEST_F(TimeMachineTest, RetryContinuesAFailedRunOnceTheWorldIsFixed) {
  std::atomic<bool> broken{true};
  TinyHttpServer service([&](const SeenRequest&) {
    if (broken) return TinyHttpServer::Answer{500, R"({"error": "down"})"};
    return TinyHttpServer::Answer{200, R"({"ok": true})"};
  });
  ASSERT_NE(service.port(), 0);
  Api a = api();
  json flow = json::parse(R"J({"id": "tm-retry", "steps": [
    {"id": "call", "type": "action",
     "config": {"tool_id": "http", "action": "request", "parameters": {"method": "POST"}},
     "retry_config": {"max_attempts": 2, "backoff_type": "fixed", "initial_delay_ms": 10},
     "on_success": "after"},
    {"id": "after", "type": "action",
     "config": {"tool_id": "core", "action": "echo", "parameters": {"ok": {"$ref": "call.body.ok"}}}}],
    "output": {"ok": {"$ref": "after.ok"}}})J");
  flow["steps"][0]["config"]["parameters"]["url"] =
      "http://127.0.0.1:" + std::to_string(service.port()) + "/hook";
  create_flow(a, flow);

  Reply run = a.post("/api/v1/flows/tm-retry/run?wait_ms=20000", json::object());
  ASSERT_EQ(run.status, 200) << run.describe();
  ASSERT_EQ(run.doc()["status"], "failed") << run.body;
  const std::string id = run.doc()["execution_id"];
  EXPECT_EQ(service.seen().size(), 2u);

  broken = false;
  Reply retry = a.post("/api/v1/executions/" + id + "/retry", json::object());
  ASSERT_EQ(retry.status, 202) << retry.describe();
  EXPECT_EQ(retry.doc()["execution_id"], id);
  EXPECT_EQ(retry.doc()["status"], "running");
  const json done = wait_finished(a, id);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_EQ(done["output"], json({{"ok", true}}));
  EXPECT_EQ(done["steps"]["call"]["attempts"], 3);
  EXPECT_TRUE(done["error"].is_null());
  const auto seen = service.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].headers.at("idempotency-key"), id + "/call/" + std::to_string(i + 1));
  }
  // The retry is in the history and the timeline.
  const json events = all_events(a, id);
  EXPECT_GT(seq_of_type(events, "resumed"), 0u) << events.dump();
  Reply tl = a.get("/api/v1/executions/" + id + "/timeline");
  ASSERT_EQ(tl.status, 200);
  EXPECT_EQ(tl.doc()["resumes"].size(), 1u);

  // A completed run cannot be retried; neither can a running one.
  Reply again = a.post("/api/v1/executions/" + id + "/retry", json::object());
  EXPECT_EQ(again.status, 409) << again.describe();
  EXPECT_EQ(again.code(), "conflict");
  create_flow(a, delay_flow("tm-retry-wait", 60000));
  const std::string waiting = start_run(a, "tm-retry-wait");
  ASSERT_EQ(wait_status(a, waiting, "waiting").value("status", ""), "waiting");
  EXPECT_EQ(a.post("/api/v1/executions/" + waiting + "/retry", json::object()).status, 409);
  ASSERT_EQ(a.post("/api/v1/executions/" + waiting + "/cancel", json::object()).status, 200);
  // A cancelled one neither.
  EXPECT_EQ(a.post("/api/v1/executions/" + waiting + "/retry", json::object()).status, 409);
}

}  // namespace
}  // namespace yantra::e2e
