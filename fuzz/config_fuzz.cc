// Fuzzes bulwark.yaml parsing: any input must either parse or throw
// bulwark::Error(kInvalidArgument) with a positioned message (never crash,
// hang, leak or throw another exception type).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bulwark/base/error.h"
#include "bulwark/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const bulwark::config::Config c = bulwark::config::Parse(text, "fuzz.yaml");
    // Parsed configs are internally consistent.
    for (const auto& [name, source] : c.sources) {
      if (&c.Source(name) != &source) __builtin_trap();
      if (c.Repository(source.repository) == nullptr) __builtin_trap();
      for (const auto& r : source.copy_to)
        if (c.Repository(r) == nullptr || r == source.repository) __builtin_trap();
      if (source.kind == bulwark::config::SourceKind::kFs && source.paths.empty()) __builtin_trap();
      if (source.kind == bulwark::config::SourceKind::kCommand && source.command.empty()) __builtin_trap();
    }
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kInvalidArgument) __builtin_trap();
    if (std::string_view(e.what()).substr(0, 10) != "fuzz.yaml:") __builtin_trap();
  }
  try {
    if (bulwark::config::ParseDuration(text) < 0) __builtin_trap();
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kInvalidArgument) __builtin_trap();
  }
  return 0;
}
