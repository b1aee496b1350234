// Calendar arithmetic, ISO weeks, time zones and calendar durations
// (base/civil_time.h).
#include "bulwark/base/civil_time.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <ctime>

#include "bulwark/base/error.h"
#include "bulwark/repo/snapshot.h"
#include "test_util.h"

namespace bulwark {
namespace {

int64_t T(const char* rfc3339) { return repo::ParseTime(rfc3339); }

// Expects `fn` to throw Error(kInvalidArgument) whose message contains `needle`.
template <typename Fn>
void ExpectInvalid(Fn&& fn, const std::string& input, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "accepted '" << input << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CivilTimeTest, DaysFromCivilMatchesTimegmAndNormalises) {
  for (int64_t y : {1600, 1899, 1970, 2000, 2023, 2024, 2100, 2400})
    for (int m = 1; m <= 12; ++m)
      for (int d : {1, 15, 28}) {
        struct tm tm = {};
        tm.tm_year = static_cast<int>(y - 1900);
        tm.tm_mon = m - 1;
        tm.tm_mday = d;
        EXPECT_EQ(DaysFromCivil(y, m, d) * 86400, static_cast<int64_t>(timegm(&tm))) << y << "-" << m << "-" << d;
      }
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2024, 2, 31), DaysFromCivil(2024, 3, 2));   // leap year
  EXPECT_EQ(DaysFromCivil(2023, 2, 31), DaysFromCivil(2023, 3, 3));
  EXPECT_EQ(DaysFromCivil(2024, 13, 1), DaysFromCivil(2025, 1, 1));
  EXPECT_EQ(DaysFromCivil(2024, 0, 1), DaysFromCivil(2023, 12, 1));
  EXPECT_EQ(DaysFromCivil(2024, -11, 1), DaysFromCivil(2023, 1, 1));
  EXPECT_EQ(DaysFromCivil(2024, 3, 0), DaysFromCivil(2024, 2, 29));
}

TEST(CivilTimeTest, IsoWeeks) {
  EXPECT_EQ(IsoYearWeek(2024, 12, 29), 202452);  // Sunday
  EXPECT_EQ(IsoYearWeek(2024, 12, 30), 202501);  // Monday: week 1 of 2025
  EXPECT_EQ(IsoYearWeek(2025, 1, 5), 202501);
  EXPECT_EQ(IsoYearWeek(2025, 1, 6), 202502);
  EXPECT_EQ(IsoYearWeek(2020, 12, 31), 202053);  // 2020 has 53 weeks
  EXPECT_EQ(IsoYearWeek(2021, 1, 3), 202053);
  EXPECT_EQ(IsoYearWeek(2021, 1, 4), 202101);
  EXPECT_EQ(IsoYearWeek(2016, 1, 3), 201553);
  EXPECT_EQ(IsoYearWeek(2016, 1, 4), 201601);
  EXPECT_EQ(IsoYearWeek(2014, 11, 15), 201446);
  EXPECT_EQ(IsoYearWeek(1969, 12, 29), 197001);  // before the epoch
  // Against strftime's %G%V for every day of a few years.
  for (int64_t day = DaysFromCivil(1998, 12, 1); day < DaysFromCivil(2006, 2, 1); ++day) {
    time_t t = static_cast<time_t>(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[16];
    strftime(buf, sizeof buf, "%G%V", &tm);
    EXPECT_EQ(IsoYearWeek(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), std::atoll(buf)) << buf;
  }
}

TEST(CivilTimeTest, UtcConversions) {
  const TimeZone utc;
  EXPECT_TRUE(utc.is_utc());
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.ToCivil(T("2024-02-29T23:59:58Z") / 1000000000), (CivilTime{2024, 2, 29, 23, 59, 58}));
  EXPECT_EQ(utc.ToCivil(-1), (CivilTime{1969, 12, 31, 23, 59, 59}));
  EXPECT_EQ(utc.FromCivil(2024, 2, 29, 23, 59, 58), T("2024-02-29T23:59:58Z") / 1000000000);
  EXPECT_TRUE(TimeZone::Load("UTC").is_utc());
  EXPECT_TRUE(TimeZone::Load("Etc/UTC").is_utc());
}

TEST(CivilTimeTest, NamedZoneWithDaylightSaving) {
  const TimeZone berlin = TimeZone::Load("Europe/Berlin");
  EXPECT_FALSE(berlin.is_utc());
  EXPECT_EQ(berlin.name(), "Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(T("2024-01-15T12:00:00Z") / 1000000000), 3600);
  EXPECT_EQ(berlin.OffsetAt(T("2024-07-15T12:00:00Z") / 1000000000), 7200);
  EXPECT_EQ(berlin.ToCivil(T("2024-03-10T23:30:00Z") / 1000000000), (CivilTime{2024, 3, 11, 0, 30, 0}));
  EXPECT_EQ(berlin.FromCivil(2024, 7, 15, 14, 0, 0), T("2024-07-15T12:00:00Z") / 1000000000);
  // 2024-03-31 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00):
  // as Go's time.Date, it becomes 03:30 CEST = 01:30 UTC.
  EXPECT_EQ(berlin.FromCivil(2024, 3, 31, 2, 30, 0), T("2024-03-31T01:30:00Z") / 1000000000);
  // The TZ variable is restored.
  ::setenv("TZ", "America/New_York", 1);
  berlin.OffsetAt(0);
  EXPECT_STREQ(std::getenv("TZ"), "America/New_York");
  ::unsetenv("TZ");
  berlin.OffsetAt(0);
  EXPECT_EQ(std::getenv("TZ"), nullptr);
}

TEST(CivilTimeTest, MapLocalAcrossDaylightSavingChanges) {
  using Kind = TimeZone::LocalMapping::Kind;
  const TimeZone berlin = TimeZone::Load("Europe/Berlin");
  const auto local = [](int64_t y, int m, int d, int h, int mi) {
    return DaysFromCivil(y, m, d) * 86400 + h * 3600 + mi * 60;
  };
  const auto utc = [](const char* t) { return T(t) / 1000000000; };
  TimeZone::LocalMapping m = berlin.MapLocal(local(2024, 7, 1, 2, 30));
  EXPECT_EQ(m.kind, Kind::kUnique);
  EXPECT_EQ(m.earliest, utc("2024-07-01T00:30:00Z"));
  EXPECT_EQ(m.latest, m.earliest);
  // Skipped: the first instant after the gap, 03:00 CEST.
  m = berlin.MapLocal(local(2024, 3, 31, 2, 30));
  EXPECT_EQ(m.kind, Kind::kSkipped);
  EXPECT_EQ(m.earliest, utc("2024-03-31T01:00:00Z"));
  EXPECT_EQ(m.latest, m.earliest);
  // Repeated: 02:30 CEST, then 02:30 CET.
  m = berlin.MapLocal(local(2024, 10, 27, 2, 30));
  EXPECT_EQ(m.kind, Kind::kRepeated);
  EXPECT_EQ(m.earliest, utc("2024-10-27T00:30:00Z"));
  EXPECT_EQ(m.latest, utc("2024-10-27T01:30:00Z"));
  EXPECT_EQ(TimeZone().MapLocal(local(2024, 3, 31, 2, 30)).earliest, utc("2024-03-31T02:30:00Z"));
  // RFC 3339 in the zone.
  EXPECT_EQ(berlin.FormatRfc3339(utc("2024-03-31T01:00:00Z")), "2024-03-31T03:00:00+02:00");
  EXPECT_EQ(TimeZone::Load("America/St_Johns").FormatRfc3339(utc("2024-01-15T12:00:00Z")), "2024-01-15T08:30:00-03:30");
  EXPECT_EQ(TimeZone().FormatRfc3339(utc("2024-01-15T12:00:00Z")), "2024-01-15T12:00:00Z");
}

TEST(CivilTimeTest, UnknownZones) {
  for (const char* name : {"Mars/Olympus_Mons", "", "/etc/passwd", "../zoneinfo/UTC", "Europe/../UTC", "Europe/",
                           "Europe Berlin", "zone.tab"})
    ExpectInvalid([&] { TimeZone::Load(name); }, name, "unknown time zone");
}

TEST(CalendarDurationTest, Parse) {
  EXPECT_EQ(CalendarDuration::Parse("1y5m7d2h"), (CalendarDuration{1, 5, 0, 7, 2}));
  EXPECT_EQ(CalendarDuration::Parse("36h"), (CalendarDuration{0, 0, 0, 0, 36}));
  EXPECT_EQ(CalendarDuration::Parse("4w"), (CalendarDuration{0, 0, 4, 0, 0}));
  EXPECT_EQ(CalendarDuration::Parse("3m"), (CalendarDuration{0, 3, 0, 0, 0}));
  EXPECT_EQ(CalendarDuration::Parse("2h1y"), (CalendarDuration{1, 0, 0, 0, 2}));
  EXPECT_TRUE(CalendarDuration::Parse("0").zero());
  EXPECT_TRUE(CalendarDuration::Parse("0d").zero());
  EXPECT_EQ(CalendarDuration::Parse("1000000y").years, 1000000);
  EXPECT_EQ(CalendarDuration::Parse("2h1y").ToString(), "1y2h");
  EXPECT_EQ(CalendarDuration::Parse("1y5m4w7d2h").ToString(), "1y5m4w7d2h");
  EXPECT_EQ(CalendarDuration{}.ToString(), "0");
  for (const char* bad : {"", "3x", "7", "d", "-1d", "1.5d", " 7d", "7d ", "7D", "1d1d", "1000001d", "30s", "1y2",
                          "99999999999999999999d"})
    ExpectInvalid([&] { CalendarDuration::Parse(bad); }, bad, "invalid duration '");
}

TEST(CalendarDurationTest, Arithmetic) {
  const TimeZone utc;
  auto sub = [&](const char* d, const char* t) { return repo::FormatTime(CalendarDuration::Parse(d).SubtractFrom(T(t), utc)); };
  auto add = [&](const char* d, const char* t) { return repo::FormatTime(CalendarDuration::Parse(d).AddTo(T(t), utc)); };
  // Months normalise like Go's AddDate: Mar 31 - 1m = "Feb 31" = Mar 3 (2023) / Mar 2 (2024).
  EXPECT_EQ(sub("1m", "2023-03-31T10:00:00Z"), "2023-03-03T10:00:00.000000000Z");
  EXPECT_EQ(sub("1m", "2024-03-31T10:00:00Z"), "2024-03-02T10:00:00.000000000Z");
  EXPECT_EQ(sub("1y", "2024-02-29T10:00:00Z"), "2023-03-01T10:00:00.000000000Z");
  EXPECT_EQ(sub("1w", "2024-01-03T10:00:00.5Z"), "2023-12-27T10:00:00.500000000Z");
  EXPECT_EQ(sub("1y5m7d2h", "2016-01-18T12:02:03Z"), "2014-08-11T10:02:03.000000000Z");
  EXPECT_EQ(sub("36h", "2024-03-01T06:00:00Z"), "2024-02-28T18:00:00.000000000Z");
  EXPECT_EQ(add("3m", "2024-11-30T00:00:00Z"), "2025-03-02T00:00:00.000000000Z");
  EXPECT_EQ(add("1d", "1969-12-31T23:59:59.25Z"), "1970-01-01T23:59:59.250000000Z");
  // Saturates instead of overflowing the int64 ns range.
  EXPECT_EQ(CalendarDuration::Parse("9999y").SubtractFrom(T("2016-01-18T12:02:03Z"), utc), INT64_MIN);
  EXPECT_EQ(CalendarDuration::Parse("9999y").AddTo(T("2016-01-18T12:02:03Z"), utc), INT64_MAX);
  // Days are calendar days in a zone: across the spring change in Berlin,
  // 1d back from 2024-04-01 12:00 CEST is 2024-03-31 12:00 CEST, 24 hours;
  // from 2024-03-31 12:00 CEST it is 2024-03-30 12:00 CET, 23 hours.
  const TimeZone berlin = TimeZone::Load("Europe/Berlin");
  EXPECT_EQ(CalendarDuration::Parse("1d").SubtractFrom(T("2024-03-31T10:00:00Z"), berlin), T("2024-03-30T11:00:00Z"));
  EXPECT_EQ(CalendarDuration::Parse("24h").SubtractFrom(T("2024-03-31T10:00:00Z"), berlin), T("2024-03-30T10:00:00Z"));
}

}  // namespace
}  // namespace bulwark
