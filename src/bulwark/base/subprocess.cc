#include "bulwark/base/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"

extern char** environ;

namespace bulwark {

namespace {
constexpr size_t kTailBytes = 8192;

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}
}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty() || argv[0].empty()) throw Error(ErrorCode::kInvalidArgument, "no program to run");
  program_ = argv[0];
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err})
      for (int i = 0; i < 2; ++i) CloseFd(&p[i]);
  };
  if ((options.pipe_stdin && ::pipe2(in, O_CLOEXEC) != 0) || (options.pipe_stdout && ::pipe2(out, O_CLOEXEC) != 0) ||
      (options.capture_stderr && ::pipe2(err, O_CLOEXEC) != 0)) {
    int e = errno;
    close_all();
    throw ErrnoError("pipe", "", e);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (options.pipe_stdin)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (options.pipe_stdout) posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (options.capture_stderr) posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (options.stdout_to_stderr && !options.pipe_stdout)
    posix_spawn_file_actions_adddup2(&fa, options.capture_stderr ? err[1] : 2, 1);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, options.cwd.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no signal blocked: a blocked mask is inherited
  // across exec, and the agent blocks SIGTERM/SIGINT in every thread (they
  // go to its sigwait thread), which would make its hooks and dumps immune
  // to SIGTERM (and ~Subprocess's SIGTERM would then wait forever).
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSIGMASK;
  if (options.own_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);  // a new group, led by the child
    own_group_ = true;
  }
  posix_spawnattr_setflags(&attr, flags);
  int rc = posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  CloseFd(&in[0]);
  CloseFd(&out[1]);
  CloseFd(&err[1]);
  if (rc != 0) {
    close_all();
    throw Error(ErrorCode::kSourceFailed, "cannot start '" + program_ + "': " + std::strerror(rc));
  }
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  if (err_ >= 0) {
    // SIGPIPE on writes to a child that exited: an EPIPE error instead.
    ::signal(SIGPIPE, SIG_IGN);
    bool forward = options.forward_stderr;
    reader_ = std::thread([this, forward] {
      char buf[4096];
      std::string line;
      for (;;) {
        ssize_t n = ::read(err_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard<std::mutex> lock(mu_);
        tail_.append(buf, static_cast<size_t>(n));
        if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
        if (forward) {
          line.append(buf, static_cast<size_t>(n));
          size_t nl;
          while ((nl = line.find('\n')) != std::string::npos) {
            log::Warn(line.substr(0, nl));
            line.erase(0, nl + 1);
          }
        }
      }
      if (forward && !line.empty()) log::Warn(line);
    });
  }
}

Subprocess::~Subprocess() {
  CloseFd(&in_);
  CloseFd(&out_);
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGTERM);
    Wait();
  }
  if (reader_.joinable()) reader_.join();
  CloseFd(&err_);
}

void Subprocess::CloseStdin() { CloseFd(&in_); }

int Subprocess::Wait() {
  CloseStdin();
  CloseFd(&out_);  // a child still writing gets EPIPE instead of blocking
  if (!reaped_) {
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  if (reader_.joinable()) reader_.join();
  return status_;
}

std::optional<int> Subprocess::WaitFor(double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (!reaped_) {
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) {
      reaped_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Wait();
}

void Subprocess::Kill(int signal) {
  if (!reaped_ && pid_ > 0) ::kill(own_group_ ? -pid_ : pid_, signal);
}

std::string Subprocess::Describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

bool Subprocess::Succeeded(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string Subprocess::StderrTail() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string t = tail_.size() > kTailBytes ? tail_.substr(tail_.size() - kTailBytes) : tail_;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

void Subprocess::WaitOrThrow() {
  int status = Wait();
  if (Succeeded(status)) return;
  std::string tail = StderrTail();
  throw Error(ErrorCode::kSourceFailed, program_ + " " + Describe(status) + (tail.empty() ? "" : ": " + tail));
}

}  // namespace bulwark
