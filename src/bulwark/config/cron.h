// Cron schedules for `schedule:` in bulwark.yaml.
//
// Accepted syntax:
//   * Five whitespace-separated fields: minute (0-59), hour (0-23),
//     day-of-month (1-31), month (1-12 or jan..dec), day-of-week (0-7 or
//     sun..sat; 0 and 7 are Sunday). Names are case-insensitive.
//     Each field is a comma-separated list of items:
//       *          every value
//       N          one value
//       A-B        inclusive range, A <= B
//       */S  A-B/S every S-th value of the range (S >= 1)
//       A/S        the same as A-MAX/S
//     Names may appear as single values and range ends ("mon-fri").
//   * Macros: @yearly/@annually (0 0 1 1 *), @monthly (0 0 1 * *),
//     @weekly (0 0 * * 0), @daily/@midnight (0 0 * * *), @hourly (0 * * * *).
//   * "@every DURATION" (config::ParseDuration syntax, >= 1s): fires at every
//     multiple of DURATION since the Unix epoch, e.g. "@every 6h" fires at
//     00:00, 06:00, 12:00, 18:00 UTC. Aligning to the epoch (rather than to the
//     previous run) keeps the schedule stable across daemon restarts.
// Not supported: @reboot, seconds fields, Quartz extensions (? L W #),
// CRON_TZ=. A day-of-month / month combination that can never occur (e.g.
// "0 0 30 2 *") is rejected.
//
// Day matching follows Vixie cron: if both day-of-month and day-of-week are
// restricted (their field text does not start with '*'), a day matches when
// EITHER matches; otherwise both must match ("*/2" counts as unrestricted).
//
// Time zones: schedules are evaluated in UTC only for now; the `timezone:`
// config key is stored but not applied.
//
// Errors: Parse throws Error(kInvalidArgument, "invalid cron expression
// '...': ..."). Thread-safety: a CronSchedule is immutable.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

namespace bulwark::config {

class CronSchedule {
 public:
  // Supported time range for Next(): 1970-01-01T00:00:00Z up to
  // 9999-12-31T23:59:59Z.
  static constexpr int64_t kMinTime = 0;
  static constexpr int64_t kMaxTime = 253402300799;

  static CronSchedule Parse(std::string_view expr);

  // Returns the first fire time strictly after `after_unix_seconds` (UTC, in
  // seconds since the epoch; cron fire times are whole minutes). Throws
  // Error(kInvalidArgument) if `after_unix_seconds` is outside
  // [kMinTime, kMaxTime] or the next fire time would be after kMaxTime.
  int64_t Next(int64_t after_unix_seconds) const;

  // True if the schedule fires at exactly `unix_seconds`.
  bool Matches(int64_t unix_seconds) const;

  // The expression as given to Parse (trimmed).
  const std::string& expression() const { return expr_; }
  // The @every interval in seconds, or 0 for a field-based schedule.
  int64_t every_seconds() const { return every_seconds_; }

 private:
  CronSchedule() = default;

  std::string expr_;
  int64_t every_seconds_ = 0;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // bits 1..31
  std::bitset<13> months_;         // bits 1..12
  std::bitset<7> days_of_week_;    // 0 = Sunday
  bool dom_star_ = false;
  bool dow_star_ = false;
};

}  // namespace bulwark::config
