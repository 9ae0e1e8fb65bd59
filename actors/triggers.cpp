// Trigger indexes. Loading at open parses only the definitions whose trigger
// is not manual (a JSON parse of each latest version, then the full flow
// parse for the few that have a trigger), so a node with many manual flows
// opens as fast as before.
#include "actors/internal/triggers.hpp"

#include <spdlog/spdlog.h>

namespace yantra::detail {
namespace {

std::string flow_key(const std::string& tenant, const std::string& flow_id) {
  return tenant + '\0' + flow_id;
}

}  // namespace

Triggers::Triggers(storage::Store& store, std::shared_ptr<Clock> clock)
    : flows_(store.flows()), rows_(store), scheduler_(rows_, std::move(clock)) {}

Triggers::~Triggers() {
  stop();
}

void Triggers::start(StartFn start, Scheduler::ClaimFn claim) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    start_ = start;
  }
  scheduler_.start(std::move(start), std::move(claim));
}

void Triggers::stop() {
  scheduler_.stop();
}

bool Triggers::newest(const std::string& key, uint32_t version) {
  uint32_t& seen = versions_[key];
  if (version < seen) return false;
  seen = version;
  return true;
}

void Triggers::index_events(const std::string& tenant, const std::shared_ptr<const Flow>& flow) {
  const std::string key = flow_key(tenant, flow->id);
  auto old = event_of_.find(key);
  if (old != event_of_.end()) {
    auto& by_name = events_[tenant];
    auto flows = by_name.find(old->second);
    if (flows != by_name.end()) {
      flows->second.erase(flow->id);
      if (flows->second.empty()) by_name.erase(flows);
    }
    if (by_name.empty()) events_.erase(tenant);
    event_of_.erase(old);
  }
  if (flow->trigger_spec.type != Trigger::Type::kEvent || flow->status == "paused") return;
  events_[tenant][flow->trigger_spec.event_name][flow->id] = flow;
  event_of_[key] = flow->trigger_spec.event_name;
}

Status Triggers::load(const ResolveFn& resolve) {
  auto flows = flows_.list_all();
  if (!flows.ok()) return flows.status();
  for (const auto& fv : flows.value()) {
    json doc = json::parse(fv.definition_json(), nullptr, false);
    if (!doc.is_object()) continue;
    auto trigger = doc.find("trigger");
    if (trigger == doc.end() || !trigger->is_object() || trigger->value("type", "") == "manual" ||
        trigger->value("type", "").empty()) {
      continue;
    }
    auto flow = resolve(fv.tenant(), fv.flow_id());
    if (!flow.ok()) {
      // A stored version that no longer parses (a tool was removed, say)
      // triggers nothing; running it would fail the same way.
      spdlog::warn("trigger of {}/{} ignored: {}", fv.tenant(), fv.flow_id(),
                   flow.status().to_string());
      continue;
    }
    const auto& f = flow.value();
    if (f->trigger_spec.type == Trigger::Type::kWebhook) {
      // Versions stored before hook ids existed get theirs now.
      auto id = rows_.ensure_hook(fv.tenant(), f->id);
      if (!id.ok()) return id.status();
    }
    scheduler_.load(fv.tenant(), f);
    std::lock_guard<std::mutex> lock(mu_);
    newest(flow_key(fv.tenant(), f->id), fv.version());
    index_events(fv.tenant(), f);
  }
  return Status::ok();
}

Status Triggers::on_stored(const std::string& tenant, uint32_t version,
                           const std::shared_ptr<const Flow>& flow) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!newest(flow_key(tenant, flow->id), version)) return Status::ok();
    index_events(tenant, flow);
  }
  scheduler_.update(tenant, flow);
  if (flow->trigger_spec.type == Trigger::Type::kWebhook) {
    auto id = rows_.ensure_hook(tenant, flow->id);
    if (!id.ok()) return id.status();
  }
  return Status::ok();
}

void Triggers::on_deleted(const std::string& tenant, const std::string& flow_id, uint32_t version) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!newest(flow_key(tenant, flow_id), version)) return;
    auto gone = std::make_shared<Flow>();
    gone->id = flow_id;
    index_events(tenant, gone);  // a manual flow: only removes
  }
  scheduler_.remove(tenant, flow_id);
  Status s = rows_.remove_flow(tenant, flow_id);
  if (!s.is_ok()) spdlog::error("trigger rows of {}/{}: {}", tenant, flow_id, s.to_string());
}

void Triggers::emit(const std::string& tenant, const std::string& name, const json& data,
                    Engine::EmitFn done) {
  const json event = {{"name", name}, {"data", data}};
  std::vector<std::shared_ptr<const Flow>> targets;
  StartFn start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    start = start_;
    auto t = events_.find(tenant);
    if (t != events_.end()) {
      auto n = t->second.find(name);
      if (n != t->second.end()) {
        for (const auto& [id, flow] : n->second) targets.push_back(flow);
      }
    }
  }
  // Filters run outside the lock: they are expressions over the event only.
  std::vector<std::shared_ptr<const Flow>> matched;
  for (auto& f : targets) {
    if (event_matches(f->trigger_spec, event)) matched.push_back(std::move(f));
  }
  if (matched.empty() || !start) {
    done({});
    return;
  }
  // Every start answers once, on whatever thread; the last one answers all.
  struct Pending {
    std::mutex mu;
    std::vector<EventStart> results;
    size_t left = 0;
    Engine::EmitFn done;
  };
  auto pending = std::make_shared<Pending>();
  pending->results.resize(matched.size());
  pending->left = matched.size();
  pending->done = std::move(done);
  for (size_t i = 0; i < matched.size(); ++i) {
    pending->results[i].flow_id = matched[i]->id;
    RunRequest run;
    run.tenant = tenant;
    run.flow_id = matched[i]->id;  // the latest version: a pause since is honoured
    run.input = event;
    run.queued = std::make_shared<std::atomic<bool>>(false);
    auto queued = run.queued;
    start(std::move(run), [pending, i, queued](Result<std::string> r) {
      Engine::EmitFn finish;
      {
        std::lock_guard<std::mutex> lock(pending->mu);
        EventStart& out = pending->results[i];
        if (r.ok()) {
          out.execution_id = r.value();
          out.queued = queued->load();
        } else {
          out.error = r.status();
        }
        if (--pending->left == 0) finish = std::move(pending->done);
      }
      if (finish) finish(std::move(pending->results));
    });
  }
}

}  // namespace yantra::detail
