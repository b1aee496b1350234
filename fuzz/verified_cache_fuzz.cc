// Fuzzes the local cache's verified-packs decoder (VerifiedPacks::Decode,
// src/bulwark/repo/cache.h). Any input must decode or throw bulwark::Error; a
// decoded file must re-encode canonically and decode to the same records, and
// the re-verification rule must stay within its bounds for every record.
// Seeds: fuzz/corpus/verified_cache_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/cache.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  repo::VerifiedPacks v;
  try {
    v = repo::VerifiedPacks::Decode(ByteSpan(data, size), "fuzz verified-packs");
  } catch (const Error&) {
    return 0;
  }
  // Not caught from here on.
  Bytes enc = v.Encode();
  if (enc.size() > size) abort();  // the canonical form is never longer
  repo::VerifiedPacks back = repo::VerifiedPacks::Decode(enc, "fuzz verified-packs re-decode");
  if (back.repository != v.repository || back.packs != v.packs || back.Encode() != enc) abort();
  const int64_t week = 7 * 86400;
  for (const auto& [pack, seconds] : v.packs) {
    if (seconds < 0) abort();
    int64_t after = repo::ReverifyAfter(pack, seconds, week);
    if (after < week / 2 || after >= week) abort();
    if (!repo::IsDue(pack, seconds, seconds + week, week) || repo::IsDue(pack, seconds, seconds, week)) abort();
  }
  return 0;
}
