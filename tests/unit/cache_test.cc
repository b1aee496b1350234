// Tests for src/bulwark/repo/cache.h: the cache directory rule, the
// verified-packs file (round trip, damaged and foreign files ignored) and the
// re-verification rule of `check --read-data --max-age` (bounds and spread).
#include "bulwark/repo/cache.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {
namespace {

Id IdOf(const std::string& s) { return crypto::Sha256(AsBytes(s)); }

VerifiedPacks Sample() {
  VerifiedPacks v;
  v.repository = IdOf("repo");
  for (int i = 0; i < 50; ++i) v.packs[IdOf("pack " + std::to_string(i))] = 1795255200 + i * 3600;
  v.packs[IdOf("epoch")] = 0;
  v.packs[IdOf("far")] = INT64_MAX;
  return v;
}

void WriteBytes(const std::string& path, ByteSpan b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

TEST(CacheDir, PrecedenceOfTheEnvironment) {
  EXPECT_EQ(CacheBaseDir("/c", "/x", "/h"), "/c");
  EXPECT_EQ(CacheBaseDir("", "/x", "/h"), "/x/bulwark");
  EXPECT_EQ(CacheBaseDir(nullptr, nullptr, "/h"), "/h/.cache/bulwark");
  EXPECT_EQ(CacheBaseDir(nullptr, "", ""), "");
}

TEST(VerifiedPacksFile, RoundTripThroughTheFile) {
  VerifiedPacks v = Sample();
  Bytes enc = v.Encode();
  VerifiedPacks back = VerifiedPacks::Decode(enc, "f");
  EXPECT_EQ(back.repository, v.repository);
  EXPECT_EQ(back.packs, v.packs);
  EXPECT_EQ(back.Encode(), enc);

  TempDir d;
  std::string dir = d.path() + "/nested/" + v.repository.Hex();  // created on save
  std::string warning;
  EXPECT_TRUE(LoadVerifiedPacks(dir, v.repository, &warning).packs.empty()) << "no file yet";
  EXPECT_EQ(warning, "");
  SaveVerifiedPacks(dir, v);
  VerifiedPacks loaded = LoadVerifiedPacks(dir, v.repository, &warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(loaded.packs, v.packs);
  v.packs.erase(v.packs.begin());
  SaveVerifiedPacks(dir, v);  // replaced, not appended
  EXPECT_EQ(LoadVerifiedPacks(dir, v.repository, &warning).packs, v.packs);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1) << "no temp files left";
}

TEST(VerifiedPacksFile, DamagedOrForeignFilesAreIgnoredWithAWarning) {
  TempDir d;
  VerifiedPacks v = Sample();
  std::string path = d.path() + "/" + std::string(kVerifiedPacksFile);
  Bytes good = v.Encode();
  auto load = [&](std::string* warning) { return LoadVerifiedPacks(d.path(), v.repository, warning); };
  for (size_t pos : {size_t(0), size_t(4), size_t(10), good.size() / 2, good.size() - 1}) {
    Bytes bad = good;
    bad[pos] ^= 0x01;
    WriteBytes(path, bad);
    std::string warning;
    EXPECT_TRUE(load(&warning).packs.empty()) << pos;
    EXPECT_NE(warning.find(path), std::string::npos) << warning;
  }
  WriteBytes(path, ByteSpan(good).first(good.size() - 7));
  std::string warning;
  EXPECT_TRUE(load(&warning).packs.empty());
  EXPECT_NE(warning.find("checksum"), std::string::npos) << warning;
  WriteBytes(path, AsBytes("garbage"));
  EXPECT_TRUE(load(&warning).packs.empty());
  // Another repository's file (copied into the wrong directory).
  VerifiedPacks other = v;
  other.repository = IdOf("other repo");
  WriteBytes(path, other.Encode());
  VerifiedPacks loaded = load(&warning);
  EXPECT_TRUE(loaded.packs.empty());
  EXPECT_EQ(loaded.repository, v.repository);
  EXPECT_NE(warning.find("belongs to repository"), std::string::npos) << warning;
  // A directory where the file should be: unreadable, still only a warning.
  std::filesystem::remove(path);
  std::filesystem::create_directory(path);
  warning.clear();
  EXPECT_TRUE(load(&warning).packs.empty());
  EXPECT_NE(warning, "");
}

// Builds a file with a valid checksum around `entries` (already encoded).
Bytes WithChecksum(const Id& repo, uint64_t n, const Bytes& entries) {
  Bytes out;
  Writer w(&out);
  w.Raw(AsBytes("BWVP"));
  w.U8(1);
  w.Raw(repo);
  w.Varint(n);
  w.Raw(entries);
  w.Raw(crypto::Sha256(out));
  return out;
}

TEST(VerifiedPacksFile, DecodeRejectsUnsortedDuplicateAndOversizedEntries) {
  Id repo = IdOf("r"), a = IdOf("a"), b = IdOf("b");
  if (b < a) std::swap(a, b);
  auto entries = [](std::vector<std::pair<Id, uint64_t>> es) {
    Bytes out;
    Writer w(&out);
    for (auto& [id, t] : es) {
      w.Raw(id);
      w.Varint(t);
    }
    return out;
  };
  EXPECT_NO_THROW(VerifiedPacks::Decode(WithChecksum(repo, 2, entries({{a, 1}, {b, 2}})), "f"));
  auto code = [](const Bytes& b) { return CodeOf([&] { VerifiedPacks::Decode(b, "f"); }); };
  EXPECT_EQ(code(WithChecksum(repo, 2, entries({{b, 1}, {a, 2}}))), ErrorCode::kCorrupt);
  EXPECT_EQ(code(WithChecksum(repo, 2, entries({{a, 1}, {a, 2}}))), ErrorCode::kCorrupt);
  EXPECT_EQ(code(WithChecksum(repo, 1, entries({{a, uint64_t(INT64_MAX) + 1}}))), ErrorCode::kCorrupt);
  EXPECT_EQ(code(WithChecksum(repo, 3, entries({{a, 1}, {b, 2}}))), ErrorCode::kCorrupt);
  EXPECT_EQ(code(WithChecksum(repo, 1, entries({{a, 1}, {b, 2}}))), ErrorCode::kCorrupt) << "trailing bytes";
  EXPECT_EQ(code(WithChecksum(repo, uint64_t(1) << 60, {})), ErrorCode::kCorrupt);
  Bytes v2 = WithChecksum(repo, 0, {});
  v2[4] = 2;
  Bytes resealed(v2.begin(), v2.end() - 32);
  Id sum = crypto::Sha256(resealed);
  resealed.insert(resealed.end(), sum.b.begin(), sum.b.end());
  EXPECT_EQ(code(resealed), ErrorCode::kCorrupt);
}

TEST(ReverifyRule, BoundsAndEdges) {
  const int64_t week = 7 * 86400, now = 1795255200;
  for (int i = 0; i < 2000; ++i) {
    Id p = IdOf("p" + std::to_string(i));
    int64_t after = ReverifyAfter(p, now - 1000, week);
    ASSERT_GE(after, week / 2) << i;
    ASSERT_LT(after, week) << i;
    EXPECT_GE(SpreadOf(p, now), 0.0);
    EXPECT_LT(SpreadOf(p, now), 1.0);
    EXPECT_TRUE(IsDue(p, std::nullopt, now, week)) << "never verified";
    EXPECT_FALSE(IsDue(p, now, now, week)) << "just verified";
    EXPECT_FALSE(IsDue(p, now - 1000, now - 1000 + after - 1, week));
    EXPECT_TRUE(IsDue(p, now - 1000, now - 1000 + after, week));
    EXPECT_TRUE(IsDue(p, now - week, now, week)) << "never older than max age";
    EXPECT_TRUE(IsDue(p, now + 60, now, week)) << "a time in the future is not trusted";
  }
  Id p = IdOf("x");
  EXPECT_GE(ReverifyAfter(p, now, INT64_MAX), INT64_MAX / 2) << "no overflow";
  EXPECT_EQ(ReverifyAfter(p, now, 1), 0);
  EXPECT_EQ(ReverifyAfter(p, now, 0), 0);
  EXPECT_TRUE(IsDue(p, INT64_MIN, INT64_MAX, week)) << "no overflow";
  EXPECT_FALSE(IsDue(p, INT64_MAX, INT64_MAX, week));
  // Deterministic, and drawn afresh for each verification time.
  EXPECT_EQ(SpreadOf(p, now), SpreadOf(p, now));
  EXPECT_NE(SpreadOf(p, now), SpreadOf(p, now + 1));
}

TEST(ReverifyRule, PacksVerifiedTogetherSpreadOutAndNoneWaitsLongerThanMaxAge) {
  // 700 packs verified together on day 0, then a daily job with --max-age 7d
  // for 12 weeks.
  const int64_t day = 86400, week = 7 * day;
  const int n = 700;
  std::vector<Id> packs;
  std::vector<int64_t> last(n, 0), longest_gap(n, 0);
  for (int i = 0; i < n; ++i) packs.push_back(IdOf("pack " + std::to_string(i)));
  // u is spread over [0, 1): every quarter holds a fair share.
  int quarters[4] = {};
  for (const auto& p : packs) quarters[static_cast<int>(SpreadOf(p, 0) * 4)]++;
  for (int q : quarters) EXPECT_GT(q, n / 4 - 60) << "u is not uniform";
  int max_daily_late = 0;
  for (int d = 1; d <= 84; ++d) {
    int reads = 0;
    for (int i = 0; i < n; ++i) {
      if (!IsDue(packs[i], last[i], d * day, week)) continue;
      longest_gap[i] = std::max(longest_gap[i], d * day - last[i]);
      last[i] = d * day;
      reads++;
    }
    if (d > 28) max_daily_late = std::max(max_daily_late, reads);
  }
  for (int i = 0; i < n; ++i) EXPECT_LE(longest_gap[i], week) << "pack " << i;
  // Without the spread every pack would be read on the same day each week
  // (700 reads, then none for six days); with it, after a few weeks no day
  // reads much more than the average (n / 5.7: the mean interval of a daily
  // job is 40/7 days).
  EXPECT_LT(max_daily_late, n / 4);
}

}  // namespace
}  // namespace bulwark::repo
