// Prometheus alerting rules rendered from the configuration's policies
// (`bulwark alerts`): one rule group "bulwark" with, per scheduled source,
//   BackupStale      time() - bulwark_backup_last_success_timestamp_seconds
//                    above the source's interval plus slack (the /healthz
//                    rule, health.h, with the interval of its schedule now)
// and, for all sources at once,
//   BackupJobFailed  bulwark_backup_last_status == 0
//   WALArchivingLag  bulwark_wal_archive_lag_seconds > max_wal_lag (only when
//                    a PostgreSQL physical source exists)
//   RestoreTestFailed  bulwark_drill_last_success == 0
//   RestoreRTOExceeded bulwark_drill_duration_seconds{source=S} > the drill's
//                    RTO budget: one rule per source whose `drill:` block
//                    has an `rto:` (severity warning).
// BackupStorageLow is not rendered: free space of the storage is not
// something bulwark can see (S3 has no quota API; a local disk is
// node_exporter's node_filesystem_avail_bytes): docs/AGENT.md shows the rule
// to add by hand.
//
// The output is YAML for Prometheus's rule_files (promtool check rules).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "bulwark/agent/health.h"
#include "bulwark/config/config.h"

namespace bulwark::agent {

struct AlertRule {
  std::string alert, expr, for_, severity, summary, description;
  std::string source;  // "" for rules over all sources
};

// The rules for `config`; `now` (seconds since the epoch) is when each
// schedule's interval is measured (the gap from its next slot to the one
// after).
std::vector<AlertRule> BuildAlertRules(const config::Config& config, const HealthOptions& options, int64_t now);
// Prometheus rule-file YAML of `rules`.
std::string RenderAlertRules(const std::vector<AlertRule>& rules);
// [{"alert","expr","for","labels":{"severity"},"annotations":{...}}...]
nlohmann::json AlertRulesJson(const std::vector<AlertRule>& rules);

}  // namespace bulwark::agent
