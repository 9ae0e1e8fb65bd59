// Triggers over HTTP against a real node: the public webhook route in every
// auth mode (good, wrong, missing and stale credentials; credentials from
// the vault), what a webhook run receives, rotation, paused flows, events
// and the schedule listing. Every refusal is also checked to have started
// nothing. The signature scheme is recomputed here from docs/workflows.md
// (over base/crypto's HMAC-SHA256, itself pinned to RFC 4231 by base_test),
// so the test fails if the node drifts from the document.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/crypto.hpp"
#include "base/encoding.hpp"
#include "base/time.hpp"
#include "tests/e2e/e2e_common.hpp"
#include "tests/e2e/node_fixture.hpp"

namespace yantra::e2e {
namespace {

class TriggersE2E : public NodeSuite<TriggersE2E> {
 protected:
  // POST to a webhook URL without an API key.
  Reply hook(const std::string& url, const std::string& body, Headers headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return http_request(port(), "POST", url, body, headers);
  }

  size_t runs_of(const std::string& flow) {
    Reply r = api().get("/api/v1/executions?flow_id=" + flow);
    EXPECT_EQ(r.status, 200) << r.describe();
    return r.doc().value("executions", json::array()).size();
  }

  // Creates a webhook flow echoing its input; returns its hook URL.
  std::string webhook_flow(const std::string& id, const json& config) {
    json f = json::parse(R"({"steps": [{"id": "a", "type": "action",
        "config": {"tool_id": "core", "action": "echo",
                   "parameters": {"in": {"$ref": "input"}}}}],
        "output": {"in": {"$ref": "a.in"}}})");
    f["id"] = id;
    f["trigger"] = {{"type", "webhook"}, {"config", config}};
    Api a = api();
    Reply r = a.post("/api/v1/flows", f);
    EXPECT_EQ(r.status, 201) << r.describe();
    Reply g = a.get("/api/v1/flows/" + id);
    EXPECT_EQ(g.status, 200) << g.describe();
    const json hook = g.doc().value("webhook", json());
    EXPECT_TRUE(hook.is_object()) << g.body;
    if (!hook.is_object()) return "";
    EXPECT_EQ(hook.value("url", ""), "/hooks/" + hook.value("id", ""));
    EXPECT_EQ(r.doc()["webhook"], hook) << "the create answer shows the hook too";
    return hook.value("url", "");
  }
};

int64_t unix_seconds() {
  return now_ms() / 1000;
}

TEST_F(TriggersE2E, WebhookWithoutAuthPassesBodyHeadersAndQuery) {
  const std::string url = webhook_flow("hook-none", {{"auth", "none"}});
  ASSERT_FALSE(url.empty());
  Reply r = hook(url + "?wait_ms=10000&source=crm&source=ignored", R"({"order": 7})",
                 {{"X-Custom", "v1"}, {"Authorization", "Bearer not-for-the-flow"}});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.doc()["status"], "completed");
  const json in = r.doc()["output"]["in"];
  EXPECT_EQ(in["body"], json({{"order", 7}}));
  EXPECT_EQ(in["headers"]["x-custom"], "v1");
  EXPECT_EQ(in["headers"]["content-type"], "application/json");
  EXPECT_FALSE(in["headers"].contains("authorization")) << in.dump();
  EXPECT_EQ(in["query"], json({{"source", "crm"}})) << in.dump();

  // Not JSON: the raw text. Without ?wait_ms: 202 at once.
  Reply text = hook(url, "plain words");
  ASSERT_EQ(text.status, 202) << text.describe();
  const std::string id = text.doc()["execution_id"];
  EXPECT_EQ(text.doc()["status"], "running");
  Api a = api();
  json done = wait_finished(a, id);
  EXPECT_EQ(done["output"]["in"]["body"], "plain words") << done.dump();
  EXPECT_EQ(runs_of("hook-none"), 2u);

  // Unknown ids, and other methods.
  EXPECT_EQ(hook("/hooks/hk_doesnotexist", "{}").status, 404);
  EXPECT_EQ(http_request(port(), "GET", url).status, 405);

  // The tenant's audit chain records each delivery.
  json records;
  for (int i = 0; i < 200; ++i) {
    records = a.get("/api/v1/audit?action=hook.received").doc()["records"];
    if (records.size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(records.size(), 2u) << records.dump();
  EXPECT_EQ(records[0]["resource"], "/api/v1/flows/hook-none/webhook");
  EXPECT_EQ(records[0]["outcome"], "ok");
}

TEST_F(TriggersE2E, WebhookBasicAuth) {
  const std::string url =
      webhook_flow("hook-basic", {{"auth", "basic"}, {"username", "crm"}, {"password", "pa55"}});
  ASSERT_FALSE(url.empty());
  Reply good =
      hook(url + "?wait_ms=10000", "{}", {{"Authorization", "Basic " + base64_encode("crm:pa55")}});
  ASSERT_EQ(good.status, 200) << good.describe();
  EXPECT_FALSE(good.doc()["output"]["in"]["headers"].contains("authorization"));
  Reply wrong = hook(url, "{}", {{"Authorization", "Basic " + base64_encode("crm:pa56")}});
  EXPECT_EQ(wrong.status, 401) << wrong.describe();
  EXPECT_EQ(wrong.code(), "unauthorized");
  EXPECT_NE(wrong.header("www-authenticate").find("Basic"), std::string::npos);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Basic " + base64_encode("other:pa55")}}).status,
            401);
  EXPECT_EQ(hook(url, "{}").status, 401);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Bearer pa55"}}).status, 401);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Basic !!!"}}).status, 401);
  EXPECT_EQ(runs_of("hook-basic"), 1u);
}

TEST_F(TriggersE2E, WebhookBearerAuthFromTheVault) {
  Api a = api();
  ASSERT_EQ(a.put("/api/v1/secrets/HOOK_TOKEN", json{{"value", "t0ken-from-vault"}}).status, 201);
  const std::string url =
      webhook_flow("hook-bearer", {{"auth", "bearer"}, {"token", {{"$secret", "HOOK_TOKEN"}}}});
  ASSERT_FALSE(url.empty());
  Reply good = hook(url + "?wait_ms=10000", "{}", {{"Authorization", "Bearer t0ken-from-vault"}});
  ASSERT_EQ(good.status, 200) << good.describe();
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Bearer t0ken-from-vaulT"}}).status, 401);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Bearer "}}).status, 401);
  EXPECT_EQ(hook(url, "{}").status, 401);
  // A changed secret applies to the next request.
  ASSERT_EQ(a.put("/api/v1/secrets/HOOK_TOKEN", json{{"value", "rotated"}}).status, 200);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Bearer t0ken-from-vault"}}).status, 401);
  EXPECT_EQ(hook(url, "{}", {{"Authorization", "Bearer rotated"}}).status, 202);
  EXPECT_EQ(runs_of("hook-bearer"), 2u);
}

TEST_F(TriggersE2E, WebhookSignatureAuth) {
  const std::string url = webhook_flow(
      "hook-signed", {{"auth", "signature"}, {"secret", "whsec"}, {"replay_window_ms", 60000}});
  ASSERT_FALSE(url.empty());
  const std::string body = R"({"event": "paid"})";
  auto signed_headers = [&](int64_t ts, const std::string& prefix, const std::string& key) {
    const std::string stamp = std::to_string(ts);
    return Headers{
        {"X-Yantra-Timestamp", stamp},
        {"X-Yantra-Signature", prefix + crypto::hmac_sha256_hex(key, stamp + "." + body)}};
  };
  Reply good =
      hook(url + "?wait_ms=10000", body, signed_headers(unix_seconds(), "sha256=", "whsec"));
  ASSERT_EQ(good.status, 200) << good.describe();
  const json headers = good.doc()["output"]["in"]["headers"];
  EXPECT_FALSE(headers.contains("x-yantra-signature")) << headers.dump();
  EXPECT_TRUE(headers.contains("x-yantra-timestamp")) << headers.dump();
  EXPECT_EQ(hook(url, body, signed_headers(unix_seconds(), "", "whsec")).status, 202);

  // Wrong key, tampered body, missing headers, stale or future timestamps.
  EXPECT_EQ(hook(url, body, signed_headers(unix_seconds(), "sha256=", "other")).status, 401);
  EXPECT_EQ(
      hook(url, R"({"event": "refunded"})", signed_headers(unix_seconds(), "", "whsec")).status,
      401);
  EXPECT_EQ(hook(url, body).status, 401);
  Headers no_stamp = signed_headers(unix_seconds(), "", "whsec");
  no_stamp.erase(no_stamp.begin());
  EXPECT_EQ(hook(url, body, no_stamp).status, 401);
  Reply stale = hook(url, body, signed_headers(unix_seconds() - 120, "", "whsec"));
  EXPECT_EQ(stale.status, 401) << stale.describe();
  EXPECT_NE(stale.body.find("stale"), std::string::npos) << stale.body;
  EXPECT_EQ(hook(url, body, signed_headers(unix_seconds() + 120, "", "whsec")).status, 401);
  Headers garbage = {{"X-Yantra-Timestamp", "yesterday"}, {"X-Yantra-Signature", "00"}};
  EXPECT_EQ(hook(url, body, garbage).status, 401);
  EXPECT_EQ(runs_of("hook-signed"), 2u);
}

TEST_F(TriggersE2E, RotationRetiresTheOldUrlAndDeletionAllOfThem) {
  const std::string old_url = webhook_flow("hook-rotate", {{"auth", "none"}});
  ASSERT_FALSE(old_url.empty());
  Api a = api();
  // A new version keeps the id.
  Reply g = a.get("/api/v1/flows/hook-rotate");
  json def = g.doc()["definition"];
  def["name"] = "v2";
  ASSERT_EQ(a.put("/api/v1/flows/hook-rotate", def).status, 200);
  EXPECT_EQ(a.get("/api/v1/flows/hook-rotate").doc()["webhook"]["url"], old_url);

  Reply rotated = a.post("/api/v1/flows/hook-rotate/webhook/rotate", json::object());
  ASSERT_EQ(rotated.status, 200) << rotated.describe();
  const std::string new_url = rotated.doc()["url"];
  EXPECT_NE(new_url, old_url);
  EXPECT_EQ(a.get("/api/v1/flows/hook-rotate").doc()["webhook"]["url"], new_url);
  EXPECT_EQ(hook(old_url, "{}").status, 404);
  EXPECT_EQ(hook(new_url, "{}").status, 202);
  EXPECT_EQ(runs_of("hook-rotate"), 1u);

  // Only webhook flows have a hook to rotate.
  create_flow(a, echo_flow("hook-manual"));
  EXPECT_EQ(a.post("/api/v1/flows/hook-manual/webhook/rotate", json::object()).status, 409);
  EXPECT_FALSE(a.get("/api/v1/flows/hook-manual").doc().contains("webhook"));
  EXPECT_EQ(a.post("/api/v1/flows/nope/webhook/rotate", json::object()).status, 404);

  ASSERT_EQ(a.del("/api/v1/flows/hook-rotate").status, 204);
  EXPECT_EQ(hook(new_url, "{}").status, 404);
}

TEST_F(TriggersE2E, PausedFlowsStartNothing) {
  const std::string url = webhook_flow("hook-paused", {{"auth", "none"}});
  ASSERT_FALSE(url.empty());
  Api a = api();
  Reply paused = a.post("/api/v1/flows/hook-paused/pause", json::object());
  ASSERT_EQ(paused.status, 200) << paused.describe();
  EXPECT_EQ(paused.doc()["definition"]["status"], "paused");
  EXPECT_EQ(paused.doc()["version"], 2);
  EXPECT_EQ(a.post("/api/v1/flows/hook-paused/pause", json::object()).status, 409);

  Reply by_hook = hook(url, "{}");
  EXPECT_EQ(by_hook.status, 409) << by_hook.describe();
  EXPECT_EQ(by_hook.code(), "conflict");
  Reply run = a.post("/api/v1/flows/hook-paused/run", json::object());
  EXPECT_EQ(run.status, 409) << run.describe();
  EXPECT_NE(run.doc()["error"].value("message", "").find("is paused"), std::string::npos);
  EXPECT_EQ(runs_of("hook-paused"), 0u);

  Reply resumed = a.post("/api/v1/flows/hook-paused/resume", json::object());
  ASSERT_EQ(resumed.status, 200) << resumed.describe();
  EXPECT_EQ(resumed.doc()["webhook"]["url"], url);
  EXPECT_EQ(a.post("/api/v1/flows/hook-paused/resume", json::object()).status, 409);
  EXPECT_EQ(hook(url, "{}").status, 202);
  EXPECT_EQ(runs_of("hook-paused"), 1u);
  EXPECT_EQ(a.post("/api/v1/flows/nope/pause", json::object()).status, 404);
}

TEST_F(TriggersE2E, EventsStartMatchingFlows) {
  Api a = api();
  auto event_flow = [&](const std::string& id, const std::string& filter) {
    json f = echo_flow(id);
    f["trigger"] = {{"type", "event"}, {"config", {{"event_name", "invoice.paid"}}}};
    if (!filter.empty()) f["trigger"]["config"]["filter"] = filter;
    f["steps"][0]["config"]["parameters"] = {{"x", {{"$ref", "input.data.amount"}}}};
    create_flow(a, f);
  };
  event_flow("ev-all", "");
  event_flow("ev-big", "event.data.amount >= 1000");
  json limited = echo_flow("ev-limited");
  limited["trigger"] = {{"type", "event"}, {"config", {{"event_name", "invoice.paid"}}}};
  limited["config"] = {{"rate_limit", {{"max_per_minute", 1}}}};
  create_flow(a, limited);

  Reply small = a.post("/api/v1/events", json{{"name", "invoice.paid"}, {"data", {{"amount", 5}}}});
  ASSERT_EQ(small.status, 202) << small.describe();
  const json ex = small.doc()["executions"];
  ASSERT_EQ(ex.size(), 2u) << small.body;
  EXPECT_EQ(ex[0]["flow_id"], "ev-all");
  EXPECT_EQ(ex[1]["flow_id"], "ev-limited");
  EXPECT_EQ(small.doc()["errors"].size(), 0u);
  json done = wait_finished(a, ex[0]["execution_id"]);
  EXPECT_EQ(done["output"], json({{"x", 5}})) << done.dump();
  EXPECT_EQ(done["input"], json({{"name", "invoice.paid"}, {"data", {{"amount", 5}}}}));

  Reply big =
      a.post("/api/v1/events", json{{"name", "invoice.paid"}, {"data", {{"amount", 5000}}}});
  ASSERT_EQ(big.status, 202) << big.describe();
  EXPECT_EQ(big.doc()["executions"].size(), 2u) << big.body;
  ASSERT_EQ(big.doc()["errors"].size(), 1u) << big.body;
  EXPECT_EQ(big.doc()["errors"][0]["flow_id"], "ev-limited");
  EXPECT_EQ(big.doc()["errors"][0]["error"]["code"], "rate_limited");

  Reply none = a.post("/api/v1/events", json{{"name", "invoice.voided"}});
  ASSERT_EQ(none.status, 202) << none.describe();
  EXPECT_EQ(none.doc(), json({{"executions", json::array()}, {"errors", json::array()}}));
  EXPECT_EQ(a.post("/api/v1/events", json{{"data", 1}}).status, 400);
  EXPECT_EQ(a.post("/api/v1/events", json{{"name", "bad name!"}}).status, 400);
  EXPECT_EQ(a.post("/api/v1/events", json{{"name", "x"}, {"extra", 1}}).status, 400);
  EXPECT_EQ(http_request(port(), "POST", "/api/v1/events", R"({"name": "invoice.paid"})").status,
            401);
  EXPECT_EQ(runs_of("ev-all"), 2u);
  EXPECT_EQ(runs_of("ev-big"), 1u);
}

TEST_F(TriggersE2E, SchedulesAreListed) {
  Api a = api();
  json f = echo_flow("sched-yearly");
  f["trigger"] = {{"type", "schedule"},
                  {"config", {{"cron", "0 0 1 1 *"}, {"timezone", "Europe/Berlin"}}}};
  create_flow(a, f);
  Reply r = a.get("/api/v1/schedules");
  ASSERT_EQ(r.status, 200) << r.describe();
  json mine;
  const json listed = r.doc();
  for (const auto& s : listed["schedules"]) {
    if (s["flow_id"] == "sched-yearly") mine = s;
  }
  ASSERT_TRUE(mine.is_object()) << r.body;
  EXPECT_EQ(mine["cron"], "0 0 1 1 *");
  EXPECT_EQ(mine["timezone"], "Europe/Berlin");
  EXPECT_EQ(mine["status"], "active");
  EXPECT_TRUE(mine["last_fired_at"].is_null());
  const int64_t next = mine["next_fire_ms"];
  EXPECT_GT(next, unix_seconds() * 1000);
  // Midnight of January 1st in Berlin is 23:00 UTC on December 31st.
  EXPECT_NE(mine["next_fire_at"].get<std::string>().find("-12-31T23:00:00.000Z"), std::string::npos)
      << mine.dump();

  ASSERT_EQ(a.post("/api/v1/flows/sched-yearly/pause", json::object()).status, 200);
  const json paused = a.get("/api/v1/schedules").doc();
  ASSERT_EQ(paused["schedules"].size(), listed["schedules"].size()) << paused.dump();
  for (const auto& s : paused["schedules"]) {
    if (s["flow_id"] != "sched-yearly") continue;
    EXPECT_EQ(s["status"], "paused");
    EXPECT_TRUE(s["next_fire_ms"].is_null());
  }
  ASSERT_EQ(a.del("/api/v1/flows/sched-yearly").status, 204);
  const json deleted = a.get("/api/v1/schedules").doc();
  ASSERT_TRUE(deleted["schedules"].is_array()) << deleted.dump();
  for (const auto& s : deleted["schedules"]) {
    EXPECT_NE(s["flow_id"], "sched-yearly");
  }
}

}  // namespace
}  // namespace yantra::e2e
