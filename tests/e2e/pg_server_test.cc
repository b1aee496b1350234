// The PostgreSQL test server itself (scripts/pg-server, pg_server.h): the
// fixture the PostgreSQL source's end-to-end tests (issue 5) stand on.
#include "pg_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "harness.h"

extern char** environ;

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

bool Alive(int pid) {
  // Not a zombie: /proc/PID/stat's state after the command name.
  std::string stat = ReadFileOr("/proc/" + std::to_string(pid) + "/stat", "");
  auto paren = stat.rfind(") ");
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
}

// Does anything accept a TCP connection on 127.0.0.1:port?
bool Listening(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

TEST(PgServer, StartsAsPostgresOnLoopbackAndRunsSql) {
  START_PG(pg);
  EXPECT_GT(pg->port(), 0);
  EXPECT_TRUE(Alive(pg->pid()));
  EXPECT_EQ(pg->conninfo(), "host=127.0.0.1 port=" + std::to_string(pg->port()) + " user=postgres dbname=postgres");
  EXPECT_EQ(pg->host(), pg->dir() + "/sock");
  EXPECT_TRUE(fs::exists(pg->host() + "/.s.PGSQL." + std::to_string(pg->port())));

  // The server's processes and data directory belong to the postgres user.
  passwd* pw = getpwnam("postgres");
  ASSERT_NE(pw, nullptr);
  struct stat st {};
  ASSERT_EQ(stat(pg->data_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, pw->pw_uid);
  ASSERT_EQ(stat(("/proc/" + std::to_string(pg->pid())).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, pw->pw_uid);

  EXPECT_EQ(pg->Query("SELECT current_setting('server_version_num')::int / 10000"), "15");
  EXPECT_EQ(pg->Query("SELECT current_user, inet_server_addr(), inet_server_port()"),
            "postgres|127.0.0.1|" + std::to_string(pg->port()));
  EXPECT_EQ(pg->Query("SHOW wal_level; SHOW fsync; SHOW unix_socket_directories; SHOW listen_addresses; "
                      "SHOW server_encoding; SHOW lc_collate; SHOW archive_mode"),
            "replica\noff\n" + pg->host() + "\n127.0.0.1\nUTF8\nC.UTF-8\noff");
  EXPECT_EQ(pg->Query("CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, 'row ' || g FROM "
                      "generate_series(1, 1000) g; SELECT count(*), max(s) FROM t"),
            "1000|row 999");

  // The socket connection string works as well (libpq through psql).
  RunResult r = testing::Run({PgBin() + "/psql", "-X", "-A", "-t", "-c", "SELECT inet_server_addr() IS NULL",
                     pg->socket_conninfo()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "t\n");

  // An SQL error is an exit code, and the message is on stderr.
  r = pg->Psql("SELECT * FROM no_such_table");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no_such_table"), std::string::npos) << r.err;
}

TEST(PgServer, PgbenchDataInANewDatabase) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("bench"));
  RunResult r = pg->PgbenchInit("bench", 1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_accounts", "bench"), "100000");
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_branches", "bench"), "1");
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_tellers", "bench"), "10");
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_history", "bench"), "0");
  // The tables are in "bench" only.
  EXPECT_EQ(pg->Query("SELECT to_regclass('pgbench_accounts') IS NULL"), "t");
  // A short pgbench run against it works too.
  r = pg->Client("pgbench", {"-t", "20", "-n", "bench"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_history", "bench"), "20");
}

TEST(PgServer, TwoServersAtOnceAreIndependent) {
  START_PG(a);
  START_PG(b);
  EXPECT_NE(a->port(), b->port());
  EXPECT_NE(a->pid(), b->pid());
  EXPECT_NE(a->dir(), b->dir());
  EXPECT_NE(a->Query("SELECT system_identifier FROM pg_control_system()"),
            b->Query("SELECT system_identifier FROM pg_control_system()"));
  a->Query("CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (1), (2)");
  b->Query("CREATE TABLE only_in_b (x int)");
  EXPECT_EQ(a->Query("SELECT to_regclass('only_in_a') IS NOT NULL, to_regclass('only_in_b') IS NULL"), "t|t");
  EXPECT_EQ(b->Query("SELECT to_regclass('only_in_b') IS NOT NULL, to_regclass('only_in_a') IS NULL"), "t|t");
  // Stopping one leaves the other running.
  ASSERT_TRUE(a->Stop());
  EXPECT_FALSE(Alive(a->pid()));
  EXPECT_TRUE(Alive(b->pid()));
  EXPECT_EQ(b->Query("SELECT count(*) FROM only_in_b"), "0");
}

TEST(PgServer, StopReallyStops) {
  START_PG(pg);
  const int pid = pg->pid(), port = pg->port();
  ASSERT_TRUE(Listening(port));
  ASSERT_EQ(pg->Query("SELECT 1"), "1");
  ASSERT_TRUE(pg->Stop());
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(kill(pid, 0) == 0 ? 0 : errno, ESRCH) << "postmaster " << pid << " still exists";
  EXPECT_FALSE(Listening(port)) << "something still listens on 127.0.0.1:" << port;
  EXPECT_FALSE(fs::exists(pg->host() + "/.s.PGSQL." + std::to_string(port)));
  EXPECT_FALSE(fs::exists(pg->data_dir() + "/postmaster.pid"));
  EXPECT_FALSE(fs::exists(pg->dir() + "/pid"));
  // pg_isready: 2 = no response.
  RunResult r = pg->Client("pg_isready", {});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(pg->Log().find("database system is shut down"), std::string::npos) << pg->Log();
  // No process of this cluster is left (backends, checkpointer, ...: all children of the postmaster).
  r = testing::Run({"pgrep", "-P", std::to_string(pid)});
  EXPECT_EQ(r.exit_code, 1) << r.out;
}

TEST(PgServer, ArchiveModeCopiesSwitchedSegments) {
  START_PG(pg, PgServerOptions{.archive = true});
  EXPECT_EQ(pg->Query("SHOW archive_mode"), "on");
  ASSERT_TRUE(fs::is_directory(pg->archive_dir()));
  pg->Query("CREATE TABLE w (x int); INSERT INTO w SELECT generate_series(1, 10000)");
  const std::string segment = pg->Query("SELECT pg_walfile_name(pg_switch_wal())");
  ASSERT_EQ(segment.size(), 24u) << segment;
  const std::string archived = pg->archive_dir() + "/" + segment;
  ASSERT_TRUE(WaitFor([&] { return fs::exists(archived); }, 60))
      << segment << " not archived within 60 s; log:\n"
      << pg->Log();
  // cp writes in place: the size is whole once the archiver reports it done.
  ASSERT_TRUE(WaitFor([&] { return pg->Query("SELECT last_archived_wal FROM pg_stat_archiver") >= segment; }, 60));
  EXPECT_EQ(fs::file_size(archived), 16u * 1024 * 1024);
  EXPECT_EQ(pg->Query("SELECT failed_count FROM pg_stat_archiver"), "0");
}

TEST(PgServer, WatcherStopsTheServerWhenTheParentIsGone) {
  // With PG_SERVER_PARENT_PID, the server goes once that process is gone: here a `sleep` we kill.
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // adopt the launcher and the watcher, to reap them
  pid_t parent = 0;
  char sleep_arg0[] = "sleep", sleep_arg1[] = "600";
  char* sleep_argv[] = {sleep_arg0, sleep_arg1, nullptr};
  ASSERT_EQ(posix_spawnp(&parent, "sleep", nullptr, nullptr, sleep_argv, environ), 0);
  char tmpl[] = "/tmp/bulwark-pg.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, script = std::string(BULWARK_SOURCE_DIR) + "/scripts/pg-server";
  RunResult r = testing::Run({script, "start", dir}, {"PG_SERVER_PARENT_PID=" + std::to_string(parent)});
  kill(parent, SIGKILL);
  while (waitpid(parent, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (r.exit_code == 3) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int pid = std::atoi(ReadFileOr(dir + "/pid", "0").c_str());
  const int port = std::atoi(ReadFileOr(dir + "/port", "0").c_str());
  const int launcher = std::atoi(ReadFileOr(dir + "/launcher-pid", "0").c_str());
  const int watcher = std::atoi(ReadFileOr(dir + "/watcher-pid", "0").c_str());
  ASSERT_GT(pid, 0);
  ASSERT_GT(watcher, 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(pid); }, 30)) << "postmaster " << pid << " still running";
  if (Alive(pid)) testing::Run({script, "stop", dir});
  EXPECT_FALSE(Listening(port));
  for (int child : {launcher, watcher}) {
    while (child > 0 && waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  EXPECT_FALSE(Alive(watcher));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace bulwark::testing
