// Fuzzes the agent's schedule state decoder (scheduler.json, drills.json;
// bulwark/agent/state.h): any input must decode or throw bulwark::Error with
// kCorrupt or kUnsupported, never crash; what decodes must survive an
// encode/decode round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bulwark/agent/state.h"
#include "bulwark/base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bulwark::agent::State;
  using bulwark::agent::StateStore;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const State s = StateStore::Decode(text, "fuzz.json");
    if (!(StateStore::Decode(StateStore::Encode(s), "round trip") == s)) __builtin_trap();
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kCorrupt && e.code() != bulwark::ErrorCode::kUnsupported) __builtin_trap();
  }
  return 0;
}
