// Many writers: four processes back up four different sources into one
// repository at the same time, each several times with changing data, while a
// fifth process runs forget + prune in a loop. Nothing may be lost: at the
// end `check --read-data` passes and the newest snapshot of every source
// restores byte for byte.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// Starts `bash -c script` with the test's environment; returns its pid.
pid_t Spawn(const std::string& script, const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    execl("/bin/bash", "bash", "-c", script.c_str(), (char*)nullptr);
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(ManyWriters, FourBackupsAndAPruneLoopLoseNothing) {
  Scratch s;
  s.Init();
  const int kWriters = 4, kRuns = 4;
  std::string yaml = "version: 1\nrepositories:\n  main:\n    url: " + s.repo() + "\nsources:\n";
  for (int w = 0; w < kWriters; ++w) {
    std::string dir = s.Path("src" + std::to_string(w));
    fs::create_directories(dir);
    yaml += "  s" + std::to_string(w) + ":\n    kind: fs\n    paths: [" + dir + "]\n";
  }
  WriteFile(s.Path("bulwark.yaml"), yaml);
  std::vector<std::string> env = s.Env();
  env.push_back("BULWARK_CONFIG=" + s.Path("bulwark.yaml"));
  std::string bw = BulwarkBin();

  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; ++w) {
    std::string dir = s.Path("src" + std::to_string(w));
    // Each run replaces one file and adds another: earlier snapshots' data
    // becomes garbage once forget drops them.
    std::string script = "set -e; for i in $(seq 1 " + std::to_string(kRuns) + "); do " +
                         "head -c 3000000 /dev/urandom > " + dir + "/changing.bin; " +
                         "head -c 500000 /dev/urandom > " + dir + "/added-$i.bin; " +
                         "'" + bw + "' -q --lock-wait 10m backup --source s" + std::to_string(w) + "; done";
    writers.push_back(Spawn(script, env));
  }
  // The prune loop runs until every writer is done; it counts its rounds.
  std::string done_flag = s.Path("writers-done");
  std::string rounds_file = s.Path("prune-rounds");
  std::string prune_script = "set -e; n=0; while [ ! -e " + done_flag + " ]; do " +
                             "'" + bw + "' --repo " + s.repo() + " -q --lock-wait 10m forget --keep-last 2; " +
                             "'" + bw + "' --repo " + s.repo() + " -q --lock-wait 10m prune --grace 0 --max-unused 0%; " +
                             "n=$((n+1)); echo $n > " + rounds_file + "; done";
  pid_t pruner = Spawn(prune_script, env);
  for (size_t w = 0; w < writers.size(); ++w) EXPECT_EQ(Wait(writers[w]), 0) << "writer " << w;
  std::string rounds_during = fs::exists(rounds_file) ? ReadFileOrDie(rounds_file) : "0";
  WriteFile(done_flag, "");
  EXPECT_EQ(Wait(pruner), 0) << "the prune loop failed";
  EXPECT_GE(std::stoi(rounds_during), 1) << "no prune round completed while the writers ran";

  RunResult c = s.Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  RunResult snaps = s.Bw({"--json", "snapshots"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_GE(snaps.Json().size(), size_t(kWriters));
  for (int w = 0; w < kWriters; ++w) {
    std::string dir = s.Path("src" + std::to_string(w));
    std::string out = s.Path("out" + std::to_string(w));
    RunResult r = s.Bw({"restore", "latest", "--source", "s" + std::to_string(w), "--target", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    SCOPED_TRACE("source s" + std::to_string(w));
    ExpectIdentical(dir, out + dir);
  }
}

}  // namespace
}  // namespace bulwark::testing
