// Crash safety: kill -9 a backup at random instants, many times. After every
// kill the repository must pass `check`, the lock left behind must clear
// itself, and the next backup must succeed and reuse what was stored. The
// same for forget + prune: after every kill `check` passes, and at the end
// every kept snapshot restores byte for byte.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <thread>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

void MakeDataset(const std::string& root, uint64_t seed, int files, size_t file_size) {
  std::mt19937_64 rng(seed);
  fs::create_directories(root);
  for (int i = 0; i < files; ++i) {
    std::string d = root + "/d" + std::to_string(i % 7);
    fs::create_directories(d);
    std::string content(file_size + (rng() % file_size), '\0');
    for (size_t j = 0; j < content.size(); j += 8) {
      uint64_t v = rng();
      std::memcpy(content.data() + j, &v, std::min<size_t>(8, content.size() - j));
    }
    WriteFile(d + "/f" + std::to_string(i), content);
  }
}

uint64_t TreeBytes(const std::string& root) {
  uint64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

pid_t StartCommand(const Scratch& s, const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("BULWARK_PASSWORD_FILE", s.Path("password").c_str(), 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<std::string> argv = {"bulwark", "--repo", s.repo()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(BulwarkBin().c_str(), cargv.data());
    _exit(127);
  }
  return pid;
}

// Sleeps `delay`, kills `pid` with SIGKILL and reaps it; returns true if the
// process was still running (the kill interrupted it).
bool KillAfter(pid_t pid, std::chrono::microseconds delay) {
  std::this_thread::sleep_for(delay);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

pid_t StartBackup(const Scratch& s, const std::string& src) { return StartCommand(s, {"backup", src}); }

TEST(CrashSafety, KillNineAtRandomPointsNeverDamagesTheRepository) {
  Scratch s;
  s.Init();
  std::string src = s.Path("src");
  MakeDataset(src, 42, 40, 1 << 20);  // ~60 MiB of incompressible data in 40 files

  // Calibrate: how long does an uninterrupted backup of this data take here?
  Scratch calib;
  calib.Init();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(calib.Bw({"backup", src}).exit_code, 0);
  double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::mt19937_64 rng(std::random_device{}());
  const int kKills = 12;
  int killed_midway = 0;
  for (int i = 0; i < kKills; ++i) {
    pid_t pid = StartBackup(s, src);
    // A random instant within the expected run time (the first tenth of it is
    // start-up: KDF, index load; kill there too).
    auto delay = std::chrono::microseconds(static_cast<int64_t>(full * 1e6 * (rng() % 1000) / 1000.0));
    if (KillAfter(pid, delay)) killed_midway++;
    RunResult c = s.Bw({"check"});
    ASSERT_EQ(c.exit_code, 0) << "after kill " << i << " at " << delay.count() << " us: " << c.err;
    if (i % 4 == 3) {  // new data now and then, so later kills hit fresh uploads too
      WriteFile(src + "/new" + std::to_string(i), std::string(3 << 20, static_cast<char>('a' + i)) + std::to_string(rng()));
    }
  }
  EXPECT_GT(killed_midway, 0) << "no run was actually interrupted; the test proved nothing";

  size_t packs_before = 0;
  for (auto& e : fs::recursive_directory_iterator(s.repo() + "/data"))
    if (e.is_regular_file()) packs_before++;
  bool had_packs = packs_before > 0;
  RunResult b = s.Bw({"--json", "backup", src});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  uint64_t added = b.Json()["bytes_added"].get<uint64_t>();
  if (had_packs) {
    EXPECT_LT(added, TreeBytes(src)) << "the interrupted runs' uploads must be reused";
  }
  RunResult c = s.Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  ASSERT_EQ(s.Bw({"restore", "latest", "--target", s.Path("out")}).exit_code, 0);
  ExpectIdentical(src, s.Path("out") + src);
  // Stale locks must have been cleared automatically. (A kill during a lock's
  // write may leave a ".tmp-*" partial file there; it is not a lock and
  // every listing ignores it.)
  RunResult locks = s.Bw({"--json", "unlock", "--dry-run"});
  ASSERT_EQ(locks.exit_code, 0) << locks.err;
  EXPECT_TRUE(locks.Json()["locks"].empty()) << locks.out;
}

TEST(CrashSafety, KillNineDuringForgetAndPruneNeverLosesKeptData) {
  Scratch s;
  s.Init();
  std::string src = s.Path("src");
  MakeDataset(src, 7, 12, 256 << 10);
  std::mt19937_64 rng(std::random_device{}());
  std::map<std::string, std::string> expected;  // snapshot id -> copy of the source at backup time
  auto backup = [&](int gen) {
    // Change part of the data: old snapshots' unique data becomes garbage.
    for (int k = 0; k < 3; ++k)
      WriteFile(src + "/d" + std::to_string(k) + "/gen-file" + std::to_string(k),
                RandomBytes(300000 + rng() % 300000, rng()));
    WriteFile(src + "/added" + std::to_string(gen), std::string(100000, char('a' + gen % 26)) + std::to_string(rng()));
    RunResult b = s.Bw({"--json", "backup", src});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    std::string id = b.Json()["snapshot_id"];
    std::string copy = s.Path("expected/" + id);
    fs::create_directories(s.Path("expected"));
    ASSERT_EQ(bulwark::testing::Run({"cp", "-a", src, copy}).exit_code, 0);  // keeps mtimes, modes, xattrs
    expected[id] = copy;
  };
  for (int g = 0; g < 3; ++g) backup(g);

  const std::vector<std::vector<std::string>> commands = {
      {"forget", "--keep-last", "2", "--prune", "--grace", "0", "--max-unused", "0%"},
      {"prune", "--grace", "0", "--max-unused", "0%"},
  };
  double last_full = 0.5;  // seconds; updated from every uninterrupted run
  int killed_midway = 0;
  const int kTrials = 10;
  for (int i = 0; i < kTrials; ++i) {
    backup(3 + i);
    // Make the prune-only runs find work too.
    if (i % 2 == 1) {
      ASSERT_EQ(s.Bw({"forget", "--keep-last", "2"}).exit_code, 0);
    }
    const auto& cmd = commands[i % 2];
    pid_t pid = StartCommand(s, cmd);
    auto delay = std::chrono::microseconds(static_cast<int64_t>(last_full * 1.2e6 * (rng() % 1000) / 1000.0));
    if (KillAfter(pid, delay)) killed_midway++;
    RunResult c = s.Bw({"check"});
    ASSERT_EQ(c.exit_code, 0) << "after killing '" << cmd[0] << "' at " << delay.count() << " us: " << c.out << c.err;
    // Run it again to completion: it must resume from whatever was left.
    auto t0 = std::chrono::steady_clock::now();
    RunResult again = s.Bw(cmd);
    last_full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(again.exit_code, 0) << again.err;
  }
  EXPECT_GT(killed_midway, 0) << "no run was actually interrupted; the test proved nothing";

  RunResult c = s.Bw({"check", "--read-data"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  RunResult snaps = s.Bw({"--json", "snapshots"});
  ASSERT_EQ(snaps.exit_code, 0);
  auto list = snaps.Json();
  ASSERT_EQ(list.size(), 2u);
  for (const auto& sn : list) {
    std::string id = sn["id"];
    ASSERT_TRUE(expected.count(id)) << id;
    std::string out = s.Path("out-" + id.substr(0, 8));
    ASSERT_EQ(s.Bw({"restore", id, "--target", out}).exit_code, 0);
    SCOPED_TRACE("snapshot " + id);
    ExpectIdentical(expected[id], out + src);
  }
}

}  // namespace
}  // namespace bulwark::testing
