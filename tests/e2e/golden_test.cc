// Format stability: tests/golden/repo-v1 was written by bulwark 0.1.0 (format
// version 1) and is committed. Every later build must still read it: if this
// test fails, the on-disk format changed without a version bump or a reader
// for the old version (docs/FORMAT.md).
#include <gtest/gtest.h>

#include <filesystem>

#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

std::string GoldenDir() { return (fs::path(__FILE__).parent_path().parent_path() / "golden").string(); }

TEST(GoldenRepository, Version1RepositoryStillReadsAndVerifies) {
  Scratch s;
  fs::copy(GoldenDir() + "/repo-v1", s.repo(), fs::copy_options::recursive);  // commands write locks
  std::vector<std::string> env{"BULWARK_PASSWORD_FILE=" + GoldenDir() + "/repo-v1.password",
                               "BULWARK_CACHE_DIR=" + s.CacheDir()};
  auto bw = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{BulwarkBin(), "--repo", s.repo()};
    argv.insert(argv.end(), args.begin(), args.end());
    return bulwark::testing::Run(argv, env);
  };
  RunResult list = bw({"--json", "snapshots"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto snaps = list.Json();
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0]["time"], "2026-01-02T03:04:05.000000000Z");
  EXPECT_EQ(snaps[0]["host"], "golden");
  EXPECT_EQ(snaps[0]["tags"][0], "v1");
  EXPECT_EQ(bw({"dump", snaps[0]["id"], "/tmp/golden-src/dir/hello.txt"}).out, "golden file\n");
  EXPECT_EQ(bw({"dump", "latest", "/s.bin"}).out, "stream content");
  RunResult ls = bw({"--json", "ls", snaps[0]["id"], "/tmp/golden-src/dir"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"link_target\":\"hello.txt\""), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("2026-01-02T03:04:05.123456789Z"), std::string::npos) << "mtime with nanoseconds";
  RunResult c = bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
}

}  // namespace
}  // namespace bulwark::testing
