// Fuzzes pack parsing (ParsePack / ParsePackTail, then OpenBlob on every
// listed blob) under a fixed key. Any input must parse or throw bulwark::Error.
//
// Input: byte 0 selects the mode.
//   even: bytes 1.. are a whole pack object.
//   odd:  bytes 1..2 (u16 LE) are a filler length F, bytes 3.. a pack header
//         *plaintext*; the target builds envelope | F filler bytes | header
//         sealed under the fixed key | trailer, so the fuzzer reaches the
//         header decoder (it cannot forge AES-GCM tags).
// Seeds: fuzz/corpus/pack_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "fuzz_key.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/pack.h"

using namespace bulwark;

namespace {

using fuzz::Master;

void Check(const crypto::Aead& aead, const crypto::KeyedHasher& ids, ByteSpan pack) {
  std::vector<repo::PackedBlob> blobs;
  try {
    blobs = repo::ParsePack(aead, pack, "fuzz pack");
  } catch (const Error&) {
    return;
  }
  // Invariants of a parsed pack: blobs are contiguous from the envelope and
  // end before the header.
  uint64_t expect = repo::kEnvelopeSize;
  for (const auto& b : blobs) {
    if (b.offset != expect || b.length < crypto::Aead::kOverhead) abort();
    expect += b.length;
    if (expect + repo::kPackTrailerSize > pack.size()) abort();
  }
  for (const auto& b : blobs) {
    try {
      repo::OpenBlob(aead, ids, b, pack.subspan(b.offset, b.length), "fuzz blob");
    } catch (const Error&) {
    }
  }
  // The tail parser agrees with the full parser on a complete pack.
  std::vector<repo::PackedBlob> tail;
  size_t need = 0;
  if (!repo::ParsePackTail(aead, pack, pack.size(), "fuzz tail", &tail, &need)) abort();
  if (tail.size() != blobs.size()) abort();
  // And from a short tail it asks for exactly what it needs.
  size_t small = std::min<size_t>(pack.size(), repo::kPackTrailerSize);
  if (!repo::ParsePackTail(aead, pack.last(small), pack.size(), "fuzz tail", &tail, &need)) {
    if (need > pack.size() || need <= small) abort();
    if (!repo::ParsePackTail(aead, pack.last(need), pack.size(), "fuzz tail", &tail, &need)) abort();
    if (tail.size() != blobs.size()) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const crypto::Aead aead(Master().enc);
  static const crypto::KeyedHasher ids(Master().id);
  ByteSpan in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    Check(aead, ids, in);
    // Also as the tail of a larger pack, of every plausible claimed size.
    std::vector<repo::PackedBlob> out;
    size_t need = 0;
    for (uint64_t extra : {uint64_t(0), uint64_t(1), uint64_t(1) << 20, uint64_t(1) << 40}) {
      try {
        repo::ParsePackTail(aead, in, in.size() + extra, "fuzz tail", &out, &need);
      } catch (const Error&) {
      }
    }
    return 0;
  }
  if (in.size() < 2) return 0;
  size_t filler = in[0] | size_t(in[1]) << 8;
  ByteSpan header = in.subspan(2);
  Bytes pack;
  repo::PutEnvelope(repo::ObjectType::kPack, &pack);
  pack.resize(pack.size() + filler, 0xa5);
  size_t before = pack.size();
  aead.Seal(header, AsBytes("bulwark-pack-header"), &pack);
  Writer(&pack).U32(static_cast<uint32_t>(pack.size() - before));
  pack.insert(pack.end(), {'B', 'W', 'P', 'K'});
  Check(aead, ids, pack);
  return 0;
}
