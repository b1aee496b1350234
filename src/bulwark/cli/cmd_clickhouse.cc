// bulwark clickhouse ...: restoring ClickHouse backups (docs/CLICKHOUSE.md).
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/source/clickhouse/backup.h"
#include "bulwark/source/clickhouse/restore.h"

namespace bulwark::cli {

namespace {

namespace ch = source::clickhouse;

// The source a snapshot of ClickHouse came from, as configured, or a stand-in
// named like it that knows only the target URL (a source given by flags).
config::SourceConfig SourceFor(const std::string& name, const std::string& url_flag, const std::string& user_flag) {
  config::SourceConfig src;
  if (!ConfiguredSource(name).empty()) {
    src = Config()->Source(name);
    if (src.kind != config::SourceKind::kClickHouse)
      throw Error(ErrorCode::kInvalidArgument, "source '" + name + "' is not a clickhouse source");
  } else {
    src.name = name;
    src.kind = config::SourceKind::kClickHouse;
  }
  if (!url_flag.empty()) src.ch_url = WithContext("--url", [&] { return ch::NormalizeUrl(url_flag); });
  if (src.ch_url.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "no server to restore into: give --url http://HOST:8123 (or a configuration with the snapshot's source '" +
                    name + "')");
  if (!user_flag.empty()) src.ch_user = user_flag;
  return src;
}

nlohmann::json TableJson(const ch::TableRestore& t) {
  nlohmann::json j = {{"from", t.from},           {"to", t.to},       {"kind", t.kind},
                      {"action", t.action},       {"method", t.method}, {"expected_rows", t.expected_rows},
                      {"bytes", t.bytes},         {"parts", t.parts}, {"verified", t.verified}};
  j["restored_rows"] = t.restored_rows ? nlohmann::json(*t.restored_rows) : nlohmann::json();
  if (!t.partitions.empty()) j["partitions"] = t.partitions;
  return j;
}

void AddRestore(CLI::App* parent) {
  struct Opts {
    std::string snapshot = "latest", url, user, data_path;
    std::vector<std::string> maps, tables, partitions;
    bool drop_existing = false, safety_backup = false, no_verify = false, dry_run = false;
    SnapshotFilterFlags filter;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = parent->add_subcommand(
      "restore", "restore a ClickHouse backup: create databases and tables, insert or attach the data, check counts");
  cmd->add_option("snapshot", o->snapshot, "snapshot id, id prefix, or 'latest' (default; with --source)");
  cmd->add_option("--database-map", o->maps, "restore database OLD as NEW (OLD:NEW; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--table", o->tables, "restore only the tables matching this DATABASE.TABLE glob (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--partition", o->partitions,
                  "restore only this partition (its partition_id, e.g. 202401 or all) of the MergeTree tables "
                  "(repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--drop-existing", o->drop_existing,
                "replace tables (with --partition: partitions) that exist on the server");
  cmd->add_flag("--safety-backup", o->safety_backup,
                "before --drop-existing replaces anything, back up what it replaces (native mode, tag safety-backup)");
  cmd->add_option("--url", o->url,
                  "the server to restore into (default: the source's url); its password from "
                  "BULWARK_CLICKHOUSE_PASSWORD_FILE or BULWARK_CLICKHOUSE_PASSWORD unless the source has one");
  cmd->add_option("--user", o->user, "the ClickHouse user (default: the source's, else BULWARK_CLICKHOUSE_USER)");
  cmd->add_option("--data-path", o->data_path,
                  "parts backups: the target server's data directory (default: the source's data_path, else asked)");
  cmd->add_flag("--no-verify", o->no_verify, "skip the row-count comparison with the backup's facts");
  cmd->add_flag("-n,--dry-run", o->dry_run, "show what would be done; change nothing");
  AddFilterFlags(cmd, &o->filter);
  cmd->callback([o] {
    if (o->safety_backup && !o->drop_existing)
      throw Error(ErrorCode::kInvalidArgument, "--safety-backup goes with --drop-existing (nothing is replaced without it)");
    auto repo = OpenRepository(false, ConfiguredSource(o->filter.source));
    // A safety backup writes to the repository.
    auto lock = o->safety_backup && !o->dry_run ? LockForWriting(repo.get(), "clickhouse restore --safety-backup")
                                                : LockForReading(repo.get());
    repo->LoadIndex();
    repo::Snapshot snap = repo->ResolveSnapshot(o->snapshot, o->filter.Filter());
    const config::SourceConfig src = SourceFor(o->filter.source.empty() ? snap.source : o->filter.source, o->url, o->user);

    ch::RestoreOptions ro;
    ro.target = ch::EndpointOf(src);
    for (const auto& m : o->maps) {
      auto [from, to] = ch::ParseDatabaseMapping(m);
      if (!ro.database_map.emplace(from, to).second)
        throw Error(ErrorCode::kInvalidArgument, "--database-map: '" + from + "' is mapped twice");
    }
    ro.tables = o->tables;
    ro.partitions = o->partitions;
    ro.drop_existing = o->drop_existing;
    ro.verify = !o->no_verify;
    ro.dry_run = o->dry_run;
    ro.data_path = !o->data_path.empty() ? o->data_path : src.ch_data_path;
    ro.on_step = [](const std::string& s) {
      if (G().json)
        PrintJson({{"message_type", "status"}, {"step", s}});
      else
        Say(s);
    };
    std::optional<repo::Snapshot> safety;
    if (o->safety_backup) {
      ro.before_replace = [&](const std::vector<std::string>& tables) {
        ro.on_step("safety backup of " + std::to_string(tables.size()) + " tables before replacing them");
        config::SourceConfig s = src;
        s.ch_mode = config::ChMode::kNative;  // the tables of the target server, wherever it runs
        s.ch_databases.clear();
        s.ch_tables.clear();
        s.ch_exclude_tables.clear();
        ops::BackupOptions b;
        b.tags = {"safety-backup"};
        b.before_commit = [l = lock.get()] {
          if (l) l->CheckHeld();
        };
        safety = ch::Backup(*repo, s, b, tables).snapshot;
        ro.on_step("safety backup: snapshot " + safety->id.Short());
      };
    }
    ch::RestoreResult r;
    try {
      r = ch::Restore(*repo, snap, ro);
    } catch (const Error& e) {
      if (safety)
        throw Error(e.code(), std::string(e.what()) + " (the replaced tables are in safety backup snapshot " +
                                  safety->id.Short() + ")");
      throw;
    }
    if (G().json) {
      nlohmann::json tables = nlohmann::json::array();
      for (const auto& t : r.tables) tables.push_back(TableJson(t));
      nlohmann::json j = {{"message_type", "summary"},
                          {"snapshot_id", snap.id.Hex()},
                          {"url", ro.target.url},
                          {"dry_run", o->dry_run},
                          {"databases_created", r.databases_created},
                          {"replaced", r.replaced},
                          {"tables", tables},
                          {"bytes", r.bytes},
                          {"duration_seconds", r.seconds}};
      j["safety_backup"] = safety ? nlohmann::json(safety->id.Hex()) : nlohmann::json();
      PrintJson(j);
      return;
    }
    if (o->dry_run) {
      for (const auto& db : r.databases_created) Say("would create database " + db);
      for (const auto& t : r.replaced) Say("would replace " + t);
      for (const auto& t : r.tables)
        Say("would restore " + t.from + " as " + t.to + " (" + t.kind + (t.method.empty() ? "" : ", " + t.method) +
            (t.partitions.empty() ? "" : ", partitions " + [&] {
              std::string s;
              for (const auto& p : t.partitions) s += (s.empty() ? "" : ",") + p;
              return s;
            }()) + ")");
      return;
    }
    size_t verified = 0, data = 0;
    for (const auto& t : r.tables) {
      if (t.kind == "schema") continue;
      ++data;
      if (t.verified) ++verified;
    }
    Say("restored snapshot " + snap.id.Short() + " into " + ro.target.url + ": " + std::to_string(r.tables.size()) +
        " tables (" + std::to_string(data) + " with data, " + HumanBytes(r.bytes) + ") in " + FormatDuration(r.seconds));
    for (const auto& t : r.tables)
      if (t.restored_rows)
        Say("  " + t.to + ": " + std::to_string(*t.restored_rows) + " rows" + (t.verified ? ", as in the backup" : ""));
    if (ro.verify) Say("  row counts of " + std::to_string(verified) + " tables match the backup's facts");
  });
}

}  // namespace

void AddClickHouse(CLI::App& app) {
  auto* c = app.add_subcommand("clickhouse", "ClickHouse: restore backups");
  c->require_subcommand(1);
  AddRestore(c);
}

}  // namespace bulwark::cli
