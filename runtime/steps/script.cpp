// script: runs a JavaScript function body (docs/scripts.md) and records what
// it returns as the step's output. An attempt is a call of the built-in
// `script` tool (calls_tool): the generic machinery records its start, runs
// it off the scheduler threads, records its result before anything uses it,
// and never runs a completed script again, on recovery or replay.
//
// Store time: the source is compiled (script/sandbox.hpp: deterministic, runs
// nothing), so a syntax error, or ES2015 syntax Duktape lacks, is a 400 with
// the pointer of config.source and the line and column.
//
// What the attempt records (StepStarted.input_json, also the tool's
// parameters): the source, and of the execution only what the source names
// as a word — `input`, `item`/`index` inside a loop, and `steps`: the value
// of each earlier step whose id appears in the source (as a $ref of that id
// would see it). The log then holds exactly what the script saw without a
// copy of every earlier output per script call.
#include <algorithm>
#include <set>
#include <string>

#include "runtime/steps/decider.hpp"
#include "runtime/steps/step_kind.hpp"
#include "script/sandbox.hpp"

namespace yantra::steps {
namespace {

constexpr size_t kMaxSourceBytes = 64 * 1024;
constexpr int64_t kDefaultTimeoutMs = 50;
// The largest cap a definition may ask for; a node may allow less (its
// script_max_timeout_ms, docs/scripts.md), and then the call gets that.
constexpr int64_t kMaxTimeoutMs = 60000;

bool word_char(char c, bool dash) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || (dash && c == '-');
}

// Every word of `src`, split both with and without '-' as a word character
// (step ids may contain '-': steps["fetch-data"], but also steps.a-1).
std::vector<std::string> words_of(std::string_view src) {
  std::set<std::string> words;
  for (bool dash : {false, true}) {
    size_t i = 0;
    while (i < src.size()) {
      if (!word_char(src[i], dash)) {
        ++i;
        continue;
      }
      size_t start = i;
      while (i < src.size() && word_char(src[i], dash)) ++i;
      if (i - start <= 64) words.emplace(src.substr(start, i - start));
    }
  }
  return {words.begin(), words.end()};
}

void parse(ParseContext& ctx, const json& config, const std::string& cp, Step& step) {
  DocReader& r = ctx.reader();
  r.check_fields(config, cp, {"source", "timeout_ms"});
  step.tool_id = "script";
  step.action = "run";
  step.timeout_ms = kDefaultTimeoutMs;
  r.read_int(config, "timeout_ms", cp, false, 1, kMaxTimeoutMs, step.timeout_ms);
  if (!r.read_string(config, "source", cp, true, step.source, true)) return;
  const std::string sp = pointer_child(cp, "source");
  if (step.source.size() > kMaxSourceBytes) {
    r.add(sp, "must be at most " + std::to_string(kMaxSourceBytes) + " bytes");
    return;
  }
  script::Compiled compiled = script::compile(step.source);
  if (compiled.program == nullptr) {
    r.add(sp, compiled.error.message);
    return;
  }
  step.source_names = words_of(step.source);
}

bool names(const Step& def, std::string_view word) {
  return std::binary_search(def.source_names.begin(), def.source_names.end(), word);
}

void start(Decider& d, const FrameCtx& frame, const Step& def, const std::string&, uint32_t,
           v1::StepStarted& e) {
  FrameScope scope(d.state(), frame);
  json args = {{"source", def.source}, {"steps", json::object()}};
  if (names(def, "input")) args["input"] = *scope.lookup("input");
  const json* index = scope.lookup("index");
  if (index->is_number()) {  // inside a loop iteration
    if (names(def, "item")) args["item"] = *scope.lookup("item");
    if (names(def, "index")) args["index"] = *index;
  }
  json& steps = args["steps"];
  for (const std::string& word : def.source_names) {
    if (word == def.id || d.flow().locate(word) == nullptr) continue;
    steps[word] = *scope.lookup(word);
  }
  e.set_input_json(dump_canonical(args));
  // No deadline timer: the sandbox stops the call at timeout_ms itself
  // (script_timeout), and a call waiting for a free sandbox thread is not
  // late.
}

}  // namespace

extern const StepKind kScript;
constinit const StepKind kScript{
    .type = StepType::kScript,
    .name = "script",
    .calls_tool = true,
    .parse = parse,
    .start = start,
};

}  // namespace yantra::steps
