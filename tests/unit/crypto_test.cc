// Tests for src/bulwark/crypto/crypto.h against published or independently
// computed vectors, and the tamper-evidence of the AEAD unit format.
#include "bulwark/crypto/crypto.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <set>
#include <string>

#include "bulwark/base/error.h"

namespace bulwark::crypto {
namespace {

Key32 KeyOf(uint8_t first) {
  Key32 k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(first + i);
  return k;
}

// ---------------------------------------------------------------- SHA-256

TEST(CryptoSha256, Fips180Vectors) {
  // FIPS 180-2, Appendix B.1 ("abc") and B.2 (two-block message).
  EXPECT_EQ(Sha256(AsBytes("abc")).Hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).Hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256({}).Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoSha256, StreamEqualsOneShot) {
  // FIPS 180-2 B.3: one million 'a'.
  Bytes million(1000000, 'a');
  EXPECT_EQ(Sha256(million).Hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256Stream s;
  size_t pos = 0, step = 1;
  while (pos < million.size()) {
    size_t n = std::min(step, million.size() - pos);
    s.Update(ByteSpan(million.data() + pos, n));
    pos += n;
    step = step * 3 + 1;
  }
  EXPECT_EQ(s.Final(), Sha256(million));
  Sha256Stream empty;
  EXPECT_EQ(empty.Final(), Sha256({}));
}

// ---------------------------------------------------------------- HMAC-SHA-256

TEST(CryptoKeyedHasher, MatchesOpenSslHmac) {
  // Expected values computed independently on the build machine with
  //   printf 'what do ya want for nothing?' |
  //     openssl dgst -sha256 -mac HMAC -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
  // (and cross-checked with Python's hmac module); likewise with an empty message.
  KeyedHasher h(KeyOf(0));
  EXPECT_EQ(h.Mac(AsBytes("what do ya want for nothing?")).Hex(),
            "099805f4ac310786968565c098db515cc50862b420ae31e20238312344bed36a");
  EXPECT_EQ(h.Mac({}).Hex(), "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb");
}

TEST(CryptoKeyedHasher, Mac2IsMacOfConcatenationAndKeyMatters) {
  KeyedHasher h(KeyOf(0));
  EXPECT_EQ(h.Mac2(AsBytes("what do ya "), AsBytes("want for nothing?")), h.Mac(AsBytes("what do ya want for nothing?")));
  EXPECT_EQ(h.Mac2(AsBytes("abc"), {}), h.Mac(AsBytes("abc")));
  EXPECT_EQ(h.Mac2({}, AsBytes("abc")), h.Mac(AsBytes("abc")));
  // The hasher is reusable: the same input gives the same MAC every time.
  EXPECT_EQ(h.Mac(AsBytes("x")), h.Mac(AsBytes("x")));
  KeyedHasher other(KeyOf(1));
  EXPECT_NE(other.Mac(AsBytes("x")), h.Mac(AsBytes("x")));
  // A keyed hash is not the plain hash.
  EXPECT_NE(h.Mac(AsBytes("abc")), Sha256(AsBytes("abc")));
}

// ---------------------------------------------------------------- AEAD

TEST(CryptoAead, SealOpenRoundTrip) {
  Aead aead(KeyOf(7));
  const Bytes aad = {'h', 'd', 'r'};
  for (size_t n : {size_t(0), size_t(1), size_t(15), size_t(16), size_t(17), size_t(1000), size_t(300000)}) {
    Bytes plain = RandomBytes(n);
    Bytes sealed = aead.Seal(plain, aad);
    ASSERT_EQ(sealed.size(), n + Aead::kOverhead);
    if (n >= 16) {
      EXPECT_NE(Bytes(sealed.begin() + 16, sealed.begin() + 16 + n), plain) << "not encrypted";
    }
    EXPECT_EQ(aead.Open(sealed, aad, "unit"), plain) << n;
  }
  // Seal appends to an existing buffer.
  Bytes buf = {9, 9, 9};
  aead.Seal(AsBytes("payload"), {}, &buf);
  ASSERT_EQ(buf.size(), 3 + 7 + Aead::kOverhead);
  EXPECT_EQ(buf[0], 9);
  EXPECT_EQ(aead.Open(ByteSpan(buf).subspan(3), {}, "unit"), Bytes(AsBytes("payload").begin(), AsBytes("payload").end()));
}

TEST(CryptoAead, EveryFlippedBitIsDetected) {
  Aead aead(KeyOf(7));
  const Bytes aad = {0x42, 0x57, 0x52, 0x4b, 0x03, 0x01, 0x00, 0x00};
  const Bytes plain = Bytes(AsBytes("twenty bytes of data").begin(), AsBytes("twenty bytes of data").end());
  const Bytes sealed = aead.Seal(plain, aad);
  // Salt (16), ciphertext (20), tag (16): every bit of each.
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    Bytes bad = sealed;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(CodeOf([&] { aead.Open(bad, aad, "unit"); }), ErrorCode::kCorrupt) << "sealed bit " << bit;
  }
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    Bytes bad = aad;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(CodeOf([&] { aead.Open(sealed, bad, "unit"); }), ErrorCode::kCorrupt) << "aad bit " << bit;
  }
  EXPECT_EQ(aead.Open(sealed, aad, "unit"), plain);  // the original still opens
}

TEST(CryptoAead, TruncationExtensionAndAadChangesAreDetected) {
  Aead aead(KeyOf(7));
  const Bytes sealed = aead.Seal(AsBytes("some payload"), AsBytes("aad"));
  for (size_t len = 0; len < sealed.size(); ++len)
    EXPECT_EQ(CodeOf([&] { aead.Open(ByteSpan(sealed).first(len), AsBytes("aad"), "unit"); }), ErrorCode::kCorrupt)
        << len;
  Bytes longer = sealed;
  longer.push_back(0);
  EXPECT_EQ(CodeOf([&] { aead.Open(longer, AsBytes("aad"), "unit"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { aead.Open(sealed, {}, "unit"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { aead.Open(sealed, AsBytes("aad2"), "unit"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { aead.Open(sealed, AsBytes("aa"), "unit"); }), ErrorCode::kCorrupt);
}

TEST(CryptoAead, WrongKeyIsCorruptAndMessageNamesTheUnit) {
  Aead a(KeyOf(1)), b(KeyOf(2));
  Bytes sealed = a.Seal(AsBytes("secret"), {});
  try {
    b.Open(sealed, {}, "index/abcd");
    FAIL() << "opened under the wrong key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("index/abcd"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("authentication failed"), std::string::npos) << e.what();
  }
}

TEST(CryptoAead, SealsAreRandomized) {
  Aead aead(KeyOf(3));
  Bytes plain(64, 'x');
  std::set<Bytes> seen, salts;
  for (int i = 0; i < 20; ++i) {
    Bytes s = aead.Seal(plain, {});
    seen.insert(s);
    salts.insert(Bytes(s.begin(), s.begin() + Aead::kSaltSize));
    EXPECT_EQ(aead.Open(s, {}, "u"), plain);
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ(salts.size(), 20u);
}

// ---------------------------------------------------------------- keys

TEST(CryptoMasterKey, SerializeParse) {
  MasterKey a = MasterKey::Generate(), b = MasterKey::Generate();
  EXPECT_NE(a.enc, b.enc);
  EXPECT_NE(a.enc, a.id);
  Bytes s = a.Serialize();
  ASSERT_EQ(s.size(), 64u);
  MasterKey back = MasterKey::Parse(s);
  EXPECT_EQ(back.enc, a.enc);
  EXPECT_EQ(back.id, a.id);
  EXPECT_EQ(CodeOf([&] { MasterKey::Parse(ByteSpan(s).first(63)); }), ErrorCode::kCorrupt);
  s.push_back(0);
  EXPECT_EQ(CodeOf([&] { MasterKey::Parse(s); }), ErrorCode::kCorrupt);
}

TEST(CryptoRandom, BytesAndIds) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  Bytes a = RandomBytes(32), b = RandomBytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_NE(RandomId(), RandomId());
  EXPECT_FALSE(RandomId().IsZero());
}

KdfParams FastKdf(Bytes salt) { return KdfParams{1, 8u << 20, std::move(salt)}; }

TEST(CryptoKdf, DeterministicPerSaltAndPassword) {
  Bytes salt(16, 0x5a);
  Key32 k1 = DeriveKey("correct horse", FastKdf(salt));
  Key32 k2 = DeriveKey("correct horse", FastKdf(salt));
  EXPECT_EQ(k1, k2);
  EXPECT_NE(k1, Key32{});
  EXPECT_NE(DeriveKey("correct horsf", FastKdf(salt)), k1);
  EXPECT_NE(DeriveKey("", FastKdf(salt)), k1);
  Bytes salt2 = salt;
  salt2[15] ^= 1;
  EXPECT_NE(DeriveKey("correct horse", FastKdf(salt2)), k1);
  // Parameters are part of the derivation.
  EXPECT_NE(DeriveKey("correct horse", KdfParams{2, 8u << 20, salt}), k1);
}

TEST(CryptoKdf, RejectsBadParameters) {
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", FastKdf(Bytes(15, 1))); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", FastKdf(Bytes())); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", KdfParams{0, 8u << 20, Bytes(16, 1)}); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", KdfParams{65, 8u << 20, Bytes(16, 1)}); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", KdfParams{1, (4ull << 30) + 1, Bytes(16, 1)}); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { DeriveKey("pw", KdfParams{1, 1024, Bytes(16, 1)}); }), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace bulwark::crypto
