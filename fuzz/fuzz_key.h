// The fixed master key the fuzz targets seal and open with: bytes 0x00..0x3f
// (enc = 0..31, id = 32..63), so seeds made by fuzz/make_seeds.cc decrypt.
#pragma once

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::fuzz {

inline const crypto::MasterKey& Master() {
  static const crypto::MasterKey m = [] {
    Bytes b(64);
    for (int i = 0; i < 64; ++i) b[i] = static_cast<uint8_t>(i);
    return crypto::MasterKey::Parse(b);
  }();
  return m;
}

}  // namespace bulwark::fuzz
