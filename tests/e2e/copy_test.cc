// End-to-end tests of `bulwark copy` and `init --copy-chunker-params`: copies
// between repositories with different passwords, keys and chunker
// parameters restore identically, are idempotent, move only missing blobs,
// and fail cleanly on damaged sources.
#include <gtest/gtest.h>

#include <filesystem>

#include "harness.h"
#include "treegen.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// Runs `bulwark --repo <to> ARGS` with <to>'s password and <from>'s as the
// source password (BULWARK_FROM_PASSWORD_FILE).
RunResult BwFrom(const Scratch& from, const Scratch& to, std::vector<std::string> args) {
  std::vector<std::string> argv{BulwarkBin(), "--repo", to.repo()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = to.Env();
  env.push_back("BULWARK_FROM_PASSWORD_FILE=" + from.Path("password"));
  return testing::Run(argv, env);
}

RunResult CopyJson(const Scratch& from, const Scratch& to, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--json", "copy", "--from-repo", from.repo()};
  args.insert(args.end(), extra.begin(), extra.end());
  return BwFrom(from, to, args);
}

// A second repository with its own password.
void UseOtherPassword(const Scratch& s) { WriteFile(s.Path("password"), "a different destination password\n"); }

nlohmann::json Snapshots(const Scratch& s) {
  RunResult r = s.Bw({"--json", "snapshots"});
  if (r.exit_code != 0) ADD_FAILURE() << r.err;
  return r.Json();
}

TEST(Copy, DifferentPasswordsAndChunkerParamsRestoreIdenticallyAndASecondRunCopiesNothing) {
  Scratch a, b;
  a.Init();
  UseOtherPassword(b);
  RunResult init = b.Bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB", "--chunk-min", "64KiB", "--chunk-avg",
                         "256KiB", "--chunk-max", "1MiB", "--compression", "9"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  TreeGenOptions o;
  o.seed = 21;
  o.files = 60;
  o.sparse_large = false;
  GenerateTree(a.Path("src"), o);
  GenerateTree(a.Path("orig"), o);  // deterministic: the first state, kept
  ASSERT_EQ(a.Bw({"backup", a.Path("src")}).exit_code, 0);
  MutateTree(a.Path("src"), 5, 0.2);
  ASSERT_EQ(a.Bw({"backup", a.Path("src"), "--tag", "second"}).exit_code, 0);

  RunResult c = CopyJson(a, b);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto j = c.Json();
  EXPECT_EQ(j["snapshots_copied"], 2);
  EXPECT_EQ(j["snapshots_skipped"], 0);
  EXPECT_FALSE(j["shared_id_key"].get<bool>()) << "independent repositories have different blob-id keys";
  EXPECT_GT(j["blobs_copied"].get<uint64_t>(), 0u);
  EXPECT_GT(j["bytes_read"].get<uint64_t>(), 0u);

  // Copies record their origin and restore to exactly the source trees.
  auto src_snaps = Snapshots(a), dst_snaps = Snapshots(b);
  ASSERT_EQ(dst_snaps.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(dst_snaps[i]["copied_from"]["snapshot"], src_snaps[i]["id"]);
    EXPECT_EQ(dst_snaps[i]["time"], src_snaps[i]["time"]);
    EXPECT_NE(dst_snaps[i]["tree"], src_snaps[i]["tree"]) << "different keys: trees are rewritten";
  }
  EXPECT_EQ(dst_snaps[1]["tags"][0], "second");
  ASSERT_EQ(b.Bw({"restore", "latest", "--target", b.Path("out2")}).exit_code, 0);
  ExpectIdentical(a.Path("src"), b.Path("out2") + a.Path("src"));
  ASSERT_EQ(b.Bw({"restore", dst_snaps[0]["id"], "--target", b.Path("out1")}).exit_code, 0);
  ExpectIdentical(a.Path("orig"), b.Path("out1") + a.Path("src"));
  RunResult check = b.Bw({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // Idempotent: a second run copies nothing and says so.
  RunResult again = BwFrom(a, b, {"copy", "--from-repo", a.repo()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to copy"), std::string::npos) << again.out;
  auto j2 = CopyJson(a, b).Json();
  EXPECT_EQ(j2["snapshots_copied"], 0);
  EXPECT_EQ(j2["snapshots_skipped"], 2);
  EXPECT_EQ(j2["blobs_copied"], 0);
  EXPECT_EQ(j2["bytes_read"], 0) << "skipped snapshots are not walked";
  EXPECT_EQ(Snapshots(b).size(), 2u);

  // Copying back does not duplicate: the copies' origin is A.
  auto back = BwFrom(b, a, {"--json", "copy", "--from-repo", b.repo()});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.Json()["snapshots_copied"], 0);

  // --dry-run lists a new snapshot and writes nothing.
  WriteFile(a.Path("src/new-file"), "new content");
  ASSERT_EQ(a.Bw({"backup", a.Path("src")}).exit_code, 0);
  auto dry = CopyJson(a, b, {"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  auto jd = dry.Json();
  EXPECT_EQ(jd["snapshots_copied"], 1);
  EXPECT_FALSE(jd["exact"].get<bool>());
  EXPECT_EQ(jd["snapshots"][2]["status"], "would_copy");
  EXPECT_EQ(jd["snapshots"][2]["source_snapshot"], Snapshots(a)[2]["id"]);
  EXPECT_EQ(Snapshots(b).size(), 2u);
}

TEST(Copy, CopyChunkerParamsShareBlobIdsAndAnIncrementalCopyMovesOnlyNewBlobs) {
  Scratch a, b;
  a.Init();
  UseOtherPassword(b);
  fs::create_directories(a.Path("src/sub"));
  WriteFile(a.Path("src/big.bin"), RandomBytes(5 << 20, 31));
  WriteFile(a.Path("src/sub/text.txt"), std::string(300000, 't'));
  ASSERT_EQ(a.Bw({"backup", a.Path("src")}).exit_code, 0);
  RunResult init = BwFrom(a, b, {"--json", "init", "--kdf-ops", "1", "--kdf-memory", "8MiB", "--copy-chunker-params",
                                 "--from-repo", a.repo()});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  RunResult cfg = a.Bw({"cat", "config"});
  ASSERT_EQ(cfg.exit_code, 0) << cfg.err;
  EXPECT_EQ(init.Json()["chunker_params_from"], cfg.Json()["id"]);

  RunResult c1 = CopyJson(a, b);
  ASSERT_EQ(c1.exit_code, 0) << c1.err;
  auto j1 = c1.Json();
  EXPECT_TRUE(j1["shared_id_key"].get<bool>());
  EXPECT_EQ(j1["snapshots_copied"], 1);
  EXPECT_EQ(Snapshots(b)[0]["tree"], Snapshots(a)[0]["tree"]) << "same blob ids: trees are copied verbatim";

  // A small change: only its blobs move, and only the new data is read.
  WriteFile(a.Path("src/sub/new.txt"), "new");
  ASSERT_EQ(a.Bw({"backup", a.Path("src")}).exit_code, 0);
  RunResult c2 = CopyJson(a, b);
  ASSERT_EQ(c2.exit_code, 0) << c2.err;
  auto j2 = c2.Json();
  EXPECT_EQ(j2["snapshots_copied"], 1);
  EXPECT_EQ(j2["snapshots_skipped"], 1);
  EXPECT_EQ(j2["blobs_read"], 1) << "only new.txt's chunk is read; present blobs are skipped by id";
  EXPECT_EQ(j2["bytes_read"], 3);
  // new.txt's blob plus the trees on the path from the root to src/sub.
  size_t depth = 0;
  for (char ch : a.Path("src/sub")) depth += ch == '/';
  EXPECT_EQ(j2["blobs_copied"].get<size_t>(), 1 + depth + 1);
  EXPECT_EQ(Snapshots(b)[1]["tree"], Snapshots(a)[1]["tree"]);

  // Deduplication carries over: re-reading the same data into B adds no data.
  RunResult again = b.Bw({"--json", "backup", "--force", a.Path("src")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  // No data is new; only the trees of ancestor directories may be (tests
  // running in parallel change /tmp's mtime).
  EXPECT_LT(again.Json()["bytes_added"].get<uint64_t>(), 1024u);
  ASSERT_EQ(b.Bw({"restore", Snapshots(b)[1]["id"], "--target", b.Path("out")}).exit_code, 0);
  ExpectIdentical(a.Path("src"), b.Path("out") + a.Path("src"));
  EXPECT_EQ(b.Bw({"check", "--read-data"}).exit_code, 0);
}

TEST(Copy, DamagedSourceBlobFailsClearlyAndLeavesTheDestinationConsistent) {
  Scratch a, b;
  a.Init();
  b.Init();
  // zero.bin's only copy lives in the first snapshot's pack; the second
  // snapshot holds a big new file (copied, and uploaded, first) and zero.bin.
  fs::create_directories(a.Path("one"));
  WriteFile(a.Path("one/zero.bin"), RandomBytes(3 << 20, 41));
  ASSERT_EQ(a.Bw({"backup", a.Path("one")}).exit_code, 0);
  std::string victim = LargestObject(a.repo() + "/data");
  ASSERT_FALSE(victim.empty());
  fs::create_directories(a.Path("two"));
  WriteFile(a.Path("two/a-big.bin"), RandomBytes(20 << 20, 42));
  fs::copy_file(a.Path("one/zero.bin"), a.Path("two/zero.bin"));
  RunResult b2 = a.Bw({"--json", "backup", a.Path("two")});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  std::string second = b2.Json()["snapshot_id"];
  std::string intact = ReadFileOrDie(victim);
  Corrupt(victim);

  RunResult c = BwFrom(a, b, {"copy", "--from-repo", a.repo(), second});
  EXPECT_EQ(c.exit_code, 4) << c.out << c.err;
  EXPECT_NE(c.err.find("copying snapshot " + second.substr(0, 8)), std::string::npos) << c.err;
  EXPECT_NE(c.err.find(a.Path("two/zero.bin")), std::string::npos) << "names the damaged file: " << c.err;
  EXPECT_NE(c.err.find("pack " + fs::path(victim).filename().string().substr(0, 8)), std::string::npos) << c.err;
  EXPECT_EQ(Snapshots(b).size(), 0u) << "no snapshot is written for a copy that failed";
  EXPECT_FALSE(Objects(b.repo() + "/data").empty()) << "a-big.bin's first pack was uploaded before the failure";
  RunResult check = b.Bw({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // Repaired, the copy completes and restores.
  WriteFile(victim, intact);
  RunResult ok = CopyJson(a, b);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.Json()["snapshots_copied"], 2);
  ASSERT_EQ(b.Bw({"restore", "latest", "--target", b.Path("out")}).exit_code, 0);
  ExpectIdentical(a.Path("two"), b.Path("out") + a.Path("two"));
  EXPECT_EQ(b.Bw({"check", "--read-data"}).exit_code, 0);
}

TEST(Copy, WrongSourcePasswordExits12AndTheSameRepositoryIsRefused) {
  Scratch a, b;
  a.Init();
  UseOtherPassword(b);
  b.Init();
  WriteFile(a.Path("src"), "x");
  ASSERT_EQ(a.Bw({"backup", a.Path("src")}).exit_code, 0);
  RunResult w = testing::Run({BulwarkBin(), "--repo", b.repo(), "copy", "--from-repo", a.repo()},
                    {"BULWARK_PASSWORD_FILE=" + b.Path("password"), "BULWARK_FROM_PASSWORD=not the password"});
  EXPECT_EQ(w.exit_code, 12) << w.err;
  EXPECT_NE(w.err.find("wrong password"), std::string::npos) << w.err;
  EXPECT_NE(w.err.find("source repository " + a.repo()), std::string::npos) << w.err;
  EXPECT_EQ(w.err.find("not the password"), std::string::npos) << "never print a password";
  // The destination's password is the normal one: giving A's fails too.
  RunResult wd = testing::Run({BulwarkBin(), "--repo", b.repo(), "copy", "--from-repo", a.repo()},
                     {"BULWARK_PASSWORD_FILE=" + a.Path("password"), "BULWARK_FROM_PASSWORD_FILE=" + a.Path("password")});
  EXPECT_EQ(wd.exit_code, 12) << wd.err;
  EXPECT_EQ(Snapshots(b).size(), 0u);
  RunResult same = BwFrom(a, a, {"copy", "--from-repo", a.repo()});
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_NE(same.err.find("same repository"), std::string::npos) << same.err;
  RunResult none = b.Bw({"copy"});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("--from-repo"), std::string::npos) << none.err;
}

TEST(Copy, ConfiguredSourceCopiesToEveryCopyToRepository) {
  Scratch s, off;
  UseOtherPassword(off);
  fs::create_directories(s.Path("data"));
  WriteFile(s.Path("data/a.txt"), "configured");
  std::string yaml = "version: 1\n"
                     "default_repository: main\n"
                     "repositories:\n" +
                     YamlRepository("main", s.repo(), s.Path("password")) +
                     YamlRepository("offsite", off.repo(), off.Path("password")) +
                     "sources:\n"
                     "  docs:\n"
                     "    kind: fs\n"
                     "    paths: [" + s.Path("data") + "]\n"
                     "    copy_to: [offsite]\n"
                     "  other:\n"
                     "    kind: fs\n"
                     "    paths: [" + s.Path("data") + "]\n";
  WriteFile(s.Path("bulwark.yaml"), yaml);
  auto bw = [&](std::vector<std::string> args) { return BwConfig(s.Path("bulwark.yaml"), args); };
  ASSERT_EQ(bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
  off.Init();
  ASSERT_EQ(bw({"backup", "--source", "docs"}).exit_code, 0);
  ASSERT_EQ(bw({"backup", "--source", "other"}).exit_code, 0);
  RunResult c = bw({"--json", "copy", "--source", "docs"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.Json()["snapshots_copied"], 1) << "only the source's own snapshots";
  EXPECT_EQ(c.Json()["to"], off.repo());
  auto snaps = Snapshots(off);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0]["source"], "docs");
  RunResult all = bw({"--json", "copy", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.Json()["snapshots_copied"], 0);
  EXPECT_EQ(all.Json()["snapshots_skipped"], 1);
  RunResult no_copy_to = bw({"copy", "--source", "other"});
  EXPECT_EQ(no_copy_to.exit_code, 2);
  EXPECT_NE(no_copy_to.err.find("no copy_to"), std::string::npos) << no_copy_to.err;
  RunResult dump = off.Bw({"dump", "latest", s.Path("data/a.txt")});
  EXPECT_EQ(dump.out, "configured") << dump.err;
}

}  // namespace
}  // namespace bulwark::testing
