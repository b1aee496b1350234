// A real PostgreSQL 15 server for end-to-end tests: `scripts/pg-server start`
// in a temporary directory (initdb as the postgres user, trust auth, a free
// 127.0.0.1 port, the unix socket in DIR/sock; see docs/PG-TEST-SERVER.md),
// stopped by PID when the PgServer is destroyed. Each PgServer has its own
// cluster, port and socket directory.
//
//   std::string why;
//   auto pg = PgServer::Start(&why);
//   if (!pg) GTEST_SKIP() << why;   // not installable here (a failure in CI)
//   EXPECT_EQ(pg->Psql("SELECT 1").out, "1\n");
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness.h"

// Starts a PgServer into `var` (a std::unique_ptr<PgServer>) with the
// given PgServerOptions, or skips the test saying why.
#define START_PG(var, ...)                               \
  std::string var##_why;                                 \
  auto var = PgServer::Start(&var##_why, ##__VA_ARGS__); \
  if (!var) GTEST_SKIP() << var##_why

namespace bulwark::testing {

struct PgServerOptions {
  // archive_mode=on with archive_command copying each segment (and history /
  // backup file) into archive_dir() (test ! -f ... && cp %p ...).
  bool archive = false;
  // archive_mode=on with this archive_command instead (scripts/pg-server
  // --archive-command), e.g. "/abs/bulwark --repo R --key-file K wal-push
  // --source main %p". It runs as the postgres user in data_dir(): what it
  // uses (binary, repository, key file) must be accessible to that user.
  // Excludes `archive`.
  std::string archive_command{};  // {}: designated initializers of the others stay warning-free
  // A restore instead of initdb (scripts/pg-server --base-backup): the data
  // directory is this pg_basebackup -Ft tar, recovering through
  // `restore_command` (runs as postgres in data_dir()), then promoting, with
  // the optional `recovery_end_command`. Start returns once the server
  // accepts connections; poll pg_is_in_recovery() for the end of recovery.
  std::string base_backup{}, restore_command{}, recovery_end_command{};
};

class PgServer {
 public:
  // Installs (if needed: Debian's postgresql-15) and starts a server. On
  // failure returns null and sets *why; a server that cannot be installed is a
  // skip, except where CI is set in the environment: there it is also a test
  // failure (ADD_FAILURE), as is every other start failure.
  static std::unique_ptr<PgServer> Start(std::string* why, const PgServerOptions& options = {});
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Stops the server now (scripts/pg-server stop, then waits for it); true if
  // it stopped. The destructor does it otherwise.
  bool Stop();

  int port() const { return port_; }
  int pid() const { return pid_; }                       // the postmaster
  const std::string& host() const { return host_; }      // the unix socket directory
  const std::string& dir() const { return dir_; }        // the server's temp dir
  std::string data_dir() const { return dir_ + "/data"; }
  std::string archive_dir() const { return dir_ + "/archive"; }  // with options.archive
  // "host=127.0.0.1 port=P user=postgres dbname=DB"
  std::string conninfo(const std::string& dbname = "postgres") const;
  // The same through the unix socket: "host=<socket dir> port=P user=postgres dbname=DB"
  std::string socket_conninfo(const std::string& dbname = "postgres") const;
  std::string Log() const;  // DIR/server.log

  // Runs `sql` with psql (user postgres, -X -A -t -q, ON_ERROR_STOP) in `db`:
  // stdout is the rows, unaligned, '|' between columns, one line each.
  RunResult Psql(const std::string& sql, const std::string& db = "postgres") const;
  // Psql, with a test failure unless it succeeds; returns stdout without the
  // final newline.
  std::string Query(const std::string& sql, const std::string& db = "postgres") const;
  // CREATE DATABASE; adds a test failure and returns false if it fails.
  bool CreateDatabase(const std::string& name) const;
  // pgbench -i -s `scale` -q into `db` (100000 pgbench_accounts rows per unit of scale).
  RunResult PgbenchInit(const std::string& db, int scale) const;
  // Runs another client program of PostgreSQL 15 (pg_dump, pg_basebackup, pgbench, ...:
  // /usr/lib/postgresql/15/bin/<program>) with -h 127.0.0.1 -p PORT -U postgres
  // prepended to `args`.
  RunResult Client(const std::string& program, const std::vector<std::string>& args,
                   const std::string& input = "") const;

  // A server on the data directory that is already at `dir`/data (e.g. a
  // restored base backup set up for recovery): `scripts/pg-server
  // start-existing DIR` chowns DIR to postgres, and starts the server on a
  // free port with its socket in DIR/sock (overriding the copied settings).
  // Ready means accepting connections (a recovering server does once it is
  // consistent). `dir` is removed at destruction, as Start's. Null, with
  // *why and a test failure, if it does not start.
  static std::unique_ptr<PgServer> StartExisting(const std::string& dir, std::string* why);

 private:
  PgServer() = default;
  bool Adopt(const RunResult& r, std::string* why);

  std::string dir_, host_;
  int port_ = 0, pid_ = 0, launcher_pid_ = 0, watcher_pid_ = 0;
  bool started_ = false, stopped_ = false;
};

// A fresh directory under /tmp (traversable by the postgres user) for what
// the server reads or writes outside its own cluster: a restored data
// directory (data()), a repository and key file for archive_command.
// Removed at destruction unless BULWARK_KEEP_TEST_DIRS is set.
class PgTempDir {
 public:
  PgTempDir();
  ~PgTempDir();
  PgTempDir(const PgTempDir&) = delete;
  PgTempDir& operator=(const PgTempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string data() const { return path_ + "/data"; }
  // chown -R postgres: what is in it now (modes kept); false on failure.
  bool GiveToPostgres() const;

 private:
  std::string path_;
};

// The directory of PostgreSQL 15's programs (/usr/lib/postgresql/15/bin).
std::string PgBin();

}  // namespace bulwark::testing
