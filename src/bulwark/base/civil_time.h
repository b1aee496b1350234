// Civil (calendar) time: time zones, calendar fields, ISO 8601 weeks and
// calendar durations ("1y5m7d2h"). Used by retention (forget) to put
// snapshots into hourly/daily/weekly/monthly/yearly buckets and to compute
// keep_within cut-offs, and by `backup --ttl` to compute expiry times.
//
// Times are Unix times (seconds or nanoseconds since 1970-01-01T00:00:00Z,
// leap seconds not counted). Calendar fields are proleptic Gregorian.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace bulwark {

// Calendar fields of one instant in one time zone.
struct CivilTime {
  int64_t year = 1970;
  int month = 1;   // 1..12
  int day = 1;     // 1..31
  int hour = 0;    // 0..23
  int minute = 0;  // 0..59
  int second = 0;  // 0..59
  bool operator==(const CivilTime&) const = default;
};

// Days since 1970-01-01 of a proleptic Gregorian date. `month` and `day` may
// be out of range and are normalised the way Go's time.Date and C's timegm do:
// month 13 is January of the next year, day 0 is the last day of the previous
// month, Feb 31 is Mar 3 (Mar 2 in a leap year).
int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day);

// ISO 8601 week of a date: weeks run Monday..Sunday and week 1 is the week
// holding the year's first Thursday, so 2024-12-30 is in week 1 of 2025 and
// 2021-01-03 in week 53 of 2020. Returns iso_year * 100 + week (e.g. 202501).
int64_t IsoYearWeek(int64_t year, int month, int day);

// A time zone: UTC, or a zone of the system's IANA time zone database
// (/usr/share/zoneinfo, TZif files, RFC 8536), with its daylight saving rules.
//
// Zone rules come from Howard Hinnant's date/tz library (Debian's
// libhowardhinnant-date-dev, built with USE_OS_TZDB: it reads the system's
// zoneinfo files; GCC 12's libstdc++ lacks std::chrono::tzdb, whose API it
// is). That build uses the transitions listed in the files and not their
// POSIX-TZ footer, and Debian's files list transitions up to 2037: later
// instants get the zone's last listed offset (standard time). $TZDIR is not
// consulted.
//
// Thread-safety: a TimeZone is an immutable value (a name and a pointer into
// the process-wide, immutable zone database); all members are safe to call
// concurrently. The first Load of a process reads the database's zone list.
class TimeZone {
 public:
  TimeZone() = default;  // UTC
  // "UTC" (also "Z", "Etc/UTC") or a database name such as "Europe/Berlin".
  // Throws Error(kInvalidArgument, "unknown time zone 'X' ...") when the name
  // is malformed (absolute, "..", odd characters) or has no zone file.
  static TimeZone Load(std::string_view name);

  const std::string& name() const { return name_; }  // "UTC" for UTC
  bool is_utc() const { return zone_ == nullptr; }

  // Seconds east of UTC in effect at `unix_seconds` (+3600 for CET).
  int64_t OffsetAt(int64_t unix_seconds) const;
  CivilTime ToCivil(int64_t unix_seconds) const;
  // The instant with these local calendar fields, fields normalised as
  // DaysFromCivil does. A local time that does not exist (skipped by a
  // daylight saving change) or exists twice resolves as Go's time.Date (and
  // so restic) does: the offset in effect at the fields read as UTC is tried
  // first, and if the result lies outside that offset's period, the offset at
  // the result is used (a skipped 02:30 in Berlin becomes 03:30 CEST).
  int64_t FromCivil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute, int64_t second) const;

  // How one local wall-clock time maps to instants. `local_seconds` is the
  // local calendar time written as if it were UTC (DaysFromCivil * 86400 +
  // time of day), e.g. 2024-03-31 02:30 -> 1711852200.
  struct LocalMapping {
    enum class Kind {
      kUnique,    // exists once: earliest == latest, the instant
      kSkipped,   // in a gap (spring forward): earliest == latest == the
                  // instant the gap ends, i.e. the first instant after it
                  // (Berlin 2024-03-31 02:30 -> 01:00:00Z = 03:00 CEST)
      kRepeated,  // in an overlap (fall back): earliest = first occurrence
                  // (daylight time), latest = second (standard time)
    };
    Kind kind = Kind::kUnique;
    int64_t earliest = 0;  // seconds since the Unix epoch (UTC)
    int64_t latest = 0;
  };
  LocalMapping MapLocal(int64_t local_seconds) const;

  // RFC 3339 with this zone's offset in effect at `unix_seconds`:
  // "2024-03-31T03:00:00+02:00"; "...Z" in UTC.
  std::string FormatRfc3339(int64_t unix_seconds) const;

 private:
  std::string name_ = "UTC";
  const date::time_zone* zone_ = nullptr;  // owned by the database; null = UTC
};

// A calendar duration, the unit of keep_within* and --ttl: years, months,
// weeks, days and hours, written "1y5m7d2h", "36h", "7d", "4w", "3m", "1y".
// Unlike bulwark::config::ParseDuration (lock waits, timeouts), 'm' here is
// MONTHS, as in restic's --keep-within, and there are no minutes or seconds.
struct CalendarDuration {
  int years = 0, months = 0, weeks = 0, days = 0, hours = 0;

  // Parses one or more <digits><unit> groups, units y m w d h, each unit at
  // most once, each number 0..1000000; a bare "0" is the zero duration.
  // Throws Error(kInvalidArgument, "invalid duration '3x': ...").
  static CalendarDuration Parse(std::string_view s);
  // Canonical text, units in the order y m w d h, zero groups left out:
  // "1y5m7d2h"; "0" for the zero duration.
  std::string ToString() const;
  bool zero() const { return years == 0 && months == 0 && weeks == 0 && days == 0 && hours == 0; }

  // `time_ns` minus this duration: the calendar fields of `time_ns` in `tz`
  // are moved back by years, months and 7*weeks+days (normalised: Mar 31 - 1m
  // is "Feb 31" = Mar 3, as Go's time.AddDate, which restic uses), then hours
  // are subtracted as elapsed time. Sub-second part kept. Saturates at the
  // int64 nanosecond range (years 1677..2262).
  int64_t SubtractFrom(int64_t time_ns, const TimeZone& tz) const;
  // `time_ns` plus this duration, the same way.
  int64_t AddTo(int64_t time_ns, const TimeZone& tz) const;

  bool operator==(const CalendarDuration&) const = default;

 private:
  int64_t Shift(int64_t time_ns, const TimeZone& tz, int sign) const;
};

}  // namespace bulwark
