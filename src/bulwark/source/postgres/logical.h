// Logical PostgreSQL backups (pg_dump) and their restore (pg_restore).
//
// Backup (BackupLogical in backup.h): one connection opens a REPEATABLE READ,
// READ ONLY transaction and exports its snapshot (pg_export_snapshot); the
// facts (per-table row counts, optional schema version) are read in that
// transaction and `pg_dump -Fc -Z0 --snapshot=ID` dumps exactly the same
// state, so the facts describe the dump. The connection stays open until
// the dump has finished (the exported snapshot dies with its transaction).
// Custom format without compression (-Z0): the repository compresses, and
// consecutive dumps share most of their bytes, so they deduplicate
// (docs/POSTGRES-NOTES.md §2). pg_dumpall --globals-only (roles with their
// password hashes, tablespaces) goes into the same snapshot as
// `globals.sql`. Both stream through a pipe: no temporary file.
//
// Snapshot layout: root files `<database>.dump` (or `database.dump` when
// the name is not a plain file name) and `globals.sql`; facts["postgres"]:
//   mode "logical", database, server_version ("15.20 (Debian ...)"),
//   server_version_num (150020), database_size_bytes, system_identifier
//   (when readable), snapshot (the exported snapshot id), tables
//   {"schema.table": rows}, schema_version (when configured), dump_file,
//   globals_file (when taken), dump_format "custom".
//
// References: PostgreSQL 15 docs, pg_dump (--snapshot, -Fc, -Z),
// pg_restore (-j, --clean, --if-exists, -t), §9.27.5 Snapshot
// Synchronization Functions (pg_export_snapshot).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"
#include "bulwark/source/postgres/libpq.h"

namespace bulwark::source::postgres {

// Row count of every table (relkind r, p) outside pg_catalog and
// information_schema, in the connection's current transaction:
// {"schema.table": rows}. One statement (count(*) per table through
// query_to_xml); a full scan of each table. Throws kSourceFailed.
std::map<std::string, int64_t> TableRowCounts(Connection& conn);

// The row counts a logical snapshot's facts record ({"schema.table": rows};
// empty when there are none). Throws Error(kCorrupt) for a count that is not
// an integer.
std::map<std::string, int64_t> FactTableCounts(const repo::Snapshot& snapshot);

// One table's row count in the backup's facts against the restored database.
struct TableCountCheck {
  std::string table;                     // "schema.table"
  int64_t backup_rows = 0;               // from the facts
  std::optional<int64_t> restored_rows;  // nullopt: the table is missing
  bool ok() const { return restored_rows && *restored_rows == backup_rows; }
  // "public.t: 9 rows, backup: 10" / "public.t: missing (backup: 10 rows)"
  std::string Describe() const;
};
// Compares `restored` (TableRowCounts of the restored database) with `backup`
// (FactTableCounts) for `tables`, or for every table of `backup` when empty.
std::vector<TableCountCheck> CompareTableCounts(const std::map<std::string, int64_t>& backup,
                                                const std::map<std::string, int64_t>& restored,
                                                const std::vector<std::string>& tables);

struct RestoreDumpOptions {
  std::string target_conninfo;  // server to restore into (its dbname: where to connect for CREATE DATABASE)
  std::string dbname;           // the database to create (or, with clean, to restore into)
  bool clean = false;           // restore into an existing database: pg_restore --clean --if-exists
  std::vector<std::string> tables;  // --table: "table" or "schema.table", checked against the facts
  int jobs = 1;                 // pg_restore -j; > 1 writes the dump to a temp file first
  std::string temp_dir;         // for jobs > 1; "" = $TMPDIR or /tmp
  bool no_owner = false;        // pg_restore --no-owner
  bool globals = false;         // also run globals.sql with psql (errors for existing roles are reported)
  bool analyze = true;          // ANALYZE the restored database
  bool verify = true;           // compare row counts with the facts
  std::string pg_bin_dir;       // "" = by the target server's major version
  bool dry_run = false;         // plan only: no database created, nothing run
  // Progress lines for the operator ("creating database ...").
  std::function<void(const std::string&)> on_step;
};

struct RestoreDumpResult {
  std::string database;
  bool created = false;             // CREATE DATABASE ran (or would, dry run)
  std::vector<std::string> pg_restore_argv;
  uint64_t dump_bytes = 0;          // bytes fed to pg_restore
  std::map<std::string, int64_t> verified;  // table -> rows, equal to the facts
  double seconds = 0;
};

// Restores a logical snapshot into a new database. Checks first (before
// creating anything): the snapshot is a logical PostgreSQL backup; every
// --table names a table in the facts (kNotFound with the close names);
// the database does not exist unless `clean` (kAlreadyExists). Then:
// CREATE DATABASE ... TEMPLATE template0, pg_restore --exit-on-error (from
// a pipe, or a 0600 temp file for -j > 1, removed afterwards), ANALYZE, and
// the row-count comparison: a mismatch throws Error(kCorrupt) naming each
// table with both counts. pg_restore failures throw kSourceFailed with its
// stderr tail. A database created here is left in place on failure (named
// in the error) so the operator can inspect it.
RestoreDumpResult RestoreDump(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreDumpOptions& options);

}  // namespace bulwark::source::postgres
