#include "bulwark/chunk/fastcdc.h"

#include <bit>
#include <string>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::chunk {

void Params::Validate() const {
  auto bad = [&](const std::string& why) {
    throw Error(ErrorCode::kInvalidArgument,
                "chunker sizes min=" + std::to_string(min_size) + " avg=" + std::to_string(avg_size) +
                    " max=" + std::to_string(max_size) + ": " + why);
  };
  if (min_size < 64) bad("min must be at least 64 bytes");
  if (!(min_size < avg_size && avg_size < max_size)) bad("need min < avg < max");
  if (max_size > (64u << 20)) bad("max must be at most 64 MiB");
  if (!std::has_single_bit(avg_size)) bad("avg must be a power of two");
}

GearTable GearTable::FromSeed(ByteSpan seed) {
  crypto::Key32 key{};
  Id k = crypto::Sha256(seed);  // normalise any seed length to 32 bytes
  std::copy(k.b.begin(), k.b.end(), key.begin());
  crypto::KeyedHasher mac(key);
  GearTable t;
  for (uint32_t block = 0; block < 64; ++block) {
    Bytes msg(AsBytes("bulwark-gear").begin(), AsBytes("bulwark-gear").end());
    Writer(&msg).U32(block);
    Id out = mac.Mac(msg);
    for (int j = 0; j < 4; ++j) {
      uint64_t v = 0;
      for (int b = 0; b < 8; ++b) v |= uint64_t(out.b[j * 8 + b]) << (8 * b);
      t.g[block * 4 + j] = v;
    }
  }
  return t;
}

static uint64_t TopBits(int n) { return n <= 0 ? 0 : (n >= 64 ? ~0ull : (~0ull << (64 - n))); }

Chunker::Chunker(const Params& params, const GearTable& gear) : params_(params), gear_(gear) {
  params_.Validate();
  int bits = std::countr_zero(params_.avg_size);
  mask_s_ = TopBits(bits + 2);
  mask_l_ = TopBits(bits - 2);
}

size_t Chunker::FindCut(ByteSpan data, bool eof) const {
  size_t n = data.size();
  if (n <= params_.min_size) return eof ? n : 0;
  size_t limit = std::min<size_t>(n, params_.max_size);
  size_t normal = std::min<size_t>(limit, params_.avg_size);
  const uint8_t* p = data.data();
  const uint64_t* g = gear_.g.data();
  uint64_t h = 0;
  size_t i = params_.min_size;
  for (; i < normal; ++i) {
    h = (h << 1) + g[p[i]];
    if (!(h & mask_s_)) return i + 1;
  }
  for (; i < limit; ++i) {
    h = (h << 1) + g[p[i]];
    if (!(h & mask_l_)) return i + 1;
  }
  if (limit == params_.max_size) return limit;
  return eof ? n : 0;
}

}  // namespace bulwark::chunk
