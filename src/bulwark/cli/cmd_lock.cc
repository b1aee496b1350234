// bulwark lock extend: the Object Lock maintenance (ops/object_lock.h) on its
// own, for repositories whose prune runs rarely. Prune runs the same step.
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/cli/progress.h"  // FormatDuration
#include "bulwark/config/config.h"
#include "bulwark/ops/object_lock.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

nlohmann::json LockExtendJson(const ops::LockExtendStats& s) {
  return {{"snapshots", s.snapshots},
          {"objects_live", s.objects_live},
          {"objects_extended", s.objects_extended},
          {"bytes_extended", s.bytes_extended},
          {"objects_expired", s.objects_expired},
          {"expired_examples", s.expired_examples},
          {"objects_missing", s.objects_missing},
          {"missing_examples", s.missing_examples},
          {"required_until", repo::FormatTime(s.required_until_ns)},
          {"extended_until", repo::FormatTime(s.extended_until_ns)},
          {"margin_seconds", s.margin_ns / 1000000000},
          {"duration_seconds", s.duration_seconds}};
}

void SayLockExtend(const ops::LockExtendStats& s, bool dry_run) {
  Say(std::string("object lock: ") + std::to_string(s.objects_live) + " live objects must be retained until " +
      repo::FormatTimeShort(s.required_until_ns) + " UTC (the latest snapshot's lock); " +
      std::to_string(s.objects_extended) + " (" + HumanBytes(s.bytes_extended) + ") " +
      (dry_run ? "would be" : "were") + " extended to " + repo::FormatTimeShort(s.extended_until_ns) + " UTC");
  if (s.objects_expired)
    Say("object lock: " + std::to_string(s.objects_expired) + " live objects had no retention left (e.g. " +
        s.expired_examples.front() + ")");
}

// Missing live objects mean damage: the caller exits non-zero.
void ThrowIfLiveObjectsMissing(const ops::LockExtendStats& s) {
  if (s.objects_missing)
    throw Error(ErrorCode::kCorrupt, std::to_string(s.objects_missing) +
                                         " object(s) the snapshots need are missing (e.g. " +
                                         s.missing_examples.front() + "); run 'bulwark check'");
}

int64_t ParseLockMargin(const std::string& value, const char* flag) {
  int64_t seconds = WithContext(flag, [&] { return config::ParseDuration(value); });
  if (seconds <= 0) throw Error(ErrorCode::kInvalidArgument, std::string(flag) + " must be positive, e.g. 30d");
  return seconds * 1000000000;
}

namespace {

struct ExtendFlags {
  std::string margin;
  bool dry_run = false;
};

void RunExtend(const ExtendFlags& f) {
  auto repo = OpenRepository(false);
  ops::LockExtendOptions o;
  if (!f.margin.empty()) o.margin_ns = ParseLockMargin(f.margin, "--margin");
  o.dry_run = f.dry_run;
  // Shared: nothing is added or removed, and backups may run meanwhile. A
  // dry run only reads (read-only credentials suffice).
  auto lock = f.dry_run ? LockForReading(repo.get()) : LockForWriting(repo.get(), "lock extend");
  o.now_ns = lock ? lock->Touch() : repo::NowNs();
  o.progress = PhaseProgress();
  ops::LockExtendStats s = ops::ExtendLocks(*repo, o);
  if (o.progress) ClearPhaseProgress();
  if (G().json) {
    nlohmann::json j = LockExtendJson(s);
    j["message_type"] = "summary";
    j["dry_run"] = f.dry_run;
    PrintJson(j);
  } else {
    SayLockExtend(s, f.dry_run);
    Say(std::string(f.dry_run ? "dry run: nothing changed" : "done") + " in " + FormatDuration(s.duration_seconds));
  }
  ThrowIfLiveObjectsMissing(s);
}

}  // namespace

void AddLock(CLI::App& app) {
  auto* lock = app.add_subcommand("lock", "Object Lock (WORM) maintenance of an S3 repository");
  lock->require_subcommand(1);
  auto f = std::make_shared<ExtendFlags>();
  auto* cmd = lock->add_subcommand(
      "extend",
      "extend the retention of every object the snapshots need (config, keys, index, packs in use) to outlast "
      "the newest snapshot's lock; prune does this too");
  cmd->add_option("--margin", f->margin,
                  "extend this far past the newest snapshot's lock, so each object is extended about once per "
                  "margin (default: a tenth of the lock period, at least 1d)");
  cmd->add_flag("-n,--dry-run", f->dry_run, "only count what would be extended (HEAD requests only)");
  cmd->callback([f] { RunExtend(*f); });
}

}  // namespace bulwark::cli
