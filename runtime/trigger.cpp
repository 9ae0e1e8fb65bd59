// Trigger parsing and event matching.
//
// Every field is checked when the definition is posted, including the parts
// that need a lookup (the cron fields, the time zone) and the filter
// expression, so that the parts outside runtime/ that act on a trigger can
// take the model as valid. The fields a type does not use are unknown fields
// for that type, as for step configs: a "cron" on a webhook is a mistake
// worth reporting, not something to ignore.
#include "runtime/trigger.hpp"

#include <algorithm>

#include "runtime/doc_reader.hpp"

namespace yantra {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}: names like "order.created", safe in
// URLs, logs and keys.
bool valid_event_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || !is_alnum(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) {
    return is_alnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

// [A-Za-z0-9-]{1,64}: header names as clients actually send them.
bool valid_header_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

class EventScope final : public expr::Scope {
 public:
  explicit EventScope(const json& event) : event_(event) {}
  const json* lookup(std::string_view name) const override {
    return name == "event" ? &event_ : nullptr;
  }

 private:
  const json& event_;
};

class TriggerParser {
 public:
  explicit TriggerParser(std::vector<Problem>& problems) : r_(problems) {}

  Trigger run(const json& doc, const std::string& pointer) {
    Trigger t;
    if (!r_.expect_object(doc, pointer)) return t;
    std::string type;
    if (!r_.read_string(doc, "type", pointer, true, type)) return t;
    if (type == "manual") {
      r_.check_fields(doc, pointer, {"type"});
      return t;
    }
    if (type == "webhook") {
      t.type = Trigger::Type::kWebhook;
    } else if (type == "schedule") {
      t.type = Trigger::Type::kSchedule;
    } else if (type == "event") {
      t.type = Trigger::Type::kEvent;
    } else {
      r_.add(pointer_child(pointer, "type"), "unknown trigger type " + quote_name(type));
      return t;
    }
    r_.check_fields(doc, pointer, {"config", "type"});
    const json* config = DocReader::find(doc, "config");
    std::string cp = pointer_child(pointer, "config");
    if (config == nullptr) {
      r_.add(cp, "is required");
      return t;
    }
    if (!r_.expect_object(*config, cp)) return t;
    switch (t.type) {
      case Trigger::Type::kWebhook: webhook(*config, cp, t); break;
      case Trigger::Type::kSchedule: schedule(*config, cp, t); break;
      case Trigger::Type::kEvent: event(*config, cp, t); break;
      case Trigger::Type::kManual: break;
    }
    return t;
  }

 private:
  void webhook(const json& config, const std::string& cp, Trigger& t) {
    if (!r_.read_enum(config, "auth", cp, true, {"none", "basic", "bearer", "signature"}, t.auth)) {
      return;  // the other fields depend on the scheme
    }
    json value;
    if (t.auth == "none") {
      r_.check_fields(config, cp, {"auth"});
    } else if (t.auth == "basic") {
      r_.check_fields(config, cp, {"auth", "password", "username"});
      std::string username;
      if (r_.read_string(config, "username", cp, true, username, true)) {
        if (username.find(':') != std::string::npos) {
          // Basic credentials are "user:password"; a colon in the user
          // name makes them ambiguous (RFC 7617).
          r_.add(pointer_child(cp, "username"), "must not contain ':'");
        }
        t.credentials["username"] = username;
      }
      if (r_.read_secret(config, "password", cp, true, value)) t.credentials["password"] = value;
    } else if (t.auth == "bearer") {
      r_.check_fields(config, cp, {"auth", "token"});
      if (r_.read_secret(config, "token", cp, true, value)) t.credentials["token"] = value;
    } else {
      r_.check_fields(config, cp,
                      {"auth", "header", "replay_window_ms", "secret", "timestamp_header"});
      if (r_.read_secret(config, "secret", cp, true, value)) t.credentials["secret"] = value;
      read_header(config, "header", cp, t.signature_header);
      read_header(config, "timestamp_header", cp, t.timestamp_header);
      // At least a second of clock skew; at most a day, past which a
      // captured request could be replayed for too long to be a "window".
      r_.read_int(config, "replay_window_ms", cp, false, 1000, 86400000, t.replay_window_ms);
    }
  }

  void read_header(const json& config, std::string_view key, const std::string& cp,
                   std::string& out) {
    std::string name;
    if (!r_.read_string(config, key, cp, false, name)) return;
    if (!valid_header_name(name)) {
      r_.add(pointer_child(cp, key), "must be a header name ([A-Za-z0-9-]{1,64})");
      return;
    }
    out = name;
  }

  void schedule(const json& config, const std::string& cp, Trigger& t) {
    r_.check_fields(config, cp, {"catch_up", "cron", "input", "timezone"});
    if (r_.read_string(config, "cron", cp, true, t.cron, true)) {
      auto spec = parse_cron(t.cron);
      if (spec) {
        t.cron_spec = std::move(spec).value();
      } else {
        r_.add(pointer_child(cp, "cron"), spec.status().message());
      }
    }
    std::string zone;
    if (r_.read_string(config, "timezone", cp, false, zone, true)) {
      if (Status s = check_time_zone(zone); s) {
        t.time_zone = zone;
      } else {
        r_.add(pointer_child(cp, "timezone"), s.message());
      }
    }
    r_.read_enum(config, "catch_up", cp, false, {"none", "all"}, t.catch_up);
    if (const json* input = DocReader::find(config, "input")) {
      if (r_.expect_object(*input, pointer_child(cp, "input"))) t.schedule_input = *input;
    }
  }

  void event(const json& config, const std::string& cp, Trigger& t) {
    r_.check_fields(config, cp, {"event_name", "filter"});
    if (r_.read_string(config, "event_name", cp, true, t.event_name) &&
        !valid_event_name(t.event_name)) {
      r_.add(pointer_child(cp, "event_name"), "must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}");
    }
    std::string source;
    if (!r_.read_string(config, "filter", cp, false, source, true)) return;
    std::string fp = pointer_child(cp, "filter");
    auto parsed = expr::Expression::parse(source);
    if (!parsed) {
      r_.add(fp, "invalid filter: " + parsed.status().message());
      return;
    }
    // Known at load time, like the roots of a step's $expr: a filter that
    // reads anything but the event would fail on every event.
    bool roots_ok = true;
    for (const std::string& root : parsed->roots()) {
      if (root != "event") {
        r_.add(fp, "unknown name " + quote_name(root) + " in filter (a filter reads only 'event')");
        roots_ok = false;
      }
    }
    if (!roots_ok) return;
    t.filter_source = std::move(source);
    t.filter = std::make_shared<const expr::Expression>(std::move(parsed).value());
  }

  DocReader r_;
};

}  // namespace

const char* to_string(Trigger::Type type) {
  switch (type) {
    case Trigger::Type::kManual: return "manual";
    case Trigger::Type::kWebhook: return "webhook";
    case Trigger::Type::kSchedule: return "schedule";
    case Trigger::Type::kEvent: return "event";
  }
  return "unknown";
}

Trigger parse_trigger_spec(const json& doc, std::string_view pointer,
                           std::vector<Problem>& problems) {
  return TriggerParser(problems).run(doc, std::string(pointer));
}

bool event_matches(const Trigger& trigger, const json& event) {
  if (trigger.type != Trigger::Type::kEvent || !event.is_object()) return false;
  auto name = event.find("name");
  if (name == event.end() || !name->is_string() ||
      name->get_ref<const std::string&>() != trigger.event_name) {
    return false;
  }
  if (trigger.filter == nullptr) return true;
  auto verdict = trigger.filter->eval(EventScope(event));
  return verdict.ok() && expr::truthy(*verdict);
}

}  // namespace yantra
