// Fuzzes the local cache's verified-packs decoder (VerifiedPacks::Decode,
// src/bulwark/repo/cache.h). Any input must decode or throw bulwark::Error; a
// decoded file must re-encode canonically and decode to the same records, and
// the re-verification rule must stay within its bounds for every record.
//
// Input: a mode byte, then the file. Mode 0: the file as given. Mode 1: its
// last 32 bytes are first replaced by the correct SHA-256 of the rest, so
// mutations reach the parser behind the checksum.
// Seeds: fuzz/corpus/verified_cache_fuzz (fuzz/make_seeds.cc).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/cache.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Bytes file(data + 1, data + size);
  if ((data[0] & 1) && file.size() >= Id::kSize) {
    Id sum = crypto::Sha256(ByteSpan(file).first(file.size() - Id::kSize));
    std::copy(sum.b.begin(), sum.b.end(), file.end() - Id::kSize);
  }
  size = file.size();
  repo::VerifiedPacks v;
  try {
    v = repo::VerifiedPacks::Decode(file, "fuzz verified-packs");
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
    if (repo::IsDue(pack, seconds, seconds, week) || !repo::IsDue(pack, seconds, seconds - 1, week)) abort();
    if (seconds <= INT64_MAX - week && !repo::IsDue(pack, seconds, seconds + week, week)) abort();
  }
  return 0;
}
