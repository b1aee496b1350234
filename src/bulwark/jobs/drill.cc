#include "bulwark/jobs/drill.h"

#include <chrono>

#include "bulwark/base/log.h"
#include "bulwark/ops/drill.h"
#include "bulwark/repo/lock.h"

namespace bulwark::jobs {

JobReport RunDrillJob(const JobEnv& env, const std::string& source, const std::string& name,
                      const std::string& restore_command) {
  const config::SourceConfig& src = env.config->Source(source);
  JobReport r;
  r.kind = JobKind::kDrill;
  r.source = src.name;
  r.repository = src.repository;
  r.name = name;
  r.started_at = repo::NowNs() / 1000000000;
  const auto t0 = std::chrono::steady_clock::now();
  log::Info("source '" + src.name + "': drill " + name + " started");
  try {
    if (env.cancel && env.cancel->load()) throw Error(ErrorCode::kCancelled, "the agent is shutting down");
    const config::RepositoryConfig* rc = env.config->Repository(src.repository);
    if (!rc) throw Error(ErrorCode::kInvalidArgument, "no repository named '" + src.repository + "'");
    auto repo = WithContext("repository '" + src.repository + "'", [&] { return env.open_repository(*rc); });
    auto lock = repo::Lock::Acquire(repo.get(), false, env.lock_wait_seconds);
    repo->LoadIndex();  // after the lock: an index read before it could predate a prune
    repo::Snapshot snap = repo->ResolveSnapshot("latest", {src.name, "", {}, {}});
    r.snapshot_id = snap.id.Hex();
    r.snapshot_time = snap.time_ns / 1000000000;
    ops::DrillOptions d;
    d.threads = env.threads;
    if (src.kind == config::SourceKind::kPostgres && src.pg_mode == config::PgMode::kPhysical)
      d.restore_command = restore_command;
    d.on_step = [&src](const std::string& step) { log::Info("source '" + src.name + "': drill: " + step); };
    const repo::DrillRecord rec = ops::RunDrill(*repo, snap, src, d).record;
    r.drill_passed = rec.passed;
    r.drill_rto_seconds = rec.total_seconds;
    r.drill_id = rec.id.Hex();
    r.status = rec.passed ? JobStatus::kSuccess : JobStatus::kFailed;
    if (!rec.passed) {
      std::string why = rec.error;
      for (const auto& c : rec.checks)
        if (!c.passed && why.empty()) why = "check " + c.name + ": expected " + c.expected + ", got " + c.actual;
      r.error = "drill failed: " + (why.empty() ? std::string("see drill record ") + rec.id.Short() : why);
      r.error_code = ErrorCode::kSourceFailed;  // the restored copy failed validation
      r.errors.push_back(r.error);
    }
  } catch (const Error& e) {
    r.status = e.code() == ErrorCode::kCancelled ? JobStatus::kAbandoned : JobStatus::kFailed;
    r.error = std::string("drill: ") + e.what();
    r.error_code = e.code();
    r.errors.push_back(r.error);
  }
  r.ended_at = repo::NowNs() / 1000000000;
  r.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (r.ok() ? log::Info : log::Err)("source '" + src.name + "': drill " + name + " ended: " +
                                  std::string(JobStatusName(r.status)) + (r.error.empty() ? "" : " (" + r.error + ")"));
  return r;
}

}  // namespace bulwark::jobs
