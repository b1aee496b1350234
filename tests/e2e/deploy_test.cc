// deploy/: the systemd units pass `systemd-analyze verify` and the commands
// they run work (a job, a drill and the agent's --once run against a real
// repository); the container image's runtime package list names every
// library the binary links; the Kubernetes example's bulwark.yaml is valid.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace bulwark::testing {
namespace {

const std::string kDeploy = std::string(BULWARK_SOURCE_DIR) + "/deploy";

bool HaveSystemdAnalyze() { return bulwark::testing::Run({"sh", "-c", "command -v systemd-analyze"}).exit_code == 0; }

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// The unit file with the installed paths replaced by the test's.
std::string Localise(std::string unit, const Scratch& s, const std::string& config) {
  unit = Replace(unit, "/usr/local/bin/bulwark", BulwarkBin());
  unit = Replace(unit, "/etc/bulwark/bulwark.yaml", config);
  return Replace(unit, "/var/lib/bulwark", s.Path("state"));
}

// ExecStart= of a unit as argv (the units quote nothing), %i -> instance.
std::vector<std::string> ExecStart(const std::string& unit, const std::string& instance) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(unit, m, std::regex("\nExecStart=([^\n]*)")));
  std::istringstream words(Replace(m[1], "%i", instance));
  std::vector<std::string> argv;
  for (std::string w; words >> w;) argv.push_back(w);
  return argv;
}

TEST(Deploy, SystemdUnitsVerifyAndTheirCommandsRun) {
  if (!HaveSystemdAnalyze()) GTEST_SKIP() << "systemd-analyze missing (Debian's systemd package)";
  Scratch s;
  s.Init();
  const std::string data = s.Path("data");
  std::filesystem::create_directories(data);
  WriteFile(data + "/a.txt", "what the units back up");
  const std::string cfg = WriteFile(
      s.Path("bulwark.yaml"),
      s.ConfigPrelude() + "sources:\n  docs:\n    kind: fs\n    paths: [" + data +
          "]\n    schedule: \"@daily\"\n    drill:\n      target: {dir: " + s.Path("drills") + "}\n");
  std::filesystem::create_directories(s.Path("drills"));
  std::filesystem::create_directories(s.Path("units"));

  // Template units are verified as an instance (docs), with their timer.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"bulwark-agent.service", "bulwark-agent.service"},  {"bulwark-run@.service", "bulwark-run@docs.service"},
      {"bulwark-run@.timer", "bulwark-run@docs.timer"},    {"bulwark-drill@.service", "bulwark-drill@docs.service"},
      {"bulwark-drill@.timer", "bulwark-drill@docs.timer"}};
  std::vector<std::string> verify{"systemd-analyze", "verify"};
  for (const auto& [from, to] : files) {
    WriteFile(s.Path("units/" + to), Localise(ReadFileOrDie(kDeploy + "/systemd/" + from), s, cfg));
    verify.push_back(s.Path("units/" + to));
  }
  RunResult v = bulwark::testing::Run(verify);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(v.err.find("Unknown"), std::string::npos) << v.err;

  const std::vector<std::string> env{"BULWARK_CACHE_DIR=" + s.CacheDir()};
  // bulwark-run@docs: one job; the snapshot is there.
  RunResult job = bulwark::testing::Run(ExecStart(ReadFileOrDie(s.Path("units/bulwark-run@docs.service")), "docs"), env);
  ASSERT_EQ(job.exit_code, 0) << job.out << job.err;
  RunResult snaps = s.BwConfig(cfg, {"snapshots", "--json"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  ASSERT_EQ(snaps.Json().size(), 1u) << snaps.out;

  // bulwark-drill@docs: the drill restores it and passes.
  RunResult drill = bulwark::testing::Run(ExecStart(ReadFileOrDie(s.Path("units/bulwark-drill@docs.service")), "docs"), env);
  EXPECT_EQ(drill.exit_code, 0) << drill.out << drill.err;
  RunResult drills = s.BwConfig(cfg, {"drills", "--json"});
  ASSERT_EQ(drills.exit_code, 0) << drills.err;
  EXPECT_NE(drills.out.find("docs"), std::string::npos) << drills.out;

  // bulwark-agent: its command line, on a free port and --once, runs the job.
  std::vector<std::string> agent = ExecStart(ReadFileOrDie(s.Path("units/bulwark-agent.service")), "");
  for (auto& a : agent)
    if (a == "127.0.0.1:9464") a = "127.0.0.1:0";
  agent.push_back("--once");
  RunResult once = bulwark::testing::Run(agent, env);
  EXPECT_EQ(once.exit_code, 0) << once.out << once.err;
  RunResult after = s.BwConfig(cfg, {"snapshots", "--json"});
  EXPECT_EQ(after.Json().size(), 2u) << after.out;
}

TEST(Deploy, ContainerRuntimePackagesHoldEveryLinkedLibrary) {
  if (bulwark::testing::Run({"sh", "-c", "command -v dpkg"}).exit_code != 0) GTEST_SKIP() << "not a Debian system";
  RunResult r = bulwark::testing::Run({kDeploy + "/runtime-packages", BulwarkBin()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* pkg : {"libc6", "libsodium23", "libzstd1", "libpq5", "libcurl4", "libyaml-cpp0.7"})
    EXPECT_NE(r.out.find(std::string(pkg) + "\n"), std::string::npos) << pkg << " missing from:\n" << r.out;
  // Every line is a package name, and the Dockerfile installs the list.
  EXPECT_TRUE(std::regex_match(r.out, std::regex("([a-z0-9][a-z0-9.+-]*\n)+"))) << r.out;
  EXPECT_NE(ReadFileOrDie(kDeploy + "/Dockerfile").find("runtime-packages.txt)"), std::string::npos);
}

TEST(Deploy, KubernetesExampleConfigIsValid) {
  // The ConfigMap's bulwark.yaml: the block under "bulwark.yaml: |", unindented.
  std::istringstream in(ReadFileOrDie(kDeploy + "/kubernetes/cronjob.yaml"));
  std::string line, yaml;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.find("bulwark.yaml: |") != std::string::npos) {
      inside = true;
    } else if (inside) {
      if (line.rfind("    ", 0) != 0 && !line.empty()) break;
      yaml += (line.size() > 4 ? line.substr(4) : "") + "\n";
    }
  }
  ASSERT_NE(yaml.find("sources:"), std::string::npos) << yaml;
  Scratch s;
  const std::string cfg = WriteFile(s.Path("bulwark.yaml"), yaml);
  RunResult r = s.BwConfig(cfg, {"config", "check", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pgmain"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bulwark::testing
