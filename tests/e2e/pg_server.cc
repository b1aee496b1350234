#include "pg_server.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

std::string Script() { return std::string(BULWARK_SOURCE_DIR) + "/scripts/pg-server"; }

int ReadInt(const std::string& path) { return std::atoi(Trim(ReadFileOr(path, "0")).c_str()); }

// Waits for (reaps) `pid` if it is our child: the server's launcher and watcher
// outlive the script that starts them and are adopted by us (a subreaper).
// Otherwise ECHILD at once.
void Reap(int pid) {
  if (pid <= 0) return;
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string PgBin() { return "/usr/lib/postgresql/15/bin"; }

PgTempDir::PgTempDir() {
  char tmpl[] = "/tmp/bulwark-pg-test.XXXXXX";  // /tmp is traversable by postgres
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

PgTempDir::~PgTempDir() {
  if (std::getenv("BULWARK_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool PgTempDir::GiveToPostgres() const {
  passwd* pw = getpwnam("postgres");
  if (!pw) return false;
  bool ok = chown(path_.c_str(), pw->pw_uid, pw->pw_gid) == 0;
  for (auto& e : fs::recursive_directory_iterator(path_))
    ok = lchown(e.path().c_str(), pw->pw_uid, pw->pw_gid) == 0 && ok;
  return ok;
}

std::unique_ptr<PgServer> PgServer::Start(std::string* why, const PgServerOptions& options) {
  char tmpl[] = "/tmp/bulwark-pg.XXXXXX";  // /tmp is traversable by the postgres user
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  // The server outlives the script that starts it. Adopt its launcher (runuser) when that script
  // exits (rather than leave it to PID 1, which in some sandboxes never reaps), so that Stop can
  // reap it.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::unique_ptr<PgServer> s(new PgServer);
  s->dir_ = tmpl;
  std::vector<std::string> env{"PG_SERVER_PARENT_PID=" + std::to_string(getpid())};
  std::vector<std::string> argv{Script(), "start", s->dir_};
  if (options.archive) argv.push_back("--archive");
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--archive-command", options.archive_command},
                                    {"--base-backup", options.base_backup},
                                    {"--restore-command", options.restore_command},
                                    {"--recovery-end-command", options.recovery_end_command}})
    if (!value.empty()) argv.insert(argv.end(), {flag, value});
  RunResult r = Run(argv, env);
  if (r.exit_code == 3) {
    *why =
        "the PostgreSQL test server could not be installed (scripts/pg-server install needs root, apt-get and "
        "Debian's postgresql-15): " +
        Trim(r.err);
    if (InCi()) ADD_FAILURE() << *why << " [CI is set: failing instead of skipping]";
    return nullptr;
  }
  s->started_ = true;  // from here on the destructor stops (and reaps) whatever did start
  if (!s->Adopt(r, why)) return nullptr;
  return s;
}

bool PgServer::Stop() {
  if (!started_ || stopped_) return true;
  RunResult r = Run({Script(), "stop", dir_});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "scripts/pg-server stop " << dir_ << ": " << r.err;
    return false;
  }
  stopped_ = true;
  // The postmaster is gone (stop waits for that); its launcher (runuser) exits right after it,
  // and stop has ended the watcher. Reap both. (After a failed start, read their PIDs here.)
  Reap(launcher_pid_ > 0 ? launcher_pid_ : ReadInt(dir_ + "/launcher-pid"));
  Reap(watcher_pid_ > 0 ? watcher_pid_ : ReadInt(dir_ + "/watcher-pid"));
  return true;
}

PgServer::~PgServer() {
  Stop();
  if (!std::getenv("BULWARK_KEEP_TEST_DIRS")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PgServer::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string PgServer::socket_conninfo(const std::string& dbname) const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string PgServer::Log() const { return ReadFileOr(dir_ + "/server.log", ""); }

RunResult PgServer::Client(const std::string& program, const std::vector<std::string>& args,
                           const std::string& input) const {
  std::vector<std::string> argv{PgBin() + "/" + program, "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
                                "postgres"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {"PGCONNECT_TIMEOUT=10"}, input);
}

RunResult PgServer::Psql(const std::string& sql, const std::string& db) const {
  // The SQL goes on stdin: every statement's rows are printed (with -c, only the last
  // statement's before PostgreSQL 15).
  return Client("psql", {"-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"}, sql);
}

std::string PgServer::Query(const std::string& sql, const std::string& db) const {
  RunResult r = Psql(sql, db);
  EXPECT_EQ(r.exit_code, 0) << "psql -d " << db << " failed on: " << sql << "\n" << r.err;
  std::string out = r.out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool PgServer::CreateDatabase(const std::string& name) const {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  quoted += "\"";
  RunResult r = Psql("CREATE DATABASE " + quoted + ";");
  EXPECT_EQ(r.exit_code, 0) << "CREATE DATABASE " << quoted << ": " << r.err;
  return r.exit_code == 0;
}

RunResult PgServer::PgbenchInit(const std::string& db, int scale) const {
  return Client("pgbench", {"-i", "-s", std::to_string(scale), "-q", db});
}

// The server scripts/pg-server started (or failed to start) in dir_: its pid,
// port, launcher and watcher. False, with *why and a test failure, if it did not.
bool PgServer::Adopt(const RunResult& r, std::string* why) {
  if (r.exit_code != 0) {
    *why = "scripts/pg-server start failed (exit " + std::to_string(r.exit_code) + "): " + r.err + "\nlog:\n" +
           ReadFileOr(dir_ + "/server.log", "(none)");
    ADD_FAILURE() << *why;
    return false;
  }
  pid_ = ReadInt(dir_ + "/pid");
  port_ = ReadInt(dir_ + "/port");
  launcher_pid_ = ReadInt(dir_ + "/launcher-pid");
  watcher_pid_ = ReadInt(dir_ + "/watcher-pid");
  host_ = Trim(ReadFileOr(dir_ + "/host", ""));
  if (pid_ <= 0 || port_ <= 0 || host_.empty() || Trim(r.out) != conninfo()) {
    *why = "scripts/pg-server start left an incomplete " + dir_ + " (stdout: " + r.out + ")";
    ADD_FAILURE() << *why;
    return false;
  }
  return true;
}

std::unique_ptr<PgServer> PgServer::StartExisting(const std::string& dir, std::string* why) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // as in Start
  std::unique_ptr<PgServer> s(new PgServer);
  s->dir_ = dir;
  RunResult r = Run({Script(), "start-existing", dir}, {"PG_SERVER_PARENT_PID=" + std::to_string(getpid())});
  s->started_ = true;
  if (!s->Adopt(r, why)) return nullptr;
  return s;
}

}  // namespace bulwark::testing
