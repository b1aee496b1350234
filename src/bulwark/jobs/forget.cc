#include "bulwark/jobs/forget.h"

#include <algorithm>
#include <set>

#include "bulwark/base/log.h"

namespace bulwark::jobs {

std::vector<ForgetDecision> DecideForget(const std::vector<ForgetSelection>& selections,
                                         const std::vector<repo::Snapshot>& all, int64_t now_ns) {
  std::vector<ForgetDecision> decided;
  for (const auto& sel : selections) {
    std::vector<repo::Snapshot> selected;
    for (const auto& s : all)
      if (sel.filter.Matches(s)) selected.push_back(s);
    const bool has_expired = std::any_of(selected.begin(), selected.end(), [&](const repo::Snapshot& s) {
      return s.expires_ns && *s.expires_ns <= now_ns && !s.pinned();
    });
    if (sel.policy.empty() && !has_expired) continue;
    decided.push_back({&sel, ops::ApplyRetention(std::move(selected), sel.policy, sel.tz, now_ns)});
  }
  return decided;
}

std::map<Id, int64_t> RetainedSnapshots(repo::Repository& repo, const std::vector<Id>& ids, int64_t storage_now_ns) {
  std::map<Id, int64_t> out;
  if (repo.config().object_lock_mode.empty()) return out;
  for (const auto& id : ids) {
    auto info = repo.backend().Stat(repo::Repository::ObjectName(repo::ObjectType::kSnapshot, id));
    if (info && info->retain_until_ns > storage_now_ns) out[id] = info->retain_until_ns;
  }
  return out;
}

std::vector<repo::Snapshot> Removals(const std::vector<ForgetDecision>& decisions) {
  std::vector<repo::Snapshot> out;
  for (const auto& d : decisions)
    for (const auto& g : d.groups)
      for (const auto& r : g.snapshots)
        if (!r.keep) out.push_back(r.snapshot);
  return out;
}

size_t KeepRetained(std::vector<ForgetDecision>* decisions, const std::map<Id, int64_t>& retained) {
  size_t n = 0;
  for (auto& d : *decisions)
    for (auto& g : d.groups)
      for (auto& r : g.snapshots)
        if (auto it = retained.find(r.snapshot.id); !r.keep && it != retained.end()) {
          r.keep = true;
          r.reasons = {"object lock until " + repo::FormatTimeShort(it->second)};
          ++n;
        }
  return n;
}

void RemoveSnapshots(repo::Repository& repo, const std::vector<Id>& ids) {
  for (const auto& id : ids) {
    repo.RemoveSnapshot(id);
    log::Debug("removed snapshot " + id.Hex());
  }
}

std::vector<std::pair<std::string, source::postgres::ExpireResult>> ExpireWalOfRemoved(
    repo::Repository& repo, const std::vector<repo::Snapshot>& removed,
    const std::function<std::vector<repo::Snapshot>()>& all, bool dry_run) {
  std::vector<std::pair<std::string, source::postgres::ExpireResult>> out;
  std::set<std::string> sources;
  std::set<Id> gone;
  for (const auto& s : removed) {
    gone.insert(s.id);
    if (source::postgres::BaseBackupWalOf(s)) sources.insert(s.source);
  }
  if (sources.empty()) return out;
  std::vector<repo::Snapshot> remaining;
  for (auto& s : all())
    if (!gone.count(s.id)) remaining.push_back(std::move(s));
  for (const auto& name : sources) out.emplace_back(name, source::postgres::ExpireWal(repo, name, remaining, dry_run));
  return out;
}

ForgetOutcome ApplySourceRetention(repo::Repository& repo, const config::SourceConfig& src, int64_t now_ns,
                                   int64_t storage_now_ns) {
  ForgetOutcome out;
  std::vector<ForgetSelection> sel{{src.retention, src.Zone(), {}}};
  sel[0].filter.source = src.name;
  const auto all = repo.LoadSnapshots([](const Error& e) { log::Err(e.what()); });
  auto decided = DecideForget(sel, all, now_ns);
  if (decided.empty()) return out;
  out.applied = true;
  std::vector<Id> candidates;
  for (const auto& s : Removals(decided)) candidates.push_back(s.id);
  out.retained_by_lock = KeepRetained(&decided, RetainedSnapshots(repo, candidates, storage_now_ns));
  const auto removed = Removals(decided);
  for (const auto& s : removed) out.removed_ids.push_back(s.id);
  for (const auto& g : decided[0].groups) out.kept += g.snapshots.size();
  out.kept -= removed.size();
  out.removed = removed.size();
  RemoveSnapshots(repo, out.removed_ids);
  for (auto& [name, r] : ExpireWalOfRemoved(
           repo, removed, [&all] { return all; }, false)) {
    out.wal_files_expired += r.expired.size();
    for (auto& f : r.failed) out.wal_failures.push_back(name + ": " + f);
  }
  return out;
}

}  // namespace bulwark::jobs
