// Fuzzes key file parsing (repo::OpenKeyFile) with a fixed password. Key files
// are the only unauthenticated objects: anyone who can write to the
// repository can plant one. Any input must open, be rejected (nullopt) or
// throw bulwark::Error.
//
// Speed: a well-formed key file makes OpenKeyFile run Argon2id with the
// parameters it names. Inputs asking for more than 1 pass or 8 MiB are
// skipped before the call (DeriveKey accepts up to 64 passes and 4 GiB, which
// would stall the fuzzer). Values that would be out of range for the
// conversion (negative or huge floats) are still passed on: that is exactly
// what the target must survive.
// Seeds: fuzz/corpus/key_fuzz (fuzz/make_seeds.cc; password "fuzz-password").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/repository.h"

using namespace bulwark;

namespace {

// True if `v` (as OpenKeyFile would read it with get<uint64_t>) is a
// well-defined value above `limit`: too slow to derive.
bool TooCostly(const nlohmann::json& v, uint64_t limit) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() > limit;
  if (v.is_number_integer()) return false;  // negative: wraps to a huge value that DeriveKey's range check refuses
  if (v.is_number_float()) {
    double d = v.get<double>();
    return d > static_cast<double>(limit) && d < 18446744073709551616.0;
  }
  return false;  // not a number: a json type error, no derivation
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  if (size >= repo::kEnvelopeSize) {
    ByteSpan body = in.subspan(repo::kEnvelopeSize);
    nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      if (j.contains("ops") && TooCostly(j["ops"], 1)) return 0;
      if (j.contains("mem") && TooCostly(j["mem"], 8u << 20)) return 0;
    }
  }
  try {
    auto key = repo::OpenKeyFile(in, "fuzz-password", "fuzz key", nullptr);
    if (key) {
      // An opened master key is well formed.
      if (key->Serialize().size() != 64) abort();
    }
  } catch (const Error&) {
  }
  // The listing path: metadata only, no derivation.
  try {
    repo::KeyInfo info;
    info = repo::ReadKeyInfo(in, "fuzz key");
  } catch (const Error&) {
  }
  return 0;
}
