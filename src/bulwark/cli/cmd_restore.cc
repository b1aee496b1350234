// bulwark restore / dump.
#include <unistd.h>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

void AddRestore(CLI::App& app) {
  struct Opts {
    std::string snapshot, target;
    std::vector<std::string> includes, excludes;
    bool overwrite = false;
    int threads = 0;
    SnapshotFilterFlags filter;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("restore", "restore a snapshot into a new (or empty) directory");
  cmd->add_option("snapshot", o->snapshot, "snapshot id, id prefix, or 'latest'")->required();
  cmd->add_option("-t,--target", o->target, "directory to restore into (created if missing)")->required();
  cmd->add_option("-i,--include", o->includes, "restore only paths matching this glob (repeatable)")->allow_extra_args(false);
  cmd->add_option("-e,--exclude", o->excludes, "skip paths matching this glob (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--overwrite", o->overwrite, "allow restoring into a non-empty directory, replacing entries");
  cmd->add_option("--threads", o->threads, "parallel readers");
  AddFilterFlags(cmd, &o->filter);
  cmd->callback([o] {
    auto repo = OpenRepository(false, o->filter.source);
    auto lock = LockForReading(repo.get());
    repo->LoadIndex();  // after the lock: an index read before it could predate a prune
    repo::Snapshot snap = repo->ResolveSnapshot(o->snapshot, o->filter.Filter());
    ops::RestoreOptions ro;
    ro.target = o->target;
    ro.includes = o->includes;
    ro.excludes = o->excludes;
    ro.overwrite = o->overwrite;
    ro.threads = o->threads;
    ops::RestoreProgress progress;
    ro.progress = &progress;
    auto t0 = std::chrono::steady_clock::now();
    ops::RestoreResult r;
    {
      ProgressPrinter printer([&](double el) {
        double total = static_cast<double>(progress.total_bytes.load());
        double done = static_cast<double>(progress.bytes.load());
        std::string eta;
        if (done > 0 && total > done) eta = ", ETA " + FormatDuration(el * (total - done) / done);
        return "[" + FormatDuration(el) + "] " + HumanBytes(progress.bytes) + " / " + HumanBytes(progress.total_bytes) +
               (total > 0 ? " (" + std::to_string(static_cast<int>(100 * done / total)) + "%)" : "") + eta;
      }, [&](double) {
        return nlohmann::json{{"bytes_done", progress.bytes.load()}, {"total_bytes", progress.total_bytes.load()},
                              {"files_done", progress.files.load()}, {"total_files", progress.total_files.load()}};
      });
      r = ops::Restore(*repo, snap, ro);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& w : r.warnings) log::Warn(w);
    for (const auto& e : r.errors) log::Err(e);
    if (G().json) {
      PrintJson({{"message_type", "summary"}, {"snapshot_id", snap.id.Hex()}, {"target", o->target},
                 {"files", r.files}, {"dirs", r.dirs}, {"symlinks", r.symlinks}, {"other_entries", r.others},
                 {"bytes", r.bytes}, {"errors", r.errors}, {"warnings", r.warnings}, {"duration_seconds", secs}});
    } else {
      Say("restored snapshot " + snap.id.Short() + " to " + o->target + ": " + std::to_string(r.files) + " files, " +
          std::to_string(r.dirs) + " dirs, " + HumanBytes(r.bytes) + " in " + FormatDuration(secs));
    }
    if (!r.errors.empty()) {
      log::Err(std::to_string(r.errors.size()) + " entries could not be restored intact (damaged or missing data)");
      ExitCode() = kExitDamage;
    }
  });

  auto d = std::make_shared<std::pair<std::string, std::string>>();
  auto df = std::make_shared<SnapshotFilterFlags>();
  auto* dump = app.add_subcommand("dump", "write one file from a snapshot to stdout");
  dump->add_option("snapshot", d->first, "snapshot id, id prefix, or 'latest'")->required();
  dump->add_option("path", d->second, "path of the file inside the snapshot")->required();
  AddFilterFlags(dump, df.get());
  dump->callback([d, df] {
    auto repo = OpenRepository(false, df->source);
    auto lock = LockForReading(repo.get());
    repo->LoadIndex();
    repo::Snapshot snap = repo->ResolveSnapshot(d->first, df->Filter());
    repo::Node n = ops::FindNode(*repo, snap, d->second);
    if (n.type != repo::NodeType::kFile)
      throw Error(ErrorCode::kInvalidArgument, d->second + " is a " + std::string(repo::NodeTypeName(n.type)) +
                                                   ", not a file (use restore --include for directories)");
    ops::DumpFile(*repo, n, 1);
  });
}

}  // namespace bulwark::cli
