// A thin C++ face on libpq (PostgreSQL's client library, Debian's libpq-dev):
// connection strings, one connection, text-format queries.
//
// Secrets: connection strings that bulwark stores or passes to programs
// (pg_dump -d ...) must not hold a password; passwords come from PGPASSFILE
// (~/.pgpass) or PGPASSWORD, which libpq and the PostgreSQL programs read
// themselves. ConninfoProblem enforces this where a conninfo enters bulwark
// (bulwark.yaml, flags). libpq's own error messages never contain the password.
//
// Reference: PostgreSQL 15 documentation, "libpq - C Library", §34.1.1
// (connection strings: keyword/value and URI forms) and §34.3 (command
// execution).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::source::postgres {

// Why `conninfo` is not acceptable, or "" when it is: "is not a valid
// connection string: <libpq's message>", or "contains a password; ..." when a
// password is given inline (keyword `password=` or a URI's user:password@).
std::string ConninfoProblem(std::string_view conninfo);

// `conninfo` (either form) with its database replaced by `dbname`, as a
// keyword=value string (values single-quoted, backslash-escaped). Throws
// Error(kInvalidArgument) if `conninfo` does not parse.
std::string WithDatabase(std::string_view conninfo, std::string_view dbname);
// `conninfo` with each of `settings` (keyword, value) set, replacing what it
// had for that keyword, as a keyword=value string (values quoted the same
// way). Throws Error(kInvalidArgument) if `conninfo` does not parse; "" is
// an empty connection string.
std::string WithSettings(std::string_view conninfo, const std::vector<std::pair<std::string, std::string>>& settings);
// The value `conninfo` gives `keyword` ("host", "port", "user", ...), or
// nullopt when it gives none (libpq's defaults and the PG* environment are
// not applied). Throws Error(kInvalidArgument) if `conninfo` does not parse.
std::optional<std::string> ConninfoValue(std::string_view conninfo, std::string_view keyword);

// One field of a result row: nullopt for SQL NULL.
using Field = std::optional<std::string>;
using Row = std::vector<Field>;

// An open connection. Not thread-safe (one libpq connection); may be moved
// between threads.
class Connection {
 public:
  // Connects (blocking). Throws Error(kSourceFailed) "cannot connect to
  // PostgreSQL at HOST:PORT database DB: <libpq message>" (never the
  // password); kInvalidArgument for a conninfo ConninfoProblem rejects.
  // `application_name` is shown in pg_stat_activity unless `conninfo` sets
  // one.
  static std::unique_ptr<Connection> Open(const std::string& conninfo, const std::string& application_name = "bulwark");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement (text results, optional text parameters $1..$n).
  // Returns the rows (empty for commands). Throws Error(kSourceFailed)
  // "PostgreSQL HOST:PORT/DB: <server message>" on any error.
  std::vector<Row> Query(const std::string& sql, const std::vector<std::string>& params = {});
  // Query that must return exactly one row with one non-NULL value.
  std::string Value(const std::string& sql, const std::vector<std::string>& params = {});

  // PQserverVersion: 150020 for 15.20.
  int server_version() const;
  // The major version: 15 (10 and later), 9 for 9.6 (older servers: 9.6 -> 9).
  int server_major() const { return server_version() / 10000; }
  std::string database() const;  // PQdb
  // "HOST:PORT/DB" for messages (host may be a socket directory).
  std::string where() const;

  // "name" -> "\"name\"" with embedded quotes doubled (PQescapeIdentifier).
  std::string QuoteIdent(std::string_view name) const;

 private:
  explicit Connection(PGconn* c) : conn_(c) {}
  PGconn* conn_;
};

}  // namespace bulwark::source::postgres
