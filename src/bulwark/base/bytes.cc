#include "bulwark/base/bytes.h"

#include <cctype>
#include <cstdio>

#include "bulwark/base/error.h"

namespace bulwark {

std::string ToHex(ByteSpan data) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(data.size() * 2, '0');
  for (size_t i = 0; i < data.size(); ++i) {
    s[2 * i] = kDigits[data[i] >> 4];
    s[2 * i + 1] = kDigits[data[i] & 15];
  }
  return s;
}

static int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(std::string_view hex, Bytes* out) {
  if (hex.size() % 2) return false;
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = HexVal(hex[2 * i]), lo = HexVal(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Id Id::FromHexOrThrow(std::string_view hex) {
  Bytes b;
  if (hex.size() != 64 || !FromHex(hex, &b))
    throw Error(ErrorCode::kInvalidArgument, "not a 64-digit hex id: '" + std::string(hex) + "'");
  return FromSpan(b);
}

Id Id::FromSpan(ByteSpan s) {
  Id id;
  std::memcpy(id.b.data(), s.data(), kSize);
  return id;
}

bool Id::IsZero() const {
  for (auto c : b)
    if (c) return false;
  return true;
}

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

void Writer::U32(uint32_t v) {
  uint8_t b[4];
  PutU32(b, v);
  out_->insert(out_->end(), b, b + 4);
}
void Writer::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Writer::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<uint8_t>(v));
}
void Writer::SignedVarint(int64_t v) {
  Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
void Writer::Str(std::string_view s) {
  Varint(s.size());
  Raw(AsBytes(s));
}

void Reader::Fail(std::string_view why) const {
  throw Error(ErrorCode::kCorrupt, std::string(what_) + ": " + std::string(why) + " at byte " +
                                       std::to_string(pos_));
}
uint8_t Reader::U8() {
  if (remaining() < 1) Fail("truncated");
  return data_[pos_++];
}
uint32_t Reader::U32() {
  if (remaining() < 4) Fail("truncated");
  uint32_t v = GetU32(data_.data() + pos_);
  pos_ += 4;
  return v;
}
uint64_t Reader::U64() {
  if (remaining() < 8) Fail("truncated");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(data_[pos_ + i]) << (8 * i);
  pos_ += 8;
  return v;
}
uint64_t Reader::Varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint8_t b = U8();
    if (shift == 63 && b > 1) Fail("varint overflow");
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  Fail("varint too long");
}
int64_t Reader::SignedVarint() {
  uint64_t u = Varint();
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}
ByteSpan Reader::Raw(size_t n) {
  if (remaining() < n) Fail("truncated");
  ByteSpan s = data_.subspan(pos_, n);
  pos_ += n;
  return s;
}
Id Reader::ReadId() { return Id::FromSpan(Raw(Id::kSize)); }
std::string Reader::Str(size_t max_len) {
  uint64_t n = Varint();
  if (n > max_len) Fail("string too long");
  return std::string(AsString(Raw(n)));
}

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

uint64_t ParseSize(std::string_view s) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (v > (UINT64_MAX - 9) / 10) throw Error(ErrorCode::kInvalidArgument, "size too large: " + std::string(s));
    v = v * 10 + static_cast<uint64_t>(s[i++] - '0');
  }
  if (i == 0) throw Error(ErrorCode::kInvalidArgument, "not a size: '" + std::string(s) + "'");
  std::string unit(s.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kib" || unit == "kb") mul = 1ull << 10;
  else if (unit == "m" || unit == "mib" || unit == "mb") mul = 1ull << 20;
  else if (unit == "g" || unit == "gib" || unit == "gb") mul = 1ull << 30;
  else if (unit == "t" || unit == "tib" || unit == "tb") mul = 1ull << 40;
  else throw Error(ErrorCode::kInvalidArgument, "unknown size unit in '" + std::string(s) + "'");
  if (v > UINT64_MAX / mul) throw Error(ErrorCode::kInvalidArgument, "size too large: " + std::string(s));
  return v * mul;
}

}  // namespace bulwark
