// Object Lock maintenance: keep every object the snapshots need retained at
// least as long as the snapshots themselves (`bulwark lock extend`, and a
// step of prune). Background: docs/S3.md "Object Lock"; the S3 calls are
// HeadObject and PutObjectRetention (Amazon S3 API Reference, "Using S3
// Object Lock").
//
// Every object is written with a retain-until date N days (RepoConfig::
// object_lock_days) after the writing command started. A new snapshot
// reuses packs an older backup wrote, whose dates are earlier: without
// maintenance, a locked snapshot would depend on packs whose lock runs out
// first. The rule this enforces:
//
//   R = the latest retain-until date of any snapshot (at least now).
//   Every live object (the config, every key slot, every index object in
//   effect, every pack holding a blob some snapshot references) whose
//   retain-until date is before R is extended to R + margin.
//
// The margin makes extensions rare: an object extended now needs another
// extension only once newer snapshots are retained more than `margin` past
// it, so each object is extended about once per margin, not after every
// backup. Snapshot objects themselves are never extended: each is locked for
// N days after its backup, then `forget` may remove it; unreferenced packs
// are not extended either, so prune can reclaim them once their lock ends.
// Between a backup and the next maintenance the snapshot's older packs may be
// retained for less time than it; run maintenance (prune or lock extend)
// after backups (e.g. `bulwark lock extend` in the same job) and at least
// once per margin.
//
// Cost: one HEAD per live object and snapshot, one PutObjectRetention per
// extended object, `threads` at a time; memory: the index plus one bit per
// blob (reachable.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct LockExtendOptions {
  int64_t now_ns = 0;     // the storage's clock now (repo::Lock::Touch), ns UTC; required
  int64_t margin_ns = 0;  // 0 = DefaultLockMargin(lock days)
  bool dry_run = false;   // HEAD only: count what would be extended, change nothing
  int threads = 0;        // parallel requests; 0 = the backend's max_connections
  // Progress: phase ("mark", "extend"), done and total units.
  std::function<void(const std::string& phase, uint64_t done, uint64_t total)> progress;
};

struct LockExtendStats {
  uint64_t snapshots = 0;
  uint64_t objects_live = 0;      // live objects examined (HEAD)
  uint64_t objects_extended = 0;  // retention moved to extended_until_ns (or would be, dry run)
  uint64_t bytes_extended = 0;    // their size, bytes
  // Live objects found with their retention already over: they could have
  // been deleted or overwritten until now (maintenance ran too rarely).
  uint64_t objects_expired = 0;
  uint64_t objects_missing = 0;   // live objects not in storage (the repository is damaged: check)
  int64_t required_until_ns = 0;  // R above
  int64_t extended_until_ns = 0;  // R + margin
  int64_t margin_ns = 0;
  std::vector<std::string> expired_examples, missing_examples;  // up to 5 object names each
  double duration_seconds = 0;
};

// The default margin: a tenth of the lock period, at least one day (ns).
int64_t DefaultLockMargin(int64_t lock_days);

// Loads snapshots and the index, marks what the snapshots reference and
// applies the rule above. Throws kInvalidArgument when the repository has no
// Object Lock or options are bad, kCorrupt when a tree cannot be read (run
// check), backend errors as they come (kPermission when PutObjectRetention
// is refused: the credentials need s3:PutObjectRetention). Missing live
// objects are counted, not thrown: the caller reports them. The caller
// holds a repository lock (shared suffices: nothing is added or removed).
LockExtendStats ExtendLocks(repo::Repository& repo, const LockExtendOptions& options);

// The same with the reachability already known: `snapshots` as loaded,
// `live_packs` the packs they need, `index_ids` the index objects in effect
// (prune passes what it computed and wrote).
LockExtendStats ExtendLocks(repo::Repository& repo, const std::vector<repo::Snapshot>& snapshots,
                            const std::vector<Id>& live_packs, const std::vector<Id>& index_ids,
                            const LockExtendOptions& options);

}  // namespace bulwark::ops
