// bulwark pg restore: a physical base backup into a data directory, set up
// for point-in-time recovery (source/postgres/pitr.h; docs/POSTGRES.md).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/source/postgres/pitr.h"

namespace bulwark::cli {

namespace {

namespace pg = source::postgres;

struct PitrFlags {
  std::string snapshot, target_dir, source;
  pg::TargetFlags target;
  std::string action = "promote", timeline = "latest", restore_command, pg_bin_dir;
  bool exclusive = false, delta = false, no_verify = false, dry_run = false;
  int threads = 0;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Absolute(const std::string& p) {
  return p.empty() ? p : std::filesystem::absolute(std::filesystem::path(p)).lexically_normal().string();
}

// A local repository path made absolute (the server runs restore_command in
// its data directory); URLs ("s3:...", "scheme://...") as they are.
std::string AbsoluteRepoUrl(const std::string& url) {
  if (url.find("://") != std::string::npos || url.rfind("s3:", 0) == 0) return url;
  return Absolute(url);
}

std::string SelfPath() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ErrorCode::kInternal, "cannot find this program's path (/proc/self/exe): " + ec.message());
  return p.string();
}

}  // namespace

std::string WalFetchRestoreCommandFor(const std::string& source) {
  pg::WalFetchCommand c;
  c.bulwark_bin = SelfPath();
  c.repo_url = AbsoluteRepoUrl(RepoUrl(ConfiguredSource(source)));
  c.config_path = Absolute(G().config_path.empty() ? Env("BULWARK_CONFIG") : G().config_path);
  c.key_file = Absolute(G().key_file.empty() ? Env("BULWARK_KEY_FILE") : G().key_file);
  if (c.key_file.empty()) c.password_file = Absolute(G().password_file.empty() ? Env("BULWARK_PASSWORD_FILE") : G().password_file);
  if (c.key_file.empty() && c.password_file.empty())
    log::Warn("restore_command names neither a key file (--key-file, BULWARK_KEY_FILE) nor a password file: wal-fetch "
              "will need the repository password in the server's environment");
  c.source = source;
  return pg::WalFetchRestoreCommand(c);
}

namespace {

std::string TargetText(const pg::RecoveryOptions& r) {
  using K = pg::RecoveryTarget::Kind;
  switch (r.target.kind) {
    case K::kNone: return "the end of the archived WAL";
    case K::kTime: return "time " + r.target.value;
    case K::kLsn: return "LSN " + r.target.value;
    case K::kXid: return "transaction " + r.target.value;
    case K::kName: return "restore point '" + r.target.value + "'";
    case K::kImmediate: return "the end of the base backup (consistency)";
  }
  return "";
}

void SayNextSteps(const pg::PitrResult& r, const pg::RecoveryOptions& rec) {
  Say("");
  Say("Next steps:");
  Say("  1. Check the settings appended to " + r.data_dir + "/postgresql.auto.conf (port, paths, archive_command:");
  Say("     a restored copy that archives into the production archive must not collide with it).");
  Say("  2. Start the server as its own user, e.g.: runuser -u postgres -- pg_ctl -D " + r.data_dir + " -l LOGFILE start");
  Say("  3. It replays WAL through restore_command until " + TargetText(rec) + ", then " +
      (rec.action == "promote"   ? std::string("promotes (a new timeline)")
       : rec.action == "pause"  ? std::string("pauses, read-only: SELECT pg_wal_replay_resume() promotes it")
                                : std::string("shuts down")) +
      ".");
  Say("  4. Watch its log for 'recovery stopping ...' and 'archive recovery complete'; SELECT pg_is_in_recovery()");
  Say("     returns f once it has promoted.");
}

void Run(const PitrFlags& f) {
  pg::RecoveryOptions rec;
  rec.target = pg::ParseRecoveryTarget(f.target);
  rec.action = f.action;
  rec.timeline = f.timeline;
  if (f.exclusive) rec.inclusive = false;
  rec.restore_command = f.restore_command.empty() ? "-" : f.restore_command;  // validated here, set below
  pg::ValidateRecoveryOptions(rec);

  auto repo = OpenRepository(false, ConfiguredSource(f.source));
  auto lock = LockForReading(repo.get());
  repo->LoadIndex();  // after the lock: an index read before it could predate a prune
  repo::Snapshot snap;
  if (!f.snapshot.empty()) {
    snap = repo->ResolveSnapshot(f.snapshot, {f.source, "", {}, {}});
  } else {
    auto all = repo->LoadSnapshots([](const Error& e) { log::Warn(e.what()); });
    std::string why;
    auto i = pg::ChooseBaseBackup(all, f.source, rec, &why);
    if (!i) throw Error(ErrorCode::kNotFound, why);
    snap = all[*i];
  }
  if (!pg::IsPhysicalSnapshot(snap))
    throw Error(ErrorCode::kInvalidArgument,
                "snapshot " + snap.id.Short() + " is not a physical PostgreSQL base backup (kind '" + snap.kind + "')");
  std::string why;
  if (!f.snapshot.empty() && !pg::ChooseBaseBackup({snap}, "", rec, &why)) {
    // The base backup ends after the target: recovery would stop with "requested recovery stop
    // point is before consistent recovery point". Its stop LSN is exact; its stop time an upper bound.
    if (rec.target.kind == pg::RecoveryTarget::Kind::kTime)
      log::Warn("snapshot " + snap.id.Short() + " may end after the target time: " + why);
    else
      throw Error(ErrorCode::kInvalidArgument, "snapshot " + snap.id.Short() + " cannot be used: " + why);
  }
  if (f.restore_command.empty()) {
    if (snap.source.empty())
      throw Error(ErrorCode::kInvalidArgument, "snapshot " + snap.id.Short() +
                                                   " names no source, so wal-fetch cannot find its WAL: give --restore-command");
    rec.restore_command = WalFetchRestoreCommandFor(snap.source);
  } else {
    rec.restore_command = f.restore_command;
  }

  pg::PitrOptions po;
  po.target_dir = f.target_dir;
  po.recovery = rec;
  po.delta = f.delta;
  po.verify = !f.no_verify;
  po.dry_run = f.dry_run;
  po.pg_bin_dir = f.pg_bin_dir;
  po.threads = f.threads;
  ops::RestoreProgress progress;
  po.progress = &progress;
  auto t0 = std::chrono::steady_clock::now();
  pg::PitrResult r;
  {
    ProgressPrinter printer([&](double el) {
      return "[" + FormatDuration(el) + "] " + HumanBytes(progress.bytes) + " / " + HumanBytes(progress.total_bytes);
    }, [&](double) {
      return nlohmann::json{{"bytes_done", progress.bytes.load()}, {"total_bytes", progress.total_bytes.load()}};
    });
    r = pg::RestoreBaseBackup(*repo, snap, po);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& w : r.warnings) log::Warn(w);
  for (const auto& e : r.errors) log::Err(e);
  const auto& facts = snap.facts["postgres"];
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [k, v] : r.settings) settings[k] = v;
  if (G().json) {
    nlohmann::json j{{"message_type", "summary"},
                     {"snapshot_id", snap.id.Hex()},
                     {"source", snap.source},
                     {"data_dir", r.data_dir},
                     {"dry_run", f.dry_run},
                     {"delta", f.delta},
                     {"files", r.files},
                     {"dirs", r.dirs},
                     {"bytes", r.bytes},
                     {"verified", r.verified},
                     {"recovery_settings", settings},
                     {"base_backup", facts},
                     {"errors", r.errors},
                     {"warnings", r.warnings},
                     {"duration_seconds", secs}};
    if (f.delta) j["delta_files"] = {{"unchanged", r.unchanged}, {"written", r.written}, {"removed", r.removed}};
    PrintJson(j);
  } else {
    std::string what = "base backup " + snap.id.Short() + " of '" + snap.source + "' (timeline " +
                       std::to_string(facts.value("timeline", 0)) + ", stop LSN " + facts.value("stop_lsn", "?") +
                       ", stop time " + facts.value("stop_time", "?") + ")";
    if (f.dry_run) {
      Say("dry run: would restore " + what + " to " + r.data_dir + ": " + std::to_string(r.files) + " files, " +
          HumanBytes(r.bytes) + (f.delta ? " (delta: only files that differ)" : ""));
      Say("and append to postgresql.auto.conf (plus an empty recovery.signal):");
    } else {
      Say("restored " + what + " to " + r.data_dir + ": " + std::to_string(r.files) + " files, " + HumanBytes(r.bytes) +
          " in " + FormatDuration(secs));
      if (f.delta)
        Say("  delta: " + std::to_string(r.unchanged) + " files unchanged, " + std::to_string(r.written) +
            " written, " + std::to_string(r.removed) + " entries removed");
      if (r.verified) Say("  pg_verifybackup: " + r.verify_output);
      if (r.errors.empty()) Say("recovery settings appended to postgresql.auto.conf, recovery.signal created:");
    }
    if (r.errors.empty() || f.dry_run)
      for (const auto& [k, v] : r.settings) Say("  " + k + " = " + pg::QuoteConfValue(v));
    if (r.errors.empty() && !f.dry_run) SayNextSteps(r, rec);
  }
  if (!r.errors.empty()) {
    log::Err(std::to_string(r.errors.size()) +
             " files could not be restored intact (damaged or missing data); no recovery settings were written");
    ExitCode() = kExitDamage;
  }
}

}  // namespace

void AddPgPhysical(CLI::App* pg) {
  auto f = std::make_shared<PitrFlags>();
  auto* cmd = pg->add_subcommand(
      "restore", "restore a physical base backup into a data directory, set up for point-in-time recovery");
  cmd->add_option("snapshot", f->snapshot,
                  "base backup snapshot (id, prefix or 'latest'); default: the newest of --source that can reach the "
                  "target");
  cmd->add_option("--target-dir", f->target_dir, "the data directory to write (new or empty, or existing with --delta)")
      ->required();
  cmd->add_option("--source", f->source, "the configured source whose base backups to choose from (and whose WAL "
                                         "wal-fetch reads)");
  cmd->add_option("--target-time", f->target.time,
                  "recover up to this time: RFC 3339 (2026-11-21T19:33:28Z) or PostgreSQL's format with a zone");
  cmd->add_option("--target-lsn", f->target.lsn, "recover up to this WAL location (X/Y)");
  cmd->add_option("--target-xid", f->target.xid, "recover up to this transaction id");
  cmd->add_option("--target-name", f->target.name, "recover up to this restore point (pg_create_restore_point)");
  cmd->add_option("--target", f->target.target, "'immediate': stop as soon as the base backup is consistent");
  cmd->add_option("--target-action", f->action, "at the target: promote (default), pause or shutdown");
  cmd->add_option("--target-timeline", f->timeline, "recover along this timeline: latest (default), current or a number");
  cmd->add_flag("--target-exclusive", f->exclusive,
                "stop just before the target (recovery_target_inclusive = off; time, LSN and xid targets)");
  cmd->add_option("--restore-command", f->restore_command,
                  "restore_command for the server (default: this bulwark's wal-fetch for the source)");
  cmd->add_flag("--delta", f->delta,
                "update an existing data directory of a stopped server in place: rewrite only files that differ, "
                "remove what is not in the backup");
  cmd->add_flag("--no-verify", f->no_verify, "do not run pg_verifybackup on the restored directory");
  cmd->add_flag("--dry-run", f->dry_run, "choose the base backup and print what would be written; write nothing");
  cmd->add_option("--pg-bin-dir", f->pg_bin_dir, "directory of pg_verifybackup (default: /usr/lib/postgresql/MAJOR/bin)");
  cmd->add_option("--threads", f->threads, "parallel readers");
  cmd->callback([f] { Run(*f); });
}

}  // namespace bulwark::cli
