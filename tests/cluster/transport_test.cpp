// The cluster transport (cluster/transport.hpp) and PKI (cluster/pki.hpp)
// over real TLS sockets on 127.0.0.1. The node under test runs in its own
// process (transport_peer.cpp) so that kill -9 is real, attacks hit another
// process and its RSS is read from /proc; the test process is the client.
// Attacks use raw sockets (garbage, a BASP client handshake header claiming
// a 4 GiB payload) and a transport whose certificate comes from another CA.
// The Perf test prints the measured figures (connect, hello, 4 KB p50/p99).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/pki.hpp"
#include "cluster/transport.hpp"
#include "tests/support/process.hpp"

namespace yantra::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-cluster-key";
const std::string kOtherSecret = "fedcba9876543210fedcba9876543210-another-cluster";

// Temporary directories of this suite (tests/support/process.hpp).
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("yantra-transport") {}
};

void write_file(const std::string& path, const std::string& bytes, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  ::chmod(path.c_str(), mode);
}

// Polls `pred` until it holds or `limit` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// The answer, or (failing the test) the error's text in angle brackets.
std::string value_of(const Result<std::string>& r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : "<" + r.status().to_string() + ">";
}

// A transport_peer child, stopped by its pid only.
class Peer {
 public:
  Peer(const std::string& dir, const std::string& key_file, const std::string& node_id,
       uint16_t port = 0, uint32_t version = kProtocolVersion)
      : dir_(dir), key_file_(key_file), node_id_(node_id), version_(version) {
    start(port);
  }
  ~Peer() { kill(SIGKILL); }

  void start(uint16_t port) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const std::string port_s = std::to_string(port), version_s = std::to_string(version_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(YANTRA_TRANSPORT_PEER, YANTRA_TRANSPORT_PEER, "--secret-file", key_file_.c_str(),
              "--node-id", node_id_.c_str(), "--cluster", "test-cluster", "--dir", dir_.c_str(),
              "--port", port_s.c_str(), "--version", version_s.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
    // "READY <port>\n", within 10 s.
    std::string line;
    const auto end = Clock::now() + 10s;
    while (line.find('\n') == std::string::npos && Clock::now() < end) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    ASSERT_EQ(line.rfind("READY ", 0), 0u) << "peer did not start: '" << line << "'";
    port_ = static_cast<uint16_t>(std::stoul(line.substr(6)));
  }

  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  // SIGSTOP / SIGCONT: the process stays our child.
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // The state letter of /proc/<pid>/stat ('T' once stopped).
  char state() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
  }
  // Resident set size in bytes (VmRSS of /proc/<pid>/status).
  size_t rss() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string key;
    while (in >> key) {
      if (key == "VmRSS:") {
        size_t kb = 0;
        in >> kb;
        return kb * 1024;
      }
    }
    return 0;
  }
  uint16_t port() const { return port_; }
  const std::string& node_id() const { return node_id_; }

 private:
  std::string dir_, key_file_, node_id_;
  uint32_t version_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// Runs transport_peer as a client (--connect) and returns its stdout.
std::string run_client(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv{const_cast<char*>(YANTRA_TRANSPORT_PEER)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(YANTRA_TRANSPORT_PEER, argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  const auto end = Clock::now() + 20s;
  while (Clock::now() < end) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return out;
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = tmp_.sub("cluster.key");
    write_file(key_file_, kSecret + "\n", 0600);
  }

  std::unique_ptr<Transport> make(const std::string& node_id, const std::string& secret = kSecret,
                                  std::function<void(TransportOptions&)> tweak = {}) {
    auto files = issue_node_credentials(secret, node_id, tmp_.sub("tls-" + node_id));
    EXPECT_TRUE(files.ok()) << files.status().to_string();
    TransportOptions o;
    o.node_id = node_id;
    o.cluster_id = "test-cluster";
    o.secret = secret;
    o.tls = *files;
    if (tweak) tweak(o);
    auto t = Transport::create(o);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return t.ok() ? std::move(t).value() : nullptr;
  }

  std::unique_ptr<Peer> peer(const std::string& node_id, uint16_t port = 0,
                             uint32_t version = kProtocolVersion) {
    return std::make_unique<Peer>(tmp_.sub("peer-" + node_id), key_file_, node_id, port, version);
  }

  // A client process connecting to `port` expecting `expect`; its output.
  std::string client(const std::string& node_id, uint16_t port, const std::string& expect,
                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--secret-file", key_file_,
                                     "--node-id",     node_id,
                                     "--cluster",     "test-cluster",
                                     "--dir",         tmp_.sub("client-" + node_id),
                                     "--connect",     std::to_string(port),
                                     "--expect",      expect};
    for (auto& e : extra) args.push_back(e);
    return run_client(args);
  }

  TempDir tmp_;
  std::string key_file_;
};

// Raw TCP: connects to 127.0.0.1:port, sends `bytes`, and keeps the socket
// open for `hold` before closing it (as a slow attacker would).
void raw_send(uint16_t port, const std::string& bytes, std::chrono::milliseconds hold) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;  // the node closed the connection: fine
    done += static_cast<size_t>(n);
  }
  std::this_thread::sleep_for(hold);
  ::close(fd);
}

// CAF 0.17's BASP header (32 bytes, network byte order): operation,
// 2 padding bytes, flags, payload_len, operation_data, source and
// destination actor ids. Operation 0x01 is client_handshake. On a
// plaintext middleman port, payload_len 0xFFFFFFFF makes the node allocate
// 4 GiB before reading anything more (caf-remote-facts.md, section 6).
std::string basp_client_handshake(uint32_t payload_len) {
  std::string h(32, '\0');
  h[0] = 0x01;
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>((payload_len >> (24 - 8 * i)) & 0xff);
  h[15] = 0x01;  // operation_data: BASP version 1 (any value will do)
  return h;
}

// --- PKI ---------------------------------------------------------------------

TEST(PkiTest, DerivedCaIsByteIdenticalForOneSecretAndDiffersAcrossSecrets) {
  auto a = derive_ca_certificate_pem(kSecret);
  auto b = derive_ca_certificate_pem(kSecret);
  auto c = derive_ca_certificate_pem(kOtherSecret);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_NE(a->find("BEGIN CERTIFICATE"), std::string::npos);

  // Issued credentials carry the same CA (what another node derives).
  TempDir tmp;
  auto files = issue_node_credentials(kSecret, "n1", tmp.sub("tls"));
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  std::ifstream in(files->cafile);
  std::string ca((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(ca, *a);
}

TEST(PkiTest, ShortSecretIsRefusedWithAClearError) {
  auto r = derive_ca_certificate_pem(std::string(31, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is(TransportErrc::kInvalidClusterKey));
  EXPECT_NE(r.status().message().find("at least 32"), std::string::npos) << r.status().message();
  EXPECT_TRUE(derive_ca_certificate_pem(std::string(32, 'x')).ok());
}

TEST(PkiTest, KeyFileLosesOneTrailingNewlineAndMustBeOwnerOnly) {
  TempDir tmp;
  const std::string path = tmp.sub("key");
  write_file(path, kSecret + "\n\n", 0600);
  auto s = read_cluster_secret(path);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(*s, kSecret + "\n");  // one newline stripped, not two

  write_file(path, std::string(32, 'k') + "\n", 0600);
  EXPECT_TRUE(read_cluster_secret(path).ok());
  write_file(path, std::string(31, 'k') + "\n", 0600);  // 31 bytes once stripped
  EXPECT_TRUE(read_cluster_secret(path).status().is(TransportErrc::kInvalidClusterKey));

  write_file(path, kSecret, 0644);
  auto open = read_cluster_secret(path);
  ASSERT_FALSE(open.ok());
  EXPECT_TRUE(open.status().is(TransportErrc::kInvalidClusterKey));
  EXPECT_NE(open.status().message().find("0644"), std::string::npos);
  EXPECT_TRUE(
      read_cluster_secret(tmp.sub("missing")).status().is(TransportErrc::kInvalidClusterKey));
}

TEST(PkiTest, NodeCredentialsAreOwnerOnlyNameTheNodeAndVerify) {
  TempDir tmp;
  const std::string dir = tmp.sub("cluster-tls");
  auto files = issue_node_credentials(kSecret, "node-7", dir);
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& f : {files->cafile, files->certificate, files->key}) {
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  auto cn = certificate_common_name(files->certificate);
  ASSERT_TRUE(cn.ok());
  EXPECT_EQ(*cn, "node-7");
  EXPECT_TRUE(check_operator_credentials(*files).ok());

  // A fresh key at every issue: two nodes (or two starts) never share one.
  auto again = issue_node_credentials(kSecret, "node-8", tmp.sub("other"));
  ASSERT_TRUE(again.ok());
  std::ifstream k1(files->key), k2(again->key);
  EXPECT_NE(std::string((std::istreambuf_iterator<char>(k1)), {}),
            std::string((std::istreambuf_iterator<char>(k2)), {}));

  // Operator files that do not fit together are refused, naming the problem.
  auto foreign = issue_node_credentials(kOtherSecret, "node-7", tmp.sub("foreign"));
  ASSERT_TRUE(foreign.ok());
  auto wrong_ca = check_operator_credentials({foreign->cafile, files->certificate, files->key});
  ASSERT_FALSE(wrong_ca.ok());
  EXPECT_TRUE(wrong_ca.status().is(TransportErrc::kTlsSetupFailed));
  EXPECT_NE(wrong_ca.status().message().find("does not verify"), std::string::npos);
  auto wrong_key = check_operator_credentials({files->cafile, files->certificate, again->key});
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_NE(wrong_key.status().message().find("does not match"), std::string::npos);
  EXPECT_FALSE(issue_node_credentials(kSecret, "bad id/../", tmp.sub("x")).ok());
}

// --- Transport -----------------------------------------------------------------

TEST_F(TransportTest, TwoNodesExchangeRequestsAndTheRequesterIsAuthenticated) {
  auto b = peer("node-b");
  auto a = make("node-a");
  ASSERT_TRUE(a);
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();

  const std::string payload(4096, 'p');
  auto echo = a->call(*h, "echo", payload, 2s);
  ASSERT_TRUE(echo.ok()) << echo.status().to_string();
  EXPECT_EQ(*echo, payload);
  std::string binary("\0\x01\xff zero", 8);
  EXPECT_EQ(value_of(a->call(*h, "echo", binary, 2s)), binary);
  EXPECT_EQ(value_of(a->call(*h, "whoami", "", 2s)), "node-a");

  auto unknown = a->call(*h, "no-such-service", "", 2s);
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(unknown.status().is(TransportErrc::kUnknownService)) << unknown.status().to_string();

  // Many in flight at once, each answered with its own payload.
  std::mutex mu;
  std::vector<std::string> got;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(a->request(*h, "echo", std::to_string(i), 5s, [&](Result<std::string> r) {
                   std::lock_guard lk(mu);
                   got.push_back(r.ok() ? *r : r.status().to_string());
                 }).is_ok());
  }
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lk(mu);
        return got.size() == 100;
      },
      10s));
  std::sort(got.begin(), got.end());
  std::vector<std::string> want;
  for (int i = 0; i < 100; ++i) want.push_back(std::to_string(i));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(a->peer_stats("node-b")->unacked_bytes, 0u);
}

TEST_F(TransportTest, BothDirectionsInOneProcessPairAndTimeouts) {
  // Two transports (two actor systems) in this process, each listening.
  auto a = make("node-a");
  auto b = make("node-b");
  ASSERT_TRUE(a && b);
  b->handle("upper", [](const std::string& from, std::string p, Reply reply) {
    std::transform(p.begin(), p.end(), p.begin(), ::toupper);
    reply(from + ":" + p);
  });
  b->handle("fail", [](const std::string&, std::string, Reply reply) {
    reply(Status(Errc::kNotFound, "nothing here"));
  });
  b->handle("drop", [](const std::string&, std::string, Reply) {});
  b->handle("never", [](const std::string&, std::string, Reply reply) {
    std::thread([reply] { std::this_thread::sleep_for(1500ms); }).detach();
  });
  auto pb = b->listen("127.0.0.1", 0);
  ASSERT_TRUE(pb.ok()) << pb.status().to_string();
  auto h = a->connect("127.0.0.1", *pb, "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(value_of(a->call(*h, "upper", "abc", 2s)), "node-a:ABC");

  auto failed = a->call(*h, "fail", "", 2s);
  EXPECT_TRUE(failed.status().is(TransportErrc::kRemoteError));
  EXPECT_NE(failed.status().message().find("not_found: nothing here"), std::string::npos);
  auto dropped = a->call(*h, "drop", "", 2s);
  EXPECT_TRUE(dropped.status().is(TransportErrc::kRemoteError)) << dropped.status().to_string();

  const auto t0 = Clock::now();
  auto late = a->call(*h, "never", "", 200ms);
  EXPECT_TRUE(late.status().is(TransportErrc::kRequestTimeout)) << late.status().to_string();
  EXPECT_LT(Clock::now() - t0, 1000ms);

  // connect() and call() refuse to block a CAF scheduler thread.
  std::promise<Status> inside;
  ASSERT_TRUE(a->request(*h, "upper", "x", 2s, [&](Result<std::string>) {
                 inside.set_value(a->connect("127.0.0.1", *pb, "node-b").status());
               }).is_ok());
  auto st = inside.get_future().get();
  EXPECT_TRUE(st.is(Errc::kInvalidArgument)) << st.to_string();
}

// Refused hellos come from client processes (one transport per process, see
// transport_peer.cpp); the good client `a` stays connected throughout.
TEST_F(TransportTest, HelloRefusesWrongNodeWrongClusterWrongSecretAndOtherVersions) {
  auto b = peer("node-b");
  auto a = make("node-a");
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  const std::string port = std::to_string(b->port());

  // The peer is node-b; the caller expected node-c.
  auto wrong_id = a->connect("127.0.0.1", b->port(), "node-c");
  ASSERT_FALSE(wrong_id.ok());
  EXPECT_TRUE(wrong_id.status().is(TransportErrc::kWrongPeer)) << wrong_id.status().to_string();
  EXPECT_NE(wrong_id.status().message().find("is node 'node-b'"), std::string::npos);
  // Its own check: a good client process is served, as itself.
  EXPECT_EQ(client("node-g", b->port(), "node-b"), "CONNECT ok\nWHOAMI node-g\n");

  // Same key, other cluster id.
  auto out = client("node-x", b->port(), "node-b", {"--cluster", "other"});
  EXPECT_EQ(out.rfind("CONNECT wrong_peer: ", 0), 0u) << out;
  EXPECT_NE(out.find("belongs to cluster 'test-cluster'"), std::string::npos) << out;

  // Certificates of this cluster's CA (operator-given files) but another
  // secret: TLS passes, the hello's MAC does not.
  auto files = issue_node_credentials(kSecret, "node-m", tmp_.sub("tls-m"));
  ASSERT_TRUE(files.ok());
  const std::string other_key = tmp_.sub("other.key");
  write_file(other_key, kOtherSecret, 0600);
  out = client("node-m", b->port(), "node-b",
               {"--secret-file", other_key, "--operator-tls", tmp_.sub("tls-m")});
  EXPECT_EQ(out.rfind("CONNECT peer_authentication_failed: ", 0), 0u) << out;

  // A certificate of another CA (derived from another secret): TLS refuses.
  out = client("node-f", b->port(), "node-b", {"--secret-file", other_key});
  EXPECT_EQ(out.rfind("CONNECT peer_connect_failed: ", 0), 0u) << out;

  // Another protocol version: a clear refusal, not a timeout.
  const auto t0 = Clock::now();
  const std::string newer = std::to_string(kProtocolVersion + 1);
  out = client("node-v2", b->port(), "node-b", {"--version", newer});
  EXPECT_EQ(out.rfind("CONNECT incompatible_protocol_version: ", 0), 0u) << out;
  EXPECT_NE(
      out.find("protocol version " + std::to_string(kProtocolVersion) + ", this node " + newer),
      std::string::npos)
      << out;
  EXPECT_LT(Clock::now() - t0, 5s);  // a process start, TLS and one round trip
  // And this node refuses an older peer the same way (the peer plays v0).
  auto old_peer = peer("node-old", 0, 0);
  const auto t1 = Clock::now();
  auto o = a->connect("127.0.0.1", old_peer->port(), "node-old");
  EXPECT_TRUE(o.status().is(TransportErrc::kIncompatibleVersion)) << o.status().to_string();
  EXPECT_LT(Clock::now() - t1, 1s);

  // The node served its good peer all along.
  EXPECT_EQ(value_of(a->call(*h, "whoami", "", 2s)), "node-a");
  EXPECT_EQ(a->peer_stats("node-b")->connects, 1u);
}

TEST_F(TransportTest, GarbageBaspBombAndForeignCaDoNotDisturbTheNode) {
  auto b = peer("node-b");
  auto a = make("node-a");
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_TRUE(a->call(*h, "echo", "x", 2s).ok());
  const size_t rss_before = b->rss();

  // 64 KiB of random bytes.
  std::mt19937 rng(42);
  std::string garbage(64 * 1024, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  raw_send(b->port(), garbage, 100ms);
  // The 32-byte BASP client handshake claiming 4 GiB (aborts a plaintext
  // node), then one claiming 1 GiB followed by 1 MiB of bytes.
  raw_send(b->port(), basp_client_handshake(0xFFFFFFFFu), 300ms);
  raw_send(b->port(), basp_client_handshake(1u << 30) + std::string(1 << 20, 'A'), 300ms);
  // 20 idle connections held open while a good peer works.
  std::vector<std::thread> idle;
  for (int i = 0; i < 20; ++i) idle.emplace_back([&] { raw_send(b->port(), "", 500ms); });
  EXPECT_EQ(value_of(a->call(*h, "echo", std::string(4096, 'q'), 2s)), std::string(4096, 'q'));
  for (auto& t : idle) t.join();

  // A TLS client (another process) whose certificate comes from another CA.
  const std::string other_key = tmp_.sub("other.key");
  write_file(other_key, kOtherSecret, 0600);
  auto out = client("node-f", b->port(), "node-b", {"--secret-file", other_key});
  EXPECT_EQ(out.rfind("CONNECT peer_connect_failed: ", 0), 0u) << out;

  ASSERT_TRUE(b->alive());
  EXPECT_EQ(value_of(a->call(*h, "echo", "still here", 2s)), "still here");
  EXPECT_TRUE(a->peer_stats("node-b")->connected);
  EXPECT_EQ(a->peer_stats("node-b")->connects, 1u);  // the good link never dropped
  const size_t rss_after = b->rss();
  std::printf("[ figure ] peer RSS before attacks %zu KiB, after %zu KiB\n", rss_before / 1024,
              rss_after / 1024);
  EXPECT_LT(rss_after, rss_before + 32u * 1024 * 1024) << "the node's RSS jumped";
}

// CAF's openssl module runs the TLS handshake of an accepted connection on
// the multiplexer thread: a client that connects and sends nothing (or a
// few bytes of a ClientHello) must not stall every other connection.
TEST_F(TransportTest, AStalledHandshakeDoesNotStallTheNode) {
  auto b = peer("node-b");
  auto a = make("node-a");
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  std::thread idle([&] { raw_send(b->port(), "", 4000ms); });
  std::thread partial([&] { raw_send(b->port(), std::string("\x16\x03\x01", 3), 4000ms); });
  std::this_thread::sleep_for(300ms);  // let the node accept both
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    EXPECT_EQ(value_of(a->call(*h, "echo", "ping", 1s)), "ping");
    EXPECT_LT(Clock::now() - t0, 500ms);
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_TRUE(a->peer_stats("node-b")->connected);
  EXPECT_EQ(a->peer_stats("node-b")->connects, 1u);
  idle.join();
  partial.join();
}

TEST_F(TransportTest, Kill9IsDetectedPendingRequestsFailAndARestartReconnects) {
  auto b = peer("node-b");
  const uint16_t port = b->port();
  auto a = make("node-a");
  auto h = a->connect("127.0.0.1", port, "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();

  // A slow request in flight when the peer dies fails at once, not at its
  // (30 s) timeout.
  std::promise<Result<std::string>> pending;
  ASSERT_TRUE(a->request(*h, "hold", "x", 30s, [&](Result<std::string> r) {
                 pending.set_value(std::move(r));
               }).is_ok());
  const auto killed = Clock::now();
  b->kill(SIGKILL);
  auto fut = pending.get_future();
  ASSERT_EQ(fut.wait_for(3s), std::future_status::ready);
  auto r = fut.get();
  EXPECT_TRUE(r.status().is(TransportErrc::kPeerUnavailable)) << r.status().to_string();
  ASSERT_TRUE(eventually([&] { return !a->peer_stats("node-b")->connected; }, 3s));
  std::printf(
      "[ figure ] kill -9 detected after %lld ms\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count()));
  // While down: refused at once.
  auto down = a->request(*h, "echo", "x", 2s, [](Result<std::string>) {});
  EXPECT_TRUE(down.is(TransportErrc::kPeerUnavailable)) << down.to_string();

  // Restarted on the same port: the transport reconnects by itself.
  b->start(port);
  const auto restarted = Clock::now();
  ASSERT_TRUE(eventually([&] { return a->peer_stats("node-b")->connected; }, 5s));
  std::printf(
      "[ figure ] reconnected %lld ms after the restart was ready\n",
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted).count()));
  EXPECT_EQ(a->peer_stats("node-b")->connects, 2u);
  EXPECT_EQ(value_of(a->call(*h, "whoami", "", 2s)), "node-a");

  // And once more: the new link is monitored too.
  b->kill(SIGKILL);
  ASSERT_TRUE(eventually([&] { return !a->peer_stats("node-b")->connected; }, 3s));
  b->start(port);
  ASSERT_TRUE(eventually([&] { return a->peer_stats("node-b")->connected; }, 5s));
  EXPECT_EQ(value_of(a->call(*h, "echo", "again", 2s)), "again");
}

// Established TCP connections of this host to 127.0.0.1:port, client side
// (from /proc/net/tcp: remote address 0100007F:<port hex>, state 01).
int established_to(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  int n = 0;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (remote == want && state == "01") ++n;
  }
  return n;
}

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Without CAF's heartbeats a hung peer is never dropped and connecting to it
// blocks forever; a timeout shorter than two heartbeats drops healthy links.
TEST_F(TransportTest, CreateRefusesLivenessSettingsThatCannotDetectAHungPeer) {
  auto files = issue_node_credentials(kSecret, "node-a", tmp_.sub("tls-liveness"));
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  TransportOptions o;
  o.node_id = "node-a";
  o.cluster_id = "test-cluster";
  o.secret = kSecret;
  o.tls = *files;
  o.heartbeat_interval = 0ms;
  auto off = Transport::create(o);
  ASSERT_FALSE(off.ok());
  EXPECT_TRUE(off.status().is(Errc::kInvalidArgument)) << off.status().to_string();
  EXPECT_NE(off.status().message().find("heartbeat_interval > 0"), std::string::npos);
  o.heartbeat_interval = 500ms;
  o.connection_timeout = 900ms;
  EXPECT_TRUE(Transport::create(o).status().is(Errc::kInvalidArgument));
  o.connection_timeout = 1000ms;
  EXPECT_TRUE(Transport::create(o).ok());
}

// A peer that accepts TCP but never answers (SIGSTOP): CAF's heartbeats drop
// its link within connection_timeout + heartbeat_interval (defaults 2 s and
// 500 ms), which fails its pending requests; connect() to it fails within
// connection_timeout + heartbeat_interval (+ hello_timeout at worst); and
// another peer is served and reconnected meanwhile (each peer has its own
// reconnect thread). After SIGCONT the link comes back by itself.
TEST_F(TransportTest, AHungPeerIsDroppedInBoundedTimeWhileAnotherIsServedAndReconnected) {
  auto b = peer("node-b");
  auto c = peer("node-c");
  const uint16_t c_port = c->port();
  auto a = make("node-a");
  auto hb = a->connect("127.0.0.1", b->port(), "node-b");
  auto hc = a->connect("127.0.0.1", c_port, "node-c");
  ASSERT_TRUE(hb.ok()) << hb.status().to_string();
  ASSERT_TRUE(hc.ok()) << hc.status().to_string();
  const TransportOptions defaults;
  const auto drop_bound = defaults.connection_timeout + defaults.heartbeat_interval + 1000ms;

  // c is called every 20 ms from another thread during the whole hang.
  std::atomic<bool> calling{true};
  std::atomic<int> c_calls{0}, c_failures{0};
  std::atomic<long long> c_max_ms{0};
  std::string c_first_failure;
  std::thread caller([&] {
    while (calling) {
      const auto t0 = Clock::now();
      auto r = a->call(*hc, "echo", "c", 2s);
      const long long took = ms_since(t0);
      c_max_ms = std::max(c_max_ms.load(), took);
      ++c_calls;
      if (!r.ok() && c_failures++ == 0) c_first_failure = r.status().to_string();
      std::this_thread::sleep_for(20ms);
    }
  });

  b->signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return b->state() == 'T'; }, 2s));
  const auto stopped = Clock::now();
  // Sent after the stop: never answered; CAF alone would keep it to its
  // 30 s timeout.
  std::promise<Result<std::string>> pending;
  ASSERT_TRUE(a->request(*hb, "echo", "lost", 30s, [&](Result<std::string> r) {
                 pending.set_value(std::move(r));
               }).is_ok());
  auto fut = pending.get_future();
  ASSERT_EQ(fut.wait_for(drop_bound), std::future_status::ready)
      << "the request to the hung peer did not fail within " << drop_bound.count() << " ms";
  auto lost = fut.get();
  EXPECT_TRUE(lost.status().is(TransportErrc::kPeerUnavailable)) << lost.status().to_string();
  const long long dropped_ms = ms_since(stopped);
  EXPECT_FALSE(a->peer_stats("node-b")->connected);
  std::printf("[ figure ] SIGSTOPped peer dropped (its pending request failed) after %lld ms\n",
              dropped_ms);
  EXPECT_GE(dropped_ms, defaults.connection_timeout.count() - 100);  // not sooner than the timeout

  // connect() to the hung peer returns an error within its bound.
  const auto t_connect = Clock::now();
  auto again = a->connect("127.0.0.1", b->port(), "node-b");
  const long long connect_ms = ms_since(t_connect);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(again.status().is(TransportErrc::kConnectFailed)) << again.status().to_string();
  EXPECT_LT(connect_ms,
            (defaults.connection_timeout + defaults.heartbeat_interval + 1000ms).count());
  std::printf("[ figure ] connect() to the SIGSTOPped peer failed after %lld ms: %s\n", connect_ms,
              again.status().to_string().c_str());
  // The failed attempts (connect() and the reconnect thread's, one every
  // ~2 s) left no connection behind: libcaf_openssl never closes a TLS
  // connection whose handshake is pending, so one handed to CAF would stay
  // (and keep its multiplexer busy) until the peer resumes. At most the
  // attempt under way now is open.
  EXPECT_LE(established_to(b->port()), 1);

  calling = false;
  caller.join();
  EXPECT_EQ(c_failures, 0) << c_first_failure;
  EXPECT_GT(c_calls, 20);
  EXPECT_LT(c_max_ms, 1000) << "a call to the healthy peer waited on the hung one";
  std::printf("[ figure ] healthy peer during the hang: %d calls, slowest %lld ms\n",
              c_calls.load(), c_max_ms.load());

  // c dies and restarts while b is still hung: it is reconnected by itself.
  c->kill(SIGKILL);
  ASSERT_TRUE(eventually([&] { return !a->peer_stats("node-c")->connected; }, 3s));
  c->start(c_port);
  const auto restarted = Clock::now();
  ASSERT_TRUE(eventually([&] { return a->peer_stats("node-c")->connected; }, 3s))
      << "the healthy peer was not reconnected while another one hangs";
  std::printf("[ figure ] healthy peer reconnected %lld ms after its restart (other peer hung)\n",
              ms_since(restarted));
  EXPECT_EQ(value_of(a->call(*hc, "whoami", "", 2s)), "node-a");
  EXPECT_EQ(a->peer_stats("node-c")->connects, 2u);
  EXPECT_FALSE(a->peer_stats("node-b")->connected);

  // SIGCONT: the hung peer's link comes back by itself.
  b->signal(SIGCONT);
  const auto resumed = Clock::now();
  ASSERT_TRUE(eventually([&] { return a->peer_stats("node-b")->connected; }, 5s));
  std::printf("[ figure ] resumed peer reconnected after %lld ms\n", ms_since(resumed));
  EXPECT_EQ(value_of(a->call(*hb, "echo", "back", 2s)), "back");
  EXPECT_EQ(a->peer_stats("node-b")->connects, 2u);
}

TEST_F(TransportTest, RequestsBeyondTheUnackedBoundFailFast) {
  auto b = peer("node-b");
  auto a = make("node-a", kSecret, [](TransportOptions& o) { o.max_unacked_bytes = 64 * 1024; });
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok()) << h.status().to_string();

  std::atomic<int> ok{0};
  const std::string chunk(16 * 1024, 'c');
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(a->request(*h, "hold", chunk, 5s, [&](Result<std::string> r) {
                   if (r.ok() && *r == std::to_string(16 * 1024)) ++ok;
                 }).is_ok());
  }
  EXPECT_EQ(a->peer_stats("node-b")->unacked_bytes, 64u * 1024);
  const auto t0 = Clock::now();
  Status over = a->request(*h, "hold", "1", 5s, [](Result<std::string>) { ADD_FAILURE(); });
  EXPECT_LT(Clock::now() - t0, 50ms);
  EXPECT_TRUE(over.is(TransportErrc::kBackpressure)) << over.to_string();
  // Once answered, the window is free again.
  ASSERT_TRUE(eventually([&] { return ok == 4; }, 5s));
  EXPECT_EQ(a->peer_stats("node-b")->unacked_bytes, 0u);
  EXPECT_TRUE(a->call(*h, "echo", chunk, 2s).ok());
}

// Prints the figures for the issue: TLS connect (Ed25519) and hello time,
// and the round trip of a 4 KB request, one in flight.
TEST_F(TransportTest, Perf) {
  auto b = peer("node-b");
  std::vector<double> tls_ms, hello_ms;
  for (int i = 0; i < 5; ++i) {
    auto a = make("node-p" + std::to_string(i));
    auto h = a->connect("127.0.0.1", b->port(), "node-b");
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    auto s = a->peer_stats("node-b");
    tls_ms.push_back(s->tls_connect_time.count() / 1000.0);
    hello_ms.push_back(s->hello_time.count() / 1000.0);
  }
  std::sort(tls_ms.begin(), tls_ms.end());
  std::sort(hello_ms.begin(), hello_ms.end());
  std::printf("[ figure ] Ed25519 mutual TLS remote_actor: median %.2f ms (min %.2f, max %.2f)\n",
              tls_ms[2], tls_ms[0], tls_ms[4]);
  std::printf("[ figure ] hello (2 round trips + HMACs): median %.2f ms (min %.2f, max %.2f)\n",
              hello_ms[2], hello_ms[0], hello_ms[4]);

  auto a = make("node-a");
  auto h = a->connect("127.0.0.1", b->port(), "node-b");
  ASSERT_TRUE(h.ok());
  const std::string payload(4096, 'x');
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a->call(*h, "echo", payload, 2s).ok());  // warm up
  std::vector<double> us;
  for (int i = 0; i < 2000; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(a->call(*h, "echo", payload, 2s).ok());
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf(
      "[ figure ] 4 KB echo over TLS, 1 in flight, 2000 samples: p50 %.0f us, p99 %.0f us\n",
      us[us.size() / 2], us[us.size() * 99 / 100]);
}

}  // namespace
}  // namespace yantra::cluster
