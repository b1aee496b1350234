#include "bulwark/config/cron.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "bulwark/base/error.h"

namespace bulwark::config {
namespace {

// UTC instant via the C library (independent of the code under test).
int64_t Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

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

}  // namespace
}  // namespace bulwark::config
