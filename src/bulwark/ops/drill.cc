#include "bulwark/ops/drill.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "bulwark/base/error.h"
#include "bulwark/base/subprocess.h"
#include "bulwark/base/sys.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/ops/restore.h"
#include "bulwark/source/postgres/backup.h"
#include "bulwark/source/postgres/libpq.h"
#include "bulwark/source/postgres/logical.h"
#include "bulwark/source/postgres/pitr.h"

namespace bulwark::ops {

namespace pg = source::postgres;
namespace fs = std::filesystem;
using repo::DrillCheck;
using repo::DrillRecord;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

// At most `n` characters of `s` (error texts in checks stay short).
std::string Clip(const std::string& s, size_t n = 300) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

DrillCheck Equal(const std::string& name, uint64_t expected, uint64_t actual) {
  return {name, std::to_string(expected), std::to_string(actual), expected == actual};
}

std::string TempParent(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

// A new, empty directory of the drill's own below `parent` (mkdtemp).
std::string MakeScratchDir(const std::string& parent) {
  std::string tmpl = parent + "/bulwark-drill-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw ErrnoError("creating the drill's scratch directory in", parent);
  return tmpl;
}

// Removes a tree this drill created, making read-only directories writable
// first (a restored tree keeps the snapshot's modes).
void RemoveScratch(const std::string& dir, std::string* error) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  ::chmod(dir.c_str(), 0700);
  fs::remove_all(dir, ec);
  if (ec && error && error->empty()) *error = "cleanup: removing " + dir + ": " + ec.message();
}

// True when `path` is `base` or below it (both absolute, lexically normal).
bool AtOrBelow(const std::string& path, const std::string& base) {
  const std::string p = fs::path(path).lexically_normal().string(), b = fs::path(base).lexically_normal().string();
  if (b == "/") return true;
  return p == b || (p.size() > b.size() && p.compare(0, b.size(), b) == 0 && p[b.size()] == '/');
}

// host and port of a conninfo (libpq's defaults: PGHOST/PGPORT, the local
// socket, 5432), for the "same server" safety check.
std::pair<std::string, std::string> ServerOf(const std::string& conninfo) {
  std::string host = pg::ConninfoValue(conninfo, "host").value_or(pg::ConninfoValue(conninfo, "hostaddr").value_or(""));
  std::string port = pg::ConninfoValue(conninfo, "port").value_or("");
  auto env = [](const char* n) { return std::string(std::getenv(n) ? std::getenv(n) : ""); };
  if (host.empty()) host = env("PGHOST");
  if (port.empty()) port = env("PGPORT");
  if (port.empty()) port = "5432";
  if (host.empty() || host[0] == '/' || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0)
    host = "local";  // every local spelling is the same machine
  return {host, port};
}

std::optional<std::string> SystemIdentifier(pg::Connection& conn) {
  try {
    return conn.Value("SELECT system_identifier::text FROM pg_control_system()");
  } catch (const Error&) {
    return std::nullopt;  // not readable by this role
  }
}

void CheckSnapshotKind(const repo::Snapshot& snap, const config::SourceConfig& src) {
  const std::string sid = snap.id.Short();
  if (snap.source != src.name)
    throw Error(ErrorCode::kInvalidArgument,
                "snapshot " + sid + " is of source '" + snap.source + "', not '" + src.name + "'");
  bool ok = false;
  switch (src.kind) {
    case config::SourceKind::kFs:
      ok = snap.kind == "fs";
      break;
    case config::SourceKind::kCommand:
      ok = snap.kind == "command" || snap.kind == "stdin";
      break;
    case config::SourceKind::kPostgres:
      ok = src.pg_mode == config::PgMode::kPhysical
               ? pg::IsPhysicalSnapshot(snap)
               : snap.kind == "postgres" &&
                     snap.facts.value("postgres", nlohmann::json::object()).value("mode", "") == "logical";
      break;
    case config::SourceKind::kClickHouse:
      throw Error(ErrorCode::kUnsupported, "restore drills are not available for clickhouse sources yet");
  }
  if (!ok)
    throw Error(ErrorCode::kInvalidArgument, "snapshot " + sid + " (kind '" + snap.kind +
                                                 "') is not a backup of the kind source '" + src.name + "' makes now");
}

class Drill {
 public:
  Drill(repo::Repository& repo, const repo::Snapshot& snap, const config::SourceConfig& src, const DrillOptions& o)
      : repo_(repo), snap_(snap), src_(src), cfg_(src.drill.value_or(config::DrillConfig{})), opts_(o) {}

  DrillOutcome Run() {
    CheckSnapshotKind(snap_, src_);
    DrillOutcome out;
    DrillRecord& r = out.record;
    r.time_ns = repo::NowNs();
    r.host = sys::Hostname();
    r.username = sys::Username();
    r.source = src_.name;
    r.source_kind = std::string(config::SourceKindName(src_.kind));
    r.snapshot = snap_.id;
    r.snapshot_time_ns = snap_.time_ns;
    r.rto_budget_seconds = cfg_.rto_seconds;
    r.kept = opts_.keep;
    r.program_version = BULWARK_VERSION;
    const bool physical = src_.kind == config::SourceKind::kPostgres && src_.pg_mode == config::PgMode::kPhysical;
    const bool logical = src_.kind == config::SourceKind::kPostgres && !physical;
    // Safety checks and the plan: nothing created yet.
    if (logical)
      PlanLogical(&r);
    else if (physical)
      PlanPhysical(&r);
    else
      PlanFiles(&r);
    if (opts_.dry_run) {
      out.plan = "would restore snapshot " + snap_.id.Short() + " of '" + src_.name + "' into " + r.target_kind + " " +
                 r.target + " and validate it" +
                 (cfg_.rto_seconds ? " within " + std::to_string(cfg_.rto_seconds) + " s" : "");
      return out;
    }

    const Clock::time_point t0 = Clock::now();
    Clock::time_point restored = t0;
    try {
      if (logical)
        RunLogical(&r, t0, &restored);
      else if (physical)
        RunPhysical(&r, t0, &restored);
      else
        RunFiles(&r, t0, &restored);
    } catch (const Error& e) {
      r.error = e.what();
    }
    r.total_seconds = Since(t0);
    if (restored == t0) r.restore_seconds = r.total_seconds;  // it broke off while restoring
    r.validate_seconds = std::max(0.0, r.total_seconds - r.restore_seconds);
    Cleanup(&r);
    JudgeDrill(&r);
    Step(std::string("storing the drill record (") + (r.passed ? "passed" : "failed") + ")");
    repo::SaveDrillRecord(repo_, r);
    return out;
  }

 private:
  void Step(const std::string& s) const {
    if (opts_.on_step) opts_.on_step(s);
  }

  // ---- fs, command

  void PlanFiles(DrillRecord* r) {
    const std::string parent = TempParent(cfg_.dir);
    struct stat st;
    if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw Error(ErrorCode::kInvalidArgument, "drill directory " + parent + " does not exist or is not a directory");
    const std::string abs = fs::absolute(parent).lexically_normal().string();
    for (const auto& p : src_.paths)
      if (AtOrBelow(abs, p))
        throw Error(ErrorCode::kInvalidArgument, "drill directory " + abs + " is inside the source's path " + p +
                                                     ": a restore there would be backed up next time; choose "
                                                     "another target dir");
    r->target_kind = "directory";
    r->target = abs + "/bulwark-drill-XXXXXX";
    parent_ = abs;
  }

  void RunFiles(DrillRecord* r, Clock::time_point t0, Clock::time_point* restored) {
    scratch_dir_ = MakeScratchDir(parent_);
    r->target = scratch_dir_;
    Step("restoring snapshot " + snap_.id.Short() + " into " + scratch_dir_);
    RestoreOptions ro;
    ro.target = scratch_dir_;  // new and empty: Restore refuses anything else
    ro.threads = opts_.threads;
    RestoreResult rr = Restore(repo_, snap_, ro);
    *restored = Clock::now();
    r->restore_seconds = std::chrono::duration<double>(*restored - t0).count();
    r->checks.push_back({"restore errors", "0",
                         std::to_string(rr.errors.size()) + (rr.errors.empty() ? "" : ": " + Clip(rr.errors[0])),
                         rr.errors.empty()});
    Step("re-reading every restored file against its blob ids");
    VerifyResult v = VerifyRestore(repo_, snap_, scratch_dir_);
    const auto& s = snap_.summary;
    const uint64_t files = s.files_new + s.files_changed + s.files_unmodified;
    r->checks.push_back({"blob ids", "every file matches",
                         v.errors.empty() ? "every file matches"
                                          : std::to_string(v.errors.size()) + " mismatches: " + Clip(v.errors[0]),
                         v.errors.empty()});
    r->checks.push_back(Equal("files", files, v.files));
    r->checks.push_back(Equal("bytes", s.bytes_processed, v.bytes));
  }

  // ---- postgres logical

  void PlanLogical(DrillRecord* r) {
    if (cfg_.conninfo.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "source '" + src_.name + "' has no drill scratch server: set drill: {target: {conninfo: ...}}");
    if (!cfg_.allow_same_server && ServerOf(cfg_.conninfo) == ServerOf(src_.conninfo))
      throw Error(ErrorCode::kInvalidArgument,
                  "the drill's scratch server is the source's own server (" + ServerOf(src_.conninfo).first + ":" +
                      ServerOf(src_.conninfo).second + "): use another server, or set allow_same_server: true");
    scratch_ = pg::Connection::Open(cfg_.conninfo, "bulwark drill");
    const auto& pf = snap_.facts.value("postgres", nlohmann::json::object());
    const std::string backup_sysid = pf.value("system_identifier", "");
    if (!cfg_.allow_same_server && !backup_sysid.empty() && SystemIdentifier(*scratch_) == backup_sysid)
      throw Error(ErrorCode::kInvalidArgument, "the drill's scratch server " + scratch_->where() +
                                                   " is the cluster the backup was taken from "
                                                   "(same system identifier " +
                                                   backup_sysid +
                                                   "): use another server, or set allow_same_server: true");
    database_ = "bulwark_drill_" + ToHex(crypto::RandomBytes(8));
    r->target_kind = "database";
    r->target = database_ + " on " + scratch_->where();
  }

  void RunLogical(DrillRecord* r, Clock::time_point t0, Clock::time_point* restored) {
    Step("creating database '" + database_ + "' on " + scratch_->where());
    scratch_->Query("CREATE DATABASE " + scratch_->QuoteIdent(database_) + " TEMPLATE template0");
    created_database_ = true;  // from here on, and only now, it is ours to drop
    pg::RestoreDumpOptions ro;
    ro.target_conninfo = cfg_.conninfo;
    ro.dbname = database_;
    ro.clean = true;    // the database exists (we just made it); it is empty
    ro.verify = false;  // compared below, table by table, into the record
    ro.pg_bin_dir = src_.pg_bin_dir;
    ro.on_step = opts_.on_step;
    pg::RestoreDump(repo_, snap_, ro);
    *restored = Clock::now();
    r->restore_seconds = std::chrono::duration<double>(*restored - t0).count();

    Step("validating database '" + database_ + "'");
    auto db = pg::Connection::Open(pg::WithDatabase(cfg_.conninfo, database_), "bulwark drill");
    for (const auto& c : pg::CompareTableCounts(pg::FactTableCounts(snap_), pg::TableRowCounts(*db), {}))
      r->checks.push_back({"rows " + c.table, std::to_string(c.backup_rows),
                           c.restored_rows ? std::to_string(*c.restored_rows) : "missing", c.ok()});
    const auto& pf = snap_.facts["postgres"];
    if (pf.contains("schema_version") && !src_.schema_version_query.empty()) {
      DrillCheck c{
          "schema_version",
          pf["schema_version"].is_string() ? pf["schema_version"].get<std::string>() : pf["schema_version"].dump(), "",
          false};
      try {
        c.actual = db->Value(src_.schema_version_query);
      } catch (const Error& e) {
        c.actual = "error: " + Clip(e.what());
      }
      c.passed = c.actual == c.expected;
      r->checks.push_back(std::move(c));
    }
    UserChecks(*db, r);
  }

  void UserChecks(pg::Connection& db, DrillRecord* r) {
    for (const auto& uc : cfg_.checks) {
      try {
        auto rows = db.Query(uc.sql);
        if (rows.size() != 1 || rows[0].size() != 1) {
          r->checks.push_back(EvaluateUserCheck(uc, std::nullopt));
          r->checks.back().actual = std::to_string(rows.size()) + " rows (want one row with one value)";
        } else {
          r->checks.push_back(EvaluateUserCheck(uc, rows[0][0]));
        }
      } catch (const Error& e) {
        DrillCheck c = EvaluateUserCheck(uc, std::nullopt);
        c.actual = "error: " + Clip(e.what());
        r->checks.push_back(std::move(c));
      }
    }
  }

  // ---- postgres physical

  void PlanPhysical(DrillRecord* r) {
    if (opts_.restore_command.empty())
      throw Error(ErrorCode::kInvalidArgument, "a physical drill needs a restore_command (DrillOptions)");
    const std::string parent = TempParent(cfg_.dir);
    parent_ = fs::absolute(parent).lexically_normal().string();
    port_ = cfg_.port ? cfg_.port : FreePort();
    r->target_kind = "cluster";
    r->target = "127.0.0.1:" + std::to_string(port_) + " " + parent_ + "/bulwark-drill-XXXXXX/data";
  }

  static int FreePort() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) throw ErrnoError("socket", "");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      int e = errno;
      ::close(s);
      throw ErrnoError("finding a free port", "127.0.0.1", e);
    }
    ::close(s);
    return ntohs(a.sin_port);
  }

  // The state letter of /proc/PID/stat ('Z' for a child that exited and
  // awaits its wait), or 0 when there is no such process.
  static char ProcState(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return 0;
    size_t p = line.rfind(')');
    return p != std::string::npos && p + 2 < line.size() ? line[p + 2] : 0;
  }

  void RunPhysical(DrillRecord* r, Clock::time_point t0, Clock::time_point* restored) {
    scratch_dir_ = MakeScratchDir(parent_);
    ::chmod(scratch_dir_.c_str(), 0755);  // the server's user must reach data/ and sock/
    const std::string data = scratch_dir_ + "/data";
    r->target = "127.0.0.1:" + std::to_string(port_) + " " + data;
    Step("restoring base backup " + snap_.id.Short() + " into " + data);
    pg::PitrOptions po;
    po.target_dir = data;
    po.recovery.restore_command = opts_.restore_command;
    po.recovery.action = "promote";
    po.pg_bin_dir = cfg_.pg_bin_dir;
    po.threads = opts_.threads;
    pg::PitrResult pr = pg::RestoreBaseBackup(repo_, snap_, po);
    if (!pr.errors.empty())
      throw Error(ErrorCode::kCorrupt, std::to_string(pr.errors.size()) +
                                           " files of the base backup could not be "
                                           "restored intact: " +
                                           Clip(pr.errors[0]));
    r->checks.push_back({"pg_verifybackup", "passed", pr.verified ? "passed" : "not run", pr.verified});

    struct stat st;
    if (::stat(data.c_str(), &st) != 0) throw ErrnoError("stat", data);
    const std::string sock = scratch_dir_ + "/sock";
    if (::mkdir(sock.c_str(), 0700) != 0) throw ErrnoError("mkdir", sock);
    if (geteuid() == 0 && ::chown(sock.c_str(), st.st_uid, st.st_gid) != 0) throw ErrnoError("chown", sock);
    const auto& pf = snap_.facts["postgres"];
    int major = static_cast<int>(pf.value("server_version_num", 150000) / 10000);
    std::vector<std::string> argv;
    if (geteuid() == 0)  // PostgreSQL refuses root; setpriv execs, so the child's PID is the postmaster's
      argv = {"setpriv", "--reuid=" + std::to_string(st.st_uid), "--regid=" + std::to_string(st.st_gid),
              "--clear-groups"};
    for (const std::string& a :
         {pg::ProgramPath(cfg_.pg_bin_dir, major, "postgres"), std::string("-D"), data, std::string("-c"),
          "port=" + std::to_string(port_), std::string("-c"), std::string("listen_addresses=127.0.0.1"),
          std::string("-c"), "unix_socket_directories=" + sock, std::string("-c"), std::string("archive_mode=off")})
      argv.push_back(a);
    Step("starting the restored cluster on 127.0.0.1:" + std::to_string(port_) + " and waiting for recovery");
    SpawnOptions so;
    so.cwd = data;
    server_ = std::make_unique<Subprocess>(argv, so);

    // Connect as the source's role, to the source's database, on the copy.
    std::vector<std::pair<std::string, std::string>> settings{
        {"host", "127.0.0.1"},
        {"port", std::to_string(port_)},
        {"connect_timeout", "5"},
        {"dbname", pg::ConninfoValue(src_.conninfo, "dbname").value_or("postgres")}};
    if (auto user = pg::ConninfoValue(src_.conninfo, "user")) settings.emplace_back("user", *user);
    const std::string conninfo = pg::WithSettings("", settings);
    const int64_t limit = opts_.recovery_timeout_seconds ? opts_.recovery_timeout_seconds
                          : cfg_.rto_seconds             ? cfg_.rto_seconds
                                                         : 3600;
    std::unique_ptr<pg::Connection> conn;
    std::string last;
    for (;;) {
      const char state = ProcState(server_->pid());
      if (state == 0 || state == 'Z')
        throw Error(ErrorCode::kSourceFailed,
                    "the restored cluster exited during recovery: " + Clip(server_->StderrTail(), 2000));
      if (Since(t0) > static_cast<double>(limit))
        throw Error(ErrorCode::kSourceFailed, "the restored cluster did not finish recovery within " +
                                                  std::to_string(limit) + " s (last: " + Clip(last) + ")");
      try {
        if (!conn) conn = pg::Connection::Open(conninfo, "bulwark drill");
        if (conn->Value("SELECT pg_is_in_recovery()::text") == "false") break;
        last = "in recovery";
      } catch (const Error& e) {
        conn.reset();
        last = e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling interval, not a wait for a guess
    }
    *restored = Clock::now();
    r->restore_seconds = std::chrono::duration<double>(*restored - t0).count();
    r->checks.push_back({"recovery", "ended (promoted)", "ended (promoted)", true});
    const std::string want = pf.value("system_identifier", "");
    if (!want.empty()) {
      auto got = SystemIdentifier(*conn);
      r->checks.push_back({"system_identifier", want, got.value_or("unreadable"), got == want});
    }
    UserChecks(*conn, r);
  }

  void StopServer(DrillRecord* r) {
    if (!server_) return;
    const pid_t pid = server_->pid();
    if (ProcState(pid) != 0 && ProcState(pid) != 'Z') ::kill(pid, SIGINT);  // fast shutdown
    const int status = server_->Wait();
    if (!Subprocess::Succeeded(status) && r->error.empty() && ProcState(pid) == 0)
      Step("the restored cluster " + Subprocess::Describe(status));
    server_.reset();
  }

  // ---- cleanup (not part of the RTO)

  void Cleanup(DrillRecord* r) {
    std::string err;
    StopServer(r);
    if (created_database_ && !opts_.keep) {
      Step("dropping database '" + database_ + "'");
      try {
        scratch_->Query("DROP DATABASE " + scratch_->QuoteIdent(database_) + " WITH (FORCE)");
      } catch (const Error& e) {
        err = std::string("cleanup: ") + e.what();
      }
    }
    if (!scratch_dir_.empty() && !opts_.keep) {
      Step("removing " + scratch_dir_);
      RemoveScratch(scratch_dir_, &err);
    }
    if (!err.empty() && r->error.empty()) r->error = err;
  }

  repo::Repository& repo_;
  const repo::Snapshot& snap_;
  const config::SourceConfig& src_;
  const config::DrillConfig cfg_;
  const DrillOptions& opts_;
  std::string parent_, scratch_dir_, database_;
  bool created_database_ = false;
  int port_ = 0;
  std::unique_ptr<pg::Connection> scratch_;
  std::unique_ptr<Subprocess> server_;
};

}  // namespace

void JudgeDrill(DrillRecord* r) {
  if (r->rto_budget_seconds > 0)
    r->checks.push_back({"rto", "<= " + std::to_string(r->rto_budget_seconds) + " s", Seconds(r->total_seconds),
                         r->total_seconds <= static_cast<double>(r->rto_budget_seconds)});
  r->passed = r->error.empty();
  for (const auto& c : r->checks) r->passed = r->passed && c.passed;
}

DrillCheck EvaluateUserCheck(const config::DrillCheckConfig& check, const std::optional<std::string>& value) {
  DrillCheck c;
  c.name = "sql: " + check.sql;
  if (check.expect)
    c.expected = std::to_string(*check.expect);
  else
    c.expected = (check.min ? std::to_string(*check.min) : std::string()) + ".." +
                 (check.max ? std::to_string(*check.max) : std::string());
  if (!value) {
    c.actual = "NULL";
    return c;
  }
  c.actual = *value;
  int64_t v = 0;
  const char* end = value->data() + value->size();
  auto [ptr, ec] = std::from_chars(value->data(), end, v);
  if (value->empty() || ec != std::errc() || ptr != end) {
    c.actual += " (not an integer)";
    return c;
  }
  c.passed = check.expect ? v == *check.expect : (!check.min || v >= *check.min) && (!check.max || v <= *check.max);
  return c;
}

DrillOutcome RunDrill(repo::Repository& repo, const repo::Snapshot& snapshot, const config::SourceConfig& source,
                      const DrillOptions& options) {
  return Drill(repo, snapshot, source, options).Run();
}

}  // namespace bulwark::ops
