// Fuzzes the drill record decoder (DrillRecord::Decode: JSON; docs/FORMAT.md
// "Drill records"). Any input must decode or throw bulwark::Error; a decoded
// record must survive Encode -> Decode unchanged.
// Seeds: fuzz/corpus/drill_record_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/repo/snapshot.h"

using namespace bulwark;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  repo::DrillRecord r;
  try {
    r = repo::DrillRecord::Decode(ByteSpan(data, size), "fuzz drill record");
  } catch (const Error&) {
    return 0;
  }
  // Not caught from here on.
  Bytes enc = r.Encode();
  repo::DrillRecord back = repo::DrillRecord::Decode(enc, "fuzz drill record re-decode");
  if (back.ToJson(false) != r.ToJson(false)) abort();
  if (back.Encode() != enc) abort();
  (void)repo::FormatTime(r.time_ns);
  return 0;
}
