// bulwark check / unlock.
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"
#include "bulwark/config/config.h"
#include "bulwark/ops/check.h"
#include "bulwark/repo/cache.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

void AddCheck(CLI::App& app) {
  struct Opts {
    bool read_data = false;
    std::string subset;
    std::string max_age;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("check", "verify the repository's structure and (with --read-data) every byte");
  cmd->add_flag("--read-data", o->read_data, "read, decrypt and verify every blob of every pack");
  cmd->add_option("--read-data-subset", o->subset, "verify part of the data: N/M (bucket N of M) or P% (random)");
  cmd->add_option("--max-age", o->max_age,
                  "with --read-data: read only packs not verified within this time (e.g. 7d; each pack falls due "
                  "after 50-100% of it, remembered in the local cache)");
  AddPushAfterSuccess(cmd, [o] {
    int64_t max_age = 0;
    if (!o->max_age.empty()) {
      max_age = config::ParseDuration(o->max_age);
      if (!o->read_data && o->subset.empty())
        throw Error(ErrorCode::kInvalidArgument, "--max-age applies to --read-data or --read-data-subset");
      if (max_age <= 0) throw Error(ErrorCode::kInvalidArgument, "--max-age must be longer than 0");
    }
    auto repo = OpenRepository(false);
    auto lock = LockForReading(repo.get());
    ops::CheckOptions co;
    co.read_data = o->read_data || !o->subset.empty();
    if (!o->subset.empty()) {
      unsigned n = 0, m = 0;
      double pct = 0;
      if (o->subset.back() == '%' && std::sscanf(o->subset.c_str(), "%lf%%", &pct) == 1 && pct > 0 && pct <= 100) {
        co.subset_percent = pct;
      } else if (std::sscanf(o->subset.c_str(), "%u/%u", &n, &m) == 2 && n >= 1 && n <= m) {
        co.subset_n = n;
        co.subset_m = m;
      } else {
        throw Error(ErrorCode::kInvalidArgument, "--read-data-subset wants N/M (1 <= N <= M) or P% (0 < P <= 100), got '" + o->subset + "'");
      }
    }
    std::atomic<uint64_t> done{0};
    co.packs_done = &done;
    // Verified-pack records in the local cache (repo/cache.h).
    std::string cache_dir = co.read_data ? RepositoryCacheDir(repo->config().id) : "";
    repo::VerifiedPacks verified;
    if (max_age > 0 && cache_dir.empty())
      throw Error(ErrorCode::kInvalidArgument, "--max-age needs the local cache: set BULWARK_CACHE_DIR (or HOME) and do not use --no-cache");
    if (!cache_dir.empty()) {
      std::string warning;
      verified = repo::LoadVerifiedPacks(cache_dir, repo->config().id, &warning);
      if (!warning.empty()) log::Warn(warning);
      co.verified = &verified;
      co.max_age_seconds = max_age;
      co.now_seconds = repo::NowNs() / 1000000000;
    }
    ops::CheckResult r;
    {
      ProgressPrinter printer([&](double el) { return "[" + FormatDuration(el) + "] " + std::to_string(done.load()) + " packs verified"; },
                              [&](double) { return nlohmann::json{{"packs_done", done.load()}}; });
      r = ops::Check(*repo, co);
    }
    if (co.verified) {
      try {
        repo::SaveVerifiedPacks(cache_dir, verified);
      } catch (const Error& e) {
        log::Warn(std::string("could not save the cache of verified packs: ") + e.what());
      }
    }
    for (auto& w : r.warnings) log::Warn(w);
    for (auto& e : r.errors) log::Err(e);
    if (G().json) {
      PrintJson({{"message_type", "summary"}, {"ok", r.ok()}, {"errors", r.errors}, {"warnings", r.warnings},
                 {"snapshots", r.snapshots}, {"trees", r.trees}, {"packs", r.packs}, {"blobs", r.blobs},
                 {"index_objects", r.index_objects}, {"packs_read", r.packs_read}, {"blobs_read", r.blobs_read},
                 {"bytes_read", r.bytes_read}, {"packs_skipped_recent", r.packs_skipped_recent},
                 {"wal_objects", r.wal_objects}, {"wal_read", r.wal_read},
                 {"wal_skipped_recent", r.wal_skipped_recent}});
    } else {
      Say("checked " + std::to_string(r.snapshots) + " snapshots, " + std::to_string(r.trees) + " trees, " +
          std::to_string(r.packs) + " packs, " + std::to_string(r.blobs) + " blobs" +
          (r.wal_objects ? ", " + std::to_string(r.wal_objects) + " WAL files" : "") +
          (co.read_data ? "; read " + std::to_string(r.packs_read) + " packs" +
                              (r.wal_objects ? " and " + std::to_string(r.wal_read) + " WAL files" : "") + " (" +
                              HumanBytes(r.bytes_read) + ")"
                        : ""));
      if (max_age > 0)
        Say("skipped " + std::to_string(r.packs_skipped_recent) + " packs verified recently (--max-age " + o->max_age +
            ": each pack is read again after 50-100% of it)");
      Say(r.ok() ? "no errors were found" : std::to_string(r.errors.size()) + " errors found: the repository is damaged");
    }
    if (!r.ok()) ExitCode() = kExitDamage;
  });

  auto all = std::make_shared<bool>(false);
  auto dry = std::make_shared<bool>(false);
  auto* unlock = app.add_subcommand("unlock", "remove stale locks (and with --remove-all, every lock)");
  unlock->add_flag("--remove-all", *all, "remove all locks, even live ones (only when you know their holders are gone)");
  unlock->add_flag("-n,--dry-run", *dry, "only list the locks that would be removed");
  unlock->callback([all, dry] {
    auto repo = OpenRepository(false);
    if (!*dry) RequireDelete(repo.get(), "unlock", {repo::ObjectType::kLock});
    auto remaining = repo::Lock::List(repo.get(), !*dry);
    size_t removed = 0;
    if (*dry) {
      nlohmann::json arr = nlohmann::json::array();
      for (auto& l : remaining)
        arr.push_back({{"id", l.id.Hex()}, {"host", l.host}, {"pid", l.pid}, {"exclusive", l.exclusive},
                       {"time", repo::FormatTime(l.time_ns)}});
      if (G().json) PrintJson({{"message_type", "dry_run"}, {"locks", arr}});
      else
        for (auto& l : remaining)
          Say("lock " + l.id.Short() + " pid " + std::to_string(l.pid) + " on " + l.host + " since " + repo::FormatTime(l.time_ns));
      return;
    }
    if (*all) {
      for (auto& l : remaining) {
        repo->backend().Remove(repo::Repository::ObjectName(repo::ObjectType::kLock, l.id));
        removed++;
      }
      remaining.clear();
    }
    if (G().json) PrintJson({{"message_type", "unlocked"}, {"removed", removed}, {"remaining", remaining.size()}});
    else Say(std::to_string(remaining.size()) + " live locks remain" + (removed ? ", removed " + std::to_string(removed) : ""));
  });
}

}  // namespace bulwark::cli
