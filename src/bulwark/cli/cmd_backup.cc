// bulwark backup: back up paths, a configured source, stdin, or a command's output.
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/job.h"
#include "bulwark/jobs/source_backup.h"
#include "bulwark/metrics/bulwark_metrics.h"
#include "bulwark/ops/backup.h"
#include "bulwark/repo/lock.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/postgres/libpq.h"

namespace bulwark::cli {

const config::Config* Config();

namespace {

struct Opts {
  std::vector<std::string> paths, excludes, exclude_files, tags;
  std::string source, host, time, parent, stdin_name, ttl;
  std::string postgres, pg_mode, pg_method;  // --postgres CONNINFO, --pg-mode, --pg-method
  std::string clickhouse, ch_mode, ch_user;   // --clickhouse URL, --ch-mode, --ch-user
  std::string pushgateway;
  bool one_fs = false, force = false, from_stdin = false, from_command = false;
  int threads = 0;
  int compression = -1;
};

nlohmann::json SummaryJson(const ops::BackupResult& r) {
  const auto& s = r.snapshot;
  nlohmann::json j = {{"message_type", "summary"},
                      {"snapshot_id", s.id.Hex()},
                      {"files_new", s.summary.files_new},
                      {"files_changed", s.summary.files_changed},
                      {"files_unmodified", s.summary.files_unmodified},
                      {"dirs", s.summary.dirs},
                      {"other_entries", s.summary.other_entries},
                      {"bytes_processed", s.summary.bytes_processed},
                      {"bytes_added", s.summary.bytes_added},
                      {"bytes_stored", s.summary.bytes_stored},
                      {"blobs_added", s.summary.blobs_added},
                      {"errors", r.errors},
                      {"partial", s.partial},
                      {"duration_seconds", s.summary.duration_seconds}};
  if (!s.facts.empty()) j["facts"] = s.facts;
  if (s.expires_ns) j["expires"] = repo::FormatTime(*s.expires_ns);
  return j;
}

// Figures for a push: the configured source's names, else the repository URL
// ("" when there is none: a push never turns into the command's error).
metrics::SourceFigures PushFigures(const std::string& source) {
  const config::Config* cfg = Config();
  if (cfg && cfg->sources.count(source)) return metrics::FiguresFor(cfg->Source(source));
  metrics::SourceFigures f;
  f.source = source;
  try {
    f.repository = RepoUrl(ConfiguredSource(source));
  } catch (const Error&) {
  }
  return f;
}

void Run(const Opts& o) {
  ops::BackupOptions b;
  b.paths = o.paths;
  b.excludes = o.excludes;
  b.tags = o.tags;
  b.host = o.host;
  b.one_file_system = o.one_fs;
  b.force = o.force;
  b.threads = o.threads;
  jobs::BackupPlan plan;
  plan.stream_name = o.stdin_name;
  if (o.from_command) {
    plan.kind = jobs::BackupPlan::Kind::kCommand;
    plan.command = o.paths;
    b.paths.clear();
    if (plan.command.empty()) throw Error(ErrorCode::kInvalidArgument, "--stdin-from-command needs a command after --");
  }
  if (o.from_stdin) plan.kind = jobs::BackupPlan::Kind::kStdin;  // --stdin wins over any command
  // A PostgreSQL source from flags: --postgres CONNINFO [--pg-mode M], named
  // by --source (default "postgres"); a configured source of that name gets
  // these two settings overridden.
  config::SourceConfig flag_source;
  if (!o.postgres.empty() || !o.pg_mode.empty() || !o.pg_method.empty()) {
    const config::Config* cfg = Config();
    std::string name = o.source.empty() ? "postgres" : o.source;
    if (cfg && cfg->sources.count(name)) {
      flag_source = cfg->Source(name);
      if (flag_source.kind != config::SourceKind::kPostgres)
        throw Error(ErrorCode::kInvalidArgument,
                    "source '" + name + "' is not a postgres source (--postgres, --pg-mode)");
    } else {
      flag_source.name = name;
      flag_source.kind = config::SourceKind::kPostgres;
    }
    if (!o.postgres.empty()) flag_source.conninfo = o.postgres;
    if (flag_source.conninfo.empty())
      throw Error(ErrorCode::kInvalidArgument, "--pg-mode needs --postgres CONNINFO or a configured source");
    if (std::string why = source::postgres::ConninfoProblem(flag_source.conninfo); !why.empty())
      throw Error(ErrorCode::kInvalidArgument, "--postgres " + why);
    if (o.pg_mode == "physical")
      flag_source.pg_mode = config::PgMode::kPhysical;
    else if (o.pg_mode == "logical")
      flag_source.pg_mode = config::PgMode::kLogical;
    else if (!o.pg_mode.empty())
      throw Error(ErrorCode::kInvalidArgument, "--pg-mode must be logical or physical");
    if (!o.pg_method.empty()) {
      auto m = config::ParsePgBackupMethod(o.pg_method);
      if (!m) throw Error(ErrorCode::kInvalidArgument, "--pg-method must be auto, files or stream");
      flag_source.pg_method = *m;
    }
  }
  // A ClickHouse source from flags, likewise: --clickhouse URL [--ch-mode M] [--ch-user U],
  // named by --source (default "clickhouse").
  if (!o.clickhouse.empty() || !o.ch_mode.empty() || !o.ch_user.empty()) {
    if (!flag_source.name.empty())
      throw Error(ErrorCode::kInvalidArgument, "--postgres and --clickhouse exclude each other");
    const config::Config* cfg = Config();
    std::string name = o.source.empty() ? "clickhouse" : o.source;
    if (cfg && cfg->sources.count(name)) {
      flag_source = cfg->Source(name);
      if (flag_source.kind != config::SourceKind::kClickHouse)
        throw Error(ErrorCode::kInvalidArgument,
                    "source '" + name + "' is not a clickhouse source (--clickhouse, --ch-mode, --ch-user)");
    } else {
      flag_source.name = name;
      flag_source.kind = config::SourceKind::kClickHouse;
    }
    if (!o.clickhouse.empty())
      flag_source.ch_url = WithContext("--clickhouse", [&] { return source::clickhouse::NormalizeUrl(o.clickhouse); });
    if (flag_source.ch_url.empty())
      throw Error(ErrorCode::kInvalidArgument, "--ch-mode and --ch-user need --clickhouse URL or a configured source");
    if (!o.ch_mode.empty()) {
      auto m = config::ParseChMode(o.ch_mode);
      if (!m) throw Error(ErrorCode::kInvalidArgument, "--ch-mode must be native or parts");
      flag_source.ch_mode = *m;
    }
    if (!o.ch_user.empty()) flag_source.ch_user = o.ch_user;
  }
  if (!o.source.empty() || !flag_source.name.empty()) {
    const config::Config* cfg = Config();
    if (!cfg && flag_source.name.empty())
      throw Error(ErrorCode::kInvalidArgument, "--source needs a configuration file (--config or BULWARK_CONFIG)");
    jobs::ApplySource(flag_source.name.empty() ? cfg->Source(o.source) : flag_source, &b, &plan);
  }
  if (!o.ttl.empty()) {
    b.ttl = WithContext("--ttl", [&] { return CalendarDuration::Parse(o.ttl); });
    if (b.ttl->zero()) throw Error(ErrorCode::kInvalidArgument, "--ttl must not be zero (leave it out for no expiry)");
  }
  for (const auto& f : o.exclude_files) {
    auto ex = jobs::ReadExcludeFile(f);
    b.excludes.insert(b.excludes.end(), ex.begin(), ex.end());
  }
  if (!o.time.empty()) b.time_ns = repo::ParseTime(o.time);
  if (!o.parent.empty()) b.parent = o.parent;
  if (o.compression >= 0) b.compression = o.compression;
  if (plan.stream_name.empty()) plan.stream_name = "stdin";

  if (plan.kind == jobs::BackupPlan::Kind::kPaths && b.paths.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "nothing to back up: give paths, --source, --stdin or --stdin-from-command");
  // Reject missing paths before touching the repository.
  jobs::CheckPathsExist(b.paths);

  // A source only given by flags names no configured repository.
  auto repo = OpenRepository(false, ConfiguredSource(b.source));
  auto lock = LockForWriting(repo.get(), "backup");
  repo->LoadIndex();  // after the lock: an index read before it could predate a prune
  // A backup whose lock was removed meanwhile (judged stale) must not commit:
  // a prune may have removed data it deduplicated against.
  b.before_commit = [l = lock.get()] { l->CheckHeld(); };
  ops::BackupProgress progress;
  b.progress = &progress;
  b.on_error = [](const std::string& path, const std::string& msg) {
    if (G().json)
      PrintJson({{"message_type", "error"}, {"item", path}, {"error", msg}});
    else
      log::Warn(msg);
  };
  ops::BackupResult r;
  // Totals for the ETA, only when someone watches a terminal.
  std::atomic<bool> stop_scan{false};
  std::thread scanner;
  bool show = StderrIsTty() && !G().quiet && !G().json && plan.kind == jobs::BackupPlan::Kind::kPaths;
  if (show) scanner = std::thread([&] { ops::ScanTotals(b, &progress, &stop_scan); });
  struct JoinScanner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinScanner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_scanner{stop_scan, scanner};
  {
    ProgressPrinter printer(
        [&](double el) {
          double rate = el > 0 ? progress.bytes / el : 0;
          std::string total, eta;
          if (progress.total_bytes > 0) {
            total = " of " + HumanBytes(progress.total_bytes) + (progress.scan_done ? "" : "+");
            uint64_t done = progress.bytes, all = progress.total_bytes;
            if (progress.scan_done && rate > 0 && all > done) eta = ", ETA " + FormatDuration((all - done) / rate);
          }
          return "[" + FormatDuration(el) + "] " + std::to_string(progress.files.load()) + " files, " +
                 HumanBytes(progress.bytes) + total + " (" + HumanBytes(static_cast<uint64_t>(rate)) + "/s), " +
                 HumanBytes(progress.bytes_added) + " new" + eta +
                 (progress.errors ? ", " + std::to_string(progress.errors.load()) + " errors" : "");
        },
        [&](double) {
          return nlohmann::json{{"files_done", progress.files.load()},
                                {"bytes_done", progress.bytes.load()},
                                {"bytes_added", progress.bytes_added.load()},
                                {"errors", progress.errors.load()}};
        });
    r = jobs::RunBackupPlan(*repo, plan, b);
  }
  const auto& s = r.snapshot;
  if (G().json) {
    PrintJson(SummaryJson(r));
  } else {
    Say("snapshot " + s.id.Short() + " saved" + (s.partial ? " (PARTIAL: some entries could not be read)" : ""));
    Say("  files: " + std::to_string(s.summary.files_new) + " new, " + std::to_string(s.summary.files_changed) +
        " changed, " + std::to_string(s.summary.files_unmodified) + " unmodified; " + std::to_string(s.summary.dirs) +
        " dirs");
    Say("  processed " + HumanBytes(s.summary.bytes_processed) + ", added " + HumanBytes(s.summary.bytes_added) + " (" +
        HumanBytes(s.summary.bytes_stored) + " stored) in " + FormatDuration(s.summary.duration_seconds));
    if (s.facts.contains("stream")) Say("  stream sha256 " + s.facts["stream"]["sha256"].get<std::string>());
    if (s.expires_ns) Say("  expires " + repo::FormatTime(*s.expires_ns));
  }
  if (s.partial) {
    log::Warn(std::to_string(r.errors.size()) + " entries could not be read; the snapshot is partial (exit code 3)");
    ExitCode() = kExitPartial;
  }
  if (!o.pushgateway.empty() || std::getenv("BULWARK_PUSHGATEWAY")) {
    metrics::SourceFigures f = PushFigures(b.source);
    jobs::JobReport jr;
    jr.status = s.partial ? jobs::JobStatus::kPartial : jobs::JobStatus::kSuccess;
    jr.snapshot_id = s.id.Hex();
    jr.snapshot_time = s.time_ns / 1000000000;
    jr.duration_seconds = s.summary.duration_seconds;
    jr.bytes_added = s.summary.bytes_added;
    jr.bytes_processed = s.summary.bytes_processed;
    metrics::ApplyReport(&f, jr);
    try {
      metrics::RefreshFromRepository(&f, *repo);
    } catch (const Error& e) {
      log::Warn(std::string("pushgateway: repository figures not available: ") + e.what());
    }
    PushCommandMetrics(o.pushgateway, b.source, f.repository, &f, /*replace_group=*/!s.partial);
  }
}

}  // namespace

void AddBackup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("backup", "back up paths, a configured source, stdin or a command's output");
  cmd->add_option("paths", o->paths, "paths to back up (or, with --stdin-from-command, the command after --)");
  cmd->add_option("--source", o->source, "back up this source from the configuration file");
  cmd->add_option("--postgres", o->postgres,
                  "back up this PostgreSQL server (libpq connection string without a password; the source is named "
                  "by --source, default 'postgres')");
  cmd->add_option("--pg-mode", o->pg_mode, "with --postgres: logical (pg_dump, default) or physical (base backup)");
  cmd->add_option("--pg-method", o->pg_method,
                  "physical: files (read the data directory here), stream (pg_basebackup) or auto (default: files "
                  "when the data directory is readable here)");
  cmd->add_option("--clickhouse", o->clickhouse,
                  "back up this ClickHouse server (HTTP URL, e.g. http://db:8123, without credentials: the password "
                  "comes from BULWARK_CLICKHOUSE_PASSWORD_FILE or BULWARK_CLICKHOUSE_PASSWORD; the source is named by "
                  "--source, default 'clickhouse')");
  cmd->add_option("--ch-mode", o->ch_mode,
                  "with --clickhouse: native (SELECT * FORMAT Native of every table, default) or parts (frozen "
                  "MergeTree parts; bulwark on the server's host)");
  cmd->add_option("--ch-user", o->ch_user, "with --clickhouse: the ClickHouse user (default: BULWARK_CLICKHOUSE_USER, "
                                           "else the server's default user)");
  cmd->add_option("-e,--exclude", o->excludes, "exclude entries matching this glob (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--exclude-file", o->exclude_files, "read exclude globs from this file, one per line")
      ->allow_extra_args(false);
  cmd->add_flag("-x,--one-file-system", o->one_fs, "do not cross file-system boundaries");
  cmd->add_option("--tag", o->tags, "add a tag to the snapshot (repeatable)")->allow_extra_args(false);
  cmd->add_option("--host", o->host, "record this host name instead of this machine's");
  cmd->add_option("--time", o->time, "snapshot time (RFC 3339), for imports and tests");
  cmd->add_option("--ttl", o->ttl,
                  "expire the snapshot this long after its time, e.g. 90d, 6m (months), 1y; forget then removes it "
                  "unless it is pinned (tag 'keep')");
  cmd->add_option("--parent", o->parent, "compare against this snapshot (default: latest of same host/paths)");
  cmd->add_flag("-f,--force", o->force, "re-read every file, ignoring the parent snapshot");
  cmd->add_flag("--stdin", o->from_stdin, "back up standard input as one file");
  cmd->add_option("--stdin-name", o->stdin_name, "file name for --stdin / --stdin-from-command (default: stdin)");
  cmd->add_flag("--stdin-from-command", o->from_command, "back up the output of the command given after --");
  cmd->add_option("--threads", o->threads, "worker threads (default: one per core)");
  cmd->add_option("--compression", o->compression, "zstd level for this backup (0 = off)");
  AddPushgatewayFlag(cmd, &o->pushgateway);
  cmd->callback([o] {
    try {
      Run(*o);
    } catch (const Error&) {
      if (!o->pushgateway.empty() || std::getenv("BULWARK_PUSHGATEWAY")) {
        metrics::SourceFigures f = PushFigures(o->source);
        jobs::JobReport jr;
        jr.status = jobs::JobStatus::kFailed;
        metrics::ApplyReport(&f, jr);
        PushCommandMetrics(o->pushgateway, f.source, f.repository, &f, /*replace_group=*/false);
      }
      throw;
    }
  });
}

}  // namespace bulwark::cli
