// FastCDC content-defined chunking.
//
// Algorithm: W. Xia et al., "FastCDC: a Fast and Efficient Content-Defined
// Chunking Approach for Data Deduplication", USENIX ATC 2016: a Gear rolling
// hash (h = (h << 1) + Gear[byte]), cut-point skipping below the minimum size,
// and normalized chunking (level 2): a stricter mask (avg bits + 2) before the
// average size and a looser one (avg bits - 2) after it, so chunk sizes cluster
// around the average. A cut is forced at the maximum size.
//
// The Gear table is derived from a per-repository secret seed (see
// GearTable::FromSeed), so chunk boundaries do not reveal which known files a
// repository holds (the fingerprinting attack on fixed tables).
//
// Thread-safety: a Chunker is immutable; FindCut may be called concurrently.
#pragma once

#include <array>
#include <cstdint>

#include "bulwark/base/bytes.h"

namespace bulwark::chunk {

struct Params {
  uint32_t min_size = 512 * 1024;       // bytes
  uint32_t avg_size = 1024 * 1024;      // bytes, must be a power of two
  uint32_t max_size = 8 * 1024 * 1024;  // bytes
  // Throws Error(kInvalidArgument) unless 64 B <= min < avg < max <= 64 MiB
  // and avg is a power of two.
  void Validate() const;
};

struct GearTable {
  std::array<uint64_t, 256> g{};
  // Deterministic: HMAC-SHA-256(seed, "bulwark-gear" || u32 block) expanded to
  // 256 little-endian 64-bit words.
  static GearTable FromSeed(ByteSpan seed);
};

class Chunker {
 public:
  Chunker(const Params& params, const GearTable& gear);
  // `data` starts at a chunk boundary. Returns the length of the next chunk.
  // If `data.size() < max_size` and `eof` is false, may return 0 meaning "no
  // cut point yet; call again with more data". With `eof` true, returns
  // data.size() when no cut point is found (the final chunk).
  size_t FindCut(ByteSpan data, bool eof) const;
  const Params& params() const { return params_; }

 private:
  Params params_;
  GearTable gear_;
  uint64_t mask_s_, mask_l_;
};

}  // namespace bulwark::chunk
