// Fuzzes the snapshot decoder (Snapshot::Decode: JSON). Any input must decode
// or throw bulwark::Error; a decoded snapshot must survive Encode -> Decode
// unchanged.
// Seeds: fuzz/corpus/snapshot_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/snapshot.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  repo::Snapshot s;
  try {
    s = repo::Snapshot::Decode(ByteSpan(data, size), "fuzz snapshot");
  } catch (const Error&) {
    return 0;
  }
  // Not caught from here on.
  Bytes enc = s.Encode();
  repo::Snapshot back = repo::Snapshot::Decode(enc, "fuzz snapshot re-decode");
  if (back.ToJson(false) != s.ToJson(false)) abort();
  if (back.Encode() != enc) abort();
  (void)repo::FormatTime(s.time_ns);
  return 0;
}
