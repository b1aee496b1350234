// Backups of a `kind: clickhouse` source (bulwark.yaml; docs/CLICKHOUSE.md),
// over ClickHouse's HTTP interface (http.h).
//
// mode native (any server, any engine): every selected table with data is
// streamed as `SELECT * FROM db.t FORMAT Native` into the repository, with
// no temporary file, its structure checked as it passes (native.h: a
// failure the server reports half-way is not stored as data).
// mode parts (bulwark on the server's host, as clickhouse-backup runs): each
// MergeTree-family table is frozen (ALTER TABLE ... FREEZE: hard links of
// its active parts in the server's shadow/ directory), and the frozen parts
// are stored as a tree, part by part: a part whose checksums.txt and file
// sizes equal those of the same part in the previous snapshot is not read
// again (parts are immutable), so unchanged parts cost a tree lookup. Tables
// of other engines (Log, TinyLog, StripeLog, Memory) are streamed as in
// native mode. The shadow directory bulwark made is removed after the
// backup, also after a failure; one a killed backup left is removed by the
// next (CleanShadow).
// Both modes store every selected database's and table's schema (SHOW
// CREATE DATABASE / TABLE); views, materialized views, dictionaries and
// tables of engines without data of their own (Distributed, Merge, Buffer,
// Null, Kafka, ...) are schema only.
//
// Snapshot (kind "clickhouse"), tree:
//   <db>/database.sql                    SHOW CREATE DATABASE
//   <db>/<table>/table.sql               SHOW CREATE TABLE
//   <db>/<table>/data.native             the rows (native mode; other engines in parts mode)
//   <db>/<table>/parts/<part>/<files>    the frozen parts (parts mode, MergeTree family)
// with <db> and <table> escaped as ClickHouse escapes them for file names
// (EscapeForFileName). facts["clickhouse"]:
//   mode, url, server_version, time (the server's now() at the start),
//   databases: {db: {engine, dir}},
//   tables: {"db.table": {database, table, engine, kind ("data", "schema",
//     "inner": the storage table of a materialized view), dir, rows, bytes,
//     parts, partitions, partition_rows {partition_id: rows}, data_file,
//     data_bytes, validated, inner_of}}
// `rows` is what the backup holds: the rows counted in the Native stream
// (validated: true), or the frozen parts' rows; bytes, parts and partitions
// come from system.parts (active parts; MergeTree family only).
//
// Consistency: each table is read (or frozen) at one instant, but tables
// one after another: a snapshot is not a point in time across tables.
// A failing server, statement, stream or repository throws and stores no
// snapshot (kSourceFailed naming server and statement; kCorrupt for a
// stream the validator rejects).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/config/config.h"
#include "bulwark/ops/backup.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/clickhouse/native.h"
#include "bulwark/source/clickhouse/schema.h"

namespace bulwark::source::clickhouse {

// The snapshot kind of every ClickHouse backup.
inline constexpr const char* kSnapshotKind = "clickhouse";

// Connection settings of a source: its url and tls_verify; the user from
// `user:`, else BULWARK_CLICKHOUSE_USER; the password from
// `password_file:`, else the file named by BULWARK_CLICKHOUSE_PASSWORD_FILE,
// else BULWARK_CLICKHOUSE_PASSWORD (one trailing newline of a file is
// dropped). Throws what reading the file throws.
Endpoint EndpointOf(const config::SourceConfig& source);

// The source's databases / tables / exclude_tables.
Selection SelectionOf(const config::SourceConfig& source);

// A table (or view) of the server, as a backup sees it.
struct TableInfo {
  std::string database, name, engine;
  std::string create;   // SHOW CREATE TABLE
  std::string kind;     // "data", "schema", "inner"
  std::string inner_of; // kind "inner": "db.view" of its materialized view
  NativeColumns columns;  // the columns of SELECT * (not MATERIALIZED or ALIAS), for data tables
  // From system.parts (active parts); MergeTree family only.
  std::optional<uint64_t> rows, bytes, parts;
  std::map<std::string, uint64_t> partition_rows;
  bool merge_tree = false;
  std::string key() const { return database + "." + name; }
};

struct Catalog {
  ServerVersion version;
  std::map<std::string, std::pair<std::string, std::string>> databases;  // name -> (engine, SHOW CREATE DATABASE)
  std::vector<TableInfo> tables;  // selected, sorted by database and name
};

// Reads the selected databases and tables (system.databases, system.tables,
// system.columns, system.parts, SHOW CREATE ...). Throws kSourceFailed.
Catalog ReadCatalog(Client& client, const Selection& selection);

// Whether an engine keeps data that `SELECT *` returns and an INSERT puts
// back: the MergeTree family, Log, TinyLog, StripeLog, Memory.
bool HasOwnData(const std::string& engine);

// One table's rows streamed into `tree` at `path` (SELECT * FORMAT Native).
struct StreamedTable {
  uint64_t rows = 0, bytes = 0;
  std::string sha256;
  bool validated = false;  // false: a column type the validator does not know; the server buffered the result
};
StreamedTable StreamTable(Client& client, ops::TreeBackup& tree, const TableInfo& table, const std::string& path);

// Backs up `source` (either mode). `options` carries tags, host, progress,
// before_commit; its paths are ignored. `tables_only`, when not empty,
// limits the backup to these "db.table" keys (restore --safety-backup).
ops::BackupResult Backup(repo::Repository& repo, const config::SourceConfig& source, const ops::BackupOptions& options,
                         const std::vector<std::string>& tables_only = {});

}  // namespace bulwark::source::clickhouse
