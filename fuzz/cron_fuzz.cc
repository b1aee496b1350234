// Fuzzes cron expression parsing and Next(): any input must either parse or
// throw bulwark::Error(kInvalidArgument); Next() must return a later, matching
// instant or throw kInvalidArgument (out of range), never kInternal. The
// schedule is evaluated in UTC or in a zone with daylight saving (including
// Lord Howe's 30-minute shift), so the DST gap and overlap paths are fuzzed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "bulwark/base/error.h"
#include "bulwark/config/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bulwark::config::CronSchedule;
  // The first 8 bytes (if present) choose the start instant, slightly beyond
  // both ends of the supported range.
  // The rest of those bytes' value chooses the time zone.
  static const char* const kZones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                       "Asia/Kolkata"};
  static const bulwark::TimeZone zones[] = {bulwark::TimeZone::Load(kZones[0]), bulwark::TimeZone::Load(kZones[1]),
                                            bulwark::TimeZone::Load(kZones[2]), bulwark::TimeZone::Load(kZones[3]),
                                            bulwark::TimeZone::Load(kZones[4])};
  int64_t after = 1704067200;  // 2024-01-01T00:00:00Z
  size_t zone = 0;
  if (size >= 8) {
    uint64_t raw;
    std::memcpy(&raw, data, 8);
    const uint64_t span = static_cast<uint64_t>(CronSchedule::kMaxTime + 3);
    after = static_cast<int64_t>(raw % span) - 1;
    zone = (raw / span) % 5;
    data += 8;
    size -= 8;
  }
  const std::string_view expr(reinterpret_cast<const char*>(data), size);
  try {
    const CronSchedule s = CronSchedule::Parse(expr, zones[zone]);
    for (int i = 0; i < 3; ++i) {
      const int64_t next = s.Next(after);
      if (next <= after || next > CronSchedule::kMaxTime || !s.Matches(next)) __builtin_trap();
      after = next;
    }
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kInvalidArgument) __builtin_trap();
  }
  return 0;
}
