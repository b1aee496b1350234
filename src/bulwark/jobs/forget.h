// Forget by retention policy, as library code: deciding which snapshots a
// policy keeps (ops/retention.h) for one or more selections, honouring Object
// Lock, removing the others, and expiring the archived WAL of PostgreSQL
// base backups that went away. `bulwark forget` prints these decisions;
// the agent's job (bulwark/jobs/job.h) applies a source's `retention:` with
// ApplySourceRetention.
//
// Callers hold an exclusive repository lock (repo::Lock) for anything that
// removes; deciding only reads. Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bulwark/base/civil_time.h"
#include "bulwark/config/config.h"
#include "bulwark/ops/retention.h"
#include "bulwark/repo/repository.h"
#include "bulwark/source/postgres/archive.h"

namespace bulwark::jobs {

// One way of choosing and judging snapshots: `policy` applied (calendar in
// `tz`) to the snapshots that match `filter`.
struct ForgetSelection {
  config::Retention policy;
  TimeZone tz;
  repo::SnapshotFilter filter;
};

// The decision for one selection; `selection` points into the vector given
// to DecideForget.
struct ForgetDecision {
  const ForgetSelection* selection = nullptr;
  std::vector<ops::RetentionGroup> groups;
};

// Applies each selection to the snapshots of `all` it matches, at `now_ns`
// (ns since the Unix epoch, UTC). A selection with an empty policy and no
// expired (TTL) snapshot is left out (it would keep everything). Throws what
// ops::ApplyRetention throws (e.g. a policy that would empty a group), before
// anything is removed.
std::vector<ForgetDecision> DecideForget(const std::vector<ForgetSelection>& selections,
                                         const std::vector<repo::Snapshot>& all, int64_t now_ns);

// Under Object Lock: the snapshots among `ids` whose retain-until date (one
// HEAD each) is after `storage_now_ns` (the storage's clock, repo::Lock::
// Touch), with that date. Empty when the repository has no Object Lock.
std::map<Id, int64_t> RetainedSnapshots(repo::Repository& repo, const std::vector<Id>& ids, int64_t storage_now_ns);

// The snapshots `decisions` would remove.
std::vector<repo::Snapshot> Removals(const std::vector<ForgetDecision>& decisions);

// Turns removals that `retained` (RetainedSnapshots) names into keeps, with
// the reason "object lock until <date>". Returns how many changed.
size_t KeepRetained(std::vector<ForgetDecision>* decisions, const std::map<Id, int64_t>& retained);

// Removes the snapshot objects `ids` (the caller holds an exclusive lock).
void RemoveSnapshots(repo::Repository& repo, const std::vector<Id>& ids);

// After `removed` went away (or would, dry run): the archived WAL of every
// source that lost a PostgreSQL base backup, judged by the base backups that
// remain (source::postgres::ExpireWal). `all` (the repository's snapshots,
// possibly still including `removed`) is called only when a base backup was
// removed. Returns per source its ExpireResult (deletion failures are in it,
// not thrown).
std::vector<std::pair<std::string, source::postgres::ExpireResult>> ExpireWalOfRemoved(
    repo::Repository& repo, const std::vector<repo::Snapshot>& removed,
    const std::function<std::vector<repo::Snapshot>()>& all, bool dry_run);

// What ApplySourceRetention did.
struct ForgetOutcome {
  bool applied = false;         // false: the source has no retention policy and nothing expired
  size_t kept = 0;              // snapshots of the source kept
  size_t removed = 0;           // snapshots removed
  size_t retained_by_lock = 0;  // the policy would remove them, Object Lock keeps them
  size_t wal_files_expired = 0;
  std::vector<std::string> wal_failures;  // "name: error"
  std::vector<Id> removed_ids;
};

// `bulwark forget --source NAME` without flags: `src`'s retention (calendar
// in its timezone, default group_by) over the source's snapshots in `repo`,
// snapshots Object Lock retains kept, then WAL expiry. `storage_now_ns`:
// the storage's clock (repo::Lock::Touch of the caller's exclusive lock);
// `now_ns`: the policy's now. Throws what DecideForget and the storage throw.
ForgetOutcome ApplySourceRetention(repo::Repository& repo, const config::SourceConfig& src, int64_t now_ns,
                                   int64_t storage_now_ns);

}  // namespace bulwark::jobs
