// The WAL archive of a PostgreSQL source as a whole: what it covers, what
// the base backups can reach (`bulwark pg info`), what no base backup needs
// any more (expiry, run by `forget` and `bulwark pg expire-wal`), and the
// archiving check (`bulwark pg check`).
//
// WAL objects are "wal/<source>/<file name>" (repo/wal.h). Listing them
// costs one LIST per 1000 objects; nothing is downloaded.
//
// PITR window (docs/POSTGRES.md "bulwark pg info"): from the stop time of
// the oldest base backup whose WAL from start to stop is archived (the first
// moment a restore can be consistent), to the storage time of the newest
// segment of the unbroken run of segments that continues from the newest
// such base backup on its timeline (commits in that segment happened before
// it was archived, so this is an upper bound of the latest recoverable
// commit, off by at most the segment's archiving delay). Timelines created
// after a base backup are not followed: the window ends on the backup's
// timeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"
#include "bulwark/source/postgres/libpq.h"
#include "bulwark/source/postgres/wal_names.h"

namespace bulwark::source::postgres {

// One archived file: its PostgreSQL name, stored size (bytes, encrypted and
// compressed) and storage time (ns since the Unix epoch, UTC).
struct ArchivedFile {
  std::string name;
  uint64_t stored_bytes = 0;
  int64_t mtime_ns = 0;
};
// Every object under wal/<source>/ with a valid WAL file name, sorted by
// name; others are ignored. Throws what Backend::List throws.
std::vector<ArchivedFile> ListArchive(repo::Repository& repo, const std::string& source);

// The WAL view of a physical base backup snapshot (facts timeline,
// start_lsn, stop_lsn); nullopt for other snapshots or missing facts.
std::optional<BaseBackupWal> BaseBackupWalOf(const repo::Snapshot& s);

struct BaseBackupStatus {
  repo::Snapshot snapshot;
  BaseBackupWal wal;
  bool consistent = false;  // every segment from start to stop is archived
};

struct ArchiveInfo {
  std::string source;
  std::vector<BaseBackupStatus> backups;     // physical snapshots of the source, oldest first
  std::vector<ArchivedFile> files;           // the archive, by name
  uint64_t stored_bytes = 0;
  std::vector<TimelineCoverage> timelines;   // segment runs per timeline; > 1 run = gaps
  std::vector<uint32_t> history_files;       // timelines with a .history file
  std::optional<int64_t> pitr_earliest_ns, pitr_latest_ns;  // see the header comment
};
// Builds the view from `snapshots` (all of the repository's; those of other
// sources are skipped) and the archive listing.
ArchiveInfo DescribeArchive(repo::Repository& repo, const std::string& source,
                            const std::vector<repo::Snapshot>& snapshots);

struct ExpireResult {
  std::vector<std::string> expired;  // file names deleted (or, dry run, to delete)
  uint64_t stored_bytes = 0;
  size_t kept_backups = 0;           // physical snapshots the decision was based on
  std::vector<std::string> failed;   // "name: error" (e.g. still under Object Lock)
};
// Deletes the archived files that no remaining physical base backup of
// `source` needs (ExpirableWal over `remaining`, the snapshots that stay).
// With no physical base backup remaining nothing is deleted. Deletion
// failures are collected, not thrown. Callers hold an exclusive lock.
ExpireResult ExpireWal(repo::Repository& repo, const std::string& source, const std::vector<repo::Snapshot>& remaining,
                       bool dry_run);

struct ArchiveCheck {
  std::string segment;          // the segment the forced switch completed
  bool arrived = false;         // it reached the repository within the timeout
  double seconds = 0;           // from the switch until it was seen (or the timeout)
  bool archive_mode_on = false;
  std::string archive_command;  // the server's setting
  int64_t ready_files = -1;     // pg_wal/archive_status/*.ready (-1: not readable by this role)
  std::string last_archived_wal, last_failed_wal;  // pg_stat_archiver
  std::optional<int64_t> last_archived_ns, last_failed_ns;
  int64_t failed_count = 0;
  std::optional<int64_t> newest_archived_mtime_ns;  // newest object in the repository
};
// pgBackRest's `check`, for bulwark: writes a restore point (so the switch
// is never a no-op), switches to a new WAL segment (pg_switch_wal), then
// polls the repository every 200 ms until that segment is archived or
// `timeout_seconds` pass; reads pg_stat_archiver and counts .ready files.
// Throws kSourceFailed for connection or SQL errors (e.g. on a standby,
// where pg_switch_wal is not allowed).
ArchiveCheck CheckArchiving(repo::Repository& repo, const std::string& source, Connection& conn,
                            double timeout_seconds);

}  // namespace bulwark::source::postgres
