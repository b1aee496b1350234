// A real ClickHouse server for end-to-end tests: `scripts/ch-server start` in
// a temporary directory (its own config.xml and users.xml, data in DIR/data,
// free 127.0.0.1 ports, run as the clickhouse user; see
// docs/CH-TEST-SERVER.md), stopped by PID when the ChServer is destroyed.
//
//   START_CH(ch);                       // or skips: not installable here (a failure in CI)
//   EXPECT_EQ(ch->Query("SELECT 1"), "1");
//
// Queries go over the HTTP interface with libcurl, independently of
// bulwark's own ClickHouse client (source/clickhouse/http.h), as the user
// "default" (no password). The user "bulwark" has a random password in
// password_file().
#pragma once

#include <memory>
#include <string>

#include "harness.h"

// Starts a ChServer into `var` (a std::unique_ptr<ChServer>), or skips the
// test saying why.
#define START_CH(var)                        \
  std::string var##_why;                     \
  auto var = ChServer::Start(&var##_why);    \
  if (!var) GTEST_SKIP() << var##_why

namespace bulwark::testing {

class ChServer {
 public:
  // Installs (if needed: Debian's clickhouse-server) and starts a server. On
  // failure returns null and sets *why; a server that cannot be installed is
  // a skip, except where CI is set (then also ADD_FAILURE), as is every other
  // start failure.
  static std::unique_ptr<ChServer> Start(std::string* why);
  ~ChServer();
  ChServer(const ChServer&) = delete;
  ChServer& operator=(const ChServer&) = delete;

  // Stops the server now (scripts/ch-server stop, then reaps its launcher and
  // watcher); true if it stopped. The destructor does it otherwise.
  bool Stop();

  int port() const { return port_; }                // HTTP
  int pid() const { return pid_; }                  // clickhouse-server
  const std::string& dir() const { return dir_; }   // the server's temp dir
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string data_dir() const { return dir_ + "/data"; }  // the server's <path>
  std::string password_file() const { return dir_ + "/password"; }  // user "bulwark"
  std::string password() const;
  std::string Log() const;  // DIR/server.log and DIR/server.err.log

  struct Reply {
    long status = 0;     // HTTP status; 0 when the request failed (error in body)
    std::string body;
  };
  // POSTs `sql` (the request body) as the user "default"; with `data`, the
  // SQL goes into the URL (?query=) and `data` is the body (INSERT ...
  // FORMAT ...). `params` are more URL parameters ("a=1&b=2").
  Reply Exec(const std::string& sql, const std::string& data = "", const std::string& params = "") const;
  // Exec with a test failure unless the status is 200; returns the body
  // without its final newline.
  std::string Query(const std::string& sql, const std::string& params = "") const;
  // Exec as the user "bulwark" (its password in a header).
  Reply ExecAsBulwark(const std::string& sql) const;

  // Sets the settings of user bulwark's profile (users.xml: `xml` is what
  // goes inside <profiles><bulwark>, e.g. "<max_rows_to_read>1000</max_rows_to_read>")
  // and waits until the server has reloaded users.xml (it polls the file):
  // until user bulwark sees `setting` = `value` in system.settings. False
  // after 60 s.
  bool SetBulwarkProfile(const std::string& xml, const std::string& setting, const std::string& value);

 private:
  ChServer() = default;

  std::string dir_;
  int port_ = 0, pid_ = 0, launcher_pid_ = 0, watcher_pid_ = 0;
  bool started_ = false, stopped_ = false;
};

}  // namespace bulwark::testing
