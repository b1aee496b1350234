// What a configured source backs up and how: the one mapping from a
// `sources:` entry of bulwark.yaml (config::SourceConfig) to the backup
// pipeline (ops/backup.h, source/postgres/backup.h,
// source/clickhouse/backup.h). `bulwark backup` and the
// agent's jobs (bulwark/jobs/job.h) both go through it, so a source backs up
// the same way from the command line and on schedule.
//
// Thread-safety: stateless functions; a BackupPlan is used by one thread.
#pragma once

#include <string>
#include <vector>

#include "bulwark/config/config.h"
#include "bulwark/ops/backup.h"
#include "bulwark/repo/repository.h"

namespace bulwark::jobs {

// What one backup reads.
struct BackupPlan {
  enum class Kind {
    kPaths,     // options.paths (ops::BackupPaths)
    kStdin,     // our standard input, as the file `stream_name`
    kCommand,   // the output of `command`, as the file `stream_name`
    kPostgres,    // a PostgreSQL server: `postgres` (logical or physical)
    kClickHouse,  // a ClickHouse server: `clickhouse` (native or parts)
  };
  Kind kind = Kind::kPaths;
  std::vector<std::string> command;                // kCommand: argv
  std::string stream_name;                         // kStdin, kCommand; "" = "stdin"
  const config::SourceConfig* postgres = nullptr;    // kPostgres; must outlive the plan's use
  const config::SourceConfig* clickhouse = nullptr;  // kClickHouse; likewise
};

// Applies `src` to `options` and `plan`: the source's name, its paths (fs;
// unless options->paths is already set), excludes and exclude_file,
// one_file_system, tags (appended), host (unless set), chunker and ttl; a
// command source sets its argv and, unless plan->stream_name is set, its
// stdin_name (default "<name>.stream"), and becomes Kind::kCommand unless
// the plan reads our standard input (kStdin: `backup --stdin --source S`
// reads stdin under the source's name); a postgres source becomes
// Kind::kPostgres, a clickhouse source Kind::kClickHouse. Throws
// Error(kInvalidArgument) when a postgres or clickhouse source is given
// paths, and what ReadExcludeFile throws.
void ApplySource(const config::SourceConfig& src, ops::BackupOptions* options, BackupPlan* plan);

// Runs the backup `plan` describes: BackupPaths, BackupStream (stdin),
// BackupCommand, BackupLogical / BackupPhysical, or clickhouse::Backup. Throws what those throw
// (no snapshot is stored then).
ops::BackupResult RunBackupPlan(repo::Repository& repo, const BackupPlan& plan, const ops::BackupOptions& options);

// Throws Error(kNotFound) "backup path P does not exist" for the first of
// `paths` that does not exist: called before the repository is opened, so
// that a missing path fails fast and touches nothing.
void CheckPathsExist(const std::vector<std::string>& paths);

// Reads an exclude file: one glob per line; blank lines and lines starting
// with '#' are skipped, trailing blanks removed. Throws what sys::ReadFile
// throws (naming the file).
std::vector<std::string> ReadExcludeFile(const std::string& path);

}  // namespace bulwark::jobs
