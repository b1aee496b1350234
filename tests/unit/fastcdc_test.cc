// Tests for src/bulwark/chunk/fastcdc.h: coverage, size bounds, average size,
// content-defined (shift-resistant) boundaries, seeding and streaming.
#include "bulwark/chunk/fastcdc.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::chunk {
namespace {

// Deterministic pseudo-random bytes (splitmix64): fast enough under ASan.
Bytes RandomData(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t x = seed;
  size_t i = 0;
  while (i < n) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    size_t k = std::min<size_t>(8, n - i);
    std::memcpy(out.data() + i, &z, k);
    i += k;
  }
  return out;
}

GearTable Gear(std::string_view seed) { return GearTable::FromSeed(AsBytes(seed)); }

// Chunk lengths of `data` (eof = true: the whole input is available).
std::vector<size_t> Chunk(const Chunker& c, ByteSpan data) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t cut = c.FindCut(data.subspan(pos), true);
    if (cut == 0 || cut > data.size() - pos) {
      ADD_FAILURE() << "FindCut returned " << cut << " at " << pos << " with eof";
      break;
    }
    out.push_back(cut);
    pos += cut;
  }
  return out;
}

std::vector<Id> ChunkIds(const Chunker& c, ByteSpan data) {
  std::vector<Id> ids;
  size_t pos = 0;
  for (size_t len : Chunk(c, data)) {
    ids.push_back(crypto::Sha256(data.subspan(pos, len)));
    pos += len;
  }
  return ids;
}

const Params kSmall{256, 1024, 4096};

TEST(FastCdc, ChunksCoverInputAndRespectBounds) {
  for (const Params& p : {Params{}, kSmall, Params{64, 128, 256}}) {
    Chunker c(p, Gear("seed"));
    // At least 3 x max and many chunks for the small parameter sets.
    Bytes data = RandomData(std::max<size_t>(p.max_size * 3, 1u << 20) + 12345, 1);
    std::vector<size_t> lens = Chunk(c, data);
    ASSERT_FALSE(lens.empty());
    size_t total = 0;
    for (size_t i = 0; i < lens.size(); ++i) {
      total += lens[i];
      EXPECT_LE(lens[i], p.max_size) << i;
      if (i + 1 < lens.size()) {
        EXPECT_GT(lens[i], p.min_size) << i;  // cuts are only searched past min
      }
    }
    EXPECT_EQ(total, data.size());
  }
}

TEST(FastCdc, SmallAndEmptyInputs) {
  Chunker c(kSmall, Gear("seed"));
  Bytes data = RandomData(kSmall.min_size, 2);
  EXPECT_EQ(c.FindCut({}, true), 0u);
  EXPECT_EQ(c.FindCut({}, false), 0u);
  EXPECT_EQ(c.FindCut(ByteSpan(data).first(1), true), 1u);
  EXPECT_EQ(c.FindCut(data, true), data.size());  // <= min: the final chunk
  EXPECT_EQ(c.FindCut(data, false), 0u);          // <= min and more may come
}

TEST(FastCdc, LowEntropyDataChunksUniformly) {
  // All-zero data has a constant Gear hash: it either cuts at the first
  // eligible position every time or never; in both cases within bounds and
  // covering the input, and every full chunk of zeros is identical.
  Chunker c(kSmall, Gear("seed"));
  Bytes zeros(kSmall.max_size * 10 + 7, 0);
  std::vector<size_t> lens = Chunk(c, zeros);
  size_t total = 0;
  for (size_t i = 0; i < lens.size(); ++i) {
    total += lens[i];
    EXPECT_LE(lens[i], kSmall.max_size);
    if (i + 1 < lens.size()) {
      EXPECT_EQ(lens[i], lens[0]);
    }
  }
  EXPECT_EQ(total, zeros.size());
  // With eof = false a buffer of at least max always yields a cut.
  EXPECT_EQ(c.FindCut(ByteSpan(zeros).first(kSmall.max_size * 2), false), lens[0]);
}

TEST(FastCdc, AverageNearConfiguredOnRandomData) {
  Bytes data = RandomData(64u << 20, 3);
  {
    Params p;  // the defaults: 512 KiB / 1 MiB / 8 MiB
    Chunker c(p, Gear("avg"));
    std::vector<size_t> lens = Chunk(c, data);
    double mean = double(data.size()) / double(lens.size());
    EXPECT_GT(mean, 0.5 * p.avg_size) << lens.size() << " chunks";
    EXPECT_LT(mean, 2.0 * p.avg_size) << lens.size() << " chunks";
  }
  {
    // Many more chunks: a tighter statistical check, and the normalised
    // chunking property (most chunks within [avg/2, 2*avg]).
    Params p{8 << 10, 32 << 10, 256 << 10};
    Chunker c(p, Gear("avg"));
    std::vector<size_t> lens = Chunk(c, data);
    ASSERT_GT(lens.size(), 1000u);
    double mean = double(data.size()) / double(lens.size());
    EXPECT_GT(mean, 0.75 * p.avg_size);
    EXPECT_LT(mean, 1.5 * p.avg_size);
    size_t near = 0, at_max = 0;
    for (size_t len : lens) {
      if (len >= p.avg_size / 2 && len <= 2 * p.avg_size) ++near;
      if (len == p.max_size) ++at_max;
    }
    EXPECT_GT(near, lens.size() * 8 / 10);
    EXPECT_LT(at_max, lens.size() / 100);  // forced cuts are rare on random data
  }
}

TEST(FastCdc, BoundariesAreContentDefined) {
  Params p;  // defaults
  Chunker c(p, Gear("shift"));
  Bytes a = RandomData(32u << 20, 4);
  Bytes b = a;
  Bytes insert = RandomData(100, 5);
  b.insert(b.begin() + 1000, insert.begin(), insert.end());

  std::vector<Id> ia = ChunkIds(c, a), ib = ChunkIds(c, b);
  ASSERT_GT(ia.size(), 10u);
  std::set<Id> sa(ia.begin(), ia.end());
  size_t changed = 0;
  for (size_t i = 0; i < ib.size(); ++i)
    if (!sa.count(ib[i])) {
      ++changed;
      EXPECT_LT(i, 2u) << "chunk " << i << " of " << ib.size() << " changed, far from the edit";
    }
  EXPECT_GE(changed, 1u);  // the chunk holding the insertion is new
  EXPECT_LE(changed, 2u);
  EXPECT_LE(ib.size(), ia.size() + 1);
  EXPECT_GE(ib.size() + 1, ia.size());

  // Same with many small chunks: the edit is still local.
  Chunker s({8 << 10, 32 << 10, 256 << 10}, Gear("shift"));
  std::vector<Id> sa2 = ChunkIds(s, a), sb2 = ChunkIds(s, b);
  ASSERT_GT(sa2.size(), 500u);
  std::set<Id> set2(sa2.begin(), sa2.end());
  size_t changed2 = 0;
  for (const Id& id : sb2) changed2 += !set2.count(id);
  EXPECT_GE(changed2, 1u);
  EXPECT_LE(changed2, 2u);
}

TEST(FastCdc, SeedsChangeBoundaries) {
  GearTable g1 = Gear("repository one"), g1b = Gear("repository one"), g2 = Gear("repository two");
  EXPECT_EQ(g1.g, g1b.g);  // deterministic
  EXPECT_NE(g1.g, g2.g);
  std::set<uint64_t> distinct(g1.g.begin(), g1.g.end());
  EXPECT_EQ(distinct.size(), 256u);  // no repeated (e.g. zero) words

  Bytes data = RandomData(4u << 20, 6);
  std::vector<size_t> l1 = Chunk(Chunker(kSmall, g1), data);
  std::vector<size_t> l1b = Chunk(Chunker(kSmall, g1b), data);
  std::vector<size_t> l2 = Chunk(Chunker(kSmall, g2), data);
  EXPECT_EQ(l1, l1b);
  EXPECT_NE(l1, l2);
  // Not merely shifted: most cut positions differ.
  std::set<size_t> pos1, pos2;
  size_t acc = 0;
  for (size_t l : l1) pos1.insert(acc += l);
  acc = 0;
  for (size_t l : l2) pos2.insert(acc += l);
  size_t common = 0;
  for (size_t x : pos2) common += pos1.count(x);
  EXPECT_LT(common, pos2.size() / 2);
}

TEST(FastCdc, ValidateRejectsBadSizes) {
  Params{}.Validate();
  Params{64, 128, 256}.Validate();
  Params{64, 128, 64u << 20}.Validate();
  for (const Params& p : {Params{63, 128, 256}, Params{0, 128, 256}, Params{128, 128, 256}, Params{64, 256, 256},
                          Params{512, 256, 1024}, Params{64, 1000, 4096}, Params{64, 128, (64u << 20) + 1},
                          Params{64, 128, 100}, Params{64, 0, 256}}) {
    EXPECT_EQ(CodeOf([&] { p.Validate(); }), ErrorCode::kInvalidArgument)
        << p.min_size << "/" << p.avg_size << "/" << p.max_size;
    EXPECT_EQ(CodeOf([&] {
                Chunker c(p, Gear("x"));
                (void)c;
              }),
              ErrorCode::kInvalidArgument);
  }
}

TEST(FastCdc, StreamingCutsAgreeWithFullBuffer) {
  // FindCut(prefix, eof=false) must return 0 ("need more") or the very cut a
  // caller with all the data would get: otherwise boundaries would depend on
  // how a pipe delivers the bytes.
  for (const Params& p : {kSmall, Params{64, 128, 256}, Params{8 << 10, 32 << 10, 256 << 10}}) {
    Chunker c(p, Gear("stream"));
    Bytes data = RandomData(p.max_size * (p.max_size > 4096 ? 5 : 40), 7);
    size_t pos = 0, checked = 0, decided_early = 0;
    while (pos + p.max_size <= data.size()) {
      ByteSpan rest = ByteSpan(data).subspan(pos);
      size_t full = c.FindCut(rest.first(p.max_size), false);
      ASSERT_GT(full, 0u);
      ASSERT_EQ(full, c.FindCut(rest, true));
      size_t step = std::max<size_t>(1, p.max_size / 61);
      for (size_t len = 0; len < p.max_size; len += step) {
        size_t cut = c.FindCut(rest.first(len), false);
        ++checked;
        if (cut != 0) {
          ++decided_early;
          EXPECT_EQ(cut, full) << "prefix " << len << " at " << pos;
        }
        // Once the prefix contains the cut, it must be found.
        if (len >= full) {
          EXPECT_EQ(cut, full) << "prefix " << len << " at " << pos;
        }
      }
      pos += full;
    }
    EXPECT_GT(checked, 200u);
    EXPECT_GT(decided_early, 0u);
  }
}

TEST(FastCdc, ConcurrentUseGivesSameResult) {
  Chunker c(kSmall, Gear("threads"));
  Bytes data = RandomData(2u << 20, 8);
  std::vector<size_t> expect = Chunk(c, data);
  std::vector<std::vector<size_t>> got(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back([&, t] { got[t] = Chunk(c, data); });
  for (auto& t : ts) t.join();
  for (const auto& g : got) EXPECT_EQ(g, expect);
}

}  // namespace
}  // namespace bulwark::chunk
