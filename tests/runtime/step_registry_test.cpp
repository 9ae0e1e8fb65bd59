// The step type registry (runtime/steps/registry.cpp) is complete and
// consistent: every StepType has exactly one StepKind, at its own index,
// with the hooks its traits need; the parser reaches every registered kind
// by its name and nothing else; a recorded kind no type has is inert. What
// each kind does is tested where it always was (decide, flow, signals, time
// machine suites); this suite guards the seam a new type plugs into.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "runtime/flow.hpp"
#include "runtime/steps/step_kind.hpp"

namespace yantra {
namespace {

using Problems = std::vector<Problem>;

Problems problems_of(const json& doc) {
  auto r = parse_flow(doc);
  EXPECT_FALSE(r.ok()) << "expected the flow to be invalid";
  return r.ok() ? Problems{} : r.status().details();
}

json one_step(const std::string& type, json config) {
  return {{"id", "f"}, {"steps", {{{"id", "s"}, {"type", type}, {"config", std::move(config)}}}}};
}

TEST(StepRegistry, EveryStepTypeHasOneKindInStepTypeOrder) {
  ASSERT_EQ(step_kinds().size(), kStepTypeCount);
  std::set<std::string_view> names;
  for (size_t i = 0; i < kStepTypeCount; ++i) {
    const auto type = static_cast<StepType>(i);
    const StepKind& kind = step_kind(type);
    SCOPED_TRACE(std::string(kind.name));
    EXPECT_EQ(kind.type, type);
    EXPECT_EQ(step_kinds()[i], &kind);
    EXPECT_FALSE(kind.name.empty());
    EXPECT_TRUE(names.insert(kind.name).second) << "duplicate name";
    EXPECT_EQ(find_step_kind(kind.name), &kind);
    EXPECT_EQ(&recorded_kind(kind.name), &kind);
    EXPECT_EQ(std::string_view(to_string(type)), kind.name);
  }
}

TEST(StepRegistry, EveryKindHasTheHooksItsTraitsNeed) {
  for (const StepKind* kind : step_kinds()) {
    SCOPED_TRACE(std::string(kind->name));
    // Every step is read from a definition and starts by recording its input.
    EXPECT_NE(kind->parse, nullptr);
    EXPECT_NE(kind->start, nullptr);
    // A container starts its children while it runs.
    if (kind->body != BodyKind::kNone) {
      EXPECT_NE(kind->drive, nullptr);
    }
    // A wait ends when its input arrives, which only its drive hook sees; the
    // timeline and passivation ask it what it waits for and whether it is there.
    if (kind->waits_for_input) {
      EXPECT_NE(kind->drive, nullptr);
      EXPECT_NE(kind->input_ready, nullptr);
      EXPECT_NE(kind->waiting_for, nullptr);
    } else {
      EXPECT_EQ(kind->input_ready, nullptr);
      EXPECT_EQ(kind->waiting_for, nullptr);
    }
    // Decisions arrive while a step waits; a tool call is not a wait.
    if (kind->takes_decisions) {
      EXPECT_TRUE(kind->waits_for_input);
    }
    if (kind->calls_tool) {
      EXPECT_FALSE(kind->waits_for_input);
    }
  }
}

TEST(StepRegistry, ARecordedKindNoTypeHasIsInert) {
  // A log written by a later version may name a kind this one does not know.
  EXPECT_EQ(find_step_kind("future_kind"), nullptr);
  EXPECT_EQ(find_step_kind(""), nullptr);
  EXPECT_EQ(find_step_kind("Action"), nullptr);
  const StepKind& unknown = recorded_kind("future_kind");
  EXPECT_EQ(&recorded_kind(""), &unknown);
  EXPECT_FALSE(unknown.calls_tool);
  EXPECT_EQ(unknown.body, BodyKind::kNone);
  EXPECT_FALSE(unknown.waits_for_input);
  EXPECT_FALSE(unknown.branches);
  EXPECT_FALSE(unknown.takes_decisions);
  EXPECT_EQ(unknown.timer, TimerKind::kDeadline);
  EXPECT_EQ(unknown.parse, nullptr);
  EXPECT_EQ(unknown.start, nullptr);
  EXPECT_EQ(unknown.drive, nullptr);
  EXPECT_EQ(unknown.complete, nullptr);
  // A StepType past the last one has no kind either.
  EXPECT_EQ(&step_kind(static_cast<StepType>(kStepTypeCount)), &unknown);
  EXPECT_STREQ(to_string(static_cast<StepType>(kStepTypeCount)), "unknown");
}

TEST(StepRegistry, TheParserReachesEveryKindByItsName) {
  for (const StepKind* kind : step_kinds()) {
    const std::string name(kind->name);
    SCOPED_TRACE(name);
    // Every kind's config is checked field by field by its own hook: an
    // unknown field is reported, and the type itself is not.
    Problems got = problems_of(one_step(name, {{"bogus", 1}}));
    EXPECT_NE(std::find(got.begin(), got.end(),
                        Problem{"/steps/0/config/bogus", "unknown field 'bogus'"}),
              got.end());
    for (const Problem& p : got) EXPECT_NE(p.path, "/steps/0/type") << p.message;
  }
}

TEST(StepRegistry, AnUnknownTypeIsAnsweredWithTheRegisteredNames) {
  auto r = parse_flow(one_step("future_kind", json::object()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().details(), (Problems{{"/steps/0/type", "unknown step type 'future_kind'"}}));
  const std::string& message = r.status().message();
  std::string names;
  for (const StepKind* kind : step_kinds()) {
    EXPECT_NE(message.find(std::string(kind->name)), std::string::npos) << kind->name;
    names += names.empty() ? "" : ", ";
    names += kind->name;
  }
  EXPECT_EQ(message, "flow is invalid: 1 problem (known step types: " + names + ")");
  // Only an unknown type brings the list.
  r = parse_flow(one_step("delay", json::object()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "flow is invalid: 1 problem");
}

TEST(StepRegistry, TraitMessagesNameTheKindsThatHaveThem) {
  EXPECT_EQ(step_kind_names(&StepKind::calls_tool), "action and script");
  EXPECT_EQ(step_kind_names(&StepKind::waits_for_input), "wait_signal and approval");
  EXPECT_EQ(step_kind_names(&StepKind::branches), "condition");
  EXPECT_EQ(step_kind_names(&StepKind::takes_decisions), "approval");
  std::string all;
  for (const StepKind* kind : step_kinds()) {
    if (!all.empty()) all += kind == step_kinds().back() ? " or " : ", ";
    all += kind->name;
  }
  EXPECT_EQ(step_kind_names(nullptr, " or "), all);
}

}  // namespace
}  // namespace yantra
