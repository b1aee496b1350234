// bulwark pg ...: PostgreSQL restores and information (docs/POSTGRES.md).
#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/source/postgres/logical.h"

namespace bulwark::cli {

namespace {

// The server to restore into: --target, else the conninfo of the snapshot's
// configured source.
std::string TargetConninfo(const std::string& flag, const std::string& source_name) {
  if (!flag.empty()) return flag;
  const config::Config* cfg = Config();
  if (!cfg || source_name.empty() || !cfg->sources.count(source_name))
    throw Error(ErrorCode::kInvalidArgument,
                "no server to restore into: give --target CONNINFO (or a configuration with the snapshot's source '" +
                    source_name + "')");
  const auto& src = cfg->Source(source_name);
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
    auto repo = OpenRepository(false, o->filter.source);
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
    if (const config::Config* cfg = Config(); cfg && cfg->sources.count(snap.source))
      ro.pg_bin_dir = cfg->Source(snap.source).pg_bin_dir;
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

}  // namespace

void AddPg(CLI::App& app) {
  auto* pg = app.add_subcommand("pg", "PostgreSQL: restore dumps and base backups, WAL information");
  pg->require_subcommand(1);
  AddRestoreDump(pg);
  AddPgPhysical(pg);
}

}  // namespace bulwark::cli
