// Tests for src/bulwark/base/bytes.h: hex, little-endian and LEB128 varint
// coding, the bounds-checked Reader, and size parsing.
#include "bulwark/base/bytes.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bulwark/base/error.h"

namespace bulwark {
namespace {

Bytes Enc(uint64_t v) {
  Bytes b;
  Writer(&b).Varint(v);
  return b;
}

Bytes EncSigned(int64_t v) {
  Bytes b;
  Writer(&b).SignedVarint(v);
  return b;
}

// ---------------------------------------------------------------- hex

TEST(BytesHex, RoundTripsEveryByteValue) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  std::string hex = ToHex(all);
  ASSERT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(504), "fcfdfeff");
  for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
  Bytes back;
  ASSERT_TRUE(FromHex(hex, &back));
  EXPECT_EQ(back, all);
}

TEST(BytesHex, EmptyAndUpperCase) {
  EXPECT_EQ(ToHex({}), "");
  Bytes out{1, 2, 3};
  ASSERT_TRUE(FromHex("", &out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(FromHex("DEADbeef", &out));
  EXPECT_EQ(out, (Bytes{0xde, 0xad, 0xbe, 0xef}));
}

TEST(BytesHex, RejectsOddLengthAndNonHexDigits) {
  Bytes out;
  EXPECT_FALSE(FromHex("abc", &out));
  EXPECT_FALSE(FromHex("0", &out));
  EXPECT_FALSE(FromHex("zz", &out));
  EXPECT_FALSE(FromHex("0g", &out));
  EXPECT_FALSE(FromHex("g0", &out));
  EXPECT_FALSE(FromHex("12 4", &out));
  EXPECT_FALSE(FromHex("-1", &out));
  EXPECT_FALSE(FromHex(std::string("0\0", 2), &out));
  EXPECT_FALSE(FromHex("0x12", &out));
}

TEST(BytesId, HexRoundTripAndRejects) {
  Id id;
  for (size_t i = 0; i < 32; ++i) id.b[i] = static_cast<uint8_t>(i * 7 + 3);
  std::string hex = id.Hex();
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(id.Short(), hex.substr(0, 8));
  EXPECT_EQ(Id::FromHexOrThrow(hex), id);
  EXPECT_FALSE(id.IsZero());
  EXPECT_TRUE(Id{}.IsZero());

  EXPECT_EQ(CodeOf([&] { Id::FromHexOrThrow(hex.substr(0, 63)); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { Id::FromHexOrThrow(hex + "00"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { Id::FromHexOrThrow(""); }), ErrorCode::kInvalidArgument);
  std::string bad = hex;
  bad[10] = 'x';
  EXPECT_EQ(CodeOf([&] { Id::FromHexOrThrow(bad); }), ErrorCode::kInvalidArgument);
}

TEST(BytesId, OrderingIsBytewise) {
  Id a, b;
  a.b[0] = 0x01;
  b.b[0] = 0xff;
  EXPECT_LT(a, b);
  a.b[0] = 0xff;
  a.b[31] = 1;
  EXPECT_GT(a, b);
}

// ---------------------------------------------------------------- fixed width

TEST(BytesFixed, LittleEndian) {
  Bytes b;
  Writer w(&b);
  w.U32(0x01020304);
  w.U64(0x1122334455667788ull);
  w.U8(0xab);
  EXPECT_EQ(b, (Bytes{0x04, 0x03, 0x02, 0x01, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xab}));
  Reader r(b, "fixed");
  EXPECT_EQ(r.U32(), 0x01020304u);
  EXPECT_EQ(r.U64(), 0x1122334455667788ull);
  EXPECT_EQ(r.U8(), 0xab);
  EXPECT_TRUE(r.done());

  uint8_t p[4];
  PutU32(p, 0xdeadbeef);
  EXPECT_EQ(p[0], 0xef);
  EXPECT_EQ(p[3], 0xde);
  EXPECT_EQ(GetU32(p), 0xdeadbeefu);
}

// ---------------------------------------------------------------- varints

TEST(BytesVarint, KnownEncodings) {
  EXPECT_EQ(Enc(0), (Bytes{0x00}));
  EXPECT_EQ(Enc(1), (Bytes{0x01}));
  EXPECT_EQ(Enc(127), (Bytes{0x7f}));
  EXPECT_EQ(Enc(128), (Bytes{0x80, 0x01}));
  EXPECT_EQ(Enc(300), (Bytes{0xac, 0x02}));
  EXPECT_EQ(Enc(16384), (Bytes{0x80, 0x80, 0x01}));
  Bytes max = Enc(std::numeric_limits<uint64_t>::max());
  ASSERT_EQ(max.size(), 10u);  // the documented maximum
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ(max[i], 0xff);
  EXPECT_EQ(max[9], 0x01);
}

TEST(BytesVarint, RoundTripIncludingExtremes) {
  std::vector<uint64_t> values = {0, 1, 2, 127, 128, 255, 256, 16383, 16384, (1ull << 21) - 1, 1ull << 21,
                                  0xffffffffull, 1ull << 32, (1ull << 56) - 1, 1ull << 56, (1ull << 63) - 1,
                                  1ull << 63, std::numeric_limits<uint64_t>::max() - 1,
                                  std::numeric_limits<uint64_t>::max()};
  for (int s = 0; s < 64; ++s) values.push_back((1ull << s) + 12345);
  Bytes b;
  Writer w(&b);
  for (uint64_t v : values) w.Varint(v);
  Reader r(b, "varints");
  for (uint64_t v : values) EXPECT_EQ(r.Varint(), v);
  EXPECT_TRUE(r.done());
}

TEST(BytesVarint, SignedZigZag) {
  EXPECT_EQ(EncSigned(0), (Bytes{0x00}));
  EXPECT_EQ(EncSigned(-1), (Bytes{0x01}));
  EXPECT_EQ(EncSigned(1), (Bytes{0x02}));
  EXPECT_EQ(EncSigned(-2), (Bytes{0x03}));
  EXPECT_EQ(EncSigned(-64), (Bytes{0x7f}));
  EXPECT_EQ(EncSigned(64), (Bytes{0x80, 0x01}));
  EXPECT_EQ(EncSigned(std::numeric_limits<int64_t>::min()).size(), 10u);

  std::vector<int64_t> values = {0, 1, -1, 63, -64, 64, -65, 1000000007, -1000000007,
                                 std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(),
                                 std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::min() + 1,
                                 std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() - 1};
  Bytes b;
  Writer w(&b);
  for (int64_t v : values) w.SignedVarint(v);
  Reader r(b, "svarints");
  for (int64_t v : values) EXPECT_EQ(r.SignedVarint(), v);
  EXPECT_TRUE(r.done());
}

TEST(BytesVarint, OverlongOrOverflowingVarintIsCorrupt) {
  // 9 continuation bytes then a 10th byte > 1: more than 64 bits.
  Bytes overflow(9, 0xff);
  overflow.push_back(0x02);
  EXPECT_EQ(CodeOf([&] { Reader(overflow, "v").Varint(); }), ErrorCode::kCorrupt);
  // 10th byte with the continuation bit: longer than 10 bytes.
  Bytes too_long(10, 0x80);
  too_long.push_back(0x00);
  EXPECT_EQ(CodeOf([&] { Reader(too_long, "v").Varint(); }), ErrorCode::kCorrupt);
  Bytes all_ff(16, 0xff);
  EXPECT_EQ(CodeOf([&] { Reader(all_ff, "v").Varint(); }), ErrorCode::kCorrupt);
  // The largest legal 10-byte form still decodes.
  Bytes max(9, 0xff);
  max.push_back(0x01);
  EXPECT_EQ(Reader(max, "v").Varint(), std::numeric_limits<uint64_t>::max());
}

// ---------------------------------------------------------------- Reader bounds

TEST(BytesReader, TruncationThrowsCorruptNamingWhat) {
  const Bytes three{1, 2, 3};
  try {
    Reader r(three, "my-object");
    r.U32();
    FAIL() << "U32 on 3 bytes did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("my-object"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_EQ(CodeOf([&] { Reader(ByteSpan(), "x").U8(); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Reader(three, "x").U64(); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Reader(three, "x").Raw(4); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Reader(three, "x").ReadId(); }), ErrorCode::kCorrupt);
  const Bytes cont{0x80, 0x80};  // continuation bit set, then nothing
  EXPECT_EQ(CodeOf([&] { Reader(cont, "x").Varint(); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Reader(cont, "x").SignedVarint(); }), ErrorCode::kCorrupt);

  // A failed read does not advance; successful reads do.
  Reader r(three, "x");
  EXPECT_EQ(r.Raw(2).size(), 2u);
  EXPECT_EQ(r.pos(), 2u);
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_EQ(CodeOf([&] { r.U32(); }), ErrorCode::kCorrupt);
  EXPECT_EQ(r.U8(), 3);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.Raw(0).size(), 0u);
}

TEST(BytesReader, Strings) {
  Bytes b;
  Writer w(&b);
  std::string binary("a\0b\n\xff", 5);
  w.Str(binary);
  w.Str("");
  Reader r(b, "s");
  EXPECT_EQ(r.Str(), binary);
  EXPECT_EQ(r.Str(), "");
  EXPECT_TRUE(r.done());

  // Length above max_len.
  Bytes long_str;
  Writer(&long_str).Str(std::string(100, 'x'));
  EXPECT_EQ(CodeOf([&] { Reader(long_str, "s").Str(99); }), ErrorCode::kCorrupt);
  EXPECT_EQ(Reader(long_str, "s").Str(100), std::string(100, 'x'));
  // Length beyond the data.
  Bytes lying{0x05, 'a', 'b'};
  EXPECT_EQ(CodeOf([&] { Reader(lying, "s").Str(); }), ErrorCode::kCorrupt);
  // A huge declared length must fail without allocating it.
  Bytes huge;
  Writer(&huge).Varint(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(CodeOf([&] { Reader(huge, "s").Str(std::numeric_limits<size_t>::max()); }), ErrorCode::kCorrupt);
}

// ---------------------------------------------------------------- sizes

TEST(BytesSize, ParseSizeAcceptsUnits) {
  EXPECT_EQ(ParseSize("0"), 0u);
  EXPECT_EQ(ParseSize("1048576"), 1048576u);
  EXPECT_EQ(ParseSize("17b"), 17u);
  EXPECT_EQ(ParseSize("512KiB"), 512u * 1024);
  EXPECT_EQ(ParseSize("512k"), 512u * 1024);
  EXPECT_EQ(ParseSize("512KB"), 512u * 1024);
  EXPECT_EQ(ParseSize("1MiB"), 1u << 20);
  EXPECT_EQ(ParseSize("8M"), 8u << 20);
  EXPECT_EQ(ParseSize("8mb"), 8u << 20);
  EXPECT_EQ(ParseSize("3G"), 3ull << 30);
  EXPECT_EQ(ParseSize("2TiB"), 2ull << 40);
  EXPECT_EQ(ParseSize("16777215T"), 16777215ull << 40);
}

TEST(BytesSize, ParseSizeRejects) {
  for (const char* s : {"", "abc", "M", "1.5M", "-1", "+1", " 1", "1 M", "12XB", "1P", "1MiBs", "0x10",
                        "99999999999999999999", "18446744073709551616", "16777216T", "17179869184G"}) {
    EXPECT_EQ(CodeOf([&] { ParseSize(s); }), ErrorCode::kInvalidArgument) << "'" << s << "'";
  }
  EXPECT_EQ(ParseSize("1844674407370955161"), 1844674407370955161ull);
}

TEST(BytesSize, HumanBytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.00 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.50 KiB");
  EXPECT_EQ(HumanBytes(5ull << 30), "5.00 GiB");
}

}  // namespace
}  // namespace bulwark
