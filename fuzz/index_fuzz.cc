// Fuzzes the index object decoder (IndexFile::Decode). Any input must decode
// or throw bulwark::Error; a decoded file must re-encode canonically
// (Encode(Decode(Encode(f))) == Encode(f)).
// Seeds: fuzz/corpus/index_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/index.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  repo::IndexFile f;
  try {
    f = repo::IndexFile::Decode(ByteSpan(data, size), "fuzz index");
  } catch (const Error&) {
    return 0;
  }
  // Not caught from here on: a decoded index must round-trip.
  Bytes enc = f.Encode();
  if (enc.size() > size) abort();  // the canonical form is never longer
  repo::IndexFile g = repo::IndexFile::Decode(enc, "fuzz index re-decode");
  if (g.Encode() != enc) abort();
  if (g.packs.size() != f.packs.size() || g.supersedes != f.supersedes) abort();
  // Loading it into an Index must not break either.
  repo::Index idx;
  for (const auto& p : f.packs) idx.AddPack(p.id, p.blobs);
  idx.Finalize();
  for (const auto& p : f.packs)
    for (const auto& b : p.blobs)
      if (!idx.Has(b.id)) abort();
  return 0;
}
