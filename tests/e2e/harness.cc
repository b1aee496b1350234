#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "treegen.h"

extern char** environ;

namespace bulwark::testing {

std::string BulwarkBin() { return BULWARK_BIN; }

nlohmann::json RunResult::Json() const {
  std::istringstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{' ) last = line;
    else if (!line.empty() && line[0] == '[') last = line;
  if (last.empty()) throw std::runtime_error("no JSON on stdout; stdout=" + out + " stderr=" + err);
  return nlohmann::json::parse(last);
}

RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& input) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    if (s.rfind("BULWARK_", 0) == 0) continue;  // tests control these
    envs.push_back(s);
  }
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) throw std::runtime_error("spawn " + argv[0] + ": " + strerror(rc));
  RunResult r;
  size_t written = 0;
  if (input.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[n++] = {err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) fds[n++] = {in_pipe[1], POLLOUT, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_pipe[1]) {
        ssize_t w = write(in_pipe[1], input.data() + written, std::min<size_t>(65536, input.size() - written));
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) {
          close(in_pipe[1]);
          in_pipe[1] = -1;
        }
        continue;
      }
      char buf[65536];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        if (fds[i].fd == out_pipe[0]) out_open = false;
        else err_open = false;
        continue;
      }
      (fds[i].fd == out_pipe[0] ? r.out : r.err).append(buf, static_cast<size_t>(got));
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return r;
}

Scratch::Scratch() {
  char tmpl[] = "/tmp/bulwark-e2e.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  WriteFile(dir_ + "/password", "correct horse battery staple\n");
}

Scratch::~Scratch() {
  if (std::getenv("BULWARK_KEEP_TEST_DIRS")) return;
  RemoveTree(dir_);
}

std::vector<std::string> Scratch::Env() const { return {"BULWARK_PASSWORD_FILE=" + dir_ + "/password"}; }

RunResult Scratch::Bw(std::vector<std::string> args, const std::string& input) const {
  std::vector<std::string> argv{BulwarkBin(), "--repo", repo()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, Env(), input);
}

std::string Scratch::ConfigPrelude() const {
  return "version: 1\ndefault_repository: main\nrepositories:\n  main:\n    url: " + repo() +
         "\n    password_file: " + Path("password") + "\n";
}

RunResult Scratch::BwConfig(const std::string& config, std::vector<std::string> args) const {
  std::vector<std::string> argv{BulwarkBin(), "--config", config};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {});
}

void Scratch::Init() const {
  RunResult r = Bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  if (r.exit_code != 0) throw std::runtime_error("init failed: " + r.err);
}

std::string WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) throw std::runtime_error("write " + path);
  return path;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace bulwark::testing
