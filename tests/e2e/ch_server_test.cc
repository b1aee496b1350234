// The ClickHouse test server itself (scripts/ch-server, ch_server.h): the
// fixture the ClickHouse source's end-to-end tests (issue 7) stand on.
#include "ch_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
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
  std::string stat = ReadFileOr("/proc/" + std::to_string(pid) + "/stat", "");
  auto paren = stat.rfind(") ");
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
}

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

TEST(ChServer, StartsOnLoopbackAsClickhouseAndRunsSql) {
  START_CH(ch);
  EXPECT_TRUE(Alive(ch->pid()));
  EXPECT_TRUE(Listening(ch->port()));
  EXPECT_EQ(ch->Query("SELECT version()"), "18.16.1");
  // Its own data directory, owned by the user it runs as.
  EXPECT_EQ(ch->Query("SELECT data_path FROM system.databases WHERE name = 'default'"),
            ch->data_dir() + "/data/default/");
  if (geteuid() == 0) {
    passwd* pw = getpwnam("clickhouse");
    ASSERT_NE(pw, nullptr);
    struct stat st {};
    ASSERT_EQ(stat(("/proc/" + std::to_string(ch->pid())).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, pw->pw_uid);
  }
  // The native TCP port is on loopback too; nothing listens on the packaged defaults for us.
  const int tcp = std::atoi(ReadFileOr(ch->dir() + "/tcp-port", "0").c_str());
  EXPECT_GT(tcp, 0);
  EXPECT_TRUE(Listening(tcp));
  EXPECT_EQ(ch->Query("CREATE TABLE t (d Date, id UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id"), "");
  EXPECT_EQ(ch->Query("INSERT INTO t SELECT toDate('2024-01-01') + number % 60, number FROM numbers(1000)"), "");
  EXPECT_EQ(ch->Query("SELECT count(), uniqExact(partition_id) FROM system.parts WHERE table = 't' AND active"),
            "2\t2");
  EXPECT_EQ(ch->Query("SELECT count(), sum(id) FROM t"), "1000\t499500");
  // An error is a non-200 status with ClickHouse's exception text in the body.
  ChServer::Reply bad = ch->Exec("SELECT * FROM no_such_table");
  EXPECT_EQ(bad.status, 404);
  EXPECT_NE(bad.body.find("no_such_table"), std::string::npos) << bad.body;
}

TEST(ChServer, PasswordUserAuthenticatesByHeaders) {
  START_CH(ch);
  const std::string pw = ch->password();
  ASSERT_EQ(pw.size(), 32u);
  struct stat st {};
  ASSERT_EQ(stat(ch->password_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // curl's own argv carries the password here: a test of the server, not of bulwark.
  RunResult ok = testing::Run({"curl", "-sS", "-H", "X-ClickHouse-User: bulwark", "-H", "X-ClickHouse-Key: " + pw,
                      "--data-binary", "SELECT 42", ch->url() + "/"});
  EXPECT_EQ(ok.out, "42\n") << ok.err;
  RunResult wrong = testing::Run({"curl", "-sS", "-w", "%{http_code}", "-H", "X-ClickHouse-User: bulwark", "-H",
                         "X-ClickHouse-Key: wrong", "--data-binary", "SELECT 42", ch->url() + "/"});
  EXPECT_NE(wrong.out.find("Wrong password for user bulwark"), std::string::npos) << wrong.out;
  EXPECT_EQ(wrong.out.substr(wrong.out.size() - 3), "401");
}

TEST(ChServer, TwoServersAtOnceAreIndependent) {
  START_CH(a);
  START_CH(b);
  EXPECT_NE(a->port(), b->port());
  EXPECT_NE(a->pid(), b->pid());
  a->Query("CREATE TABLE only_in_a (x UInt8) ENGINE = Log");
  EXPECT_EQ(a->Query("EXISTS TABLE only_in_a"), "1");
  EXPECT_EQ(b->Query("EXISTS TABLE only_in_a"), "0");
  ASSERT_TRUE(a->Stop());
  EXPECT_FALSE(Alive(a->pid()));
  EXPECT_TRUE(Alive(b->pid()));
  EXPECT_EQ(b->Query("SELECT 1"), "1");
}

TEST(ChServer, StopReallyStops) {
  START_CH(ch);
  const int pid = ch->pid(), port = ch->port();
  ASSERT_EQ(ch->Query("SELECT 1"), "1");
  ASSERT_TRUE(ch->Stop());
  EXPECT_FALSE(Alive(pid));
  EXPECT_FALSE(Listening(port));
  EXPECT_FALSE(fs::exists(ch->dir() + "/pid"));
  EXPECT_EQ(ch->Exec("SELECT 1").status, 0);
}

TEST(ChServer, WatcherStopsTheServerWhenTheParentIsGone) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t parent = 0;
  char sleep_arg0[] = "sleep", sleep_arg1[] = "600";
  char* sleep_argv[] = {sleep_arg0, sleep_arg1, nullptr};
  ASSERT_EQ(posix_spawnp(&parent, "sleep", nullptr, nullptr, sleep_argv, environ), 0);
  char tmpl[] = "/tmp/bulwark-ch.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, script = std::string(BULWARK_SOURCE_DIR) + "/scripts/ch-server";
  RunResult r = testing::Run({script, "start", dir}, {"CH_SERVER_PARENT_PID=" + std::to_string(parent)});
  kill(parent, SIGKILL);
  while (waitpid(parent, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (r.exit_code == 3) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int pid = std::atoi(ReadFileOr(dir + "/pid", "0").c_str());
  const int port = std::atoi(ReadFileOr(dir + "/http-port", "0").c_str());
  const int launcher = std::atoi(ReadFileOr(dir + "/launcher-pid", "0").c_str());
  const int watcher = std::atoi(ReadFileOr(dir + "/watcher-pid", "0").c_str());
  ASSERT_GT(pid, 0);
  ASSERT_GT(watcher, 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(pid); }, 30)) << "clickhouse-server " << pid << " still running";
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
