// Restore drills: prove that a snapshot can be restored, and how long it
// takes (`bulwark drill SOURCE`; docs/DRILLS.md).
//
// A drill restores one snapshot of a configured source into a scratch
// target, validates what it restored, measures the wall time from its start
// to "validated" (the measured RTO, seconds, steady clock), cleans the
// target up, and stores a drill record (repo/drill_record.h) in the
// repository, also when it fails. By source kind:
//
//   fs, command   ops::Restore into a new directory made with mkdtemp under
//                 the drill's `dir` ($TMPDIR or /tmp by default). Checks:
//                 the restore reported no damaged data; every restored file
//                 re-read and matched against its blob ids (VerifyRestore);
//                 the number of files and their bytes equal the snapshot's
//                 summary (files_new + files_changed + files_unmodified,
//                 bytes_processed).
//   postgres logical   CREATE DATABASE bulwark_drill_<16 hex> on the drill's
//                 scratch server, pg_restore of the dump into it
//                 (source/postgres/logical.h RestoreDump), then: each
//                 table's row count against the facts recorded at backup
//                 time, the schema version (when the source has a
//                 schema_version_query and the facts hold its value), and
//                 the user checks of the configuration. The database is
//                 dropped (WITH (FORCE)) afterwards: only the one this drill
//                 created, never any other.
//   postgres physical  RestoreBaseBackup (pitr.h) into a new data directory
//                 with recovery to the end of the archived WAL, then the
//                 server's own `postgres` started on 127.0.0.1:PORT (as the
//                 data directory's owner when run as root; archive_mode off,
//                 so the copy never archives into production's archive),
//                 waited for by polling libpq until it accepts connections
//                 and pg_is_in_recovery() is false (no fixed sleeps). Checks:
//                 recovery ended, the system identifier equals the backup's,
//                 and the user checks. The server is stopped by its PID
//                 (SIGINT, fast shutdown) and reaped.
//
// The RTO budget (drill `rto:`) adds a check "rto": total_seconds <= budget.
// A drill passes when every check passed and nothing stopped it early.
//
// Safety (checked before anything is created; violations throw
// kInvalidArgument and store no record): the snapshot belongs to the source
// and is of its kind; a fs/command `dir` exists and is not at or below one
// of the source's paths; the restore target directory is always a new empty
// one of the drill's own; a logical scratch server that is the source's own
// server (same host and port in the conninfo, or the same system
// identifier) is refused unless `allow_same_server: true`.
//
// Errors: the safety checks above throw; so does failing to store the
// record. Everything that goes wrong after the drill started (damaged data,
// pg_restore failing, a server that does not recover) is caught and
// recorded (DrillRecord::error, a failed check).
// Thread-safety: one drill per call; the repository must not be used for
// writing by the caller meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "bulwark/config/config.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct DrillOptions {
  bool keep = false;     // leave the scratch target (directory, database, data directory) in place
  bool dry_run = false;  // safety checks and the plan only: nothing restored, no record stored
  // postgres physical: the restore_command the scratch server runs (it
  // fetches WAL from this repository; the CLI builds bulwark's own
  // wal-fetch). Required for physical drills.
  std::string restore_command;
  // postgres physical: how long (seconds, counted from the drill's start)
  // the server may take to finish recovery; 0 = the RTO budget, or 3600
  // without one.
  int64_t recovery_timeout_seconds = 0;
  int threads = 0;  // restore readers; 0 = as ops::Restore
  // Progress lines for the operator ("restoring into ...").
  std::function<void(const std::string&)> on_step;
};

struct DrillOutcome {
  repo::DrillRecord record;  // record.id is set once stored (zero for a dry run)
  std::string plan;          // dry run: what would be done, one line
};

// Runs a drill of `snapshot` (already resolved: the newest of the source,
// or the one asked for) of `source` as described above. `source.drill`
// unset means the defaults (no budget, no user checks, a temp directory;
// a logical source then has no scratch server: kInvalidArgument).
DrillOutcome RunDrill(repo::Repository& repo, const repo::Snapshot& snapshot, const config::SourceConfig& source,
                      const DrillOptions& options);

// The verdict: appends the "rto" check when `record->rto_budget_seconds` is
// set (total_seconds <= budget), then sets `record->passed` (all checks
// passed and `error` is empty). Exposed for tests.
void JudgeDrill(repo::DrillRecord* record);

// One user check's outcome for a query result `value` (the SQL's single
// value as text, or nullopt for NULL): a DrillCheck named "sql: <sql>".
repo::DrillCheck EvaluateUserCheck(const config::DrillCheckConfig& check, const std::optional<std::string>& value);

}  // namespace bulwark::ops
