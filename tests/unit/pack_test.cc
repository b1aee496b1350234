// Tests for src/bulwark/repo/pack.h (and the envelope of format.h): pack
// layout, blob sealing/opening, and detection of every kind of damage.
#include "bulwark/repo/pack.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/format.h"

namespace bulwark::repo {
namespace {

struct Thrown {
  ErrorCode code;
  std::string message;
};

template <typename Fn>
Thrown Catch(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected a bulwark::Error";
  return {ErrorCode::kInternal, ""};
}

bool SameBlob(const PackedBlob& a, const PackedBlob& b) {
  return a.id == b.id && a.type == b.type && a.compressed == b.compressed && a.offset == b.offset &&
         a.length == b.length && a.raw_length == b.raw_length;
}

Bytes Text(size_t n) {
  std::string s;
  while (s.size() < n) s += "the quick brown fox jumps over the lazy dog " + std::to_string(s.size() % 97) + "\n";
  s.resize(n);
  return Bytes(s.begin(), s.end());
}

class PackTest : public ::testing::Test {
 protected:
  PackTest() : master_(crypto::MasterKey::Generate()), aead_(master_.enc), ids_(master_.id) {}

  struct Built {
    Bytes pack;
    std::vector<PackedBlob> blobs;
    std::vector<Bytes> plain;
  };

  // A pack with a compressible, an incompressible, a tiny, an empty and a tree blob.
  Built Build(int level = 3) {
    Built b;
    b.plain = {Text(100000), crypto::RandomBytes(50000), Bytes{'h', 'i'}, Bytes{}, Text(300)};
    PackBuilder builder(&aead_);
    for (size_t i = 0; i < b.plain.size(); ++i) {
      PackedBlob meta;
      meta.id = ids_.Mac(b.plain[i]);
      meta.type = i == 4 ? BlobType::kTree : BlobType::kData;
      Bytes sealed = SealBlob(aead_, b.plain[i], level, &meta);
      EXPECT_EQ(meta.length, sealed.size());
      EXPECT_EQ(meta.raw_length, b.plain[i].size());
      builder.Add(meta, sealed);
    }
    EXPECT_EQ(builder.count(), b.plain.size());
    b.pack = builder.Finish(&b.blobs);
    EXPECT_TRUE(builder.empty());
    return b;
  }

  crypto::MasterKey master_;
  crypto::Aead aead_;
  crypto::KeyedHasher ids_;
};

TEST_F(PackTest, BuildParseRoundTrip) {
  Built b = Build();
  ASSERT_EQ(b.blobs.size(), 5u);
  // Layout: envelope, blobs back to back from byte 8, header, u32 length, "BWPK".
  ASSERT_GT(b.pack.size(), 16u);
  EXPECT_EQ(std::memcmp(b.pack.data(), "BWRK", 4), 0);
  EXPECT_EQ(b.pack[4], static_cast<uint8_t>(ObjectType::kPack));
  EXPECT_EQ(b.pack[5], kFormatVersion);
  EXPECT_EQ(std::memcmp(b.pack.data() + b.pack.size() - 4, "BWPK", 4), 0);
  uint32_t offset = kEnvelopeSize;
  for (const auto& blob : b.blobs) {
    EXPECT_EQ(blob.offset, offset);
    offset += blob.length;
  }
  uint32_t hlen = GetU32(b.pack.data() + b.pack.size() - 8);
  EXPECT_EQ(offset + hlen + kPackTrailerSize, b.pack.size());

  EXPECT_TRUE(b.blobs[0].compressed);
  EXPECT_LT(b.blobs[0].length, b.plain[0].size() / 4);
  EXPECT_FALSE(b.blobs[1].compressed);  // random data is stored as is
  EXPECT_EQ(b.blobs[1].length, b.plain[1].size() + crypto::Aead::kOverhead);
  EXPECT_FALSE(b.blobs[2].compressed);
  EXPECT_EQ(b.blobs[3].length, crypto::Aead::kOverhead);
  EXPECT_EQ(b.blobs[4].type, BlobType::kTree);

  std::vector<PackedBlob> parsed = ParsePack(aead_, b.pack, "pack test");
  ASSERT_EQ(parsed.size(), b.blobs.size());
  for (size_t i = 0; i < parsed.size(); ++i) EXPECT_TRUE(SameBlob(parsed[i], b.blobs[i])) << i;

  for (size_t i = 0; i < parsed.size(); ++i) {
    ByteSpan sealed(b.pack.data() + parsed[i].offset, parsed[i].length);
    EXPECT_EQ(OpenBlob(aead_, ids_, parsed[i], sealed, "blob"), b.plain[i]) << i;
  }
}

TEST_F(PackTest, BuilderIsReusableAndEmptyPackParses) {
  PackBuilder builder(&aead_);
  EXPECT_TRUE(builder.empty());
  EXPECT_EQ(builder.size(), kEnvelopeSize);
  std::vector<PackedBlob> blobs;
  Bytes empty_pack = builder.Finish(&blobs);
  EXPECT_TRUE(blobs.empty());
  EXPECT_TRUE(ParsePack(aead_, empty_pack, "empty").empty());

  Bytes plain = Text(1000);
  PackedBlob meta;
  meta.id = ids_.Mac(plain);
  Bytes sealed = SealBlob(aead_, plain, 3, &meta);
  builder.Add(meta, sealed);
  Bytes pack = builder.Finish(&blobs);
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(blobs[0].offset, kEnvelopeSize);  // not offset by the previous pack
  EXPECT_EQ(builder.size(), kEnvelopeSize);
  EXPECT_EQ(OpenBlob(aead_, ids_, blobs[0], ByteSpan(pack).subspan(blobs[0].offset, blobs[0].length), "b"), plain);
}

TEST_F(PackTest, CompressionLevelsAndIncompressibleData) {
  Bytes text = Text(64 << 10), random = crypto::RandomBytes(64 << 10);
  for (int level : {0, 1, 3, 19}) {
    for (const Bytes* plain : {&text, &random}) {
      PackedBlob meta;
      meta.id = ids_.Mac(*plain);
      Bytes sealed = SealBlob(aead_, *plain, level, &meta);
      EXPECT_EQ(meta.compressed, level > 0 && plain == &text) << level;
      if (!meta.compressed) {
        EXPECT_EQ(sealed.size(), plain->size() + crypto::Aead::kOverhead);
      }
      EXPECT_EQ(OpenBlob(aead_, ids_, meta, sealed, "b"), *plain) << level;
    }
  }
}

TEST_F(PackTest, OpenBlobChecksBinding) {
  Bytes plain = Text(5000);
  PackedBlob meta;
  meta.id = ids_.Mac(plain);
  meta.type = BlobType::kData;
  Bytes sealed = SealBlob(aead_, plain, 3, &meta);

  PackedBlob wrong_type = meta;
  wrong_type.type = BlobType::kTree;  // AAD binds the type
  EXPECT_EQ(Catch([&] { OpenBlob(aead_, ids_, wrong_type, sealed, "b"); }).code, ErrorCode::kCorrupt);
  PackedBlob wrong_id = meta;
  wrong_id.id.b[0] ^= 1;  // AAD binds the id
  EXPECT_EQ(Catch([&] { OpenBlob(aead_, ids_, wrong_id, sealed, "b"); }).code, ErrorCode::kCorrupt);
  PackedBlob wrong_len = meta;
  wrong_len.raw_length += 1;
  EXPECT_EQ(Catch([&] { OpenBlob(aead_, ids_, wrong_len, sealed, "b"); }).code, ErrorCode::kCorrupt);

  // Sealed under the right key but with an id that is not the keyed hash of
  // the content (e.g. a buggy or malicious writer): rejected after decryption.
  PackedBlob lying;
  lying.id = ids_.Mac(AsBytes("something else"));
  Bytes lying_sealed = SealBlob(aead_, plain, 3, &lying);
  Thrown t = Catch([&] { OpenBlob(aead_, ids_, lying, lying_sealed, "blob xyz"); });
  EXPECT_EQ(t.code, ErrorCode::kCorrupt);
  EXPECT_NE(t.message.find("blob xyz"), std::string::npos) << t.message;
  EXPECT_NE(t.message.find("id"), std::string::npos) << t.message;

  // Another repository's id key.
  crypto::KeyedHasher other(crypto::MasterKey::Generate().id);
  EXPECT_EQ(Catch([&] { OpenBlob(aead_, other, meta, sealed, "b"); }).code, ErrorCode::kCorrupt);
}

TEST_F(PackTest, TruncatedPackIsCorrupt) {
  Built b = Build();
  std::vector<size_t> lengths = {0, 1, 7, 8, 9, 15, 16, 100, b.pack.size() / 2, b.pack.size() - 9,
                                 b.pack.size() - 8, b.pack.size() - 5, b.pack.size() - 1};
  for (size_t len : lengths) {
    Thrown t = Catch([&] { ParsePack(aead_, ByteSpan(b.pack).first(len), "pack 1234"); });
    EXPECT_EQ(t.code, ErrorCode::kCorrupt) << len;
    EXPECT_NE(t.message.find("pack 1234"), std::string::npos) << len << ": " << t.message;
  }
  // Cut at the front instead (the trailer is intact but offsets are off).
  Bytes front_cut(b.pack.begin() + 100, b.pack.end());
  std::memcpy(front_cut.data(), b.pack.data(), kEnvelopeSize);
  EXPECT_EQ(Catch([&] { ParsePack(aead_, front_cut, "p"); }).code, ErrorCode::kCorrupt);
}

TEST_F(PackTest, FlippedBytesAreCorrupt) {
  Built b = Build();
  const size_t n = b.pack.size();
  const uint32_t hlen = GetU32(b.pack.data() + n - 8);
  const size_t header_start = n - 8 - hlen;

  // Envelope magic and type.
  for (size_t pos : {size_t(0), size_t(3), size_t(4)}) {
    Bytes bad = b.pack;
    bad[pos] ^= 0x01;
    Thrown t = Catch([&] { ParsePack(aead_, bad, "pack env"); });
    EXPECT_EQ(t.code, ErrorCode::kCorrupt) << pos;
    EXPECT_NE(t.message.find("pack env"), std::string::npos);
  }
  // A future format version is "unsupported", not "corrupt".
  {
    Bytes bad = b.pack;
    bad[5] = kFormatVersion + 1;
    EXPECT_EQ(Catch([&] { ParsePack(aead_, bad, "p"); }).code, ErrorCode::kUnsupported);
  }
  // Every byte of the sealed header and of the trailer.
  for (size_t pos = header_start; pos < n; ++pos) {
    Bytes bad = b.pack;
    bad[pos] ^= 0x40;
    Thrown t = Catch([&] { ParsePack(aead_, bad, "pack hdr"); });
    EXPECT_EQ(t.code, ErrorCode::kCorrupt) << "byte " << pos << " of " << n;
    EXPECT_NE(t.message.find("pack hdr"), std::string::npos) << t.message;
  }
  // A byte inside each blob: the header still parses, the blob does not open.
  for (size_t i = 0; i < b.blobs.size(); ++i) {
    const PackedBlob& blob = b.blobs[i];
    for (size_t rel : {size_t(0), size_t(blob.length / 2), size_t(blob.length - 1)}) {
      Bytes bad = b.pack;
      bad[blob.offset + rel] ^= 0x80;
      std::vector<PackedBlob> parsed = ParsePack(aead_, bad, "p");
      ASSERT_EQ(parsed.size(), b.blobs.size());
      Thrown t = Catch([&] {
        OpenBlob(aead_, ids_, parsed[i], ByteSpan(bad).subspan(parsed[i].offset, parsed[i].length), "blob 42");
      });
      EXPECT_EQ(t.code, ErrorCode::kCorrupt) << "blob " << i << " byte " << rel;
      EXPECT_NE(t.message.find("blob 42"), std::string::npos) << t.message;
      // Neighbours are unaffected.
      size_t j = (i + 1) % b.blobs.size();
      EXPECT_EQ(OpenBlob(aead_, ids_, parsed[j], ByteSpan(bad).subspan(parsed[j].offset, parsed[j].length), "b"),
                b.plain[j]);
    }
  }
}

TEST_F(PackTest, WrongKeyCannotParse) {
  Built b = Build();
  crypto::Aead other(crypto::MasterKey::Generate().enc);
  EXPECT_EQ(Catch([&] { ParsePack(other, b.pack, "p"); }).code, ErrorCode::kCorrupt);
}

TEST_F(PackTest, ParsePackTailAsksForWhatItNeeds) {
  Built b = Build();
  const size_t n = b.pack.size();
  const uint32_t hlen = GetU32(b.pack.data() + n - 8);
  std::vector<PackedBlob> out;
  size_t need = 0;

  // Only the trailer: not enough, and it says how much is.
  EXPECT_FALSE(ParsePackTail(aead_, ByteSpan(b.pack).last(kPackTrailerSize), n, "p", &out, &need));
  EXPECT_EQ(need, hlen + kPackTrailerSize);
  // One byte short of that.
  need = 0;
  EXPECT_FALSE(ParsePackTail(aead_, ByteSpan(b.pack).last(hlen + kPackTrailerSize - 1), n, "p", &out, &need));
  EXPECT_EQ(need, hlen + kPackTrailerSize);
  // Exactly enough, and more than enough.
  for (size_t tail : {size_t(hlen + kPackTrailerSize), size_t(hlen + kPackTrailerSize + 1000), n}) {
    ASSERT_TRUE(ParsePackTail(aead_, ByteSpan(b.pack).last(tail), n, "p", &out, &need)) << tail;
    ASSERT_EQ(out.size(), b.blobs.size());
    for (size_t i = 0; i < out.size(); ++i) EXPECT_TRUE(SameBlob(out[i], b.blobs[i])) << i;
  }
  // Fewer bytes than a trailer, or a pack size that cannot hold the header.
  EXPECT_EQ(Catch([&] { ParsePackTail(aead_, ByteSpan(b.pack).last(7), n, "p", &out, &need); }).code,
            ErrorCode::kCorrupt);
  EXPECT_EQ(Catch([&] { ParsePackTail(aead_, ByteSpan(b.pack).last(hlen + 8), hlen + 8, "p", &out, &need); }).code,
            ErrorCode::kCorrupt);
  // A pack size that disagrees with the blob lengths.
  EXPECT_EQ(Catch([&] { ParsePackTail(aead_, ByteSpan(b.pack).last(hlen + 8), n + 1, "p", &out, &need); }).code,
            ErrorCode::kCorrupt);
  EXPECT_EQ(Catch([&] { ParsePackTail(aead_, ByteSpan(b.pack).last(hlen + 8), n - 1, "p", &out, &need); }).code,
            ErrorCode::kCorrupt);
}

TEST(FormatEnvelope, SealOpenObject) {
  crypto::Aead aead(crypto::MasterKey::Generate().enc);
  Bytes big = Text(10000);
  for (const Bytes& payload : {Bytes{}, Bytes{'{', '}'}, big}) {
    Bytes obj = SealObject(aead, ObjectType::kSnapshot, payload);
    EXPECT_EQ(std::memcmp(obj.data(), "BWRK", 4), 0);
    EXPECT_EQ(obj[4], static_cast<uint8_t>(ObjectType::kSnapshot));
    EXPECT_EQ(OpenObject(aead, ObjectType::kSnapshot, obj, "snap"), payload);
    // The type is authenticated: relabelling the envelope is detected.
    EXPECT_EQ(Catch([&] { OpenObject(aead, ObjectType::kIndex, obj, "x"); }).code, ErrorCode::kCorrupt);
    Bytes relabelled = obj;
    relabelled[4] = static_cast<uint8_t>(ObjectType::kIndex);
    EXPECT_EQ(Catch([&] { OpenObject(aead, ObjectType::kIndex, relabelled, "x"); }).code, ErrorCode::kCorrupt);
    for (size_t pos = 0; pos < obj.size(); pos += std::max<size_t>(1, obj.size() / 50)) {
      Bytes bad = obj;
      bad[pos] ^= 0x10;
      Thrown t = Catch([&] { OpenObject(aead, ObjectType::kSnapshot, bad, "snapshots/77"); });
      EXPECT_TRUE(t.code == ErrorCode::kCorrupt || (pos == 5 && t.code == ErrorCode::kUnsupported)) << pos;
      EXPECT_NE(t.message.find("snapshots/77"), std::string::npos) << t.message;
    }
  }
  EXPECT_TRUE(SealObject(aead, ObjectType::kIndex, big).size() < big.size());  // compressed
}

}  // namespace
}  // namespace bulwark::repo
