// End-to-end tests: drive the real CLI on generated trees holding every entry
// kind and compare what comes back, byte for byte and attribute for attribute.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "harness.h"
#include "treecmp_lib.h"
#include "treegen.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

TEST(CliRoundTrip, EveryEntryKindRestoresIdentically) {
  Scratch s;
  s.Init();
  TreeGenOptions o;
  o.seed = 7;
  o.files = 150;
  GenerateTree(s.Path("src"), o);
  RunResult b = s.Bw({"--json", "backup", s.Path("src")});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto summary = b.Json();
  EXPECT_EQ(summary["message_type"], "summary");
  EXPECT_FALSE(summary["partial"].get<bool>());
  RunResult r = s.Bw({"restore", "latest", "--target", s.Path("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectIdentical(s.Path("src"), s.Path("out") + s.Path("src"));
  RunResult c = s.Bw({"--json", "check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_TRUE(c.Json()["ok"].get<bool>());
}

TEST(CliRoundTrip, IncrementalBackupRereadsOnlyChangedFilesAndBothSnapshotsRestore) {
  Scratch s;
  s.Init();
  TreeGenOptions o;
  o.seed = 11;
  o.files = 120;
  o.sparse_large = false;
  GenerateTree(s.Path("src"), o);
  GenerateTree(s.Path("orig"), o);  // the generator is deterministic: a copy of the first state
  RunResult b1 = s.Bw({"--json", "backup", s.Path("src")});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  std::string first = b1.Json()["snapshot_id"];
  RunResult b2 = s.Bw({"--json", "backup", s.Path("src")});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  auto j2 = b2.Json();
  EXPECT_EQ(j2["files_new"].get<int>(), 0);
  EXPECT_EQ(j2["files_changed"].get<int>(), 0);
  EXPECT_GT(j2["files_unmodified"].get<int>(), 0);
  // Nothing of the tree itself is new. The trees of its ancestors (/tmp and
  // the scratch directory) may be: tests running in parallel change /tmp's
  // mtime, and those small tree blobs are all that may be added.
  EXPECT_LT(j2["bytes_added"].get<uint64_t>(), 1024u) << "an unchanged tree must add at most its ancestors' trees";
  MutateTree(s.Path("src"), 3, 0.2);
  RunResult b3 = s.Bw({"--json", "backup", s.Path("src")});
  ASSERT_EQ(b3.exit_code, 0) << b3.err;
  auto j3 = b3.Json();
  EXPECT_GT(j3["files_changed"].get<int>() + j3["files_new"].get<int>(), 0);
  EXPECT_GT(j3["files_unmodified"].get<int>(), 0);
  ASSERT_EQ(s.Bw({"restore", "latest", "--target", s.Path("out3")}).exit_code, 0);
  ExpectIdentical(s.Path("src"), s.Path("out3") + s.Path("src"));
  ASSERT_EQ(s.Bw({"restore", first.substr(0, 10), "--target", s.Path("out1")}).exit_code, 0);
  ExpectIdentical(s.Path("orig"), s.Path("out1") + s.Path("src"));
  RunResult d = s.Bw({"--json", "diff", first, "latest"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_GT(d.Json()["changed"].get<int>() + d.Json()["added"].get<int>() + d.Json()["removed"].get<int>(), 0);
}

TEST(CliRoundTrip, ExcludesIncludesAndLs) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src/keep/sub"));
  fs::create_directories(s.Path("src/cache"));
  WriteFile(s.Path("src/keep/a.txt"), "alpha");
  WriteFile(s.Path("src/keep/sub/b.tmp"), "beta");
  WriteFile(s.Path("src/cache/c.txt"), "gamma");
  WriteFile(s.Path("excl"), "# comment\n" + s.Path("src/cache") + "\n");
  RunResult b = s.Bw({"backup", s.Path("src"), "--exclude", "*.tmp", "--exclude-file", s.Path("excl")});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult ls = s.Bw({"ls", "latest", s.Path("src")});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("keep/a.txt"), std::string::npos);
  EXPECT_EQ(ls.out.find("b.tmp"), std::string::npos);
  EXPECT_EQ(ls.out.find("c.txt"), std::string::npos);
  RunResult r = s.Bw({"restore", "latest", "--target", s.Path("out"), "--include", s.Path("src/keep/sub")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(s.Path("out") + s.Path("src/keep/a.txt")));
  EXPECT_TRUE(fs::exists(s.Path("out") + s.Path("src/keep/sub")));
  RunResult dump = s.Bw({"dump", "latest", s.Path("src/keep/a.txt")});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(dump.out, "alpha");
  // A non-empty target is refused unless --overwrite.
  RunResult again = s.Bw({"restore", "latest", "--target", s.Path("out")});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
  EXPECT_EQ(s.Bw({"restore", "latest", "--target", s.Path("out"), "--overwrite"}).exit_code, 0);
  EXPECT_EQ(ReadFileOrDie(s.Path("out") + s.Path("src/keep/a.txt")), "alpha");
}

TEST(CliRoundTrip, OneFileSystemKeepsTheMountPointButNotItsContents) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src/mnt"));
  WriteFile(s.Path("src/top.txt"), "top");
  if (bulwark::testing::Run({"mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", s.Path("src/mnt")}).exit_code != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  struct Unmount {
    std::string m;
    ~Unmount() { bulwark::testing::Run({"umount", m}); }
  } unmount{s.Path("src/mnt")};
  WriteFile(s.Path("src/mnt/inside.txt"), "other file system");
  ASSERT_EQ(s.Bw({"backup", "--one-file-system", s.Path("src")}).exit_code, 0);
  RunResult ls = s.Bw({"ls", "latest"});
  EXPECT_NE(ls.out.find("top.txt"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(s.Path("src/mnt")), std::string::npos) << "the mount point itself is kept";
  EXPECT_EQ(ls.out.find("inside.txt"), std::string::npos) << ls.out;
  ASSERT_EQ(s.Bw({"backup", s.Path("src")}).exit_code, 0);
  EXPECT_NE(s.Bw({"ls", "latest"}).out.find("inside.txt"), std::string::npos) << "without -x it is crossed";
}

TEST(CliStreams, StdinAndCommandAreStoredAndAFailingCommandStoresNothing) {
  Scratch s;
  s.Init();
  std::string data = RandomBytes(3 << 20, 5) + std::string(1 << 20, 'x');
  RunResult b = s.Bw({"--json", "backup", "--stdin", "--stdin-name", "blob.bin"}, data);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.Json()["facts"]["stream"]["size"].get<size_t>(), data.size());
  RunResult d = s.Bw({"dump", "latest", "/blob.bin"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(d.out == data);
  RunResult c = s.Bw({"--json", "backup", "--stdin-name", "hello.txt", "--stdin-from-command", "--", "sh", "-c", "printf hello"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(s.Bw({"dump", "latest", "/hello.txt"}).out, "hello");
  auto before = s.Bw({"--json", "snapshots"}).Json().size();
  RunResult f = s.Bw({"backup", "--stdin-from-command", "--", "sh", "-c", "printf partial; exit 3"});
  EXPECT_NE(f.exit_code, 0);
  EXPECT_NE(f.err.find("exited with status 3"), std::string::npos) << f.err;
  EXPECT_EQ(s.Bw({"--json", "snapshots"}).Json().size(), before) << "a failed command must not store a snapshot";
  EXPECT_EQ(s.Bw({"check"}).exit_code, 0);
}

TEST(CliConfig, SourcesFromBulwarkYamlAndErrorsWithLineAndColumn) {
  Scratch s;
  fs::create_directories(s.Path("src/sub"));
  WriteFile(s.Path("src/sub/a.txt"), "from config");
  WriteFile(s.Path("src/skip.tmp"), "excluded");
  std::string yaml = s.ConfigPrelude() +
                     "sources:\n"
                     "  docs:\n"
                     "    kind: fs\n"
                     "    paths: [" + s.Path("src") + "]\n"
                     "    exclude: ['*.tmp']\n"
                     "    tags: [nightly]\n"
                     "    schedule: '0 2 * * *'\n"
                     "    retention: {keep_daily: 7, keep_weekly: 4, keep_monthly: 3}\n"
                     "  greeting:\n"
                     "    kind: command\n"
                     "    command: [sh, -c, 'printf hi']\n"
                     "    stdin_name: greeting.txt\n";
  WriteFile(s.Path("bulwark.yaml"), yaml);
  auto bw = [&](std::vector<std::string> args) { return s.BwConfig(s.Path("bulwark.yaml"), args); };
  ASSERT_EQ(bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
  RunResult b = bw({"backup", "--source", "docs"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult g = bw({"backup", "--source", "greeting"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  RunResult list = bw({"--json", "snapshots", "--source", "docs"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto snaps = list.Json();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0]["tags"][0], "nightly");
  EXPECT_EQ(bw({"dump", "latest", "--source", "greeting", "/greeting.txt"}).out, "hi");
  RunResult ls = bw({"ls", "latest", "--source", "docs"});
  EXPECT_NE(ls.out.find("a.txt"), std::string::npos);
  EXPECT_EQ(ls.out.find("skip.tmp"), std::string::npos);
  RunResult ok = bw({"--json", "config", "check"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(ok.Json()["sources"][0].contains("next_run"));
  // A typo in a key is reported with its position.
  WriteFile(s.Path("bad.yaml"), "version: 1\nrepositories:\n  main:\n    url: /x\nsources:\n  d:\n    kind: fs\n    paths: [/x]\n    exlude: ['*']\n");
  RunResult bad = bulwark::testing::Run({BulwarkBin(), "config", "check", s.Path("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.yaml:9:5"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("exclude"), std::string::npos) << bad.err;
}

TEST(CliConfig, CheckShowsSchedulesInTheirTimeZonesSuspensionAndHooks) {
  Scratch s;
  const std::string yaml = s.ConfigPrelude() +
                           "sources:\n"
                           "  berlin:\n"
                           "    kind: fs\n"
                           "    paths: [/etc]\n"
                           "    schedule: '30 2 * * *'\n"
                           "    timezone: Europe/Berlin\n"
                           "    hooks:\n"
                           "      pre:\n"
                           "        - {command: [fsfreeze, -f, /data], timeout: 30s}\n"
                           "      post:\n"
                           "        - {command: [fsfreeze, -u, /data], on_error: continue}\n"
                           "  frozen:\n"
                           "    kind: fs\n"
                           "    paths: [/etc]\n"
                           "    schedule: '@hourly'\n"
                           "    suspend: true\n"
                           "  manual:\n"
                           "    kind: fs\n"
                           "    paths: [/etc]\n";
  WriteFile(s.Path("bulwark.yaml"), yaml);
  // As of noon UTC the day before Berlin's spring change: 02:30 does not
  // exist on 2024-03-31, so that run is at 03:00 CEST (01:00Z).
  RunResult j = bulwark::testing::Run(
      {BulwarkBin(), "--json", "config", "check", s.Path("bulwark.yaml"), "--after", "2024-03-30T12:00:00Z"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const nlohmann::json out = j.Json();
  EXPECT_EQ(out["valid"], true);
  ASSERT_EQ(out["sources"].size(), 3u);
  const nlohmann::json& berlin = out["sources"][0];
  EXPECT_EQ(berlin["name"], "berlin");
  EXPECT_EQ(berlin["schedule"], "30 2 * * *");
  EXPECT_EQ(berlin["timezone"], "Europe/Berlin");
  EXPECT_EQ(berlin["suspend"], false);
  ASSERT_EQ(berlin["next_runs"].size(), 3u);
  EXPECT_EQ(berlin["next_runs"][0]["utc"], "2024-03-31T01:00:00Z");
  EXPECT_EQ(berlin["next_runs"][0]["local"], "2024-03-31T03:00:00+02:00");
  EXPECT_EQ(berlin["next_runs"][1]["utc"], "2024-04-01T00:30:00Z");
  EXPECT_EQ(berlin["next_runs"][1]["local"], "2024-04-01T02:30:00+02:00");
  EXPECT_EQ(berlin["next_run"], "2024-03-31T01:00:00Z");
  EXPECT_EQ(berlin["hooks"]["pre"][0]["command"], (std::vector<std::string>{"fsfreeze", "-f", "/data"}));
  EXPECT_EQ(berlin["hooks"]["pre"][0]["timeout_seconds"], 30);
  EXPECT_EQ(berlin["hooks"]["pre"][0]["on_error"], "fail");
  EXPECT_EQ(berlin["hooks"]["post"][0]["timeout_seconds"], 600);
  EXPECT_EQ(berlin["hooks"]["post"][0]["on_error"], "continue");
  const nlohmann::json& frozen = out["sources"][1];
  EXPECT_EQ(frozen["suspend"], true);
  EXPECT_EQ(frozen["timezone"], "UTC");
  EXPECT_TRUE(frozen["next_runs"].empty()) << "a suspended source has no runs";
  const nlohmann::json& manual = out["sources"][2];
  EXPECT_TRUE(manual["schedule"].is_null());
  EXPECT_TRUE(manual["next_runs"].empty());

  RunResult text = bulwark::testing::Run(
      {BulwarkBin(), "config", "check", s.Path("bulwark.yaml"), "--after", "2024-03-30T12:00:00Z", "--count", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, s.Path("bulwark.yaml") +
                          ": valid, 1 repositories, 3 sources\n"
                          "  berlin (fs, repository main)\n"
                          "    schedule: 30 2 * * * (time zone Europe/Berlin)\n"
                          "    next run: 2024-03-31T01:00:00Z  (2024-03-31T03:00:00+02:00 Europe/Berlin)\n"
                          "    next run: 2024-04-01T00:30:00Z  (2024-04-01T02:30:00+02:00 Europe/Berlin)\n"
                          "    pre hook: fsfreeze -f /data (timeout 30s, on error fail)\n"
                          "    post hook: fsfreeze -u /data (timeout 10m, on error continue)\n"
                          "  frozen (fs, repository main)\n"
                          "    schedule: @hourly (time zone UTC), suspended: no scheduled runs\n"
                          "  manual (fs, repository main)\n"
                          "    schedule: none (on demand only)\n");

  // An unknown zone is an invalid configuration, reported at its position.
  WriteFile(s.Path("bad.yaml"),
            "version: 1\nrepositories:\n  main:\n    url: /x\nsources:\n  d:\n    kind: fs\n"
            "    paths: [/x]\n    schedule: '@daily'\n    timezone: Europe/Berln\n");
  RunResult bad = bulwark::testing::Run({BulwarkBin(), "config", "check", s.Path("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.yaml:10:15: 'timezone' in source 'd': unknown time zone 'Europe/Berln'"),
            std::string::npos)
      << bad.err;
}

TEST(CliErrors, WrongPasswordMissingRepositoryAndMissingPath) {
  Scratch s;
  s.Init();
  WriteFile(s.Path("wrong"), "not the password\n");
  RunResult w = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "snapshots"}, {"BULWARK_PASSWORD_FILE=" + s.Path("wrong")});
  EXPECT_EQ(w.exit_code, 12);
  EXPECT_NE(w.err.find("wrong password"), std::string::npos) << w.err;
  RunResult env = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "snapshots"}, {"BULWARK_PASSWORD=correct horse battery staple"});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  RunResult m = bulwark::testing::Run({BulwarkBin(), "--repo", s.Path("nope"), "snapshots"}, s.Env());
  EXPECT_EQ(m.exit_code, 10);
  EXPECT_NE(m.err.find(s.Path("nope")), std::string::npos) << m.err;
  RunResult p = s.Bw({"backup", s.Path("does-not-exist")});
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find(s.Path("does-not-exist")), std::string::npos) << p.err;
  RunResult again = s.Bw({"init"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
  RunResult usage = s.Bw({"check", "--read-data-subset", "5/3"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

TEST(CliDamage, CorruptPackIsFoundByCheckAndNamedByRestore) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/big.bin"), RandomBytes(6 << 20, 9));
  WriteFile(s.Path("src/small.txt"), "small");
  ASSERT_EQ(s.Bw({"backup", s.Path("src")}).exit_code, 0);
  ASSERT_EQ(s.Bw({"check", "--read-data"}).exit_code, 0);
  // The largest pack holds big.bin's data.
  std::string victim = LargestObject(s.repo() + "/data");
  ASSERT_FALSE(victim.empty());
  Corrupt(victim);
  RunResult structural = s.Bw({"check"});
  EXPECT_EQ(structural.exit_code, 0) << "structure is intact; only --read-data reads the bytes";
  RunResult c = s.Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 4) << c.err;
  std::string pack_id = fs::path(victim).filename();
  EXPECT_NE(c.err.find(pack_id.substr(0, 8)), std::string::npos) << c.err;
  RunResult r = s.Bw({"restore", "latest", "--target", s.Path("out")});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("big.bin"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileOrDie(s.Path("out") + s.Path("src/small.txt")), "small") << "undamaged files still restore";
}

TEST(CliDamage, MissingAndCorruptMetadataObjectsGiveClearErrors) {
  Scratch s;
  s.Init();
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/f"), RandomBytes(100000, 1));
  ASSERT_EQ(s.Bw({"backup", s.Path("src")}).exit_code, 0);
  // Truncated snapshot object.
  auto snaps = Objects(s.repo() + "/snapshots");
  ASSERT_EQ(snaps.size(), 1u);
  std::string content = ReadFileOrDie(snaps[0]);
  WriteFile(snaps[0], content.substr(0, content.size() / 2));
  RunResult l = s.Bw({"snapshots"});
  EXPECT_NE(l.err.find(fs::path(snaps[0]).filename().string().substr(0, 8)), std::string::npos) << l.err;
  RunResult c = s.Bw({"check"});
  EXPECT_EQ(c.exit_code, 4);
  WriteFile(snaps[0], content);  // repair
  EXPECT_EQ(s.Bw({"check"}).exit_code, 0);
  // Missing pack.
  auto packs = Objects(s.repo() + "/data");
  ASSERT_FALSE(packs.empty());
  std::string saved = ReadFileOrDie(packs[0]);
  fs::remove(packs[0]);
  RunResult mp = s.Bw({"check"});
  EXPECT_EQ(mp.exit_code, 4);
  EXPECT_NE(mp.err.find("missing"), std::string::npos) << mp.err;
  WriteFile(packs[0], saved);
  // Corrupt index object.
  auto idx = Objects(s.repo() + "/index");
  ASSERT_FALSE(idx.empty());
  Corrupt(idx[0]);
  RunResult ci = s.Bw({"restore", "latest", "--target", s.Path("o")});
  EXPECT_EQ(ci.exit_code, 4);
  EXPECT_NE(ci.err.find("index"), std::string::npos) << ci.err;
  // Corrupt config and key.
  Corrupt(s.repo() + "/config");
  RunResult cc = s.Bw({"snapshots"});
  EXPECT_EQ(cc.exit_code, 4);
  EXPECT_NE(cc.err.find("config"), std::string::npos) << cc.err;
  auto keys = Objects(s.repo() + "/keys");
  WriteFile(keys[0], "garbage");
  RunResult ck = s.Bw({"snapshots"});
  EXPECT_NE(ck.exit_code, 0);
  EXPECT_NE(ck.err.find("key"), std::string::npos) << ck.err;
}

TEST(CliKeys, AddChangeAndRemovePasswords) {
  Scratch s;
  s.Init();
  WriteFile(s.Path("pw2"), "second password\n");
  RunResult a = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "--json", "key", "add", "--kdf-ops", "1", "--kdf-memory", "8MiB"},
                    {"BULWARK_PASSWORD_FILE=" + s.Path("password"), "BULWARK_NEW_PASSWORD_FILE=" + s.Path("pw2")});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  RunResult with2 = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "--json", "key", "list"}, {"BULWARK_PASSWORD_FILE=" + s.Path("pw2")});
  ASSERT_EQ(with2.exit_code, 0) << with2.err;
  auto keys = with2.Json();
  ASSERT_EQ(keys.size(), 2u);
  std::string first_id;
  for (auto& k : keys)
    if (!k["current"].get<bool>()) first_id = k["id"];
  // Remove the first password using the second.
  RunResult rm = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "key", "remove", first_id.substr(0, 12)}, {"BULWARK_PASSWORD_FILE=" + s.Path("pw2")});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(s.Bw({"snapshots"}).exit_code, 12) << "the removed password no longer opens the repository";
  RunResult self = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "key", "remove", keys[0]["id"]}, {"BULWARK_PASSWORD_FILE=" + s.Path("pw2")});
  EXPECT_NE(self.exit_code, 0);
}

TEST(CliLocks, LockOfAKilledProcessIsClearedAutomatically) {
  Scratch s;
  s.Init();
  // A backup whose producer blocks: it holds a shared lock while running.
  pid_t pid = fork();
  if (pid == 0) {
    setenv("BULWARK_PASSWORD_FILE", s.Path("password").c_str(), 1);
    execl(BulwarkBin().c_str(), "bulwark", "--repo", s.repo().c_str(), "backup", "--stdin-from-command", "--",
          "sleep", "60", (char*)nullptr);
    _exit(127);
  }
  // Wait (bounded) until its lock object exists.
  bool locked = false;
  for (int i = 0; i < 600 && !locked; ++i) {
    locked = !Objects(s.repo() + "/locks").empty();
    if (!locked) usleep(10000);
  }
  ASSERT_TRUE(locked);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(Objects(s.repo() + "/locks").empty()) << "kill -9 leaves the lock behind";
  // An exclusive operation must not be blocked by it: the holder is provably gone.
  RunResult k = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "key", "remove", std::string(64, 'a')}, s.Env());
  EXPECT_NE(k.err.find("removed stale"), std::string::npos) << k.err;
  EXPECT_EQ(k.err.find("is locked"), std::string::npos) << k.err;
  EXPECT_TRUE(Objects(s.repo() + "/locks").empty());
  bulwark::testing::Run({"pkill", "-f", "sleep 60"});
}

TEST(CliErrors, UnreadableFileIsSkippedAndTheSnapshotIsPartialWithExitCode3) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  Scratch s;
  chmod(s.dir().c_str(), 0755);
  chmod(s.Path("password").c_str(), 0644);
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/readable"), "ok");
  WriteFile(s.Path("src/secret"), "root only");
  chmod(s.Path("src/secret").c_str(), 0000);
  fs::create_directories(s.Path("home"));
  chown(s.Path("home").c_str(), 65534, 65534);
  auto as_nobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BulwarkBin(),
                                  "--repo", s.Path("home/repo")};
    argv.insert(argv.end(), args.begin(), args.end());
    return bulwark::testing::Run(argv, s.Env());
  };
  RunResult probe = bulwark::testing::Run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BulwarkBin(), "--version"});
  if (probe.exit_code != 0) GTEST_SKIP() << "the unprivileged user cannot run " << BulwarkBin() << " from here";
  ASSERT_EQ(as_nobody({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
  RunResult b = as_nobody({"--json", "backup", s.Path("src")});
  EXPECT_EQ(b.exit_code, 3) << b.err;
  auto j = b.Json();
  EXPECT_TRUE(j["partial"].get<bool>());
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_NE(j["errors"][0].get<std::string>().find("secret"), std::string::npos);
  RunResult ls = as_nobody({"ls", "latest"});
  EXPECT_NE(ls.out.find("readable"), std::string::npos);
  EXPECT_EQ(ls.out.find("secret"), std::string::npos);
  RunResult snaps = as_nobody({"snapshots"});
  EXPECT_NE(snaps.out.find("(partial)"), std::string::npos) << snaps.out;
}

TEST(CliErrors, FullDiskFailsCleanlyAndKeepsWhatWasStored) {
  Scratch s;
  std::string mnt = s.Path("small");
  fs::create_directories(mnt);
  if (bulwark::testing::Run({"mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt}).exit_code != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root)";
  struct Unmount {
    std::string m;
    ~Unmount() { bulwark::testing::Run({"umount", m}); }
  } unmount{mnt};
  std::string repo = mnt + "/repo";
  auto bw = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{BulwarkBin(), "--repo", repo};
    argv.insert(argv.end(), args.begin(), args.end());
    return bulwark::testing::Run(argv, s.Env());
  };
  ASSERT_EQ(bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
  fs::create_directories(s.Path("a"));
  WriteFile(s.Path("a/small"), "first backup fits");
  ASSERT_EQ(bw({"backup", s.Path("a")}).exit_code, 0);
  fs::create_directories(s.Path("b"));
  WriteFile(s.Path("b/big"), RandomBytes(40 << 20, 3));
  RunResult full = bw({"backup", s.Path("b")});
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;
  auto list = bw({"--json", "snapshots"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.Json().size(), 1u) << "the failed backup stored no snapshot";
  RunResult c = bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  RunResult r = bw({"restore", "latest", "--target", s.Path("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(s.Path("out") + s.Path("a/small")), "first backup fits");
}

}  // namespace
}  // namespace bulwark::testing
