// LogServer (cluster/log_server.hpp): LogRequest -> SegmentStore -> LogReply.
#include "cluster/log_server.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <utility>

#include "base/errc.hpp"
#include "base/storage_errc.hpp"
#include "base/thread_name.hpp"
#include "storage/segment_store.hpp"
#include "yantra/v1/log_rpc.pb.h"

namespace yantra::cluster {
namespace {

// Which worker serves a request: its partition's stripe. A payload that
// does not parse goes to worker 0, which refuses it.
uint32_t partition_of(const v1::LogRequest& r) {
  switch (r.op_case()) {
    case v1::LogRequest::kAppend: return r.append().partition();
    case v1::LogRequest::kSeal: return r.seal().partition();
    case v1::LogRequest::kRepair: return r.repair().partition();
    case v1::LogRequest::kRead: return r.read().partition();
    case v1::LogRequest::kTruncate: return r.truncate().partition();
    case v1::LogRequest::kInfo: return r.info().partition();
    case v1::LogRequest::kSnapshot: return r.snapshot().partition();
    case v1::LogRequest::kTrim: return r.trim().partition();
    case v1::LogRequest::kGroup:  // served on the sender's stripe (handle())
    case v1::LogRequest::OP_NOT_SET: break;
  }
  return 0;
}

void put_info(v1::LogReply& out, const storage::SegmentInfo& info) {
  out.set_sealed(info.sealed);
  out.set_sealing_epoch(info.sealing_epoch);
  out.set_first_lsn(info.first_lsn);
  out.set_last_lsn(info.last_lsn);
  out.set_trimmed(info.trimmed);
}

void put_error(v1::LogReply& out, const Status& s) {
  out.set_code(s.code());
  out.set_message(s.message());
  if (auto lsn = storage::SegmentStore::expected_lsn(s)) out.set_expected_lsn(*lsn);
  if (auto epoch = storage::SegmentStore::sealing_epoch(s)) {
    out.set_sealed(true);
    out.set_sealing_epoch(*epoch);
  }
}

void put(v1::LogReply& out, const Result<storage::SegmentInfo>& r) {
  if (r.ok()) {
    put_info(out, r.value());
  } else {
    put_error(out, r.status());
  }
}

std::vector<std::string> batches_of(const google::protobuf::RepeatedPtrField<std::string>& in) {
  return std::vector<std::string>(in.begin(), in.end());
}

}  // namespace

Result<storage::SegmentInfo> LogServer::notice(uint32_t partition, uint64_t segment,
                                               uint64_t writer_epoch) {
  if (writer_epoch != segment) {
    return Status(StorageErrc::kSegmentWrongEpoch, "a commit notice of epoch " +
                                                       std::to_string(writer_epoch) +
                                                       " for segment " + std::to_string(segment));
  }
  auto info = segments_.info(partition, segment);
  if (!info.ok()) return info.status();
  if (info.value().sealed) {
    return Status(StorageErrc::kSegmentSealed,
                  "segment " + std::to_string(segment) + " of partition " +
                      std::to_string(partition) + " is sealed by epoch " +
                      std::to_string(info.value().sealing_epoch),
                  {{"/sealing_epoch", std::to_string(info.value().sealing_epoch)}});
  }
  return info;
}

void LogServer::serve_snapshot(const v1::LogSnapshot& r, v1::LogReply& out) {
  if (options_.snapshot_store == nullptr || !options_.partition_of) {
    put_error(out, Status(Errc::kUnavailable, "this node serves no snapshots"));
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  std::shared_ptr<SnapshotSession> session;
  uint64_t id = r.session();
  {
    std::lock_guard lock(snapshots_mu_);
    for (auto it = snapshots_.begin(); it != snapshots_.end();) {
      // An idle session's export is dropped (its pinned snapshot released).
      if (now - it->second->used > options_.snapshot_idle_timeout) {
        it = snapshots_.erase(it);
      } else {
        ++it;
      }
    }
    if (id == 0) {
      if (r.index() != 0) {
        put_error(out, Status(Errc::kInvalidArgument, "a new snapshot session starts at index 0"));
        return;
      }
      if (snapshots_.size() >= options_.max_snapshot_sessions) {
        put_error(out, Status(Errc::kUnavailable, "too many snapshot transfers at once"));
        return;
      }
    } else {
      auto it = snapshots_.find(id);
      if (it == snapshots_.end()) {
        put_error(out, Status(Errc::kNotFound,
                              "snapshot session " + std::to_string(id) + " is unknown or expired"));
        return;
      }
      session = it->second;
      session->used = now;  // under the lock: other stripes read it to evict
    }
  }
  if (session == nullptr) {
    // Opened outside the lock: it reads the applied marker from the store.
    auto exporter = storage::PartitionSnapshotExport::open(*options_.snapshot_store, r.partition(),
                                                           options_.partition_of);
    if (!exporter.ok()) {
      put_error(out, exporter.status());
      return;
    }
    session = std::make_shared<SnapshotSession>();
    session->exporter = std::move(exporter).value();
    session->used = now;
    std::lock_guard lock(snapshots_mu_);
    id = next_session_++;
    snapshots_[id] = session;
  }
  if (session->exporter->partition() != r.partition()) {
    put_error(out, Status(Errc::kInvalidArgument,
                          "snapshot session " + std::to_string(id) + " is of another partition"));
    return;
  }
  out.set_snapshot_session(id);
  if (session->next_index > 0 && r.index() + 1 == session->next_index) {
    out.set_snapshot_chunk(session->last_chunk);
    return;
  }
  if (r.index() != session->next_index) {
    put_error(out, Status(Errc::kInvalidArgument, "snapshot session " + std::to_string(id) +
                                                      " is at chunk " +
                                                      std::to_string(session->next_index) +
                                                      ", asked for " + std::to_string(r.index())));
    return;
  }
  const size_t limit = r.max_bytes() == 0
                           ? options_.max_read_bytes
                           : std::min<size_t>(r.max_bytes(), options_.max_read_bytes);
  auto chunk = session->exporter->next_chunk(limit);
  if (!chunk.ok() || !chunk->has_value()) {
    put_error(out, chunk.ok() ? Status(Errc::kInvalidArgument, "the snapshot has ended")
                              : chunk.status());
    return;
  }
  session->last_chunk = std::move(**chunk);
  ++session->next_index;
  out.set_snapshot_chunk(session->last_chunk);
}

LogServer::LogServer(storage::SegmentStore& segments, Options options)
    : segments_(segments), options_(options) {
  const size_t n = std::max<size_t>(1, options_.workers);
  for (size_t i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* w = workers_.back().get();
    w->thread = std::thread([this, w, i] {
      name_this_thread("y-logsrv-" + std::to_string(i));
      run(*w);
    });
  }
}

LogServer::~LogServer() {
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    w->stopping = true;
    w->cv.notify_one();
  }
  for (auto& w : workers_) w->thread.join();
}

void LogServer::handle(const std::string& from_node, std::string payload, Reply reply) {
  // Parsed here, once: the partition picks the worker.
  auto request = std::make_unique<v1::LogRequest>();
  if (!request->ParseFromString(payload) || request->op_case() == v1::LogRequest::OP_NOT_SET) {
    request.reset();
  }
  // A group holds many partitions: it goes to the stripe of the node that
  // sent it, so the groups of one sender stay in order (it sends the next
  // only after this one's reply anyway).
  const size_t stripe = !request ? 0
                        : request->op_case() == v1::LogRequest::kGroup
                            ? std::hash<std::string>{}(from_node)
                            : partition_of(*request);
  Worker& w = *workers_[stripe % workers_.size()];
  {
    std::lock_guard lock(w.mu);
    if (!w.stopping) {
      w.queue.push_back(Job{std::move(request), std::move(reply)});
      w.cv.notify_one();
      return;
    }
  }
  reply(Status(Errc::kUnavailable, "log server is stopping"));
}

void LogServer::run(Worker& w) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(w.mu);
      w.cv.wait(lock, [&] { return w.stopping || !w.queue.empty(); });
      if (w.stopping) {
        std::deque<Job> left = std::move(w.queue);
        lock.unlock();
        for (auto& j : left) j.reply(Status(Errc::kUnavailable, "log server is stopping"));
        return;
      }
      job = std::move(w.queue.front());
      w.queue.pop_front();
    }
    job.reply(serve(job.request.get()));
  }
}

void LogServer::finish_append(const v1::LogAppend& a, const Result<storage::SegmentInfo>& after,
                              v1::LogReply& out) {
  put(out, after);
  // The writer's commit point is the truth whatever our copy holds: a
  // notice to a replica that holds nothing of the segment yet (no batch
  // since the new leader opened it) still lets it apply what is committed
  // in earlier segments.
  const bool heard = after.ok() || (a.batches_size() == 0 && after.status().is(Errc::kNotFound));
  if (heard && options_.on_committed && a.committed_lsn() > 0) {
    options_.on_committed(a.partition(), a.segment(), a.committed_lsn());
  }
}

// The appends carrying batches go to the store together (one WriteBatch,
// one sync); everything else in the group is served alone, in order.
Result<std::string> LogServer::serve_group(const v1::LogGroup& group) {
  const int n = group.requests_size();
  std::vector<v1::LogRequest> requests(static_cast<size_t>(n));
  std::vector<v1::LogReply> replies(static_cast<size_t>(n));
  std::vector<std::vector<std::string>> batches;  // of the group's appends
  std::vector<storage::SegmentStore::GroupAppend> appends;
  std::vector<size_t> append_at;  // request index of appends[k]
  batches.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    v1::LogRequest& r = requests[static_cast<size_t>(i)];
    const std::string& bytes = group.requests(i);
    if (!r.ParseFromString(bytes) || r.op_case() == v1::LogRequest::OP_NOT_SET ||
        r.op_case() == v1::LogRequest::kGroup) {
      put_error(replies[static_cast<size_t>(i)],
                Status(Errc::kInvalidArgument,
                       "log server: request " + std::to_string(i) +
                           " of a group is not a LogRequest (or is a group itself)"));
      r.clear_op();
      continue;
    }
    if (r.op_case() != v1::LogRequest::kAppend || r.append().batches_size() == 0) continue;
    auto* a = r.mutable_append();
    batches.emplace_back(std::make_move_iterator(a->mutable_batches()->begin()),
                         std::make_move_iterator(a->mutable_batches()->end()));
    appends.push_back({a->partition(), a->segment(), a->first_lsn(),
                       std::span<const std::string>(batches.back()), a->writer_epoch()});
    append_at.push_back(static_cast<size_t>(i));
  }
  // `batches` no longer grows: the spans into it stay valid.
  auto written = segments_.append_group(appends);
  for (size_t k = 0; k < appends.size(); ++k) {
    const size_t i = append_at[k];
    // The moved-out batches still count for finish_append's notice test.
    finish_append(requests[i].append(), written[k], replies[i]);
  }
  std::vector<bool> done(static_cast<size_t>(n), false);
  for (size_t i : append_at) done[i] = true;
  v1::LogReply out;
  for (int i = 0; i < n; ++i) {
    const size_t at = static_cast<size_t>(i);
    if (!done[at] && requests[at].op_case() != v1::LogRequest::OP_NOT_SET) {
      auto one = serve(&requests[at]);
      if (!one.ok()) {
        put_error(replies[at], one.status());
      } else {
        replies[at].ParseFromString(one.value());
      }
    }
    out.add_replies(replies[at].SerializeAsString());
  }
  return out.SerializeAsString();
}

Result<std::string> LogServer::serve(std::string_view payload) {
  v1::LogRequest req;
  const bool parsed = req.ParseFromArray(payload.data(), static_cast<int>(payload.size())) &&
                      req.op_case() != v1::LogRequest::OP_NOT_SET;
  return serve(parsed ? &req : nullptr);
}

Result<std::string> LogServer::serve(const v1::LogRequest* request) {
  if (request == nullptr) {
    return Status(Errc::kInvalidArgument, "log server: the payload is not a LogRequest");
  }
  const v1::LogRequest& req = *request;
  v1::LogReply out;
  switch (req.op_case()) {
    case v1::LogRequest::kAppend: {
      const auto& a = req.append();
      Result<storage::SegmentInfo> after = Status(Errc::kInternalError, "");
      if (a.batches_size() == 0) {
        after = notice(a.partition(), a.segment(), a.writer_epoch());
      } else {
        const std::vector<std::string> batches = batches_of(a.batches());
        after = segments_.append(a.partition(), a.segment(), a.first_lsn(),
                                 std::span<const std::string>(batches), a.writer_epoch());
      }
      finish_append(a, after, out);
      break;
    }
    case v1::LogRequest::kGroup: return serve_group(req.group());
    case v1::LogRequest::kSnapshot: serve_snapshot(req.snapshot(), out); break;
    case v1::LogRequest::kSeal: {
      const auto& s = req.seal();
      put(out, segments_.seal(s.partition(), s.segment(), s.sealing_epoch()));
      break;
    }
    case v1::LogRequest::kRepair: {
      const auto& r = req.repair();
      if (r.batches_size() == 0) {
        put_error(out, Status(Errc::kInvalidArgument, "a repair needs at least one batch"));
        break;
      }
      const std::vector<std::string> batches = batches_of(r.batches());
      put(out, segments_.repair(r.partition(), r.segment(), r.first_lsn(),
                                std::span<const std::string>(batches), r.recovery_epoch()));
      break;
    }
    case v1::LogRequest::kRead: {
      const auto& r = req.read();
      const size_t max_bytes = r.max_bytes() == 0
                                   ? options_.max_read_bytes
                                   : std::min<size_t>(r.max_bytes(), options_.max_read_bytes);
      auto read = segments_.read(r.partition(), r.segment(), r.from_lsn(), r.to_lsn(), max_bytes);
      if (!read.ok()) {
        put_error(out, read.status());
        break;
      }
      auto info = segments_.info(r.partition(), r.segment());
      if (info.ok()) put_info(out, info.value());
      if (!read.value().empty()) out.set_from_lsn(read.value().front().lsn);
      for (auto& b : read.value()) out.add_batches(std::move(b.bytes));
      break;
    }
    case v1::LogRequest::kTruncate: {
      const auto& t = req.truncate();
      put(out, segments_.truncate_after(t.partition(), t.segment(), t.end()));
      break;
    }
    case v1::LogRequest::kTrim: {
      const auto& t = req.trim();
      // Sealed first: a copy that never heard the seal would refuse the
      // trim as open, yet the chain no longer holds the segment.
      auto sealed = segments_.seal(t.partition(), t.segment(), t.sealing_epoch());
      if (!sealed.ok()) {
        put_error(out, sealed.status());
        break;
      }
      put(out, segments_.trim(t.partition(), t.segment()));
      break;
    }
    case v1::LogRequest::kInfo: {
      const auto& i = req.info();
      put(out, segments_.info(i.partition(), i.segment()));
      break;
    }
    case v1::LogRequest::OP_NOT_SET: break;
  }
  return out.SerializeAsString();
}

}  // namespace yantra::cluster
