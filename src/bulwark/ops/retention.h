// Retention ("forget"): which snapshots a policy keeps and which it removes.
// Pure policy logic: no I/O, no clock (the caller passes `now`), no
// repository access; the CLI (`bulwark forget`) loads snapshots, calls
// ApplyRetention, prints the plan and deletes what it says.
//
// Semantics are restic's `forget` (https://restic.readthedocs.io, "Removing
// backup snapshots"; restic's ApplyPolicy in internal/data/snapshot_policy.go
// and its golden tests, which tests/unit/retention_test.cc reproduces),
// plus per-snapshot expiry (TTL) and pinning:
//
//  * Snapshots are split into groups by the policy's group_by fields
//    (default host,source; the pin tag "keep" is not part of a tags key), and
//    every group is judged on its own.
//  * Within a group, snapshots are visited newest first (equal times: lower
//    id first). Every rule looks at every snapshot; a snapshot is kept if any
//    rule keeps it (the rules are ORed) and the reasons of all rules that
//    keep it are reported.
//  * keep_last N: the N newest snapshots ("last").
//  * keep_hourly/daily/weekly/monthly/yearly N: a snapshot is kept when its
//    calendar bucket (hour, day, ISO 8601 week Monday..Sunday, month, year;
//    calendar fields in `tz`) differs from the bucket of the last snapshot
//    this rule kept and the rule has count left; each keep uses one count.
//    So each rule keeps the newest snapshot of each of the N newest buckets
//    that hold a snapshot. -1 = unlimited. If the rule still has count left
//    at the group's oldest snapshot, that snapshot is kept too even if its
//    bucket is already taken ("oldest daily", restic >= 0.17): history is
//    kept as long as the counts allow.
//  * keep_within D: every snapshot newer than (latest - D), where latest is
//    the newest snapshot of the group that is not in the future (after
//    `now_ns`), and D is subtracted with calendar arithmetic in `tz`
//    (CalendarDuration::SubtractFrom: years, months, days on the calendar,
//    then hours as elapsed time). Reason "within 7d".
//  * keep_within_hourly/daily/weekly/monthly/yearly D: like the bucket
//    rules with unlimited count, but only for snapshots newer than
//    (latest - D) ("daily within 7d"; also with the "oldest" rule).
//  * keep_tags: a snapshot having every tag of one of the sets ("tag a,b");
//    the set {""} matches snapshots without tags ("tag ''").
//  * Pinned snapshots (tag "keep", repo::kPinTag) are always kept
//    ("pinned"), whatever the policy and TTL say.
//  * TTL (Snapshot::expires_ns): before expiry the snapshot is kept ("ttl");
//    at or after expiry (expires_ns <= now_ns) it is removed even if a rule
//    would keep it ("ttl expired"), unless pinned. Expired, unpinned
//    snapshots are set aside before the rules run: they use up no count and
//    do not count as the group's latest.
//  * An empty policy (RetentionPolicy::empty()) removes nothing but expired
//    snapshots ("no policy" for the others).
//  * Safety (as restic): if a non-empty policy would remove every snapshot of
//    a group that is not expired (possible with keep_tags alone), nothing is
//    decided and Error(kInvalidArgument, "refusing to remove every snapshot
//    of group ...") is thrown.
//
// Thread-safety: ApplyRetention is a pure function; with a named time zone it
// inherits TimeZone's constraints (bulwark/base/civil_time.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bulwark/base/civil_time.h"
#include "bulwark/config/config.h"
#include "bulwark/repo/snapshot.h"

namespace bulwark::ops {

// The policy: counts, calendar durations, tag sets and grouping, exactly as
// bulwark.yaml's `retention:` block holds them (config.h).
using RetentionPolicy = config::Retention;

// The values of the group_by fields shared by a group's snapshots; fields not
// grouped by are empty.
struct RetentionGroupKey {
  config::GroupBy by;
  std::string host, source;
  std::vector<std::string> paths;  // sorted
  std::vector<std::string> tags;   // sorted, without the pin tag
  // "host 'db1', source 'docs'"; "all snapshots" when grouping by nothing.
  std::string ToString() const;
  bool operator<(const RetentionGroupKey& o) const;
};

struct RetentionDecision {
  repo::Snapshot snapshot;
  bool keep = false;
  // Why kept: "last", "daily", "oldest monthly", "within 30d", "weekly
  // within 1m", "tag a,b", "pinned", "ttl", "no policy". Why removed:
  // "ttl expired", or nothing when no rule keeps it.
  std::vector<std::string> reasons;
};

struct RetentionGroup {
  RetentionGroupKey key;
  std::vector<RetentionDecision> snapshots;  // newest first
};

// Splits `snapshots` into groups (policy.group_by, default host,source; groups
// ordered by key) and decides every snapshot as described above. Calendar
// buckets and keep_within arithmetic use `tz`; `now_ns` (ns since the Unix
// epoch, UTC) decides TTL expiry and which snapshots are in the future.
// Throws Error(kInvalidArgument) for the refuse-to-remove-all case.
std::vector<RetentionGroup> ApplyRetention(std::vector<repo::Snapshot> snapshots, const RetentionPolicy& policy,
                                           const TimeZone& tz, int64_t now_ns);

// One line describing a policy, e.g. "keep 2 latest, 7 daily, all monthly
// snapshots, snapshots within 30d of the newest, snapshots tagged a,b";
// "no policy: keep everything but expired snapshots" when empty.
std::string DescribePolicy(const RetentionPolicy& policy);

}  // namespace bulwark::ops
