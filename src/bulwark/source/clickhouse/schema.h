// Names and DDL of the ClickHouse source: which databases and tables a
// source selects, where a table goes in a snapshot's tree, and rewriting a
// stored CREATE statement for another database (restore --database-map).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::source::clickhouse {

// A name as ClickHouse writes it into a file name (escapeForFileName):
// [A-Za-z0-9_] as they are, every other byte as %XX (upper-case hex). Safe
// as one path component of a snapshot; "" stays "".
std::string EscapeForFileName(std::string_view name);

// Which databases and tables a source backs up (bulwark.yaml `databases`,
// `tables`, `exclude_tables`; docs/CLICKHOUSE.md). Patterns are fnmatch
// globs; table patterns match "DATABASE.TABLE" ('*' crosses the dot).
struct Selection {
  std::vector<std::string> databases;       // empty: every database but the system ones
  std::vector<std::string> tables;          // empty: every table
  std::vector<std::string> exclude_tables;  // none excluded when empty
  // `system`, `INFORMATION_SCHEMA` and `information_schema` are selected
  // only when a `databases` pattern names them literally.
  bool Database(const std::string& db) const;
  bool Table(const std::string& db, const std::string& table) const;
};

// True if `text` matches one of the fnmatch `patterns`.
bool MatchesAny(const std::vector<std::string>& patterns, const std::string& text);

// `create` (a CREATE or ATTACH statement as SHOW CREATE returns it) with
// every reference to database `from` ("from.t", "`from`.t", "\"from\".t")
// made a reference to database `to` (quoted with backquotes unless it is a
// plain identifier). String literals are left alone, so Distributed(...,
// 'from', ...) and Merge('from', ...) still name `from`. For CREATE
// DATABASE, the database's own name is replaced too.
std::string RewriteDatabase(const std::string& create, const std::string& from, const std::string& to);
// The same for several databases at once (each reference rewritten once:
// {a: b, b: c} turns a.x into b.x and b.x into c.x).
std::string RewriteDatabases(const std::string& create, const std::map<std::string, std::string>& map);

// `create` as CREATE TABLE IF NOT EXISTS / CREATE VIEW IF NOT EXISTS /
// CREATE DATABASE IF NOT EXISTS ... (an "IF NOT EXISTS" after the object
// keyword, unless there is one). Unchanged when the statement does not
// start with CREATE or ATTACH.
std::string IfNotExists(const std::string& create);

}  // namespace bulwark::source::clickhouse
