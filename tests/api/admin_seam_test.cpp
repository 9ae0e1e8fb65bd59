// The admin seam under a disk whose fsyncs hang: an engine and the HTTP
// front door in-process, on a fault-injecting file system
// (tests/support/fault_fs.hpp) that parks every Sync, with ONE HTTP I/O
// thread. An admin write (a flow version, a secret) must then be pending
// while /healthz and reads (a flow, the execution list) on the same server
// answer at once; when the syncs are released the write answers.
//
// Why one I/O thread: it makes the old failure observable. Before the admin
// seam (actors/admin.hpp) the route handler ran the synced RocksDB write
// itself, so the parked fsync held the only I/O thread and every other
// request on the server waited for it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "api/app.hpp"
#include "api/http_server.hpp"
#include "tests/e2e/wire.hpp"
#include "tests/support/fault_fs.hpp"
#include "tests/test_util.hpp"

namespace yantra {
namespace {

using e2e::Api;
using e2e::Conn;
using e2e::json;
using e2e::Reply;
using namespace std::chrono_literals;

constexpr char kKey[] = "yk_admin_seam_test_owner_key_0123456789";

class AdminSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<testing::FaultFs>();
    EngineOptions options;
    options.data_dir = dir_.str();
    options.partitions = 1;
    options.scheduler_threads = 2;
    options.master_key = std::string(32, 'k');
    options.file_system = fs_;
    auto engine = Engine::open(options);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    engine_ = std::move(engine.value());
    for (int i = 0; i < 500 && !engine_->ready(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(engine_->ready());
    admin_ = make_local_admin(*engine_, 1);
    app_ = std::make_unique<api::ApiApp>(*engine_, *admin_);
    ASSERT_TRUE(app_->auth().bootstrap(dir_.str(), kKey).ok());
    api::HttpServerOptions server_options;
    server_options.port = 0;
    server_options.io_threads = 1;  // see the comment at the top
    auto server = api::HttpServer::start(
        server_options,
        [this](api::HttpRequest req, api::Responder respond) {
          app_->handle(std::move(req), std::move(respond));
        },
        [](const Status& status) { return api::error_response(status); });
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    server_ = std::move(server.value());
    app_->set_server(server_.get());
    api_ = std::make_unique<Api>(server_->port(), kKey);
  }

  void TearDown() override {
    if (fs_) fs_->release_syncs();
    if (app_) app_->set_server(nullptr);
    if (server_) server_->stop();
    admin_.reset();
    engine_.reset();
  }

  // Waits until every audit record appended so far is written, so that the
  // only sync parked later is the one of the write under test.
  void settle_audit() {
    std::promise<bool> done;
    admin_->audit_verify("default",
                         [&done](Result<AuditVerifyReport> r) { done.set_value(r.ok()); });
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
    ASSERT_TRUE(f.get());
  }

  // Sends `request` on its own connection while every fsync is parked and
  // checks that the server keeps answering; returns the write's reply once
  // the syncs are released.
  Reply write_while_fsync_hangs(const std::string& request) {
    settle_audit();
    fs_->block_syncs();
    Conn writer(server_->port());
    EXPECT_TRUE(writer.connected());
    writer.send(request);
    // The write reached the disk and its fsync is parked.
    EXPECT_TRUE(fs_->wait_blocked(1, 10s)) << "the admin write never synced";

    // Meanwhile the same server (one I/O thread) answers promptly.
    const auto t0 = std::chrono::steady_clock::now();
    Reply health = e2e::http_request(server_->port(), "GET", "/healthz", "", {}, 2s);
    EXPECT_EQ(health.status, 200) << health.describe();
    Reply flow = api_->request("GET", "/api/v1/flows/seam", "", {}, 2s);
    EXPECT_EQ(flow.status, 200) << flow.describe();
    if (flow.status == 200) {
      EXPECT_EQ(flow.doc().value("version", 0), 1) << flow.describe();
    }
    Reply listed = api_->request("GET", "/api/v1/executions", "", {}, 2s);
    EXPECT_EQ(listed.status, 200) << listed.describe();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

    // The write itself is still pending: its fsync has not returned.
    Reply early = writer.read_reply(200ms);
    EXPECT_EQ(early.status, 0) << "answered before its fsync: " << early.describe();
    EXPECT_GE(fs_->blocked(), 1u);

    fs_->release_syncs();
    return writer.read_reply(15s);
  }

  testing::TempDir dir_;
  std::shared_ptr<testing::FaultFs> fs_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<api::ApiApp> app_;
  std::unique_ptr<api::HttpServer> server_;
  std::unique_ptr<Api> api_;
};

json seam_flow(const std::string& note) {
  return {{"id", "seam"},
          {"description", note},
          {"steps", json::array({{{"id", "a"},
                                  {"type", "action"},
                                  {"config", {{"tool_id", "core"}, {"action", "echo"}}}}})}};
}

std::string authed(const std::string& method, const std::string& target, const json& body) {
  return e2e::build_request(
      method, target, body.dump(),
      {{"Authorization", std::string("Bearer ") + kKey}, {"Content-Type", "application/json"}});
}

TEST_F(AdminSeamTest, FlowVersionWaitsForItsFsyncWhileReadsAnswer) {
  Reply created = api_->put("/api/v1/flows/seam", seam_flow("first"));
  ASSERT_EQ(created.status, 201) << created.describe();

  Reply updated = write_while_fsync_hangs(authed("PUT", "/api/v1/flows/seam", seam_flow("second")));
  ASSERT_EQ(updated.status, 200) << updated.describe();
  EXPECT_EQ(updated.doc().value("version", 0), 2) << updated.describe();
  Reply latest = api_->get("/api/v1/flows/seam");
  EXPECT_EQ(latest.doc().value("version", 0), 2) << latest.describe();
}

TEST_F(AdminSeamTest, SecretWaitsForItsFsyncWhileReadsAnswer) {
  Reply created = api_->put("/api/v1/flows/seam", seam_flow("first"));
  ASSERT_EQ(created.status, 201) << created.describe();

  Reply stored =
      write_while_fsync_hangs(authed("PUT", "/api/v1/secrets/TOKEN", {{"value", "s3cret"}}));
  ASSERT_EQ(stored.status, 201) << stored.describe();
  EXPECT_EQ(stored.doc().value("version", 0), 1) << stored.describe();
  Reply listed = api_->get("/api/v1/secrets");
  ASSERT_EQ(listed.status, 200) << listed.describe();
  EXPECT_EQ(listed.doc()["secrets"].size(), 1u) << listed.describe();
}

}  // namespace
}  // namespace yantra
