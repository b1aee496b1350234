#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "treecmp_lib.h"
#include "treegen.h"

extern char** environ;

namespace bulwark::testing {

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "false" && std::string(ci) != "0";
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

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

nlohmann::json RunResult::JsonLine(const std::string& type) const {
  std::istringstream in(out);
  nlohmann::json found;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("message_type", "") == type) found = j;
  }
  return found;
}

namespace {
// posix_spawnp of argv with the test's environment minus BULWARK_* (tests
// control these) plus `env`; returns the error number (0: started).
int SpawnWith(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              const posix_spawn_file_actions_t* fa, pid_t* pid) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    if (s.rfind("BULWARK_", 0) == 0) continue;
    envs.push_back(s);
  }
  for (const auto& e : env) envs.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  return posix_spawnp(pid, args[0], fa, nullptr, args.data(), envp.data());
}
}  // namespace

int StartBackground(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = SpawnWith(argv, env, &fa, &pid);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("spawn " + argv[0] + ": " + strerror(rc));
  return pid;
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
  pid_t pid;
  int rc = SpawnWith(argv, env, &fa, &pid);
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

bool WaitFor(const std::function<bool()>& cond, int seconds, int poll_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return true;
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

std::vector<std::string> Scratch::Env() const {
  return {"BULWARK_PASSWORD_FILE=" + dir_ + "/password", "BULWARK_CACHE_DIR=" + dir_ + "/cache"};
}

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
  return Run(argv, {"BULWARK_CACHE_DIR=" + CacheDir()});
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

std::string ReadFileOr(const std::string& path, const std::string& fallback) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fallback;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json JsonLine(const RunResult& r, const std::string& message_type) {
  std::istringstream in(r.out);
  nlohmann::json found;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("message_type", "") == message_type) found = j;
  }
  return found;
}

RunResult BwConfig(const std::string& config, std::vector<std::string> args) {
  std::vector<std::string> argv{BulwarkBin(), "--config", config};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {});
}

std::string YamlRepository(const std::string& name, const std::string& url, const std::string& password_file) {
  return "  " + name + ":\n    url: " + url + "\n    password_file: " + password_file + "\n";
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

void ExpectIdentical(const std::string& a, const std::string& b) {
  CompareResult c = CompareTrees(a, b);
  std::string diffs;
  for (size_t i = 0; i < c.differences.size() && i < 20; ++i) diffs += c.differences[i] + "\n";
  EXPECT_TRUE(c.identical) << diffs;
  EXPECT_GT(c.files, 0u);
}

void Corrupt(const std::string& path, long offset_from_middle) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  long size = f.tellg();
  long pos = size / 2 + offset_from_middle;
  f.seekg(pos);
  char c;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(pos);
  f.write(&c, 1);
}

std::vector<std::string> Objects(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().rfind(".tmp-", 0) != 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string LargestObject(const std::string& dir) {
  std::string best;
  uintmax_t size = 0;
  for (const auto& p : Objects(dir))
    if (std::filesystem::file_size(p) > size) size = std::filesystem::file_size(p), best = p;
  return best;
}

}  // namespace bulwark::testing
