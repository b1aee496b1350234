// A source's job as library code: what `bulwark agent` runs on schedule and
// `bulwark run SOURCE` runs on demand, callable without the CLI.
//
// The backup job of a source (RunBackupJob), in order:
//   1. `hooks.pre` (bulwark/jobs/hooks.h); one with on_error: fail that
//      fails stops the job here (no snapshot is stored);
//   2. the backup (bulwark/jobs/source_backup.h) under a shared repository
//      lock; a partial snapshot (unreadable entries) makes the job kPartial;
//   3. forget by the source's `retention:` and TTLs (bulwark/jobs/forget.h)
//      under an exclusive lock, then, with `prune: true` and when snapshots
//      were removed, prune with its defaults (5 % unused tolerated, 1 h grace);
//   4. copy of the source's snapshots to every `copy_to` repository
//      (bulwark/jobs/copy.h), each independently (one failing does not stop
//      the next);
//   5. `hooks.post`, always, whatever happened before (a freeze is undone
//      after a failed backup too); one with on_error: fail that fails makes
//      the job failed.
// A failure in 3 or 4 makes the job kFailed but keeps the snapshot of 2 (its
// id is in the report). Nothing here throws for a failing step: every
// outcome is in the JobReport.
//
// Jobs of different sources may run at the same time on different threads;
// one JobEnv may be shared by them if its opener is thread-safe. The agent
// runs one job per source at a time (bulwark/agent/scheduler.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/forget.h"
#include "bulwark/repo/repository.h"

namespace bulwark::jobs {

// What a job does. The agent schedules each kind separately (a drill has its
// own schedule); adding a kind means a runner for it and a case in the
// agent's dispatch (bulwark/agent/agent.h).
enum class JobKind { kBackup, kDrill };
// "backup", "drill".
std::string_view JobKindName(JobKind kind);

enum class JobStatus {
  kSuccess,    // every step succeeded
  kPartial,    // the snapshot was stored but some entries could not be read
  kFailed,     // a step failed (see error); a snapshot may still have been stored
  kAbandoned,  // stopped by shutdown before it ended (no snapshot stored)
};
// "success", "partial", "failed", "abandoned".
std::string_view JobStatusName(JobStatus s);

// Opens a configured repository (password from its password_file, or the
// caller's other means), index not loaded. Throws bulwark::Error.
using RepositoryOpener = std::function<std::unique_ptr<repo::Repository>(const config::RepositoryConfig&)>;

// What a job needs from its caller (no global state).
struct JobEnv {
  const config::Config* config = nullptr;  // required; outlives the job
  RepositoryOpener open_repository;        // required
  int64_t lock_wait_seconds = 0;           // wait for conflicting repository locks
  // When set and it becomes true, the job stops at the next step boundary,
  // and a backup that has not committed yet aborts without a snapshot
  // (status kAbandoned); post hooks still run.
  const std::atomic<bool>* cancel = nullptr;
  int threads = 0;  // backup worker threads; 0 = one per core
};

struct CopyOutcome {
  std::string repository;  // the copy_to name
  uint64_t snapshots_copied = 0, bytes_copied = 0;
  std::string error;  // "" = copied
};

struct JobReport {
  JobKind kind = JobKind::kBackup;
  std::string source, repository, name;  // repository: the source's (configured name)
  JobStatus status = JobStatus::kFailed;
  std::string error;                            // the first failure's message, "" on success
  ErrorCode error_code = ErrorCode::kInternal;  // of that failure (valid when error is set)
  std::vector<std::string> errors;              // every failure, including hooks with on_error: continue
  std::string snapshot_id;                      // hex; "" when no snapshot was stored
  int64_t snapshot_time = 0;                    // the snapshot's time, seconds since the epoch (UTC); 0 = none
  int64_t started_at = 0, ended_at = 0;         // seconds since the epoch (UTC)
  // Wall times in seconds.
  double duration_seconds = 0, hooks_seconds = 0, backup_seconds = 0, forget_seconds = 0, prune_seconds = 0,
         copy_seconds = 0;
  uint64_t bytes_processed = 0;  // bytes read from the source
  uint64_t bytes_added = 0;      // new plaintext bytes stored in the repository
  ForgetOutcome forget;
  bool pruned = false;
  std::vector<CopyOutcome> copies;
  // Drill jobs (kind kDrill, bulwark/jobs/drill.h): the verdict once the
  // drill ran (nullopt when it did not: nothing to drill, repository
  // unreachable), its measured RTO (restore + validation wall time, seconds)
  // and the stored drill record's id (hex). snapshot_id is the drilled one.
  std::optional<bool> drill_passed;
  double drill_rto_seconds = 0;
  std::string drill_id;

  bool ok() const { return status == JobStatus::kSuccess; }
  // {"kind", "source", "repository", "name", "status", "error", "errors",
  //  "snapshot_id", "snapshot_time", "started_at", "ended_at",
  //  "duration_seconds", "hooks_seconds", "backup_seconds", "forget_seconds",
  //  "prune_seconds", "copy_seconds", "bytes_processed", "bytes_added",
  //  "forget": {"applied", "kept", "removed", ...}, "pruned",
  //  "copies": [{"repository", "snapshots_copied", "bytes_copied", "error"}],
  //  and for drills "drill": {"passed", "rto_seconds", "record"} (passed null
  //  when the drill did not run)}
  nlohmann::json ToJson() const;
};

// Runs the backup job of `source` (a name in env.config) as described at the
// top. `name`: the run's name (e.g. "manual-20240331-120000" or
// "scheduled-..."), recorded in the report and the log, not in the
// repository. Never throws for the job's failures; throws Error(kNotFound)
// for an unknown source.
JobReport RunBackupJob(const JobEnv& env, const std::string& source, const std::string& name);

// "manual-YYYYMMDD-HHMMSS" (prefix "manual") for `unix_seconds` in UTC.
std::string RunName(std::string_view prefix, int64_t unix_seconds);

}  // namespace bulwark::jobs
