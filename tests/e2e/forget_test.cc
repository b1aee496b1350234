// End-to-end tests of `forget` (retention policies, TTLs, pinning, configured
// sources, explicit ids) and `tag`, on the real CLI. History is fabricated
// with `backup --stdin --time`.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace bulwark::testing {
namespace {

using nlohmann::json;

// Backs up a few bytes as a snapshot at `time` (RFC 3339); returns its id.
std::string BackupAt(const Scratch& s, const std::string& time, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--json", "backup", "--stdin", "--stdin-name", "data", "--time", time};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = s.Bw(args, "content at " + time + "\n");
  if (r.exit_code != 0) throw std::runtime_error("backup failed: " + r.err);
  return r.Json()["snapshot_id"];
}

json Snapshots(const Scratch& s) {
  RunResult r = s.Bw({"--json", "snapshots"});
  if (r.exit_code != 0) throw std::runtime_error("snapshots failed: " + r.err);
  return r.Json();
}

// "2024-01-31" for every snapshot, oldest first (snapshots lists by time).
std::vector<std::string> Days(const json& snapshots) {
  std::vector<std::string> out;
  for (const auto& s : snapshots) out.push_back(s["time"].get<std::string>().substr(0, 10));
  return out;
}

std::string Day(int month, int day) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "2024-%02d-%02d", month, day);
  return buf;
}

TEST(ForgetPolicy, KeepDailyWeeklyMonthlyOnSixtyDays) {
  Scratch s;
  s.Init();
  // One snapshot a day at 10:00 UTC, 2024-01-01 .. 2024-02-29.
  for (int m = 1; m <= 2; ++m)
    for (int d = 1; d <= (m == 1 ? 31 : 29); ++d) BackupAt(s, Day(m, d) + "T10:00:00Z");
  ASSERT_EQ(Snapshots(s).size(), 60u);

  const std::vector<std::string> policy{"--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "3"};
  std::vector<std::string> args{"--json", "forget", "--dry-run"};
  args.insert(args.end(), policy.begin(), policy.end());
  RunResult dry = s.Bw(args);
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  json plan = dry.Json();
  ASSERT_EQ(plan.size(), 1u) << plan.dump();
  EXPECT_EQ(plan[0]["policy"], "keep 7 daily, 4 weekly, 3 monthly snapshots");
  ASSERT_EQ(plan[0]["keep"].size(), 11u) << plan.dump();
  EXPECT_EQ(plan[0]["remove"].size(), 49u);
  // Newest first: Feb 23..29 (daily; Feb 29 and Sunday Feb 25 also weekly,
  // Feb 29 also monthly), Sundays Feb 18 and 11 (weekly), Jan 31 (monthly),
  // and Jan 1: the monthly rule has a count left at the oldest snapshot.
  std::vector<std::string> kept;
  for (const auto& k : plan[0]["keep"]) kept.push_back(k["time"].get<std::string>().substr(0, 10));
  EXPECT_EQ(kept, (std::vector<std::string>{"2024-02-29", "2024-02-28", "2024-02-27", "2024-02-26", "2024-02-25",
                                            "2024-02-24", "2024-02-23", "2024-02-18", "2024-02-11", "2024-01-31",
                                            "2024-01-01"}));
  EXPECT_EQ(plan[0]["keep"][0]["reasons"], json({"daily", "weekly", "monthly"}));
  EXPECT_EQ(plan[0]["keep"][4]["reasons"], json({"daily", "weekly"}));
  EXPECT_EQ(plan[0]["keep"][7]["reasons"], json({"weekly"}));
  EXPECT_EQ(plan[0]["keep"][10]["reasons"], json({"oldest monthly"}));
  EXPECT_EQ(plan[0]["remove"][0]["time"].get<std::string>().substr(0, 10), "2024-02-22");
  EXPECT_EQ(Snapshots(s).size(), 60u) << "a dry run removes nothing";

  // Text output names the group and the reasons.
  args = {"forget", "--dry-run"};
  args.insert(args.end(), policy.begin(), policy.end());
  RunResult text = s.Bw(args);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("keep 11 snapshots:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("remove 49 snapshots:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("oldest monthly"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("would remove 49 snapshots"), std::string::npos) << text.out;

  args = {"--json", "forget"};
  args.insert(args.end(), policy.begin(), policy.end());
  RunResult real = s.Bw(args);
  ASSERT_EQ(real.exit_code, 0) << real.err;
  EXPECT_EQ(real.Json(), plan) << "the real run does what the dry run showed";
  std::vector<std::string> left = Days(Snapshots(s));
  std::reverse(left.begin(), left.end());
  EXPECT_EQ(left, kept);
  // The repository stays consistent, and the kept snapshots restore.
  RunResult check = s.Bw({"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  RunResult dump = s.Bw({"dump", "latest", "/data"});
  EXPECT_EQ(dump.out, "content at 2024-02-29T10:00:00Z\n");
  // The policy is idempotent.
  RunResult again = s.Bw(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.Json()[0]["remove"].size(), 0u);
}

TEST(ForgetPolicy, TimeZoneDecidesTheDay) {
  Scratch s;
  s.Init();
  BackupAt(s, "2024-03-09T12:00:00Z");
  BackupAt(s, "2024-03-10T22:30:00Z");
  BackupAt(s, "2024-03-10T23:30:00Z");  // 00:30 on 2024-03-11 in Berlin
  RunResult utc = s.Bw({"--json", "forget", "--dry-run", "--keep-daily", "2"});
  ASSERT_EQ(utc.exit_code, 0) << utc.err;
  EXPECT_EQ(utc.Json()[0]["remove"][0]["time"], "2024-03-10T22:30:00.000000000Z");
  RunResult berlin = s.Bw({"--json", "forget", "--dry-run", "--keep-daily", "2", "--timezone", "Europe/Berlin"});
  ASSERT_EQ(berlin.exit_code, 0) << berlin.err;
  EXPECT_EQ(berlin.Json()[0]["remove"][0]["time"], "2024-03-09T12:00:00.000000000Z");
}

TEST(ForgetTtl, ExpiredSnapshotsGoPinnedAndUnexpiredStay) {
  Scratch s;
  s.Init();
  const std::string expired = BackupAt(s, "2020-01-01T00:00:00Z", {"--ttl", "1d"});
  const std::string pinned = BackupAt(s, "2020-01-02T00:00:00Z", {"--ttl", "1d", "--tag", "keep"});
  const std::string plain = BackupAt(s, "2020-01-03T00:00:00Z");
  RunResult b = s.Bw({"--json", "backup", "--stdin", "--stdin-name", "data", "--ttl", "10y"}, "now\n");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string fresh = b.Json()["snapshot_id"];
  EXPECT_TRUE(b.Json().contains("expires"));

  json list = Snapshots(s);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0]["expires"], "2020-01-02T00:00:00.000000000Z");
  EXPECT_FALSE(list[0]["pinned"].get<bool>());
  EXPECT_TRUE(list[1]["pinned"].get<bool>());
  EXPECT_FALSE(list[2].contains("expires"));
  RunResult table = s.Bw({"snapshots"});
  EXPECT_NE(table.out.find("Expires (UTC)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("2020-01-02 00:00:00"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("(pinned)"), std::string::npos) << table.out;

  // No policy: only the expired, unpinned snapshot goes.
  RunResult f = s.Bw({"--json", "forget"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  json plan = f.Json();
  ASSERT_EQ(plan.size(), 1u) << plan.dump();
  ASSERT_EQ(plan[0]["remove"].size(), 1u) << plan.dump();
  EXPECT_EQ(plan[0]["remove"][0]["id"], expired);
  EXPECT_EQ(plan[0]["remove"][0]["reasons"], json({"ttl expired"}));
  std::set<std::string> left;
  for (const auto& x : Snapshots(s)) left.insert(x["id"]);
  EXPECT_EQ(left, (std::set<std::string>{pinned, plain, fresh}));

  RunResult nothing = s.Bw({"forget"});
  ASSERT_EQ(nothing.exit_code, 0) << nothing.err;
  EXPECT_NE(nothing.out.find("no policy given; nothing removed"), std::string::npos) << nothing.out;

  // A policy keeps the newest; the pinned snapshot survives it, whatever its TTL.
  RunResult last = s.Bw({"--json", "forget", "--keep-last", "1"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  json g = last.Json()[0];
  ASSERT_EQ(g["keep"].size(), 2u) << g.dump();
  EXPECT_EQ(g["keep"][0]["id"], fresh);
  EXPECT_EQ(g["keep"][0]["reasons"], json({"ttl", "last"}));
  EXPECT_EQ(g["keep"][1]["id"], pinned);
  EXPECT_EQ(g["keep"][1]["reasons"], json({"pinned"}));
  ASSERT_EQ(g["remove"].size(), 1u);
  EXPECT_EQ(g["remove"][0]["id"], plain);
  EXPECT_EQ(Snapshots(s).size(), 2u);

  RunResult zero = s.Bw({"backup", "--stdin", "--ttl", "0"}, "x");
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("--ttl must not be zero"), std::string::npos) << zero.err;
  RunResult bad = s.Bw({"backup", "--stdin", "--ttl", "5x"}, "x");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--ttl: invalid duration '5x'"), std::string::npos) << bad.err;
}

TEST(ForgetSource, ConfiguredRetentionAndTtlAndAll) {
  Scratch s;
  std::string yaml = s.ConfigPrelude() +
                     "sources:\n"
                     "  app:\n"
                     "    kind: command\n"
                     "    command: [sh, -c, 'printf app']\n"
                     "    retention: {keep_last: 2}\n"
                     "  db:\n"
                     "    kind: command\n"
                     "    command: [sh, -c, 'printf db']\n"
                     "    ttl: 1m\n"
                     "    retention: {keep_within: 2d, group_by: [source]}\n";
  WriteFile(s.Path("bulwark.yaml"), yaml);
  auto bw = [&](std::vector<std::string> args) { return s.BwConfig(s.Path("bulwark.yaml"), args); };
  RunResult init = bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  for (int d = 1; d <= 4; ++d) {
    ASSERT_EQ(bw({"backup", "--source", "app", "--time", Day(5, d) + "T10:00:00Z"}).exit_code, 0);
    ASSERT_EQ(bw({"backup", "--source", "db", "--time", Day(5, d) + "T11:00:00Z"}).exit_code, 0);
  }
  BackupAt(s, "2024-05-01T00:00:00Z");  // no source: never touched by --source or --all
  json list = Snapshots(s);
  ASSERT_EQ(list.size(), 9u);
  for (const auto& x : list)
    if (x["source"] == "db") {  // ttl: 1m (one month) from the config
      EXPECT_EQ(x["expires"].get<std::string>().substr(0, 10), "2024-06" + x["time"].get<std::string>().substr(7, 3));
    }

  // Flags override the configured policy field by field.
  RunResult over = bw({"--json", "forget", "--source", "app", "--keep-last", "1", "--dry-run"});
  ASSERT_EQ(over.exit_code, 0) << over.err;
  EXPECT_EQ(over.Json()[0]["keep"].size(), 1u);
  EXPECT_EQ(over.Json()[0]["source"], "app");

  RunResult app = bw({"--json", "forget", "--source", "app"});
  ASSERT_EQ(app.exit_code, 0) << app.err;
  json plan = app.Json();
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0]["policy"], "keep 2 latest snapshots");
  EXPECT_EQ(plan[0]["keep"].size(), 2u);
  EXPECT_EQ(plan[0]["remove"].size(), 2u);
  EXPECT_EQ(Snapshots(s).size(), 7u);

  // --all: each source's own policy. db's snapshots expired long ago (ttl 1m):
  // all four go, app's two are kept again, the source-less one is untouched.
  RunResult all = bw({"--json", "forget", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  plan = all.Json();
  ASSERT_EQ(plan.size(), 2u) << plan.dump();
  EXPECT_EQ(plan[0]["source"], "app");
  EXPECT_EQ(plan[0]["remove"].size(), 0u);
  EXPECT_EQ(plan[1]["source"], "db");
  EXPECT_FALSE(plan[1].contains("host")) << "db groups by source only";
  EXPECT_EQ(plan[1]["remove"].size(), 4u);
  EXPECT_EQ(plan[1]["remove"][0]["reasons"], json({"ttl expired"}));
  list = Snapshots(s);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]["source"], "");
  EXPECT_EQ(list[1]["source"], "app");
  EXPECT_EQ(list[2]["source"], "app");

  RunResult unknown = bw({"forget", "--source", "nope"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("unknown source 'nope'"), std::string::npos) << unknown.err;
  RunResult both = bw({"forget", "--source", "app", "--all"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
}

TEST(ForgetIds, ExplicitIdsRemoveExactlyThoseAndPinnedIsRefused) {
  Scratch s;
  s.Init();
  const std::string a = BackupAt(s, "2024-01-01T00:00:00Z");
  const std::string b = BackupAt(s, "2024-01-02T00:00:00Z");
  const std::string c = BackupAt(s, "2024-01-03T00:00:00Z", {"--tag", "keep"});
  const std::string d = BackupAt(s, "2024-01-04T00:00:00Z");
  RunResult dry = s.Bw({"--json", "forget", a.substr(0, 8), "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.Json()[0]["remove"][0]["id"], a);
  EXPECT_EQ(Snapshots(s).size(), 4u);

  RunResult f = s.Bw({"forget", a.substr(0, 8), b, a});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.out.find("removed 2 snapshots"), std::string::npos) << f.out;
  json list = Snapshots(s);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["id"], c);
  EXPECT_EQ(list[1]["id"], d);

  RunResult refused = s.Bw({"forget", c.substr(0, 10), d});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("snapshot " + c.substr(0, 8) + " is pinned (tag 'keep')"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("bulwark tag " + c.substr(0, 8) + " --remove keep"), std::string::npos) << refused.err;
  EXPECT_EQ(Snapshots(s).size(), 2u) << "nothing is removed when one id is refused";

  RunResult missing = s.Bw({"forget", "abcdef12"});
  EXPECT_NE(missing.exit_code, 0);
  RunResult mixed = s.Bw({"forget", d, "--keep-last", "1"});
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_NE(mixed.err.find("give snapshot ids or a policy"), std::string::npos) << mixed.err;
}

TEST(Tag, AddRemoveSetRewriteTheSnapshot) {
  Scratch s;
  s.Init();
  const std::string first = BackupAt(s, "2024-01-01T00:00:00Z", {"--tag", "daily"});
  RunResult add = s.Bw({"--json", "tag", first.substr(0, 8), "--add", "keep", "--add", "db"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  json r = add.Json();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0]["changed"].get<bool>());
  EXPECT_EQ(r[0]["tags"], json({"daily", "keep", "db"}));
  const std::string second = r[0]["new_id"];
  EXPECT_NE(second, first);
  json list = Snapshots(s);
  ASSERT_EQ(list.size(), 1u) << "the old snapshot object is gone";
  EXPECT_EQ(list[0]["id"], second);
  EXPECT_EQ(list[0]["original"], first);
  EXPECT_TRUE(list[0]["pinned"].get<bool>());
  EXPECT_EQ(list[0]["time"], "2024-01-01T00:00:00.000000000Z");

  // Pinned: a policy cannot remove it.
  BackupAt(s, "2024-02-01T00:00:00Z");
  RunResult f = s.Bw({"--json", "forget", "--keep-last", "1"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.Json()[0]["remove"].size(), 0u);

  RunResult dry = s.Bw({"tag", second, "--remove", "keep", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would get tags [daily,db]"), std::string::npos) << dry.out;
  EXPECT_EQ(Snapshots(s)[0]["id"], second) << "a dry run writes nothing";

  RunResult rm = s.Bw({"--json", "tag", second, "--remove", "keep"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  const std::string third = rm.Json()[0]["new_id"];
  list = Snapshots(s);
  EXPECT_EQ(list[0]["id"], third);
  EXPECT_EQ(list[0]["original"], first) << "the original id survives further rewrites";
  EXPECT_FALSE(list[0]["pinned"].get<bool>());
  EXPECT_EQ(list[0]["tags"], json({"daily", "db"}));

  RunResult same = s.Bw({"--json", "tag", third, "--add", "db"});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_FALSE(same.Json()[0]["changed"].get<bool>());
  EXPECT_EQ(Snapshots(s)[0]["id"], third);

  RunResult set = s.Bw({"--json", "tag", third, "--set", "x", "--set", "y"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(Snapshots(s)[0]["tags"], json({"x", "y"}));
  const std::string fourth = set.Json()[0]["new_id"];
  RunResult clear = s.Bw({"tag", fourth, "--set", ""});
  ASSERT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(Snapshots(s)[0]["tags"], json::array());

  RunResult none = s.Bw({"tag", "latest"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("give --add, --remove or --set"), std::string::npos) << none.err;
  RunResult mix = s.Bw({"tag", "latest", "--set", "a", "--add", "b"});
  EXPECT_EQ(mix.exit_code, 2);
  RunResult comma = s.Bw({"tag", "latest", "--add", "a,b"});
  EXPECT_EQ(comma.exit_code, 2);
  EXPECT_NE(comma.err.find("invalid tag 'a,b'"), std::string::npos) << comma.err;
}

TEST(ForgetErrors, BadInputIsExitTwoWithAClearMessageAndRemovesNothing) {
  Scratch s;
  s.Init();
  BackupAt(s, "2024-01-01T00:00:00Z");
  BackupAt(s, "2024-01-02T00:00:00Z");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"forget", "--keep-daily", "-2"}, "--keep-daily: invalid count '-2': want 0..1000000, or -1 / unlimited"},
      {{"forget", "--keep-last=-5"}, "--keep-last: invalid count '-5'"},
      {{"forget", "--keep-weekly", "many"}, "--keep-weekly: invalid count 'many'"},
      {{"forget", "--keep-within", "3x"}, "--keep-within: invalid duration '3x': unknown unit 'x'"},
      {{"forget", "--keep-within-daily", "7"}, "--keep-within-daily: invalid duration '7': missing unit"},
      {{"forget", "--keep-daily", "1", "--timezone", "Mars/Olympus"}, "--timezone: unknown time zone 'Mars/Olympus'"},
      {{"forget", "--keep-last", "1", "--group-by", "hots"}, "unknown group-by field 'hots' (did you mean 'host'?)"},
      {{"forget", "--keep-tag", "a,,b"}, "--keep-tag: tag set 'a,,b' has an empty tag"},
      {{"forget", "--all"}, "--all needs a configuration file"},
      {{"forget", "--keep-tag", "nonexistent"}, "refusing to remove every snapshot of group host"},
  };
  for (const auto& c : cases) {
    RunResult r = s.Bw(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "want '" << c.message << "' in: " << r.err;
  }
  EXPECT_EQ(Snapshots(s).size(), 2u);
}

}  // namespace
}  // namespace bulwark::testing
