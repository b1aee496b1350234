// The agent's health rule (/healthz): pure logic over an injected time.
//
// Healthy when every check passes; the checks, per source:
//   * fresh (scheduled, unsuspended sources only): with L the time of the
//     newest complete snapshot (or, when there is none, when the agent
//     started), N = the schedule's first slot after L and I = the interval
//     from N to the slot after it, the source is stale once
//         now > N + slack,  slack = max(slack_fraction x I, min_slack)
//                                   + the duration of its last job
//     i.e. the run due at N has had its slack (and the time a backup of it
//     takes) to produce a snapshot. For a regular schedule this is "the
//     newest good backup is younger than the interval plus slack"; for an
//     irregular one (weekdays only) it follows the actual gap.
//   * wal (PostgreSQL physical sources, unsuspended): the newest archived WAL
//     file is younger than max_wal_lag_seconds (and there is one).
//   * drill (sources whose last drill result is known): it passed.
// Suspended or unscheduled sources are listed as skipped, never failing.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/config/cron.h"

namespace bulwark::agent {

struct HealthOptions {
  double slack_fraction = 0.1;        // of the schedule's interval
  int64_t min_slack_seconds = 300;    // floor of the slack (agent --min-slack)
  int64_t max_wal_lag_seconds = 900;  // agent --max-wal-lag
};

struct HealthInput {
  std::string source;
  std::optional<config::CronSchedule> schedule;  // nullopt: on demand only
  bool suspended = false;
  std::optional<int64_t> last_success;  // newest complete snapshot, seconds since the epoch
  double last_duration_seconds = 0;     // of the source's last job
  int64_t known_since = 0;              // when the agent started (seconds since the epoch)
  bool pg_physical = false;
  std::optional<int64_t> wal_last_archived;  // seconds since the epoch
  std::optional<bool> drill_ok;
};

struct HealthCheck {
  std::string source;
  std::string check;    // "fresh", "wal", "drill"
  std::string status;   // "ok", "failing", "skipped"
  std::string message;  // why (always set for failing)
};

struct Health {
  bool ok = true;
  std::vector<HealthCheck> checks;
  // {"status": "ok"|"failing", "failing": [{"source","check","message"}...],
  //  "checks": [{"source","check","status","message"}...]}
  nlohmann::json ToJson() const;
};

// Evaluates the checks at `now` (seconds since the epoch).
Health EvaluateHealth(const std::vector<HealthInput>& sources, const HealthOptions& options, int64_t now);

}  // namespace bulwark::agent
