// The agent's /healthz rule with a fake time, and the alert rules.
#include <gtest/gtest.h>

#include "bulwark/agent/alerts.h"
#include "bulwark/agent/health.h"
#include "bulwark/config/config.h"

namespace bulwark::agent {
namespace {

constexpr int64_t kT0 = 1711843200;  // 2024-03-31T00:00:00Z

HealthInput Hourly(std::optional<int64_t> last_success) {
  HealthInput h;
  h.source = "docs";
  h.schedule = config::CronSchedule::Parse("@hourly");
  h.last_success = last_success;
  h.known_since = kT0 - 86400;
  return h;
}

const HealthCheck* Find(const Health& h, const std::string& check) {
  for (const auto& c : h.checks)
    if (c.check == check) return &c;
  return nullptr;
}

TEST(AgentHealth, FreshUntilTheDueRunHasHadItsSlack) {
  HealthOptions o;  // slack max(10 % of 3600 s, 300 s) = 360 s
  HealthInput in = Hourly(kT0);
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 3600).ok);        // the next run is due now
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 3600 + 360).ok);  // still within slack
  Health h = EvaluateHealth({in}, o, kT0 + 3600 + 361);
  EXPECT_FALSE(h.ok);
  ASSERT_NE(Find(h, "fresh"), nullptr);
  EXPECT_EQ(Find(h, "fresh")->status, "failing");
  EXPECT_NE(Find(h, "fresh")->message.find("stale"), std::string::npos);
  EXPECT_EQ(h.ToJson()["failing"][0]["source"], "docs");
  // The last job's duration extends the slack (a long backup is not stale).
  in.last_duration_seconds = 100;
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 3600 + 361).ok);
}

TEST(AgentHealth, MinimumSlackIsConfigurable) {
  HealthOptions o;
  o.min_slack_seconds = 1;
  HealthInput in;
  in.source = "fast";
  in.schedule = config::CronSchedule::Parse("@every 2s");
  in.last_success = kT0;
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 3).ok);  // due at +2, slack 1 s
  EXPECT_FALSE(EvaluateHealth({in}, o, kT0 + 4).ok);
}

TEST(AgentHealth, NoBackupYetCountsFromAgentStart) {
  HealthOptions o;
  HealthInput in = Hourly(std::nullopt);
  in.known_since = kT0;
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 3600).ok);
  EXPECT_FALSE(EvaluateHealth({in}, o, kT0 + 3600 + 400).ok);
}

TEST(AgentHealth, SuspendedAndUnscheduledAreSkipped) {
  HealthOptions o;
  HealthInput s = Hourly(kT0);
  s.suspended = true;
  HealthInput u;
  u.source = "adhoc";
  Health h = EvaluateHealth({s, u}, o, kT0 + 10 * 86400);
  EXPECT_TRUE(h.ok);
  EXPECT_EQ(h.checks.size(), 2u);
  EXPECT_EQ(h.checks[0].status, "skipped");
  EXPECT_EQ(h.checks[1].status, "skipped");
}

TEST(AgentHealth, WalLagAndDrill) {
  HealthOptions o;
  o.max_wal_lag_seconds = 600;
  HealthInput in = Hourly(kT0);
  in.pg_physical = true;
  EXPECT_FALSE(EvaluateHealth({in}, o, kT0 + 60).ok);  // no archived WAL at all
  in.wal_last_archived = kT0;
  EXPECT_TRUE(EvaluateHealth({in}, o, kT0 + 600).ok);
  Health h = EvaluateHealth({in}, o, kT0 + 601);
  EXPECT_FALSE(h.ok);
  EXPECT_EQ(Find(h, "wal")->status, "failing");
  in.drill_ok = false;
  h = EvaluateHealth({in}, o, kT0 + 60);
  EXPECT_FALSE(h.ok);
  EXPECT_EQ(Find(h, "drill")->status, "failing");
}

TEST(AgentHealth, AlertRulesFollowTheSchedules) {
  auto cfg = config::Parse(R"(
version: 1
repositories:
  local: {url: /tmp/r}
sources:
  docs: {kind: fs, paths: [/etc], schedule: "@hourly"}
  off: {kind: fs, paths: [/etc], schedule: "@hourly", suspend: true}
  db: {kind: postgres, conninfo: "host=x", mode: physical, schedule: "@daily"}
)",
                           "t.yaml");
  auto rules = BuildAlertRules(cfg, HealthOptions{}, kT0);
  std::vector<std::string> names;
  for (const auto& r : rules) names.push_back(r.alert + ":" + r.source);
  EXPECT_EQ(names, (std::vector<std::string>{"BackupJobFailed:", "BackupStale:db", "BackupStale:docs",
                                             "WALArchivingLag:", "RestoreTestFailed:"}));
  EXPECT_EQ(rules[2].expr, "time() - bulwark_backup_last_success_timestamp_seconds{source=\"docs\"} > 3960");
  const std::string yaml = RenderAlertRules(rules);
  EXPECT_NE(yaml.find("groups:\n  - name: bulwark\n    rules:\n      - alert: BackupJobFailed\n"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::agent
