// Triggers, flow status and callbacks as a tenant writes them: each shape
// parsed into the model, each invalid field reported at its pointer with its
// message, and which events start an event-triggered flow. Each rule is
// tested on a minimal valid flow with one thing changed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/flow.hpp"

namespace yantra {

void PrintTo(const Problem& p, std::ostream* os) {
  *os << "{\"" << p.path << "\", \"" << p.message << "\"}";
}

namespace {

using Problems = std::vector<Problem>;

json flow_with(json trigger) {
  json doc = {{"id", "f"},
              {"steps", json::array({{{"id", "a"},
                                      {"type", "action"},
                                      {"config", {{"tool_id", "core"}, {"action", "echo"}}}}})}};
  if (!trigger.is_null()) doc["trigger"] = std::move(trigger);
  return doc;
}

json typed(const char* type, json config) {
  return {{"type", type}, {"config", std::move(config)}};
}

std::shared_ptr<const Flow> parse_ok(const json& doc) {
  auto r = parse_flow(doc);
  EXPECT_TRUE(r.ok()) << r.status().to_string() << " "
                      << (r.ok() || r.status().details().empty()
                              ? ""
                              : r.status().details()[0].path + ": " +
                                    r.status().details()[0].message);
  return r.ok() ? r.value() : nullptr;
}

Problems problems(const json& doc) {
  auto r = parse_flow(doc);
  EXPECT_FALSE(r.ok()) << "expected the flow to be invalid";
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), "invalid_flow");
  return r.status().details();
}

Problems one(std::string path, std::string message) {
  return {Problem{std::move(path), std::move(message)}};
}

Trigger trigger_of(json trigger) {
  auto flow = parse_ok(flow_with(std::move(trigger)));
  return flow ? flow->trigger_spec : Trigger{};
}

const json kSecretRef = {{"$secret", "HOOK_SECRET"}};
const char* kCredential = "must be a non-empty string or {\"$secret\": \"<name>\"}";

// ---------------------------------------------------------------- manual

TEST(TriggerParse, ManualIsTheDefault) {
  auto flow = parse_ok(flow_with(nullptr));
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->trigger_spec.type, Trigger::Type::kManual);
  EXPECT_EQ(flow->trigger, json({{"type", "manual"}}));
  EXPECT_EQ(trigger_of({{"type", "manual"}}).type, Trigger::Type::kManual);
  EXPECT_STREQ(to_string(Trigger::Type::kManual), "manual");
  EXPECT_STREQ(to_string(Trigger::Type::kWebhook), "webhook");
  EXPECT_STREQ(to_string(Trigger::Type::kSchedule), "schedule");
  EXPECT_STREQ(to_string(Trigger::Type::kEvent), "event");
}

TEST(TriggerValidate, TypeAndShape) {
  EXPECT_EQ(problems(flow_with({{"type", "carrier-pigeon"}})),
            one("/trigger/type", "unknown trigger type 'carrier-pigeon'"));
  EXPECT_EQ(problems(flow_with({{"type", 7}})), one("/trigger/type", "must be a string"));
  EXPECT_EQ(problems(flow_with(json::object())), one("/trigger/type", "is required"));
  EXPECT_EQ(problems(flow_with("webhook")), one("/trigger", "must be an object"));
  EXPECT_EQ(problems(flow_with({{"type", "manual"}, {"config", json::object()}})),
            one("/trigger/config", "unknown field 'config'"));
  for (const char* type : {"webhook", "schedule", "event"}) {
    EXPECT_EQ(problems(flow_with({{"type", type}})), one("/trigger/config", "is required")) << type;
    EXPECT_EQ(problems(flow_with(typed(type, json::array()))),
              one("/trigger/config", "must be an object"))
        << type;
  }
  json t = typed("webhook", {{"auth", "none"}});
  t["cron"] = "* * * * *";
  EXPECT_EQ(problems(flow_with(t)), one("/trigger/cron", "unknown field 'cron'"));
}

// ---------------------------------------------------------------- webhook

TEST(TriggerParse, WebhookWithoutAuth) {
  Trigger t = trigger_of(typed("webhook", {{"auth", "none"}}));
  EXPECT_EQ(t.type, Trigger::Type::kWebhook);
  EXPECT_EQ(t.auth, "none");
  EXPECT_EQ(t.credentials, json::object());
}

TEST(TriggerParse, WebhookBasicAndBearer) {
  Trigger t =
      trigger_of(typed("webhook", {{"auth", "basic"}, {"username", "u"}, {"password", "p"}}));
  EXPECT_EQ(t.auth, "basic");
  EXPECT_EQ(t.credentials, json({{"username", "u"}, {"password", "p"}}));
  t = trigger_of(
      typed("webhook", {{"auth", "basic"}, {"username", "u"}, {"password", kSecretRef}}));
  EXPECT_EQ(t.credentials, json({{"username", "u"}, {"password", kSecretRef}}));

  t = trigger_of(typed("webhook", {{"auth", "bearer"}, {"token", "tok"}}));
  EXPECT_EQ(t.auth, "bearer");
  EXPECT_EQ(t.credentials, json({{"token", "tok"}}));
  t = trigger_of(typed("webhook", {{"auth", "bearer"}, {"token", kSecretRef}}));
  EXPECT_EQ(t.credentials, json({{"token", kSecretRef}}));
}

TEST(TriggerParse, WebhookSignature) {
  Trigger t = trigger_of(typed("webhook", {{"auth", "signature"}, {"secret", kSecretRef}}));
  EXPECT_EQ(t.auth, "signature");
  EXPECT_EQ(t.credentials, json({{"secret", kSecretRef}}));
  EXPECT_EQ(t.signature_header, "X-Yantra-Signature");
  EXPECT_EQ(t.timestamp_header, "X-Yantra-Timestamp");
  EXPECT_EQ(t.replay_window_ms, 300000);

  t = trigger_of(typed("webhook", {{"auth", "signature"},
                                   {"secret", "s3cret"},
                                   {"header", "X-Hub-Signature-256"},
                                   {"timestamp_header", "X-Request-Time"},
                                   {"replay_window_ms", 60000}}));
  EXPECT_EQ(t.credentials, json({{"secret", "s3cret"}}));
  EXPECT_EQ(t.signature_header, "X-Hub-Signature-256");
  EXPECT_EQ(t.timestamp_header, "X-Request-Time");
  EXPECT_EQ(t.replay_window_ms, 60000);
}

TEST(TriggerValidate, Webhook) {
  const std::string cp = "/trigger/config";
  auto webhook = [](json config) { return flow_with(typed("webhook", std::move(config))); };
  EXPECT_EQ(problems(webhook(json::object())), one(cp + "/auth", "is required"));
  EXPECT_EQ(problems(webhook({{"auth", "digest"}, {"realm", "x"}})),
            one(cp + "/auth", "must be one of none, basic, bearer, signature"));
  EXPECT_EQ(problems(webhook({{"auth", "none"}, {"token", "t"}})),
            one(cp + "/token", "unknown field 'token'"));

  EXPECT_EQ(problems(webhook({{"auth", "basic"}})),
            (Problems{{cp + "/password", "is required"}, {cp + "/username", "is required"}}));
  EXPECT_EQ(problems(webhook({{"auth", "basic"}, {"username", ""}, {"password", ""}})),
            (Problems{{cp + "/password", kCredential},
                      {cp + "/username", "must be a non-empty string"}}));
  EXPECT_EQ(problems(webhook({{"auth", "basic"}, {"username", "a:b"}, {"password", "p"}})),
            one(cp + "/username", "must not contain ':'"));
  for (const json& bad : {json(5), json({{"$secret", 5}}), json({{"$secret", ""}}),
                          json({{"$secret", "A"}, {"x", 1}}), json::object(), json(nullptr)}) {
    EXPECT_EQ(problems(webhook({{"auth", "bearer"}, {"token", bad}})),
              one(cp + "/token", kCredential))
        << bad;
  }
  EXPECT_EQ(
      problems(webhook({{"auth", "bearer"}, {"password", "p"}})),
      (Problems{{cp + "/password", "unknown field 'password'"}, {cp + "/token", "is required"}}));

  EXPECT_EQ(problems(webhook({{"auth", "signature"}})), one(cp + "/secret", "is required"));
  EXPECT_EQ(problems(webhook({{"auth", "signature"},
                              {"secret", "s"},
                              {"header", "X Signature"},
                              {"timestamp_header", ""},
                              {"replay_window_ms", 10}})),
            (Problems{{cp + "/header", "must be a header name ([A-Za-z0-9-]{1,64})"},
                      {cp + "/replay_window_ms", "must be an integer between 1000 and 86400000"},
                      {cp + "/timestamp_header", "must be a header name ([A-Za-z0-9-]{1,64})"}}));
  EXPECT_EQ(problems(webhook({{"auth", "signature"}, {"secret", "s"}, {"header", 1}})),
            one(cp + "/header", "must be a string"));
  EXPECT_EQ(problems(webhook({{"auth", "signature"}, {"secret", "s"}, {"replay_window_ms", 1.5}})),
            one(cp + "/replay_window_ms", "must be an integer between 1000 and 86400000"));
}

// ---------------------------------------------------------------- schedule

TEST(TriggerParse, Schedule) {
  Trigger t = trigger_of(typed("schedule", {{"cron", "*/5 * * * *"}}));
  EXPECT_EQ(t.type, Trigger::Type::kSchedule);
  EXPECT_EQ(t.cron, "*/5 * * * *");
  EXPECT_EQ(t.cron_spec.expression, "*/5 * * * *");
  EXPECT_EQ(t.cron_spec.minutes.count(), 12u);
  EXPECT_EQ(t.time_zone, "UTC");
  EXPECT_EQ(t.catch_up, "none");
  EXPECT_EQ(t.schedule_input, json::object());

  t = trigger_of(typed("schedule", {{"cron", "@daily"},
                                    {"timezone", "Europe/Berlin"},
                                    {"catch_up", "all"},
                                    {"input", {{"report", "daily"}}}}));
  EXPECT_EQ(t.cron, "@daily");
  EXPECT_EQ(t.time_zone, "Europe/Berlin");
  EXPECT_EQ(t.catch_up, "all");
  EXPECT_EQ(t.schedule_input, json({{"report", "daily"}}));
  auto next = next_fire_ms(t.cron_spec, t.time_zone, 0);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 23 * 3600 * 1000);  // 1970-01-02 00:00 CET
}

TEST(TriggerValidate, Schedule) {
  const std::string cp = "/trigger/config";
  auto schedule = [](json config) { return flow_with(typed("schedule", std::move(config))); };
  EXPECT_EQ(problems(schedule(json::object())), one(cp + "/cron", "is required"));
  EXPECT_EQ(problems(schedule({{"cron", 5}})), one(cp + "/cron", "must be a non-empty string"));
  EXPECT_EQ(problems(schedule({{"cron", "61 * * * *"}})),
            one(cp + "/cron", "minute field: 61 is out of range 0-59"));
  EXPECT_EQ(problems(schedule({{"cron", "0 0 30 2 *"}})),
            one(cp + "/cron", "never fires: day-of-month '30' does not occur in month '2'"));
  EXPECT_EQ(problems(schedule({{"cron", "@daily"}, {"timezone", "Mars/Olympus"}})),
            one(cp + "/timezone", "unknown time zone 'Mars/Olympus'"));
  EXPECT_EQ(problems(schedule({{"cron", "@daily"}, {"timezone", ""}})),
            one(cp + "/timezone", "must be a non-empty string"));
  // Everything at once, in document order.
  EXPECT_EQ(problems(schedule({{"cron", "* * *"},
                               {"timezone", "Mars/Olympus"},
                               {"catch_up", "some"},
                               {"input", "x"},
                               {"interval", 5}})),
            (Problems{{cp + "/catch_up", "must be one of none, all"},
                      {cp + "/cron",
                       "expected 5 fields (minute hour day-of-month month day-of-week), got 3"},
                      {cp + "/input", "must be an object"},
                      {cp + "/interval", "unknown field 'interval'"},
                      {cp + "/timezone", "unknown time zone 'Mars/Olympus'"}}));
}

// ---------------------------------------------------------------- event

TEST(TriggerParse, Event) {
  Trigger t = trigger_of(typed("event", {{"event_name", "order.created"}}));
  EXPECT_EQ(t.type, Trigger::Type::kEvent);
  EXPECT_EQ(t.event_name, "order.created");
  EXPECT_EQ(t.filter, nullptr);
  EXPECT_EQ(t.filter_source, "");

  t = trigger_of(
      typed("event", {{"event_name", "order.created"}, {"filter", "event.data.amount > 100"}}));
  ASSERT_NE(t.filter, nullptr);
  EXPECT_EQ(t.filter_source, "event.data.amount > 100");
  EXPECT_EQ(t.filter->roots(), std::vector<std::string>{"event"});
}

TEST(TriggerValidate, Event) {
  const std::string cp = "/trigger/config";
  auto event = [](json config) { return flow_with(typed("event", std::move(config))); };
  EXPECT_EQ(problems(event(json::object())), one(cp + "/event_name", "is required"));
  for (const char* bad : {"", ".starts-with-dot", "has space", "ünicode"}) {
    EXPECT_EQ(problems(event({{"event_name", bad}})),
              one(cp + "/event_name", "must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"))
        << bad;
  }
  EXPECT_EQ(problems(event({{"event_name", std::string(129, 'e')}})),
            one(cp + "/event_name", "must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"));
  EXPECT_TRUE(parse_ok(event({{"event_name", "billing:invoice_paid-v2.eu"}})));
  EXPECT_EQ(problems(event({{"event_name", "e"}, {"filter", 5}})),
            one(cp + "/filter", "must be a non-empty string"));
  EXPECT_EQ(problems(event({{"event_name", "e"}, {"filter", ""}})),
            one(cp + "/filter", "must be a non-empty string"));
  auto p = problems(event({{"event_name", "e"}, {"filter", "event.data.amount >"}}));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].path, cp + "/filter");
  EXPECT_EQ(p[0].message.rfind("invalid filter: at ", 0), 0u) << p[0].message;
  EXPECT_EQ(problems(event({{"event_name", "e"}, {"filter", "input.x > 1 && event.ok"}})),
            one(cp + "/filter", "unknown name 'input' in filter (a filter reads only 'event')"));
  EXPECT_EQ(problems(event({{"event_name", "e"}, {"name", "e"}})),
            one(cp + "/name", "unknown field 'name'"));
}

TEST(EventMatches, NameOnly) {
  Trigger t = trigger_of(typed("event", {{"event_name", "order.created"}}));
  EXPECT_TRUE(event_matches(t, {{"name", "order.created"}, {"data", {{"amount", 1}}}}));
  EXPECT_TRUE(event_matches(t, {{"name", "order.created"}}));
  EXPECT_FALSE(event_matches(t, {{"name", "order.cancelled"}, {"data", json::object()}}));
  EXPECT_FALSE(event_matches(t, {{"name", "ORDER.CREATED"}}));
  EXPECT_FALSE(event_matches(t, {{"data", json::object()}}));
  EXPECT_FALSE(event_matches(t, {{"name", 5}}));
  EXPECT_FALSE(event_matches(t, json("order.created")));
  EXPECT_FALSE(event_matches(Trigger{}, {{"name", ""}}));  // a manual trigger has no events
  Trigger webhook = trigger_of(typed("webhook", {{"auth", "none"}}));
  EXPECT_FALSE(event_matches(webhook, {{"name", ""}}));
}

TEST(EventMatches, Filter) {
  Trigger t = trigger_of(
      typed("event", {{"event_name", "order.created"}, {"filter", "event.data.amount > 100"}}));
  json event = {{"name", "order.created"}, {"data", {{"amount", 150}}}};
  EXPECT_TRUE(event_matches(t, event));
  event["data"]["amount"] = 100;
  EXPECT_FALSE(event_matches(t, event));
  event["name"] = "order.updated";
  event["data"]["amount"] = 150;
  EXPECT_FALSE(event_matches(t, event));  // the name is checked first
  // A filter that cannot judge the event (null > 100 is an error) does not match.
  EXPECT_FALSE(event_matches(t, {{"name", "order.created"}}));
  EXPECT_FALSE(event_matches(t, {{"name", "order.created"}, {"data", {{"amount", "lots"}}}}));

  // Truthiness, not just booleans; the whole event is in scope.
  t = trigger_of(typed("event", {{"event_name", "e"}, {"filter", "event.data.tags"}}));
  EXPECT_TRUE(event_matches(t, {{"name", "e"}, {"data", {{"tags", {"a"}}}}}));
  EXPECT_FALSE(event_matches(t, {{"name", "e"}, {"data", {{"tags", json::array()}}}}));
  t = trigger_of(typed("event", {{"event_name", "e"}, {"filter", "event.name == 'e'"}}));
  EXPECT_TRUE(event_matches(t, {{"name", "e"}}));
}

// ---------------------------------------------------------------- status

TEST(FlowStatus, ActiveOrPaused) {
  auto flow = parse_ok(flow_with(nullptr));
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->status, "active");
  json doc = flow_with(nullptr);
  doc["status"] = "paused";
  flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->status, "paused");
  doc["status"] = "archived";
  EXPECT_EQ(problems(doc), one("/status", "must be one of active, paused"));
  doc["status"] = true;
  EXPECT_EQ(problems(doc), one("/status", "must be one of active, paused"));
}

// ---------------------------------------------------------------- callbacks

json with_callbacks(json callbacks) {
  json doc = flow_with(nullptr);
  doc["config"] = {{"callbacks", std::move(callbacks)}};
  return doc;
}

TEST(FlowCallbacks, Parse) {
  auto flow =
      parse_ok(with_callbacks({{{"url", "https://hooks.example.com/yantra"},
                                {"events", {"execution.completed", "execution.failed"}},
                                {"secret", {{"$secret", "CALLBACK_KEY"}}}},
                               {{"url", "http://10.0.0.5:8080/cb"},
                                {"events",
                                 {"execution.started", "execution.cancelled", "execution.timed_out",
                                  "step.completed", "step.failed"}}}}));
  ASSERT_TRUE(flow);
  ASSERT_EQ(flow->callbacks.size(), 2u);
  EXPECT_EQ(flow->callbacks[0].url, "https://hooks.example.com/yantra");
  EXPECT_EQ(flow->callbacks[0].events,
            (std::vector<std::string>{"execution.completed", "execution.failed"}));
  EXPECT_EQ(flow->callbacks[0].secret, json({{"$secret", "CALLBACK_KEY"}}));
  EXPECT_EQ(flow->callbacks[1].events.size(), 5u);
  EXPECT_TRUE(flow->callbacks[1].secret.is_null());

  flow = parse_ok(with_callbacks(json::array()));
  ASSERT_TRUE(flow);
  EXPECT_TRUE(flow->callbacks.empty());
  flow = parse_ok(
      with_callbacks({{{"url", "http://x"}, {"events", {"step.failed"}}, {"secret", "literal"}}}));
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->callbacks[0].secret, "literal");
}

TEST(FlowCallbacks, Validate) {
  const std::string p = "/config/callbacks";
  const std::string kEvents =
      "must be one of execution.started, execution.completed, execution.failed, "
      "execution.cancelled, execution.timed_out, step.completed, step.failed";
  EXPECT_EQ(problems(with_callbacks("http://x")), one(p, "must be an array"));
  json many = json::array();
  for (int i = 0; i < 11; ++i) {
    many.push_back({{"url", "http://x"}, {"events", {"step.failed"}}});
  }
  EXPECT_EQ(problems(with_callbacks(many)), one(p, "a flow may have at most 10 callbacks"));
  many.erase(many.begin());
  EXPECT_TRUE(parse_ok(with_callbacks(many)));

  EXPECT_EQ(problems(with_callbacks({"http://x"})), one(p + "/0", "must be an object"));
  EXPECT_EQ(problems(with_callbacks(json::array({json::object()}))),
            (Problems{{p + "/0/events", "is required"}, {p + "/0/url", "is required"}}));
  const char* kUrl = "must be an http:// or https:// URL of at most 2048 characters";
  for (const char* bad : {"ftp://x", "http://", "https://", "HTTP://x", "x", ""}) {
    EXPECT_EQ(problems(with_callbacks({{{"url", bad}, {"events", {"step.failed"}}}})),
              one(p + "/0/url", kUrl))
        << bad;
  }
  EXPECT_EQ(problems(with_callbacks(
                {{{"url", "http://x/" + std::string(2048, 'a')}, {"events", {"step.failed"}}}})),
            one(p + "/0/url", kUrl));
  EXPECT_EQ(problems(with_callbacks({{{"url", 5}, {"events", {"step.failed"}}}})),
            one(p + "/0/url", "must be a string"));
  EXPECT_EQ(problems(with_callbacks({{{"url", "http://x"}, {"events", json::array()}}})),
            one(p + "/0/events", "must be a non-empty array"));
  EXPECT_EQ(problems(with_callbacks({{{"url", "http://x"}, {"events", "step.failed"}}})),
            one(p + "/0/events", "must be a non-empty array"));
  EXPECT_EQ(problems(with_callbacks(
                {{{"url", "http://x"},
                  {"events", {"step.failed", "execution.exploded", 7, "step.failed"}}}})),
            (Problems{{p + "/0/events/1", kEvents},
                      {p + "/0/events/2", kEvents},
                      {p + "/0/events/3", "duplicate event 'step.failed'"}}));
  EXPECT_EQ(
      problems(with_callbacks({{{"url", "http://x"}, {"events", {"step.failed"}}, {"secret", 5}}})),
      one(p + "/0/secret", kCredential));
  EXPECT_EQ(problems(with_callbacks(
                {{{"url", "http://x"}, {"events", {"step.failed"}}, {"headers", 5}}})),
            one(p + "/0/headers", "unknown field 'headers'"));
  // Problems of a later callback are located by its index.
  EXPECT_EQ(problems(with_callbacks({{{"url", "http://x"}, {"events", {"step.failed"}}},
                                     {{"url", "gopher://x"}, {"events", {"step.failed"}}}})),
            one(p + "/1/url", kUrl));
}

TEST(FlowCallbacks, OtherConfigFieldsStillApply) {
  json doc = with_callbacks({{{"url", "http://x"}, {"events", {"step.failed"}}}});
  doc["config"]["timeout_ms"] = 1000;
  doc["config"]["max_concurrent_executions"] = 3;
  doc["config"]["rate_limit"] = {{"max_per_minute", 5}};
  auto flow = parse_ok(doc);
  ASSERT_TRUE(flow);
  EXPECT_EQ(flow->timeout_ms, 1000);
  EXPECT_EQ(flow->max_concurrent_executions, 3u);
  EXPECT_EQ(flow->max_runs_per_minute, 5u);
  EXPECT_EQ(flow->callbacks.size(), 1u);
}

}  // namespace
}  // namespace yantra
