// End-to-end tests of `check --read-data --max-age`: verified packs are
// remembered in the local cache (BULWARK_CACHE_DIR) and only packs that are
// due are read again.
#include <gtest/gtest.h>

#include <filesystem>

#include "bulwark/repo/cache.h"
#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// A repository with three snapshots: each wrote a data pack and a tree pack.
void ThreeBackups(const Scratch& s) {
  s.Init();
  for (int i = 0; i < 3; ++i) {
    fs::create_directories(s.Path("src" + std::to_string(i)));
    WriteFile(s.Path("src" + std::to_string(i) + "/f"), RandomBytes((i + 1) << 20, 50 + i));
    ASSERT_EQ(s.Bw({"backup", s.Path("src" + std::to_string(i))}).exit_code, 0);
  }
}

nlohmann::json CheckJson(const Scratch& s, std::vector<std::string> extra, int want_exit = 0) {
  std::vector<std::string> args{"--json", "check", "--read-data"};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = s.Bw(args);
  EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
  return r.Json();
}

std::string CacheFile(const Scratch& s) {
  std::string id = s.Bw({"cat", "config"}).Json()["id"];
  return s.CacheDir() + "/" + id + "/verified-packs";
}

TEST(CheckMaxAge, SecondRunReadsNothingAndADamagedPackIsFoundOnlyWithoutMaxAge) {
  Scratch s;
  ThreeBackups(s);
  size_t packs = Objects(s.repo() + "/data").size();
  ASSERT_GE(packs, 6u);
  auto first = CheckJson(s, {"--max-age", "7d"});
  EXPECT_EQ(first["packs_read"], packs) << "nothing verified yet: every pack is due";
  EXPECT_EQ(first["packs_skipped_recent"], 0);
  ASSERT_TRUE(fs::exists(CacheFile(s)));
  auto second = CheckJson(s, {"--max-age", "7d"});
  EXPECT_EQ(second["packs_read"], 0);
  EXPECT_EQ(second["packs_skipped_recent"], packs);
  RunResult text = s.Bw({"check", "--read-data", "--max-age", "7d"});
  EXPECT_NE(text.out.find("skipped " + std::to_string(packs) + " packs verified recently"), std::string::npos) << text.out;

  // Damage after the last verification: --max-age does not notice until the
  // pack falls due again (documented); a plain --read-data does.
  std::string victim = LargestObject(s.repo() + "/data");
  Corrupt(victim);
  auto skipped = CheckJson(s, {"--max-age", "7d"});
  EXPECT_EQ(skipped["packs_read"], 0);
  auto full = CheckJson(s, {}, 4);
  EXPECT_EQ(full["packs_read"], packs);
  EXPECT_FALSE(full["ok"].get<bool>());
  // The damaged pack lost its record: the next --max-age run reads it again.
  auto again = CheckJson(s, {"--max-age", "7d"}, 4);
  EXPECT_EQ(again["packs_read"], 1);
  EXPECT_EQ(again["packs_skipped_recent"], packs - 1);
  std::string pack_id = fs::path(victim).filename();
  EXPECT_NE(again["errors"].dump().find(pack_id.substr(0, 8)), std::string::npos) << again.dump();
}

TEST(CheckMaxAge, SubsetsAreRecordedAndRemovedPacksAreDropped) {
  Scratch s;
  ThreeBackups(s);
  size_t packs = Objects(s.repo() + "/data").size();
  RunResult sub = s.Bw({"--json", "check", "--read-data-subset", "1/2"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  uint64_t in_subset = sub.Json()["packs_read"];
  auto rest = CheckJson(s, {"--max-age", "30d"});
  EXPECT_EQ(rest["packs_read"].get<uint64_t>(), packs - in_subset) << "the subset's packs were recorded";
  EXPECT_EQ(rest["packs_skipped_recent"].get<uint64_t>(), in_subset);

  std::string gone = Objects(s.repo() + "/data")[0];
  fs::remove(gone);
  CheckJson(s, {"--max-age", "30d"}, 4);  // the missing pack is an error
  std::string content = ReadFileOrDie(CacheFile(s));
  auto v = repo::VerifiedPacks::Decode(AsBytes(content), "cache");
  EXPECT_EQ(v.packs.size(), packs - 1);
  EXPECT_EQ(v.packs.count(Id::FromHexOrThrow(fs::path(gone).filename().string())), 0u)
      << "a pack no longer in the repository is dropped";
}

TEST(CheckMaxAge, DamagedCacheIsIgnoredWithAWarningAndUsageErrors) {
  Scratch s;
  ThreeBackups(s);
  size_t packs = Objects(s.repo() + "/data").size();
  CheckJson(s, {"--max-age", "7d"});
  Corrupt(CacheFile(s));
  RunResult r = s.Bw({"--json", "check", "--read-data", "--max-age", "7d"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("ignoring the cache of verified packs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(CacheFile(s)), std::string::npos) << r.err;
  EXPECT_EQ(r.Json()["packs_read"], packs) << "without records every pack is due";
  EXPECT_EQ(CheckJson(s, {"--max-age", "7d"})["packs_read"], 0) << "rewritten intact";

  EXPECT_EQ(s.Bw({"check", "--max-age", "7d"}).exit_code, 2) << "--max-age needs --read-data";
  EXPECT_EQ(s.Bw({"check", "--read-data", "--max-age", "7x"}).exit_code, 2);
  RunResult nc = s.Bw({"--no-cache", "check", "--read-data", "--max-age", "7d"});
  EXPECT_EQ(nc.exit_code, 2);
  EXPECT_NE(nc.err.find("cache"), std::string::npos) << nc.err;
  // --no-cache with a plain --read-data reads everything and leaves the cache alone.
  auto before = fs::last_write_time(CacheFile(s));
  RunResult plain = s.Bw({"--json", "--no-cache", "check", "--read-data"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.Json()["packs_read"], packs);
  EXPECT_EQ(fs::last_write_time(CacheFile(s)), before);
}

}  // namespace
}  // namespace bulwark::testing
