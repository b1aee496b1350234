// Restoring a ClickHouse snapshot (backup.h) into a server:
// `bulwark clickhouse restore` (cli/cmd_clickhouse.cc, docs/CLICKHOUSE.md).
//
// Plan first, change nothing until every check passed: the snapshot is a
// ClickHouse backup; every --table pattern and --partition matches something
// in its facts; a target table that exists is refused unless drop_existing
// (with partitions: a target partition that holds rows is refused unless
// drop_existing). Then, in this order:
//   1. databases that do not exist are created from their stored schema
//      (under their new names: database_map);
//   2. with drop_existing, the tables (and views) to replace are dropped,
//      views first (`before_replace` runs before that: the safety backup);
//   3. tables with data are created from their stored schema, references to
//      a mapped database rewritten (RewriteDatabase), and filled: a Native
//      stream INSERTed as it is read from the repository, or the stored
//      parts copied into the table's detached/ directory and attached
//      (ALTER TABLE ... ATTACH PART; bulwark on the server's host);
//   4. other tables (Distributed, Merge, Buffer, ...), then views and
//      materialized views are created: after the data, so that a
//      materialized view does not see the restored rows a second time;
//   5. the data of materialized views' storage tables (.inner.X) goes in;
//   6. each restored table's rows are counted and compared with the facts:
//      equal, or (Summing/Replacing/Collapsing/Aggregating/Graphite engines,
//      whose merges remove rows) not more. A difference throws
//      Error(kCorrupt) naming each table with both counts.
// Partitions (`partitions`, MergeTree tables only): parts snapshots attach
// only those partitions' parts; Native snapshots are inserted into a scratch
// table (`.bulwark_restore_<table>`, CREATE TABLE ... AS the target), whose
// partitions then replace the target's (ALTER TABLE ... REPLACE PARTITION
// ID ... FROM), and the scratch table is dropped. Other partitions of the
// target are left alone.
// Errors from the server throw kSourceFailed naming server and statement;
// what was created before is left in place, and the error says so.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"
#include "bulwark/source/clickhouse/http.h"

namespace bulwark::source::clickhouse {

struct RestoreOptions {
  Endpoint target;                                 // the server to restore into
  std::map<std::string, std::string> database_map;  // snapshot database -> target database
  std::vector<std::string> tables;                 // DATABASE.TABLE globs on the snapshot's names; empty = all
  std::vector<std::string> partitions;             // partition ids (system.parts.partition_id); empty = whole tables
  bool drop_existing = false;  // replace existing tables (or, with partitions, existing partitions)
  bool verify = true;          // compare row counts with the facts
  bool dry_run = false;        // plan only
  std::string data_path;       // parts snapshots: the target server's <path>; "" = asked from it
  std::function<void(const std::string&)> on_step;  // progress lines ("creating table ...")
  // Called after the checks and before the first drop with the target
  // tables ("db.t") that drop_existing is about to replace (or whose
  // partitions it replaces); may throw to stop the restore (restore
  // --safety-backup backs them up here).
  std::function<void(const std::vector<std::string>& tables)> before_replace;
};

struct TableRestore {
  std::string from, to;   // "db.t" in the snapshot, on the target
  std::string kind;       // "data", "schema", "inner"
  std::string action;     // "create", "replace", "partitions"
  std::string method;     // data: "native", "parts"; "" for schema
  std::vector<std::string> partitions;  // restored partitions (with `partitions`)
  uint64_t expected_rows = 0;           // from the facts
  std::optional<uint64_t> restored_rows;
  uint64_t bytes = 0;                   // Native bytes inserted, or part file bytes copied
  uint64_t parts = 0;                   // parts attached
  bool verified = false;                // the count matched
};

struct RestoreResult {
  std::vector<std::string> databases_created;  // (or that would be, dry run)
  std::vector<std::string> replaced;           // target tables dropped (or whose partitions were replaced)
  std::vector<TableRestore> tables;
  uint64_t bytes = 0;
  double seconds = 0;
};

// The "db.t" keys of a snapshot's tables that `patterns` select (inner
// tables of selected materialized views included); throws kNotFound for a
// pattern that matches nothing, naming the tables there are.
std::vector<std::string> SelectSnapshotTables(const repo::Snapshot& snapshot, const std::vector<std::string>& patterns);

RestoreResult Restore(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreOptions& options);

// "OLD:NEW" -> (OLD, NEW); throws kInvalidArgument.
std::pair<std::string, std::string> ParseDatabaseMapping(const std::string& s);

}  // namespace bulwark::source::clickhouse
