// Callbacks (a flow's config.callbacks): which deliveries a batch of events
// owes to the receivers a flow names.
//
// Why this is a pure function of (flow, state after the batch, batch): the
// engine writes the deliveries into a durable outbox in the same WriteBatch
// as the events (a transactional outbox), so a callback is owed exactly when
// its event is in the log. Computing them from the batch alone, with ids made
// of the execution id, the event's seq and the callback's index, means that a
// batch decided again after a crash yields the same ids; receivers
// deduplicate by id (X-Yantra-Delivery), which turns at-least-once delivery
// into exactly-once processing. Sending, signing and retrying are the callback
// dispatcher's (actors/internal/callbacks.hpp): this side has no clock.
//
// Payloads pass through redact(), so {"$secret": NAME} markers in outputs or
// inputs reach receivers as "***", as in every other view of an execution.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/execution.hpp"
#include "runtime/flow.hpp"
#include "yantra/v1/events.pb.h"

namespace yantra {

// One delivery owed: POST `payload` to `url`.
struct CallbackMessage {
  std::string id;    // "<execution_id>/<seq>/<callback index>"
  std::string type;  // "execution.started", "step.completed", ...
  std::string url;
  json secret;  // as the flow wrote it: null, a string or {"$secret": NAME}
  // {"id", "type", "execution_id", "flow_id", "flow_version", "tenant", "seq",
  //  "time" (ISO 8601, UTC, ms), "data": {...}}
  json payload;
  int64_t event_ms = 0;  // time_ms of the event reported
};

// The callback event type of an event ("execution.started", "step.completed",
// "step.failed", "execution.completed", "execution.failed",
// "execution.cancelled", "execution.timed_out"), or "" when it has none.
std::string_view callback_event_type(const v1::Event& event);

// For each event of `batch` with a callback event type, for each callback of
// `flow` subscribed to that type (in flow order): one message. `after` is the
// state once the whole batch is applied (it supplies the tenant, flow
// version, step ids and whether a failed step will be retried). A fork's
// copied history (seq up to forked_at_seq, other than its ExecutionStarted)
// is not reported again. A flow without callbacks returns at once.
std::vector<CallbackMessage> callback_messages(const Flow& flow, const ExecutionState& after,
                                               const std::vector<v1::Event>& batch);

// The delay before the next attempt after `failed_attempts` (>= 1) failures:
// initial_ms, doubled per failure, capped at max_ms. Deterministic; the
// dispatcher adds jitter.
int64_t callback_retry_delay_ms(uint32_t failed_attempts, int64_t initial_ms = 1000,
                                int64_t max_ms = 3600 * 1000);

}  // namespace yantra
