// Byte buffers, hex, little-endian and varint coding used by every on-disk
// format (docs/FORMAT.md). All multi-byte integers on disk are little-endian;
// varints are LEB128 (unsigned, 7 bits per byte, at most 10 bytes).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Lower-case hex of `data`.
std::string ToHex(ByteSpan data);
// Parses lower- or upper-case hex; returns false on odd length or a non-hex digit.
bool FromHex(std::string_view hex, Bytes* out);

// A 32-byte identifier (blob id, pack id, snapshot id, ...). Ordered and
// hashable so it can key sorted vectors and hash maps.
struct Id {
  std::array<uint8_t, 32> b{};

  static constexpr size_t kSize = 32;
  std::string Hex() const { return ToHex(b); }
  std::string Short() const { return Hex().substr(0, 8); }
  // Parses 64 hex digits; throws Error(kInvalidArgument) otherwise.
  static Id FromHexOrThrow(std::string_view hex);
  static Id FromSpan(ByteSpan s);  // s.size() must be 32
  bool IsZero() const;
  auto operator<=>(const Id&) const = default;
};

struct IdHash {
  size_t operator()(const Id& id) const {
    size_t h;
    std::memcpy(&h, id.b.data(), sizeof h);  // ids are uniformly random
    return h;
  }
};

// Append-only encoder. All Put* append little-endian.
class Writer {
 public:
  explicit Writer(Bytes* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Varint(uint64_t v);
  void SignedVarint(int64_t v);  // zig-zag
  void Raw(ByteSpan data) { out_->insert(out_->end(), data.begin(), data.end()); }
  void Raw(const Id& id) { Raw(ByteSpan(id.b)); }
  void Str(std::string_view s);  // varint length + bytes
 private:
  Bytes* out_;
};

// Bounds-checked decoder. Every Get* throws Error(kCorrupt, "<what>: truncated
// ...") instead of reading past the end, so decoders are safe on hostile input.
class Reader {
 public:
  Reader(ByteSpan data, std::string_view what) : data_(data), what_(what) {}
  uint8_t U8();
  uint32_t U32();
  uint64_t U64();
  uint64_t Varint();
  int64_t SignedVarint();
  ByteSpan Raw(size_t n);
  Id ReadId();
  std::string Str(size_t max_len = 1 << 20);
  size_t remaining() const { return data_.size() - pos_; }
  bool done() const { return pos_ == data_.size(); }
  size_t pos() const { return pos_; }
  [[noreturn]] void Fail(std::string_view why) const;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
  std::string_view what_;
};

void PutU32(uint8_t* p, uint32_t v);
uint32_t GetU32(const uint8_t* p);

// "1.5 MiB" style, base 1024.
std::string HumanBytes(uint64_t n);
// Parses "512KiB", "1MiB", "8M", "1048576" (base 1024); throws kInvalidArgument.
uint64_t ParseSize(std::string_view s);

}  // namespace bulwark
