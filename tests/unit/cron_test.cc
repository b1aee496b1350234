#include "bulwark/config/cron.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "test_util.h"

namespace bulwark::config {
namespace {

std::string Show(int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %a", &tm);
  return buf;
}

int64_t Next(const char* expr, int64_t after) { return CronSchedule::Parse(expr).Next(after); }

#define EXPECT_TIME(actual, expected) EXPECT_EQ(Show(actual), Show(expected))

TEST(CronTest, DailyAtTwo) {
  const auto s = CronSchedule::Parse("0 2 * * *");
  EXPECT_TIME(s.Next(Utc(2024, 1, 1)), Utc(2024, 1, 1, 2, 0));
  // Strictly after: a fire time is not returned again.
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 2, 0)), Utc(2024, 1, 2, 2, 0));
  // Seconds past a fire time.
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 2, 0, 30)), Utc(2024, 1, 2, 2, 0));
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 1, 59, 59)), Utc(2024, 1, 1, 2, 0));
  // Year end.
  EXPECT_TIME(s.Next(Utc(2024, 12, 31, 3, 0)), Utc(2025, 1, 1, 2, 0));
}

TEST(CronTest, StepsListsRanges) {
  EXPECT_TIME(Next("*/15 * * * *", Utc(2024, 3, 5, 10, 7)), Utc(2024, 3, 5, 10, 15));
  EXPECT_TIME(Next("*/15 * * * *", Utc(2024, 3, 5, 10, 45)), Utc(2024, 3, 5, 11, 0));
  EXPECT_TIME(Next("5/20 * * * *", Utc(2024, 3, 5, 10, 26)), Utc(2024, 3, 5, 10, 45));
  EXPECT_TIME(Next("5/20 * * * *", Utc(2024, 3, 5, 10, 45)), Utc(2024, 3, 5, 11, 5));
  EXPECT_TIME(Next("0 9-17/4 * * *", Utc(2024, 3, 5, 13, 0)), Utc(2024, 3, 5, 17, 0));
  EXPECT_TIME(Next("0 9-17/4 * * *", Utc(2024, 3, 5, 17, 0)), Utc(2024, 3, 6, 9, 0));
  EXPECT_TIME(Next("10,20,40-41 * * * *", Utc(2024, 3, 5, 10, 21)), Utc(2024, 3, 5, 10, 40));
  EXPECT_TIME(Next("10,20,40-41 * * * *", Utc(2024, 3, 5, 10, 40)), Utc(2024, 3, 5, 10, 41));
  EXPECT_TIME(Next("10,20,40-41 * * * *", Utc(2024, 3, 5, 10, 41)), Utc(2024, 3, 5, 11, 10));
  EXPECT_TIME(Next("* * * * *", Utc(2024, 3, 5, 10, 41, 59)), Utc(2024, 3, 5, 10, 42));
}

TEST(CronTest, MonthEnd) {
  // The 31st skips 30-day months and February.
  const auto s = CronSchedule::Parse("0 0 31 * *");
  EXPECT_TIME(s.Next(Utc(2024, 4, 1)), Utc(2024, 5, 31));
  EXPECT_TIME(s.Next(Utc(2024, 5, 31)), Utc(2024, 7, 31));
  EXPECT_TIME(s.Next(Utc(2024, 1, 31, 0, 0)), Utc(2024, 3, 31));
  EXPECT_TIME(s.Next(Utc(2024, 12, 31, 0, 0)), Utc(2025, 1, 31));
  // The 30th skips only February.
  EXPECT_TIME(Next("30 23 30 * *", Utc(2023, 1, 30, 23, 30)), Utc(2023, 3, 30, 23, 30));
}

TEST(CronTest, LeapDay) {
  const auto s = CronSchedule::Parse("0 12 29 feb *");
  EXPECT_TIME(s.Next(Utc(2023, 3, 1)), Utc(2024, 2, 29, 12, 0));
  EXPECT_TIME(s.Next(Utc(2024, 2, 29, 12, 0)), Utc(2028, 2, 29, 12, 0));
  // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
  EXPECT_TIME(s.Next(Utc(2096, 3, 1)), Utc(2104, 2, 29, 12, 0));
  EXPECT_TIME(s.Next(Utc(1999, 1, 1)), Utc(2000, 2, 29, 12, 0));
  // The last day of February: the 28th in common years, plus the 29th.
  EXPECT_TIME(Next("0 0 28,29 2 *", Utc(2023, 2, 28)), Utc(2024, 2, 28));
  EXPECT_TIME(Next("0 0 28,29 2 *", Utc(2024, 2, 28)), Utc(2024, 2, 29));
}

TEST(CronTest, DayOfMonthOrDayOfWeek) {
  // Both restricted: the 1st OR a Monday. 2024-09-01 is a Sunday.
  const auto s = CronSchedule::Parse("0 0 1 * mon");
  EXPECT_TIME(s.Next(Utc(2024, 9, 1)), Utc(2024, 9, 2));    // Monday
  EXPECT_TIME(s.Next(Utc(2024, 9, 2)), Utc(2024, 9, 9));    // Monday
  EXPECT_TIME(s.Next(Utc(2024, 9, 30)), Utc(2024, 10, 1));  // Tuesday the 1st
  EXPECT_TIME(s.Next(Utc(2024, 10, 1)), Utc(2024, 10, 7));  // Monday
  // Friday the 13th is not required: 13th OR Friday.
  EXPECT_TIME(Next("0 0 13 * 5", Utc(2024, 10, 5)), Utc(2024, 10, 11));   // Friday
  EXPECT_TIME(Next("0 0 13 * 5", Utc(2024, 10, 11)), Utc(2024, 10, 13));  // Sunday the 13th

  // Day-of-week field starting with '*': AND. The 1st that is a Sun/Tue/Thu/Sat.
  // 2024-09-01 is a Sunday (excluded: strictly after), 2024-10-01 a Tuesday.
  EXPECT_TIME(Next("0 0 1 * */2", Utc(2024, 9, 1)), Utc(2024, 10, 1));
  // Nov 1 2024 is a Friday, Dec 1 a Sunday.
  EXPECT_TIME(Next("0 0 1 * */2", Utc(2024, 10, 1)), Utc(2024, 12, 1));
  // Day-of-month '*': weekdays only.
  const auto weekdays = CronSchedule::Parse("30 8 * * mon-fri");
  EXPECT_TIME(weekdays.Next(Utc(2024, 9, 6, 9, 0)), Utc(2024, 9, 9, 8, 30));  // Fri -> Mon
  EXPECT_TIME(weekdays.Next(Utc(2024, 9, 9, 8, 0)), Utc(2024, 9, 9, 8, 30));
  // Day-of-month starting with '*' and a restricted weekday: AND. Odd days
  // that are Mondays: Sep 2 (even) no, Sep 9 yes.
  EXPECT_TIME(Next("0 0 */2 * 1", Utc(2024, 9, 1)), Utc(2024, 9, 9));
}

TEST(CronTest, SundayIsZeroOrSeven) {
  // 2024-09-01 is a Sunday.
  EXPECT_TIME(Next("0 0 * * 0", Utc(2024, 8, 28)), Utc(2024, 9, 1));
  EXPECT_TIME(Next("0 0 * * 7", Utc(2024, 8, 28)), Utc(2024, 9, 1));
  EXPECT_TIME(Next("0 0 * * SUN", Utc(2024, 8, 28)), Utc(2024, 9, 1));
  EXPECT_TIME(Next("0 0 * * 5-7", Utc(2024, 8, 31, 1, 0)), Utc(2024, 9, 1));  // Sat 01:00 -> Sun
  EXPECT_TIME(Next("0 0 * * fri-sat", Utc(2024, 8, 31, 1, 0)), Utc(2024, 9, 6));
}

TEST(CronTest, MonthNames) {
  const auto s = CronSchedule::Parse("0 6 1 Jan,jul *");
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 6, 0)), Utc(2024, 7, 1, 6, 0));
  EXPECT_TIME(s.Next(Utc(2024, 7, 1, 6, 0)), Utc(2025, 1, 1, 6, 0));
  EXPECT_TIME(Next("0 0 1 mar-may/2 *", Utc(2024, 3, 1)), Utc(2024, 5, 1));
}

TEST(CronTest, Macros) {
  const int64_t t = Utc(2024, 6, 15, 13, 37, 12);  // a Saturday
  EXPECT_TIME(Next("@yearly", t), Utc(2025, 1, 1));
  EXPECT_TIME(Next("@annually", t), Utc(2025, 1, 1));
  EXPECT_TIME(Next("@monthly", t), Utc(2024, 7, 1));
  EXPECT_TIME(Next("@weekly", t), Utc(2024, 6, 16));
  EXPECT_TIME(Next("@daily", t), Utc(2024, 6, 16));
  EXPECT_TIME(Next("@midnight", t), Utc(2024, 6, 16));
  EXPECT_TIME(Next("@hourly", t), Utc(2024, 6, 15, 14, 0));
  EXPECT_TIME(Next("  @HOURLY\t", t), Utc(2024, 6, 15, 14, 0));
}

TEST(CronTest, Every) {
  const auto s = CronSchedule::Parse("@every 6h");
  EXPECT_EQ(s.every_seconds(), 21600);
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 5, 59, 59)), Utc(2024, 1, 1, 6, 0));
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 6, 0)), Utc(2024, 1, 1, 12, 0));
  EXPECT_TIME(s.Next(Utc(2024, 1, 1, 23, 0)), Utc(2024, 1, 2, 0, 0));
  // Aligned to the epoch: 2024-01-01T00:00Z is 1704067200 = 315568 * 5400.
  const auto ninety = CronSchedule::Parse("@every 1h30m");
  EXPECT_TIME(ninety.Next(Utc(2024, 1, 1)), Utc(2024, 1, 1, 1, 30));
  EXPECT_TIME(ninety.Next(Utc(2024, 1, 1, 1, 30)), Utc(2024, 1, 1, 3, 0));
  // Sub-minute intervals and an interval that is not a divisor of a day.
  EXPECT_EQ(CronSchedule::Parse("@every 45s").Next(100), 135);
  EXPECT_EQ(CronSchedule::Parse("@every 7m").Next(0), 420);
  EXPECT_EQ(CronSchedule::Parse("@every 7m").Next(419), 420);
  EXPECT_EQ(CronSchedule::Parse("@every 7m").Next(420), 840);
}

TEST(CronTest, Matches) {
  const auto s = CronSchedule::Parse("0 0 1 * mon");
  EXPECT_TRUE(s.Matches(Utc(2024, 9, 2)));
  EXPECT_TRUE(s.Matches(Utc(2024, 10, 1)));
  EXPECT_FALSE(s.Matches(Utc(2024, 10, 2)));
  EXPECT_FALSE(s.Matches(Utc(2024, 9, 2, 0, 0, 1)));
  EXPECT_TRUE(CronSchedule::Parse("@every 6h").Matches(Utc(2024, 1, 1, 18, 0)));
  EXPECT_FALSE(CronSchedule::Parse("@every 6h").Matches(Utc(2024, 1, 1, 18, 1)));
  // Next() always returns a matching instant.
  for (const char* e : {"*/7 3-5 */3 * *", "0 0 13 * 5", "15 4 * 2 sat", "@weekly", "0 0 29 2 *"}) {
    const auto c = CronSchedule::Parse(e);
    int64_t t = Utc(2023, 11, 5, 7, 11, 3);
    for (int i = 0; i < 50; ++i) {
      const int64_t n = c.Next(t);
      EXPECT_GT(n, t) << e;
      EXPECT_TRUE(c.Matches(n)) << e << " " << Show(n);
      t = n;
    }
  }
}

TEST(CronTest, Range) {
  const auto s = CronSchedule::Parse("0 0 1 1 *");
  EXPECT_TIME(s.Next(0), Utc(1971, 1, 1));
  EXPECT_TIME(s.Next(Utc(9998, 6, 1)), Utc(9999, 1, 1));
  for (int64_t bad : {int64_t{-1}, CronSchedule::kMaxTime + 1, INT64_MAX, INT64_MIN}) {
    try {
      s.Next(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
  // No fire time left before the year 10000.
  EXPECT_THROW(s.Next(Utc(9999, 6, 1)), Error);
  EXPECT_THROW(CronSchedule::Parse("@every 1w").Next(CronSchedule::kMaxTime), Error);
  EXPECT_THROW(CronSchedule::Parse("@every 9223372036854775807s").Next(1), Error);
}

std::string ParseError(const char* expr) {
  try {
    CronSchedule::Parse(expr);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "accepted '" << expr << "'";
  return "";
}

TEST(CronTest, ParseErrors) {
  EXPECT_EQ(ParseError("0 2 * *"),
            "invalid cron expression '0 2 * *': expected 5 fields (minute hour day-of-month month "
            "day-of-week), got 4");
  EXPECT_EQ(ParseError("0 0 2 * * *"),
            "invalid cron expression '0 0 2 * * *': expected 5 fields (minute hour day-of-month month "
            "day-of-week), got 6 (a seconds field is not supported)");
  EXPECT_EQ(ParseError("60 * * * *"), "invalid cron expression '60 * * * *': minute: value 60 out of range 0-59");
  EXPECT_EQ(ParseError("* 24 * * *"), "invalid cron expression '* 24 * * *': hour: value 24 out of range 0-23");
  EXPECT_EQ(ParseError("* * 0 * *"), "invalid cron expression '* * 0 * *': day-of-month: value 0 out of range 1-31");
  EXPECT_EQ(ParseError("* * 32 * *"),
            "invalid cron expression '* * 32 * *': day-of-month: value 32 out of range 1-31");
  EXPECT_EQ(ParseError("* * * 13 *"), "invalid cron expression '* * * 13 *': month: value 13 out of range 1-12");
  EXPECT_EQ(ParseError("* * * * 8"), "invalid cron expression '* * * * 8': day-of-week: value 8 out of range 0-7");
  EXPECT_EQ(ParseError("* * * * fri-mon"), "invalid cron expression '* * * * fri-mon': day-of-week: range 'fri-mon' is backwards");
  EXPECT_EQ(ParseError("* * * foo *"), "invalid cron expression '* * * foo *': month: unknown value 'foo'");
  EXPECT_EQ(ParseError("* * * * jan"), "invalid cron expression '* * * * jan': day-of-week: unknown value 'jan'");
  EXPECT_EQ(ParseError("* * mon * *"), "invalid cron expression '* * mon * *': day-of-month: unknown value 'mon'");
  EXPECT_EQ(ParseError("*/0 * * * *"), "invalid cron expression '*/0 * * * *': minute: step 0 out of range 1-60");
  EXPECT_EQ(ParseError("*/ * * * *"), "invalid cron expression '*/ * * * *': minute: missing step after '/'");
  EXPECT_EQ(ParseError("1,,2 * * * *"), "invalid cron expression '1,,2 * * * *': minute: empty list item");
  EXPECT_EQ(ParseError("1- * * * *"), "invalid cron expression '1- * * * *': minute: missing value");
  EXPECT_EQ(ParseError("1x * * * *"), "invalid cron expression '1x * * * *': minute: '1x' is not a number");
  EXPECT_EQ(ParseError("? * * * *"), "invalid cron expression '? * * * *': minute: unknown value '?'");
  EXPECT_EQ(ParseError("* * L * *"), "invalid cron expression '* * L * *': day-of-month: unknown value 'L'");
  EXPECT_EQ(ParseError("99999999999 * * * *"),
            "invalid cron expression '99999999999 * * * *': minute: value 99999999999 out of range 0-59");
  EXPECT_EQ(ParseError(""), "invalid cron expression '': empty");
  EXPECT_EQ(ParseError("   "), "invalid cron expression '': empty");
  EXPECT_EQ(ParseError("@reboot"), "invalid cron expression '@reboot': @reboot is not supported");
  EXPECT_EQ(ParseError("@fortnightly"),
            "invalid cron expression '@fortnightly': unknown macro '@fortnightly' (known: @yearly @annually "
            "@monthly @weekly @daily @midnight @hourly @every)");
  EXPECT_EQ(ParseError("@daily 5"), "invalid cron expression '@daily 5': unexpected text after @daily");
  EXPECT_EQ(ParseError("@every"), "invalid cron expression '@every': expected '@every DURATION', e.g. '@every 6h'");
  EXPECT_EQ(ParseError("@every 0"), "invalid cron expression '@every 0': @every interval must be at least 1s");
  EXPECT_EQ(ParseError("@every 5"),
            "invalid cron expression '@every 5': invalid duration '5': missing unit (s, m, h, d, w) (expected e.g. "
            "30s, 15m, 6h, 30d, 1w, 1h30m)");
  EXPECT_EQ(ParseError("0 0 * * *\n"), "invalid cron expression '0 0 * * *\n': unexpected character (only printable ASCII is allowed)");
  // Dates that never occur.
  EXPECT_EQ(ParseError("0 0 30 2 *"),
            "invalid cron expression '0 0 30 2 *': no selected month has a selected day of month; the schedule "
            "never fires");
  EXPECT_EQ(ParseError("0 0 31 apr,jun,sep,nov *"),
            "invalid cron expression '0 0 31 apr,jun,sep,nov *': no selected month has a selected day of month; "
            "the schedule never fires");
  // ... unless OR-ed with a weekday: then any Monday in February.
  EXPECT_TIME(Next("0 0 30 2 mon", Utc(2024, 9, 1)), Utc(2025, 2, 3));
}

// ---------------------------------------------------------------------------
// Time zones and daylight saving (rules in cron.h). Expected instants are
// written in UTC; the zones' changes in 2024:
//   Europe/Berlin     spring 2024-03-31 01:00Z (02:00 CET -> 03:00 CEST),
//                     fall   2024-10-27 01:00Z (03:00 CEST -> 02:00 CET)
//   America/New_York  spring 2024-03-10 07:00Z (02:00 EST -> 03:00 EDT),
//                     fall   2024-11-03 06:00Z (02:00 EDT -> 01:00 EST)

CronSchedule In(const char* expr, const char* zone) { return CronSchedule::Parse(expr, TimeZone::Load(zone)); }

// The fire times of `s` in (from, to].
std::vector<int64_t> Fires(const CronSchedule& s, int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t t = s.Next(from); t <= to; t = s.Next(t)) out.push_back(t);
  return out;
}

std::vector<std::string> Shown(const std::vector<int64_t>& times) {
  std::vector<std::string> out;
  for (int64_t t : times) out.push_back(Show(t));
  return out;
}

std::vector<std::string> Shown(std::initializer_list<int64_t> times) { return Shown(std::vector<int64_t>(times)); }

TEST(CronZoneTest, PlainDaysAreLocalTime) {
  EXPECT_TIME(In("30 2 * * *", "Europe/Berlin").Next(Utc(2024, 1, 15)), Utc(2024, 1, 15, 1, 30));  // CET
  EXPECT_TIME(In("30 2 * * *", "Europe/Berlin").Next(Utc(2024, 7, 15)), Utc(2024, 7, 15, 0, 30));  // CEST
  EXPECT_TIME(In("30 2 * * *", "America/New_York").Next(Utc(2024, 1, 15)), Utc(2024, 1, 15, 7, 30));
  EXPECT_TIME(In("0 9 * * 1-5", "Asia/Kolkata").Next(Utc(2024, 1, 15)), Utc(2024, 1, 15, 3, 30));  // +05:30
  // The day of week and month are the local ones: Monday 00:30 in Berlin is
  // Sunday 23:30 UTC.
  EXPECT_TIME(In("30 0 * * mon", "Europe/Berlin").Next(Utc(2024, 1, 10)), Utc(2024, 1, 14, 23, 30));
  EXPECT_TIME(In("@monthly", "America/New_York").Next(Utc(2024, 1, 15)), Utc(2024, 2, 1, 5, 0));
  // UTC is the default and the same as no zone.
  EXPECT_TRUE(CronSchedule::Parse("0 2 * * *").zone().is_utc());
  EXPECT_TIME(In("30 2 * * *", "UTC").Next(Utc(2024, 1, 15)), Utc(2024, 1, 15, 2, 30));
}

TEST(CronZoneTest, BerlinSpringForwardGapRunsOnceAtTheEndOfTheGap) {
  const auto s = In("30 2 * * *", "Europe/Berlin");
  // 02:30 does not exist on 2024-03-31: the run is at 03:00 CEST = 01:00Z,
  // once; the days around it are ordinary.
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 3, 29, 12), Utc(2024, 4, 2, 12))),
            Shown({Utc(2024, 3, 30, 1, 30), Utc(2024, 3, 31, 1, 0), Utc(2024, 4, 1, 0, 30), Utc(2024, 4, 2, 0, 30)}));
  EXPECT_TRUE(s.Matches(Utc(2024, 3, 31, 1, 0)));
  EXPECT_FALSE(s.Matches(Utc(2024, 3, 31, 1, 30)));  // 03:30 CEST (Go's and restic's reading of 02:30)
  // Several skipped times and the regular 03:00 fall on one instant: one run.
  EXPECT_EQ(Shown(Fires(In("*/15 2,3 * * *", "Europe/Berlin"), Utc(2024, 3, 30, 23), Utc(2024, 3, 31, 2))),
            Shown({Utc(2024, 3, 31, 1, 0), Utc(2024, 3, 31, 1, 15), Utc(2024, 3, 31, 1, 30), Utc(2024, 3, 31, 1, 45)}));
}

TEST(CronZoneTest, BerlinFallBackRepeatRunsOnceAtTheFirstOccurrence) {
  const auto s = In("30 2 * * *", "Europe/Berlin");
  // 02:30 happens twice on 2024-10-27: at 00:30Z (CEST) and 01:30Z (CET).
  // Only the first runs.
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 10, 25, 12), Utc(2024, 10, 28, 12))),
            Shown({Utc(2024, 10, 26, 0, 30), Utc(2024, 10, 27, 0, 30), Utc(2024, 10, 28, 1, 30)}));
  EXPECT_TRUE(s.Matches(Utc(2024, 10, 27, 0, 30)));
  EXPECT_FALSE(s.Matches(Utc(2024, 10, 27, 1, 30)));
  // Asked from inside the repeated hour (02:10 CET, the second pass), the
  // next run is the next day's: 02:30 already ran in the first pass.
  EXPECT_TIME(s.Next(Utc(2024, 10, 27, 1, 10)), Utc(2024, 10, 28, 1, 30));
  // From inside the first pass, the first occurrence is still ahead.
  EXPECT_TIME(s.Next(Utc(2024, 10, 27, 0, 10)), Utc(2024, 10, 27, 0, 30));
}

TEST(CronZoneTest, BerlinHourly) {
  const auto s = In("0 * * * *", "Europe/Berlin");
  // Spring: 01:00 CET, then 02:00 (skipped) and 03:00 CEST are one instant.
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 3, 30, 22, 30), Utc(2024, 3, 31, 2, 0))),
            Shown({Utc(2024, 3, 30, 23), Utc(2024, 3, 31, 0), Utc(2024, 3, 31, 1), Utc(2024, 3, 31, 2)}));
  // Fall: 02:00 CEST (00:00Z), then 02:00 CET (01:00Z) is the repeat and
  // does not run, then 03:00 CET (02:00Z).
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 10, 26, 22, 30), Utc(2024, 10, 27, 3, 0))),
            Shown({Utc(2024, 10, 26, 23), Utc(2024, 10, 27, 0), Utc(2024, 10, 27, 2), Utc(2024, 10, 27, 3)}));
}

TEST(CronZoneTest, NewYorkSpringForwardAndFallBack) {
  // 02:30 is skipped on 2024-03-10: 03:00 EDT = 07:00Z.
  const auto at_230 = In("30 2 * * *", "America/New_York");
  EXPECT_EQ(Shown(Fires(at_230, Utc(2024, 3, 9, 0), Utc(2024, 3, 11, 12))),
            Shown({Utc(2024, 3, 9, 7, 30), Utc(2024, 3, 10, 7, 0), Utc(2024, 3, 11, 6, 30)}));
  // 02:30 is not repeated in New York (01:00-01:59 is): one run on
  // 2024-11-03, in EST.
  EXPECT_EQ(Shown(Fires(at_230, Utc(2024, 11, 2, 12), Utc(2024, 11, 4, 12))),
            Shown({Utc(2024, 11, 3, 7, 30), Utc(2024, 11, 4, 7, 30)}));
  // 01:30 is repeated: 05:30Z (EDT) runs, 06:30Z (EST) does not.
  const auto at_130 = In("30 1 * * *", "America/New_York");
  EXPECT_EQ(Shown(Fires(at_130, Utc(2024, 11, 2, 12), Utc(2024, 11, 4, 12))),
            Shown({Utc(2024, 11, 3, 5, 30), Utc(2024, 11, 4, 6, 30)}));
  // Hourly across both changes.
  const auto hourly = In("0 * * * *", "America/New_York");
  EXPECT_EQ(Shown(Fires(hourly, Utc(2024, 3, 10, 5, 30), Utc(2024, 3, 10, 8, 0))),
            Shown({Utc(2024, 3, 10, 6), Utc(2024, 3, 10, 7), Utc(2024, 3, 10, 8)}));
  EXPECT_EQ(Shown(Fires(hourly, Utc(2024, 11, 3, 3, 30), Utc(2024, 11, 3, 8, 0))),
            Shown({Utc(2024, 11, 3, 4), Utc(2024, 11, 3, 5), Utc(2024, 11, 3, 7), Utc(2024, 11, 3, 8)}));
}

TEST(CronZoneTest, EveryIsEpochAlignedUtcInAnyZone) {
  const auto s = In("@every 6h", "Europe/Berlin");
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 3, 30, 20), Utc(2024, 3, 31, 12))),
            Shown({Utc(2024, 3, 31, 0), Utc(2024, 3, 31, 6), Utc(2024, 3, 31, 12)}));
  EXPECT_EQ(Shown(Fires(s, Utc(2024, 10, 26, 20), Utc(2024, 10, 27, 12))),
            Shown({Utc(2024, 10, 27, 0), Utc(2024, 10, 27, 6), Utc(2024, 10, 27, 12)}));
  const auto hourly = In("@every 1h", "America/New_York");
  EXPECT_EQ(Fires(hourly, Utc(2024, 11, 3, 4), Utc(2024, 11, 3, 8)).size(), 4u) << "the repeated hour runs too";
}

// Sets TZ for the C library while it lives: localtime_r is then an oracle
// that shares no code with the library under test.
class ScopedTz {
 public:
  explicit ScopedTz(const char* zone) {
    ::setenv("TZ", zone, 1);
    ::tzset();
  }
  ~ScopedTz() {
    ::unsetenv("TZ");
    ::tzset();
  }
  std::tm Local(int64_t t) const {
    const time_t tt = static_cast<time_t>(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    return tm;
  }
};

TEST(CronZoneTest, AYearOfHalfHoursRunsEveryLocalTimeOnce) {
  for (const char* zone : {"Europe/Berlin", "America/New_York"}) {
    const auto s = In("*/30 * * * *", zone);
    std::set<std::string> locals;
    int64_t prev = 0;
    size_t in_2024 = 0;
    const ScopedTz tz(zone);
    for (int64_t t : Fires(s, Utc(2023, 12, 31), Utc(2025, 1, 1, 12))) {
      const std::tm tm = tz.Local(t);
      in_2024 += tm.tm_year + 1900 == 2024;
      EXPECT_GT(t, prev);
      prev = t;
      EXPECT_TRUE(tm.tm_min == 0 || tm.tm_min == 30) << zone << " " << Show(t);
      char buf[32];
      std::strftime(buf, sizeof buf, "%F %R", &tm);
      EXPECT_TRUE(locals.insert(buf).second) << zone << ": local time " << buf << " ran twice";
      EXPECT_TRUE(s.Matches(t)) << zone << " " << Show(t);
    }
    // 2024 has 366 * 48 half hours of local time; the spring gap removes
    // two (02:00 and 02:30, which run as the 03:00 run); the fall repeat
    // adds none (each repeated local time runs once).
    EXPECT_EQ(in_2024, 366u * 48 - 2) << zone;
  }
}

}  // namespace
}  // namespace bulwark::config
