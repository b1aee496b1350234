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
// Time zones: a field-based schedule (and the @yearly..@hourly macros) is
// evaluated in the schedule's TimeZone (UTC unless one is given; config
// key `timezone:`), the way cron reads a crontab in the machine's local time
// and as CRON_TZ= does in cronie. "@every" is always epoch-aligned in UTC (it
// is a fixed interval of elapsed time, not a wall-clock pattern). Daylight
// saving changes, with every local time matched against the fields:
//   * Spring forward (a gap: Europe/Berlin 2024-03-31 02:00-02:59 does not
//     exist): a matching local time inside the gap fires ONCE at the first
//     instant after the gap (03:00 CEST = 01:00Z), as Vixie cron / cronie run
//     the jobs of skipped fixed times right after the clock change. Several
//     skipped times (e.g. "*/15 2 * * *") and a regular match at the end of
//     the gap (03:00) fall on that one instant and fire once. An hourly
//     schedule therefore fires at 01:00 CET and 03:00 CEST: one hour of
//     elapsed time apart, no extra run.
//   * Fall back (an overlap: Berlin 2024-10-27 02:00-02:59 happens twice):
//     a matching local time fires ONCE, at its FIRST occurrence (daylight
//     time, 02:30 CEST = 00:30Z); its second occurrence (02:30 CET) does not
//     fire. An hourly schedule fires at 02:00 CEST and then 03:00 CET: two
//     hours of elapsed time apart. (Vixie cron runs wildcard-hour jobs again
//     in the repeated hour; we do not, so every local time runs at most once
//     a day. Use "@every 1h" for a fixed cadence in elapsed time.)
// Instants in 1970..9999 are supported; the zone rules' own limits are in
// bulwark/base/civil_time.h (Debian's zone files list transitions up to
// 2037).
//
// Errors: Parse throws Error(kInvalidArgument, "invalid cron expression
// '...': ..."). Thread-safety: a CronSchedule is immutable (and so safe to
// use from several threads).
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "bulwark/base/civil_time.h"

namespace bulwark::config {

class CronSchedule {
 public:
  // Supported time range for Next(): 1970-01-01T00:00:00Z up to
  // 9999-12-31T23:59:59Z.
  static constexpr int64_t kMinTime = 0;
  static constexpr int64_t kMaxTime = 253402300799;

  // `zone`: where the fields are evaluated (ignored by "@every").
  static CronSchedule Parse(std::string_view expr, const TimeZone& zone = TimeZone());

  // Returns the first fire time strictly after `after_unix_seconds` (seconds
  // since the Unix epoch, UTC; fire times of field schedules are whole local
  // minutes, or the end of a DST gap). Throws Error(kInvalidArgument) if
  // `after_unix_seconds` is outside [kMinTime, kMaxTime] or the next fire
  // time would be after kMaxTime.
  int64_t Next(int64_t after_unix_seconds) const;

  // True if the schedule fires at exactly `unix_seconds` (the same instants
  // Next returns, DST rules included).
  bool Matches(int64_t unix_seconds) const;

  // The expression as given to Parse (trimmed).
  const std::string& expression() const { return expr_; }
  // The @every interval in seconds, or 0 for a field-based schedule.
  int64_t every_seconds() const { return every_seconds_; }
  const TimeZone& zone() const { return zone_; }

 private:
  CronSchedule() = default;
  // The first local time >= `local` (a civil time written as UTC, >= 0)
  // matching the fields.
  int64_t NextLocal(int64_t local) const;
  bool MatchesLocal(int64_t local) const;

  std::string expr_;
  TimeZone zone_;
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
