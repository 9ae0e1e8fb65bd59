// The time machine's pure half: JSON Patch, redaction, snapshots, forks
// (make_fork + StateOverridden), retries (make_resume + Resumed) and the
// timeline.
//
// Design: scripted cases use the Harness of driver.hpp, so every expectation
// states the exact events decide() writes after a fork or a resume (paths,
// attempts, resolved inputs, idempotency keys). Properties reuse the
// generated corpus of fold_property_test (FlowGen + Driver): snapshots at
// every 7th event fold to the same bytes as the full log, every failed or
// timed-out run resumes and ends, forks at random points fold and run to an
// end, and the timeline accounts for every attempt. JSON Patch is checked
// against exact patches for small cases and by round trip over random
// document pairs.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "runtime/fork.hpp"
#include "runtime/json_patch.hpp"
#include "runtime/redact.hpp"
#include "runtime/snapshot.hpp"
#include "runtime/timeline.hpp"
#include "tests/runtime/driver.hpp"

namespace yantra {
namespace {

using namespace test;  // NOLINT: the shared harness, generator and driver

// ================================================================ JSON Patch

json J(const char* text) {
  return json::parse(text);
}

TEST(JsonPatchDiff, ExactPatchesForSmallCases) {
  EXPECT_EQ(diff(J(R"({"a":1})"), J(R"({"a":1})")), json::array());
  EXPECT_EQ(diff(J(R"({"a":1,"b":2})"), J(R"({"a":1,"c":3})")),
            J(R"([{"op":"remove","path":"/b"},{"op":"add","path":"/c","value":3}])"));
  EXPECT_EQ(diff(J(R"({"a":{"x":1,"y":[1,2]}})"), J(R"({"a":{"x":2,"y":[1,2]}})")),
            J(R"([{"op":"replace","path":"/a/x","value":2}])"));
  // Pointer escaping: '~' -> ~0, '/' -> ~1.
  EXPECT_EQ(diff(J(R"({"a/b":1,"m~n":2})"), J(R"({"a/b":3,"m~n":4})")),
            J(R"([{"op":"replace","path":"/a~1b","value":3},
                  {"op":"replace","path":"/m~0n","value":4}])"));
  // Arrays: element-wise, extra elements added at their index, removed from
  // the end.
  EXPECT_EQ(diff(J("[1,2,3]"), J("[1,5]")),
            J(R"([{"op":"replace","path":"/1","value":5},{"op":"remove","path":"/2"}])"));
  EXPECT_EQ(diff(J("[1]"), J("[1,2,3]")),
            J(R"([{"op":"add","path":"/1","value":2},{"op":"add","path":"/2","value":3}])"));
  EXPECT_EQ(diff(J("[1,2,3,4]"), J("[1]")),
            J(R"([{"op":"remove","path":"/3"},{"op":"remove","path":"/2"},
                  {"op":"remove","path":"/1"}])"));
  // Type changes and scalars: one replace, the root included.
  EXPECT_EQ(diff(J(R"({"a":[1]})"), J(R"({"a":{"0":1}})")),
            J(R"([{"op":"replace","path":"/a","value":{"0":1}}])"));
  EXPECT_EQ(diff(J("1"), J(R"("x")")), J(R"([{"op":"replace","path":"","value":"x"}])"));
  EXPECT_EQ(diff(J("null"), J("{}")), J(R"([{"op":"replace","path":"","value":{}}])"));
  EXPECT_EQ(diff(J(R"({"":1})"), J(R"({"":2})")), J(R"([{"op":"replace","path":"/","value":2}])"));
}

TEST(JsonPatchApply, EveryOperation) {
  const json doc = J(R"({"a":{"b":[1,2,3]},"c":"x"})");
  auto run = [&](const char* patch) {
    auto r = apply_patch(doc, J(patch));
    EXPECT_TRUE(r.ok()) << patch << ": " << r.status().to_string();
    return r.ok() ? r.value() : json();
  };
  EXPECT_EQ(run(R"([{"op":"add","path":"/a/b/1","value":9}])"),
            J(R"({"a":{"b":[1,9,2,3]},"c":"x"})"));
  EXPECT_EQ(run(R"([{"op":"add","path":"/a/b/-","value":9}])"),
            J(R"({"a":{"b":[1,2,3,9]},"c":"x"})"));
  EXPECT_EQ(run(R"([{"op":"add","path":"/d","value":{"e":null}}])"),
            J(R"({"a":{"b":[1,2,3]},"c":"x","d":{"e":null}})"));
  EXPECT_EQ(run(R"([{"op":"add","path":"/c","value":1}])"), J(R"({"a":{"b":[1,2,3]},"c":1})"));
  EXPECT_EQ(run(R"([{"op":"remove","path":"/a/b/0"}])"), J(R"({"a":{"b":[2,3]},"c":"x"})"));
  EXPECT_EQ(run(R"([{"op":"replace","path":"/a","value":0}])"), J(R"({"a":0,"c":"x"})"));
  EXPECT_EQ(run(R"([{"op":"replace","path":"","value":[]}])"), J("[]"));
  EXPECT_EQ(run(R"([{"op":"test","path":"/a/b","value":[1,2,3]}])"), doc);
  EXPECT_EQ(run(R"([{"op":"move","from":"/c","path":"/a/c"}])"),
            J(R"({"a":{"b":[1,2,3],"c":"x"}})"));
  EXPECT_EQ(run(R"([{"op":"copy","from":"/a/b","path":"/z"}])"),
            J(R"({"a":{"b":[1,2,3]},"c":"x","z":[1,2,3]})"));
  EXPECT_EQ(run(R"([{"op":"add","path":"/a~1b","value":1},{"op":"add","path":"/m~0n","value":2}])"),
            J(R"({"a":{"b":[1,2,3]},"a/b":1,"c":"x","m~n":2})"));
}

TEST(JsonPatchApply, ErrorsAreValuesNamingTheOp) {
  const json doc = J(R"({"a":[1,2],"s":"x"})");
  const char* bad[] = {
      R"({"op":"add","path":"/x","value":1})",              // not an array
      R"([{"path":"/x","value":1}])",                       // no op
      R"([{"op":"frobnicate","path":"/x"}])",               // unknown op
      R"([{"op":"add","value":1}])",                        // no path
      R"([{"op":"add","path":"x","value":1}])",             // pointer without '/'
      R"([{"op":"add","path":"/a~2","value":1}])",          // bad escape
      R"([{"op":"add","path":"/q/r","value":1}])",          // parent missing
      R"([{"op":"add","path":"/a/5","value":1}])",          // index past the end
      R"([{"op":"add","path":"/a/01","value":1}])",         // leading zero
      R"([{"op":"add","path":"/s/t","value":1}])",          // parent is a string
      R"([{"op":"add","path":"/x"}])",                      // no value
      R"([{"op":"remove","path":"/a/2"}])",                 // missing element
      R"([{"op":"remove","path":""}])",                     // the root
      R"([{"op":"replace","path":"/nope","value":1}])",     // missing member
      R"([{"op":"test","path":"/s","value":"y"}])",         // test fails
      R"([{"op":"move","from":"/a","path":"/a/0"}])",       // into itself
      R"([{"op":"copy","from":"/nope","path":"/b"}])",      // from missing
      R"([{"op":"add","path":"/ok","value":1},"garbage"])"  // second op malformed
  };
  for (const char* patch : bad) {
    auto r = apply_patch(doc, J(patch));
    ASSERT_FALSE(r.ok()) << patch;
    EXPECT_EQ(r.status().code(), "invalid_patch") << patch;
  }
  auto r =
      apply_patch(doc, J(R"([{"op":"add","path":"/ok","value":1},{"op":"remove","path":"/no"}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "op 1: the path does not exist (/no)");
}

TEST(JsonPointer, ParseAndEscapeRoundTrip) {
  const std::vector<std::string> tokens = {"a/b", "m~n", "", "~01", "plain"};
  const std::string ptr = make_pointer(tokens);
  EXPECT_EQ(ptr, "/a~1b/m~0n//~001/plain");
  auto back = parse_pointer(ptr);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), tokens);
  EXPECT_TRUE(parse_pointer("").ok());
  EXPECT_TRUE(parse_pointer("").value().empty());
  EXPECT_EQ(parse_pointer("/").value(), std::vector<std::string>{""});
  EXPECT_EQ(parse_pointer("a").status().code(), "invalid_pointer");
  EXPECT_EQ(parse_pointer("/~").status().code(), "invalid_pointer");
}

TEST(JsonMergePatch, Rfc7396Examples) {
  // The table of RFC 7396 section 3, row by row: {target, patch, result}.
  const char* rows[][3] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"a":1,"e":null})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& row : rows) {
    json target = J(row[0]);
    merge_patch(target, J(row[1]));
    EXPECT_EQ(target, J(row[2])) << row[0] << " + " << row[1];
  }
}

// Random documents: small alphabets of keys (with '/' and '~') and values so
// that pairs share structure and the diff has to recurse.
class JsonGen {
 public:
  explicit JsonGen(uint32_t seed) : rng_(seed) {}

  json Value(int depth) {
    const int roll = R(0, depth <= 0 ? 5 : 9);
    switch (roll) {
      case 0: return nullptr;
      case 1: return R(0, 1) == 1;
      case 2: return R(-3, 3);
      case 3: return R(0, 4) * 0.5;
      case 4:
      case 5: {
        static const char* kStrings[] = {"", "a", "b", "~", "/x", "long text"};
        return kStrings[R(0, 5)];
      }
      case 6:
      case 7: {
        json arr = json::array();
        for (int i = R(0, 4); i > 0; --i) arr.push_back(Value(depth - 1));
        return arr;
      }
      default: {
        static const char* kKeys[] = {"a", "b", "c", "a/b", "m~n", "", "~1", "0"};
        json obj = json::object();
        for (int i = R(0, 4); i > 0; --i) obj[kKeys[R(0, 7)]] = Value(depth - 1);
        return obj;
      }
    }
  }

  // A variation of `v`: some members changed, added or removed.
  json Mutate(const json& v, int depth) {
    if (R(0, 9) == 0) return Value(depth);
    if (v.is_object()) {
      json out = v;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const int roll = R(0, 5);
        if (roll == 0) out.erase(it.key());
        if (roll == 1) out[it.key()] = Mutate(*it, depth - 1);
      }
      if (R(0, 2) == 0) out["new" + std::to_string(R(0, 2))] = Value(depth - 1);
      return out;
    }
    if (v.is_array()) {
      json out = json::array();
      for (const auto& item : v) {
        if (R(0, 5) == 0) continue;
        out.push_back(R(0, 3) == 0 ? Mutate(item, depth - 1) : item);
      }
      for (int i = R(0, 2); i > 0; --i) out.push_back(Value(depth - 1));
      return out;
    }
    return R(0, 1) == 0 ? v : Value(depth);
  }

 private:
  int R(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::mt19937 rng_;
};

TEST(JsonPatchProperty, ApplyingTheDiffGivesTheTarget) {
  JsonGen gen(42);
  int nonempty = 0;
  for (int i = 0; i < 3000; ++i) {
    const json a = gen.Value(4);
    const json b = (i % 3 == 0) ? gen.Value(4) : gen.Mutate(a, 4);
    const json patch = diff(a, b);
    auto r = apply_patch(a, patch);
    ASSERT_TRUE(r.ok()) << a << " -> " << b << ": " << r.status().to_string() << " " << patch;
    ASSERT_EQ(r.value(), b) << a << " -> " << b << " via " << patch;
    EXPECT_EQ(diff(a, a), json::array());
    // Every op is one of the three documented kinds with a valid pointer.
    for (const auto& op : patch) {
      const std::string kind = op["op"].get<std::string>();
      EXPECT_TRUE(kind == "add" || kind == "remove" || kind == "replace") << op;
      EXPECT_TRUE(parse_pointer(op["path"].get<std::string>()).ok()) << op;
    }
    if (!patch.empty()) ++nonempty;
  }
  EXPECT_GT(nonempty, 2000);
}

// ================================================================ redaction

TEST(Redact, SecretMarkersBecomeStarsAtAnyDepth) {
  const json v = J(R"({"url":"https://x","auth":{"$secret":"api_token"},
                       "list":[{"$secret":"a"},{"k":{"$secret":"b"}}],
                       "not_marker1":{"$secret":1},
                       "not_marker2":{"$secret":"a","extra":1},
                       "$secret":"top-level key is not a marker object"})");
  EXPECT_EQ(redact(v), J(R"({"url":"https://x","auth":"***","list":["***",{"k":"***"}],
                              "not_marker1":{"$secret":1},
                              "not_marker2":{"$secret":"a","extra":1},
                              "$secret":"top-level key is not a marker object"})"));
  EXPECT_EQ(redact(J(R"({"$secret":"whole"})")), json("***"));
  EXPECT_EQ(redact(J("[1,null,true,\"s\"]")), J("[1,null,true,\"s\"]"));
}

TEST(Redact, ResolvedSecretValuesAreHiddenInOutputs) {
  const json out = J(R"({"echo":"s3cr3t","msg":"token=s3cr3t; ok","other":"fine",
                         "nested":[{"k":"S3CR3T"},"pw"],"s3cr3t":"key hidden too",
                         "marker":{"$secret":"x"}})");
  EXPECT_EQ(redact(out, {"s3cr3t", "pw", ""}),
            J(R"({"echo":"***","msg":"***","other":"fine","nested":[{"k":"S3CR3T"},"***"],
                  "***":"key hidden too","marker":"***"})"));
  // An empty secret would match every string; it is ignored.
  EXPECT_EQ(redact(J(R"({"a":"b"})"), {""}), J(R"({"a":"b"})"));
}

// ================================================================ snapshots

class TimeMachineCorpus : public ::testing::Test {
 protected:
  static constexpr int kCases = 400;
  static void SetUpTestSuite() {
    corpus_ = new std::vector<Case>();
    for (int i = 0; i < kCases; ++i) corpus_->push_back(Generate(static_cast<uint32_t>(i + 1)));
  }
  static void TearDownTestSuite() {
    delete corpus_;
    corpus_ = nullptr;
  }
  static const std::vector<Case>& corpus() { return *corpus_; }
  static std::string Trace(const Case& c) {
    return "seed " + std::to_string(c.seed) + " flow " + c.doc.dump() + " input " + c.input.dump();
  }

  // Settles a loaded log and lets the driver run it to its end from `now`.
  static bool Continue(const Case& c, DriverRun& run, int64_t now, uint32_t seed) {
    auto settled = settle(*c.flow, run.st, now, &run.commands);
    if (!settled.ok()) {
      run.error = "settle: " + settled.status().to_string();
      return false;
    }
    for (auto& e : settled.value()) run.log.push_back(std::move(e));
    Driver driver(*c.flow, seed);
    Snapshot at;
    at.rng = std::mt19937(seed);
    at.now = now;
    driver.Restore(at);
    return driver.Finish(run);
  }

 private:
  static std::vector<Case>* corpus_;
};

std::vector<Case>* TimeMachineCorpus::corpus_ = nullptr;

TEST_F(TimeMachineCorpus, SnapshotEveryKEventsFoldsToTheSameBytes) {
  constexpr size_t kEvery = 7;
  size_t checks = 0;
  for (const Case& c : corpus()) {
    ASSERT_EQ(c.error, "") << Trace(c);
    SCOPED_TRACE(Trace(c));
    const auto& log = c.run.log;
    ExecutionState incremental;
    std::string snapshot;  // encode(fold(1..K)), K the last multiple of kEvery
    size_t k = 0;
    for (size_t n = 1; n <= log.size(); ++n) {
      ASSERT_TRUE(apply(incremental, log[n - 1]).is_ok());
      const std::string expected = encode_state(incremental);
      // decode is the inverse of encode at every point.
      auto round = decode_state(expected);
      ASSERT_TRUE(round.ok()) << round.status().to_string();
      ASSERT_EQ(encode_state(round.value()), expected) << "n=" << n;
      ASSERT_EQ(round.value().started, incremental.started);
      if (k > 0) {
        auto base = decode_state(snapshot);
        ASSERT_TRUE(base.ok()) << base.status().to_string();
        std::vector<v1::Event> rest(log.begin() + static_cast<std::ptrdiff_t>(k),
                                    log.begin() + static_cast<std::ptrdiff_t>(n));
        auto folded = fold_from(std::move(base.value()), rest);
        ASSERT_TRUE(folded.ok()) << folded.status().to_string();
        ASSERT_EQ(to_json(folded.value()).dump(), to_json(incremental).dump())
            << "snapshot at " << k << ", n=" << n;
        ++checks;
      }
      if (n % kEvery == 0) {
        snapshot = expected;
        k = n;
      }
    }
    // The last state through the v1::Snapshot row.
    auto restored = restore_snapshot(make_snapshot(c.run.st));
    ASSERT_TRUE(restored.ok()) << restored.status().to_string();
    EXPECT_EQ(encode_state(restored.value()), encode_state(c.run.st));
  }
  EXPECT_GT(checks, static_cast<size_t>(kCases) * 5);
}

TEST(Snapshot, RefusesMalformedInput) {
  Harness h(
      R"({"id":"f","steps":[{"id":"a","type":"action","config":{"tool_id":"t","action":"x"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 10);
  const std::string good = encode_state(h.st());
  ASSERT_TRUE(decode_state(good).ok());
  auto code_of = [](const std::string& text) { return decode_state(text).status().code(); };
  EXPECT_EQ(code_of("not json"), "invalid_snapshot");
  EXPECT_EQ(code_of("[]"), "invalid_snapshot");
  json j = json::parse(good);
  for (const char* key : {"execution_id", "steps", "frames", "timers", "running", "last_seq",
                          "detached_active", "status", "parent_execution_id"}) {
    json missing = j;
    missing.erase(key);
    EXPECT_EQ(code_of(missing.dump()), "invalid_snapshot") << key;
  }
  json wrong = j;
  wrong["status"] = "sleeping";
  EXPECT_EQ(decode_state(wrong.dump()).status().message(),
            "state.status has an unknown value 'sleeping'");
  wrong = j;
  wrong["steps"]["a"]["attempt"] = -1;
  EXPECT_EQ(decode_state(wrong.dump()).status().message(),
            "steps[\"a\"].attempt is not an integer in range");
  wrong = j;
  wrong["frames"][""]["index"] = 1LL << 40;
  EXPECT_EQ(code_of(wrong.dump()), "invalid_snapshot");
  wrong = j;
  wrong["running"] = json::array({1});
  EXPECT_EQ(code_of(wrong.dump()), "invalid_snapshot");

  v1::Snapshot row = make_snapshot(h.st());
  EXPECT_EQ(row.seq(), h.st().last_seq);
  EXPECT_EQ(row.format(), kSnapshotFormat);
  row.set_format(kSnapshotFormat + 1);
  EXPECT_EQ(restore_snapshot(row).status().code(), "invalid_snapshot");
  row.set_format(kSnapshotFormat);
  row.set_seq(row.seq() + 1);
  EXPECT_EQ(restore_snapshot(row).status().code(), "invalid_snapshot");
  // A snapshot continues with the next seq only.
  ExecutionState st = decode_state(good).value();
  v1::Event skip = make_event(st, 20);
  skip.set_seq(skip.seq() + 1);
  skip.mutable_timer_fired()->set_timer_id("x");
  EXPECT_EQ(fold_from(st, {skip}).status().code(), "invalid_event");
}

// ================================================================ fork

// a -> b, b reads a's output and the input.
const char* kTwoSteps = R"({"id":"two","steps":[
  {"id":"a","type":"action","config":{"tool_id":"core","action":"work",
    "parameters":{"x":{"$ref":"input.x"}}},"on_success":"b"},
  {"id":"b","type":"action","config":{"tool_id":"core","action":"use",
    "parameters":{"from_a":{"$ref":"a.v"},"y":{"$ref":"input.y"}}}}],
 "output":{"b":{"$ref":"b"},"x":{"$ref":"input.x"}}})";

// A condition between actions, for the patch-shape checks.
const char* kBranchy = R"({"id":"orders","steps":[
  {"id":"get","type":"action","config":{"tool_id":"core","action":"echo"},"on_success":"check"},
  {"id":"check","type":"condition","config":{
    "condition":{"operator":">","left":{"$ref":"get.t"},"right":100},
    "on_true":"vip","on_false":"basic"}},
  {"id":"vip","type":"action","config":{"tool_id":"core","action":"vip"}},
  {"id":"basic","type":"action","config":{"tool_id":"core","action":"basic"}}]})";

std::vector<std::string> LogBytes(const std::vector<v1::Event>& log) {
  return Serialized(log);
}

// One line per event, for failure messages.
std::string Dump(const std::vector<v1::Event>& log) {
  std::string out;
  for (const auto& e : log) out += std::to_string(e.seq()) + " " + Describe(e) + "\n";
  return out;
}

uint64_t SeqOf(const std::vector<v1::Event>& log, v1::Event::BodyCase kind) {
  for (const auto& e : log) {
    if (e.body_case() == kind) return e.seq();
  }
  return 0;
}

TEST(Fork, FailedRunForkedBeforeItsFailureWithAPatchedOutputCompletes) {
  Harness src(kTwoSteps);
  ASSERT_TRUE(src.ok());
  src.Start({{"x", 1}, {"y", "Y"}}, 1000);
  EXPECT_EQ(src.Fail("a", 1, "bad_request", false, 1100),
            (Strings{"StepFailed a#1 bad_request", "ExecutionFailed bad_request"}));
  const std::vector<v1::Event> source = src.log();
  const auto before = LogBytes(source);
  const uint64_t failed_at = SeqOf(source, v1::Event::kStepFailed);
  ASSERT_EQ(failed_at, 3u);

  auto fork =
      make_fork(source, failed_at - 1, J(R"({"steps":{"a":{"output":{"v":42}}}})"), "fork-1", 5000);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  EXPECT_EQ(LogBytes(source), before) << "the source is untouched";
  ASSERT_EQ(fork->size(), 3u);
  const auto& started = fork->front().execution_started();
  EXPECT_EQ(started.execution_id(), "fork-1");
  EXPECT_EQ(started.parent_execution_id(), kExec);
  EXPECT_EQ(started.forked_at_seq(), 2u);
  EXPECT_EQ((*fork)[1].SerializeAsString(), source[1].SerializeAsString());
  EXPECT_EQ(Describe(fork->back()), R"(StateOverridden {"steps":{"a":{"output":{"v":42}}}})");
  EXPECT_EQ(fork->back().seq(), 3u);
  EXPECT_EQ(fork->back().time_ms(), 5000);

  Harness h(kTwoSteps);
  EXPECT_EQ(h.Load(*fork, 5000), (Strings{R"(StepStarted b#1 action {"from_a":42,"y":"Y"})"}));
  EXPECT_EQ(h.st().execution_id, "fork-1");
  EXPECT_EQ(h.st().parent_execution_id, kExec);
  EXPECT_EQ(h.st().forked_at_seq, 2u);
  EXPECT_EQ(h.st().steps.at("a").status, StepStatus::kCompleted);
  EXPECT_EQ(h.st().steps.at("a").ended_ms, 5000);
  EXPECT_EQ(h.Commands(),
            (Strings{R"(invoke b#1 core.use {"from_a":42,"y":"Y"} key=fork-1/b/1 timeout=0)"}));
  EXPECT_EQ(h.Complete("b", 1, "B", 5100),
            (Strings{R"(StepCompleted b#1 "B")", R"(ExecutionCompleted {"b":"B","x":1})"}));
  EXPECT_EQ(to_json(h.st())["parent_execution_id"], kExec);
  EXPECT_EQ(to_json(h.st())["forked_at_seq"], 2);
  EXPECT_EQ(LogBytes(source), before);
}

TEST(Fork, PatchingAFailedStepAfterItsFailureStillContinues) {
  // Cut between StepFailed and ExecutionFailed (one batch in the source): the
  // step is failed but the failure has not reached the execution yet.
  Harness src(kTwoSteps);
  src.Start({{"x", 1}, {"y", "Y"}}, 1000);
  src.Fail("a", 1, "bad_request", false, 1100);
  auto fork = make_fork(src.log(), 3, J(R"({"steps":{"a":{"output":{"v":7}}}})"), "fork-2", 2000);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  Harness h(kTwoSteps);
  EXPECT_EQ(h.Load(*fork, 2000), (Strings{R"(StepStarted b#1 action {"from_a":7,"y":"Y"})"}));
}

TEST(Fork, PatchedInputFlowsIntoLaterSteps) {
  Harness src(kTwoSteps);
  src.Start({{"x", 1}, {"y", "old"}, {"drop", true}}, 1000);
  src.Complete("a", 1, {{"v", 5}}, 1100);
  src.Complete("b", 1, "B", 1200);
  ASSERT_EQ(src.st().status, ExecStatus::kCompleted);
  // Fork while a was running: patch the input that b (and the output) read.
  auto fork = make_fork(src.log(), 2, J(R"({"input":{"y":"new","drop":null,"z":{"k":1}}})"),
                        "fork-3", 9000);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  Harness h(kTwoSteps);
  EXPECT_EQ(h.Load(*fork, 9000), Strings{});
  EXPECT_EQ(h.st().input, J(R"({"x":1,"y":"new","z":{"k":1}})"));
  // a was in flight at the fork point: it is invoked again under the fork's
  // own idempotency key.
  EXPECT_EQ(h.Commands(), (Strings{R"(invoke a#1 core.work {"x":1} key=fork-3/a/1 timeout=0)"}));
  EXPECT_EQ(h.Complete("a", 1, {{"v", 6}}, 9100),
            (Strings{R"(StepCompleted a#1 {"v":6})",
                     R"(StepStarted b#1 action {"from_a":6,"y":"new"})"}));
  EXPECT_EQ(h.Complete("b", 1, "B2", 9200),
            (Strings{R"(StepCompleted b#1 "B2")", R"(ExecutionCompleted {"b":"B2","x":1})"}));
}

TEST(Fork, NoPatchForkOfACompletedRunAtItsLastEventIsTheSameRun) {
  Harness src(kTwoSteps);
  src.Start({{"x", 3}, {"y", "Y"}}, 1000);
  src.Complete("a", 1, {{"v", 5}}, 1100);
  src.Complete("b", 1, "B", 1200);
  const auto& log = src.log();
  for (const json& patch : {json(nullptr), json::object()}) {
    auto fork = make_fork(log, log.back().seq(), patch, "fork-4", 5000);
    ASSERT_TRUE(fork.ok()) << fork.status().to_string();
    ASSERT_EQ(fork->size(), log.size());
    for (size_t i = 1; i < log.size(); ++i) {
      EXPECT_EQ((*fork)[i].SerializeAsString(), log[i].SerializeAsString());
    }
    auto st = fold(*fork);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->status, ExecStatus::kCompleted);
    EXPECT_EQ(st->output.dump(), src.st().output.dump());
    // Identity aside, the state is the source's.
    json a = to_json(st.value());
    json b = to_json(src.st());
    for (const char* k : {"execution_id", "parent_execution_id", "forked_at_seq"}) {
      a.erase(k);
      b.erase(k);
    }
    EXPECT_EQ(a.dump(), b.dump());
  }
  // A finished copy cannot be patched.
  auto patched = make_fork(log, log.back().seq(), J(R"({"input":{"x":1}})"), "fork-5", 5000);
  EXPECT_EQ(patched.status().code(), "conflict");
  EXPECT_NE(patched.status().message().find("fork from an earlier seq"), std::string::npos);
}

TEST(Fork, ForkKeepsTheRemainingTimeOfItsTimers) {
  // A step deadline and the workflow timeout, copied from a run long ago:
  // the override restarts the clock with the time that remained.
  Harness src(R"({"id":"t","steps":[{"id":"a","type":"action","config":{"tool_id":"t",
      "action":"x","timeout_ms":500}}],"config":{"timeout_ms":10000}})");
  ASSERT_TRUE(src.ok());
  src.Start(json::object(), 1000);
  ASSERT_EQ(src.Commands(), (Strings{R"(invoke a#1 t.x {} key=exec-1/a/1 timeout=500)",
                                     "timer #timeout due=11000", "timer a#1 due=1500"}));
  auto fork = make_fork(src.log(), 2, J(R"({"input":{}})"), "fork-6", 100000);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  Harness h(src.flow().source.dump());
  EXPECT_EQ(h.Load(*fork, 100000), Strings{});
  EXPECT_EQ(h.Commands(), (Strings{R"(invoke a#1 t.x {} key=fork-6/a/1 timeout=500)",
                                   "timer #timeout due=110000", "timer a#1 due=100500"}));
  // Without a patch the copy keeps the source's due times.
  auto plain = make_fork(src.log(), 2, nullptr, "fork-7", 100000);
  ASSERT_TRUE(plain.ok());
  Harness p(src.flow().source.dump());
  p.Load(*plain, 100000);
  EXPECT_EQ(p.Commands(), (Strings{R"(invoke a#1 t.x {} key=fork-7/a/1 timeout=500)",
                                   "timer #timeout due=11000", "timer a#1 due=1500"}));
}

TEST(Fork, OverridingARunningContainerAbandonsItsChildren) {
  Harness src(R"({"id":"l","steps":[
    {"id":"each","type":"loop","config":{"items":[1,2],"parallel":true,
      "steps":[{"id":"inner","type":"action","config":{"tool_id":"t","action":"a"}}]},
     "on_success":"after"},
    {"id":"after","type":"action","config":{"tool_id":"t","action":"b",
      "parameters":{"e":{"$ref":"each"}}}}]})");
  ASSERT_TRUE(src.ok());
  src.Start(json::object(), 1);
  auto fork = make_fork(src.log(), src.log().back().seq(),
                        J(R"({"steps":{"each":{"output":["x","y"]}}})"), "fork-8", 10);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  Harness h(src.flow().source.dump());
  EXPECT_EQ(h.Load(*fork, 10), (Strings{R"(StepStarted after#1 action {"e":["x","y"]})"}));
  EXPECT_EQ(h.st().frames.at("each[0]").status, FrameStatus::kAbandoned);
  EXPECT_EQ(h.st().frames.at("each[1]").status, FrameStatus::kAbandoned);
  EXPECT_EQ(h.st().running, (std::set<std::string>{"after"}));
}

TEST(Fork, ArgumentsAndPatchShapeAreCheckedStrictly) {
  Harness src(kBranchy);
  ASSERT_TRUE(src.ok());
  src.Start({{"a", "A"}, {"n", 60}}, 1000);
  src.Complete("get", 1, {{"t", 120}, {"x", "A"}}, 1100);
  const auto& log = src.log();
  const uint64_t last = log.back().seq();
  auto err = [&](uint64_t at, const json& patch, const std::string& id = "f") {
    auto r = make_fork(log, at, patch, id, 5000);
    return r.ok() ? std::string("ok") : r.status().code() + ": " + r.status().message();
  };
  EXPECT_EQ(err(0, nullptr), "invalid_argument: at_seq must be >= 1");
  EXPECT_EQ(err(last + 1, nullptr), "invalid_argument: at_seq " + std::to_string(last + 1) +
                                        " is past the last event of the source (" +
                                        std::to_string(last) + ")");
  EXPECT_EQ(err(1, nullptr, ""), "invalid_argument: the fork needs an execution id");
  EXPECT_EQ(err(last, J(R"({"inputs":{}})")),
            "invalid_argument: invalid patch: /inputs: unknown member (allowed: input, steps)");
  EXPECT_EQ(err(last, J(R"({"input":[1]})")),
            "invalid_argument: invalid patch: /input: must be an object (an RFC 7396 merge patch)");
  EXPECT_EQ(err(last, J(R"({"steps":{"a/b~":{"output":1}}})")),
            "invalid_argument: invalid patch: /steps/a~1b~0: no step instance 'a/b~' at seq " +
                std::to_string(last));
  EXPECT_EQ(err(last, J(R"({"steps":{"get":{"output":1,"status":"x"}}})")),
            "invalid_argument: invalid patch: /steps/get/status: unknown member (allowed: output)");
  EXPECT_EQ(err(last, J(R"({"steps":{"get":{}}})")),
            "invalid_argument: invalid patch: /steps/get: \"output\" is missing");
  EXPECT_EQ(err(last, J(R"({"steps":{"get":5}})")),
            "invalid_argument: invalid patch: /steps/get: must be an object {\"output\": value}");
  EXPECT_EQ(err(last, J(R"({"steps":{"check":{"output":{"result":false}}}})")),
            "invalid_argument: invalid patch: /steps/check: a condition step cannot be "
            "overridden (fork from before it and patch what it reads instead)");
  EXPECT_EQ(err(last, J("[1]")).substr(0, 35), "invalid_argument: invalid patch: : ");
  // Every problem is listed, not only the first.
  auto all = make_fork(log, last, J(R"({"x":1,"steps":{"nope":{"output":1},"get":{}}})"), "f", 1);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().details().size(), 3u);
  // Steps at the fork point only: "vip" runs after seq 2.
  EXPECT_EQ(err(2, J(R"({"steps":{"vip":{"output":1}}})")).substr(0, 52),
            "invalid_argument: invalid patch: /steps/vip: no step");
  EXPECT_EQ(err(last, J(R"({"steps":{"vip":{"output":1}}})")), "ok");
}

// ================================================================ StateOverridden / Resumed in
// apply()

TEST(ApplyTimeMachine, StateOverriddenRejectionsLeaveTheStateUnchanged) {
  Harness h(kTwoSteps);
  h.Start({{"x", 1}}, 1000);
  auto reject = [&](const std::string& patch_json) {
    v1::Event ev = make_event(h.st(), 2000);
    ev.mutable_state_overridden()->set_patch_json(patch_json);
    return h.Reject(ev, 2000);
  };
  EXPECT_EQ(reject("not json"), "invalid_event");
  EXPECT_EQ(reject("[]"), "invalid_event");
  EXPECT_EQ(reject(R"({"input":1})"), "invalid_event");
  EXPECT_EQ(reject(R"({"other":{}})"), "invalid_event");
  EXPECT_EQ(reject(R"({"steps":{"zzz":{"output":1}}})"), "invalid_event");
  EXPECT_EQ(reject(R"({"steps":{"a":{"out":1}}})"), "invalid_event");
  EXPECT_EQ(reject(R"({"input":{"ok":1},"steps":{"a":{"output":1},"zzz":{"output":1}}})"),
            "invalid_event");
  // A terminal execution takes no override.
  h.Fail("a", 1, "bad", false, 3000);
  ASSERT_EQ(h.st().status, ExecStatus::kFailed);
  EXPECT_EQ(reject(R"({"input":{"x":2}})"), "invalid_event");
}

TEST(ApplyTimeMachine, ResumedOnlyAppliesToFailedOrTimedOutExecutions) {
  Harness h(kTwoSteps);
  h.Start({{"x", 1}}, 1000);
  v1::Event ev = make_event(h.st(), 2000);
  ev.mutable_resumed()->add_frames("");
  EXPECT_EQ(h.Reject(ev, 2000), "invalid_event");  // running
  EXPECT_EQ(make_resume(h.st(), 2000).status().code(), "conflict");
  h.Fail("a", 1, "bad", false, 3000);
  v1::Event unknown = make_event(h.st(), 4000);
  unknown.mutable_resumed()->add_frames("nope");
  EXPECT_EQ(h.Reject(unknown, 4000), "invalid_event");
  unknown = make_event(h.st(), 4000);
  unknown.mutable_resumed()->add_steps("nope");
  EXPECT_EQ(h.Reject(unknown, 4000), "invalid_event");

  Harness done(kTwoSteps);
  done.Start({{"x", 1}}, 1000);
  done.Complete("a", 1, {{"v", 1}}, 1100);
  done.Complete("b", 1, 1, 1200);
  EXPECT_EQ(make_resume(done.st(), 2000).status().code(), "conflict");
  ev = make_event(done.st(), 2000);
  ev.mutable_resumed();
  EXPECT_EQ(done.Reject(ev, 2000), "invalid_event");

  Harness cancelled(kTwoSteps);
  cancelled.Start({{"x", 1}}, 1000);
  cancelled.Cancel("stop", 1100);
  EXPECT_EQ(make_resume(cancelled.st(), 2000).status().code(), "conflict");
}

// ================================================================ resume (retry)

TEST(Resume, RetryOfAFailedStepRunsTheNextAttemptWithANewKeyAndCompletes) {
  // "core.fail"-like answers: the tool refused (not retriable), attempts of
  // the policy were used up.
  Harness h(R"({"id":"r","steps":[
    {"id":"get","type":"action","config":{"tool_id":"core","action":"fetch",
      "parameters":{"n":{"$ref":"input.n"}}},
     "retry_config":{"max_attempts":2,"backoff_type":"fixed","initial_delay_ms":100},
     "on_success":"done"},
    {"id":"done","type":"action","config":{"tool_id":"core","action":"done",
      "parameters":{"got":{"$ref":"get"}}}}],
   "config":{"timeout_ms":60000}})");
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 1000);
  h.Fail("get", 1, "unavailable", true, 1100);
  h.Fire("get#2", 1200);
  EXPECT_EQ(h.Fail("get", 2, "bad_request", false, 1300),
            (Strings{"StepFailed get#2 bad_request", "ExecutionFailed bad_request"}));
  const auto before = LogBytes(h.log());

  auto resumed = make_resume(h.st(), 50000);
  ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
  EXPECT_EQ(Describe(resumed.value()), "Resumed steps=[get] frames=[\"\"]");
  EXPECT_EQ(resumed->resumed().reason(), "retry after failed: bad_request");
  EXPECT_EQ(resumed->seq(), h.st().last_seq + 1);
  EXPECT_EQ(LogBytes(h.log()), before) << "make_resume only builds an event";

  EXPECT_EQ(h.Feed(resumed.value(), 50000),
            (Strings{"Resumed steps=[get] frames=[\"\"]", R"(StepStarted get#3 action {"n":1})"}));
  EXPECT_EQ(h.st().status, ExecStatus::kRunning);
  EXPECT_TRUE(h.st().error.is_null());
  EXPECT_EQ(h.st().ended_ms, 0);
  EXPECT_EQ(h.Commands(), (Strings{R"(invoke get#3 core.fetch {"n":1} key=exec-1/get/3 timeout=0)",
                                   "timer #timeout due=110000"}));
  EXPECT_EQ(h.Complete("get", 3, "G", 50100),
            (Strings{R"(StepCompleted get#3 "G")", R"(StepStarted done#1 action {"got":"G"})"}));
  EXPECT_EQ(h.Complete("done", 1, "D", 50200),
            (Strings{R"(StepCompleted done#1 "D")", R"(ExecutionCompleted "D")"}));
  // The whole history, failure and retry included, folds to the live state.
  auto folded = fold(h.log());
  ASSERT_TRUE(folded.ok()) << folded.status().to_string();
  EXPECT_EQ(StateBytes(folded.value()), StateBytes(h.st()));
  // A completed execution cannot be resumed again.
  EXPECT_EQ(make_resume(h.st(), 60000).status().code(), "conflict");
}

TEST(Resume, ARetryThatFailsAgainFailsTheExecutionAgainAndCanBeRetriedAgain) {
  Harness h(kTwoSteps);
  h.Start({{"x", 1}}, 1000);
  h.Fail("a", 1, "bad", false, 1100);
  EXPECT_EQ(h.Feed(make_resume(h.st(), 2000).value(), 2000),
            (Strings{"Resumed steps=[a] frames=[\"\"]", R"(StepStarted a#2 action {"x":1})"}));
  EXPECT_EQ(h.Fail("a", 2, "bad", false, 2100),
            (Strings{"StepFailed a#2 bad", "ExecutionFailed bad"}));
  EXPECT_EQ(h.Feed(make_resume(h.st(), 3000).value(), 3000),
            (Strings{"Resumed steps=[a] frames=[\"\"]", R"(StepStarted a#3 action {"x":1})"}));
  EXPECT_EQ(h.Commands(), (Strings{R"(invoke a#3 core.work {"x":1} key=exec-1/a/3 timeout=0)"}));
}

TEST(Resume, TimedOutExecutionRestartsWhatWasInFlightWithAFreshTimeout) {
  Harness h(R"({"id":"t","steps":[
    {"id":"wait","type":"delay","config":{"duration_ms":1000},"on_success":"a"},
    {"id":"a","type":"action","config":{"tool_id":"t","action":"x"},
     "retry_config":{"max_attempts":3,"backoff_type":"fixed","initial_delay_ms":5000}}],
   "config":{"timeout_ms":3000}})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1000);
  h.Fire("wait#1", 2000);
  h.Fail("a", 1, "unavailable", true, 2100);
  ASSERT_EQ(h.Commands(), (Strings{"timer #timeout due=4000", "timer a#2 due=7100"}));
  EXPECT_EQ(h.Fire("#timeout", 4000), (Strings{"TimerFired #timeout", "ExecutionTimedOut 3000"}));
  auto resumed = make_resume(h.st(), 10000);
  ASSERT_TRUE(resumed.ok());
  // The retry timer was lost with the timeout: the retry starts at once.
  EXPECT_EQ(h.Feed(resumed.value(), 10000),
            (Strings{"Resumed steps=[a] frames=[\"\"]", "StepStarted a#2 action {}"}));
  EXPECT_FALSE(h.st().timeout_fired);
  EXPECT_EQ(h.Commands(),
            (Strings{"invoke a#2 t.x {} key=exec-1/a/2 timeout=0", "timer #timeout due=13000"}));
  EXPECT_EQ(h.Complete("a", 2, "A", 10100),
            (Strings{R"(StepCompleted a#2 "A")", R"(ExecutionCompleted "A")"}));

  // A delay in progress restarts its full delay.
  Harness d(R"({"id":"t","steps":[
    {"id":"wait","type":"delay","config":{"duration_ms":5000}}],"config":{"timeout_ms":3000}})");
  d.Start(json::object(), 1000);
  d.Fire("#timeout", 4000);
  EXPECT_EQ(d.Feed(make_resume(d.st(), 20000).value(), 20000),
            (Strings{"Resumed steps=[wait] frames=[\"\"]",
                     R"(StepStarted wait#2 delay {"duration_ms":5000} due=25000)"}));
  EXPECT_EQ(d.Fire("wait#2", 25000),
            (Strings{"TimerFired wait#2", R"(ExecutionCompleted {"delayed_ms":5000})"}));
}

TEST(Resume, FailedParallelLoopRevivesTheFailedAndTheAbandonedIterations) {
  Harness h(R"({"id":"l","steps":[
    {"id":"each","type":"loop","config":{"items":[1,2,3],"parallel":true,
      "steps":[{"id":"inner","type":"action","config":{"tool_id":"t","action":"a",
        "parameters":{"v":{"$ref":"item"}}}}]}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  h.Complete("each[2]/inner", 1, "c", 2);
  EXPECT_EQ(h.Fail("each[1]/inner", 1, "boom", false, 3),
            (Strings{"StepFailed each[1]/inner#1 boom", "FrameEnded each[1] failed boom",
                     "StepFailed each#1 iteration_failed", "ExecutionFailed iteration_failed"}));
  ASSERT_EQ(h.st().frames.at("each[0]").status, FrameStatus::kAbandoned);

  auto resumed = make_resume(h.st(), 100);
  ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
  EXPECT_EQ(Describe(resumed.value()),
            "Resumed steps=[each,each[0]/inner,each[1]/inner] frames=[\"\",each[0],each[1]]");
  EXPECT_EQ(
      h.Feed(resumed.value(), 100),
      (Strings{"Resumed steps=[each,each[0]/inner,each[1]/inner] frames=[\"\",each[0],each[1]]",
               "StepStarted each[0]/inner#2 action {\"v\":1} @each[0]",
               "StepStarted each[1]/inner#2 action {\"v\":2} @each[1]"}));
  const StepState& loop = h.st().steps.at("each");
  EXPECT_EQ(loop.status, StepStatus::kRunning);
  EXPECT_FALSE(loop.child_failed);
  EXPECT_EQ(loop.active, 2u);
  EXPECT_EQ(loop.done, 1u);
  EXPECT_EQ(
      h.Commands(),
      (Strings{R"(invoke each[0]/inner#2 t.a {"v":1} key=exec-1/each[0]/inner/2 timeout=0)",
               R"(invoke each[1]/inner#2 t.a {"v":2} key=exec-1/each[1]/inner/2 timeout=0)"}));
  // The first attempt of the abandoned iteration is still not accepted.
  EXPECT_EQ(h.Reject(h.CompletedEvent("each[0]/inner", 1, "late", 101), 101), "invalid_event");
  h.Complete("each[0]/inner", 2, "a", 102);
  EXPECT_EQ(
      h.Complete("each[1]/inner", 2, "b", 103),
      (Strings{R"(StepCompleted each[1]/inner#2 "b")", R"(FrameEnded each[1] ok "b")",
               R"(StepCompleted each#1 ["a","b","c"])", R"(ExecutionCompleted ["a","b","c"])"}));
}

TEST(Resume, FailedParallelBranchInsideASequentialLoopIsRetriedThroughTheChain) {
  // root -> loop "each" (sequential) -> iteration each[0] -> parallel "par"
  // -> branch "par:a" fails, branch "par:b" is abandoned.
  Harness h(R"({"id":"n","steps":[
    {"id":"each","type":"loop","config":{"items":[1,2],
      "steps":[{"id":"par","type":"parallel","config":{"wait_for":"all","steps":[
        {"id":"a","type":"action","config":{"tool_id":"t","action":"a"}},
        {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]}}]}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(
      h.Fail("each[0]/a", 1, "boom", false, 2),
      (Strings{"StepFailed each[0]/a#1 boom", "FrameEnded each[0]/par:a failed boom",
               "StepFailed each[0]/par#1 branch_failed", "FrameEnded each[0] failed branch_failed",
               "StepFailed each#1 iteration_failed", "ExecutionFailed iteration_failed"}));
  auto resumed = make_resume(h.st(), 10);
  ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
  EXPECT_EQ(Describe(resumed.value()),
            "Resumed steps=[each,each[0]/par,each[0]/a,each[0]/b] "
            "frames=[\"\",each[0],each[0]/par:a,each[0]/par:b]");
  EXPECT_EQ(h.Feed(resumed.value(), 10),
            (Strings{Describe(resumed.value()), "StepStarted each[0]/a#2 action {} @each[0]/par:a",
                     "StepStarted each[0]/b#2 action {} @each[0]/par:b"}));
  h.Complete("each[0]/a", 2, "A", 11);
  EXPECT_EQ(h.Complete("each[0]/b", 2, "B", 12),
            (Strings{R"(StepCompleted each[0]/b#2 "B")", R"(FrameEnded each[0]/par:b ok "B")",
                     R"(StepCompleted each[0]/par#1 {"a":"A","b":"B"})",
                     R"(FrameEnded each[0] ok {"a":"A","b":"B"})",
                     "StepStarted each[1]/par#1 parallel null @each[1]",
                     "StepStarted each[1]/a#1 action {} @each[1]/par:a",
                     "StepStarted each[1]/b#1 action {} @each[1]/par:b"}));
}

TEST(Resume, DetachedBranchesStillRunningWhenTheExecutionFailedAreRevived) {
  Harness h(R"({"id":"d","steps":[
    {"id":"bg","type":"parallel","config":{"wait_for":"none","steps":[
      {"id":"slow","type":"action","config":{"tool_id":"t","action":"slow"}}]},
     "on_success":"main"},
    {"id":"main","type":"action","config":{"tool_id":"t","action":"main"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  EXPECT_EQ(h.Fail("main", 1, "bad", false, 2),
            (Strings{"StepFailed main#1 bad", "ExecutionFailed bad"}));
  ASSERT_EQ(h.st().detached_active, 1u);
  auto resumed = make_resume(h.st(), 10);
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(Describe(resumed.value()), "Resumed steps=[main,slow] frames=[\"\",bg:slow]");
  EXPECT_EQ(h.Feed(resumed.value(), 10),
            (Strings{"Resumed steps=[main,slow] frames=[\"\",bg:slow]",
                     "StepStarted main#2 action {}", "StepStarted slow#2 action {} @bg:slow"}));
  h.Complete("main", 2, "M", 11);
  EXPECT_EQ(h.st().status, ExecStatus::kRunning) << "waits for the detached branch";
  EXPECT_EQ(h.Complete("slow", 2, "S", 12),
            (Strings{R"(StepCompleted slow#2 "S")", R"(FrameEnded bg:slow ok "S")",
                     R"(ExecutionCompleted "M")"}));
}

// ================================================================ timeline

TEST(Timeline, StepsAttemptsBranchesOverridesAndResumes) {
  Harness h(R"({"id":"orders","steps":[
    {"id":"get","type":"action","config":{"tool_id":"core","action":"echo",
      "parameters":{"n":{"$ref":"input.n"},"key":{"$secret":"api_key"}},"timeout_ms":500},
     "retry_config":{"max_attempts":3,"backoff_type":"fixed","initial_delay_ms":100},
     "on_success":"check"},
    {"id":"check","type":"condition","config":{
      "condition":{"operator":">","left":{"$ref":"get.t"},"right":100},
      "on_true":"vip","on_false":"basic"}},
    {"id":"vip","type":"action","config":{"tool_id":"core","action":"vip"}},
    {"id":"basic","type":"action","config":{"tool_id":"core","action":"basic"}}]})");
  ASSERT_TRUE(h.ok());
  h.Start({{"n", 1}}, 1000);
  h.Fire("get#1", 1500);  // deadline
  h.Fire("get#2", 1600);  // retry
  h.Fail("get", 2, "unavailable", true, 1650);
  h.Fire("get#3", 1750);
  h.Complete("get", 3, {{"t", 120}, {"echo", "tok-123"}}, 1800);
  h.Fail("vip", 1, "bad", false, 1900);
  ASSERT_EQ(h.st().status, ExecStatus::kFailed);
  h.Feed(make_resume(h.st(), 2000).value(), 2000);
  h.Complete("vip", 2, "V", 2100);
  ASSERT_EQ(h.st().status, ExecStatus::kCompleted);

  const json t = timeline(h.log(), {"tok-123"});
  EXPECT_EQ(t["execution_id"], kExec);
  EXPECT_EQ(t["status"], "completed");
  EXPECT_EQ(t["first_seq"], 1);
  EXPECT_EQ(t["last_seq"], h.st().last_seq);
  EXPECT_FALSE(t.contains("error"));
  ASSERT_EQ(t["steps"].size(), 3u);
  const json& get = t["steps"][0];
  EXPECT_EQ(get["path"], "get");
  EXPECT_EQ(get["type"], "action");
  EXPECT_EQ(get["status"], "completed");
  ASSERT_EQ(get["attempts"].size(), 3u);
  EXPECT_EQ(get["attempts"][0]["outcome"], "timed_out");
  EXPECT_EQ(get["attempts"][0]["error"]["code"], "timeout");
  EXPECT_EQ(get["attempts"][0]["duration_ms"], 500);
  // The secret marker of the parameters is never shown.
  EXPECT_EQ(get["attempts"][0]["input"], J(R"({"key":"***","n":1})"));
  EXPECT_EQ(get["attempts"][1]["outcome"], "failed");
  EXPECT_EQ(get["attempts"][1]["started_at_ms"], 1600);
  EXPECT_EQ(get["attempts"][1]["ended_at_ms"], 1650);
  EXPECT_EQ(get["attempts"][2]["outcome"], "completed");
  // A resolved secret echoed by the tool is hidden too.
  EXPECT_EQ(get["attempts"][2]["output"], J(R"({"echo":"***","t":120})"));
  EXPECT_EQ(get["attempts"][2]["attempt"], 3);
  EXPECT_EQ(get["first_seq"], 2);

  const json& check = t["steps"][1];
  EXPECT_EQ(check["type"], "condition");
  EXPECT_EQ(check["branch"], J(R"({"next":"vip","result":true})"));
  EXPECT_EQ(check["attempts"][0]["outcome"], "completed");
  EXPECT_EQ(check["attempts"][0]["input"], J(R"({"left":120,"operator":">","right":100})"));

  const json& vip = t["steps"][2];
  ASSERT_EQ(vip["attempts"].size(), 2u);
  EXPECT_EQ(vip["attempts"][0]["outcome"], "failed");
  EXPECT_EQ(vip["attempts"][1]["outcome"], "completed");
  EXPECT_EQ(vip["attempts"][1]["started_at_ms"], 2000);
  ASSERT_EQ(t["resumes"].size(), 1u);
  EXPECT_EQ(t["resumes"][0]["steps"], J(R"(["vip"])"));
  EXPECT_TRUE(t["overrides"].empty());
}

TEST(Timeline, OverridesAbandonedAttemptsAndForkIdentity) {
  Harness src(kTwoSteps);
  src.Start({{"x", 1}, {"y", "Y"}}, 1000);
  auto fork = make_fork(src.log(), 2,
                        J(R"({"input":{"pw":{"$secret":"db"}},"steps":{"a":{"output":{"v":1}}}})"),
                        "fork-t", 3000);
  ASSERT_TRUE(fork.ok()) << fork.status().to_string();
  Harness h(kTwoSteps);
  h.Load(*fork, 3000);
  h.Cancel("enough", 3100);  // b is in flight: abandoned
  const json t = timeline(h.log());
  EXPECT_EQ(t["execution_id"], "fork-t");
  EXPECT_EQ(t["parent_execution_id"], kExec);
  EXPECT_EQ(t["forked_at_seq"], 2);
  EXPECT_EQ(t["status"], "cancelled");
  ASSERT_EQ(t["overrides"].size(), 1u);
  EXPECT_EQ(t["overrides"][0]["seq"], 3);
  EXPECT_EQ(t["overrides"][0]["patch"]["input"]["pw"], "***");
  const json& a = t["steps"][0];
  EXPECT_EQ(a["attempts"][0]["outcome"], "abandoned");
  EXPECT_EQ(a["attempts"][0]["duration_ms"], 2000);
  EXPECT_EQ(a["override"], J(R"({"output":{"v":1},"seq":3})"));
  EXPECT_EQ(a["status"], "completed");
  const json& b = t["steps"][1];
  EXPECT_EQ(b["attempts"][0]["outcome"], "abandoned");
  EXPECT_EQ(b["attempts"][0]["ended_at_ms"], 3100);
}

TEST(Timeline, AbandonedBranchesOfAWaitForAnyParallel) {
  Harness h(R"({"id":"p","steps":[
    {"id":"par","type":"parallel","config":{"wait_for":"any","steps":[
      {"id":"a","type":"action","config":{"tool_id":"t","action":"a"}},
      {"id":"b","type":"action","config":{"tool_id":"t","action":"b"}}]}}]})");
  ASSERT_TRUE(h.ok());
  h.Start(json::object(), 1);
  h.Complete("a", 1, "A", 5);
  ASSERT_EQ(h.st().status, ExecStatus::kCompleted);
  const json t = timeline(h.log());
  ASSERT_EQ(t["steps"].size(), 3u);
  EXPECT_EQ(t["steps"][0]["path"], "par");
  EXPECT_EQ(t["steps"][0]["attempts"][0]["output"], J(R"({"a":"A"})"));
  EXPECT_EQ(t["steps"][1]["path"], "a");
  EXPECT_EQ(t["steps"][1]["frame"], "par:a");
  EXPECT_EQ(t["steps"][2]["path"], "b");
  EXPECT_EQ(t["steps"][2]["attempts"][0]["outcome"], "abandoned");
  EXPECT_EQ(t["steps"][2]["attempts"][0]["ended_at_ms"], 5);
  EXPECT_EQ(t["steps"][2]["status"], "running");
}

// ================================================================ properties over the corpus

TEST_F(TimeMachineCorpus, EveryFailedOrTimedOutRunResumesAndEnds) {
  std::map<std::string, int> seen;
  for (const Case& c : corpus()) {
    ASSERT_EQ(c.error, "") << Trace(c);
    const ExecStatus status = c.run.st.status;
    if (status != ExecStatus::kFailed && status != ExecStatus::kTimedOut) {
      EXPECT_EQ(make_resume(c.run.st, 1).status().code(), "conflict");
      continue;
    }
    SCOPED_TRACE(Trace(c));
    DriverRun run;
    run.st = c.run.st;
    run.log = c.run.log;
    const int64_t now = c.run.log.back().time_ms() + 10;
    auto resumed = make_resume(run.st, now);
    ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
    ASSERT_TRUE(apply(run.st, resumed.value()).is_ok());
    run.log.push_back(resumed.value());
    // A different seed for the tool answers: the new attempts may succeed.
    ASSERT_TRUE(Continue(c, run, now, c.seed + 7777)) << run.error;
    EXPECT_TRUE(is_terminal(run.st.status));
    auto folded = fold(run.log);
    ASSERT_TRUE(folded.ok()) << folded.status().to_string();
    ASSERT_EQ(StateBytes(folded.value()), StateBytes(run.st));
    auto decoded = decode_state(encode_state(run.st));
    ASSERT_TRUE(decoded.ok());
    ASSERT_EQ(encode_state(decoded.value()), encode_state(run.st));
    seen[std::string(to_string(status)) + "->" + to_string(run.st.status)]++;
    // Resumed attempts start above every attempt of the same step before.
    std::map<std::string, uint32_t> max_attempt;
    for (const auto& e : run.log) {
      if (!e.has_step_started()) continue;
      auto& m = max_attempt[e.step_started().path()];
      ASSERT_GT(e.step_started().attempt(), m) << e.step_started().path();
      m = e.step_started().attempt();
    }
  }
  EXPECT_GT(seen["failed->completed"], 5);
  EXPECT_GT(seen["timed_out->completed"], 0);
  EXPECT_GT(seen["failed->failed"], 0);
}

TEST_F(TimeMachineCorpus, ForksAtAnyPointFoldAndRunToAnEnd) {
  int patched = 0;
  int forks = 0;
  for (const Case& c : corpus()) {
    ASSERT_EQ(c.error, "") << Trace(c);
    SCOPED_TRACE(Trace(c));
    const auto before = LogBytes(c.run.log);
    std::mt19937 pick(c.seed * 131u + 3u);
    for (int round = 0; round < 3; ++round) {
      const uint64_t at = 1 + pick() % c.run.log.size();
      std::vector<v1::Event> prefix(c.run.log.begin(),
                                    c.run.log.begin() + static_cast<std::ptrdiff_t>(at));
      auto at_state = fold(prefix);
      ASSERT_TRUE(at_state.ok());
      // Patch the current step of an active frame (not a condition), if any,
      // with a plausible output, and the input.
      json patch = json::object();
      if (!is_terminal(at_state->status)) {
        patch["input"] = {{"n", 3}};
        for (const auto& fid : at_state->active_frames) {
          const std::string& cur = at_state->frames.at(fid).current;
          auto sit = at_state->steps.find(cur);
          if (sit != at_state->steps.end() && sit->second.kind != "condition" && pick() % 2 == 0) {
            patch["steps"][cur] = {{"output", {{"n", 1}, {"x", "patched"}}}};
            break;
          }
        }
        if (pick() % 3 == 0) patch = nullptr;
      }
      const std::string id = "fork-" + std::to_string(c.seed) + "-" + std::to_string(round);
      const int64_t now = c.run.log.back().time_ms() + 100;
      auto fork = make_fork(c.run.log, at, patch, id, now);
      ASSERT_TRUE(fork.ok()) << "at " << at << " patch " << patch << ": "
                             << fork.status().to_string();
      ++forks;
      if (!patch.is_null() && !patch.empty()) ++patched;
      DriverRun run;
      auto st = fold(*fork);
      ASSERT_TRUE(st.ok()) << st.status().to_string();
      EXPECT_EQ(st->execution_id, id);
      EXPECT_EQ(st->forked_at_seq, at);
      if (patch.is_null()) {
        json a = to_json(st.value());
        json b = to_json(at_state.value());
        for (const char* k :
             {"execution_id", "parent_execution_id", "forked_at_seq", "idempotency_key"}) {
          a.erase(k);
          b.erase(k);
        }
        ASSERT_EQ(a.dump(), b.dump());
      }
      run.st = std::move(st.value());
      run.log = *fork;
      if (!Continue(c, run, now, c.seed)) {
        FAIL() << "at " << at << " patch " << patch << ": " << run.error << "\n" << Dump(run.log);
      }
      EXPECT_TRUE(is_terminal(run.st.status));
      auto folded = fold(run.log);
      ASSERT_TRUE(folded.ok()) << folded.status().to_string();
      ASSERT_EQ(StateBytes(folded.value()), StateBytes(run.st));
    }
    ASSERT_EQ(LogBytes(c.run.log), before) << "the source log changed";
  }
  EXPECT_GT(patched, 200);
  EXPECT_EQ(forks, 3 * kCases);
}

// Every seq is a fork point, also the ones inside a batch (between a
// StepStarted and the BranchTaken of a condition, between the branch starts
// of a parallel, ...), which no crash recovery ever sees: decide() must
// continue from each of them to an end.
TEST_F(TimeMachineCorpus, ForksAtEverySeqContinueToAnEnd) {
  size_t forks = 0;
  for (const Case& c : corpus()) {
    ASSERT_EQ(c.error, "") << Trace(c);
    SCOPED_TRACE(Trace(c));
    ExecutionState at_state;
    for (uint64_t at = 1; at <= c.run.log.size(); ++at) {
      ASSERT_TRUE(apply(at_state, c.run.log[at - 1]).is_ok());
      // Without a patch, and (when the copy is not finished) overriding the
      // current step of every active frame but conditions.
      std::vector<json> patches = {nullptr};
      if (!is_terminal(at_state.status)) {
        json steps = json::object();
        for (const auto& fid : at_state.active_frames) {
          const std::string& cur = at_state.frames.at(fid).current;
          auto sit = at_state.steps.find(cur);
          if (sit != at_state.steps.end() && sit->second.kind != "condition") {
            steps[cur] = {{"output", {{"n", 2}}}};
          }
        }
        if (!steps.empty()) patches.push_back({{"steps", std::move(steps)}});
      }
      for (const json& patch : patches) {
        const int64_t now = c.run.log[at - 1].time_ms() + 5;
        auto fork = make_fork(c.run.log, at, patch, "fork", now);
        ASSERT_TRUE(fork.ok()) << "at " << at << " " << patch << ": " << fork.status().to_string();
        DriverRun run;
        auto st = fold(*fork);
        ASSERT_TRUE(st.ok()) << st.status().to_string();
        run.st = std::move(st.value());
        run.log = std::move(fork.value());
        if (!Continue(c, run, now, c.seed)) {
          FAIL() << "fork at " << at << " " << patch << ": " << run.error << "\n" << Dump(run.log);
        }
        ASSERT_TRUE(is_terminal(run.st.status));
        ++forks;
      }
    }
  }
  EXPECT_GT(forks, static_cast<size_t>(kCases) * 20);
}

TEST_F(TimeMachineCorpus, TimelineAccountsForEveryAttempt) {
  for (const Case& c : corpus()) {
    ASSERT_EQ(c.error, "") << Trace(c);
    SCOPED_TRACE(Trace(c));
    const json t = timeline(c.run.log);
    ASSERT_FALSE(t.contains("error")) << t["error"];
    EXPECT_EQ(t["status"], c.run.st.display_status());
    size_t started = 0;
    std::set<std::string> paths;
    for (const auto& e : c.run.log) {
      if (!e.has_step_started()) continue;
      ++started;
      paths.insert(e.step_started().path());
    }
    size_t attempts = 0;
    uint64_t prev_first = 0;
    for (const auto& s : t["steps"]) {
      ASSERT_EQ(paths.count(s["path"].get<std::string>()), 1u);
      EXPECT_GT(s["first_seq"].get<uint64_t>(), prev_first) << "ordered by first event";
      prev_first = s["first_seq"].get<uint64_t>();
      auto live = c.run.st.steps.find(s["path"].get<std::string>());
      if (live != c.run.st.steps.end()) {
        EXPECT_EQ(s["status"], to_string(live->second.status));
      } else {
        // Pruned from the state with its completed loop iteration; the
        // timeline, built from the events, still shows it.
        EXPECT_NE(s["path"].get<std::string>().find("]/"), std::string::npos) << s;
      }
      for (const auto& a : s["attempts"]) {
        ++attempts;
        // The execution ended: nothing is still running.
        EXPECT_NE(a["outcome"], "running") << s;
        EXPECT_GE(a["duration_ms"].get<int64_t>(), 0);
        EXPECT_LE(a["first_seq"].get<uint64_t>(), a["last_seq"].get<uint64_t>());
      }
    }
    EXPECT_EQ(t["steps"].size(), paths.size());
    EXPECT_EQ(attempts, started);
  }
}

}  // namespace
}  // namespace yantra
