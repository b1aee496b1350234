// bulwark's metric families: the one definition of every metric name, unit,
// HELP text and label set, filled from job reports and repository listings.
// The agent serves them on /metrics (bulwark/agent/agent.h); one-shot
// commands push them to a Pushgateway (bulwark/metrics/push.h).
//
// Per source (labels source="<name>", repository="<configured name>"):
//   bulwark_backup_last_success_timestamp_seconds  gauge: time (UTC) of the
//       newest snapshot of the source that is not partial
//   bulwark_backup_last_status         gauge: 1 = the last job succeeded, 0 = it failed
//   bulwark_backup_age_seconds         gauge: now - last_success_timestamp
//   bulwark_backup_duration_seconds    gauge: wall time of the last job
//   bulwark_backup_added_bytes         gauge: new bytes the last backup stored
//   bulwark_backup_processed_bytes     gauge: bytes the last backup read
//   bulwark_backup_success_total       counter: successful jobs (since start)
//   bulwark_backup_failure_total       counter: failed or partial jobs
//   bulwark_snapshots                  gauge: snapshots of the source in its repository
//   bulwark_repository_size_bytes      gauge: stored bytes of the repository
//                                      (data, index, snapshots, wal objects)
// PostgreSQL physical sources only:
//   bulwark_wal_archive_last_success_timestamp_seconds  gauge: storage time of
//       the newest archived WAL file
//   bulwark_wal_archive_lag_seconds    gauge: now - that
//   bulwark_pitr_window_seconds        gauge: latest - earliest recoverable
//       point (source/postgres/archive.h)
// Drills (from the agent's drill jobs, and the newest drill record in the
// repository at start and after every job):
//   bulwark_drill_last_success         gauge: 1 = the last drill passed, 0 = failed
//   bulwark_drill_duration_seconds     gauge: the last drill's measured RTO
// Process-wide:
//   bulwark_storage_requests_total{operation="put|get|head|list|delete|post"}
//       counter: requests to S3 storage by this process
//   bulwark_storage_request_retries_total counter
//
// A figure that is unknown (no job ran yet, no snapshot) has no sample.
// Thread-safety: plain values and pure functions (RefreshFromRepository does
// storage I/O on the repository it is given).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/config/config.h"
#include "bulwark/jobs/job.h"
#include "bulwark/metrics/exposition.h"
#include "bulwark/repo/repository.h"

namespace bulwark::metrics {

struct SourceFigures {
  std::string source, repository;
  std::optional<int64_t> last_success;  // seconds since the epoch (UTC)
  std::optional<bool> last_ok;
  std::optional<double> duration_seconds;
  std::optional<uint64_t> added_bytes, processed_bytes;
  uint64_t success_total = 0, failure_total = 0;
  std::optional<uint64_t> snapshots, repository_size_bytes;
  bool pg_physical = false;
  std::optional<int64_t> wal_last_archived;  // seconds since the epoch
  std::optional<int64_t> pitr_window_seconds;
  std::optional<bool> drill_ok;
  std::optional<double> drill_duration_seconds;
};

// Request counters of the S3 backends of this process.
struct StorageCounters {
  uint64_t put = 0, get = 0, head = 0, list = 0, del = 0, post = 0, retries = 0;
  static StorageCounters OfProcess();  // from storage::s3::ProcessStats()
};

// Every family listed above, in that order; `now`: seconds since the epoch
// (for the age and lag gauges). `storage` null: no storage families.
std::vector<Family> BuildFamilies(const std::vector<SourceFigures>& sources, const StorageCounters* storage,
                                  int64_t now);

// Empty figures of a configured source (names and kind set).
SourceFigures FiguresFor(const config::SourceConfig& src);

// Counts a finished job into `f`: status, duration, bytes, counters; the
// snapshot time becomes last_success when the job stored a complete
// snapshot. A drill job sets only drill_ok (false also when the drill could
// not run) and drill_duration_seconds. Abandoned jobs count as nothing.
void ApplyReport(SourceFigures* f, const jobs::JobReport& r);

// Reads the repository's view (storage LIST requests, snapshots loaded):
// the source's snapshot count, its newest complete snapshot's time
// (last_success), the repository's stored bytes and, for a PostgreSQL
// physical source, its WAL archive (source::postgres::DescribeArchive), and
// the verdict and RTO of the source's newest drill record (a damaged record
// is a warning and skipped). Throws what the storage throws.
void RefreshFromRepository(SourceFigures* f, repo::Repository& repo);

}  // namespace bulwark::metrics
