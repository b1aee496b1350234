#include "bulwark/source/postgres/wal_names.h"

#include <gtest/gtest.h>

#include "bulwark/base/error.h"

namespace bulwark::source::postgres {
namespace {

TEST(PgWalNamesTest, Lsn) {
  EXPECT_EQ(ParseLsn("16/B374D848"), 0x16B374D848ull);
  EXPECT_EQ(ParseLsn("0/17000438"), 0x17000438ull);
  EXPECT_EQ(ParseLsn("0/0"), 0u);
  EXPECT_EQ(ParseLsn("ffffffff/ffffffff"), UINT64_MAX);
  EXPECT_EQ(FormatLsn(0x16B374D848ull), "16/B374D848");
  EXPECT_EQ(FormatLsn(0x17000438ull), "0/17000438");
  for (const char* bad : {"", "/", "0/", "/1", "123456789/0", "0/123456789", "g/0", "0x1/2", "1-2", "1/2/3"})
    EXPECT_FALSE(ParseLsn(bad)) << bad;
}

TEST(PgWalNamesTest, FileNames) {
  auto seg = ParseWalFileName("000000010000000000000010");
  ASSERT_TRUE(seg);
  EXPECT_EQ(*seg, (WalFile{WalFileKind::kSegment, 1, 0x10}));
  // The high part counts 256 segments of 16 MiB each.
  EXPECT_EQ(ParseWalFileName("0000000200000003000000FF")->segno, 3u * 256 + 255);
  EXPECT_EQ(SegmentFileName(2, 3 * 256 + 255), "0000000200000003000000FF");
  EXPECT_EQ(SegmentFileName(1, 0x10), "000000010000000000000010");
  // The segment of an LSN: lsn / 16 MiB ("0/17000438" is in ...17).
  EXPECT_EQ(SegmentFileName(1, SegmentOf(*ParseLsn("0/17000438"))), "000000010000000000000017");
  EXPECT_EQ(SegmentFileName(1, SegmentOf(*ParseLsn("16/B374D848"))), "0000000100000016000000B3");

  EXPECT_EQ(*ParseWalFileName("00000002.history"), (WalFile{WalFileKind::kHistory, 2, 0}));
  EXPECT_EQ(HistoryFileName(0x1A), "0000001A.history");
  EXPECT_EQ(*ParseWalFileName("000000010000000000000010.00000028.backup"), (WalFile{WalFileKind::kBackup, 1, 0x10}));
  EXPECT_EQ(*ParseWalFileName("000000010000000000000017.partial"), (WalFile{WalFileKind::kPartial, 1, 0x17}));

  for (const char* bad :
       {"", "00000001000000000000001", "0000000100000000000000100", "000000000000000000000010" /* TLI 0 */,
        "000000010000000000000100" /* low part >= 256 for 16 MiB */, "00000001000000000000001g",
        "00000001000000000000001a" /* lower case */, "00000000.history", "0000001.history", "00000001.histor",
        "000000010000000000000010.0000002.backup", "000000010000000000000010.backup", "RECOVERYXLOG",
        "archive_status", "../000000010000000000000010", "000000010000000000000010.partial.x"})
    EXPECT_FALSE(ParseWalFileName(bad)) << bad;
  // With 64 MiB segments there are only 64 per high part.
  EXPECT_TRUE(ParseWalFileName("00000001000000000000003F", 64ull << 20));
  EXPECT_FALSE(ParseWalFileName("000000010000000000000040", 64ull << 20));
}

TEST(PgWalNamesTest, History) {
  // Written by PostgreSQL 15 at the second promotion (docs/POSTGRES-NOTES.md §5).
  auto h = ParseHistory("1\t0/170004F0\tbefore 2026-11-21 19:33:29.852203+00\n\n2\t0/1A0000A0\tno recovery target specified\n",
                        "00000003.history");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (TimelineSwitch{1, 0x170004F0}));
  EXPECT_EQ(h[1], (TimelineSwitch{2, 0x1A0000A0}));
  EXPECT_TRUE(ParseHistory("# comment\n", "x").empty());
  for (const char* bad : {"x\t0/1\treason\n", "1\tnot-an-lsn\tr\n", "0\t0/1\tr\n", "2\t0/5\tr\n1\t0/6\tr\n",
                          "1\t0/6\tr\n2\t0/5\tr\n", "99999999999\t0/1\tr\n"}) {
    try {
      ParseHistory(bad, "00000002.history");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
      EXPECT_NE(std::string(e.what()).find("00000002.history: line "), std::string::npos) << e.what();
    }
  }
}

TEST(PgWalNamesTest, CoverageFindsRunsAndGaps) {
  std::vector<std::string> names = {SegmentFileName(1, 5), SegmentFileName(1, 6), SegmentFileName(1, 7),
                                    SegmentFileName(1, 9), SegmentFileName(2, 7), SegmentFileName(2, 8),
                                    "00000002.history", SegmentFileName(1, 6)};
  auto c = Coverage(names);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].timeline, 1u);
  ASSERT_EQ(c[0].runs.size(), 2u);  // segment 8 of timeline 1 is missing
  EXPECT_EQ(c[0].runs[0].first, 5u);
  EXPECT_EQ(c[0].runs[0].last, 7u);
  EXPECT_EQ(c[0].runs[1].first, 9u);
  EXPECT_EQ(c[1].timeline, 2u);
  ASSERT_EQ(c[1].runs.size(), 1u);
  EXPECT_EQ(c[1].runs[0].last, 8u);

  BaseBackupWal b{1, 5ull * (16 << 20) + 40, 7ull * (16 << 20) + 100};
  EXPECT_TRUE(Consistent(b, names));
  b.stop_lsn = 9ull * (16 << 20);  // needs 8, which is missing
  EXPECT_FALSE(Consistent(b, names));
  EXPECT_FALSE(Consistent(BaseBackupWal{3, 0, 16}, names));
}

TEST(PgWalNamesTest, ExpiryKeepsWhatTheOldestKeptBackupNeeds) {
  std::vector<std::string> names;
  for (uint64_t s = 1; s <= 12; ++s) names.push_back(SegmentFileName(1, s));
  names.push_back(SegmentFileName(2, 10));
  names.push_back(SegmentFileName(1, 3) + ".00000028.backup");
  names.push_back(SegmentFileName(1, 8) + ".00000060.backup");
  names.push_back(SegmentFileName(1, 10) + ".partial");
  names.push_back("00000002.history");
  names.push_back("something-else");

  // No base backup kept: nothing expires (the archive may be all there is).
  EXPECT_TRUE(ExpirableWal(names, {}).empty());

  // Kept: a backup starting in segment 8 (timeline 1) and one in 10 (timeline 2).
  const uint64_t seg = 16ull << 20;
  auto gone = ExpirableWal(names, {{1, 8 * seg + 0x60, 8 * seg + 0x200}, {2, 10 * seg, 10 * seg + 5}});
  std::vector<std::string> want;
  for (uint64_t s = 1; s <= 7; ++s) want.push_back(SegmentFileName(1, s));
  want.push_back(SegmentFileName(1, 3) + ".00000028.backup");
  std::sort(want.begin(), want.end());
  EXPECT_EQ(gone, want);
}

}  // namespace
}  // namespace bulwark::source::postgres
