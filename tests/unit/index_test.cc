// Tests for src/bulwark/repo/index.h: the index object codec and the
// in-memory Index (lookup, duplicates, Finalize, concurrency).
#include "bulwark/repo/index.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {
namespace {

bool SameBlob(const PackedBlob& a, const PackedBlob& b) {
  return a.id == b.id && a.type == b.type && a.compressed == b.compressed && a.offset == b.offset &&
         a.length == b.length && a.raw_length == b.raw_length;
}

// Deterministic ids so failures are reproducible.
Id IdOf(uint32_t n, uint8_t tag = 0) {
  Bytes b{tag};
  Writer(&b).U32(n);
  return crypto::Sha256(b);
}

PackedBlob Blob(uint32_t n, uint32_t offset, uint8_t tag = 0) {
  PackedBlob b;
  b.id = IdOf(n, tag);
  b.type = n % 3 == 0 ? BlobType::kTree : BlobType::kData;
  b.compressed = n % 2 == 0;
  b.offset = offset;
  b.length = 100 + n;
  b.raw_length = 50 + n * 3;
  return b;
}

IndexFile Sample() {
  IndexFile f;
  uint32_t n = 0;
  for (int p = 0; p < 3; ++p) {
    IndexFile::Pack pack;
    pack.id = IdOf(1000 + p, 1);
    uint32_t off = 8;
    for (int i = 0; i < 4 + p; ++i) {
      pack.blobs.push_back(Blob(n++, off));
      off += pack.blobs.back().length;
    }
    f.packs.push_back(pack);
  }
  // Extremes the format allows.
  PackedBlob big;
  big.id = IdOf(99999);
  big.offset = UINT32_MAX - 100;
  big.length = 100;
  big.raw_length = 1u << 31;
  big.compressed = true;
  f.packs[2].blobs.push_back(big);
  f.packs.push_back({IdOf(2000, 1), {}});  // a pack without blobs
  f.supersedes = {IdOf(1, 2), IdOf(2, 2)};
  return f;
}

void ExpectSame(const IndexFile& a, const IndexFile& b) {
  ASSERT_EQ(a.packs.size(), b.packs.size());
  for (size_t i = 0; i < a.packs.size(); ++i) {
    EXPECT_EQ(a.packs[i].id, b.packs[i].id);
    ASSERT_EQ(a.packs[i].blobs.size(), b.packs[i].blobs.size());
    for (size_t j = 0; j < a.packs[i].blobs.size(); ++j)
      EXPECT_TRUE(SameBlob(a.packs[i].blobs[j], b.packs[i].blobs[j])) << i << "/" << j;
  }
  EXPECT_EQ(a.supersedes, b.supersedes);
}

// ---------------------------------------------------------------- IndexFile

TEST(IndexFileCodec, RoundTrip) {
  IndexFile f = Sample();
  Bytes enc = f.Encode();
  ExpectSame(IndexFile::Decode(enc, "index/x"), f);
  EXPECT_EQ(IndexFile::Decode(enc, "index/x").Encode(), enc);

  IndexFile empty;
  Bytes e = empty.Encode();
  EXPECT_EQ(e, (Bytes{0, 0}));
  IndexFile back = IndexFile::Decode(e, "index/empty");
  EXPECT_TRUE(back.packs.empty());
  EXPECT_TRUE(back.supersedes.empty());
}

TEST(IndexFileCodec, RejectsEveryTruncationAndTrailingBytes) {
  Bytes enc = Sample().Encode();
  for (size_t len = 0; len < enc.size(); ++len)
    EXPECT_EQ(CodeOf([&] { IndexFile::Decode(ByteSpan(enc).first(len), "index/t"); }), ErrorCode::kCorrupt) << len;
  Bytes longer = enc;
  longer.push_back(0);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(longer, "index/t"); }), ErrorCode::kCorrupt);
  try {
    IndexFile::Decode(ByteSpan(enc).first(40), "index/named");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index/named"), std::string::npos) << e.what();
  }
}

TEST(IndexFileCodec, RejectsGarbageAndOutOfRangeFields) {
  auto one_blob = [](uint8_t type, uint8_t flags, uint64_t off, uint64_t len, uint64_t raw) {
    Bytes b;
    Writer w(&b);
    w.Varint(1);
    w.Raw(IdOf(1));
    w.Varint(1);
    w.U8(type);
    w.U8(flags);
    w.Varint(off);
    w.Varint(len);
    w.Varint(raw);
    w.Raw(IdOf(2));
    w.Varint(0);
    return b;
  };
  // The builder itself produces a valid file...
  EXPECT_EQ(IndexFile::Decode(one_blob(1, 1, 8, 100, 100), "i").packs.at(0).blobs.size(), 1u);
  // ...and each bad field is refused.
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(0, 0, 8, 100, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(3, 0, 8, 100, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(1, 2, 8, 100, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(1, 0, 1ull << 32, 100, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(1, 0, UINT32_MAX - 10, 100, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(1, 0, 8, 1ull << 33, 100), "i"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(one_blob(1, 0, 8, 100, (1ull << 31) + 1), "i"); }), ErrorCode::kCorrupt);

  // Huge counts fail fast instead of reserving memory.
  for (uint64_t count : {uint64_t(1) << 40, uint64_t(UINT64_MAX)}) {
    Bytes b;
    Writer(&b).Varint(count);
    b.resize(b.size() + 64, 0);
    EXPECT_EQ(CodeOf([&] { IndexFile::Decode(b, "i"); }), ErrorCode::kCorrupt);
    Bytes nb;
    Writer w(&nb);
    w.Varint(1);
    w.Raw(IdOf(1));
    w.Varint(count);
    nb.resize(nb.size() + 64, 0);
    EXPECT_EQ(CodeOf([&] { IndexFile::Decode(nb, "i"); }), ErrorCode::kCorrupt);
    Bytes sb{0};
    Writer(&sb).Varint(count);
    EXPECT_EQ(CodeOf([&] { IndexFile::Decode(sb, "i"); }), ErrorCode::kCorrupt);
  }
  Bytes junk(300, 0xff);
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(junk, "i"); }), ErrorCode::kCorrupt);
  Bytes text(AsBytes("{\"packs\": []}").begin(), AsBytes("{\"packs\": []}").end());
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(text, "i"); }), ErrorCode::kCorrupt);
}

// ---------------------------------------------------------------- Index

TEST(IndexMemory, AddFindFinalize) {
  Index idx;
  IndexFile f = Sample();
  for (const auto& p : f.packs) idx.AddPack(p.id, p.blobs);
  size_t blobs = 0;
  for (const auto& p : f.packs) blobs += p.blobs.size();
  EXPECT_EQ(idx.blob_count(), blobs);
  EXPECT_EQ(idx.pack_count(), f.packs.size());

  auto check_all = [&] {
    for (const auto& p : f.packs) {
      EXPECT_TRUE(idx.HasPack(p.id));
      for (const auto& b : p.blobs) {
        auto loc = idx.Find(b.id);
        ASSERT_TRUE(loc.has_value());
        EXPECT_EQ(loc->pack, p.id);
        EXPECT_TRUE(SameBlob(loc->blob, b));
        EXPECT_TRUE(idx.Has(b.id));
      }
    }
    EXPECT_FALSE(idx.Find(IdOf(123456, 9)).has_value());
    EXPECT_FALSE(idx.Has(Id{}));
    EXPECT_FALSE(idx.HasPack(IdOf(5, 5)));
  };
  check_all();  // pending only
  idx.Finalize();
  check_all();  // sorted table only
  EXPECT_EQ(idx.blob_count(), blobs);

  // More packs after Finalize: pending and main together.
  IndexFile::Pack extra{IdOf(3000, 1), {Blob(500, 8, 7), Blob(501, 200, 7)}};
  idx.AddPack(extra.id, extra.blobs);
  f.packs.push_back(extra);
  check_all();
  idx.Finalize();
  check_all();
  EXPECT_EQ(idx.blob_count(), blobs + 2);

  std::vector<Id> packs = idx.Packs();
  ASSERT_EQ(packs.size(), f.packs.size());
  for (size_t i = 0; i < packs.size(); ++i) EXPECT_EQ(packs[i], f.packs[i].id);  // in insertion order

  std::set<Id> visited;
  idx.ForEach([&](const Id& pack, const PackedBlob& b) {
    EXPECT_TRUE(visited.insert(b.id).second);
    EXPECT_TRUE(idx.HasPack(pack));
  });
  EXPECT_EQ(visited.size(), blobs + 2);
}

TEST(IndexMemory, DuplicatesKeepFirstLocation) {
  const PackedBlob dup = Blob(7, 8);
  PackedBlob dup_elsewhere = dup;
  dup_elsewhere.offset = 999;
  const Id a = IdOf(1, 1), b = IdOf(2, 1), c = IdOf(3, 1);

  // Both pending.
  {
    Index idx;
    idx.AddPack(a, {dup});
    idx.AddPack(b, {dup_elsewhere, Blob(8, 9999)});
    EXPECT_EQ(idx.Find(dup.id)->pack, a);
    idx.Finalize();
    EXPECT_EQ(idx.Find(dup.id)->pack, a);
    EXPECT_EQ(idx.Find(dup.id)->blob.offset, 8u);
    EXPECT_EQ(idx.blob_count(), 2u);
  }
  // First one already finalized, the second pending, then finalized.
  {
    Index idx;
    idx.AddPack(a, {dup});
    idx.Finalize();
    idx.AddPack(b, {dup_elsewhere});
    EXPECT_EQ(idx.Find(dup.id)->pack, a);
    idx.Finalize();
    EXPECT_EQ(idx.Find(dup.id)->pack, a);
    EXPECT_EQ(idx.blob_count(), 1u);
    idx.AddPack(c, {dup_elsewhere});
    idx.Finalize();
    EXPECT_EQ(idx.Find(dup.id)->pack, a);
    EXPECT_EQ(idx.blob_count(), 1u);
    int visits = 0;
    idx.ForEach([&](const Id& pack, const PackedBlob&) {
      EXPECT_EQ(pack, a);
      ++visits;
    });
    EXPECT_EQ(visits, 1);
  }
  // The same pack listed twice (two index objects) is added once.
  {
    Index idx;
    idx.AddPack(a, {dup});
    idx.AddPack(a, {dup_elsewhere});
    EXPECT_EQ(idx.pack_count(), 1u);
    EXPECT_EQ(idx.Find(dup.id)->blob.offset, 8u);
  }
}

TEST(IndexMemory, ManyEntriesSortedLookup) {
  Index idx;
  const int kPacks = 50, kPer = 200;
  for (int p = 0; p < kPacks; ++p) {
    std::vector<PackedBlob> blobs;
    for (int i = 0; i < kPer; ++i) blobs.push_back(Blob(p * kPer + i, 8 + i * 400));
    idx.AddPack(IdOf(p, 1), blobs);
    if (p % 7 == 0) idx.Finalize();  // several merges
  }
  idx.Finalize();
  EXPECT_EQ(idx.blob_count(), size_t(kPacks * kPer));
  for (int n = 0; n < kPacks * kPer; ++n) {
    auto loc = idx.Find(IdOf(n));
    ASSERT_TRUE(loc.has_value()) << n;
    EXPECT_EQ(loc->pack, IdOf(n / kPer, 1));
    EXPECT_EQ(loc->blob.offset, uint32_t(8 + (n % kPer) * 400));
  }
  for (int n = kPacks * kPer; n < kPacks * kPer + 100; ++n) EXPECT_FALSE(idx.Has(IdOf(n)));
}

TEST(IndexMemory, ConcurrentFindAndAddPack) {
  Index idx;
  // A finalized base every reader must always see.
  const int kBase = 2000;
  std::vector<PackedBlob> base;
  for (int i = 0; i < kBase; ++i) base.push_back(Blob(i, 8 + i));
  idx.AddPack(IdOf(0, 1), base);
  idx.Finalize();

  const int kWriters = 3, kPacksPerWriter = 150, kBlobsPerPack = 10;
  std::atomic<int> published[kWriters];
  for (auto& p : published) p = 0;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int p = 0; p < kPacksPerWriter; ++p) {
        std::vector<PackedBlob> blobs;
        for (int i = 0; i < kBlobsPerPack; ++i) blobs.push_back(Blob((p * kBlobsPerPack + i), 8, uint8_t(10 + w)));
        idx.AddPack(IdOf(p, uint8_t(20 + w)), blobs);
        published[w].store(p + 1, std::memory_order_release);
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      uint32_t n = r;
      while (!done.load()) {
        n = n * 1103515245u + 12345u;
        auto loc = idx.Find(IdOf(n % kBase));
        if (!loc || loc->pack != IdOf(0, 1)) failures++;
        int w = int(n % kWriters);
        int p = published[w].load(std::memory_order_acquire);
        if (p > 0) {
          int blob = int((n / 7) % uint32_t(p * kBlobsPerPack));
          auto l2 = idx.Find(IdOf(blob, uint8_t(10 + w)));
          if (!l2 || l2->pack != IdOf(blob / kBlobsPerPack, uint8_t(20 + w))) failures++;
        }
        if (idx.Has(IdOf(n, 99))) failures++;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(failures.load(), 0);

  idx.Finalize();
  EXPECT_EQ(idx.blob_count(), size_t(kBase + kWriters * kPacksPerWriter * kBlobsPerPack));
  EXPECT_EQ(idx.pack_count(), size_t(1 + kWriters * kPacksPerWriter));
  for (int w = 0; w < kWriters; ++w)
    for (int b = 0; b < kPacksPerWriter * kBlobsPerPack; ++b) {
      auto loc = idx.Find(IdOf(b, uint8_t(10 + w)));
      ASSERT_TRUE(loc.has_value());
      EXPECT_EQ(loc->pack, IdOf(b / kBlobsPerPack, uint8_t(20 + w)));
    }
}

}  // namespace
}  // namespace bulwark::repo

namespace bulwark::repo {
namespace {

TEST(IndexFileRegression, PackListedTwiceInOneObjectIsCorrupt) {
  // Found by index_fuzz: the second listing's blobs were silently dropped.
  IndexFile f;
  Id pack;
  pack.b[0] = 7;
  PackedBlob b;
  b.id.b[0] = 1;
  b.length = 40;
  b.raw_length = 8;
  f.packs.push_back({pack, {b}});
  b.id.b[0] = 2;
  f.packs.push_back({pack, {b}});
  EXPECT_EQ(CodeOf([&] { IndexFile::Decode(f.Encode(), "dup"); }), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace bulwark::repo
