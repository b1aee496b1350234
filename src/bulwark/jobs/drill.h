// A source's restore drill as a job: what `bulwark agent` runs on the
// source's `drill.schedule` (the agent's drill lane, bulwark/agent/agent.h)
// and `bulwark drill SOURCE` runs by hand through ops::RunDrill.
//
// RunDrillJob: opens the source's repository, takes a shared lock (a drill
// stores its record; it never deletes), loads the index, resolves the
// newest snapshot of the source and runs ops::RunDrill (restore into a
// scratch target, validate, time, clean up, store the drill record:
// docs/DRILLS.md). The report's status is kSuccess when the drill passed,
// kFailed when a check, the RTO budget or the drill itself failed (the
// record is stored all the same: evidence of a failure is evidence), or when
// there is nothing to drill (no snapshot of the source yet), kAbandoned when
// the agent was shutting down before the drill started. A drill that has
// started runs to its end (its scratch target must be cleaned up).
//
// Thread-safety: as RunBackupJob (one job per source at a time).
#pragma once

#include <string>

#include "bulwark/jobs/job.h"

namespace bulwark::jobs {

// `restore_command`: for a PostgreSQL physical source, the restore_command
// its scratch server runs to fetch WAL (the CLI builds bulwark's own
// wal-fetch, cli/common.h WalFetchRestoreCommandFor); ignored otherwise.
// Never throws for the drill's failures (they are in the report); throws
// Error(kNotFound) for an unknown source.
JobReport RunDrillJob(const JobEnv& env, const std::string& source, const std::string& name,
                      const std::string& restore_command);

}  // namespace bulwark::jobs
