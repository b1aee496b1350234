#include "fault_proxy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

extern char** environ;

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

nlohmann::json FaultSchedule::ToJson() const {
  return {{"seed", seed},        {"rate", rate}, {"kinds", kinds}, {"methods", methods}, {"path_regex", path_regex},
          {"sequence", sequence}};
}

std::string ProxiedRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::map<std::string, int> FaultCounts(const std::vector<ProxiedRequest>& requests) {
  std::map<std::string, int> out;
  for (const auto& r : requests) out[r.fault]++;
  return out;
}

std::unique_ptr<FaultProxy> FaultProxy::Start(const std::string& upstream, std::string* why,
                                              const FaultSchedule& schedule) {
  if (Run({"sh", "-c", "command -v node"}).exit_code != 0) {
    *why = "node is not installed (the fault proxy is a node script)";
    return nullptr;
  }
  char tmpl[] = "/tmp/bulwark-fault-proxy.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  std::unique_ptr<FaultProxy> p(new FaultProxy);
  p->dir_ = tmpl;
  std::vector<std::string> argv{"node", std::string(BULWARK_SOURCE_DIR) + "/scripts/s3-server.d/fault-proxy.js"};
  auto flag = [&](const char* name, const std::string& value) {
    if (!value.empty()) argv.insert(argv.end(), {name, value});
  };
  flag("--upstream", upstream);
  flag("--dir", p->dir_);
  flag("--parent-pid", std::to_string(getpid()));
  flag("--seed", std::to_string(schedule.seed));
  flag("--rate", std::to_string(schedule.rate));
  flag("--kinds", Join(schedule.kinds));
  flag("--methods", Join(schedule.methods));
  flag("--sequence", Join(schedule.sequence));
  flag("--path-regex", schedule.path_regex);

  const std::string log = p->dir_ + "/proxy.log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "node", &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    *why = std::string("spawn node: ") + std::strerror(rc);
    ADD_FAILURE() << *why;
    return nullptr;
  }
  p->pid_ = pid;
  // Ready = the port file exists (written once the proxy accepts connections).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(p->dir_ + "/port")) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = 0;
      *why = "the fault proxy exited during start; log:\n" + p->Log();
      ADD_FAILURE() << *why;
      return nullptr;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      *why = "the fault proxy was not ready after 30 s; log:\n" + p->Log();
      ADD_FAILURE() << *why;
      return nullptr;  // the destructor stops it
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string port = ReadFileOr(p->dir_ + "/port", "");
  while (!port.empty() && (port.back() == '\n' || port.back() == ' ')) port.pop_back();
  p->endpoint_ = "http://127.0.0.1:" + port;
  return p;
}

FaultProxy::~FaultProxy() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (!std::getenv("BULWARK_KEEP_TEST_DIRS")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void FaultProxy::SetSchedule(const FaultSchedule& schedule) const {
  RunResult r = Run({"curl", "-sS", "--max-time", "10", "-X", "PUT", "--data-binary", schedule.ToJson().dump(), "-w",
                     "\n%{http_code}", endpoint_ + "/__fault-proxy/schedule"});
  bool ok = r.exit_code == 0 && r.out.size() >= 3 && r.out.compare(r.out.size() - 3, 3, "200") == 0;
  if (!ok)
    ADD_FAILURE() << "the fault proxy refused the schedule " << schedule.ToJson().dump() << ": " << r.out << r.err;
}

std::vector<ProxiedRequest> FaultProxy::Requests() const {
  std::vector<ProxiedRequest> out;
  std::istringstream in(ReadFileOr(dir_ + "/requests.jsonl", ""));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) {
      ADD_FAILURE() << "bad line in the fault proxy's log: " << line;
      continue;
    }
    ProxiedRequest r;
    r.seq = j.value("seq", int64_t{0});
    r.method = j.value("method", "");
    r.path = j.value("path", "");
    r.query = j.value("query", "");
    r.fault = j.value("fault", "");
    if (j["upstream_status"].is_number()) r.upstream_status = j["upstream_status"].get<int>();
    if (j["status"].is_number()) r.status = j["status"].get<int>();
    for (const auto& [k, v] : j["headers"].items())
      if (v.is_string()) r.headers[k] = v.get<std::string>();
    out.push_back(std::move(r));
  }
  return out;
}

std::string FaultProxy::Log() const { return ReadFileOr(dir_ + "/proxy.log", ""); }

}  // namespace bulwark::testing
