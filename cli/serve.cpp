// Configuration precedence: defaults < --config file < YANTRA_* environment
// < flags. Shutdown signals are blocked in every thread and taken with
// sigwait() by the main thread, so no handler runs in async-signal context.
//
// Files are owner-only (harden_data_dir): a umask of 077 for the whole
// process is the one setting that also covers the files RocksDB creates
// (it opens them with 0644), and an existing data dir is narrowed at start,
// so a store made by an older version gets the same protection. The owner
// key made at first start goes to <data>/bootstrap-key (0600) and only that
// path is printed, unless --print-bootstrap-key asks for the key itself:
// stdout usually ends up in a log shipper.
#include "cli/serve.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "actors/admin.hpp"
#include "actors/engine.hpp"
#include "actors/http_tool.hpp"
#include "actors/script_tool.hpp"
#include "api/app.hpp"
#include "api/errors.hpp"
#include "base/host_port.hpp"
#include "base/storage_errc.hpp"
#include "cli/cluster_side.hpp"
#include "cluster/errc.hpp"
#include "config/node_config.hpp"
#include "storage/log_writer.hpp"
#include "storage/store.hpp"
#include "storage/vault.hpp"

extern char** environ;

namespace yantra::cli {
namespace {

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

// A damaged write-ahead log: the node will not start, and restarting it
// will not help. The operator gets the damage and the ways out.
void print_damaged_data(const std::string& data_dir, const Status& status) {
  std::cerr << "yantra: REFUSING TO START: " << status.message() << "\n"
            << "Starting would silently lose acknowledged work. Options:\n"
            << "  1. Restore " << data_dir << " from a backup taken before the damage.\n"
            << "  2. Accept the loss: start once with --accept-data-loss (config\n"
            << "     accept_data_loss: true, or YANTRA_ACCEPT_DATA_LOSS=1). The node recovers\n"
            << "     to the last consistent point before the damage and drops every write\n"
            << "     after it; copies of the write-ahead log files as found are kept in\n"
            << "     " << (std::filesystem::path(data_dir) / "lost+found").string()
            << "/, what was dropped is logged,\n"
            << "     and the metric yantra_storage_recovered_with_data_loss reads 1.\n"
            << "     Remove the flag again afterwards.\n"
            << "See docs/operations.md, \"Damaged write-ahead log\".\n";
}

}  // namespace

void harden_data_dir(const std::string& data_dir) {
  ::umask(077);
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) return;  // created later, under the umask
  size_t narrowed = 0;
  size_t failed = 0;
  auto narrow = [&](const fs::path& p) {
    std::error_code e;
    const fs::file_status st = fs::symlink_status(p, e);
    if (e || fs::is_symlink(st)) return;  // links are not followed
    const fs::perms wide = fs::perms::group_all | fs::perms::others_all;
    if ((st.permissions() & wide) == fs::perms::none) return;
    fs::permissions(p, wide, fs::perm_options::remove, e);
    ++(e ? failed : narrowed);
  };
  const auto before = fs::status(data_dir, ec).permissions();
  narrow(data_dir);
  for (fs::recursive_directory_iterator it(data_dir, ec), end; !ec && it != end; it.increment(ec)) {
    narrow(it->path());
  }
  if (narrowed > 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(before) & 07777);
    std::cerr << "yantra: warning: " << data_dir << " (mode " << mode << ") or files in it "
              << "were readable by others; narrowed " << narrowed
              << " entries to owner-only (0700 / 0600)\n";
  }
  if (failed > 0 || ec) {
    std::cerr << "yantra: warning: could not make everything in " << data_dir << " owner-only ("
              << failed << " entries left as they were"
              << (ec ? "; " + ec.message() : std::string()) << ")\n";
  }
}

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int run_serve(const ServeFlags& flags) {
  NodeConfig config;
  if (!flags.config_file.empty()) {
    auto c = load_config_file(flags.config_file, config);
    if (!c.ok()) {
      std::cerr << "yantra: " << c.status().message() << "\n";
      return 2;
    }
    config = c.value();
  }
  const auto env = environment();
  auto c = apply_env(config, env);
  if (!c.ok()) {
    std::cerr << "yantra: " << c.status().message() << "\n";
    return 2;
  }
  config = c.value();
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.master_key_file.empty()) config.master_key_file = flags.master_key_file;
  if (flags.max_connections_per_address >= 0) {
    // Above UINT32_MAX saturates: validate() reports it as out of range.
    config.max_connections_per_address =
        static_cast<uint32_t>(std::min<int64_t>(flags.max_connections_per_address, UINT32_MAX));
  }
  if (flags.accept_data_loss) config.accept_data_loss = true;
  if (!flags.min_free_disk_mb.empty()) {
    auto f = apply_flag(config, "min_free_disk_mb", flags.min_free_disk_mb, "--min-free-disk-mb");
    if (!f.ok()) {
      std::cerr << "yantra: " << f.status().message() << "\n";
      return 2;
    }
    config = f.value();
  }
  for (const auto& [key, value] : flags.cluster) {
    std::string flag = key == "etcd_prefix" ? "prefix" : key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    auto f = apply_flag(config, key, value, "--" + flag);
    if (!f.ok()) {
      std::cerr << "yantra: " << f.status().message() << "\n";
      return 2;
    }
    config = f.value();
  }
  Status valid = validate(config);
  if (!valid.is_ok()) {
    for (const auto& p : valid.details())
      std::cerr << "yantra: config " << p.path << ": " << p.message << "\n";
    return 2;
  }
  std::string host;
  uint16_t port = 0;
  if (auto hp = parse_host_port(config.listen, /*allow_port_zero=*/true); hp.ok()) {
    host = hp->host;
    port = hp->port;
  } else {
    std::cerr << "yantra: --listen: " << hp.status().message() << "\n";
    return 2;
  }

  HttpToolOptions http_options;
  http_options.ca_file = config.http_ca_file;
  http_options.max_concurrency = config.http_tool_concurrency;
  Status http_ok = check_http_tool_options(http_options);
  if (!http_ok.is_ok()) {
    std::cerr << "yantra: http tool: " << http_ok.message() << "\n";
    return 2;
  }

  // No master key, no node: storing secrets in plaintext is not an option.
  Result<std::string> master_key = Status(StorageErrc::kInvalidMasterKey, "");
  if (const char* env_key = std::getenv("YANTRA_MASTER_KEY"); env_key != nullptr) {
    master_key = storage::parse_master_key(env_key);
    if (!master_key.ok()) {
      std::cerr << "yantra: YANTRA_MASTER_KEY: " << master_key.status().message() << "\n";
      return 2;
    }
  } else if (!config.master_key_file.empty()) {
    master_key = storage::read_master_key_file(config.master_key_file);
    if (!master_key.ok()) {
      std::cerr << "yantra: master key file: " << master_key.status().message() << "\n";
      return 2;
    }
  } else {
    std::cerr << "yantra: no master key: set YANTRA_MASTER_KEY or master_key_file "
                 "(--master-key-file); create one with\n  (umask 077; openssl rand -hex 32 > "
                 "master.key)\nThe node refuses to start rather than store secrets unencrypted.\n";
    return 2;
  }

  harden_data_dir(config.data_dir);
  // A cluster node (--etcd): etcd reachable and the cluster created there
  // before anything is opened (cli/cluster_side.hpp has the order).
  std::unique_ptr<ClusterSide> cluster;
  if (config.clustered()) {
    auto joined = ClusterSide::connect(config, YANTRA_VERSION);
    if (!joined.ok()) {
      std::cerr << "yantra: cluster: " << joined.status().to_string() << "\n";
      return joined.status().is(ClusterErrc::kInvalidRecord) ? 2 : 1;
    }
    cluster = std::move(joined.value());
  }
  EngineOptions options;
  options.master_key = master_key.value();
  options.data_dir = config.data_dir;
  options.min_free_disk_bytes = static_cast<uint64_t>(config.min_free_disk_mb) << 20;
  options.partitions = config.partitions;
  options.durability = config.durability == "async" ? Durability::kAsync : Durability::kSync;
  // Today's single-node implementations behind the engine's seams: a local
  // LogWriter per partition (the admin seam is wired below, over the engine).
  options.partition_logs = std::make_shared<storage::LocalPartitionLogs>();
  options.scheduler_threads = config.scheduler_threads;
  options.core_tool_concurrency = config.core_tool_concurrency;
  options.snapshot_every = config.snapshot_every;
  options.retention_ms = static_cast<int64_t>(config.retention_days) * 24 * 3600 * 1000;
  options.tools.push_back(make_http_tool(http_options));
  ScriptToolOptions script_options;
  script_options.concurrency = config.script_concurrency;
  script_options.max_timeout_ms = config.script_max_timeout_ms;
  script_options.memory_bytes = static_cast<size_t>(config.script_memory_mb) << 20;
  options.tools.push_back(make_script_tool(script_options));
  options.accept_data_loss = config.accept_data_loss;
  if (cluster) cluster->engine_options(options);
  // Executions are recovered once the API has installed the tenant tools
  // that registrations bring (recover() below): a recovered call to a
  // worker or MCP tool must find it.
  options.defer_recovery = true;
  auto engine = Engine::open(options);
  if (!engine.ok() && engine.status().is(StorageErrc::kCorrupt)) {
    print_damaged_data(config.data_dir, engine.status());
    return 4;
  }
  if (!engine.ok()) {
    std::cerr << "yantra: cannot open the engine: " << engine.status().to_string() << "\n";
    return 1;
  }

  // The single-node admin seam: flow, key, tenant, secret and webhook
  // writes run on its pool, never on an HTTP I/O thread.
  // In a cluster the same seam writes through etcd (cluster/resources.hpp).
  std::unique_ptr<Admin> admin;
  if (cluster) {
    auto made = cluster->make_admin(*engine.value());
    if (!made.ok()) {
      std::cerr << "yantra: cluster: " << made.status().to_string() << "\n";
      return 1;
    }
    admin = std::move(made.value());
  } else {
    admin = make_local_admin(*engine.value());
  }
  api::ApiApp app(*engine.value(), *admin);
  app.set_max_runs_in_flight(config.max_runs_in_flight);
  app.auth().set_operator_key(config.operator_key);
  if (cluster) cluster->attach(app);
  engine.value()->recover();
  const char* preset = std::getenv("YANTRA_BOOTSTRAP_KEY");
  auto secret = cluster ? cluster->bootstrap(*engine.value(), config.data_dir, preset ? preset : "")
                        : app.auth().bootstrap(config.data_dir, preset ? preset : "");
  if (!secret.ok()) {
    std::cerr << "yantra: bootstrap key: " << secret.status().to_string() << "\n";
    return 1;
  }
  if (!secret.value().empty() && preset == nullptr) {
    const std::string key_file =
        (std::filesystem::path(config.data_dir) / "bootstrap-key").string();
    if (flags.print_bootstrap_key) {
      std::cout << "Created tenant 'default' with an owner API key (also in " << key_file
                << "):\n  " << secret.value() << "\n";
    } else {
      std::cout << "Created tenant 'default' with an owner API key in " << key_file
                << " (mode 0600; --print-bootstrap-key prints it)\n";
    }
  }

  if (cluster) {
    Status joined = cluster->start(*engine.value());
    if (!joined.is_ok()) {
      std::cerr << "yantra: cluster: " << joined.to_string() << "\n";
      return 1;
    }
  }

  api::HttpServerOptions server_options;
  server_options.host = host;
  server_options.port = port;
  server_options.io_threads = config.http_threads;
  server_options.max_connections_per_address = config.max_connections_per_address;
  auto server = api::HttpServer::start(
      server_options,
      [&app](api::HttpRequest req, api::Responder respond) {
        app.handle(std::move(req), std::move(respond));
      },
      [](const Status& error) { return api::error_response(error); });
  if (!server.ok()) {
    std::cerr << "yantra: " << server.status().message() << "\n";
    return 1;
  }
  app.set_server(server.value().get());
  std::cout << "yantra listening on http://" << config.listen.substr(0, config.listen.rfind(':'))
            << ":" << server.value()->port() << " (data: " << config.data_dir << ")" << std::endl;

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  std::cout << "yantra: shutting down (" << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ")"
            << std::endl;
  app.set_server(nullptr);
  server.value()->stop();
  // Leaves the cluster first (leader keys deleted: failover at once), then
  // the admin (waits on the mirror), then the mirror.
  if (cluster) cluster->stop();
  admin.reset();  // finishes queued admin writes; before the engine it uses
  if (cluster) cluster->stop_mirror();
  {
    // Worker tool calls hold tool threads until a worker answers, and the
    // engine joins those threads. Released a moment after the engine began
    // stopping, when its tool pools are gone, so that the released calls'
    // "node_shutting_down" is recorded nowhere: the steps run again after
    // the restart (docs/tools.md "Tool workers").
    std::thread release([&app] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      app.stop_workers();
    });
    engine.value().reset();
    release.join();
  }
  std::cout << "yantra: stopped" << std::endl;
  return 0;
}

int run_rotate_master_key(const RotateFlags& flags) {
  harden_data_dir(flags.data_dir);
  auto old_key = storage::read_master_key_file(flags.old_key_file);
  if (!old_key.ok()) {
    std::cerr << "yantra: old key: " << old_key.status().message() << "\n";
    return 2;
  }
  auto new_key = storage::read_master_key_file(flags.new_key_file);
  if (!new_key.ok()) {
    std::cerr << "yantra: new key: " << new_key.status().message() << "\n";
    return 2;
  }
  auto store = storage::Store::open(storage::StoreOptions{flags.data_dir});
  if (!store.ok()) {
    std::cerr << "yantra: cannot open " << flags.data_dir << ": " << store.status().to_string()
              << " (is a node still running on it?)\n";
    return 1;
  }
  Status s = storage::Vault::rotate_master_key(*store.value(), old_key.value(), new_key.value());
  if (!s.is_ok()) {
    std::cerr << "yantra: rotation failed: " << s.to_string() << "\n";
    return 1;
  }
  std::cout << "Re-wrapped every tenant key under the new master key; start the node with it.\n";
  return 0;
}

}  // namespace yantra::cli
