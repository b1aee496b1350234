#include "bulwark/jobs/job.h"

#include <chrono>
#include <ctime>

#include "bulwark/base/log.h"
#include "bulwark/jobs/copy.h"
#include "bulwark/jobs/hooks.h"
#include "bulwark/jobs/source_backup.h"
#include "bulwark/ops/prune.h"
#include "bulwark/repo/lock.h"

namespace bulwark::jobs {

std::string_view JobKindName(JobKind kind) { return kind == JobKind::kDrill ? "drill" : "backup"; }

std::string_view JobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kSuccess:
      return "success";
    case JobStatus::kPartial:
      return "partial";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kAbandoned:
      return "abandoned";
  }
  return "failed";
}

std::string RunName(std::string_view prefix, int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return std::string(prefix) + "-" + buf;
}

nlohmann::json JobReport::ToJson() const {
  nlohmann::json copies_j = nlohmann::json::array();
  for (const auto& c : copies)
    copies_j.push_back({{"repository", c.repository},
                        {"snapshots_copied", c.snapshots_copied},
                        {"bytes_copied", c.bytes_copied},
                        {"error", c.error}});
  nlohmann::json removed = nlohmann::json::array();
  for (const auto& id : forget.removed_ids) removed.push_back(id.Hex());
  nlohmann::json j = {{"kind", JobKindName(kind)},
          {"source", source},
          {"repository", repository},
          {"name", name},
          {"status", JobStatusName(status)},
          {"error", error},
          {"errors", errors},
          {"snapshot_id", snapshot_id},
          {"snapshot_time", snapshot_time},
          {"started_at", started_at},
          {"ended_at", ended_at},
          {"duration_seconds", duration_seconds},
          {"hooks_seconds", hooks_seconds},
          {"backup_seconds", backup_seconds},
          {"forget_seconds", forget_seconds},
          {"prune_seconds", prune_seconds},
          {"copy_seconds", copy_seconds},
          {"bytes_processed", bytes_processed},
          {"bytes_added", bytes_added},
          {"forget",
           {{"applied", forget.applied},
            {"kept", forget.kept},
            {"removed", forget.removed},
            {"removed_ids", removed},
            {"retained_by_lock", forget.retained_by_lock},
            {"wal_files_expired", forget.wal_files_expired}}},
          {"pruned", pruned},
          {"copies", copies_j}};
  if (kind == JobKind::kDrill)
    j["drill"] = {{"passed", drill_passed ? nlohmann::json(*drill_passed) : nlohmann::json(nullptr)},
                  {"rto_seconds", drill_rto_seconds},
                  {"record", drill_id}};
  return j;
}

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool Cancelled(const JobEnv& env) { return env.cancel && env.cancel->load(); }

// Records a failure: the first one becomes the report's error.
void Fail(JobReport* r, ErrorCode code, const std::string& message) {
  if (r->error.empty()) {
    r->error = message;
    r->error_code = code;
  }
  r->errors.push_back(message);
  if (r->status != JobStatus::kAbandoned) r->status = JobStatus::kFailed;
  log::Err("source '" + r->source + "': " + message);
}

const config::RepositoryConfig& RepositoryOf(const config::Config& c, const std::string& name) {
  const config::RepositoryConfig* rc = c.Repository(name);
  if (!rc) throw Error(ErrorCode::kInvalidArgument, c.path + ": no repository named '" + name + "'");
  return *rc;
}

void Backup(const JobEnv& env, const config::SourceConfig& src, repo::Repository& repo, JobReport* r) {
  ops::BackupOptions b;
  b.threads = env.threads;
  BackupPlan plan;
  ApplySource(src, &b, &plan);
  CheckPathsExist(b.paths);
  auto lock = repo::Lock::Acquire(&repo, false, env.lock_wait_seconds);
  repo.LoadIndex();  // after the lock: an index read before it could predate a prune
  b.before_commit = [&env, l = lock.get()] {
    if (Cancelled(env))
      throw Error(ErrorCode::kCancelled, "the agent is shutting down: backup abandoned before its snapshot");
    l->CheckHeld();
  };
  b.on_error = [r](const std::string& path, const std::string& msg) {
    log::Warn("source '" + r->source + "': " + msg);
  };
  ops::BackupResult br = RunBackupPlan(repo, plan, b);
  const auto& s = br.snapshot;
  r->snapshot_id = s.id.Hex();
  r->snapshot_time = s.time_ns / 1000000000;
  r->bytes_processed = s.summary.bytes_processed;
  r->bytes_added = s.summary.bytes_added;
  if (s.partial) {
    r->status = JobStatus::kPartial;
    r->errors.push_back(std::to_string(br.errors.size()) + " entries could not be read; the snapshot is partial");
  }
  log::Info("source '" + r->source + "': snapshot " + s.id.Short() + " saved" + (s.partial ? " (partial)" : ""));
}

void Forget(const JobEnv& env, const config::SourceConfig& src, repo::Repository& repo, JobReport* r) {
  if (src.retention.empty() && !src.ttl) return;
  std::vector<repo::ObjectType> deletes{repo::ObjectType::kSnapshot, repo::ObjectType::kLock};
  if (src.prune)
    for (auto t : {repo::ObjectType::kPack, repo::ObjectType::kIndex, repo::ObjectType::kMarks}) deletes.push_back(t);
  WithContext("forget needs delete permission on the repository", [&] { repo.ProbeDelete(deletes); });
  auto lock = repo::Lock::Acquire(&repo, true, env.lock_wait_seconds);
  auto t0 = Clock::now();
  r->forget = ApplySourceRetention(repo, src, repo::NowNs(), lock->Touch());
  r->forget_seconds = Since(t0);
  for (const auto& f : r->forget.wal_failures) Fail(r, ErrorCode::kIo, "WAL expiry: " + f);
  if (r->forget.removed)
    log::Info("source '" + r->source + "': forget removed " + std::to_string(r->forget.removed) + " snapshots");
  if (!src.prune || r->forget.removed == 0 || Cancelled(env)) return;
  t0 = Clock::now();
  ops::PruneOptions po;
  po.storage_now_ns = lock->Touch();
  ops::Prune(repo, po);
  r->pruned = true;
  r->prune_seconds = Since(t0);
}

void CopyTo(const JobEnv& env, const config::SourceConfig& src, repo::Repository& repo, const std::string& to,
            JobReport* r) {
  CopyOutcome c;
  c.repository = to;
  try {
    const auto& rc = RepositoryOf(*env.config, to);
    auto dst = WithContext("repository '" + to + "'", [&] { return env.open_repository(rc); });
    auto src_lock = repo::Lock::Acquire(&repo, false, env.lock_wait_seconds);
    auto dst_lock = repo::Lock::Acquire(dst.get(), false, env.lock_wait_seconds);
    repo.LoadIndex();
    dst->LoadIndex();
    ops::CopyOptions co;
    co.filter.source = src.name;
    co.compression = rc.compression_level;
    co.on_warning = [](const std::string& w) { log::Warn(w); };
    auto res = CopyWithWal(repo, *dst, co);
    c.snapshots_copied = res.copy.snapshots_copied;
    c.bytes_copied = res.copy.bytes_copied;
  } catch (const Error& e) {
    c.error = e.what();
    Fail(r, e.code(), "copy to '" + to + "': " + e.what());
  }
  r->copies.push_back(c);
}

}  // namespace

JobReport RunBackupJob(const JobEnv& env, const std::string& source, const std::string& name) {
  const config::SourceConfig& src = env.config->Source(source);
  JobReport r;
  r.kind = JobKind::kBackup;
  r.source = src.name;
  r.repository = src.repository;
  r.name = name;
  r.status = JobStatus::kSuccess;
  r.started_at = NowSeconds();
  const auto t0 = Clock::now();
  log::Info("source '" + src.name + "': job " + name + " started");

  HookOutcome pre = RunHooks(src.hooks.pre, "pre");
  r.hooks_seconds = pre.seconds;
  for (size_t i = 0; i < pre.errors.size(); ++i) {
    if (pre.failed && i + 1 == pre.errors.size())
      Fail(&r, ErrorCode::kSourceFailed, pre.errors[i]);
    else
      r.errors.push_back(pre.errors[i]);
  }
  if (!pre.failed) {
    std::unique_ptr<repo::Repository> repo;
    const auto tb = Clock::now();
    try {
      if (Cancelled(env)) throw Error(ErrorCode::kCancelled, "the agent is shutting down");
      repo = WithContext("repository '" + src.repository + "'",
                         [&] { return env.open_repository(RepositoryOf(*env.config, src.repository)); });
      Backup(env, src, *repo, &r);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCancelled) r.status = JobStatus::kAbandoned;
      Fail(&r, e.code(), std::string("backup: ") + e.what());
    }
    r.backup_seconds = Since(tb);
    if (!r.snapshot_id.empty() && !Cancelled(env)) {
      try {
        Forget(env, src, *repo, &r);
      } catch (const Error& e) {
        Fail(&r, e.code(), std::string("forget: ") + e.what());
      }
      const auto tc = Clock::now();
      for (const auto& to : src.copy_to)
        if (!Cancelled(env)) CopyTo(env, src, *repo, to, &r);
      r.copy_seconds = Since(tc);
    }
  }
  HookOutcome post = RunHooks(src.hooks.post, "post");
  r.hooks_seconds += post.seconds;
  for (size_t i = 0; i < post.errors.size(); ++i) {
    if (post.failed && i + 1 == post.errors.size())
      Fail(&r, ErrorCode::kSourceFailed, post.errors[i]);
    else
      r.errors.push_back(post.errors[i]);
  }
  r.ended_at = NowSeconds();
  r.duration_seconds = Since(t0);
  log::Info("source '" + src.name + "': job " + name + " ended: " + std::string(JobStatusName(r.status)) +
            (r.error.empty() ? "" : " (" + r.error + ")"));
  return r;
}

}  // namespace bulwark::jobs
