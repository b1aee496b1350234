// Tests for src/bulwark/repo/tree_cache.h: ranged reads until a pack has
// served enough trees, then one whole download; one download however many
// threads ask at once; bounded memory; errors.
#include "bulwark/repo/tree_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "test_util.h"

namespace bulwark::repo {
namespace {

Id PackId(int n) {
  Id id{};
  id.b[0] = static_cast<uint8_t>(n);
  return id;
}

struct Counting {
  Bytes pack;
  std::atomic<int> ranged{0}, whole{0};
  Bytes Read(TreePackCache& c, const Id& id, uint64_t off, uint64_t len) {
    return c.Read(
        id, off, len,
        [&] {
          ranged++;
          return Bytes(pack.begin() + static_cast<ptrdiff_t>(off), pack.begin() + static_cast<ptrdiff_t>(off + len));
        },
        [&] {
          whole++;
          return pack;
        });
  }
};

TEST(TreePackCache, RangedReadsFirstThenOneWholeDownload) {
  TreePackCache cache(1 << 20);
  Counting src{RandomData(4096, 1)};
  for (int i = 0; i < 100; ++i) {
    uint64_t off = static_cast<uint64_t>(i) * 37 % 4000;
    Bytes got = src.Read(cache, PackId(1), off, 50);
    EXPECT_EQ(got, Bytes(src.pack.begin() + static_cast<ptrdiff_t>(off), src.pack.begin() + static_cast<ptrdiff_t>(off + 50)));
  }
  EXPECT_EQ(src.ranged.load(), TreePackCache::kRangedReadsBeforeWholePack);
  EXPECT_EQ(src.whole.load(), 1);
  EXPECT_EQ(cache.whole_fetches(), 1u);
}

TEST(TreePackCache, ConcurrentReadersShareOneDownload) {
  TreePackCache cache(1 << 20);
  Counting src{RandomData(8192, 2)};
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        uint64_t off = static_cast<uint64_t>(t * 50 + i) * 13 % 8000;
        if (src.Read(cache, PackId(2), off, 64) !=
            Bytes(src.pack.begin() + static_cast<ptrdiff_t>(off), src.pack.begin() + static_cast<ptrdiff_t>(off + 64)))
          wrong++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(src.whole.load(), 1);
  EXPECT_LE(src.ranged.load(), TreePackCache::kRangedReadsBeforeWholePack);
}

TEST(TreePackCache, MemoryIsBoundedLeastRecentlyUsedGoesFirst) {
  TreePackCache cache(10000);  // room for two 4 KiB packs, not three
  Counting a{RandomData(4096, 3)}, b{RandomData(4096, 4)}, c{RandomData(4096, 5)};
  auto warm = [&](Counting& s, int n) {
    for (int i = 0; i <= TreePackCache::kRangedReadsBeforeWholePack; ++i) s.Read(cache, PackId(n), 0, 10);
  };
  warm(a, 1);
  warm(b, 2);
  a.Read(cache, PackId(1), 0, 10);  // a is now the most recently used
  warm(c, 3);                       // evicts b
  int whole_a = a.whole, whole_b = b.whole;
  a.Read(cache, PackId(1), 100, 10);
  EXPECT_EQ(a.whole.load(), whole_a) << "a stayed in memory";
  b.Read(cache, PackId(2), 100, 10);
  EXPECT_EQ(b.whole.load(), whole_b) << "b was evicted: back to ranged reads";
  EXPECT_GT(b.ranged.load(), TreePackCache::kRangedReadsBeforeWholePack);
}

TEST(TreePackCache, ErrorsPropagateAndAShortPackIsCorrupt) {
  TreePackCache cache(1 << 20);
  Counting src{RandomData(1000, 6)};
  for (int i = 0; i < TreePackCache::kRangedReadsBeforeWholePack; ++i) src.Read(cache, PackId(7), 0, 10);

  auto failing = [&] {

    return cache.Read(
        PackId(7), 0, 10, [] { return Bytes(); },
        []() -> Bytes { throw Error(ErrorCode::kIo, "network down"); });
  };
  EXPECT_EQ(CodeOf([&] { failing(); }), ErrorCode::kIo);
  // A failed download is not remembered: the next read tries again.
  EXPECT_EQ(src.Read(cache, PackId(7), 10, 10).size(), 10u);
  EXPECT_EQ(src.whole.load(), 1);
  EXPECT_EQ(CodeOf([&] { src.Read(cache, PackId(7), 990, 20); }), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace bulwark::repo
