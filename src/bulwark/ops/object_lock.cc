#include "bulwark/ops/object_lock.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/parallel.h"
#include "bulwark/ops/reachable.h"

namespace bulwark::ops {
namespace {

constexpr int64_t kDayNs = int64_t(86400) * 1000000000;

void RequireObjectLock(repo::Repository& repo) {
  if (repo.config().object_lock_mode.empty())
    throw Error(ErrorCode::kInvalidArgument, "the repository at " + repo.backend().Location() +
                                                 " has no Object Lock; nothing to extend (see init --object-lock)");
}

}  // namespace

int64_t DefaultLockMargin(int64_t lock_days) { return std::max<int64_t>(1, lock_days / 10) * kDayNs; }

LockExtendStats ExtendLocks(repo::Repository& repo, const LockExtendOptions& o) {
  RequireObjectLock(repo);  // before the work of marking
  std::vector<repo::Snapshot> snapshots = repo.LoadSnapshots();
  repo.LoadIndex();
  const repo::Index& index = repo.index();
  BlobMarks marks(index.sorted_size());
  std::unordered_set<Id, IdHash> missing;
  MarkReachable(repo, snapshots, &marks, &missing, [&](uint64_t done, uint64_t total) {
    if (o.progress) o.progress("mark", done, total);
  });
  if (!missing.empty())
    throw Error(ErrorCode::kCorrupt, "lock extend: " + std::to_string(missing.size()) +
                                         " blob(s) referenced by snapshots are in no indexed pack; run 'bulwark check'");
  std::vector<bool> used = PacksInUse(index, marks);
  std::vector<Id> live;
  for (uint32_t pk = 0; pk < used.size(); ++pk)
    if (used[pk]) live.push_back(index.PackById(pk));
  return ExtendLocks(repo, snapshots, live, repo.index_ids(), o);
}

LockExtendStats ExtendLocks(repo::Repository& repo, const std::vector<repo::Snapshot>& snapshots,
                            const std::vector<Id>& live_packs, const std::vector<Id>& index_ids,
                            const LockExtendOptions& o) {
  using repo::ObjectType;
  using repo::Repository;
  RequireObjectLock(repo);
  const repo::RepoConfig& cfg = repo.config();
  if (o.now_ns <= 0) throw Error(ErrorCode::kInternal, "lock extend: the storage's current time is unknown");
  if (o.margin_ns < 0) throw Error(ErrorCode::kInvalidArgument, "lock extend: the margin must not be negative");
  const auto t0 = std::chrono::steady_clock::now();
  storage::Backend& be = repo.backend();
  const int threads = o.threads > 0 ? o.threads : std::max(1, be.capabilities().max_connections);
  LockExtendStats st;
  st.snapshots = snapshots.size();
  st.margin_ns = o.margin_ns > 0 ? o.margin_ns : DefaultLockMargin(cfg.object_lock_days);

  // R: the latest date any snapshot is retained until.
  std::atomic<int64_t> required{o.now_ns};
  ParallelFor(snapshots.size(), threads, [&](size_t i) {
    auto info = be.Stat(Repository::ObjectName(ObjectType::kSnapshot, snapshots[i].id));
    int64_t until = info ? info->retain_until_ns : 0;
    for (int64_t cur = required.load(); until > cur && !required.compare_exchange_weak(cur, until);) {
    }
  });
  st.required_until_ns = required.load();
  st.extended_until_ns = st.required_until_ns + st.margin_ns;

  std::vector<std::string> names = {"config"};
  for (const auto& k : be.List("keys/")) names.push_back(k.name);
  for (const auto& id : index_ids) names.push_back(Repository::ObjectName(ObjectType::kIndex, id));
  for (const auto& id : live_packs) names.push_back(Repository::ObjectName(ObjectType::kPack, id));
  st.objects_live = names.size();

  std::mutex mu;
  std::atomic<uint64_t> done{0};
  auto note = [&](std::vector<std::string>* examples, uint64_t* count, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu);
    ++*count;
    if (examples->size() < 5) examples->push_back(name);
  };
  ParallelFor(names.size(), threads, [&](size_t i) {
    const std::string& name = names[i];
    auto info = be.Stat(name);
    if (!info) {
      note(&st.missing_examples, &st.objects_missing, name);
    } else {
      if (info->retain_until_ns < o.now_ns) note(&st.expired_examples, &st.objects_expired, name);
      if (info->retain_until_ns < st.required_until_ns) {
        if (!o.dry_run)
          WithContext("extending the retention of " + name, [&] {
            be.ExtendRetention(name, st.extended_until_ns);
            return 0;
          });
        std::lock_guard<std::mutex> lock(mu);
        st.objects_extended++;
        st.bytes_extended += info->size;
      }
    }
    if (o.progress && (++done % 64 == 0 || done == names.size())) o.progress("extend", done, names.size());
  });
  if (st.objects_expired)
    log::Warn("lock extend: " + std::to_string(st.objects_expired) +
              " object(s) the snapshots need had no retention left (e.g. " + st.expired_examples.front() +
              "): they were deletable until now; run maintenance (prune or lock extend) more often than every " +
              std::to_string(st.margin_ns / kDayNs) +
              " day(s). (If every object looks so, the credentials may lack s3:GetObjectRetention, without which "
              "HEAD shows no retention.)");
  st.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace bulwark::ops
