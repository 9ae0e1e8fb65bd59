// Triggers: what starts an execution of a flow besides a manual call, parsed
// from the definition's `trigger` object.
//
// Why the model is parsed here and acted on elsewhere: the definition is
// validated once, when it is posted, so that a typo in a cron field or a
// time zone is a 400 with a JSON pointer, not a schedule that silently never
// fires. What the trigger then does needs the outside world (an HTTP
// listener checking credentials, a timer, an event bus) and lives outside
// runtime/; those parts read this model and never re-parse the document.
//
// Shapes (under "trigger"):
//   {"type": "manual"}
//   {"type": "webhook", "config": {"auth": "none"}}
//   {"type": "webhook", "config": {"auth": "basic", "username": "u", "password": <credential>}}
//   {"type": "webhook", "config": {"auth": "bearer", "token": <credential>}}
//   {"type": "webhook", "config": {"auth": "signature", "secret": <credential>,
//       "header": "X-Yantra-Signature", "timestamp_header": "X-Yantra-Timestamp",
//       "replay_window_ms": 300000}}
//   {"type": "schedule", "config": {"cron": "*/5 * * * *", "timezone": "Europe/Berlin",
//       "catch_up": "none" | "all", "input": {...}}}
//   {"type": "event", "config": {"event_name": "order.created",
//       "filter": "event.data.amount > 100"}}
// A <credential> is a non-empty string or {"$secret": "<name>"} (resolved
// from the vault when a request is checked, so the definition need not hold
// the secret itself).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "runtime/cron.hpp"
#include "runtime/expr.hpp"

namespace yantra {

using json = nlohmann::json;

struct Trigger {
  enum class Type { kManual, kWebhook, kSchedule, kEvent };
  Type type = Type::kManual;

  // webhook
  std::string auth = "none";  // none | basic | bearer | signature
  // The credentials as written: basic {"username", "password"}, bearer
  // {"token"}, signature {"secret"}; empty for auth none.
  json credentials = json::object();
  std::string signature_header = "X-Yantra-Signature";
  std::string timestamp_header = "X-Yantra-Timestamp";
  int64_t replay_window_ms = 300000;  // signature: how old a timestamp may be

  // schedule
  std::string cron;
  CronSpec cron_spec;
  std::string time_zone = "UTC";
  std::string catch_up = "none";  // none | all: fire the slots missed while down
  json schedule_input = json::object();

  // event
  std::string event_name;
  // Compiled from `filter_source`; it reads one name, `event` ({"name", "data"}).
  // Null: every event of that name matches.
  std::shared_ptr<const expr::Expression> filter;
  std::string filter_source;
};

// The spelling in definitions: "manual", "webhook", "schedule", "event".
const char* to_string(Trigger::Type);

// Parses the trigger object found at `pointer` (a flow's "/trigger"),
// appending one problem per issue, each at its JSON pointer
// ("/trigger/config/cron": "minute field: 61 is out of range 0-59"). The
// result is meaningful only when nothing was appended.
Trigger parse_trigger_spec(const json& doc, std::string_view pointer,
                           std::vector<Problem>& problems);

// Whether an event ({"name": ..., "data": ...}) starts a flow with this
// trigger: an event trigger of the same name whose filter, if any, is
// truthy. A filter that fails to evaluate (a missing field compared with a
// number, say) does not match: an event the filter cannot judge is not one
// it asked for.
bool event_matches(const Trigger& trigger, const json& event);

}  // namespace yantra
