#include "bulwark/agent/health.h"

#include <algorithm>
#include <cmath>

#include "bulwark/base/civil_time.h"

namespace bulwark::agent {

nlohmann::json Health::ToJson() const {
  nlohmann::json failing = nlohmann::json::array(), all = nlohmann::json::array();
  for (const auto& c : checks) {
    all.push_back({{"source", c.source}, {"check", c.check}, {"status", c.status}, {"message", c.message}});
    if (c.status == "failing") failing.push_back({{"source", c.source}, {"check", c.check}, {"message", c.message}});
  }
  return {{"status", ok ? "ok" : "failing"}, {"failing", failing}, {"checks", all}};
}

namespace {

std::string Ago(int64_t seconds) { return std::to_string(seconds) + " s ago"; }

}  // namespace

Health EvaluateHealth(const std::vector<HealthInput>& sources, const HealthOptions& o, int64_t now) {
  Health h;
  const TimeZone utc;
  auto add = [&](const HealthInput& s, const char* check, const char* status, std::string msg) {
    h.checks.push_back({s.source, check, status, std::move(msg)});
    if (std::string_view(status) == "failing") h.ok = false;
  };
  for (const auto& s : sources) {
    if (s.suspended) {
      add(s, "fresh", "skipped", "suspended");
      continue;
    }
    if (!s.schedule) {
      add(s, "fresh", "skipped", "no schedule");
    } else {
      const int64_t ref = s.last_success.value_or(s.known_since);
      const int64_t due = s.schedule->Next(ref);
      const int64_t interval = s.schedule->Next(due) - due;
      const int64_t slack =
          std::max<int64_t>(static_cast<int64_t>(std::ceil(o.slack_fraction * interval)), o.min_slack_seconds) +
          static_cast<int64_t>(std::ceil(s.last_duration_seconds));
      const std::string newest = s.last_success ? "newest complete snapshot " + utc.FormatRfc3339(*s.last_success) +
                                                      " (" + Ago(now - *s.last_success) + ")"
                                                : "no complete snapshot";
      if (now > due + slack)
        add(s, "fresh", "failing",
            "stale: " + newest + "; the run due at " + utc.FormatRfc3339(due) + " has not produced one within " +
                std::to_string(slack) + " s of slack");
      else
        add(s, "fresh", "ok", newest);
    }
    if (s.pg_physical) {
      if (!s.wal_last_archived)
        add(s, "wal", "failing", "no archived WAL");
      else if (now - *s.wal_last_archived > o.max_wal_lag_seconds)
        add(s, "wal", "failing",
            "WAL archiving lags: newest archived file " + Ago(now - *s.wal_last_archived) + " (limit " +
                std::to_string(o.max_wal_lag_seconds) + " s)");
      else
        add(s, "wal", "ok", "newest archived file " + Ago(now - *s.wal_last_archived));
    }
    if (s.drill_ok)
      add(s, "drill", *s.drill_ok ? "ok" : "failing", *s.drill_ok ? "last drill passed" : "last drill failed");
  }
  return h;
}

}  // namespace bulwark::agent
