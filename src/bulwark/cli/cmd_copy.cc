// bulwark copy: copy snapshots from one repository to another (ops/copy.h).
//
// Two ways to name the repositories:
//  * explicit: --from-repo A (BULWARK_FROM_REPOSITORY) to the normal --repo;
//  * configured: --source NAME or --all with bulwark.yaml: from each source's
//    repository to every repository in its copy_to list.
#include <map>
#include <set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/copy.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {
namespace {

struct Opts {
  FromRepoFlags from;
  std::vector<std::string> snapshots;
  SnapshotFilterFlags filter;
  bool all = false, dry_run = false;
};

std::string Describe(const repo::Snapshot& s) {
  std::string d = s.id.Short() + " (" + repo::FormatTime(s.time_ns).substr(0, 19) + "Z, " + s.host;
  if (!s.source.empty()) d += ", source " + s.source;
  for (const auto& p : s.paths) d += " " + p;
  return d + ")";
}

nlohmann::json SnapshotJson(const ops::CopiedSnapshot& c, bool dry_run) {
  nlohmann::json j = {{"source_snapshot", c.source.id.Hex()},
                      {"time", repo::FormatTime(c.source.time_ns)},
                      {"host", c.source.host},
                      {"paths", c.source.paths},
                      {"status", c.skipped ? "skipped" : dry_run ? "would_copy" : "copied"}};
  if (c.skipped) j["existing_snapshot"] = c.existing.Hex();
  if (!c.skipped && !dry_run) j["snapshot"] = c.destination.Hex();
  if (!c.skipped) {
    j["blobs"] = c.blobs;
    j["bytes"] = c.bytes;
  }
  return j;
}

// Copies between one pair of open, locked repositories and prints the result.
void CopyPair(repo::Repository& src, repo::Repository& dst, const Opts& o, const repo::SnapshotFilter& filter,
              std::optional<int> compression) {
  const std::string from = src.backend().Location(), to = dst.backend().Location();
  ops::CopyOptions co;
  co.snapshots = o.snapshots;
  co.filter = filter;
  co.dry_run = o.dry_run;
  co.compression = compression;
  ops::CopyProgress progress;
  co.progress = &progress;
  co.on_warning = [](const std::string& w) { log::Warn(w); };
  co.on_snapshot = [&](const ops::CopiedSnapshot& c) {
    if (c.skipped) {
      if (G().verbose > 0) Say("snapshot " + Describe(c.source) + " is already in " + to + " as " + c.existing.Short());
      return;
    }
    std::string amount = std::to_string(c.blobs) + " blobs, " + HumanBytes(c.bytes);
    if (o.dry_run) Say("would copy snapshot " + Describe(c.source) + ": " + amount);
    else Say("copied snapshot " + Describe(c.source) + " as " + c.destination.Short() + ": " + amount);
  };
  jobs::CopyWithWalResult cr;
  {
    ProgressPrinter printer(
        [&](double el) {
          return "[" + FormatDuration(el) + "] " + std::to_string(progress.snapshots_done.load()) + "/" +
                 std::to_string(progress.snapshots_total.load()) + " snapshots, " +
                 std::to_string(progress.blobs_copied.load()) + " blobs, " + HumanBytes(progress.bytes_copied) +
                 " copied, " + HumanBytes(progress.bytes_read) + " read";
        },
        [&](double) {
          return nlohmann::json{{"snapshots_done", progress.snapshots_done.load()},
                                {"snapshots_total", progress.snapshots_total.load()},
                                {"blobs_copied", progress.blobs_copied.load()},
                                {"bytes_copied", progress.bytes_copied.load()},
                                {"bytes_read", progress.bytes_read.load()}};
        });
    cr = jobs::CopyWithWal(src, dst, co);
  }
  const ops::CopyResult& r = cr.copy;
  for (const auto& [name, w] : cr.wal) {
    if (G().json)
      PrintJson({{"message_type", "wal_copied"}, {"source", name}, {"dry_run", o.dry_run}, {"files", w.copied},
                 {"present", w.present}, {"bytes", w.bytes}});
    else
      Say("WAL of source '" + name + "': " + (o.dry_run ? "would copy " : "copied ") + std::to_string(w.copied) +
          " files" + (o.dry_run ? "" : " (" + HumanBytes(w.bytes) + ")") + ", " + std::to_string(w.present) +
          " already there");
  }
  if (G().json) {
    nlohmann::json snaps = nlohmann::json::array();
    for (const auto& c : r.snapshots) snaps.push_back(SnapshotJson(c, o.dry_run));
    PrintJson({{"message_type", "summary"}, {"from", from}, {"to", to}, {"dry_run", o.dry_run},
               {"snapshots_copied", r.snapshots_copied}, {"snapshots_skipped", r.snapshots_skipped},
               {"blobs_copied", r.blobs_copied}, {"bytes_copied", r.bytes_copied}, {"bytes_stored", r.bytes_stored},
               {"blobs_read", r.blobs_read}, {"bytes_read", r.bytes_read}, {"shared_id_key", r.shared_id_key},
               {"exact", r.exact}, {"snapshots", snaps}});
    return;
  }
  std::string skipped = r.snapshots_skipped ? "; " + std::to_string(r.snapshots_skipped) + " already there" : "";
  if (r.snapshots.empty()) {
    Say("no snapshot in " + from + " matches the selection: nothing to copy to " + to);
  } else if (r.snapshots_copied == 0) {
    Say("nothing to copy: all " + std::to_string(r.snapshots.size()) + " selected snapshots of " + from +
        " are already in " + to);
  } else if (o.dry_run) {
    Say("would copy " + std::to_string(r.snapshots_copied) + " snapshots from " + from + " to " + to + ": " +
        (r.exact ? "" : "at most ") + std::to_string(r.blobs_copied) + " blobs, " + HumanBytes(r.bytes_copied) +
        (r.exact ? "" : " (the repositories have different blob-id keys: data would be read to know more)") +
        skipped);
  } else {
    Say("copied " + std::to_string(r.snapshots_copied) + " snapshots from " + from + " to " + to + ": " +
        std::to_string(r.blobs_copied) + " blobs, " + HumanBytes(r.bytes_copied) + " (" + HumanBytes(r.bytes_stored) +
        " stored)" + skipped);
  }
}

// An open repository and the shared lock held on it for the whole run (none
// on a source read with read-only credentials or --no-lock: LockForReading).
struct Locked {
  std::unique_ptr<repo::Repository> repo;
  std::unique_ptr<repo::Lock> lock;
};

Locked Lock(std::unique_ptr<repo::Repository> r, bool write) {
  auto lock = write ? LockForWriting(r.get(), "copy") : LockForReading(r.get());
  return {std::move(r), std::move(lock)};
}

void RunExplicit(const Opts& o) {
  if (o.all) throw Error(ErrorCode::kInvalidArgument, "--all copies configured sources; it cannot be combined with --from-repo");
  Locked src = Lock(OpenFromRepository(o.from, true), /*write=*/false);
  Locked dst = Lock(OpenRepository(true), /*write=*/true);
  CopyPair(*src.repo, *dst.repo, o, o.filter.Filter(), std::nullopt);
}

void RunConfigured(const Opts& o) {
  const config::Config* cfg = Config();
  if (!cfg || (o.filter.source.empty() && !o.all))
    throw Error(ErrorCode::kInvalidArgument,
                "copy needs a source repository: --from-repo URL (or BULWARK_FROM_REPOSITORY), or --source NAME / --all "
                "with a configuration file (--config) whose sources list copy_to");
  if (o.all && !o.filter.source.empty())
    throw Error(ErrorCode::kInvalidArgument, "give either --source NAME or --all, not both");
  if (!G().repo.empty())
    throw Error(ErrorCode::kInvalidArgument, "copy --source/--all takes its repositories from " + cfg->path +
                                                 "; --repo is not used (copy between explicit repositories with --from-repo)");
  std::vector<const config::SourceConfig*> sources;
  if (o.all) {
    for (const auto& [name, s] : cfg->sources)
      if (!s.copy_to.empty()) sources.push_back(&s);
    if (sources.empty()) throw Error(ErrorCode::kInvalidArgument, "no source in " + cfg->path + " has copy_to");
  } else {
    const auto& s = cfg->Source(o.filter.source);
    if (s.copy_to.empty())
      throw Error(ErrorCode::kInvalidArgument, "source '" + s.name + "' in " + cfg->path + " has no copy_to list");
    sources.push_back(&s);
  }
  std::map<std::string, Locked> open;  // by repository name: each opened (and its password read) once
  auto get = [&](const std::string& name) -> repo::Repository& {
    auto it = open.find(name);
    if (it == open.end()) {
      const config::RepositoryConfig* rc = cfg->Repository(name);
      if (!rc) throw Error(ErrorCode::kInvalidArgument, cfg->path + ": no repository named '" + name + "'");
      // A repository may be a source and a destination here: lock for writing.
      it = open.emplace(name, Lock(OpenConfiguredRepository(*rc, true), /*write=*/true)).first;
    }
    return *it->second.repo;
  };
  for (const auto* s : sources) {
    repo::SnapshotFilter filter = o.filter.Filter();
    filter.source = s->name;
    for (const auto& to : s->copy_to) {
      repo::Repository& src = get(s->repository);
      repo::Repository& dst = get(to);
      Say("source '" + s->name + "': repository '" + s->repository + "' -> '" + to + "'");
      CopyPair(src, dst, o, filter, cfg->Repository(to)->compression_level);
    }
  }
}

}  // namespace

void AddCopy(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "copy", "copy snapshots to another repository (only missing data moves); default: every snapshot not yet there");
  cmd->add_option("snapshots", o->snapshots, "snapshots to copy: ids, id prefixes or 'latest' (default: all that match the filters)");
  AddFromRepoFlags(cmd, &o->from);
  AddFilterFlags(cmd, &o->filter);
  cmd->add_flag("--all", o->all, "with a configuration file: copy every source that has copy_to");
  cmd->add_flag("-n,--dry-run", o->dry_run, "only list what would be copied");
  AddPushAfterSuccess(cmd, [o] {
    if (!o->from.Url().empty())
      RunExplicit(*o);
    else
      RunConfigured(*o);
  });
}

}  // namespace bulwark::cli
