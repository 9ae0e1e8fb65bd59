// MCP's stdio transport: the server is a child process; newline-delimited
// JSON-RPC messages on its stdin (ours) and stdout (its), its stderr a log
// that we drain (so a chatty server never blocks on a full pipe) and keep the
// last line of, for error messages. No session: a running child is one.
//
// Threads: a reader thread per child parses stdout lines — responses go to
// the Matcher (jsonrpc.hpp) that the requesting threads wait on,
// notifications to the sink, server requests get an answer (`ping` an empty
// result, anything else "method not found": this client offers no sampling,
// roots or elicitation) — and a drain thread reads stderr. When stdout ends
// (the child exited or was killed) every waiter fails with kUnavailable and
// the transport is dead until reset()+open() spawn a new child, which the
// client's next handshake does: that is the restart.
//
// Writes happen with SIGPIPE blocked on the writing thread (a child that
// died must not kill the node), the pending signal consumed afterwards.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/errc.hpp"
#include "base/thread_name.hpp"
#include "mcp/transport.hpp"

extern char** environ;

namespace yantra::mcp {
namespace {

constexpr size_t kMaxLine = 64u << 20;

// Writes all of `data` to fd with SIGPIPE blocked on this thread.
bool write_all(int fd, const std::string& data) {
  sigset_t pipe_mask, old_mask;
  sigemptyset(&pipe_mask);
  sigaddset(&pipe_mask, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_mask, &old_mask);
  bool ok = true;
  bool got_epipe = false;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      got_epipe = errno == EPIPE;
      ok = false;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (got_epipe && !sigismember(&old_mask, SIGPIPE)) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_mask, nullptr, &zero) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return ok;
}

class StdioTransport final : public Transport {
 public:
  explicit StdioTransport(StdioTarget target) : target_(std::move(target)) {}
  ~StdioTransport() override { reset(); }

  Status open(Clock::time_point /*deadline*/) override {
    std::lock_guard<std::mutex> lock(life_mu_);
    if (pid_ > 0 && alive_.load()) return Status::ok();
    stop_locked();
    return spawn_locked();
  }

  Result<json> request(const json& msg, int64_t id, Clock::time_point deadline,
                       const CancelFlag* cancel) override {
    // Not sent: a new child may take it (transport.hpp's kNotFound).
    if (!alive_.load()) return Status(Errc::kNotFound, dead_reason());
    matcher_.expect(id);
    if (!write_line(msg)) {
      matcher_.fail_all(Status(Errc::kUnavailable, "writing to the server process failed"));
    }
    auto r = matcher_.wait(id, deadline, cancel);
    if (!r.ok() && r.status().is(Errc::kUnavailable) && !alive_.load() &&
        r.status().message() != "cancelled") {
      return Status(Errc::kUnavailable, dead_reason());
    }
    return r;
  }

  Status notify(const json& msg, Clock::time_point /*deadline*/) override {
    if (!alive_.load()) return Status(Errc::kUnavailable, dead_reason());
    if (!write_line(msg)) return Status(Errc::kUnavailable, "writing to the server process failed");
    return Status::ok();
  }

  void reset() override {
    std::lock_guard<std::mutex> lock(life_mu_);
    stop_locked();
  }

 private:
  bool write_line(const json& msg) {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (in_fd_ < 0) return false;
    return write_all(in_fd_, msg.dump() + "\n");
  }

  std::string dead_reason() {
    std::lock_guard<std::mutex> lock(err_mu_);
    std::string s = "the server process (" + target_.command + ") is not running";
    if (!exit_text_.empty()) s += " (" + exit_text_ + ")";
    if (!last_stderr_.empty()) s += "; its last stderr line: " + last_stderr_;
    return s;
  }

  Status spawn_locked() {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return Status(Errc::kUnavailable, "pipe failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return Status(Errc::kUnavailable, "pipe failed");
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
      for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
      return Status(Errc::kUnavailable, "pipe failed");
    }
    // Everything the child needs is built before fork (only async-signal-
    // safe calls between fork and exec).
    std::vector<std::string> args{target_.command};
    args.insert(args.end(), target_.args.begin(), target_.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      const std::string key = kv.substr(0, kv.find('='));
      if (target_.env.count(key) == 0) env.push_back(std::move(kv));
    }
    for (const auto& [k, v] : target_.env) env.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const char* cwd = target_.cwd.empty() ? nullptr : target_.cwd.c_str();

    const pid_t pid = fork();
    if (pid < 0) {
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
      return Status(Errc::kUnavailable, std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (cwd && chdir(cwd) != 0) _exit(126);
      execvpe(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      in_fd_ = in[1];
    }
    {
      std::lock_guard<std::mutex> lock(err_mu_);
      exit_text_.clear();
      last_stderr_.clear();
    }
    pid_ = pid;
    reaped_ = false;
    alive_ = true;
    const int out_fd = out[0];
    const int err_fd = err[0];
    reader_ = std::thread([this, out_fd] {
      name_this_thread("y-mcp-out");
      read_stdout(out_fd);
    });
    drainer_ = std::thread([this, err_fd] {
      name_this_thread("y-mcp-err");
      drain_stderr(err_fd);
    });
    return Status::ok();
  }

  // Ends the child: stdin closed (servers exit on EOF), then SIGTERM after
  // 300 ms and SIGKILL after 1 s; joins the threads.
  void stop_locked() {
    if (pid_ <= 0) return;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      if (in_fd_ >= 0) ::close(in_fd_);
      in_fd_ = -1;
    }
    for (int i = 0; i < 100 && alive_.load(); ++i) {
      if (i == 30) ::kill(pid_, SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (alive_.load()) ::kill(pid_, SIGKILL);
    if (reader_.joinable()) reader_.join();
    if (drainer_.joinable()) drainer_.join();
    int status = 0;
    if (!reaped_) ::waitpid(pid_, &status, 0);
    pid_ = -1;
    matcher_.fail_all(Status(Errc::kUnavailable, "the server process was stopped"));
  }

  void read_stdout(int fd) {
    std::string line;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') {
          if (line.size() < kMaxLine) line.push_back(buf[i]);
          continue;
        }
        on_line(line);
        line.clear();
      }
    }
    ::close(fd);
    // The child is gone (or closed stdout): reap it if it exited, so that
    // the reason can be told; stop_locked() reaps it otherwise.
    int status = 0;
    std::string text = "its stdout closed";
    for (int i = 0; i < 50; ++i) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        text = WIFEXITED(status)     ? "exit status " + std::to_string(WEXITSTATUS(status))
               : WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                     : text;
        reaped_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    {
      std::lock_guard<std::mutex> lock(err_mu_);
      exit_text_ = text;
    }
    alive_ = false;
    matcher_.fail_all(Status(Errc::kUnavailable, dead_reason()));
  }

  void on_line(std::string& line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return;
    json msg = json::parse(line, nullptr, false);
    if (msg.is_discarded()) return;  // not JSON-RPC: ignored (the spec forbids it)
    switch (classify(msg)) {
      case MessageKind::kResponse: matcher_.deliver(msg); break;
      case MessageKind::kNotification:
        if (sink) sink(msg);
        break;
      case MessageKind::kRequest: {
        json answer = {{"jsonrpc", "2.0"}, {"id", msg["id"]}};
        if (msg["method"] == "ping") {
          answer["result"] = json::object();
        } else {
          answer["error"] = {{"code", -32601}, {"message", "method not supported by this client"}};
        }
        write_line(answer);
        break;
      }
      case MessageKind::kInvalid: break;
    }
  }

  void drain_stderr(int fd) {
    std::string line;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          if (!line.empty()) {
            std::lock_guard<std::mutex> lock(err_mu_);
            last_stderr_ = line;
          }
          line.clear();
        } else if (line.size() < 300) {
          line.push_back(buf[i]);
        }
      }
    }
    ::close(fd);
  }

  StdioTarget target_;
  std::mutex life_mu_;  // spawn/stop
  pid_t pid_ = -1;
  std::atomic<bool> alive_{false};
  bool reaped_ = false;
  std::thread reader_;
  std::thread drainer_;
  std::mutex write_mu_;
  int in_fd_ = -1;
  Matcher matcher_;
  std::mutex err_mu_;
  std::string last_stderr_;
  std::string exit_text_;
};

}  // namespace

std::unique_ptr<Transport> make_stdio_transport(StdioTarget target) {
  return std::make_unique<StdioTransport>(std::move(target));
}

}  // namespace yantra::mcp
