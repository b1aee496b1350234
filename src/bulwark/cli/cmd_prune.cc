// bulwark prune: reclaim space (ops/prune.h), and the prune step of
// `forget --prune`.
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"  // FormatDuration
#include "bulwark/config/config.h"
#include "bulwark/ops/prune.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

namespace {

double ParseMaxUnused(const std::string& s) {
  if (s == "unlimited") return 1.0;
  double pct = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%lf%c", &pct, &tail) == 2 && tail == '%' && pct >= 0 && pct <= 100 &&
      s.find('%') == s.size() - 1)
    return pct / 100.0;
  throw Error(ErrorCode::kInvalidArgument, "--max-unused wants a percentage such as 5% or 'unlimited', got '" + s + "'");
}

nlohmann::json StatsJson(const ops::PruneStats& s, bool dry_run) {
  return {{"message_type", "summary"},
          {"dry_run", dry_run},
          {"snapshots", s.snapshots},
          {"blobs", s.blobs},
          {"blobs_used", s.blobs_used},
          {"packs", s.packs},
          {"used_bytes", s.used_bytes},
          {"unused_bytes", s.unused_bytes},
          {"packs_keep", s.packs_keep},
          {"bytes_keep", s.bytes_keep},
          {"packs_repack", s.packs_repack},
          {"bytes_repack", s.bytes_repack},
          {"bytes_repack_unused", s.bytes_repack_unused},
          {"packs_marked", s.packs_unused + s.packs_repack},
          {"packs_unused", s.packs_unused},
          {"bytes_unused_packs", s.bytes_unused_packs},
          {"packs_missing_dropped", s.packs_missing_unused},
          {"packs_recovered", s.packs_recovered},
          {"packs_written", s.packs_written},
          {"bytes_written", s.bytes_written},
          {"packs_deleted", s.packs_deleted},
          {"bytes_deleted", s.bytes_deleted},
          {"packs_waiting", s.packs_waiting},
          {"bytes_waiting", s.bytes_waiting},
          {"packs_locked", s.packs_locked},
          {"bytes_locked", s.bytes_locked},
          {"index_objects_before", s.index_objects_before},
          {"index_objects_written", s.index_objects_written},
          {"index_objects_removed", s.index_objects_removed},
          {"index_objects_locked", s.index_objects_locked},
          {"object_lock", s.locks_extended ? LockExtendJson(s.locks) : nlohmann::json(nullptr)},
          {"duration_seconds", s.duration_seconds}};
}

std::string Packs(uint64_t n, uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%6llu packs  %10s", static_cast<unsigned long long>(n), HumanBytes(bytes).c_str());
  return buf;
}

}  // namespace

std::vector<repo::ObjectType> PruneDeletes() {
  return {repo::ObjectType::kPack, repo::ObjectType::kIndex, repo::ObjectType::kMarks};
}

void AddPruneFlags(CLI::App* cmd, PruneFlags* f) {
  cmd->add_option("--max-unused", f->max_unused,
                  "tolerated unused space, as a share of the used space: repack until below it (default 5%; "
                  "'unlimited' never repacks)");
  cmd->add_option("--max-repack-size", f->max_repack_size, "repack at most this many bytes per run, e.g. 2GiB");
  cmd->add_option("--grace", f->grace,
                  "delete marked and unindexed packs only once they are this old by the storage's clock "
                  "(default 1h; 0 deletes at once)");
  cmd->add_option("--lock-margin", f->lock_margin,
                  "Object Lock repositories: extend the retention of live objects this far past the newest "
                  "snapshot's lock (see 'lock extend --margin')");
}

void RunPrune(repo::Repository* repo, repo::Lock* lock, const PruneFlags& f) {
  ops::PruneOptions po;
  po.max_unused = ParseMaxUnused(f.max_unused);
  if (!f.max_repack_size.empty()) po.max_repack_bytes = ParseSize(f.max_repack_size);
  po.grace_ns = config::ParseDuration(f.grace) * 1000000000;
  if (!f.lock_margin.empty()) po.lock_margin_ns = ParseLockMargin(f.lock_margin, "--lock-margin");
  po.dry_run = f.dry_run;
  // A dry run without a lock (read-only credentials, --no-lock) plans by
  // this host's clock instead of the storage's.
  po.storage_now_ns = lock ? lock->Touch() : repo::NowNs();
  if (!lock && !f.dry_run) throw Error(ErrorCode::kInternal, "prune without an exclusive lock");
  po.progress = PhaseProgress();
  ops::PruneStats s = ops::Prune(*repo, po);
  if (po.progress) ClearPhaseProgress();
  if (G().json) {
    PrintJson(StatsJson(s, f.dry_run));
    if (s.locks_extended) ThrowIfLiveObjectsMissing(s.locks);
    return;
  }
  const char* verb = f.dry_run ? "would " : "";
  Say(std::string(f.dry_run ? "prune plan" : "prune") + " for " + repo->backend().Location() + ": " +
      std::to_string(s.snapshots) + " snapshots, " + std::to_string(s.blobs_used) + " of " + std::to_string(s.blobs) +
      " blobs in use, " + HumanBytes(s.unused_bytes) + " unused of " + HumanBytes(s.used_bytes + s.unused_bytes));
  Say("  keep     " + Packs(s.packs_keep, s.bytes_keep));
  Say("  repack   " + Packs(s.packs_repack, s.bytes_repack) + "  (" + HumanBytes(s.bytes_repack_unused) + " unused)");
  Say("  unused   " + Packs(s.packs_unused, s.bytes_unused_packs) + "  (no blob in use)");
  Say("  delete   " + Packs(s.packs_deleted, s.bytes_deleted) + "  (" + verb + "delete now: grace period over)");
  Say("  waiting  " + Packs(s.packs_waiting, s.bytes_waiting) + "  (marked or unindexed, within the grace period)");
  if (s.packs_locked)
    Say("  locked   " + Packs(s.packs_locked, s.bytes_locked) +
        "  (due, but Object Lock still retains them: kept, deleted by a later prune)");
  if (s.index_objects_locked)
    Say("  " + std::to_string(s.index_objects_locked) +
        " superseded index objects are retained by Object Lock: kept, removed by a later prune");
  if (s.packs_recovered)
    Say("  " + std::string(verb) + "put " + std::to_string(s.packs_recovered) +
        " marked/unindexed packs back: snapshots need them");
  if (!f.dry_run)
    Say("wrote " + std::to_string(s.packs_written) + " packs (" + HumanBytes(s.bytes_written) + ") and " +
        std::to_string(s.index_objects_written) + " index objects, removed " +
        std::to_string(s.index_objects_removed) + " index objects, freed " + HumanBytes(s.bytes_deleted) + " in " +
        FormatDuration(s.duration_seconds));
  if (s.locks_extended) {
    SayLockExtend(s.locks, f.dry_run);
    ThrowIfLiveObjectsMissing(s.locks);
  }
}

void AddPrune(CLI::App& app) {
  auto f = std::make_shared<PruneFlags>();
  auto* cmd = app.add_subcommand("prune", "remove data no snapshot needs (two-phase: mark, then delete after --grace)");
  AddPruneFlags(cmd, f.get());
  cmd->add_flag("-n,--dry-run", f->dry_run, "only print the plan");
  AddPushAfterSuccess(cmd, [f] {
    auto repo = OpenRepository(false);
    auto lock = LockExclusive(repo.get(), "prune", PruneDeletes());
    RunPrune(repo.get(), lock.get(), *f);
  });
}

}  // namespace bulwark::cli
