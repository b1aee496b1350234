// bulwark pg ...: PostgreSQL restores and information (docs/POSTGRES.md).
#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/forget.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/source/postgres/archive.h"
#include "bulwark/source/postgres/logical.h"

namespace bulwark::cli {

namespace {

// The server to restore into: --target, else the conninfo of the snapshot's
// configured source.
std::string TargetConninfo(const std::string& flag, const std::string& source_name) {
  if (!flag.empty()) return flag;
  if (ConfiguredSource(source_name).empty())
    throw Error(ErrorCode::kInvalidArgument,
                "no server to restore into: give --target CONNINFO (or a configuration with the snapshot's source '" +
                    source_name + "')");
  const auto& src = Config()->Source(source_name);
  if (src.kind != config::SourceKind::kPostgres)
    throw Error(ErrorCode::kInvalidArgument, "source '" + source_name + "' is not a postgres source");
  return src.conninfo;
}

void AddRestoreDump(CLI::App* pg) {
  struct Opts {
    std::string snapshot = "latest", target, dbname, temp_dir;
    std::vector<std::string> tables;
    bool clean = false, no_owner = false, globals = false, no_analyze = false, no_verify = false, dry_run = false;
    int jobs = 1;
    SnapshotFilterFlags filter;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = pg->add_subcommand("restore-dump", "restore a logical backup (pg_dump) into a new database");
  cmd->add_option("snapshot", o->snapshot, "snapshot id, id prefix, or 'latest' (default; with --source)");
  cmd->add_option("--dbname", o->dbname, "database to create and restore into")->required();
  cmd->add_option("--target", o->target,
                  "connection string of the server to restore into, without a password (default: the source's "
                  "conninfo); its dbname is where CREATE DATABASE runs");
  cmd->add_flag("--clean", o->clean, "restore into an existing database, dropping and recreating its objects");
  cmd->add_option("--table", o->tables, "restore only this table (table or schema.table; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-j,--jobs", o->jobs, "parallel pg_restore jobs (> 1 writes a temporary copy of the dump)");
  cmd->add_option("--temp-dir", o->temp_dir, "directory for that temporary copy (default: $TMPDIR or /tmp)");
  cmd->add_flag("--no-owner", o->no_owner, "do not set object owners (pg_restore --no-owner)");
  cmd->add_flag("--globals", o->globals, "also create the backed-up roles and tablespaces (globals.sql)");
  cmd->add_flag("--no-analyze", o->no_analyze, "skip ANALYZE after the restore");
  cmd->add_flag("--no-verify", o->no_verify, "skip the row-count comparison with the backup's facts");
  cmd->add_flag("-n,--dry-run", o->dry_run, "show what would be done; create and restore nothing");
  AddFilterFlags(cmd, &o->filter);
  cmd->callback([o] {
    auto repo = OpenRepository(false, ConfiguredSource(o->filter.source));
    auto lock = LockForReading(repo.get());
    repo->LoadIndex();
    repo::Snapshot snap = repo->ResolveSnapshot(o->snapshot, o->filter.Filter());
    source::postgres::RestoreDumpOptions ro;
    ro.target_conninfo = TargetConninfo(o->target, o->filter.source.empty() ? snap.source : o->filter.source);
    ro.dbname = o->dbname;
    ro.clean = o->clean;
    ro.tables = o->tables;
    ro.jobs = o->jobs;
    ro.temp_dir = o->temp_dir;
    ro.no_owner = o->no_owner;
    ro.globals = o->globals;
    ro.analyze = !o->no_analyze;
    ro.verify = !o->no_verify;
    ro.dry_run = o->dry_run;
    if (!ConfiguredSource(snap.source).empty()) ro.pg_bin_dir = Config()->Source(snap.source).pg_bin_dir;
    ro.on_step = [](const std::string& s) {
      if (G().json)
        PrintJson({{"message_type", "status"}, {"step", s}});
      else
        Say(s);
    };
    auto r = source::postgres::RestoreDump(*repo, snap, ro);
    if (G().json) {
      PrintJson({{"message_type", "summary"},
                 {"snapshot_id", snap.id.Hex()},
                 {"database", r.database},
                 {"created", r.created},
                 {"dry_run", o->dry_run},
                 {"pg_restore", r.pg_restore_argv},
                 {"dump_bytes", r.dump_bytes},
                 {"tables_verified", r.verified},
                 {"duration_seconds", r.seconds}});
    } else if (o->dry_run) {
      std::string cmdline;
      for (const auto& a : r.pg_restore_argv) cmdline += (cmdline.empty() ? "" : " ") + a;
      Say("would run: " + cmdline);
    } else {
      Say("restored snapshot " + snap.id.Short() + " into database '" + r.database + "': " +
          HumanBytes(r.dump_bytes) + " of dump in " + FormatDuration(r.seconds));
      if (!r.verified.empty())
        Say("  row counts of " + std::to_string(r.verified.size()) + " tables match the backup's facts");
    }
  });
}

std::string TimeOr(const std::optional<int64_t>& ns, const std::string& none) {
  return ns ? repo::FormatTime(*ns) : none;
}

nlohmann::json RunsJson(const source::postgres::TimelineCoverage& c) {
  using source::postgres::SegmentFileName;
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : c.runs)
    runs.push_back({{"first", SegmentFileName(c.timeline, r.first)}, {"last", SegmentFileName(c.timeline, r.last)},
                    {"segments", r.last - r.first + 1}});
  return runs;
}

// The postgres source a pg command is about: --source, else the only
// postgres source of the configuration.
std::string PgSource(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const config::Config* cfg = Config()) {
    std::vector<std::string> pg;
    for (const auto& [name, s] : cfg->sources)
      if (s.kind == config::SourceKind::kPostgres) pg.push_back(name);
    if (pg.size() == 1) return pg[0];
  }
  throw Error(ErrorCode::kInvalidArgument, "give --source NAME (the PostgreSQL source)");
}

void AddInfo(CLI::App* pg) {
  auto source = std::make_shared<std::string>();
  auto* cmd = pg->add_subcommand("info", "base backups, the WAL archive (ranges and gaps) and the PITR window");
  cmd->add_option("--source", *source, "the PostgreSQL source (default: the only one configured)");
  cmd->callback([source] {
    const std::string name = PgSource(*source);
    auto repo = OpenRepository(false, ConfiguredSource(name));
    auto lock = LockForReading(repo.get());
    auto snapshots = repo->LoadSnapshots([](const Error& e) { log::Warn(e.what()); });
    auto info = source::postgres::DescribeArchive(*repo, name, snapshots);
    std::vector<repo::Snapshot> logical;
    for (const auto& s : snapshots)
      if (s.source == name && s.kind == "postgres" && !source::postgres::BaseBackupWalOf(s)) logical.push_back(s);
    size_t gaps = 0;
    for (const auto& c : info.timelines) gaps += c.runs.size() - 1;
    if (G().json) {
      nlohmann::json backups = nlohmann::json::array();
      for (const auto& b : info.backups) {
        const auto& pf = b.snapshot.facts["postgres"];
        backups.push_back({{"snapshot_id", b.snapshot.id.Hex()},
                           {"time", repo::FormatTime(b.snapshot.time_ns)},
                           {"timeline", b.wal.timeline},
                           {"start_lsn", source::postgres::FormatLsn(b.wal.start_lsn)},
                           {"stop_lsn", source::postgres::FormatLsn(b.wal.stop_lsn)},
                           {"start_time", pf.value("start_time", "")},
                           {"stop_time", pf.value("stop_time", "")},
                           {"label", pf.value("label", "")},
                           {"wal_consistent", b.consistent}});
      }
      nlohmann::json timelines = nlohmann::json::array();
      for (const auto& c : info.timelines) timelines.push_back({{"timeline", c.timeline}, {"runs", RunsJson(c)}});
      nlohmann::json dumps = nlohmann::json::array();
      for (const auto& s : logical)
        dumps.push_back({{"snapshot_id", s.id.Hex()}, {"time", repo::FormatTime(s.time_ns)}});
      nlohmann::json j = {{"message_type", "pg_info"},
                          {"source", name},
                          {"base_backups", backups},
                          {"logical_backups", dumps},
                          {"wal", {{"files", info.files.size()},
                                   {"stored_bytes", info.stored_bytes},
                                   {"timelines", timelines},
                                   {"history_files", info.history_files},
                                   {"gaps", gaps}}}};
      j["pitr"] = {{"earliest", info.pitr_earliest_ns ? nlohmann::json(repo::FormatTime(*info.pitr_earliest_ns)) : nlohmann::json()},
                   {"latest", info.pitr_latest_ns ? nlohmann::json(repo::FormatTime(*info.pitr_latest_ns)) : nlohmann::json()},
                   {"window_seconds", info.pitr_earliest_ns && info.pitr_latest_ns
                                          ? nlohmann::json((*info.pitr_latest_ns - *info.pitr_earliest_ns) / 1e9)
                                          : nlohmann::json()}};
      PrintJson(j);
      return;
    }
    Say("source " + name + ": " + std::to_string(info.backups.size()) + " base backups, " +
        std::to_string(logical.size()) + " logical backups");
    for (const auto& b : info.backups)
      Say("  " + b.snapshot.id.Short() + "  " + repo::FormatTimeShort(b.snapshot.time_ns) + "  timeline " +
          std::to_string(b.wal.timeline) + "  " + source::postgres::FormatLsn(b.wal.start_lsn) + " .. " +
          source::postgres::FormatLsn(b.wal.stop_lsn) + (b.consistent ? "" : "  (WAL to consistency missing)"));
    Say("WAL: " + std::to_string(info.files.size()) + " files, " + HumanBytes(info.stored_bytes) + " stored, " +
        std::to_string(gaps) + " gaps");
    for (const auto& c : info.timelines)
      for (const auto& r : RunsJson(c))
        Say("  timeline " + std::to_string(c.timeline) + ": " + r["first"].get<std::string>() + " .. " +
            r["last"].get<std::string>() + " (" + std::to_string(r["segments"].get<uint64_t>()) + " segments)");
    Say("PITR window: " + TimeOr(info.pitr_earliest_ns, "none (no base backup with its WAL)") +
        (info.pitr_latest_ns ? " .. " + repo::FormatTime(*info.pitr_latest_ns) : ""));
  });
}

void AddExpireWal(CLI::App* pg) {
  struct Opts {
    std::string source;
    bool dry_run = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = pg->add_subcommand("expire-wal", "delete archived WAL that no remaining base backup needs");
  cmd->add_option("--source", o->source, "the PostgreSQL source (default: the only one configured)");
  cmd->add_flag("-n,--dry-run", o->dry_run, "list what would be deleted; delete nothing");
  cmd->callback([o] {
    const std::string name = PgSource(o->source);
    auto repo = OpenRepository(false, ConfiguredSource(name));
    auto lock = o->dry_run ? LockForReading(repo.get()) : LockExclusive(repo.get(), "pg expire-wal", {});
    auto snapshots = repo->LoadSnapshots([](const Error& e) { log::Warn(e.what()); });
    auto r = source::postgres::ExpireWal(*repo, name, snapshots, o->dry_run);
    ReportWalExpiry(name, r, o->dry_run);
    if (!r.failed.empty()) ExitCode() = kExitError;
  });
}

void AddCheck(CLI::App* pg) {
  struct Opts {
    std::string source, conninfo;
    double timeout = 60;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = pg->add_subcommand(
      "check", "force a WAL switch and confirm the segment reaches the repository; report archive lag");
  cmd->add_option("--source", o->source, "the PostgreSQL source (default: the only one configured)");
  cmd->add_option("--conninfo", o->conninfo, "connect here instead of the source's conninfo (no password)");
  cmd->add_option("--timeout", o->timeout, "seconds to wait for the segment (default 60)");
  cmd->callback([o] {
    const std::string name = PgSource(o->source);
    std::string conninfo = o->conninfo;
    if (conninfo.empty()) conninfo = TargetConninfo("", name);
    auto repo = OpenRepository(false, ConfiguredSource(name));
    auto conn = source::postgres::Connection::Open(conninfo);
    auto c = source::postgres::CheckArchiving(*repo, name, *conn, o->timeout);
    const int64_t now = repo::NowNs();
    std::optional<double> age;
    if (c.newest_archived_mtime_ns) age = (now - *c.newest_archived_mtime_ns) / 1e9;
    if (G().json) {
      PrintJson({{"message_type", "pg_check"},
                 {"source", name},
                 {"segment", c.segment},
                 {"arrived", c.arrived},
                 {"seconds", c.seconds},
                 {"archive_mode", c.archive_mode_on},
                 {"archive_command", c.archive_command},
                 {"ready_files", c.ready_files},
                 {"failed_count", c.failed_count},
                 {"last_archived_wal", c.last_archived_wal},
                 {"last_failed_wal", c.last_failed_wal},
                 {"last_failed_time", c.last_failed_ns ? nlohmann::json(repo::FormatTime(*c.last_failed_ns)) : nlohmann::json()},
                 {"newest_archived_age_seconds", age ? nlohmann::json(*age) : nlohmann::json()}});
    } else {
      Say(c.arrived ? "WAL segment " + c.segment + " reached the repository in " + FormatDuration(c.seconds)
                    : "WAL segment " + c.segment + " did NOT reach the repository within " + FormatDuration(c.seconds));
      Say("  .ready files waiting: " + (c.ready_files < 0 ? std::string("unknown (needs pg_monitor)") : std::to_string(c.ready_files)) +
          "; failures: " + std::to_string(c.failed_count) +
          (c.last_failed_wal.empty() ? "" : " (last " + c.last_failed_wal + ")"));
      if (age) Say("  newest archived file: " + FormatDuration(*age) + " old");
    }
    if (!c.archive_mode_on) log::Warn("archive_mode is off on the server: nothing is archived");
    else if (c.archive_command.find("wal-push") == std::string::npos)
      log::Warn("archive_command does not run bulwark wal-push: '" + c.archive_command + "'");
    if (!c.arrived)
      throw Error(ErrorCode::kSourceFailed, "WAL archiving check failed: segment " + c.segment +
                                                " was not archived to source '" + name + "' within " +
                                                FormatDuration(o->timeout) +
                                                " (check archive_command and the server log)");
  });
}

}  // namespace

void ReportWalExpiry(const std::string& source, const source::postgres::ExpireResult& r, bool dry_run) {
  for (const auto& f : r.failed) log::Warn("could not delete WAL " + f);
  if (G().json) {
    PrintJson({{"message_type", "wal_expired"},
               {"source", source},
               {"dry_run", dry_run},
               {"files", r.expired},
               {"stored_bytes", r.stored_bytes},
               {"kept_base_backups", r.kept_backups},
               {"failed", r.failed}});
    return;
  }
  if (r.kept_backups == 0) {
    Say("source " + source + ": no base backup remains; its archived WAL is kept");
    return;
  }
  Say("source " + source + ": " + (dry_run ? "would expire " : "expired ") + std::to_string(r.expired.size()) +
      " WAL files (" + HumanBytes(r.stored_bytes) + ")" +
      (r.expired.empty() ? "" : ", " + r.expired.front() + " .. " + r.expired.back()) + "; " +
      std::to_string(r.kept_backups) + " base backups remain");
}

void ExpireWalAfterForget(repo::Repository* repo, const std::vector<repo::Snapshot>& removed,
                          const std::function<std::vector<repo::Snapshot>()>& all, bool dry_run) {
  for (const auto& [name, r] : jobs::ExpireWalOfRemoved(*repo, removed, all, dry_run)) {
    ReportWalExpiry(name, r, dry_run);
    if (!r.failed.empty()) ExitCode() = kExitError;
  }
}

void AddPg(CLI::App& app) {
  auto* pg = app.add_subcommand("pg", "PostgreSQL: restore dumps and base backups, WAL information");
  pg->require_subcommand(1);
  AddRestoreDump(pg);
  AddPgPhysical(pg);
  AddInfo(pg);
  AddExpireWal(pg);
  AddCheck(pg);
}

}  // namespace bulwark::cli
