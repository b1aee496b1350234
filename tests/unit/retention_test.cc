// Retention policy (ops/retention.h). The first tests reproduce restic's
// documented examples and the golden results of restic's policy tests
// (internal/data/snapshot_policy_test.go and testdata/policy_keep_snapshots_N,
// same snapshot list, same policies); the rest pin edge cases and bulwark's
// additions (TTL, pinning, grouping, time zones).
#include "bulwark/ops/retention.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/repo/snapshot.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

using config::Retention;
using repo::Snapshot;

// Snapshot number `n` (ids ascend with n, so equal times keep input order, as
// restic's stable sort does) at `time` ("2014-09-01 10:20:30[.1]", UTC).
Snapshot Snap(size_t n, const std::string& time, std::vector<std::string> tags = {},
              std::vector<std::string> paths = {}) {
  Snapshot s;
  s.id.b[0] = static_cast<uint8_t>(n >> 8);
  s.id.b[1] = static_cast<uint8_t>(n);
  s.time_ns = repo::ParseTime(time);
  s.host = "mopped";
  s.tags = std::move(tags);
  s.paths = std::move(paths);
  return s;
}

std::vector<Snapshot> List(const std::vector<std::string>& times) {
  std::vector<Snapshot> out;
  for (const auto& t : times) out.push_back(Snap(out.size(), t));
  return out;
}

// restic's TestApplyPolicy snapshot list, in its order.
std::vector<Snapshot> ResticSnapshots() {
  struct Row {
    const char* time;
    std::vector<std::string> tags = {}, paths = {};
  };
  const std::vector<Row> rows = {
      {"2014-09-01 10:20:30"}, {"2014-09-02 10:20:30"}, {"2014-09-05 10:20:30"}, {"2014-09-06 10:20:30"},
      {"2014-09-08 10:20:30"}, {"2014-09-09 10:20:30"}, {"2014-09-10 10:20:30"}, {"2014-09-11 10:20:30"},
      {"2014-09-20 10:20:30"}, {"2014-09-22 10:20:30"}, {"2014-08-08 10:20:30"}, {"2014-08-10 10:20:30"},
      {"2014-08-12 10:20:30"}, {"2014-08-13 10:20:30"}, {"2014-08-13 10:20:30.1"}, {"2014-08-15 10:20:30"},
      {"2014-08-18 10:20:30"}, {"2014-08-20 10:20:30"}, {"2014-08-21 10:20:30"}, {"2014-08-22 10:20:30"},
      {"2014-10-01 10:20:30", {"foo"}}, {"2014-10-02 10:20:30", {"foo"}}, {"2014-10-05 10:20:30", {"foo"}},
      {"2014-10-06 10:20:30", {"foo"}}, {"2014-10-08 10:20:30", {"foo"}}, {"2014-10-09 10:20:30", {"foo"}},
      {"2014-10-10 10:20:30", {"foo"}}, {"2014-10-11 10:20:30", {"foo"}}, {"2014-10-20 10:20:30", {"foo"}},
      {"2014-10-22 10:20:30", {"foo"}}, {"2014-11-08 10:20:30", {"foo"}}, {"2014-11-10 10:20:30", {"foo"}},
      {"2014-11-12 10:20:30", {"foo"}}, {"2014-11-13 10:20:30", {"foo"}}, {"2014-11-13 10:20:30.1", {"bar"}},
      {"2014-11-15 10:20:30", {"foo", "bar"}}, {"2014-11-18 10:20:30"}, {"2014-11-20 10:20:30"},
      {"2014-11-21 10:20:30"}, {"2014-11-22 10:20:30"}, {"2015-09-01 10:20:30"}, {"2015-09-02 10:20:30"},
      {"2015-09-05 10:20:30"}, {"2015-09-06 10:20:30"}, {"2015-09-08 10:20:30"}, {"2015-09-09 10:20:30"},
      {"2015-09-10 10:20:30"}, {"2015-09-11 10:20:30"}, {"2015-09-20 10:20:30"}, {"2015-09-22 10:20:30"},
      {"2015-08-08 10:20:30"}, {"2015-08-10 10:20:30"}, {"2015-08-12 10:20:30"}, {"2015-08-13 10:20:30"},
      {"2015-08-13 10:20:30.1"}, {"2015-08-15 10:20:30"}, {"2015-08-18 10:20:30"}, {"2015-08-20 10:20:30"},
      {"2015-08-21 10:20:30"}, {"2015-08-22 10:20:30"}, {"2015-10-01 10:20:30"}, {"2015-10-02 10:20:30"},
      {"2015-10-05 10:20:30"}, {"2015-10-06 10:20:30"}, {"2015-10-08 10:20:30"}, {"2015-10-09 10:20:30"},
      {"2015-10-10 10:20:30"}, {"2015-10-11 10:20:30"}, {"2015-10-20 10:20:30"}, {"2015-10-22 10:20:30"},
      {"2015-10-22 10:20:30"}, {"2015-10-22 10:20:30", {"foo", "bar"}}, {"2015-10-22 10:20:30", {"foo", "bar"}},
      {"2015-10-22 10:20:30", {"foo", "bar"}, {"path1", "path2"}}, {"2015-11-08 10:20:30"},
      {"2015-11-10 10:20:30"}, {"2015-11-12 10:20:30"}, {"2015-11-13 10:20:30"}, {"2015-11-13 10:20:30.1"},
      {"2015-11-15 10:20:30"}, {"2015-11-18 10:20:30"}, {"2015-11-20 10:20:30"}, {"2015-11-21 10:20:30"},
      {"2015-11-22 10:20:30"}, {"2016-01-01 01:02:03"}, {"2016-01-01 01:03:03"}, {"2016-01-01 07:08:03"},
      {"2016-01-03 07:02:03"}, {"2016-01-04 10:23:03"}, {"2016-01-04 11:23:03"}, {"2016-01-04 12:23:03"},
      {"2016-01-04 12:24:03"}, {"2016-01-04 12:28:03"}, {"2016-01-04 12:30:03"}, {"2016-01-04 16:23:03"},
      {"2016-01-05 09:02:03"}, {"2016-01-06 08:02:03"}, {"2016-01-07 10:02:03"}, {"2016-01-08 20:02:03"},
      {"2016-01-09 21:02:03"}, {"2016-01-12 21:02:03"}, {"2016-01-12 21:08:03"}, {"2016-01-18 12:02:03"},
  };
  std::vector<Snapshot> out;
  for (const auto& r : rows) out.push_back(Snap(out.size(), r.time, r.tags, r.paths));
  return out;
}

const int64_t kNow = repo::ParseTime("2026-01-01T00:00:00Z");

struct Outcome {
  std::vector<std::string> kept;  // "2016-01-18 12:02:03[ foo,bar]" newest first
  std::vector<std::vector<std::string>> reasons;
  size_t removed = 0;
};

std::string Label(const Snapshot& s) {
  std::string t = repo::FormatTime(s.time_ns);  // 2016-01-18T12:02:03.000000000Z
  std::string out = t.substr(0, 10) + " " + t.substr(11, 8);
  if (t.substr(19, 10) != ".000000000") out += t.substr(19, 2);
  std::string tags;
  for (const auto& tag : s.tags) tags += (tags.empty() ? "" : ",") + tag;
  if (!tags.empty()) out += " " + tags;
  return out;
}

Outcome Apply(const std::vector<Snapshot>& list, const Retention& p, const TimeZone& tz = TimeZone(),
              int64_t now = kNow) {
  Outcome o;
  for (const auto& g : ApplyRetention(list, p, tz, now))
    for (const auto& d : g.snapshots) {
      if (d.keep) {
        o.kept.push_back(Label(d.snapshot));
        o.reasons.push_back(d.reasons);
      } else {
        ++o.removed;
      }
    }
  return o;
}

using Strings = std::vector<std::string>;

TEST(RetentionRestic, DocsKeepDailyOnTwelveSundays) {
  // restic docs, "Removing snapshots according to a policy": one backup every
  // Sunday for 12 weeks; forget --keep-daily 4 keeps the last four.
  auto list = List({"2019-09-01 11:00:00", "2019-09-08 11:00:00", "2019-09-15 11:00:00", "2019-09-22 11:00:00",
                    "2019-09-29 11:00:00", "2019-10-06 11:00:00", "2019-10-13 11:00:00", "2019-10-20 11:00:00",
                    "2019-10-27 11:00:00", "2019-11-03 11:00:00", "2019-11-10 11:00:00", "2019-11-17 11:00:00"});
  Retention p;
  p.keep_daily = 4;
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2019-11-17 11:00:00", "2019-11-10 11:00:00", "2019-11-03 11:00:00",
                             "2019-10-27 11:00:00"}));
  EXPECT_EQ(o.removed, 8u);
  for (const auto& r : o.reasons) EXPECT_EQ(r, Strings{"daily"});
}

TEST(RetentionRestic, DocsHundredYearsOfDailyBackups) {
  // restic docs: daily backups for 100 years, --keep-daily 7 --keep-weekly 5
  // --keep-monthly 12 --keep-yearly 75 keep the 7 newest days, the last day of
  // the newest weeks, months and years; the rules overlap (ORed).
  std::vector<Snapshot> list;
  const int64_t first = DaysFromCivil(1924, 6, 16), last = DaysFromCivil(2024, 6, 15);  // 2024-06-15: a Saturday
  for (int64_t day = first; day <= last; ++day) {
    Snapshot s;
    s.id.b[0] = static_cast<uint8_t>(day >> 8);
    s.id.b[1] = static_cast<uint8_t>(day);
    s.id.b[2] = static_cast<uint8_t>(day >> 16);
    s.time_ns = (day * 86400 + 10 * 3600) * 1000000000;
    list.push_back(s);
  }
  Retention p;
  p.keep_daily = 7;
  p.keep_weekly = 5;
  p.keep_monthly = 12;
  p.keep_yearly = 75;
  std::map<std::string, int> per_rule;
  size_t kept = 0;
  for (const auto& g : ApplyRetention(list, p, TimeZone(), kNow)) {
    ASSERT_EQ(g.snapshots.size(), list.size());
    for (size_t i = 0; i < g.snapshots.size(); ++i) {
      const auto& d = g.snapshots[i];
      if (!d.keep) continue;
      ++kept;
      const int64_t sec = d.snapshot.time_ns / 1000000000;
      const CivilTime c = TimeZone().ToCivil(sec);
      const CivilTime next = TimeZone().ToCivil(sec + 86400);
      const int64_t days = DaysFromCivil(c.year, c.month, c.day);
      const bool sunday = ((days % 7) + 7 + 3) % 7 == 6;  // 1970-01-01 was a Thursday
      for (const auto& r : d.reasons) {
        per_rule[r]++;
        if (i == 0) continue;  // the newest is in every rule's first bucket
        if (r == "weekly") {
          EXPECT_TRUE(sunday) << Label(d.snapshot) << " is not a Sunday";
        } else if (r == "monthly") {
          EXPECT_EQ(next.day, 1) << Label(d.snapshot) << " is not a month's last day";
        } else if (r == "yearly") {
          EXPECT_TRUE(c.month == 12 && c.day == 31) << Label(d.snapshot);
        }
      }
    }
  }
  EXPECT_EQ(per_rule["daily"], 7);
  EXPECT_EQ(per_rule["weekly"], 5);
  EXPECT_EQ(per_rule["monthly"], 12);
  EXPECT_EQ(per_rule["yearly"], 75);
  // 7 days (Jun 9..15; two weekly buckets: Jun 15 and Sunday Jun 9), 3 more
  // Sundays, 11 more month ends (May 31 2024 .. Jul 31 2023; Jun 15 is the
  // 12th), 73 more year ends (Dec 31 2022 .. 1950; Jun 15 and Dec 31 2023,
  // already a monthly, are the other two). No count is left at the oldest.
  EXPECT_EQ(kept, 7u + 3u + 11u + 73u);
}

// Goldens of restic's TestApplyPolicy (policy number in the comment).
TEST(RetentionRestic, GoldenCounts) {
  const auto list = ResticSnapshots();
  Retention p;
  p.keep_monthly = 6;  // 14
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2016-01-18 12:02:03", "2015-11-22 10:20:30", "2015-10-22 10:20:30",
                                          "2015-09-22 10:20:30", "2015-08-22 10:20:30", "2014-11-22 10:20:30"}));

  p = {};
  p.keep_yearly = 10;  // 16: counts left at the oldest snapshot
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2016-01-18 12:02:03", "2015-11-22 10:20:30", "2014-11-22 10:20:30",
                             "2014-08-08 10:20:30"}));
  EXPECT_EQ(o.reasons.back(), Strings{"oldest yearly"});

  p = {};
  p.keep_daily = 3;  // 13: weeks across the year boundary (2016-01-03 is in ISO week 2015-W53)
  p.keep_weekly = 4;
  o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2016-01-18 12:02:03", "2016-01-12 21:08:03", "2016-01-09 21:02:03",
                             "2016-01-03 07:02:03"}));
  EXPECT_EQ(o.reasons, (std::vector<Strings>{{"daily", "weekly"}, {"daily", "weekly"}, {"daily", "weekly"}, {"weekly"}}));

  p = {};
  p.keep_daily = 7;  // 17 (restic < 0.17 golden plus the oldest-yearly keep of 0.17)
  p.keep_weekly = 2;
  p.keep_monthly = 3;
  p.keep_yearly = 10;
  o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2016-01-18 12:02:03", "2016-01-12 21:08:03", "2016-01-09 21:02:03",
                             "2016-01-08 20:02:03", "2016-01-07 10:02:03", "2016-01-06 08:02:03",
                             "2016-01-05 09:02:03", "2015-11-22 10:20:30", "2015-10-22 10:20:30",
                             "2014-11-22 10:20:30", "2014-08-08 10:20:30"}));
  EXPECT_EQ(o.reasons[0], (Strings{"daily", "weekly", "monthly", "yearly"}));
  EXPECT_EQ(o.reasons[7], (Strings{"monthly", "yearly"}));

  p = {};
  p.keep_daily = 3;  // 39: -1 = unlimited
  p.keep_weekly = 2;
  p.keep_monthly = -1;
  p.keep_yearly = -1;
  o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2016-01-18 12:02:03", "2016-01-12 21:08:03", "2016-01-09 21:02:03",
                             "2015-11-22 10:20:30", "2015-10-22 10:20:30", "2015-09-22 10:20:30",
                             "2015-08-22 10:20:30", "2014-11-22 10:20:30", "2014-10-22 10:20:30 foo",
                             "2014-09-22 10:20:30", "2014-08-22 10:20:30", "2014-08-08 10:20:30"}));
  EXPECT_EQ(o.reasons.back(), (Strings{"oldest monthly", "oldest yearly"}));

  p = {};
  p.keep_last = 10;  // 1
  o = Apply(list, p);
  ASSERT_EQ(o.kept.size(), 10u);
  EXPECT_EQ(o.kept.front(), "2016-01-18 12:02:03");
  EXPECT_EQ(o.kept.back(), "2016-01-04 12:30:03");

  p = {};
  p.keep_last = -1;  // 36
  EXPECT_EQ(Apply(list, p).kept.size(), list.size());
}

TEST(RetentionRestic, GoldenTagsAndWithin) {
  const auto list = ResticSnapshots();
  Retention p;
  p.keep_tags = {{"foo", "bar"}};  // 19
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2015-10-22 10:20:30 foo,bar", "2015-10-22 10:20:30 foo,bar",
                             "2015-10-22 10:20:30 foo,bar", "2014-11-15 10:20:30 foo,bar"}));
  EXPECT_EQ(o.reasons[0], Strings{"tag foo,bar"});

  p.keep_tags = {{"foo"}, {"bar"}};  // 20
  o = Apply(list, p);
  EXPECT_EQ(o.kept.size(), 19u);
  EXPECT_EQ(o.kept[4], "2014-11-13 10:20:30.1 bar");
  EXPECT_EQ(o.kept.back(), "2014-10-01 10:20:30 foo");
  EXPECT_EQ(o.reasons[0], (Strings{"tag foo", "tag bar"}));

  p = {};
  p.keep_within = CalendarDuration::Parse("1m");  // 24: 2016-01-18 12:02:03 - 1 month
  o = Apply(list, p);
  EXPECT_EQ(o.kept.size(), 19u);
  EXPECT_EQ(o.kept.back(), "2016-01-01 01:02:03");
  EXPECT_EQ(o.reasons.back(), Strings{"within 1m"});

  p.keep_within = CalendarDuration::Parse("1d");  // 21
  EXPECT_EQ(Apply(list, p).kept, Strings{"2016-01-18 12:02:03"});
  p.keep_within = CalendarDuration::Parse("7d");  // 23
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2016-01-18 12:02:03", "2016-01-12 21:08:03", "2016-01-12 21:02:03"}));

  p = {};
  p.keep_within_weekly = CalendarDuration::Parse("1y2m3d3h");  // 32
  o = Apply(list, p);
  EXPECT_EQ(o.kept,
            (Strings{"2016-01-18 12:02:03", "2016-01-12 21:08:03", "2016-01-09 21:02:03", "2016-01-03 07:02:03",
                     "2015-11-22 10:20:30", "2015-11-15 10:20:30", "2015-11-08 10:20:30", "2015-10-22 10:20:30",
                     "2015-10-11 10:20:30", "2015-10-02 10:20:30", "2015-09-22 10:20:30", "2015-09-20 10:20:30",
                     "2015-09-11 10:20:30", "2015-09-06 10:20:30", "2015-08-22 10:20:30", "2015-08-15 10:20:30",
                     "2015-08-08 10:20:30", "2014-11-22 10:20:30", "2014-11-15 10:20:30 foo,bar"}));
  EXPECT_EQ(o.reasons[0], Strings{"weekly within 1y2m3d3h"});
}

TEST(RetentionEdge, EqualTimestampsAreOrderedById) {
  std::vector<Snapshot> list = {Snap(2, "2024-01-01 10:00:00"), Snap(1, "2024-01-01 10:00:00"),
                                Snap(3, "2024-01-01 09:00:00")};
  Retention p;
  p.keep_last = 1;
  auto groups = ApplyRetention(list, p, TimeZone(), kNow);
  ASSERT_EQ(groups.size(), 1u);
  const auto& d = groups[0].snapshots;
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].snapshot.id, Snap(1, "2024-01-01 10:00:00").id);  // the lower id wins the tie
  EXPECT_TRUE(d[0].keep);
  EXPECT_FALSE(d[1].keep);
  EXPECT_FALSE(d[2].keep);

  // keep_daily: one bucket, so the newest (lower id) plus, with count left,
  // the oldest.
  p = {};
  p.keep_daily = 2;
  groups = ApplyRetention(list, p, TimeZone(), kNow);
  EXPECT_TRUE(groups[0].snapshots[0].keep);
  EXPECT_FALSE(groups[0].snapshots[1].keep);
  EXPECT_EQ(groups[0].snapshots[2].reasons, Strings{"oldest daily"});
}

TEST(RetentionEdge, IsoWeeksAcrossTheYearBoundary) {
  // 2021-01-04 (Mon) is 2021-W01; 2021-01-03 (Sun) and 2020-12-31 (Thu) are
  // both in 2020-W53; 2020-12-20 is in 2020-W51.
  auto list = List({"2020-12-20 12:00:00", "2020-12-31 12:00:00", "2021-01-03 12:00:00", "2021-01-04 12:00:00"});
  Retention p;
  p.keep_weekly = 3;
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2021-01-04 12:00:00", "2021-01-03 12:00:00", "2020-12-20 12:00:00"}));
  // 2024-12-30 (Mon) opens 2025-W01; 2024-12-29 (Sun) closes 2024-W52.
  list = List({"2024-12-23 12:00:00", "2024-12-29 12:00:00", "2024-12-30 12:00:00", "2025-01-05 12:00:00"});
  p.keep_weekly = 2;
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2025-01-05 12:00:00", "2024-12-29 12:00:00"}));
  // Yearly buckets use the calendar year, not the ISO year.
  p = {};
  p.keep_yearly = 2;
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2025-01-05 12:00:00", "2024-12-30 12:00:00"}));
}

TEST(RetentionEdge, KeepWithinUsesCalendarMonths) {
  // 2024-03-31 12:00 minus 1m is "2024-02-31" = 2024-03-02 12:00 (Go's
  // AddDate, restic's arithmetic); a snapshot must be strictly newer.
  auto list = List({"2024-02-29 12:00:00", "2024-03-02 12:00:00", "2024-03-02 12:00:01", "2024-03-31 12:00:00"});
  Retention p;
  p.keep_within = CalendarDuration::Parse("1m");
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2024-03-31 12:00:00", "2024-03-02 12:00:01"}));
  // Hours are elapsed time after the calendar part: 1m49h reaches back to
  // 2024-02-29 11:00, 1m48h to 12:00 exactly (not strictly older: out).
  p.keep_within = CalendarDuration::Parse("1m49h");
  EXPECT_EQ(Apply(list, p).kept.size(), 4u);
  p.keep_within = CalendarDuration::Parse("1m48h");
  EXPECT_EQ(Apply(list, p).kept.size(), 3u);
}

TEST(RetentionEdge, KeepWithinIgnoresFutureSnapshotsForTheReference) {
  const int64_t now = repo::ParseTime("2024-06-10T00:00:00Z");
  auto list = List({"2024-06-01 12:00:00", "2024-06-08 12:00:00", "2024-06-09 12:00:00", "2030-01-01 00:00:00"});
  Retention p;
  p.keep_within = CalendarDuration::Parse("1d");
  // The reference is 2024-06-09 12:00 (not 2030); the future one is "within".
  EXPECT_EQ(Apply(list, p, TimeZone(), now).kept, (Strings{"2030-01-01 00:00:00", "2024-06-09 12:00:00"}));
}

TEST(RetentionEdge, KeepWithinDailyKeepsOnePerDayInRange) {
  auto list = List({"2024-05-01 08:00:00", "2024-06-07 08:00:00", "2024-06-07 20:00:00", "2024-06-08 09:00:00",
                    "2024-06-09 10:00:00", "2024-06-09 18:00:00"});
  Retention p;
  p.keep_within_daily = CalendarDuration::Parse("2d");  // cut-off 2024-06-07 18:00
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2024-06-09 18:00:00", "2024-06-08 09:00:00", "2024-06-07 20:00:00"}));
  EXPECT_EQ(o.reasons[0], Strings{"daily within 2d"});
}

TEST(RetentionEdge, TimeZoneMovesASnapshotToAnotherDay) {
  // 23:30 UTC on 2024-03-10 is 00:30 on 2024-03-11 in Berlin (UTC+1).
  auto list = List({"2024-03-09 12:00:00", "2024-03-10 22:30:00", "2024-03-10 23:30:00"});
  Retention p;
  p.keep_daily = 2;
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2024-03-10 23:30:00", "2024-03-09 12:00:00"}));
  const TimeZone berlin = TimeZone::Load("Europe/Berlin");
  EXPECT_EQ(Apply(list, p, berlin).kept, (Strings{"2024-03-10 23:30:00", "2024-03-10 22:30:00"}));
}

TEST(RetentionEdge, UnlimitedCountKeepsEveryBucketAndTheOldest) {
  std::vector<std::string> times;
  for (int day = 1; day <= 10; ++day)
    for (const char* hour : {"08", "20"})
      times.push_back("2024-04-" + std::string(day < 10 ? "0" : "") + std::to_string(day) + " " + hour + ":00:00");
  Retention p;
  p.keep_daily = -1;
  Outcome o = Apply(List(times), p);
  ASSERT_EQ(o.kept.size(), 11u);  // the 20:00 of each day, and the oldest (04-01 08:00)
  EXPECT_EQ(o.kept.front(), "2024-04-10 20:00:00");
  EXPECT_EQ(o.kept[9], "2024-04-01 20:00:00");
  EXPECT_EQ(o.kept[10], "2024-04-01 08:00:00");
  EXPECT_EQ(o.reasons[10], Strings{"oldest daily"});
}

TEST(RetentionEdge, TtlExpiredRemovedUnlessPinned) {
  const int64_t now = repo::ParseTime("2024-06-10T00:00:00Z");
  std::vector<Snapshot> list = List({"2024-06-01 12:00:00", "2024-06-02 12:00:00", "2024-06-03 12:00:00",
                                     "2024-06-04 12:00:00", "2024-06-05 12:00:00"});
  list[4].expires_ns = now;                                    // newest: expires exactly now -> expired
  list[3].expires_ns = now - 1;                                // expired and pinned -> kept
  list[3].tags = {"keep"};
  list[2].expires_ns = now + 1;                                // not yet expired -> kept ("ttl")
  Retention p;
  p.keep_last = 1;
  auto groups = ApplyRetention(list, p, TimeZone(), now);
  ASSERT_EQ(groups.size(), 1u);
  const auto& d = groups[0].snapshots;
  ASSERT_EQ(d.size(), 5u);
  EXPECT_FALSE(d[0].keep);
  EXPECT_EQ(d[0].reasons, Strings{"ttl expired"});
  // The expired snapshot takes no count: keep_last goes to the next one.
  EXPECT_TRUE(d[1].keep);
  EXPECT_EQ(d[1].reasons, (Strings{"pinned", "last"}));
  EXPECT_TRUE(d[2].keep);
  EXPECT_EQ(d[2].reasons, Strings{"ttl"});
  EXPECT_FALSE(d[3].keep);
  EXPECT_FALSE(d[4].keep);
}

TEST(RetentionEdge, EmptyPolicyRemovesOnlyExpired) {
  const int64_t now = repo::ParseTime("2024-06-10T00:00:00Z");
  std::vector<Snapshot> list = List({"2024-06-01 12:00:00", "2024-06-02 12:00:00"});
  list[0].expires_ns = now - 1;
  Retention p;
  ASSERT_TRUE(p.empty());
  auto d = ApplyRetention(list, p, TimeZone(), now)[0].snapshots;
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].keep);
  EXPECT_EQ(d[0].reasons, Strings{"no policy"});
  EXPECT_FALSE(d[1].keep);
  EXPECT_EQ(d[1].reasons, Strings{"ttl expired"});
  EXPECT_EQ(DescribePolicy(p), "no policy: keep everything but expired snapshots");
}

TEST(RetentionEdge, PinnedSurvivesAnyPolicy) {
  std::vector<Snapshot> list = List({"2020-01-01 00:00:00", "2024-06-01 12:00:00", "2024-06-02 12:00:00"});
  list[0].tags = {"keep"};
  Retention p;
  p.keep_last = 1;
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, (Strings{"2024-06-02 12:00:00", "2020-01-01 00:00:00 keep"}));
  EXPECT_EQ(o.reasons[1], Strings{"pinned"});
}

TEST(RetentionEdge, RefusesToRemoveAWholeGroup) {
  auto list = List({"2024-06-01 12:00:00", "2024-06-02 12:00:00"});
  Retention p;
  p.keep_tags = {{"nonexistent"}};
  try {
    ApplyRetention(list, p, TimeZone(), kNow);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()),
              "refusing to remove every snapshot of group host 'mopped', source '': the policy (keep snapshots "
              "tagged nonexistent) keeps none of its 2 snapshots");
  }
  // Untagged-only set: "" matches snapshots without tags.
  list[0].tags = {"x"};
  p.keep_tags = {{""}};
  Outcome o = Apply(list, p);
  EXPECT_EQ(o.kept, Strings{"2024-06-02 12:00:00"});
  EXPECT_EQ(o.reasons[0], Strings{"tag ''"});
}

TEST(RetentionEdge, GroupsAreJudgedSeparately) {
  std::vector<Snapshot> list = List({"2024-06-01 12:00:00", "2024-06-02 12:00:00", "2024-06-03 12:00:00",
                                     "2024-06-04 12:00:00"});
  list[0].host = list[1].host = "a";
  list[2].host = list[3].host = "b";
  list[1].tags = {"keep"};  // the pin tag does not change a tags group
  list[3].tags = {"x"};
  Retention p;
  p.keep_last = 1;
  auto groups = ApplyRetention(list, p, TimeZone(), kNow);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].key.ToString(), "host 'a', source ''");
  EXPECT_EQ(groups[1].key.host, "b");
  EXPECT_EQ(Apply(list, p).kept.size(), 2u);

  p.group_by = config::GroupBy::Parse("");
  auto one = ApplyRetention(list, p, TimeZone(), kNow);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].key.ToString(), "all snapshots");
  EXPECT_EQ(Apply(list, p).kept, (Strings{"2024-06-04 12:00:00 x", "2024-06-02 12:00:00 keep"}));

  p.group_by = config::GroupBy::Parse("tags");
  auto by_tags = ApplyRetention(list, p, TimeZone(), kNow);
  ASSERT_EQ(by_tags.size(), 2u);  // {} (with the pinned one) and {x}
  EXPECT_EQ(by_tags[0].key.ToString(), "tags []");
  EXPECT_EQ(by_tags[0].snapshots.size(), 3u);
  EXPECT_EQ(by_tags[1].key.ToString(), "tags [x]");
}

TEST(RetentionEdge, DescribePolicy) {
  Retention p;
  p.keep_last = 2;
  p.keep_daily = 7;
  p.keep_monthly = -1;
  p.keep_within = CalendarDuration::Parse("30d");
  p.keep_within_weekly = CalendarDuration::Parse("1y");
  p.keep_tags = {{"a", "b"}};
  EXPECT_EQ(DescribePolicy(p),
            "keep 2 latest, 7 daily, all monthly snapshots, weekly snapshots within 1y, snapshots within 30d of the newest, "
            "snapshots tagged a,b");
}

}  // namespace
}  // namespace bulwark::ops
